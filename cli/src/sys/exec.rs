//! The program's exec, prepared in full before the seccomp programs are
//! loaded: afterwards only `execve` (and `write` for the report) runs, so
//! a filter that allows little more than `execve` still lets the program
//! start, as with bubblewrap. `execvp`'s search is done here: each
//! candidate path is built in advance.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use rustix::io::Errno;

use super::last_errno;

/// Everything `execve` needs, allocated.
pub struct PreparedExec {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstring(s: &[u8]) -> Result<CString, String> {
    CString::new(s).map_err(|_| "an argument or variable contains a NUL byte".to_string())
}

/// Prepares the exec of `prog` (searched in the `PATH` of `env`, or
/// `/bin:/usr/bin` without one, when it has no `/`) with `argv` (its
/// first element is the program's `argv[0]`) and `env`.
pub fn prepare(
    prog: &OsStr,
    argv: &[OsString],
    env: &[(OsString, OsString)],
) -> Result<PreparedExec, String> {
    let name = prog.as_bytes();
    let candidates = if name.contains(&b'/') {
        vec![cstring(name)?]
    } else {
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_bytes().to_vec())
            .unwrap_or_else(|| b"/bin:/usr/bin".to_vec());
        path.split(|&b| b == b':')
            .map(|dir| {
                let dir = if dir.is_empty() { &b"."[..] } else { dir };
                let mut full = dir.to_vec();
                full.push(b'/');
                full.extend_from_slice(name);
                cstring(&full)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let argv = argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PreparedExec {
        candidates,
        argv,
        envp,
    })
}

/// Execs the prepared program; returns only on failure, with the errno
/// `execvp` would give (`EACCES` if some candidate was found but not
/// executable, otherwise the last error).
pub fn exec(p: &PreparedExec) -> Errno {
    let mut argv: Vec<*const libc::c_char> = p.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = p.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut denied = false;
    let mut last = libc::ENOENT;
    for c in &p.candidates {
        // SAFETY: every pointer comes from a CString alive for this whole
        // function, and both arrays end with a null pointer, as execve
        // requires. On success it does not return; on failure nothing
        // was changed.
        unsafe { libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        last = last_errno();
        match last {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => break,
        }
    }
    Errno::from_raw_os_error(if denied && last != libc::ENOEXEC {
        libc::EACCES
    } else {
        last
    })
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it,
/// and an ignored signal stays ignored across exec).
pub fn default_sigpipe() -> Result<(), Errno> {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no
    // handler code; the call touches no memory of ours.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(Errno::from_raw_os_error(last_errno()));
    }
    Ok(())
}
