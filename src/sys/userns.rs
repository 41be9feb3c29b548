//! A throw-away user namespace with chosen id maps, for idmapped mounts.
//!
//! `MOUNT_ATTR_IDMAP` takes an fd to a user namespace whose maps describe
//! the idmapping. To get one, a child process is made in a new user
//! namespace and parked; the parent writes its maps, opens its namespace and
//! kills it. The child runs only async-signal-safe system calls.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use rustix::io::Errno;

/// A parked child process in a new user namespace. Killed and reaped on drop.
#[derive(Debug)]
pub struct UsernsChild {
    pid: libc::pid_t,
    // Closing our end of this pipe lets the child exit.
    _release: OwnedFd,
}

impl UsernsChild {
    /// A child in a new, not yet mapped, user namespace.
    ///
    /// When the caller is dumpable (what its child inherits), the child is
    /// made by `clone3(CLONE_NEWUSER)`: it is in its namespace from its
    /// first instruction, so the caller can write the maps and open the
    /// namespace at once, without waiting for the child to be scheduled
    /// and report back (a wake-up that costs a CPU slot on a busy
    /// machine). Otherwise (an init that made itself non-dumpable) the
    /// child makes itself dumpable first and reports, as [`Self::spawn_forked`].
    pub fn spawn() -> Result<UsernsChild, Errno> {
        // SAFETY: PR_GET_DUMPABLE takes no pointer and only reads a flag of
        // the calling process.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } == 1;
        if !dumpable {
            return UsernsChild::spawn_forked();
        }
        let (release_r, release_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let lr = release_r.as_raw_fd();
        // SAFETY: clone_args is plain data; all-zero is valid (no pidfd,
        // no tid pointers, no stack: the child runs on a copy of ours).
        let mut args: linux_raw_sys::general::clone_args = unsafe { std::mem::zeroed() };
        args.flags = libc::CLONE_NEWUSER as u64;
        args.exit_signal = libc::SIGCHLD as u64;
        // SAFETY: clone3 without CLONE_VM gives the child a copy of the
        // address space, as fork does; the child makes only raw,
        // async-signal-safe system calls (read, _exit) on an fd that stays
        // open in it, and never returns into Rust code. `args` outlives the
        // call and its size is passed with it.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const linux_raw_sys::general::clone_args,
                std::mem::size_of::<linux_raw_sys::general::clone_args>(),
            )
        };
        if pid == 0 {
            // SAFETY: see above: raw system calls on a valid fd.
            unsafe {
                let mut b = 0u8;
                libc::read(lr, &mut b as *mut u8 as *mut libc::c_void, 1);
                libc::_exit(0);
            }
        }
        if pid < 0 {
            return match super::last_errno() {
                // No clone3 (before 5.3) or a filter hiding it: fork.
                libc::ENOSYS => UsernsChild::spawn_forked(),
                e => Err(Errno::from_raw_os_error(e)),
            };
        }
        drop(release_r);
        Ok(UsernsChild {
            pid: pid as libc::pid_t,
            _release: release_w,
        })
    }

    /// Forks a child that makes itself dumpable, unshares its user
    /// namespace and reports back.
    fn spawn_forked() -> Result<UsernsChild, Errno> {
        let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (release_r, release_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (rr, rw, lr) = (
            ready_r.as_raw_fd(),
            ready_w.as_raw_fd(),
            release_r.as_raw_fd(),
        );
        // SAFETY: the child only makes async-signal-safe system calls
        // (prctl, unshare, write, read, _exit) on fds that stay open in it, and
        // never returns into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Errno::from_raw_os_error(super::last_errno()));
        }
        if pid == 0 {
            // SAFETY: see above; these are raw system calls on valid fds.
            unsafe {
                // A parent that made itself non-dumpable (a pid namespace's
                // init does) would pass that on, and then nobody below the
                // caller's original user namespace could open this child's
                // /proc/PID/ns/user or write its maps.
                libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
                let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    1
                } else {
                    0
                };
                libc::write(rw, &ok as *const u8 as *const libc::c_void, 1);
                let mut b = 0u8;
                libc::read(lr, &mut b as *mut u8 as *mut libc::c_void, 1);
                libc::_exit(0);
            }
        }
        drop(ready_w);
        drop(release_r);
        let child = UsernsChild {
            pid,
            _release: release_w,
        };
        let mut b = [0u8; 1];
        let n = rustix::io::read(&ready_r, &mut b)?;
        let _ = rr;
        if n != 1 || b[0] != 1 {
            return Err(Errno::PERM);
        }
        Ok(child)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }
}

impl Drop for UsernsChild {
    fn drop(&mut self) {
        // SAFETY: kill and waitpid on our own child's pid, which is not
        // reaped anywhere else, so it cannot have been reused.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}
