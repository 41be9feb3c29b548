//! The last step in the sandbox: the program's privileges (ids,
//! capabilities, rlimits, no_new_privs, seccomp: [`crate::privileges`]),
//! then exec the program with its environment.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::sys::process::{set_signal_mask, SignalSet};
use saferoot::rootfs::MountLock;

use crate::errors::{shown, CliError, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND};
use crate::sandbox::Sandbox;

/// Execs the program. Returns only on failure, with the error to report
/// (exit status 127 when the program was not found, 126 otherwise).
///
/// `lock` (with a user namespace) is applied first, so that the program
/// runs in a mount namespace where every mount saferoot made is locked.
/// The privileges come last: once the seccomp filters are loaded, nothing
/// but the exec follows.
pub fn exec(sb: &Sandbox, lock: Option<MountLock>) -> CliError {
    if let Some(lock) = lock {
        if let Err(e) = lock.apply() {
            return CliError::setup(format!("lock the sandbox's mounts: {e}"));
        }
    }
    if let Err(e) = crate::fds::pass_preserved(sb.preserve_fds) {
        return e;
    }
    let Some((prog, args)) = sb.argv.split_first() else {
        return CliError::setup("no program to run");
    };
    log::debug!("exec {:?}", sb.argv);
    // The chain blocked the forwarded signals; the program starts with
    // none blocked (std resets SIGPIPE, not the mask).
    if let Err(e) = set_signal_mask(&SignalSet::empty()) {
        return CliError::setup(format!("sigprocmask: {e}"));
    }
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env_clear()
        .envs(sb.env.iter().map(|(k, v)| (k, v)));
    if let Err(e) = crate::privileges::apply(&sb.security, sb.user.as_ref()) {
        return e;
    }
    let err = cmd.exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXEC
    };
    CliError {
        code,
        message: format!("cannot run {} in the sandbox: {err}", shown(prog)),
    }
}
