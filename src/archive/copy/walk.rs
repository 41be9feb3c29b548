//! A tar stream of a tree, read only through file descriptors.
//!
//! Every item is first opened `O_PATH | O_NOFOLLOW` relative to its
//! parent directory's fd (the top item is given as such an fd), and only
//! that fd is used from then on: a directory is read by opening `.` in it,
//! a regular file is reopened for reading from its `O_PATH` fd (through
//! pathrs' private procfs, so the very inode that was checked is read and
//! nothing else is ever opened: no fifo, no device node), a symlink is read
//! with `readlinkat(fd, "")`. Names are never joined into paths that are
//! resolved again, so a process that renames or swaps entries of the
//! source meanwhile cannot make the walk read outside it.
//!
//! The stream is written with the `tar` crate's header type; names and link
//! targets go into PAX `path`/`linkpath` records when they do not fit the
//! header, so they reach the reader byte for byte.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::{Error, Handle, Result};

/// Why a walk stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    /// The reader went away (it failed, and says why itself).
    ReaderGone,
    /// The walk itself failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// Deepest directory nesting walked (each level holds one fd).
const MAX_DEPTH: usize = 1024;

/// Whether the writer's reader is gone; set by the writer.
pub(super) trait Sink: Write {
    /// True once a write failed because nobody reads any more.
    fn reader_gone(&self) -> bool;
}

/// What a walk did that the reader does not see.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// Items that a tar stream cannot carry (sockets).
    pub skipped: u64,
}

/// Writes the tree at `top` (an `O_PATH` fd, not followed) as a tar stream
/// to `out`. With `name`, the top item is the entry `name` and what is
/// below it `name/...`; without, `top` must be a directory, which gets no
/// entry of its own, and its children are the top-level entries. `shown`
/// is the source as the caller named it, for messages. With `same_owner`
/// false, set-user-id and set-group-id bits of non-directories are
/// dropped: the copies will belong to the caller.
pub(super) fn write_tree<W: Sink>(
    out: W,
    top: OwnedFd,
    name: Option<&[u8]>,
    shown: &Path,
    same_owner: bool,
) -> std::result::Result<Walked, Stop> {
    let mut w = Walker {
        tar: tar::Builder::new(out),
        same_owner,
        links: HashMap::new(),
        walked: Walked::default(),
    };
    let st = rustix::fs::fstat(&top).map_err(|e| Error::os_at("fstat", shown, e))?;
    match name {
        Some(name) => w.item(top, &st, name.to_vec(), shown.to_path_buf(), 0)?,
        None => {
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Error::os_at("copy the contents of", shown, Errno::NOTDIR).into());
            }
            let dir = open_dir(&top, shown)?;
            w.children(dir, &[], shown, 1)?;
        }
    }
    w.tar.finish().map_err(|e| w.stop(e, shown))?;
    Ok(w.walked)
}

struct Walker<W: Sink> {
    tar: tar::Builder<W>,
    same_owner: bool,
    /// Regular files with more than one link, by (dev, ino): the name they
    /// were first written under.
    links: HashMap<(u64, u64), Vec<u8>>,
    walked: Walked,
}

/// Opens the directory `fd` (an `O_PATH` fd is fine) for reading: `.` in
/// it, so no name is looked up.
fn open_dir(fd: impl AsFd, shown: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(
        fd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os_at("open directory", shown, e))
}

/// Reads exactly `left` bytes from a file that may shrink or grow while it
/// is read: zeros after a premature end, nothing past `left`.
struct Exactly<R> {
    inner: R,
    left: u64,
    ended: bool,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = if self.ended {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.ended = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

impl<W: Sink> Walker<W> {
    /// The reason a tar write failed: the reader left, or (the only other
    /// source of errors inside a write) reading the source failed.
    fn stop(&self, e: std::io::Error, shown: &Path) -> Stop {
        if self.tar.get_ref().reader_gone() {
            return Stop::ReaderGone;
        }
        match Errno::from_io_error(&e) {
            Some(errno) => Stop::Failed(Error::os_at("read", shown, errno)),
            None => Stop::Failed(Error::invalid_at("read", shown, e.to_string())),
        }
    }

    /// The header every entry starts from: mode, owner, time.
    fn header(&self, st: &Stat, ft: FileType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let mut mode = st.st_mode & 0o7777;
        if !self.same_owner && ft != FileType::Directory {
            mode &= !0o6000;
        }
        h.set_mode(mode);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Appends one entry: PAX records for what the header cannot hold
    /// (a long name or link target, a time with nanoseconds), then the
    /// header and the data.
    fn append(
        &mut self,
        mut h: tar::Header,
        st: &Stat,
        path: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
        shown: &Path,
    ) -> std::result::Result<(), Stop> {
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        if st.st_mtime_nsec != 0 && st.st_mtime > 0 {
            pax.push((
                "mtime",
                format!("{}.{:09}", st.st_mtime, st.st_mtime_nsec).into_bytes(),
            ));
        }
        {
            let old = h.as_old_mut();
            let n = path.len().min(old.name.len() - 1);
            old.name[..n].copy_from_slice(&path[..n]);
            if path.len() > n {
                pax.push(("path", path.to_vec()));
            }
            if let Some(link) = link {
                let n = link.len().min(old.linkname.len() - 1);
                old.linkname[..n].copy_from_slice(&link[..n]);
                if link.len() > n {
                    pax.push(("linkpath", link.to_vec()));
                }
            }
        }
        h.set_cksum();
        if !pax.is_empty() {
            let records = pax.iter().map(|(k, v)| (*k, v.as_slice()));
            if let Err(e) = self.tar.append_pax_extensions(records) {
                return Err(self.stop(e, shown));
            }
        }
        if let Err(e) = self.tar.append(&h, data) {
            return Err(self.stop(e, shown));
        }
        Ok(())
    }

    /// Writes the item `fd` (an `O_PATH` fd that was not followed) whose
    /// status is `st` as the entry `path`, and what is below it.
    fn item(
        &mut self,
        fd: OwnedFd,
        st: &Stat,
        path: Vec<u8>,
        shown: PathBuf,
        depth: usize,
    ) -> std::result::Result<(), Stop> {
        let ft = FileType::from_raw_mode(st.st_mode);
        let mut h = self.header(st, ft);
        match ft {
            FileType::Directory => {
                h.set_entry_type(tar::EntryType::Directory);
                self.append(h, st, &path, None, std::io::empty(), &shown)?;
                let dir = open_dir(&fd, &shown)?;
                drop(fd);
                self.children(dir, &path, &shown, depth + 1)?;
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        h.set_entry_type(tar::EntryType::Link);
                        return self.append(h, st, &path, Some(&first), std::io::empty(), &shown);
                    }
                }
                let file = Handle::from_fd(fd)
                    .reopen(OFlags::RDONLY | OFlags::NOCTTY)
                    .map_err(|e| e.map_op(|op| format!("{op} (open to read)").into()))
                    .map_err(|e| e.with_path(&shown))?;
                let fst = rustix::fs::fstat(&file).map_err(|e| Error::os_at("fstat", &shown, e))?;
                if (fst.st_dev, fst.st_ino) != key
                    || FileType::from_raw_mode(fst.st_mode) != FileType::RegularFile
                {
                    return Err(Error::unsafe_at(
                        "copy",
                        &shown,
                        "the file opened for reading is not the one found",
                    )
                    .into());
                }
                let size = u64::try_from(fst.st_size).unwrap_or(0);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                let data = Exactly {
                    inner: std::io::BufReader::with_capacity(1 << 16, file),
                    left: size,
                    ended: false,
                };
                self.append(h, st, &path, None, data, &shown)?;
                if st.st_nlink > 1 {
                    self.links.insert(key, path);
                }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&fd, c"", Vec::new())
                    .map_err(|e| Error::os_at("readlink", &shown, e))?;
                h.set_entry_type(tar::EntryType::Symlink);
                let target = target.as_bytes();
                self.append(h, st, &path, Some(target), std::io::empty(), &shown)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.set_entry_type(match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if ft != FileType::Fifo {
                    let (major, minor) =
                        (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                    let bad = |e: std::io::Error| Error::invalid_at("copy", &shown, e.to_string());
                    h.set_device_major(major).map_err(bad)?;
                    h.set_device_minor(minor).map_err(bad)?;
                }
                self.append(h, st, &path, None, std::io::empty(), &shown)?;
            }
            _ => {
                log::debug!("copy: skipping {} (a socket)", shown.display());
                self.walked.skipped += 1;
            }
        }
        Ok(())
    }

    /// Writes the entries of the directory `dir` (opened for reading), each
    /// under `prefix/NAME` (or `NAME` when `prefix` is empty).
    fn children(
        &mut self,
        dir: OwnedFd,
        prefix: &[u8],
        shown: &Path,
        depth: usize,
    ) -> std::result::Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid_at(
                "copy",
                shown,
                format!("directories nested deeper than {MAX_DEPTH} levels"),
            )
            .into());
        }
        let mut d =
            rustix::fs::Dir::new(dir).map_err(|e| Error::os_at("read directory", shown, e))?;
        let mut names: Vec<CString> = Vec::new();
        while let Some(ent) = d.read() {
            let ent = ent.map_err(|e| Error::os_at("read directory", shown, e))?;
            let name = ent.file_name();
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
        }
        names.sort();
        let dfd = d
            .fd()
            .map_err(|e| Error::os_at("read directory", shown, e))?;
        for name in names {
            let cshown = shown.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
            let Some((fd, st)) = open_child(dfd, &name, &cshown)? else {
                continue;
            };
            let mut path = Vec::with_capacity(prefix.len() + 1 + name.as_bytes().len());
            if !prefix.is_empty() {
                path.extend_from_slice(prefix);
                path.push(b'/');
            }
            path.extend_from_slice(name.to_bytes());
            self.item(fd, &st, path, cshown, depth)?;
        }
        Ok(())
    }
}

/// Opens `name` in `dir` as `O_PATH | O_NOFOLLOW` and stats it; `None`
/// when it is gone (removed since the directory was read).
fn open_child(dir: impl AsFd, name: &CStr, shown: &Path) -> Result<Option<(OwnedFd, Stat)>> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            log::debug!("copy: {} vanished during the copy", shown.display());
            return Ok(None);
        }
        Err(e) => return Err(Error::os_at("open", shown, e)),
    };
    let st = rustix::fs::statat(&fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::os_at("fstat", shown, e))?;
    Ok(Some((fd, st)))
}
