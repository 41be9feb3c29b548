//! The bubblewrap personality (`saferoot` run as `bwrap`, or `saferoot
//! bwrap ARGS...`), option group by option group, against real sandboxes:
//! each test runs the binary through a `bwrap` symlink and judges what the
//! program sees from inside (`/proc/self/mountinfo`, `/proc/self/status`,
//! `/proc/self/ns/*`, files) and what is left on the host.
//!
//! What is asserted is bubblewrap 0.11's behaviour unless a comment says
//! saferoot is stricter on purpose. To check the tests themselves against a
//! real bubblewrap, set `SAFEROOT_BWRAP_REFERENCE=/path/to/bwrap`: the
//! symlink then points at it, and the few checks of saferoot's own
//! guarantees or wording are left out (CI never sets it).
//!
//! The programs run inside are the host's (`--ro-bind /usr /usr` and the
//! merged-/usr symlinks), called with options that coreutils and busybox
//! both have, and shell builtins where the process itself is measured.
//! File descriptors are passed with a shell (`exec 3<file; exec bwrap
//! ...`), or through the shell's stdin when the test keeps the other end
//! of a pipe.

// The library's namespace harness, shared with its own integration tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

/// Path of a real bubblewrap to run the tests against instead (see the
/// module documentation).
const REFERENCE_ENV: &str = "SAFEROOT_BWRAP_REFERENCE";

/// The first line of bubblewrap's usage text, for argv\[0\] `bwrap`.
const USAGE: &str = "usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]\n";

/// A root with the host's programs and nothing else.
const MIN: &[&str] = &[
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/sbin",
    "/sbin",
];

/// [`MIN`] with a procfs.
const ROOT: &[&str] = &[
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/sbin",
    "/sbin",
    "--proc",
    "/proc",
];

/// Shell code printing the mount table, each line prefixed with `mi `
/// (read back by [`Out::mounts`]).
const MOUNTINFO: &str = r#"sed 's/^/mi /' /proc/self/mountinfo"#;

/// Shell code printing the shell's own capability sets, no_new_privs and
/// seccomp mode, with builtins only (no child process is measured).
const STATUS: &str = r#"while read -r l; do case "$l" in Cap*|NoNewPrivs*|Seccomp*) echo "$l";; esac; done </proc/self/status"#;

// capabilities(7)
const CAP_KILL: u32 = 5;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

/// The real bubblewrap the tests run against, if any.
fn reference() -> Option<PathBuf> {
    std::env::var_os(REFERENCE_ENV).map(PathBuf::from)
}

fn is_reference() -> bool {
    reference().is_some()
}

fn concat(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| s.to_string()))
        .collect()
}

/// What a run gave.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts exit status 0.
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "bwrap failed:\n{self:#?}");
        self
    }

    /// Asserts exit status 1, nothing on stdout and exactly `stderr`.
    #[track_caller]
    fn refused(&self, stderr: &str) {
        assert_eq!(
            (self.code, self.stdout.as_str(), self.stderr.as_str()),
            (1, "", stderr),
            "{self:#?}"
        );
    }

    /// Stdout's lines, without the mount table's.
    fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with("mi "))
            .collect()
    }

    /// The mount table printed by [`MOUNTINFO`].
    #[track_caller]
    fn mounts(&self) -> Vec<MountLine> {
        let v: Vec<MountLine> = self
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("mi "))
            .map(MountLine::parse)
            .collect();
        assert!(!v.is_empty(), "no mount table in the output:\n{self:#?}");
        v
    }

    /// The topmost mount at `point`.
    #[track_caller]
    fn mount(&self, point: &str) -> MountLine {
        self.mounts()
            .into_iter()
            .rev()
            .find(|m| m.point == point)
            .unwrap_or_else(|| panic!("nothing mounted at {point}:\n{self:#?}"))
    }

    fn has_mount(&self, point: &str) -> bool {
        self.mounts().iter().any(|m| m.point == point)
    }

    /// `Name:\tvalue` lines of /proc/self/status printed by [`STATUS`].
    #[track_caller]
    fn status(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in the output:\n{self:#?}"))
    }

    /// A capability mask printed by [`STATUS`].
    #[track_caller]
    fn caps(&self, key: &str) -> u64 {
        u64::from_str_radix(&self.status(key), 16)
            .unwrap_or_else(|e| panic!("{key} is not hex ({e}):\n{self:#?}"))
    }
}

fn exit_code(st: ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// One line of mountinfo.
#[derive(Debug, Clone)]
struct MountLine {
    point: String,
    opts: BTreeSet<String>,
    fstype: String,
    super_opts: BTreeSet<String>,
}

impl MountLine {
    #[track_caller]
    fn parse(line: &str) -> MountLine {
        let f: Vec<&str> = line.split(' ').collect();
        let sep = f
            .iter()
            .position(|x| *x == "-")
            .unwrap_or_else(|| panic!("bad mountinfo line {line:?}"));
        let set = |s: &str| s.split(',').map(str::to_string).collect();
        MountLine {
            point: f[4].replace("\\040", " "),
            opts: set(f[5]),
            fstype: f[sep + 1].to_string(),
            super_opts: set(f.get(sep + 3).copied().unwrap_or("")),
        }
    }

    #[track_caller]
    fn assert_opts(&self, has: &[&str], lacks: &[&str]) {
        for o in has {
            assert!(self.opts.contains(*o), "{} lacks {o}: {self:?}", self.point);
        }
        for o in lacks {
            assert!(!self.opts.contains(*o), "{} has {o}: {self:?}", self.point);
        }
    }
}

/// A `bwrap` symlink to the binary under test, a TMPDIR that must be
/// empty after every run, and a data directory (`$D` in the shell
/// wrappers and in the sandbox's environment).
struct Bwrap {
    dir: TempDir,
}

/// How to invoke the personality.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// Through a symlink named `bwrap`, argv\[0\] `bwrap`.
    Link,
    /// `saferoot bwrap ARGS...`.
    Sub,
}

impl Bwrap {
    #[track_caller]
    fn new() -> Bwrap {
        let dir = TempDir::new();
        for d in ["bin", "tmp", "data"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        let target = reference().unwrap_or_else(|| PathBuf::from(EXE));
        std::os::unix::fs::symlink(target, dir.join("bin/bwrap")).unwrap();
        Bwrap { dir }
    }

    fn exe(&self) -> PathBuf {
        self.dir.join("bin/bwrap")
    }

    /// The data directory.
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A path in the data directory, as a `&str` for argument lists (the
    /// string is leaked: tests are short-lived processes).
    fn d(&self, rel: &str) -> &'static str {
        let p = if rel.is_empty() {
            self.data()
        } else {
            self.data().join(rel)
        };
        Box::leak(p.to_str().unwrap().to_string().into_boxed_str())
    }

    #[track_caller]
    fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.data().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
    }

    #[track_caller]
    fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.data().join(rel)).unwrap();
    }

    #[track_caller]
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.data().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    fn env(&self, c: &mut Command) {
        c.env("TMPDIR", self.dir.join("tmp"))
            .env("D", self.data())
            .stdin(Stdio::null());
    }

    /// The personality with `args`, in `form`.
    fn command_as<S: AsRef<OsStr>>(&self, form: Form, args: &[S]) -> Command {
        let mut c = match (form, is_reference()) {
            (Form::Sub, false) => {
                let mut c = Command::new(EXE);
                c.arg("bwrap");
                c
            }
            _ => {
                let mut c = Command::new(self.exe());
                c.arg0("bwrap");
                c
            }
        };
        c.args(args);
        self.env(&mut c);
        c
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        self.command_as(Form::Link, args)
    }

    /// `sh -c 'SETUP; exec bwrap ARGS'`: SETUP opens the fds the options
    /// name (`$D` is the data directory).
    fn sh_command<S: AsRef<OsStr>>(&self, setup: &str, args: &[S]) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(format!("{setup}\nexec \"$@\""))
            .arg("sh")
            .arg(self.exe())
            .args(args);
        self.env(&mut c);
        c
    }

    /// Runs `c` to the end (at most a minute).
    #[track_caller]
    fn output(&self, mut c: Command) -> Out {
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bwrap");
        drop(c);
        let out = wait_output(child, Duration::from_secs(60));
        self.check_tmpdir();
        out
    }

    #[track_caller]
    fn check_tmpdir(&self) {
        let left: Vec<_> = std::fs::read_dir(self.dir.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "bwrap left {left:?} in its TMPDIR");
    }

    #[track_caller]
    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.output(self.command(args))
    }

    #[track_caller]
    fn run_as<S: AsRef<OsStr>>(&self, form: Form, args: &[S]) -> Out {
        self.output(self.command_as(form, args))
    }

    #[track_caller]
    fn sh<S: AsRef<OsStr>>(&self, setup: &str, args: &[S]) -> Out {
        self.output(self.sh_command(setup, args))
    }
}

/// Waits for `child` (whose stdout and stderr are piped) at most `limit`,
/// killing it and failing the test when it takes longer.
#[track_caller]
fn wait_output(mut child: Child, limit: Duration) -> Out {
    use std::io::Read;
    // Read both pipes on threads so that a chatty child cannot block.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = wait_timeout(&mut child, limit);
    let stdout = t1.join().unwrap();
    let stderr = t2.join().unwrap();
    let out = Out {
        code: 0,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    match status {
        Some(st) => Out {
            code: exit_code(st),
            ..out
        },
        None => panic!("bwrap did not finish within {limit:?}:\n{out:#?}"),
    }
}

/// The child's status, or `None` (and the child killed) after `limit`.
fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` every 10 ms for at most `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A capability set of the test process (`CapEff`, ...).
fn own_caps(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap()
        .trim();
    u64::from_str_radix(v, 16).unwrap()
}

/// The namespaces of the test process (`net` → `net:[4026531840]`).
fn own_namespaces() -> BTreeMap<String, String> {
    NAMESPACES
        .iter()
        .map(|n| {
            let l = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
            (n.to_string(), l.to_str().unwrap().to_string())
        })
        .collect()
}

const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];

/// Shell code printing `NAME LINK` for each of [`NAMESPACES`].
const PRINT_NAMESPACES: &str = r#"for n in cgroup ipc mnt net pid user uts; do echo "ns $n $(readlink /proc/self/ns/$n)"; done"#;

fn namespaces_in(out: &Out) -> BTreeMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ns "))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The inode number in a namespace link (`net:[4026531840]`).
fn ns_inode(link: &str) -> u64 {
    link.split_once(":[")
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a namespace link: {link:?}"))
}

/// Whether saferoot's probe finds `feature` usable here.
fn feature_available(feature: &str) -> bool {
    let out = Command::new(EXE)
        .args(["features", "--json"])
        .output()
        .expect("run saferoot features");
    assert!(out.status.success(), "saferoot features --json: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == feature)
        .unwrap_or_else(|| panic!("no feature {feature} in {v}"));
    f["available"] == true && f["disabled"] != true
}

// ---------------------------------------------------------------------------
// Classic BPF programs for --seccomp: `kill(pid, 0)` fails with the given
// errno, every other system call is allowed (and every call of another
// architecture, which these tests never make). The shell's `kill -0 $$`
// makes that call and prints the error's text, in dash and busybox alike
// (busybox's uname, say, ignores a failing uname(2)).

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "x86_64")]
const NR_KILL: u32 = 62;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(target_arch = "aarch64")]
const NR_KILL: u32 = 129;

const EPERM: u32 = 1;
const EACCES: u32 = 13;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn deny_kill_0(errno: u32) -> Vec<u8> {
    // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut v = code.to_ne_bytes().to_vec();
        v.extend([jt, jf]);
        v.extend(k.to_ne_bytes());
        v
    };
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    [
        insn(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        insn(JEQ_K, 0, 5, AUDIT_ARCH),
        insn(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JEQ_K, 0, 3, NR_KILL),
        insn(LD_W_ABS, 0, 0, 24), // the low half of seccomp_data.args[1] (little-endian)
        insn(JEQ_K, 0, 1, 0),
        insn(RET_K, 0, 0, RET_ERRNO | errno),
        insn(RET_K, 0, 0, RET_ALLOW),
    ]
    .concat()
}

// ---------------------------------------------------------------------------
// 1. The command line

#[test_log::test]
fn usage_help_version_and_unknown_options() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    for form in [Form::Link, Form::Sub] {
        let none = b.run_as::<&str>(form, &[]);
        assert_eq!(
            (none.code, none.stdout.as_str()),
            (1, ""),
            "{form:?}: {none:#?}"
        );
        assert!(none.stderr.starts_with(USAGE), "{form:?}: {none:#?}");

        let help = b.run_as(form, &["--help"]);
        assert_eq!(
            (help.code, help.stderr.as_str()),
            (0, ""),
            "{form:?}: {help:#?}"
        );
        assert!(help.stdout.starts_with(USAGE), "{form:?}: {help:#?}");
        assert!(help.stdout.contains("\n    --unshare-pid "), "{help:#?}");
        assert_eq!(help.stdout, none.stderr, "--help and the usage differ");

        b.run_as(form, &["--frob"])
            .refused("bwrap: Unknown option --frob\n");
        // Also after valid options, and before the program.
        b.run_as(form, &["--unshare-pid", "--frob", "true"])
            .refused("bwrap: Unknown option --frob\n");

        let v = b.run_as(form, &["--version"]);
        let want = if is_reference() {
            "bubblewrap 0.11.1\n".to_string()
        } else {
            format!(
                "bubblewrap 0.11.1 (saferoot {})\n",
                env!("CARGO_PKG_VERSION")
            )
        };
        assert_eq!(
            (v.code, v.stdout.as_str(), v.stderr.as_str()),
            (0, want.as_str(), "")
        );
    }
}

#[test_log::test]
fn the_program_starts_after_double_dash_or_at_the_first_non_option() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let print_args = r#"for a in "$@"; do echo "arg $a"; done"#;
    // Options before -- are bwrap's, everything after it the program's.
    let o = b
        .run(&concat(&[
            MIN,
            &["--setenv", "X", "set", "--", "sh", "-c"],
            &[&format!("echo X=$X; {print_args}")],
            &["sh", "--dev-bind", "/", "/"],
        ]))
        .ok();
    assert_eq!(o.lines(), ["X=set", "arg --dev-bind", "arg /", "arg /"]);
    // Without --, the first non-option is the program: options after it
    // are its arguments.
    let o = b
        .run(&concat(&[
            MIN,
            &["sh", "-c", print_args, "sh", "--tmpfs", "/x", "--"],
        ]))
        .ok();
    assert_eq!(o.lines(), ["arg --tmpfs", "arg /x", "arg --"]);
    // After --, a name starting with - is a program.
    b.run(&concat(&[MIN, &["--", "--no-such-program"]]))
        .refused("bwrap: execvp --no-such-program: No such file or directory\n");
}

#[test_log::test]
fn args_fd_splices_nul_separated_options_in_place() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("more", "--setenv\0FROM_FILE\0yes\0--dir\0/made-by-args\0");
    b.write("x", "--setenv\0X\0file\0");
    b.write("nested", "--args\x004\0");
    let o = b
        .sh(
            r#"exec 3<"$D/more""#,
            &concat(&[
                &["--args", "3"],
                MIN,
                &[
                    "sh",
                    "-c",
                    "echo $FROM_FILE; test -d /made-by-args && echo dir",
                ],
            ]),
        )
        .ok();
    assert_eq!(o.lines(), ["yes", "dir"]);
    // In place: what comes later wins.
    for (args, want) in [
        (&["--setenv", "X", "before", "--args", "3"][..], "file"),
        (&["--args", "3", "--setenv", "X", "after"][..], "after"),
    ] {
        let o = b
            .sh(
                r#"exec 3<"$D/x""#,
                &concat(&[args, MIN, &["sh", "-c", "echo $X"]]),
            )
            .ok();
        assert_eq!(o.lines(), [want], "{args:?}");
    }
    // The saferoot bwrap form reads them too.
    let mut c = Command::new("/bin/sh");
    let mut args = vec!["bwrap", "--args", "3"];
    args.extend(MIN);
    args.extend(["sh", "-c", "echo $X"]);
    if !is_reference() {
        c.arg("-c")
            .arg(r#"exec 3<"$D/x"; exec "$@""#)
            .arg("sh")
            .arg(EXE)
            .args(&args);
        b.env(&mut c);
        assert_eq!(b.output(c).ok().lines(), ["file"]);
    }
    // --args in an arguments file is refused.
    b.sh(
        r#"exec 3<"$D/nested" 4<"$D/x""#,
        &concat(&[&["--args", "3"], MIN, &["true"]]),
    )
    .refused("bwrap: --args not supported in arguments file\n");
    b.run(&["--args", "x", "true"])
        .refused("bwrap: Invalid fd: x\n");
}

#[test_log::test]
fn level_prefix_marks_errors_and_warnings() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let missing = "/nonexistent-saferoot-bwrap-test";
    b.run(&concat(&[
        &["--level-prefix"],
        MIN,
        &["--bind", missing, "/x", "true"],
    ]))
    .refused(&format!(
        "<3>bwrap: Can't find source path {missing}: No such file or directory\n"
    ));
    b.run(&["--level-prefix", "--frob"])
        .refused("<3>bwrap: Unknown option --frob\n");
    for (prefix, tag) in [(&["--level-prefix"][..], "<4>"), (&[][..], "")] {
        let o = b.run(&concat(&[
            prefix,
            &["--chdir", "/", "--chdir", "/"],
            MIN,
            &["sh", "-c", "pwd"],
        ]));
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (
                0,
                "/\n",
                format!("{tag}bwrap: Only the last --chdir option will take effect\n").as_str()
            ),
            "{o:#?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Exit status

#[test_log::test]
fn exit_status_is_the_programs_or_1_for_bwraps_own_failures() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    // No init; an init forked into a new pid namespace; one cloned into
    // new user and pid namespaces (which reports the status over a pipe
    // and ends after bwrap has returned, as bubblewrap's pid 1 does).
    for pidns in [&[][..], &["--unshare-pid"][..], &["--unshare-all"][..]] {
        let run = |script: &str| b.run(&concat(&[MIN, pidns, &["sh", "-c", script]]));
        assert_eq!(run("exit 7").code, 7, "{pidns:?}");
        assert_eq!(run("exit 0").code, 0, "{pidns:?}");
        assert_eq!(run("kill -KILL $$").code, 128 + 9, "{pidns:?}");
        assert_eq!(run("kill -TERM $$").code, 128 + 15, "{pidns:?}");
        b.run(&concat(&[MIN, pidns, &["no-such-program-xyz"]]))
            .refused("bwrap: execvp no-such-program-xyz: No such file or directory\n");
    }
    b.run(&concat(&[
        MIN,
        &["--bind", "/nonexistent-saferoot-bwrap-test", "/x", "true"],
    ]))
    .refused("bwrap: Can't find source path /nonexistent-saferoot-bwrap-test: No such file or directory\n");
}

// ---------------------------------------------------------------------------
// 3. Namespaces

#[test_log::test]
fn namespaces_are_new_exactly_when_asked() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let host = own_namespaces();
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["mnt"]),
        (&["--unshare-user"], &["mnt", "user"]),
        (&["--unshare-user-try"], &["mnt", "user"]),
        (&["--unshare-ipc"], &["mnt", "ipc"]),
        (&["--unshare-pid"], &["mnt", "pid"]),
        (&["--unshare-net"], &["mnt", "net"]),
        (&["--unshare-uts"], &["mnt", "uts"]),
        (&["--unshare-cgroup"], &["mnt", "cgroup"]),
        (&["--unshare-cgroup-try"], &["mnt", "cgroup"]),
        (&["--unshare-all"], NAMESPACES),
        (
            &["--unshare-all", "--share-net"],
            &["cgroup", "ipc", "mnt", "pid", "user", "uts"],
        ),
        (&["--unshare-net", "--unshare-ipc"], &["mnt", "net", "ipc"]),
    ];
    for (flags, new) in cases {
        let o = b
            .run(&concat(&[ROOT, flags, &["sh", "-c", PRINT_NAMESPACES]]))
            .ok();
        let inside = namespaces_in(&o);
        assert_eq!(inside.len(), NAMESPACES.len(), "{o:#?}");
        let differ: BTreeSet<&str> = NAMESPACES
            .iter()
            .copied()
            .filter(|n| inside[*n] != host[*n])
            .collect();
        assert_eq!(
            differ,
            new.iter().copied().collect(),
            "{flags:?}: inside {inside:?}, host {host:?}"
        );
    }
    // The host's own namespaces are untouched.
    assert_eq!(own_namespaces(), host);
}

#[test_log::test]
fn cgroup_namespace_has_its_own_root() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b
        .run(&concat(&[
            ROOT,
            &[
                "--unshare-cgroup",
                "sh",
                "-c",
                "grep '^0::' /proc/self/cgroup",
            ],
        ]))
        .ok();
    assert_eq!(o.lines(), ["0::/"]);
}

/// bubblewrap's program is pid 2 in a new pid namespace, under its init.
///
/// (This test found that saferoot's program was pid 3, 4 with
/// `--unshare-user`: the mount lock's helper process and helper threads
/// took pids in the new namespace. Both now happen outside it.)
#[test_log::test]
fn unshare_pid_makes_the_program_pid_2_under_an_init() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    for extra in [&[][..], &["--unshare-user"][..], &["--unshare-all"][..]] {
        let o = b
            .run(&concat(&[
                MIN,
                &["--unshare-pid", "--proc", "/proc"],
                extra,
                &["sh", "-c", "echo $$; cut -d' ' -f4 /proc/$$/stat"],
            ]))
            .ok();
        assert_eq!(o.lines(), ["2", "1"], "{extra:?}: pid and parent pid");
    }
}

#[test_log::test]
fn as_pid_1_makes_the_program_pid_1() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b
        .run(&concat(&[
            MIN,
            &["--unshare-pid", "--as-pid-1", "--proc", "/proc"],
            &["sh", "-c", "echo $$; read -r c < /proc/1/comm; echo $c"],
        ]))
        .ok();
    // The program is pid 1 itself: no init.
    assert_eq!(o.lines(), ["1", "sh"]);
    let o = b.run(&concat(&[
        MIN,
        &["--unshare-pid", "--as-pid-1", "sh", "-c", "exit 5"],
    ]));
    assert_eq!(o.code, 5, "{o:#?}");
}

#[test_log::test]
fn unshare_net_has_only_loopback_and_it_is_up() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let script = "cat /proc/net/dev; echo ==; cat /proc/net/fib_trie";
    let interfaces = |text: &str| -> BTreeSet<String> {
        text.lines()
            .skip(2)
            .take_while(|l| *l != "==")
            .filter_map(|l| l.split_once(':'))
            .map(|(name, _)| name.trim().to_string())
            .collect()
    };
    // Made by the namespace child (no pid namespace), by saferoot for an
    // init forked into a pid namespace, by a helper in the sandbox's user
    // namespace for an init cloned into it; and, with the test hook that
    // stops saferoot from making it, by those inits themselves.
    let flag_sets: &[&[&str]] = &[
        &["--unshare-net"],
        &["--unshare-net", "--unshare-pid"],
        &["--unshare-all"],
    ];
    for flags in flag_sets {
        for hook in ["", "off"] {
            let mut c = b.command(&concat(&[ROOT, flags, &["sh", "-c", script]]));
            if !hook.is_empty() {
                c.env("SAFEROOT_TEST_NET_AHEAD", hook);
            }
            let o = b.output(c).ok();
            let what = format!("{flags:?} SAFEROOT_TEST_NET_AHEAD={hook}");
            assert_eq!(
                interfaces(&o.stdout),
                BTreeSet::from(["lo".to_string()]),
                "{what}"
            );
            let fib = o.stdout.split_once("==\n").unwrap().1;
            assert!(
                fib.lines().any(|l| l.trim() == "|-- 127.0.0.1"),
                "{what}: loopback has no 127.0.0.1:\n{fib}"
            );
        }
    }
    // Without it, the host's interfaces.
    let host = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    let o = b.run(&concat(&[ROOT, &["sh", "-c", script]])).ok();
    assert_eq!(interfaces(&o.stdout), interfaces(&host));
}

#[test_log::test]
fn hostname_is_set_in_a_new_uts_namespace() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let o = b
        .run(&concat(&[
            ROOT,
            &["--unshare-uts", "--hostname", "sandbox-name"],
            &["cat", "/proc/sys/kernel/hostname"],
        ]))
        .ok();
    assert_eq!(o.stdout, "sandbox-name\n");
    let o = b
        .run(&concat(&[
            ROOT,
            &["--unshare-uts", "cat", "/proc/sys/kernel/hostname"],
        ]))
        .ok();
    assert_eq!(o.stdout, host);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

#[test_log::test]
fn uid_and_gid_in_a_user_namespace() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map";
    let maps = |o: &Out| -> Vec<Vec<u32>> {
        o.lines()[2..]
            .iter()
            .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
            .collect()
    };
    let o = b
        .run(&concat(&[
            ROOT,
            &["--unshare-user", "--uid", "1234", "--gid", "5678"],
            &["sh", "-c", script],
        ]))
        .ok();
    assert_eq!(o.lines()[..2], ["1234", "5678"]);
    // The caller (root) is mapped to the ids asked for, alone. saferoot
    // runs the program in a user namespace nested in that one (its mounts
    // are locked that way), whose maps, the ones the program reads, are
    // the identity of the ids inside.
    let outside = |id: u32| if is_reference() { 0 } else { id };
    assert_eq!(
        maps(&o),
        [vec![1234, outside(1234), 1], vec![5678, outside(5678), 1]]
    );
    let o = b
        .run(&concat(&[ROOT, &["--unshare-user", "sh", "-c", script]]))
        .ok();
    assert_eq!(o.lines()[..2], ["0", "0"]);
    assert_eq!(maps(&o), [vec![0, 0, 1], vec![0, 0, 1]]);
}

#[test_log::test]
fn namespace_options_that_need_another_are_refused() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--hostname", "x"],
            "bwrap: Specifying --hostname requires --unshare-uts\n",
        ),
        (
            &["--as-pid-1"],
            "bwrap: Specifying --as-pid-1 requires --unshare-pid\n",
        ),
        (
            &["--uid", "5"],
            "bwrap: Specifying --uid requires --unshare-user or --userns\n",
        ),
        (
            &["--gid", "5"],
            "bwrap: Specifying --gid requires --unshare-user or --userns\n",
        ),
        (
            &["--userns-block-fd", "0"],
            "bwrap: --userns-block-fd requires --unshare-user\n",
        ),
        (
            &["--disable-userns"],
            "bwrap: --disable-userns requires --unshare-user\n",
        ),
    ];
    for (flags, msg) in cases {
        let o = b.run(&concat(&[MIN, flags, &["touch", "/proc/ran"]]));
        o.refused(msg);
    }
}

// ---------------------------------------------------------------------------
// 4. Mounts

#[test_log::test]
fn mounts_and_files_are_made_in_command_line_order() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("src/marker", "m\n");
    let o = b
        .run(&concat(&[
            ROOT,
            // A bind through a symlink made earlier lands on its target.
            &["--dir", "/tmp/dir", "--symlink", "dir", "/tmp/link"],
            &["--bind", b.d("src"), "/tmp/link"],
            // A directory in a tmpfs made before it...
            &["--tmpfs", "/a", "--dir", "/a/b"],
            // ...and one hidden by a tmpfs made after it.
            &["--dir", "/c/d", "--tmpfs", "/c"],
            &["sh", "-c"],
            &[&format!(
                "readlink /tmp/link; cat /tmp/dir/marker; test -d /a/b && echo a/b; \
                 test -e /c/d || echo no-c/d; {MOUNTINFO}"
            )],
        ]))
        .ok();
    assert_eq!(o.lines(), ["dir", "m", "a/b", "no-c/d"]);
    assert!(o.has_mount("/tmp/dir"));
    assert!(!o.has_mount("/tmp/link"));
    assert_eq!(o.mount("/a").fstype, "tmpfs");
    assert_eq!(o.mount("/c").fstype, "tmpfs");
}

#[test_log::test]
fn bind_flavours_set_read_only_nosuid_and_nodev() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("src/marker", "m\n");
    let src = b.d("src");
    let missing = "/nonexistent-saferoot-bwrap-test";
    let o = b
        .run(&concat(&[
            ROOT,
            &[
                "--bind",
                src,
                "/rw",
                "--ro-bind",
                src,
                "/ro",
                "--dev-bind",
                src,
                "/dv",
            ],
            &["--bind-try", src, "/rwt", "--ro-bind-try", src, "/rot"],
            &["--dev-bind-try", src, "/dvt"],
            &[
                "--bind-try",
                missing,
                "/n1",
                "--ro-bind-try",
                missing,
                "/n2",
            ],
            &["--dev-bind-try", missing, "/n3"],
            &["sh", "-c"],
            &[&format!(
                "for p in /n1 /n2 /n3; do test -e $p && echo $p exists; done; \
                 echo w > /rw/written && echo rw-written; \
                 (echo w > /ro/other) 2>/dev/null && echo ro-written; \
                 cat /ro/written /rot/marker; {MOUNTINFO}"
            )],
        ]))
        .ok();
    assert_eq!(o.lines(), ["rw-written", "w", "m"]);
    for p in ["/rw", "/rwt"] {
        o.mount(p).assert_opts(&["rw", "nosuid", "nodev"], &["ro"]);
    }
    for p in ["/ro", "/rot"] {
        o.mount(p).assert_opts(&["ro", "nosuid", "nodev"], &["rw"]);
    }
    for p in ["/dv", "/dvt"] {
        o.mount(p).assert_opts(&["rw", "nosuid"], &["nodev", "ro"]);
    }
    for p in ["/n1", "/n2", "/n3"] {
        assert!(!o.has_mount(p), "{p}");
    }
    assert_eq!(b.read("src/written"), "w\n");
    assert!(!b.data().join("src/other").exists());
}

#[test_log::test]
fn binding_the_host_root_makes_it_the_sandbox_root() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("marker", "host\n");
    // Read-only, with every submount ($D may be on one, /proc is).
    let o = b
        .run(&[
            "--ro-bind",
            "/",
            "/",
            "sh",
            "-c",
            &format!(
                r#"cat "$D/marker"; (echo x > "$D/new") 2>/dev/null && echo written; {MOUNTINFO}"#
            ),
        ])
        .ok();
    assert_eq!(o.lines(), ["host"]);
    o.mount("/").assert_opts(&["ro"], &["rw"]);
    assert_eq!(o.mount("/proc").fstype, "proc");
    assert!(!b.data().join("new").exists());
    // Writable: what the program writes is on the host.
    let o = b
        .run(&[
            "--bind",
            "/",
            "/",
            "sh",
            "-c",
            &format!(r#"echo inside > "$D/new"; {MOUNTINFO}"#),
        ])
        .ok();
    o.mount("/").assert_opts(&["rw"], &["ro"]);
    assert_eq!(b.read("new"), "inside\n");
}

#[test_log::test]
fn remount_ro_changes_that_mount_only() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.mkdir("a/sub");
    b.mkdir("b");
    let o = b
        .run(&concat(&[
            ROOT,
            &["--bind", b.d("a"), "/m", "--bind", b.d("b"), "/m/sub"],
            &["--remount-ro", "/m", "sh", "-c"],
            &[&format!(
                "(echo x > /m/x) 2>/dev/null && echo m-written; \
                 echo y > /m/sub/y && echo sub-written; {MOUNTINFO}"
            )],
        ]))
        .ok();
    assert_eq!(o.lines(), ["sub-written"]);
    o.mount("/m").assert_opts(&["ro"], &["rw"]);
    o.mount("/m/sub").assert_opts(&["rw"], &["ro"]);
    assert_eq!(b.read("b/y"), "y\n");
    // Not a mount point: refused.
    let o = b.run(&concat(&[
        ROOT,
        &["--dir", "/plain", "--remount-ro", "/plain", "true"],
    ]));
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:#?}");
    let prefix = "bwrap: Can't remount readonly on ";
    if is_reference() {
        assert!(o.stderr.starts_with(prefix), "{o:#?}");
    } else {
        assert_eq!(o.stderr, format!("{prefix}/plain: not a mount point\n"));
    }
}

#[test_log::test]
fn tmpfs_takes_perms_and_size() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b
        .run(&concat(&[
            ROOT,
            &["--dev", "/dev", "--tmpfs", "/t1"],
            &["--perms", "0700", "--size", "1048576", "--tmpfs", "/t2"],
            &["--perms", "01777", "--tmpfs", "/t3", "sh", "-c"],
            &[&format!(
                "stat -c '%n %a' /t1 /t2 /t3; \
                 head -c 2097152 /dev/zero > /t1/big && echo t1-big; \
                 head -c 2097152 /dev/zero > /t2/big 2>/dev/null || echo t2-full; {MOUNTINFO}"
            )],
        ]))
        .ok();
    assert_eq!(
        o.lines(),
        ["/t1 755", "/t2 700", "/t3 1777", "t1-big", "t2-full"]
    );
    // The kernel shows a tmpfs's mode unless it is its default, 1777.
    for (p, mode) in [
        ("/t1", "mode=755"),
        ("/t2", "mode=700"),
        ("/t3", "mode=1777"),
    ] {
        let m = o.mount(p);
        assert_eq!(m.fstype, "tmpfs");
        m.assert_opts(&["rw", "nosuid", "nodev"], &["ro"]);
        let modes: Vec<&String> = m
            .super_opts
            .iter()
            .filter(|s| s.starts_with("mode="))
            .collect();
        assert!(
            modes == [mode] || (mode == "mode=1777" && modes.is_empty()),
            "{m:?}"
        );
    }
    assert!(o.mount("/t2").super_opts.contains("size=1024k"));
    assert!(!o
        .mount("/t1")
        .super_opts
        .iter()
        .any(|s| s.starts_with("size=")));
}

#[test_log::test]
fn proc_belongs_to_the_sandbox_pid_namespace() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let me = std::process::id().to_string();
    let script = format!("ls /proc | grep '^[0-9]*$'; echo ==; {MOUNTINFO}");
    let pids = |o: &Out| -> BTreeSet<String> {
        o.lines()
            .into_iter()
            .take_while(|l| *l != "==")
            .map(str::to_string)
            .collect()
    };
    let o = b
        .run(&concat(&[
            MIN,
            &["--unshare-pid", "--proc", "/proc", "sh", "-c", &script],
        ]))
        .ok();
    let inside = pids(&o);
    assert!(inside.contains("1"), "{inside:?}");
    assert!(!inside.contains(&me), "the host's pids show: {inside:?}");
    let m = o.mount("/proc");
    assert_eq!(m.fstype, "proc");
    m.assert_opts(&["rw", "nosuid", "nodev", "noexec"], &[]);
    // Without a pid namespace, the caller's.
    let o = b
        .run(&concat(&[MIN, &["--proc", "/proc", "sh", "-c", &script]]))
        .ok();
    assert!(pids(&o).contains(&me), "{o:#?}");
    assert_eq!(o.mount("/proc").fstype, "proc");
}

/// bubblewrap mounts a procfs wherever --proc says. saferoot keeps its
/// one policy (docs/bwrap.md): a procfs goes on the sandbox's /proc only
/// (elsewhere it would be a second view of the process table that nothing
/// masks), and the refusal names the option and the rule, before anything
/// runs.
#[test_log::test]
fn proc_elsewhere_than_proc_is_refused() {
    if !common::require_root() {
        return;
    }
    if is_reference() {
        return;
    }
    let b = Bwrap::new();
    let o = b.run(&concat(&[
        MIN,
        &["--unshare-pid", "--proc", "/proc2", "sh", "-c", "echo ran"],
    ]));
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stdout.is_empty(), "{o:#?}");
    assert!(o.stderr.starts_with("bwrap: --proc /proc2: "), "{o:#?}");
    assert!(o.stderr.contains("procfs"), "{o:#?}");
}

#[test_log::test]
fn dev_has_bubblewraps_nodes_and_links() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let script = format!(
        r#"cd /dev || exit 1
for f in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' $f; done
for f in ptmx fd stdin stdout stderr core; do echo "$f -> $(readlink $f)"; done
stat -c '%n %F' pts shm; ls pts
echo x > null && echo null-written
head -c 3 zero | wc -c
(echo x > full) 2>/dev/null || echo full-is-full
{MOUNTINFO}"#
    );
    let o = b
        .run(&concat(&[ROOT, &["--dev", "/dev", "sh", "-c", &script]]))
        .ok();
    let lines: Vec<String> = o.lines().iter().map(|l| l.trim().to_string()).collect();
    assert_eq!(
        lines,
        [
            "null character special file 1:3 666",
            "zero character special file 1:5 666",
            "full character special file 1:7 666",
            "random character special file 1:8 666",
            "urandom character special file 1:9 666",
            "tty character special file 5:0 666",
            "ptmx -> pts/ptmx",
            "fd -> /proc/self/fd",
            "stdin -> /proc/self/fd/0",
            "stdout -> /proc/self/fd/1",
            "stderr -> /proc/self/fd/2",
            "core -> /proc/kcore",
            "pts directory",
            "shm directory",
            "ptmx",
            "null-written",
            "3",
            "full-is-full",
        ]
    );
    assert_eq!(o.mount("/dev").fstype, "tmpfs");
    let pts = o.mount("/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    pts.assert_opts(&["nosuid", "noexec"], &[]);
}

#[test_log::test]
fn mqueue_is_a_new_mqueue_filesystem() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b
        .run(&concat(&[
            ROOT,
            &["--mqueue", "/mq", "sh", "-c", MOUNTINFO],
        ]))
        .ok();
    assert_eq!(o.mount("/mq").fstype, "mqueue");
}

#[test_log::test]
fn perms_and_chmod_set_modes() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("content", "x");
    let o = b
        .sh(
            r#"exec 3<"$D/content" 4<"$D/content""#,
            &concat(&[
                ROOT,
                &["--dir", "/d1", "--perms", "0750", "--dir", "/d2"],
                &["--perms", "01741", "--dir", "/d3"],
                &["--dir", "/d4", "--chmod", "0701", "/d4"],
                &["--tmpfs", "/t", "--chmod", "01777", "/t"],
                &[
                    "--file", "3", "/f1", "--perms", "0600", "--file", "4", "/f2",
                ],
                // --perms is for the next option only.
                &["--dir", "/d5"],
                &["sh", "-c", "stat -c '%n %a' /d1 /d2 /d3 /d4 /t /f1 /f2 /d5"],
            ]),
        )
        .ok();
    assert_eq!(
        o.lines(),
        ["/d1 755", "/d2 750", "/d3 1741", "/d4 701", "/t 1777", "/f1 666", "/f2 600", "/d5 755"]
    );
}

/// bubblewrap's words for a step that fails, which scripts match: the
/// reason as C's strerror gives it, the mode `--chmod` could not set, and
/// `create file` for --file but `create file at` for --bind-data.
#[test_log::test]
fn step_failures_are_reported_in_bubblewraps_words() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("content", "x");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--chmod", "0755", "/nonexistent"],
            "Can't chmod 0755 /nonexistent: No such file or directory",
        ),
        (
            &["--chmod", "1777", "/nonexistent"],
            "Can't chmod 01777 /nonexistent: No such file or directory",
        ),
        (
            &["--chmod", "0", "/nonexistent"],
            "Can't chmod 0 /nonexistent: No such file or directory",
        ),
        (
            &["--dir", "/usr/new-dir"],
            "Can't mkdir /usr/new-dir: Read-only file system",
        ),
        (
            &["--file", "3", "/usr/new-file"],
            "Can't create file /usr/new-file: Read-only file system",
        ),
        (
            &["--bind-data", "3", "/usr/new-file"],
            "Can't create file at /usr/new-file: Read-only file system",
        ),
        (
            &["--symlink", "a", "/x", "--symlink", "b", "/x"],
            "Can't make symlink at /x: existing destination is a",
        ),
    ];
    for (opts, msg) in cases {
        b.sh(r#"exec 3<"$D/content""#, &concat(&[MIN, opts, &["true"]]))
            .refused(&format!("bwrap: {msg}\n"));
    }
    // The same symlink twice is fine.
    let o = b
        .run(&concat(&[
            MIN,
            &[
                "--symlink",
                "a",
                "/x",
                "--symlink",
                "a",
                "/x",
                "readlink",
                "/x",
            ],
        ]))
        .ok();
    assert_eq!(o.stdout, "a\n");
}

#[test_log::test]
fn parents_of_a_private_entry_are_private_too() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("content", "x");
    let o = b
        .sh(
            r#"exec 3<"$D/content""#,
            &concat(&[
                ROOT,
                &["--dir", "/p0/x"],
                &["--perms", "0700", "--dir", "/p1/a/x"],
                &["--perms", "0750", "--dir", "/p2/x"],
                &["--perms", "0705", "--dir", "/p3/x"],
                &["--perms", "0644", "--dir", "/p4/x"],
                &["--perms", "0000", "--dir", "/p5/x"],
                &["--perms", "0640", "--file", "3", "/p6/f"],
                &[
                    "sh",
                    "-c",
                    "stat -c '%n %a' /p0 /p1 /p1/a /p1/a/x /p2 /p3 /p4 /p5 /p6",
                ],
            ]),
        )
        .ok();
    assert_eq!(
        o.lines(),
        [
            "/p0 755",
            "/p1 700",
            "/p1/a 700",
            "/p1/a/x 700",
            "/p2 750",
            "/p3 705",
            "/p4 755",
            "/p5 700",
            "/p6 750"
        ]
    );
}

#[test_log::test]
fn mount_points_made_on_the_host_are_0444_files_and_0755_directories() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.mkdir("h");
    b.mkdir("srcdir");
    b.write("f", "content\n");
    b.run(&concat(&[
        ROOT,
        &["--bind", b.d("h"), "/h"],
        &[
            "--ro-bind",
            b.d("f"),
            "/h/newfile",
            "--bind",
            b.d("srcdir"),
            "/h/newdir",
        ],
        &["cat", "/h/newfile"],
    ]))
    .ok();
    let f = std::fs::symlink_metadata(b.data().join("h/newfile")).unwrap();
    assert!(f.file_type().is_file());
    assert_eq!((f.mode() & 0o7777, f.len()), (0o444, 0));
    let d = std::fs::symlink_metadata(b.data().join("h/newdir")).unwrap();
    assert!(d.file_type().is_dir());
    assert_eq!(d.mode() & 0o7777, 0o755);
    assert_eq!(b.read("f"), "content\n");
}

/// bubblewrap makes the missing parents of a mount point or symlink 0700
/// (options without --perms count as mode 0, and a private entry gets
/// private parents), in the sandbox's root and on the host alike.
///
/// (This test found saferoot making them 0755.)
#[test_log::test]
fn parents_of_mount_points_and_symlinks_are_0700() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.mkdir("h");
    b.write("f", "content\n");
    let o = b
        .run(&concat(&[
            ROOT,
            &[
                "--ro-bind",
                b.d("f"),
                "/x/y/file",
                "--symlink",
                "t",
                "/s/t/link",
            ],
            &[
                "--bind",
                b.d("h"),
                "/h",
                "--ro-bind",
                b.d("f"),
                "/h/p/q/file",
            ],
            &["sh", "-c", "stat -c '%n %a' /x /x/y /s /s/t /h/p /h/p/q"],
        ]))
        .ok();
    assert_eq!(
        o.lines(),
        [
            "/x 700",
            "/x/y 700",
            "/s 700",
            "/s/t 700",
            "/h/p 700",
            "/h/p/q 700"
        ]
    );
    let mode = |rel: &str| std::fs::metadata(b.data().join(rel)).unwrap().mode() & 0o7777;
    assert_eq!((mode("h/p"), mode("h/p/q")), (0o700, 0o700));
}

// ---------------------------------------------------------------------------
// 5. Files from file descriptors

#[test_log::test]
fn file_copies_an_fd_into_a_new_file() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("content", "hello\n");
    let o = b
        .sh(
            r#"exec 3<"$D/content" 4<"$D/content""#,
            &concat(&[
                ROOT,
                &[
                    "--file", "3", "/f1", "--perms", "0640", "--file", "4", "/etc/f2",
                ],
                &["sh", "-c"],
                &[&format!(
                    "stat -c '%n %a %s %F' /f1 /etc/f2; cat /f1 /etc/f2; {MOUNTINFO}"
                )],
            ]),
        )
        .ok();
    assert_eq!(
        o.lines(),
        [
            "/f1 666 6 regular file",
            "/etc/f2 640 6 regular file",
            "hello",
            "hello"
        ]
    );
    // Files in the root, not mounts.
    assert!(!o.has_mount("/f1") && !o.has_mount("/etc/f2"));
}

/// --bind-data and --ro-bind-data: a private copy of the fd's content,
/// bind-mounted (read-only or not) at the destination.
///
/// (This test found, under tests/kernels/run.sh on 6.1 and 6.12, that
/// cloning the file out of a detached tmpfs fails there with EINVAL;
/// saferoot now stacks the tmpfs for a moment to clone from it.)
#[test_log::test]
fn bind_data_mounts_a_private_copy() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("content", "hello\n");
    let o = b
        .sh(
            r#"exec 3<"$D/content" 4<"$D/content" 5<"$D/content""#,
            &concat(&[
                ROOT,
                &["--bind-data", "3", "/bd", "--ro-bind-data", "4", "/rbd"],
                &["--perms", "0644", "--ro-bind-data", "5", "/rbd2"],
                &["sh", "-c"],
                &[&format!(
                    "stat -c '%n %a' /bd /rbd /rbd2; echo more >> /bd && cat /bd; \
                     (echo x >> /rbd) 2>/dev/null || echo rbd-read-only; cat /rbd /rbd2; {MOUNTINFO}"
                )],
            ]),
        )
        .ok();
    assert_eq!(
        o.lines(),
        [
            "/bd 600",
            "/rbd 600",
            "/rbd2 644",
            "hello",
            "more",
            "rbd-read-only",
            "hello",
            "hello"
        ]
    );
    o.mount("/bd")
        .assert_opts(&["rw", "nosuid", "nodev"], &["ro"]);
    o.mount("/rbd")
        .assert_opts(&["ro", "nosuid", "nodev"], &["rw"]);
    o.mount("/rbd2").assert_opts(&["ro"], &["rw"]);
    // The source is a copy.
    assert_eq!(b.read("content"), "hello\n");
}

#[test_log::test]
fn bind_fd_mounts_an_open_directory() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("dir/marker", "m\n");
    let o = b
        .sh(
            r#"exec 3<"$D/dir" 4<"$D/dir""#,
            &concat(&[
                ROOT,
                &["--bind-fd", "3", "/bfd", "--ro-bind-fd", "4", "/rbfd"],
                &["sh", "-c"],
                &[&format!(
                    "cat /bfd/marker /rbfd/marker; echo w > /bfd/w && echo bfd-written; \
                     (echo w > /rbfd/w2) 2>/dev/null || echo rbfd-read-only; {MOUNTINFO}"
                )],
            ]),
        )
        .ok();
    assert_eq!(o.lines(), ["m", "m", "bfd-written", "rbfd-read-only"]);
    o.mount("/bfd")
        .assert_opts(&["rw", "nosuid", "nodev"], &["ro"]);
    o.mount("/rbfd")
        .assert_opts(&["ro", "nosuid", "nodev"], &["rw"]);
    assert_eq!(b.read("dir/w"), "w\n");
    assert!(!b.data().join("dir/w2").exists());
}

// ---------------------------------------------------------------------------
// 6. Overlays

fn overlay_layers(b: &Bwrap) {
    b.write("l1/f", "l1\n");
    b.write("l1/only1", "1\n");
    b.write("l2/f", "l2\n");
    b.mkdir("up");
    b.mkdir("wk");
}

#[test_log::test]
fn overlay_stacks_the_last_source_on_top_and_writes_to_upper() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    overlay_layers(&b);
    let o = b
        .run(&concat(&[
            ROOT,
            &["--overlay-src", b.d("l1"), "--overlay-src", b.d("l2")],
            &["--overlay", b.d("up"), b.d("wk"), "/ov", "sh", "-c"],
            &[&format!(
                "cat /ov/f /ov/only1; echo new > /ov/new; echo changed > /ov/only1; {MOUNTINFO}"
            )],
        ]))
        .ok();
    assert_eq!(o.lines(), ["l2", "1"]);
    let m = o.mount("/ov");
    assert_eq!(m.fstype, "overlay");
    m.assert_opts(&["rw"], &["ro"]);
    assert_eq!(b.read("up/new"), "new\n");
    assert_eq!(b.read("up/only1"), "changed\n");
    assert_eq!(b.read("l1/only1"), "1\n");
    assert!(!b.data().join("l1/new").exists() && !b.data().join("l2/new").exists());
}

#[test_log::test]
fn ro_overlay_is_read_only() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    overlay_layers(&b);
    let o = b
        .run(&concat(&[
            ROOT,
            &["--overlay-src", b.d("l1"), "--overlay-src", b.d("l2")],
            &["--ro-overlay", "/ro", "sh", "-c"],
            &[&format!(
                "cat /ro/f /ro/only1; (echo x > /ro/x) 2>/dev/null || echo read-only; {MOUNTINFO}"
            )],
        ]))
        .ok();
    assert_eq!(o.lines(), ["l2", "1", "read-only"]);
    let m = o.mount("/ro");
    assert_eq!(m.fstype, "overlay");
    // Read-only as a mount (saferoot) or as an overlay without an upper
    // layer (bubblewrap's `ro` option of the filesystem).
    assert!(
        m.opts.contains("ro") || m.super_opts.contains("ro"),
        "{m:?}"
    );
    assert!(
        !m.super_opts.iter().any(|o| o.starts_with("upperdir")),
        "{m:?}"
    );
}

#[test_log::test]
fn overlay_sources_must_be_followed_by_an_overlay() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.mkdir("l1");
    b.run(&concat(&[ROOT, &["--overlay-src", b.d("l1"), "--dir", "/x", "true"]]))
        .refused("bwrap: --overlay-src must be followed by another --overlay-src or one of --overlay, --tmp-overlay, or --ro-overlay\n");
    b.run(&concat(&[
        ROOT,
        &["--overlay-src", b.d("l1"), "--ro-overlay", "/x", "true"],
    ]))
    .refused("bwrap: --ro-overlay requires at least two --overlay-src\n");
    b.run(&concat(&[ROOT, &["--tmp-overlay", "/x", "true"]]))
        .refused("bwrap: --tmp-overlay requires at least one --overlay-src\n");
}

/// `--tmp-overlay` needs overlay layers given as fds (Linux 6.13): on an
/// older kernel, and when the feature is turned off, it is refused with a
/// message that says so.
#[test_log::test]
fn tmp_overlay_writes_vanish_or_it_needs_linux_6_13() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    overlay_layers(&b);
    let args = concat(&[
        ROOT,
        &[
            "--overlay-src",
            b.d("l1"),
            "--tmp-overlay",
            "/tov",
            "sh",
            "-c",
        ],
        &["test -e /tov/new && echo old; echo new > /tov/new && cat /tov/new /tov/only1"],
    ]);
    let refusal = "bwrap: --tmp-overlay /tov: overlay-layer-fds is not supported by this kernel \
                   (needs Linux 6.13 or newer)\n";
    if is_reference() || feature_available("overlay-layer-fds") {
        for _ in 0..2 {
            let o = b.run(&args).ok();
            assert_eq!(o.lines(), ["new", "1"]);
        }
        assert_eq!(
            std::fs::read_dir(b.data().join("l1")).unwrap().count(),
            2,
            "the lower layer changed"
        );
    } else {
        b.run(&args).refused(refusal);
    }
    if !is_reference() {
        let mut c = b.command(&args);
        c.env("SAFEROOT_DISABLE_FEATURES", "overlay-layer-fds");
        b.output(c).refused(refusal);
    }
}

// ---------------------------------------------------------------------------
// 7. Environment, working directory, argv[0]

fn env_of(o: &Out) -> BTreeMap<String, String> {
    o.lines()
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test_log::test]
fn setenv_unsetenv_and_clearenv_apply_in_order() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let mut c = b.command(&concat(&[
        ROOT,
        &[
            "--setenv",
            "A",
            "1",
            "--setenv",
            "B",
            "2",
            "--unsetenv",
            "A",
        ],
        &[
            "--setenv",
            "C",
            "3",
            "--setenv",
            "B",
            "two",
            "--unsetenv",
            "GONE",
            "env",
        ],
    ]));
    c.env("KEPT", "k").env("GONE", "g");
    let env = env_of(&b.output(c).ok());
    assert_eq!(env.get("A"), None);
    assert_eq!(env.get("B").map(String::as_str), Some("two"));
    assert_eq!(env.get("C").map(String::as_str), Some("3"));
    assert_eq!(env.get("KEPT").map(String::as_str), Some("k"));
    assert_eq!(env.get("GONE"), None);
    let mut c = b.command(&concat(&[
        ROOT,
        &[
            "--setenv",
            "A",
            "1",
            "--clearenv",
            "--setenv",
            "K",
            "v",
            "--chdir",
            "/usr",
        ],
        &["env"],
    ]));
    c.env("KEPT", "k");
    let env = env_of(&b.output(c).ok());
    // bubblewrap sets PWD last.
    assert_eq!(
        env,
        BTreeMap::from([
            ("K".to_string(), "v".to_string()),
            ("PWD".to_string(), "/usr".to_string())
        ])
    );
}

#[test_log::test]
fn chdir_or_the_callers_directory_or_home_or_root() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.mkdir("cwd");
    let cwd = b.d("cwd");
    let run = |cwd: &str, home: &str, extra: &[&str]| -> Vec<String> {
        let mut c = b.command(&concat(&[ROOT, extra, &["sh", "-c", "pwd; echo $PWD"]]));
        c.current_dir(cwd).env("HOME", home);
        b.output(c)
            .ok()
            .lines()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    // The caller's directory, where it exists inside.
    assert_eq!(run(cwd, "/usr", &["--bind", cwd, cwd]), [cwd, cwd]);
    // Else $HOME, else /.
    assert_eq!(run(cwd, "/usr/lib", &[]), ["/usr/lib", "/usr/lib"]);
    assert_eq!(run(cwd, "/nonexistent-home", &[]), ["/", "/"]);
    // --chdir wins.
    assert_eq!(
        run(cwd, "/usr", &["--bind", cwd, cwd, "--chdir", "/usr/bin"]),
        ["/usr/bin", "/usr/bin"]
    );
}

/// bubblewrap applies --setenv/--unsetenv/--clearenv to its own
/// environment as it parses them, so the $HOME it falls back to is the one
/// they leave (saferoot once used the caller's original $HOME).
#[test_log::test]
fn chdir_fallback_uses_home_as_the_options_leave_it() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.mkdir("cwd");
    let run = |extra: &[&str]| -> Vec<String> {
        let mut c = b.command(&concat(&[ROOT, extra, &["sh", "-c", "pwd; echo $PWD"]]));
        c.current_dir(b.d("cwd")).env("HOME", "/usr");
        b.output(c)
            .ok()
            .lines()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    assert_eq!(
        run(&["--setenv", "HOME", "/usr/bin"]),
        ["/usr/bin", "/usr/bin"]
    );
    assert_eq!(run(&["--unsetenv", "HOME"]), ["/", "/"]);
    assert_eq!(run(&["--clearenv"]), ["/", "/"]);
}

#[test_log::test]
fn argv0_is_what_the_program_sees_as_its_name() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    // saferoot's binary answers --version by its name: as `bwrap` with
    // bubblewrap's version line, else as itself.
    let bwrap_version = format!(
        "bubblewrap 0.11.1 (saferoot {})\n",
        env!("CARGO_PKG_VERSION")
    );
    let o = b
        .run(&concat(&[
            ROOT,
            &[
                "--ro-bind",
                EXE,
                "/sr",
                "--argv0",
                "bwrap",
                "/sr",
                "--version",
            ],
        ]))
        .ok();
    assert_eq!(o.stdout, bwrap_version);
    let o = b
        .run(&concat(&[
            ROOT,
            &["--ro-bind", EXE, "/sr", "/sr", "--version"],
        ]))
        .ok();
    assert_eq!(
        o.stdout,
        format!("saferoot {}\n", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------------------
// 8. Privileges

#[test_log::test]
fn root_keeps_its_capabilities_and_no_new_privs_is_always_set() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b.run(&concat(&[ROOT, &["sh", "-c", STATUS]])).ok();
    assert_eq!(o.status("NoNewPrivs"), "1");
    assert_eq!(o.status("Seccomp"), "0");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(o.caps(set), own_caps(set), "{set}");
    }
}

/// In a user namespace, bubblewrap gives a root caller's program the
/// capabilities the caller had (in the new namespace), not all of them.
///
/// (This test found saferoot giving the full set of the new user
/// namespace, on a host whose root lacks some capabilities.)
#[test_log::test]
fn a_user_namespace_keeps_the_callers_capabilities() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b
        .run(&concat(&[ROOT, &["--unshare-user", "sh", "-c", STATUS]]))
        .ok();
    assert_eq!(o.status("NoNewPrivs"), "1");
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(o.caps(set), own_caps("CapEff"), "{set}");
    }
    assert_eq!((o.caps("CapInh"), o.caps("CapAmb")), (0, 0));
}

#[test_log::test]
fn cap_drop_and_cap_add_set_all_five_sets() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let run = |caps: &[&str]| b.run(&concat(&[ROOT, caps, &["sh", "-c", STATUS]])).ok();
    // bubblewrap run by root without a user namespace leaves the bounding
    // set alone; saferoot, stricter on purpose, reduces it to the same set.
    let sets: &[&str] = if is_reference() {
        &["CapInh", "CapPrm", "CapEff", "CapAmb"]
    } else {
        &["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
    };
    let o = run(&["--cap-drop", "ALL"]);
    for set in sets {
        assert_eq!(o.caps(set), 0, "--cap-drop ALL: {set}");
    }
    assert_eq!(o.status("NoNewPrivs"), "1");
    let o = run(&["--cap-drop", "ALL", "--cap-add", "CAP_NET_RAW"]);
    for set in sets {
        assert_eq!(o.caps(set), 1 << CAP_NET_RAW, "+CAP_NET_RAW: {set}");
    }
    let o = run(&["--cap-drop", "CAP_KILL"]);
    for set in sets {
        assert_eq!(
            o.caps(set),
            own_caps("CapEff") & !(1 << CAP_KILL),
            "-CAP_KILL: {set}"
        );
    }
    // In a user namespace bubblewrap reduces the bounding set too.
    let o = b
        .run(&concat(&[
            ROOT,
            &[
                "--unshare-user",
                "--cap-drop",
                "ALL",
                "--cap-add",
                "cap_net_raw",
            ],
            &["sh", "-c", STATUS],
        ]))
        .ok();
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(o.caps(set), 1 << CAP_NET_RAW, "userns +CAP_NET_RAW: {set}");
    }
    b.run(&concat(&[ROOT, &["--cap-add", "CAP_FROB", "true"]]))
        .refused("bwrap: unknown cap: CAP_FROB\n");
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test_log::test]
fn seccomp_programs_are_loaded_and_enforced_in_order() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("eperm", deny_kill_0(EPERM));
    b.write("eacces", deny_kill_0(EACCES));
    let script = format!("{STATUS}; kill -0 $$ 2>&1; echo kill=$?; id -u");
    let run = |setup: &str, opts: &[&str]| {
        b.sh(setup, &concat(&[ROOT, opts, &["sh", "-c", &script]]))
            .ok()
    };
    let check = |o: &Out, filters: &str, error: &str| {
        assert_eq!(o.status("Seccomp"), "2", "{o:#?}");
        assert_eq!(o.status("Seccomp_filters"), filters, "{o:#?}");
        assert_eq!(o.status("NoNewPrivs"), "1");
        assert!(
            o.stdout.contains(error),
            "kill did not fail with {error}:\n{o:#?}"
        );
        assert!(o.stdout.contains("\nkill=1\n"), "{o:#?}");
        assert!(
            o.stdout.ends_with("\n0\n"),
            "other system calls work:\n{o:#?}"
        );
    };
    let o = run(r#"exec 3<"$D/eperm""#, &["--seccomp", "3"]);
    check(&o, "1", "Operation not permitted");
    // Stacked: the one loaded last decides between equal actions.
    let setup = r#"exec 3<"$D/eperm" 4<"$D/eacces""#;
    let o = run(setup, &["--add-seccomp-fd", "3", "--add-seccomp-fd", "4"]);
    check(&o, "2", "Permission denied");
    let o = run(setup, &["--add-seccomp-fd", "4", "--add-seccomp-fd", "3"]);
    check(&o, "2", "Operation not permitted");
    b.sh(
        setup,
        &concat(&[ROOT, &["--seccomp", "3", "--add-seccomp-fd", "4", "true"]]),
    )
    .refused("bwrap: --add-seccomp-fd cannot be combined with --seccomp\n");
    // Without a filter, kill works.
    let o = b.run(&concat(&[ROOT, &["sh", "-c", &script]])).ok();
    assert_eq!(o.status("Seccomp"), "0");
    assert!(o.stdout.ends_with("\nkill=0\n0\n"), "{o:#?}");
}

/// saferoot's guarantee (bubblewrap leaves the mounts it makes in a user
/// namespace changeable by a program with CAP_SYS_ADMIN there): the
/// program's mounts are locked, even with every capability.
#[test_log::test]
fn user_namespace_mounts_cannot_be_changed_even_with_all_capabilities() {
    if !common::require_root() || is_reference() {
        return;
    }
    let b = Bwrap::new();
    // Without a pid namespace the lock's user namespace is made before
    // setup and joined; with one (saferoot clones the init into all its
    // namespaces) the program's process makes it in place and the init
    // writes its maps, or, with a network namespace too, the helper that
    // makes that one makes the lock's user namespace beside the init and
    // the program's process joins it. With --as-pid-1 there is no init to
    // take part.
    for extra in [
        &[][..],
        &["--unshare-pid"],
        &["--unshare-pid", "--unshare-net"],
        &["--unshare-pid", "--as-pid-1"],
    ] {
        // (`--dev`: the script's `2>/dev/null` needs one, or the shell
        // would not run the commands at all.)
        let o = b
            .run(&concat(&[
                ROOT,
                &["--dev", "/dev", "--unshare-user", "--cap-add", "ALL"],
                extra,
                &["sh", "-c"],
                &[&format!(
                    "{STATUS}; mount -o remount,bind,rw /usr 2>/dev/null; echo remount=$?; \
                     mount -o remount,rw /usr 2>/dev/null; echo remount-sb=$?; \
                     umount /usr 2>/dev/null; echo umount=$?; \
                     (echo x > /usr/x) 2>/dev/null; echo write=$?; echo pid=$$; {MOUNTINFO}"
                )],
            ]))
            .ok();
        assert_ne!(
            o.caps("CapEff") & (1 << CAP_SYS_ADMIN),
            0,
            "{extra:?}: {o:#?}"
        );
        for op in ["remount", "remount-sb", "umount", "write"] {
            let line = o
                .lines()
                .into_iter()
                .find_map(|l| l.strip_prefix(&format!("{op}=")))
                .unwrap()
                .to_string();
            assert_ne!(line, "0", "{extra:?}: {op} succeeded:\n{o:#?}");
        }
        o.mount("/usr").assert_opts(&["ro"], &["rw"]);
        // As bubblewrap's: the program is pid 2 under an init, pid 1 with
        // --as-pid-1; no helper took a pid before it.
        let pid = o
            .lines()
            .into_iter()
            .find_map(|l| l.strip_prefix("pid="))
            .unwrap()
            .to_string();
        match extra {
            [] => assert_ne!(pid, "1", "{o:#?}"),
            e if e.contains(&"--as-pid-1") => assert_eq!(pid, "1", "{o:#?}"),
            _ => assert_eq!(pid, "2", "{o:#?}"),
        }
    }
}

/// `--disable-userns` and the identity maps hold whichever way the mounts
/// are locked: in place (the program's process makes the lock's user
/// namespace, the init writes its maps) or handed over (made beside the
/// init with the network namespace, and joined).
#[test_log::test]
fn disable_userns_and_identity_maps_hold_for_every_lock() {
    if !common::require_root() || is_reference() {
        return;
    }
    let b = Bwrap::new();
    for extra in [&["--unshare-pid"][..], &["--unshare-pid", "--unshare-net"]] {
        for disable in [false, true] {
            let mut args = vec!["--unshare-user"];
            args.extend_from_slice(extra);
            if disable {
                args.push("--disable-userns");
            }
            let o = b
                .run(&concat(&[
                    ROOT,
                    &args,
                    &[
                        "sh",
                        "-c",
                        "unshare -U true; echo unshare=$?; \
                         tr -s ' ' < /proc/self/uid_map; tr -s ' ' < /proc/self/gid_map",
                    ],
                ]))
                .ok();
            let lines = o.lines();
            let made = lines[0] == "unshare=0";
            assert_eq!(made, !disable, "{args:?}: {o:#?}");
            // uid 0 of the sandbox is the caller's root, mapped to itself.
            assert_eq!(lines[1].trim(), "0 0 1", "{args:?}: {o:#?}");
            assert_eq!(lines[2].trim(), "0 0 1", "{args:?}: {o:#?}");
        }
    }
}

// ---------------------------------------------------------------------------
// 9. Reports and lifetime

#[test_log::test]
fn info_fd_and_json_status_fd_describe_the_sandbox() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let script = format!("{PRINT_NAMESPACES}; echo pid $$; exit 3");
    for pidns in [&["--unshare-all"][..], &[][..]] {
        let o = b.sh(
            r#"exec 3>"$D/info" 4>"$D/status""#,
            &concat(&[
                ROOT,
                pidns,
                &[
                    "--info-fd",
                    "3",
                    "--json-status-fd",
                    "4",
                    "sh",
                    "-c",
                    &script,
                ],
            ]),
        );
        assert_eq!(o.code, 3, "{o:#?}");
        let inside = namespaces_in(&o);
        let info: serde_json::Value = serde_json::from_str(&b.read("info"))
            .unwrap_or_else(|e| panic!("info is not JSON ({e}): {}", b.read("info")));
        let obj = info.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        let want: Vec<&str> = if pidns.is_empty() {
            vec!["child-pid", "mnt-namespace"]
        } else {
            vec![
                "cgroup-namespace",
                "child-pid",
                "ipc-namespace",
                "mnt-namespace",
                "net-namespace",
                "pid-namespace",
                "uts-namespace",
            ]
        };
        assert_eq!(keys, want, "{info}");
        for (k, v) in obj {
            if let Some(ns) = k.strip_suffix("-namespace") {
                assert_eq!(v.as_u64(), Some(ns_inode(&inside[ns])), "{k}: {info}");
            }
        }
        assert!(info["child-pid"].as_u64().is_some_and(|p| p > 1), "{info}");
        if pidns.is_empty() {
            // No pid namespace: the child is the program itself.
            let pid = o
                .lines()
                .iter()
                .find_map(|l| l.strip_prefix("pid "))
                .unwrap()
                .to_string();
            assert_eq!(info["child-pid"].to_string(), pid);
        }
        let status = b.read("status");
        let lines: Vec<serde_json::Value> = status
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        assert_eq!(lines.len(), 2, "{status}");
        assert_eq!(lines[0], info, "the first status line is the info document");
        assert_eq!(lines[1], serde_json::json!({ "exit-code": 3 }));
        // Nothing else open on the fds: the reports end with the sandbox.
    }
    // A program that cannot be started has no exit code.
    let o = b.sh(
        r#"exec 4>"$D/status""#,
        &concat(&[ROOT, &["--json-status-fd", "4", "no-such-program-xyz"]]),
    );
    o.refused("bwrap: execvp no-such-program-xyz: No such file or directory\n");
    let status = b.read("status");
    assert_eq!(status.lines().count(), 1, "{status}");
    let first: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert!(first["child-pid"].as_u64().is_some(), "{status}");
    assert!(first.get("exit-code").is_none(), "{status}");
}

/// The sandbox's pid 1 is in the program's mount namespace while the
/// program runs: with a user namespace, the program's is the copy in which
/// the mounts are locked, and the init moves into it (so that the host
/// reaching the sandbox through the pid `--info-fd` gives, and the
/// teardown at the program's end, find that one).
#[test_log::test]
fn the_init_is_in_the_programs_mount_namespace() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    for flags in [&["--unshare-all"][..], &["--unshare-pid"][..]] {
        let mut c = b.sh_command(
            r#"exec 3>"$D/info""#,
            &concat(&[
                ROOT,
                flags,
                &[
                    "--bind",
                    b.d(""),
                    "/d",
                    "--info-fd",
                    "3",
                    "sh",
                    "-c",
                    "readlink /proc/self/ns/mnt > /d/mnt.tmp && mv /d/mnt.tmp /d/mnt; \
                     while [ ! -e /d/go ]; do sleep 0.01; done",
                ],
            ]),
        );
        let mut child = c.stdout(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let (program, init) = loop {
            let mnt = std::fs::read_to_string(b.data().join("mnt")).ok();
            let info = std::fs::read_to_string(b.data().join("info")).ok();
            if let (Some(m), Some(i)) = (mnt, info) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&i) {
                    break (m.trim().to_string(), v["child-pid"].as_u64().unwrap());
                }
            }
            assert!(
                Instant::now() < deadline,
                "{flags:?}: the sandbox did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The init moves once the program's copy exists: soon after.
        let link = format!("/proc/{init}/ns/mnt");
        let mut seen = String::new();
        while Instant::now() < deadline {
            seen = std::fs::read_link(&link)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if seen == program {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(b.data().join("go"), "").unwrap();
        let st = wait_timeout(&mut child, Duration::from_secs(20)).expect("no end");
        assert_eq!(st.code(), Some(0), "{flags:?}");
        assert_eq!(seen, program, "{flags:?}: pid 1 ({init}) and the program");
        for f in ["mnt", "go", "info"] {
            let _ = std::fs::remove_file(b.data().join(f));
        }
    }
}

/// Spawns `sh -c 'exec 3<&0 </dev/null; SETUP; exec bwrap ARGS'` with
/// `fd` as fd 3 (and the shell's stdin until then): the test keeps the
/// other end of a pipe.
fn spawn_with_fd3(b: &Bwrap, fd: OwnedFd, setup: &str, args: &[String]) -> Child {
    let mut c = b.sh_command(&format!("exec 3<&0 </dev/null\n{setup}"), args);
    c.stdin(Stdio::from(fd))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("start bwrap");
    // The Command holds its copy of the fd until dropped.
    drop(c);
    child
}

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap()
}

/// A FIFO at `$D/rel`, opened read-write (never blocks) to release a
/// program that waits with `read x < $D/rel`.
fn fifo(b: &Bwrap, rel: &str) -> std::fs::File {
    let p = b.data().join(rel);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap()
}

#[test_log::test]
fn block_fd_holds_the_program_until_a_byte_arrives() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let (r, w) = pipe();
    let args = concat(&[
        ROOT,
        &["--bind", b.d(""), b.d(""), "--block-fd", "3", "sh", "-c"],
        &[r#"echo ran > "$D/ran""#],
    ]);
    let mut child = spawn_with_fd3(&b, r, "", &args);
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "bwrap ended early");
    assert!(
        !b.data().join("ran").exists(),
        "the program ran before the byte"
    );
    rustix::io::write(&w, b"x").unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(b.read("ran"), "ran\n");
    b.check_tmpdir();
}

#[test_log::test]
fn sync_fd_stays_open_while_the_sandbox_runs() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    // Held by the init, by the process that stays without a pid namespace,
    // or (--as-pid-1, no init) by the program itself, which alone sees it.
    for (opts, program_has_it) in [
        (&["--unshare-pid"][..], false),
        (&[][..], false),
        (&["--unshare-pid", "--as-pid-1"][..], true),
    ] {
        let _ = std::fs::remove_file(b.data().join("started"));
        let _ = std::fs::remove_file(b.data().join("go"));
        let (r, w) = pipe();
        let go = fifo(&b, "go");
        let args = concat(&[
            ROOT,
            opts,
            &["--bind", b.d(""), b.d(""), "--sync-fd", "3", "sh", "-c"],
            &[r#"[ -e /proc/$$/fd/3 ] && echo has-it; echo > "$D/started"; read x < "$D/go""#],
        ]);
        let mut child = spawn_with_fd3(&b, w, "", &args);
        assert!(
            wait_until(Duration::from_secs(30), || b
                .data()
                .join("started")
                .exists()),
            "{opts:?}: the program did not start"
        );
        rustix::io::ioctl_fionbio(&r, true).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            rustix::io::read(&r, &mut buf),
            Err(rustix::io::Errno::AGAIN),
            "{opts:?}: the sync fd is closed while the sandbox runs"
        );
        assert!(child.try_wait().unwrap().is_none());
        (&go).write_all(b"x\n").unwrap();
        let out = wait_output(child, Duration::from_secs(60));
        assert_eq!(out.code, 0, "{opts:?}: {out:#?}");
        let want = if program_has_it { "has-it\n" } else { "" };
        assert_eq!(out.stdout, want, "{opts:?}");
        drop(go);
        assert_eq!(
            rustix::io::read(&r, &mut buf),
            Ok(0),
            "{opts:?}: no end of file after the sandbox"
        );
        b.check_tmpdir();
    }
}

#[test_log::test]
fn lock_file_is_locked_while_the_sandbox_runs() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("lock", "");
    let go = fifo(&b, "go");
    let args = concat(&[
        ROOT,
        &[
            "--bind",
            b.d(""),
            b.d(""),
            "--lock-file",
            b.d("lock"),
            "sh",
            "-c",
        ],
        &[r#"echo > "$D/started"; read x < "$D/go""#],
    ]);
    let mut c = b.command(&args);
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(c);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(b.data().join("lock"))
        .unwrap();
    use rustix::fs::FlockOperation::*;
    assert!(
        wait_until(Duration::from_secs(30), || b
            .data()
            .join("started")
            .exists()),
        "the program did not start"
    );
    // The sandbox takes its (shared) lock as the program starts, as
    // bubblewrap does: allow it a moment.
    let held = wait_until(Duration::from_secs(5), || {
        rustix::fs::fcntl_lock(lock.as_fd(), NonBlockingLockExclusive).is_err()
    });
    assert!(held, "a write lock could be taken while the sandbox runs");
    // A shared lock, like the sandbox's, can be had.
    rustix::fs::fcntl_lock(lock.as_fd(), NonBlockingLockShared).unwrap();
    rustix::fs::fcntl_lock(lock.as_fd(), NonBlockingUnlock).unwrap();
    (&go).write_all(b"x\n").unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out:#?}");
    rustix::fs::fcntl_lock(lock.as_fd(), NonBlockingLockExclusive)
        .expect("the lock outlived the sandbox");
    b.check_tmpdir();
}

/// Whether `pid` is gone or a zombie.
fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

#[test_log::test]
fn die_with_parent_ends_the_sandbox_with_its_caller() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    for pidns in [&[][..], &["--unshare-pid"][..]] {
        let _ = std::fs::remove_file(b.data().join("started"));
        let _ = std::fs::remove_file(b.data().join("bwrap.pid"));
        let args = concat(&[
            ROOT,
            pidns,
            &["--die-with-parent", "--bind", b.d(""), b.d(""), "sh", "-c"],
            // The test finds the program by its command (in a pid
            // namespace, $$ is not the host's pid).
            &[r#"echo > "$D/started" && exec sleep 1000"#],
        ]);
        // The caller: a shell that starts bwrap and waits.
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(r#""$@" & echo $! > "$D/bwrap.pid"; wait"#)
            .arg("sh")
            .arg(b.exe())
            .args(&args);
        b.env(&mut c);
        let mut caller = c.stdout(Stdio::null()).spawn().unwrap();
        drop(c);
        assert!(
            wait_until(Duration::from_secs(30), || b
                .data()
                .join("started")
                .exists()),
            "the program did not start"
        );
        let bwrap_pid = b.read("bwrap.pid").trim().to_string();
        // The sleep: the only process whose parent chain reaches bwrap and
        // that runs `sleep`.
        let sleep_pid = wait_for_descendant(&bwrap_pid, "sleep");
        caller.kill().unwrap();
        caller.wait().unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || is_gone(&sleep_pid)),
            "{pidns:?}: the program outlived the caller"
        );
        assert!(
            wait_until(Duration::from_secs(20), || is_gone(&bwrap_pid)),
            "{pidns:?}: bwrap outlived the caller"
        );
        b.check_tmpdir();
    }
}

/// The host pid of the descendant of `ancestor` whose command is `comm`.
#[track_caller]
fn wait_for_descendant(ancestor: &str, comm: &str) -> String {
    let parent_of = |pid: &str| -> Option<(String, String)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = s.rsplit_once(") ")?;
        let name = head.split_once(" (")?.1.to_string();
        let ppid = rest.split(' ').nth(1)?.to_string();
        Some((name, ppid))
    };
    let mut found = None;
    wait_until(Duration::from_secs(30), || {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let Some((name, mut ppid)) = parent_of(&pid) else {
                continue;
            };
            if name != comm {
                continue;
            }
            for _ in 0..10 {
                if ppid == ancestor {
                    found = Some(pid.clone());
                    return true;
                }
                match parent_of(&ppid) {
                    Some((_, p)) => ppid = p,
                    None => break,
                }
            }
        }
        false
    });
    found.unwrap_or_else(|| panic!("no {comm} below pid {ancestor}"))
}

#[test_log::test]
fn new_session_gives_the_program_a_session_of_its_own() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let script = "echo $$; cut -d' ' -f6 /proc/$$/stat";
    let o = b
        .run(&concat(&[ROOT, &["--new-session", "sh", "-c", script]]))
        .ok();
    let l = o.lines();
    assert_eq!(l[0], l[1], "the program leads its session");
    // Field 6 of stat: 0 when the caller is in the kernel's own session
    // (as under an initramfs's init), which rustix's Pid cannot hold.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let ours = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(3)
        .unwrap()
        .to_string();
    let o = b.run(&concat(&[ROOT, &["sh", "-c", script]])).ok();
    assert_eq!(
        o.lines()[1],
        ours,
        "without --new-session, the caller's session"
    );
}

/// bubblewrap calls setsid in the sandbox's init, which the program sees
/// as pid 1.
///
/// (This test found saferoot calling setsid before the pid namespace, so
/// that the program saw session id 0.)
#[test_log::test]
fn new_session_with_a_pid_namespace_is_led_by_its_init() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    let o = b
        .run(&concat(&[
            MIN,
            &["--unshare-pid", "--proc", "/proc", "--new-session"],
            &["sh", "-c", "cut -d' ' -f6 /proc/$$/stat"],
        ]))
        .ok();
    assert_eq!(o.lines(), ["1"]);
}

// ---------------------------------------------------------------------------
// 10. Inherited file descriptors

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test_log::test]
fn inherited_fds_pass_and_consumed_ones_do_not() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("content", "for --file\n");
    b.write("inherited", "passed on\n");
    b.write("filter", deny_kill_0(EPERM));
    let o = b
        .sh(
            r#"exec 3>"$D/info" 4<"$D/content" 5<"$D/inherited" 6<"$D/filter" 7>/dev/null 8</dev/null"#,
            &concat(&[
                ROOT,
                &["--info-fd", "3", "--file", "4", "/f", "--seccomp", "6"],
                &["--sync-fd", "7", "--block-fd", "8", "sh", "-c"],
                &[r#"for f in 3 4 5 6 7 8; do if [ -e /proc/$$/fd/$f ]; then echo "$f open"; else echo "$f closed"; fi; done; cat /proc/self/fd/5"#],
            ]),
        )
        .ok();
    assert_eq!(
        o.lines(),
        [
            "3 closed",
            "4 closed",
            "5 open",
            "6 closed",
            "7 closed",
            "8 closed",
            "passed on"
        ]
    );
}

// ---------------------------------------------------------------------------
// 11. A flatpak-shaped command line

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test_log::test]
fn a_flatpak_shaped_command_line_runs_confined() {
    if !common::require_root() {
        return;
    }
    let b = Bwrap::new();
    b.write("app-data", "app data\n");
    b.write("filter", deny_kill_0(EPERM));
    let args_file = |disable_userns: bool| {
        let mut a = vec![
            "--unshare-user",
            "--unshare-pid",
            "--ro-bind-fd",
            "5",
            "/usr",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--file",
            "6",
            "/etc/app-data",
            "--info-fd",
            "7",
            "--seccomp",
            "8",
            "--cap-drop",
            "ALL",
            "--setenv",
            "FLATPAK_ID",
            "org.example.App",
            "--die-with-parent",
        ];
        if disable_userns {
            a.push("--disable-userns");
        }
        a.iter().map(|s| format!("{s}\0")).collect::<String>()
    };
    let script = format!(
        r#"{STATUS}
cat /etc/app-data
echo "id=$FLATPAK_ID"
unshare -U true 2>/dev/null; echo "unshare=$?"
kill -0 $$ 2>/dev/null; echo "kill=$?"
for f in 3 5 6 7 8; do [ -e /proc/$$/fd/$f ] && echo "fd $f open"; done
echo "uid=$(id -u)""#
    );
    let setup = r#"exec 3<"$D/args" 5</usr 6<"$D/app-data" 7>"$D/info" 8<"$D/filter""#;
    for disable in [true, false] {
        b.write("args", args_file(disable));
        let o = b.sh(setup, &["--args", "3", "sh", "-c", &script]).ok();
        assert_eq!(o.status("NoNewPrivs"), "1");
        assert_eq!(o.status("Seccomp"), "2");
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(o.caps(set), 0, "{set}");
        }
        let rest: Vec<&str> = o
            .lines()
            .into_iter()
            .filter(|l| {
                !l.starts_with("Cap") && !l.starts_with("NoNew") && !l.starts_with("Seccomp")
            })
            .collect();
        let unshare = if disable { "unshare=1" } else { "unshare=0" };
        assert_eq!(
            rest,
            ["app data", "id=org.example.App", unshare, "kill=1", "uid=0"],
            "--disable-userns {disable}: {o:#?}"
        );
        let info: serde_json::Value = serde_json::from_str(&b.read("info")).unwrap();
        assert!(info["child-pid"].as_u64().is_some(), "{info}");
        assert!(info["pid-namespace"].as_u64().is_some(), "{info}");
    }
}
