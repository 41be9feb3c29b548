//! File descriptors named by number on a command line (bubblewrap's
//! `--info-fd 3`, `--file 4 /etc/x`, ...): taken by duplicating them into
//! owned, close-on-exec fds, and the caller's number marked close-on-exec
//! so that the program does not inherit what saferoot consumed. Also the
//! POSIX record lock of `--lock-file`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

use super::last_errno;

/// A close-on-exec duplicate of the caller's fd `number` (`F_DUPFD_CLOEXEC`
/// at 3 or above). `EBADF` when the number is not open.
pub fn dup_inherited(number: i32) -> Result<OwnedFd, Errno> {
    if number < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: F_DUPFD_CLOEXEC reads nothing but the number; a number that
    // is not open answers EBADF. The fd it returns is new and owned by
    // nobody else, so OwnedFd may take it.
    let r = unsafe { libc::fcntl(number, libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    // SAFETY: r is a fresh fd from F_DUPFD_CLOEXEC (see above).
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Marks the caller's fd `number` close-on-exec (it stays open for
/// saferoot). A number that is not open is left alone.
pub fn consume(number: i32) -> Result<(), Errno> {
    // SAFETY: F_GETFD/F_SETFD change only the flags of an fd number in
    // this process's table; no fd is created, closed or dereferenced, and
    // an unknown number answers EBADF.
    let flags = unsafe { libc::fcntl(number, libc::F_GETFD) };
    if flags < 0 {
        return match last_errno() {
            libc::EBADF => Ok(()),
            e => Err(Errno::from_raw_os_error(e)),
        };
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(number, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    Ok(())
}

/// Takes a shared POSIX record lock on the whole file (`F_SETLK` with
/// `F_RDLCK`), without waiting: what `--lock-file` holds while the sandbox
/// runs, and what other processes test with `F_SETLK`/`F_GETLK` (a BSD
/// `flock` would not conflict with theirs).
pub fn read_lock(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: a zeroed flock is a valid value (all integer fields).
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = libc::F_RDLCK as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: F_SETLK reads the flock we own for the duration of the
        // call; the fd is borrowed and stays open.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLK, &l) };
        if r == 0 {
            return Ok(());
        }
        match last_errno() {
            libc::EINTR => continue,
            e => return Err(Errno::from_raw_os_error(e)),
        }
    }
}
