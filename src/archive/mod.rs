//! Unpacking tar archives (plain, gzip or zstd) into a [`Root`].
//!
//! The `tar` crate only parses headers here (ustar, GNU long names and
//! links, PAX `path`/`linkpath`/`size`); every filesystem effect is made by
//! this module, relative to fds:
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
//!   `mknodat`, `symlinkat`, `linkat` from a handle resolved in the root);
//!   whatever is in its place is removed first with `unlinkat` on the
//!   parent's fd;
//! - owner, mode and times are set through the entry's own fd (`fchown`,
//!   `fchmod`, `futimens`), or, for symlinks and device nodes, with
//!   `AT_SYMLINK_NOFOLLOW` relative to the parent's fd.
//!
//! See `docs/archive.md` for the threat model and the options.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io::{Cursor, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::{Error, ErrorKind, Result, Root};

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
    /// Most bytes of file contents written, over the whole archive.
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

/// How [`Root::unpack`] extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Whiteout handling.
    pub whiteouts: Whiteouts,
    /// Give entries the owner recorded in the archive (`fchown`). When
    /// false, entries belong to the caller.
    pub same_owner: bool,
    /// Size limits.
    pub limits: Limits,
    /// Apply extended attributes recorded in PAX `SCHILY.xattr.NAME`
    /// records (as GNU tar `--xattrs` writes them) to files and
    /// directories, through their fds. `trusted.overlay.*` attributes are
    /// never applied (they steer overlayfs lookups). Symlinks and device
    /// nodes get none (there is no fd-based call for them).
    pub xattrs: bool,
}

impl Default for UnpackOptions {
    /// No whiteout handling, owners kept when running as root (as GNU tar
    /// does), no size limits, no extended attributes.
    fn default() -> Self {
        UnpackOptions {
            whiteouts: Whiteouts::None,
            same_owner: rustix::process::geteuid().is_root(),
            limits: Limits::default(),
            xattrs: false,
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
    /// Bytes of file contents written.
    pub bytes: u64,
}

impl Root {
    /// Unpacks the tar archive read from `reader` (plain, gzip or zstd,
    /// told apart by their magic numbers) into this root. See
    /// [`crate::archive`].
    pub fn unpack(&self, reader: impl Read, opts: &UnpackOptions) -> Result<UnpackSummary> {
        unpack(self, reader, opts)
    }
}

/// Unpacks the tar archive read from `reader` into `root`; the same as
/// [`Root::unpack`].
pub fn unpack(root: &Root, reader: impl Read, opts: &UnpackOptions) -> Result<UnpackSummary> {
    let reader = decompress(reader)?;
    let mut archive = tar::Archive::new(reader);
    let mut st = State {
        root,
        opts,
        summary: UnpackSummary::default(),
        made: HashSet::new(),
        parents: HashMap::new(),
        dir_times: Vec::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| io_error("read archive", Path::new("/"), e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| io_error("read archive header", Path::new("/"), e))?;
        st.entry(&mut entry)?;
    }
    st.finish()?;
    Ok(st.summary)
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
    if head.starts_with(GZIP_MAGIC) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(whole)))
    } else if head.starts_with(ZSTD_MAGIC) {
        let d = zstd::stream::read::Decoder::new(whole)
            .map_err(|e| io_error("start zstd decoder", Path::new("/"), e))?;
        Ok(Box::new(d))
    } else if head.starts_with(XZ_MAGIC) || head.starts_with(BZIP2_MAGIC) {
        Err(Error::invalid(
            "unpack",
            "xz and bzip2 archives are not supported (only plain tar, gzip and zstd)",
        ))
    } else {
        Ok(Box::new(whole))
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

fn limit(path: &Path, what: String) -> Error {
    Error::invalid_at("unpack (limit exceeded)", path, what)
}

/// The metadata applied to an entry.
#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    /// Extended attributes to set (name, value).
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

struct State<'a> {
    root: &'a Root,
    opts: &'a UnpackOptions,
    summary: UnpackSummary,
    /// Every in-root path this archive made, with all its prefixes: what an
    /// opaque whiteout keeps.
    made: HashSet<PathBuf>,
    /// Directory fds of recent parents and of directories this archive
    /// made, by in-root path: each was resolved in the root (or made
    /// relative to such an fd), so using it again is as safe as resolving
    /// again. An entry drops every one at or below its own path (it may
    /// replace a component with a symlink); a whiteout drops them all.
    parents: HashMap<PathBuf, Rc<OwnedFd>>,
    /// Directories whose mtime is set at the end (making their children
    /// changes it).
    dir_times: Vec<(PathBuf, Timestamps)>,
}

/// The components of an entry name, normalised (see the module doc).
fn normalise(raw: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn in_root(comps: &[&[u8]]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in comps {
        p.push(std::ffi::OsStr::from_bytes(c));
    }
    p
}

fn cname(path: &Path, name: &[u8]) -> Result<CString> {
    CString::new(name).map_err(|_| Error::invalid_at("unpack", path, "name contains a NUL byte"))
}

fn parse_pax_time(v: &str) -> Option<Timespec> {
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

/// How many directory fds [`State::parents`] keeps at most.
const MAX_CACHED_PARENTS: usize = 128;

impl State<'_> {
    /// The directory `path`, created (with missing parents) if needed, from
    /// the cache or through [`Root::mkdir_all`].
    fn parent(&mut self, path: &Path) -> Result<Rc<OwnedFd>> {
        if let Some(fd) = self.parents.get(path) {
            return Ok(fd.clone());
        }
        let fd = Rc::new(OwnedFd::from(self.root.mkdir_all(path, 0o755)?));
        self.remember(path, fd.clone());
        Ok(fd)
    }

    fn remember(&mut self, path: &Path, fd: Rc<OwnedFd>) {
        if self.parents.len() >= MAX_CACHED_PARENTS {
            self.parents.clear();
        }
        self.parents.insert(path.to_path_buf(), fd);
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let shown = PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
        self.summary.entries += 1;
        let lim = self.opts.limits;
        if self.summary.entries > lim.max_entries {
            return Err(limit(
                &shown,
                format!("more than {} entries", lim.max_entries),
            ));
        }
        if raw.len() > lim.max_path_len {
            return Err(limit(
                &shown,
                format!("name longer than {} bytes", lim.max_path_len),
            ));
        }
        let comps = normalise(&raw);
        let path = in_root(&comps);
        self.entry_at(e, &comps, &path)
            .map_err(|err| err.map_op(|op| format!("unpack {}: {op}", shown.display()).into()))
    }

    fn entry_at<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        comps: &[&[u8]],
        path: &Path,
    ) -> Result<()> {
        let hdr = e.header();
        let kind = hdr.entry_type();
        let bad = |what: &'static str| {
            move |err: std::io::Error| Error::invalid_at(what, path, format!("bad header: {err}"))
        };
        let mode = hdr.mode().map_err(bad("read mode"))? & 0o7777;
        let mut uid = hdr.uid().map_err(bad("read uid"))?;
        let mut gid = hdr.gid().map_err(bad("read gid"))?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(hdr.mtime().map_err(bad("read mtime"))?).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let dev = (
            hdr.device_major().ok().flatten().unwrap_or(0),
            hdr.device_minor().ok().flatten().unwrap_or(0),
        );
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().map_err(bad("read PAX header"))? {
            for ext in pax.flatten() {
                if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    if self.opts.xattrs && !name.starts_with(b"trusted.overlay.") {
                        let name = CString::new(name).map_err(|_| bad_pax(path, "xattr"))?;
                        xattrs.push((name, ext.value_bytes().to_vec()));
                    }
                    continue;
                }
                let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                    continue;
                };
                match k {
                    "uid" => uid = v.parse().map_err(|_| bad_pax(path, k))?,
                    "gid" => gid = v.parse().map_err(|_| bad_pax(path, k))?,
                    "mtime" => mtime = parse_pax_time(v).ok_or_else(|| bad_pax(path, k))?,
                    _ => {}
                }
            }
        }
        let meta = Meta {
            mode,
            uid: u32::try_from(uid).map_err(|_| bad_pax(path, "uid"))?,
            gid: u32::try_from(gid).map_err(|_| bad_pax(path, "gid"))?,
            mtime,
            xattrs,
        };
        if let Some(l) = &link {
            if l.len() > self.opts.limits.max_path_len {
                return Err(limit(
                    path,
                    format!(
                        "link target longer than {} bytes",
                        self.opts.limits.max_path_len
                    ),
                ));
            }
        }

        let Some((name, parent_comps)) = comps.split_last() else {
            // The root itself ("./"): only a directory's metadata applies.
            if kind.is_dir() {
                let h = self.root.handle()?;
                let dir = reopen_dir(h.as_fd(), path)?;
                self.set_fd_meta(&dir, path, &meta)?;
                self.dir_times.push((path.to_path_buf(), meta.times()));
                self.summary.dirs += 1;
            } else if !matches!(kind, tar::EntryType::XGlobalHeader) {
                return Err(Error::invalid_at(
                    "unpack",
                    path,
                    "only a directory may name the root itself",
                ));
            }
            return Ok(());
        };
        let parent_path = in_root(parent_comps);

        if self.opts.whiteouts != Whiteouts::None {
            if let Some(target) = name.strip_prefix(b".wh.") {
                self.parents.clear();
                return self.whiteout(&parent_path, target, path);
            }
        }
        self.parents.retain(|p, _| !p.starts_with(path));

        let cname = cname(path, name)?;
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                let parent = self.parent(&parent_path)?;
                let existing = clear(parent.as_fd(), &cname, path, true)?;
                if existing != Some(FileType::Directory) {
                    rustix::fs::mkdirat(&parent, &*cname, Mode::from_raw_mode(0o700))
                        .map_err(|e| Error::os_at("mkdirat", path, e))?;
                }
                let dir = rustix::fs::openat(
                    &parent,
                    &*cname,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::os_at("open directory", path, e))?;
                self.set_fd_meta(&dir, path, &meta)?;
                self.dir_times.push((path.to_path_buf(), meta.times()));
                self.remember(path, Rc::new(dir));
                self.summary.dirs += 1;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let parent = self.parent(&parent_path)?;
                clear(parent.as_fd(), &cname, path, false)?;
                let fd = rustix::fs::openat(
                    &parent,
                    &*cname,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| Error::os_at("create file", path, e))?;
                let mut file = std::fs::File::from(fd);
                let budget = self.opts.limits.max_bytes - self.summary.bytes;
                let n = std::io::copy(&mut e.take(budget.saturating_add(1)), &mut file)
                    .map_err(|err| io_error("write file", path, err))?;
                if n > budget {
                    return Err(limit(
                        path,
                        format!(
                            "more than {} bytes of file contents",
                            self.opts.limits.max_bytes
                        ),
                    ));
                }
                self.summary.bytes += n;
                self.set_fd_meta(file.as_fd(), path, &meta)?;
                rustix::fs::futimens(&file, &meta.times())
                    .map_err(|e| Error::os_at("futimens", path, e))?;
                self.summary.files += 1;
            }
            T::Symlink => {
                let target = link.unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(Error::invalid_at(
                        "unpack",
                        path,
                        "symlink target is empty or has a NUL byte",
                    ));
                }
                let parent = self.parent(&parent_path)?;
                clear(parent.as_fd(), &cname, path, false)?;
                rustix::fs::symlinkat(target.as_slice(), &parent, &*cname)
                    .map_err(|e| Error::os_at("symlinkat", path, e))?;
                self.set_at_meta(parent.as_fd(), &cname, path, &meta)?;
                self.summary.symlinks += 1;
            }
            T::Link => {
                let raw = link.unwrap_or_default();
                let tcomps = normalise(&raw);
                if tcomps.is_empty() {
                    return Err(Error::invalid_at(
                        "unpack",
                        path,
                        "hard link to the root directory",
                    ));
                }
                let tpath = in_root(&tcomps);
                if tpath == path {
                    return Ok(());
                }
                let target = self.root.resolve_nofollow(&tpath)?;
                let tst = target.stat()?;
                if tst.file_type == FileType::Directory {
                    return Err(Error::invalid_at(
                        "unpack",
                        path,
                        format!("hard link to the directory {}", tpath.display()),
                    ));
                }
                let parent = self.parent(&parent_path)?;
                if let Ok(st) = rustix::fs::statat(&parent, &*cname, AtFlags::SYMLINK_NOFOLLOW) {
                    if st.st_ino == tst.ino && st.st_dev == tst.dev {
                        self.summary.hardlinks += 1;
                        return Ok(());
                    }
                }
                clear(parent.as_fd(), &cname, path, false)?;
                rustix::fs::linkat(&target, c"", &parent, &*cname, AtFlags::EMPTY_PATH)
                    .map_err(|e| Error::os_at("linkat", path, e))?;
                self.summary.hardlinks += 1;
            }
            T::Char | T::Block | T::Fifo => {
                let ft = match kind {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let rdev = rustix::fs::makedev(dev.0, dev.1);
                let parent = self.parent(&parent_path)?;
                clear(parent.as_fd(), &cname, path, false)?;
                self.mknod(parent.as_fd(), &cname, path, ft, meta.mode, rdev)?;
                self.set_at_meta(parent.as_fd(), &cname, path, &meta)?;
                self.summary.nodes += 1;
            }
            _ => {
                log::debug!("unpack: skipping {} of type {kind:?}", path.display());
                self.summary.skipped += 1;
                return Ok(());
            }
        }
        let mut p = path.to_path_buf();
        while p.as_os_str().len() > 1 && self.made.insert(p.clone()) {
            p.pop();
        }
        Ok(())
    }

    /// Makes a device node or fifo with exactly `mode` (umask 0).
    fn mknod(
        &self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        ft: FileType,
        mode: u32,
        rdev: u64,
    ) -> Result<()> {
        crate::fsthread::with_umask_zero(|| {
            rustix::fs::mknodat(parent, name, ft, Mode::from_raw_mode(mode), rdev)
        })
        .map_err(|e| Error::os_at("mknodat (umask-0 helper thread)", path, e))?
        .map_err(|e| Error::os_at("mknodat", path, e))
    }

    /// Owner (when asked) then mode (chown clears set-id bits) through the
    /// entry's fd.
    fn set_fd_meta(&self, fd: impl AsFd, path: &Path, meta: &Meta) -> Result<()> {
        if self.opts.same_owner {
            rustix::fs::fchown(
                &fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| Error::os_at("fchown", path, e))?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
            .map_err(|e| Error::os_at("fchmod", path, e))?;
        // After fchown, which clears security.capability.
        for (name, value) in &meta.xattrs {
            rustix::fs::fsetxattr(&fd, name.as_c_str(), value, rustix::fs::XattrFlags::empty())
                .map_err(|e| {
                    Error::os_at(format!("fsetxattr {}", name.to_string_lossy()), path, e)
                })?;
        }
        Ok(())
    }

    /// Owner and times of a symlink or node, by name in its parent, never
    /// following a symlink. (A node's mode was given to `mknodat`.)
    fn set_at_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        meta: &Meta,
    ) -> Result<()> {
        if self.opts.same_owner {
            rustix::fs::chownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::os_at("fchownat", path, e))?;
        }
        rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::os_at("utimensat", path, e))
    }

    fn whiteout(&mut self, parent_path: &Path, target: &[u8], path: &Path) -> Result<()> {
        self.summary.whiteouts += 1;
        if target == b".wh..opq" {
            let parent = match self.root.resolve(parent_path) {
                Ok(h) => h,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let dir = reopen_dir(parent.as_fd(), parent_path)?;
            if self.opts.whiteouts == Whiteouts::Overlay {
                return rustix::fs::fsetxattr(
                    &dir,
                    "trusted.overlay.opaque",
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| Error::os_at("set trusted.overlay.opaque", parent_path, e));
            }
            for (name, _) in list_dir(&dir, parent_path)? {
                let child = parent_path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
                if !self.made.contains(&child) {
                    clear(dir.as_fd(), &name, &child, false)?;
                }
            }
            return Ok(());
        }
        if target.starts_with(b".wh.") {
            // Other `.wh..wh.*` names are reserved (such as aufs' `.wh..wh.plnk`).
            self.summary.whiteouts -= 1;
            self.summary.skipped += 1;
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Error::invalid_at("unpack", path, "whiteout names no entry"));
        }
        let name = cname(path, target)?;
        let victim = parent_path.join(std::ffi::OsStr::from_bytes(target));
        match self.opts.whiteouts {
            Whiteouts::Oci => {
                let parent = match self.root.resolve(parent_path) {
                    Ok(h) => h,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(e),
                };
                clear(parent.as_fd(), &name, &victim, false)?;
            }
            _ => {
                let parent = self.root.mkdir_all(parent_path, 0o755)?;
                clear(parent.as_fd(), &name, &victim, false)?;
                self.mknod(
                    parent.as_fd(),
                    &name,
                    &victim,
                    FileType::CharacterDevice,
                    0,
                    0,
                )?;
                self.made.insert(victim);
            }
        }
        Ok(())
    }

    /// Sets the deferred directory mtimes, each directory found again in
    /// the root without following its last component.
    fn finish(&mut self) -> Result<()> {
        for (path, times) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let h = match self.root.resolve_nofollow(&path) {
                Ok(h) => h,
                // Removed by a later whiteout.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // Replaced by a later entry of another type.
            if h.file_type()? != FileType::Directory {
                continue;
            }
            let dir = reopen_dir(h.as_fd(), &path)?;
            rustix::fs::futimens(&dir, &times).map_err(|e| Error::os_at("futimens", &path, e))?;
        }
        Ok(())
    }
}

fn bad_pax(path: &Path, key: &str) -> Error {
    Error::invalid_at("unpack", path, format!("PAX header has a bad {key} value"))
}

/// Opens the directory `fd` (an `O_PATH` handle is fine) for reading,
/// without any path walk: `.` in it. A handle to anything but a directory
/// fails (`ENOTDIR`).
fn reopen_dir(fd: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(
        fd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os_at("open directory", path, e))
}

/// The names in the directory `dir` (without `.` and `..`).
fn list_dir(dir: &OwnedFd, path: &Path) -> Result<Vec<(CString, FileType)>> {
    let mut d =
        rustix::fs::Dir::read_from(dir).map_err(|e| Error::os_at("read directory", path, e))?;
    let mut names = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent.map_err(|e| Error::os_at("read directory", path, e))?;
        let name = ent.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push((name.to_owned(), ent.file_type()));
    }
    Ok(names)
}

/// Removes whatever is at `name` in `parent` (recursively for a
/// directory, all by fd), unless it is a directory and `keep_dir`. Returns
/// the type that was there (`None` if nothing was).
fn clear(
    parent: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    keep_dir: bool,
) -> Result<Option<FileType>> {
    let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::os_at("fstatat", path, e)),
    };
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft == FileType::Directory {
        if keep_dir {
            return Ok(Some(ft));
        }
        remove_tree(parent, name, path, 0)?;
    } else {
        rustix::fs::unlinkat(parent, name, AtFlags::empty())
            .map_err(|e| Error::os_at("unlinkat", path, e))?;
    }
    Ok(Some(ft))
}

/// Deepest directory nesting [`remove_tree`] goes into.
const MAX_DEPTH: usize = 2048;

/// Removes the directory `name` in `parent` and everything below it,
/// opening each directory with `O_NOFOLLOW` relative to its parent's fd.
fn remove_tree(parent: BorrowedFd<'_>, name: &CStr, path: &Path, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid_at(
            "remove directory",
            path,
            "nested too deep",
        ));
    }
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os_at("open directory to remove", path, e))?;
    for (child, ft) in list_dir(&dir, path)? {
        let cpath = path.join(std::ffi::OsStr::from_bytes(child.to_bytes()));
        let ft = if ft == FileType::Unknown {
            match rustix::fs::statat(&dir, &*child, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(Error::os_at("fstatat", &cpath, e)),
            }
        } else {
            ft
        };
        if ft == FileType::Directory {
            remove_tree(dir.as_fd(), &child, &cpath, depth + 1)?;
        } else {
            match rustix::fs::unlinkat(&dir, &*child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::os_at("unlinkat", &cpath, e)),
            }
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
        .map_err(|e| Error::os_at("rmdir", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_confined_lexically() {
        let p = |s: &str| in_root(&normalise(s.as_bytes()));
        assert_eq!(p("../../etc/passwd"), Path::new("/etc/passwd"));
        assert_eq!(p("/abs/x"), Path::new("/abs/x"));
        assert_eq!(p("a/../../b/./c//d/"), Path::new("/b/c/d"));
        assert_eq!(p("./"), Path::new("/"));
        assert_eq!(p(".."), Path::new("/"));
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").expect("parses");
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        assert!(parse_pax_time("x").is_none());
        assert!(parse_pax_time("1.2x").is_none());
    }
}
