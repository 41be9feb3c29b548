//! The sandbox's network namespace, made by saferoot while the init mounts.
//!
//! `unshare(CLONE_NEWNET)` is the dearest single call of a start (every
//! network subsystem sets up its per-namespace state: about half a
//! millisecond), and nothing in the root's assembly but a few mounts
//! (`sysfs`, network filesystems) and `net.*` sysctls depends on which
//! network namespace the caller is in. So for an init that saferoot
//! starts directly, the network namespace is made beside it while it
//! unshares the others and mounts:
//!
//! - an init forked into a new pid namespace (no user namespace): by
//!   saferoot itself, idle after the fork, which goes back to its own
//!   network namespace right after (it was in the new one for the time of
//!   a few calls, and never runs anything else there) and checks that the
//!   two differ;
//! - an init cloned into a new user namespace, which must own the network
//!   namespace: by a helper process saferoot forks once the init's maps
//!   are written, which enters the init's user namespace, makes the
//!   network namespace there and exits (saferoot could not leave that user
//!   namespace again).
//!
//! Either hands the namespace over as an nsfs fd sent over a socket pair
//! made before the fork (`SCM_RIGHTS`) as soon as it exists: the init
//! joins exactly the namespace made, whatever its maker does next. The
//! init joins it right before the first step that depends on it, and once
//! it has entered the root, before the program's process exists, at the
//! latest (see [`join_point`]). The maker then brings the loopback
//! interface up in there, as the init would have, and says so with a
//! second message (saferoot once it is back in its own namespace); the
//! init waits for that before the program's process exists
//! ([`Joiner::finish`]), and brings it up itself if the maker could not.
//! (Bringing lo up takes about a tenth of the namespace's cost; with the
//! init ready for the namespace before it comes, that time was spent
//! waiting.)
//!
//! Nothing changes for the sandbox if the namespace cannot be made there:
//! nothing is sent, the socket closes, and the init, reading end-of-file,
//! unshares the network namespace itself, as before.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use rustix::process::{Pid, PidfdFlags, WaitOptions};
use rustix::thread::{LinkNameSpaceType, ThreadNameSpaceType, UnshareFlags};
use saferoot::procfs::Procfs;
use saferoot::rootfs::policy::NsKind;
use saferoot::rootfs::{MountLock, Plan};

use crate::cpu_apart::Spread;
use crate::errors::CliError;
use crate::sys::process::{exit_immediately, fork_with, Forked, ThreadCounter};

/// saferoot's end: makes the namespace and sends it ([`Maker::make`]).
#[derive(Debug)]
pub struct Maker {
    sock: OwnedFd,
    /// saferoot's CPUs before the fork, to push the init off its own.
    spread: Option<Spread>,
}

/// The init's end: receives the namespace and joins it ([`Joiner::join`]).
#[derive(Debug)]
pub struct Joiner {
    sock: OwnedFd,
    /// saferoot's CPUs when the pair was made (right before the fork),
    /// given back once the namespace has come ([`Joiner::relax`],
    /// [`Joiner::join`]); `None` once given back.
    spread: Option<Spread>,
    /// Where [`Joiner::join`] left the init.
    state: Joined,
}

/// How far the init is with the network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joined {
    /// Not joined yet.
    No,
    /// In the namespace saferoot sent, whose loopback interface saferoot
    /// is bringing up (see [`Joiner::finish`]).
    Sent,
    /// In a namespace ready for the program: its own, or one whose
    /// loopback is up.
    Ready,
}

/// A connected pair, made before the fork; each side drops the other's end.
pub fn pair() -> Result<(Maker, Joiner), CliError> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| CliError::setup(format!("socketpair: {e}")))?;
    let spread = Spread::before_fork();
    Ok((
        Maker { sock: a, spread },
        Joiner {
            sock: b,
            spread,
            state: Joined::No,
        },
    ))
}

impl Maker {
    /// Right before the fork: keeps the init from running first on
    /// saferoot's CPU ([`Spread::hold`]); [`Maker::push_off`] undoes it,
    /// or [`Maker::fork_failed`].
    pub fn hold(&self) {
        if let Some(spread) = &self.spread {
            spread.hold();
        }
    }

    /// Undoes [`Maker::hold`] when there is no init to push.
    pub fn fork_failed(&self) {
        if let Some(spread) = &self.spread {
            spread.release();
        }
    }

    /// Right after the fork, before making the namespace: moves the init
    /// off saferoot's CPU ([`crate::cpu_apart`]), so that the two work side
    /// by side; the init gives its CPUs back once the namespace has come
    /// (or its maker has given up), before the program's process exists.
    pub fn push_off(&self, init: Pid) {
        if let Some(spread) = &self.spread {
            spread.push_off(init);
        }
    }

    /// For an init forked into a new pid namespace (no user namespace):
    /// makes a network namespace, sends it to the init, brings its
    /// loopback interface up (and says so, see [`Joiner::finish`]) and
    /// returns saferoot to the namespace it was in.
    ///
    /// Failing to make, send or bring up is not an error here: the init
    /// then makes its own namespace or brings lo up itself (and reports a
    /// failure of that). Failing to return to saferoot's own namespace
    /// is: saferoot must not go on in the sandbox's.
    pub fn make(self, procfs: &Procfs) -> Result<(), CliError> {
        if test_hook_off() {
            return Ok(());
        }
        let own = match procfs.open_namespace(None, "net") {
            Ok(f) => OwnedFd::from(f),
            Err(e) => {
                log::debug!("network namespace left to the init: {e}");
                return Ok(());
            }
        };
        test_delay();
        let mut lo_up = false;
        if let Some(made) = unshare_here(procfs) {
            if differ(&own, &made) {
                lo_up = self.send(&[made.as_fd()]) && bring_loopback_up();
            } else {
                log::debug!("network namespace left to the init: the one made is saferoot's own");
            }
        }
        rustix::thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| {
                CliError::setup(format!(
                    "setns back into saferoot's own network namespace: {e}"
                ))
            })?;
        // Said once saferoot is back: the program's process, which the
        // init makes only after this word, never shares the namespace
        // with saferoot.
        if lo_up {
            self.say_loopback_up();
        }
        Ok(())
    }

    /// For an init cloned into a new user namespace, which must own the
    /// network namespace: a helper process forked here enters the init's
    /// user namespace (`setns` on a pidfd of `init`), makes the namespace
    /// there, sends it and exits, while saferoot waits for it (saferoot has
    /// nothing else to do while the init mounts; the init's maps are
    /// written before). saferoot itself never enters the user namespace,
    /// which it could not leave.
    pub fn make_in_user_ns_of(
        self,
        init: Pid,
        procfs: &Procfs,
        counter: &ThreadCounter,
    ) -> Result<(), CliError> {
        if test_hook_off() {
            return Ok(());
        }
        let pidfd = match rustix::process::pidfd_open(init, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                log::debug!("network namespace left to the init: pidfd_open: {e}");
                return Ok(());
            }
        };
        // The helper runs on the CPU saferoot ran on before the init's
        // clone, which the init keeps off until the namespace is there (see
        // `Maker::push_off`): saferoot takes that CPU alone for the fork,
        // so that the helper starts there (a helper the kernel queued on
        // the init's CPU would take it from the init, then wait for the
        // stopper thread to move), and takes its CPUs back once the helper
        // is done.
        let pinned = self.spread.as_ref().is_some_and(Spread::pin_here);
        match fork_with(counter) {
            Ok(Forked::Child) => {
                let entered = rustix::thread::move_into_thread_name_spaces(
                    pidfd.as_fd(),
                    ThreadNameSpaceType::USER,
                );
                match entered {
                    Ok(()) => {
                        test_delay();
                        if let Some(made) = unshare_here(procfs) {
                            // The lock's user namespace too, while here
                            // (see `Joiner::join`); without it the program's
                            // process locks in place.
                            let sent = match MountLock::nested_with(procfs) {
                                Ok(lock) => self.send(&[made.as_fd(), lock.user_namespace()]),
                                Err(e) => {
                                    log::debug!("the lock is left to the program's process: {e}");
                                    self.send(&[made.as_fd()])
                                }
                            };
                            if sent && bring_loopback_up() {
                                self.say_loopback_up();
                            }
                        }
                    }
                    Err(e) => log::debug!(
                        "network namespace left to the init: setns into its user namespace: {e}"
                    ),
                }
                exit_immediately(0)
            }
            Ok(Forked::Parent(helper)) => {
                let spread = self.spread;
                drop(self);
                while let Err(Errno::INTR) =
                    rustix::process::waitpid(Some(helper), WaitOptions::empty())
                {}
                if let Some(spread) = spread.filter(|_| pinned) {
                    spread.unpin();
                }
                Ok(())
            }
            Err(e) => {
                if let Some(spread) = self.spread.filter(|_| pinned) {
                    spread.unpin();
                }
                log::debug!("network namespace left to the init: fork: {e}");
                Ok(())
            }
        }
    }

    /// Sends the network namespace (and the lock's user namespace, if
    /// any) to the init (a failure leaves the namespace to it). Whether it
    /// was sent.
    fn send(&self, fds: &[BorrowedFd<'_>]) -> bool {
        match crate::fd_passing::send(&self.sock, NAMESPACE, fds) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("network namespace left to the init: sendmsg: {e}");
                false
            }
        }
    }

    /// Tells the init that the loopback interface of the namespace sent is
    /// up ([`Joiner::finish`]). Unsaid (a failure here, or no word at all
    /// when [`bring_loopback_up`] failed), the init reads end-of-file once
    /// the maker is done and brings it up itself.
    fn say_loopback_up(&self) {
        if let Err(e) = rustix::net::send(&self.sock, LOOPBACK_UP, SendFlags::NOSIGNAL) {
            log::debug!("loopback interface left to the init: send: {e}");
        }
    }
}

/// Brings up the loopback interface of the network namespace the caller
/// is in (the one just sent); whether it did (a failure is logged, and
/// the init brings it up).
fn bring_loopback_up() -> bool {
    test_loopback_delay();
    if test_loopback_off() {
        return false;
    }
    crate::sys::process::loopback_up()
        .inspect_err(|e| log::debug!("loopback interface left to the init: bring up lo: {e}"))
        .is_ok()
}

/// The first message: the namespace (with `SCM_RIGHTS`).
const NAMESPACE: u8 = b'n';
/// The second message: its loopback interface is up.
const LOOPBACK_UP: &[u8] = b"l";

/// Moves the calling process into a new network namespace and returns it
/// as an nsfs fd; `None` (with the reason logged) if that fails.
fn unshare_here(procfs: &Procfs) -> Option<OwnedFd> {
    let step = || -> Result<OwnedFd, String> {
        saferoot::namespace::unshare(UnshareFlags::NEWNET)
            .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        procfs
            .open_namespace(None, "net")
            .map(OwnedFd::from)
            .map_err(|e| e.to_string())
    };
    step()
        .inspect_err(|e| log::debug!("network namespace left to the init: {e}"))
        .ok()
}

/// The debug-build test hook `SAFEROOT_TEST_NET_AHEAD_DELAY_MS`: saferoot
/// (or its helper) sleeps that long before making the namespace, so that
/// the init reaches the point where it needs it first and waits, and so
/// that tests can look at the init while it keeps off saferoot's CPU.
fn test_delay() {
    crate::run::test_delay(
        "SAFEROOT_TEST_NET_AHEAD_DELAY_MS",
        "the maker of the network namespace",
    );
}

/// The debug-build test hook `SAFEROOT_TEST_LOOPBACK_DELAY_MS`: the
/// maker sleeps that long after sending the namespace, before bringing its
/// loopback interface up, so that tests see the init wait for it.
fn test_loopback_delay() {
    crate::run::test_delay(
        "SAFEROOT_TEST_LOOPBACK_DELAY_MS",
        "the maker of the network namespace, before bringing lo up",
    );
}

/// The debug-build test hook `SAFEROOT_TEST_LOOPBACK=off`: the maker
/// sends the namespace but leaves its loopback interface down and says
/// nothing more, as when bringing it up fails; the init brings it up.
/// Release builds do not read it.
fn test_loopback_off() -> bool {
    test_hook_set_off(
        "SAFEROOT_TEST_LOOPBACK",
        "the loopback interface is left to the init",
    )
}

/// The debug-build test hook `SAFEROOT_TEST_NET_AHEAD=off`: saferoot
/// makes no network namespace, and the init makes its own. Release builds
/// do not read it.
fn test_hook_off() -> bool {
    test_hook_set_off(
        "SAFEROOT_TEST_NET_AHEAD",
        "the network namespace is left to the init",
    )
}

/// Whether the debug-build test hook `var` is `off` (logging `what` when
/// it is); always false in release builds.
fn test_hook_set_off(var: &str, what: &str) -> bool {
    #[cfg(debug_assertions)]
    if std::env::var_os(var).is_some_and(|v| v == "off") {
        log::debug!("test hook: {what}");
        return true;
    }
    #[cfg(not(debug_assertions))]
    let _ = (var, what);
    false
}

/// Whether two nsfs fds are different namespaces (their inode numbers, on
/// the one nsfs; an fd that cannot be read counts as the same).
fn differ(a: &OwnedFd, b: &OwnedFd) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(x), Ok(y)) => (x.st_dev, x.st_ino) != (y.st_dev, y.st_ino),
        _ => false,
    }
}

impl Joiner {
    /// The init's first step, right after the fork: gives saferoot's CPU
    /// back if it runs there before saferoot could push it
    /// ([`Maker::push_off`], [`Spread::leave_if_on_parents`]).
    pub fn start(&self) {
        if let Some(spread) = &self.spread {
            spread.leave_if_on_parents();
        }
    }

    /// Gives the init its CPUs back (see [`Maker::push_off`]) once the
    /// namespace has come (or its maker has given up: either comes after
    /// the push), so that the init is confined only while the maker runs.
    /// Called between the mounts; a cheap check of the socket.
    pub fn relax(&mut self) {
        if self.spread.is_none() {
            return;
        }
        let mut byte = [0u8; 1];
        match rustix::net::recv(&self.sock, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            _ => self.give_back(),
        }
    }

    /// Gives back the CPUs [`Maker::push_off`] took, once.
    fn give_back(&mut self) {
        if let Some(spread) = self.spread.take() {
            spread.restore();
        }
    }

    /// Joins the network namespace saferoot sends, waiting for it if it is
    /// not there yet; unshares one (and brings its loopback up) when
    /// saferoot sends none. Does nothing the second time.
    ///
    /// Returns the lock's user namespace when the helper of a cloned init
    /// made one beside the network namespace (a child of the init's user
    /// namespace mapping every id to itself: `MountLock::nested_with` in
    /// the helper), for the init to hand to the program's process instead
    /// of locking in place (see `crate::lock`).
    pub fn join(&mut self) -> Result<Option<OwnedFd>, Errno> {
        if self.state != Joined::No {
            return Ok(None);
        }
        let received = crate::fd_passing::receive(&self.sock);
        // Whatever came (end-of-file included) came after the push.
        self.give_back();
        let mut fds = match received {
            Ok(Some((_, fds))) => fds.into_iter(),
            Ok(None) | Err(_) => Vec::new().into_iter(),
        };
        match fds.next() {
            Some(ns) => {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(LinkNameSpaceType::Network),
                )?;
                log::debug!("joined the network namespace saferoot made");
                self.state = Joined::Sent;
                Ok(fds.next())
            }
            None => {
                saferoot::namespace::unshare(UnshareFlags::NEWNET)?;
                crate::sys::process::loopback_up()?;
                self.state = Joined::Ready;
                Ok(None)
            }
        }
    }

    /// Right before the program's process exists: joins the namespace if
    /// that is still to be done ([`Joiner::join`]; the lock's user
    /// namespace it may bring is returned), then waits until saferoot has
    /// brought its loopback interface up; if saferoot could not (the
    /// socket closes without saying so), brings it up here.
    pub fn finish(mut self) -> Result<Option<OwnedFd>, Errno> {
        let userns = self.join()?;
        if self.state == Joined::Sent {
            let mut byte = [0u8; 1];
            let said = loop {
                match rustix::net::recv(&self.sock, &mut byte, RecvFlags::empty()) {
                    Err(Errno::INTR) => continue,
                    r => break r,
                }
            };
            match said {
                Ok((1, _)) if byte == LOOPBACK_UP => {}
                _ => {
                    log::debug!("saferoot did not bring lo up; bringing it up here");
                    crate::sys::process::loopback_up()?;
                }
            }
        }
        Ok(userns)
    }
}

/// Where in the assembly of `plan` the init must be in the sandbox's
/// network namespace: before assembly starts (`Some(None)`) when the plan
/// relies on it (its `net.*` sysctls: assembly checks the namespace first)
/// or a mount saferoot adds depends on it; before the spec's mount `i`
/// (`Some(Some(i))`) when that is the first that depends on it; `None`
/// when nothing does (the init joins once it has entered the root, before
/// the program's process exists: `rootfs_setup::Entered::join_net`).
pub fn join_point(plan: &Plan) -> Option<Option<usize>> {
    if plan.relies_on.contains(&NsKind::Net) {
        return Some(None);
    }
    let mut first = None;
    for pm in plan
        .mounts
        .iter()
        .filter(|pm| depends_on_netns(pm.fstype()))
    {
        match pm.index {
            None => return Some(None),
            Some(i) => first = Some(first.map_or(i, |f: usize| f.min(i))),
        }
    }
    first.map(Some)
}

/// Whether mounting a filesystem of type `fstype` depends on the caller's
/// network namespace. A `sysfs` shows the network devices of the namespace
/// it is mounted from; a network filesystem connects from it. The types
/// known not to are listed; any other is taken to depend on it.
pub fn depends_on_netns(fstype: &str) -> bool {
    !matches!(
        fstype,
        "bind"
            | "symlink"
            | "cgroup"
            | "cgroup2"
            | "tmpfs"
            | "ramfs"
            | "proc"
            | "devpts"
            | "mqueue"
            | "overlay"
            | "devtmpfs"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_and_unknown_filesystems_depend_on_the_network_namespace() {
        for t in [
            "sysfs",
            "nfs",
            "nfs4",
            "cifs",
            "9p",
            "fuse.sshfs",
            "",
            "weird",
        ] {
            assert!(depends_on_netns(t), "{t}");
        }
        for t in [
            "bind", "tmpfs", "proc", "devpts", "mqueue", "cgroup", "cgroup2", "overlay",
        ] {
            assert!(!depends_on_netns(t), "{t}");
        }
    }
}
