//! Waiting for a child while passing signals on to it.
//!
//! Each process of the sandbox's chain (saferoot, the namespace child, the
//! init of a new pid namespace) blocks the forwarded signals and SIGCHLD
//! before it forks, then takes them one by one with `sigwaitinfo`: a
//! forwarded signal is sent on to its child, SIGCHLD means the child may
//! have ended. Nothing runs in a signal handler.
//!
//! A signal the kernel sent (`SI_KERNEL`: a terminal's ^C or ^\) went to the
//! whole foreground process group, so the child got it too; it is passed on
//! only when the child is in another session (`--new-session`).

use std::os::fd::{AsFd, OwnedFd};

use crate::sys::process::{wait_signal, ReceivedSignal, SignalSet, SI_KERNEL};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

/// The signals passed on to the sandbox.
pub const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The forwarded signals, SIGCHLD, SIGIO and the setup pipe's signal
/// ([`crate::sys::process::setup_signal`], a realtime one): what the chain
/// blocks and waits for. The setup pipe's signal from the kernel is how
/// saferoot learns that the pipe reached end-of-file ([`Watch`]); SIGIO,
/// and the setup pipe's signal sent by anyone else, are forwarded like the
/// others (blocked, neither ends the process by its default action).
pub fn handled() -> SignalSet {
    let mut all = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    all.push(libc::SIGIO);
    all.push(crate::sys::process::setup_signal());
    SignalSet::of(&all)
}

/// The exit status a shell would report for `status`: the exit code, or
/// 128 + the signal that killed it.
pub fn status_code(status: WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        crate::errors::failure_code(crate::errors::EXIT_SETUP)
    }
}

fn forward(to: Pid, s: ReceivedSignal, child_in_our_group: bool) {
    if s.code == SI_KERNEL && child_in_our_group {
        return;
    }
    if let Some(sig) = Signal::from_named_raw(s.signo) {
        log::debug!("forwarding signal {} to {}", s.signo, to.as_raw_nonzero());
        let _ = rustix::process::kill_process(to, sig);
    }
}

/// The signals that end a sandbox still being set up: saferoot kills it
/// (there is no program yet to pass them to) and exits with 128 + N.
pub const END_SETUP: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What saferoot itself watches besides its child, for [`supervise_top`].
#[derive(Debug)]
pub struct Watch {
    /// The read end of a pipe whose write ends only the sandbox's
    /// processes hold, close-on-exec, up to the exec of the program: while
    /// it has not reached end-of-file, the sandbox is being set up.
    pub setup: OwnedFd,
    /// With `--die-with-parent`: saferoot's parent when it started.
    /// saferoot's own parent-death signal is SIGTERM (catchable, so that it
    /// can clean up); a signal that arrives once the parent has changed
    /// means the parent died.
    pub parent: Option<Option<Pid>>,
    /// Dropped when the setup pipe reaches end-of-file (the program was
    /// exec'd, or setup failed), announced by the setup signal when `setup` was set
    /// up for it ([`crate::sys::process::signal_on_readable`]), else when
    /// the sandbox ends. For what is cheaper to release while the program
    /// runs than before it starts or after it ends: saferoot's private
    /// procfs, whose unmount waits for an RCU grace period, is released
    /// here by its last holder once every process of the chain has closed
    /// its copy. When the chain says so first ([`MOUNT_RELEASED`]), the
    /// mount is released then and the setup pipe stops signalling:
    /// nothing is left for the exec to release, and its signal would wake
    /// saferoot on the CPU where the program starts.
    pub until_setup_ends: Option<crate::sys::process::ThreadCounter>,
    /// With `Sandbox::exit_with_program`: the read end of the pipe on
    /// which the init writes the program's exit status (four bytes, native
    /// order) just before it ends, set up to raise the setup signal
    /// ([`crate::sys::process::signal_on_readable`]). The status is
    /// returned as soon as it is there; the init is not waited for.
    pub status: Option<OwnedFd>,
}

/// The program's exit status, if the init has written it to `status`.
fn reported_status(status: &OwnedFd) -> Option<i32> {
    let mut b = [0u8; 4];
    loop {
        match rustix::io::read(status, &mut b) {
            Err(Errno::INTR) => continue,
            Ok(4) => return Some(i32::from_ne_bytes(b)),
            _ => return None,
        }
    }
}

/// The byte saferoot's child (the init it started itself) writes on the
/// setup pipe once it has given up its copy of the fd that keeps the
/// private procfs mounted ([`saferoot::procfs::Procfs::release_mount`]).
/// saferoot then gives up its own, the last: the unmount waits for an RCU
/// grace period, and saferoot is idle while the init sets up.
pub const MOUNT_RELEASED: u8 = b'm';

/// Whether the sandbox is still being set up: the setup pipe (non-blocking)
/// has writers left. A [`MOUNT_RELEASED`] byte read on the way makes
/// saferoot give up its hold on the procfs mount (`until_setup_ends`).
fn setting_up(w: &mut Watch) -> bool {
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(&w.setup, &mut b) {
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return true,
            Ok(1) if b[0] == MOUNT_RELEASED => {
                if let Some(held) = w.until_setup_ends.take() {
                    if held.procfs().release_mount() {
                        log::debug!("the chain let go of the procfs mount: unmounted");
                    }
                    drop(held);
                    // Nothing else waits for the end of setup: no signal
                    // at the program's exec, which would wake saferoot on
                    // the CPU the program starts on. The pipe is still
                    // read, without signals, when a signal asks whether
                    // setup goes on.
                    if let Err(e) = crate::sys::process::stop_signals(w.setup.as_fd()) {
                        log::debug!("setup pipe: {e}");
                    }
                }
            }
            // End-of-file: every process that held a write end has
            // exec'd the program or died. (Nothing else is ever written.)
            _ => return false,
        }
    }
}

impl Watch {
    /// Reads what the chain wrote on the setup pipe, while anything waits
    /// for the end of setup: a [`MOUNT_RELEASED`] byte releases the procfs
    /// mount, the end of setup what waited for it. Called at each signal
    /// from the pipe, and once right after saferoot asked for them
    /// ([`crate::sys::process::signal_on_readable`] signals new data and
    /// end-of-file, not what was there already).
    pub fn catch_up(&mut self) {
        if self.until_setup_ends.is_some() && !setting_up(self) {
            log::debug!("setup ended: releasing what waited for it");
            self.until_setup_ends = None;
        }
    }
}

/// Waits for `child` to end, forwarding signals to it; returns its exit
/// status as [`status_code`] computes it. The signals of [`handled`] must
/// be blocked.
pub fn supervise(child: Pid, child_in_our_group: bool) -> i32 {
    supervise_top(child, child_in_our_group, None)
}

/// Whether `s` is the kernel's news of the setup pipe, for
/// [`supervise_top`] (which then releases what waited for its end).
fn setup_pipe_news(watch: Option<&mut Watch>, s: &ReceivedSignal) -> bool {
    let Some(w) = watch else { return false };
    if s.signo != crate::sys::process::setup_signal()
        || !crate::sys::process::POLL_CODES.contains(&s.code)
    {
        return false;
    }
    w.catch_up();
    true
}

/// [`supervise`] for saferoot itself, with `watch`:
///
/// - SIGINT, SIGTERM or SIGHUP while the sandbox is still being set up
///   kill it (SIGKILL to the namespace child; the init of a pid namespace
///   has that child's death as its parent-death signal, and the pid
///   namespace ends with its init) and return 128 + N;
/// - once saferoot's parent has died (`--die-with-parent`), the sandbox is
///   killed with SIGKILL, and its status returned.
pub fn supervise_top(child: Pid, child_in_our_group: bool, mut watch: Option<&mut Watch>) -> i32 {
    let set = handled();
    loop {
        let s = match wait_signal(&set) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("sigwaitinfo: {e}");
                return kill_and_reap(child);
            }
        };
        if setup_pipe_news(watch.as_deref_mut(), &s) {
            if let Some(code) = watch
                .as_deref()
                .and_then(|w| w.status.as_ref())
                .and_then(reported_status)
            {
                log::debug!("the init reported the program's status {code}");
                return code;
            }
            continue;
        }
        if s.signo != libc::SIGCHLD {
            if let Some(w) = watch.as_deref_mut() {
                if let Some(parent) = w.parent {
                    if rustix::process::getppid() != parent {
                        log::info!(
                            "saferoot's parent died (--die-with-parent): killing the sandbox"
                        );
                        return kill_and_reap(child);
                    }
                }
                if END_SETUP.contains(&s.signo) && setting_up(w) {
                    log::info!("signal {} while the sandbox is set up: ending it", s.signo);
                    kill_and_reap(child);
                    return 128 + s.signo;
                }
            }
            forward(child, s, child_in_our_group);
            continue;
        }
        match rustix::process::waitpid(Some(child), WaitOptions::NOHANG) {
            Ok(Some((_, st))) => return status_code(st),
            Ok(None) => {}
            Err(Errno::CHILD) => return crate::errors::failure_code(crate::errors::EXIT_SETUP),
            Err(e) => log::warn!("waitpid: {e}"),
        }
    }
}

/// As pid 1 of a new pid namespace: reaps every process that ends (orphans
/// are re-parented here), forwards signals to `main`, and returns `main`'s
/// exit status once it ends. Returning ends the namespace: the kernel kills
/// every process left in it.
pub fn init_loop(main: Pid) -> i32 {
    let set = handled();
    loop {
        let s = match wait_signal(&set) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("sigwaitinfo: {e}");
                return kill_and_reap(main);
            }
        };
        if s.signo != libc::SIGCHLD {
            forward(main, s, true);
            continue;
        }
        loop {
            match rustix::process::waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((pid, st))) if pid == main => return status_code(st),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// Kills `child` and returns its status once it is gone.
pub fn kill_and_reap(child: Pid) -> i32 {
    let _ = rustix::process::kill_process(child, Signal::KILL);
    match rustix::process::waitpid(Some(child), WaitOptions::empty()) {
        Ok(Some((_, st))) => status_code(st),
        _ => crate::errors::failure_code(crate::errors::EXIT_SETUP),
    }
}
