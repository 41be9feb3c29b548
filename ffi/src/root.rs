//! Roots and confined path operations.

use std::ffi::{c_char, c_int, CString};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;

use saferoot::{Handle, NodeKind, Root};

use crate::error::{guard_int, guard_ptr, saferoot_errkind, saferoot_error, FfiResult};
use crate::util::{dup_borrowed, handle, str_arg, write_out};

/// A directory that confines path resolution: every in-root path given
/// with it is resolved with `openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)`, so `..`, absolute symlinks and symlink chains
/// cannot leave it.
///
/// Owned by the caller; release with `saferoot_root_free`. A root may be
/// used from several threads at once.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct saferoot_root {
    pub(crate) root: Root,
}

/// The kind of node `saferoot_mknod` creates.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_node_type {
    /// A character device.
    SAFEROOT_NODE_CHAR = 1,
    /// A block device.
    SAFEROOT_NODE_BLOCK = 2,
    /// A named pipe (`dev_major` and `dev_minor` must be 0).
    SAFEROOT_NODE_FIFO = 3,
}

pub(crate) fn boxed<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Hands a handle's fd to the caller through `fd_out`, or closes it when
/// `fd_out` is NULL.
///
/// # Safety
///
/// `fd_out` must be NULL or valid for writing an int.
unsafe fn give_fd(h: Handle, fd_out: *mut c_int) {
    if !fd_out.is_null() {
        // SAFETY: as promised by the caller.
        unsafe { write_out(fd_out, h.into_fd().into_raw_fd()) };
    }
}

/// Opens the host directory `path` as a root. `path` is the caller's host
/// path and is resolved normally (symlinks in it are followed); everything
/// below it is then confined.
///
/// Returns a new root owned by the caller (free with
/// `saferoot_root_free`), or NULL with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_root_open(
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_root {
    guard_ptr!(err, || {
        // SAFETY: `path` is NULL or a NUL-terminated string.
        let path = unsafe { str_arg(path, "path")? };
        Ok(boxed(saferoot_root {
            root: Root::open(path)?,
        }))
    })
}

/// Makes a root of the directory `fd` (an `O_PATH` fd is fine; so is a
/// detached mount fd, whose tree is then the root).
///
/// `fd` is borrowed: the root keeps its own `O_CLOEXEC` duplicate, and the
/// caller still owns and closes `fd`. Returns a new root owned by the
/// caller, or NULL with `*err` set (`EINVAL` for a negative fd, `EBADF`
/// for one that is not open, invalid input for a non-directory).
#[no_mangle]
pub unsafe extern "C" fn saferoot_root_from_fd(
    fd: c_int,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_root {
    guard_ptr!(err, || {
        let fd = dup_borrowed(fd, "root fd")?;
        Ok(boxed(saferoot_root {
            root: Root::from_fd(fd)?,
        }))
    })
}

/// The root's own directory fd, borrowed: it stays owned by `root` and is
/// valid until `saferoot_root_free(root)`. Do not close it. `-EINVAL` when
/// `root` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_root_fd(root: *const saferoot_root) -> c_int {
    crate::error::ffi_plain(-libc::EINVAL, || {
        // SAFETY: `root` is NULL or a live root.
        Ok(unsafe { handle(root, "root")? }.root.as_fd().as_raw_fd())
    })
}

/// Frees a root and closes its fd. NULL is a no-op. fds and mounts made
/// through the root stay valid.
#[no_mangle]
pub unsafe extern "C" fn saferoot_root_free(root: *mut saferoot_root) {
    // SAFETY: NULL or a handle of this library, freed once.
    unsafe { crate::util::free_handle(root) }
}

/// Resolves the in-root path `path` (absolute, read relative to the root),
/// following symlinks without leaving the root.
///
/// Returns a new `O_PATH | O_CLOEXEC` fd owned by the caller (close it
/// with close(2)), or `-errno` with `*err` set. A magic link on the way
/// (`/proc/self/root`, `/proc/self/fd/N`) is refused by the kernel with
/// `ELOOP`; what pathrs itself finds to be an escape is `EXDEV`,
/// safety-violation kind.
#[no_mangle]
pub unsafe extern "C" fn saferoot_resolve(
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        Ok(root.root.resolve(path)?.into_fd().into_raw_fd())
    })
}

/// Like `saferoot_resolve`, but a symlink as the last component is
/// returned as itself (an `O_PATH | O_NOFOLLOW` fd to the link).
///
/// Returns a new `O_PATH | O_CLOEXEC` fd owned by the caller, or `-errno`
/// with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_resolve_nofollow(
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        Ok(root.root.resolve_nofollow(path)?.into_fd().into_raw_fd())
    })
}

/// Creates the in-root directory `path` and any missing parents with
/// permission bits `mode` (less the umask; bits outside 07777 are
/// refused). Existing directories are kept. Every component is created
/// relative to the fd of its parent, so none can be redirected outside the
/// root.
///
/// When `fd_out` is not NULL, `*fd_out` receives a new `O_CLOEXEC` fd to
/// the directory (opened `O_DIRECTORY`, read-only or `O_PATH`), owned by
/// the caller: a target for `saferoot_mount_attach`. When `fd_out` is
/// NULL that fd is closed. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mkdir_all(
    root: *const saferoot_root,
    path: *const c_char,
    mode: u32,
    fd_out: *mut c_int,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        let h = root.root.mkdir_all(path, mode)?;
        // SAFETY: `fd_out` is NULL or writable.
        unsafe { give_fd(h, fd_out) };
        Ok(0)
    })
}

/// Makes sure the in-root path `path` is a regular file, creating it empty
/// with `mode` when missing (the parent must exist): what a file bind
/// mount is attached onto. A symlink, directory or device there is
/// refused.
///
/// When `fd_out` is not NULL, `*fd_out` receives a new `O_PATH |
/// O_CLOEXEC` fd to the file, owned by the caller; otherwise that fd is
/// closed. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_create_file(
    root: *const saferoot_root,
    path: *const c_char,
    mode: u32,
    fd_out: *mut c_int,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        let h = root.root.create_file(path, mode)?;
        // SAFETY: `fd_out` is NULL or writable.
        unsafe { give_fd(h, fd_out) };
        Ok(0)
    })
}

/// Creates a device node or fifo at the in-root path `path` (the parent
/// must exist) with exactly the permission bits `mode` (the umask is not
/// applied, and the caller's umask is not changed), then checks that the
/// inode now there has exactly the type and device number asked for (a
/// safety-violation error otherwise). `type` is a `saferoot_node_type`.
///
/// Checked before anything is created, each refused with `-EINVAL`,
/// invalid-input kind: the type; `dev_major` at most 4095 and `dev_minor`
/// at most 1048575 (12 and 20 bits, what the kernel's device numbers
/// hold: larger ones would silently name another device); both 0 for a
/// fifo; `mode` within 07777.
///
/// When `fd_out` is not NULL, `*fd_out` receives a new `O_PATH |
/// O_CLOEXEC` fd to the node, owned by the caller; otherwise that fd is
/// closed. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mknod(
    root: *const saferoot_root,
    path: *const c_char,
    r#type: u32,
    dev_major: u32,
    dev_minor: u32,
    mode: u32,
    fd_out: *mut c_int,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        let kind = match r#type {
            t if t == saferoot_node_type::SAFEROOT_NODE_CHAR as u32 => NodeKind::Char {
                major: dev_major,
                minor: dev_minor,
            },
            t if t == saferoot_node_type::SAFEROOT_NODE_BLOCK as u32 => NodeKind::Block {
                major: dev_major,
                minor: dev_minor,
            },
            t if t == saferoot_node_type::SAFEROOT_NODE_FIFO as u32 => {
                if dev_major != 0 || dev_minor != 0 {
                    return Err(saferoot_error::invalid(
                        "mknod: a fifo has no device number (dev_major and dev_minor must be 0)",
                    ));
                }
                NodeKind::Fifo
            }
            t => {
                return Err(saferoot_error::invalid(format!(
                    "mknod: unknown node type {t}"
                )))
            }
        };
        let h = root.root.mknod(path, kind, mode)?;
        // SAFETY: `fd_out` is NULL or writable.
        unsafe { give_fd(h, fd_out) };
        Ok(0)
    })
}

/// Creates a symlink at the in-root path `path` (the parent must exist)
/// whose target is `target`, stored as given (it is not resolved now, and
/// is confined to the root whenever saferoot later resolves through it).
/// The arguments keep this function's first order, link then target (the
/// Rust `Root::symlink` takes std's order, target then link; reversing
/// two strings here would go unnoticed by compilers of existing callers).
/// Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_symlink(
    root: *const saferoot_root,
    path: *const c_char,
    target: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: pointers are NULL or valid, as the caller promises.
        let (root, path, target) = unsafe {
            (
                handle(root, "root")?,
                str_arg(path, "path")?,
                str_arg(target, "target")?,
            )
        };
        root.root.symlink(target, path)?;
        Ok(0)
    })
}

fn readlink_bytes(root: &saferoot_root, path: &str) -> FfiResult<Vec<u8>> {
    Ok(root.root.readlink(path)?.as_os_str().as_bytes().to_vec())
}

/// Reads the symlink at the in-root path `path` (not following it) into
/// `buf`, NUL-terminated. Returns the length of the target (without the
/// NUL). When `bufsize` is not larger than that length, nothing is written
/// and the result is `-ERANGE` (`*err` set); `saferoot_readlink_alloc`
/// needs no size. `buf` may be NULL only when `bufsize` is 0.
#[no_mangle]
pub unsafe extern "C" fn saferoot_readlink(
    root: *const saferoot_root,
    path: *const c_char,
    buf: *mut c_char,
    bufsize: usize,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        if buf.is_null() && bufsize != 0 {
            return Err(saferoot_error::invalid("buf is NULL"));
        }
        let target = readlink_bytes(root, path)?;
        if target.len() >= bufsize {
            return Err(saferoot_error::new(
                saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT,
                libc::ERANGE,
                format!(
                    "readlink at {path}: buffer of {bufsize} bytes is too small for {} bytes and a NUL",
                    target.len()
                ),
            ));
        }
        // SAFETY: `buf` has `bufsize` > target.len() writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(target.as_ptr(), buf.cast::<u8>(), target.len()) };
        // SAFETY: as above; index target.len() < bufsize.
        unsafe { buf.add(target.len()).write(0) };
        c_int::try_from(target.len()).map_err(|_| saferoot_error::invalid("target too long"))
    })
}

/// Reads the symlink at the in-root path `path` (not following it).
/// Returns a new NUL-terminated string owned by the caller (free it with
/// `saferoot_string_free`), or NULL with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_readlink_alloc(
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> *mut c_char {
    guard_ptr!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        let target = readlink_bytes(root, path)?;
        // A symlink target never contains a NUL byte.
        let c = CString::new(target).map_err(|_| saferoot_error::invalid("NUL in target"))?;
        Ok(c.into_raw())
    })
}

/// Removes the non-directory (file, symlink, node) at the in-root path
/// `path`. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_remove_file(
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        root.root.remove_file(path)?;
        Ok(0)
    })
}

/// Removes the empty directory at the in-root path `path`. Returns 0, or
/// `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_remove_dir(
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        root.root.remove_dir(path)?;
        Ok(0)
    })
}
