//! Entering an assembled root: `pivot_root`, move-root or `chroot`, all
//! through the root's fd (`fchdir` to it, then operate on `.`), followed by
//! the container-side fix-ups: stdio that pointed at the host's `/dev/null`
//! is reopened on the container's, the working directory is created and
//! checked to be inside the root (CVE-2024-21626), the umask is set.
//!
//! Entering changes the root and working directory of the calling process
//! (of every thread that shares its fs struct). Do it in the process that
//! is about to exec the container's program.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use linux_raw_sys::general as k;
use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;
use rustix::mount::{move_mount, unmount, MoveMountFlags, UnmountFlags};

use crate::rootfs::plan::Plan;
use crate::sys::{self, MountAttrArgs};
use crate::{Error, Mount, MountAttr, Propagation, Result, Root};

/// How to make the assembled root the process's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnterMethod {
    /// `pivot_root(".", ".")` with the old root made a slave and detached:
    /// the host's tree is gone from the container's namespace.
    PivotRoot,
    /// Move the root mount over `/` and `chroot` into it, for when
    /// `pivot_root` is impossible (an initramfs root). Host proc and sysfs
    /// mounts outside the root are unmounted or covered first, as runc does.
    MoveRoot,
    /// Plain `chroot`: the host's tree stays reachable in the namespace.
    Chroot,
}

fn os(op: &'static str) -> impl FnOnce(Errno) -> Error {
    move |e| Error::os(op, e)
}

/// Enters the root whose mount fd is `tree`; `root` is the same tree as a
/// [`Root`], for the preparations.
///
/// Everything inside the new root that is needed afterwards (its
/// `/dev/null`, the working directory) is opened through `root` before the
/// switch, so nothing after it depends on the container's `/proc` (a root
/// may have none).
pub(crate) fn enter(
    tree: BorrowedFd<'_>,
    root: &Root,
    plan: &Plan,
    method: EnterMethod,
    host_devnull: Option<(u64, u64)>,
    propagated: &super::assemble::Propagated,
) -> Result<()> {
    // The host's /dev/null identity, to recognise stdio pointing at it.
    let devnull_id = match host_devnull {
        Some(id) => Some(id),
        None => rustix::fs::stat("/dev/null")
            .ok()
            .map(|st| (st.st_dev, st.st_ino)),
    };
    let stdio_on_host_null = devnull_id.map(stdio_pointing_at).unwrap_or_default();
    // The host's own node bound into the root (a user namespace's /dev, a
    // bound host tree) is the same file: nothing to point stdio at.
    let same_node = || {
        root.resolve("/dev/null")
            .and_then(|h| h.stat())
            .is_ok_and(|s| Some((s.dev, s.ino)) == devnull_id)
    };
    let container_null = if stdio_on_host_null.is_empty() || same_node() {
        None
    } else {
        match open_container_null(root) {
            Ok(fd) => Some(fd),
            // A root without /dev/null: stdio keeps the host's, which is
            // the same harmless device; there is nothing to point it at.
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                log::debug!("no /dev/null in the root; stdio keeps the host's: {e}");
                None
            }
            Err(e) => return Err(e),
        }
    };
    let cwd = match &plan.cwd {
        Some(c) => Some(root.mkdir_all(c, 0o755)?),
        None => None,
    };
    match method {
        EnterMethod::PivotRoot => {
            // The old root, held by an fd: after pivot_root it is a mount
            // of its own stacked on the new root's `.`.
            let old_root = rustix::mount::open_tree(
                rustix::fs::CWD,
                c"/",
                rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(os("open the old root"))?;
            rustix::process::fchdir(tree).map_err(os("fchdir to the new root"))?;
            rustix::process::pivot_root(c".", c".").map_err(os("pivot_root(\".\", \".\")"))?;
            // Only the old root and the mounts below it become slaves, so
            // that the unmount does not propagate to the host; the new
            // root's mounts keep their propagation (a path `.` here would
            // name the new root, which the old one covers). As runc does,
            // the unmount then works from inside the old root.
            let args = MountAttrArgs {
                propagation: Propagation::Slave.to_kernel(),
                ..Default::default()
            };
            sys::mount_setattr(
                old_root.as_fd(),
                c"",
                k::AT_EMPTY_PATH | k::AT_RECURSIVE,
                &args,
            )
            .map_err(os("make the old root a slave"))?;
            rustix::process::fchdir(&old_root).map_err(os("fchdir to the old root"))?;
            drop(old_root);
            unmount(c".", UnmountFlags::DETACH).map_err(os("detach the old root"))?;
        }
        EnterMethod::MoveRoot => {
            cover_host_kernel_fs(tree)?;
            rustix::process::fchdir(tree).map_err(os("fchdir to the new root"))?;
            move_mount(
                tree,
                c"",
                rustix::fs::CWD,
                c"/",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .map_err(os("move the root over /"))?;
            rustix::process::chroot(c".").map_err(os("chroot(\".\")"))?;
        }
        EnterMethod::Chroot => {
            rustix::process::fchdir(tree).map_err(os("fchdir to the new root"))?;
            rustix::process::chroot(c".").map_err(os("chroot(\".\")"))?;
        }
    }
    rustix::process::chdir(c"/").map_err(os("chdir(\"/\")"))?;
    // A shared root propagation is applied now, to the container's own `/`
    // (assembly kept the tree a slave: pivot_root refuses a shared root).
    let p = plan.rootfs_propagation;
    if p.kind == Propagation::Shared {
        let args = MountAttrArgs {
            propagation: p.kind.to_kernel(),
            ..Default::default()
        };
        let flags = if p.recursive { k::AT_RECURSIVE } else { 0 };
        sys::mount_setattr(rustix::fs::CWD, c"/", flags, &args).map_err(|e| {
            Error::os_at(format!("mount_setattr(propagation {})", p.name()), "/", e)
        })?;
        // Per-mount settings win over the root's, as they do in runc.
        super::assemble::reapply_propagation(propagated)?;
    }
    if let Some(null) = &container_null {
        for which in stdio_on_host_null {
            which.dup2(null).map_err(os("dup2 /dev/null onto stdio"))?;
        }
    }
    if let (Some(h), Some(path)) = (&cwd, &plan.cwd) {
        rustix::process::fchdir(h).map_err(|e| Error::os_at("fchdir", path, e))?;
        let now =
            rustix::process::getcwd(Vec::new()).map_err(|e| Error::os_at("getcwd", path, e))?;
        if !now.to_bytes().starts_with(b"/") {
            return Err(Error::unsafe_at(
                "enter",
                path,
                "the working directory is outside the root",
            ));
        }
    }
    if let Some(mask) = plan.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    }
    log::debug!("entered {} with {method:?}", plan.rootfs.display());
    Ok(())
}

/// One of stdin, stdout, stderr.
#[derive(Debug, Clone, Copy)]
enum Stdio {
    In,
    Out,
    Err,
}

impl Stdio {
    fn dup2(self, f: &OwnedFd) -> rustix::io::Result<()> {
        match self {
            Stdio::In => rustix::stdio::dup2_stdin(f),
            Stdio::Out => rustix::stdio::dup2_stdout(f),
            Stdio::Err => rustix::stdio::dup2_stderr(f),
        }
    }
}

/// Which of stdin, stdout and stderr are the file with (dev, ino) `id`.
fn stdio_pointing_at(id: (u64, u64)) -> Vec<Stdio> {
    let (i, o, e) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    [
        (Stdio::In, i.as_fd()),
        (Stdio::Out, o.as_fd()),
        (Stdio::Err, e.as_fd()),
    ]
    .into_iter()
    .filter(|(_, fd)| rustix::fs::fstat(fd).is_ok_and(|st| (st.st_dev, st.st_ino) == id))
    .map(|(which, _)| which)
    .collect()
}

/// The container's `/dev/null`, opened read-write through the root's `/dev`
/// without following a symlink at `null`, and checked to be char 1:3.
fn open_container_null(root: &Root) -> Result<OwnedFd> {
    let dev = root.resolve("/dev")?;
    let fd = rustix::fs::openat(
        &dev,
        c"null",
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::os_at("open", "/dev/null", e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::os_at("fstat", "/dev/null", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
        || st.st_rdev != rustix::fs::makedev(1, 3)
    {
        return Err(Error::unsafe_at(
            "reopen stdio",
            "/dev/null",
            "the container's /dev/null is not the character device 1:3",
        ));
    }
    Ok(fd)
}

/// Before move-root: proc and sysfs mounts of the host outside the root
/// are unmounted, or covered with an empty read-only tmpfs where they cannot
/// be. This reads the mount table, which only move-root needs.
///
/// The container's own mounts are told apart by identity, not by path:
/// they are the mount `tree` (found by the mount id of its fd) and every
/// mount below it in the table. A rootfs path through a symlink, or a bind
/// of the rootfs elsewhere, cannot make saferoot take the container's
/// `/proc` for the host's.
fn cover_host_kernel_fs(tree: BorrowedFd<'_>) -> Result<()> {
    let tree_id = rustix::fs::statx(
        tree,
        c"",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::MNT_ID,
    )
    .map_err(os("statx the assembled root"))?
    .stx_mnt_id;
    let table = crate::MountTable::read()?;
    let ours: std::collections::HashSet<u64> =
        table.subtree(tree_id).iter().map(|e| e.id).collect();
    if ours.is_empty() {
        return Err(Error::os(
            "move-root: the assembled root is not in this mount namespace",
            Errno::NOENT,
        ));
    }
    let mut points: Vec<_> = table
        .entries()
        .iter()
        .filter(|e| matches!(e.fs_type.as_str(), "proc" | "sysfs"))
        .filter(|e| !ours.contains(&e.id))
        .map(|e| e.mount_point.clone())
        .collect();
    // Deepest first, so that a parent is not unmounted under a child.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        if unmount(c.as_c_str(), UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).is_ok() {
            continue;
        }
        let target = Root::open(&p)?.handle()?;
        Mount::fs("tmpfs")
            .attrs(MountAttr::RDONLY | MountAttr::NOSUID | MountAttr::NODEV | MountAttr::NOEXEC)
            .mount()?
            .attach(&target)
            .map_err(|e| e.with_path(&p))?
            .forget();
    }
    Ok(())
}
