//! How the program's process locks the sandbox's mounts (with a user
//! namespace): it ends up in a copy of the mount namespace owned by a child
//! user namespace, where the kernel locks every mount and flag
//! (`saferoot::rootfs::MountLock`).
//!
//! Two ways there:
//!
//! - [`Lock::Made`]: the lock's user namespace was made before the sandbox's
//!   pid namespace existed (by the namespace child, whose helper must not
//!   take a pid in it); the program's process joins it right before exec.
//! - In place, when saferoot cloned the init straight into its namespaces
//!   and no process outside the pid namespace takes part in the setup: the
//!   program's process unshares the user namespace itself and the init,
//!   its parent, writes the maps ([`saferoot::rootfs::InPlaceLock`]). No
//!   helper process, no extra namespace fd. The two talk over a socket
//!   pair: the child sends its pid (as saferoot's procfs shows it, 4 bytes),
//!   the init answers with one byte once the maps are written, or closes
//!   its end on failure.

use std::os::fd::OwnedFd;

use saferoot::procfs::Procfs;
use saferoot::rootfs::{InPlaceLock, MountLock};

use crate::errors::CliError;

/// The lock that the process about to exec the program applies last.
#[derive(Debug)]
pub enum Lock {
    /// A user namespace made beforehand: joined, then the mount namespace
    /// unshared.
    Made(MountLock),
    /// The init's half of an in-place lock, before it forks the program:
    /// the identity maps it will write ([`Lock::channel`], then
    /// [`Channel::into_child`] and [`Channel::into_parent`], make the two
    /// sides).
    InPlace(InPlaceLock),
    /// The program's half of an in-place lock (see the module
    /// documentation): the procfs its pid is read from, and its end of the
    /// socket pair.
    Child(Procfs, OwnedFd),
}

/// The init's half of an in-place lock, once the program's process is
/// forked: the maps and the init's end of the socket pair.
#[derive(Debug)]
pub struct Parent {
    lock: InPlaceLock,
    chan: OwnedFd,
}

/// The socket pair of an in-place lock, made before the fork.
#[derive(Debug)]
pub struct Channel {
    lock: InPlaceLock,
    parent: OwnedFd,
    child: OwnedFd,
}

impl Lock {
    /// For an in-place lock: the socket pair the two sides talk over, to
    /// make before the fork. `None` for any other lock.
    pub fn channel(&self) -> Result<Option<Channel>, CliError> {
        let Lock::InPlace(lock) = self else {
            return Ok(None);
        };
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (parent, child) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| CliError::setup(format!("lock the sandbox's mounts: socketpair: {e}")))?;
        Ok(Some(Channel {
            lock: lock.clone(),
            parent,
            child,
        }))
    }

    /// Locks the calling process's mounts: joins the made namespace, or
    /// does the child's half of an in-place lock. The process must be
    /// single-threaded.
    pub fn apply(self) -> Result<(), CliError> {
        let fail =
            |e: &dyn std::fmt::Display| CliError::setup(format!("lock the sandbox's mounts: {e}"));
        match self {
            Lock::Made(lock) => lock.apply().map_err(|e| fail(&e)),
            Lock::InPlace(_) => Err(fail(&"no parent to write the maps of an in-place lock")),
            Lock::Child(procfs, chan) => {
                let pid = InPlaceLock::enter(&procfs).map_err(|e| fail(&e))?;
                drop(procfs);
                write_all(&chan, &pid.to_ne_bytes()).map_err(|e| fail(&e))?;
                let mut go = [0u8; 1];
                // The init kills this process when it cannot write the
                // maps, and says why; end-of-file means it is gone.
                read_exact(&chan, &mut go)
                    .map_err(|_| fail(&"the init did not write the user namespace maps"))?;
                InPlaceLock::finish().map_err(|e| fail(&e))
            }
        }
    }
}

impl Channel {
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
            lock: self.lock,
            chan: self.parent,
        }
    }
}

impl Parent {
    /// The init's half: waits for the child's pid, writes its maps through
    /// `procfs` (saferoot's, where that pid is valid), and tells it to go
    /// on. On failure the caller kills the child (which would otherwise
    /// see the socket close and exit with a message of its own).
    pub fn write_maps(self, procfs: &Procfs) -> Result<(), CliError> {
        let fail =
            |e: &dyn std::fmt::Display| CliError::setup(format!("lock the sandbox's mounts: {e}"));
        let mut pid = [0u8; 4];
        read_exact(&self.chan, &mut pid)
            .map_err(|e| fail(&format!("the program's process did not say its pid ({e})")))?;
        self.lock
            .write_maps(procfs, u32::from_ne_bytes(pid))
            .map_err(|e| fail(&e))?;
        write_all(&self.chan, &[1]).map_err(|e| fail(&e))
    }
}

fn read_exact(fd: &OwnedFd, mut buf: &mut [u8]) -> Result<(), rustix::io::Errno> {
    while !buf.is_empty() {
        match rustix::io::read(fd, &mut *buf) {
            Ok(0) => return Err(rustix::io::Errno::PIPE),
            Ok(n) => buf = &mut buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> Result<(), rustix::io::Errno> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
