//! `tmpcopyup`: copy a directory's contents into a new tmpfs before the
//! tmpfs is attached over it.
//!
//! The source is part of the image, which the container (or whoever
//! prepared the image, or a process racing with saferoot) controls, so the
//! copy trusts no name and no directory entry type:
//!
//! - every entry is opened relative to its parent directory's fd with
//!   `O_PATH | O_NOFOLLOW` (which never blocks and never runs a driver's
//!   `open`), and its type is taken from `fstat` of that fd, not from the
//!   directory entry;
//! - a regular file is then opened for reading with `O_NONBLOCK |
//!   O_NOFOLLOW | O_NOCTTY` and read only if `fstat` of *that* fd says it
//!   is still the same regular file: an entry swapped for a fifo or a
//!   device in between is skipped, so the copy never blocks on a fifo and
//!   never reads a device;
//! - a directory is opened through its own `O_PATH` fd (`openat(fd, ".")`),
//!   never by name again; a symlink is read through its fd and recreated as
//!   a symlink with the same target text, never followed;
//! - fifos, sockets and device nodes are skipped (with a debug log).
//!
//! Files, directories and symlinks keep their owner, and files and
//! directories their mode and timestamps; everything is set through fds
//! (or `*at` calls on the new parent with `AT_SYMLINK_NOFOLLOW`). The walk
//! is iterative, with its depth bounded by [`MAX_DEPTH`]: a deeper tree is
//! an error, not a stack overflow.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::path::Handle;
use crate::{Error, Mount, Result};

/// How deep below the copied directory the copy goes; a deeper tree is
/// refused.
pub(crate) const MAX_DEPTH: usize = 128;

/// One directory being copied: its source and destination, opened for
/// reading, the names still to copy, and the source's metadata, applied to
/// the destination once its contents are in place.
struct Level {
    src: OwnedFd,
    dst: OwnedFd,
    names: Vec<CString>,
    path: PathBuf,
    meta: Option<Stat>,
}

impl Level {
    fn new(src: OwnedFd, dst: OwnedFd, path: PathBuf, meta: Option<Stat>) -> Result<Level> {
        let mut names = Vec::new();
        let mut dir = rustix::fs::Dir::read_from(&src)
            .map_err(|e| Error::os_at("tmpcopyup: opendir", &path, e))?;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| Error::os_at("tmpcopyup: readdir", &path, e))?;
            let name = entry.file_name();
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
        }
        // Popped from the end: reverse to copy in directory order.
        names.reverse();
        Ok(Level {
            src,
            dst,
            names,
            path,
            meta,
        })
    }
}

/// Opens the directory `fd` (an `O_PATH` handle or a mount fd) for
/// reading, through `.`, which names the inode the fd already holds.
fn open_dir(fd: impl AsFd) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(
        fd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Copies the contents of the directory `src` into the root of `dst`.
pub fn copy_tree(src: &Handle, dst: &Mount) -> Result<()> {
    let root = Path::new("/");
    let from = open_dir(src).map_err(|e| Error::os_at("tmpcopyup: open source", root, e))?;
    let to = open_dir(dst).map_err(|e| Error::os_at("tmpcopyup: open tmpfs", root, e))?;
    let mut stack = vec![Level::new(from, to, root.to_path_buf(), None)?];
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.pop() else {
            let done = stack.pop().expect("the stack has a top");
            if let Some(st) = &done.meta {
                set_meta(&done.dst, st)
                    .map_err(|e| Error::os_at("tmpcopyup: set metadata", &done.path, e))?;
            }
            continue;
        };
        if let Some(sub) = copy_entry(top, &name)? {
            if stack.len() > MAX_DEPTH {
                return Err(Error::invalid_at(
                    "tmpcopyup",
                    &sub.path,
                    format!("the directory tree is deeper than {MAX_DEPTH} levels"),
                ));
            }
            stack.push(sub);
        }
    }
    Ok(())
}

/// Copies the entry `name` of `level`; returns the level of a directory,
/// whose contents are still to be copied.
fn copy_entry(level: &Level, name: &CString) -> Result<Option<Level>> {
    let path = level
        .path
        .join(std::ffi::OsStr::from_bytes(name.to_bytes()));
    let os = |op: &'static str| {
        let path = path.clone();
        move |e: Errno| Error::os_at(op, &path, e)
    };
    let fd = match rustix::fs::openat(
        &level.src,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            log::debug!("tmpcopyup: {} vanished, skipped", path.display());
            return Ok(None);
        }
        Err(e) => return Err(os("tmpcopyup: open")(e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(os("tmpcopyup: fstat"))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Symlink => {
            let target =
                rustix::fs::readlinkat(&fd, c"", Vec::new()).map_err(os("tmpcopyup: readlink"))?;
            rustix::fs::symlinkat(&target, &level.dst, name).map_err(os("tmpcopyup: symlink"))?;
            rustix::fs::chownat(
                &level.dst,
                name,
                Some(Uid::from_raw(st.st_uid)),
                Some(Gid::from_raw(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(os("tmpcopyup: chown symlink"))?;
            Ok(None)
        }
        FileType::Directory => {
            rustix::fs::mkdirat(&level.dst, name, Mode::from_raw_mode(0o700))
                .map_err(os("tmpcopyup: mkdir"))?;
            let src = open_dir(&fd).map_err(os("tmpcopyup: open directory"))?;
            let dst = rustix::fs::openat(
                &level.dst,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(os("tmpcopyup: open new directory"))?;
            Ok(Some(Level::new(src, dst, path, Some(st))?))
        }
        FileType::RegularFile => {
            copy_file(level, name, &st, &path)?;
            Ok(None)
        }
        other => {
            log::debug!(
                "tmpcopyup: skipping {} ({})",
                path.display(),
                crate::path::type_name(other)
            );
            Ok(None)
        }
    }
}

/// Copies the regular file `name`, whose `O_PATH` fd had the metadata
/// `st`, if it is still that regular file when opened for reading.
fn copy_file(level: &Level, name: &CString, st: &Stat, path: &Path) -> Result<()> {
    let os = |op: &'static str| move |e: Errno| Error::os_at(op, path, e);
    let same = |s: &Stat| {
        FileType::from_raw_mode(s.st_mode) == FileType::RegularFile
            && (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino)
    };
    let skip = || {
        log::debug!(
            "tmpcopyup: {} changed while being copied, skipped",
            path.display()
        );
        Ok(())
    };
    let src = match rustix::fs::openat(
        &level.src,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(e) => {
            // Refused because it is no longer the file it was (a symlink,
            // a socket, a device without a driver): skip it. A failure on
            // the same file is a real error.
            return match rustix::fs::statat(&level.src, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(now) if same(&now) => Err(os("tmpcopyup: open")(e)),
                _ => skip(),
            };
        }
    };
    let now = rustix::fs::fstat(&src).map_err(os("tmpcopyup: fstat"))?;
    if !same(&now) {
        return skip();
    }
    let dst = rustix::fs::openat(
        &level.dst,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(os("tmpcopyup: create"))?;
    let mut from = std::fs::File::from(src);
    let mut to = std::fs::File::from(dst);
    std::io::copy(&mut from, &mut to)
        .map_err(|e| os("tmpcopyup: copy")(Errno::from_io_error(&e).unwrap_or(Errno::IO)))?;
    set_meta(&to, st).map_err(os("tmpcopyup: set metadata"))
}

/// Owner, then mode (a chown clears set-id bits), then timestamps.
fn set_meta(fd: impl AsFd, st: &Stat) -> std::result::Result<(), Errno> {
    let fd = fd.as_fd();
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    let ts = |sec: i64, nsec: u64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    rustix::fs::futimens(
        fd,
        &Timestamps {
            last_access: ts(st.st_atime, st.st_atime_nsec),
            last_modification: ts(st.st_mtime, st.st_mtime_nsec),
        },
    )
}
