//! Checking what comes in from C: pointers, strings, fds, flags and
//! extensible structs.

use std::ffi::{c_char, c_int, CStr};
use std::mem::size_of;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{saferoot_errkind, saferoot_error, FfiResult};

/// Borrows the object behind a handle pointer, refusing NULL.
///
/// # Safety
///
/// `p` must be NULL or point to a live `T` made by this library, not freed
/// while the returned reference is used.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: as promised by the caller.
    unsafe { p.as_ref() }.ok_or_else(|| saferoot_error::invalid(format!("{what} is NULL")))
}

/// Reads a NUL-terminated UTF-8 string argument, refusing NULL and
/// invalid UTF-8.
///
/// # Safety
///
/// `s` must be NULL or point to a NUL-terminated string that stays valid
/// and unchanged during the call.
pub(crate) unsafe fn str_arg<'a>(s: *const c_char, what: &str) -> FfiResult<&'a str> {
    if s.is_null() {
        return Err(saferoot_error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller promises.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|e| saferoot_error::invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// Like [`str_arg`], but NULL gives `None`.
///
/// # Safety
///
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(s: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if s.is_null() {
        Ok(None)
    } else {
        // SAFETY: passed on from the caller.
        unsafe { str_arg(s, what) }.map(Some)
    }
}

/// Refuses a negative fd.
pub(crate) fn check_fd(fd: c_int, what: &str) -> FfiResult<()> {
    if fd < 0 {
        Err(saferoot_error::invalid(format!(
            "{what} is negative ({fd})"
        )))
    } else {
        Ok(())
    }
}

/// Borrows the caller's fd `fd` for the length of one call, after checking
/// that it is open (`F_GETFD`; a closed fd is refused as invalid input, as
/// [`dup_borrowed`] refuses it). For fds the library only uses during the
/// call; nothing is duplicated.
///
/// # Safety
///
/// The caller keeps `fd` open, and does not close it from another thread,
/// until the returned value is dropped (the C functions that borrow an fd
/// say so).
pub(crate) unsafe fn borrow_fd<'a>(fd: c_int, what: &str) -> FfiResult<BorrowedFd<'a>> {
    check_fd(fd, what)?;
    // SAFETY: fcntl(F_GETFD) takes any integer and changes nothing.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EBADF);
        let kind = if errno == libc::EBADF {
            saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT
        } else {
            saferoot_errkind::SAFEROOT_ERRKIND_OS
        };
        return Err(saferoot_error::new(
            kind,
            errno,
            format!(
                "{what} {fd}: fcntl(F_GETFD): {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        ));
    }
    // SAFETY: `fd` is open, and the caller keeps it open while borrowed.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Duplicates a borrowed fd (`F_DUPFD_CLOEXEC`), so that the library never
/// takes ownership of the caller's fd. The copy is `O_CLOEXEC`.
pub(crate) fn dup_borrowed(fd: c_int, what: &str) -> FfiResult<OwnedFd> {
    check_fd(fd, what)?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes any integer; an fd that is not
    // open gives EBADF and nothing else happens.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EBADF);
        let kind = if errno == libc::EBADF {
            saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT
        } else {
            saferoot_errkind::SAFEROOT_ERRKIND_OS
        };
        return Err(saferoot_error::new(
            kind,
            errno,
            format!(
                "{what} {fd}: fcntl(F_DUPFD_CLOEXEC): {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        ));
    }
    // SAFETY: `r` is a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Refuses flag bits outside `known`.
pub(crate) fn check_flags<F>(flags: F, known: F, what: &str) -> FfiResult<()>
where
    F: Copy
        + std::ops::BitAnd<Output = F>
        + std::ops::Not<Output = F>
        + PartialEq
        + Default
        + std::fmt::LowerHex,
{
    let unknown = flags & !known;
    if unknown != F::default() {
        return Err(saferoot_error::invalid(format!(
            "{what}: unknown flag bits {unknown:#x}"
        )));
    }
    Ok(())
}

/// A C struct whose first field is its size in bytes (`size_t size`), so
/// that fields can be appended in later releases without breaking the ABI,
/// as `struct open_how` of openat2(2).
///
/// # Safety
///
/// Implementors are `#[repr(C)]`, begin with a `usize` size field, and are
/// valid for every bit pattern (integers and raw pointers only).
pub(crate) unsafe trait ExtStruct: Copy + Default {
    /// The size of the first published version; smaller sizes are refused.
    const SIZE_VER0: usize;
    /// The name shown in errors.
    const NAME: &'static str;
}

/// Copies the caller's extensible struct at `p` (NULL gives the default
/// value, all fields zero).
///
/// - `size` smaller than the first version: `EINVAL`;
/// - `size` between the first version and this library's: the fields the
///   caller's version lacks are zero;
/// - `size` larger than this library's (a caller built against a newer
///   header): accepted when every byte this library does not know is zero,
///   otherwise `E2BIG` (invalid-input kind), since silently ignoring an
///   option the caller asked for would be wrong.
///
/// # Safety
///
/// `p` must be NULL or point to at least `(*p).size` readable bytes.
pub(crate) unsafe fn read_ext<T: ExtStruct>(p: *const T) -> FfiResult<T> {
    if p.is_null() {
        return Ok(T::default());
    }
    // SAFETY: the first field of every ExtStruct is a size_t, and `p` is
    // readable for at least that much, as the caller promises.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    let ours = size_of::<T>();
    if size < T::SIZE_VER0 {
        return Err(saferoot_error::invalid(format!(
            "struct {}: size {size} is smaller than the smallest version ({})",
            T::NAME,
            T::SIZE_VER0
        )));
    }
    let bytes = p.cast::<u8>();
    if size > ours {
        // SAFETY: the caller promises `size` readable bytes at `p`.
        let tail = unsafe { std::slice::from_raw_parts(bytes.add(ours), size - ours) };
        if tail.iter().any(|&b| b != 0) {
            return Err(saferoot_error::new(
                saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT,
                libc::E2BIG,
                format!(
                    "struct {}: size {size} has non-zero fields beyond the {ours} bytes this library knows",
                    T::NAME
                ),
            ));
        }
    }
    let mut out = T::default();
    // SAFETY: `min(size, ours)` bytes are readable at `p` and writable in
    // `out`; T is valid for any bit pattern (ExtStruct's contract).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes, (&mut out as *mut T).cast::<u8>(), size.min(ours));
    }
    Ok(out)
}

/// Writes `value` to an optional out-pointer.
///
/// # Safety
///
/// `p` must be NULL or valid for writing a `T`.
pub(crate) unsafe fn write_out<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: as promised by the caller.
        unsafe { p.write(value) };
    }
}

/// A C handle whose state sits behind a lock: `saferoot_mount`,
/// `saferoot_rootfs`. The functions below are the handle code every such
/// type shares: look up the pointer, lock (a lock poisoned by a caught
/// panic is taken over: the state is still consistent, each change being
/// one assignment), free, hand out a borrowed fd.
pub(crate) trait Locked {
    /// The state behind the lock.
    type State;
    /// The handle's name in messages (`mount`, `rootfs`).
    const WHAT: &'static str;
    /// The lock.
    fn state(&self) -> &std::sync::Mutex<Self::State>;
    /// Takes the lock, taking over a poisoned one.
    fn lock(&self) -> std::sync::MutexGuard<'_, Self::State> {
        self.state().lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Refuses NULL and locks the handle `p`.
///
/// # Safety
///
/// `p` must be NULL or a live handle of this library.
pub(crate) unsafe fn lock_handle<'a, H: Locked + 'a>(
    p: *const H,
) -> FfiResult<std::sync::MutexGuard<'a, H::State>> {
    // SAFETY: as promised by the caller.
    let h: &'a H = unsafe { handle(p, H::WHAT)? };
    Ok(h.lock())
}

/// The body of every `_fd` accessor: the fd `fd` picks from the locked
/// state (the handle keeps owning it; the caller only borrows it), or
/// `-EINVAL` when `p` is NULL or `fd` finds none (the handle was detached,
/// entered, ...).
///
/// # Safety
///
/// As for [`lock_handle`].
pub(crate) unsafe fn handle_fd<H: Locked + 'static>(
    p: *const H,
    fd: impl FnOnce(&H::State) -> Option<c_int>,
) -> c_int {
    crate::error::ffi_plain(-libc::EINVAL, || {
        // SAFETY: as promised by the caller.
        let st = unsafe { lock_handle(p)? };
        Ok(fd(&st).unwrap_or(-libc::EINVAL))
    })
}

/// The body of every `_free` function: drops the boxed handle `p`; NULL is
/// a no-op.
///
/// # Safety
///
/// `p` must be NULL or a pointer this library made with `Box::into_raw`
/// that is not used again.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    crate::error::ffi_plain((), || {
        if !p.is_null() {
            // SAFETY: made by Box::into_raw here and freed once, as the
            // caller promises.
            drop(unsafe { Box::from_raw(p) });
        }
        Ok(())
    })
}

/// Takes back the boxed handle `p` that a consuming function
/// (`saferoot_mount_into_fd`, ...) is given, refusing NULL.
///
/// # Safety
///
/// As for [`free_handle`].
pub(crate) unsafe fn take_handle<T>(p: *mut T, what: &str) -> FfiResult<Box<T>> {
    if p.is_null() {
        return Err(saferoot_error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: as promised by the caller.
    Ok(unsafe { Box::from_raw(p) })
}
