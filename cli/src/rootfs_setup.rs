//! Inside the new namespaces: everything between unsharing and exec.
//!
//! 1. `/` becomes a recursive slave, before anything is mounted, so no
//!    mount made here propagates to the host;
//! 2. hostname, loopback interface;
//! 3. for a fresh root: a new tmpfs on the scratch directory;
//! 4. directories and symlinks that go into the base root;
//! 5. `saferoot::rootfs::assemble` (the mounts, /dev, read-only and masked
//!    paths);
//! 6. directories and symlinks below mounts, inside the assembled root;
//! 7. entering the root (pivot_root by default).

use std::os::fd::AsFd;
use std::path::Path;

use saferoot::rootfs::{assemble, AssembleOptions, MountLock};
use saferoot::{ErrorKind, Mount, Root};

use crate::errors::{shown, CliError, Escaped};
use crate::sandbox::{Phase, RootKind, Sandbox, Step, StepKind};

fn setup_err(sb: &Sandbox) -> impl Fn(saferoot::Error) -> CliError + '_ {
    move |e| CliError::setup(sb.explain(&e))
}

/// Makes every mount of the (new, private to us) mount namespace a slave:
/// mount events from the host still arrive, none leave.
fn make_root_slave() -> Result<(), CliError> {
    let fail =
        |e: String| CliError::setup(format!("make / a recursive slave (mount_setattr): {e}"));
    let slash = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| fail(e.to_string()))?;
    saferoot::mount::change_attrs(
        &slash,
        saferoot::MountAttr::empty(),
        saferoot::MountAttr::empty(),
        Some(saferoot::Propagation::Slave),
        saferoot::mount::Scope::Tree,
    )
    .map_err(|e| fail(e.to_string()))
}

/// A new tmpfs on the scratch directory: the empty root the flags fill.
fn mount_fresh_root(dir: &Path) -> Result<(), CliError> {
    let fail =
        |e: saferoot::Error| CliError::setup(format!("fresh root tmpfs on {}: {e}", dir.escaped()));
    let target = Root::open(dir).and_then(|r| r.handle()).map_err(fail)?;
    Mount::fs("tmpfs")
        .source("saferoot")
        .data("mode=755")
        .mount()
        .and_then(|m| Ok(m.attach(&target)?))
        .map_err(fail)?
        .forget();
    Ok(())
}

fn do_step(root: &Root, step: &Step) -> Result<(), saferoot::Error> {
    match &step.kind {
        StepKind::Dir { path, mode } => {
            // `--perms` is for the leaf only: missing parents get 0755, as
            // with bubblewrap. mkdir_all leaves an existing directory
            // alone; a new one gets the mode given (the umask is 0 here).
            if let Some(parent) = path.parent() {
                root.mkdir_all(parent, 0o755)?;
            }
            drop(root.mkdir_all(path, *mode)?);
        }
        StepKind::Symlink { target, path } => {
            if let Some(parent) = path.parent() {
                root.mkdir_all(parent, 0o755)?;
            }
            match root.symlink(target, path) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // Fine when it is the same symlink already.
                    if root.readlink(path).ok().as_deref() != Some(target.as_path()) {
                        return Err(e);
                    }
                }
                r => r?,
            }
        }
    }
    Ok(())
}

fn do_steps(sb: &Sandbox, root: &Root, phase: Phase) -> Result<(), CliError> {
    for step in sb.steps.iter().filter(|s| s.phase == phase) {
        do_step(root, step).map_err(|e| CliError::setup(format!("{}: {e}", step.origin)))?;
        log::debug!("{}: done", step.origin);
    }
    Ok(())
}

/// Builds the root and enters it. Runs in the new namespaces (in the pid
/// namespace's init when there is one, so that a new procfs belongs to it).
///
/// With a user namespace, returns the [`MountLock`] that the process about
/// to exec the program applies last: the program then lives in a copy of
/// this mount namespace owned by a child user namespace, where the kernel
/// locks every mount and every flag made here.
pub fn setup(sb: &Sandbox) -> Result<Option<MountLock>, CliError> {
    make_root_slave()?;
    if let Some(h) = &sb.hostname {
        crate::sys::process::sethostname(h)
            .map_err(|e| CliError::setup(format!("hostname {}: sethostname: {e}", shown(h))))?;
    }
    if sb.namespaces.net {
        crate::sys::process::loopback_up().map_err(|e| {
            CliError::setup(format!("bring up lo in the new network namespace: {e}"))
        })?;
    }
    if sb.root == RootKind::Tmpfs {
        mount_fresh_root(&sb.spec.rootfs)?;
    }
    // Steps create exactly the modes asked for.
    let old_umask = rustix::process::umask(rustix::fs::Mode::empty());
    if sb.steps.iter().any(|s| s.phase == Phase::BeforeMounts) {
        let base = Root::open(&sb.spec.rootfs).map_err(setup_err(sb))?;
        do_steps(sb, &base, Phase::BeforeMounts)?;
    }
    let opts = AssembleOptions {
        strategy: sb.strategy,
        console: None,
        // The caller made a mount namespace of its own and checked that it
        // differs from the one it started in (run::child), which is
        // stronger than the library's best-effort comparison with pid 1.
        require_private_namespace: false,
    };
    // The working directory is made here, before entering, and changed
    // into after entering (see `chdir_in_root`), not by the library.
    let mut spec = sb.spec.clone();
    let cwd = spec.cwd.take();
    crate::run::test_setup_delay();
    let assembled = assemble(&spec, &opts).map_err(setup_err(sb))?;
    log::info!(
        "assembled {} ({} strategy)",
        sb.spec.rootfs.escaped(),
        assembled.strategy().name()
    );
    do_steps(sb, assembled.root(), Phase::AfterMounts)?;
    if let Some(cwd) = &cwd {
        assembled
            .root()
            .mkdir_all(cwd, 0o755)
            .map_err(|e| CliError::setup(format!("working directory: {}", sb.explain(&e))))?;
    }
    rustix::process::umask(old_umask);
    stdio_to_sandbox_null(assembled.root())?;
    // Made while the caller's procfs is still reachable.
    let lock =
        if sb.namespaces.user {
            Some(MountLock::nested().map_err(|e| {
                CliError::setup(format!("user namespace for locking the mounts: {e}"))
            })?)
        } else {
            None
        };
    assembled.enter(sb.enter).map_err(setup_err(sb))?;
    if let Some(cwd) = &cwd {
        chdir_in_root(cwd)?;
    }
    Ok(lock)
}

/// Changes into `cwd` of the root just entered: resolved inside it, then
/// `fchdir`, then checked to be inside it (CVE-2024-21626).
///
/// The library's own working-directory step creates the directory with
/// pathrs, which needs a procfs in the new root; a sandbox without /proc
/// has none. The directory exists already (made before entering), so only
/// a lookup is needed here.
fn chdir_in_root(cwd: &Path) -> Result<(), CliError> {
    let fail = |e: String| CliError::setup(format!("working directory {}: {e}", cwd.escaped()));
    let root = Root::open("/").map_err(|e| fail(e.to_string()))?;
    let h = root.resolve(cwd).map_err(|e| fail(e.to_string()))?;
    rustix::process::fchdir(&h).map_err(|e| fail(format!("fchdir: {e}")))?;
    let now = rustix::process::getcwd(Vec::new()).map_err(|e| fail(format!("getcwd: {e}")))?;
    if !now.to_bytes().starts_with(b"/") {
        return Err(fail("it is outside the root".into()));
    }
    Ok(())
}

/// Points stdin, stdout and stderr that are the host's `/dev/null` at the
/// sandbox's own `/dev/null` (checked to be the character device 1:3), so
/// that the program holds no fd to a host filesystem.
///
/// `AssembledRoot::enter` does the same after entering the root, but it
/// reopens the node through a procfs, and without a `/proc` in the sandbox
/// that fails; done here, before entering, the host's procfs is still at
/// hand. (With a user namespace the sandbox's `/dev/null` is the host's
/// node bound in, so there is nothing to change.)
fn stdio_to_sandbox_null(root: &Root) -> Result<(), CliError> {
    let Ok(host) = rustix::fs::stat("/dev/null") else {
        return Ok(());
    };
    let host_id = (host.st_dev, host.st_ino);
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    type Dup2 = fn(&std::fs::File) -> rustix::io::Result<()>;
    let fds: [(std::os::fd::BorrowedFd<'_>, Dup2); 3] = [
        (stdin.as_fd(), |f| rustix::stdio::dup2_stdin(f)),
        (stdout.as_fd(), |f| rustix::stdio::dup2_stdout(f)),
        (stderr.as_fd(), |f| rustix::stdio::dup2_stderr(f)),
    ];
    let mut null = None;
    for (fd, dup2) in fds {
        let Ok(st) = rustix::fs::fstat(fd) else {
            continue;
        };
        if (st.st_dev, st.st_ino) != host_id {
            continue;
        }
        if null.is_none() {
            let fail =
                |e: saferoot::Error| CliError::setup(format!("/dev/null in the sandbox: {e}"));
            let h = root.resolve("/dev/null").map_err(fail)?;
            let s = h.stat().map_err(fail)?;
            if s.file_type != rustix::fs::FileType::CharacterDevice
                || s.rdev != rustix::fs::makedev(1, 3)
            {
                return Err(CliError::setup(
                    "/dev/null in the sandbox is not the character device 1:3",
                ));
            }
            if (s.dev, s.ino) == host_id {
                // The host's node bound in (user namespace). The library
                // will still look at it after entering, through a procfs.
                let has_proc = root
                    .resolve("/proc")
                    .and_then(|h| saferoot::rootfs::policy::is_on_procfs(&h))
                    .unwrap_or(false);
                if !has_proc {
                    return Err(CliError::setup(
                        "stdin, stdout or stderr is /dev/null, and the sandbox has no /proc: \
                         with a user namespace saferoot needs a procfs at /proc to check it \
                         after entering the root; add --proc /proc, or redirect them elsewhere",
                    ));
                }
                return Ok(());
            }
            null = Some(h.reopen(rustix::fs::OFlags::RDWR).map_err(fail)?);
        }
        if let Some(f) = &null {
            dup2(f).map_err(|e| CliError::setup(format!("dup2 /dev/null onto stdio: {e}")))?;
        }
    }
    Ok(())
}
