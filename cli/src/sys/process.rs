//! Process creation and signal plumbing for the `saferoot` command.
//!
//! The command forks a child that unshares namespaces, assembles a root in
//! them and execs a program, while the parent forwards signals and waits.
//! This module holds the few calls that needs and rustix does not offer as
//! safe functions: `fork`, blocking signals and waiting for them
//! synchronously (`sigprocmask`, `sigwaitinfo`), `sethostname`, `_exit`,
//! and bringing up the loopback interface of a fresh network namespace.
//!
//! [`fork`] is safe to call because it refuses to fork a process that has
//! more than one thread: with one thread, every lock in the child is in the
//! state the forking thread left it, so the child may run ordinary Rust code
//! (allocate, print, use the library) as the parent would.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::process::Pid;

use super::last_errno;

/// What [`fork`] returned, in the process it returned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// This is the new child process.
    Child,
    /// This is the parent; the child has this pid.
    Parent(Pid),
}

/// Tells whether the calling process has one thread, before a fork.
///
/// The kernel answers first: `unshare(CLONE_THREAD)` succeeds, changing
/// nothing, exactly when the thread group has no other thread, and fails
/// with `EINVAL` otherwise ([`single_threaded`]). Only where that call is
/// refused (a seccomp filter) are the threads counted, in
/// `/proc/self/task` of a private procfs (saferoot's own, checked by
/// pathrs to be a real procfs).
///
/// The procfs is given when the counter is made: a process that is about
/// to change its root (and may have no `/proc` afterwards) makes the
/// counter first and forks with [`fork_with`] later. `/proc/self` is
/// right in a procfs of the caller's pid namespace or of an ancestor, so
/// one counter made by saferoot serves every process of the sandbox's
/// chain, the init of a new pid namespace included. The counter never
/// makes the instance of a [`saferoot::procfs::Procfs::deferred`] procfs
/// where the kernel answers.
#[derive(Debug, Clone)]
pub struct ThreadCounter {
    procfs: saferoot::procfs::Procfs,
}

impl ThreadCounter {
    /// A counter on a new private procfs instance (not pathrs's cached
    /// handle, which forked children would inherit).
    #[cfg(test)]
    pub fn new() -> Result<ThreadCounter, Errno> {
        let procfs = saferoot::procfs::Procfs::new().map_err(|e| error_errno(&e))?;
        Ok(ThreadCounter { procfs })
    }

    /// A counter on `procfs`.
    pub fn with(procfs: saferoot::procfs::Procfs) -> ThreadCounter {
        ThreadCounter { procfs }
    }

    /// The procfs the counter reads.
    pub fn procfs(&self) -> &saferoot::procfs::Procfs {
        &self.procfs
    }

    /// The number of threads of the calling process
    /// ([`saferoot::procfs::Procfs::thread_count`]).
    pub fn count(&self) -> Result<usize, Errno> {
        self.procfs.thread_count().map_err(|e| error_errno(&e))
    }

    /// Whether the calling process has exactly one thread: the kernel's
    /// answer ([`single_threaded`]) where it gives one, the count
    /// otherwise.
    pub fn is_single(&self) -> Result<bool, Errno> {
        match single_threaded() {
            Some(one) => Ok(one),
            None => Ok(self.count()? == 1),
        }
    }
}

/// Whether the calling process is single-threaded, as the kernel sees it:
/// `unshare(CLONE_THREAD)` checks that the thread group is empty and,
/// when it is, has nothing to do (`CLONE_THREAD` alone implies no other
/// flag, and a process cannot leave its own thread group). `Some(false)`
/// on `EINVAL` (another thread exists); `None` when the call is refused
/// for another reason (a seccomp filter), so that the caller counts.
pub fn single_threaded() -> Option<bool> {
    let thread =
        rustix::thread::UnshareFlags::from_bits_retain(linux_raw_sys::general::CLONE_THREAD);
    match saferoot::namespace::unshare(thread) {
        Ok(()) => Some(true),
        Err(Errno::INVAL) => Some(false),
        Err(_) => None,
    }
}

/// The number of threads of the calling process.
#[cfg(test)]
pub fn thread_count() -> Result<usize, Errno> {
    ThreadCounter::new()?.count()
}

fn error_errno(e: &saferoot::Error) -> Errno {
    match e.errno() {
        0 => Errno::NOENT,
        n => Errno::from_raw_os_error(n),
    }
}

/// `fork()`: a new process running on a copy of the caller; see
/// [`fork_with`].
#[cfg(test)]
pub fn fork() -> Result<Forked, Errno> {
    fork_with(&ThreadCounter::new()?)
}

/// `fork()`, counting threads with `counter`.
///
/// Refuses with `EBUSY` when the calling process has more than one thread.
/// A helper thread that was just joined may still be listed for a moment
/// after it has finished, so the count is retried for up to 200 ms before
/// giving up.
pub fn fork_with(counter: &ThreadCounter) -> Result<Forked, Errno> {
    wait_single_threaded(counter)?;
    fork_single_threaded()
}

/// Waits (up to 200 ms) until the process has one thread; `EBUSY` if it
/// keeps more.
fn wait_single_threaded(counter: &ThreadCounter) -> Result<(), Errno> {
    let mut tries = 0;
    loop {
        match counter.is_single()? {
            true => break,
            false if tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            false => return Err(Errno::BUSY),
        }
    }
    Ok(())
}

/// `fork()` in a process that [`wait_single_threaded`] found to have one
/// thread (only this thread could have started another since).
fn fork_single_threaded() -> Result<Forked, Errno> {
    // SAFETY: the process has exactly one thread (checked above, and only
    // this thread could start another), so the child's copy of the address
    // space has no lock held by a thread that does not exist in it. The
    // child is therefore free to run any code the parent could.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => Ok(Forked::Child),
        p if p > 0 => Ok(Forked::Parent(Pid::from_raw(p).ok_or(Errno::INVAL)?)),
        _ => Err(Errno::from_raw_os_error(last_errno())),
    }
}

/// The stack a [`spawn_sharing_memory`] child runs on: far more than the
/// program's last steps take (privileges, the report, the exec), mapped
/// for the call only; a page below it is left inaccessible, so that an
/// overflow faults instead of writing into other memory.
const SHARED_CHILD_STACK: usize = 256 * 1024;

/// Starts a child process that runs `child` in the caller's memory until
/// it execs, as `vfork(2)` does (`clone` with `CLONE_VM | CLONE_VFORK`, on
/// a stack of its own), and returns its pid once it has exec'd or ended.
/// The caller is suspended meanwhile. `child` returns only when its exec
/// failed: the child then ends with the status it returns (or, should it
/// panic, with `panic_status`).
///
/// Compared with a fork, nothing of the caller's address space is copied
/// or write-protected, the child takes no copy-on-write faults, and its
/// exec drops a reference to the caller's address space instead of
/// tearing a copy down.
///
/// What the child may do: the caller is suspended, so the child is the
/// only thread in the memory it shares, and it may allocate and run
/// ordinary code; what it allocates stays behind, unreclaimed. Changes it
/// makes to memory the caller can see, the caller finds when it goes on,
/// as if it had made them itself; so `child` must leave everything it
/// borrows as it found it (borrow, clone what it must own; never move out
/// of the caller's values or end the caller's copy of one). File
/// descriptors, namespaces and credentials are the child's own, as after a
/// fork: closing its copy of an fd leaves the caller's open. It must not
/// exec or end while it holds a lock in shared memory (the caller would
/// find it held); the exec itself runs outside any.
///
/// Refuses with `EBUSY` when the calling process has more than one thread
/// (another thread would run beside the child in the same memory). All
/// signals are blocked across the call; the child starts with all of them
/// blocked and sets its own mask before it execs.
pub fn spawn_sharing_memory(
    counter: &ThreadCounter,
    panic_status: i32,
    child: &mut dyn FnMut() -> i32,
) -> Result<Pid, Errno> {
    wait_single_threaded(counter)?;
    let stack = ChildStack::map()?;
    /// What the trampoline gets: the child's code and its status on panic.
    struct Run<'a> {
        child: &'a mut dyn FnMut() -> i32,
        panic_status: i32,
    }
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `Run` below, alive in the suspended
        // caller's frame for as long as the child runs in this memory.
        let run = unsafe { &mut *arg.cast::<Run<'_>>() };
        let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (run.child)()))
            .unwrap_or(run.panic_status);
        exit_immediately(status)
    }
    let mut run = Run {
        child,
        panic_status,
    };
    let all = SignalSet::full();
    let before = block_signals(&all)?;
    // SAFETY: the process has one thread (checked above; only this thread
    // could start another), and CLONE_VFORK suspends it until the child
    // has exec'd or ended, so the child is alone in the memory it shares
    // with us, and nothing it leaves there is used meanwhile. It runs
    // `trampoline` on `stack`, a mapping of its own that outlives the
    // child (unmapped only after this call returns), 16-byte aligned at
    // the top as the ABI wants. `run` lives in this frame, which stays
    // put until the call returns. The child never returns into this
    // frame: `trampoline` ends with `_exit`. No CLONE_FILES, CLONE_FS or
    // CLONE_SIGHAND: its fds, root, working directory and signal
    // dispositions are copies, as after a fork; every signal is blocked
    // in it until it sets its own mask.
    let pid = unsafe {
        libc::clone(
            trampoline,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut run as *mut Run<'_>).cast::<libc::c_void>(),
        )
    };
    let err = last_errno();
    if let Err(e) = set_signal_mask(&before) {
        log::debug!("signal mask after the child's start: {e}");
    }
    drop(stack);
    match pid {
        p if p > 0 => Pid::from_raw(p).ok_or(Errno::INVAL),
        _ => Err(Errno::from_raw_os_error(err)),
    }
}

/// The mapping a [`spawn_sharing_memory`] child runs on, with a guard
/// page below it.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    fn map() -> Result<ChildStack, Errno> {
        let page = 4096;
        let len = SHARED_CHILD_STACK + page;
        // SAFETY: a fresh anonymous private mapping at an address the
        // kernel chooses; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::from_raw_os_error(last_errno()));
        }
        let stack = ChildStack { base, len };
        // SAFETY: the lowest page of the mapping just made, which nothing
        // uses: made inaccessible as the guard.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(Errno::from_raw_os_error(last_errno()));
        }
        Ok(stack)
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is a multiple of
        // the page size long: an address within the same allocation.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, used by no one once the child
        // has exec'd or ended (the caller returns from clone only then).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// `clone3()` with the namespace flags `namespaces` (`CLONE_NEWUSER`,
/// `CLONE_NEWPID`, `CLONE_NEWNS`, ...; nothing else) and `SIGCHLD` as the
/// exit signal: a fork whose child starts in new namespaces, counting
/// threads with `counter` first. The child of a new pid namespace is its
/// pid 1; with `CLONE_NEWUSER` the other new namespaces are owned by the
/// new user namespace, which no `unshare` after a `fork` can give a pid
/// namespace without a process in between.
///
/// `CLONE_NEWPID` is required: the child must be the first process of
/// a pid namespace of its own, where no thread of the caller can be named
/// (see the safety comment in the body).
///
/// Refuses with `EBUSY` when the calling process has more than one
/// thread, and with `EINVAL` for a flag that does not make a namespace or
/// without `CLONE_NEWPID`.
pub fn clone_into_namespaces(counter: &ThreadCounter, namespaces: u64) -> Result<Forked, Errno> {
    use linux_raw_sys::general as g;
    let allowed = u64::from(
        g::CLONE_NEWUSER
            | g::CLONE_NEWPID
            | g::CLONE_NEWNS
            | g::CLONE_NEWIPC
            | g::CLONE_NEWUTS
            | g::CLONE_NEWNET
            | g::CLONE_NEWCGROUP,
    );
    if namespaces & !allowed != 0 || namespaces & u64::from(g::CLONE_NEWPID) == 0 {
        return Err(Errno::INVAL);
    }
    wait_single_threaded(counter)?;
    let args = g::clone_args {
        flags: namespaces,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: u64::from(g::SIGCHLD),
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    // SAFETY: as for `fork_single_threaded`: the process has exactly one
    // thread, so the child's copy of the address space holds no lock of a
    // thread that is not there. The flags make only namespaces (no
    // CLONE_VM, no CLONE_THREAD, no shared files or signal handlers), and
    // `args` is a complete `clone_args` of the size passed, so the child
    // is a copy of the caller exactly as after fork(2). The C library's
    // fork bookkeeping does not run: it has no atfork handler of ours to
    // call and no other thread's state to reclaim. What it would refresh
    // is the thread id it may have cached: glibc (2.34+) asks the kernel
    // (gettid) where it signals by it (raise, abort, pthread_kill), but
    // musl, which the shipped command links (cli/dist.sh), signals the id
    // it cached when the thread started, the caller's. The child is pid 1
    // of a new pid namespace (CLONE_NEWPID is required above), where that
    // number is never the caller: at worst an abort() in the child sends
    // its SIGABRT to a process of its own namespace, which dies with the
    // child anyway, before musl's abort kills the child by other means.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const g::clone_args,
            std::mem::size_of::<g::clone_args>(),
        )
    };
    match pid {
        0 => Ok(Forked::Child),
        p if p > 0 => Ok(Forked::Parent(
            Pid::from_raw(i32::try_from(p).map_err(|_| Errno::INVAL)?).ok_or(Errno::INVAL)?,
        )),
        _ => Err(Errno::from_raw_os_error(last_errno())),
    }
}

/// Whether `clone3` can be called: the kernel has it (5.3+) and no seccomp
/// filter refuses it. Some container runtimes' default filters answer
/// `ENOSYS` for `clone3` (so that the C library falls back to `clone`);
/// there saferoot keeps the namespace child instead of cloning the init.
pub fn clone3_available() -> bool {
    // SAFETY: a size below the first version of `clone_args` is refused
    // with EINVAL before the kernel reads anything at the (null) pointer;
    // no process is made.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    r < 0 && last_errno() == libc::EINVAL
}

/// The calling thread's scheduling policy, `SCHED_RESET_ON_FORK` included
/// (`sched_getscheduler(0)` by system call number: musl's wrapper answers
/// `ENOSYS` without asking the kernel).
pub fn own_sched_policy() -> Result<i32, Errno> {
    // SAFETY: sched_getscheduler takes a pid (0: the caller) and reads or
    // writes no memory.
    let r = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    i32::try_from(r).map_err(|_| Errno::INVAL)
}

/// Sets the calling thread's scheduling policy to `policy`, one of the
/// fair ones (priority 0); the nice value stays as it is. By system call
/// number, as [`own_sched_policy`].
pub fn set_own_sched_policy(policy: i32) -> Result<(), Errno> {
    // The kernel's `struct sched_param` is one int, the priority (the C
    // libraries' own may be larger).
    let priority: libc::c_int = 0;
    // SAFETY: the kernel reads one int from the pointer, which points at
    // `priority`, alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            policy,
            &priority as *const libc::c_int,
        )
    };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    Ok(())
}

/// Ends the calling process at once with `code` (`_exit`): no atexit
/// handlers, no stdio flushing, no destructors. For a forked child that
/// must not run anything its parent registered.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit takes any int and never returns; it touches no memory
    // of the process.
    unsafe { libc::_exit(code) }
}

/// Marks every fd from `first` up close-on-exec (`close_range(first, ~0,
/// CLOSE_RANGE_CLOEXEC)`, Linux 5.11): whatever the process inherited
/// there is gone once it execs, whether or not it knows the numbers.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on fds
    // of this process; it closes nothing and touches no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        Err(Errno::from_raw_os_error(last_errno()))
    } else {
        Ok(())
    }
}

/// Clears close-on-exec on the fds `first..first + count` that are open,
/// so that the program exec'd next inherits them. Numbers that are not
/// open are left alone.
pub fn inherit_across_exec(first: i32, count: u32) -> Result<(), Errno> {
    for fd in (first..).take(count as usize) {
        // SAFETY: F_GETFD/F_SETFD read and write the fd flags of a number
        // in this process's table; a number that is not open answers EBADF
        // and nothing changes. No fd is created, closed or dereferenced.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            match last_errno() {
                libc::EBADF => continue,
                e => return Err(Errno::from_raw_os_error(e)),
            }
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(Errno::from_raw_os_error(last_errno()));
        }
    }
    Ok(())
}

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl std::fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<i32> = (1..libc::SIGRTMAX())
            .filter(|&s| self.contains(s))
            .collect();
        f.debug_tuple("SignalSet").field(&members).finish()
    }
}

impl SignalSet {
    /// The empty set.
    pub fn empty() -> SignalSet {
        // SAFETY: sigemptyset initialises the whole sigset_t it is given;
        // the zeroed value is a valid sigset_t to begin with.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            SignalSet(set)
        }
    }

    /// Every signal (the C library keeps its own internal ones out).
    pub fn full() -> SignalSet {
        // SAFETY: sigfillset initialises the whole sigset_t it is given;
        // the zeroed value is a valid sigset_t to begin with.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            SignalSet(set)
        }
    }

    /// The set of `signals`. Numbers that are not signals are left out.
    pub fn of(signals: &[i32]) -> SignalSet {
        let mut s = SignalSet::empty();
        for &sig in signals {
            // SAFETY: `s.0` is an initialised sigset_t; sigaddset checks
            // the number and fails (without writing) on invalid ones.
            unsafe {
                libc::sigaddset(&mut s.0, sig);
            }
        }
        s
    }

    /// Whether `sig` is in the set.
    pub fn contains(&self, sig: i32) -> bool {
        // SAFETY: reads an initialised sigset_t.
        unsafe { libc::sigismember(&self.0, sig) == 1 }
    }
}

fn sigmask(how: libc::c_int, set: &SignalSet) -> Result<SignalSet, Errno> {
    let mut old = SignalSet::empty();
    // SAFETY: both pointers are to valid sigset_t values that outlive the
    // call. The mask is per thread; the command calls this while it has a
    // single thread.
    let r = unsafe { libc::pthread_sigmask(how, &set.0, &mut old.0) };
    if r != 0 {
        return Err(Errno::from_raw_os_error(r));
    }
    Ok(old)
}

/// Blocks `set` for the calling thread (and the processes it forks from
/// now on); returns the previous mask.
pub fn block_signals(set: &SignalSet) -> Result<SignalSet, Errno> {
    sigmask(libc::SIG_BLOCK, set)
}

/// Replaces the calling thread's signal mask with `set`.
pub fn set_signal_mask(set: &SignalSet) -> Result<(), Errno> {
    sigmask(libc::SIG_SETMASK, set).map(|_| ())
}

/// The signal the kernel sends for the setup pipe ([`signal_on_readable`]):
/// the first realtime signal. Realtime signals queue, so this one never
/// merges with a SIGIO (or anything else) someone sends saferoot at the
/// same moment, as a second standard SIGIO would while one is pending.
pub fn setup_signal() -> i32 {
    libc::SIGRTMIN()
}

/// Asks the kernel to send the calling process [`setup_signal`] when `fd`
/// (the read end of a pipe) becomes readable, which includes its last
/// writer going away: `O_ASYNC`, with the calling process as owner and the
/// signal named with `F_SETSIG` (so that it carries a `POLL_*` code,
/// [`POLL_CODES`]).
pub fn signal_on_readable(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let raw = fd.as_raw_fd();
    let fcntl = |cmd: libc::c_int, arg: libc::c_int| -> Result<libc::c_int, Errno> {
        // SAFETY: fcntl on a valid fd with integer arguments only; no
        // pointer is passed.
        let r = unsafe { libc::fcntl(raw, cmd, arg) };
        if r < 0 {
            Err(Errno::from_raw_os_error(last_errno()))
        } else {
            Ok(r)
        }
    };
    fcntl(
        libc::F_SETOWN,
        rustix::process::getpid().as_raw_nonzero().get(),
    )?;
    fcntl(
        linux_raw_sys::general::F_SETSIG as libc::c_int,
        setup_signal(),
    )?;
    let flags = fcntl(libc::F_GETFL, 0)?;
    fcntl(libc::F_SETFL, flags | libc::O_ASYNC)?;
    Ok(())
}

/// Undoes [`signal_on_readable`]: no more signals from `fd`.
pub fn stop_signals(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags - rustix::fs::OFlags::ASYNC)
}

/// The `si_code`s of a signal the kernel sent for an `O_ASYNC` file
/// (`POLL_IN` to `POLL_HUP`); one sent with `kill(2)` has another.
pub const POLL_CODES: std::ops::RangeInclusive<i32> = 1..=6;

/// `si_code` of a signal the kernel sent (a terminal's `^C`, for instance).
pub const SI_KERNEL: i32 = 0x80;

/// A signal taken from the queue by [`wait_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedSignal {
    /// The signal number.
    pub signo: i32,
    /// Where it came from (`si_code`): `SI_USER` (0, from `kill(2)`), [`SI_KERNEL`], ...
    pub code: i32,
    /// The sending process, for signals sent with `kill(2)`.
    pub pid: i32,
}

/// Waits until one of the signals in `set` (which must be blocked) is
/// pending and takes it from the queue (`sigwaitinfo`). Interruptions by
/// other signals are retried.
pub fn wait_signal(set: &SignalSet) -> Result<ReceivedSignal, Errno> {
    loop {
        // SAFETY: `info` is written by the kernel before it is read; the
        // set pointer is valid for the call.
        let (r, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::sigwaitinfo(&set.0, &mut info);
            (r, info)
        };
        if r < 0 {
            let e = last_errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(Errno::from_raw_os_error(e));
        }
        // SAFETY: si_pid is valid to read for every signal (it is zero
        // where the sender did not fill it in).
        let pid = unsafe { info.si_pid() };
        return Ok(ReceivedSignal {
            signo: r,
            code: info.si_code,
            pid,
        });
    }
}

/// `sethostname(name)` in the calling process's UTS namespace.
pub fn sethostname(name: &str) -> Result<(), Errno> {
    let bytes = name.as_bytes();
    if bytes.contains(&0) {
        return Err(Errno::INVAL);
    }
    // SAFETY: the pointer and length describe `bytes`, which outlives the
    // call; the kernel copies at most `len` bytes.
    let r = unsafe { libc::sethostname(bytes.as_ptr().cast(), bytes.len()) };
    if r < 0 {
        Err(Errno::from_raw_os_error(last_errno()))
    } else {
        Ok(())
    }
}

/// Sets the `IFF_UP` flag of the loopback interface `lo` of the calling
/// process's network namespace (a new network namespace starts with it
/// down), with the `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: socket() returns a new fd that nothing else owns (or -1).
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    // SAFETY: `raw` is a fresh fd owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero ifreq is a valid value (empty name, zero union).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into
    // the ifreq it is given, which is valid and large enough.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    // SAFETY: after SIOCGIFFLAGS the flags member of the union is the one
    // written, so reading and updating it is reading initialised memory.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the name and flags from the valid ifreq.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_sets() {
        let s = SignalSet::of(&[libc::SIGINT, libc::SIGTERM]);
        assert!(s.contains(libc::SIGINT));
        assert!(s.contains(libc::SIGTERM));
        assert!(!s.contains(libc::SIGHUP));
        assert!(!SignalSet::empty().contains(libc::SIGINT));
        assert!(format!("{s:?}").contains("15"));
    }

    #[test]
    fn counts_threads_and_refuses_to_fork_with_more_than_one() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        // This thread and the helper, at least.
        assert!(thread_count().unwrap() >= 2);
        // With the helper alive, fork must refuse rather than copy a
        // process whose other threads may hold locks.
        assert_eq!(fork(), Err(Errno::BUSY));
        // Nor may a child run in memory another thread uses meanwhile.
        assert_eq!(
            spawn_sharing_memory(&ThreadCounter::new().unwrap(), 1, &mut || 0).map(|_| ()),
            Err(Errno::BUSY)
        );
        let counter = ThreadCounter::new().unwrap();
        let flags = linux_raw_sys::general::CLONE_NEWNS | linux_raw_sys::general::CLONE_NEWPID;
        assert_eq!(
            clone_into_namespaces(&counter, u64::from(flags)),
            Err(Errno::BUSY)
        );
        drop(tx);
        t.join().unwrap();
    }

    /// The kernel's answer follows the thread group: no in this test
    /// process (the harness runs tests on threads of its own), yes in a
    /// child forked from it, which has the forking thread only. The child
    /// makes the one system call and exits: nothing else is safe in a
    /// child forked from a process with other threads.
    #[test]
    fn the_kernel_says_whether_the_process_is_single_threaded() {
        assert_eq!(single_threaded(), Some(false), "the harness has threads");
        // SAFETY: the child only makes raw system calls (unshare, _exit):
        // no lock another thread may hold is taken in it.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match single_threaded() {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            };
            exit_immediately(code);
        }
        let (_, st) =
            rustix::process::waitpid(Pid::from_raw(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        assert_eq!(
            st.exit_status(),
            Some(0),
            "1: another thread seen, 2: refused"
        );
    }

    #[test]
    fn clone3_is_there_on_every_kernel_saferoot_supports() {
        // Linux 5.12 and later have it; the test machines filter nothing.
        assert!(clone3_available());
    }

    #[test]
    fn clone_into_namespaces_takes_namespace_flags_only() {
        let counter = ThreadCounter::new().unwrap();
        // A shared address space, files or thread group are not a fork:
        // refused before the thread count is even read.
        for flag in [
            linux_raw_sys::general::CLONE_VM,
            linux_raw_sys::general::CLONE_FILES,
            linux_raw_sys::general::CLONE_THREAD,
        ] {
            assert_eq!(
                clone_into_namespaces(
                    &counter,
                    u64::from(flag | linux_raw_sys::general::CLONE_NEWPID)
                ),
                Err(Errno::INVAL)
            );
        }
        // Namespaces without a pid namespace of the child's own: refused
        // too, before any process is made.
        assert_eq!(
            clone_into_namespaces(&counter, u64::from(linux_raw_sys::general::CLONE_NEWNS)),
            Err(Errno::INVAL)
        );
    }

    /// Runs `body` in a child forked from this (multi-threaded) test
    /// process, where it is the only thread, and returns its exit status.
    /// `body` must not allocate or take a lock: another thread of the
    /// harness may have held one at the fork. What it needs is made
    /// before.
    fn in_single_threaded_child(body: &mut dyn FnMut() -> i32) -> i32 {
        // SAFETY: the child runs `body`, which makes system calls and
        // touches memory made before the fork only (see above), then
        // `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            exit_immediately(body());
        }
        let (_, st) =
            rustix::process::waitpid(Pid::from_raw(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        st.exit_status().expect("the test's child was killed")
    }

    /// The child writes into the caller's memory, and the caller goes on
    /// only once the child has ended: a value stored after a pause is
    /// there when the call returns. The child's exit status is what it
    /// returned; its copy of an fd is its own (closing it leaves the
    /// caller's open).
    #[test_log::test]
    fn a_child_sharing_memory_runs_alone_and_its_writes_are_seen() {
        let counter = ThreadCounter::new().unwrap();
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let status = in_single_threaded_child(&mut || {
            let seen = std::sync::atomic::AtomicU32::new(0);
            let spawned = spawn_sharing_memory(&counter, 99, &mut || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                seen.store(42, std::sync::atomic::Ordering::Relaxed);
                // The child's copy only.
                // SAFETY: closes this child's copy of the pipe's read end,
                // which nothing in the child uses afterwards; the Rust
                // value (the caller's) is not touched.
                unsafe { libc::close(r.as_raw_fd()) };
                7
            });
            let Ok(child) = spawned else { return 10 };
            if seen.load(std::sync::atomic::Ordering::Relaxed) != 42 {
                return 11;
            }
            match rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty()) {
                Ok(Some((_, st))) if st.exit_status() == Some(7) => {}
                _ => return 12,
            }
            // Still open here: a write to the pipe finds its reader.
            match rustix::io::write(&w, b"x") {
                Ok(1) => 0,
                _ => 13,
            }
        });
        assert_eq!(
            status, 0,
            "10: refused, 11: the write was not seen on return, 12: wrong exit status, \
             13: the child's close reached the caller"
        );
    }

    /// The call returns at the child's exec, while the program runs: here
    /// the program waits for end-of-file on its stdin, which comes only
    /// once the caller, back, closes the pipe's write end.
    #[test_log::test]
    fn a_child_sharing_memory_lets_the_caller_go_on_at_its_exec() {
        let counter = ThreadCounter::new().unwrap();
        let cat = std::ffi::CString::new("/bin/cat").unwrap();
        let argv = [cat.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        let status = in_single_threaded_child(&mut || {
            // Made here, so that no other process holds the write end.
            let Ok((r, w)) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) else {
                return 13;
            };
            let spawned = spawn_sharing_memory(&counter, 99, &mut || {
                // SAFETY: stdin becomes the pipe's read end; then exec
                // with a null-terminated argv and envp that outlive the
                // call.
                unsafe {
                    libc::dup2(r.as_raw_fd(), 0);
                    libc::execve(cat.as_ptr(), argv.as_ptr(), envp.as_ptr());
                }
                20
            });
            let Ok(child) = spawned else { return 10 };
            // Back while cat waits: the end-of-file it waits for is ours
            // to give.
            drop(w);
            match rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty()) {
                Ok(Some((_, st))) => st.exit_status().unwrap_or(12),
                _ => 12,
            }
        });
        assert_eq!(
            status, 0,
            "10: refused, 13: no pipe, 20: exec failed, 12: cat failed"
        );
    }
}
