//! Whole container roots: assembled from an OCI config, then entered.

use std::ffi::{c_char, c_int};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use saferoot_core::oci;
use saferoot_core::rootfs::{self, AssembleOptions, AssembledRoot, EnterMethod, Strategy};

use crate::error::{ffi_plain, guard_int, guard_ptr, saferoot_error, FfiResult};
use crate::root::{boxed, saferoot_root};
use crate::util::{check_flags, dup_borrowed, handle, read_ext, str_arg, ExtStruct};

/// How `saferoot_rootfs_assemble_*` puts the mounts together.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_strategy {
    /// Detached when the kernel can (Linux 6.15), otherwise in place.
    SAFEROOT_STRATEGY_AUTO = 0,
    /// Build the whole tree detached, attach it with one move_mount: on
    /// failure nothing was ever visible. Unsupported kind before 6.15.
    SAFEROOT_STRATEGY_DETACHED = 1,
    /// Attach mounts one by one onto an attached private clone of the
    /// rootfs; on failure the clone is detached with everything below it.
    SAFEROOT_STRATEGY_IN_PLACE = 2,
}

/// How `saferoot_rootfs_enter` makes the assembled root the process's
/// root.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_enter_method {
    /// `pivot_root(".", ".")` through the root's fd, then the old root is
    /// made a slave and detached: the host's tree is gone from the
    /// namespace.
    SAFEROOT_ENTER_PIVOT_ROOT = 1,
    /// Move the root mount over `/` and chroot into it, for when pivot_root
    /// is impossible (an initramfs root).
    SAFEROOT_ENTER_MOVE_ROOT = 2,
    /// Plain chroot: the host's tree stays reachable in the namespace.
    SAFEROOT_ENTER_CHROOT = 3,
}

/// `saferoot_assemble_options.flags`: `console_fd` is set; bind that pty
/// peer onto `/dev/console`.
pub const SAFEROOT_ASSEMBLE_CONSOLE: u32 = 0x1;
/// `saferoot_assemble_options.flags`: do not refuse to run in the mount
/// namespace of pid 1. Assembling changes the propagation of `/` (as runc
/// does); without this flag, saferoot refuses where that would affect the
/// whole host.
pub const SAFEROOT_ASSEMBLE_ALLOW_HOST_NAMESPACE: u32 = 0x2;

/// The size of the first version of `struct saferoot_assemble_options`.
pub const SAFEROOT_ASSEMBLE_OPTIONS_SIZE_VER0: usize = 24;

/// Options for `saferoot_rootfs_assemble_*`. An extensible struct like
/// `saferoot_fs_options`: set `size` to `sizeof(struct
/// saferoot_assemble_options)` and zero what you do not use; all-zero
/// means the defaults. NULL options mean the defaults too.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct saferoot_assemble_options {
    /// `sizeof(struct saferoot_assemble_options)`.
    pub size: usize,
    /// A `saferoot_strategy`; 0 is `SAFEROOT_STRATEGY_AUTO`.
    pub strategy: u32,
    /// `SAFEROOT_ASSEMBLE_*` bits.
    pub flags: u32,
    /// With `SAFEROOT_ASSEMBLE_CONSOLE`: the pty peer to bind onto
    /// `/dev/console`. Borrowed: the library clones it and the caller
    /// still closes it. Ignored without the flag.
    pub console_fd: c_int,
    /// Must be 0 (room for a later field).
    pub reserved: u32,
}

// SAFETY: #[repr(C)], starts with `size: usize`, integers only.
unsafe impl ExtStruct for saferoot_assemble_options {
    const SIZE_VER0: usize = SAFEROOT_ASSEMBLE_OPTIONS_SIZE_VER0;
    const NAME: &'static str = "saferoot_assemble_options";
}

/// A container root that has been assembled and attached over its rootfs
/// directory, ready to be entered. Owned by the caller; release with
/// `saferoot_rootfs_free`, which leaves the assembled mounts where they
/// are (use `saferoot_rootfs_detach` to take them down). Calls on one
/// handle are serialized by a lock.
#[allow(non_camel_case_types)]
pub struct saferoot_rootfs {
    state: Mutex<Option<AssembledRoot>>,
}

impl saferoot_rootfs {
    fn lock(&self) -> MutexGuard<'_, Option<AssembledRoot>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn gone() -> saferoot_error {
    saferoot_error::invalid("the assembled root was entered or detached already")
}

/// Turns the C options into the library's.
///
/// # Safety
///
/// `opts` must be NULL or point to `opts->size` readable bytes.
unsafe fn assemble_options(opts: *const saferoot_assemble_options) -> FfiResult<AssembleOptions> {
    // SAFETY: as promised by the caller.
    let o = unsafe { read_ext(opts)? };
    check_flags(
        o.flags,
        SAFEROOT_ASSEMBLE_CONSOLE | SAFEROOT_ASSEMBLE_ALLOW_HOST_NAMESPACE,
        "assemble flags",
    )?;
    if o.reserved != 0 {
        return Err(saferoot_error::invalid(
            "saferoot_assemble_options.reserved must be 0",
        ));
    }
    let strategy = match o.strategy {
        0 => Strategy::Auto,
        1 => Strategy::Detached,
        2 => Strategy::InPlace,
        other => return Err(saferoot_error::invalid(format!("unknown strategy {other}"))),
    };
    let console = if o.flags & SAFEROOT_ASSEMBLE_CONSOLE != 0 {
        Some(dup_borrowed(o.console_fd, "console_fd")?)
    } else {
        None
    };
    Ok(AssembleOptions {
        strategy,
        console,
        require_private_namespace: o.flags & SAFEROOT_ASSEMBLE_ALLOW_HOST_NAMESPACE == 0,
    })
}

fn new_rootfs(a: AssembledRoot) -> *mut saferoot_rootfs {
    boxed(saferoot_rootfs {
        state: Mutex::new(Some(a)),
    })
}

/// Checks the OCI runtime-spec `config_json` (the text of a config.json)
/// and plans its root filesystem, without changing anything: the same
/// checks `saferoot_rootfs_assemble_oci` makes before its first mount.
/// `bundle_dir` is the directory relative paths (such as `root.path`) are
/// read from. Returns 0, or `-errno` with `*err` set (invalid input for a
/// config that is not valid or that saferoot refuses, naming the entry).
#[no_mangle]
pub unsafe extern "C" fn saferoot_oci_validate(
    config_json: *const c_char,
    bundle_dir: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: NULL or NUL-terminated strings.
        let (json, bundle) = unsafe {
            (
                str_arg(config_json, "config_json")?,
                str_arg(bundle_dir, "bundle_dir")?,
            )
        };
        let spec = oci::spec_from_json(json, Path::new(bundle))?;
        rootfs::plan(&spec)?;
        Ok(0)
    })
}

/// Assembles the root filesystem that the OCI runtime-spec `config_json`
/// (the text of a config.json) describes: mounts, devices, masked and
/// read-only paths, propagation, read-only root. Relative paths (such as
/// `root.path`) are read from `bundle_dir`. `opts` may be NULL.
///
/// Call it as root in a private mount namespace (`unshare(CLONE_NEWNS)`),
/// on the thread that will enter the root: like runc, it changes the
/// propagation of `/` first. The spec is checked before anything changes;
/// a failure later leaves no mount behind and no fd open.
///
/// Returns a new assembled root owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_assemble_oci(
    config_json: *const c_char,
    bundle_dir: *const c_char,
    opts: *const saferoot_assemble_options,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_rootfs {
    guard_ptr!(err, || {
        // SAFETY: NULL or NUL-terminated strings; `opts` NULL or readable.
        let (json, bundle, opts) = unsafe {
            (
                str_arg(config_json, "config_json")?,
                str_arg(bundle_dir, "bundle_dir")?,
                assemble_options(opts)?,
            )
        };
        let spec = oci::spec_from_json(json, Path::new(bundle))?;
        Ok(new_rootfs(rootfs::assemble(&spec, &opts)?))
    })
}

/// Like `saferoot_rootfs_assemble_oci` with the `config.json` of the OCI
/// bundle directory `bundle_dir`. The file is opened inside the bundle
/// directory: a config.json that is a symlink leading out of it, or not a
/// regular file, is refused.
///
/// Returns a new assembled root owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_assemble_bundle(
    bundle_dir: *const c_char,
    opts: *const saferoot_assemble_options,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_rootfs {
    guard_ptr!(err, || {
        // SAFETY: NULL or a NUL-terminated string; `opts` NULL or readable.
        let (bundle, opts) =
            unsafe { (str_arg(bundle_dir, "bundle_dir")?, assemble_options(opts)?) };
        let (_config, spec) = oci::load_bundle(Path::new(bundle))?;
        Ok(new_rootfs(rootfs::assemble(&spec, &opts)?))
    })
}

/// A new root for working inside the assembled root (resolve, create,
/// attach more mounts), owned by the caller (free with
/// `saferoot_root_free`); NULL with `*err` set on failure.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_root(
    rootfs: *const saferoot_rootfs,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_root {
    guard_ptr!(err, || {
        // SAFETY: NULL or a live handle.
        let r = unsafe { handle(rootfs, "rootfs")? };
        let st = r.lock();
        let a = st.as_ref().ok_or_else(gone)?;
        Ok(boxed(saferoot_root {
            root: a.root().try_clone()?,
        }))
    })
}

/// The fd of the assembled root mount, borrowed: owned by `rootfs` and
/// valid until it is freed, entered or detached. Do not close it.
/// `-EINVAL` when `rootfs` is NULL or was entered or detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_fd(rootfs: *const saferoot_rootfs) -> c_int {
    ffi_plain(-libc::EINVAL, || {
        // SAFETY: NULL or a live handle.
        let r = unsafe { handle(rootfs, "rootfs")? };
        let st = r.lock();
        Ok(st
            .as_ref()
            .map_or(-libc::EINVAL, |a| a.mount_fd().as_fd().as_raw_fd()))
    })
}

/// The strategy that was used: `SAFEROOT_STRATEGY_DETACHED` or
/// `SAFEROOT_STRATEGY_IN_PLACE` (never auto). `-EINVAL` when `rootfs` is
/// NULL or was entered or detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_strategy(rootfs: *const saferoot_rootfs) -> c_int {
    ffi_plain(-libc::EINVAL, || {
        // SAFETY: NULL or a live handle.
        let r = unsafe { handle(rootfs, "rootfs")? };
        let st = r.lock();
        Ok(st.as_ref().map_or(-libc::EINVAL, |a| match a.strategy() {
            Strategy::Detached => saferoot_strategy::SAFEROOT_STRATEGY_DETACHED as c_int,
            _ => saferoot_strategy::SAFEROOT_STRATEGY_IN_PLACE as c_int,
        }))
    })
}

/// Detaches the whole assembled root (lazily, with every mount in it).
/// Afterwards `rootfs` only awaits `saferoot_rootfs_free`. Returns 0, or
/// `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_detach(
    rootfs: *const saferoot_rootfs,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: NULL or a live handle.
        let r = unsafe { handle(rootfs, "rootfs")? };
        let a = r.lock().take().ok_or_else(gone)?;
        a.detach()?;
        Ok(0)
    })
}

/// Makes the assembled root the root of the calling process with `method`
/// (a `saferoot_enter_method`), all through the root's fd; then reopens
/// stdio that pointed at the host's /dev/null on the container's, creates
/// and enters the working directory (checked to be inside the root) and
/// sets the umask, as the spec says.
///
/// This changes the root and working directory of the calling process (of
/// every thread sharing its fs struct); do it in the process that is about
/// to exec the container's program, in the mount namespace the root was
/// assembled in. Afterwards `rootfs` only awaits `saferoot_rootfs_free`,
/// also when entering failed. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_enter(
    rootfs: *const saferoot_rootfs,
    method: u32,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        let method = match method {
            1 => EnterMethod::PivotRoot,
            2 => EnterMethod::MoveRoot,
            3 => EnterMethod::Chroot,
            other => {
                return Err(saferoot_error::invalid(format!(
                    "unknown enter method {other}"
                )))
            }
        };
        // SAFETY: NULL or a live handle.
        let r = unsafe { handle(rootfs, "rootfs")? };
        let a = r.lock().take().ok_or_else(gone)?;
        a.enter(method)?;
        Ok(0)
    })
}

/// Frees an assembled-root handle. The assembled mounts stay where they
/// are (they were attached); only the library's fds are closed. NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_free(rootfs: *mut saferoot_rootfs) {
    ffi_plain((), || {
        if !rootfs.is_null() {
            // SAFETY: made by Box::into_raw in this library and freed once,
            // as the caller promises.
            drop(unsafe { Box::from_raw(rootfs) });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_sizes_and_values() {
        assert_eq!(
            std::mem::size_of::<saferoot_assemble_options>(),
            SAFEROOT_ASSEMBLE_OPTIONS_SIZE_VER0
        );
        let mut o = saferoot_assemble_options {
            size: SAFEROOT_ASSEMBLE_OPTIONS_SIZE_VER0,
            ..Default::default()
        };
        // SAFETY: `o` is readable.
        let a = unsafe { assemble_options(&o) }.unwrap();
        assert_eq!(a.strategy, Strategy::Auto);
        assert!(a.require_private_namespace && a.console.is_none());
        o.flags = SAFEROOT_ASSEMBLE_ALLOW_HOST_NAMESPACE;
        o.strategy = 2;
        // SAFETY: as above.
        let a = unsafe { assemble_options(&o) }.unwrap();
        assert_eq!(a.strategy, Strategy::InPlace);
        assert!(!a.require_private_namespace);
        for bad in [
            saferoot_assemble_options { reserved: 1, ..o },
            saferoot_assemble_options { strategy: 3, ..o },
            saferoot_assemble_options { flags: 0x4, ..o },
            saferoot_assemble_options {
                flags: SAFEROOT_ASSEMBLE_CONSOLE,
                console_fd: -1,
                ..o
            },
        ] {
            // SAFETY: as above.
            let r = unsafe { assemble_options(&bad) };
            assert_eq!(r.unwrap_err().errno(), libc::EINVAL);
        }
    }
}
