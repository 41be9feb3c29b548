//! A bundle's new network namespace, judged from inside the sandbox and
//! from the host: the program is in a namespace of its own with only `lo`,
//! and it is up; a `sysfs` mounted for the sandbox shows that namespace's
//! devices, not the host's; a `net.*` sysctl of the bundle lands in it and
//! not on the host; and saferoot itself stays in the host's namespace
//! while the program runs.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

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

/// A bundle with the host's programs, its own `/proc` and `/sys`, new
/// pid, mount and network namespaces, `script` as the process and, with
/// `sysctl`, `net.core.somaxconn` set to 1234.
fn bundle(script: &str, sysctl: bool) -> TempDir {
    let dir = TempDir::new();
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for d in common::host_program_dirs(&rootfs) {
        mounts.push(
            json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]}),
        );
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
/// sysctl)`: the program's report, and saferoot's own network namespace
/// while the program runs.
fn run(sysctl: bool) -> (String, String) {
    let script = r#"
        echo "net=$(readlink /proc/self/ns/net)"
        echo "sysfs=$(ls /sys/class/net | tr '\n' ' ')"
        echo "lo=$(cat /sys/class/net/lo/flags)"
        echo "somaxconn=$(cat /proc/sys/net/core/somaxconn)"
        echo ready
        read -r _ || true
    "#;
    let b = bundle(script, sysctl);
    let mut child = Command::new(EXE)
        .args(["run", "--bundle", b.path().to_str().unwrap()])
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

#[test_log::test]
fn a_bundles_network_namespace_is_the_programs_alone() {
    if !common::require_root() {
        return;
    }
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    assert_ne!(
        host_somaxconn.trim(),
        "1234",
        "pick another value for this host"
    );
    for sysctl in [false, true] {
        let (out, saferoot_net) = run(sysctl);
        assert_eq!(
            saferoot_net,
            host_ns("net"),
            "saferoot left the host's network namespace"
        );
        assert_ne!(var(&out, "net"), host_ns("net"), "{out}");
        assert_eq!(var(&out, "sysfs").trim(), "lo", "sysctl {sysctl}: {out}");
        // IFF_UP | IFF_LOOPBACK.
        let flags = u32::from_str_radix(var(&out, "lo").trim_start_matches("0x"), 16).unwrap();
        assert_eq!(flags & 0x9, 0x9, "lo is not up: {out}");
        if sysctl {
            assert_eq!(var(&out, "somaxconn"), "1234", "{out}");
        }
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
            host_somaxconn,
            "the sysctl reached the host"
        );
    }
}

#[test_log::test]
fn without_a_network_namespace_the_program_shares_the_hosts() {
    if !common::require_root() {
        return;
    }
    let b = bundle(r#"echo "net=$(readlink /proc/self/ns/net)""#, false);
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
