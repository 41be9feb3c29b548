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
/// which has just unshared its user namespace. When the kernel refuses a
/// map (it takes the whole map in one write and does not say which line it
/// objects to), the message names the line that is the likely cause and
/// why; see [`explain_map_refusal`].
///
/// `procfs` must be one made in saferoot's own pid namespace (the child's
/// pid is looked up in it).
pub fn write_id_maps(
    pid: Pid,
    maps: &IdMaps,
    procfs: &saferoot::procfs::Procfs,
) -> Result<(), String> {
    for (file, list) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
        let sub = format!("{}/{file}", pid.as_raw_nonzero());
        let text = IdMaps::text(list);
        let mut f = procfs
            .open_root(&sub, rustix::fs::OFlags::WRONLY)
            .map_err(|e| format!("open /proc/{sub}: {e}"))?;
        f.write_all(text.as_bytes()).map_err(|e| {
            // The ids saferoot itself has: the host ids of a map must lie
            // among them.
            let own = procfs.open_thread_self(file).ok().and_then(|mut f| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut f, &mut s)
                    .ok()
                    .map(|_| s)
            });
            format!(
                "the kernel refused writing {:?} to /proc/{sub}: {e}; {}",
                text.trim_end().replace('\n', "; "),
                explain_map_refusal(file, list, e.raw_os_error(), own.as_deref())
            )
        })?;
    }
    Ok(())
}

/// Ranges `[first, first + size)` as u64, so that the end never wraps.
fn range(first: u32, size: u32) -> (u64, u64) {
    (u64::from(first), u64::from(first) + u64::from(size))
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Why the kernel most likely refused the map `list` for `file`
/// (`uid_map` or `gid_map`) with `errno`, naming the line (1-based, as
/// written) that causes it. `own` is the text of saferoot's own map of the
/// same kind (`/proc/thread-self/uid_map`), whose first column and count
/// say which ids saferoot's user namespace has.
///
/// The kernel's rules (`map_write` in kernel/user_namespace.c): `EINVAL`
/// for a line with size 0, an id of 4294967295, a range that wraps past
/// 2^32, two lines whose container ranges or host ranges overlap, or more
/// than 340 lines; `EPERM` when a host range is not mapped in the writer's
/// own user namespace, or when the writer lacks `CAP_SETUID`/`CAP_SETGID`
/// there (then only one line, mapping the writer's own id, is allowed, and
/// for `gid_map` only after `setgroups` was set to `deny`).
pub fn explain_map_refusal(
    file: &str,
    list: &[saferoot::rootfs::spec::IdMapping],
    errno: Option<i32>,
    own: Option<&str>,
) -> String {
    let line = |i: usize| {
        let m = &list[i];
        format!(
            "{file} line {} \"{} {} {}\"",
            i + 1,
            m.container_id,
            m.host_id,
            m.size
        )
    };
    match errno {
        Some(libc::EINVAL) => {
            for (i, m) in list.iter().enumerate() {
                if m.size == 0 {
                    return format!("{} maps no ids (size 0)", line(i));
                }
                if m.container_id == u32::MAX || m.host_id == u32::MAX {
                    return format!("{} uses id 4294967295, which is not a valid id", line(i));
                }
                let (c, h) = (range(m.container_id, m.size), range(m.host_id, m.size));
                if c.1 > 1 << 32 || h.1 > 1 << 32 {
                    return format!("{} runs past id 4294967295", line(i));
                }
            }
            for (j, b) in list.iter().enumerate() {
                for (i, a) in list.iter().enumerate().take(j) {
                    if overlap(range(a.container_id, a.size), range(b.container_id, b.size)) {
                        return format!(
                            "{} overlaps {} in container ids (each container id may be \
                             mapped once)",
                            line(j),
                            line(i)
                        );
                    }
                    if overlap(range(a.host_id, a.size), range(b.host_id, b.size)) {
                        return format!(
                            "{} overlaps {} in host ids (each host id may be mapped once)",
                            line(j),
                            line(i)
                        );
                    }
                }
            }
            if list.len() > 340 {
                return format!(
                    "{file} has {} lines; the kernel takes at most 340",
                    list.len()
                );
            }
            format!("no line of {file} breaks the kernel's rules that saferoot knows of")
        }
        Some(libc::EPERM) => {
            let own_ranges: Vec<(u64, u64)> = own
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let w: Vec<u32> = l
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    (w.len() == 3).then(|| range(w[0], w[2]))
                })
                .collect();
            if own.is_some() {
                for (i, m) in list.iter().enumerate() {
                    let (mut at, end) = range(m.host_id, m.size);
                    // Walk the host range through saferoot's own ranges.
                    while at < end {
                        match own_ranges.iter().find(|r| r.0 <= at && at < r.1) {
                            Some(r) => at = r.1,
                            None => break,
                        }
                    }
                    if at < end {
                        return format!(
                            "{}: host id {at} is not mapped in saferoot's own user namespace \
                             (its {file} is {:?}); a namespace can only map ids its parent has",
                            line(i),
                            own.unwrap_or_default().trim_end().replace('\n', "; ")
                        );
                    }
                }
            }
            let cap = if file == "gid_map" {
                "CAP_SETGID"
            } else {
                "CAP_SETUID"
            };
            format!(
                "every host id is mapped in saferoot's own user namespace, so saferoot most \
                 likely lacks {cap} there: without it, {file} may only have one line that maps \
                 saferoot's own {} id{}",
                if file == "gid_map" { "group" } else { "user" },
                if file == "gid_map" {
                    ", written after setgroups is set to deny"
                } else {
                    ""
                }
            )
        }
        _ => format!("{file} could not be written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saferoot::rootfs::spec::IdMapping;

    fn m(container_id: u32, host_id: u32, size: u32) -> IdMapping {
        IdMapping {
            container_id,
            host_id,
            size,
        }
    }

    #[test]
    fn map_refusals_name_the_line() {
        let why = explain_map_refusal(
            "uid_map",
            &[m(0, 0, 10), m(5, 100, 10)],
            Some(libc::EINVAL),
            None,
        );
        assert!(why.contains("uid_map line 2 \"5 100 10\""), "{why}");
        assert!(why.contains("line 1"), "{why}");
        assert!(why.contains("container ids"), "{why}");
        let why = explain_map_refusal(
            "gid_map",
            &[m(0, 0, 10), m(50, 5, 1)],
            Some(libc::EINVAL),
            None,
        );
        assert!(
            why.contains("gid_map line 2") && why.contains("host ids"),
            "{why}"
        );
        let why = explain_map_refusal("uid_map", &[m(0, 0, 0)], Some(libc::EINVAL), None);
        assert!(why.contains("line 1") && why.contains("size 0"), "{why}");
        let why = explain_map_refusal(
            "uid_map",
            &[m(0, u32::MAX - 1, 5)],
            Some(libc::EINVAL),
            None,
        );
        assert!(why.contains("line 1") && why.contains("past"), "{why}");
        let own = "         0          0          1\n";
        let why = explain_map_refusal(
            "uid_map",
            &[m(0, 0, 1), m(1, 1000, 10)],
            Some(libc::EPERM),
            Some(own),
        );
        assert!(why.contains("uid_map line 2 \"1 1000 10\""), "{why}");
        assert!(why.contains("host id 1000 is not mapped"), "{why}");
        let why = explain_map_refusal("gid_map", &[m(0, 0, 1)], Some(libc::EPERM), Some(own));
        assert!(why.contains("CAP_SETGID"), "{why}");
    }
}
