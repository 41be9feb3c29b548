//! Unpacking tar archives (plain, gzip or zstd) into a [`Root`].
//!
//! The tar stream is read by this module's own parser (the `tar` crate
//! only decodes header fields and PAX records): ustar, GNU (long names and
//! links, sparse files) and PAX (including GNU tar's sparse formats 0.0,
//! 0.1 and 1.0). Every filesystem effect is made by this module, relative
//! to fds:
//!
//! - each entry's name is normalised lexically: empty and `.` components
//!   are dropped, a leading `/` is dropped, and `..` removes the previous
//!   component but never climbs above the root (the same confinement
//!   `RESOLVE_IN_ROOT` gives, applied to the name);
//! - the entry's parent directory is resolved, and created if missing, in
//!   the root with [`Root::mkdir_all`] (symlinks in it are followed, but
//!   confined to the root);
//! - the entry itself is made relative to the parent's fd, never following
//!   its last component (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`,
//!   `mknodat`, `symlinkat`, `linkat` from a handle resolved in the root
//!   or, without `AT_EMPTY_PATH`, by name from the target's parent
//!   resolved in the root and checked to be the same inode); whatever is
//!   in its place is removed with `unlinkat` on the parent's fd and the
//!   creation tried again;
//! - owner, mode and times are set through the entry's own fd (`fchown`,
//!   `fchmod`, `futimens`), or, for symlinks and device nodes, with
//!   `AT_SYMLINK_NOFOLLOW` relative to the parent's fd.
//!
//! The archive is read (and decompressed) on the calling thread while the
//! filesystem work runs on a helper thread with its own umask (0, so
//! modes are created exact): the two overlap.
//!
//! See `docs/archive.md` for the threat model and the options.

mod extract;
mod parse;

use std::io::{Cursor, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::{Error, Result, Root};

mod copy;
pub use copy::{CopyOptions, CopySummary};

/// What to do with whiteout entries (deletion markers of image layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Whiteouts {
    /// No special meaning: `.wh.*` entries are ordinary files.
    #[default]
    None,
    /// OCI image-layer whiteouts are applied and never written: `.wh.NAME`
    /// removes `NAME` (recursively) from its directory, `.wh..wh..opq`
    /// removes everything in its directory that this archive did not put
    /// there.
    Oci,
    /// OCI whiteouts are converted to overlayfs ones, for a layer directory
    /// that will be an overlay lower dir: `.wh.NAME` becomes a character
    /// device 0:0 named `NAME`, `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its directory.
    Overlay,
}

/// Limits against archives that would fill the disk or take forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of file contents written, over the whole archive (holes
    /// of sparse files are not written, so they do not count).
    pub max_bytes: u64,
    /// Most entries (of any type).
    pub max_entries: u64,
    /// Longest entry name or link target, in bytes, as stored.
    pub max_path_len: usize,
}

impl Default for Limits {
    /// No limit on bytes or entries; names up to 4095 bytes (`PATH_MAX`).
    fn default() -> Self {
        Limits {
            max_bytes: u64::MAX,
            max_entries: u64::MAX,
            max_path_len: 4095,
        }
    }
}

/// How hard links are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HardLinks {
    /// `linkat(handle, "", AT_EMPTY_PATH)` from a handle to the target
    /// resolved in the root. The kernel allows that with
    /// `CAP_DAC_READ_SEARCH` in the initial user namespace, or (Linux 6.10
    /// and later) for an fd opened with the caller's own credentials; when
    /// it refuses (`ENOENT`), the unpack switches to
    /// [`ByName`](HardLinks::ByName) for the rest of the archive.
    #[default]
    Auto,
    /// Always by name: `linkat(target_parent, name, parent, name, 0)`, the
    /// target's parent resolved in the root (flags 0 never follow a symlink
    /// in the last component), then the new link is checked to be the same
    /// inode as the target handle resolved in the root; if it is not (the
    /// target was swapped meanwhile), the new link is removed and the
    /// unpack fails. Works without any capability.
    ByName,
}

/// One range of an id map: `len` ids from `container` on are written as
/// the ids from `host` on (like an OCI `uidMappings` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IdRange {
    /// First id as the archive (the container) has it.
    pub container: u32,
    /// First id on the host (what is given to `fchown`).
    pub host: u32,
    /// How many ids.
    pub len: u32,
}

/// A map from container ids to host ids, applied to the archive's owners
/// before `fchown`: at most [`IdMap::MAX_RANGES`] ranges (kept inline so
/// that [`UnpackOptions`] stays `Copy`). The empty map (the default) is
/// the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IdMap {
    ranges: [IdRange; IdMap::MAX_RANGES],
    len: u8,
}

impl IdMap {
    /// Most ranges a map holds.
    pub const MAX_RANGES: usize = 16;

    /// The map of `ranges`. Refused: more than [`MAX_RANGES`](Self::MAX_RANGES)
    /// ranges, an empty range, a range that runs past `u32::MAX` on either
    /// side, container ranges that overlap (an id would have two host ids).
    pub fn new(ranges: &[IdRange]) -> Result<IdMap> {
        if ranges.len() > Self::MAX_RANGES {
            return Err(Error::invalid(
                "id map",
                format!("more than {} ranges", Self::MAX_RANGES),
            ));
        }
        let mut map = IdMap::default();
        for (i, r) in ranges.iter().enumerate() {
            let end = |start: u32| u64::from(start) + u64::from(r.len);
            if r.len == 0 || end(r.container) > 1 << 32 || end(r.host) > 1 << 32 {
                return Err(Error::invalid(
                    "id map",
                    format!(
                        "range {}:{}:{} is empty or runs past the largest id",
                        r.container, r.host, r.len
                    ),
                ));
            }
            for o in &ranges[..i] {
                if u64::from(r.container) < end(o.container)
                    && u64::from(o.container) < end(r.container)
                {
                    return Err(Error::invalid(
                        "id map",
                        format!(
                            "container ranges {}:{}:{} and {}:{}:{} overlap",
                            o.container, o.host, o.len, r.container, r.host, r.len
                        ),
                    ));
                }
            }
            map.ranges[i] = *r;
        }
        map.len = ranges.len() as u8;
        Ok(map)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[IdRange] {
        &self.ranges[..usize::from(self.len)]
    }

    /// Whether the map is empty (the identity).
    pub fn is_identity(&self) -> bool {
        self.len == 0
    }

    /// The host id of the container id `id`: `Some(id)` for the identity,
    /// `None` when a non-empty map has no range holding `id`.
    pub fn map(&self, id: u32) -> Option<u32> {
        if self.is_identity() {
            return Some(id);
        }
        self.ranges().iter().find_map(|r| {
            let off = id.checked_sub(r.container)?;
            (off < r.len).then(|| r.host + off)
        })
    }
}

/// What happens to an owner outside a non-empty [`IdMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UnmappedIds {
    /// The unpack fails, naming the entry and the id (nothing is guessed).
    #[default]
    Error,
    /// The kernel's overflow id is given instead
    /// (`/proc/sys/kernel/overflowuid` and `overflowgid`, usually 65534):
    /// what a user namespace shows for an id it does not map.
    Overflow,
}

/// How [`Root::unpack`] extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Whiteout handling.
    pub whiteouts: Whiteouts,
    /// Give entries the owner recorded in the archive (`fchown`), through
    /// `uid_map` and `gid_map`. When false, entries belong to the caller
    /// and the maps are not used.
    pub same_owner: bool,
    /// Size limits.
    pub limits: Limits,
    /// Apply extended attributes recorded in PAX `SCHILY.xattr.NAME`
    /// records (as GNU tar `--xattrs` writes them) to files and
    /// directories, through their fds. `trusted.overlay.*` attributes are
    /// never applied (they steer overlayfs lookups). Symlinks and device
    /// nodes get none (there is no fd-based call for them).
    pub xattrs: bool,
    /// How hard links are made.
    pub hardlinks: HardLinks,
    /// Container uids to host uids (for rootless layers: `0:100000:65536`).
    pub uid_map: IdMap,
    /// Container gids to host gids.
    pub gid_map: IdMap,
    /// What an owner outside a non-empty map becomes.
    pub unmapped_ids: UnmappedIds,
}

impl Default for UnpackOptions {
    /// No whiteout handling, owners kept when running as root (as GNU tar
    /// does), no size limits, no extended attributes, hard links by handle
    /// when allowed, no id maps.
    fn default() -> Self {
        UnpackOptions {
            whiteouts: Whiteouts::None,
            same_owner: rustix::process::geteuid().is_root(),
            limits: Limits::default(),
            xattrs: false,
            hardlinks: HardLinks::Auto,
            uid_map: IdMap::default(),
            gid_map: IdMap::default(),
            unmapped_ids: UnmappedIds::Error,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpackSummary {
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
    /// Bytes of file contents written (holes of sparse files excluded).
    pub bytes: u64,
}

/// Counters an unpack updates as it goes, for a progress display on
/// another thread (see [`Root::unpack_with_progress`]).
#[derive(Debug, Default)]
pub struct UnpackProgress {
    archive_bytes: AtomicU64,
    entries: AtomicU64,
}

impl UnpackProgress {
    /// Fresh counters, all zero.
    pub fn new() -> UnpackProgress {
        UnpackProgress::default()
    }

    /// Bytes read from the reader so far (compressed bytes, for a
    /// compressed archive: comparable with the archive file's size).
    pub fn archive_bytes(&self) -> u64 {
        self.archive_bytes.load(Ordering::Relaxed)
    }

    /// Entries extracted so far.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

impl Root {
    /// Unpacks the tar archive read from `reader` (plain, gzip or zstd,
    /// told apart by their magic numbers) into this root. See
    /// [`crate::archive`].
    ///
    /// The reader is read until the archive's end-of-archive blocks (or its
    /// end of file) is seen by the extraction; it may be read a little
    /// further ahead (up to a few MiB) before that is known.
    pub fn unpack(&self, reader: impl Read, opts: &UnpackOptions) -> Result<UnpackSummary> {
        unpack_with_progress(self, reader, opts, &UnpackProgress::new())
    }

    /// Like [`unpack`](Self::unpack), updating `progress` as it goes.
    pub fn unpack_with_progress(
        &self,
        reader: impl Read,
        opts: &UnpackOptions,
        progress: &UnpackProgress,
    ) -> Result<UnpackSummary> {
        unpack_with_progress(self, reader, opts, progress)
    }

    /// Like [`unpack_with_progress`](Self::unpack_with_progress), reading
    /// the archive from `fd`. When `fd` is a regular file holding an
    /// uncompressed archive, it is read with `pread` from its current
    /// offset (which is left where it was), and large file contents go
    /// from it to the new files with `copy_file_range`, never through
    /// this process's memory; anything else (a pipe, a compressed
    /// archive) is read as a stream.
    pub fn unpack_fd(
        &self,
        fd: impl AsFd,
        opts: &UnpackOptions,
        progress: &UnpackProgress,
    ) -> Result<UnpackSummary> {
        unpack_fd(self, fd.as_fd(), opts, progress)
    }
}

/// Unpacks the tar archive read from `reader` into `root`; the same as
/// [`Root::unpack`].
pub fn unpack(root: &Root, reader: impl Read, opts: &UnpackOptions) -> Result<UnpackSummary> {
    unpack_with_progress(root, reader, opts, &UnpackProgress::new())
}

/// Unpacks the tar archive read from `reader` into `root`, updating
/// `progress`; the same as [`Root::unpack_with_progress`].
pub fn unpack_with_progress(
    root: &Root,
    reader: impl Read,
    opts: &UnpackOptions,
    progress: &UnpackProgress,
) -> Result<UnpackSummary> {
    let counted = Counted {
        inner: reader,
        n: &progress.archive_bytes,
    };
    let plain = decompress(counted)?;
    run(root, parse::Source::Stream(plain), None, opts, progress)
}

/// Unpacks the tar archive read from `fd` into `root`, updating
/// `progress`; the same as [`Root::unpack_fd`].
pub fn unpack_fd(
    root: &Root,
    fd: BorrowedFd<'_>,
    opts: &UnpackOptions,
    progress: &UnpackProgress,
) -> Result<UnpackSummary> {
    let archive = Path::new("/");
    let st = rustix::fs::fstat(fd).map_err(|e| Error::os_at("fstat archive", archive, e))?;
    if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
        let offset = rustix::fs::seek(fd, rustix::fs::SeekFrom::Current(0))
            .map_err(|e| Error::os_at("seek archive", archive, e))?;
        let mut head = [0u8; 6];
        let mut n = 0;
        while n < head.len() {
            match rustix::io::pread(fd, &mut head[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::os_at("read archive", archive, e)),
            }
        }
        if compression(&head[..n]).is_none() {
            let size = u64::try_from(st.st_size).unwrap_or(0);
            let src = parse::Source::File {
                fd,
                offset,
                size,
                progress: &progress.archive_bytes,
            };
            return run(root, src, Some(fd), opts, progress);
        }
    }
    unpack_with_progress(
        root,
        std::fs::File::from(fd.try_clone_to_owned().map_err(|e| {
            Error::os_at(
                "dup archive fd",
                archive,
                Errno::from_io_error(&e).unwrap_or(Errno::BADF),
            )
        })?),
        opts,
        progress,
    )
}

/// Reads `src` on this thread and extracts on a helper thread.
fn run(
    root: &Root,
    src: parse::Source<'_>,
    archive: Option<BorrowedFd<'_>>,
    opts: &UnpackOptions,
    progress: &UnpackProgress,
) -> Result<UnpackSummary> {
    let owners = extract::Owners::new(opts)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(parse::BATCHES_IN_FLIGHT);
    let (worked, fed) = crate::fsthread::alongside_fs_thread(
        move || extract::run(root, opts, owners, progress, archive, rx),
        move || parse::feed(src, opts, tx),
    )
    .map_err(|e| Error::os("unpack: start the extraction thread", e))?;
    match (worked, fed) {
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(Some(summary)), Ok(())) => Ok(summary),
        (Ok(None), Ok(())) => Err(Error::invalid(
            "unpack",
            "the extraction stopped before the end of the archive",
        )),
    }
}

/// A reader that counts the bytes it passes on.
struct Counted<'a, R> {
    inner: R,
    n: &'a AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const BZIP2_MAGIC: &[u8] = b"BZh";

/// Wraps `r` in the decompressor its first bytes call for.
fn decompress<'a>(mut r: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error("read archive", Path::new("/"), e)),
        }
    }
    let head = &head[..n];
    let whole = Cursor::new(head.to_vec()).chain(r);
    match compression(head) {
        Some(Compression::Gzip) => {
            // Compressed input is read in large pieces (the default is 32 KiB).
            let buffered = std::io::BufReader::with_capacity(256 << 10, whole);
            Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
        }
        Some(Compression::Zstd) => {
            let d = zstd::stream::read::Decoder::new(whole)
                .map_err(|e| io_error("start zstd decoder", Path::new("/"), e))?;
            Ok(Box::new(d))
        }
        Some(Compression::Unsupported) => Err(Error::invalid(
            "unpack",
            "xz and bzip2 archives are not supported (only plain tar, gzip and zstd)",
        )),
        None => Ok(Box::new(whole)),
    }
}

enum Compression {
    Gzip,
    Zstd,
    Unsupported,
}

/// The compression the first bytes of a stream announce.
fn compression(head: &[u8]) -> Option<Compression> {
    if head.starts_with(GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if head.starts_with(ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else if head.starts_with(XZ_MAGIC) || head.starts_with(BZIP2_MAGIC) {
        Some(Compression::Unsupported)
    } else {
        None
    }
}

/// An I/O error while working on `path`: the errno when there is one, a
/// malformed archive otherwise.
fn io_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    match Errno::from_io_error(&e) {
        Some(errno) => Error::os_at(op, path, errno),
        None => Error::invalid_at(op, path, format!("malformed archive: {e}")),
    }
}
