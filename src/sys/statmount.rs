//! `statmount(2)` and `listmount(2)` (Linux 6.8), as plain Rust data.
//!
//! Both take a `struct mnt_id_req`; saferoot always passes its first version
//! (`MNT_ID_REQ_SIZE_VER0`, 24 bytes), which every kernel with the calls
//! accepts, so the calls work on the caller's own mount namespace only.
//!
//! # What listmount lists
//!
//! In every released kernel (6.8 up to at least 6.18) `listmount` walks the
//! namespace's mounts in ascending unique-id order and returns each one that
//! is reachable from the mount it was asked about: the whole subtree below
//! that mount, not only its immediate children, and without the mount
//! itself. For `LSMT_ROOT` it starts from the caller's root directory, so the
//! answer is every mount the caller can see, the root mount included (no
//! mount has the id `LSMT_ROOT`, so none is skipped). The patches that
//! preceded 6.8 listed immediate children only (recursion was a flag) and
//! left the root out; [`crate::mountinfo`] copes with either answer without
//! walking the tree once per mount. `param` continues a listing after the
//! given id, which is how [`listmount`] pages through long lists.

#![allow(unsafe_code)]

use std::ffi::OsString;
use std::mem::{offset_of, size_of};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use linux_raw_sys::general as k;
use rustix::io::Errno;

use super::last_errno;

/// The statmount fields that Linux 6.8 already has: superblock and mount
/// basics, `propagate_from`, the mount's root, its mount point and the
/// filesystem type.
pub const STATMOUNT_MASK_6_8: u64 = (k::STATMOUNT_SB_BASIC
    | k::STATMOUNT_MNT_BASIC
    | k::STATMOUNT_PROPAGATE_FROM
    | k::STATMOUNT_MNT_ROOT
    | k::STATMOUNT_MNT_POINT
    | k::STATMOUNT_FS_TYPE) as u64;

/// The newer fields asked for when the kernel has them: superblock options
/// (Linux 6.11), filesystem subtype and source (6.13), and the mask of what
/// the kernel supports at all (later still).
///
/// Kernels from 6.8 on ignore mask bits they do not know, so asking for
/// these costs nothing; [`statmount_all`] still copes with a kernel that
/// would refuse them.
pub const STATMOUNT_MASK_NEWER: u64 = (k::STATMOUNT_MNT_OPTS
    | k::STATMOUNT_FS_SUBTYPE
    | k::STATMOUNT_SB_SOURCE
    | k::STATMOUNT_SUPPORTED_MASK) as u64;

/// The first buffer size tried; doubled on `EOVERFLOW`.
const INITIAL_BUF_BYTES: usize = 4096;
/// Past this size an `EOVERFLOW` is returned to the caller.
const MAX_BUF_BYTES: usize = 16 << 20;
/// How many ids one listmount call asks for.
const LIST_CHUNK: usize = 512;

/// Set once a kernel rejected [`STATMOUNT_MASK_NEWER`] with `EINVAL` while
/// accepting [`STATMOUNT_MASK_6_8`], so that later calls skip the retry.
static NEWER_MASK_REJECTED: AtomicBool = AtomicBool::new(false);

/// What `statmount(2)` reported about one mount.
///
/// Only the fields whose group is in [`mask`](Self::mask) were filled by the
/// kernel; the numeric fields of the others are zero and the strings `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatmountInfo {
    /// The `STATMOUNT_*` groups the kernel filled in.
    pub mask: u64,
    /// The unique 64-bit mount id (never reused while the system runs).
    pub mnt_id: u64,
    /// The unique id of the parent mount (the mount's own id for the root
    /// of a namespace).
    pub parent_id: u64,
    /// The reusable 32-bit mount id, as in `/proc/self/mountinfo`.
    pub mnt_id_old: u32,
    /// The reusable 32-bit id of the parent mount.
    pub parent_id_old: u32,
    /// The mount's `MOUNT_ATTR_*` flags.
    pub mnt_attr: u64,
    /// `MS_SHARED`, `MS_SLAVE`, `MS_UNBINDABLE` and `MS_PRIVATE` bits.
    pub propagation: u64,
    /// The peer group id when shared, else 0.
    pub peer_group: u64,
    /// The master's peer group id when a slave, else 0.
    pub master: u64,
    /// The nearest dominating peer group reachable from the caller's root,
    /// when a slave, else 0.
    pub propagate_from: u64,
    /// Major number of the superblock's device.
    pub sb_dev_major: u32,
    /// Minor number of the superblock's device.
    pub sb_dev_minor: u32,
    /// The filesystem's magic number (as `statfs` `f_type`).
    pub sb_magic: u64,
    /// `SB_RDONLY`, `SB_SYNCHRONOUS`, `SB_DIRSYNC` and `SB_LAZYTIME` bits.
    pub sb_flags: u32,
    /// The filesystem type name, without subtype (`fuse`, not `fuse.sshfs`).
    pub fs_type: Option<String>,
    /// The filesystem subtype, if the filesystem has one (Linux 6.13+).
    pub fs_subtype: Option<String>,
    /// The root of the mount within its filesystem.
    pub mnt_root: Option<PathBuf>,
    /// The mount point, relative to the caller's root directory.
    pub mnt_point: Option<PathBuf>,
    /// The source (device) the filesystem was mounted from (Linux 6.13+;
    /// 6.12 leaves it out of the mask).
    pub sb_source: Option<String>,
    /// The superblock options as the filesystem shows them, comma-separated
    /// and escaped as in mountinfo, without `ro`/`rw` (Linux 6.11+). The
    /// kernel leaves `STATMOUNT_MNT_OPTS` out of the mask when there are
    /// none, so `None` means "no options" on a kernel that supports them.
    pub mnt_opts: Option<String>,
    /// The `STATMOUNT_*` groups this kernel supports, when it says
    /// (`STATMOUNT_SUPPORTED_MASK`), else 0.
    pub supported_mask: u64,
}

impl StatmountInfo {
    /// Whether the kernel filled in the `STATMOUNT_*` group `bit`.
    pub fn has(&self, bit: u32) -> bool {
        self.mask & bit as u64 != 0
    }
}

/// `statmount(mnt_id, mask)`: one mount by its unique id, asking for exactly
/// `mask`. Grows its buffer while the kernel answers `EOVERFLOW`.
pub fn statmount(mnt_id: u64, mask: u64) -> Result<StatmountInfo, Errno> {
    let req = request(mnt_id, mask);
    let mut words = INITIAL_BUF_BYTES / 8;
    loop {
        let mut buf = vec![0u64; words];
        let bytes = words * size_of::<u64>();
        // SAFETY: `req` is a valid `mnt_id_req` whose `size` (VER0) is no
        // larger than the struct; `buf` is a writable, 8-aligned allocation
        // of `bytes` bytes, at least the size of `struct statmount`, that
        // outlives the call. The kernel writes at most `bytes` bytes.
        let r = unsafe {
            libc::syscall(
                k::__NR_statmount as libc::c_long,
                &req as *const k::mnt_id_req,
                buf.as_mut_ptr().cast::<u8>(),
                bytes,
                0 as libc::c_uint,
            )
        };
        if r < 0 {
            let e = Errno::from_raw_os_error(last_errno());
            if e == Errno::OVERFLOW && bytes < MAX_BUF_BYTES {
                log::trace!("statmount({mnt_id}): {bytes} bytes are too few, doubling");
                words *= 2;
                continue;
            }
            return Err(e);
        }
        return decode(&buf);
    }
}

/// `statmount` with every field saferoot uses: the 6.8 set plus the newer
/// strings. A kernel that refuses the newer bits with `EINVAL` is asked
/// again with the 6.8 set, and not asked for them again by this process.
pub fn statmount_all(mnt_id: u64) -> Result<StatmountInfo, Errno> {
    if !NEWER_MASK_REJECTED.load(Ordering::Relaxed) {
        match statmount(mnt_id, STATMOUNT_MASK_6_8 | STATMOUNT_MASK_NEWER) {
            Err(Errno::INVAL) => {}
            other => return other,
        }
        let info = statmount(mnt_id, STATMOUNT_MASK_6_8)?;
        log::debug!("statmount: kernel refuses the post-6.8 fields; using the 6.8 set");
        NEWER_MASK_REJECTED.store(true, Ordering::Relaxed);
        return Ok(info);
    }
    statmount(mnt_id, STATMOUNT_MASK_6_8)
}

/// `listmount(parent)`: the unique ids the kernel lists for `parent` (a
/// unique mount id), or for the caller's root with `None` (`LSMT_ROOT`),
/// through as many calls as it takes. See the module documentation for what
/// the kernel includes.
pub fn listmount(parent: Option<u64>) -> Result<Vec<u64>, Errno> {
    // LSMT_ROOT is -1: all bits set as a u64.
    let parent = parent.unwrap_or(k::LSMT_ROOT as i64 as u64);
    let mut out = Vec::new();
    let mut last = 0u64;
    let mut buf = vec![0u64; LIST_CHUNK];
    loop {
        let req = request(parent, last);
        // SAFETY: `req` is a valid `mnt_id_req` (VER0 size) and `buf` a
        // writable array of LIST_CHUNK u64s; both outlive the call, and the
        // kernel writes at most LIST_CHUNK ids.
        let r = unsafe {
            libc::syscall(
                k::__NR_listmount as libc::c_long,
                &req as *const k::mnt_id_req,
                buf.as_mut_ptr(),
                LIST_CHUNK,
                0 as libc::c_uint,
            )
        };
        if r < 0 {
            return Err(Errno::from_raw_os_error(last_errno()));
        }
        let n = usize::try_from(r).map_err(|_| Errno::IO)?.min(LIST_CHUNK);
        out.extend_from_slice(&buf[..n]);
        if n < LIST_CHUNK {
            return Ok(out);
        }
        let next = buf[n - 1];
        if next <= last {
            // The kernel lists in ascending id order; anything else would
            // make this loop forever.
            return Err(Errno::IO);
        }
        last = next;
    }
}

/// Gives the calling thread its own root, cwd and umask (`unshare(CLONE_FS)`),
/// as `setns(CLONE_NEWNS)` requires of a thread in a multi-threaded process.
/// Used by [`crate::mountinfo`] on a thread of its own before it enters
/// another process's mount namespace.
pub(crate) fn unshare_fs_for_this_thread() -> Result<(), Errno> {
    // SAFETY: CLONE_FS only gives this thread a private copy of its root,
    // cwd and umask. No fd, memory or other thread's state changes, so no
    // Rust invariant (rustix's reason for making unshare unsafe concerns
    // CLONE_FILES and friends) is affected.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
}

fn request(mnt_id: u64, param: u64) -> k::mnt_id_req {
    k::mnt_id_req {
        size: k::MNT_ID_REQ_SIZE_VER0,
        spare: 0,
        mnt_id,
        param,
        mnt_ns_id: 0,
    }
}

/// Decodes `bytes` as a buffer the kernel filled (a `struct statmount`
/// followed by its strings), for tests and fuzzing (cargo feature
/// `test-hooks`). The kernel's buffer is a whole number of 8-byte words:
/// trailing bytes that do not make a whole word are ignored.
#[cfg(feature = "test-hooks")]
pub fn decode_buffer(bytes: &[u8]) -> Result<StatmountInfo, Errno> {
    let words: Vec<u64> = bytes
        .chunks_exact(size_of::<u64>())
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_ne_bytes(w)
        })
        .collect();
    decode(&words)
}

/// Decodes a buffer the kernel filled.
fn decode(buf: &[u64]) -> Result<StatmountInfo, Errno> {
    let len = std::mem::size_of_val(buf);
    if len < size_of::<k::statmount>() {
        return Err(Errno::IO);
    }
    // SAFETY: the buffer holds at least size_of::<statmount>() initialised
    // bytes, and `statmount` is plain old data (integers only; the trailing
    // flexible array has size zero), so any bit pattern is a valid value.
    let sm: k::statmount = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
    // SAFETY: the u64 slice is `len` initialised bytes; viewing them as
    // bytes (alignment 1) for the lifetime of `buf` is sound.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
    let strings = &bytes[offset_of!(k::statmount, str_)..];

    let mask = sm.mask;
    let has = |bit: u32| mask & bit as u64 != 0;
    let string = |bit: u32, off: u32| -> Result<Option<Vec<u8>>, Errno> {
        if !has(bit) {
            return Ok(None);
        }
        let rest = strings.get(off as usize..).ok_or(Errno::IO)?;
        let end = rest.iter().position(|b| *b == 0).ok_or(Errno::IO)?;
        Ok(Some(rest[..end].to_vec()))
    };
    let text = |v: Option<Vec<u8>>| v.map(|b| String::from_utf8_lossy(&b).into_owned());
    let path = |v: Option<Vec<u8>>| v.map(|b| PathBuf::from(OsString::from_vec(b)));

    let mut info = StatmountInfo {
        mask,
        fs_type: text(string(k::STATMOUNT_FS_TYPE, sm.fs_type)?),
        fs_subtype: text(string(k::STATMOUNT_FS_SUBTYPE, sm.fs_subtype)?),
        mnt_root: path(string(k::STATMOUNT_MNT_ROOT, sm.mnt_root)?),
        mnt_point: path(string(k::STATMOUNT_MNT_POINT, sm.mnt_point)?),
        sb_source: text(string(k::STATMOUNT_SB_SOURCE, sm.sb_source)?),
        mnt_opts: text(string(k::STATMOUNT_MNT_OPTS, sm.mnt_opts)?),
        ..StatmountInfo::default()
    };
    if has(k::STATMOUNT_SB_BASIC) {
        info.sb_dev_major = sm.sb_dev_major;
        info.sb_dev_minor = sm.sb_dev_minor;
        info.sb_magic = sm.sb_magic;
        info.sb_flags = sm.sb_flags;
    }
    if has(k::STATMOUNT_MNT_BASIC) {
        info.mnt_id = sm.mnt_id;
        info.parent_id = sm.mnt_parent_id;
        info.mnt_id_old = sm.mnt_id_old;
        info.parent_id_old = sm.mnt_parent_id_old;
        info.mnt_attr = sm.mnt_attr;
        info.propagation = sm.mnt_propagation;
        info.peer_group = sm.mnt_peer_group;
        info.master = sm.mnt_master;
    }
    if has(k::STATMOUNT_PROPAGATE_FROM) {
        info.propagate_from = sm.propagate_from;
    }
    if has(k::STATMOUNT_SUPPORTED_MASK) {
        info.supported_mask = sm.supported_mask;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_calls() -> bool {
        crate::features::has(crate::Feature::Statmount)
            && crate::features::has(crate::Feature::Listmount)
    }

    #[test_log::test]
    fn decode_rejects_short_buffers_and_bad_offsets() {
        assert_eq!(decode(&[0u64; 4]), Err(Errno::IO));
        let mut buf = vec![0u64; 1024];
        let base = offset_of!(k::statmount, str_);
        // mask = FS_TYPE, fs_type offset far past the end of the buffer.
        buf[offset_of!(k::statmount, mask) / 8] = k::STATMOUNT_FS_TYPE as u64;
        let fs_type_word = offset_of!(k::statmount, fs_type) / 8;
        let shift = (offset_of!(k::statmount, fs_type) % 8) * 8;
        buf[fs_type_word] = 1_000_000u64 << shift;
        assert_eq!(decode(&buf), Err(Errno::IO));
        // A good offset decodes, and fields outside the mask stay empty.
        buf[fs_type_word] = 0;
        let bytes: Vec<u8> = b"tmpfs\0".to_vec();
        for (i, b) in bytes.iter().enumerate() {
            let at = base + i;
            buf[at / 8] |= (*b as u64) << ((at % 8) * 8);
        }
        let info = decode(&buf).unwrap();
        assert_eq!(info.fs_type.as_deref(), Some("tmpfs"));
        assert_eq!(info.mnt_point, None);
        assert!(!info.has(k::STATMOUNT_MNT_BASIC));
    }

    #[test_log::test]
    fn root_listing_includes_the_root_and_equals_its_subtree() {
        assert!(have_calls(), "statmount/listmount missing on this kernel");
        let ids = listmount(None).unwrap();
        assert!(!ids.is_empty());
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "not ascending: {ids:?}"
        );
        let root = ids
            .iter()
            .copied()
            .find(|id| {
                statmount_all(*id)
                    .is_ok_and(|i| i.mnt_point.as_deref() == Some(std::path::Path::new("/")))
            })
            .expect("the root mount is in the LSMT_ROOT listing");
        // Listing the root mount by id gives the same minus the root itself:
        // the whole tree, not only the root's children.
        let below = listmount(Some(root)).unwrap();
        let mut expected = ids.clone();
        expected.retain(|id| *id != root);
        assert_eq!(below, expected);
    }

    #[test_log::test]
    fn statmount_reports_what_it_was_asked() {
        assert!(have_calls(), "statmount/listmount missing on this kernel");
        let id = listmount(None).unwrap()[0];
        let only = statmount(id, k::STATMOUNT_MNT_BASIC as u64).unwrap();
        assert!(only.has(k::STATMOUNT_MNT_BASIC));
        assert!(only.fs_type.is_none() && only.mnt_point.is_none());
        assert_eq!(only.mnt_id, id);
        let all = statmount_all(id).unwrap();
        assert_eq!(all.mask & STATMOUNT_MASK_6_8, STATMOUNT_MASK_6_8);
        assert!(all.fs_type.is_some());
        assert_eq!(
            statmount(u64::MAX - 7, STATMOUNT_MASK_6_8),
            Err(Errno::NOENT)
        );
    }
}
