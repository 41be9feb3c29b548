//! `saferoot run`: the process model.
//!
//! ```text
//! saferoot (caller's namespaces)         blocks signals, forks, writes the
//!  │                                     user namespace maps, forwards
//!  │                                     signals, waits, exits with the
//!  │                                     sandbox's status
//!  └─ child                              [setsid] [unshare user → wait for
//!      │                                 maps] unshare mount+pid+ipc+...
//!      │  without a pid namespace:       builds the root, enters it, execs
//!      │                                 the program (it becomes the program)
//!      └─ init, pid 1 (pid namespace)    builds the root (its /proc belongs
//!          │                             to the new pid namespace), enters,
//!          │                             forks, then reaps and forwards
//!          └─ program, pid 2             execs the program
//! ```
//!
//! With a pid namespace and no user namespace (an OCI bundle run as root,
//! say) there is no namespace child: saferoot unshares `CLONE_NEWPID`
//! (which only its children feel) and forks the init directly, which
//! unshares the other namespaces itself:
//!
//! ```text
//! saferoot ── init, pid 1 (unshares mount+ipc+...) ── program, pid 2
//! ```
//!
//! With a pid namespace and a new user namespace there is none either:
//! saferoot clones the init into all of them at once (`clone3`), writes its
//! maps and OOM score, and tells it to go on; the program's process locks
//! its mounts in place, its lock's maps written by the init
//! ([`crate::lock`]):
//!
//! ```text
//! saferoot ── init, pid 1 (cloned into user+pid+mount+...) ── program, pid 2
//! ```
//!
//! A bundle's process is pid 1 itself (`Sandbox::as_pid_1`, unless
//! `--init`): the init execs it instead of forking it.
//!
//! One private procfs serves the whole chain: saferoot makes it first and
//! every process uses its inherited copy (for counting threads before a
//! fork, namespace checks, sysctls, id maps); the init drops it once the
//! program is forked.
//!
//! saferoot is single-threaded up to the first fork, and each fork is made
//! by a process with one thread (`crate::sys::process::fork` checks), so
//! every process of the chain may run ordinary Rust code. The library's
//! helper threads (used while assembling) are joined before the init forks
//! the program.
//!
//! Failures inside the sandbox are printed by the process that hit them,
//! which then exits with status 125 (126/127 for exec); the chain passes
//! that status up. Everything mounted lives in the child's mount namespace
//! and goes away with it; the only thing saferoot makes on the host is the
//! empty scratch directory of a fresh root, removed when the sandbox ends.
//!
//! Until the program is exec'd, every process of the chain holds a
//! close-on-exec write end of the setup pipe; saferoot holds the read end
//! and so knows whether setup is still under way. SIGINT, SIGTERM or SIGHUP
//! then end the setup (the namespace child is killed, and the init with
//! it) instead of waiting, blocked, for a program that does not exist yet.
//! With `--die-with-parent`, saferoot's own parent-death signal is SIGTERM,
//! so it can kill the sandbox and remove the scratch directory itself.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

use crate::report::Reporter;
use saferoot::rootfs::MountLock;
use std::path::PathBuf;

use crate::sys::process::{
    block_signals, clone_into_namespaces, exit_immediately, fork_with, spawn_sharing_memory,
    Forked, ThreadCounter,
};
use rustix::process::{Pid, Signal};
use saferoot::procfs::Procfs;

use crate::errors::{CliError, Escaped};
use crate::lock::{Channel, Lock};
use crate::namespaces::write_id_maps;
use crate::relay;
use crate::sandbox::{RootKind, Sandbox};

/// An empty private directory on the host, the mount point of a fresh
/// root inside the sandbox's mount namespace. Removed on drop.
struct ScratchDir {
    path: PathBuf,
}

/// Where scratch directories go: `$TMPDIR` when it is set, otherwise
/// `/dev/shm` when that is a tmpfs, otherwise `/tmp`.
///
/// A directory made and removed on every run costs little on a tmpfs and a
/// lot on a disk filesystem: on ext4 (`/tmp` of the development VM) a
/// `mkdir` of a new name after a recent `rmdir` scans for recently deleted
/// inodes, and the pair took a median of 3.9 ms in a loop, more than
/// bubblewrap's whole start-up.
fn scratch_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    const TMPFS_MAGIC: rustix::fs::FsWord = 0x0102_1994;
    let shm = std::path::Path::new("/dev/shm");
    let on_tmpfs = rustix::fs::statfs(shm).is_ok_and(|st| st.f_type == TMPFS_MAGIC);
    if on_tmpfs && rustix::fs::access(shm, rustix::fs::Access::WRITE_OK).is_ok() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

impl ScratchDir {
    fn new() -> Result<ScratchDir, CliError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = scratch_base();
        for n in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!("saferoot-run.{}.{nanos}.{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(CliError::setup(format!(
                        "create a scratch directory in {}: {e}",
                        base.escaped()
                    )))
                }
            }
        }
        Err(CliError::setup("cannot find a free scratch directory name"))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.path) {
            log::warn!("remove {}: {e}", self.path.escaped());
        }
    }
}

/// The two pipes that let the child wait until its user namespace maps
/// are written.
struct Sync {
    ready_r: OwnedFd,
    ready_w: OwnedFd,
    go_r: OwnedFd,
    go_w: OwnedFd,
}

impl Sync {
    fn new() -> Result<Sync, CliError> {
        let p = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| CliError::setup(format!("pipe: {e}")))
        };
        let (ready_r, ready_w) = p()?;
        let (go_r, go_w) = p()?;
        Ok(Sync {
            ready_r,
            ready_w,
            go_r,
            go_w,
        })
    }
}

fn read_byte(fd: &OwnedFd) -> bool {
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(fd, &mut b) {
            Ok(1) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            _ => return false,
        }
    }
}

fn write_byte(fd: &OwnedFd) -> bool {
    matches!(rustix::io::write(fd, &[1]), Ok(1))
}

/// Runs the sandbox; returns the exit status for saferoot.
pub fn run(mut sb: Sandbox) -> Result<i32, CliError> {
    if !sb.extras.inherit_fds {
        crate::fds::seal_inherited(sb.preserve_fds)?;
    }
    // Everything that can be refused is refused before any process or
    // namespace exists: the spec here, when its rootfs path is final (a
    // fresh root's is known once its scratch directory exists, below).
    let scratch_root = matches!(sb.root, RootKind::Tmpfs | RootKind::Bind { .. });
    if !scratch_root {
        plan_spec(&sb)?;
    }
    sb.strategy
        .resolve()
        .map_err(|e| CliError::setup(format!("--strategy {}: {e}", sb.strategy.name())))?;
    if !sb.ignored.is_empty() {
        eprintln!(
            "saferoot: not applied (saferoot is not a full OCI runtime): {}",
            sb.ignored.join(", ")
        );
    }

    block_signals(&relay::handled()).map_err(|e| CliError::setup(format!("sigprocmask: {e}")))?;
    // One private procfs for the run, made here and inherited by every
    // process of the chain: the namespace child and the init write id
    // maps and sysctls through it, and saferoot writes the init's maps
    // (lookups by pid only where the pid namespace is this one's: see
    // `Procfs`). `counter` holds the only reference, and each process
    // moves it on or drops it, so that the fd is closed where the procfs
    // is no longer needed: the init closes it once the program is forked,
    // and holds nothing of the host while the sandbox runs.
    //
    // Without a user or pid namespace nothing of the chain looks anything
    // up by pid, and often nothing needs a procfs at all: threads are
    // counted by the kernel (`ThreadCounter`), the new mount namespace is
    // recognised by mount id (`root_mount_id`). The procfs is then
    // deferred: made by the first process that uses it (for an OOM score,
    // a sysctl, a report), and not at all otherwise, which saves making a
    // superblock and, when its last reference goes, an RCU grace period.
    let counter = ThreadCounter::with(
        if sb.namespaces.user
            || sb.namespaces.pid
            || sb.extras.pidns_fd.is_some()
            || sb.extras.userns_fd.is_some()
        {
            Procfs::new().map_err(|e| CliError::setup(format!("open a private procfs: {e}")))?
        } else {
            Procfs::deferred()
        },
    );
    let me = rustix::process::getpid();
    let mut parent = None;
    if sb.die_with_parent {
        // saferoot's own parent-death signal is SIGTERM, which it takes
        // like the others (it is blocked): it then kills the sandbox with
        // SIGKILL and removes the scratch directory. The sandbox's
        // processes have SIGKILL as theirs, so a SIGKILL to saferoot
        // itself still takes them along.
        let p = rustix::process::getppid();
        rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
            .map_err(|e| CliError::setup(format!("--die-with-parent: prctl: {e}")))?;
        if rustix::process::getppid() != p {
            return Err(CliError::setup(
                "--die-with-parent: the parent is already gone",
            ));
        }
        parent = Some(p);
    }
    let scratch = match sb.root {
        RootKind::Tmpfs | RootKind::Bind { .. } => {
            let s = ScratchDir::new()?;
            sb.spec.rootfs = s.path.clone();
            Some(s)
        }
        _ => None,
    };
    if scratch_root {
        // (On an error the scratch directory is removed as it drops.)
        plan_spec(&sb)?;
    }
    let sync = if sb.namespaces.user {
        Some(Sync::new()?)
    } else {
        None
    };
    let (setup_r, setup_w) = setup_pipe(sb.preserve_fds)?;
    let (mut listener, reporter) = if sb.extras.reports() {
        let (l, r) =
            crate::report::pipe().map_err(|e| CliError::setup(format!("report pipe: {e}")))?;
        (Some(l), Some(r))
    } else {
        (None, None)
    };
    if let Some(fd) = &sb.extras.userns_fd {
        // As bubblewrap: join the given user namespace before anything is
        // made, so that every namespace made next is owned by it.
        rustix::thread::move_into_link_name_space(
            fd.fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::User),
        )
        .map_err(|e| {
            CliError::setup(if e == rustix::io::Errno::INVAL {
                "Joining the specified user namespace failed, it might not be a descendant \
                 of the current user namespace."
                    .to_string()
            } else {
                format!("Joining specified user namespace failed: {e}")
            })
        })?;
    }
    // With a new pid namespace and no user namespace, the first process
    // forked is the init itself: unshare(CLONE_NEWPID) puts saferoot's
    // children into the new namespace and leaves saferoot where it is, and
    // the init makes the other namespaces for itself. No namespace child
    // stands between them (one process, one fork and one wake-up fewer at
    // each end). With a user namespace (made by the namespace child after
    // the fork, so that saferoot can write its maps) the pid namespace must
    // be owned by it, and with --pidns the new one must be made inside the
    // joined one: those keep the namespace child.
    let direct_init = sb.namespaces.pid
        && !sb.namespaces.user
        && sb.extras.pidns_fd.is_none()
        && sb.extras.userns_fd.is_none();
    // With a new user namespace and a new pid namespace, saferoot clones
    // the init straight into all of them (`clone3`): the pid namespace is
    // then owned by the new user namespace with no process in between,
    // saferoot writes the maps of the init itself, and the program's
    // process locks the mounts in place, its maps written by the init
    // (`crate::lock`), so no helper takes a pid. Not when a minimal mount
    // namespace must be entered first (with the caller's privileges), a
    // pid namespace joined, or when the program is pid 1 (no init is left
    // to write the lock's maps), nor where a seccomp filter refuses
    // `clone3`: those keep the namespace child.
    let cloned_init = sb.namespaces.user
        && sb.namespaces.pid
        && !sb.as_pid_1
        && sb.mount_ns.is_none()
        && sb.extras.pidns_fd.is_none()
        && sb.extras.userns_fd.is_none()
        && crate::sys::process::clone3_available();
    // Either way, saferoot's child is the init itself.
    let child_is_init = direct_init || cloned_init;
    let host_uid = rustix::process::getuid().as_raw();
    let mut alive = None;
    let mut mnt_before = 0;
    if child_is_init {
        // The init learns whether saferoot is still there through `alive`
        // (saferoot holds the write end until the sandbox has ended).
        alive = Some(
            rustix::pipe::pipe_with(
                rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
            )
            .map_err(|e| CliError::setup(format!("pipe: {e}")))?,
        );
        mnt_before = root_mount_id()?;
    }
    // With an init saferoot started itself, and bubblewrap's way of ending
    // (`Sandbox::exit_with_program`): the init writes the program's exit
    // status here before it ends, and saferoot returns on it.
    let status = if child_is_init && sb.exit_with_program {
        Some(
            rustix::pipe::pipe_with(
                rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
            )
            .map_err(|e| CliError::setup(format!("pipe: {e}")))?,
        )
    } else {
        None
    };
    // An init started directly gets its network namespace from saferoot,
    // made while the init mounts (`crate::net_ahead`): an init forked into
    // the pid namespace makes the other namespaces itself, an init cloned
    // into its user namespace is cloned into the others.
    let net_ahead = if child_is_init && sb.namespaces.net {
        Some(crate::net_ahead::pair()?)
    } else {
        None
    };
    if direct_init {
        saferoot::namespace::unshare(rustix::thread::UnshareFlags::NEWPID)
            .map_err(|e| CliError::setup(format!("unshare(CLONE_NEWPID): {e}")))?;
    }
    if let Some((maker, _)) = &net_ahead {
        maker.hold();
    }
    let forked = if cloned_init {
        let mut flags = sb.namespaces.unshare_flags() | rustix::thread::UnshareFlags::NEWUSER;
        if net_ahead.is_some() {
            flags -= rustix::thread::UnshareFlags::NEWNET;
        }
        clone_into_namespaces(&counter, u64::from(flags.bits()))
    } else {
        fork_with(&counter)
    };
    let child = match forked {
        Ok(Forked::Child) if child_is_init => {
            // First: off saferoot's CPU if the kernel ran this process
            // there before saferoot could push it (`crate::cpu_apart`).
            if let Some((_, joiner)) = &net_ahead {
                joiner.start();
            }
            drop(setup_r);
            drop(listener);
            // The init of a cloned user namespace waits for its maps.
            let go = sync.map(|s| {
                drop((s.ready_r, s.ready_w, s.go_w));
                s.go_r
            });
            let Some((alive_r, alive_w)) = alive else {
                exit_immediately(crate::errors::failure_code(crate::errors::EXIT_SETUP))
            };
            drop(alive_w);
            let direct = Direct {
                mnt_before,
                net: net_ahead.map(|(maker, joiner)| {
                    drop(maker);
                    joiner
                }),
                cloned: go.map(|go| (go, host_uid)),
                status: status.map(|(r, w)| {
                    drop(r);
                    w
                }),
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                init_main(&sb, None, alive_r, setup_w, reporter, counter, Some(direct))
            }));
            exit_immediately(
                outcome.unwrap_or_else(|_| crate::errors::failure_code(crate::errors::EXIT_SETUP)),
            )
        }
        Ok(Forked::Child) => {
            // The child keeps its ends of the pipes only, so that it sees
            // end-of-file if saferoot goes away.
            let ends = sync.map(|s| {
                drop((s.ready_r, s.go_w));
                (s.ready_w, s.go_r)
            });
            drop(setup_r);
            drop(listener);
            // Never returns: the child execs the program or exits.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child_main(&sb, ends, me, setup_w, reporter, counter)
            }));
            exit_immediately(match outcome {
                Ok(Err(e)) => {
                    crate::errors::print_error(&e);
                    e.code
                }
                Ok(Ok(never)) => match never {},
                Err(_) => crate::errors::failure_code(crate::errors::EXIT_SETUP),
            })
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            if let Some((maker, _)) = &net_ahead {
                maker.fork_failed();
            }
            return Err(if cloned_init {
                CliError::setup(format!("clone3({}): {e}", sb.namespaces.names().join(", ")))
            } else {
                CliError::setup(format!("fork: {e}"))
            });
        }
    };
    let net_maker = net_ahead.map(|(maker, joiner)| {
        drop(joiner);
        maker
    });
    let net_maker = match net_maker {
        Some(maker) if direct_init => {
            // The init mounts on another CPU while the namespace is made.
            maker.push_off(child);
            if let Err(e) = maker.make(counter.procfs()) {
                relay::kill_and_reap(child);
                return Err(e);
            }
            None
        }
        // A cloned init's is made once its maps are written (below).
        other => other,
    };
    if cloned_init {
        // Lowering the score needs CAP_SYS_RESOURCE in the initial user
        // namespace, which the init has left: saferoot sets it for the
        // init, before the init goes on (the program inherits it).
        if let Err(e) =
            crate::privileges::apply_oom_score_adj(&sb.security, counter.procfs(), Some(child))
        {
            relay::kill_and_reap(child);
            return Err(e);
        }
    }
    drop(setup_w);
    drop(reporter);
    let status = status.and_then(|(r, w)| {
        drop(w);
        match crate::sys::process::signal_on_readable(r.as_fd()) {
            Ok(()) => Some(r),
            Err(e) => {
                log::debug!("no signal from the status pipe ({e}): waiting for the init");
                None
            }
        }
    });
    // The write end of `alive` stays open until the sandbox has ended.
    let alive_w = alive.map(|(r, w)| {
        drop(r);
        w
    });
    let sync = sync.map(|s| {
        drop((s.ready_w, s.go_r));
        (s.ready_r, s.go_w)
    });
    // The namespace child says when it is in its new user namespace; a
    // cloned init is in it from the start.
    let in_userns = |ready_r: &OwnedFd| cloned_init || read_byte(ready_r);
    if let (Some((ready_r, go_w)), Some(block)) = (&sync, &sb.extras.userns_block_fd) {
        // --userns-block-fd: the caller writes the maps. It learns the
        // child's pid from the info document, then writes to the fd.
        if in_userns(ready_r) {
            crate::report::write_info(
                child,
                &crate::report::namespace_ids(child, &sb.namespaces),
                sb.extras.info_fd.as_ref(),
                sb.extras.json_status_fd.as_ref(),
            );
            read_byte(&block.fd);
            write_byte(go_w);
        }
    } else if let (Some((ready_r, go_w)), Some(maps)) = (&sync, &sb.id_maps) {
        // Wait until the child is in its new user namespace.
        if in_userns(ready_r) {
            if let Err(e) = write_id_maps(child, maps, counter.procfs()) {
                relay::kill_and_reap(child);
                return Err(CliError::setup(format!(
                    "user namespace maps ({}): {e}",
                    if matches!(sb.root, RootKind::Bundle(_)) {
                        "linux.uidMappings/gidMappings"
                    } else {
                        "--unshare-user --uid/--gid"
                    }
                )));
            }
            write_byte(go_w);
        }
    }
    drop(sync);
    if let Some(maker) = net_maker {
        // Pushed only now: first the maps, which the init, if it runs on
        // the other CPU already, waits for; queued here, it could not run
        // before saferoot sleeps or pushes it anyway.
        maker.push_off(child);
        if let Err(e) = maker.make_in_user_ns_of(child, counter.procfs(), &counter) {
            relay::kill_and_reap(child);
            return Err(e);
        }
    }
    if let Some(l) = &mut listener {
        // Until the sandbox is set up (or gone).
        l.read(true);
        if l.ready && sb.extras.userns_block_fd.is_none() {
            crate::report::write_info(
                l.init.unwrap_or(child),
                &l.namespaces,
                sb.extras.info_fd.as_ref(),
                sb.extras.json_status_fd.as_ref(),
            );
        }
    }
    // saferoot has no more use for its procfs (the maps are written). The
    // processes of the chain hold copies until they exec the program or
    // fork it; whoever closes last unmounts it, which waits for an RCU
    // grace period. saferoot keeps its copy until the setup pipe tells it
    // (a realtime signal at end-of-file) that the program was exec'd, so
    // that the last close is its own and runs while the program does,
    // rather than in the chain before the program starts or in saferoot
    // after it ends.
    // A deferred procfs that saferoot never used is nothing to hold (the
    // children made their own, if any): no wake-up at the exec then.
    // (A test hook widens the window in which the chain writes on the
    // setup pipe before saferoot asks for signals from it.)
    test_delay(
        "SAFEROOT_TEST_WATCH_DELAY_MS",
        "saferoot, before it watches the setup pipe,",
    );
    let until_setup_ends = if !counter.procfs().is_made() {
        drop(counter);
        None
    } else {
        match crate::sys::process::signal_on_readable(setup_r.as_fd()) {
            Ok(()) => Some(counter),
            Err(e) => {
                log::debug!("no signal from the setup pipe ({e}): procfs released now");
                drop(counter);
                None
            }
        }
    };
    let mut watch = relay::Watch {
        setup: setup_r,
        parent,
        until_setup_ends,
        status,
    };
    // What the chain wrote before the signal was asked for sends none.
    watch.catch_up();
    // The namespace child stays in this session when the init makes the
    // new one (with a pid namespace); an init forked or cloned directly
    // makes it itself.
    let child_in_our_group = if child_is_init {
        !sb.new_session
    } else {
        !sb.new_session || sb.namespaces.pid || sb.extras.pidns_fd.is_some()
    };
    let code = relay::supervise_top(child, child_in_our_group, Some(&mut watch));
    drop(alive_w);
    if let (Some(l), Some(status)) = (&mut listener, &sb.extras.json_status_fd) {
        l.read(false);
        if l.exec && !l.exec_failed {
            crate::report::write_exit(status, code);
        }
    }
    // Every way out of here removes the scratch directory: a signal during
    // setup or the parent's death end `supervise_top` like the sandbox's
    // own end does.
    drop(scratch);
    // saferoot exits with `code` right after this (both callers do): the
    // sandbox's description, thousands of allocations for a bundle, is
    // not freed one by one on the way out, and the kernel closes its fds
    // as the process ends. (Freeing it came after the program had ended,
    // before the exit status could reach the caller.)
    std::mem::forget(sb);
    Ok(code)
}

/// Checks and plans `sb.spec` ([`checked_plan`]) and keeps the plan in
/// `sb.plan` for the process that assembles the root
/// (`rootfs_setup::setup`, after the fork).
fn plan_spec(sb: &Sandbox) -> Result<(), CliError> {
    let plan = checked_plan(sb)?;
    *sb.plan.borrow_mut() = Some(plan);
    Ok(())
}

/// The plan of `sb.spec` ([`saferoot::rootfs::plan`]). A refused spec is
/// a setup error for a bundle and a usage error for a command line.
pub fn checked_plan(sb: &Sandbox) -> Result<saferoot::rootfs::Plan, CliError> {
    saferoot::rootfs::plan(&sb.spec).map_err(|e| {
        let msg = sb.explain(&e);
        if matches!(sb.root, RootKind::Bundle(_)) {
            CliError::setup(msg)
        } else {
            CliError::usage(msg)
        }
    })
}

/// The setup pipe of [`relay::Watch`]: non-blocking, close-on-exec, and
/// numbered above the fds `--preserve-fds` passes on (whose close-on-exec
/// flag is cleared right before exec), so that the program never inherits
/// the write end.
fn setup_pipe(preserve_fds: u32) -> Result<(OwnedFd, OwnedFd), CliError> {
    use rustix::pipe::PipeFlags;
    let fail = |e: rustix::io::Errno| CliError::setup(format!("setup pipe: {e}"));
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).map_err(fail)?;
    let above = 3u32.saturating_add(preserve_fds);
    let w = if (rustix::fd::AsRawFd::as_raw_fd(&w) as u32) < above {
        rustix::io::fcntl_dupfd_cloexec(&w, above as i32).map_err(fail)?
    } else {
        w
    };
    Ok((r, w))
}

/// The debug-build test hook `SAFEROOT_TEST_SETUP_DELAY_MS`: the sandbox's
/// setup sleeps that long before assembling the root, so tests can signal
/// saferoot while setup is under way. Release builds do not read it.
pub fn test_setup_delay() {
    test_delay("SAFEROOT_TEST_SETUP_DELAY_MS", "setup");
}

/// Debug builds sleep for the milliseconds the environment variable `var`
/// gives (a test hook that widens a window between two steps, `what`
/// naming the step that waits). Release builds do not read it.
pub fn test_delay(var: &str, what: &str) {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
        log::debug!("test hook: {what} sleeps {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    #[cfg(not(debug_assertions))]
    let _ = (var, what);
}

/// The namespace child. Returns only on failure.
///
/// `setup_w` is the write end of the setup pipe (see [`relay::Watch`]): it
/// is held, close-on-exec, by every process of the chain until the program
/// is exec'd.
fn child_main(
    sb: &Sandbox,
    sync: Option<(OwnedFd, OwnedFd)>,
    parent: Pid,
    setup_w: OwnedFd,
    reporter: Option<Reporter>,
    counter: ThreadCounter,
) -> Result<Infallible, CliError> {
    let procfs = counter.procfs();
    if sb.die_with_parent {
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(|e| CliError::setup(format!("--die-with-parent: prctl: {e}")))?;
        if rustix::process::getppid() != Some(parent) {
            exit_immediately(crate::errors::failure_code(crate::errors::EXIT_SETUP));
        }
    }
    let new_pid_ns = sb.namespaces.pid || sb.extras.pidns_fd.is_some();
    if sb.new_session && !new_pid_ns {
        rustix::process::setsid()
            .map_err(|e| CliError::setup(format!("--new-session: setsid: {e}")))?;
    }
    // Inherited by the init and the program. Before the user namespace:
    // lowering the score needs CAP_SYS_RESOURCE in the initial one.
    crate::privileges::apply_oom_score_adj(&sb.security, procfs, None)?;
    if let Some(ns) = &sb.mount_ns {
        // Before the user namespace: entering the minimal namespace needs
        // the caller's privileges over it.
        crate::host_view::enter(sb, ns)?;
    }
    if let Some((ready_w, go_r)) = sync {
        // Our uid as the caller's namespace sees it (inside the new one,
        // getuid reports the mapped or overflow id).
        let host_uid = rustix::process::getuid().as_raw();
        saferoot::namespace::unshare(rustix::thread::UnshareFlags::NEWUSER)
            .map_err(|e| CliError::setup(format!("unshare(CLONE_NEWUSER): {e}")))?;
        if !write_byte(&ready_w) || !read_byte(&go_r) {
            // The parent failed and says why.
            exit_immediately(crate::errors::failure_code(crate::errors::EXIT_SETUP));
        }
        if sb.extras.userns_block_fd.is_none() {
            become_namespace_root(sb, host_uid)?;
        }
    }
    disable_userns(sb, procfs)?;
    // Made here, before the new pid namespace exists: its helper process
    // would otherwise take a pid there (its pid 1, even), and the program
    // would not be pid 2 as with bubblewrap.
    let lock = if sb.namespaces.user {
        Some(Lock::Made(MountLock::nested_with(procfs).map_err(|e| {
            CliError::setup(format!("user namespace for locking the mounts: {e}"))
        })?))
    } else {
        None
    };
    if let Some(fd) = &sb.extras.pidns_fd {
        // The processes forked next start in this pid namespace.
        rustix::thread::move_into_link_name_space(
            fd.fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::ProcessID),
        )
        .map_err(|e| CliError::setup(format!("Setting pidns failed: {e}")))?;
        if sb.namespaces.pid {
            // A new pid namespace below that one: the kernel makes it a
            // child of the caller's own active pid namespace only, so one
            // process in the joined namespace does the unshare.
            match fork_with(&counter)
                .map_err(|e| CliError::setup(format!("fork into the pid namespace: {e}")))?
            {
                Forked::Child => {}
                Forked::Parent(next) => {
                    drop((setup_w, reporter, counter));
                    exit_immediately(relay::supervise(next, true));
                }
            }
        }
    }
    let before = root_mount_id()?;
    let flags = sb.namespaces.unshare_flags();
    saferoot::namespace::unshare(flags).map_err(|e| {
        CliError::setup(format!(
            "unshare({}): {e}",
            sb.namespaces.names().join(", ")
        ))
    })?;
    if root_mount_id()? == before {
        return Err(CliError::setup(
            "unshare(CLONE_NEWNS) left the mount namespace unchanged",
        ));
    }
    if !new_pid_ns && !sb.extras.needs_holder() {
        let entered = crate::rootfs_setup::setup(sb, lock, procfs, None)?;
        // setup_w closes on exec.
        let e = crate::exec::exec(sb, &entered, reporter.as_ref());
        drop(setup_w);
        return Err(e);
    }
    if !new_pid_ns {
        // No pid namespace, but something must stay while the program
        // runs (lock files, the sync fd): this process does, as the init
        // would.
        exit_immediately(holder_main(sb, lock, setup_w, reporter, counter));
    }
    // The init learns whether this process is still alive through `alive`:
    // this process holds the write end, which closes when it dies.
    let (alive_r, alive_w) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| CliError::setup(format!("pipe: {e}")))?;
    // The first process forked into the new pid namespace is its pid 1.
    match fork_with(&counter)
        .map_err(|e| CliError::setup(format!("fork into the pid namespace: {e}")))?
    {
        Forked::Child => {
            drop(alive_w);
            exit_immediately(init_main(
                sb, lock, alive_r, setup_w, reporter, counter, None,
            ))
        }
        Forked::Parent(init) => {
            // The relay holds nothing of the setup any more; its copy of
            // the procfs goes now rather than when it exits.
            drop((alive_r, setup_w, reporter, lock, counter));
            let code = relay::supervise(init, !sb.new_session);
            drop(alive_w);
            exit_immediately(code)
        }
    }
}

/// In a new user namespace whose maps do not include the caller's own ids
/// (an OCI config mapping 0 to 100000, say), the caller's files and mounts
/// would be made by an unmapped id, which the kernel refuses. Like other
/// runtimes, the child then becomes root of the namespace (uid and gid 0,
/// when mapped) before it mounts anything; its capabilities in the
/// namespace stay.
fn become_namespace_root(sb: &Sandbox, host_uid: u32) -> Result<(), CliError> {
    let Some(maps) = &sb.id_maps else {
        return Ok(());
    };
    let mapped = |m: &[saferoot::rootfs::spec::IdMapping], host: u32| {
        m.iter()
            .any(|r| host >= r.host_id && host - r.host_id < r.size)
    };
    if mapped(&maps.uid, host_uid) {
        // Our ids are mapped already (the --unshare-user maps).
        return Ok(());
    }
    if !crate::sandbox::IdMaps::maps(&maps.uid, 0) || !crate::sandbox::IdMaps::maps(&maps.gid, 0) {
        return Err(CliError::setup(
            "the user namespace maps neither saferoot's own uid nor uid/gid 0: \
             nothing could create files in the sandbox",
        ));
    }
    let root_gid = rustix::process::Gid::ROOT;
    let root_uid = rustix::process::Uid::ROOT;
    rustix::thread::set_thread_groups(&[])
        .and_then(|()| rustix::thread::set_thread_res_gid(root_gid, root_gid, root_gid))
        .and_then(|()| rustix::thread::set_thread_res_uid(root_uid, root_uid, root_uid))
        .map_err(|e| CliError::setup(format!("become root of the new user namespace: {e}")))
}

/// Pid 1 of the new pid namespace: builds and enters the root, starts the
/// program, then reaps and forwards until the program ends.
///
/// `alive` reaches end-of-file once its parent (the namespace child, or
/// saferoot) is gone; `setup_w` is the setup pipe's write end, kept until
/// the program is forked (the program's copy closes on exec).
///
/// `direct` is set for an init that saferoot forked or cloned directly
/// into the new pid namespace (see `run`): the init then does what the
/// namespace child does otherwise ([`own_namespaces`]).
fn init_main(
    sb: &Sandbox,
    lock: Option<Lock>,
    alive: OwnedFd,
    setup_w: OwnedFd,
    reporter: Option<Reporter>,
    counter: ThreadCounter,
    direct: Option<Direct>,
) -> i32 {
    if let Some(r) = &reporter {
        r.init_pid();
    }
    // The namespace child is only a relay: if it goes, so does the sandbox.
    // (saferoot kills it to end a setup.) Its death before the prctl would
    // not send the signal, so that is checked after it.
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        crate::errors::print_error(format!("prctl(PR_SET_PDEATHSIG): {e}"));
        return crate::errors::failure_code(crate::errors::EXIT_SETUP);
    }
    let mut b = [0u8; 1];
    if !matches!(
        rustix::io::read(&alive, &mut b),
        Err(rustix::io::Errno::AGAIN)
    ) {
        return crate::errors::failure_code(crate::errors::EXIT_SETUP);
    }
    drop(alive);
    // saferoot's own child (forked or cloned as the init) gives up its
    // copy of the fd that keeps the private procfs mounted, and says so on
    // the setup pipe: saferoot, idle while this process sets up, then
    // gives up the last copy, and the unmount's grace period passes there,
    // not in the chain and not while the program runs (see
    // `relay::Watch`). Lookups go on through the procfs handle.
    if direct.is_some() && counter.procfs().release_mount() {
        let _ = rustix::io::write(&setup_w, &[relay::MOUNT_RELEASED]);
    }
    let mut lock = lock;
    let mut direct = direct;
    let status = direct.as_mut().and_then(|d| d.status.take());
    let net = direct.as_mut().and_then(|d| d.net.take());
    if let Some(direct) = direct {
        match own_namespaces(sb, counter.procfs(), direct, net.is_some()) {
            Ok(l) => lock = lock.or(l),
            Err(e) => {
                crate::errors::print_error(&e);
                return e.code;
            }
        }
    }
    // The init stays in the sandbox running saferoot's binary: the sandbox
    // must not be able to ptrace it or open its /proc/1/exe
    // (CVE-2019-5736), so it is not dumpable.
    // --new-session with a pid namespace: the init leads the new session
    // (the program's session id is 1 inside, as with bubblewrap).
    if sb.new_session {
        if let Err(e) = rustix::process::setsid() {
            crate::errors::print_error(format!("--new-session: setsid: {e}"));
            return crate::errors::failure_code(crate::errors::EXIT_SETUP);
        }
    }
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        crate::errors::print_error(format!("prctl(PR_SET_DUMPABLE, 0): {e}"));
        return crate::errors::failure_code(crate::errors::EXIT_SETUP);
    }
    // The counter's procfs (saferoot's, made before the namespaces) was
    // opened before entering the root, which may have no /proc.
    let mut lock = match crate::rootfs_setup::setup(sb, lock, counter.procfs(), net) {
        Ok(lock) => lock,
        Err(e) => {
            crate::errors::print_error(&e);
            return e.code;
        }
    };
    if let Err(e) = lock.join_net(counter.procfs()) {
        crate::errors::print_error(&e);
        return e.code;
    }
    if sb.as_pid_1 {
        // No init: the program is pid 1.
        return exec_program(sb, &lock, reporter.as_ref());
    }
    let code = run_program(sb, lock, counter, setup_w, reporter);
    if let Some(w) = status {
        // saferoot returns on these four bytes; the namespaces are torn
        // down as this process ends, after it.
        let _ = rustix::io::write(&w, &code.to_ne_bytes());
    }
    code
}

/// The mount id of the calling process's root directory. A new mount
/// namespace is a copy in which every mount has a new id, and the process's
/// root moves to the copy of its root mount, so the id changes with every
/// `unshare(CLONE_NEWNS)` that takes effect, and stays when the call only
/// pretended to (a seccomp filter answering 0). No procfs is needed.
fn root_mount_id() -> Result<u64, CliError> {
    rustix::fs::statx(
        rustix::fs::CWD,
        "/",
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )
    .map(|st| st.stx_mnt_id)
    .map_err(|e| CliError::setup(format!("statx /: {e}")))
}

/// An init that saferoot started directly in the new pid namespace (see
/// `run`).
struct Direct {
    /// The mount id of saferoot's root ([`root_mount_id`]), which the
    /// sandbox's must differ from.
    mnt_before: u64,
    /// For an init cloned into a new user namespace: the pipe on which
    /// saferoot says that the maps are written, and saferoot's uid.
    cloned: Option<(OwnedFd, u32)>,
    /// Where the init writes the program's exit status before it ends
    /// (`Sandbox::exit_with_program`).
    status: Option<OwnedFd>,
    /// With a new network namespace: where saferoot sends it
    /// (`crate::net_ahead`); the init's unshare leaves it out.
    net: Option<crate::net_ahead::Joiner>,
}

/// What the namespace child does before the init exists, for an init that
/// saferoot started directly in the new pid namespace. Forked there (no
/// user namespace): the OOM score, the minimal mount namespace and the
/// other namespaces. Cloned into all its namespaces: waiting for the user
/// namespace's maps (saferoot set the OOM score), becoming root of the
/// namespace, `--disable-userns`, and the lock, made in place (see
/// [`crate::lock`]). Both check that the mount namespace differs from
/// saferoot's. With `net_ahead`, the network namespace is left to saferoot
/// (`crate::net_ahead`).
fn own_namespaces(
    sb: &Sandbox,
    procfs: &Procfs,
    direct: Direct,
    net_ahead: bool,
) -> Result<Option<Lock>, CliError> {
    let mut lock = None;
    if let Some((go, host_uid)) = direct.cloned {
        if !read_byte(&go) {
            // saferoot failed and says why.
            exit_immediately(crate::errors::failure_code(crate::errors::EXIT_SETUP));
        }
        if sb.extras.userns_block_fd.is_none() {
            become_namespace_root(sb, host_uid)?;
        }
        disable_userns(sb, procfs)?;
        // Its maps are read once it is known whether the helper of the
        // network namespace handed a made one (`Entered::join_net`).
        lock = Some(Lock::InPlaceUnread);
    } else {
        crate::privileges::apply_oom_score_adj(&sb.security, procfs, None)?;
        if let Some(ns) = &sb.mount_ns {
            crate::host_view::enter(sb, ns)?;
        }
        let mut flags = sb.namespaces.unshare_flags() - rustix::thread::UnshareFlags::NEWPID;
        if net_ahead {
            // saferoot makes it (`crate::net_ahead`).
            flags -= rustix::thread::UnshareFlags::NEWNET;
        }
        saferoot::namespace::unshare(flags).map_err(|e| {
            CliError::setup(format!(
                "unshare({}): {e}",
                sb.namespaces.names().join(", ")
            ))
        })?;
    }
    if root_mount_id()? == direct.mnt_before {
        return Err(CliError::setup(
            "unshare(CLONE_NEWNS) left the mount namespace unchanged",
        ));
    }
    Ok(lock)
}

/// `--disable-userns`: no more user namespaces below this one than the
/// one the mounts are locked with (made at the end of setup): the
/// program, inside that one, cannot make another, and cannot raise the
/// limit, which belongs to this namespace.
fn disable_userns(sb: &Sandbox, procfs: &Procfs) -> Result<(), CliError> {
    if sb.extras.disable_userns {
        procfs
            .write_sysctl("user.max_user_namespaces", "1")
            .map_err(|e| CliError::setup(format!("sysctl user.max_user_namespaces = 1: {e}")))?;
    }
    Ok(())
}

/// Without a pid namespace, the namespace child stays while the program
/// runs when it holds something for the sandbox (lock files, the sync
/// fd): like an init, it forks the program, then waits.
fn holder_main(
    sb: &Sandbox,
    lock: Option<Lock>,
    setup_w: OwnedFd,
    reporter: Option<Reporter>,
    counter: ThreadCounter,
) -> i32 {
    let lock = match crate::rootfs_setup::setup(sb, lock, counter.procfs(), None) {
        Ok(lock) => lock,
        Err(e) => {
            crate::errors::print_error(&e);
            return e.code;
        }
    };
    run_program(sb, lock, counter, setup_w, reporter)
}

/// The init's part once the root is entered: starts the program's
/// process (in the init's memory until its exec, or forked for a lock
/// made in place; it moves into the locked mount namespace and reports
/// the sandbox ready),
/// takes the lock files, and waits. The init stays in the namespaces the
/// sandbox was made in: those are what `--userns`/`--pidns` of another
/// sandbox join, through the pid the info document gives.
fn run_program(
    sb: &Sandbox,
    mut entered: crate::rootfs_setup::Entered,
    counter: ThreadCounter,
    setup_w: OwnedFd,
    reporter: Option<Reporter>,
) -> i32 {
    let channel = match entered.lock.take().map(|l| l.channel(counter.procfs())) {
        Some(Ok(Ok(c))) => Some(c),
        Some(Ok(Err(lock))) => {
            entered.lock = Some(lock);
            None
        }
        Some(Err(e)) => {
            crate::errors::print_error(&e);
            return e.code;
        }
        None => None,
    };
    // The program's process. A lock made in place needs the init to write
    // the child's maps before the child execs: that child is forked. Any
    // other starts in the init's memory (`spawn_sharing_memory`): no copy
    // of the init's address space is made, written to or torn down at the
    // exec, and the init, which would only wait for that exec, is
    // suspended until it.
    let (spawned, parent) = match channel {
        Some(Channel::InPlace(c)) => match fork_with(&counter) {
            Ok(Forked::Child) => {
                entered.lock = Some(c.into_child(counter.procfs()));
                exit_immediately(exec_program(sb, &entered, reporter.as_ref()))
            }
            Ok(Forked::Parent(main)) => (Ok(main), Some(c.into_parent())),
            Err(e) => (Err(e), None),
        },
        Some(Channel::Handed { child, parent }) => {
            entered.lock = Some(child);
            let spawned = spawn_program(sb, &entered, &counter, reporter.as_ref());
            // The init's copies of the child's end of the socket pair and
            // of the lock's user namespace (the child's closed at its exec).
            entered.lock = None;
            (spawned, Some(parent))
        }
        None => (
            spawn_program(sb, &entered, &counter, reporter.as_ref()),
            None,
        ),
    };
    match spawned {
        Ok(main) => {
            // The setup is over once the program execs: its copy of
            // setup_w is then the last.
            drop(setup_w);
            drop(reporter);
            if let Some(p) = parent {
                if let Err(e) = p.finish(counter.procfs(), main) {
                    let _ = rustix::process::kill_process(main, Signal::KILL);
                    crate::errors::print_error(&e);
                    return e.code;
                }
            }
            // The init keeps no copy of saferoot's procfs while the program
            // runs (the program's copy, kept for --info-fd,
            // --json-status-fd and --exec-label, closed on exec).
            drop(counter);
            // The last copy of saferoot's procfs in this process when
            // reports asked for one (it shows the caller's pid namespace):
            // the init lives on in the sandbox and holds nothing of the
            // host's from here on.
            drop(entered);
            let mut held = Vec::new();
            for path in &sb.extras.lock_files {
                match take_lock(path) {
                    Ok(f) => held.push(f),
                    Err(e) => {
                        crate::errors::print_error(e);
                        let _ = rustix::process::kill_process(main, Signal::KILL);
                        return crate::errors::failure_code(crate::errors::EXIT_SETUP);
                    }
                }
            }
            let code = relay::init_loop(main);
            drop(held);
            code
        }
        Err(e) => {
            crate::errors::print_error(format!("start the program's process: {e}"));
            crate::errors::failure_code(crate::errors::EXIT_SETUP)
        }
    }
}

/// Starts the program's process in the init's memory
/// (`spawn_sharing_memory`), where it execs the program; its pid once it
/// has (or has failed and ended).
fn spawn_program(
    sb: &Sandbox,
    entered: &crate::rootfs_setup::Entered,
    counter: &ThreadCounter,
    reporter: Option<&Reporter>,
) -> Result<Pid, rustix::io::Errno> {
    spawn_sharing_memory(
        counter,
        crate::errors::failure_code(crate::errors::EXIT_SETUP),
        &mut || exec_program(sb, entered, reporter),
    )
}

/// Execs the program ([`crate::exec::exec`]); on failure, says why and
/// returns the exit status the failure calls for.
fn exec_program(
    sb: &Sandbox,
    entered: &crate::rootfs_setup::Entered,
    reporter: Option<&Reporter>,
) -> i32 {
    let e = crate::exec::exec(sb, entered, reporter);
    crate::errors::print_error(&e);
    e.code
}

/// `--lock-file`: opens the path in the sandbox (the root is entered) and
/// holds a shared POSIX lock on it.
fn take_lock(path: &std::path::Path) -> Result<std::fs::File, String> {
    let f = std::fs::File::open(path).map_err(|e| {
        format!(
            "Unable to open lock file {}: {}",
            path.display(),
            crate::errors::os_text(&e)
        )
    })?;
    crate::sys::fds::read_lock(f.as_fd())
        .map_err(|e| format!("Unable to lock file {}: {e}", path.display()))?;
    Ok(f)
}
