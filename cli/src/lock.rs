//! How the program's process locks the sandbox's mounts (with a user
//! namespace): it ends up in a copy of the mount namespace owned by a child
//! user namespace, where the kernel locks every mount and flag
//! (`saferoot::rootfs::MountLock`).
//!
//! Three ways there:
//!
//! - [`Lock::Made`]: the lock's user namespace was made before the sandbox's
//!   pid namespace existed (by the namespace child, whose helper must not
//!   take a pid in it); the program's process joins it right before exec.
//! - In place, when saferoot cloned the init straight into its namespaces
//!   and no process outside the pid namespace takes part in the setup: the
//!   program's process unshares the user namespace itself (with its mount
//!   namespace, in one call) and the init, its parent, writes the maps
//!   ([`saferoot::rootfs::InPlaceLock`]). No helper process, no extra
//!   namespace fd. The two talk over a socket pair: the child sends its pid
//!   (as saferoot's procfs shows it, 4 bytes), the init answers with one
//!   byte once the maps are written, or closes its end on failure.
//! - [`Lock::Handed`], for a cloned init with a new network namespace: the
//!   helper that makes that namespace beside the init, already inside the
//!   init's user namespace and outside its pid namespace, makes the lock's
//!   user namespace too (`MountLock::nested_with`: a child of the init's,
//!   every id mapped to itself) and sends it with the network namespace
//!   (`crate::net_ahead`); the init checks it is a child of its own
//!   (`MountLock::join_with`, else it locks in place). The program's
//!   process joins it and unshares its mount namespace, with nothing to
//!   wait for, and sends the init its new mount namespace as an nsfs fd
//!   over the socket pair before it execs.
//!
//! With a lock the init takes part in (in place or handed), the init then
//! moves into the program's locked copy of the mount namespace
//! ([`Parent::finish`]). With a handed lock it does so only once the
//! program runs: the program's process starts in the init's memory, and
//! the init goes on only once it has exec'd (it used to be woken by a byte
//! right after the unshare, and its move, with the grace period of its old
//! namespace's teardown, came between the program's process and its
//! exec). It moves through the fd the child sent, not through a pidfd of
//! the child: on Linux 6.1 a pidfd `setns` into the program's namespace
//! was refused (`EPERM`, for as long as the program ran) once the child
//! had started in the init's memory.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use saferoot::procfs::Procfs;
use saferoot::rootfs::{InPlaceLock, MountLock};

use crate::errors::CliError;

/// The lock that the process about to exec the program applies last.
#[derive(Debug)]
pub enum Lock {
    /// A user namespace made beforehand: joined, then the mount namespace
    /// unshared.
    Made(MountLock),
    /// A user namespace made beside the init, by the helper that made the
    /// network namespace (`crate::net_ahead`): the program's process joins
    /// it and unshares its mount namespace as with [`Lock::Made`]; once the
    /// program runs, the init moves into the locked copy as it does with an
    /// in-place lock. No maps to wait for.
    Handed(MountLock),
    /// An in-place lock whose maps are not read yet: what a cloned init
    /// starts with, since the network namespace's helper may hand it a
    /// made user namespace instead ([`Lock::Handed`]), and then the maps
    /// are never needed. Settled once the root is entered
    /// ([`Lock::settle`]).
    InPlaceUnread,
    /// The init's half of an in-place lock, before it forks the program:
    /// the identity maps it will write ([`Lock::channel`], then
    /// [`InPlaceChannel::into_child`] and [`InPlaceChannel::into_parent`],
    /// make the two sides).
    InPlace(InPlaceLock),
    /// The program's half of an in-place lock (see the module
    /// documentation): the procfs its pid is read from, and its end of the
    /// socket pair.
    Child(Procfs, UnixStream),
    /// The program's half of a [`Lock::Handed`]: the user namespace to
    /// join, its end of the socket pair (over which it sends its locked
    /// mount namespace) and the procfs it opens that namespace in (only
    /// one whose instance exists already: the child may run in the
    /// init's memory, where an instance it made would leave the init a
    /// handle on an fd that only the child has).
    HandedChild(MountLock, UnixStream, Option<Procfs>),
}

/// What the init does for the lock once the program's process is forked.
#[derive(Debug)]
enum Task {
    /// Write the child's maps, then move into its locked copy.
    Maps(InPlaceLock),
    /// Move into the child's locked copy once the child has exec'd.
    Follow,
}

/// The init's half of a lock it takes part in, once the program's
/// process is forked: its task and the init's end of the socket pair.
#[derive(Debug)]
pub struct Parent {
    task: Task,
    chan: UnixStream,
}

/// The socket pair of a lock the init takes part in, made right before
/// the program's process starts ([`Lock::channel`]).
#[derive(Debug)]
pub enum Channel {
    /// A handed lock: both sides at once, since the program's process
    /// starts in the init's memory
    /// (`crate::sys::process::spawn_sharing_memory`): it applies `child`
    /// (borrowed), which the init drops once the child has exec'd, then
    /// finishes with `parent`.
    Handed {
        /// The program's side ([`Lock::HandedChild`]).
        child: Lock,
        /// The init's side.
        parent: Parent,
    },
    /// A lock made in place, whose child waits for the init to write its
    /// maps before its exec: that child is forked, and each side takes its
    /// half after the fork.
    InPlace(InPlaceChannel),
}

/// The socket pair of a lock made in place, before the fork.
#[derive(Debug)]
pub struct InPlaceChannel {
    lock: InPlaceLock,
    parent: UnixStream,
    child: UnixStream,
}

impl Lock {
    /// An [`Lock::InPlaceUnread`] gets its maps, read from the caller's
    /// user namespace through `procfs`; any other lock stays as it is.
    pub fn settle(self, procfs: &Procfs) -> Result<Lock, CliError> {
        match self {
            Lock::InPlaceUnread => InPlaceLock::new(procfs).map(Lock::InPlace).map_err(|e| {
                CliError::setup(format!("user namespace for locking the mounts: {e}"))
            }),
            other => Ok(other),
        }
    }

    /// For a lock the init takes part in (in place or handed): the socket
    /// pair the two sides talk over, made before the program's process
    /// starts; `procfs` (saferoot's) is the one a handed lock's child opens
    /// its mount namespace in. Any other lock comes back as it is.
    pub fn channel(self, procfs: &Procfs) -> Result<Result<Channel, Lock>, CliError> {
        let pair = || UnixStream::pair().map_err(|e| fail(&format!("socketpair: {e}")));
        // Close-on-exec, as std makes every socket.
        Ok(Ok(match self {
            Lock::Handed(lock) => {
                let (parent, child) = pair()?;
                Channel::Handed {
                    child: Lock::HandedChild(lock, child, made(procfs)),
                    parent: Parent {
                        task: Task::Follow,
                        chan: parent,
                    },
                }
            }
            Lock::InPlace(lock) => {
                let (parent, child) = pair()?;
                Channel::InPlace(InPlaceChannel {
                    lock,
                    parent,
                    child,
                })
            }
            other => return Ok(Err(other)),
        }))
    }

    /// Locks the calling process's mounts: joins the made namespace, or
    /// does the child's half of a lock the init takes part in. The process
    /// must be single-threaded. Borrows the lock, which the caller keeps
    /// until the exec closes its fds; so the lock works in a child that
    /// shares its parent's memory
    /// (`crate::sys::process::spawn_sharing_memory`). A handed lock's child
    /// sends the init its locked mount namespace over the socket pair.
    pub fn apply(&self) -> Result<(), CliError> {
        match self {
            Lock::Made(lock) => lock.apply().map_err(|e| fail(&e)),
            Lock::InPlace(_) | Lock::InPlaceUnread | Lock::Handed(_) => {
                Err(fail(&"a lock the init takes part in, applied without it"))
            }
            Lock::HandedChild(lock, chan, procfs) => {
                lock.apply().map_err(|e| fail(&e))?;
                // The init moves into the locked copy once this process
                // has exec'd (`Parent::finish`), through this fd. Best
                // effort, as the move is: without it the init stays.
                let sent = match procfs.as_ref().map(|p| p.open_namespace(None, "mnt")) {
                    Some(Ok(ns)) => crate::fd_passing::send(chan, MOUNT_NAMESPACE, &[ns.as_fd()])
                        .map_err(|e| format!("sendmsg: {e}")),
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("no procfs".to_string()),
                };
                if let Err(e) = sent {
                    log::debug!("the init stays in its mount namespace: {e}");
                }
                Ok(())
            }
            Lock::Child(procfs, chan) => {
                let pid = InPlaceLock::enter(procfs).map_err(|e| fail(&e))?;
                let mut chan: &UnixStream = chan;
                chan.write_all(&pid.to_ne_bytes()).map_err(|e| fail(&e))?;
                let mut go = [0u8; 1];
                // The init kills this process when it cannot write the
                // maps, and says why; end-of-file means it is gone.
                chan.read_exact(&mut go)
                    .map_err(|_| fail(&"the init did not write the user namespace maps"))?;
                Ok(())
            }
        }
    }
}

impl InPlaceChannel {
    /// The program's side, after the fork: the lock it applies, with
    /// `procfs` (saferoot's) to read its pid from.
    pub fn into_child(self, procfs: &Procfs) -> Lock {
        drop(self.parent);
        Lock::Child(procfs.clone(), self.child)
    }

    /// The init's side, after the fork.
    pub fn into_parent(self) -> Parent {
        drop(self.child);
        Parent {
            task: Task::Maps(self.lock),
            chan: self.parent,
        }
    }
}

impl Parent {
    /// The init's half. For a lock in place: waits for the child's pid,
    /// writes its maps through `procfs` (saferoot's, where that pid is
    /// valid), and tells it to go on; on failure the caller kills the
    /// child (which would otherwise see the socket close and exit with a
    /// message of its own). For a handed lock: the child has exec'd (it
    /// started in the init's memory) or failed, and sent its mount
    /// namespace before, or nothing.
    ///
    /// Then the init moves into the child's locked copy of the mount
    /// namespace (`setns` through the fd the child sent, or, in place,
    /// through a pidfd of `child`, the child's pid in the init's own pid
    /// namespace). The namespace the init built the root in is then
    /// dropped here, while the program starts (a handed lock: while it
    /// runs); and the program's namespace, which the init now holds too,
    /// is not torn down when the program exits, but when the init does.
    /// Each teardown waits for an RCU grace period: this way one of them
    /// is off the path from the program's end to saferoot's. The program's
    /// copy has the same mounts, locked; whoever joins the init's mount
    /// namespace later (by its pid) gets that. Best effort: the init stays
    /// where it is if the child went away or the kernel refuses.
    pub fn finish(mut self, procfs: &Procfs, child: rustix::process::Pid) -> Result<(), CliError> {
        let joined = match &self.task {
            Task::Maps(lock) => {
                let mut pid = [0u8; 4];
                self.chan.read_exact(&mut pid).map_err(|e| {
                    fail(&format!("the program's process did not say its pid ({e})"))
                })?;
                lock.write_maps(procfs, u32::from_ne_bytes(pid))
                    .map_err(|e| fail(&e))?;
                self.chan.write_all(&[1]).map_err(|e| fail(&e))?;
                rustix::process::pidfd_open(child, rustix::process::PidfdFlags::empty()).and_then(
                    |fd| {
                        rustix::thread::move_into_thread_name_spaces(
                            fd.as_fd(),
                            rustix::thread::ThreadNameSpaceType::MOUNT,
                        )
                    },
                )
            }
            Task::Follow => match crate::fd_passing::receive(&self.chan) {
                Ok(Some((_, fds))) if !fds.is_empty() => rustix::thread::move_into_link_name_space(
                    fds[0].as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Mount),
                ),
                Ok(_) => {
                    log::debug!(
                        "the init stays in its mount namespace: the program's process sent none"
                    );
                    return Ok(());
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = joined {
            log::debug!("the init stays in its mount namespace: {e}");
        }
        Ok(())
    }
}

/// A copy of `procfs` if its instance exists (see [`Lock::HandedChild`]).
fn made(procfs: &Procfs) -> Option<Procfs> {
    procfs.is_made().then(|| procfs.clone())
}

/// The payload byte of the message that carries the program's locked
/// mount namespace to the init (`crate::fd_passing`).
const MOUNT_NAMESPACE: u8 = b'm';

/// A setup error of either side of the lock.
fn fail(e: &dyn std::fmt::Display) -> CliError {
    CliError::setup(format!("lock the sandbox's mounts: {e}"))
}
