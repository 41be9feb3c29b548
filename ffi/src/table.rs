//! The mount table (statmount/listmount, or mountinfo).

use std::ffi::{c_char, c_int, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use saferoot::mountinfo::{Backend, MountEntry, MountTable};

use crate::error::{ffi_plain, guard_ptr, saferoot_error, FfiResult};
use crate::root::boxed;
use crate::util::{handle, str_arg};

/// Where `saferoot_mount_table_read` gets the table from.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_table_backend {
    /// statmount/listmount when the kernel has them (Linux 6.8), mountinfo
    /// otherwise.
    SAFEROOT_TABLE_AUTO = 0,
    /// statmount/listmount only; unsupported kind on older kernels.
    SAFEROOT_TABLE_STATMOUNT = 1,
    /// `/proc/thread-self/mountinfo` (or `/proc/PID/mountinfo`), read
    /// through saferoot's private procfs.
    SAFEROOT_TABLE_MOUNTINFO = 2,
}

/// `saferoot_mount_entry.flags`: the mount is idmapped.
pub const SAFEROOT_MOUNT_ENTRY_IDMAPPED: u32 = 0x1;
/// `saferoot_mount_entry.flags`: the mount is unbindable.
pub const SAFEROOT_MOUNT_ENTRY_UNBINDABLE: u32 = 0x2;

/// One mount of a `saferoot_mount_table`. Owned by the table: the struct
/// and its strings stay valid until `saferoot_mount_table_free`.
///
/// `size` is the size of the struct as this library knows it; later
/// releases only append fields, so a caller built against an older header
/// reads the fields it knows, and one built against a newer header checks
/// `size` before reading a field this library may not have.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct saferoot_mount_entry {
    /// `sizeof(struct saferoot_mount_entry)` in this library.
    pub size: usize,
    /// The mount id, as in `/proc/self/mountinfo` and `statx(STATX_MNT_ID)`.
    pub id: u64,
    /// The id of the parent mount (the mount's own id for a namespace root).
    pub parent_id: u64,
    /// The unique 64-bit mount id (statmount backend only), 0 when unknown.
    pub unique_id: u64,
    /// Where the mount is attached, relative to the reader's root.
    pub mount_point: *const c_char,
    /// The directory of the filesystem that is the root of this mount (`/`
    /// for a whole filesystem, a subdirectory for a bind mount).
    pub root: *const c_char,
    /// The filesystem type, with its subtype after a dot where known.
    pub fs_type: *const c_char,
    /// The mount source, `"none"` when the mount was made without one, NULL
    /// when the backend could not tell.
    pub source: *const c_char,
    /// The superblock options (`rw,...` with the filesystem's options),
    /// NULL when the backend could not tell.
    pub super_options: *const c_char,
    /// The per-mount `SAFEROOT_MOUNT_ATTR_*` bits, with exactly one
    /// access-time policy.
    pub attrs: u64,
    /// `SAFEROOT_MOUNT_ENTRY_*` bits.
    pub flags: u32,
    /// Major number of the filesystem's device.
    pub dev_major: u32,
    /// Minor number of the filesystem's device.
    pub dev_minor: u32,
    /// The peer group this mount shares events with, 0 when not shared.
    pub shared_group: u64,
    /// The peer group this mount receives events from, 0 when not a slave.
    pub master_group: u64,
    /// The nearest dominant peer group when it differs from `master_group`,
    /// 0 otherwise.
    pub propagate_from: u64,
}

/// A snapshot of the mounts of one mount namespace, in ascending unique-id
/// order. Owned by the caller; release with `saferoot_mount_table_free`.
/// Immutable: may be read from several threads at once.
#[allow(non_camel_case_types)]
pub struct saferoot_mount_table {
    entries: Vec<saferoot_mount_entry>,
    /// The strings the entries point into; their heap buffers never move.
    _strings: Vec<CString>,
    backend: saferoot_table_backend,
}

fn c_path(p: &Path, strings: &mut Vec<CString>) -> *const c_char {
    c_bytes(p.as_os_str().as_bytes(), strings)
}

fn c_bytes(b: &[u8], strings: &mut Vec<CString>) -> *const c_char {
    let c = CString::new(b.iter().copied().filter(|&c| c != 0).collect::<Vec<u8>>())
        .unwrap_or_default();
    let p = c.as_ptr();
    strings.push(c);
    p
}

fn convert(t: &MountTable) -> saferoot_mount_table {
    let mut strings = Vec::with_capacity(t.len() * 5);
    let entries = t
        .iter()
        .map(|e: &MountEntry| {
            let mut flags = 0;
            if e.idmapped {
                flags |= SAFEROOT_MOUNT_ENTRY_IDMAPPED;
            }
            if e.propagation.unbindable {
                flags |= SAFEROOT_MOUNT_ENTRY_UNBINDABLE;
            }
            saferoot_mount_entry {
                size: std::mem::size_of::<saferoot_mount_entry>(),
                id: e.id,
                parent_id: e.parent_id,
                unique_id: e.unique_id.unwrap_or(0),
                mount_point: c_path(&e.mount_point, &mut strings),
                root: c_path(&e.root, &mut strings),
                fs_type: c_bytes(e.fs_type.as_bytes(), &mut strings),
                source: e
                    .source
                    .as_ref()
                    .map_or(ptr::null(), |s| c_bytes(s.as_bytes(), &mut strings)),
                super_options: e
                    .super_options
                    .as_ref()
                    .map_or(ptr::null(), |s| c_bytes(s.as_bytes(), &mut strings)),
                attrs: e.attrs.bits(),
                flags,
                dev_major: e.dev.0,
                dev_minor: e.dev.1,
                shared_group: e.propagation.shared.unwrap_or(0),
                master_group: e.propagation.master.unwrap_or(0),
                propagate_from: e.propagation.propagate_from.unwrap_or(0),
            }
        })
        .collect();
    saferoot_mount_table {
        entries,
        _strings: strings,
        backend: match t.backend() {
            Backend::Statmount => saferoot_table_backend::SAFEROOT_TABLE_STATMOUNT,
            _ => saferoot_table_backend::SAFEROOT_TABLE_MOUNTINFO,
        },
    }
}

fn backend_arg(b: u32) -> FfiResult<Backend> {
    Ok(match b {
        0 => Backend::Auto,
        1 => Backend::Statmount,
        2 => Backend::Mountinfo,
        other => {
            return Err(saferoot_error::invalid(format!(
                "unknown table backend {other}"
            )))
        }
    })
}

/// Reads the mount table of the calling thread's mount namespace, as the
/// calling thread sees it, with `backend` (a `saferoot_table_backend`).
/// For audits and tests; building a root never needs it.
///
/// Returns a new table owned by the caller (free with
/// `saferoot_mount_table_free`), or NULL with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_read(
    backend: u32,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount_table {
    guard_ptr!(err, || {
        let t = MountTable::read_with(backend_arg(backend)?)?;
        Ok(boxed(convert(&t)))
    })
}

/// Reads the mount table of the mount namespace of process `pid` (in the
/// caller's pid namespace) with `backend`. Returns a new table owned by
/// the caller, or NULL with `*err` set (`EINVAL` for `pid <= 0`).
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_read_pid(
    pid: c_int,
    backend: u32,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount_table {
    guard_ptr!(err, || {
        let backend = backend_arg(backend)?;
        let pid = pid_arg(pid)?;
        Ok(boxed(convert(&MountTable::read_pid(pid, backend)?)))
    })
}

fn pid_arg(pid: c_int) -> FfiResult<rustix::process::Pid> {
    rustix::process::Pid::from_raw(pid)
        .filter(|_| pid > 0)
        .ok_or_else(|| saferoot_error::invalid(format!("pid {pid} is not a process id")))
}

/// Parses the text of a mountinfo file (`len` bytes at `text`, not
/// necessarily NUL-terminated). Returns a new table owned by the caller,
/// or NULL with `*err` set; a malformed line is an invalid-input error
/// naming its line number.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_parse_mountinfo(
    text: *const c_char,
    len: usize,
    err: *mut *mut saferoot_error,
) -> *mut saferoot_mount_table {
    guard_ptr!(err, || {
        if text.is_null() && len != 0 {
            return Err(saferoot_error::invalid("text is NULL"));
        }
        let bytes = if len == 0 {
            &[][..]
        } else {
            // SAFETY: the caller promises `len` readable bytes at `text`.
            unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) }
        };
        Ok(boxed(convert(&MountTable::parse_mountinfo(bytes)?)))
    })
}

/// The number of entries; 0 when `t` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_len(t: *const saferoot_mount_table) -> usize {
    ffi_plain(0, || {
        // SAFETY: `t` is NULL or a live table.
        Ok(unsafe { t.as_ref() }.map_or(0, |t| t.entries.len()))
    })
}

/// The backend that produced the table (`SAFEROOT_TABLE_STATMOUNT` or
/// `SAFEROOT_TABLE_MOUNTINFO`); `-EINVAL` when `t` is NULL.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_backend(t: *const saferoot_mount_table) -> c_int {
    ffi_plain(-libc::EINVAL, || {
        // SAFETY: `t` is NULL or a live table.
        Ok(unsafe { handle(t, "table") }.map_or(-libc::EINVAL, |t| t.backend as c_int))
    })
}

/// Entry `index` (0-based, in table order), borrowed from `t` and valid
/// until `saferoot_mount_table_free(t)`; NULL when `t` is NULL or `index`
/// is out of range.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_entry(
    t: *const saferoot_mount_table,
    index: usize,
) -> *const saferoot_mount_entry {
    ffi_plain(ptr::null(), || {
        // SAFETY: `t` is NULL or a live table.
        Ok(unsafe { t.as_ref() }
            .and_then(|t| t.entries.get(index))
            .map_or(ptr::null(), |e| e as *const _))
    })
}

/// The topmost mount attached at `mount_point` (as the table spells it),
/// borrowed from `t` like `saferoot_mount_table_entry`; NULL when there is
/// none, or for NULL arguments or a `mount_point` that is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_find(
    t: *const saferoot_mount_table,
    mount_point: *const c_char,
) -> *const saferoot_mount_entry {
    ffi_plain(ptr::null(), || {
        // SAFETY: `t` is NULL or live; `mount_point` NULL or NUL-terminated.
        let (t, mp) = unsafe { (handle(t, "table")?, str_arg(mount_point, "mount_point")?) };
        // The last entry at a mount point is the top one: entries are in
        // creation order, and a mount covering another is made later.
        Ok(t.entries
            .iter()
            .rev()
            .find(|e| {
                // SAFETY: every entry's mount_point is a live C string owned
                // by the table.
                unsafe { std::ffi::CStr::from_ptr(e.mount_point) }.to_bytes() == mp.as_bytes()
            })
            .map_or(ptr::null(), |e| e as *const _))
    })
}

/// Frees a table and all its entries and strings. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn saferoot_mount_table_free(t: *mut saferoot_mount_table) {
    // SAFETY: NULL or a handle of this library, freed once.
    unsafe { crate::util::free_handle(t) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn parsed_table_round_trips_through_the_c_structs() {
        let text = b"22 1 0:21 / / rw,relatime shared:1 - tmpfs none rw,size=10k\n\
                     23 22 0:22 /sub /mnt ro,nosuid master:4 - proc proc rw\n";
        let mut err = ptr::null_mut();
        // SAFETY: valid buffer and out-pointer.
        let t = unsafe {
            saferoot_mount_table_parse_mountinfo(text.as_ptr().cast(), text.len(), &mut err)
        };
        assert!(!t.is_null(), "{:?}", err);
        // SAFETY: `t` is a live table; entries and strings live with it.
        unsafe {
            assert_eq!(saferoot_mount_table_len(t), 2);
            let e = &*saferoot_mount_table_entry(t, 1);
            assert_eq!(e.id, 23);
            assert_eq!(e.parent_id, 22);
            assert_eq!(CStr::from_ptr(e.mount_point).to_str().unwrap(), "/mnt");
            assert_eq!(CStr::from_ptr(e.root).to_str().unwrap(), "/sub");
            assert_eq!(CStr::from_ptr(e.fs_type).to_str().unwrap(), "proc");
            assert_eq!(e.master_group, 4);
            assert_ne!(e.attrs & crate::mount::SAFEROOT_MOUNT_ATTR_RDONLY, 0);
            assert!(saferoot_mount_table_entry(t, 2).is_null());
            let top = saferoot_mount_table_find(t, c"/".as_ptr());
            assert_eq!((*top).id, 22);
            assert_eq!((*top).shared_group, 1);
            assert!(saferoot_mount_table_find(t, c"/nope".as_ptr()).is_null());
            saferoot_mount_table_free(t);
        }
    }
}
