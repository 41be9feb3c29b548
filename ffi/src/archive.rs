//! Archives and copies: tar unpacked into a root from an fd, and files or
//! trees copied into and out of a root with `docker cp`'s rules.

use std::ffi::{c_char, c_int};
use std::io::Read;
use std::mem::size_of;

use rustix::event::{PollFd, PollFlags};

use saferoot::archive::{
    CopyOptions, CopySummary, Limits, UnpackOptions, UnpackSummary, Whiteouts,
};

use crate::error::{guard_int, saferoot_error, FfiResult};
use crate::root::saferoot_root;
use crate::util::{check_flags, dup_borrowed, handle, read_ext, str_arg, ExtStruct};

/// What `saferoot_unpack` does with whiteout entries (deletion markers of
/// image layers): the value of `saferoot_unpack_options.whiteouts`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_whiteouts {
    /// No special meaning: `.wh.*` entries are ordinary files.
    SAFEROOT_WHITEOUTS_NONE = 0,
    /// OCI image-layer whiteouts are applied and never written.
    SAFEROOT_WHITEOUTS_OCI = 1,
    /// OCI whiteouts become overlayfs ones (a character device 0:0, the
    /// `trusted.overlay.opaque` attribute).
    SAFEROOT_WHITEOUTS_OVERLAY = 2,
}

/// `saferoot_unpack_options.flags`: give entries the owners recorded in
/// the archive (the default when running as root).
pub const SAFEROOT_UNPACK_SAME_OWNER: u32 = 0x1;
/// `saferoot_unpack_options.flags`: entries belong to the caller (the
/// default when not root). Refused together with
/// `SAFEROOT_UNPACK_SAME_OWNER`.
pub const SAFEROOT_UNPACK_NO_SAME_OWNER: u32 = 0x2;
/// `saferoot_unpack_options.flags`: apply extended attributes recorded in
/// PAX `SCHILY.xattr.*` records to files and directories
/// (`trusted.overlay.*` never).
pub const SAFEROOT_UNPACK_XATTRS: u32 = 0x4;

/// The size of the first version of `struct saferoot_unpack_options`.
pub const SAFEROOT_UNPACK_OPTIONS_SIZE_VER0: usize = 40;

/// Options for `saferoot_unpack`. An extensible struct: set `size` to
/// `sizeof(struct saferoot_unpack_options)` and zero what you do not use;
/// all-zero (or NULL options) means the defaults.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct saferoot_unpack_options {
    /// `sizeof(struct saferoot_unpack_options)`.
    pub size: usize,
    /// `SAFEROOT_UNPACK_*` bits.
    pub flags: u32,
    /// A `saferoot_whiteouts`; 0 is `SAFEROOT_WHITEOUTS_NONE`.
    pub whiteouts: u32,
    /// Most bytes of file contents written; 0 is no limit.
    pub max_bytes: u64,
    /// Most entries; 0 is no limit.
    pub max_entries: u64,
    /// Longest entry name or link target, in bytes; 0 is 4095.
    pub max_path_len: u64,
}

// SAFETY: #[repr(C)], starts with `size: usize`, integers only.
unsafe impl ExtStruct for saferoot_unpack_options {
    const SIZE_VER0: usize = SAFEROOT_UNPACK_OPTIONS_SIZE_VER0;
    const NAME: &'static str = "saferoot_unpack_options";
}

/// The size of the first version of `struct saferoot_unpack_summary`.
pub const SAFEROOT_UNPACK_SUMMARY_SIZE_VER0: usize = 80;

/// What `saferoot_unpack` did. An extensible struct filled by the library:
/// set `size` to `sizeof(struct saferoot_unpack_summary)` before the call;
/// the library fills the fields it knows within that size (and zeroes the
/// rest), and leaves `size` as it was.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct saferoot_unpack_summary {
    /// `sizeof(struct saferoot_unpack_summary)`, set by the caller.
    pub size: usize,
    /// Entries read (of every type, including skipped ones).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories made or updated.
    pub dirs: u64,
    /// Symlinks made.
    pub symlinks: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Device nodes and fifos made.
    pub nodes: u64,
    /// Whiteouts applied (or converted).
    pub whiteouts: u64,
    /// Entries of types not extracted (sockets, global PAX headers, ...).
    pub skipped: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

// SAFETY: #[repr(C)], starts with `size: usize`, integers only.
unsafe impl ExtStruct for saferoot_unpack_summary {
    const SIZE_VER0: usize = SAFEROOT_UNPACK_SUMMARY_SIZE_VER0;
    const NAME: &'static str = "saferoot_unpack_summary";
}

/// `saferoot_copy_options.flags`: when the source itself is a symlink,
/// copy what it points at (`docker cp -L`): on the host as the host
/// resolves it for `saferoot_copy_in`, inside the root for
/// `saferoot_copy_out`.
pub const SAFEROOT_COPY_FOLLOW_LINK: u32 = 0x1;
/// `saferoot_copy_options.flags`: give the copies the source's owners
/// (`docker cp -a`). Without it the copies belong to the caller and lose
/// their set-user-id and set-group-id bits.
pub const SAFEROOT_COPY_SAME_OWNER: u32 = 0x2;

/// The size of the first version of `struct saferoot_copy_options`.
pub const SAFEROOT_COPY_OPTIONS_SIZE_VER0: usize = 40;

/// Options for `saferoot_copy_in` and `saferoot_copy_out`. An extensible
/// struct like `saferoot_unpack_options`; all-zero (or NULL options) means
/// the defaults.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct saferoot_copy_options {
    /// `sizeof(struct saferoot_copy_options)`.
    pub size: usize,
    /// `SAFEROOT_COPY_*` bits.
    pub flags: u32,
    /// Must be 0 (room for a later field).
    pub reserved: u32,
    /// Most bytes of file contents written; 0 is no limit.
    pub max_bytes: u64,
    /// Most entries; 0 is no limit.
    pub max_entries: u64,
    /// Longest name (relative to the copy's top) or symlink target, in
    /// bytes; 0 is 4095.
    pub max_path_len: u64,
}

// SAFETY: #[repr(C)], starts with `size: usize`, integers only.
unsafe impl ExtStruct for saferoot_copy_options {
    const SIZE_VER0: usize = SAFEROOT_COPY_OPTIONS_SIZE_VER0;
    const NAME: &'static str = "saferoot_copy_options";
}

/// The size of the first version of `struct saferoot_copy_summary`.
pub const SAFEROOT_COPY_SUMMARY_SIZE_VER0: usize = 72;

/// What `saferoot_copy_in` or `saferoot_copy_out` did. Filled by the
/// library like `saferoot_unpack_summary`: set `size` first.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct saferoot_copy_summary {
    /// `sizeof(struct saferoot_copy_summary)`, set by the caller.
    pub size: usize,
    /// Entries copied (of every type).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories made or updated.
    pub dirs: u64,
    /// Symlinks made.
    pub symlinks: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Device nodes and fifos made.
    pub nodes: u64,
    /// Source entries not copied (sockets).
    pub skipped: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

// SAFETY: #[repr(C)], starts with `size: usize`, integers only.
unsafe impl ExtStruct for saferoot_copy_summary {
    const SIZE_VER0: usize = SAFEROOT_COPY_SUMMARY_SIZE_VER0;
    const NAME: &'static str = "saferoot_copy_summary";
}

/// Checks the caller's summary struct before any work is done: NULL is
/// fine (no summary wanted), a size below the first version is refused.
///
/// # Safety
///
/// `p` must be NULL or point to at least `(*p).size` bytes.
unsafe fn check_summary<T: ExtStruct>(p: *mut T) -> FfiResult<()> {
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: the first field is a size_t, readable as promised.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    if size < T::SIZE_VER0 {
        return Err(saferoot_error::invalid(format!(
            "struct {}: size {size} is smaller than the smallest version ({}); set size first",
            T::NAME,
            T::SIZE_VER0
        )));
    }
    Ok(())
}

/// Writes `value` into the caller's summary struct: the fields within the
/// caller's `size`, zeros beyond ours, `size` kept.
///
/// # Safety
///
/// `p` must be NULL or point to at least `(*p).size` writable bytes, and
/// have passed [`check_summary`].
unsafe fn write_summary<T: ExtStruct>(p: *mut T, value: T) {
    if p.is_null() {
        return;
    }
    // SAFETY: as promised by the caller.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    let ours = size_of::<T>();
    let n = size.min(ours);
    let bytes = p.cast::<u8>();
    let off = size_of::<usize>();
    // SAFETY: `n` bytes are writable at `p` (n <= size), and readable in
    // `value`; the size field (the first `off` bytes) is left alone.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&value as *const T).cast::<u8>().add(off),
            bytes.add(off),
            n - off,
        );
    }
    if size > ours {
        // SAFETY: bytes ours..size are the caller's, writable as promised.
        unsafe { std::ptr::write_bytes(bytes.add(ours), 0, size - ours) };
    }
}

fn limits(max_bytes: u64, max_entries: u64, max_path_len: u64) -> FfiResult<Limits> {
    let d = Limits::default();
    Ok(Limits {
        max_bytes: if max_bytes == 0 {
            d.max_bytes
        } else {
            max_bytes
        },
        max_entries: if max_entries == 0 {
            d.max_entries
        } else {
            max_entries
        },
        max_path_len: if max_path_len == 0 {
            d.max_path_len
        } else {
            usize::try_from(max_path_len)
                .map_err(|_| saferoot_error::invalid("max_path_len is too large"))?
        },
    })
}

/// Turns the C options into the library's.
///
/// # Safety
///
/// `opts` must be NULL or point to `opts->size` readable bytes.
unsafe fn unpack_options(opts: *const saferoot_unpack_options) -> FfiResult<UnpackOptions> {
    // SAFETY: as promised by the caller.
    let o = unsafe { read_ext(opts)? };
    check_flags(
        o.flags,
        SAFEROOT_UNPACK_SAME_OWNER | SAFEROOT_UNPACK_NO_SAME_OWNER | SAFEROOT_UNPACK_XATTRS,
        "unpack flags",
    )?;
    let mut u = UnpackOptions::default();
    match (
        o.flags & SAFEROOT_UNPACK_SAME_OWNER != 0,
        o.flags & SAFEROOT_UNPACK_NO_SAME_OWNER != 0,
    ) {
        (true, true) => {
            return Err(saferoot_error::invalid(
                "SAFEROOT_UNPACK_SAME_OWNER and SAFEROOT_UNPACK_NO_SAME_OWNER together",
            ))
        }
        (true, false) => u.same_owner = true,
        (false, true) => u.same_owner = false,
        (false, false) => {}
    }
    u.xattrs = o.flags & SAFEROOT_UNPACK_XATTRS != 0;
    u.whiteouts = match o.whiteouts {
        0 => Whiteouts::None,
        1 => Whiteouts::Oci,
        2 => Whiteouts::Overlay,
        other => {
            return Err(saferoot_error::invalid(format!(
                "unknown whiteouts mode {other}"
            )))
        }
    };
    u.limits = limits(o.max_bytes, o.max_entries, o.max_path_len)?;
    Ok(u)
}

/// Turns the C options into the library's.
///
/// # Safety
///
/// `opts` must be NULL or point to `opts->size` readable bytes.
unsafe fn copy_options(opts: *const saferoot_copy_options) -> FfiResult<CopyOptions> {
    // SAFETY: as promised by the caller.
    let o = unsafe { read_ext(opts)? };
    check_flags(
        o.flags,
        SAFEROOT_COPY_FOLLOW_LINK | SAFEROOT_COPY_SAME_OWNER,
        "copy flags",
    )?;
    if o.reserved != 0 {
        return Err(saferoot_error::invalid(
            "saferoot_copy_options.reserved must be 0",
        ));
    }
    Ok(CopyOptions {
        follow_link: o.flags & SAFEROOT_COPY_FOLLOW_LINK != 0,
        same_owner: o.flags & SAFEROOT_COPY_SAME_OWNER != 0,
        limits: limits(o.max_bytes, o.max_entries, o.max_path_len)?,
    })
}

fn unpack_summary(s: UnpackSummary) -> saferoot_unpack_summary {
    saferoot_unpack_summary {
        size: size_of::<saferoot_unpack_summary>(),
        entries: s.entries,
        files: s.files,
        dirs: s.dirs,
        symlinks: s.symlinks,
        hardlinks: s.hardlinks,
        nodes: s.nodes,
        whiteouts: s.whiteouts,
        skipped: s.skipped,
        bytes: s.bytes,
    }
}

fn copy_summary(s: CopySummary) -> saferoot_copy_summary {
    saferoot_copy_summary {
        size: size_of::<saferoot_copy_summary>(),
        entries: s.entries,
        files: s.files,
        dirs: s.dirs,
        symlinks: s.symlinks,
        hardlinks: s.hardlinks,
        nodes: s.nodes,
        skipped: s.skipped,
        bytes: s.bytes,
    }
}

/// Reads a file that may be non-blocking (a pipe from Go's `os.Pipe`, a
/// socket): when nothing is there yet, waits for it with `poll` instead of
/// failing with `EAGAIN`.
struct Blocking(std::fs::File);

impl Read for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
                    match rustix::event::poll(&mut fds, None) {
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                r => return r,
            }
        }
    }
}

/// Unpacks the tar archive read from `fd` (plain, gzip or zstd, told apart
/// by their magic numbers; a file, a pipe or a socket) into `root`, until
/// the archive's end. Nothing the archive holds (`..` or absolute names,
/// symlinks then writes through them, hard links to outside paths, ...)
/// and nothing a process inside the root does meanwhile makes it write
/// outside the root: every entry's parent is resolved in the root and the
/// entry is made relative to the parent's fd without following its last
/// component (docs/archive.md).
///
/// `fd` is borrowed: it is read from (its file offset moves) and never
/// closed; a non-blocking fd is waited on with poll(2). `opts` may be NULL (the defaults). When `summary` is not NULL,
/// set `summary->size` first; it receives the counts on success. Returns
/// 0, or `-errno` with `*err` set (a refused entry names it; what was
/// unpacked before it stays).
#[no_mangle]
pub unsafe extern "C" fn saferoot_unpack(
    root: *const saferoot_root,
    fd: c_int,
    opts: *const saferoot_unpack_options,
    summary: *mut saferoot_unpack_summary,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: `root` is NULL or live.
        let root = unsafe { handle(root, "root")? };
        // SAFETY: NULL or `opts->size` readable bytes.
        let opts = unsafe { unpack_options(opts)? };
        // SAFETY: NULL or `summary->size` bytes.
        unsafe { check_summary(summary)? };
        let file = std::fs::File::from(dup_borrowed(fd, "archive fd")?);
        let reader = std::io::BufReader::with_capacity(1 << 20, Blocking(file));
        let s = root.root.unpack(reader, &opts)?;
        // SAFETY: checked above; writable as promised.
        unsafe { write_summary(summary, unpack_summary(s)) };
        Ok(0)
    })
}

/// Copies the host file or tree `host_src` to the in-root path `dest`,
/// with `docker cp`'s rules: `dest` an existing directory receives the
/// copy under `host_src`'s name; a missing `dest` is created as the copy
/// (its parent must exist: `ENOENT` otherwise); a file replaces an
/// existing non-directory `dest`, a directory there is refused
/// (`ENOTDIR`); `host_src` ending in `/.` copies a directory's contents;
/// `dest` ending in `/` must be an existing directory.
///
/// `dest`'s parent is resolved in the root and its last component is never
/// followed; the copy is unpacked into a root made of the directory it
/// lands in, so no name or symlink in the tree, and no process in the root
/// swapping entries meanwhile, makes it write elsewhere. Symlinks are
/// copied as symlinks (`SAFEROOT_COPY_FOLLOW_LINK` follows `host_src`
/// itself). `opts` may be NULL; `summary` as for `saferoot_unpack`.
/// Returns 0, or `-errno` with `*err` set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_copy_in(
    root: *const saferoot_root,
    host_src: *const c_char,
    dest: *const c_char,
    opts: *const saferoot_copy_options,
    summary: *mut saferoot_copy_summary,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: pointers are NULL or valid, as the caller promises.
        let (root, src, dest, opts) = unsafe {
            (
                handle(root, "root")?,
                str_arg(host_src, "host_src")?,
                str_arg(dest, "dest")?,
                copy_options(opts)?,
            )
        };
        // SAFETY: NULL or `summary->size` bytes.
        unsafe { check_summary(summary)? };
        let s = root.root.copy_in(src, dest, &opts)?;
        // SAFETY: checked above; writable as promised.
        unsafe { write_summary(summary, copy_summary(s)) };
        Ok(0)
    })
}

/// Copies the file or tree at the in-root path `src` to the host path
/// `host_dest`, with the rules of `saferoot_copy_in` (roles swapped).
/// `src`'s parent is resolved in the root; its last component is not
/// followed unless `SAFEROOT_COPY_FOLLOW_LINK` is set (it is then resolved
/// inside the root). The tree is read through fds, never following a
/// symlink, and unpacked into a root made of the host directory the copy
/// lands in, whose last component is never followed either: no name the
/// container chose can write elsewhere on the host. `opts` may be NULL;
/// `summary` as for `saferoot_unpack`. Returns 0, or `-errno` with `*err`
/// set.
#[no_mangle]
pub unsafe extern "C" fn saferoot_copy_out(
    root: *const saferoot_root,
    src: *const c_char,
    host_dest: *const c_char,
    opts: *const saferoot_copy_options,
    summary: *mut saferoot_copy_summary,
    err: *mut *mut saferoot_error,
) -> c_int {
    guard_int!(err, || {
        // SAFETY: pointers are NULL or valid, as the caller promises.
        let (root, src, dest, opts) = unsafe {
            (
                handle(root, "root")?,
                str_arg(src, "src")?,
                str_arg(host_dest, "host_dest")?,
                copy_options(opts)?,
            )
        };
        // SAFETY: NULL or `summary->size` bytes.
        unsafe { check_summary(summary)? };
        let s = root.root.copy_out(src, dest, &opts)?;
        // SAFETY: checked above; writable as promised.
        unsafe { write_summary(summary, copy_summary(s)) };
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_their_first_versions() {
        assert_eq!(
            size_of::<saferoot_unpack_options>(),
            SAFEROOT_UNPACK_OPTIONS_SIZE_VER0
        );
        assert_eq!(
            size_of::<saferoot_unpack_summary>(),
            SAFEROOT_UNPACK_SUMMARY_SIZE_VER0
        );
        assert_eq!(
            size_of::<saferoot_copy_options>(),
            SAFEROOT_COPY_OPTIONS_SIZE_VER0
        );
        assert_eq!(
            size_of::<saferoot_copy_summary>(),
            SAFEROOT_COPY_SUMMARY_SIZE_VER0
        );
    }

    #[test]
    fn summaries_are_written_within_the_callers_size() {
        // A caller built against a newer, larger struct: our fields, then
        // zeros; its size kept.
        let mut buf = [0xffu8; 96];
        buf[..8].copy_from_slice(&96usize.to_ne_bytes());
        let p = buf.as_mut_ptr().cast::<saferoot_copy_summary>();
        let s = saferoot_copy_summary {
            entries: 7,
            bytes: 9,
            ..Default::default()
        };
        // SAFETY: 96 writable bytes, size 96.
        unsafe {
            check_summary(p).unwrap();
            write_summary(p, s);
        }
        assert_eq!(&buf[..8], &96usize.to_ne_bytes());
        assert_eq!(&buf[8..16], &7u64.to_ne_bytes());
        assert_eq!(&buf[64..72], &9u64.to_ne_bytes());
        assert!(buf[72..].iter().all(|&b| b == 0));
        // Too small a size is refused before anything is done.
        let mut small = saferoot_copy_summary {
            size: 8,
            ..Default::default()
        };
        // SAFETY: a valid struct.
        let e = unsafe { check_summary(&mut small as *mut _) }.unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
    }
}
