//! Errors across the C boundary.
//!
//! There is no thread-local "last error": Go moves goroutines between OS
//! threads between two calls, so an error must travel with the call that
//! made it. Every fallible function takes a `saferoot_error **err`
//! out-parameter. When `err` is not NULL, `*err` is always written: NULL on
//! success, a new error object on failure, which the caller reads with the
//! accessors below and releases with [`saferoot_error_free`]. The return
//! value carries the errno as well (`-errno` for `int` results, NULL for
//! handles), so a caller that passes NULL for `err` still knows what failed.

use std::any::Any;
use std::ffi::{c_char, c_int, CString};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use saferoot::{Error, ErrorKind};

/// What went wrong, coarsely: the part a caller matches on. Mirrors
/// `saferoot::ErrorKind`; new kinds may be added in later releases, so a
/// `switch` over it needs a `default:` branch.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_errkind {
    /// A path, a mount or a source does not exist (`ENOENT`).
    SAFEROOT_ERRKIND_NOT_FOUND = 1,
    /// The thing to create exists already (`EEXIST`).
    SAFEROOT_ERRKIND_ALREADY_EXISTS = 2,
    /// The caller passed something saferoot refuses: a NULL pointer, a
    /// string that is not UTF-8, a negative fd, unknown flag bits, a wrong
    /// struct size, a relative in-root path, an unknown filesystem or
    /// option. Nothing was changed.
    SAFEROOT_ERRKIND_INVALID_INPUT = 3,
    /// The running kernel lacks a feature the operation needs.
    SAFEROOT_ERRKIND_UNSUPPORTED = 4,
    /// An attack, or something indistinguishable from one, was detected: a
    /// path escaped the root, an inode was swapped, a device was not what
    /// it claimed to be.
    SAFEROOT_ERRKIND_SAFETY_VIOLATION = 5,
    /// The kernel refused for lack of privilege (`EPERM`, `EACCES`).
    SAFEROOT_ERRKIND_PERMISSION = 6,
    /// Any other error reported by the kernel.
    SAFEROOT_ERRKIND_OS = 7,
    /// A bug inside saferoot (a Rust panic, caught at the boundary). The
    /// errno is `EIO`. The library stays usable, but the handle the call
    /// was working on may be in an unknown state: free it.
    SAFEROOT_ERRKIND_INTERNAL = 8,
}

/// An error: errno, kind, message and, when there is one, the in-root path
/// the failed operation was working on.
///
/// Owned by the caller once returned through an `err` out-parameter; free
/// it with `saferoot_error_free`. Errors are immutable and may be read from
/// any thread.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct saferoot_error {
    errno: c_int,
    kind: saferoot_errkind,
    message: CString,
    path: Option<CString>,
}

/// Builds a C string from a Rust string, replacing NUL bytes (which cannot
/// occur in a C string) by U+FFFD.
pub(crate) fn c_string_lossy(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

impl saferoot_error {
    /// An error made by the C layer itself.
    pub(crate) fn new(kind: saferoot_errkind, errno: c_int, message: impl AsRef<str>) -> Self {
        saferoot_error {
            errno,
            kind,
            message: c_string_lossy(message.as_ref()),
            path: None,
        }
    }

    /// Puts `prefix` before the message.
    pub(crate) fn prefix(&mut self, prefix: &str) {
        self.message = c_string_lossy(&format!("{prefix}{}", self.message.to_string_lossy()));
    }

    /// The errno.
    #[cfg(test)]
    pub(crate) fn errno(&self) -> c_int {
        self.errno
    }

    /// Refused input (`EINVAL`, invalid-input kind).
    pub(crate) fn invalid(message: impl AsRef<str>) -> Self {
        Self::new(
            saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT,
            libc::EINVAL,
            message,
        )
    }
}

impl From<Error> for saferoot_error {
    fn from(e: Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::NotFound => saferoot_errkind::SAFEROOT_ERRKIND_NOT_FOUND,
            ErrorKind::AlreadyExists => saferoot_errkind::SAFEROOT_ERRKIND_ALREADY_EXISTS,
            ErrorKind::InvalidInput => saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT,
            ErrorKind::Unsupported => saferoot_errkind::SAFEROOT_ERRKIND_UNSUPPORTED,
            ErrorKind::SafetyViolation => saferoot_errkind::SAFEROOT_ERRKIND_SAFETY_VIOLATION,
            ErrorKind::Permission => saferoot_errkind::SAFEROOT_ERRKIND_PERMISSION,
            _ => saferoot_errkind::SAFEROOT_ERRKIND_OS,
        };
        let errno = match e.errno() {
            n if n > 0 => n,
            _ => libc::EIO,
        };
        let path = e
            .path()
            .filter(|p| !p.as_os_str().is_empty())
            .and_then(|p| CString::new(p.as_os_str().as_bytes()).ok());
        // The message is the error and every source below it that adds
        // something (pathrs keeps the kernel's errno in a source).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        saferoot_error {
            errno,
            kind,
            message: c_string_lossy(&message),
            path,
        }
    }
}

/// Runs the body of an exported function that returns `int`, with the
/// function's `err` out-parameter: see [`ffi_int`].
macro_rules! guard_int {
    ($err:expr, $body:expr) => {{
        let body = $body;
        // SAFETY: every exported function that takes `err` requires it to be
        // NULL or valid for writing one pointer (stated in the header).
        unsafe { $crate::error::ffi_int($err, body) }
    }};
}

/// Runs the body of an exported function that returns a pointer, with the
/// function's `err` out-parameter: see [`ffi_ptr`].
macro_rules! guard_ptr {
    ($err:expr, $body:expr) => {{
        let body = $body;
        // SAFETY: every exported function that takes `err` requires it to be
        // NULL or valid for writing one pointer (stated in the header).
        unsafe { $crate::error::ffi_ptr($err, body) }
    }};
}

pub(crate) use {guard_int, guard_ptr};

/// The result of the body of an exported function.
pub(crate) type FfiResult<T> = Result<T, saferoot_error>;

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `body` with panics caught, and stores its error (or NULL) in `err`.
///
/// # Safety
///
/// `err` must be NULL or valid for writing one pointer.
unsafe fn run<T>(
    err: *mut *mut saferoot_error,
    body: impl FnOnce() -> FfiResult<T>,
) -> Result<T, c_int> {
    let r = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => Err(saferoot_error::new(
            saferoot_errkind::SAFEROOT_ERRKIND_INTERNAL,
            libc::EIO,
            format!("internal panic: {}", panic_message(&*payload)),
        )),
    };
    let (r, out) = match r {
        Ok(v) => (Ok(v), ptr::null_mut()),
        Err(e) => (Err(e.errno), Box::into_raw(Box::new(e))),
    };
    if err.is_null() {
        if !out.is_null() {
            // SAFETY: `out` was just made by Box::into_raw and is not shared.
            drop(unsafe { Box::from_raw(out) });
        }
    } else {
        // SAFETY: the caller guarantees `err` is valid for a write when it
        // is not NULL.
        unsafe { err.write(out) };
    }
    r
}

/// Runs the body of a function that returns a non-negative `int` (0 or an
/// fd) on success and `-errno` on failure.
///
/// # Safety
///
/// `err` must be NULL or valid for writing one pointer.
pub(crate) unsafe fn ffi_int(
    err: *mut *mut saferoot_error,
    body: impl FnOnce() -> FfiResult<c_int>,
) -> c_int {
    // SAFETY: passed on from the caller.
    match unsafe { run(err, body) } {
        Ok(n) => n,
        Err(errno) => -errno,
    }
}

/// Runs the body of a function that returns a pointer, NULL on failure.
///
/// # Safety
///
/// `err` must be NULL or valid for writing one pointer.
pub(crate) unsafe fn ffi_ptr<T>(
    err: *mut *mut saferoot_error,
    body: impl FnOnce() -> FfiResult<*mut T>,
) -> *mut T {
    // SAFETY: passed on from the caller.
    unsafe { run(err, body) }.unwrap_or(ptr::null_mut())
}

/// Runs the body of a function without an error out-parameter, giving
/// `fallback` when it fails or panics.
pub(crate) fn ffi_plain<T>(fallback: T, body: impl FnOnce() -> FfiResult<T>) -> T {
    // SAFETY: a NULL `err` is never written.
    unsafe { run(ptr::null_mut(), body) }.unwrap_or(fallback)
}

/// The errno of `err`: a positive `E*` value such as `ENOENT`. 0 when
/// `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_error_errno(err: *const saferoot_error) -> c_int {
    ffi_plain(0, || {
        // SAFETY: the caller passes NULL or a live error from this library.
        Ok(unsafe { err.as_ref() }.map_or(0, |e| e.errno))
    })
}

/// The kind of `err`. `SAFEROOT_ERRKIND_INVALID_INPUT` when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_error_kind(err: *const saferoot_error) -> saferoot_errkind {
    ffi_plain(saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT, || {
        // SAFETY: the caller passes NULL or a live error from this library.
        Ok(unsafe { err.as_ref() }
            .map_or(saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT, |e| e.kind))
    })
}

/// A human-readable message naming the operation, the path and the cause,
/// e.g. `resolve at /etc/passwd: ...`. The string is UTF-8, NUL-terminated
/// and owned by `err`: it stays valid until `saferoot_error_free(err)`.
/// Returns a static empty string when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_error_message(err: *const saferoot_error) -> *const c_char {
    ffi_plain(c"".as_ptr(), || {
        // SAFETY: the caller passes NULL or a live error from this library.
        Ok(unsafe { err.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr()))
    })
}

/// The in-root path the failed operation was working on, or NULL when it
/// had none (or `err` is NULL). Owned by `err`, valid until
/// `saferoot_error_free(err)`.
#[no_mangle]
pub unsafe extern "C" fn saferoot_error_path(err: *const saferoot_error) -> *const c_char {
    ffi_plain(ptr::null(), || {
        // SAFETY: the caller passes NULL or a live error from this library.
        Ok(unsafe { err.as_ref() }
            .and_then(|e| e.path.as_ref())
            .map_or(ptr::null(), |p| p.as_ptr()))
    })
}

/// Frees an error returned through an `err` out-parameter. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_error_free(err: *mut saferoot_error) {
    // SAFETY: a non-NULL `err` was made by Box::into_raw in `run` and is
    // freed once, as the caller promises.
    unsafe { crate::util::free_handle(err) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn panic_becomes_internal_error() {
        let mut err: *mut saferoot_error = ptr::null_mut();
        // SAFETY: `err` is a valid out-pointer.
        let r = unsafe { ffi_int(&mut err, || -> FfiResult<c_int> { panic!("boom") }) };
        assert_eq!(r, -libc::EIO);
        assert!(!err.is_null());
        // SAFETY: `err` is a live error; the message lives as long.
        unsafe {
            assert_eq!(
                saferoot_error_kind(err),
                saferoot_errkind::SAFEROOT_ERRKIND_INTERNAL
            );
            assert_eq!(saferoot_error_errno(err), libc::EIO);
            let msg = CStr::from_ptr(saferoot_error_message(err));
            assert!(msg.to_str().unwrap().contains("internal panic: boom"));
            saferoot_error_free(err);
        }
    }

    #[test]
    fn success_clears_err_and_null_is_tolerated() {
        let mut err: *mut saferoot_error = std::ptr::dangling_mut::<saferoot_error>();
        // SAFETY: `err` is a valid out-pointer (its old value is not read).
        let r = unsafe { ffi_int(&mut err, || Ok(7)) };
        assert_eq!(r, 7);
        assert!(err.is_null());
        // SAFETY: NULL is allowed everywhere.
        unsafe {
            saferoot_error_free(ptr::null_mut());
            assert_eq!(saferoot_error_errno(ptr::null()), 0);
            assert!(saferoot_error_path(ptr::null()).is_null());
        }
        // SAFETY: NULL `err` is allowed.
        let p: *mut u8 = unsafe { ffi_ptr(ptr::null_mut(), || Err(saferoot_error::invalid("x"))) };
        assert!(p.is_null());
    }

    #[test]
    fn library_errors_keep_kind_errno_and_path() {
        let root = saferoot::Root::open("/").unwrap();
        let e: saferoot_error = root.resolve("relative").unwrap_err().into();
        assert_eq!(e.kind, saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT);
        assert_eq!(e.errno, libc::EINVAL);
        assert_eq!(e.path.as_deref().unwrap().to_str().unwrap(), "relative");
        assert_eq!(c_string_lossy("a\0b").to_str().unwrap(), "a\u{fffd}b");
    }
}
