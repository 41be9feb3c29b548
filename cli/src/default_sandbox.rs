//! The embedded default sandbox of `saferoot run -- CMD`: built from what
//! the host has, so it works on a fresh machine with nothing downloaded.
//!
//! - `/usr`, `/bin`, `/sbin`, `/lib`, `/lib64`, `/lib32`, `/libx32`: each
//!   that exists on the host is bound read-only; one that is a symlink on
//!   the host (merged-usr: `/bin -> usr/bin`) is recreated as the same
//!   symlink instead;
//! - `/etc`: bound read-only;
//! - `/proc`: a fresh procfs (of the sandbox's own pid namespace), with
//!   `/proc/sys` and the other kernel knobs read-only and the usual
//!   sensitive files masked, as container runtimes do (the library's
//!   `policy::DEFAULT_READONLY_PATHS` and `policy::DEFAULT_MASKED_PATHS`);
//! - `/dev`: a tmpfs with the default devices, a private devpts and
//!   `/dev/shm` (added by [`crate::bwrap`] for every root without a `/dev`);
//! - `/tmp` (mode 1777) and `/run`: new tmpfs.
//!
//! The namespaces (mount, pid, ipc, uts) and the hostname are set in
//! [`crate::bwrap::sandbox_from_flags`].

use std::path::{Path, PathBuf};

use saferoot::rootfs::policy;

use crate::bwrap::{BindFlavor, Op};

/// Host directories bound read-only when they are directories, recreated as
/// symlinks when they are symlinks.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc",
];

/// The flags the default sandbox stands for, as if they had been given.
pub fn ops() -> Vec<Op> {
    let mut ops = Vec::new();
    for dir in SYSTEM_DIRS {
        let path = Path::new(dir);
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(path) {
                ops.push(Op::Symlink(target, path.to_path_buf()));
            }
        } else if meta.is_dir() {
            ops.push(Op::Bind {
                flavor: BindFlavor::Ro,
                try_: false,
                src: path.to_path_buf(),
                dest: path.to_path_buf(),
            });
        }
    }
    ops.push(Op::Proc(PathBuf::from("/proc")));
    ops.push(Op::Perms("1777".into()));
    ops.push(Op::Tmpfs(PathBuf::from("/tmp")));
    ops.push(Op::Tmpfs(PathBuf::from("/run")));
    // The library's default read-only and masked paths (the sandbox has
    // no /sys, so only those in /proc).
    for p in policy::DEFAULT_READONLY_PATHS {
        ops.push(Op::RemountRo(PathBuf::from(p.path)));
    }
    for p in policy::DEFAULT_MASKED_PATHS
        .iter()
        .filter(|p| p.path.starts_with("/proc/"))
    {
        ops.push(Op::Mask(PathBuf::from(p.path)));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_host_layout() {
        let ops = ops();
        for dir in SYSTEM_DIRS {
            let meta = std::fs::symlink_metadata(dir);
            let found = ops.iter().any(|op| match op {
                Op::Bind { dest, .. } => dest == Path::new(dir),
                Op::Symlink(_, dest) => dest == Path::new(dir),
                _ => false,
            });
            assert_eq!(found, meta.is_ok(), "{dir}");
        }
        assert!(ops.contains(&Op::Proc("/proc".into())));
        assert!(ops.contains(&Op::Tmpfs("/tmp".into())));
    }
}
