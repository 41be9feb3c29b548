//! Copying into and out of a [`Root`], with `docker cp`'s rules.
//!
//! [`Root::copy_in`] copies a host file or tree to a path inside the root;
//! [`Root::copy_out`] copies a file or tree inside the root to a host path.
//! Both work the same way:
//!
//! 1. The source is opened as an `O_PATH` fd without following its last
//!    component (unless asked to, or unless it ends in `/` or `/.`). On
//!    the root's side its parent is resolved in the root
//!    (`RESOLVE_IN_ROOT`).
//! 2. The destination is resolved the same way: its parent in the root
//!    (for `copy_out`, in a root made of the host destination's parent
//!    directory), its last component looked at with `fstatat(..,
//!    AT_SYMLINK_NOFOLLOW)` and never followed. That gives the directory
//!    the copy lands in and the name it gets there.
//! 3. The source is walked by fds (see `walk`) into a tar stream, which is
//!    unpacked by [`unpack`](super::unpack) into a [`Root`] made of that
//!    destination directory's fd: the names in the stream cannot leave it,
//!    whatever a process in the container does meanwhile.
//!
//! See `docs/archive.md` for the rules and the threat model.

mod walk;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{Limits, UnpackOptions, UnpackSummary, Whiteouts};
use crate::{Error, ErrorKind, Result, Root};

/// How [`Root::copy_in`] and [`Root::copy_out`] copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyOptions {
    /// When the source's last component is a symlink, copy what it points
    /// at (under the link's name) instead of the link (`docker cp -L`). For
    /// [`Root::copy_in`] the host source is followed as the host resolves
    /// it; for [`Root::copy_out`] the link is resolved inside the root.
    /// Links below the source are always copied as links.
    pub follow_link: bool,
    /// Give the copies the owners of the source (`docker cp -a`). When
    /// false (the default, as `docker cp`'s), the copies belong to the
    /// caller, and set-user-id and set-group-id bits of files are dropped.
    pub same_owner: bool,
    /// Size limits, as for [`unpack`](super::unpack): bytes of file
    /// contents, entries, name length.
    pub limits: Limits,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopySummary {
    /// Where the source's copy is: an in-root path for
    /// [`Root::copy_in`], a host path for [`Root::copy_out`]. For a
    /// directory's contents (`SRC/.`) copied into an existing directory,
    /// that directory.
    pub destination: PathBuf,
    /// Entries copied (of every type).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories made or updated.
    pub dirs: u64,
    /// Symlinks made.
    pub symlinks: u64,
    /// Hard links made (files linked more than once inside the source).
    pub hardlinks: u64,
    /// Device nodes and fifos made.
    pub nodes: u64,
    /// Source entries not copied (sockets).
    pub skipped: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

impl Root {
    /// Copies the host file or tree `host_src` to `dest` inside this root,
    /// with `docker cp`'s rules (`docs/archive.md` has them all, and the
    /// threat model):
    ///
    /// - `dest` an existing directory: the copy goes into it under the
    ///   source's name;
    /// - `dest` missing: the copy is made at `dest` (its parent must
    ///   exist);
    /// - `dest` an existing non-directory: a file (or symlink, node)
    ///   replaces it, a directory is refused (`ENOTDIR`);
    /// - `host_src` ending in `/.`: the directory's contents, not the
    ///   directory (into `dest` if it is a directory, or into a new
    ///   directory `dest`);
    /// - `dest` ending in `/`: it must be an existing directory.
    ///
    /// Symlinks are copied as symlinks; only the top-level `host_src` is
    /// followed, with [`CopyOptions::follow_link`]. `dest`'s parent is
    /// resolved in the root and its last component is never followed.
    pub fn copy_in(
        &self,
        host_src: impl AsRef<Path>,
        dest: impl AsRef<Path>,
        opts: &CopyOptions,
    ) -> Result<CopySummary> {
        copy_in(self, host_src.as_ref(), dest.as_ref(), opts)
    }

    /// Copies the file or tree `src` inside this root to the host path
    /// `host_dest`, with the same rules as [`copy_in`](Self::copy_in)
    /// (roles swapped). `src`'s parent is resolved in the root, and its
    /// last component is not followed unless [`CopyOptions::follow_link`]
    /// is set (it is then resolved inside the root too). `host_dest`'s
    /// parent is the caller's and resolved normally; its last component is
    /// never followed, and nothing the copy writes can leave the directory
    /// the copy lands in.
    pub fn copy_out(
        &self,
        src: impl AsRef<Path>,
        host_dest: impl AsRef<Path>,
        opts: &CopyOptions,
    ) -> Result<CopySummary> {
        copy_out(self, src.as_ref(), host_dest.as_ref(), opts)
    }
}

/// A source or destination as given: the path without its trailing `/`
/// or `/.`, and what those asked for.
#[derive(Debug, PartialEq, Eq)]
struct Spec<'a> {
    path: &'a Path,
    /// Ended in `/.` (or is `.`): a directory's contents.
    contents: bool,
    /// Ended in `/` or `/.`, or its last component is `.` or `..`, or it is
    /// `/`: it must be a directory, and is resolved whole.
    dir_only: bool,
}

fn parse(path: &Path) -> Spec<'_> {
    let mut b = path.as_os_str().as_bytes();
    let mut contents = false;
    let mut dir_only = false;
    loop {
        if b.len() > 1 && b.ends_with(b"/") {
            b = &b[..b.len() - 1];
            dir_only = true;
        } else if b.ends_with(b"/.") {
            b = if b.len() == 2 {
                b"/"
            } else {
                &b[..b.len() - 2]
            };
            contents = true;
            dir_only = true;
        } else {
            break;
        }
    }
    if b == b"." {
        contents = true;
    }
    if b == b"/" || b == b"." || b == b".." || b.ends_with(b"/..") {
        dir_only = true;
    }
    Spec {
        path: Path::new(OsStr::from_bytes(b)),
        contents,
        dir_only,
    }
}

/// The source: an `O_PATH` fd, what it is, and the name its copy gets
/// (`None` for a directory's contents).
struct Source {
    fd: OwnedFd,
    ft: FileType,
    name: Option<Vec<u8>>,
    shown: PathBuf,
}

fn stat_type(fd: &OwnedFd, shown: &Path) -> Result<FileType> {
    let st = rustix::fs::statat(fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::os_at("copy: fstat the source", shown, e))?;
    Ok(FileType::from_raw_mode(st.st_mode))
}

impl Source {
    fn new(fd: OwnedFd, spec: &Spec<'_>, shown: &Path) -> Result<Source> {
        let ft = stat_type(&fd, shown)?;
        if spec.dir_only && ft != FileType::Directory {
            return Err(Error::os_at("copy: the source", shown, Errno::NOTDIR));
        }
        let name = if spec.contents || spec.path.as_os_str().as_bytes() == b"/" {
            None
        } else {
            match spec.path.file_name() {
                Some(n) if spec.path.as_os_str().as_bytes() != b".." => Some(n.as_bytes().to_vec()),
                _ => {
                    return Err(Error::invalid_at(
                        "copy",
                        shown,
                        "the source must end in a name, or in /. for a directory's contents",
                    ))
                }
            }
        };
        if name.is_none() && ft != FileType::Directory {
            return Err(Error::os_at("copy the contents of", shown, Errno::NOTDIR));
        }
        Ok(Source {
            fd,
            ft,
            name,
            shown: shown.to_path_buf(),
        })
    }
}

/// Where the copy lands: the directory it is unpacked into, and the name
/// of the top entry there (`None`: the source directory's contents go
/// straight into it).
struct Landing {
    dir: OwnedFd,
    name: Option<Vec<u8>>,
    /// The copy's path, for the summary.
    shown: PathBuf,
}

/// Decides where the copy of `src` goes, for the destination `dest` in
/// `root` (an absolute in-root path whose trailing `/` and `/.` were taken
/// off by [`parse`]). `shown` is how the destination is named to the
/// caller.
fn landing(
    root: &Root,
    dest: &Path,
    dir_only: bool,
    src: &Source,
    shown: &Path,
) -> Result<Landing> {
    let into = |dir: OwnedFd, shown: &Path| Landing {
        dir,
        name: src.name.clone(),
        shown: match &src.name {
            Some(n) => shown.join(OsStr::from_bytes(n)),
            None => shown.to_path_buf(),
        },
    };
    let not_found = |e: Error, what: &'static str| {
        if e.kind() == ErrorKind::NotFound {
            Error::os_at(what, shown, Errno::NOENT)
        } else {
            e.map_op(|op| format!("copy: {op}").into())
        }
    };
    if dir_only || dest == Path::new("/") {
        let h = root
            .resolve(dest)
            .map_err(|e| not_found(e, "copy: the destination directory must exist"))?;
        if !h.is_dir()? {
            return Err(Error::os_at("copy: the destination", shown, Errno::NOTDIR));
        }
        return Ok(into(h.into_fd(), shown));
    }
    let (parent, name) = crate::path::split_parent("copy", dest)?;
    let parent = root
        .resolve(parent)
        .map_err(|e| not_found(e, "copy: the destination's parent directory must exist"))?;
    if !parent.is_dir()? {
        return Err(Error::os_at(
            "copy: the destination's parent",
            shown,
            Errno::NOTDIR,
        ));
    }
    let cname = std::ffi::CString::new(name.as_os_str().as_bytes())
        .map_err(|_| Error::invalid_at("copy", shown, "path contains a NUL byte"))?;
    match rustix::fs::statat(&parent, &*cname, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let dir = rustix::fs::openat(
                &parent,
                &*cname,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::os_at("copy: open the destination", shown, e))?;
            Ok(into(dir, shown))
        }
        Ok(_) if src.ft == FileType::Directory => Err(Error::os_at(
            "copy: cannot copy a directory onto a non-directory",
            shown,
            Errno::NOTDIR,
        )),
        Ok(_) | Err(Errno::NOENT) => Ok(Landing {
            dir: parent.into_fd(),
            name: Some(name.as_os_str().as_bytes().to_vec()),
            shown: shown.to_path_buf(),
        }),
        Err(e) => Err(Error::os_at("copy: fstatat the destination", shown, e)),
    }
}

/// How many chunks may wait between the walk and the unpack.
const CHANNEL_DEPTH: usize = 8;
/// The size of a chunk.
const CHUNK: usize = 256 << 10;

enum Chunk {
    Data(Vec<u8>),
    End,
}

/// The walk's end of the stream.
struct ChanWriter {
    tx: SyncSender<Chunk>,
    buf: Vec<u8>,
    gone: bool,
}

impl ChanWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.send(Chunk::Data(chunk)).map_err(|_| {
            self.gone = true;
            std::io::Error::from(std::io::ErrorKind::BrokenPipe)
        })
    }

    fn finish(mut self) {
        if self.send().is_ok() {
            let _ = self.tx.send(Chunk::End);
        }
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl walk::Sink for &mut ChanWriter {
    fn reader_gone(&self) -> bool {
        self.gone
    }
}

/// The unpack's end of the stream. A walk that stops without saying so
/// (it failed) is an error here, never the end of the archive.
struct ChanReader {
    rx: Receiver<Chunk>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.pos);
                buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Chunk::End) => self.ended = true,
                Err(_) => {
                    return Err(std::io::Error::other("the copy's source walk stopped"));
                }
            }
        }
    }
}

/// Streams `src` into the directory `to.dir`.
fn transfer(src: Source, to: Landing, opts: &CopyOptions) -> Result<CopySummary> {
    let dest_root = Root::from_fd(to.dir)?;
    let uopts = UnpackOptions {
        whiteouts: Whiteouts::None,
        same_owner: opts.same_owner,
        limits: opts.limits,
        xattrs: false,
        ..UnpackOptions::default()
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
    let same_owner = opts.same_owner;
    let Source {
        fd, shown: sshown, ..
    } = src;
    let name = to.name;
    let (walked, unpacked) = std::thread::scope(|s| {
        let walker = s.spawn(move || {
            let mut w = ChanWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
                gone: false,
            };
            let r = walk::write_tree(&mut w, fd, name.as_deref(), &sshown, same_owner);
            if r.is_ok() {
                w.finish();
            }
            r
        });
        let reader = ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            ended: false,
        };
        let unpacked = super::unpack(&dest_root, reader, &uopts);
        (walker.join(), unpacked)
    });
    let shown = to.shown;
    let walked = match walked {
        Ok(Ok(w)) => Some(w),
        Ok(Err(walk::Stop::Failed(e))) => return Err(e),
        Ok(Err(walk::Stop::ReaderGone)) => None,
        Err(_) => {
            return Err(Error::os_at(
                "copy: the source walk panicked",
                &shown,
                Errno::IO,
            ))
        }
    };
    let u: UnpackSummary = unpacked.map_err(|e| {
        let dest = shown.display().to_string();
        e.map_op(|op| format!("copy to {dest}: {op}").into())
    })?;
    let skipped = walked.map(|w| w.skipped).unwrap_or(0);
    Ok(CopySummary {
        destination: shown,
        entries: u.entries,
        files: u.files,
        dirs: u.dirs,
        symlinks: u.symlinks,
        hardlinks: u.hardlinks,
        nodes: u.nodes,
        skipped: u.skipped + skipped,
        bytes: u.bytes,
    })
}

/// Opens the host path `path` as `O_PATH`, following its last component
/// when `follow`.
fn open_host(path: &Path, follow: bool) -> Result<OwnedFd> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    rustix::fs::open(path, flags, Mode::empty())
        .map_err(|e| Error::os_at("copy: open the source", path, e))
}

fn check_host_path(op: &'static str, path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() || path.as_os_str().as_bytes().contains(&0) {
        return Err(Error::invalid_at(
            op,
            path,
            "host path is empty or contains a NUL byte",
        ));
    }
    Ok(())
}

fn copy_in(root: &Root, host_src: &Path, dest: &Path, opts: &CopyOptions) -> Result<CopySummary> {
    check_host_path("copy_in", host_src)?;
    crate::path::check_in_root_path("copy_in", dest)?;
    let sspec = parse(host_src);
    let follow = opts.follow_link || sspec.dir_only;
    let fd = open_host(sspec.path, follow)?;
    let src = Source::new(fd, &sspec, host_src)?;
    let dspec = parse(dest);
    let to = landing(root, dspec.path, dspec.dir_only, &src, dspec.path)?;
    transfer(src, to, opts)
}

fn copy_out(root: &Root, src: &Path, host_dest: &Path, opts: &CopyOptions) -> Result<CopySummary> {
    crate::path::check_in_root_path("copy_out", src)?;
    check_host_path("copy_out", host_dest)?;
    let sspec = parse(src);
    let h = if opts.follow_link || sspec.dir_only {
        root.resolve(sspec.path)
    } else {
        root.resolve_nofollow(sspec.path)
    }
    .map_err(|e| e.map_op(|op| format!("copy: {op} (the source)").into()))?;
    let source = Source::new(h.into_fd(), &sspec, src)?;
    let dspec = parse(host_dest);
    // The host side: a root of the destination directory (when DEST must
    // be one) or of its parent, opened as the caller's path; the last
    // component is then looked at inside it like an in-root one.
    let (host_root, in_root, dir_only) = match (dspec.dir_only, dspec.path.file_name()) {
        (false, Some(name)) => {
            let parent = match dspec.path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let r = Root::open(parent).map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::os_at(
                        "copy: the destination's parent directory must exist",
                        host_dest,
                        Errno::NOENT,
                    )
                } else {
                    e.map_op(|op| format!("copy: {op}").into())
                }
            })?;
            (r, Path::new("/").join(name), false)
        }
        _ => {
            let r = Root::open(dspec.path).map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::os_at(
                        "copy: the destination directory must exist",
                        host_dest,
                        Errno::NOENT,
                    )
                } else {
                    e.map_op(|op| format!("copy: {op}").into())
                }
            })?;
            (r, PathBuf::from("/"), true)
        }
    };
    let to = landing(&host_root, &in_root, dir_only, &source, dspec.path)?;
    transfer(source, to, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let p = |s: &str| {
            let sp = parse(Path::new(s));
            (
                sp.path.to_str().unwrap().to_string(),
                sp.contents,
                sp.dir_only,
            )
        };
        assert_eq!(p("/a/b"), ("/a/b".into(), false, false));
        assert_eq!(p("/a/b/"), ("/a/b".into(), false, true));
        assert_eq!(p("/a/b//"), ("/a/b".into(), false, true));
        assert_eq!(p("/a/b/."), ("/a/b".into(), true, true));
        assert_eq!(p("/a/b/./"), ("/a/b".into(), true, true));
        assert_eq!(p("/."), ("/".into(), true, true));
        assert_eq!(p("/"), ("/".into(), false, true));
        assert_eq!(p("."), (".".into(), true, true));
        assert_eq!(p("a/.."), ("a/..".into(), false, true));
        assert_eq!(p("b"), ("b".into(), false, false));
    }
}
