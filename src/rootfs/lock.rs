//! Locking the assembled mounts against the container.
//!
//! A process that holds `CAP_SYS_ADMIN` in the user namespace that owns its
//! mount namespace may remount, unmount and move every mount in it: a
//! read-only bind becomes writable again, a mask is unmounted and the
//! masked file shows. That is the position a container program is in when
//! the runtime builds its mounts inside the container's own user namespace.
//!
//! The kernel has an answer: when a mount namespace is copied into one that
//! is owned by a *less privileged* user namespace (`unshare(CLONE_NEWNS)`
//! after joining a child user namespace), every mount of the copy is locked.
//! Its place is locked (`MNT_LOCKED`: it cannot be unmounted or moved, so
//! nothing it covers can be revealed) and so are its flags
//! (`MNT_LOCK_READONLY`, `MNT_LOCK_NODEV`, `MNT_LOCK_NOSUID`,
//! `MNT_LOCK_NOEXEC`, `MNT_LOCK_ATIME`: a remount cannot weaken them).
//!
//! [`MountLock`] does exactly that, in two steps:
//!
//! 1. [`MountLock::nested`] (before entering the root, while the caller's
//!    procfs is at hand) makes a user namespace that is a child of the
//!    caller's and maps every id the caller's namespace maps to itself, so
//!    files keep their owners; or [`MountLock::join`] takes a user
//!    namespace the caller made itself (it must be a child of the caller's
//!    user namespace).
//! 2. [`MountLock::apply`] (after [`super::AssembledRoot::enter`], just
//!    before exec) joins that user namespace and unshares the mount
//!    namespace. The program then holds capabilities over its own locked
//!    copy only; the namespace in which saferoot built the mounts stays
//!    owned by the more privileged side.
//!
//! `apply` must run in a single-threaded process (the kernel refuses
//! `setns` into a user namespace otherwise): in practice, the forked child
//! that is about to exec the container's program.

use std::os::fd::{AsFd, OwnedFd};

use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use crate::procfs::Procfs;
use crate::{Error, Result};

/// A user namespace to move into so that every mount of the current mount
/// namespace is locked; see the module documentation.
#[derive(Debug)]
pub struct MountLock {
    userns: OwnedFd,
}

/// Turns the lines of a `uid_map` or `gid_map` as read from inside the
/// namespace (`inside outside count`) into a map that sends each inside
/// range to itself.
fn identity_of(map: &str) -> Result<String> {
    let mut out = String::new();
    for line in map.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [inside, outside, count] = fields[..] else {
            return Err(Error::invalid(
                "read id map",
                format!("unexpected line {line:?}"),
            ));
        };
        let parse = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                Error::invalid("read id map", format!("unexpected number in {line:?}"))
            })
        };
        let (inside, count) = (parse(inside)?, parse(count)?);
        parse(outside)?;
        out.push_str(&format!("{inside} {inside} {count}\n"));
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "read id map",
            "the caller's user namespace maps no ids",
        ));
    }
    Ok(out)
}

impl MountLock {
    /// A new user namespace, child of the caller's, whose uid and gid maps
    /// send every id the caller's namespace maps to itself.
    ///
    /// Needs `CAP_SETUID` and `CAP_SETGID` in the caller's user namespace
    /// (to write maps of more than one id) and a procfs (saferoot's private
    /// one): make the lock before entering a root that may have no `/proc`.
    pub fn nested() -> Result<MountLock> {
        MountLock::nested_with(&Procfs::new()?)
    }

    /// [`nested`](Self::nested) with a procfs the caller already has, made
    /// in the caller's own pid namespace (the helper that makes the user
    /// namespace is looked up there by its pid).
    pub fn nested_with(procfs: &Procfs) -> Result<MountLock> {
        let maps = IdentityMaps::read(procfs)?;
        let userns = procfs.make_userns(&maps.uid_map, &maps.gid_map)?;
        Ok(MountLock { userns })
    }

    /// Locks by moving into `userns`, a user namespace the caller made.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::InvalidInput`] when `userns` is not a child of the caller's
    /// user namespace: a mount namespace owned by any other would not be
    /// less privileged, so nothing would be locked.
    pub fn join(userns: OwnedFd) -> Result<MountLock> {
        MountLock::join_with(userns, &Procfs::new()?)
    }

    /// [`join`](Self::join) with a procfs the caller already has (any
    /// instance it can see its own `thread-self` in), to read its own user
    /// namespace from, instead of making one.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub fn join_with(userns: OwnedFd, procfs: &Procfs) -> Result<MountLock> {
        if !is_child_of_current(userns.as_fd(), procfs)? {
            return Err(Error::invalid(
                "lock mounts",
                "the user namespace is not a child of the caller's: joining it would lock nothing",
            ));
        }
        Ok(MountLock { userns })
    }

    /// The user namespace the program will be in.
    pub fn user_namespace(&self) -> std::os::fd::BorrowedFd<'_> {
        self.userns.as_fd()
    }

    /// The user namespace the program will be in, as an owned fd (to hand
    /// to another process, which then calls [`MountLock::join`]).
    pub fn into_user_namespace(self) -> OwnedFd {
        self.userns
    }

    /// Joins the user namespace and unshares the mount namespace: the
    /// calling process ends up in a copy of its mount namespace in which
    /// every mount is locked. The root and working directory move to the
    /// copy with it.
    ///
    /// # Errors
    ///
    /// - [`crate::ErrorKind::InvalidInput`] when the process has more than one thread
    ///   (`setns` answers `EINVAL`);
    /// - [`crate::ErrorKind::Os`] naming `setns` or `unshare` otherwise.
    ///
    /// Needs no procfs and no path: it works in a root without `/proc`.
    pub fn apply(&self) -> Result<()> {
        rustix::thread::move_into_link_name_space(
            self.userns.as_fd(),
            Some(LinkNameSpaceType::User),
        )
        .map_err(|e| match e {
            rustix::io::Errno::INVAL => Error::invalid(
                "lock mounts",
                "setns(CLONE_NEWUSER) refused (EINVAL): the process must be single-threaded",
            ),
            e => Error::os("lock mounts: setns(CLONE_NEWUSER)", e),
        })?;
        crate::sys::unshare(UnshareFlags::NEWNS)
            .map_err(|e| Error::os("lock mounts: unshare(CLONE_NEWNS)", e))?;
        log::debug!("mounts locked: now in a mount namespace owned by a child user namespace");
        Ok(())
    }
}

/// The uid and gid maps of a user namespace that is a child of the
/// caller's and maps every id the caller's maps to itself.
#[derive(Debug, Clone)]
struct IdentityMaps {
    uid_map: String,
    gid_map: String,
}

impl IdentityMaps {
    /// Reads the caller's maps through `procfs`.
    fn read(procfs: &Procfs) -> Result<IdentityMaps> {
        let read = |file: &str| -> Result<String> {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut procfs.open_thread_self(file)?, &mut text).map_err(
                |e| {
                    Error::os_at(
                        "read id map",
                        format!("/proc/thread-self/{file}"),
                        rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
                    )
                },
            )?;
            identity_of(&text)
        };
        Ok(IdentityMaps {
            uid_map: read("uid_map")?,
            gid_map: read("gid_map")?,
        })
    }
}

/// Locking the mounts of a child process with no helper process: the
/// child makes the lock's user namespace itself, and its parent, still in
/// the namespace the mounts were made in, writes the maps.
///
/// [`MountLock::nested`] forks a helper to make the user namespace. In a
/// new pid namespace whose init builds the root, that helper would take
/// a pid there (pid 2, the program's place), so it must be made before
/// the pid namespace exists, by a process outside it. `InPlaceLock` needs
/// no such process: the process that will exec the program does it.
///
/// 1. [`InPlaceLock::new`], in the parent (the init), before it forks:
///    reads the identity maps of its user namespace.
/// 2. [`InPlaceLock::enter`], in the forked child, single-threaded:
///    makes itself dumpable (so that its parent may open its id-map files;
///    only the parent and the owners of this user namespace can trace it,
///    and exec sets dumpability again), unshares its user namespace and,
///    in the same call, its mount namespace, and returns its pid as
///    `procfs` shows it. The child is then where [`MountLock::apply`]
///    would put it: in a locked copy, owned by a child user namespace
///    (whose maps are not written yet: the kernel locks the copy's mounts
///    because of who owns it, whatever the maps say). The child hands
///    that pid to its parent (over a pipe, say) and waits.
/// 3. [`InPlaceLock::write_maps`], in the parent: writes the child's maps
///    and tells the child, which may then exec.
///
/// The pid travels as the procfs shows it (the child's pid in the pid
/// namespace the procfs was made in), so one procfs made outside the new
/// pid namespace serves both sides. It cannot name another process: the
/// child is alive and waiting, and only its parent could reap it.
#[derive(Debug, Clone)]
pub struct InPlaceLock {
    maps: IdentityMaps,
}

impl InPlaceLock {
    /// Reads the identity maps of the caller's user namespace through
    /// `procfs` (which may be of an ancestor pid namespace).
    pub fn new(procfs: &Procfs) -> Result<InPlaceLock> {
        Ok(InPlaceLock {
            maps: IdentityMaps::read(procfs)?,
        })
    }

    /// Step 2, in the child: makes the process dumpable, unshares its user
    /// and mount namespaces (one `unshare(CLONE_NEWUSER | CLONE_NEWNS)`,
    /// which locks every mount of the copy), and returns its pid as
    /// `procfs` shows it.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Os`] naming `prctl`, `unshare` (`EINVAL` when the
    /// process has more than one thread) or the procfs lookup.
    pub fn enter(procfs: &Procfs) -> Result<u32> {
        let pid = procfs.self_pid()?;
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
            .map_err(|e| Error::os("lock mounts: prctl(PR_SET_DUMPABLE, 1)", e))?;
        crate::sys::unshare(UnshareFlags::NEWUSER | UnshareFlags::NEWNS)
            .map_err(|e| Error::os("lock mounts: unshare(CLONE_NEWUSER | CLONE_NEWNS)", e))?;
        log::debug!("mounts locked in place: in a mount namespace owned by a child user namespace");
        Ok(pid)
    }

    /// Step 3, in the parent: writes the identity maps of the child `pid`
    /// (its pid in `procfs`'s pid namespace, as [`InPlaceLock::enter`]
    /// returned it).
    pub fn write_maps(&self, procfs: &Procfs, pid: u32) -> Result<()> {
        procfs.write_id_maps(pid, &self.maps.uid_map, &self.maps.gid_map)
    }
}

/// Whether `userns` is a user namespace whose parent is the caller's.
fn is_child_of_current(userns: std::os::fd::BorrowedFd<'_>, procfs: &Procfs) -> Result<bool> {
    let parent = match crate::sys::ns_get_parent(userns) {
        Ok(p) => p,
        // The initial namespace has no parent; one whose parent is out of
        // the caller's reach is not the caller's child either.
        Err(rustix::io::Errno::PERM) => return Ok(false),
        Err(e) => return Err(Error::os("lock mounts: ioctl(NS_GET_PARENT)", e)),
    };
    let parent_ino = rustix::fs::fstat(&parent)
        .map_err(|e| Error::os("lock mounts: fstat user namespace", e))?
        .st_ino;
    let own = procfs.open_namespace(None, "user")?;
    let own_ino = rustix::fs::fstat(&own)
        .map_err(|e| Error::os("lock mounts: fstat user namespace", e))?
        .st_ino;
    Ok(parent_ino == own_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_maps_keep_the_inside_ranges() {
        assert_eq!(
            identity_of("         0     100000      65536\n").unwrap(),
            "0 0 65536\n"
        );
        assert_eq!(identity_of("0 0 4294967295\n").unwrap(), "0 0 4294967295\n");
        assert_eq!(
            identity_of("0 1000 1\n1 100000 65535\n").unwrap(),
            "0 0 1\n1 1 65535\n"
        );
        assert!(identity_of("").is_err());
        assert!(identity_of("0 x 1\n").is_err());
        assert!(identity_of("0 1\n").is_err());
    }
}
