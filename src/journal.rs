//! What an assembly created in a root, so that a failed assembly can take
//! it out again.
//!
//! Mount points and the parents made for them, files that file binds go
//! onto, device nodes and symlinks are created in the rootfs's own
//! filesystem, so detaching the mounts does not take them away. While an
//! assembly runs, every such creation is recorded here as the fd of the
//! directory it was made in, its name and the identity (device and inode)
//! of what was made. On failure [`Journal::undo`] removes them newest first,
//! each through its parent's fd and only when the name still holds the very
//! inode that was made: nothing is ever removed by re-resolving a path, and
//! nothing saferoot did not create is touched (buildkit CVE-2024-23652 is
//! the lesson).
//!
//! The journal in force is per thread ([`Active`] sets it for a scope); the
//! library's helper threads ([`crate::fsthread`]) carry it over.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType};

/// One thing created.
#[derive(Debug)]
struct Created {
    parent: OwnedFd,
    name: OsString,
    dev: u64,
    ino: u64,
    dir: bool,
}

/// The creations of one assembly.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: Mutex<Vec<Created>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Journal>>> = const { RefCell::new(None) };
}

/// Makes a journal the one in force on this thread until dropped.
#[derive(Debug)]
pub(crate) struct Active {
    previous: Option<Arc<Journal>>,
}

impl Active {
    /// `journal` is in force (None: none is) until the guard is dropped.
    pub(crate) fn set(journal: Option<Arc<Journal>>) -> Active {
        let previous = CURRENT.with(|c| c.replace(journal));
        Active { previous }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The journal in force on this thread.
pub(crate) fn current() -> Option<Arc<Journal>> {
    CURRENT.with(|c| c.borrow().clone())
}

fn identity(parent: BorrowedFd<'_>, name: &OsStr) -> Option<(u64, u64, FileType)> {
    let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Some((st.st_dev, st.st_ino, FileType::from_raw_mode(st.st_mode)))
}

/// Whether `name` in `parent` is the root of a mount (something is mounted
/// over the entry).
fn covered(parent: BorrowedFd<'_>, name: &OsStr) -> bool {
    let mnt = |dir: BorrowedFd<'_>, name: &OsStr, flags: AtFlags| {
        rustix::fs::statx(dir, name, flags, rustix::fs::StatxFlags::MNT_ID)
            .ok()
            .map(|st| st.stx_mnt_id)
    };
    match (
        mnt(parent, OsStr::new(""), AtFlags::EMPTY_PATH),
        mnt(parent, name, AtFlags::SYMLINK_NOFOLLOW),
    ) {
        (Some(p), Some(n)) => p != n,
        _ => false,
    }
}

/// What the creator knows of what it made.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Made {
    /// This inode (device, inode number), held by the creator.
    Inode(u64, u64),
    /// Something of this type.
    Type(FileType),
}

/// Records that `name` in `parent` was just created as `made`. Does nothing
/// when no journal is in force, or when the name no longer holds what was
/// created (then it is not ours to remove). The journal holds a duplicate
/// of `parent`.
pub(crate) fn record(parent: BorrowedFd<'_>, name: &OsStr, made: Made) {
    record_with(Parent::Borrowed(parent), name, made);
}

/// [`record`] for a caller that has no further use for `parent`: the
/// journal keeps that fd itself instead of a duplicate.
pub(crate) fn record_owned(parent: OwnedFd, name: &OsStr, made: Made) {
    record_with(Parent::Owned(parent), name, made);
}

/// The parent directory of a recorded entry, as the creator hands it over.
enum Parent<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
}

fn record_with(parent: Parent<'_>, name: &OsStr, made: Made) {
    let Some(journal) = current() else { return };
    let fd = match &parent {
        Parent::Borrowed(b) => *b,
        Parent::Owned(o) => o.as_fd(),
    };
    let Some((dev, ino, ft)) = identity(fd, name) else {
        return;
    };
    let ours = match made {
        Made::Inode(d, i) => (d, i) == (dev, ino),
        Made::Type(t) => t == ft,
    };
    if !ours {
        return;
    }
    let held = match parent {
        Parent::Borrowed(b) => crate::sys::dup_cloexec(b).ok(),
        Parent::Owned(o) => Some(o),
    };
    let Some(parent) = held else {
        log::warn!("journal: cannot hold the parent of {name:?}; it will not be undone");
        return;
    };
    let mut entries = journal.entries.lock().unwrap_or_else(|p| p.into_inner());
    entries.push(Created {
        parent,
        name: name.to_owned(),
        dev,
        ino,
        dir: ft == FileType::Directory,
    });
}

impl Journal {
    /// A new, empty journal.
    pub(crate) fn new() -> Arc<Journal> {
        Arc::new(Journal::default())
    }

    /// Removes every recorded creation, newest first, that is still there
    /// as it was made. A directory that is no longer empty (someone put
    /// something in it) stays. Returns how many were removed.
    pub(crate) fn undo(&self) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut removed = 0;
        while let Some(c) = entries.pop() {
            // The name may still be covered by one of the mounts of the
            // failed tree: a detached tree that is dissolved keeps its
            // mounts connected to each other while fds to them are open,
            // so the name then shows the root of another mount, and the
            // entry below it cannot be looked at. A name on the parent's
            // own mount must still be the very inode that was made.
            if covered(c.parent.as_fd(), &c.name) {
                log::debug!(
                    "undo: {:?} is still covered by a mount of the failed tree",
                    c.name
                );
            } else {
                match identity(c.parent.as_fd(), &c.name) {
                    Some((dev, ino, _)) if (dev, ino) == (c.dev, c.ino) => {}
                    _ => {
                        log::debug!(
                            "undo: {:?} is no longer what was created; left alone",
                            c.name
                        );
                        continue;
                    }
                }
            }
            let flags = if c.dir {
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
            match rustix::fs::unlinkat(&c.parent, c.name.as_os_str(), flags) {
                Ok(()) => removed += 1,
                Err(e) => log::warn!("undo: removing {:?}: {e}", c.name),
            }
        }
        removed
    }

    /// Forgets every record: what was created stays (the assembly
    /// succeeded).
    pub(crate) fn commit(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
