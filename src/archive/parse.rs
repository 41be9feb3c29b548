//! Reading the tar stream: headers, GNU long names, PAX records and the
//! sparse maps of GNU tar's sparse formats, on the calling thread. What is
//! read goes to the extraction thread as [`Op`]s, in batches.
//!
//! Header fields are decoded by the `tar` crate (`tar::Header`,
//! `tar::PaxExtensions`); the walk over the stream (which block is what,
//! how much data follows, padding) is this module's.

use std::ffi::OsStr;
use std::io::Read;
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use rustix::fs::Timespec;

use super::{io_error, UnpackOptions};
use crate::{Error, Result};

/// Batches of [`Op`]s queued for the extraction thread at most (each holds
/// on to about [`BATCH_BYTES`] of read buffers at most).
pub(crate) const BATCHES_IN_FLIGHT: usize = 4;
/// Read buffers a batch refers to before it is sent.
const BATCH_BYTES: usize = 1 << 20;
/// Ops in one batch before it is sent.
const BATCH_OPS: usize = 512;
/// How much of the archive is read at once (a stream), or at most (a
/// file, where large file contents are not read but copied in the kernel).
const READ_BUF: usize = 1 << 20;
/// How much of an archive file is read at once.
const FILE_READ: usize = 128 << 10;
/// From a file, contents not yet buffered of at least this size are
/// copied with `copy_file_range` instead of being read.
const COPY_MIN: u64 = 64 << 10;
/// Read buffers kept for reuse (each is still referred to by chunks in
/// flight until the extraction thread has written them: a batch of small
/// files refers to many).
const SPARE_BUFS: usize = 256;
/// Largest PAX extended header read (xattrs can be large, but not this).
const MAX_PAX_HEADER: u64 = 16 << 20;
/// Most regions in a sparse map.
const MAX_SPARSE_REGIONS: usize = 1 << 20;
const BLOCK: u64 = 512;

/// What the extraction thread is told.
#[derive(Debug)]
pub(crate) enum Op {
    /// A new entry; for a regular file, its contents follow as `Data`.
    Entry(Box<Entry>),
    /// The next piece of the current file's contents (for a sparse file,
    /// the data of its regions, one after the other).
    Data(Chunk),
    /// The next piece of the current (not sparse) file's contents, to be
    /// copied from the archive file at `offset` (see [`Source::File`]).
    Copy { offset: u64, len: u64 },
    /// The archive ended well: apply the deferred directory metadata.
    End,
}

/// A piece of a read buffer (shared with the reader, never copied).
#[derive(Debug)]
pub(crate) struct Chunk {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl Chunk {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

/// Where the archive comes from.
pub(crate) enum Source<'a> {
    /// A stream (decompressed already), read in order.
    Stream(Box<dyn Read + 'a>),
    /// An uncompressed archive in a regular file, read with `pread` from
    /// `offset` on (the fd's offset is not moved); large file contents are
    /// left to the extraction thread to copy (`Op::Copy`). `size` is the
    /// file's size when the unpack started; `progress` gets the bytes
    /// consumed.
    File {
        fd: BorrowedFd<'a>,
        offset: u64,
        size: u64,
        progress: &'a AtomicU64,
    },
}

/// An entry's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
    /// Not extracted (global PAX header, socket, volume label, ...): the
    /// type flag.
    Other(u8),
}

/// Where the data of a sparse file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sparse {
    /// The file's size (holes included).
    pub real_size: u64,
    /// (offset, length) of each region holding data, ascending and not
    /// overlapping; the holes between them are not written.
    pub regions: Vec<(u64, u64)>,
}

/// One entry's header, with its extensions applied.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The name as stored (PAX `path`, GNU long name or header name).
    pub name: Vec<u8>,
    /// The link target as stored, for links.
    pub link: Option<Vec<u8>>,
    pub kind: Kind,
    /// Permission bits (0o7777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Timespec,
    /// Device major and minor, for device nodes.
    pub dev: (u32, u32),
    /// PAX `SCHILY.xattr.NAME` records: (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes of file contents that follow as `Op::Data` (for a sparse
    /// file, the sum of its region lengths).
    pub data_len: u64,
    /// The sparse map, for a sparse file.
    pub sparse: Option<Sparse>,
}

/// Reads the archive from `r` and sends its entries to the extraction
/// thread through `tx`, then [`Op::End`]. Returns early, without error,
/// when the extraction thread has stopped (it has the error).
pub(crate) fn feed(src: Source<'_>, opts: &UnpackOptions, tx: SyncSender<Vec<Op>>) -> Result<()> {
    let out = Batch {
        ops: Vec::with_capacity(BATCH_OPS),
        bytes: 0,
        last_buf: None,
        tx,
    };
    let mut p = Parser::new(src, opts.limits.max_path_len, out);
    let lim = opts.limits;
    let mut entries = 0u64;
    let mut bytes = 0u64;
    while let Some(e) = p.next_entry()? {
        if p.stopped {
            return Ok(());
        }
        entries += 1;
        let shown = || PathBuf::from(OsStr::from_bytes(&e.name));
        let limit = |what: String| {
            let path = super::extract::in_root(&super::extract::normalise(&e.name));
            Error::invalid_at("unpack (limit exceeded)", path, what)
                .map_op(|op| format!("unpack {}: {op}", shown().display()).into())
        };
        if entries > lim.max_entries {
            return Err(limit(format!("more than {} entries", lim.max_entries)));
        }
        if e.name.len() > lim.max_path_len {
            return Err(limit(format!(
                "name longer than {} bytes",
                lim.max_path_len
            )));
        }
        if e.link.as_ref().is_some_and(|l| l.len() > lim.max_path_len) {
            return Err(limit(format!(
                "link target longer than {} bytes",
                lim.max_path_len
            )));
        }
        let data_len = if e.kind == Kind::File { e.data_len } else { 0 };
        if bytes.saturating_add(data_len) > lim.max_bytes {
            return Err(limit(format!(
                "more than {} bytes of file contents",
                lim.max_bytes
            )));
        }
        bytes = bytes.saturating_add(data_len);
        let regions = match (&e.sparse, e.kind) {
            (Some(s), Kind::File) => Some(s.regions.clone()),
            _ => None,
        };
        if p.out.push(Op::Entry(Box::new(e)), 0).is_err() {
            return Ok(());
        }
        let copied = match regions {
            Some(regions) => {
                let mut r = Ok(true);
                for (_, len) in regions {
                    r = p.copy_data(len, false);
                    if !matches!(r, Ok(true)) {
                        break;
                    }
                    // Each region's data is padded to a block (as GNU tar
                    // writes and reads it).
                    let padding = pad(len).min(p.remaining);
                    if let Err(err) = p.skip_data(padding) {
                        return Err(p.data_error(err));
                    }
                }
                r
            }
            None => p.copy_data(data_len, true),
        };
        match copied {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(err) => return Err(p.data_error(err)),
        }
    }
    if p.out.push(Op::End, 0).is_ok() {
        let _ = p.out.flush();
    }
    Ok(())
}

/// Ops waiting to be sent.
struct Batch {
    ops: Vec<Op>,
    /// Memory the batch holds on to: each read buffer its chunks refer
    /// to counts whole (a chunk of one byte keeps its buffer alive), so
    /// what is in flight stays bounded whatever the entry sizes.
    bytes: usize,
    /// The buffer of the last chunk counted (chunks come in order, so a
    /// buffer's chunks are consecutive).
    last_buf: Option<*const Vec<u8>>,
    tx: SyncSender<Vec<Op>>,
}

/// The extraction thread is gone.
struct Stopped;

impl Batch {
    /// Queues a chunk of file contents.
    fn push_chunk(&mut self, chunk: Chunk) -> std::result::Result<(), Stopped> {
        let buf = Arc::as_ptr(&chunk.buf);
        let weight = if self.last_buf == Some(buf) {
            0
        } else {
            self.last_buf = Some(buf);
            chunk.buf.len()
        };
        self.push(Op::Data(chunk), weight)
    }

    fn push(&mut self, op: Op, bytes: usize) -> std::result::Result<(), Stopped> {
        self.ops.push(op);
        self.bytes += bytes;
        if self.ops.len() >= BATCH_OPS || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::result::Result<(), Stopped> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::replace(&mut self.ops, Vec::with_capacity(BATCH_OPS));
        self.bytes = 0;
        self.last_buf = None;
        self.tx.send(ops).map_err(|_| Stopped)
    }
}

/// Padding after `n` bytes of data, up to the next block.
fn pad(n: u64) -> u64 {
    (BLOCK - n % BLOCK) % BLOCK
}

fn malformed(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// The tar stream: a buffer over the source and where the current entry's
/// data ends.
struct Parser<'a> {
    src: Source<'a>,
    /// The read buffer; chunks of it travel to the extraction thread.
    buf: Arc<Vec<u8>>,
    /// Earlier read buffers, reused once no chunk refers to them.
    spare: Vec<Arc<Vec<u8>>>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Data bytes of the current entry not read yet.
    remaining: u64,
    /// Padding after them.
    padding: u64,
    max_path_len: usize,
    /// The name of the last entry read, for errors between entries.
    last: Vec<u8>,
    /// Ops not sent yet.
    out: Batch,
    /// The extraction thread is gone: nothing more is read.
    stopped: bool,
}

/// PAX records that matter here, gathered before the entry they describe.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Timespec>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse_major: Option<u64>,
    sparse_minor: Option<u64>,
    sparse_name: Option<Vec<u8>>,
    /// `GNU.sparse.realsize` (1.0) or `GNU.sparse.size` (0.x).
    sparse_size: Option<u64>,
    /// 0.0 `offset`/`numbytes` pairs and the 0.1 `map`.
    sparse_map: Vec<(u64, u64)>,
    sparse_seen: bool,
    pending_offset: Option<u64>,
}

impl<'a> Parser<'a> {
    fn new(src: Source<'a>, max_path_len: usize, out: Batch) -> Self {
        Parser {
            src,
            buf: Arc::new(Vec::new()),
            spare: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            remaining: 0,
            padding: 0,
            max_path_len,
            last: Vec::new(),
            out,
            stopped: false,
        }
    }

    /// The buffered bytes, reading more when there are none; empty at the
    /// end of the input. From a stream, the ops gathered so far are sent
    /// before reading, so that the extraction thread is never idle while
    /// the reader waits for input (a file does not make it wait); if that
    /// thread is gone, this is the end of the input.
    fn fill(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.end && !self.eof {
            let may_block = matches!(self.src, Source::Stream(_));
            if may_block && self.out.flush().is_err() {
                self.stopped = true;
                self.eof = true;
            } else {
                self.refill()?;
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }

    /// How much is read at once.
    fn read_size(&self) -> usize {
        match self.src {
            Source::Stream(_) => READ_BUF,
            // Small reads: what follows may be large contents, which are
            // better copied than read.
            Source::File { .. } => FILE_READ,
        }
    }

    /// Reads into a buffer no chunk in flight refers to.
    fn refill(&mut self) -> std::io::Result<()> {
        let size = self.read_size();
        if Arc::get_mut(&mut self.buf).is_none_or(|b| b.len() != size) {
            let free = self.spare.iter().position(|b| Arc::strong_count(b) == 1);
            let next = match free {
                Some(i) => self.spare.swap_remove(i),
                None => Arc::new(vec![0; size]),
            };
            let busy = std::mem::replace(&mut self.buf, next);
            if busy.len() == size && self.spare.len() < SPARE_BUFS {
                self.spare.push(busy);
            }
        }
        let Some(buf) = Arc::get_mut(&mut self.buf) else {
            // Cannot happen (the buffer was just made or found unshared);
            // a fresh one is always unshared.
            self.buf = Arc::new(vec![0; size]);
            return self.refill();
        };
        loop {
            let r = match &mut self.src {
                Source::Stream(r) => r.read(buf),
                Source::File {
                    fd,
                    offset,
                    progress,
                    ..
                } => {
                    let r = rustix::io::pread(*fd, &mut buf[..], *offset).map_err(Into::into);
                    if let Ok(n) = r {
                        *offset += n as u64;
                        progress.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    r
                }
            };
            match r {
                Ok(0) => {
                    self.eof = true;
                    self.pos = 0;
                    self.end = 0;
                    return Ok(());
                }
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads exactly `out.len()` bytes; `Ok(false)` if the input ended
    /// before the first byte.
    fn read_exact(&mut self, out: &mut [u8]) -> std::io::Result<bool> {
        let mut n = 0;
        while n < out.len() {
            let have = self.fill()?;
            if have.is_empty() {
                if n == 0 {
                    return Ok(false);
                }
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let k = have.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&have[..k]);
            self.pos += k;
            n += k;
        }
        Ok(true)
    }

    fn skip(&mut self, mut n: u64) -> std::io::Result<()> {
        let buffered = ((self.end - self.pos) as u64).min(n);
        self.pos += buffered as usize;
        n -= buffered;
        if n > 0 && self.skip_in_file(n)? {
            return Ok(());
        }
        while n > 0 {
            let have = self.fill()?.len();
            if have == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let k = have.min(usize::try_from(n).unwrap_or(usize::MAX));
            self.pos += k;
            n -= k as u64;
        }
        Ok(())
    }

    /// From a file, moves past `n` bytes without reading them (the buffer
    /// being empty); `false` for a stream. Past the file's end is an
    /// unexpected end of the archive.
    fn skip_in_file(&mut self, n: u64) -> std::io::Result<bool> {
        let Source::File {
            offset,
            size,
            progress,
            ..
        } = &mut self.src
        else {
            return Ok(false);
        };
        let to = offset
            .checked_add(n)
            .filter(|to| to <= size)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        progress.fetch_add(n, Ordering::Relaxed);
        *offset = to;
        Ok(true)
    }

    /// Reads a whole extension block's data (`size` bytes and padding).
    fn read_extension(&mut self, size: u64) -> std::io::Result<Vec<u8>> {
        let mut v = vec![0; usize::try_from(size).map_err(|_| malformed("huge extension"))?];
        if !self.read_exact(&mut v)? && size > 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.skip(pad(size))?;
        Ok(v)
    }

    /// Skips `n` bytes of the current entry's data.
    fn skip_data(&mut self, n: u64) -> std::io::Result<()> {
        debug_assert!(n <= self.remaining);
        self.skip(n)?;
        self.remaining -= n;
        Ok(())
    }

    /// Sends `n` bytes of the current entry's data as `Op::Data` chunks,
    /// or, from a file and when `may_copy`, what is not buffered yet (if
    /// large) as `Op::Copy`; `Ok(false)` if the extraction thread is gone.
    fn copy_data(&mut self, mut n: u64, may_copy: bool) -> std::io::Result<bool> {
        if n > self.remaining {
            return Err(malformed(
                "the sparse map describes more data than the entry holds",
            ));
        }
        while n > 0 {
            if may_copy && n >= COPY_MIN && self.pos == self.end {
                if let Source::File { offset, .. } = self.src {
                    // Nothing buffered: the rest is copied in the kernel.
                    self.skip_in_file(n)?;
                    self.remaining -= n;
                    if self.out.push(Op::Copy { offset, len: n }, 0).is_err() {
                        self.stopped = true;
                        return Ok(false);
                    }
                    return Ok(true);
                }
            }
            let have = self.fill()?.len() as u64;
            if have == 0 {
                if self.stopped {
                    return Ok(false);
                }
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let k = have.min(n);
            let range = self.pos..self.pos + k as usize;
            let chunk = Chunk {
                buf: self.buf.clone(),
                range,
            };
            self.pos += k as usize;
            n -= k;
            self.remaining -= k;
            if self.out.push_chunk(chunk).is_err() {
                self.stopped = true;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An error reading the current entry's data.
    fn data_error(&self, e: std::io::Error) -> Error {
        let shown = PathBuf::from(OsStr::from_bytes(&self.last));
        let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed("the archive ends in the middle of this entry's data")
        } else {
            e
        };
        io_error("read archive", Path::new("/"), e)
            .map_op(|op| format!("unpack {}: {op}", shown.display()).into())
    }

    /// An error reading headers after the entry `self.last`.
    fn header_error(&self, e: std::io::Error) -> Error {
        let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed("the archive ends in the middle of a header")
        } else {
            e
        };
        let err = io_error("read archive header", Path::new("/"), e);
        if self.last.is_empty() {
            err
        } else {
            let shown = PathBuf::from(OsStr::from_bytes(&self.last));
            err.map_op(|op| format!("{op} (after {})", shown.display()).into())
        }
    }

    /// The next entry, with its extension headers applied; `None` at the
    /// end of the archive (a zero block, or the end of the input at a
    /// header boundary).
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        match self.next_entry_io() {
            Ok(e) => Ok(e),
            Err(e) => Err(self.header_error(e)),
        }
    }

    fn next_entry_io(&mut self) -> std::io::Result<Option<Entry>> {
        // Whatever the previous entry's reader left. A size field near
        // 2^64 (base-256) on an entry whose data is never read, such as a
        // directory's, must run into the end of the archive, not wrap
        // around to a few bytes and read its data as the next header.
        self.skip(self.remaining.saturating_add(self.padding))?;
        self.remaining = 0;
        self.padding = 0;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Pax> = None;
        loop {
            let mut block = [0u8; 512];
            if !self.read_exact(&mut block)? {
                if long_name.is_some() || long_link.is_some() || pax.is_some() {
                    return Err(malformed("extension headers without an entry"));
                }
                return Ok(None);
            }
            if block.iter().all(|b| *b == 0) {
                return Ok(None);
            }
            let h = tar::Header::from_byte_slice(&block);
            check_sum(&block, h)?;
            let size = h.entry_size()?;
            let flag = block[156];
            match flag {
                b'L' | b'K' => {
                    // A name plus its NUL; anything longer is over the limit.
                    if size > self.max_path_len as u64 + 1 {
                        return Err(malformed(format!(
                            "GNU long {} longer than {} bytes",
                            if flag == b'L' { "name" } else { "link target" },
                            self.max_path_len
                        )));
                    }
                    let slot = if flag == b'L' {
                        &mut long_name
                    } else {
                        &mut long_link
                    };
                    if slot.is_some() {
                        return Err(malformed("two GNU long names for one entry"));
                    }
                    let mut v = self.read_extension(size)?;
                    while v.last() == Some(&0) {
                        v.pop();
                    }
                    if flag == b'L' {
                        long_name = Some(v);
                    } else {
                        long_link = Some(v);
                    }
                }
                b'x' => {
                    if pax.is_some() {
                        return Err(malformed("two PAX headers for one entry"));
                    }
                    if size > MAX_PAX_HEADER {
                        return Err(malformed(format!(
                            "PAX header larger than {MAX_PAX_HEADER} bytes"
                        )));
                    }
                    let data = self.read_extension(size)?;
                    pax = Some(parse_pax(&data)?);
                }
                _ => {
                    let e = self.entry(h, &block, size, long_name, long_link, pax)?;
                    self.last.clone_from(&e.name);
                    return Ok(Some(e));
                }
            }
        }
    }

    /// The entry of header `h` (whose stored data is `size` bytes), with
    /// the extensions read before it.
    fn entry(
        &mut self,
        h: &tar::Header,
        block: &[u8; 512],
        size: u64,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        pax: Option<Pax>,
    ) -> std::io::Result<Entry> {
        let mut pax = pax.unwrap_or_default();
        let flag = block[156];
        let size = pax.size.unwrap_or(size);
        let name = pax
            .sparse_name
            .take()
            .or(pax.path.take())
            .or(long_name)
            .unwrap_or_else(|| h.path_bytes().into_owned());
        let link = pax
            .linkpath
            .take()
            .or(long_link)
            .or_else(|| h.link_name_bytes().map(|l| l.into_owned()));
        let kind = match flag {
            // Old archives mark directories with a trailing slash only.
            b'0' | 0 if name.ends_with(b"/") => Kind::Dir,
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        };
        let mtime = match pax.mtime {
            Some(t) => t,
            None => Timespec {
                tv_sec: i64::try_from(h.mtime()?).unwrap_or(i64::MAX),
                tv_nsec: 0,
            },
        };
        let dev = if matches!(kind, Kind::Char | Kind::Block) {
            (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        let mut e = Entry {
            name,
            link,
            kind,
            mode: h.mode()? & 0o7777,
            uid: match pax.uid {
                Some(u) => u,
                None => h.uid()?,
            },
            gid: match pax.gid {
                Some(g) => g,
                None => h.gid()?,
            },
            mtime,
            dev,
            xattrs: std::mem::take(&mut pax.xattrs),
            data_len: size,
            sparse: None,
        };
        self.remaining = size;
        self.padding = pad(size);
        if flag == b'S' {
            let s = self.gnu_sparse(h)?;
            e.data_len = s.regions.iter().map(|r| r.1).sum();
            e.sparse = Some(s);
        } else if pax.sparse_seen && kind == Kind::File {
            let s = self.pax_sparse(&mut pax)?;
            e.data_len = s.regions.iter().map(|r| r.1).sum();
            e.sparse = Some(s);
        }
        if e.kind != Kind::File {
            e.data_len = 0;
        }
        Ok(e)
    }

    /// The map of an old GNU sparse entry ('S'): four regions in the
    /// header, more in extension blocks that follow it.
    fn gnu_sparse(&mut self, h: &tar::Header) -> std::io::Result<Sparse> {
        let gnu = h
            .as_gnu()
            .ok_or_else(|| malformed("a GNU sparse entry without a GNU header"))?;
        let mut regions = Vec::new();
        let mut add = |s: &tar::GnuSparseHeader| -> std::io::Result<()> {
            if !s.is_empty() {
                if regions.len() >= MAX_SPARSE_REGIONS {
                    return Err(malformed("too many sparse regions"));
                }
                regions.push((s.offset()?, s.length()?));
            }
            Ok(())
        };
        for s in &gnu.sparse {
            add(s)?;
        }
        let mut more = gnu.is_extended();
        while more {
            let mut ext = tar::GnuExtSparseHeader::new();
            if !self.read_exact(ext.as_mut_bytes())? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            for s in ext.sparse() {
                add(s)?;
            }
            more = ext.is_extended();
        }
        let real_size = gnu.real_size()?;
        check_regions(&regions, real_size)?;
        Ok(Sparse { real_size, regions })
    }

    /// The map of a PAX sparse entry: in the records (0.0, 0.1) or at the
    /// start of the data (1.0).
    fn pax_sparse(&mut self, pax: &mut Pax) -> std::io::Result<Sparse> {
        let real_size = pax
            .sparse_size
            .ok_or_else(|| malformed("a PAX sparse entry without its real size"))?;
        let regions = match (pax.sparse_major, pax.sparse_minor) {
            (Some(1), Some(0)) => self.map_from_data()?,
            (None | Some(0), _) => {
                if pax.pending_offset.is_some() {
                    return Err(malformed("GNU.sparse.offset without GNU.sparse.numbytes"));
                }
                std::mem::take(&mut pax.sparse_map)
            }
            (major, minor) => {
                return Err(malformed(format!(
                    "unknown PAX sparse format {}.{}",
                    major.unwrap_or(0),
                    minor.unwrap_or(0)
                )))
            }
        };
        check_regions(&regions, real_size)?;
        Ok(Sparse { real_size, regions })
    }

    /// The 1.0 map: decimal numbers, one a line (the count, then offset
    /// and length pairs), padded to a block, before the data.
    fn map_from_data(&mut self) -> std::io::Result<Vec<(u64, u64)>> {
        let mut used = 0u64;
        let count = self.map_number(&mut used)?;
        if count > MAX_SPARSE_REGIONS as u64 {
            return Err(malformed("too many sparse regions"));
        }
        let mut regions = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let off = self.map_number(&mut used)?;
            let len = self.map_number(&mut used)?;
            regions.push((off, len));
        }
        self.skip_data(pad(used).min(self.remaining))?;
        Ok(regions)
    }

    fn map_number(&mut self, used: &mut u64) -> std::io::Result<u64> {
        let mut v: u64 = 0;
        let mut digits = 0;
        loop {
            if self.remaining == 0 {
                return Err(malformed("the sparse map runs past the entry's data"));
            }
            let b = match self.fill()?.first() {
                Some(b) => *b,
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            };
            self.pos += 1;
            self.remaining -= 1;
            *used += 1;
            match b {
                b'\n' if digits > 0 => return Ok(v),
                b'0'..=b'9' if digits < 20 => {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .ok_or_else(|| malformed("a sparse map number is too large"))?;
                    digits += 1;
                }
                _ => return Err(malformed("bad sparse map in the data")),
            }
        }
    }
}

/// Regions must be ascending, not overlapping, and inside the file.
fn check_regions(regions: &[(u64, u64)], real_size: u64) -> std::io::Result<()> {
    let mut at = 0u64;
    for &(off, len) in regions {
        let end = off
            .checked_add(len)
            .ok_or_else(|| malformed("a sparse region runs past the largest offset"))?;
        if off < at || end > real_size {
            return Err(malformed(
                "sparse regions overlap, are out of order or run past the file's size",
            ));
        }
        at = end;
    }
    Ok(())
}

/// The header checksum: the sum of its bytes with the checksum field read
/// as spaces (unsigned, or signed as some old tars computed it).
fn check_sum(block: &[u8; 512], h: &tar::Header) -> std::io::Result<()> {
    let stored = h.cksum()?;
    let field = &block[148..156];
    // Whole-block sums (which vectorise), then the field taken out and
    // eight spaces put in.
    let unsigned = block.iter().map(|b| u32::from(*b)).sum::<u32>()
        - field.iter().map(|b| u32::from(*b)).sum::<u32>()
        + 8 * u32::from(b' ');
    let signed = block.iter().map(|b| i32::from(*b as i8)).sum::<i32>()
        - field.iter().map(|b| i32::from(*b as i8)).sum::<i32>()
        + 8 * i32::from(b' ');
    if stored == unsigned || i64::from(stored) == i64::from(signed) {
        Ok(())
    } else {
        Err(malformed("bad header checksum (not a tar archive?)"))
    }
}

/// The records of a PAX extended header.
fn parse_pax(data: &[u8]) -> std::io::Result<Pax> {
    let mut pax = Pax::default();
    let bad = |k: &str| malformed(format!("PAX header has a bad {k} value"));
    for rec in tar::PaxExtensions::new(data) {
        let rec = rec.map_err(|_| malformed("malformed PAX header"))?;
        let key = rec.key_bytes();
        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
            pax.xattrs.push((name.to_vec(), rec.value_bytes().to_vec()));
            continue;
        }
        let num = |k: &str| -> std::io::Result<u64> {
            rec.value()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(k))
        };
        match key {
            b"path" => pax.path = Some(rec.value_bytes().to_vec()),
            b"linkpath" => pax.linkpath = Some(rec.value_bytes().to_vec()),
            b"size" => pax.size = Some(num("size")?),
            b"uid" => pax.uid = Some(num("uid")?),
            b"gid" => pax.gid = Some(num("gid")?),
            b"mtime" => {
                pax.mtime = Some(
                    rec.value()
                        .ok()
                        .and_then(parse_pax_time)
                        .ok_or_else(|| bad("mtime"))?,
                )
            }
            b"GNU.sparse.major" => {
                pax.sparse_seen = true;
                pax.sparse_major = Some(num("GNU.sparse.major")?);
            }
            b"GNU.sparse.minor" => {
                pax.sparse_seen = true;
                pax.sparse_minor = Some(num("GNU.sparse.minor")?);
            }
            b"GNU.sparse.name" => {
                pax.sparse_seen = true;
                pax.sparse_name = Some(rec.value_bytes().to_vec());
            }
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                pax.sparse_seen = true;
                pax.sparse_size = Some(num("GNU.sparse.size")?);
            }
            b"GNU.sparse.offset" => {
                pax.sparse_seen = true;
                if pax.pending_offset.is_some() {
                    return Err(bad("GNU.sparse.offset"));
                }
                pax.pending_offset = Some(num("GNU.sparse.offset")?);
            }
            b"GNU.sparse.numbytes" => {
                let off = pax
                    .pending_offset
                    .take()
                    .ok_or_else(|| bad("GNU.sparse.numbytes"))?;
                if pax.sparse_map.len() >= MAX_SPARSE_REGIONS {
                    return Err(malformed("too many sparse regions"));
                }
                pax.sparse_map.push((off, num("GNU.sparse.numbytes")?));
            }
            b"GNU.sparse.map" => {
                pax.sparse_seen = true;
                let v = rec.value().map_err(|_| bad("GNU.sparse.map"))?;
                let nums: Vec<u64> = if v.is_empty() {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|n| n.parse().map_err(|_| bad("GNU.sparse.map")))
                        .collect::<std::io::Result<_>>()?
                };
                if nums.len() % 2 != 0 || nums.len() / 2 > MAX_SPARSE_REGIONS {
                    return Err(bad("GNU.sparse.map"));
                }
                pax.sparse_map = nums.chunks(2).map(|c| (c[0], c[1])).collect();
            }
            _ => {}
        }
    }
    Ok(pax)
}

/// A PAX time: seconds, optionally with a fraction (nanoseconds kept).
pub(crate) fn parse_pax_time(v: &str) -> Option<Timespec> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let tv_sec: i64 = s.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec = if tv_sec < 0 { 0 } else { digits.parse().ok()? };
    Some(Timespec { tv_sec, tv_nsec })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").expect("parses");
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        assert!(parse_pax_time("x").is_none());
        assert!(parse_pax_time("1.2x").is_none());
    }

    #[test]
    fn sparse_regions_are_checked() {
        assert!(check_regions(&[(0, 10), (4096, 10)], 5000).is_ok());
        assert!(check_regions(&[(4096, 10), (0, 10)], 5000).is_err());
        assert!(check_regions(&[(0, 10), (5, 10)], 5000).is_err());
        assert!(check_regions(&[(4996, 10)], 5000).is_err());
        assert!(check_regions(&[(u64::MAX, 2)], u64::MAX).is_err());
    }

    #[test]
    fn pax_sparse_records() {
        let rec = |k: &str, v: &str| {
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}{rest}").len() != len {
                len += 1;
            }
            format!("{len}{rest}")
        };
        let data = [
            rec("GNU.sparse.size", "100"),
            rec("GNU.sparse.offset", "0"),
            rec("GNU.sparse.numbytes", "5"),
            rec("GNU.sparse.offset", "50"),
            rec("GNU.sparse.numbytes", "7"),
        ]
        .concat();
        let p = parse_pax(data.as_bytes()).unwrap();
        assert_eq!(p.sparse_map, vec![(0, 5), (50, 7)]);
        assert_eq!(p.sparse_size, Some(100));
        let data = rec("GNU.sparse.map", "1,2,3");
        assert!(parse_pax(data.as_bytes()).is_err());
        let data = rec("GNU.sparse.numbytes", "3");
        assert!(parse_pax(data.as_bytes()).is_err());
    }
}
