//! Detached mounts: made, configured while invisible, then attached onto
//! an fd.

use std::ffi::{c_char, c_int};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;

use saferoot::mount::{unmount_in_root, AttachError, AttachedMount, Scope};
use saferoot::{Mount, MountAttr, Propagation};

use crate::error::{guard_int, guard_ptr, saferoot_error, FfiResult};
use crate::root::{boxed, saferoot_root};
use crate::util::{
    borrow_fd, check_flags, dup_borrowed, free_handle, handle, handle_fd, lock_handle, opt_str_arg,
    read_ext, str_arg, take_handle, write_out, ExtStruct, Locked,
};

/// Read-only.
pub const SAFEROOT_MOUNT_ATTR_RDONLY: u64 = 0x1;
/// Ignore set-user-ID and set-group-ID bits and file capabilities.
pub const SAFEROOT_MOUNT_ATTR_NOSUID: u64 = 0x2;
/// No access to device nodes.
pub const SAFEROOT_MOUNT_ATTR_NODEV: u64 = 0x4;
/// No execution of programs.
pub const SAFEROOT_MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// Do not update access times (one of three access-time policies; at most
/// one may be set at once).
pub const SAFEROOT_MOUNT_ATTR_NOATIME: u64 = 0x10;
/// Always update access times (an access-time policy).
pub const SAFEROOT_MOUNT_ATTR_STRICTATIME: u64 = 0x20;
/// Do not update directory access times.
pub const SAFEROOT_MOUNT_ATTR_NODIRATIME: u64 = 0x80;
/// Do not follow symlinks when resolving paths on this mount.
pub const SAFEROOT_MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;
/// Update access times relative to modification times (an access-time
/// policy, the kernel's default; it has a bit of its own here so that it
/// can be asked for explicitly).
pub const SAFEROOT_MOUNT_ATTR_RELATIME: u64 = 0x10000000000;
/// Every `SAFEROOT_MOUNT_ATTR_*` bit this version knows.
pub const SAFEROOT_MOUNT_ATTR_ALL: u64 = 0x100002000bf;

/// `saferoot_mount_clone*`: take the mounts below the source along
/// (`rbind`).
pub const SAFEROOT_CLONE_RECURSIVE: u32 = 0x1;
/// `saferoot_mount_clone`, `saferoot_mount_clone_in_root`: do not follow a
/// symlink as the last component of the source (bind the symlink itself).
pub const SAFEROOT_CLONE_NOFOLLOW: u32 = 0x2;

/// `saferoot_mount_set_attr`, `saferoot_mount_set_propagation`,
/// `saferoot_mount_set_idmap`: apply to every mount in the tree, not only
/// its top.
pub const SAFEROOT_ATTR_RECURSIVE: u32 = 0x1;

/// The size of the first version of `struct saferoot_fs_options`.
pub const SAFEROOT_FS_OPTIONS_SIZE_VER0: usize = 32;

/// A propagation type for `saferoot_mount_set_propagation`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_propagation {
    /// Neither receives nor sends mount events.
    SAFEROOT_PROPAGATION_PRIVATE = 1,
    /// Receives mount events from its master, sends none.
    SAFEROOT_PROPAGATION_SLAVE = 2,
    /// Sends and receives mount events within its peer group.
    SAFEROOT_PROPAGATION_SHARED = 3,
    /// Private, and cannot be bind-mounted.
    SAFEROOT_PROPAGATION_UNBINDABLE = 4,
}

/// Options for `saferoot_mount_fs`. An extensible struct: set `size` to
/// `sizeof(struct saferoot_fs_options)`, zero what you do not use
/// (`memset` or `= {0}`), and fields added in later releases keep their
/// zero meaning. A `size` smaller than `SAFEROOT_FS_OPTIONS_SIZE_VER0` is
/// `EINVAL`; a larger one (from a newer header) is accepted only when the
/// bytes this library does not know are zero, otherwise `E2BIG`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct saferoot_fs_options {
    /// `sizeof(struct saferoot_fs_options)`.
    pub size: usize,
    /// The `source` parameter (a device, or the name shown in the mount
    /// table for virtual filesystems), UTF-8; NULL for none. Borrowed for
    /// the call.
    pub source: *const c_char,
    /// Filesystem parameters as a comma-separated data string, e.g.
    /// `"mode=755,size=65536k"` or `"newinstance,ptmxmode=0666"`, UTF-8;
    /// NULL or `""` for none. Borrowed for the call.
    pub data: *const c_char,
    /// `SAFEROOT_MOUNT_ATTR_*` bits the mount has from its first moment
    /// (given to fsmount).
    pub attrs: u64,
}

impl Default for saferoot_fs_options {
    fn default() -> Self {
        saferoot_fs_options {
            size: std::mem::size_of::<Self>(),
            source: std::ptr::null(),
            data: std::ptr::null(),
            attrs: 0,
        }
    }
}

// SAFETY: #[repr(C)], starts with `size: usize`, integers and raw pointers
// only, so every bit pattern is valid.
unsafe impl ExtStruct for saferoot_fs_options {
    const SIZE_VER0: usize = SAFEROOT_FS_OPTIONS_SIZE_VER0;
    const NAME: &'static str = "saferoot_fs_options";
}

pub(crate) enum State {
    /// Made, not attached: configure it, then attach it.
    Detached(Mount),
    /// Attached; the handle keeps an fd to the mount's root.
    Attached(AttachedMount),
    /// Detached with `saferoot_mount_detach`, or lost to a panic.
    Gone,
}

/// A mount made by saferoot: detached (in no mount table, invisible) until
/// one of the `saferoot_mount_attach*` functions attaches it.
///
/// Owned by the caller; release with `saferoot_mount_free`. Freeing a
/// detached mount destroys it (nothing was ever visible); freeing an
/// attached one only closes the library's fd, the mount stays where it
/// was attached. A mount handle may be used from any thread; calls on the
/// same handle are serialized by a lock. Attaching acts in the mount
/// namespace of the calling thread.
#[allow(non_camel_case_types)]
pub struct saferoot_mount {
    state: Mutex<State>,
}

impl saferoot_mount {
    fn new(m: Mount) -> *mut saferoot_mount {
        boxed(saferoot_mount {
            state: Mutex::new(State::Detached(m)),
        })
    }
}

impl Locked for saferoot_mount {
    type State = State;
    const WHAT: &'static str = "mount";
    fn state(&self) -> &Mutex<State> {
        &self.state
    }
}

fn not_detached(state: &State) -> saferoot_error {
    saferoot_error::invalid(match state {
        State::Attached(_) => "the mount is attached already; this needs a detached mount",
        _ => "the mount was detached (unmounted) already",
    })
}

/// Runs `f` on the detached mount of `m`, refusing other states.
///
/// # Safety
///
/// `m` must be NULL or a live mount handle.
unsafe fn with_detached<T>(
    m: *const saferoot_mount,
    f: impl FnOnce(&Mount) -> FfiResult<T>,
) -> FfiResult<T> {
    // SAFETY: `m` is NULL or a live mount handle.
    let st = unsafe { lock_handle(m)? };
    match &*st {
        State::Detached(mount) => f(mount),
        other => Err(not_detached(other)),
    }
}

fn attr_arg(bits: u64, what: &str) -> FfiResult<MountAttr> {
    check_flags(bits, SAFEROOT_MOUNT_ATTR_ALL, what)?;
    Ok(MountAttr::from_bits_retain(bits))
}

/// Makes a new instance of the filesystem `fstype` (`"tmpfs"`, `"proc"`,
/// `"sysfs"`, `"mqueue"`, `"devpts"`, `"cgroup2"`, `"overlay"`, ...) as a
/// detached mount: fsopen, fsconfig for each parameter, fsmount with
/// `opts->attrs`. `opts` may be NULL (no source, no parameters, no
/// attributes). An unknown filesystem type or a parameter the filesystem
/// refuses is an invalid-input error quoting the kernel's message.
///
/// Returns a new detached mount owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_fs(
    fstype: *const c_char,
    opts: *const saferoot_fs_options,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount {
    guard_ptr!(err, || {
        // SAFETY: `fstype` is NULL or NUL-terminated; `opts` is NULL or
        // points to `opts->size` readable bytes.
        let (fstype, opts) = unsafe { (str_arg(fstype, "fstype")?, read_ext(opts)?) };
        // SAFETY: the strings in `opts` are NULL or NUL-terminated.
        let (source, data) = unsafe {
            (
                opt_str_arg(opts.source, "opts->source")?,
                opt_str_arg(opts.data, "opts->data")?,
            )
        };
        let mut b = Mount::fs(fstype).attrs(attr_arg(opts.attrs, "opts->attrs")?);
        if let Some(source) = source {
            b = b.source(source);
        }
        if let Some(data) = data {
            b = b.data(data);
        }
        Ok(saferoot_mount::new(b.mount()?))
    })
}

/// Clones the mount at the host path `source` (a bind mount) as a
/// detached mount. `flags`: `SAFEROOT_CLONE_RECURSIVE` takes the mounts
/// below it along; `SAFEROOT_CLONE_NOFOLLOW` binds a symlink at the last
/// component itself. `source` is the caller's host path, resolved normally
/// (it is not an in-root path).
///
/// Returns a new detached mount owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_clone(
    source: *const c_char,
    flags: u32,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount {
    guard_ptr!(err, || {
        // SAFETY: `source` is NULL or NUL-terminated.
        let source = unsafe { str_arg(source, "source")? };
        check_flags(
            flags,
            SAFEROOT_CLONE_RECURSIVE | SAFEROOT_CLONE_NOFOLLOW,
            "clone flags",
        )?;
        let recursive = flags & SAFEROOT_CLONE_RECURSIVE != 0;
        let m = if flags & SAFEROOT_CLONE_NOFOLLOW != 0 {
            Mount::clone_tree_nofollow(source, Scope::tree_if(recursive))?
        } else {
            Mount::clone_tree(source, Scope::tree_if(recursive))?
        };
        Ok(saferoot_mount::new(m))
    })
}

/// Clones the mount tree at `fd` (a resolved `O_PATH` fd, a root fd, an
/// open file or directory, or another mount fd) as a detached mount.
/// `flags`: `SAFEROOT_CLONE_RECURSIVE` only. `fd` is borrowed and stays
/// the caller's.
///
/// Returns a new detached mount owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_clone_fd(
    fd: c_int,
    flags: u32,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount {
    guard_ptr!(err, || {
        check_flags(flags, SAFEROOT_CLONE_RECURSIVE, "clone_fd flags")?;
        // SAFETY: the fd is borrowed for this call, as documented.
        let fd = unsafe { borrow_fd(fd, "fd")? };
        Ok(saferoot_mount::new(Mount::clone_fd(
            fd,
            Scope::tree_if(flags & SAFEROOT_CLONE_RECURSIVE != 0),
        )?))
    })
}

/// Clones the mount tree at the in-root path `path` of `root`, resolved
/// without leaving the root, as a detached mount. `flags`:
/// `SAFEROOT_CLONE_RECURSIVE`, `SAFEROOT_CLONE_NOFOLLOW`.
///
/// Returns a new detached mount owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_clone_in_root(
    root: *const saferoot_root,
    path: *const c_char,
    flags: u32,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount {
    guard_ptr!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        check_flags(
            flags,
            SAFEROOT_CLONE_RECURSIVE | SAFEROOT_CLONE_NOFOLLOW,
            "clone flags",
        )?;
        let recursive = flags & SAFEROOT_CLONE_RECURSIVE != 0;
        let m = if flags & SAFEROOT_CLONE_NOFOLLOW != 0 {
            let h = root.root.resolve_nofollow(path)?;
            Mount::clone_fd(&h, Scope::tree_if(recursive))?
        } else {
            Mount::clone_in_root(&root.root, path, Scope::tree_if(recursive))?
        };
        Ok(saferoot_mount::new(m))
    })
}

/// Adopts a detached mount fd made elsewhere (by fsmount(2) or
/// open_tree(2) with `OPEN_TREE_CLONE`). `fd` is borrowed: the handle
/// keeps its own `O_CLOEXEC` duplicate and the caller still closes `fd`.
///
/// Only a detached mount is accepted: `fd` must be the root of a mount
/// that is not attached in the calling thread's mount namespace. An fd of
/// a live mount (open_tree(2) without `OPEN_TREE_CLONE`, or an open mount
/// point) is refused with `-EINVAL`, invalid-input kind, and nothing is
/// changed: attribute and propagation changes through it would act on the
/// live mount. (A mount attached in another namespace cannot be changed
/// through an fd at all; the kernel refuses those changes.) To work on a
/// live mount, clone it with `saferoot_mount_clone_fd` and attach the
/// clone.
///
/// Returns a new mount handle owned by the caller, or NULL with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_from_fd(
    fd: c_int,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount {
    guard_ptr!(err, || Ok(saferoot_mount::new(Mount::from_detached_fd(
        dup_borrowed(fd, "mount fd")?
    )?)))
}

/// The mount's fd, borrowed: it stays owned by `m` and is valid until
/// `saferoot_mount_free(m)` (or `saferoot_mount_detach`). Do not close
/// it. `-EINVAL` when `m` is NULL or was detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_fd(m: *const saferoot_mount) -> c_int {
    // SAFETY: `m` is NULL or a live mount handle.
    unsafe {
        handle_fd(m, |st| match st {
            State::Detached(mount) => Some(mount.as_fd().as_raw_fd()),
            State::Attached(a) => Some(a.as_fd().as_raw_fd()),
            State::Gone => None,
        })
    }
}

/// Sets the `SAFEROOT_MOUNT_ATTR_*` bits `set` and clears the bits
/// `clear` (mount_setattr). `flags`: `SAFEROOT_ATTR_RECURSIVE` applies
/// them to every mount of the tree. Works on detached and attached mounts;
/// configure before attaching so the mount is never visible with weaker
/// attributes. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_set_attr(
    m: *const saferoot_mount,
    set: u64,
    clear: u64,
    flags: u32,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `m` is NULL or a live mount handle.
        let st = unsafe { lock_handle(m)? };
        let (set, clear) = (attr_arg(set, "set")?, attr_arg(clear, "clear")?);
        check_flags(flags, SAFEROOT_ATTR_RECURSIVE, "set_attr flags")?;
        let recursive = flags & SAFEROOT_ATTR_RECURSIVE != 0;
        match &*st {
            State::Detached(mount) if recursive => mount.set_attr_recursive(set, clear)?,
            State::Detached(mount) => mount.set_attr(set, clear)?,
            State::Attached(a) if recursive => a.set_attr_recursive(set, clear)?,
            State::Attached(a) => a.set_attr(set, clear)?,
            State::Gone => return Err(not_detached(&st)),
        }
        Ok(0)
    })
}

fn dup_fd(fd: &impl AsFd) -> FfiResult<OwnedFd> {
    fd.as_fd().try_clone_to_owned().map_err(|e| {
        saferoot_error::new(
            crate::error::saferoot_errkind::SAFEROOT_ERRKIND_OS,
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("dup mount fd: {e}"),
        )
    })
}

/// Gives the mount (with `SAFEROOT_ATTR_RECURSIVE`, every mount of the
/// tree) the propagation type `propagation`, a `saferoot_propagation`.
/// Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_set_propagation(
    m: *const saferoot_mount,
    propagation: u32,
    flags: u32,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        check_flags(flags, SAFEROOT_ATTR_RECURSIVE, "set_propagation flags")?;
        let p = match propagation {
            1 => Propagation::Private,
            2 => Propagation::Slave,
            3 => Propagation::Shared,
            4 => Propagation::Unbindable,
            other => {
                return Err(saferoot_error::invalid(format!(
                    "unknown propagation type {other}"
                )))
            }
        };
        let scope = Scope::tree_if(flags & SAFEROOT_ATTR_RECURSIVE != 0);
        // SAFETY: `m` is NULL or a live mount handle.
        let st = unsafe { lock_handle(m)? };
        match &*st {
            State::Detached(mount) => mount.set_propagation(p, scope)?,
            State::Attached(a) => a.set_propagation(p, scope)?,
            State::Gone => return Err(not_detached(&st)),
        }
        Ok(0)
    })
}

/// Makes the detached mount an idmapped mount with the uid and gid maps
/// of the user namespace `userns_fd` (an fd to `/proc/PID/ns/user`,
/// borrowed: it stays the caller's). `flags`: `SAFEROOT_ATTR_RECURSIVE`.
/// Only possible before attaching, once. Returns 0, or `-errno` with
/// `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_set_idmap(
    m: *const saferoot_mount,
    userns_fd: c_int,
    flags: u32,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        check_flags(flags, SAFEROOT_ATTR_RECURSIVE, "set_idmap flags")?;
        // SAFETY: the fd is borrowed for this call, as documented.
        let userns = unsafe { borrow_fd(userns_fd, "userns fd")? };
        // SAFETY: `m` is NULL or a live mount handle.
        unsafe {
            with_detached(m, |mount| {
                let scope = Scope::tree_if(flags & SAFEROOT_ATTR_RECURSIVE != 0);
                mount.set_idmap(userns, scope)?;
                Ok(0)
            })
        }
    })
}

/// Stores in `*attrs_out` the `SAFEROOT_MOUNT_ATTR_*` bits the kernel
/// reports for the mount (fstatvfs): read-only, nosuid, nodev, noexec,
/// the access-time policy, nodiratime, nosymfollow. Returns 0, or
/// `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_get_attr(
    m: *const saferoot_mount,
    attrs_out: *mut u64,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        if attrs_out.is_null() {
            return Err(saferoot_error::invalid("attrs_out is NULL"));
        }
        // SAFETY: `m` is NULL or a live mount handle.
        let st = unsafe { lock_handle(m)? };
        let attrs = match &*st {
            State::Detached(mount) => mount.attrs()?,
            State::Attached(a) => a.attrs()?,
            State::Gone => return Err(not_detached(&st)),
        };
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { write_out(attrs_out, attrs.bits()) };
        Ok(0)
    })
}

/// A root for the tree of the mount (detached or attached): resolve,
/// create and attach below it. While the mount is detached, that builds a
/// tree nobody can see yet.
///
/// Returns a new root owned by the caller (free with
/// `saferoot_root_free`), or NULL with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_root(
    m: *const saferoot_mount,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_root {
    guard_ptr!(err, || {
        // SAFETY: `m` is NULL or a live mount handle.
        let st = unsafe { lock_handle(m)? };
        let fd = match &*st {
            State::Detached(mount) => dup_fd(mount)?,
            State::Attached(a) => dup_fd(a)?,
            State::Gone => return Err(not_detached(&st)),
        };
        Ok(boxed(saferoot_root {
            root: saferoot::Root::from_fd(fd)?,
        }))
    })
}

/// Attaches the detached mount `m` with `attach`. On failure `m` stays
/// detached and can be attached elsewhere or freed.
///
/// # Safety
///
/// `m` must be NULL or a live mount handle.
unsafe fn attach_with(
    m: *const saferoot_mount,
    attach: impl FnOnce(Mount) -> Result<AttachedMount, AttachError>,
) -> FfiResult<c_int> {
    // SAFETY: `m` is NULL or a live mount handle.
    let mut st = unsafe { lock_handle(m)? };
    let mount = match std::mem::replace(&mut *st, State::Gone) {
        State::Detached(mount) => mount,
        other => {
            *st = other;
            return Err(not_detached(&st));
        }
    };
    let what = mount.description().to_string();
    match attach(mount) {
        Ok(attached) => {
            *st = State::Attached(attached);
            Ok(0)
        }
        Err(e) => {
            // A failed attach hands the mount back: the handle stays
            // detached and usable.
            let (mount, e) = e.into_parts();
            *st = State::Detached(mount);
            let mut e = saferoot_error::from(e);
            e.prefix(&format!("attach {what}: "));
            Err(e)
        }
    }
}

/// Attaches the detached mount onto the inode `target_fd` refers to
/// (move_mount with `MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH`):
/// normally an fd from `saferoot_resolve`, so the target is never a path
/// that could be swapped for a symlink. `target_fd` is borrowed and stays
/// the caller's. On Linux 6.15 and later the target may lie in another
/// detached tree.
///
/// Returns 0, or `-errno` with `*err` set; on failure `m` stays detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_attach(
    m: *const saferoot_mount,
    target_fd: c_int,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: the fd is borrowed for this call, as documented.
        let target = unsafe { borrow_fd(target_fd, "target fd")? };
        // SAFETY: `m` is NULL or a live mount handle.
        unsafe { attach_with(m, |mount| mount.attach(target)) }
    })
}

/// Attaches the detached mount beneath the mount on top at `target_fd`
/// (`MOVE_MOUNT_BENEATH`, Linux 6.5; unsupported kind before): once the
/// top mount is unmounted, this one is in its place, with no moment where
/// neither is there. `target_fd` is borrowed.
///
/// Returns 0, or `-errno` with `*err` set; on failure `m` stays detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_attach_beneath(
    m: *const saferoot_mount,
    target_fd: c_int,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: the fd is borrowed for this call, as documented.
        let target = unsafe { borrow_fd(target_fd, "target fd")? };
        // SAFETY: `m` is NULL or a live mount handle.
        unsafe { attach_with(m, |mount| mount.attach_beneath(target)) }
    })
}

/// Resolves the in-root path `path` in `root` (confined, following
/// symlinks inside the root only) and attaches the detached mount there.
/// The handle remembers the parent directory, so `saferoot_mount_detach`
/// works for file mounts too.
///
/// Returns 0, or `-errno` with `*err` set; on failure `m` stays detached.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_attach_at(
    m: *const saferoot_mount,
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        // SAFETY: `m` is NULL or a live mount handle.
        unsafe { attach_with(m, |mount| mount.attach_at(&root.root, path)) }
    })
}

/// Unmounts (lazily, `MNT_DETACH`) the mount `m` attached, with everything
/// mounted below it, through its own fd: no path is looked up. Afterwards
/// `m` only awaits `saferoot_mount_free`. Returns 0, or `-errno` with
/// `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_detach(
    m: *const saferoot_mount,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `m` is NULL or a live mount handle.
        let mut st = unsafe { lock_handle(m)? };
        match std::mem::replace(&mut *st, State::Gone) {
            State::Attached(a) => {
                a.detach()?;
                Ok(0)
            }
            other => {
                let e = saferoot_error::invalid(match other {
                    State::Detached(_) => "the mount is not attached",
                    _ => "the mount was detached already",
                });
                *st = other;
                Err(e)
            }
        }
    })
}

/// Consumes `m` and returns its fd: for a detached mount the detached
/// mount fd (closing it destroys the mount), for an attached one an fd to
/// the mount's root. The fd is `O_CLOEXEC` and the caller's. `m` is freed
/// in every case except NULL. Returns the fd, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_into_fd(
    m: *mut saferoot_mount,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `m` came from this library; the caller gives it up with
        // this call.
        let m = unsafe { take_handle(m, "mount")? };
        let state = m.state.into_inner().unwrap_or_else(|p| p.into_inner());
        match state {
            State::Detached(mount) => Ok(mount.into_fd().into_raw_fd()),
            State::Attached(a) => Ok(a.into_fd().into_raw_fd()),
            State::Gone => Err(saferoot_error::invalid("the mount was detached already")),
        }
    })
}

/// Frees a mount handle. A detached mount is destroyed; an attached mount
/// stays attached (only the handle's fd is closed). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_free(m: *mut saferoot_mount) {
    // SAFETY: `m` is NULL or a handle of this library, freed once.
    unsafe { free_handle(m) }
}

/// Unmounts (lazily) the topmost mount at the in-root path `path`: a
/// directory through its own resolved fd, a file through its parent's fd
/// and its name without following a symlink. No path the container could
/// redirect is given to umount2. Acts in the calling thread's mount
/// namespace. Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_unmount_in_root(
    root: *const saferoot_root,
    path: *const c_char,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live; `path` NULL or NUL-terminated.
        let (root, path) = unsafe { (handle(root, "root")?, str_arg(path, "path")?) };
        unmount_in_root(&root.root, path)?;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_constants_match_the_library() {
        assert_eq!(SAFEROOT_MOUNT_ATTR_RDONLY, MountAttr::RDONLY.bits());
        assert_eq!(SAFEROOT_MOUNT_ATTR_NOSUID, MountAttr::NOSUID.bits());
        assert_eq!(SAFEROOT_MOUNT_ATTR_NODEV, MountAttr::NODEV.bits());
        assert_eq!(SAFEROOT_MOUNT_ATTR_NOEXEC, MountAttr::NOEXEC.bits());
        assert_eq!(SAFEROOT_MOUNT_ATTR_NOATIME, MountAttr::NOATIME.bits());
        assert_eq!(
            SAFEROOT_MOUNT_ATTR_STRICTATIME,
            MountAttr::STRICTATIME.bits()
        );
        assert_eq!(SAFEROOT_MOUNT_ATTR_NODIRATIME, MountAttr::NODIRATIME.bits());
        assert_eq!(
            SAFEROOT_MOUNT_ATTR_NOSYMFOLLOW,
            MountAttr::NOSYMFOLLOW.bits()
        );
        assert_eq!(SAFEROOT_MOUNT_ATTR_RELATIME, MountAttr::RELATIME.bits());
        assert_eq!(SAFEROOT_MOUNT_ATTR_ALL, MountAttr::all().bits());
        assert_eq!(
            SAFEROOT_FS_OPTIONS_SIZE_VER0,
            std::mem::size_of::<saferoot_fs_options>()
        );
    }

    #[test]
    fn extensible_struct_sizes() {
        #[repr(C)]
        struct Bigger {
            base: saferoot_fs_options,
            extra: u64,
        }
        let mut b = Bigger {
            base: saferoot_fs_options {
                size: std::mem::size_of::<Bigger>(),
                ..Default::default()
            },
            extra: 0,
        };
        b.base.attrs = SAFEROOT_MOUNT_ATTR_RDONLY;
        // SAFETY: `b` is readable for its whole size.
        let o = unsafe { read_ext(&b as *const Bigger as *const saferoot_fs_options) }.unwrap();
        assert_eq!(o.attrs, SAFEROOT_MOUNT_ATTR_RDONLY);
        b.extra = 1;
        // SAFETY: as above.
        let e = unsafe { read_ext(&b as *const Bigger as *const saferoot_fs_options) }.unwrap_err();
        assert_eq!(e.errno(), libc::E2BIG);
        let small = saferoot_fs_options {
            size: 8,
            ..Default::default()
        };
        // SAFETY: `small` is readable.
        assert!(unsafe { read_ext(&small) }.is_err());
    }
}
