//! Masked and read-only paths.
//!
//! Masking uses the host's `/dev/null`, opened once by the caller's own
//! path and checked to be the character device 1:3; the container's
//! `/dev/null` is never used, since the container controls it
//! (CVE-2025-31133). Directories are masked with one empty, read-only
//! tmpfs (`nr_blocks=1,nr_inodes=1`): attached at the first masked
//! directory and cloned from there for the others. (Cloned from a detached
//! prototype instead, the prototype would have to be dropped unattached at
//! the end, and the kernel waits for an RCU grace period before it frees a
//! mount it took apart: 50 to 100 µs on the path of every start.)

use std::path::Path;

use rustix::fs::FileType;

use crate::error::Entry;
use crate::mount::AttachedMount;
use crate::mount::Scope;
use crate::path::{Handle, Root};
use crate::{Error, ErrorKind, Mount, MountAttr, Propagation, Result};

/// The host's `/dev/null`, checked.
#[derive(Debug)]
pub struct HostDevNull {
    handle: Handle,
    /// Device and inode, to recognise fds that point at it.
    pub id: (u64, u64),
}

impl HostDevNull {
    /// Opens `/dev/null` of the calling process (`O_PATH`, not following a
    /// symlink) and checks that it is the character device 1:3.
    pub fn open() -> Result<HostDevNull> {
        let handle = Root::open("/dev")?.resolve_nofollow("/null")?;
        let st = handle.stat().map_err(|e| e.with_path("/dev/null"))?;
        if st.file_type != FileType::CharacterDevice || st.rdev != rustix::fs::makedev(1, 3) {
            return Err(Error::unsafe_at(
                "open host /dev/null",
                "/dev/null",
                "the host's /dev/null is not the character device 1:3",
            ));
        }
        Ok(HostDevNull {
            handle,
            id: (st.dev, st.ino),
        })
    }

    /// The handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The handle of `p` in `root`, or `None` when it does not exist (masked
/// and read-only paths that are missing are skipped, as runc does).
fn resolve_existing(root: &Root, p: &Path) -> Result<Option<Handle>> {
    match root.resolve(p) {
        Ok(h) => Ok(Some(h)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Masks each path of `paths` that exists. Returns the mounts made.
pub(crate) fn mask_paths(
    root: &Root,
    paths: &[impl AsRef<Path>],
    devnull: &HostDevNull,
) -> Result<Vec<AttachedMount>> {
    let mut made: Vec<AttachedMount> = Vec::new();
    // Where in `made` the first directory's mask is.
    let mut dir_mask: Option<usize> = None;
    for (i, p) in paths.iter().enumerate() {
        let p = p.as_ref();
        let entry = |e: crate::Error| e.with_entry(Entry::MaskedPath(i));
        let Some(target) = resolve_existing(root, p).map_err(entry)? else {
            continue;
        };
        let st = crate::rootfs::policy::check_not_tree_root(root, &target, "maskedPaths", p)
            .map_err(entry)?;
        let m = if st.file_type == FileType::Directory {
            let fresh = || {
                Mount::fs("tmpfs")
                    .source("tmpfs")
                    .data("nr_blocks=1,nr_inodes=1,mode=0555")
                    .attrs(
                        MountAttr::RDONLY
                            | MountAttr::NOSUID
                            | MountAttr::NODEV
                            | MountAttr::NOEXEC,
                    )
                    .mount()
            };
            match dir_mask {
                // One superblock for every masked directory, cloned from the
                // first one's mount (a failed clone gets a fresh, equally
                // empty tmpfs). The clone leaves the first mask's peer
                // group, which it has when it went under a shared mount:
                // each mask is on its own, as a fresh tmpfs would be.
                Some(first) => match Mount::clone_fd(&made[first], Scope::Mount).and_then(|m| {
                    m.set_propagation(Propagation::Private, Scope::Mount)
                        .map(|()| m.known_dir(true))
                }) {
                    Ok(m) => m,
                    Err(_) => fresh().map_err(entry)?,
                },
                None => {
                    dir_mask = Some(made.len());
                    fresh().map_err(entry)?
                }
            }
        } else {
            Mount::clone_fd(devnull.handle(), Scope::Mount)
                .map_err(entry)?
                .known_dir(false)
        };
        made.push(
            m.attach(&target)
                .map_err(|e| entry(Error::from(e).with_path(p)))?,
        );
        log::debug!("masked {}", p.display());
    }
    Ok(made)
}

/// Binds each path of `paths` that exists over itself, read-only (with
/// every mount below it), keeping its other flags.
pub(crate) fn readonly_paths(
    root: &Root,
    paths: &[impl AsRef<Path>],
) -> Result<Vec<AttachedMount>> {
    let mut made = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let p = p.as_ref();
        let entry = |e: crate::Error| e.with_entry(Entry::ReadonlyPath(i));
        let Some(target) = resolve_existing(root, p).map_err(entry)? else {
            continue;
        };
        let st = crate::rootfs::policy::check_not_tree_root(root, &target, "readonlyPaths", p)
            .map_err(entry)?;
        let m = Mount::clone_fd(&target, Scope::Tree)
            .map_err(|e| entry(e.with_path(p)))?
            .known_dir(st.file_type == FileType::Directory);
        m.set_attr_recursive(MountAttr::RDONLY, MountAttr::empty())
            .map_err(|e| entry(e.with_path(p)))?;
        made.push(
            m.attach(&target)
                .map_err(|e| entry(Error::from(e).with_path(p)))?,
        );
        log::debug!("read-only {}", p.display());
    }
    Ok(made)
}
