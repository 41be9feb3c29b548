//! The namespaces of a sandbox, and writing a new user namespace's maps.
//!
//! Order matters: the user namespace is created first, on its own, so that
//! every other namespace is owned by it (a procfs for the new pid namespace,
//! a devpts, an mqueue can then be mounted with the capabilities the user
//! namespace gives). Its maps are written by the parent, which is still in
//! the caller's user namespace, through saferoot's private procfs.

use std::io::Write;

use rustix::process::Pid;
use rustix::thread::UnshareFlags;
use serde::Serialize;

use crate::sandbox::IdMaps;

/// Which namespaces to create. A mount namespace always is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    /// New user namespace (created first, on its own).
    pub user: bool,
    /// New pid namespace: the sandbox's first process is pid 1.
    pub pid: bool,
    /// New network namespace.
    pub net: bool,
    /// New IPC namespace.
    pub ipc: bool,
    /// New UTS namespace.
    pub uts: bool,
    /// New cgroup namespace.
    pub cgroup: bool,
}

impl Namespaces {
    /// The names of the namespaces created, `mount` first.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = vec!["mount"];
        for (on, name) in [
            (self.user, "user"),
            (self.pid, "pid"),
            (self.net, "network"),
            (self.ipc, "ipc"),
            (self.uts, "uts"),
            (self.cgroup, "cgroup"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }

    /// The namespaces the root filesystem's policy needs to know about
    /// (which sysctls and cgroup mounts are confined), as the library
    /// takes them.
    pub fn spec_namespaces(&self) -> saferoot::rootfs::Namespaces {
        saferoot::rootfs::Namespaces {
            pid: self.pid,
            net: self.net,
            ipc: self.ipc,
            uts: self.uts,
            cgroup: self.cgroup,
        }
    }

    /// The `unshare` flags for everything but the user namespace.
    pub fn unshare_flags(&self) -> UnshareFlags {
        let mut f = UnshareFlags::NEWNS;
        for (on, flag) in [
            (self.pid, UnshareFlags::NEWPID),
            (self.net, UnshareFlags::NEWNET),
            (self.ipc, UnshareFlags::NEWIPC),
            (self.uts, UnshareFlags::NEWUTS),
            (self.cgroup, UnshareFlags::NEWCGROUP),
        ] {
            if on {
                f |= flag;
            }
        }
        f
    }
}

/// Writes `maps` to `/proc/PID/uid_map` and `gid_map` of the child `pid`,
/// which has just unshared its user namespace.
pub fn write_id_maps(pid: Pid, maps: &IdMaps) -> Result<(), String> {
    let procfs = saferoot::procfs::Procfs::new().map_err(|e| e.to_string())?;
    for (file, list) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
        let sub = format!("{}/{file}", pid.as_raw_nonzero());
        let text = IdMaps::text(list);
        let mut f = procfs
            .open_root(&sub, rustix::fs::OFlags::WRONLY)
            .map_err(|e| format!("open /proc/{sub}: {e}"))?;
        f.write_all(text.as_bytes()).map_err(|e| {
            format!(
                "write {:?} to /proc/{sub}: {e}",
                text.trim_end().replace('\n', "; ")
            )
        })?;
    }
    Ok(())
}
