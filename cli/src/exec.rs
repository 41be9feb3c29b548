//! The last step in the sandbox: the program's privileges (ids,
//! capabilities, rlimits, no_new_privs, seccomp: [`crate::privileges`]),
//! then exec the program with its environment.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use crate::sys::process::{set_signal_mask, SignalSet};

use crate::errors::{shown, CliError, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND};
use crate::report::Reporter;
use crate::sandbox::Sandbox;

/// Execs the program. Returns only on failure, with the error to report
/// (exit status 127 when the program was not found, 126 otherwise).
///
/// The lock of `entered` (with a user namespace) is applied first, so
/// that the program runs in a mount namespace where every mount saferoot
/// made is locked. `report` then hears the program's namespaces and `R`,
/// `X` right before the exec, `E` if it fails.
///
/// Everything is borrowed and left as it was (what the exec needs is
/// built anew), so that this runs as well in a child sharing the init's
/// memory (`crate::sys::process::spawn_sharing_memory`) as in a forked
/// one. The fds `entered` holds are close-on-exec: the exec closes them.
pub fn exec(
    sb: &Sandbox,
    entered: &crate::rootfs_setup::Entered,
    report: Option<&Reporter>,
) -> CliError {
    if let Some(lock) = &entered.lock {
        if let Err(e) = lock.apply() {
            return e;
        }
    }
    if let Some(r) = report {
        if let Some(procfs) = &entered.procfs {
            for name in crate::report::listed(&sb.namespaces) {
                if let Ok(id) = procfs.ns_inode(name, None) {
                    r.namespace(name, id);
                }
            }
        }
        r.ready();
    }
    if let (Some(label), Some(procfs)) = (&sb.extras.exec_label, &entered.procfs) {
        // The SELinux context the program is exec'd with (set only where
        // SELinux is enabled; see bwrap_cmd).
        use std::io::Write;
        let written = procfs
            .open_thread_self_with("attr/exec", rustix::fs::OFlags::WRONLY)
            .and_then(|mut f| {
                f.write_all(label.as_encoded_bytes()).map_err(|e| {
                    saferoot::Error::from_os(
                        "write attr/exec",
                        None,
                        rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
                    )
                })
            });
        if let Err(e) = written {
            return CliError::setup(format!("label_exec {}: {e}", label.to_string_lossy()));
        }
    }
    if let Some(fd) = &sb.extras.block_fd {
        // Until a byte, or end of file.
        let mut b = [0u8; 1];
        while let Err(rustix::io::Errno::INTR) = rustix::io::read(&*fd.fd, &mut b) {}
    }
    if let Err(e) = crate::fds::pass_preserved(sb.preserve_fds) {
        return e;
    }
    if let Some(fd) = &sb.extras.userns2_fd {
        if let Err(e) = rustix::thread::move_into_link_name_space(
            fd.fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::User),
        ) {
            return CliError::setup(format!("Setting userns2 failed: {e}"));
        }
    }
    if sb.extras.assert_userns_disabled
        && saferoot::namespace::unshare(rustix::thread::UnshareFlags::NEWUSER).is_ok()
    {
        return CliError::setup("creation of new user namespaces was not disabled as requested");
    }
    let Some(prog) = sb.argv.first() else {
        return CliError::setup("no program to run");
    };
    log::debug!("exec {:?}", sb.argv);
    // The chain blocked the forwarded signals; the program starts with
    // none blocked (std resets SIGPIPE, not the mask).
    if let Err(e) = set_signal_mask(&SignalSet::empty()) {
        return CliError::setup(format!("sigprocmask: {e}"));
    }
    let mut env = sb.env.clone();
    if crate::errors::is_bwrap() {
        // As bubblewrap: PWD is where the program starts.
        if let Ok(cwd) = rustix::process::getcwd(Vec::new()) {
            env.retain(|(k, _)| k != "PWD");
            env.push((
                "PWD".into(),
                std::ffi::OsStr::from_bytes(cwd.to_bytes()).to_os_string(),
            ));
        }
    }
    let mut argv: Vec<std::ffi::OsString> = sb.argv.clone();
    if let Some(a0) = &sb.extras.argv0 {
        argv[0] = a0.clone();
    }
    let prepared = match crate::sys::exec::prepare(prog, &argv, &env) {
        Ok(p) => p,
        Err(why) => return CliError::setup(format!("cannot run {}: {why}", shown(prog))),
    };
    if let Err(e) = crate::sys::exec::default_sigpipe() {
        return CliError::setup(format!("reset SIGPIPE: {e}"));
    }
    // The privileges come last (seccomp programs at the very end): from
    // here on only the exec runs.
    if let Err(e) = crate::privileges::apply(&sb.security, sb.user.as_ref()) {
        return e;
    }
    if let Some(r) = report {
        r.exec();
    }
    let errno = crate::sys::exec::exec(&prepared);
    if let Some(r) = report {
        r.exec_failed();
    }
    let err = std::io::Error::from_raw_os_error(errno.raw_os_error());
    let code = crate::errors::failure_code(if err.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXEC
    });
    let message = if crate::errors::is_bwrap() {
        format!(
            "execvp {}: {}",
            prog.to_string_lossy(),
            crate::errors::os_text(&err)
        )
    } else {
        format!("cannot run {} in the sandbox: {err}", shown(prog))
    };
    CliError { code, message }
}
