//! The C ABI of saferoot: `libsaferoot.so.0`, `libsaferoot.a` and
//! `include/saferoot.h` (generated from this crate by cbindgen).
//!
//! Conventions, the same for every function (see docs/c-api.md):
//!
//! - Names start with `saferoot_`; constants with `SAFEROOT_`.
//! - A fallible function returns `int` (0 or a non-negative fd on success,
//!   `-errno` on failure) or a pointer (NULL on failure), and takes a last
//!   `saferoot_error **err` out-parameter; see [`error`].
//! - Returned fds are `O_CLOEXEC` and belong to the caller. fds passed in
//!   are borrowed: the library duplicates what it keeps and never closes
//!   the caller's fd.
//! - Handles (`saferoot_root`, `saferoot_mount`, `saferoot_mount_table`,
//!   `saferoot_rootfs`) are opaque, owned by the caller, and released with
//!   their `_free` function; freeing NULL is a no-op.
//! - Strings in are NUL-terminated UTF-8; NULL, invalid UTF-8, negative
//!   fds, unknown flag bits and wrong struct sizes are invalid-input errors.
//! - No Rust panic crosses the boundary: it becomes an internal error.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(clippy::missing_safety_doc)]

pub mod error;
pub mod feature;
pub mod minimal_ns;
pub mod mount;
pub mod root;
pub mod rootfs;
pub mod table;
// Last, so that its functions come last in the header.
pub mod archive;
mod util;

pub use error::{saferoot_errkind, saferoot_error};

use std::ffi::c_char;

/// The version of the ABI described by this header. It changes only when
/// a release breaks the ABI, together with the soname
/// (`libsaferoot.so.<ABI version>`).
pub const SAFEROOT_ABI_VERSION: u32 = 0;

/// The library's version, `"MAJOR.MINOR.PATCH"`: a static string, never
/// freed.
#[no_mangle]
pub extern "C" fn saferoot_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Frees a string returned by the library (the result of
/// `saferoot_readlink_alloc` or `saferoot_plan_json`). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_string_free(s: *mut c_char) {
    error::ffi_plain((), || {
        if !s.is_null() {
            // SAFETY: every string the library hands out for freeing was made
            // by CString::into_raw, and the caller frees it once.
            drop(unsafe { std::ffi::CString::from_raw(s) });
        }
        Ok(())
    })
}

/// The handles documented as usable from several threads at once really
/// are (checked at compile time).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<root::saferoot_root>();
    send_sync::<mount::saferoot_mount>();
    send_sync::<rootfs::saferoot_rootfs>();
    send_sync::<minimal_ns::saferoot_minimal_ns>();
    send_sync::<minimal_ns::saferoot_host_view>();
    send_sync::<error::saferoot_error>();
};
