//! `/dev`: device nodes, the usual symlinks, `/dev/ptmx` and the console.
//!
//! Everything is created through the root fd: a rootfs whose own `/dev` is
//! a symlink to somewhere on the host gets its nodes inside the root all the
//! same (the symlink is resolved inside the root, CVE-2026-41579), and each
//! node is checked after creation for the type and device number asked for.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Gid, Uid};

use crate::mount::AttachedMount;
use crate::path::{NodeKind, Root};
use crate::rootfs::spec::{DeviceKind, DeviceSpec};
use crate::{Error, ErrorKind, Mount, Result};

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
pub(crate) fn create_devices(
    root: &Root,
    devices: &[DeviceSpec],
    user_namespace: bool,
) -> Result<Vec<AttachedMount>> {
    crate::fsthread::on_fs_thread(|| {
        rustix::process::umask(rustix::fs::Mode::empty());
        let mut binds = Vec::new();
        for d in devices {
            if let Some(b) = create_device(root, d, user_namespace)? {
                binds.push(b);
            }
        }
        Ok(binds)
    })
    .map_err(|e| Error::os("start the device helper thread", e))?
}

fn create_device(
    root: &Root,
    d: &DeviceSpec,
    user_namespace: bool,
) -> Result<Option<AttachedMount>> {
    let path = &d.path;
    if let Some(parent) = path.parent() {
        root.mkdir_all(parent, 0o755)?;
    }
    let kind = node_kind(d);
    let mode = d.file_mode.unwrap_or(0o666);
    if !user_namespace {
        // An existing node (from the rootfs) is replaced, as runc does.
        match root.remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        match root.mknod(path, kind, mode) {
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
                log::debug!("mknod {} refused, binding the host node", path.display());
            }
            Err(e) => return Err(e),
        }
    }
    bind_host_device(root, d, kind).map(Some)
}

fn bind_host_device(root: &Root, d: &DeviceSpec, kind: NodeKind) -> Result<AttachedMount> {
    let path = &d.path;
    let host = Mount::clone_tree_nofollow(path, false)?;
    let st = rustix::fs::fstat(&host).map_err(|e| Error::os_at("fstat host device", path, e))?;
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if ft != kind.file_type() || (kind != NodeKind::Fifo && st.st_rdev != kind.rdev()) {
        return Err(Error::unsafe_at(
            "bind host device",
            path,
            "the host node at this path is not the device asked for",
        ));
    }
    let target = root.create_file(path, 0o644)?;
    host.attach(&target).map_err(|e| e.with_path(path))
}

/// The symlinks every `/dev` has, as `(link, target)`; `/dev/core` only when
/// the host has `/proc/kcore`.
pub(crate) fn default_symlinks() -> Vec<(PathBuf, PathBuf)> {
    let mut links = vec![
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/dev/core", "/proc/kcore"));
    }
    links
        .into_iter()
        .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
        .collect()
}

/// Creates the default `/dev` symlinks and points `/dev/ptmx` at
/// `pts/ptmx`, replacing whatever was at `/dev/ptmx`.
pub(crate) fn setup_links(root: &Root) -> Result<()> {
    for (link, target) in default_symlinks() {
        match root.symlink(&link, &target) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            r => r?,
        }
    }
    match root.remove_file("/dev/ptmx") {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    root.symlink("/dev/ptmx", "pts/ptmx")
}

/// Binds the pty `console` (the peer of the caller's pty) onto
/// `/dev/console`. The target is opened without following a symlink
/// (CVE-2025-52565): a symlink planted there is refused, not followed.
pub(crate) fn setup_console(root: &Root, console: BorrowedFd<'_>) -> Result<AttachedMount> {
    let st = rustix::fs::fstat(console).map_err(|e| Error::os("fstat console", e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::CharacterDevice {
        return Err(Error::invalid(
            "setup console",
            "the console fd is not a character device",
        ));
    }
    // Whatever the rootfs had there (a node, a symlink) goes first.
    match root.remove_file("/dev/console") {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let target = root.create_file("/dev/console", 0o600)?;
    Mount::clone_fd(console.as_fd(), false)?
        .attach(&target)
        .map_err(|e| e.with_path("/dev/console"))
}
