//! Raw system calls that rustix does not wrap, and kernel feature probes.
//!
//! This is the one module of the library with `unsafe` code (the crate
//! denies `unsafe_code`; only the files of this module allow it). It is
//! private: the rest of the crate offers safe, typed homes for what users
//! need (`mount::change_attrs`, `namespace::unshare`). Each wrapper
//! takes and returns owned or borrowed fds and plain Rust values, so that the
//! rest of the crate stays safe. Errors are plain [`Errno`]s; callers add the
//! operation and the path when they turn them into [`crate::Error`]s.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use linux_raw_sys::general as k;
use rustix::io::Errno;

pub mod probe;
#[cfg(feature = "test-hooks")]
pub mod seccomp;
pub mod statmount;
pub mod userns;

/// A second fd for the open file `fd`, close-on-exec, numbered 3 or
/// above: one `fcntl(F_DUPFD_CLOEXEC)`. The standard library's
/// `try_clone` goes through libc, and musl follows that call with an
/// `F_SETFD` of its own (for kernels older than any saferoot supports).
pub fn dup_cloexec(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    rustix::io::fcntl_dupfd_cloexec(fd, 3)
}

/// The arguments of `mount_setattr(2)`, as the kernel's `struct mount_attr`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MountAttrArgs<'fd> {
    /// `MOUNT_ATTR_*` bits to set.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits to clear.
    pub attr_clr: u64,
    /// `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED`, `MS_UNBINDABLE` or 0.
    pub propagation: u64,
    /// The user namespace fd for `MOUNT_ATTR_IDMAP`, or `None`.
    pub userns_fd: Option<BorrowedFd<'fd>>,
}

impl MountAttrArgs<'_> {
    fn to_kernel(self) -> k::mount_attr {
        k::mount_attr {
            attr_set: self.attr_set,
            attr_clr: self.attr_clr,
            propagation: self.propagation,
            userns_fd: self.userns_fd.map_or(0, |fd| fd.as_raw_fd() as u64),
        }
    }
}

fn ret_unit(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno::from_raw_os_error(last_errno()))
    } else {
        Ok(())
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `mount_setattr(dirfd, path, flags, attr)`.
///
/// `at_flags` takes `AT_EMPTY_PATH`, `AT_RECURSIVE`, `AT_SYMLINK_NOFOLLOW`
/// and `AT_NO_AUTOMOUNT`. saferoot always passes an fd with an empty path.
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    at_flags: u32,
    args: &MountAttrArgs,
) -> Result<(), Errno> {
    let attr = args.to_kernel();
    // SAFETY: `path` is a valid NUL-terminated string and `attr` a valid
    // `struct mount_attr` that outlive the call; the size passed is its size.
    let r = unsafe {
        libc::syscall(
            k::__NR_mount_setattr as libc::c_long,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            at_flags as libc::c_uint,
            &attr as *const k::mount_attr,
            std::mem::size_of::<k::mount_attr>(),
        )
    };
    ret_unit(r)
}

/// Calls a system call with arguments that the kernel must reject, and
/// returns the errno it answered with (`ENOSYS` when it does not exist).
///
/// Only used by the probes, with argument sets chosen so that no kernel
/// version could act on them.
fn raw_errno_of(nr: libc::c_long, args: [libc::c_long; 5]) -> Errno {
    // SAFETY: the probes pass only invalid fds (-1), NULL pointers with zero
    // sizes, or out-of-range flags, which every kernel rejects before it
    // dereferences anything or allocates anything on our behalf.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
    if r >= 0 {
        // Should never happen with the argument sets used; treat it as
        // "exists". A returned fd cannot be closed safely here without
        // knowing it is one, so the probes never pass arguments that create.
        Errno::from_raw_os_error(0)
    } else {
        Errno::from_raw_os_error(last_errno())
    }
}

/// `setxattrat(dir, entry, AT_SYMLINK_NOFOLLOW, name, {value})` (Linux
/// 6.13): sets an extended attribute on `entry` in the directory `dir`,
/// never following it if it is a symlink. This reaches symlinks and device
/// nodes, which have no fd `fsetxattr` accepts (it refuses `O_PATH` fds,
/// and so does `setxattrat` with `AT_EMPTY_PATH`).
#[cfg(feature = "archive")]
pub fn setxattr_nofollow(
    dir: BorrowedFd<'_>,
    entry: &CStr,
    name: &CStr,
    value: &[u8],
) -> Result<(), Errno> {
    let args = k::xattr_args {
        value: value.as_ptr() as u64,
        size: u32::try_from(value.len()).map_err(|_| Errno::TOOBIG)?,
        flags: 0,
    };
    // SAFETY: `entry` and `name` are NUL-terminated strings, `args` a valid
    // `struct xattr_args` whose `value` points at `value.len()` readable
    // bytes; all outlive the call, and the size passed is the struct's.
    let r = unsafe {
        libc::syscall(
            k::__NR_setxattrat as libc::c_long,
            dir.as_raw_fd(),
            entry.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
            name.as_ptr(),
            &args as *const k::xattr_args,
            std::mem::size_of::<k::xattr_args>(),
        )
    };
    ret_unit(r)
}

/// `ioctl(ns, NS_GET_PARENT)`: the parent of the user (or pid) namespace
/// `ns`, as a new `O_CLOEXEC` nsfs fd. `EPERM` when the parent is outside
/// the caller's reach (an ancestor of its own user namespace's owner).
pub fn ns_get_parent(ns: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // _IO(0xb7, 0x2) from <linux/nsfs.h>.
    const NS_GET_PARENT: libc::c_ulong = 0xb702;
    // SAFETY: NS_GET_PARENT takes no argument and returns a new fd (or -1);
    // `ns` is a valid fd for the duration of the call.
    let r = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_PARENT as _) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    // SAFETY: a successful NS_GET_PARENT returns a fresh fd owned by nobody
    // else. nsfs opens it with O_CLOEXEC.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// `ioctl(ns, NS_GET_NSTYPE)`: the `CLONE_NEW*` flag of the namespace
/// `ns` refers to (`ENOTTY` when it is not an nsfs file).
pub fn ns_type(ns: BorrowedFd<'_>) -> Result<i32, Errno> {
    // _IO(0xb7, 0x3) from <linux/nsfs.h>.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns an int (or -1);
    // `ns` is a valid fd for the duration of the call.
    let r = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_NSTYPE as _) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    Ok(r)
}

/// `unshare(flags)` for the calling thread, for every flag except
/// `CLONE_FILES` (refused with `EINVAL`; see [`unshare_with_files`]).
///
/// With `CLONE_FS | CLONE_NEWNS` a single thread gets a mount namespace of
/// its own, which is how saferoot's helpers and tests confine their effects.
pub fn unshare(flags: rustix::thread::UnshareFlags) -> Result<(), Errno> {
    if flags.contains(rustix::thread::UnshareFlags::FILES) {
        return Err(Errno::INVAL);
    }
    // SAFETY: rustix marks unshare unsafe only because CLONE_FILES splits the
    // fd table between threads; that flag is refused above.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}
