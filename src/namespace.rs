//! Namespaces of the calling thread.
//!
//! rustix marks `unshare` unsafe because `CLONE_FILES` splits the fd table
//! between threads, which can turn fds held by other threads into dangling
//! numbers. [`unshare`] refuses that flag and is therefore safe; with
//! `CLONE_FS | CLONE_NEWNS` a single thread gets a mount namespace of its
//! own, which is how saferoot's helpers, its command and its tests confine
//! what they mount.

use rustix::io::Errno;
use rustix::thread::UnshareFlags;

/// `unshare(flags)` for the calling thread, for every flag except
/// `CLONE_FILES`, which is refused with `EINVAL`.
pub fn unshare(flags: UnshareFlags) -> Result<(), Errno> {
    crate::sys::unshare(flags)
}

/// Gives the calling thread an fs struct of its own (`unshare(CLONE_FS)`:
/// its root, working directory and umask are then shared with no other
/// thread), and lets saferoot change those in place for the operations
/// that need them (exact modes for device nodes, an unmount from a working
/// directory), restoring them afterwards, instead of starting a helper
/// thread each time. For single-threaded setup processes, where a helper
/// thread costs time (and, in a new pid namespace, a pid).
pub fn own_fs() -> Result<(), Errno> {
    crate::fsthread::make_private()
}
