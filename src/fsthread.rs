//! Helper threads with an fs struct of their own.
//!
//! Some operations need a working directory (`umount2(".")` after
//! `fchdir`) or a umask (exact modes for `mknod`) that must not leak into
//! the caller. They run on a scoped helper thread that first unshares its
//! fs struct (`CLONE_FS`: root, working directory, umask), so whatever it
//! changes stays with it. The helper is in the caller's mount namespace.

use rustix::io::Errno;

/// Runs `f` on a helper thread with a private fs struct and returns what
/// it returned. Fails with the errno when the thread cannot be started or
/// cannot unshare; a panic in `f` is resumed on the caller's thread.
pub(crate) fn on_fs_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, Errno> {
    let journal = crate::journal::current();
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("saferoot-fs".into())
            .spawn_scoped(s, || {
                crate::sys::unshare(rustix::thread::UnshareFlags::FS)?;
                let _journal = crate::journal::Active::set(journal);
                Ok(f())
            })
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::AGAIN))?;
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_and_cwd_changes_stay_on_the_helper() {
        let cwd = std::env::current_dir().unwrap();
        let inner = on_fs_thread(|| {
            rustix::process::chdir(c"/").unwrap();
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            std::env::current_dir().unwrap()
        })
        .unwrap();
        assert_eq!(inner, std::path::Path::new("/"));
        assert_eq!(std::env::current_dir().unwrap(), cwd);
        let mine = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        rustix::process::umask(mine);
        assert_ne!(mine.bits(), 0o077);
    }
}
