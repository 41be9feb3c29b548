//! Kernel feature probes: one function per feature in [`crate::features`].
//!
//! A probe calls the system call with arguments the kernel rejects and tells
//! `ENOSYS` (or, for new flags, `EINVAL` from the flag check) apart from any
//! other error. The detached-target probe builds two private tmpfs mounts that
//! never become visible and are gone when it returns.

#![allow(unsafe_code)]

use std::os::fd::AsFd;

use linux_raw_sys::general as k;
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MoveMountFlags,
};

use super::raw_errno_of;

/// fsopen and friends (5.2).
pub fn mount_api() -> bool {
    // Flags with every bit set are refused with EINVAL (or EPERM without
    // privilege) by kernels that have the call.
    raw_errno_of(libc::SYS_fsopen, [0, -1, 0, 0, 0]) != Errno::NOSYS
        && raw_errno_of(libc::SYS_open_tree, [-1, 0, 0, 0, 0]) != Errno::NOSYS
        && raw_errno_of(libc::SYS_move_mount, [-1, 0, -1, 0, -1]) != Errno::NOSYS
}

/// openat2 (5.6).
pub fn openat2() -> bool {
    // A NULL `how` with size 0 is EINVAL where openat2 exists.
    raw_errno_of(libc::SYS_openat2, [-1, 0, 0, 0, 0]) != Errno::NOSYS
}

/// mount_setattr (5.12).
pub fn mount_setattr() -> bool {
    raw_errno_of(k::__NR_mount_setattr as libc::c_long, [-1, 0, 0, 0, 0]) != Errno::NOSYS
}

/// MOVE_MOUNT_BENEATH (6.5): older kernels reject the unknown flag with
/// EINVAL before they look at the fds; newer ones answer EBADF.
pub fn move_mount_beneath() -> bool {
    let flags = (k::MOVE_MOUNT_BENEATH | k::MOVE_MOUNT_F_EMPTY_PATH) as libc::c_long;
    let empty = c"".as_ptr() as libc::c_long;
    let e = raw_errno_of(libc::SYS_move_mount, [-1, empty, -1, empty, flags]);
    e != Errno::NOSYS && e != Errno::INVAL
}

/// statmount (6.8).
pub fn statmount() -> bool {
    raw_errno_of(k::__NR_statmount as libc::c_long, [0, 0, 0, 0, 0]) != Errno::NOSYS
}

/// listmount (6.8).
pub fn listmount() -> bool {
    raw_errno_of(k::__NR_listmount as libc::c_long, [0, 0, 0, 0, 0]) != Errno::NOSYS
}

/// open_tree_attr (6.15).
pub fn open_tree_attr() -> bool {
    raw_errno_of(k::__NR_open_tree_attr as libc::c_long, [-1, 0, 0, 0, 0]) != Errno::NOSYS
}

/// move_mount onto a mount of a detached tree (6.15).
///
/// Where we may create mounts, the probe tries the real thing on two private
/// tmpfs instances. Without that privilege it falls back to the presence of
/// open_tree_attr, which arrived in the same release.
pub fn detached_mount_targets() -> bool {
    if !open_tree_attr() {
        return false;
    }
    let tmpfs = || -> Result<std::os::fd::OwnedFd, Errno> {
        let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_create(&fs)?;
        fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
    };
    let (lower, upper) = match (tmpfs(), tmpfs()) {
        (Ok(l), Ok(u)) => (l, u),
        _ => return true,
    };
    let r = move_mount(
        upper.as_fd(),
        c"",
        lower.as_fd(),
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    );
    r.is_ok()
}

/// overlayfs layers given as fds (`FSCONFIG_SET_FD` with `lowerdir+`, 6.13).
///
/// Hands the root of a private, detached tmpfs to an overlay context as
/// `lowerdir+`. Kernels before 6.13 refuse a file for the key (`EINVAL`;
/// before 6.8 the key itself is unknown). The context is never created: the
/// overlay is not made and the tmpfs vanishes with its fd. Without the
/// privilege to make either, the answer is "no", so callers take the path
/// that does not need the feature.
pub fn overlay_layer_fds() -> bool {
    let probe = || -> Result<(), Errno> {
        let tmp = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_create(&tmp)?;
        let mnt = fsmount(&tmp, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
        // fsmount gives an O_PATH fd, which fsconfig cannot take: open the
        // directory for real through it.
        let dir = rustix::fs::openat(
            &mnt,
            c".",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let ovl = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_set_fd(&ovl, c"lowerdir+", dir.as_fd())
    };
    probe().is_ok()
}

/// setxattrat (6.13): a NULL attribute name is refused (`EFAULT`) by a
/// kernel that has the call, before anything is looked up.
pub fn setxattrat() -> bool {
    // SAFETY: every pointer is NULL and the fd invalid; the kernel copies
    // the (absent) arguments in and fails before it touches any file.
    let r = unsafe {
        libc::syscall(
            k::__NR_setxattrat as libc::c_long,
            -1 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            std::mem::size_of::<k::xattr_args>() as libc::c_long,
        )
    };
    r >= 0 || super::last_errno() != libc::ENOSYS
}
