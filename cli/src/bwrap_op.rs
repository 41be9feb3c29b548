//! The flags of bubblewrap's command line that take effect in order, as
//! data: what [`crate::bwrap_args`] parses and [`crate::bwrap`] applies.
//!
//! Plain types with no dependency on the rest of the command, so that the
//! fuzz target for the bubblewrap parser (`fuzz/fuzz_targets/bwrap_args.rs`)
//! can compile this file and `bwrap_args.rs` on their own. Their methods
//! live in [`crate::bwrap`].

use std::ffi::OsString;
use std::path::PathBuf;

/// Which kind of bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindFlavor {
    /// `--bind`: read-write, nosuid, nodev.
    Rw,
    /// `--ro-bind`: read-only (recursively), nosuid, nodev.
    Ro,
    /// `--dev-bind`: read-write, nosuid, devices allowed.
    Dev,
}

/// One flag that takes effect in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `--bind`, `--ro-bind`, `--dev-bind` and their `-try` forms.
    Bind {
        /// Which.
        flavor: BindFlavor,
        /// `-try`: skip when the source is missing.
        try_: bool,
        /// Host path.
        src: PathBuf,
        /// Path in the sandbox.
        dest: PathBuf,
    },
    /// `--tmpfs`.
    Tmpfs(PathBuf),
    /// `--size`.
    Size(String),
    /// `--perms`.
    Perms(String),
    /// `--proc`.
    Proc(PathBuf),
    /// `--dev`.
    Dev(PathBuf),
    /// `--mqueue`.
    Mqueue(PathBuf),
    /// `--dir`.
    Dir(PathBuf),
    /// `--symlink TARGET DEST`.
    Symlink(PathBuf, PathBuf),
    /// `--remount-ro`.
    RemountRo(PathBuf),
    /// `--mask`.
    Mask(PathBuf),
    /// `--setenv`.
    Setenv(OsString, OsString),
    /// `--unsetenv`.
    Unsetenv(OsString),
    /// `--clearenv`.
    Clearenv,
    /// `--bind-fd FD DEST` / `--ro-bind-fd FD DEST` (bubblewrap dialect).
    BindFd {
        /// `--ro-bind-fd`.
        ro: bool,
        /// The fd, as given.
        fd: i32,
        /// Path in the sandbox.
        dest: PathBuf,
    },
    /// `--file FD DEST`.
    File(i32, PathBuf),
    /// `--bind-data FD DEST` / `--ro-bind-data FD DEST`.
    BindData {
        /// `--ro-bind-data`.
        ro: bool,
        /// The fd, as given.
        fd: i32,
        /// Path in the sandbox.
        dest: PathBuf,
    },
    /// `--chmod OCTAL PATH`.
    Chmod(String, PathBuf),
    /// `--overlay-src SRC`.
    OverlaySrc(PathBuf),
    /// `--overlay RWSRC WORKDIR DEST`.
    Overlay {
        /// Where writes go (host path).
        upper: PathBuf,
        /// The overlay's work directory (host path).
        work: PathBuf,
        /// Path in the sandbox.
        dest: PathBuf,
    },
    /// `--tmp-overlay DEST`.
    TmpOverlay(PathBuf),
    /// `--ro-overlay DEST`.
    RoOverlay(PathBuf),
}
