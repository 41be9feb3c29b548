//! The namespace test harness shared by every integration test (`mod common;`).
//!
//! # Running code that mounts: [`in_mount_ns`]
//!
//! ```ignore
//! mod common;
//!
//! #[test_log::test]
//! fn tmpfs_is_attached() {
//!     let dir = common::TempDir::new();
//!     common::in_mount_ns(|| {
//!         // Runs on a thread of its own, in a private mount namespace, with
//!         // a private fd table. Mount freely: nothing reaches the host.
//!         assert!(!common::is_mount_point(dir.path()));
//!     });
//! }
//! ```
//!
//! [`in_mount_ns`] returns `Option<R>`: `Some(value of f)` normally, `None`
//! only when the test cannot run (not root) *and* the person running the
//! suite set `SAFEROOT_TEST_ALLOW_SKIP=1`. Without that variable a test that
//! cannot run panics, so it never passes silently. A test that needs the
//! value writes `let Some(v) = common::in_mount_ns(|| ...) else { return };`,
//! a test that does not just calls it and ignores the `Option`.
//!
//! Around `f`, the harness checks, on the namespace thread:
//!
//! - **fd hygiene**: the set of open fds in the thread's (unshared) fd table
//!   is the same after `f` as before it. Whatever `f` returns is taken to
//!   hold no fd: return data, never an `OwnedFd` or a value owning one (the
//!   fd would be counted as a leak, and its number means nothing outside the
//!   thread's private fd table anyway).
//! - **host mount table**: the mount points and filesystem types of the
//!   thread-group leader's namespace (`/proc/<pid>/mountinfo`; the leader
//!   never unshares) are the same after `f` as before it.
//!
//! Either difference fails the test with a list of what changed.
//!
//! # Fresh processes: [`run_child`], [`in_child`]
//!
//! Things that cannot be undone in a thread — feature overrides read once
//! per process (`SAFEROOT_DISABLE_FEATURES`), seccomp filters, user
//! namespaces — run in a re-executed copy of the test binary that runs just
//! one test:
//!
//! ```ignore
//! #[test_log::test]
//! fn falls_back_without_statmount() {
//!     common::in_child(
//!         "falls_back_without_statmount",
//!         &[("SAFEROOT_DISABLE_FEATURES", "statmount")],
//!         false,
//!         || {
//!             // Runs only in the child.
//!         },
//!     );
//! }
//! ```
//!
//! The child must report exactly one passed test; anything else fails the
//! parent with the child's output.
//!
//! # Other helpers
//!
//! [`TempDir`] (a directory under /tmp, removed on drop without ever
//! crossing into a mount), [`mount_points`] and [`is_mount_point`] (the
//! calling thread's mount table, read from mountinfo independently of the
//! code under test), [`leader_mount_points`] (the host side), [`open_fds`].
//!
//! No `unsafe` code here; see [`unshare_for_test_thread`] for the one
//! deprecated call and why it is sound in this use.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::fmt::Display;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use rustix::fs::{AtFlags, Dir, Mode, OFlags, StatxFlags};
use rustix::thread::UnshareFlags;

/// Set to `1` by a person who wants tests that cannot run to be skipped
/// (with a `SKIPPED:` line on stderr) instead of failing. CI never sets it.
pub const ALLOW_SKIP_ENV: &str = "SAFEROOT_TEST_ALLOW_SKIP";
/// Set in a child started by [`run_child`] to the test path it runs.
pub const CHILD_ENV: &str = "SAFEROOT_TEST_CHILD";
/// Set to `1` in a child started by [`run_child`] with `userns = true`.
pub const CHILD_USERNS_ENV: &str = "SAFEROOT_TEST_USERNS";

// ---------------------------------------------------------------------------
// Skipping

/// Fails the test with `reason`, or, when `SAFEROOT_TEST_ALLOW_SKIP=1`,
/// prints `SKIPPED: <reason>` to stderr and returns `false`. Returns `true`
/// when `ok`.
///
/// The building block for requirements other than root (a tool, a kernel
/// feature): `if !common::require(cond, "why") { return; }`.
#[track_caller]
pub fn require(ok: bool, reason: impl Display) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os(ALLOW_SKIP_ENV).is_some_and(|v| v == "1") {
        // Written to fd 2 directly rather than with eprintln!, which libtest
        // captures: the line must reach the log even when the test passes.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        false
    } else {
        panic!(
            "this test cannot run: {reason}\n\
             (the suite must run as root; set {ALLOW_SKIP_ENV}=1 to skip such tests instead)"
        );
    }
}

/// Whether the test runs with root privileges: effective uid 0 and
/// `CAP_SYS_ADMIN` in the effective capability set (of the current user
/// namespace, so a child started with `userns = true` qualifies).
///
/// Returns `true` if so. Otherwise panics, or, when
/// `SAFEROOT_TEST_ALLOW_SKIP=1`, prints `SKIPPED: <reason>` and returns
/// `false`.
#[track_caller]
pub fn require_root() -> bool {
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 {
        return require(false, format!("not running as root (effective uid {euid})"));
    }
    match rustix::thread::capabilities(None) {
        Ok(caps) => require(
            caps.effective
                .contains(rustix::thread::CapabilitySet::SYS_ADMIN),
            "CAP_SYS_ADMIN is not in the effective capability set",
        ),
        Err(e) => require(false, format!("cannot read capabilities (capget: {e})")),
    }
}

/// The running kernel's `(major, minor)`, from `/proc/sys/kernel/osrelease`.
///
/// For kernel behaviour that no feature probe covers, such as which
/// filesystems accept idmapped mounts; features saferoot probes are asked
/// with `saferoot::features::has`.
pub fn kernel_version() -> (u32, u32) {
    let text = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .expect("read /proc/sys/kernel/osrelease");
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    let mut next = || -> u32 {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("odd kernel release {text:?}"))
    };
    (next(), next())
}

// ---------------------------------------------------------------------------
// Private mount namespaces

static PRIME_CACHES: Once = Once::new();

/// Creates, in the process-wide fd table, every fd that some library caches
/// for the life of the process, before any thread unshares its fd table.
///
/// A cache filled on a thread with a private fd table would hold an fd
/// number that is closed (or something else) everywhere else. pathrs caches
/// its procfs handle; add any new process-wide fd cache here.
fn prime_process_caches() {
    PRIME_CACHES.call_once(|| {
        if let Err(e) = pathrs::procfs::ProcfsHandle::new() {
            // Not fatal for the harness: pathrs then makes a fresh handle
            // per use and caches nothing.
            log::warn!("pathrs procfs handle: {e}");
        }
    });
}

/// Moves the calling thread into a private fs context, fd table and mount
/// namespace.
///
/// rustix 1.1 deprecated its safe `unshare` in favour of `unshare_unsafe`,
/// because after unsharing `CLONE_FILES` an fd created by another thread is
/// not valid on this one (and the other way round). That is sound here: the
/// thread is a fresh harness thread that only uses fds it opens itself (the
/// test's borrowed fds from before the unshare stay valid, the table is a
/// copy), returns no fd (checked), and process-wide fd caches are created
/// before any unshare ([`prime_process_caches`]).
#[allow(deprecated)]
fn unshare_for_test_thread() -> rustix::io::Result<()> {
    rustix::thread::unshare(UnshareFlags::FS | UnshareFlags::FILES | UnshareFlags::NEWNS)
}

/// Runs `f` in a private mount namespace and returns what it returned.
///
/// `f` runs on a new scoped thread that first unshares `CLONE_FS |
/// CLONE_FILES | CLONE_NEWNS` (namespaces and fd tables are per task: only
/// this thread moves) and makes `/` recursively private, so no mount made by
/// `f` propagates anywhere. When the thread ends, its namespace and fd table
/// go with it, so `f` need not clean up its mounts.
///
/// Around `f` it asserts that the thread holds the same fds after as before
/// and that the thread-group leader's (the host's) mount table did not
/// change. A panic in `f` is propagated with its own payload. `f` may borrow
/// from the caller; it must not return anything that owns an fd.
///
/// Returns `None` without running `f` only when the test is not root and
/// `SAFEROOT_TEST_ALLOW_SKIP=1` (see [`require_root`]).
#[track_caller]
pub fn in_mount_ns<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
    if !require_root() {
        return None;
    }
    prime_process_caches();
    let name = format!(
        "{}/mount-ns",
        std::thread::current().name().unwrap_or("test")
    );
    let result = std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn_scoped(s, move || run_in_private_ns(f))
            .expect("spawning the mount namespace thread");
        handle.join()
    });
    match result {
        Ok(r) => Some(r),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

fn run_in_private_ns<R>(f: impl FnOnce() -> R) -> R {
    unshare_for_test_thread()
        .unwrap_or_else(|e| panic!("unshare(CLONE_FS | CLONE_FILES | CLONE_NEWNS): {e}"));
    let slash = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .unwrap_or_else(|e| panic!("open / (O_PATH): {e}"));
    saferoot::mount::change_attrs(
        &slash,
        saferoot::MountAttr::empty(),
        saferoot::MountAttr::empty(),
        Some(saferoot::Propagation::Private),
        saferoot::mount::Scope::Tree,
    )
    .unwrap_or_else(|e| panic!("mount_setattr(/, AT_RECURSIVE, propagation=MS_PRIVATE): {e}"));
    drop(slash);

    let host_before = leader_mount_points();
    let fds_before = open_fds();

    let r = f();

    let fds_after = open_fds();
    let host_after = leader_mount_points();

    let mut problems = Vec::new();
    if fds_before != fds_after {
        problems.push(describe_fd_change(&fds_before, &fds_after));
    }
    if host_before != host_after {
        problems.push(describe_mount_change(
            "the host (thread-group leader's) mount table changed",
            &host_before,
            &host_after,
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    r
}

fn describe_fd_change(before: &BTreeSet<RawFd>, after: &BTreeSet<RawFd>) -> String {
    let leaked: Vec<String> = after
        .difference(before)
        .map(|fd| format!("  fd {fd} -> {}", fd_target(*fd)))
        .collect();
    let closed: Vec<String> = before
        .difference(after)
        .map(|fd| format!("  fd {fd}"))
        .collect();
    let mut msg = String::from("fd hygiene: the open fds differ after the test body\n");
    if !leaked.is_empty() {
        msg += &format!(
            "leaked fds (open after, not before):\n{}\n",
            leaked.join("\n")
        );
    }
    if !closed.is_empty() {
        msg += &format!(
            "fds closed that the test body did not open:\n{}\n",
            closed.join("\n")
        );
    }
    msg + &format!("before: {before:?}\nafter:  {after:?}")
}

fn describe_mount_change(what: &str, before: &[MountPoint], after: &[MountPoint]) -> String {
    let b: BTreeMap<&MountPoint, usize> = count(before);
    let a: BTreeMap<&MountPoint, usize> = count(after);
    let mut lines = vec![format!("{what}:")];
    for (m, n) in &a {
        let was = b.get(m).copied().unwrap_or(0);
        if *n > was {
            lines.push(format!("  + {} ({}) x{}", m.0.display(), m.1, n - was));
        }
    }
    for (m, n) in &b {
        let now = a.get(m).copied().unwrap_or(0);
        if *n > now {
            lines.push(format!("  - {} ({}) x{}", m.0.display(), m.1, n - now));
        }
    }
    lines.join("\n")
}

fn count(v: &[MountPoint]) -> BTreeMap<&MountPoint, usize> {
    let mut m = BTreeMap::new();
    for e in v {
        *m.entry(e).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------------------
// fds

/// The fds open in the calling thread's fd table, from
/// `/proc/thread-self/fd` (the fd used to list the directory is left out).
pub fn open_fds() -> BTreeSet<RawFd> {
    let dir = rustix::fs::open(
        "/proc/thread-self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open /proc/thread-self/fd");
    let own = dir.as_raw_fd();
    let mut entries = Dir::new(dir).expect("reading /proc/thread-self/fd");
    let mut fds = BTreeSet::new();
    while let Some(entry) = entries.read() {
        let entry = entry.expect("reading /proc/thread-self/fd");
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let fd: RawFd = std::str::from_utf8(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("odd entry in /proc/thread-self/fd: {name:?}"));
        if fd != own {
            fds.insert(fd);
        }
    }
    fds
}

/// What fd `fd` of the calling thread refers to (its readlink target).
pub fn fd_target(fd: RawFd) -> String {
    match std::fs::read_link(format!("/proc/thread-self/fd/{fd}")) {
        Ok(p) => p.display().to_string(),
        Err(e) => format!("<readlink: {e}>"),
    }
}

// ---------------------------------------------------------------------------
// Mount tables

/// A mount point and its filesystem type.
pub type MountPoint = (PathBuf, String);

/// The mount points of the calling thread's mount namespace, in mountinfo
/// order, with their filesystem types, from `/proc/thread-self/mountinfo`.
///
/// A deliberately simple reader, independent of the code under test.
pub fn mount_points() -> Vec<MountPoint> {
    read_mountinfo("/proc/thread-self/mountinfo")
}

/// The mount points of the thread-group leader's namespace (the test
/// process's "host" namespace: the leader never unshares), sorted.
pub fn leader_mount_points() -> Vec<MountPoint> {
    let mut v = read_mountinfo(&format!("/proc/{}/mountinfo", std::process::id()));
    v.sort();
    v
}

/// Whether `p` (symlinks followed, as `mountpoint(1)` does) is a mount point
/// in the calling thread's namespace. `false` for a path that does not exist.
pub fn is_mount_point(p: &Path) -> bool {
    match std::fs::canonicalize(p) {
        Ok(c) => mount_points().iter().any(|(m, _)| *m == c),
        Err(_) => false,
    }
}

fn read_mountinfo(file: &str) -> Vec<MountPoint> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    parse_mountinfo(&text).unwrap_or_else(|e| panic!("parse {file}: {e}"))
}

/// Parses mountinfo text into (mount point, fs type) pairs.
///
/// Line format: `id parent major:minor root mount-point options
/// [optional fields...] - fstype source super-options`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountPoint>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .filter(|&i| i >= 6)
            .ok_or_else(|| format!("no separator in line {line:?}"))?;
        let fstype = fields
            .get(sep + 1)
            .ok_or_else(|| format!("no fs type in line {line:?}"))?;
        let mp = unescape_octal(fields[4]);
        out.push((
            PathBuf::from(std::ffi::OsStr::from_bytes(&mp)),
            unescape_str(fstype),
        ));
    }
    Ok(out)
}

fn unescape_str(s: &str) -> String {
    String::from_utf8_lossy(&unescape_octal(s)).into_owned()
}

/// Undoes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Child processes

/// Whether this process is a child started by [`run_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// The test path this process was started to run, if it is a child.
pub fn child_test() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Whether this process is a child started with `userns = true`.
pub fn in_child_userns() -> bool {
    std::env::var_os(CHILD_USERNS_ENV).is_some_and(|v| v == "1")
}

/// Re-executes the current test binary to run the one test `test_path` (its
/// full libtest name, `module::name` for tests in modules) in a fresh
/// process, and returns the child's output once it has passed.
///
/// The child gets `--exact <test_path> --nocapture --test-threads=1`,
/// `SAFEROOT_TEST_CHILD=<test_path>` and `extra_env`. With `userns`, it runs
/// under `unshare --user --map-root-user --mount --propagation private`: a
/// rootless container-like process that is root only in its own user
/// namespace (and `SAFEROOT_TEST_USERNS=1` is set).
///
/// Panics, showing the child's stdout and stderr, if the child fails or does
/// not report exactly one passed test (a misspelt `test_path` runs nothing).
#[track_caller]
pub fn run_child(test_path: &str, extra_env: &[(&str, &str)], userns: bool) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = if userns {
        let mut c = Command::new("unshare");
        c.args([
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--",
        ])
        .arg(&exe)
        .env(CHILD_USERNS_ENV, "1");
        c
    } else {
        let mut c = Command::new(&exe);
        c.env_remove(CHILD_USERNS_ENV);
        c
    };
    cmd.args(["--exact", test_path, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_path)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null());
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start child `{shown}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ran_one = stdout
        .lines()
        .any(|l| l.starts_with("test result: ok. 1 passed; 0 failed;"));
    // The child's output is shown indented, so that its `test result:`
    // lines are not taken for the parent's by tools that read the log.
    if !out.status.success() || !ran_one {
        panic!(
            "child test `{test_path}` {}\ncommand: {shown}\n\
             child stdout:\n{}\nchild stderr:\n{}",
            if out.status.success() {
                "did not report exactly one passed test".to_string()
            } else {
                format!("failed ({})", out.status)
            },
            indent(&stdout),
            indent(&stderr),
        );
    }
    log::debug!(
        "child `{test_path}` passed:\n{}\n{}",
        indent(&stdout),
        indent(&stderr)
    );
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `body` in a fresh process: in the child started for `test_path`
/// runs `body`; anywhere else starts that child with [`run_child`] and
/// returns once it passed. `test_path` must be the calling test's own path.
#[track_caller]
pub fn in_child(test_path: &str, extra_env: &[(&str, &str)], userns: bool, body: impl FnOnce()) {
    if child_test().as_deref() == Some(test_path) {
        body();
    } else {
        run_child(test_path, extra_env, userns);
    }
}

// ---------------------------------------------------------------------------
// Temporary directories

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The host's program directories (`/usr`, `/bin`, `/lib`, `/lib64`,
/// `/lib32`, `/sbin`) for a bundle whose root filesystem is `rootfs`:
/// those that are symlinks on the host (a merged `/usr`) are made as the
/// same symlinks in `rootfs`; the real directories among them are
/// returned, for the caller to bind read-only.
pub fn host_program_dirs(rootfs: &Path) -> Vec<&'static str> {
    let mut binds = Vec::new();
    for d in ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"] {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() => {
                std::os::unix::fs::symlink(std::fs::read_link(d).unwrap(), rootfs.join(&d[1..]))
                    .unwrap();
            }
            Ok(m) if m.is_dir() => binds.push(d),
            _ => {}
        }
    }
    binds
}

/// A fresh directory under /tmp (mode 0700), removed with everything in it
/// when dropped.
///
/// Removal is fd-relative, never follows symlinks and never crosses into a
/// mount: anything still mounted inside is left alone, and the drop panics
/// (unless already panicking) naming what it could not remove. So drop a
/// `TempDir` outside the namespace that mounted on it, or after unmounting.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates the directory `/tmp/saferoot-test.<pid>.<n>.<nanos>`.
    #[track_caller]
    pub fn new() -> TempDir {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = PathBuf::from(format!(
                "/tmp/saferoot-test.{}.{n}.{nanos}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("create {}: {e}", path.display()),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(p)`.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(problems) = remove_tree(&self.path) {
            let msg = format!(
                "TempDir {}: could not remove everything:\n  {}",
                self.path.display(),
                problems.join("\n  ")
            );
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// Removes the directory `path` and its contents without following
/// symlinks or entering other mounts. Returns what it could not remove.
fn remove_tree(path: &Path) -> Result<(), Vec<String>> {
    let dir = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| vec![format!("open {}: {e}", path.display())])?;
    let mnt = mount_id(dir.as_fd(), c"", AtFlags::EMPTY_PATH)
        .map_err(|e| vec![format!("statx {}: {e}", path.display())])?;
    let mut problems = Vec::new();
    empty_dir(&dir, mnt, path, &mut problems);
    drop(dir);
    if problems.is_empty() {
        if let Err(e) = std::fs::remove_dir(path) {
            problems.push(format!("rmdir {}: {e}", path.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The mount id of `name` under `dirfd`, and whether it is a mount root.
fn mount_id(
    dirfd: std::os::fd::BorrowedFd<'_>,
    name: &CStr,
    flags: AtFlags,
) -> rustix::io::Result<u64> {
    let st = rustix::fs::statx(
        dirfd,
        name,
        flags | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::MNT_ID | StatxFlags::TYPE,
    )?;
    if st.stx_mask & StatxFlags::MNT_ID.bits() == 0 {
        return Err(rustix::io::Errno::NOSYS);
    }
    Ok(st.stx_mnt_id)
}

fn empty_dir(dir: &OwnedFd, mnt: u64, shown: &Path, problems: &mut Vec<String>) {
    let names: Vec<std::ffi::CString> = match Dir::read_from(dir) {
        Ok(mut d) => {
            let mut v = Vec::new();
            while let Some(e) = d.read() {
                match e {
                    Ok(e) => {
                        let n = e.file_name();
                        if n != c"." && n != c".." {
                            v.push(n.to_owned());
                        }
                    }
                    Err(e) => {
                        problems.push(format!("readdir {}: {e}", shown.display()));
                        return;
                    }
                }
            }
            v
        }
        Err(e) => {
            problems.push(format!("readdir {}: {e}", shown.display()));
            return;
        }
    };
    for name in names {
        let child = shown.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let st = match rustix::fs::statx(
            dir,
            name.as_c_str(),
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::MNT_ID | StatxFlags::TYPE,
        ) {
            Ok(st) => st,
            Err(e) => {
                problems.push(format!("statx {}: {e}", child.display()));
                continue;
            }
        };
        if st.stx_mnt_id != mnt {
            problems.push(format!("{} is a mount point; left alone", child.display()));
            continue;
        }
        let is_dir = u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
        if is_dir {
            let sub = match rustix::fs::openat(
                dir,
                name.as_c_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    problems.push(format!("open {}: {e}", child.display()));
                    continue;
                }
            };
            // The entry could have become a mount between statx and open.
            match mount_id(sub.as_fd(), c"", AtFlags::EMPTY_PATH) {
                Ok(m) if m == mnt => {}
                Ok(_) => {
                    problems.push(format!("{} is a mount point; left alone", child.display()));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("statx {}: {e}", child.display()));
                    continue;
                }
            }
            let before = problems.len();
            empty_dir(&sub, mnt, &child, problems);
            drop(sub);
            if problems.len() > before {
                continue;
            }
        }
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        if let Err(e) = rustix::fs::unlinkat(dir, name.as_c_str(), flags) {
            problems.push(format!("unlink {}: {e}", child.display()));
        }
    }
}

/// Runs `f` while an attacker thread swaps the entries `a` and `b` of the
/// directory `dir` with `renameat2(RENAME_EXCHANGE)` as fast as it can (the
/// symlink-exchange attack on mount destinations). Returns what `f`
/// returned and how many swaps the attacker made.
pub fn while_exchanging<R>(dir: &Path, a: &str, b: &str, f: impl FnOnce() -> R) -> (R, u64) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let attacker = s.spawn(|| {
            let d = std::fs::File::open(dir).expect("open the attacked directory");
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if rustix::fs::renameat_with(&d, a, &d, b, rustix::fs::RenameFlags::EXCHANGE)
                    .is_ok()
                {
                    swaps += 1;
                }
            }
            swaps
        });
        let r = f();
        stop.store(true, Ordering::Relaxed);
        let swaps = attacker.join().expect("attacker thread panicked");
        (r, swaps)
    })
}
