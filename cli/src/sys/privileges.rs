//! The system calls of [`crate::privileges`] that neither rustix nor the
//! `caps` crate give with their errno and by capability number: the
//! bounding set and the ambient set by number (so that capabilities newer
//! than the `caps` crate are dropped too, and a kernel that lacks one is
//! told apart by `EINVAL`), and loading a seccomp filter.

use rustix::io::Errno;

/// The errno of the last failed call, as rustix's type.
fn errno() -> Errno {
    Errno::from_raw_os_error(super::last_errno())
}

/// `prctl(PR_CAPBSET_READ, cap)`: whether capability number `cap` is in
/// the calling thread's bounding set. `EINVAL` when the kernel has no
/// capability with that number.
pub fn bounding_set_has(cap: u32) -> Result<bool, Errno> {
    // SAFETY: PR_CAPBSET_READ takes a capability number and reads nothing
    // from memory.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    match r {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(errno()),
    }
}

/// `prctl(PR_CAPBSET_DROP, cap)`: removes capability number `cap` from the
/// calling thread's bounding set (needs `CAP_SETPCAP`). `EINVAL` when the
/// kernel has no capability with that number.
pub fn bounding_set_drop(cap: u32) -> Result<(), Errno> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number and reads nothing
    // from memory.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)`: adds capability
/// number `cap` to the calling thread's ambient set. `EPERM` when it is
/// not both permitted and inheritable (or `SECBIT_NO_CAP_AMBIENT_RAISE` is
/// set), `EINVAL` when the kernel has no such capability or no ambient set.
pub fn ambient_raise(cap: u32) -> Result<(), Errno> {
    // SAFETY: PR_CAP_AMBIENT_RAISE takes a capability number and reads
    // nothing from memory; the unused arguments must be zero.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(cap),
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)`: attaches the classic BPF
/// program `filter` to the calling thread (and the processes it starts).
/// The kernel needs `no_new_privs` or `CAP_SYS_ADMIN` (`EACCES`
/// otherwise), and refuses a program it cannot verify with `EINVAL`.
pub fn seccomp_set_filter(filter: &[libc::sock_filter]) -> Result<(), Errno> {
    let len = u16::try_from(filter.len()).map_err(|_| Errno::INVAL)?;
    if len == 0 {
        return Err(Errno::INVAL);
    }
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: filter.as_ptr().cast_mut(),
    };
    // Through prctl(PR_SET_SECCOMP) rather than seccomp(2): the same
    // operation without flags, and a filter loaded earlier that allows
    // prctl but not seccomp (as bubblewrap's stacked programs expect) still
    // lets the next one load.
    // SAFETY: `prog` points at `filter`, `len` instructions that live
    // until the call returns; the kernel copies them and writes nothing.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}
