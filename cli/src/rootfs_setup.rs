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

use saferoot::procfs::Procfs;
use saferoot::rootfs::{assemble_plan_with, AssembleOptions};
use saferoot::{ErrorKind, Mount, Root};

use crate::errors::{shown, CliError, Escaped};
use crate::sandbox::{RootKind, Sandbox, Step, StepKind};

/// What joining (or, failing a hand-over, making) the network namespace is
/// called in an error.
const JOIN_NET: &str = "join the new network namespace (setns, or unshare and bring up lo)";

fn join_err(e: rustix::io::Errno) -> CliError {
    CliError::setup(format!("{JOIN_NET}: {e}"))
}

fn lo_err(e: rustix::io::Errno) -> CliError {
    CliError::setup(format!("bring up lo in the new network namespace: {e}"))
}

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

/// A host tree bound recursively on the scratch directory: the root for
/// `--bind SRC /` (read-only all the way down for `--ro-bind`, nodev
/// unless `--dev-bind`, always nosuid).
fn mount_bound_root(dir: &Path, source: &Path, ro: bool, devices: bool) -> Result<(), CliError> {
    let fail =
        |e: saferoot::Error| CliError::setup(format!("bind {} as the root: {e}", source.escaped()));
    let target = Root::open(dir).and_then(|r| r.handle()).map_err(fail)?;
    let m = Mount::clone_tree(source, saferoot::mount::Scope::Tree).map_err(fail)?;
    let mut set = saferoot::MountAttr::NOSUID;
    if ro {
        set |= saferoot::MountAttr::RDONLY;
    }
    if !devices {
        set |= saferoot::MountAttr::NODEV;
    }
    m.set_attr_recursive(set, saferoot::MountAttr::empty())
        .map_err(fail)?;
    m.attach(&target).map_err(|e| fail(e.into()))?.forget();
    Ok(())
}

/// Copies everything readable from `from` into `to`.
fn copy_fd(from: &std::os::fd::OwnedFd, to: &mut std::fs::File) -> std::io::Result<u64> {
    let dup = from.try_clone()?;
    let mut src = std::fs::File::from(dup);
    std::io::copy(&mut src, to)
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> saferoot::Error {
    saferoot::Error::from_os(
        what,
        Some(path),
        rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
    )
}

/// The fd of `--bind-fd`, found again in this (new) mount namespace: the
/// kernel clones only mounts of the caller's own namespace, and the fd's
/// mount is in the namespace saferoot was started in. Its path there is
/// opened here and must be the very same inode (device and inode number),
/// so that what is bound is what the caller opened, or nothing.
fn find_fd_again(
    fd: &crate::sandbox::FdArg,
    dest: &Path,
) -> Result<std::os::fd::OwnedFd, saferoot::Error> {
    let invalid = |why: String| saferoot::Error::from_invalid("bind fd", Some(dest), why);
    let Some(at) = &fd.path else {
        return Err(invalid(format!(
            "fd {} has no path to find it by",
            fd.number
        )));
    };
    let h = rustix::fs::open(
        at.as_path(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| saferoot::Error::from_os("open the fd's path", Some(at), e))?;
    let id = |f: std::os::fd::BorrowedFd<'_>| rustix::fs::fstat(f).map(|st| (st.st_dev, st.st_ino));
    let want = id(std::os::fd::AsFd::as_fd(&*fd.fd))
        .map_err(|e| saferoot::Error::from_os("fstat", None, e))?;
    let got =
        id(std::os::fd::AsFd::as_fd(&h)).map_err(|e| saferoot::Error::from_os("fstat", None, e))?;
    if want != got {
        return Err(invalid(format!(
            "fd {} no longer is what {} is (it was moved or replaced)",
            fd.number,
            at.display()
        )));
    }
    Ok(h)
}

/// The flags of a `--bind-data` file mount, then attached at `path`.
fn finish_bind_data(
    root: &Root,
    file: Mount,
    ro: bool,
    path: &Path,
) -> Result<(), saferoot::Error> {
    let mut set = saferoot::MountAttr::NOSUID | saferoot::MountAttr::NODEV;
    if ro {
        set |= saferoot::MountAttr::RDONLY;
    }
    file.set_attr(set, saferoot::MountAttr::empty())?;
    attach_at(root, file, path)
}

/// Whether the handle is the root of a mount.
fn is_mount_root(h: &saferoot::Handle) -> Result<bool, saferoot::Error> {
    let st = rustix::fs::statx(
        h,
        c"",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::BASIC_STATS,
    )
    .map_err(|e| saferoot::Error::from_os("statx", None, e))?;
    Ok(st
        .stx_attributes_mask
        .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
        && st
            .stx_attributes
            .contains(rustix::fs::StatxAttributes::MOUNT_ROOT))
}

/// Attaches a detached mount on `path` in the root: onto a directory when
/// the mount's root is one, onto a file otherwise (created when missing).
fn attach_at(root: &Root, m: Mount, path: &Path) -> Result<(), saferoot::Error> {
    let is_dir = rustix::fs::fstat(&m)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
        .map_err(|e| saferoot::Error::from_os("fstat", None, e))?;
    if let Some(parent) = path.parent() {
        root.mkdir_all(parent, 0o755)?;
    }
    let target = if is_dir {
        root.mkdir_all(path, 0o755)?
    } else {
        root.create_file(path, 0o444)?
    };
    m.attach(&target)
        .map_err(|e| {
            saferoot::Error::from_os(
                "attach",
                Some(path),
                rustix::io::Errno::from_raw_os_error(e.error().errno()),
            )
        })?
        .forget();
    Ok(())
}

/// Whether this process is in a user namespace other than the initial one
/// (whose inode number is fixed: `PROC_USER_INIT_INO`).
fn in_user_namespace() -> bool {
    const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;
    saferoot::procfs::Procfs::new()
        .and_then(|p| p.ns_inode("user", None))
        .is_ok_and(|ino| ino != PROC_USER_INIT_INO)
}

/// A new private tmpfs, detached, as a root to make files in.
fn private_tmpfs() -> Result<(Mount, Root), saferoot::Error> {
    let m = Mount::fs("tmpfs")
        .source("saferoot")
        .data("mode=700")
        .mount()?;
    let r = m.root()?;
    Ok((m, r))
}

/// The mode of parents made for an entry with permission bits `mode`:
/// 0755 without the group bits when the entry has no group bits, without
/// the other bits when it has no other bits.
fn parent_mode(mode: Option<u32>) -> u32 {
    let mut m = 0o755;
    if let Some(mode) = mode {
        if mode & 0o070 == 0 {
            m &= !0o050;
        }
        if mode & 0o007 == 0 {
            m &= !0o005;
        }
    }
    m
}

fn do_step(root: &Root, procfs: &Procfs, step: &Step) -> Result<(), saferoot::Error> {
    let bwrap = crate::errors::is_bwrap();
    // Missing parents get 0755, less the group or other bits the entry
    // itself has none of (bubblewrap's rule: a private file does not get
    // world-readable parents).
    let mode_of = match &step.kind {
        StepKind::Dir { mode, .. }
        | StepKind::File { mode, .. }
        | StepKind::BindData { mode, .. } => Some(*mode),
        _ => None,
    };
    // bubblewrap counts an option without permissions as mode 0: the
    // parents of a symlink or a mount point it makes are 0700.
    let parent_mode = parent_mode(mode_of.or(if bwrap { Some(0) } else { None }));
    let mkparents = |path: &Path| -> Result<(), saferoot::Error> {
        // A parent with no name in it is the root itself, which exists:
        // no lookup for it.
        let named = |p: &Path| {
            p.components()
                .any(|c| matches!(c, std::path::Component::Normal(_)))
        };
        if let Some(parent) = path.parent().filter(|p| named(p)) {
            root.mkdir_all(parent, parent_mode)?;
        }
        Ok(())
    };
    match &step.kind {
        StepKind::Dir { path, mode } => {
            // `--perms` is for the leaf; parents get `parent_mode`.
            // mkdir_all leaves an existing directory alone; a new one gets
            // the mode given (the umask is 0 here).
            mkparents(path)?;
            drop(root.mkdir_all(path, *mode)?);
        }
        StepKind::Symlink { target, path } => {
            mkparents(path)?;
            match root.symlink(target, path) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // Fine when it is the same symlink already.
                    match root.readlink(path) {
                        Ok(old) if old == *target => {}
                        Ok(old) if bwrap => {
                            return Err(saferoot::Error::from_invalid(
                                "symlink",
                                Some(path),
                                format!("existing destination is {}", old.display()),
                            ))
                        }
                        _ => return Err(e),
                    }
                }
                r => r?,
            }
        }
        StepKind::Chmod { path, mode } => {
            let h = root.resolve(path)?;
            let flags = match h.file_type()? {
                rustix::fs::FileType::Socket => {
                    return Err(saferoot::Error::from_invalid(
                        "chmod",
                        Some(path),
                        "a socket's permissions cannot be changed through an fd",
                    ))
                }
                _ => {
                    rustix::fs::OFlags::RDONLY
                        | rustix::fs::OFlags::NONBLOCK
                        | rustix::fs::OFlags::NOCTTY
                }
            };
            let f = h.reopen_with(procfs, flags)?;
            rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(*mode))
                .map_err(|e| saferoot::Error::from_os("fchmod", Some(path), e))?;
        }
        StepKind::File { path, mode, fd } => {
            mkparents(path)?;
            let h = root.create_file(path, *mode)?;
            let mut f = h.reopen_with(
                procfs,
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::TRUNC,
            )?;
            copy_fd(&fd.fd, &mut f).map_err(|e| io_err(path, "copy from fd", e))?;
        }
        StepKind::BindData { path, mode, ro, fd } => {
            let (tmp, tmp_root) = private_tmpfs()?;
            let name = Path::new("/data");
            let h = tmp_root.create_file(name, *mode)?;
            let mut f = h.reopen_with(procfs, rustix::fs::OFlags::WRONLY)?;
            copy_fd(&fd.fd, &mut f).map_err(|e| io_err(path, "copy from fd", e))?;
            drop(f);
            let file = match Mount::clone_fd(&h, saferoot::mount::Scope::Mount) {
                Ok(m) => m,
                // Before Linux 6.15 the kernel clones only from attached
                // mounts: the private tmpfs is stacked on the root of the
                // tree being built for a moment (resolution inside the tree
                // goes through its fd, below it), the file cloned from it,
                // and the tmpfs detached again.
                Err(e) if e.errno() == libc::EINVAL => {
                    let stacked = tmp.attach(root.handle()?).map_err(saferoot::Error::from)?;
                    let view = saferoot::Root::from_fd(
                        rustix::io::dup(&stacked)
                            .map_err(|e| saferoot::Error::from_os("dup", None, e))?,
                    )?;
                    let again = view.resolve_nofollow(name)?;
                    let cloned = Mount::clone_fd(&again, saferoot::mount::Scope::Mount);
                    drop(view);
                    stacked.detach()?;
                    return finish_bind_data(root, cloned?, *ro, path);
                }
                Err(e) => return Err(e),
            };
            drop(tmp);
            finish_bind_data(root, file, *ro, path)?;
        }
        StepKind::BindFd { path, ro, fd } => {
            let m = Mount::clone_fd(&find_fd_again(fd, path)?, saferoot::mount::Scope::Tree)?;
            let mut set = saferoot::MountAttr::NOSUID | saferoot::MountAttr::NODEV;
            if *ro {
                set |= saferoot::MountAttr::RDONLY;
            }
            m.set_attr_recursive(set, saferoot::MountAttr::empty())?;
            attach_at(root, m, path)?;
        }
        StepKind::RemountRo { path } => {
            let h = root.resolve(path)?;
            if !is_mount_root(&h)? {
                return Err(saferoot::Error::from_invalid(
                    "remount read-only",
                    Some(path),
                    "not a mount point",
                ));
            }
            saferoot::mount::change_attrs(
                &h,
                saferoot::MountAttr::RDONLY,
                saferoot::MountAttr::empty(),
                None,
                saferoot::mount::Scope::Mount,
            )?;
        }
        StepKind::TmpOverlay { path, lower } => {
            saferoot::features::require(saferoot::features::Feature::OverlayLayerFds)?;
            let (_tmp, tmp_root) = private_tmpfs()?;
            let open_dir = |h: &saferoot::Handle| {
                h.reopen_with(
                    procfs,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                )
                .map(std::os::fd::OwnedFd::from)
            };
            let upper = open_dir(&tmp_root.mkdir_all("/upper", 0o755)?)?;
            let work = open_dir(&tmp_root.mkdir_all("/work", 0o755)?)?;
            let mut b = Mount::fs("overlay").source("overlay");
            // lowerdir+ takes the top layer first.
            for l in lower.iter().rev() {
                let f = std::fs::File::open(l).map_err(|e| io_err(l, "open overlay layer", e))?;
                b = b.fd("lowerdir+", f.into(), l.display().to_string());
            }
            b = b.fd("upperdir", upper, "the private upper directory");
            b = b.fd("workdir", work, "the private work directory");
            if in_user_namespace() {
                b = b.flag("userxattr");
            }
            let m = b.mount()?;
            attach_at(root, m, path)?;
        }
    }
    Ok(())
}

/// Carries out the steps in order, each with the flag it came from in an
/// error.
struct Steps<'a> {
    steps: &'a [Step],
    /// saferoot's private procfs, to reopen handles through.
    procfs: &'a Procfs,
    next: usize,
    failed: Option<&'a Step>,
}

impl Steps<'_> {
    /// Does every step that comes before mount `i` (all that remain for
    /// `usize::MAX`).
    fn until(&mut self, i: usize, root: &Root) -> Result<(), saferoot::Error> {
        while let Some(step) = self.steps.get(self.next) {
            if step.after_mounts > i {
                break;
            }
            self.next += 1;
            if let Err(e) = do_step(root, self.procfs, step) {
                self.failed = Some(step);
                return Err(e);
            }
            log::debug!("{}: done", step.origin);
        }
        Ok(())
    }

    fn error(&self, sb: &Sandbox, e: saferoot::Error) -> CliError {
        match &self.failed {
            Some(step) if crate::errors::is_bwrap() => {
                CliError::setup(bwrap_step_message(step, &e))
            }
            Some(step) => CliError::setup(format!("{}: {e}", step.origin)),
            None => CliError::setup(sb.explain(&e)),
        }
    }
}

/// bubblewrap's wording for a failed step, which scripts match: `Can't
/// make symlink at DEST: existing destination is OLD`, `Can't chmod 0755
/// DEST: REASON` (the mode as C's `%#o` prints it), and so on.
fn bwrap_step_message(step: &Step, e: &saferoot::Error) -> String {
    let origin = &step.origin;
    let flag = origin.split_whitespace().next().unwrap_or("");
    let what = match (flag, &step.kind) {
        ("--symlink", _) => "Can't make symlink at".to_string(),
        ("--dir", _) => "Can't mkdir".to_string(),
        ("--file", _) => "Can't create file".to_string(),
        ("--bind-data" | "--ro-bind-data", _) => "Can't create file at".to_string(),
        ("--chmod", StepKind::Chmod { mode: 0, .. }) => "Can't chmod 0".to_string(),
        ("--chmod", StepKind::Chmod { mode, .. }) => format!("Can't chmod 0{mode:o}"),
        ("--remount-ro", _) => "Can't remount readonly on".to_string(),
        _ => return format!("{origin}: {e}"),
    };
    // The destination as the command line gave it, as bubblewrap names it
    // (the error may name no path, or one in a private scratch tmpfs).
    let path = step.kind.path().display();
    let reason = e.to_string();
    // The library's text ends with the reason after the last ": ", with
    // Rust's " (os error N)" after an OS error's text.
    let reason = reason.rsplit(": ").next().unwrap_or(&reason);
    let reason = reason.split(" (os error ").next().unwrap_or(reason);
    format!("{what} {path}: {reason}")
}

/// Builds the root and enters it. Runs in the new namespaces (in the pid
/// namespace's init when there is one, so that a new procfs belongs to it).
///
/// With a user namespace, returns the [`crate::lock::Lock`] that the process about
/// to exec the program applies last: the program then lives in a copy of
/// this mount namespace owned by a child user namespace, where the kernel
/// locks every mount and every flag made here.
/// What the process that execs the program needs from setup.
#[derive(Debug)]
pub struct Entered {
    /// With a user namespace: applied right before exec (see
    /// [`crate::lock`]).
    pub lock: Option<crate::lock::Lock>,
    /// A procfs opened before entering the root (which may have none), to
    /// read the program's namespaces for `--info-fd` and
    /// `--json-status-fd`.
    pub procfs: Option<saferoot::procfs::Procfs>,
    /// The network namespace saferoot makes: joined already when
    /// something in the root depended on it, otherwise once the root is
    /// entered; either way made ready (its loopback up) right before the
    /// program's process exists (`crate::net_ahead`).
    pub net: Option<crate::net_ahead::Joiner>,
}

impl Entered {
    /// Joins the network namespace if it is still to be joined (taking
    /// the lock's user namespace, if one came with it: [`made_lock`]) and
    /// waits until its loopback interface is up; then settles the lock
    /// (an in-place lock's maps are read now, when it is known to be
    /// needed: [`crate::lock::Lock::settle`]).
    /// `procfs` is saferoot's, as given to [`setup`].
    pub fn join_net(&mut self, procfs: &saferoot::procfs::Procfs) -> Result<(), CliError> {
        let userns = match self.net.take() {
            Some(joiner) => joiner.finish().map_err(join_err)?,
            None => None,
        };
        self.lock = made_lock(self.lock.take(), userns, procfs)
            .map(|lock| lock.settle(procfs))
            .transpose()?;
        Ok(())
    }
}

/// The lock the program's process applies: a lock in place becomes a
/// made one when the network namespace's helper sent the lock's user
/// namespace (`crate::net_ahead`): the program's process then joins it
/// instead of making one and waiting for the init to write its maps. The
/// user namespace is checked to be a child of the init's
/// (`MountLock::join_with`); any doubt keeps the lock in place.
fn made_lock(
    lock: Option<crate::lock::Lock>,
    userns: Option<std::os::fd::OwnedFd>,
    procfs: &saferoot::procfs::Procfs,
) -> Option<crate::lock::Lock> {
    match (lock, userns) {
        (Some(crate::lock::Lock::InPlaceUnread), Some(userns)) => {
            match saferoot::rootfs::MountLock::join_with(userns, procfs) {
                Ok(made) => Some(crate::lock::Lock::Handed(made)),
                Err(e) => {
                    log::debug!("the mounts are locked in place: {e}");
                    Some(crate::lock::Lock::InPlaceUnread)
                }
            }
        }
        (lock, _) => lock,
    }
}

///
/// `lock` is the [`crate::lock::Lock`] made before (with a user namespace:
/// a [`saferoot::rootfs::MountLock`] made outside the sandbox's pid namespace, whose pids its
/// helper would otherwise take, or the maps of an in-place lock).
/// `procfs` is saferoot's private procfs for the run (see `run::run`).
/// `net` is where saferoot sends the network namespace it made for this
/// process (`crate::net_ahead`), joined before the first step that depends
/// on it.
pub fn setup(
    sb: &Sandbox,
    lock: Option<crate::lock::Lock>,
    procfs: &saferoot::procfs::Procfs,
    mut net: Option<crate::net_ahead::Joiner>,
) -> Result<Entered, CliError> {
    // The setup process is single-threaded: its umask and working
    // directory are changed in place, with no helper thread (which would
    // take a pid in a new pid namespace).
    saferoot::namespace::own_fs()
        .map_err(|e| CliError::setup(format!("unshare(CLONE_FS): {e}")))?;
    // The plan `run` made (the working directory is made here, before
    // entering, and changed into after entering: see `chdir_in_root`).
    let mut plan = match sb.plan.borrow_mut().take() {
        Some(p) => p,
        None => crate::run::checked_plan(sb)?,
    };
    // A root from flags is mounted here before assembly begins: the
    // namespace becomes a slave first. A bundle's or a directory's root is
    // not, and assembly's own first step makes every mount a slave or
    // private when the rootfs propagation is recursive (the default
    // `rslave` is): one pass over the copy of the host's mounts, not two.
    let assembly_propagates_nothing =
        matches!(sb.root, RootKind::Directory(_) | RootKind::Bundle(_))
            && plan.caller_propagation().recursive;
    if !assembly_propagates_nothing {
        make_root_slave()?;
    }
    if let Some(h) = &sb.hostname {
        crate::sys::process::sethostname(h)
            .map_err(|e| CliError::setup(format!("hostname {}: sethostname: {e}", shown(h))))?;
    }
    if sb.namespaces.net && net.is_none() {
        crate::sys::process::loopback_up().map_err(lo_err)?;
    }
    match &sb.root {
        RootKind::Tmpfs => mount_fresh_root(&sb.spec.rootfs)?,
        RootKind::Bind {
            source,
            ro,
            devices,
        } => mount_bound_root(&sb.spec.rootfs, source, *ro, *devices)?,
        RootKind::Directory(_) | RootKind::Bundle(_) => {}
    }
    // Steps create exactly the modes asked for.
    let old_umask = rustix::process::umask(rustix::fs::Mode::empty());
    let opts = AssembleOptions {
        strategy: sb.strategy,
        console: None,
        // The caller made a mount namespace of its own and checked that it
        // differs from the one it started in (run::child), which is
        // stronger than the library's best-effort comparison with pid 1.
        require_private_namespace: false,
        procfs: Some(procfs.clone()),
    };
    let cwd = plan.cwd.take();
    let join_at = crate::net_ahead::join_point(&plan);
    let mut lock_userns = None;
    if let (Some(joiner), Some(None)) = (&mut net, join_at) {
        lock_userns = joiner.join().map_err(join_err)?;
    }
    crate::run::test_setup_delay();
    // Steps happen between the mounts, in command-line order; those after
    // the last mount, in the assembled root.
    let mut steps = Steps {
        steps: &sb.steps,
        procfs,
        next: 0,
        failed: None,
    };
    let assembled = assemble_plan_with(plan, &opts, &mut |i, root| {
        let net_err = |e| saferoot::Error::from_os(JOIN_NET, None, e);
        if let Some(joiner) = &mut net {
            if join_at == Some(Some(i)) {
                lock_userns = joiner.join().map_err(net_err)?;
            } else {
                joiner.relax();
            }
        }
        steps.until(i, root)
    })
    .map_err(|e| steps.error(sb, e))?;
    // Joined once the root is entered if nothing of the root depended on
    // it, and made ready for the program then (`Entered::join_net`).
    log::info!(
        "assembled {} ({} strategy)",
        sb.spec.rootfs.escaped(),
        assembled.strategy().name()
    );
    steps
        .until(usize::MAX, assembled.root())
        .map_err(|e| steps.error(sb, e))?;
    if let Some(cwd) = &cwd {
        assembled
            .root()
            .mkdir_all(cwd, 0o755)
            .map_err(|e| CliError::setup(format!("working directory: {}", sb.explain(&e))))?;
    }
    rustix::process::umask(old_umask);
    stdio_to_sandbox_null(assembled.root(), procfs)?;
    let lock = made_lock(lock, lock_userns, procfs);
    // Made while the caller's procfs is still reachable.
    let procfs = if sb.extras.reports() || sb.extras.exec_label.is_some() {
        Some(procfs.clone())
    } else {
        None
    };
    assembled.enter(sb.enter).map_err(setup_err(sb))?;
    if let Some(cwd) = &cwd {
        chdir_in_root(cwd)?;
    } else if let Some(dir) = &sb.extras.chdir {
        rustix::process::chdir(dir.as_path())
            .map_err(|e| CliError::setup(format!("Can't chdir to {}: {e}", dir.display())))?;
    } else {
        // The first that exists inside; `/` (where entering left us)
        // otherwise. The root is this process's root now: a plain chdir
        // cannot leave it (saferoot holds no fd outside it either).
        for dir in &sb.extras.cwd_fallbacks {
            if rustix::process::chdir(dir.as_path()).is_ok() {
                break;
            }
        }
    }
    Ok(Entered { lock, procfs, net })
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
fn stdio_to_sandbox_null(root: &Root, procfs: &Procfs) -> Result<(), CliError> {
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
            let h = match root.resolve("/dev/null") {
                Ok(h) => h,
                // A root without /dev/null (bubblewrap's command line
                // without --dev): stdio keeps the host's, the same
                // harmless device.
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(fail(e)),
            };
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
            null = Some(
                h.reopen_with(procfs, rustix::fs::OFlags::RDWR)
                    .map_err(fail)?,
            );
        }
        if let Some(f) = &null {
            dup2(f).map_err(|e| CliError::setup(format!("dup2 /dev/null onto stdio: {e}")))?;
        }
    }
    Ok(())
}
