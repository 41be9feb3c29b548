//! Tests of the `saferoot` command, with real sandboxes.
//!
//! Every test runs the built binary (`CARGO_BIN_EXE_saferoot`) as root and
//! looks at what the sandboxed program reports from inside (mount table,
//! ids, namespaces, files) and at the host afterwards. [`saferoot`] points
//! the command's TMPDIR at a fresh directory and checks it is empty again
//! afterwards: a fresh root's scratch directory must not be left behind.

// The library's namespace harness, shared with its own integration tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use saferoot::mount::Scope;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

// ---------------------------------------------------------------------------
// Running the command

/// What a run of the command gave.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// `key=value` lines of stdout.
    fn vars(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn var(&self, key: &str) -> String {
        self.vars()
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key}= line in the output:\n{self:#?}"))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self:#?}"))
    }

    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "saferoot failed:\n{self:#?}");
        self
    }
}

fn status_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

impl From<std::process::Output> for Out {
    /// The exit status as a shell gives it ([`status_code`]), the output as
    /// text.
    fn from(out: std::process::Output) -> Out {
        Out {
            code: status_code(out.status),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `saferoot ARGS` with stdin from /dev/null, its scratch directory
/// in a fresh TMPDIR that must be empty again afterwards.
fn saferoot<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Out {
    saferoot_with(args, Stdio::null(), &[])
}

fn saferoot_with<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: Stdio, env: &[(&str, &str)]) -> Out {
    let tmp = TempDir::new();
    let out = Command::new(EXE)
        .args(args)
        .env("TMPDIR", tmp.path())
        .envs(env.iter().copied())
        .stdin(stdin)
        .output()
        .expect("start saferoot");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.is_empty(),
        "saferoot left {left:?} behind in its TMPDIR"
    );
    Out::from(out)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Flags that give a fresh root the host's programs: /usr read-only, and
/// the host's /bin, /lib, ... as it has them (symlinks or binds).
fn base() -> Vec<String> {
    let mut v = Vec::new();
    for d in [
        "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
    ] {
        let Ok(meta) = std::fs::symlink_metadata(d) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(d).unwrap();
            v.extend(s(&["--symlink", t.to_str().unwrap(), d]));
        } else if meta.is_dir() {
            v.extend(s(&["--ro-bind", d, d]));
        }
    }
    v
}

/// `saferoot run FLAGS -- sh -c SCRIPT`.
fn sandbox(flags: &[String], script: &str) -> Out {
    let mut args = s(&["run"]);
    args.extend(flags.iter().cloned());
    args.extend(s(&["--", "/bin/sh", "-c", script]));
    saferoot(&args)
}

fn with(extra: &[&str]) -> Vec<String> {
    let mut v = base();
    v.extend(s(extra));
    v
}

/// Mount point → (per-mount options, fs type), from mountinfo text.
fn mountinfo(text: &str) -> BTreeMap<String, (String, String)> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < 6 || dash + 1 >= f.len() {
            continue;
        }
        m.insert(
            f[4].to_string(),
            (f[5].to_string(), f[dash + 1].to_string()),
        );
    }
    m
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the process `pid` is running (exists and is not a zombie).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

fn kill(pid: i32, sig: rustix::process::Signal) {
    let _ = rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), sig);
}

// ---------------------------------------------------------------------------
// saferoot run: the embedded default

#[test_log::test]
fn run_default_sandbox_is_isolated_and_read_only() {
    if !common::require_root() {
        return;
    }
    let out = sandbox(
        &[],
        r#"
        echo "pid=$$"
        echo "init=$(tr '\0' ' ' </proc/1/cmdline)"
        echo "hostname=$(cat /proc/sys/kernel/hostname)"
        touch /usr/saferoot-test 2>&1; echo "usr_rc=$?"
        echo hi >/tmp/f && echo "tmp_rc=$?"
        echo x >/proc/sys/kernel/hostname 2>/dev/null; echo "procsys_rc=$?"
        echo "keys=$(wc -c </proc/keys)"
        echo "bin=$(readlink /bin)"
        for n in mnt pid ipc uts net user; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done
        echo "root=$(ls -A / | tr '\n' ' ')"
        echo ---
        cat /proc/self/mountinfo
        "#,
    )
    .ok();
    // pid 1 is saferoot's init; the shell is another process.
    assert!(out.var("init").contains("saferoot"), "{out:#?}");
    assert_ne!(out.var("pid"), "1");
    assert_eq!(out.var("hostname"), "saferoot");
    assert_ne!(out.var("usr_rc"), "0");
    assert!(out.stdout.contains("Read-only file system"), "{out:#?}");
    assert_eq!(out.var("tmp_rc"), "0");
    assert_ne!(out.var("procsys_rc"), "0", "/proc/sys must be read-only");
    assert_eq!(out.var("keys"), "0", "/proc/keys must be masked");
    if std::fs::symlink_metadata("/bin")
        .unwrap()
        .file_type()
        .is_symlink()
    {
        assert_eq!(
            PathBuf::from(out.var("bin")),
            std::fs::read_link("/bin").unwrap()
        );
    }
    for ns in ["mnt", "pid", "ipc", "uts"] {
        assert_ne!(out.var(&format!("ns_{ns}")), host_ns(ns), "{ns} namespace");
    }
    for ns in ["net", "user"] {
        assert_eq!(out.var(&format!("ns_{ns}")), host_ns(ns), "{ns} namespace");
    }
    let root: BTreeSet<String> = out
        .var("root")
        .split_whitespace()
        .map(String::from)
        .collect();
    for want in ["usr", "etc", "proc", "dev", "tmp", "run"] {
        assert!(root.contains(want), "/ lacks {want}: {root:?}");
    }
    for host_only in ["work", "home", "root", "var"] {
        assert!(
            !root.contains(host_only),
            "/ has the host's {host_only}: {root:?}"
        );
    }
    let mi = mountinfo(out.stdout.split("\n---\n").nth(1).unwrap());
    let get = |p: &str| {
        mi.get(p)
            .unwrap_or_else(|| panic!("{p} not mounted: {mi:#?}"))
    };
    assert!(has_opt(&get("/usr").0, "ro"), "{mi:#?}");
    assert!(has_opt(&get("/usr").0, "nosuid"));
    assert!(has_opt(&get("/etc").0, "ro"));
    assert_eq!(get("/proc").1, "proc");
    assert_eq!(get("/dev").1, "tmpfs");
    assert_eq!(get("/dev/pts").1, "devpts");
    let (opts, fs) = get("/tmp");
    assert_eq!(fs, "tmpfs");
    assert!(
        has_opt(opts, "rw") && has_opt(opts, "nosuid") && has_opt(opts, "nodev"),
        "{opts}"
    );
    assert_eq!(get("/run").1, "tmpfs");
    assert_eq!(get("/").1, "tmpfs");
    assert!(has_opt(&get("/proc/sys").0, "ro"));
}

#[test_log::test]
fn run_readme_command_shows_mounts_and_identity() {
    if !common::require_root() {
        return;
    }
    let out = saferoot(&["run", "--", "/bin/sh", "-c", "mount; id"]).ok();
    assert!(out.stdout.contains("proc on /proc type proc"), "{out:#?}");
    assert!(out.stdout.contains("uid=0"), "{out:#?}");
}

// ---------------------------------------------------------------------------
// Exit status and signals

#[test_log::test]
fn run_exit_status_is_the_programs() {
    if !common::require_root() {
        return;
    }
    assert_eq!(sandbox(&[], "exit 7").code, 7);
    // In a pid namespace the shell is pid 2+, so it can die of SIGTERM.
    assert_eq!(sandbox(&[], "kill -TERM $$").code, 128 + 15);
    // Without one the program is saferoot's child itself.
    assert_eq!(sandbox(&base(), "kill -KILL $$").code, 128 + 9);
    assert_eq!(sandbox(&base(), "kill -TERM $$").code, 128 + 15);
    assert_eq!(sandbox(&base(), "exit 0").code, 0);
}

fn spawn_ready(flags: &[String], script: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut args = s(&["run"]);
    args.extend(flags.iter().cloned());
    args.extend(s(&["--", "/bin/sh", "-c", script]));
    let mut child = Command::new(EXE)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the sandbox did not start");
    (child, out)
}

/// Sends `sig` to saferoot running a shell that traps it (by its shell
/// name `name`) with "got-NAME" and exit status `code`; the program must
/// get it: that output and that status.
fn assert_signal_trapped(flags: &[String], sig: rustix::process::Signal, name: &str, code: i32) {
    let script = format!(
        "trap 'echo got-{name}; exit {code}' {name}; echo ready; while :; do sleep 0.05; done"
    );
    let (mut child, mut out) = spawn_ready(flags, &script);
    kill(child.id() as i32, sig);
    let st = wait_timeout(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no exit after SIG{name}"));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(status_code(st), code, "{rest}");
    assert!(rest.contains(&format!("got-{name}")), "{rest}");
}

#[test_log::test]
fn run_forwards_signals_to_the_program() {
    if !common::require_root() {
        return;
    }
    for flags in [Vec::new(), base()] {
        assert_signal_trapped(&flags, rustix::process::Signal::USR1, "USR1", 3);

        let (mut child, _out) = spawn_ready(&flags, "echo ready; exec sleep 100");
        kill(child.id() as i32, rustix::process::Signal::TERM);
        let st = wait_timeout(&mut child, Duration::from_secs(30)).expect("no exit after SIGTERM");
        assert_eq!(status_code(st), 128 + 15);
    }
}

/// saferoot learns the program was exec'd from a realtime signal of its
/// setup pipe, and waits for SIGIO too: a SIGIO that someone sends it is
/// passed on like any other signal, for the embedded default and a
/// sandbox from flags.
#[test_log::test]
fn run_forwards_a_sigio_it_did_not_ask_for() {
    if !common::require_root() {
        return;
    }
    for flags in [Vec::new(), base()] {
        assert_signal_trapped(&flags, rustix::process::Signal::IO, "IO", 4);
    }
}

/// The fds of `pid` that are open on a procfs (its private instance shows
/// up so; nothing else saferoot holds while it waits is a procfs).
fn procfs_fds(pid: i32) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return found;
    };
    for e in dir.flatten() {
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        if rustix::fs::fstatfs(&f).is_ok_and(|st| st.f_type == libc::PROC_SUPER_MAGIC) {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// saferoot's private procfs is released (its unmount waits for an RCU
/// grace period) by saferoot, while saferoot is idle and never in the
/// chain's processes. An init that saferoot starts itself gives up its
/// hold on the mount first and says so: saferoot then releases the procfs
/// at once, during the setup (the embedded default, an init in a pid
/// namespace; a sandbox from flags with a pid namespace). With a namespace
/// child in between (a user namespace and no pid namespace), saferoot
/// holds it through the setup, its mount too (so that the chain's
/// processes, which close their copies as they exec or fork the program,
/// are never the last holder), and no longer once the program runs. A sandbox from flags
/// with neither a pid nor a user namespace has no use for a procfs:
/// saferoot never makes one. The setup is held in the debug builds' delay
/// hook to look at it.
/// How long the procfs test holds the setup in the delay hook.
const SETUP_HELD_MS: u64 = 3000;

/// Reads a `-vv` saferoot's stderr to its end; the receiver gets a message
/// when the setup's delay hook says it has started.
fn hook_started(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("test hook: setup sleeps") {
                let _ = tx.send(());
            }
        }
    });
    rx
}

#[test_log::test]
fn run_releases_its_procfs_while_the_program_runs() {
    if !common::require_root() || !setup_delay_hook_available() {
        return;
    }
    let with_pid_ns = {
        let mut v = base();
        v.extend(s(&["--unshare-pid"]));
        v
    };
    let with_user_ns = {
        let mut v = base();
        v.extend(s(&["--unshare-user"]));
        v
    };
    for (flags, held) in [
        (Vec::new(), 0),
        (with_pid_ns, 0),
        (base(), 0),
        (with_user_ns, 2),
    ] {
        let mut args = s(&["-vv", "run"]);
        args.extend(flags.iter().cloned());
        args.extend(s(&["--", "/bin/sh", "-c", "echo ready; exec sleep 100"]));
        let mut child = Command::new(EXE)
            .args(&args)
            .env("SAFEROOT_TEST_SETUP_DELAY_MS", SETUP_HELD_MS.to_string())
            // Not /dev/null: a user namespace without /proc could not
            // check it once in the root.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // During the setup: from the hook's own log line (not a fixed time
        // after the start, which a slow, emulated machine may not have
        // reached), until the count is the expected one or most of the
        // hook's time has gone.
        let hook = hook_started(child.stderr.take().unwrap());
        hook.recv_timeout(Duration::from_secs(60))
            .expect("the setup's delay hook did not start");
        let since = Instant::now();
        let mut during = procfs_fds(pid);
        while during.len() != held && since.elapsed() < Duration::from_millis(SETUP_HELD_MS / 2) {
            std::thread::sleep(Duration::from_millis(20));
            during = procfs_fds(pid);
        }
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the sandbox did not start");
        // The program runs; SIGIO may still be on its way to saferoot.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut after = procfs_fds(pid);
        while !after.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            after = procfs_fds(pid);
        }
        kill(pid, rustix::process::Signal::TERM);
        let st = wait_timeout(&mut child, Duration::from_secs(30)).expect("no exit after SIGTERM");
        assert_eq!(status_code(st), 128 + 15);
        assert_eq!(
            during.len(),
            held,
            "saferoot's procfs during setup with {flags:?}: fds {during:?}"
        );
        assert!(
            after.is_empty(),
            "saferoot still holds a procfs at fds {after:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Each run flag

#[test_log::test]
fn run_bind_flags_and_try_variants() {
    if !common::require_root() {
        return;
    }
    let t = TempDir::new();
    std::fs::create_dir(t.join("rw")).unwrap();
    std::fs::create_dir(t.join("ro")).unwrap();
    std::fs::write(t.join("ro/file"), "data").unwrap();
    let p = |x: &str| t.join(x).display().to_string();
    let flags = with(&[
        "--bind",
        &p("rw"),
        "/rw",
        "--ro-bind",
        &p("ro"),
        "/ro",
        "--bind-try",
        &p("missing"),
        "/m1",
        "--ro-bind-try",
        &p("missing"),
        "/m2",
        "--dev-bind-try",
        &p("missing"),
        "/m3",
        "--bind-try",
        &p("rw"),
        "/rw2",
        "--ro-bind-try",
        &p("ro"),
        "/ro2",
        "--dev-bind",
        "/dev/null",
        "/dn",
        "--dev-bind-try",
        "/dev/null",
        "/dnt",
        "--bind",
        "/dev/null",
        "/bn",
    ]);
    let out = sandbox(
        &flags,
        r#"
        echo x >/rw/new; echo "rw=$?"
        echo x >/ro/new 2>/dev/null; echo "ro=$?"
        for m in m1 m2 m3; do test -e /$m; echo "$m=$?"; done
        test -f /rw2/new; echo "rw2=$?"
        echo "ro2=$(cat /ro2/file)"
        echo x >/dn; echo "dn=$?"
        echo x >/dnt; echo "dnt=$?"
        echo x >/bn 2>/dev/null; echo "bn=$?"
        "#,
    )
    .ok();
    assert_eq!(out.var("rw"), "0", "{out:#?}");
    assert_ne!(out.var("ro"), "0");
    for m in ["m1", "m2", "m3"] {
        assert_ne!(
            out.var(m),
            "0",
            "{m}: a -try bind of a missing source must be skipped"
        );
    }
    assert_eq!(out.var("rw2"), "0");
    assert_eq!(out.var("ro2"), "data");
    assert_eq!(out.var("dn"), "0", "--dev-bind allows devices");
    assert_eq!(out.var("dnt"), "0");
    assert_ne!(out.var("bn"), "0", "--bind is nodev");
    assert!(
        t.join("rw/new").exists(),
        "the write reached the host directory"
    );
    assert!(!t.join("ro/new").exists());
}

#[test_log::test]
fn run_tmpfs_with_size_and_perms() {
    if !common::require_root() {
        return;
    }
    let flags = with(&[
        "--proc", "/proc", "--size", "1m", "--perms", "700", "--tmpfs", "/small", "--tmpfs", "/big",
    ]);
    let out = sandbox(
        &flags,
        r#"
        echo "small=$(stat -c %a /small)"
        echo "big=$(stat -c %a /big)"
        dd if=/dev/zero of=/small/f bs=1k count=2048 2>/dev/null; echo "dd=$?"
        echo "mi=$(grep ' /small ' /proc/self/mountinfo)"
        "#,
    )
    .ok();
    assert_eq!(out.var("small"), "700", "{out:#?}");
    assert_eq!(out.var("big"), "755");
    assert_ne!(out.var("dd"), "0", "2 MiB must not fit in a 1 MiB tmpfs");
    let mi = out.var("mi");
    assert!(mi.contains("tmpfs") && mi.contains("size=1024k"), "{mi}");
    assert!(mi.contains("nosuid") && mi.contains("nodev"), "{mi}");
}

#[test_log::test]
fn run_proc_dev_and_mqueue() {
    if !common::require_root() {
        return;
    }
    let flags = with(&[
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--mqueue",
        "/dev/mqueue",
        "--dev",
        "/xdev",
    ]);
    let out = sandbox(
        &flags,
        r#"
        echo "null=$(stat -c '%t:%T %F' /dev/null)"
        echo "xnull=$(stat -c '%t:%T' /xdev/null)"
        echo "zero=$(head -c 4 /dev/zero | wc -c)"
        test -d /dev/pts; echo "pts=$?"
        test -d /dev/shm; echo "shm=$?"
        test -L /dev/ptmx; echo "ptmx=$?"
        echo "self=$(readlink /proc/self)"
        echo ---
        cat /proc/self/mountinfo
        "#,
    )
    .ok();
    assert_eq!(out.var("null"), "1:3 character special file", "{out:#?}");
    assert_eq!(out.var("xnull"), "1:3");
    assert_eq!(out.var("zero"), "4");
    assert_eq!(out.var("pts"), "0");
    assert_eq!(out.var("shm"), "0");
    assert_eq!(out.var("ptmx"), "0");
    assert!(!out.var("self").is_empty());
    let mi = mountinfo(out.stdout.split("\n---\n").nth(1).unwrap());
    assert_eq!(mi["/proc"].1, "proc");
    assert_eq!(mi["/dev"].1, "tmpfs");
    assert_eq!(mi["/dev/pts"].1, "devpts");
    assert_eq!(mi["/dev/shm"].1, "tmpfs");
    assert_eq!(mi["/dev/mqueue"].1, "mqueue");
    assert_eq!(mi["/xdev"].1, "tmpfs");
}

fn a_host_dir_with_files() -> &'static str {
    ["/etc/ssl", "/etc/apt", "/etc/ld.so.conf.d", "/etc/default"]
        .into_iter()
        .find(|d| std::fs::read_dir(d).is_ok_and(|mut r| r.next().is_some()))
        .expect("a non-empty directory in /etc")
}

#[test_log::test]
fn run_dir_symlink_remount_ro_and_mask() {
    if !common::require_root() {
        return;
    }
    let masked_dir = a_host_dir_with_files();
    let flags = with(&[
        "--proc",
        "/proc",
        "--ro-bind",
        "/etc",
        "/etc",
        "--perms",
        "711",
        "--dir",
        "/made/deep",
        "--tmpfs",
        "/t",
        "--dir",
        "/t/sub",
        "--symlink",
        "/t/sub",
        "/link",
        "--symlink",
        "usr/bin",
        "/bin2",
        "--tmpfs",
        "/rotmp",
        "--remount-ro",
        "/rotmp",
        "--mask",
        "/etc/hostname",
        "--mask",
        masked_dir,
        "--remount-ro",
        "/",
    ]);
    let script = format!(
        r#"
        echo "deep=$(stat -c %a /made/deep)"
        test -d /t/sub; echo "tsub=$?"
        echo "link=$(readlink /link)"
        echo "bin2=$(readlink /bin2)"
        test -x /bin2/sh; echo "bin2sh=$?"
        touch /rotmp/x 2>/dev/null; echo "rotmp=$?"
        touch /t/ok; echo "t=$?"
        touch /newfile 2>/dev/null; echo "root=$?"
        echo "hostname=$(wc -c </etc/hostname)"
        echo "maskdir=$(ls -A {masked_dir} | wc -l)"
        "#
    );
    let out = sandbox(&flags, &script).ok();
    assert_eq!(out.var("deep"), "711", "{out:#?}");
    assert_eq!(
        out.var("tsub"),
        "0",
        "--dir below an earlier --tmpfs lands in it"
    );
    assert_eq!(out.var("link"), "/t/sub");
    assert_eq!(out.var("bin2"), "usr/bin");
    assert_eq!(out.var("bin2sh"), "0");
    assert_ne!(out.var("rotmp"), "0", "--remount-ro /rotmp");
    assert_eq!(out.var("t"), "0", "only the root mount is read-only");
    assert_ne!(out.var("root"), "0", "--remount-ro /");
    assert_eq!(out.var("hostname"), "0", "--mask of a file");
    assert_eq!(out.var("maskdir"), "0", "--mask of a directory");
}

#[test_log::test]
fn run_chdir_hostname_and_environment() {
    if !common::require_root() {
        return;
    }
    let flags = with(&[
        "--proc",
        "/proc",
        "--unshare-uts",
        "--hostname",
        "box",
        "--chdir",
        "/work/dir",
        "--setenv",
        "A",
        "1",
        "--setenv",
        "B",
        "2",
        "--unsetenv",
        "B",
        "--setenv",
        "C",
        "x y",
    ]);
    let out = saferoot_with(
        &[vec!["run".to_string()], flags, s(&["--", "/bin/sh", "-c", r#"echo "pwd=$(pwd)"; echo "host=$(uname -n)"; echo "A=$A"; echo "B=${B-unset}"; echo "C=$C"; echo "MARK=${SAFEROOT_TEST_MARK-unset}""#])].concat(),
        Stdio::null(),
        &[("SAFEROOT_TEST_MARK", "kept")],
    )
    .ok();
    assert_eq!(out.var("pwd"), "/work/dir", "{out:#?}");
    assert_eq!(out.var("host"), "box");
    assert_eq!(out.var("A"), "1");
    assert_eq!(out.var("B"), "unset");
    assert_eq!(out.var("C"), "x y");
    assert_eq!(out.var("MARK"), "kept", "the environment is inherited");

    let out = saferoot_with(
        &[
            vec!["run".to_string()],
            with(&["--setenv", "X", "1", "--clearenv", "--setenv", "Y", "2"]),
            s(&["--", "/usr/bin/env"]),
        ]
        .concat(),
        Stdio::null(),
        &[("SAFEROOT_TEST_MARK", "dropped")],
    )
    .ok();
    let env: BTreeSet<&str> = out.stdout.lines().collect();
    assert!(env.contains("Y=2"), "{env:?}");
    assert!(
        !env.contains("X=1"),
        "--clearenv after --setenv X drops X: {env:?}"
    );
    assert!(!out.stdout.contains("SAFEROOT_TEST_MARK"), "{env:?}");
    assert!(
        env.iter().any(|l| l.starts_with("PATH=/")),
        "a default PATH: {env:?}"
    );
}

#[test_log::test]
fn run_unshare_user_maps_uid_and_gid() {
    if !common::require_root() {
        return;
    }
    let out = sandbox(
        &with(&["--proc", "/proc", "--unshare-pid", "--unshare-user", "--uid", "1000", "--gid", "1001"]),
        r#"echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "map=$(cat /proc/self/uid_map | tr -s ' ')"; echo "gmap=$(cat /proc/self/gid_map | tr -s ' ')"; echo "cap=$(grep CapEff /proc/self/status | cut -f2)"; echo "user=$(readlink /proc/self/ns/user)""#,
    )
    .ok();
    assert_eq!(out.var("uid"), "1000", "{out:#?}");
    assert_eq!(out.var("gid"), "1001");
    // The program runs in the lock namespace (docs/security.md), a child of
    // the one with the asked-for maps, mapping those ids to themselves.
    assert_eq!(out.var("map").trim(), "1000 1000 1");
    assert_eq!(out.var("gmap").trim(), "1001 1001 1");
    assert_eq!(
        out.var("cap"),
        "0000000000000000",
        "a non-root program has no capabilities"
    );
    assert_ne!(out.var("user"), host_ns("user"));

    let out = sandbox(
        &with(&["--proc", "/proc", "--unshare-pid", "--unshare-user"]),
        r#"echo "uid=$(id -u)""#,
    )
    .ok();
    assert_eq!(out.var("uid"), "0");

    // Without /proc in the sandbox and stdio on /dev/null, a user namespace
    // cannot work (see docs/cli.md): a clear error, not a crash.
    let out = sandbox(&with(&["--unshare-user"]), "true");
    assert_eq!(out.code, 125, "{out:#?}");
    assert!(out.stderr.contains("--proc /proc"), "{out:#?}");
    assert!(!out.stderr.contains("panicked"), "{out:#?}");
    // With stdio elsewhere it works.
    let out = saferoot_with(
        &[
            vec!["run".to_string()],
            with(&["--unshare-user"]),
            s(&["--", "/bin/sh", "-c", "echo in-userns"]),
        ]
        .concat(),
        Stdio::piped(),
        &[],
    );
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.stdout.trim(), "in-userns");
    // A pid namespace's init forks the program after entering a root that
    // has no /proc.
    let out = saferoot_with(
        &[
            vec!["run".to_string()],
            with(&["--unshare-user", "--unshare-pid"]),
            s(&["--", "/bin/sh", "-c", "echo pid=$$"]),
        ]
        .concat(),
        Stdio::piped(),
        &[],
    );
    assert_eq!(out.code, 0, "{out:#?}");
    assert_ne!(out.var("pid"), "1");
}

/// Escape class 1 of the security model: with a user namespace the program
/// is root with every capability of its namespace, yet nothing saferoot
/// mounted can be remounted, unmounted or revealed, and the host's files
/// stay as they were. Uid 0 is mapped to the host's uid 0 here, the case
/// where a writable remount would write host files as root.
#[test_log::test]
fn run_user_namespace_mounts_are_locked_against_the_program() {
    if !common::require_root() {
        return;
    }
    let host = TempDir::new();
    std::fs::write(host.join("marker"), "host\n").unwrap();
    std::fs::create_dir(host.join("secret")).unwrap();
    std::fs::write(host.join("secret/key"), "hidden\n").unwrap();
    std::fs::write(host.join("masked-file"), "hidden\n").unwrap();
    let h = host.path().to_str().unwrap();
    // The lock made in place (the program's process makes its user
    // namespace, the init writes the maps), and handed over (made beside
    // the init with the network namespace, joined by the program's
    // process).
    for net in ["--unshare-ipc", "--unshare-net"] {
        let flags = with(&[
            "--unshare-user",
            "--unshare-pid",
            net,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            h,
            "/vol",
            "--mask",
            "/vol/secret",
            "--mask",
            "/vol/masked-file",
            "--remount-ro",
            "/proc/sys",
            "--mask",
            "/proc/acpi",
            "--remount-ro",
            "/",
        ]);
        let script = r#"
            echo "uid=$(id -u)"
            echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
            try() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name=$?"; }
            try remount_bind mount -o remount,bind,rw /vol
            try remount_root mount -o remount,bind,rw /
            try remount_usr mount -o remount,bind,rw /usr
            try clear_nosuid mount -o remount,bind,suid /proc
            try umount_mask_dir umount /vol/secret
            try umount_mask_file umount /vol/masked-file
            try lazy_umount_mask umount -l /vol/secret
            try umount_proc_sys umount /proc/sys
            try umount_proc_mask umount /proc/acpi
            try remount_proc_sys mount -o remount,bind,rw /proc/sys
            try umount_vol umount -l /vol
            try move_vol mount --move /vol /tmp
            try new_proc sh -c 'mkdir -p /tmp/p && mount -t proc proc /tmp/p'
            try bind_proc sh -c 'mkdir -p /tmp/q && mount --bind /proc /tmp/q'
            try bind_vol sh -c 'mkdir -p /tmp/v && mount --bind /vol /tmp/v && cat /tmp/v/secret/key'
            try write_vol sh -c 'echo pwned > /vol/marker'
            try write_sys sh -c 'echo 1 > /proc/sys/kernel/sysrq'
            echo "secret=$(ls -A /vol/secret | wc -l)"
            echo "maskfile=$(wc -c </vol/masked-file)"
            "#;
        let out = sandbox(&flags, script).ok();
        assert_eq!(out.var("uid"), "0", "{out:#?}");
        let caps = u64::from_str_radix(&out.var("capeff"), 16).unwrap();
        assert_ne!(
            caps & (1 << 21),
            0,
            "the program holds CAP_SYS_ADMIN in its namespace: {out:#?}"
        );
        for what in [
            "remount_bind",
            "remount_root",
            "remount_usr",
            "clear_nosuid",
            "umount_mask_dir",
            "umount_mask_file",
            "lazy_umount_mask",
            "umount_proc_sys",
            "umount_proc_mask",
            "remount_proc_sys",
            "umount_vol",
            "move_vol",
            "new_proc",
            "bind_proc",
            "bind_vol",
            "write_vol",
            "write_sys",
        ] {
            assert_ne!(
                out.var(what),
                "0",
                "{what} succeeded inside the sandbox: {out:#?}"
            );
        }
        assert_eq!(out.var("secret"), "0", "the masked directory stays empty");
        assert_eq!(out.var("maskfile"), "0", "the masked file stays empty");
        // The host side, read without trusting the sandbox's word.
        assert_eq!(
            std::fs::read_to_string(host.join("marker")).unwrap(),
            "host\n"
        );
        assert_eq!(
            std::fs::read_to_string(host.join("secret/key")).unwrap(),
            "hidden\n"
        );
    }
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 3);
}

/// Escape class 8: the program gets stdin, stdout, stderr and the fds it
/// was given (--preserve-fds, LISTEN_FDS), never another fd saferoot
/// inherited (CVE-2024-21626 class). The caller's shell opens host files
/// and a host directory without close-on-exec, then execs saferoot.
#[test_log::test]
fn run_passes_only_stdio_and_the_fds_it_was_given() {
    if !common::require_root() {
        return;
    }
    let host = TempDir::new();
    std::fs::write(host.join("three"), "fd-three\n").unwrap();
    std::fs::write(host.join("four"), "fd-four\n").unwrap();
    let h = host.path().to_str().unwrap();
    // The shell looks at its own fd table with a builtin test, before any
    // redirection or command substitution adds fds of its own.
    let inner = r#"fds=""; for n in $(seq 0 1023); do [ -e /proc/$$/fd/$n ] && fds="$fds $n"; done; echo "fds=$fds"; cat 2>/dev/null <&3; cat 2>/dev/null <&4; ls /proc/self/fd/7/ >/dev/null 2>&1 && echo dir-seen; true"#;
    let case = |extra: &[&str], env: &[(&str, &str)]| -> Out {
        let mut args = s(&["run", "--unshare-pid", "--proc", "/proc"]);
        args.extend(base());
        args.extend(s(extra));
        args.extend(s(&["--", "/bin/sh", "-c", inner]));
        let quoted: Vec<String> = std::iter::once(EXE.to_string())
            .chain(args)
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let wrapper = format!(
            "exec 3<'{h}/three' 4<'{h}/four' 7<'{h}'; exec {}",
            quoted.join(" ")
        );
        let tmp = TempDir::new();
        let out = Command::new("/bin/sh")
            .args(["-c", &wrapper])
            .env("TMPDIR", tmp.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("start saferoot through sh");
        Out::from(out)
    };
    let out = case(&[], &[]).ok();
    assert_eq!(out.var("fds").trim(), "0 1 2", "{out:#?}");
    assert!(!out.stdout.contains("fd-three"), "{out:#?}");
    assert!(!out.stdout.contains("dir-seen"), "{out:#?}");

    let out = case(&["--preserve-fds", "1"], &[]).ok();
    assert_eq!(out.var("fds").trim(), "0 1 2 3", "{out:#?}");
    assert!(out.stdout.contains("fd-three"), "{out:#?}");
    assert!(!out.stdout.contains("fd-four"), "{out:#?}");

    let out = case(&[], &[("LISTEN_FDS", "2")]).ok();
    assert_eq!(out.var("fds").trim(), "0 1 2 3 4", "{out:#?}");
    assert!(out.stdout.contains("fd-four"), "{out:#?}");
    assert!(!out.stdout.contains("dir-seen"), "{out:#?}");
}

#[test_log::test]
fn run_unshare_net_has_only_loopback_and_it_is_up() {
    if !common::require_root() {
        return;
    }
    let out = sandbox(
        &with(&["--proc", "/proc", "--unshare-net"]),
        r#"echo "ifs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"; echo "net=$(readlink /proc/self/ns/net)"; if command -v ip >/dev/null; then echo "lo=$(ip -o link show lo)"; else echo "lo=UP (no ip)"; fi"#,
    )
    .ok();
    assert_eq!(out.var("ifs").trim(), "lo", "{out:#?}");
    assert_ne!(out.var("net"), host_ns("net"));
    assert!(out.var("lo").contains("UP"), "lo must be up: {out:#?}");
}

#[test_log::test]
fn run_unshare_pid_ipc_uts_and_all() {
    if !common::require_root() {
        return;
    }
    let script = r#"echo "comm1=$(cat /proc/1/comm)"; echo "pid=$$"; for n in pid ipc uts net cgroup user; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done"#;
    let out = sandbox(
        &with(&["--proc", "/proc", "--unshare-pid", "--unshare-ipc"]),
        script,
    )
    .ok();
    assert_eq!(out.var("comm1"), "saferoot", "{out:#?}");
    assert_ne!(out.var("pid"), "1");
    assert_ne!(out.var("ns_pid"), host_ns("pid"));
    assert_ne!(out.var("ns_ipc"), host_ns("ipc"));
    assert_eq!(out.var("ns_uts"), host_ns("uts"));

    let out = sandbox(&with(&["--proc", "/proc", "--unshare-all"]), script).ok();
    for ns in ["pid", "ipc", "uts", "net", "cgroup"] {
        assert_ne!(
            out.var(&format!("ns_{ns}")),
            host_ns(ns),
            "--unshare-all: {ns}"
        );
    }
    assert_eq!(
        out.var("ns_user"),
        host_ns("user"),
        "--unshare-all leaves the user namespace"
    );

    let out = sandbox(&with(&["--proc", "/proc"]), script).ok();
    for ns in ["pid", "ipc", "uts", "net", "cgroup", "user"] {
        assert_eq!(out.var(&format!("ns_{ns}")), host_ns(ns), "no flag: {ns}");
    }
}

#[test_log::test]
fn run_die_with_parent_kills_the_sandbox() {
    if !common::require_root() {
        return;
    }
    for die in [true, false] {
        let t = TempDir::new();
        let mut args = s(&["run"]);
        args.extend(with(&["--bind", t.path().to_str().unwrap(), "/out"]));
        if die {
            args.push("--die-with-parent".into());
        }
        args.extend(s(&[
            "--",
            "/bin/sh",
            "-c",
            "echo $$ >/out/pid.tmp && mv /out/pid.tmp /out/pid; exec sleep 1000",
        ]));
        // saferoot is SIGKILLed below and cannot remove its scratch root:
        // keep that in the test's own directory, which goes at the end.
        let scratch = TempDir::new();
        let mut child = Command::new(EXE)
            .args(&args)
            .env("TMPDIR", scratch.path())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let pid: i32 = loop {
            if let Ok(p) = std::fs::read_to_string(t.join("pid")) {
                break p.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the sandbox did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(running(pid));
        child.kill().unwrap(); // SIGKILL to saferoot itself
        child.wait().unwrap();
        let start = Instant::now();
        let limit = Duration::from_millis(if die { 10_000 } else { 500 });
        while running(pid) && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
        }
        if die {
            assert!(
                !running(pid),
                "--die-with-parent: the program outlived saferoot"
            );
        } else {
            assert!(
                running(pid),
                "without --die-with-parent the program goes on"
            );
            kill(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test_log::test]
fn run_new_session_calls_setsid() {
    if !common::require_root() {
        return;
    }
    let script = r#"echo "sid=$(cut -d' ' -f6 /proc/self/stat)"; echo "pid=$$""#;
    let out = sandbox(&with(&["--proc", "/proc", "--new-session"]), script).ok();
    assert_eq!(out.var("sid"), out.var("pid"), "{out:#?}");
    let out = sandbox(&with(&["--proc", "/proc"]), script).ok();
    assert_ne!(out.var("sid"), out.var("pid"), "{out:#?}");
}

#[test_log::test]
fn run_on_an_existing_rootfs_directory() {
    if !common::require_root() {
        return;
    }
    let r = TempDir::new();
    std::fs::write(r.join("marker"), "from-rootfs").unwrap();
    let out = sandbox(
        &with(&["--rootfs", r.path().to_str().unwrap(), "--proc", "/proc"]),
        r#"echo "marker=$(cat /marker)"; echo made >/created; echo "ls=$(ls -A / | tr '\n' ' ')""#,
    )
    .ok();
    assert_eq!(out.var("marker"), "from-rootfs", "{out:#?}");
    assert_eq!(
        std::fs::read_to_string(r.join("created")).unwrap(),
        "made\n"
    );
    assert!(out.var("ls").contains("marker"));
}

#[test_log::test]
fn run_strategies_and_entering_methods_give_the_same_tree() {
    if !common::require_root() {
        return;
    }
    let script = "cat /proc/self/mountinfo";
    let detached = saferoot::features::has(saferoot::Feature::DetachedMountTargets);
    let mut trees = Vec::new();
    for strategy in ["in-place", "detached", "auto"] {
        for enter in ["pivot-root", "move-root", "chroot"] {
            if strategy == "detached" && !detached {
                // Before Linux 6.15: refused by name, nothing run.
                let out = sandbox(
                    &with(&["--strategy", strategy, "--enter", enter]),
                    "echo ran",
                );
                assert_ne!(out.code, 0, "{out:#?}");
                assert!(
                    out.stderr.contains(
                        "detached-mount-targets is not supported by this kernel (needs Linux 6.15"
                    ),
                    "{out:#?}"
                );
                assert!(!out.stdout.contains("ran"), "{out:#?}");
                continue;
            }
            let out = sandbox(
                &with(&[
                    "--proc",
                    "/proc",
                    "--tmpfs",
                    "/t",
                    "--strategy",
                    strategy,
                    "--enter",
                    enter,
                ]),
                script,
            );
            assert_eq!(
                out.code, 0,
                "--strategy {strategy} --enter {enter}: {out:#?}"
            );
            // Mount point and filesystem type of every mount.
            let tree: BTreeSet<(String, String)> = mountinfo(&out.stdout)
                .into_iter()
                .map(|(point, (_, fs))| (point, fs))
                .collect();
            assert!(
                tree.contains(&("/t".to_string(), "tmpfs".to_string())),
                "{strategy}/{enter}: {tree:?}"
            );
            if enter != "chroot" {
                trees.push((strategy, enter, tree));
            }
        }
    }
    for (s, e, t) in &trees[1..] {
        assert_eq!(
            t, &trees[0].2,
            "{s}/{e} differs from {}/{}",
            trees[0].0, trees[0].1
        );
    }
}

// ---------------------------------------------------------------------------
// OCI bundles

fn write_config(bundle: impl AsRef<Path>, config: &Value) {
    let bundle = bundle.as_ref();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .unwrap();
}

/// Copies `/bin/sh` and the libraries `ldd` lists into `rootfs`, at the
/// same paths: a root with a working shell and nothing bound from the host.
fn copy_shell_into(rootfs: &Path) {
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let mut files = vec![(sh, PathBuf::from("/bin/sh"))];
    let ldd = Command::new("ldd").arg("/bin/sh").output().expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        for word in line.split_whitespace() {
            if word.starts_with('/') {
                files.push((PathBuf::from(word), PathBuf::from(word)));
            }
        }
    }
    for (src, dest) in files {
        let to = rootfs.join(dest.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&src, &to).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }
}

#[test_log::test]
fn run_bundle_built_from_host_binaries() {
    if !common::require_root() {
        return;
    }
    let b = TempDir::new();
    let rootfs = b.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    copy_shell_into(&rootfs);
    std::fs::write(rootfs.join("etc/secret"), "s3cret\n").unwrap();
    let script = r#"
        read -r h </proc/sys/kernel/hostname; echo "host=$h"
        echo "pwd=$(pwd)"
        echo "foo=$FOO"
        if read -r x </etc/secret; then echo "secret=$x"; else echo "secret=masked"; fi
        if echo x >/proc/sys/kernel/domainname; then echo procsys=rw; else echo procsys=ro; fi
        if echo x >/rootfile; then echo root=rw; else echo root=ro; fi
        echo x >/work/ok && echo work=rw
        echo "pid=$$"
        read -r c </proc/1/comm; echo "comm1=$c"
    "#;
    write_config(
        &b,
        &json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "bundle-box",
            "process": {
                "args": ["/bin/sh", "-c", script],
                "env": ["PATH=/bin", "FOO=bar"],
                "cwd": "/work",
                "user": {"uid": 0, "gid": 0}
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/work", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}],
                "maskedPaths": ["/etc/secret", "/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        }),
    );
    let out = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]).ok();
    assert_eq!(out.var("host"), "bundle-box", "{out:#?}");
    assert_eq!(out.var("pwd"), "/work");
    assert_eq!(out.var("foo"), "bar");
    assert_eq!(out.var("secret"), "masked");
    assert_eq!(out.var("procsys"), "ro");
    assert_eq!(out.var("root"), "ro");
    assert_eq!(out.var("work"), "rw");
    // As runc and crun run it, the container's process is pid 1.
    assert_eq!(out.var("pid"), "1");
    assert_eq!(out.var("comm1"), "sh");
    // --init puts saferoot's init there, and the process is another pid.
    let out = saferoot(&["run", "--init", "--bundle", b.path().to_str().unwrap()]).ok();
    assert_eq!(out.var("host"), "bundle-box", "{out:#?}");
    assert_ne!(out.var("pid"), "1");
    assert_eq!(out.var("comm1"), "saferoot");
    // A COMMAND replaces process.args.
    let out = saferoot(&[
        "run",
        "--bundle",
        b.path().to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "echo replaced=yes",
    ])
    .ok();
    assert_eq!(out.var("replaced"), "yes");
}

/// Whatever the bundle's `rootfsPropagation`, a run sends no mount or
/// unmount to the namespace it started in, even one whose every mount is
/// shared: the rootfs clone attached on a shared mount would show up there,
/// and the old root detached after pivot_root would take the caller's
/// mounts below a shared one with it.
#[test_log::test]
fn run_a_bundle_sends_no_mount_event_back_whatever_its_root_propagation() {
    if !common::require_root() {
        return;
    }
    let b = runnable_bundle();
    // The test's namespace is cut off first (a private copy, whatever the
    // caller's propagation: the guests of tests/kernels share theirs), and
    // everything in the copy is then shared with new peer groups of its
    // own: it stands for the host.
    let script = r#"
        set -e
        mount --make-rshared /
        mkdir -p "$W/rootside" "$W/other"
        mount -t tmpfs rootside "$W/rootside"
        mount -t tmpfs other "$W/other"
        mkdir "$W/other/inner"
        mount -t tmpfs inner "$W/other/inner"
        cp -a "$B" "$W/rootside/b"
        "$0" run --bundle "$W/rootside/b"
        echo "left=$(awk -v d="$W/rootside/b/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l)"
        echo "inner=$(awk -v d="$W/other/inner" '$5 == d' /proc/self/mountinfo | wc -l)"
        echo "shared=$(awk -v d="$W/other/inner" '$5 == d && / shared:/' /proc/self/mountinfo | wc -l)"
    "#;
    for prop in [
        None,
        Some("rslave"),
        Some("slave"),
        Some("rprivate"),
        Some("private"),
        Some("rshared"),
        Some("shared"),
        Some("runbindable"),
        Some("unbindable"),
    ] {
        let mut config = runnable_config();
        config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
        config["mounts"] = json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        ]);
        if let Some(p) = prop {
            config["linux"]["rootfsPropagation"] = json!(p);
        }
        write_config(&b, &config);
        let w = TempDir::new();
        let out = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
                EXE,
            ])
            .env("W", w.path())
            .env("B", b.path())
            .stdin(Stdio::null())
            .output()
            .map(Out::from)
            .expect("unshare(1)");
        assert_eq!(out.code, 0, "{prop:?}: {out:#?}");
        assert_eq!(out.var("ran"), "yes", "{prop:?}: {out:#?}");
        assert_eq!(out.var("left"), "0", "{prop:?}: mounts came back: {out:#?}");
        assert_eq!(
            out.var("inner"),
            "1",
            "{prop:?}: an unmount came back: {out:#?}"
        );
        assert_eq!(out.var("shared"), "1", "{prop:?}: {out:#?}");
    }
}

#[test_log::test]
fn run_bundle_with_a_user_namespace_and_process_user() {
    if !common::require_root() {
        return;
    }
    let b = TempDir::new();
    // The namespace's root (host uid 100000) must be able to reach it.
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let rootfs = b.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    // Owned by the namespace's root, as for any user-namespaced container.
    std::os::unix::fs::chown(&rootfs, Some(100000), Some(100000)).unwrap();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro", "nosuid", "nodev"]}),
    ];
    for d in ["/bin", "/lib", "/lib64", "/sbin"] {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() => {
                std::os::unix::fs::symlink(std::fs::read_link(d).unwrap(), rootfs.join(&d[1..]))
                    .unwrap();
            }
            Ok(m) if m.is_dir() => mounts.push(
                json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]}),
            ),
            _ => {}
        }
    }
    write_config(
        &b,
        &json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {
                "args": ["/bin/sh", "-c", "echo \"id=$(id -u):$(id -g):$(id -G)\"; echo \"map=$(tr -s ' ' </proc/self/uid_map)\"; echo \"nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)\"; echo \"pid=$$\""],
                "cwd": "/",
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
                "noNewPrivileges": true
            },
            "mounts": mounts,
            "linux": {
                "namespaces": [{"type": "user"}, {"type": "pid"}, {"type": "mount"}],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
            }
        }),
    );
    // The process as pid 1 (the namespace child makes the lock's user
    // namespace), and under saferoot's init (cloned into the namespaces,
    // which becomes root of the user namespace, whose maps leave out
    // saferoot's own uid, and writes the maps of the lock made in place).
    for extra in [&[][..], &["--init"]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend(["--bundle", b.path().to_str().unwrap()]);
        let out = saferoot(&args).ok();
        assert_eq!(out.var("id"), "1000:1000:1000 5", "{extra:?}: {out:#?}");
        // The program's namespace is the lock namespace, a child of the
        // namespace the bundle asked for that maps its ids to themselves.
        assert_eq!(out.var("map").trim(), "0 0 65536", "{extra:?}");
        assert_eq!(out.var("nnp"), "1", "{extra:?}");
        assert_eq!(out.var("pid"), if extra.is_empty() { "1" } else { "2" });
    }
}

// ---------------------------------------------------------------------------
// Bad input

#[test_log::test]
fn run_bad_flags_fail_clearly_and_leave_nothing_mounted() {
    if !common::require_root() {
        return;
    }
    let before = common::mount_points();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (with(&["--tmpfs", "tmp"]), 2, "--tmpfs tmp"),
        (
            with(&["--size", "1m", "--proc", "/proc"]),
            2,
            "--size 1m must be followed by --tmpfs",
        ),
        (with(&["--perms", "999", "--dir", "/d"]), 2, "--perms 999"),
        (
            with(&["--size", "1m"]),
            2,
            "--size 1m must be followed by --tmpfs",
        ),
        (
            with(&["--bind", "/nonexistent-saferoot", "/x"]),
            125,
            "--bind /nonexistent-saferoot /x",
        ),
        (with(&["--hostname", "h"]), 2, "--hostname"),
        // --init is for bundles only.
        (with(&["--init"]), 2, "--bundle"),
        (with(&["--uid", "5"]), 2, "--uid needs --unshare-user"),
        (with(&["--proc", "/proc/sys"]), 2, "--proc /proc/sys"),
        (with(&["--chdir", "rel"]), 2, "--chdir rel"),
        (
            with(&["--dir", "/d", "--bind", "/etc/hostname", "/d"]),
            125,
            "--bind /etc/hostname /d",
        ),
        (
            with(&["--rootfs", "/nonexistent-saferoot"]),
            125,
            "--rootfs /nonexistent-saferoot",
        ),
        (s(&["--bogus-flag"]), 2, "--bogus-flag"),
        (with(&["--strategy", "sideways"]), 2, "sideways"),
    ];
    for (flags, code, needle) in cases {
        let out = sandbox(&flags, "echo ran");
        assert_eq!(out.code, code, "{flags:?}: {out:#?}");
        assert!(
            out.stderr.contains(needle),
            "{flags:?}: stderr lacks {needle:?}: {out:#?}"
        );
        assert!(
            !out.stdout.contains("ran"),
            "{flags:?}: the program ran: {out:#?}"
        );
        assert!(!out.stderr.contains("panicked"), "{out:#?}");
    }
    let out = saferoot(&["run"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("no program to run"), "{out:#?}");
    let out = saferoot(&["run", "--", "/no/such/program"]);
    assert_eq!(out.code, 127, "{out:#?}");
    assert!(out.stderr.contains("/no/such/program"), "{out:#?}");
    let out = saferoot(&["run", "--", "/etc"]);
    assert_eq!(out.code, 126, "{out:#?}");
    let out = sandbox(&with(&["--unshare-user", "--proc", "/proc"]), "echo ran");
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("--proc /proc with --unshare-user needs --unshare-pid"),
        "{out:#?}"
    );
    assert_eq!(
        common::mount_points(),
        before,
        "the host's mount table changed"
    );
}

#[test_log::test]
fn run_bad_bundles_name_the_config_entry() {
    if !common::require_root() {
        return;
    }
    let before = common::mount_points();
    let good = || {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/sh", "-c", "echo ran"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    };
    type Mutate = fn(&mut Value);
    let cases: Vec<(Mutate, &str)> = vec![
        (
            |c| c["mounts"][0]["options"] = json!(["nosiud"]),
            "mounts[0]",
        ),
        (
            |c| c["mounts"][0]["destination"] = json!("proc"),
            "mounts[0].destination",
        ),
        (
            |c| c["mounts"][0]["destination"] = json!("/proc/sys/kernel"),
            "mounts[0]",
        ),
        (
            |c| c["linux"]["namespaces"][1]["path"] = json!("/proc/1/ns/pid"),
            "linux.namespaces[1].path",
        ),
        (|c| c["process"]["args"] = json!([]), "process.args"),
        (|c| c["hostname"] = json!("h"), "hostname"),
        (
            |c| c["linux"]["namespaces"] = json!([{"type": "user"}]),
            "linux.uidMappings",
        ),
        (
            |c| c["linux"]["maskedPaths"] = json!(["relative"]),
            "linux.maskedPaths[0]",
        ),
    ];
    for (mutate, needle) in cases {
        let b = TempDir::new();
        std::fs::create_dir(b.join("rootfs")).unwrap();
        let mut c = good();
        mutate(&mut c);
        write_config(&b, &c);
        let out = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
        assert_ne!(out.code, 0, "{c}: {out:#?}");
        assert!(out.stderr.contains(needle), "{needle}: {out:#?}");
        assert!(!out.stdout.contains("ran"));
    }
    let b = TempDir::new();
    std::fs::write(b.join("config.json"), "{ not json").unwrap();
    let out = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
    assert_eq!(out.code, 125, "{out:#?}");
    assert!(out.stderr.contains("config.json"), "{out:#?}");
    let out = saferoot(&[
        "run",
        "--bundle",
        b.path().to_str().unwrap(),
        "--tmpfs",
        "/x",
    ]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("--tmpfs /x cannot be combined with --bundle"),
        "{out:#?}"
    );
    assert_eq!(
        common::mount_points(),
        before,
        "the host's mount table changed"
    );
}

// ---------------------------------------------------------------------------
// --dry-run

#[test_log::test]
fn run_dry_run_prints_the_plan_and_runs_nothing() {
    if !common::require_root() {
        return;
    }
    let out = saferoot(&["run", "--dry-run", "--", "/bin/sh", "-c", "x"]).ok();
    for needle in [
        "DESTINATION",
        "/usr",
        "default: --ro-bind /usr /usr",
        "strategy",
        "pid, ipc, uts",
        "/proc/kcore",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {out:#?}");
    }

    let t = TempDir::new();
    let out = saferoot(&[
        "run",
        "--dry-run",
        "--json",
        "--bind",
        t.path().to_str().unwrap(),
        "/out",
        "--size",
        "2m",
        "--tmpfs",
        "/t",
        "--dir",
        "/t/d",
        "--mask",
        "/out/secret",
        "--unshare-pid",
        "--unshare-uts",
        "--hostname",
        "dry",
        "--strategy",
        "in-place",
        "--",
        "/bin/sh",
        "-c",
        "touch /out/marker",
    ])
    .ok();
    assert!(!t.join("marker").exists(), "--dry-run ran the program");
    let j = out.json();
    assert_eq!(j["root"]["kind"], "tmpfs");
    assert_eq!(j["strategy"], "in-place");
    assert_eq!(j["enter"], "pivot-root");
    assert_eq!(j["namespaces"], json!(["mount", "pid", "uts"]));
    assert_eq!(j["hostname"], "dry");
    assert_eq!(j["command"], json!(["/bin/sh", "-c", "touch /out/marker"]));
    let mounts = j["mounts"].as_array().unwrap();
    let find = |d: &str| {
        mounts
            .iter()
            .find(|m| m["destination"] == d)
            .unwrap_or_else(|| panic!("{d}: {j:#}"))
    };
    let bind = find("/out");
    assert_eq!(bind["type"], "bind");
    assert_eq!(bind["source"], t.path().to_str().unwrap());
    assert_eq!(
        bind["origin"],
        format!("--bind {} /out", t.path().display())
    );
    assert!(bind["attributes"].as_str().unwrap().contains("nosuid"));
    let tmpfs = find("/t");
    assert_eq!(tmpfs["type"], "tmpfs");
    assert!(tmpfs["data"]
        .as_array()
        .unwrap()
        .contains(&json!("size=2097152")));
    assert_eq!(find("/dev")["type"], "tmpfs");
    assert_eq!(j["plan"]["maskedPaths"], json!(["/out/secret"]));
    // After the /dev mounts and the bind and tmpfs before it.
    assert!(j["steps"][0]["after_mounts"].as_u64().unwrap() >= 3);
    assert_eq!(j["steps"][0]["kind"], "dir");
    assert!(j["plan"]["mounts"].as_array().unwrap().len() >= mounts.len());

    // The strategy auto resolves to what `features` reports.
    let auto = saferoot(&["run", "--dry-run", "--json", "--", "true"])
        .ok()
        .json();
    let feats = saferoot(&["features", "--json"]).ok().json();
    assert_eq!(auto["strategy"], feats["strategy"]);
    assert_eq!(auto["requested_strategy"], "auto");
}

// ---------------------------------------------------------------------------
// saferoot audit: static

/// A bundle that follows runc's defaults: no finding at all.
struct AuditBundle {
    dir: TempDir,
    config: Value,
}

impl AuditBundle {
    fn clean() -> AuditBundle {
        let dir = TempDir::new();
        let rootfs = dir.join("rootfs");
        for d in ["proc", "sys", "dev", "tmp", "data", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir(dir.join("data")).unwrap();
        std::fs::set_permissions(dir.join("data"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("uptime"), "1 1\n").unwrap();
        let config = json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
                {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "rprivate"]},
                {"destination": "/proc/uptime", "type": "bind", "source": "uptime", "options": ["bind", "ro"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                    "/sys/firmware", "/sys/devices/virtual/powercap"
                ],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        let b = AuditBundle { dir, config };
        b.write();
        b
    }

    fn write(&self) {
        write_config(self.dir.path(), &self.config);
    }

    fn rootfs(&self, p: &str) -> PathBuf {
        self.dir.join("rootfs").join(p)
    }

    fn push_mount(&mut self, m: Value) {
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self.write();
    }

    fn audit(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec![
            "audit",
            "--bundle",
            self.dir.path().to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = saferoot(&args);
        assert!(out.code == 0 || out.code == 1, "{out:#?}");
        (out.code, out.json())
    }
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// The finding of `kind` (the first), checked to have every field.
fn finding<'a>(report: &'a Value, kind: &str) -> &'a Value {
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in {report:#}"));
    for field in ["severity", "path", "message", "why", "fix"] {
        assert!(
            f[field].as_str().is_some_and(|s| !s.is_empty()),
            "{kind}: empty {field}: {f:#}"
        );
    }
    f
}

#[test_log::test]
fn audit_clean_bundle_has_no_findings() {
    if !common::require_root() {
        return;
    }
    let b = AuditBundle::clean();
    let (code, report) = b.audit(&["--fail-on", "info"]);
    assert_eq!(kinds(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["failed"], false);
    assert_eq!(report["target"]["kind"], "bundle");
    // The same through --rootfs and --config.
    let out = saferoot(&[
        "audit",
        "--rootfs",
        b.dir.join("rootfs").to_str().unwrap(),
        "--config",
        b.dir.join("config.json").to_str().unwrap(),
        "--json",
    ])
    .ok();
    assert_eq!(kinds(&out.json()), Vec::<String>::new());
    let out = saferoot(&["audit", "--bundle", b.dir.path().to_str().unwrap()]).ok();
    assert!(out.stdout.contains("no findings"), "{out:#?}");
}

type Hostile = (
    &'static str,
    &'static str,
    &'static str,
    fn(&mut AuditBundle),
);

#[test_log::test]
fn audit_each_finding_kind_has_a_bundle_that_triggers_it() {
    if !common::require_root() {
        return;
    }
    // (kind, severity, path, how to make the clean bundle hostile)
    let cases: Vec<Hostile> = vec![
        ("config-unparsable", "high", "config.json", |b| {
            std::fs::write(b.dir.join("config.json"), "{\"mounts\": [}").unwrap();
        }),
        ("config-invalid", "medium", "tmp2", |b| {
            b.push_mount(json!({"destination": "tmp2", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
        }),
        ("mount-option-invalid", "medium", "/data", |b| {
            b.config["mounts"][8]["options"] = json!(["rbind", "ro", "nosiud"]);
            b.write();
        }),
        ("rootfs-missing", "high", "", |b| {
            b.config["root"]["path"] = json!("no-such-rootfs");
            b.write();
        }),
        ("dest-dotdot-escape", "high", "/../../etc/x", |b| {
            b.push_mount(json!({"destination": "/../../etc/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
        }),
        ("proc-mount-not-allowed", "high", "/proc/sys/kernel", |b| {
            b.push_mount(json!({"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
        }),
        ("dest-through-symlink", "high", "/mnt/x", |b| {
            std::os::unix::fs::symlink("/etc", b.rootfs("mnt")).unwrap();
            b.push_mount(json!({"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
        }),
        ("bind-source-world-writable", "high", "/data", |b| {
            std::fs::set_permissions(b.dir.join("data"), std::fs::Permissions::from_mode(0o777))
                .unwrap();
        }),
        ("shared-propagation", "high", "/data", |b| {
            b.config["mounts"][8]["options"] = json!(["rbind", "ro", "rshared"]);
            b.write();
        }),
        ("missing-mount-flags", "medium", "/tmp", |b| {
            b.config["mounts"][7]["options"] = json!(["mode=1777"]);
            b.write();
        }),
        ("proc-sys-writable", "high", "/proc/sys", |b| {
            b.config["linux"]["readonlyPaths"] = json!(["/proc/bus", "/proc/fs"]);
            b.write();
        }),
        ("sysfs-writable", "high", "/sys", |b| {
            b.config["mounts"][5]["options"] = json!(["nosuid", "noexec", "nodev"]);
            b.write();
        }),
        ("masked-path-missing", "medium", "/proc/kcore", |b| {
            b.config["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p != "/proc/kcore");
            b.write();
        }),
        ("proc-sys-symlink", "critical", "/proc", |b| {
            std::fs::remove_dir(b.rootfs("proc")).unwrap();
            std::os::unix::fs::symlink("etc", b.rootfs("proc")).unwrap();
        }),
        ("dev-symlink", "critical", "/dev", |b| {
            std::fs::remove_dir(b.rootfs("dev")).unwrap();
            std::os::unix::fs::symlink("/tmp/elsewhere", b.rootfs("dev")).unwrap();
        }),
        ("devnull-not-chardev", "high", "/dev/null", |b| {
            b.config["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
            b.write();
            std::fs::write(b.rootfs("dev/null"), "not a device").unwrap();
        }),
    ];
    let clean_kinds = kinds(&AuditBundle::clean().audit(&[]).1);
    for (kind, severity, path, make_hostile) in cases {
        assert!(
            !clean_kinds.iter().any(|k| k == kind),
            "{kind} in the clean bundle"
        );
        let mut b = AuditBundle::clean();
        make_hostile(&mut b);
        let (code, report) = b.audit(&[]);
        let f = finding(&report, kind);
        assert_eq!(f["severity"], severity, "{kind}: {f:#}");
        if !path.is_empty() {
            assert_eq!(f["path"], path, "{kind}: {f:#}");
        }
        let high = ["high", "critical"].contains(&severity);
        assert_eq!(
            code,
            i32::from(high || report["failed"] == true),
            "{kind}: exit status"
        );
        assert_eq!(report["failed"], json!(code == 1));
    }
}

#[test_log::test]
fn audit_severities_follow_where_things_point() {
    if !common::require_root() {
        return;
    }
    // A symlink that stays inside the root is low...
    let mut b = AuditBundle::clean();
    std::fs::create_dir_all(b.rootfs("run")).unwrap();
    std::fs::create_dir_all(b.rootfs("var")).unwrap();
    std::os::unix::fs::symlink("../run", b.rootfs("var/run")).unwrap();
    b.push_mount(json!({"destination": "/var/run/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
    let (code, r) = b.audit(&[]);
    let f = finding(&r, "dest-through-symlink");
    assert_eq!(f["severity"], "low", "{f:#}");
    assert!(f["message"].as_str().unwrap().contains("/run/x"), "{f:#}");
    assert_eq!(code, 0);
    // ...one that leads into /proc is critical.
    let mut b = AuditBundle::clean();
    std::os::unix::fs::symlink("proc", b.rootfs("p")).unwrap();
    b.push_mount(json!({"destination": "/p/driver", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
    let (code, r) = b.audit(&[]);
    let f = finding(&r, "dest-through-symlink");
    assert_eq!(f["severity"], "critical", "{f:#}");
    assert_eq!(f["cve"], "CVE-2019-19921");
    assert_eq!(code, 1);
    // A sticky world-writable source is medium.
    let b = AuditBundle::clean();
    std::fs::set_permissions(b.dir.join("data"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (_, r) = b.audit(&[]);
    assert_eq!(
        finding(&r, "bind-source-world-writable")["severity"],
        "medium"
    );
    // A missing noexec alone is low.
    let mut b = AuditBundle::clean();
    b.config["mounts"][3]["options"] = json!(["nosuid", "nodev", "mode=1777"]);
    b.write();
    let (_, r) = b.audit(&[]);
    let f = finding(&r, "missing-mount-flags");
    assert_eq!(f["severity"], "low");
    assert_eq!(f["path"], "/dev/shm");
    // A real /dev/null (char 1:3) without a /dev mount is fine.
    let mut b = AuditBundle::clean();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    b.write();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        b.rootfs("dev/null").as_path(),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    let (_, r) = b.audit(&[]);
    assert!(
        !kinds(&r).contains(&"devnull-not-chardev".to_string()),
        "{r:#}"
    );
    // The rootfs's /dev/null does not matter under a fresh /dev.
    let b = AuditBundle::clean();
    std::fs::write(b.rootfs("dev/null"), "x").unwrap();
    assert!(!kinds(&b.audit(&[]).1).contains(&"devnull-not-chardev".to_string()));
    // rootfsPropagation shared.
    let mut b = AuditBundle::clean();
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.write();
    let (_, r) = b.audit(&[]);
    assert_eq!(finding(&r, "shared-propagation")["path"], "/");
}

#[test_log::test]
fn audit_exit_status_follows_fail_on() {
    if !common::require_root() {
        return;
    }
    let mut medium = AuditBundle::clean();
    medium.config["linux"]["maskedPaths"] = json!([]);
    medium.write();
    assert_eq!(
        medium.audit(&[]).0,
        0,
        "medium findings pass the default --fail-on high"
    );
    assert_eq!(medium.audit(&["--fail-on", "medium"]).0, 1);
    assert_eq!(medium.audit(&["--fail-on", "low"]).0, 1);
    assert_eq!(medium.audit(&["--fail-on", "critical"]).0, 0);

    let mut high = AuditBundle::clean();
    high.config["mounts"][5]["options"] = json!(["nosuid", "noexec", "nodev"]);
    high.write();
    assert_eq!(high.audit(&[]).0, 1);
    assert_eq!(high.audit(&["--fail-on", "critical"]).0, 0);

    let critical = AuditBundle::clean();
    std::fs::remove_dir(critical.rootfs("dev")).unwrap();
    std::os::unix::fs::symlink("/", critical.rootfs("dev")).unwrap();
    assert_eq!(critical.audit(&["--fail-on", "critical"]).0, 1);

    // The table names the findings too.
    let out = saferoot(&["audit", "--bundle", high.dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("SEVERITY") && out.stdout.contains("sysfs-writable"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("FAILED"), "{out:#?}");
}

#[test_log::test]
fn audit_usage_errors_exit_2() {
    if !common::require_root() {
        return;
    }
    for args in [
        vec!["audit"],
        vec!["audit", "--bundle", "/nonexistent-saferoot-bundle"],
        vec!["audit", "--rootfs", "/tmp"],
        vec!["audit", "--self", "--fail-on", "sometimes"],
        vec!["audit", "--self", "--pid", "1"],
    ] {
        let out = saferoot(&args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(!out.stderr.is_empty());
    }
}

// ---------------------------------------------------------------------------
// saferoot audit: live

fn attach_tmpfs(dir: &Path, attrs: saferoot::MountAttr) -> saferoot::AttachedMount {
    std::fs::create_dir_all(dir).unwrap();
    let target = saferoot::Root::open(dir).unwrap().handle().unwrap();
    saferoot::Mount::fs("tmpfs")
        .attrs(attrs)
        .mount()
        .unwrap()
        .attach(&target)
        .unwrap()
}

fn attach_fs(fs: &str, dir: &Path, attrs: saferoot::MountAttr) {
    std::fs::create_dir_all(dir).unwrap();
    let target = saferoot::Root::open(dir).unwrap().handle().unwrap();
    saferoot::Mount::fs(fs)
        .source(fs)
        .attrs(attrs)
        .mount()
        .unwrap()
        .attach(&target)
        .unwrap()
        .forget();
}

fn audit_self() -> Value {
    let out = saferoot(&["audit", "--self", "--json", "--fail-on", "critical"]);
    assert!(out.code == 0 || out.code == 1, "{out:#?}");
    out.json()
}

/// The kinds of the findings about paths under `dir`.
fn kinds_under(report: &Value, dir: &Path) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .starts_with(dir.to_str().unwrap())
        })
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test_log::test]
fn audit_self_reports_findings_as_json() {
    if !common::require_root() {
        return;
    }
    let r = audit_self();
    assert_eq!(r["target"]["kind"], "self");
    let findings = r["findings"].as_array().unwrap();
    for f in findings {
        for field in ["severity", "id", "path", "message", "why", "fix"] {
            assert!(f[field].is_string(), "{f:#}");
        }
    }
    // The host has /proc read-write: someone must say so.
    assert!(kinds(&r).iter().any(|k| k == "proc-sys-writable"), "{r:#}");
    assert!(r["counts"]["high"].as_u64().unwrap() >= 1);
}

#[test_log::test]
fn audit_live_finds_hostile_mounts_and_not_clean_ones() {
    use saferoot::MountAttr as A;
    let d = TempDir::new();
    let d2 = d.path().to_path_buf();
    let src = d.join("src");
    std::fs::create_dir(&src).unwrap();
    common::in_mount_ns(move || {
        let d = d2.as_path();
        // shared tmpfs
        let shared = attach_tmpfs(&d.join("shared"), A::NOSUID | A::NODEV);
        saferoot::mount::change_attrs(
            &shared,
            A::empty(),
            A::empty(),
            Some(saferoot::Propagation::Shared),
            saferoot::mount::Scope::Mount,
        )
        .unwrap();
        drop(shared);
        // a writable procfs, with an entry overmounted writable, one masked
        // read-only and an allowlisted one bound over
        attach_fs("proc", &d.join("proc"), A::NOSUID | A::NODEV | A::NOEXEC);
        let proc_root = saferoot::Root::open(d.join("proc")).unwrap();
        let over = |p: &str, attrs: A| {
            let h = proc_root.resolve(p).unwrap();
            saferoot::Mount::fs("tmpfs")
                .attrs(attrs)
                .mount()
                .unwrap()
                .attach(&h)
                .unwrap()
                .forget();
        };
        over("/fs", A::NOSUID | A::NODEV);
        over("/bus", A::RDONLY | A::NOSUID | A::NODEV);
        let files = attach_tmpfs(&d.join("files"), A::NOSUID | A::NODEV);
        drop(files);
        std::fs::write(d.join("files/uptime"), "1 1\n").unwrap();
        saferoot::Mount::clone_tree(d.join("files/uptime"), Scope::Mount)
            .unwrap()
            .attach(proc_root.resolve("/uptime").unwrap())
            .unwrap()
            .forget();
        drop(proc_root);
        attach_fs("sysfs", &d.join("sys"), A::NOSUID | A::NODEV | A::NOEXEC);
        attach_tmpfs(&d.join("t"), A::empty()).forget();
        let host = saferoot::Mount::clone_tree(d.join("src"), Scope::Mount).unwrap();
        std::fs::create_dir(d.join("host")).unwrap();
        host.attach(
            saferoot::Root::open(d.join("host"))
                .unwrap()
                .handle()
                .unwrap(),
        )
        .unwrap()
        .forget();

        let r = audit_self();
        let got = kinds_under(&r, d);
        let p = |x: &str| d.join(x).display().to_string();
        for (kind, path) in [
            ("shared-mount", p("shared")),
            ("proc-sys-writable", p("proc/sys")),
            ("proc-overmount", p("proc/fs")),
            ("sysfs-writable", p("sys")),
            ("writable-setuid-mount", p("t")),
            ("writable-device-mount", p("t")),
            ("host-filesystem", p("host")),
        ] {
            assert!(
                got.contains(&(kind.to_string(), path.clone())),
                "{kind} at {path} missing: {got:#?}"
            );
        }
        for quiet in [p("proc/bus"), p("proc/uptime"), p("shared")] {
            assert!(
                !got.iter()
                    .any(|(k, path)| *path == quiet && k != "shared-mount"),
                "{quiet} should raise nothing else: {got:#?}"
            );
        }
        // The same mount made a slave in a namespace of its own receives
        // mounts from outside.
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "unchanged", "--", "sh", "-c"])
            .arg(format!(
                "mount --make-slave {} && exec {EXE} audit --self --json",
                p("shared")
            ))
            .stdin(Stdio::null())
            .output()
            .expect("unshare(1)");
        let r: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        let got = kinds_under(&r, d);
        assert!(
            got.contains(&("slave-mount".to_string(), p("shared"))),
            "{got:#?}"
        );
    });
    let c = TempDir::new();
    let c2 = c.path().to_path_buf();
    common::in_mount_ns(move || {
        let d = c2.as_path();
        attach_tmpfs(&d.join("t"), A::NOSUID | A::NODEV).forget();
        attach_fs(
            "proc",
            &d.join("proc"),
            A::RDONLY | A::NOSUID | A::NODEV | A::NOEXEC,
        );
        attach_fs(
            "sysfs",
            &d.join("sys"),
            A::RDONLY | A::NOSUID | A::NODEV | A::NOEXEC,
        );
        attach_tmpfs(&d.join("ro"), A::RDONLY).forget();
        let r = audit_self();
        let got = kinds_under(&r, d);
        assert!(got.is_empty(), "clean mounts raised findings: {got:#?}");
    });
}

// ---------------------------------------------------------------------------
// saferoot mounts and features

fn targets(nodes: &Value, out: &mut BTreeSet<String>) {
    for n in nodes.as_array().unwrap() {
        out.insert(n["target"].as_str().unwrap().to_string());
        assert!(
            n["fstype"].is_string() && n["options"].is_string() && n["propagation"].is_string()
        );
        if let Some(c) = n.get("children") {
            targets(c, out);
        }
    }
}

#[test_log::test]
fn mounts_lists_root_and_proc() {
    if !common::require_root() {
        return;
    }
    let mut all = Vec::new();
    let statmount = saferoot::features::has(saferoot::Feature::Statmount)
        && saferoot::features::has(saferoot::Feature::Listmount);
    let backends: &[&str] = if statmount {
        &["auto", "statmount", "mountinfo"]
    } else {
        // Before Linux 6.8 the statmount backend is refused by name.
        let out = saferoot(&["mounts", "--json", "--backend", "statmount"]);
        assert_ne!(out.code, 0, "{out:#?}");
        assert!(
            out.stderr
                .contains("is not supported by this kernel (needs Linux 6.8"),
            "{out:#?}"
        );
        &["auto", "mountinfo"]
    };
    for backend in backends {
        let j = saferoot(&["mounts", "--json", "--backend", backend])
            .ok()
            .json();
        let mut t = BTreeSet::new();
        targets(&j["filesystems"], &mut t);
        assert!(t.contains("/") && t.contains("/proc"), "{backend}: {t:?}");
        assert_eq!(j["filesystems"][0]["target"], "/");
        all.push(t);
    }
    assert_eq!(
        all[all.len() - 2],
        all[all.len() - 1],
        "statmount (or auto) and mountinfo disagree"
    );
    let j = saferoot(&["mounts", "--json", "--pid", &std::process::id().to_string()])
        .ok()
        .json();
    let mut t = BTreeSet::new();
    targets(&j["filesystems"], &mut t);
    assert!(t.contains("/proc"));
    let out = saferoot(&["mounts"]).ok();
    assert!(out.stdout.starts_with("TARGET"), "{out:#?}");
    assert!(
        out.stdout.contains("├─/proc") || out.stdout.contains("└─/proc"),
        "{out:#?}"
    );
    // Inside a sandbox, the sandbox's tree.
    let mut args = s(&["run"]);
    args.extend(with(&[
        "--proc",
        "/proc",
        "--ro-bind",
        EXE,
        "/saferoot",
        "--tmpfs",
        "/only-here",
    ]));
    args.extend(s(&["--", "/saferoot", "mounts", "--json"]));
    let j = saferoot(&args).ok().json();
    let mut t = BTreeSet::new();
    targets(&j["filesystems"], &mut t);
    assert!(t.contains("/only-here") && !t.contains("/work"), "{t:?}");
    assert_eq!(saferoot(&["mounts", "--pid", "999999999"]).code, 2);
}

#[test_log::test]
fn features_lists_every_feature_and_the_strategy() {
    if !common::require_root() {
        return;
    }
    let j = saferoot(&["features", "--json"]).ok().json();
    let names: Vec<&str> = j["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = saferoot::Feature::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names, want);
    for (f, feat) in j["features"]
        .as_array()
        .unwrap()
        .iter()
        .zip(saferoot::Feature::ALL)
    {
        assert_eq!(f["min_kernel"], feat.min_kernel());
        assert_eq!(
            f["available"],
            saferoot::features::has(feat),
            "{}",
            feat.name()
        );
    }
    let strategy = saferoot::rootfs::Strategy::Auto.resolve().unwrap();
    assert_eq!(j["strategy"], strategy.name());
    // Turning a feature off shows, and changes the strategy.
    let out = saferoot_with(
        &["features", "--json"],
        Stdio::null(),
        &[("SAFEROOT_DISABLE_FEATURES", "detached-mount-targets")],
    )
    .ok();
    let j = out.json();
    let f = j["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "detached-mount-targets")
        .unwrap();
    assert_eq!(f["available"], false);
    assert_eq!(f["disabled"], true);
    assert_eq!(j["strategy"], "in-place");
    let out = saferoot(&["features"]).ok();
    assert!(
        out.stdout.contains("FEATURE") && out.stdout.contains("statmount"),
        "{out:#?}"
    );
}

// ---------------------------------------------------------------------------
// Issue 9: hygiene

/// Runs `saferoot ARGS` (stdin /dev/null, its own TMPDIR that must be empty
/// again afterwards) and fails the test when it does not end within
/// `limit`: for inputs that must be refused without blocking.
fn saferoot_within<S: AsRef<std::ffi::OsStr>>(args: &[S], limit: Duration) -> Out {
    let tmp = TempDir::new();
    let mut child = Command::new(EXE)
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start saferoot");
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let outs = std::thread::spawn(move || {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        std::io::Read::read_to_end(&mut so, &mut a).unwrap();
        std::io::Read::read_to_end(&mut se, &mut b).unwrap();
        (a, b)
    });
    let Some(st) = wait_timeout(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("saferoot did not end within {limit:?} (it blocked)");
    };
    let (stdout, stderr) = outs.join().unwrap();
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "saferoot left {left:?} in its TMPDIR");
    Out {
        code: status_code(st),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Every process whose parent chain leads to `pid` (from /proc).
fn descendants(pid: i32) -> BTreeSet<i32> {
    let mut parent_of = BTreeMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = stat.rsplit(')').next().unwrap_or("");
        if let Some(pp) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<i32>().ok())
        {
            parent_of.insert(p, pp);
        }
    }
    let mut out = BTreeSet::new();
    let mut grew = true;
    while grew {
        grew = false;
        for (&p, &pp) in &parent_of {
            if (pp == pid || out.contains(&pp)) && out.insert(p) {
                grew = true;
            }
        }
    }
    out
}

/// Waits up to `limit` for every process in `pids` to be gone.
/// The command name of process `pid` (empty once it is gone).
fn comm_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_default()
}

fn all_gone(pids: &BTreeSet<i32>, limit: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| running(*p)).collect();
        if left.is_empty() || start.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The hook that makes setup wait exists in debug builds only.
fn setup_delay_hook_available() -> bool {
    common::require(
        cfg!(debug_assertions),
        "SAFEROOT_TEST_SETUP_DELAY_MS is read by debug builds of saferoot only",
    )
}

/// Waits until saferoot (`pid`) has `n` descendants (the namespace child,
/// and the init of a pid namespace), then a moment more so that the setup
/// is inside the delay hook.
fn wait_for_setup(pid: i32, n: usize) -> BTreeSet<i32> {
    let start = Instant::now();
    loop {
        let d = descendants(pid);
        if d.len() >= n {
            std::thread::sleep(Duration::from_millis(300));
            return descendants(pid);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the sandbox's processes did not appear"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test_log::test]
fn hygiene_signal_during_setup_ends_it_cleanly() {
    if !common::require_root() || !setup_delay_hook_available() {
        return;
    }
    use rustix::process::Signal;
    let out = TempDir::new();
    // With a pid namespace and no user namespace (saferoot forks the init
    // directly into it), with both (saferoot clones the init into all of
    // them), with a user namespace only (the namespace child makes it,
    // sets up and becomes the program), and with neither (the namespace
    // child sets up and becomes the program).
    let pidns = with(&[
        "--bind",
        out.path().to_str().unwrap(),
        "/out",
        "--unshare-pid",
    ]);
    let userns = with(&[
        "--bind",
        out.path().to_str().unwrap(),
        "/out",
        "--unshare-user",
        "--unshare-pid",
    ]);
    let userns_only = with(&[
        "--bind",
        out.path().to_str().unwrap(),
        "/out",
        "--unshare-user",
    ]);
    let plain = with(&["--bind", out.path().to_str().unwrap(), "/out"]);
    for (flags, procs) in [(&pidns, 1), (&userns, 1), (&userns_only, 1), (&plain, 1)] {
        for (sig, n) in [(Signal::TERM, 15), (Signal::INT, 2), (Signal::HUP, 1)] {
            let tmp = TempDir::new();
            let mut args = s(&["run"]);
            args.extend(flags.iter().cloned());
            args.extend(s(&[
                "--",
                "/bin/sh",
                "-c",
                "touch /out/started; exec sleep 100",
            ]));
            let mut child = Command::new(EXE)
                .args(&args)
                .env("TMPDIR", tmp.path())
                .env("SAFEROOT_TEST_SETUP_DELAY_MS", "30000")
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let sandbox = wait_for_setup(pid, procs);
            if std::ptr::eq(flags, &pidns) || std::ptr::eq(flags, &userns) {
                // The init is saferoot's only child: no namespace child
                // between them.
                assert_eq!(sandbox.len(), 1, "{sandbox:?}");
            }
            let start = Instant::now();
            kill(pid, sig);
            let st = wait_timeout(&mut child, Duration::from_secs(10))
                .unwrap_or_else(|| panic!("signal {n} during setup: saferoot went on"));
            assert_eq!(status_code(st), 128 + n, "signal {n}");
            assert!(start.elapsed() < Duration::from_secs(10));
            let left = all_gone(&sandbox, Duration::from_secs(5));
            assert!(
                left.is_empty(),
                "signal {n}: {left:?} of {sandbox:?} still run"
            );
            assert!(
                !out.join("started").exists(),
                "signal {n}: the program ran although setup was ended"
            );
            let tmp_left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert!(
                tmp_left.is_empty(),
                "signal {n}: scratch left: {tmp_left:?}"
            );
        }
    }
}

/// Runs saferoot with `--die-with-parent` under a shell that the test
/// SIGKILLs once `ready` says so; returns saferoot's pid and the sandbox's
/// processes at that moment.
fn die_with_parent_case(
    tmp: &Path,
    flags: &[String],
    env: &[(&str, &str)],
    ready: impl Fn(i32) -> bool,
) {
    let mut args = s(&["run", "--die-with-parent"]);
    args.extend(flags.iter().cloned());
    args.extend(s(&[
        "--",
        "/bin/sh",
        "-c",
        "touch /out/started; exec sleep 100",
    ]));
    let mut parent = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" "$@" & echo "$!"; wait"#)
        .arg(EXE)
        .args(&args)
        .env("TMPDIR", tmp)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    let start = Instant::now();
    while !ready(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the sandbox did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut gone = descendants(pid);
    gone.insert(pid);
    assert!(gone.len() >= 2, "{gone:?}");
    parent.kill().unwrap(); // SIGKILL to saferoot's parent
    parent.wait().unwrap();
    let left = all_gone(&gone, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "{left:?} of {gone:?} outlived saferoot's parent"
    );
    let scratch: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
    assert!(
        scratch.is_empty(),
        "the scratch directory stayed: {scratch:?}"
    );
}

#[test_log::test]
fn hygiene_die_with_parent_leaves_no_scratch_directory() {
    if !common::require_root() || !setup_delay_hook_available() {
        return;
    }
    let out = TempDir::new();
    let flags = with(&[
        "--bind",
        out.path().to_str().unwrap(),
        "/out",
        "--unshare-pid",
    ]);
    // While the sandbox is set up.
    let tmp = TempDir::new();
    die_with_parent_case(
        tmp.path(),
        &flags,
        &[("SAFEROOT_TEST_SETUP_DELAY_MS", "30000")],
        // The init, forked directly into the pid namespace.
        |pid| !descendants(pid).is_empty(),
    );
    assert!(!out.join("started").exists());
    // While the program runs.
    let tmp = TempDir::new();
    die_with_parent_case(tmp.path(), &flags, &[], |_| out.join("started").exists());
}

/// A bundle whose program says `ran=yes`, with only a shell in its rootfs.
fn runnable_bundle() -> TempDir {
    let b = TempDir::new();
    copy_shell_into(&b.join("rootfs"));
    b
}

fn runnable_config() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/sh", "-c", "echo ran=yes"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "mounts": [],
        "linux": {"namespaces": [{"type": "mount"}]}
    })
}

/// `run --bundle` and `audit --bundle` of `b`, each within 20 s.
fn run_and_audit(b: &Path) -> (Out, Out) {
    let dir = b.to_str().unwrap();
    let limit = Duration::from_secs(20);
    (
        saferoot_within(&["run", "--bundle", dir], limit),
        saferoot_within(&["audit", "--bundle", dir, "--json"], limit),
    )
}

#[test_log::test]
fn hygiene_config_json_shapes_run_and_audit_agree() {
    if !common::require_root() {
        return;
    }
    let text = serde_json::to_vec_pretty(&runnable_config()).unwrap();
    let refused = |b: &TempDir, what: &str| {
        let (run, audit) = run_and_audit(b.path());
        assert_eq!(run.code, 125, "{what}: run: {run:#?}");
        assert_eq!(audit.code, 2, "{what}: audit: {audit:#?}");
        for o in [&run, &audit] {
            assert!(o.stderr.contains(what), "{what}: {o:#?}");
            assert!(o.stderr.contains("config.json"), "{what}: {o:#?}");
            assert!(!o.stdout.contains("ran=yes"));
        }
    };

    // Over 16 MiB (sparse): refused before reading.
    let b = runnable_bundle();
    let f = std::fs::File::create(b.join("config.json")).unwrap();
    f.set_len(17 << 20).unwrap();
    refused(&b, "at most 16777216 (16 MiB)");

    // A fifo: refused at once, never waited on.
    let b = runnable_bundle();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        b.join("config.json"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    refused(&b, "is a fifo");

    // A character device (1:3, /dev/null's numbers): never opened.
    let b = runnable_bundle();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        b.join("config.json"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    refused(&b, "is a character device");

    // Symlinks out of the bundle: refused by both.
    for target in ["../outside.json", "/etc/hostname"] {
        let b = runnable_bundle();
        std::fs::write(b.path().parent().unwrap().join("outside.json"), &text).ok();
        std::os::unix::fs::symlink(target, b.join("config.json")).unwrap();
        refused(&b, "outside the bundle");
    }

    // A symlink that stays inside: followed by both.
    let b = runnable_bundle();
    std::fs::create_dir(b.join("conf")).unwrap();
    std::fs::write(b.join("conf/real.json"), &text).unwrap();
    std::os::unix::fs::symlink("conf/real.json", b.join("config.json")).unwrap();
    let (run, audit) = run_and_audit(b.path());
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.var("ran"), "yes");
    assert!(audit.code == 0 || audit.code == 1, "{audit:#?}");
    assert_eq!(audit.json()["target"]["kind"], "bundle", "{audit:#?}");

    // audit --rootfs --config refuses a fifo without blocking too.
    let fifo = b.join("fifo.json");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let out = saferoot_within(
        &[
            "audit",
            "--rootfs",
            b.join("rootfs").to_str().unwrap(),
            "--config",
            fifo.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("is a fifo"), "{out:#?}");
}

#[test_log::test]
fn hygiene_nul_bytes_in_process_entries_are_refused_by_name() {
    if !common::require_root() {
        return;
    }
    let before = common::mount_points();
    type Mutate = fn(&mut Value);
    let cases: [(Mutate, &str); 4] = [
        (
            |c| c["process"]["args"] = json!(["/bin/sh", "a\u{0}b"]),
            "process.args[1]",
        ),
        (
            |c| c["process"]["args"] = json!(["/bin/s\u{0}h"]),
            "process.args[0]",
        ),
        (
            |c| c["process"]["env"] = json!(["A=1\u{0}B=2", "PATH=/bin"]),
            "process.env[0]",
        ),
        (|c| c["process"]["cwd"] = json!("/tmp\u{0}x"), "process.cwd"),
    ];
    for (mutate, entry) in cases {
        let b = runnable_bundle();
        let mut config = runnable_config();
        mutate(&mut config);
        write_config(b.path(), &config);
        let listing = |b: &TempDir| {
            let mut v: Vec<PathBuf> = Vec::new();
            let mut stack = vec![b.path().to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    if e.file_type().unwrap().is_dir() {
                        stack.push(e.path());
                    }
                    v.push(e.path());
                }
            }
            v.sort();
            v
        };
        let files = listing(&b);
        let out = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
        assert_eq!(out.code, 125, "{entry}: {out:#?}");
        assert!(out.stderr.contains(entry), "{entry}: {out:#?}");
        assert!(out.stderr.contains("NUL"), "{entry}: {out:#?}");
        assert!(!out.stderr.contains("cannot run"), "{entry}: {out:#?}");
        assert_eq!(listing(&b), files, "{entry}: the bundle changed");
    }
    assert_eq!(common::mount_points(), before);
}

#[test_log::test]
fn hygiene_size_perms_and_chdir_flags() {
    if !common::require_root() {
        return;
    }
    for bad in [
        "0",
        "0k",
        "99999999999999999999",
        "1e30",
        "16E",
        "9223372036854775808",
        "8589934592g",
        "101%",
    ] {
        let out = saferoot(&["run", "--size", bad, "--tmpfs", "/t", "--", "/bin/true"]);
        assert_eq!(out.code, 2, "--size {bad}: {out:#?}");
        assert!(
            out.stderr.starts_with(&format!("saferoot: --size {bad}:")),
            "--size {bad}: {out:#?}"
        );
    }
    for twice in [
        ["--size", "1m", "--size", "2m", "--tmpfs", "/t"],
        ["--perms", "700", "--perms", "711", "--dir", "/d"],
    ] {
        let mut args = vec!["run"];
        args.extend(twice);
        args.extend(["--", "/bin/true"]);
        let out = saferoot(&args);
        assert_eq!(out.code, 2, "{twice:?}: {out:#?}");
        assert!(out.stderr.contains("given twice"), "{twice:?}: {out:#?}");
    }
    // --perms is for the leaf; missing parents get 0755 less the group and
    // other bits the leaf has none of (bubblewrap's rule). A --size in k
    // is bytes.
    let out = sandbox(
        &with(&[
            "--perms", "700", "--dir", "/a/b/c", "--perms", "750", "--size", "64k", "--tmpfs",
            "/x/y/z", "--chdir", "/a", "--chdir", "/x",
        ]),
        r#"for d in /a /a/b /a/b/c /x /x/y /x/y/z; do echo "$d=$(stat -c %a $d)"; done
           echo "pwd=$(pwd)"
           echo "size=$(( $(stat -f -c %b /x/y/z) * $(stat -f -c %S /x/y/z) / 1024 ))""#,
    )
    .ok();
    for (d, mode) in [
        ("/a", "700"),
        ("/a/b", "700"),
        ("/a/b/c", "700"),
        ("/x", "755"),
        ("/x/y", "755"),
        ("/x/y/z", "750"),
    ] {
        assert_eq!(out.var(d), mode, "{d}: {out:#?}");
    }
    // --chdir twice: the last wins, with a warning (as bubblewrap).
    assert_eq!(out.var("pwd"), "/x");
    assert!(out.stderr.contains("only the last"), "{out:#?}");
    // The size the kernel took, in KiB (blocks times block size).
    assert_eq!(out.var("size"), "64", "{out:#?}");
}

/// Asserts that `out` holds no raw control byte and no byte that was not
/// UTF-8 (`Out` shows those as U+FFFD).
#[track_caller]
fn assert_terminal_safe(out: &Out) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|c| (c.is_control() && *c != '\n') || *c == '\u{fffd}')
            .collect();
        assert!(bad.is_empty(), "{name} has {bad:?}:\n{out:#?}");
    }
}

#[test_log::test]
fn hygiene_mount_tables_with_hostile_names_are_escaped() {
    if !common::require_root() {
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new();
    let name = std::ffi::OsStr::from_bytes(b"esc\x1b[31mred\nnl\xffbyte");
    let dir = t.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    let escaped = format!("{}/esc\\x1b[31mred\\nnl\\xffbyte", t.path().display());
    let mut holder = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs saferoot-esc-test "$D" && echo ready && exec sleep 60"#)
        .env("D", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = holder.id().to_string();
    let backends: &[&str] = if saferoot::features::has(saferoot::Feature::Statmount) {
        &["statmount", "mountinfo"]
    } else {
        &["mountinfo"]
    };
    for &backend in backends {
        let table = saferoot(&["mounts", "--pid", &pid, "--backend", backend]).ok();
        assert_terminal_safe(&table);
        assert!(table.stdout.contains(&escaped), "{backend}: {table:#?}");
        let j = saferoot(&["mounts", "--pid", &pid, "--backend", backend, "--json"]).ok();
        assert_terminal_safe(&j);
        let mut found = BTreeSet::new();
        targets(&j.json()["filesystems"], &mut found);
        assert!(found.contains(&escaped), "{backend}: {found:?}");
    }
    for json in [false, true] {
        let mut args = vec!["audit", "--pid", &pid, "--fail-on", "critical"];
        if json {
            args.push("--json");
        }
        // The namespace is a copy of the host's, which may well have
        // critical findings of its own (a devtmpfs /dev, writable cgroup
        // v1 hierarchies): the point here is how the names are shown.
        let out = saferoot(&args);
        assert!(out.code == 0 || out.code == 1, "{out:#?}");
        assert_terminal_safe(&out);
        assert!(
            out.stdout
                .contains(&escaped.replace('\\', if json { "\\\\" } else { "\\" })),
            "{out:#?}"
        );
        if json {
            out.json();
        }
    }
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test_log::test]
fn hygiene_config_strings_are_escaped_in_reports_and_errors() {
    if !common::require_root() {
        return;
    }
    let b = runnable_bundle();
    let mut config = runnable_config();
    config["mounts"] = json!([
        {"destination": "/proc/\u{1b}]0;pwned\u{7}x\u{1b}[2J", "type": "tmpfs", "source": "tmpfs\u{1b}[31m", "options": ["nosuid"]}
    ]);
    write_config(b.path(), &config);
    let dir = b.path().to_str().unwrap();
    let audit = saferoot(&["audit", "--bundle", dir]);
    assert_eq!(audit.code, 1, "{audit:#?}");
    assert_terminal_safe(&audit);
    assert!(
        audit.stdout.contains(r"/proc/\x1b]0;pwned\x07x\x1b[2J"),
        "{audit:#?}"
    );
    let audit = saferoot(&["audit", "--bundle", dir, "--json"]);
    assert_terminal_safe(&audit);
    let paths: Vec<String> = audit.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.contains(&r"/proc/\x1b]0;pwned\x07x\x1b[2J".to_string()),
        "{paths:?}"
    );
    let run = saferoot(&["run", "--bundle", dir]);
    assert_eq!(run.code, 125, "{run:#?}");
    assert_terminal_safe(&run);
    assert!(run.stderr.contains(r"\x1b"), "{run:#?}");
    // A flag's value in an error message.
    let run = saferoot(&["run", "--tmpfs", "/proc/\u{1b}[31mx", "--", "/bin/true"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert_terminal_safe(&run);
    assert!(run.stderr.contains(r"$'/proc/\x1b[31mx'"), "{run:#?}");
}

/// Runs `saferoot run FLAGS` under `script` (a new pseudo-terminal that is
/// the controlling terminal of saferoot's session), with a program that
/// reports its pid, session and controlling terminal (`/proc/PID/stat`
/// fields 1, 6 and 7).
fn under_a_terminal(extra: &[&str]) -> Out {
    let tmp = TempDir::new();
    let script = tmp.join("run.sh");
    let mut cmd = format!("exec {EXE} run");
    for a in with(&["--proc", "/proc"])
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
    {
        cmd += &format!(" '{a}'");
    }
    cmd += r#" -- /bin/sh -c 'read -r l </proc/$$/stat; set -- $l; echo "pid=$1"; echo "sid=$6"; echo "tty=$7"'"#;
    std::fs::write(&script, format!("#!/bin/sh\n{cmd}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let scratch = TempDir::new();
    let out = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(&script)
        .arg("/dev/null")
        .env("TMPDIR", scratch.path())
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    assert!(std::fs::read_dir(scratch.path()).unwrap().next().is_none());
    Out {
        code: status_code(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test_log::test]
fn hygiene_a_terminal_gets_a_new_session_by_default() {
    if !common::require_root() {
        return;
    }
    let out = under_a_terminal(&[]).ok();
    assert_eq!(out.var("sid"), out.var("pid"), "{out:#?}");
    assert_eq!(
        out.var("tty"),
        "0",
        "the program still has the terminal: {out:#?}"
    );
    let out = under_a_terminal(&["--no-new-session"]).ok();
    assert_ne!(out.var("sid"), out.var("pid"), "{out:#?}");
    assert_ne!(out.var("tty"), "0", "{out:#?}");
    // Without a terminal, nothing changes unless asked.
    let out = sandbox(
        &with(&["--proc", "/proc"]),
        r#"read -r l </proc/$$/stat; set -- $l; echo "pid=$1"; echo "sid=$6""#,
    )
    .ok();
    assert_ne!(out.var("sid"), out.var("pid"), "{out:#?}");
}

/// Ctrl-C on the terminal reaches a program in a session of its own: the
/// terminal's SIGINT goes to saferoot's process group only, and saferoot
/// passes it on to whatever of the sandbox is outside that group (the init
/// makes the new session), for each shape of the chain.
#[test_log::test]
fn hygiene_ctrl_c_on_the_terminal_reaches_a_program_in_a_new_session() {
    if !common::require_root() {
        return;
    }
    use std::io::{Read, Write};
    for extra in [
        &["--unshare-pid", "--proc", "/proc"][..],
        &["--unshare-user", "--unshare-pid", "--proc", "/proc"],
        &["--unshare-user"],
    ] {
        let tmp = TempDir::new();
        let script = tmp.join("run.sh");
        let mut cmd = format!("exec {EXE} run");
        for a in with(&[])
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            cmd += &format!(" '{a}'");
        }
        cmd += " -- /bin/sh -c 'echo ready; exec sleep 30'";
        std::fs::write(&script, format!("#!/bin/sh\n{cmd}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let scratch = TempDir::new();
        // A terminal's Ctrl-C with SIGINT at its default action, as in an
        // interactive shell: a test harness started as a background job
        // of a non-interactive shell inherits SIGINT ignored, and an
        // ignored SIGINT is (rightly) ignored by saferoot and the program
        // too. The child resets it before exec.
        let mut cmd = Command::new("script");
        // SAFETY: signal(2) is async-signal-safe, and setting a
        // disposition to SIG_DFL installs no handler; nothing else runs
        // between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::signal(libc::SIGINT, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .args(["-q", "-e", "-c"])
            .arg(&script)
            .arg("/dev/null")
            .env("TMPDIR", scratch.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let start = Instant::now();
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let mut buf = [0u8; 256];
            let n = stdout.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "{extra:?}: no start: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{extra:?}: no start"
            );
        }
        // What typing Ctrl-C sends.
        child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
        let st = wait_timeout(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("{extra:?}: Ctrl-C did not end the program")
        });
        // The shell's status: 128 + SIGINT.
        assert_eq!(status_code(st), 130, "{extra:?}");
    }
}

/// `--ro-bind / /`: the host tree, read-only all the way down, is the
/// root; later binds go on top of it, in the order given.
#[test_log::test]
fn run_bind_onto_root_makes_the_host_tree_the_root() {
    let host = TempDir::new();
    std::fs::write(host.path().join("marker"), "host marker\n").unwrap();
    let dir = host.path().display().to_string();
    let script = format!(
        r#"echo "marker=$(cat {dir}/marker)"
           echo written > {dir}/from-inside && echo "write=ok"
           if touch /usr/saferoot-probe 2>/dev/null; then echo "usr=rw"; else echo "usr=ro"; fi
           echo "root=$(awk '$5 == "/" {{print $6}}' /proc/self/mountinfo | cut -d, -f1)""#
    );
    let out = saferoot(&[
        "run",
        "--ro-bind",
        "/",
        "/",
        "--bind",
        &dir,
        &dir,
        "--",
        "/bin/sh",
        "-c",
        &script,
    ])
    .ok();
    assert_eq!(out.var("marker"), "host marker");
    assert_eq!(out.var("write"), "ok");
    assert_eq!(out.var("usr"), "ro", "{out:#?}");
    assert_eq!(out.var("root"), "ro", "{out:#?}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("from-inside")).unwrap(),
        "written\n"
    );
    assert!(!std::path::Path::new("/usr/saferoot-probe").exists());
    // --rootfs and a bind onto / both say what the root is.
    let out = saferoot(&["run", "--rootfs", &dir, "--bind", "/", "/", "--", "true"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("cannot be combined with --rootfs"),
        "{out:#?}"
    );
}

/// `--mount-ns`: the sandbox's namespace is made from a minimal one, so
/// host mounts it does not use never reach it, and the pin is reused.
#[test_log::test]
fn run_mount_ns_keeps_unused_host_mounts_out() {
    let dir = TempDir::new();
    let pin = dir.join("ns");
    let clutter = TempDir::new();
    // Everything happens in a mount namespace of the test's own (`unshare
    // -m`): the clutter, the pin, and three sandboxes.
    let inner = "echo \"clutter=$(grep -c ' clutter ' /proc/self/mountinfo)\"; \
                 echo \"mounts=$(wc -l < /proc/self/mountinfo)\"";
    let script = format!(
        r#"set -e
           for i in 1 2 3 4 5 6 7 8; do mkdir -p {c}/m$i; mount -t tmpfs clutter {c}/m$i; done
           "$0" run --mount-ns {pin} -- /bin/sh -c "$INNER" | sed 's/^/first_/'
           grep -q ' {pin} ' /proc/self/mountinfo && echo pinned=yes
           "$0" run --mount-ns {pin} -- /bin/sh -c "$INNER" | sed 's/^/again_/'
           "$0" run -- /bin/sh -c "$INNER" | sed 's/^/plain_/'
           # While setup is under way (the debug build's delay hook), the
           # sandbox's namespace holds no clutter with --mount-ns, and does
           # without (the control).
           peek() {{
               SAFEROOT_TEST_SETUP_DELAY_MS=3000 "$0" run "$@" -- /bin/true &
               top=$!; me=$(readlink /proc/self/ns/mnt); child=
               # Until the namespace child has a mount namespace of its own.
               for i in $(seq 1 400); do
                   child=$(cut -d' ' -f1 /proc/$top/task/$top/children 2>/dev/null)
                   if [ -n "$child" ] && [ "$(readlink /proc/$child/ns/mnt)" != "$me" ]; then break; fi
                   sleep 0.01
               done
               grep -c ' clutter ' /proc/$child/mountinfo || true
               wait $top
           }}
           echo "setup_minimal=$(peek --mount-ns {pin})"
           echo "setup_plain=$(peek)"
           # Eight at once, none of them finding the pin: one makes it, the
           # others use it.
           fails=0; pids=
           for i in 1 2 3 4 5 6 7 8; do "$0" run --mount-ns {pin}2 -- /bin/true & pids="$pids $!"; done
           for p in $pids; do wait $p || fails=$((fails + 1)); done
           echo "concurrent_failures=$fails""#,
        c = clutter.path().display(),
        pin = pin.display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script, EXE])
        .env("INNER", inner)
        .output()
        .map(Out::from)
        .expect("unshare")
        .ok();
    assert_eq!(out.var("pinned"), "yes", "{out:#?}");
    assert_eq!(out.var("first_clutter"), "0", "{out:#?}");
    assert_eq!(out.var("again_clutter"), "0", "{out:#?}");
    // Without it the clutter is there (beneath the root), and otherwise
    // the sandbox is the same.
    assert_eq!(out.var("plain_mounts"), out.var("again_mounts"), "{out:#?}");
    assert_eq!(out.var("setup_minimal"), "0", "{out:#?}");
    assert_eq!(out.var("setup_plain"), "8", "{out:#?}");
    assert_eq!(out.var("concurrent_failures"), "0", "{out:#?}");
    // A pin that is not a mount namespace is refused.
    let out = saferoot(&["run", "--mount-ns", "/proc/self/ns/net", "--", "true"]);
    assert_eq!(out.code, 125, "{out:#?}");
    assert!(out.stderr.contains("not a mount namespace"), "{out:#?}");
}

/// saferoot's private procfs stays mounted while any process holds the fd
/// `fsmount` gave for it, and the unmount after the last one waits for an
/// RCU grace period. The init saferoot starts itself gives up its copy at
/// once and says so; saferoot, idle while the init sets up, gives up the
/// last, and with it the rest of its procfs. So during setup the init
/// holds the procfs through one fd (the plain reopen lookups go through),
/// not two, and saferoot through none (read from outside: fstatfs of each
/// of their fds, during the setup delay of debug builds). Also when the
/// init said so before saferoot watched the setup pipe (a slow machine;
/// here a test hook delays saferoot).
#[test_log::test]
fn run_setup_holds_the_procfs_mount_nowhere() {
    if !common::require_root() || !setup_delay_hook_available() {
        return;
    }
    let procfs_fds = |p: i32| {
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .unwrap()
            .flatten()
            .filter(|e| {
                rustix::fs::statfs(e.path())
                    .is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC)
            })
            .count()
    };
    for watch_delay in ["0", "500"] {
        for extra in [
            &["--unshare-pid"][..],
            &["--unshare-user", "--unshare-pid", "--proc", "/proc"][..],
        ] {
            let tmp = TempDir::new();
            let mut args = s(&["run"]);
            args.extend(s(extra));
            args.extend(s(&["--", "true"]));
            let mut child = Command::new(EXE)
                .args(&args)
                .env("TMPDIR", tmp.path())
                .env("SAFEROOT_TEST_SETUP_DELAY_MS", "30000")
                .env("SAFEROOT_TEST_WATCH_DELAY_MS", watch_delay)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let chain = wait_for_setup(pid, 1);
            assert_eq!(chain.len(), 1, "{extra:?}: the init alone: {chain:?}");
            for (p, want) in std::iter::once((pid, 0)).chain(chain.iter().map(|c| (*c, 1))) {
                // saferoot may still be in the hook's delay: its count
                // goes down within it, or never (until the setup's 30 s
                // are over).
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut on_procfs = procfs_fds(p);
                while on_procfs != want && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                    on_procfs = procfs_fds(p);
                }
                assert_eq!(
                    on_procfs,
                    want,
                    "{extra:?}, saferoot's watch delayed {watch_delay} ms: process {p} ({}) \
                     holds the private procfs through {on_procfs} fds",
                    comm_of(p)
                );
            }
            kill(pid, rustix::process::Signal::TERM);
            wait_timeout(&mut child, Duration::from_secs(10)).expect("saferoot ended");
        }
    }
}

/// The procfs saferoot opens for a run shows the host's pid namespace (and
/// all of /proc, without the sandbox's masks): no process that stays in the
/// sandbox while the program runs may hold it.
/// With a pid namespace and no user namespace the init is saferoot's only
/// child (forked directly into the namespace); with a user namespace the
/// namespace child stays as a relay in front of the init. Neither holds an
/// fd on a procfs once the program runs (read from outside: fstatfs of each
/// of their fds).
#[test_log::test]
fn run_chain_holds_no_procfs_while_the_program_runs() {
    if !common::require_root() {
        return;
    }
    let out = TempDir::new();
    let bind = out.path().to_str().unwrap().to_string();
    for extra in [
        &["--unshare-pid"][..],
        // A user namespace needs a /proc to check stdin (/dev/null) after
        // entering the root.
        &["--unshare-user", "--unshare-pid", "--proc", "/proc"][..],
    ] {
        let _ = std::fs::remove_file(out.join("started"));
        let tmp = TempDir::new();
        let mut args = s(&["run"]);
        args.extend(with(&["--bind", &bind, "/out"]));
        args.extend(s(extra));
        args.extend(s(&[
            "--",
            "/bin/sh",
            "-c",
            "touch /out/started; exec sleep 100",
        ]));
        let mut child = Command::new(EXE)
            .args(&args)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = Instant::now();
        while !out.join("started").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{extra:?}: no start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The shell may still be waiting for `touch` (its own process where
        // touch is not a builtin, as in busybox): the chain is read once the
        // program is `sleep`, when the shell has reaped it.
        let chain = loop {
            let chain = descendants(pid);
            if chain.iter().any(|p| comm_of(*p) == "sleep") {
                break chain;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{extra:?}: the program did not become sleep: {chain:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The init and the program, with a user namespace too (saferoot
        // clones the init into it: no relay between them).
        assert_eq!(chain.len(), 2, "{extra:?}: {chain:?}");
        for p in &chain {
            if comm_of(*p) == "sleep" {
                continue;
            }
            for e in std::fs::read_dir(format!("/proc/{p}/fd"))
                .unwrap()
                .flatten()
            {
                let Ok(st) = rustix::fs::statfs(e.path()) else {
                    continue;
                };
                if st.f_type != rustix::fs::PROC_SUPER_MAGIC {
                    continue;
                }
                let names: Vec<String> = std::fs::read_dir(e.path())
                    .map(|d| {
                        d.flatten()
                            .map(|x| x.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                // pathrs keeps a procfs of the sandbox's own pid namespace
                // with subset=pid (only the sandbox's pids, no /proc/sys):
                // that one may stay. One that shows the test's own pid, or
                // has /proc/sys, is a view saferoot made outside.
                let me = std::process::id().to_string();
                assert!(
                    !names.iter().any(|n| *n == me || n == "sys"),
                    "{extra:?}: process {p} ({}) holds fd {:?} on a procfs of the caller's \
                     pid namespace or with /proc/sys ({names:?})",
                    comm_of(*p),
                    e.file_name(),
                );
            }
        }
        kill(pid, rustix::process::Signal::TERM);
        wait_timeout(&mut child, Duration::from_secs(10)).expect("saferoot ended");
        let _ = std::fs::remove_file(out.join("started"));
    }
}

/// The pipe inodes process `pid` holds: fd number, inode, and whether the
/// fd signals its owner when it becomes readable (`O_ASYNC` in fdinfo).
fn pipes_of(pid: i32) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let target = target.display().to_string();
        if !target.starts_with("pipe:") {
            continue;
        }
        let fd = e.file_name().to_string_lossy().into_owned();
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        out.push((fd, target, flags & libc::O_ASYNC as u32 != 0));
    }
    out
}

/// Once the program runs, nothing in saferoot waits for the end of
/// setup: it gave up the procfs mount when the init said so, and the setup
/// pipe stopped signalling then, so the program's exec (which closes the
/// pipe's last write end) does not wake saferoot on the CPU the program
/// starts on. Read from outside while the program runs: every pipe of
/// saferoot that still signals (`O_ASYNC`) has a writer left in the
/// sandbox (the init's status pipe); the setup pipe, whose writers are all
/// gone, does not signal. With and without a user namespace (the init
/// forked or cloned), and with a network namespace made beside the init
/// (the lock handed over).
#[test_log::test]
fn run_the_programs_exec_does_not_wake_saferoot() {
    if !common::require_root() {
        return;
    }
    let out = TempDir::new();
    let bind = out.path().to_str().unwrap().to_string();
    for extra in [
        &["--unshare-pid"][..],
        &["--unshare-user", "--unshare-pid", "--proc", "/proc"][..],
        &[
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--proc",
            "/proc",
        ][..],
    ] {
        let _ = std::fs::remove_file(out.join("started"));
        let tmp = TempDir::new();
        let mut args = s(&["run"]);
        args.extend(with(&["--bind", &bind, "/out"]));
        args.extend(s(extra));
        args.extend(s(&[
            "--",
            "/bin/sh",
            "-c",
            "touch /out/started; exec sleep 100",
        ]));
        let mut child = Command::new(EXE)
            .args(&args)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = Instant::now();
        let chain = loop {
            let chain = descendants(pid);
            if out.join("started").exists() && chain.iter().any(|p| comm_of(*p) == "sleep") {
                break chain;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{extra:?}: the program did not become sleep: {chain:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let held: BTreeSet<String> = chain
            .iter()
            .flat_map(|p| pipes_of(*p))
            .map(|(_, ino, _)| ino)
            .collect();
        let mine = pipes_of(pid);
        let signalling: Vec<_> = mine.iter().filter(|(_, _, a)| *a).collect();
        for (fd, ino, _) in &signalling {
            assert!(
                held.contains(ino),
                "{extra:?}: saferoot's fd {fd} ({ino}) signals when readable, and no process \
                 of the sandbox holds that pipe any more (its pipes: {mine:?})"
            );
        }
        kill(pid, rustix::process::Signal::TERM);
        wait_timeout(&mut child, Duration::from_secs(10)).expect("saferoot ended");
    }
}

/// A spec the library refuses (a mount inside /proc other than lxcfs's
/// paths) is refused before anything exists, also for a fresh root, whose
/// rootfs path (its scratch directory) is only known once that directory
/// is made: usage error 2 naming the flag, no scratch directory left in
/// TMPDIR (checked by `saferoot_with`), the host's mount table as it was.
#[test_log::test]
fn a_refused_spec_on_a_fresh_root_leaves_nothing() {
    if !common::require_root() {
        return;
    }
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for root in [&[][..], &["--ro-bind", "/", "/"][..]] {
        let mut args = s(&["run"]);
        args.extend(s(root));
        args.extend(s(&["--ro-bind", "/usr", "/proc/sys", "--", "true"]));
        let out = saferoot(&args);
        assert_eq!(out.code, 2, "{root:?}: {out:#?}");
        assert!(
            out.stderr.contains("--ro-bind /usr /proc/sys") && out.stderr.contains("lxcfs"),
            "{root:?}: {out:#?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        before
    );
}
