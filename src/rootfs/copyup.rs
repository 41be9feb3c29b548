//! `tmpcopyup`: copy a directory's contents into a new tmpfs before the
//! tmpfs is attached over it.
//!
//! Both sides are directories held by fd and walked with cap-std, which
//! keeps every lookup inside them: a symlink in the old contents is copied
//! as a symlink (its target text unchanged), never followed out of the
//! tree. Regular files keep their bytes, mode and owner; directories their
//! mode and owner. Device nodes, fifos and sockets are skipped.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cap_std::fs::{Dir, MetadataExt, Permissions};
use rustix::fs::{Mode, OFlags};

use crate::path::Handle;
use crate::{Error, Mount, Result};

/// Opens the directory at `fd` (an `O_PATH` handle or a mount fd) for
/// reading, through `.`, which no one can redirect.
fn open_dir(fd: impl AsFd) -> io::Result<Dir> {
    let f = rustix::fs::openat(
        fd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Dir::from_std_file(std::fs::File::from(f)))
}

/// Copies the contents of the directory `src` into the root of `dst`.
pub fn copy_tree(src: &Handle, dst: &Mount) -> Result<()> {
    let wrap = |e: io::Error| Error::os("tmpcopyup", Errno::from_io_error(&e).unwrap_or(Errno::IO));
    let from = open_dir(src).map_err(wrap)?;
    let to = open_dir(dst).map_err(wrap)?;
    copy_dir(&from, &to, Path::new("/"), 0).map_err(|(p, e)| wrap(e).with_path(p))
}

use rustix::io::Errno;

const MAX_DEPTH: u32 = 128;

fn copy_dir(
    from: &Dir,
    to: &Dir,
    at: &Path,
    depth: u32,
) -> std::result::Result<(), (std::path::PathBuf, io::Error)> {
    let here = |e: io::Error| (at.to_path_buf(), e);
    if depth > MAX_DEPTH {
        return Err(here(io::Error::from_raw_os_error(libc::ELOOP)));
    }
    for entry in from.entries().map_err(here)? {
        let entry = entry.map_err(here)?;
        let name = entry.file_name();
        let path = at.join(&name);
        let err = |e: io::Error| (path.clone(), e);
        let meta = from.symlink_metadata(&name).map_err(err)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = from.read_link_contents(&name).map_err(err)?;
            to.symlink_contents(&target, &name).map_err(err)?;
        } else if ft.is_dir() {
            to.create_dir(&name).map_err(err)?;
            let sub_from = from.open_dir(&name).map_err(err)?;
            let sub_to = to.open_dir(&name).map_err(err)?;
            copy_dir(&sub_from, &sub_to, &path, depth + 1)?;
            fix_owner_mode(&sub_to.into_std_file(), meta.mode(), meta.uid(), meta.gid())
                .map_err(err)?;
        } else if ft.is_file() {
            let mut src = from.open(&name).map_err(err)?;
            let mut dst = to.create(&name).map_err(err)?;
            io::copy(&mut src, &mut dst).map_err(err)?;
            dst.set_permissions(Permissions::from_std(std::fs::Permissions::from_mode(
                meta.mode() & 0o7777,
            )))
            .map_err(err)?;
            fix_owner_mode(&dst.into_std(), meta.mode(), meta.uid(), meta.gid()).map_err(err)?;
        } else {
            log::debug!("tmpcopyup: skipping special file {}", path.display());
        }
    }
    Ok(())
}

fn fix_owner_mode(f: &std::fs::File, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
    rustix::fs::fchown(
        f,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )?;
    rustix::fs::fchmod(f, Mode::from_raw_mode(mode & 0o7777))?;
    Ok(())
}
