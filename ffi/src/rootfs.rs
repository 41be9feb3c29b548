//! Whole container roots: assembled from an OCI config or a saferoot
//! `RootfsSpec` (JSON), planned without changes, then entered.

use std::ffi::{c_char, c_int};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::Mutex;

use saferoot::oci;
use saferoot::rootfs::{self, AssembleOptions, AssembledRoot, EnterMethod, RootfsSpec, Strategy};
use serde_json::Value;

use crate::error::{
    c_string_lossy, ffi_plain, guard_int, guard_ptr, saferoot_errkind, saferoot_error, FfiResult,
};
use crate::root::{boxed, saferoot_root};
use crate::util::{
    check_flags, dup_borrowed, free_handle, handle_fd, lock_handle, read_ext, str_arg, ExtStruct,
    Locked,
};

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

impl Locked for saferoot_rootfs {
    type State = Option<AssembledRoot>;
    const WHAT: &'static str = "rootfs";
    fn state(&self) -> &Mutex<Option<AssembledRoot>> {
        &self.state
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
        procfs: None,
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

/// Reads saferoot's own `RootfsSpec` from the JSON text `json`.
///
/// Syntax and type errors carry serde's line and column. Beyond what serde
/// checks, a member the spec does not have (`readOnlyRoot` for
/// `readonlyRoot`) is refused instead of ignored, since ignoring it would
/// silently drop a setting; so is an array where an object belongs (serde
/// would take it as the fields in order).
fn spec_from_native_json(json: &str) -> FfiResult<RootfsSpec> {
    let bad = |e: serde_json::Error| {
        saferoot_error::invalid(format!("spec_json: not a valid RootfsSpec: {e}"))
    };
    let spec: RootfsSpec = serde_json::from_str(json).map_err(bad)?;
    let given: Value = serde_json::from_str(json).map_err(bad)?;
    let known = serde_json::to_value(&spec).map_err(|e| {
        saferoot_error::new(
            saferoot_errkind::SAFEROOT_ERRKIND_INTERNAL,
            libc::EIO,
            format!("spec_json: re-encoding the spec: {e}"),
        )
    })?;
    match shape_error(&given, &known, "") {
        Some(e) => Err(saferoot_error::invalid(format!("spec_json: {e}"))),
        None => Ok(spec),
    }
}

/// The first place where the JSON `given` has a member the re-encoded spec
/// `known` lacks, or an array where `known` has an object. `at` is the
/// location of `given` in the document, as `mounts[2].options`.
fn shape_error(given: &Value, known: &Value, at: &str) -> Option<String> {
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => g.iter().find_map(|(name, v)| {
            let here = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            match k.get(name) {
                None => Some(format!(
                    "unknown field `{here}` (RootfsSpec field names are camelCase)"
                )),
                Some(kv) => shape_error(v, kv, &here),
            }
        }),
        (Value::Array(g), Value::Array(k)) => g
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (g, k))| shape_error(g, k, &format!("{at}[{i}]"))),
        (Value::Array(_), Value::Object(_)) => Some(format!(
            "{} must be a JSON object, not an array",
            if at.is_empty() { "the spec" } else { at }
        )),
        _ => None,
    }
}

/// Assembles the root filesystem that `spec_json` describes: saferoot's
/// own `RootfsSpec` as JSON (camelCase field names, see docs/c-api.md),
/// with every path absolute, so nothing is read relative to a bundle.
/// `spec_json` is borrowed for the call; `opts` may be NULL (the
/// defaults) and is borrowed too.
///
/// A JSON syntax or type error is an invalid-input error whose message
/// gives the line and column; a member the spec does not have is refused
/// too. As with `saferoot_rootfs_assemble_oci`: call it as root in a
/// private mount namespace, on the thread that will enter the root; the
/// spec is checked before anything changes, and a failure later leaves no
/// mount behind and no fd open.
///
/// Returns a new assembled root owned by the caller (free it with
/// `saferoot_rootfs_free`), or NULL with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_assemble_spec(
    spec_json: *const c_char,
    opts: *const saferoot_assemble_options,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_rootfs {
    guard_ptr!(err, || {
        // SAFETY: NULL or a NUL-terminated string; `opts` NULL or readable.
        let (json, opts) = unsafe { (str_arg(spec_json, "spec_json")?, assemble_options(opts)?) };
        let spec = spec_from_native_json(json)?;
        Ok(new_rootfs(rootfs::assemble(&spec, &opts)?))
    })
}

/// Checks a spec and returns its plan as JSON text: every mount that
/// assembling it would make, in order (with the `/dev`, `/dev/pts` and
/// `/dev/shm` saferoot adds when the spec has no `/dev`), the devices,
/// masked and read-only paths, the propagation; for dry runs and audits.
/// Nothing on the system changes.
///
/// `is_oci` is 1 when `spec_json` is an OCI runtime-spec config.json (the
/// text): relative paths are then read from `bundle_dir`, as in
/// `saferoot_rootfs_assemble_oci`. It is 0 when `spec_json` is a saferoot
/// `RootfsSpec`, as for `saferoot_rootfs_assemble_spec`; `bundle_dir`
/// must then be NULL. Any other `is_oci` is an invalid-input error. The
/// strings are borrowed for the call.
///
/// Returns a new NUL-terminated UTF-8 string (one line of JSON) owned by
/// the caller, to free with `saferoot_string_free`, or NULL with `*err`
/// set (invalid input for a spec that is not valid or that saferoot
/// refuses, naming the entry).
#[no_mangle]
pub unsafe extern "C" fn saferoot_plan_json(
    spec_json: *const c_char,
    is_oci: c_int,
    bundle_dir: *const c_char,
    err: *mut *mut saferoot_error,
) -> *mut c_char {
    guard_ptr!(err, || {
        // SAFETY: NULL or a NUL-terminated string.
        let json = unsafe { str_arg(spec_json, "spec_json")? };
        let spec = match is_oci {
            1 => {
                // SAFETY: as above.
                let bundle = unsafe { str_arg(bundle_dir, "bundle_dir")? };
                oci::spec_from_json(json, Path::new(bundle))?
            }
            0 => {
                if !bundle_dir.is_null() {
                    return Err(saferoot_error::invalid(
                        "bundle_dir must be NULL with is_oci 0: a RootfsSpec has absolute paths",
                    ));
                }
                spec_from_native_json(json)?
            }
            other => {
                return Err(saferoot_error::invalid(format!(
                    "is_oci must be 0 or 1, not {other}"
                )))
            }
        };
        let plan = rootfs::plan(&spec)?;
        let text = serde_json::to_string(&plan).map_err(|e| {
            saferoot_error::new(
                saferoot_errkind::SAFEROOT_ERRKIND_INTERNAL,
                libc::EIO,
                format!("encoding the plan as JSON: {e}"),
            )
        })?;
        // serde_json escapes every control character: the text has no NUL.
        Ok(c_string_lossy(&text).into_raw())
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
        let st = unsafe { lock_handle(rootfs)? };
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
    // SAFETY: NULL or a live handle.
    unsafe {
        handle_fd(rootfs, |st| {
            st.as_ref().map(|a| a.mount_fd().as_fd().as_raw_fd())
        })
    }
}

/// The strategy that was used: `SAFEROOT_STRATEGY_DETACHED` or
/// `SAFEROOT_STRATEGY_IN_PLACE` (never auto). `-EINVAL` when `rootfs` is
/// NULL or was entered or detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_strategy(rootfs: *const saferoot_rootfs) -> c_int {
    ffi_plain(-libc::EINVAL, || {
        // SAFETY: NULL or a live handle.
        let st = unsafe { lock_handle(rootfs)? };
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
        let a = unsafe { lock_handle(rootfs)? }.take().ok_or_else(gone)?;
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
        let a = unsafe { lock_handle(rootfs)? }.take().ok_or_else(gone)?;
        a.enter(method)?;
        Ok(0)
    })
}

/// Frees an assembled-root handle. The assembled mounts stay where they
/// are (they were attached); only the library's fds are closed. NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_rootfs_free(rootfs: *mut saferoot_rootfs) {
    // SAFETY: NULL or a handle of this library, freed once.
    unsafe { free_handle(rootfs) }
}

/// Makes the user namespace that `saferoot_lock_mounts` moves the
/// container's program into: a child of the caller's user namespace that
/// maps every id the caller's namespace maps to itself (so files keep their
/// owners). Returns it as a new `O_CLOEXEC` fd owned by the caller, or
/// `-errno` with `*err` set.
///
/// Call it in the process that assembled the root, before entering it
/// (it needs saferoot's private procfs). Needs `CAP_SETUID` and
/// `CAP_SETGID` in the caller's user namespace.
#[no_mangle]
pub unsafe extern "C" fn saferoot_lock_userns_new(err: *mut *mut saferoot_error) -> c_int {
    guard_int!(err, || {
        let lock = rootfs::MountLock::nested()?;
        Ok(std::os::fd::IntoRawFd::into_raw_fd(
            lock.into_user_namespace(),
        ))
    })
}

/// Locks every mount of the caller's mount namespace against the
/// container: joins the user namespace `userns_fd` (borrowed; from
/// `saferoot_lock_userns_new`, or one the caller made, which must be a
/// child of the caller's user namespace) and unshares the mount namespace.
/// In the copy, owned by that less privileged user namespace, the kernel
/// locks every mount's place and its read-only, nosuid, nodev, noexec and
/// atime flags: the program, even with `CAP_SYS_ADMIN` in its namespace,
/// cannot remount, unmount or move them.
///
/// Call it after `saferoot_rootfs_enter`, in the single-threaded process
/// that is about to exec the program (the kernel refuses `setns` into a
/// user namespace from a process with more than one thread: the error
/// kind is then `SAFEROOT_ERRKIND_INVALID_INPUT`). Returns 0, or `-errno`
/// with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_lock_mounts(
    userns_fd: c_int,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        let fd = dup_borrowed(userns_fd, "userns_fd")?;
        rootfs::MountLock::join(fd)?.apply()?;
        Ok(0)
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

    /// Calls `saferoot_plan_json` and returns its text or its error's
    /// errno, kind and message.
    fn plan_json(
        spec: &str,
        is_oci: c_int,
        bundle: Option<&str>,
    ) -> Result<String, (c_int, saferoot_errkind, String)> {
        let spec = std::ffi::CString::new(spec).unwrap();
        let bundle = bundle.map(|b| std::ffi::CString::new(b).unwrap());
        let mut err: *mut saferoot_error = std::ptr::null_mut();
        // SAFETY: valid strings and out-pointer; what comes back is freed
        // once.
        unsafe {
            let p = saferoot_plan_json(
                spec.as_ptr(),
                is_oci,
                bundle.as_ref().map_or(std::ptr::null(), |b| b.as_ptr()),
                &mut err,
            );
            if p.is_null() {
                assert!(!err.is_null());
                let e = (
                    crate::error::saferoot_error_errno(err),
                    crate::error::saferoot_error_kind(err),
                    std::ffi::CStr::from_ptr(crate::error::saferoot_error_message(err))
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
                crate::error::saferoot_error_free(err);
                return Err(e);
            }
            assert!(err.is_null());
            let text = std::ffi::CStr::from_ptr(p).to_str().unwrap().to_string();
            crate::saferoot_string_free(p);
            Ok(text)
        }
    }

    #[test]
    fn plan_json_of_a_native_spec() {
        let text = plan_json(
            r#"{"rootfs":"/srv/c1","mounts":[{"destination":"/proc","type":"proc","source":"proc"},
               {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro"]}],
               "readonlyRoot":true,"rootfsPropagation":"rprivate"}"#,
            0,
            None,
        )
        .unwrap();
        let plan: Value = serde_json::from_str(&text).unwrap();
        let dests: Vec<&str> = plan["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(dests, ["/dev", "/dev/pts", "/dev/shm", "/proc", "/data"]);
        assert_eq!(plan["rootfs"], "/srv/c1");
        assert_eq!(plan["readonlyRoot"], true);
        assert_eq!(plan["rootfsPropagation"], "rprivate");
        assert_eq!(plan["mounts"][4]["kind"], "bind");
    }

    #[test]
    fn plan_json_of_an_oci_config() {
        let text = plan_json(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
               "mounts":[{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}]}"#,
            1,
            Some("/srv/bundle"),
        )
        .unwrap();
        let plan: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(plan["rootfs"], "/srv/bundle/rootfs");
        assert!(plan["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/tmp"));
    }

    #[test]
    fn bad_specs_are_invalid_input() {
        let invalid = saferoot_errkind::SAFEROOT_ERRKIND_INVALID_INPUT;
        // Syntax and type errors: serde's line and column.
        for (json, want) in [
            ("{\n  \"rootfs\": \"/x\",\n  \"mounts\": [}", "line 3 column"),
            ("{\"rootfs\": \"/x\", \"mounts\": 5}", "line 1 column"),
            ("{\"rootfs\":\"/x\",\"devices\":[{\"path\":\"/dev/a\",\"kind\":\"tape\",\"major\":1,\"minor\":1}]}", "unknown variant"),
        ] {
            let (errno, kind, msg) = plan_json(json, 0, None).unwrap_err();
            assert_eq!((errno, kind), (libc::EINVAL, invalid), "{msg}");
            assert!(msg.starts_with("spec_json: not a valid RootfsSpec: "), "{msg}");
            assert!(msg.contains(want), "{json}: {msg}");
        }
        // Members the spec does not have, and positional arrays.
        for (json, want) in [
            (
                r#"{"rootfs":"/x","readOnlyRoot":true}"#,
                "unknown field `readOnlyRoot`",
            ),
            (
                r#"{"rootfs":"/x","mounts":[{"destination":"/a","type":"tmpfs","option":["ro"]}]}"#,
                "unknown field `mounts[0].option`",
            ),
            (
                r#"{"rootfs":"/x","rootfsPropagation":"rfoo"}"#,
                "unknown propagation \"rfoo\"",
            ),
            (
                r#"{"rootfs":"/x","namespaces":{"network":true}}"#,
                "unknown field `namespaces.network`",
            ),
            (r#"["/x"]"#, "the spec must be a JSON object"),
            (
                r#"{"rootfs":"/x","mounts":[["/a","tmpfs"]]}"#,
                "mounts[0] must be a JSON object",
            ),
        ] {
            let (errno, kind, msg) = plan_json(json, 0, None).unwrap_err();
            assert_eq!((errno, kind), (libc::EINVAL, invalid), "{msg}");
            assert!(msg.contains(want), "{json}: {msg}");
        }
        // Maps keep their own keys.
        plan_json(
            r#"{"rootfs":"/x","sysctls":{"net.ipv4.ip_forward":"1"},"umask":18,"namespaces":{"net":true}}"#,
            0,
            None,
        )
        .unwrap();
        // Planning errors, is_oci and bundle_dir.
        for (json, is_oci, bundle, want) in [
            (r#"{"rootfs":"x"}"#, 0, None, "absolute"),
            (
                r#"{"rootfs":"/x","sysctls":{"kernel.core_pattern":"|/x"}}"#,
                0,
                None,
                "kernel.core_pattern",
            ),
            (
                r#"{"rootfs":"/x","sysctls":{"net.ipv4.ip_forward":"1"}}"#,
                0,
                None,
                "no network namespace",
            ),
            (
                r#"{"rootfs":"/x","mounts":[{"destination":"a","type":"tmpfs"}]}"#,
                0,
                None,
                "mounts[0]",
            ),
            (
                r#"{"rootfs":"/x"}"#,
                0,
                Some("/b"),
                "bundle_dir must be NULL",
            ),
            (r#"{"rootfs":"/x"}"#, 2, None, "is_oci must be 0 or 1"),
            (r#"{"rootfs":"/x"}"#, -1, None, "is_oci must be 0 or 1"),
            (
                r#"{"ociVersion":"1.0.2","root":{"path":"r"}}"#,
                1,
                None,
                "bundle_dir is NULL",
            ),
        ] {
            let (errno, kind, msg) = plan_json(json, is_oci, bundle).unwrap_err();
            assert_eq!((errno, kind), (libc::EINVAL, invalid), "{msg}");
            assert!(msg.contains(want), "{json}: {msg}");
        }
    }
}
