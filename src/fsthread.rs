//! Helper threads with an fs struct of their own.
//!
//! Some operations need a working directory (`umount2(".")` after
//! `fchdir`) or a umask (exact modes for `mknod`) that must not leak into
//! the caller. They run on a scoped helper thread that first unshares its
//! fs struct (`CLONE_FS`: root, working directory, umask), so whatever it
//! changes stays with it. The helper is in the caller's mount namespace.

use std::cell::Cell;

use rustix::io::Errno;

thread_local! {
    /// Set on helper threads started by [`on_fs_thread`]: their fs struct
    /// (and so their umask) is theirs alone.
    static PRIVATE_FS: Cell<bool> = const { Cell::new(false) };
}

/// Gives the calling thread an fs struct of its own (`unshare(CLONE_FS)`:
/// root, working directory and umask no longer shared with any other
/// thread) and marks it so: [`on_fs_thread`] and [`with_umask_zero`] then
/// run their work on this thread, restoring its working directory and
/// umask afterwards, instead of starting a helper thread.
pub(crate) fn make_private() -> Result<(), Errno> {
    crate::sys::unshare(rustix::thread::UnshareFlags::FS)?;
    PRIVATE_FS.with(|p| p.set(true));
    Ok(())
}

/// Runs `f` on this thread (whose fs struct is private), then puts its
/// working directory and umask back as they were.
fn inline<T>(f: impl FnOnce() -> T) -> Result<T, Errno> {
    let cwd = rustix::fs::open(
        ".",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let umask = rustix::process::umask(rustix::fs::Mode::empty());
    rustix::process::umask(umask);
    let r = f();
    rustix::process::umask(umask);
    rustix::process::fchdir(&cwd)?;
    Ok(r)
}

/// Runs `f` on a helper thread with a private fs struct and returns what
/// it returned (on the calling thread itself when [`make_private`] was
/// called there). Fails with the errno when the thread cannot be started
/// or cannot unshare; a panic in `f` is resumed on the caller's thread.
pub(crate) fn on_fs_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, Errno> {
    if PRIVATE_FS.with(Cell::get) {
        return inline(f);
    }
    on_helper_thread(f)
}

/// Runs `f` on a new helper thread with a private fs struct, always (for
/// work whose effects must never reach the caller's thread, such as
/// changing mount namespace).
pub(crate) fn on_helper_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, Errno> {
    let journal = crate::journal::current();
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("saferoot-fs".into())
            .spawn_scoped(s, || {
                crate::sys::unshare(rustix::thread::UnshareFlags::FS)?;
                let _journal = crate::journal::Active::set(journal);
                PRIVATE_FS.with(|p| p.set(true));
                Ok(f())
            })
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::AGAIN))?;
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `worker` on a helper thread with a private fs struct (as
/// [`on_fs_thread`] does) while `caller` runs on the calling thread, and
/// returns both results once both are done. The two usually talk through
/// channels: when one side stops early it drops its end, which the other
/// sees. Fails with the errno when the helper cannot be started or cannot
/// unshare (then `worker` is dropped without running, and `caller` still
/// runs, seeing its channel closed); a panic in `worker` is resumed on the
/// caller's thread.
#[cfg(feature = "archive")]
pub(crate) fn alongside_fs_thread<T: Send, U>(
    worker: impl FnOnce() -> T + Send,
    caller: impl FnOnce() -> U,
) -> Result<(T, U), Errno> {
    let journal = crate::journal::current();
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("saferoot-fs".into())
            .spawn_scoped(s, move || {
                crate::sys::unshare(rustix::thread::UnshareFlags::FS)?;
                let _journal = crate::journal::Active::set(journal);
                PRIVATE_FS.with(|p| p.set(true));
                Ok(worker())
            });
        let u = caller();
        let handle = handle.map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::AGAIN))?;
        match handle.join() {
            Ok(r) => r.map(|t| (t, u)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `f` with umask 0, so that modes given to `mknod` and friends are
/// the modes created. On a helper thread of [`on_fs_thread`] the umask is
/// changed in place and restored afterwards; anywhere else `f` runs on a
/// new helper thread, so the caller's umask (shared with every thread of
/// its process) is never touched.
pub(crate) fn with_umask_zero<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, Errno> {
    if PRIVATE_FS.with(Cell::get) {
        let old = rustix::process::umask(rustix::fs::Mode::empty());
        let r = f();
        rustix::process::umask(old);
        Ok(r)
    } else {
        on_fs_thread(|| {
            rustix::process::umask(rustix::fs::Mode::empty());
            f()
        })
    }
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

    #[test]
    fn umask_zero_runs_with_umask_zero_and_restores_it() {
        let mine = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        rustix::process::umask(mine);
        let inside = with_umask_zero(|| {
            let m = rustix::process::umask(rustix::fs::Mode::empty());
            m.bits()
        })
        .unwrap();
        assert_eq!(inside, 0);
        let nested = on_fs_thread(|| {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            let inner = with_umask_zero(|| {
                let m = rustix::process::umask(rustix::fs::Mode::empty());
                m.bits()
            })
            .unwrap();
            let after = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            (inner, after.bits())
        })
        .unwrap();
        assert_eq!(nested, (0, 0o077));
        let now = rustix::process::umask(mine);
        assert_eq!(now, mine);
    }
}
