//! The bubblewrap personality: `bwrap ARGS...` (the binary invoked under
//! that name) and `saferoot bwrap ARGS...`.
//!
//! The command line is bubblewrap's ([`crate::bwrap_args`]); the sandbox
//! is made by the same engine as `saferoot run` ([`crate::run`]). What
//! differs is decided here: bubblewrap's defaults (its namespaces, its
//! capability rules, no implicit `/dev`, the caller's fds passed on), its
//! checks with its messages, and its exit statuses (1 for a failure of its
//! own, the program's status otherwise). See docs/bwrap.md.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use saferoot::rootfs::spec::IdMapping;
use saferoot::rootfs::{EnterMethod, RootfsSpec, Strategy};

use crate::bwrap::{compose_with, BindFlavor, ComposeContext, Dialect, FdTable, Op};
use crate::bwrap_args::{self, CapOp, Early, FdReader, Invocation, ParseError};
use crate::errors::CliError;
use crate::namespaces::Namespaces;
use crate::privileges::{Capabilities, CapabilitySets, Origin, ProcessSecurity};
use crate::sandbox::{BwrapExtras, FdArg, IdMaps, RootKind, Sandbox};

/// The bubblewrap release whose command line this personality takes.
pub const BWRAP_VERSION: &str = "0.11.1";

/// Whether saferoot was invoked as bubblewrap: under the name `bwrap`, or
/// with a first argument that is one of bubblewrap's options (as when
/// bubblewrap re-runs itself through `/proc/self/exe`: saferoot's own
/// first argument is always a subcommand).
pub fn invoked_as_bwrap(argv0: &OsStr, first: Option<&OsStr>) -> bool {
    let name = Path::new(argv0).file_name().unwrap_or(argv0);
    if name == "bwrap" {
        return true;
    }
    let Some(first) = first else { return false };
    first != "--help"
        && first != "--version"
        && first.as_encoded_bytes().starts_with(b"--")
        && bwrap_args::is_option(first)
}

/// Reads fds for real (`--args`, the seccomp programs): from a
/// duplicate, then the caller's number is marked close-on-exec. An fd is
/// read once: bubblewrap closes it after reading, so a second read of the
/// same number fails (EBADF) here too.
#[derive(Default)]
struct RealFds {
    read: Vec<i32>,
}

impl FdReader for RealFds {
    fn read_fd(&mut self, fd: i32) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        if self.read.contains(&fd) {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        }
        self.read.push(fd);
        let dup = crate::sys::fds::dup_inherited(fd)?;
        let _ = crate::sys::fds::consume(fd);
        let mut data = Vec::new();
        std::fs::File::from(dup).read_to_end(&mut data)?;
        Ok(data)
    }
}

/// Runs the personality; returns the exit status.
pub fn main(argv0: OsString, args: Vec<OsString>) -> i32 {
    let level_prefix = args.iter().any(|a| a == "--level-prefix");
    crate::errors::set_bwrap_personality(level_prefix);
    // bubblewrap has no verbosity flag: SAFEROOT_LOG=info|debug|trace.
    let verbose = match std::env::var("SAFEROOT_LOG").as_deref() {
        Ok("info") => 1,
        Ok("debug") => 2,
        Ok("trace") => 3,
        _ => 0,
    };
    crate::output::init_logging(verbose);
    if args.is_empty() {
        eprint!("{}", bwrap_args::usage(&argv0));
        return 1;
    }
    let mut fds = RealFds::default();
    let inv = match bwrap_args::parse(args, &mut fds) {
        Ok(Ok(inv)) => inv,
        Ok(Err(Early::Help)) => {
            print!("{}", bwrap_args::usage(&argv0));
            return 0;
        }
        Ok(Err(Early::Version)) => {
            println!(
                "bubblewrap {BWRAP_VERSION} (saferoot {})",
                env!("CARGO_PKG_VERSION")
            );
            return 0;
        }
        Err(ParseError::NoCommand) => {
            eprint!("{}", bwrap_args::usage(&argv0));
            return 1;
        }
        Err(e) => {
            crate::errors::print_error(&e);
            return 1;
        }
    };
    for w in &inv.warnings {
        crate::errors::print_warning(w);
    }
    let result = sandbox(inv, &mut fds).and_then(crate::run::run);
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::errors::print_error(&e);
            1
        }
    }
}

fn fail(msg: impl Into<String>) -> CliError {
    CliError::setup(msg)
}

/// Whether new user namespaces can be made here (`--unshare-user-try`):
/// the kernel has them and `user.max_user_namespaces` is not 0.
fn userns_possible() -> bool {
    if !Path::new("/proc/self/ns/user").exists() {
        return false;
    }
    !matches!(
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces").as_deref(),
        Ok("0\n")
    )
}

/// Whether SELinux is enabled (its filesystem is mounted).
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Takes every fd the command line names: a close-on-exec duplicate for
/// saferoot, and the caller's number marked close-on-exec, except
/// `--sync-fd`'s with `--as-pid-1`, which the program keeps as with
/// bubblewrap (otherwise the init holds the sandbox's copy).
fn take_fds(inv: &Invocation) -> Result<(FdTable, BwrapExtras), CliError> {
    let take = |n: i32, what: &str, consume: bool| -> Result<FdArg, CliError> {
        let fd = crate::sys::fds::dup_inherited(n).map_err(|e| fail(format!("{what} {n}: {e}")))?;
        if consume {
            crate::sys::fds::consume(n).map_err(|e| fail(format!("{what} {n}: {e}")))?;
        }
        let path = saferoot::procfs::Procfs::new()
            .and_then(|p| p.fd_target(std::os::fd::AsFd::as_fd(&fd)))
            .ok();
        Ok(FdArg {
            number: n,
            fd: std::sync::Arc::new(fd),
            path,
        })
    };
    let mut table = FdTable::default();
    for op in &inv.ops {
        let (n, what) = match op {
            Op::File(n, _) => (*n, "--file"),
            Op::BindData { fd, .. } => (*fd, "--bind-data"),
            Op::BindFd { fd, .. } => (*fd, "--bind-fd"),
            _ => continue,
        };
        if !table.0.iter().any(|f| f.number == n) {
            table.0.push(take(n, what, true)?);
        }
    }
    let opt = |n: Option<i32>, what: &str, consume: bool| -> Result<Option<FdArg>, CliError> {
        n.map(|n| take(n, what, consume)).transpose()
    };
    let extras = BwrapExtras {
        info_fd: opt(inv.info_fd, "--info-fd", true)?,
        json_status_fd: opt(inv.json_status_fd, "--json-status-fd", true)?,
        sync_fd: opt(inv.sync_fd, "--sync-fd", !inv.as_pid_1)?,
        block_fd: opt(inv.block_fd, "--block-fd", true)?,
        userns_block_fd: opt(inv.userns_block_fd, "--userns-block-fd", true)?,
        userns_fd: opt(inv.userns, "--userns", true)?,
        userns2_fd: opt(inv.userns2, "--userns2", true)?,
        pidns_fd: opt(inv.pidns, "--pidns", true)?,
        ..BwrapExtras::default()
    };
    Ok((table, extras))
}

/// Reads the seccomp programs (`--seccomp`, `--add-seccomp-fd`), in order,
/// with bubblewrap's checks and words.
fn seccomp_programs(
    inv: &Invocation,
    reader: &mut RealFds,
) -> Result<Vec<std::sync::Arc<Vec<u8>>>, CliError> {
    let fds: Vec<i32> = match inv.seccomp {
        Some(fd) => vec![fd],
        None => inv.add_seccomp.clone(),
    };
    let mut out = Vec::new();
    for fd in fds {
        let data = reader.read_fd(fd).map_err(|e| {
            fail(format!(
                "Can't read seccomp data: {}",
                crate::errors::os_text(&e)
            ))
        })?;
        if data.len() % 8 != 0 {
            return Err(fail("Invalid seccomp data, must be multiple of 8"));
        }
        out.push(std::sync::Arc::new(data));
    }
    Ok(out)
}

/// The capabilities the program keeps, as bubblewrap decides them: a
/// caller with uid 0 keeps its effective set, anyone else none; then each
/// `--cap-add`/`--cap-drop` in order. `None`: a uid-0 caller without
/// either option, whose capabilities are left as they are.
pub fn requested_caps(
    caller_uid: u32,
    ops: &[CapOp],
    current: impl FnOnce() -> caps::CapsHashSet,
) -> Option<caps::CapsHashSet> {
    if ops.is_empty() && caller_uid == 0 {
        return None;
    }
    let mut set = if caller_uid == 0 {
        current()
    } else {
        caps::CapsHashSet::new()
    };
    for op in ops {
        match op {
            CapOp::Add(None) => set = caps::all(),
            CapOp::Add(Some(c)) => {
                set.insert(*c);
            }
            CapOp::Drop(None) => set.clear(),
            CapOp::Drop(Some(c)) => {
                set.remove(c);
            }
        }
    }
    Some(set)
}

/// The [`Sandbox`] for a bubblewrap command line.
fn sandbox(inv: Invocation, reader: &mut RealFds) -> Result<Sandbox, CliError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let u = inv.unshare;
    // bubblewrap's checks, with its words.
    if inv.userns_block_fd.is_some() && !u.user {
        return Err(fail("--userns-block-fd requires --unshare-user"));
    }
    if inv.userns_block_fd.is_some() && inv.info_fd.is_none() {
        return Err(fail("--userns-block-fd requires --info-fd"));
    }
    if inv.userns.is_some() && u.user {
        return Err(fail("--userns not compatible --unshare-user"));
    }
    if inv.userns.is_some() && u.user_try {
        return Err(fail("--userns not compatible --unshare-user-try"));
    }
    if inv.disable_userns && !u.user {
        return Err(fail("--disable-userns requires --unshare-user"));
    }
    if inv.disable_userns && inv.userns_block_fd.is_some() {
        return Err(fail(
            "--disable-userns is not compatible with  --userns-block-fd",
        ));
    }
    if inv.userns2.is_some() && inv.userns.is_none() {
        return Err(fail("--userns2 requires --userns"));
    }
    // Without privileges a sandbox needs a user namespace; with
    // --unshare-user-try, one is made where the kernel allows it.
    let user = u.user || (uid != 0 && inv.userns.is_none()) || (u.user_try && userns_possible());
    let joined = inv.userns.is_some();
    let sandbox_uid = inv.uid.unwrap_or(uid);
    let sandbox_gid = inv.gid.unwrap_or(gid);
    if !user && !joined && sandbox_uid != uid {
        return Err(fail("Specifying --uid requires --unshare-user or --userns"));
    }
    if !user && !joined && sandbox_gid != gid {
        return Err(fail("Specifying --gid requires --unshare-user or --userns"));
    }
    if inv.hostname.is_some() && !u.uts {
        return Err(fail("Specifying --hostname requires --unshare-uts"));
    }
    if inv.as_pid_1 && !u.pid {
        return Err(fail("Specifying --as-pid-1 requires --unshare-pid"));
    }
    if inv.as_pid_1 && !inv.lock_files.is_empty() {
        return Err(fail(
            "Specifying --as-pid-1 and --lock-file is not permitted",
        ));
    }
    if u.cgroup && !Path::new("/proc/self/ns/cgroup").exists() {
        return Err(fail(
            "Cannot create new cgroup namespace because the kernel does not support it",
        ));
    }
    let ns = Namespaces {
        user,
        pid: u.pid,
        net: u.net,
        ipc: u.ipc,
        uts: u.uts,
        cgroup: u.cgroup || (u.cgroup_try && Path::new("/proc/self/ns/cgroup").exists()),
    };
    let hostname = match &inv.hostname {
        Some(h) => Some(
            h.to_str()
                .filter(|h| !h.is_empty() && h.len() <= 64)
                .ok_or_else(|| fail(format!("Invalid hostname: {}", h.to_string_lossy())))?
                .to_string(),
        ),
        None => None,
    };
    let id_maps = user.then(|| IdMaps {
        uid: vec![IdMapping {
            container_id: sandbox_uid,
            host_id: uid,
            size: 1,
        }],
        gid: vec![IdMapping {
            container_id: sandbox_gid,
            host_id: gid,
            size: 1,
        }],
    });
    let tty_gid = id_maps.as_ref().is_none_or(|m| IdMaps::maps(&m.gid, 5));

    let (fds, mut extras) = take_fds(&inv)?;
    let comp = compose_with(
        &inv.ops,
        &ComposeContext {
            n_default: 0,
            tty_gid,
            dialect: Dialect::Bwrap,
            fds: &fds,
            pid_ns: ns.pid || inv.pidns.is_some(),
        },
    )?;
    if user && !comp.devices.is_empty() {
        return Err(fail(
            "--dev on a path other than /dev needs the host's device nodes at that path; \
             in a user namespace only --dev /dev works",
        ));
    }
    let root = match &comp.root_bind {
        Some((source, flavor, _)) => RootKind::Bind {
            source: source.clone(),
            ro: *flavor == BindFlavor::Ro,
            devices: *flavor == BindFlavor::Dev,
        },
        None => RootKind::Tmpfs,
    };
    let spec = RootfsSpec {
        rootfs: PathBuf::from(crate::bwrap::FRESH_ROOT_PLACEHOLDER),
        mounts: comp.mounts.iter().map(|(m, _)| m.clone()).collect(),
        devices: comp.devices.clone(),
        default_devices: comp.dev,
        readonly_paths: comp.readonly.iter().map(|(p, _)| p.clone()).collect(),
        // --file-label: the SELinux context of the filesystems saferoot
        // makes (tmpfs, /dev), where SELinux is enabled; bubblewrap ignores
        // it otherwise, and so does saferoot.
        mount_label: inv
            .file_label
            .as_ref()
            .filter(|_| selinux_enabled())
            .map(|l| l.to_string_lossy().into_owned()),
        user_namespace: ns.user,
        // Which procfs the sandbox shows is the caller's choice under
        // bubblewrap: a bind of a whole procfs on /proc is allowed even with
        // a pid namespace of its own (saferoot run refuses it).
        namespaces: saferoot::rootfs::Namespaces {
            pid: false,
            ..ns.spec_namespaces()
        },
        ..RootfsSpec::default()
    };
    extras.lock_files = inv.lock_files.clone();
    extras.argv0 = inv.argv0.clone();
    extras.exec_label = inv.exec_label.clone().filter(|_| selinux_enabled());
    extras.disable_userns = inv.disable_userns;
    extras.assert_userns_disabled = inv.assert_userns_disabled;
    extras.chdir = inv.chdir.clone();
    extras.inherit_fds = true;
    // bubblewrap changes its own environment as it parses --setenv,
    // --unsetenv and --clearenv: the $HOME it falls back to is theirs.
    let env = crate::bwrap::environment_with(&inv.ops, false);
    if inv.chdir.is_none() {
        if let Ok(cwd) = std::env::current_dir() {
            extras.cwd_fallbacks.push(cwd);
        }
        if let Some((_, home)) = env.iter().find(|(k, _)| k == "HOME") {
            extras.cwd_fallbacks.push(PathBuf::from(home));
        }
    }
    let caps = requested_caps(uid, &inv.caps, || {
        caps::read(None, caps::CapSet::Effective).unwrap_or_default()
    });
    // As bubblewrap: no new privileges, ever; the capabilities it
    // decides, in every set, bounding included; seccomp programs last.
    let security = ProcessSecurity {
        origin: Origin::Flags,
        no_new_privs: true,
        raise_ambient: caps.is_none(),
        capabilities: match caps {
            // A uid-0 caller without --cap-add/--cap-drop: as it is, except
            // that in a new user namespace (where the process holds every
            // capability) it keeps only those it had outside, as bubblewrap
            // reduces it to them.
            None if user => {
                let had = caps::read(None, caps::CapSet::Effective).unwrap_or_default();
                Capabilities::Sets(Box::new(CapabilitySets {
                    bounding: had.clone(),
                    effective: had.clone(),
                    permitted: had,
                    inheritable: caps::CapsHashSet::new(),
                    ambient: caps::CapsHashSet::new(),
                }))
            }
            None => Capabilities::Unchanged,
            Some(set) => Capabilities::Sets(Box::new(CapabilitySets::uniform(set))),
        },
        seccomp: seccomp_programs(&inv, reader)?,
        ..ProcessSecurity::default()
    };
    security.validate().map_err(|e| fail(e.to_string()))?;
    Ok(Sandbox {
        spec,
        origins: comp.mounts.iter().map(|(_, o)| o.clone()).collect(),
        device_origins: comp
            .devices
            .iter()
            .map(|d| {
                format!(
                    "--dev {}",
                    d.path.parent().unwrap_or(Path::new("/")).display()
                )
            })
            .collect(),
        root,
        steps: comp.steps,
        path_origins: comp.readonly.clone(),
        namespaces: ns,
        hostname,
        id_maps,
        user: None,
        security,
        env,
        argv: inv.command.clone(),
        strategy: Strategy::Auto,
        enter: EnterMethod::PivotRoot,
        die_with_parent: inv.die_with_parent,
        new_session: inv.new_session,
        as_pid_1: inv.as_pid_1,
        exit_with_program: true,
        preserve_fds: 0,
        ignored: Vec::new(),
        extras,
        // bubblewrap's command line has no room for it: an environment
        // variable of saferoot's own.
        mount_ns: match std::env::var_os("SAFEROOT_MOUNT_NS") {
            Some(p) if inv.userns.is_some() => {
                return Err(fail(format!(
                    "SAFEROOT_MOUNT_NS={} cannot be combined with --userns",
                    p.to_string_lossy()
                )))
            }
            Some(p) => Some(crate::host_view::open_or_create(Path::new(&p))?),
            None => None,
        },
        plan: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personality_by_name_or_first_option() {
        assert!(invoked_as_bwrap(OsStr::new("/usr/bin/bwrap"), None));
        assert!(invoked_as_bwrap(
            OsStr::new("bwrap"),
            Some(OsStr::new("run"))
        ));
        assert!(invoked_as_bwrap(
            OsStr::new("/proc/self/exe"),
            Some(OsStr::new("--unshare-all"))
        ));
        assert!(!invoked_as_bwrap(
            OsStr::new("saferoot"),
            Some(OsStr::new("run"))
        ));
        assert!(!invoked_as_bwrap(
            OsStr::new("saferoot"),
            Some(OsStr::new("--help"))
        ));
        assert!(!invoked_as_bwrap(
            OsStr::new("saferoot"),
            Some(OsStr::new("--verbose"))
        ));
        assert!(!invoked_as_bwrap(OsStr::new("saferoot"), None));
    }

    #[test]
    fn capabilities_follow_bubblewrap_rules() {
        use caps::Capability::*;
        let all = || caps::all();
        // uid 0 without options: unchanged.
        assert_eq!(requested_caps(0, &[], all), None);
        // uid 0 drops one: the rest stays.
        let s = requested_caps(0, &[CapOp::Drop(Some(CAP_KILL))], all).unwrap();
        assert!(!s.contains(&CAP_KILL) && s.contains(&CAP_NET_BIND_SERVICE));
        // Anyone else starts from nothing.
        let s = requested_caps(1000, &[], all).unwrap();
        assert!(s.is_empty());
        let s = requested_caps(1000, &[CapOp::Add(Some(CAP_NET_RAW))], all).unwrap();
        assert_eq!(s.len(), 1);
        // In order: ALL then a drop.
        let s = requested_caps(
            1000,
            &[CapOp::Add(None), CapOp::Drop(Some(CAP_SYS_ADMIN))],
            all,
        )
        .unwrap();
        assert!(!s.contains(&CAP_SYS_ADMIN) && s.contains(&CAP_CHOWN));
    }
}
