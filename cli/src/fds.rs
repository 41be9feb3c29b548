//! Which fds the program gets: stdin, stdout, stderr and the ones it was
//! explicitly given, nothing else.
//!
//! An fd that leaks into a container is a way out of it: a directory fd of
//! the host is a starting point for `openat` outside the root (the
//! CVE-2024-21626 class). saferoot's own fds are all close-on-exec; those it
//! inherited from its caller are made close-on-exec before anything else
//! happens, except fds 3 to 3+N-1 when N were asked for (`--preserve-fds`,
//! or `LISTEN_FDS` for socket activation, as runc does), which are passed on.

use crate::errors::CliError;

/// The number of fds after stdio to pass on: `--preserve-fds` plus
/// `LISTEN_FDS` when saferoot's environment has it (the socket-activation
/// fds come first, from 3, as systemd hands them over).
pub fn preserved_count(flag: u32) -> u32 {
    let listen = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    flag.saturating_add(listen)
}

/// Marks every inherited fd from `3 + preserve` up close-on-exec. Called
/// first thing in `run`, so no process of the chain ever execs with one.
pub fn seal_inherited(preserve: u32) -> Result<(), CliError> {
    crate::sys::process::cloexec_from(3u32.saturating_add(preserve))
        .map_err(|e| CliError::setup(format!("mark inherited fds close-on-exec: {e}")))
}

/// Right before exec: the preserved fds are inherited by the program.
pub fn pass_preserved(preserve: u32) -> Result<(), CliError> {
    crate::sys::process::inherit_across_exec(3, preserve)
        .map_err(|e| CliError::setup(format!("--preserve-fds {preserve}: {e}")))
}
