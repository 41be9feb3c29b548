//! Where mounts may go: the checks runc makes on mount destinations, made on
//! the resolved inode instead of on a path string.

use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;

use crate::path::Handle;
use crate::{Error, Result};

/// Paths inside `/proc` that may be mounted over (the files lxcfs
/// provides). Nothing else inside `/proc` may be a mount destination.
pub const PROC_ALLOWLIST: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// `path` with `.` and `..` folded lexically (`..` at the top stays at the
/// top), as the root-confined resolver would see it before symlinks.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// How a mount destination relates to `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcPlacement {
    /// Not in `/proc`.
    Outside,
    /// `/proc` itself.
    ProcItself,
    /// A path on the lxcfs allowlist.
    Allowed,
}

/// Checks a mount destination against the /proc policy and refuses the
/// root itself. `dest` must be absolute.
pub fn check_destination(dest: &Path) -> Result<ProcPlacement> {
    let cleaned = clean(dest);
    if cleaned == Path::new("/") {
        return Err(Error::invalid_at(
            "check mount destination",
            dest,
            "mounting over the root itself is not allowed",
        ));
    }
    if cleaned == Path::new("/proc") {
        return Ok(ProcPlacement::ProcItself);
    }
    if cleaned.starts_with("/proc") {
        if PROC_ALLOWLIST.iter().any(|p| cleaned == Path::new(p)) {
            return Ok(ProcPlacement::Allowed);
        }
        return Err(Error::invalid_at(
            "check mount destination",
            dest,
            "mounts inside /proc are only allowed on the lxcfs paths",
        ));
    }
    Ok(ProcPlacement::Outside)
}

/// The filesystem magic numbers `fstatfs` reports.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Whether the inode `h` lives on a procfs.
pub fn is_on_procfs(h: &Handle) -> Result<bool> {
    let st = rustix::fs::fstatfs(h).map_err(|e| Error::os("fstatfs", e))?;
    Ok(st.f_type as i64 == PROC_SUPER_MAGIC)
}

/// Whether the inode `h` lives on a sysfs.
pub fn is_on_sysfs(h: &Handle) -> Result<bool> {
    let st = rustix::fs::fstatfs(h).map_err(|e| Error::os("fstatfs", e))?;
    Ok(st.f_type as i64 == SYSFS_MAGIC)
}

/// For a proc or sysfs mount: the destination must be a real directory,
/// not a symlink to one (CVE-2019-19921, CVE-2023-27561). `h` was resolved
/// without following the last component.
pub fn check_real_directory(h: &Handle, dest: &Path, fstype: &str) -> Result<()> {
    let ft = h.file_type().map_err(|e| e.with_path(dest))?;
    if ft == FileType::Directory {
        return Ok(());
    }
    Err(Error::unsafe_at(
        "check mount destination",
        dest,
        format!(
            "a {fstype} mount needs a real directory here, found a {}",
            crate::path::type_name(ft)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_policy() {
        assert_eq!(
            check_destination(Path::new("/proc")).unwrap(),
            ProcPlacement::ProcItself
        );
        assert_eq!(
            check_destination(Path::new("/proc/./")).unwrap(),
            ProcPlacement::ProcItself
        );
        assert_eq!(
            check_destination(Path::new("/proc/cpuinfo")).unwrap(),
            ProcPlacement::Allowed
        );
        assert_eq!(
            check_destination(Path::new("/x/../proc/net/dev")).unwrap(),
            ProcPlacement::Allowed
        );
        for bad in [
            "/proc/self",
            "/proc/sys/kernel/core_pattern",
            "/../proc/1/attr",
        ] {
            let e = check_destination(Path::new(bad)).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad}");
        }
        for root in ["/", "/..", "/a/..", "/."] {
            assert!(check_destination(Path::new(root)).is_err(), "{root}");
        }
        assert_eq!(
            check_destination(Path::new("/procfoo")).unwrap(),
            ProcPlacement::Outside
        );
        assert_eq!(clean(Path::new("/a/../../b/./c")), Path::new("/b/c"));
    }
}
