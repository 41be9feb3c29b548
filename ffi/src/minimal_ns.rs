//! Containers whose mount namespace never holds the host's mounts: a
//! pinned minimal mount namespace and a host view
//! (`saferoot::rootfs::minimal_ns`).
//!
//! `unshare(CLONE_NEWNS)` copies every mount of the caller's namespace,
//! and entering a root detaches them all again, so a container's start
//! costs time in proportion to the host's mount count. Instead a runtime
//! makes a minimal namespace once (`saferoot_minimal_ns_create`, pinned at
//! a path with `saferoot_minimal_ns_pin` for later processes, which
//! `saferoot_minimal_ns_open` it), and for each container opens the host
//! objects it needs (`saferoot_host_view_open`, in the caller's namespace),
//! enters a private copy of the minimal namespace
//! (`saferoot_minimal_ns_enter`) and installs the objects at their own
//! paths (`saferoot_host_view_install`). From there the container is
//! assembled as in a copy of the host's namespace.

use std::ffi::{c_char, c_int};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::Mutex;

use saferoot::mount::Scope;
use saferoot::rootfs::{HostView, MinimalNamespace};

use crate::error::{guard_int, guard_ptr, saferoot_error, FfiResult};
use crate::root::boxed;
use crate::util::{dup_borrowed, free_handle, handle, lock_handle, str_arg, Locked};

/// How much of the mounts at and below a host path a host view takes
/// (`saferoot_host_view_open`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_scope {
    /// Only the mount at the path (as a non-recursive bind).
    SAFEROOT_SCOPE_MOUNT = 1,
    /// The mount at the path with every mount below it (as a recursive
    /// bind).
    SAFEROOT_SCOPE_TREE = 2,
}

/// A mount namespace whose only mount is an empty, read-only tmpfs (with
/// an empty directory `/root`), held as an nsfs fd.
///
/// Owned by the caller; release with `saferoot_minimal_ns_free`, which
/// closes the fd (a pinned namespace stays alive at its pin). May be used
/// from several threads at once.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct saferoot_minimal_ns {
    ns: MinimalNamespace,
}

/// Host objects (files, directories, mount trees) opened as detached
/// mounts, to be installed at their own paths in a private copy of a
/// minimal namespace.
///
/// Owned by the caller; release with `saferoot_host_view_free` (also after
/// `saferoot_host_view_install`, which uses it up). Freeing a view that was
/// not installed destroys its detached mounts.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct saferoot_host_view {
    state: Mutex<Option<HostView>>,
}

impl Locked for saferoot_host_view {
    type State = Option<HostView>;
    const WHAT: &'static str = "host view";
    fn state(&self) -> &Mutex<Self::State> {
        &self.state
    }
}

/// Makes a new minimal mount namespace. This copies the caller's mounts
/// once (on a helper thread, which unshares, makes a small tmpfs its root
/// and detaches the rest); the caller's own namespace is not changed.
///
/// Returns a new handle owned by the caller (free with
/// `saferoot_minimal_ns_free`), or NULL with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_create(
    err: *mut *mut saferoot_error,
) -> *mut saferoot_minimal_ns {
    guard_ptr!(err, || Ok(boxed(saferoot_minimal_ns {
        ns: MinimalNamespace::create()?,
    })))
}

/// Opens the minimal namespace pinned at the host path `path` by
/// `saferoot_minimal_ns_pin` (any nsfs file of a mount namespace is
/// accepted: `/proc/PID/ns/mnt` too).
///
/// Returns a new handle owned by the caller, or NULL with `*err` set:
/// `ENOENT` when nothing is there, invalid-input kind when the file is
/// not a mount namespace.
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_open(
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_minimal_ns {
    guard_ptr!(err, || {
        // SAFETY: `path` is NULL or a NUL-terminated string.
        let path = unsafe { str_arg(path, "path")? };
        Ok(boxed(saferoot_minimal_ns {
            ns: MinimalNamespace::open(path)?,
        }))
    })
}

/// Makes a handle of the mount namespace fd `fd` (an nsfs fd, as
/// `open("/proc/PID/ns/mnt")` or `saferoot_minimal_ns_fd` give). `fd` is
/// borrowed: the handle keeps its own `O_CLOEXEC` duplicate.
///
/// Returns a new handle owned by the caller, or NULL with `*err` set
/// (invalid-input kind for a negative fd, one that is not open, or one
/// that is not a mount namespace).
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_from_fd(
    fd: c_int,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_minimal_ns {
    guard_ptr!(err, || {
        let fd = dup_borrowed(fd, "mount namespace fd")?;
        Ok(boxed(saferoot_minimal_ns {
            ns: MinimalNamespace::from_fd(fd)?,
        }))
    })
}

/// The namespace's nsfs fd, borrowed: it stays owned by `ns` and is valid
/// until `saferoot_minimal_ns_free(ns)`. Do not close it. `-EINVAL` when
/// `ns` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_fd(ns: *const saferoot_minimal_ns) -> c_int {
    crate::error::ffi_plain(-libc::EINVAL, || {
        // SAFETY: `ns` is NULL or a live handle.
        Ok(unsafe { handle(ns, "minimal namespace")? }
            .ns
            .as_fd()
            .as_raw_fd())
    })
}

/// Keeps the namespace alive at the host path `path`, which must not exist
/// (its directory must): a new empty file is created there and the nsfs
/// file bound onto it, so that later processes can
/// `saferoot_minimal_ns_open` it. Undo with `umount(path)` and
/// `unlink(path)`. The pin lives in the calling thread's mount namespace.
///
/// Returns 0, or `-errno` with `*err` set: `EEXIST` when `path` exists;
/// on any failure the file is removed again. The kernel refuses
/// (`ELOOP`) to pin a namespace whose id is not above the id of the
/// calling thread's namespace (namespace loops). Linux 6.18 hands out
/// namespace ids from per-CPU batches, so a namespace made just now on
/// one CPU can have a lower id than one made earlier on another: then
/// make another with the calling thread bound to another CPU
/// (`sched_setaffinity`; the library's helper thread inherits it) and pin
/// that. On the CPU whose batch gave the calling thread's namespace its
/// id, later ids are higher.
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_pin(
    ns: *const saferoot_minimal_ns,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `ns` is NULL or live; `path` NULL or NUL-terminated.
        let (ns, path) = unsafe { (handle(ns, "minimal namespace")?, str_arg(path, "path")?) };
        ns.ns.pin(path)?;
        Ok(0)
    })
}

/// Moves the calling thread into a private copy of the namespace:
/// `setns` into it, then `unshare(CLONE_NEWNS)`, which copies its one
/// mount. The working directory becomes its root; the root directory is
/// left alone (`saferoot_host_view_install` replaces it).
///
/// The kernel allows this only to a thread whose fs context (root, working
/// directory, umask) is not shared: the only thread of a process, or one
/// that unshared `CLONE_FS`. Otherwise `EINVAL`. Open the host view
/// before: the minimal namespace holds nothing of the host, not even a
/// procfs. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_enter(
    ns: *const saferoot_minimal_ns,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `ns` is NULL or a live handle.
        unsafe { handle(ns, "minimal namespace")? }.ns.enter()?;
        Ok(0)
    })
}

/// Frees a minimal namespace handle and closes its fd. A namespace that is
/// pinned, or that some thread is in, lives on. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_minimal_ns_free(ns: *mut saferoot_minimal_ns) {
    // SAFETY: NULL or a handle of this library, freed once.
    unsafe { free_handle(ns) }
}

/// Reads `n` scopes (NULL: all `SAFEROOT_SCOPE_TREE`).
///
/// # Safety
///
/// `scopes` must be NULL or point to `n` readable `uint32_t`.
unsafe fn scope_args(scopes: *const u32, n: usize) -> FfiResult<Vec<Scope>> {
    if scopes.is_null() {
        return Ok(vec![Scope::Tree; n]);
    }
    // SAFETY: non-NULL and `n` long, as the caller promises.
    let raw = unsafe { std::slice::from_raw_parts(scopes, n) };
    raw.iter()
        .enumerate()
        .map(|(i, s)| match *s {
            1 => Ok(Scope::Mount),
            2 => Ok(Scope::Tree),
            other => Err(saferoot_error::invalid(format!(
                "scopes[{i}]: unknown scope {other}"
            ))),
        })
        .collect()
}

/// Opens the host paths `paths[0..n]` as detached mounts, in the calling
/// thread's mount namespace, each with `scopes[i]` (a `saferoot_scope`;
/// `scopes` may be NULL: every path `SAFEROOT_SCOPE_TREE`).
///
/// Paths must be absolute; they are host paths and looked up as bind
/// sources are: symlinks are followed, but a path that leads into `rootfs`
/// (the container's root directory, which the container controls) is
/// resolved inside it from there, so a symlink planted in the rootfs
/// cannot redirect it elsewhere on the host. Duplicates are merged (the
/// wider scope wins); a path below another is installed on top of it.
/// Nothing in the caller's namespace changes.
///
/// Returns a new view owned by the caller (free with
/// `saferoot_host_view_free`), or NULL with `*err` set: `ENOENT` (with
/// the path) for a path that does not exist, invalid-input kind for a
/// relative path, a NULL array or element with `n > 0`, or an unknown
/// scope.
#[no_mangle]
pub unsafe extern "C" fn saferoot_host_view_open(
    rootfs: *const c_char,
    paths: *const *const c_char,
    scopes: *const u32,
    n: usize,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_host_view {
    guard_ptr!(err, || {
        // SAFETY: `rootfs` is NULL or a NUL-terminated string.
        let rootfs = unsafe { str_arg(rootfs, "rootfs")? };
        if paths.is_null() && n > 0 {
            return Err(saferoot_error::invalid("paths is NULL"));
        }
        // SAFETY: `scopes` is NULL or holds `n` values.
        let scopes = unsafe { scope_args(scopes, n)? };
        let mut wanted: Vec<(PathBuf, Scope)> = Vec::with_capacity(n);
        for (i, scope) in scopes.into_iter().enumerate() {
            // SAFETY: `paths` holds `n` pointers (not NULL when n > 0, checked
            // above), each NULL or a NUL-terminated string.
            let p = unsafe { str_arg(*paths.add(i), &format!("paths[{i}]"))? };
            wanted.push((PathBuf::from(p), scope));
        }
        let view = HostView::open(std::path::Path::new(rootfs), wanted)?;
        Ok(boxed(saferoot_host_view {
            state: Mutex::new(Some(view)),
        }))
    })
}

/// Makes a fresh tmpfs the calling thread's root, with every host object of
/// `view` attached at its own path (missing directories and files are
/// created on the tmpfs, never inside a host object), and detaches what
/// was the root. Call it right after `saferoot_minimal_ns_enter`, on the
/// same thread. The namespace then holds exactly the tmpfs and the view's
/// mounts; the working directory is its root.
///
/// `view` is used up, also when this fails: it then only awaits
/// `saferoot_host_view_free`, and a second install is `-EINVAL`. Returns
/// 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_host_view_install(
    view: *const saferoot_host_view,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: NULL or a live handle.
        let v = unsafe { lock_handle(view)? }
            .take()
            .ok_or_else(|| saferoot_error::invalid("the host view was installed already"))?;
        v.install()?;
        Ok(0)
    })
}

/// Frees a host view. The detached mounts of a view that was not
/// installed are destroyed; installed ones stay where they are. NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_host_view_free(view: *mut saferoot_host_view) {
    // SAFETY: NULL or a handle of this library, freed once.
    unsafe { free_handle(view) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn bad_input_is_refused() {
        let mut err: *mut saferoot_error = ptr::null_mut();
        // SAFETY: NULL handles and strings are allowed and refused.
        unsafe {
            assert!(saferoot_minimal_ns_open(ptr::null(), &mut err).is_null());
            assert_eq!((*err).errno(), libc::EINVAL);
            crate::error::saferoot_error_free(err);
            assert_eq!(saferoot_minimal_ns_fd(ptr::null()), -libc::EINVAL);
            assert_eq!(
                saferoot_minimal_ns_enter(ptr::null(), ptr::null_mut()),
                -libc::EINVAL
            );
            assert!(saferoot_minimal_ns_from_fd(-1, ptr::null_mut()).is_null());
            assert!(
                saferoot_host_view_open(c"/".as_ptr(), ptr::null(), ptr::null(), 1, &mut err)
                    .is_null()
            );
            assert_eq!((*err).errno(), libc::EINVAL);
            crate::error::saferoot_error_free(err);
            let paths = [c"/".as_ptr()];
            let scopes = [7u32];
            assert!(saferoot_host_view_open(
                c"/".as_ptr(),
                paths.as_ptr(),
                scopes.as_ptr(),
                1,
                &mut err
            )
            .is_null());
            assert_eq!((*err).errno(), libc::EINVAL);
            crate::error::saferoot_error_free(err);
            assert_eq!(
                saferoot_host_view_install(ptr::null(), ptr::null_mut()),
                -libc::EINVAL
            );
            saferoot_minimal_ns_free(ptr::null_mut());
            saferoot_host_view_free(ptr::null_mut());
        }
    }

    #[test]
    fn an_empty_view_opens_with_null_arrays() {
        // SAFETY: n = 0 with NULL arrays is allowed.
        let v = unsafe {
            saferoot_host_view_open(c"/".as_ptr(), ptr::null(), ptr::null(), 0, ptr::null_mut())
        };
        assert!(!v.is_null());
        // SAFETY: a live handle, freed once.
        unsafe { saferoot_host_view_free(v) };
    }
}
