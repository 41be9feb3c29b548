//! `/dev`: the mounts under it, device nodes, the usual symlinks,
//! `/dev/ptmx` and the console.
//!
//! The image controls what is at `/dev` in the rootfs, and a container
//! controls what is in its volumes. An image whose `/dev` is a symlink to a
//! volume (`/dev -> /vol`) must not get device nodes, directories or
//! symlinks written into that volume (runc CVE-2026-41579, crun
//! CVE-2026-47766). So nothing here resolves a path by following symlinks:
//! [`DevScope`] walks each path from the root one component at a time with
//! `O_PATH | O_NOFOLLOW`, refuses a symlink, and refuses a directory that
//! lies on a mount other than the rootfs mount itself or a tmpfs saferoot
//! made in this assembly (a bind-mounted volume, a mount that was under the
//! rootfs already). Directories are created (`mkdirat`) only inside
//! directories that passed that check, and every node, link and mount
//! point is then made in the directory fd the walk ended on. The default
//! devices and links go only into the tmpfs saferoot mounted on `/dev`
//! ([`DevScope::check_dev`]). Each node is checked after creation for the
//! type and device number asked for.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, StatxFlags, Uid};
use rustix::io::Errno;

use crate::mount::AttachedMount;
use crate::mount::Scope;
use crate::path::{type_name, NodeKind, Root};
use crate::rootfs::mounts::{self, Made};
use crate::rootfs::plan::{MountKind, PlannedMount};
use crate::rootfs::policy;
use crate::rootfs::spec::{DeviceKind, DeviceSpec};
use crate::{Error, ErrorKind, Mount, Result};

const OP: &str = "set up /dev and devices";

/// Whether `dest` is `/dev` or below it (lexically).
pub(crate) fn is_dev_path(dest: &Path) -> bool {
    policy::clean(dest).starts_with("/dev")
}

/// The mount id of the inode `fd` is on.
fn mount_id(fd: impl AsFd, path: &Path) -> Result<(FileType, u64)> {
    let st = rustix::fs::statx(
        fd,
        c"",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::MNT_ID,
    )
    .map_err(|e| Error::os_at("statx", path, e))?;
    Ok((FileType::from_raw_mode(st.stx_mode.into()), st.stx_mnt_id))
}

/// Where `/dev` setup may create things: the mounts it may write to, and
/// the tmpfs saferoot mounted on `/dev`.
#[derive(Debug)]
pub(crate) struct DevScope {
    /// The rootfs mount (the root of the tree being built) and every
    /// tmpfs saferoot made in this assembly.
    writable: Vec<u64>,
    /// The tmpfs saferoot mounted on `/dev`, the last one if several.
    dev_tmpfs: Option<u64>,
}

impl DevScope {
    /// A scope with only the rootfs mount of `root` in it.
    pub(crate) fn new(root: &Root) -> Result<DevScope> {
        let (_, id) = mount_id(root, Path::new("/"))?;
        Ok(DevScope {
            writable: vec![id],
            dev_tmpfs: None,
        })
    }

    /// Records a mount saferoot made: a new tmpfs may be written to, and a
    /// new tmpfs on `/dev` is the one the default devices go into.
    pub(crate) fn made(&mut self, pm: &PlannedMount, m: &AttachedMount) -> Result<()> {
        if !matches!(&pm.kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs") {
            if policy::clean(&pm.destination) == Path::new("/dev") {
                self.dev_tmpfs = None;
            }
            return Ok(());
        }
        let (_, id) = mount_id(m, &pm.destination)?;
        self.writable.push(id);
        if policy::clean(&pm.destination) == Path::new("/dev") {
            self.dev_tmpfs = Some(id);
        }
        Ok(())
    }

    /// Checks, on the fd, that `/dev` in `root` (not following a symlink)
    /// is the root of the tmpfs saferoot mounted there in this assembly:
    /// the only place the default devices and links are put.
    pub(crate) fn check_dev(&self, root: &Root) -> Result<()> {
        let dev = Path::new("/dev");
        let h =
            match root.resolve_nofollow(dev) {
                Ok(h) => h,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::invalid_at(
                    OP,
                    dev,
                    "there is no /dev to put the default devices in (the plan has no /dev tmpfs)",
                )),
                Err(e) => return Err(e),
            };
        let (ft, id) = mount_id(&h, dev)?;
        if ft == FileType::Symlink {
            return Err(refuse_symlink(dev));
        }
        if ft != FileType::Directory {
            return Err(Error::invalid_at(
                OP,
                dev,
                format!("{} is a {}, not a directory", dev.display(), type_name(ft)),
            ));
        }
        if self.dev_tmpfs != Some(id) {
            return Err(Error::invalid_at(
                OP,
                dev,
                "/dev is not a tmpfs saferoot mounted there in this assembly (it is the \
                 rootfs's own directory, a bind mount or another filesystem); the default \
                 devices are only created in saferoot's own /dev tmpfs",
            ));
        }
        Ok(())
    }

    /// The directory `path` of `root`, reached without following any
    /// symlink, with every directory on the way on a writable mount;
    /// missing directories are created (mode 0755 less the umask) inside
    /// directories that passed the check. Returned as a [`Root`] for
    /// creating things in it.
    pub(crate) fn dir(&self, root: &Root, path: &Path) -> Result<Root> {
        let mut cur: OwnedFd =
            crate::sys::dup_cloexec(root.as_fd()).map_err(|e| Error::os("dup root", e))?;
        let mut at = PathBuf::from("/");
        for c in path.components() {
            let name = match c {
                Component::Normal(n) => n,
                Component::RootDir | Component::CurDir => continue,
                _ => {
                    return Err(Error::invalid_at(
                        OP,
                        path,
                        "paths under /dev and device paths may not contain ..",
                    ))
                }
            };
            at.push(name);
            let fd = open_or_mkdir(&cur, name, &at)?;
            let (ft, id) = mount_id(&fd, &at)?;
            if ft == FileType::Symlink {
                return Err(refuse_symlink(&at));
            }
            if ft != FileType::Directory {
                return Err(Error::invalid_at(
                    OP,
                    &at,
                    format!("{} is a {}, not a directory", at.display(), type_name(ft)),
                ));
            }
            if !self.writable.contains(&id) {
                return Err(Error::invalid_at(
                    OP,
                    &at,
                    format!(
                        "{} is on a mount saferoot did not make in this assembly (a \
                         bind-mounted volume, or a mount already under the rootfs); /dev \
                         entries and devices are created only on the rootfs mount or a tmpfs \
                         saferoot made",
                        at.display()
                    ),
                ));
            }
            cur = fd;
        }
        Root::from_fd(cur)
    }

    /// The parent directory of `path` (see [`dir`](Self::dir)) and the
    /// final name as an absolute path inside it (`/name`). A symlink at the
    /// final name is refused when `no_symlink` is set.
    pub(crate) fn parent(
        &self,
        root: &Root,
        path: &Path,
        no_symlink: bool,
    ) -> Result<(Root, PathBuf)> {
        let (parent, name) = crate::path::split_parent("set up /dev", path)?;
        let dir = self.dir(root, parent)?;
        let name = Path::new("/").join(name);
        if no_symlink {
            if let Ok(h) = dir.resolve_nofollow(&name) {
                if h.file_type()? == FileType::Symlink {
                    return Err(refuse_symlink(path));
                }
            }
        }
        Ok((dir, name))
    }
}

impl DevScope {
    /// [`parent`](Self::parent) without the symlink check, reusing the
    /// directory in `last` when `path` has the same parent as the path it
    /// was reached for (an fd to a directory that passed the checks stays
    /// that directory), and leaving the one it used there.
    fn parent_reusing<'l>(
        &self,
        root: &Root,
        path: &Path,
        last: &'l mut Option<(PathBuf, Root)>,
    ) -> Result<(&'l Root, PathBuf)> {
        let (parent, name) = crate::path::split_parent("set up /dev", path)?;
        let name = Path::new("/").join(name);
        let dir = match last.take() {
            Some((p, dir)) if p == parent => dir,
            _ => self.dir(root, parent)?,
        };
        let (_, dir) = last.insert((parent.to_path_buf(), dir));
        Ok((dir, name))
    }
}

fn refuse_symlink(at: &Path) -> Error {
    Error::invalid_at(
        OP,
        at,
        format!(
            "{} is a symlink; /dev setup never creates, replaces or removes anything \
             through a symlink (the image may point it at a volume or a host path)",
            at.display()
        ),
    )
}

/// Opens the directory `name` in `parent` (`O_PATH | O_NOFOLLOW`: a symlink
/// is opened as itself), creating it when missing.
fn open_or_mkdir(parent: &OwnedFd, name: &std::ffi::OsStr, at: &Path) -> Result<OwnedFd> {
    for _ in 0..2 {
        match rustix::fs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) => {
                        crate::journal::record(
                            parent.as_fd(),
                            name,
                            crate::journal::Made::Type(FileType::Directory),
                        );
                        continue;
                    }
                    Err(Errno::EXIST) => continue,
                    Err(e) => return Err(Error::os_at("mkdirat", at, e)),
                }
            }
            Err(e) => return Err(Error::os_at("open", at, e)),
        }
    }
    Err(Error::os_at("open", at, Errno::NOENT))
}

/// `e`, with a path reported relative to the directory `dir` (`/name`)
/// turned back into the path inside the root.
fn reroot(mut e: Error, dir: &Path) -> Error {
    let fix = |p: &mut PathBuf| {
        if let Ok(rel) = p.strip_prefix("/") {
            *p = dir.join(rel);
        }
    };
    use crate::error::Repr;
    match e.repr_mut() {
        Repr::Os { path: Some(p), .. }
        | Repr::InvalidInput { path: Some(p), .. }
        | Repr::SafetyViolation { path: Some(p), .. }
        | Repr::Resolve { path: p, .. } => fix(p),
        _ => {}
    }
    e
}

/// Makes the planned mount `pm`, whose destination is `/dev` or below it,
/// when saferoot sets up `/dev`: the destination's parent is reached with
/// [`DevScope::parent`] (no symlink followed, nothing created outside the
/// rootfs mount and saferoot's own tmpfs mounts), a symlink at the
/// destination itself is refused, and the mount is made inside that
/// parent.
pub(crate) fn make_mount(
    root: &Root,
    scope: &DevScope,
    pm: &PlannedMount,
    user_namespace: bool,
    namespaces: &crate::rootfs::spec::Namespaces,
) -> Result<Made> {
    let dest = &pm.destination;
    let (dir, name) = scope.parent(root, dest, true)?;
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let mut local = pm.clone();
    local.destination = name;
    // Resolved again inside `dir` by `mounts::make`: never follow a
    // symlink that appeared there since the check (a race could at worst
    // put the mount onto the symlink itself, inside `dir`).
    local.dest_nofollow = true;
    mounts::make(&dir, &local, user_namespace, namespaces).map_err(|e| reroot(e, parent))
}

fn node_kind(d: &DeviceSpec) -> NodeKind {
    match d.kind {
        DeviceKind::Char => NodeKind::Char {
            major: d.major,
            minor: d.minor,
        },
        DeviceKind::Block => NodeKind::Block {
            major: d.major,
            minor: d.minor,
        },
        DeviceKind::Fifo => NodeKind::Fifo,
    }
}

/// Creates the device nodes. In a user namespace, or when `mknod` is
/// refused, the host's node at the same path is bound instead (after
/// checking it is the device asked for). Returns the bind mounts made.
///
/// Runs on a helper thread with umask 0, so the modes are exactly as given
/// without touching the caller's umask.
///
/// Each node's parent directory is reached with [`DevScope::parent`]: no
/// symlink is followed, and a parent on a mount other than the rootfs
/// mount or a tmpfs saferoot made is refused, so that no node is ever put
/// into a volume.
///
/// `index[k]` is the index of `devices[k]` in the spec (`None` for a
/// default device); an error about a spec device names it `devices[i]`.
pub(crate) fn create_devices(
    root: &Root,
    scope: &DevScope,
    devices: &[DeviceSpec],
    index: &[Option<usize>],
    user_namespace: bool,
) -> Result<Vec<AttachedMount>> {
    crate::fsthread::on_fs_thread(|| {
        rustix::process::umask(rustix::fs::Mode::empty());
        let mut binds = Vec::new();
        // The directory the last device went into: the next one with the
        // same parent (all of the defaults) goes into the same fd.
        let mut last: Option<(PathBuf, Root)> = None;
        for (k, d) in devices.iter().enumerate() {
            let made = scope
                .parent_reusing(root, &d.path, &mut last)
                .and_then(|(dir, name)| {
                    let parent = d.path.parent().unwrap_or(Path::new("/"));
                    create_device(dir, &name, d, user_namespace).map_err(|e| reroot(e, parent))
                });
            let made = match (made, index.get(k).copied().flatten()) {
                (Err(e), Some(i)) => return Err(crate::rootfs::plan::device_err(i, &d.path, e)),
                (Err(e), None) => return Err(e),
                (Ok(m), _) => m,
            };
            if let Some(b) = made {
                binds.push(b);
            }
        }
        Ok(binds)
    })
    .map_err(|e| Error::os("start the device helper thread", e))?
}

/// Creates `d` as `name` (`/name`) in the directory `dir`.
fn create_device(
    dir: &Root,
    name: &Path,
    d: &DeviceSpec,
    user_namespace: bool,
) -> Result<Option<AttachedMount>> {
    let path = name;
    let kind = node_kind(d);
    let mode = d.file_mode.unwrap_or(0o666);
    if !user_namespace {
        // An existing entry (from the rootfs) is replaced, as runc does: the
        // name is unlinked in its directory, never followed, and the node
        // made again. (Made first: in a fresh /dev nothing is there.)
        let made = match dir.mknod(path, kind, mode) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                match dir.remove_file(path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                dir.mknod(path, kind, mode)
            }
            made => made,
        };
        match made {
            Ok(h) => {
                rustix::fs::chownat(
                    &h,
                    c"",
                    Some(Uid::from_raw(d.uid.unwrap_or(0))),
                    Some(Gid::from_raw(d.gid.unwrap_or(0))),
                    AtFlags::EMPTY_PATH,
                )
                .map_err(|e| Error::os_at("chown device", path, e))?;
                return Ok(None);
            }
            Err(e) if e.kind() == ErrorKind::Permission => {
                log::debug!("mknod {} refused, binding the host node", d.path.display());
            }
            Err(e) => return Err(e),
        }
    }
    bind_host_device(dir, name, d, kind).map(Some)
}

/// Binds the host's node at `d.path` onto a new empty file `name` in `dir`.
fn bind_host_device(
    dir: &Root,
    name: &Path,
    d: &DeviceSpec,
    kind: NodeKind,
) -> Result<AttachedMount> {
    let path = &d.path;
    let host = Mount::clone_tree_nofollow(path, Scope::Mount)?;
    let st = rustix::fs::fstat(&host).map_err(|e| Error::os_at("fstat host device", path, e))?;
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if ft != kind.file_type() || (kind != NodeKind::Fifo && st.st_rdev != kind.rdev()) {
        return Err(Error::unsafe_at(
            "bind host device",
            path,
            "the host node at this path is not the device asked for",
        ));
    }
    let target = dir.create_file(name, 0o644)?;
    host.attach(&target)
        .map_err(|e| Error::from(e).with_path(name))
}

/// The symlinks every `/dev` has, as `(link, target)`; `/dev/core` only when
/// the host has `/proc/kcore`.
pub(crate) fn default_symlinks() -> Vec<(PathBuf, PathBuf)> {
    let mut links = crate::rootfs::policy::DEFAULT_DEV_SYMLINKS.to_vec();
    let core = crate::rootfs::policy::DEV_CORE_SYMLINK;
    if Path::new(core.1).exists() {
        links.push(core);
    }
    links
        .into_iter()
        .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
        .collect()
}

/// Creates the default `/dev` symlinks and points `/dev/ptmx` at
/// `pts/ptmx`, replacing whatever was at `/dev/ptmx`. Everything is made
/// in the `/dev` directory reached with [`DevScope::dir`].
pub(crate) fn setup_links(root: &Root, scope: &DevScope) -> Result<()> {
    let dev = Path::new("/dev");
    let dir = scope.dir(root, dev)?;
    let run = || -> Result<()> {
        for (link, target) in default_symlinks() {
            let name = Path::new("/").join(link.strip_prefix(dev).unwrap_or(&link));
            match dir.symlink(&target, &name) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                r => r?,
            }
        }
        match dir.remove_file("/ptmx") {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        dir.symlink("pts/ptmx", "/ptmx")
    };
    run().map_err(|e| reroot(e, dev))
}

/// Binds the pty `console` (the peer of the caller's pty) onto
/// `/dev/console`. The target is opened without following a symlink
/// (CVE-2025-52565): a symlink planted there is refused, not followed.
/// When saferoot sets up `/dev` (`scope` given), `/dev` itself is reached
/// with [`DevScope::dir`] too; a `/dev` the spec binds is the caller's.
pub(crate) fn setup_console(
    root: &Root,
    scope: Option<&DevScope>,
    console: BorrowedFd<'_>,
) -> Result<AttachedMount> {
    match scope {
        Some(scope) => {
            let dev = Path::new("/dev");
            let dir = scope.dir(root, dev)?;
            bind_console(&dir, Path::new("/console"), console).map_err(|e| reroot(e, dev))
        }
        None => bind_console(root, Path::new("/dev/console"), console),
    }
}

fn bind_console(root: &Root, path: &Path, console: BorrowedFd<'_>) -> Result<AttachedMount> {
    let st = rustix::fs::fstat(console).map_err(|e| Error::os("fstat console", e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::CharacterDevice {
        return Err(Error::invalid(
            "setup console",
            "the console fd is not a character device",
        ));
    }
    // Whatever the rootfs had there (a node, a symlink) goes first.
    match root.remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let target = root.create_file(path, 0o600)?;
    Mount::clone_fd(console.as_fd(), Scope::Mount)?
        .attach(&target)
        .map_err(|e| Error::from(e).with_path(path))
}
