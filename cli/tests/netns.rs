//! A bundle's new network namespace, judged from inside the sandbox and
//! from the host: the program is in a namespace of its own with only `lo`,
//! and it is up; a `sysfs` mounted for the sandbox, first or last, shows
//! that namespace's devices, not the host's; a `net.*` sysctl of the
//! bundle lands in it and not on the host; and saferoot itself, which
//! makes the namespace while the init mounts (`net_ahead`), stays in the
//! host's namespace while the program runs. The same holds when the init
//! has to wait for the namespace and when it makes its own.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use serde_json::json;

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `KEY=value` lines of `out`.
fn var(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in:\n{out}"))
        .to_string()
}

/// Where a bundle mounts `/sys` (a `sysfs`, which shows the devices of
/// the network namespace it is mounted from).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sysfs {
    /// The first mount of the spec.
    First,
    /// After `/proc` and the binds of the host's programs.
    Last,
    /// No `/sys` at all: nothing the root is built of depends on the
    /// network namespace.
    Absent,
}

/// A bundle with the host's programs, its own `/proc` and (see [`Sysfs`])
/// `/sys`, new pid, mount and network namespaces, `script` as the process
/// and, with `sysctl`, `net.core.somaxconn` set to 1234.
fn bundle(script: &str, sysctl: bool, sysfs: Sysfs) -> TempDir {
    let dir = TempDir::new();
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let sys = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]});
    let mut mounts = vec![json!({"destination": "/proc", "type": "proc", "source": "proc"})];
    for d in common::host_program_dirs(&rootfs) {
        mounts.push(
            json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]}),
        );
    }
    match sysfs {
        Sysfs::First => mounts.insert(0, sys),
        Sysfs::Last => mounts.push(sys),
        Sysfs::Absent => {}
    }
    let config = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/sh", "-c", script], "env": ["PATH=/usr/bin:/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]
        }
    });
    let mut config = config;
    if sysctl {
        config["linux"]["sysctl"] = json!({"net.core.somaxconn": "1234"});
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir
}

/// What the program and the host see of one run of `bundle(SCRIPT,
/// sysctl, sysfs)` with the environment `env` added: the program's
/// report, and saferoot's own network namespace while the program runs.
fn run(sysctl: bool, sysfs: Sysfs, env: &[(&str, &str)]) -> (String, String) {
    // `lo` is up when the kernel has its local routes (127.0.0.1 and
    // its kin): a namespace whose `lo` is down has none.
    let script = r#"
        echo "net=$(readlink /proc/self/ns/net)"
        echo "sysfs=$(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
        echo "local_routes=$(grep -c 'host LOCAL' /proc/net/fib_trie)"
        echo "somaxconn=$(cat /proc/sys/net/core/somaxconn)"
        echo "cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"
        echo "policy=$(sed -n 's/^policy *: *//p' /proc/self/sched)"
        echo ready
        read -r _ || true
    "#;
    let b = bundle(script, sysctl, sysfs);
    let mut child = Command::new(EXE)
        .args(["run", "--bundle", b.path().to_str().unwrap()])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        let l = l.unwrap();
        let done = l == "ready";
        out.push_str(&l);
        out.push('\n');
        if done {
            break;
        }
    }
    // While the program runs.
    let saferoot_net = std::fs::read_link(format!("/proc/{}/ns/net", child.id()));
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{status:?}\n{out}\n{err}");
    (out, saferoot_net.unwrap().to_string_lossy().into_owned())
}

/// The same, for every combination of a `net.*` sysctl and a place of
/// `/sys`, with `env`: saferoot makes the namespace while the init mounts
/// and the init joins it before the first step that depends on it, or
/// (with the test hooks) the init waits for it, or makes its own.
fn check_network_namespace(env: &[(&str, &str)]) {
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    assert_ne!(
        host_somaxconn.trim(),
        "1234",
        "pick another value for this host"
    );
    for sysfs in [Sysfs::First, Sysfs::Last, Sysfs::Absent] {
        for sysctl in [false, true] {
            let what = format!("{env:?}, /sys {sysfs:?}, sysctl {sysctl}");
            let (out, saferoot_net) = run(sysctl, sysfs, env);
            assert_eq!(
                saferoot_net,
                host_ns("net"),
                "{what}: saferoot left the host's network namespace"
            );
            assert_ne!(var(&out, "net"), host_ns("net"), "{what}: {out}");
            if sysfs != Sysfs::Absent {
                assert_eq!(var(&out, "sysfs").trim(), "lo", "{what}: {out}");
            }
            assert_ne!(
                var(&out, "local_routes"),
                "0",
                "{what}: lo is not up: {out}"
            );
            // The init keeps off saferoot's CPU while the namespace is
            // made, and has all of them back before the program exists.
            assert_eq!(var(&out, "cpus"), own_cpus(), "{what}: {out}");
            // And the caller's scheduling policy (the fork under
            // SCHED_BATCH is undone).
            assert_eq!(var(&out, "policy"), policy_of("self"), "{what}: {out}");
            if sysctl {
                assert_eq!(var(&out, "somaxconn"), "1234", "{what}: {out}");
            }
            assert_eq!(
                std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
                host_somaxconn,
                "{what}: the sysctl reached the host"
            );
        }
    }
}

#[test_log::test]
fn a_bundles_network_namespace_is_the_programs_alone() {
    if !common::require_root() {
        return;
    }
    check_network_namespace(&[]);
}

/// The init reaches the point where it needs the namespace before
/// saferoot has made it, and waits.
#[test_log::test]
fn the_init_waits_for_the_network_namespace_saferoot_makes() {
    if !common::require_root() {
        return;
    }
    check_network_namespace(&[("SAFEROOT_TEST_NET_AHEAD_DELAY_MS", "300")]);
}

/// saferoot sends the namespace before it brings the loopback interface
/// up: the program's process waits until it is up.
#[test_log::test]
fn the_program_waits_for_the_loopback_interface() {
    if !common::require_root() {
        return;
    }
    check_network_namespace(&[("SAFEROOT_TEST_LOOPBACK_DELAY_MS", "300")]);
}

/// saferoot sends the namespace and then does not bring the loopback
/// interface up (as when that fails): the init brings it up itself.
#[test_log::test]
fn the_init_brings_up_the_loopback_interface_saferoot_left_down() {
    if !common::require_root() {
        return;
    }
    check_network_namespace(&[("SAFEROOT_TEST_LOOPBACK", "off")]);
}

/// The scheduling policy of a task (`self` or a pid), as a number.
fn policy_of(task: &str) -> String {
    std::fs::read_to_string(format!("/proc/{task}/sched"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("policy"))
        .map(|l| l.trim_start_matches([' ', ':']).trim().to_string())
        .unwrap_or_default()
}

/// The CPUs of a `Cpus_allowed_list` ("0-2,5").
fn cpu_list(list: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        out.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap());
    }
    out
}

/// While the init sets up and saferoot has not made the network namespace
/// yet (both held back by test hooks), the init runs on every CPU but one
/// (saferoot's, which saferoot pushed it off right after the fork); once
/// the namespace has come, the program has all of them, as the caller. A
/// bundle (the init forked; saferoot makes the namespace) and bubblewrap's
/// `--unshare-all` (the init cloned into a user namespace; saferoot's
/// helper makes it).
#[test_log::test]
fn the_init_keeps_off_saferoots_cpu_until_the_namespace_comes() {
    if !common::require_root()
        || !common::require(
            cpu_list(&own_cpus()).len() >= 2,
            "needs two CPUs to keep the init off one",
        )
    {
        return;
    }
    let script = r#"echo "cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"; echo "policy=$(sed -n 's/^policy *: *//p' /proc/self/sched)"; echo ready; read -r _ || true"#;
    let b = bundle(script, false, Sysfs::Absent);
    let dir = TempDir::new();
    let bwrap = dir.join("bwrap");
    std::os::unix::fs::symlink(EXE, &bwrap).unwrap();
    let mine = cpu_list(&own_cpus());
    let runs: [(&str, Vec<&str>); 2] = [
        (EXE, vec!["run", "--bundle", b.path().to_str().unwrap()]),
        (
            bwrap.to_str().unwrap(),
            vec![
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--unshare-all",
                "sh",
                "-c",
                script,
            ],
        ),
    ];
    for (exe, args) in runs {
        let mut child = Command::new(exe)
            .args(&args)
            .env("SAFEROOT_TEST_SETUP_DELAY_MS", "1000")
            .env("SAFEROOT_TEST_NET_AHEAD_DELAY_MS", "1500")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The init, during its setup (held by the test hook), while
        // saferoot has not made the namespace yet.
        let deadline = Instant::now() + Duration::from_millis(900);
        let mut narrowed = None;
        while Instant::now() < deadline && narrowed.is_none() {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
                    .unwrap_or_default();
            if let Some(init) = children.split_whitespace().next() {
                let status =
                    std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
                if let Some(l) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                {
                    let cpus = cpu_list(l.trim());
                    if cpus != mine {
                        // The init still has the policy it was forked
                        // under; saferoot has its own back.
                        narrowed =
                            Some((cpus, policy_of(init), policy_of(&child.id().to_string())));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for l in lines.by_ref() {
            let l = l.unwrap();
            let done = l == "ready";
            out.push_str(&l);
            out.push('\n');
            if done {
                break;
            }
        }
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "{exe}: {status:?}\n{out}");
        let (narrowed, init_policy, saferoot_policy) =
            narrowed.unwrap_or_else(|| panic!("{exe}: the init kept every CPU"));
        assert_eq!(
            init_policy, "3",
            "{exe}: the init was not forked under SCHED_BATCH"
        );
        assert_eq!(
            saferoot_policy,
            policy_of("self"),
            "{exe}: saferoot kept SCHED_BATCH"
        );
        assert_eq!(
            narrowed.len(),
            mine.len() - 1,
            "{exe}: {narrowed:?} of {mine:?}"
        );
        assert!(narrowed.is_subset(&mine), "{exe}: {narrowed:?} of {mine:?}");
        assert_eq!(cpu_list(&var(&out, "cpus")), mine, "{exe}: {out}");
        assert_eq!(var(&out, "policy"), policy_of("self"), "{exe}: {out}");
    }
}

/// A caller that runs saferoot under a policy of its own (`chrt`) gives
/// it to the program: saferoot trades only the default policy for
/// `SCHED_BATCH` at the init's fork, and gives that back.
#[test_log::test]
fn the_program_keeps_the_callers_scheduling_policy() {
    if !common::require_root() {
        return;
    }
    let script = r#"echo "policy=$(sed -n 's/^policy *: *//p' /proc/self/sched)"; echo "nice=$(cut -d' ' -f19 /proc/self/stat)""#;
    let b = bundle(script, false, Sysfs::First);
    for (chrt, policy, nice) in [
        (vec![], "0", "0"),
        (vec!["chrt", "--batch", "0"], "3", "0"),
        (vec!["chrt", "--idle", "0"], "5", "0"),
        (vec!["nice", "-n", "7"], "0", "7"),
    ] {
        let mut cmd = Command::new(chrt.first().copied().unwrap_or(EXE));
        if !chrt.is_empty() {
            cmd.args(&chrt[1..]).arg(EXE);
        }
        let out = cmd
            .args(["run", "--bundle", b.path().to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{chrt:?}: {out:?}");
        assert_eq!(var(&text, "policy"), policy, "{chrt:?}: {text}");
        assert_eq!(var(&text, "nice"), nice, "{chrt:?}: {text}");
    }
}

/// saferoot makes no namespace (as when it cannot), and the init makes
/// its own, with the same result.
#[test_log::test]
fn the_init_makes_the_network_namespace_when_saferoot_does_not() {
    if !common::require_root() {
        return;
    }
    check_network_namespace(&[("SAFEROOT_TEST_NET_AHEAD", "off")]);
}

#[test_log::test]
fn without_a_network_namespace_the_program_shares_the_hosts() {
    if !common::require_root() {
        return;
    }
    let b = bundle(
        r#"echo "net=$(readlink /proc/self/ns/net)""#,
        false,
        Sysfs::Last,
    );
    let cfg = b.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let out = Command::new(EXE)
        .args(["run", "--bundle", b.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(var(&stdout, "net"), host_ns("net"), "{stdout}");
}

/// The CPUs this process may run on, as `/proc/PID/status` lists them.
fn own_cpus() -> String {
    cpus_of(std::process::id())
}

fn cpus_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// Run on one CPU only (`taskset`), where the init has no other CPU to
/// move to, the sandbox works the same and the program gets that CPU.
#[test_log::test]
fn on_one_cpu_the_program_keeps_it() {
    if !common::require_root() {
        return;
    }
    let b = bundle(
        r#"echo "cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"; echo "net=$(readlink /proc/self/ns/net)""#,
        false,
        Sysfs::Last,
    );
    let cpu = own_cpus().split([',', '-']).next().unwrap().to_string();
    let out = Command::new("taskset")
        .args([
            "-c",
            &cpu,
            EXE,
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("taskset (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(var(&stdout, "cpus"), cpu, "{stdout}");
    assert_ne!(var(&stdout, "net"), host_ns("net"), "{stdout}");
}

/// The inode numbers of `kind` namespaces and of the user namespaces that
/// own them, as `lsns` lists them.
fn owners(kind: &str) -> Vec<(u64, u64)> {
    let out = Command::new("lsns")
        .args(["-n", "-t", kind, "-o", "NS,ONS"])
        .output()
        .expect("lsns (util-linux)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(|w| w.parse::<u64>().ok());
            Some((w.next()??, w.next()??))
        })
        .collect()
}

fn ns_ino(pid: u32, kind: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .ino()
}

/// The first child of `pid`.
fn first_child(pid: u32) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{pid} has no child"))
}

/// With a new user namespace (bubblewrap's `--unshare-all`) the network
/// namespace belongs to the sandbox's user namespace (its init's), as one
/// the init made itself would, not to the host's: saferoot's helper makes
/// it from inside that user namespace. The same when the init makes its
/// own (the test hook).
#[test_log::test]
fn with_a_user_namespace_the_sandboxs_owns_the_network_namespace() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let bwrap = dir.join("bwrap");
    std::os::unix::fs::symlink(EXE, &bwrap).unwrap();
    let host_user = ns_ino(std::process::id(), "user");
    for hook in ["", "off"] {
        let mut c = Command::new(&bwrap);
        c.args([
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--unshare-all",
            "sh",
            "-c",
            "echo ready; read -r _ || true",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if !hook.is_empty() {
            c.env("SAFEROOT_TEST_NET_AHEAD", hook);
        }
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n", "hook {hook:?}");
        let init = first_child(child.id());
        let program = first_child(init);
        let net = ns_ino(init, "net");
        let init_user = ns_ino(init, "user");
        assert_eq!(ns_ino(program, "net"), net, "hook {hook:?}");
        assert_eq!(cpus_of(program), own_cpus(), "hook {hook:?}");
        assert_ne!(init_user, host_user, "hook {hook:?}");
        let owner = owners("net")
            .into_iter()
            .find(|(ns, _)| *ns == net)
            .map(|(_, owner)| owner);
        assert_eq!(
            owner,
            Some(init_user),
            "hook {hook:?}: the sandbox's network namespace {net} is not owned by its user \
             namespace {init_user} (host's: {host_user})"
        );
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "hook {hook:?}: {status:?}");
    }
}

/// With a new user namespace (bubblewrap's `--unshare-all`, where
/// saferoot's helper makes the network namespace), the program finds `lo`
/// up: when the helper brings it up right away, when it is slow to (the
/// program waits), and when it leaves it down (the init brings it up).
#[test_log::test]
fn with_a_user_namespace_the_program_finds_lo_up() {
    if !common::require_root() {
        return;
    }
    let hooks: [&[(&str, &str)]; 3] = [
        &[],
        &[("SAFEROOT_TEST_LOOPBACK_DELAY_MS", "300")],
        &[("SAFEROOT_TEST_LOOPBACK", "off")],
    ];
    for env in hooks {
        let out = Command::new(EXE)
            .args([
                "bwrap",
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--unshare-all",
                "sh",
                "-c",
                "echo \"local_routes=$(grep -c 'host LOCAL' /proc/net/fib_trie)\"",
            ])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{env:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(
            var(&text, "local_routes"),
            "0",
            "{env:?}: lo is not up: {text}"
        );
    }
}
