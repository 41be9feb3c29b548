//! The live audit: a process's mount namespace as the kernel reports it
//! (statmount/listmount, or mountinfo), judged by the library's policy.
//!
//! Masks have known shapes (`policy::is_mask_shape`): saferoot's (the
//! host's `/dev/null` bound on a file, an empty read-only tmpfs on a
//! directory) and runc's and crun's (the container's `/dev/null` bound on a
//! file, a read-only tmpfs): those are not leaks. What leaks is reported:
//! writable procfs and sysfs, shared propagation with the host, devtmpfs,
//! host block devices, host filesystems mounted read-write, writable
//! cgroup hierarchies (release_agent).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use saferoot::rootfs::policy::{self, rules, DeviceClass};
use saferoot::rootfs::DeviceKind;
use saferoot::{MountAttr, MountEntry, MountTable, Root};

use crate::findings::{self, Finding, Severity};

/// What is known about the host, for telling leaks apart.
#[derive(Debug, Default)]
pub struct HostView {
    /// The audited namespace is pid 1's (the host's own).
    pub is_host: bool,
    /// Peer groups of shared mounts in pid 1's namespace.
    pub shared_groups: HashSet<u64>,
}

/// The root directory of the audited namespace (`/` for `--self`,
/// `/proc/PID/root` for `--pid`), for looking at what the mount table only
/// names: whether a mask really is the null device, which device nodes a
/// `/dev` holds. Paths are resolved inside it, never followed out.
pub struct NsRoot {
    root: Root,
}

impl NsRoot {
    /// Opens the root of `pid`'s namespace (this process's when `None`);
    /// `None` when it cannot be opened (the audit then goes by the table
    /// alone).
    pub fn open(pid: Option<u32>) -> Option<NsRoot> {
        let path = match pid {
            Some(p) => PathBuf::from(format!("/proc/{p}/root")),
            None => PathBuf::from("/"),
        };
        // The magic link is followed by an ordinary open (the kernel's own
        // lookup of the process's root); everything below it is resolved
        // confined to the directory it gives.
        let fd = rustix::fs::open(
            &path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        Root::from_fd(fd).ok().map(|root| NsRoot { root })
    }

    /// Whether the file at `p` is the character device 1:3; `None` when
    /// it cannot be looked at.
    fn is_null_device(&self, p: &Path) -> Option<bool> {
        let st = self.root.resolve_nofollow(p).ok()?.stat().ok()?;
        Some(st.file_type == FileType::CharacterDevice && st.rdev == rustix::fs::makedev(1, 3))
    }

    /// The device at `p`, when it is one: `(kind, major, minor)`.
    fn device_at(&self, p: &Path) -> Option<(DeviceKind, u32, u32)> {
        let st = self.root.resolve_nofollow(p).ok()?.stat().ok()?;
        let kind = match st.file_type {
            FileType::CharacterDevice => DeviceKind::Char,
            FileType::BlockDevice => DeviceKind::Block,
            _ => return None,
        };
        Some((kind, rustix::fs::major(st.rdev), rustix::fs::minor(st.rdev)))
    }

    /// The block and character devices directly in the directory `dir`:
    /// `(path, kind, major, minor, mode)`.
    fn devices_in(&self, dir: &Path) -> Vec<(PathBuf, DeviceKind, u32, u32, u32)> {
        let mut out = Vec::new();
        let Ok(h) = self.root.resolve_nofollow(dir) else {
            return out;
        };
        let Ok(f) = h.reopen(rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY) else {
            return out;
        };
        let Ok(mut entries) = rustix::fs::Dir::read_from(&f) else {
            return out;
        };
        while let Some(Ok(e)) = entries.next() {
            let name = e.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let Ok(st) = rustix::fs::statat(&f, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let kind = match FileType::from_raw_mode(st.st_mode) {
                FileType::BlockDevice => DeviceKind::Block,
                FileType::CharacterDevice => DeviceKind::Char,
                _ => continue,
            };
            let rdev = st.st_rdev;
            out.push((
                dir.join(std::ffi::OsStr::new(&*String::from_utf8_lossy(
                    name.to_bytes(),
                ))),
                kind,
                rustix::fs::major(rdev),
                rustix::fs::minor(rdev),
                st.st_mode & 0o7777,
            ));
        }
        out
    }
}

fn shown(e: &MountEntry) -> String {
    crate::errors::escape(&e.mount_point)
}

fn is_pseudo(e: &MountEntry) -> bool {
    let base = e.fs_type.split('.').next().unwrap_or("");
    policy::PSEUDO_FILESYSTEMS.contains(&base)
}

/// Whether `e` is a mask of a known shape; a null-device mask is checked
/// to be the null device when the namespace's root can be looked at.
fn is_mask(e: &MountEntry, ns: Option<&NsRoot>) -> bool {
    let ro = e.attrs.contains(MountAttr::RDONLY);
    if !policy::is_mask_shape(&e.fs_type, &e.root, ro) {
        return false;
    }
    ro || ns
        .and_then(|n| n.is_null_device(&e.mount_point))
        .unwrap_or(true)
}

/// Everything the live audit finds in `t`.
pub fn audit(t: &MountTable, host: &HostView, ns: Option<&NsRoot>) -> Vec<Finding> {
    let mut out = Vec::new();
    if host.is_host {
        out.push(
            Finding::of(&findings::HOST_NAMESPACE, "/")
                .message("this is the host's own mount namespace (the one pid 1 is in)"),
        );
    }
    let own_groups: HashSet<u64> = t.iter().filter_map(|e| e.propagation.shared).collect();
    for e in t.iter() {
        check_propagation(e, host, &own_groups, &mut out);
        let mask = is_mask(e, ns);
        if !mask {
            check_writable_flags(e, &mut out);
        }
        if !host.is_host {
            check_host_fs(e, &mut out);
            if !mask {
                check_host_views(e, ns, &mut out);
            }
        }
        if e.fs_type == "sysfs" && !e.attrs.contains(MountAttr::RDONLY) {
            out.push(
                Finding::of(&rules::SYSFS_WRITABLE, shown(e))
                    .message("sysfs is mounted read-write"),
            );
        }
    }
    check_proc(t, ns, &mut out);
    if !host.is_host {
        if let Some(ns) = ns {
            check_dev_nodes(t, ns, &mut out);
        }
    }
    out
}

fn check_propagation(
    e: &MountEntry,
    host: &HostView,
    own_groups: &HashSet<u64>,
    out: &mut Vec<Finding>,
) {
    if let Some(g) = e.propagation.shared {
        let (severity, whom) = if host.is_host {
            (Severity::Info, "other mounts of the host")
        } else if host.shared_groups.contains(&g) {
            (Severity::High, "mounts in the host's namespace")
        } else {
            (Severity::Medium, "the other members of its peer group")
        };
        out.push(
            Finding::of(&rules::SHARED_MOUNT, shown(e))
                .severity(severity)
                .message(format!("the mount is shared (peer group {g}) with {whom}")),
        );
    }
    if let Some(g) = e.propagation.master {
        // A master inside this namespace is its own business.
        let (severity, whence) = if host.is_host || own_groups.contains(&g) {
            return;
        } else if host.shared_groups.contains(&g) {
            (Severity::Medium, "the host's mount namespace")
        } else {
            (Severity::Low, "a peer group outside this namespace")
        };
        out.push(
            Finding::of(&rules::SLAVE_MOUNT, shown(e))
                .severity(severity)
                .message(format!(
                    "the mount receives mount events from {whence} (master peer group {g})"
                )),
        );
    }
}

fn check_writable_flags(e: &MountEntry, out: &mut Vec<Finding>) {
    if e.attrs.contains(MountAttr::RDONLY) || is_pseudo(e) || e.fs_type == "devtmpfs" {
        return;
    }
    let root = e.mount_point == Path::new("/");
    let severity = if root {
        Severity::Low
    } else {
        Severity::Medium
    };
    if !e.attrs.contains(MountAttr::NOSUID) {
        out.push(
            Finding::of(&rules::WRITABLE_SETUID_MOUNT, shown(e))
                .severity(severity)
                .message(format!(
                    "the {} mount is writable and honours setuid bits (no nosuid)",
                    e.fs_type
                )),
        );
    }
    if !e.attrs.contains(MountAttr::NODEV) && e.mount_point != Path::new("/dev") {
        out.push(
            Finding::of(&rules::WRITABLE_DEVICE_MOUNT, shown(e))
                .severity(severity)
                .message(format!(
                    "the {} mount is writable and allows device nodes (no nodev)",
                    e.fs_type
                )),
        );
    }
}

fn check_host_fs(e: &MountEntry, out: &mut Vec<Finding>) {
    if e.dev.0 == 0 {
        return;
    }
    let rw = !e.attrs.contains(MountAttr::RDONLY);
    let severity = match (rw, e.mount_point == Path::new("/")) {
        (false, _) => Severity::Low,
        // The namespace's own root, writable: what a rootfs on a plain
        // directory of a host disk is.
        (true, true) => Severity::Medium,
        (true, false) => Severity::High,
    };
    out.push(
        Finding::of(&rules::HOST_FILESYSTEM, shown(e))
            .severity(severity)
            .message(format!(
                "a block-device filesystem ({} {} on {}:{}{}) is mounted here, {}",
                e.fs_type,
                e.source.as_deref().unwrap_or("?"),
                e.dev.0,
                e.dev.1,
                if e.root == Path::new("/") {
                    String::new()
                } else {
                    format!(", subtree {}", crate::errors::escape(&e.root))
                },
                if rw { "writable" } else { "read-only" }
            )),
    );
}

/// devtmpfs and writable cgroup hierarchies: host views a container
/// should not have. One usual device node of the host's devtmpfs bound on
/// a file (how saferoot and runc give a container in a user namespace its
/// default devices) is not a view of the devtmpfs.
fn check_host_views(e: &MountEntry, ns: Option<&NsRoot>, out: &mut Vec<Finding>) {
    let rw = !e.attrs.contains(MountAttr::RDONLY);
    let usual_node = || {
        e.root != Path::new("/")
            && ns
                .and_then(|n| n.device_at(&e.mount_point))
                .is_some_and(|(k, ma, mi)| policy::device_class(k, ma, mi) == DeviceClass::Usual)
    };
    match e.fs_type.as_str() {
        "devtmpfs" if !usual_node() => out.push(
            Finding::of(&rules::DEVTMPFS_MOUNT, shown(e)).message(format!(
                "a devtmpfs (the host's device filesystem{}) is mounted here, {}",
                if e.root == Path::new("/") {
                    String::new()
                } else {
                    format!(", subtree {}", crate::errors::escape(&e.root))
                },
                if rw { "writable" } else { "read-only" }
            )),
        ),
        "cgroup" if rw => out.push(
            Finding::of(&rules::CGROUP_WRITABLE, shown(e)).message(format!(
                "a cgroup v1 hierarchy ({}) is mounted read-write: its release_agent is run by the host as root",
                e.source.as_deref().unwrap_or("cgroup")
            )),
        ),
        "cgroup2" if rw => out.push(
            Finding::of(&rules::CGROUP_WRITABLE, shown(e))
                .severity(Severity::Medium)
                .cve(None)
                .message(format!(
                    "the cgroup v2 hierarchy is mounted read-write (subtree {}): limits of the groups below it can be changed",
                    e.root.display()
                )),
        ),
        _ => {}
    }
}

/// Device nodes of the host in the namespace's `/dev` directories (a
/// tmpfs at a mount point named `dev`).
fn check_dev_nodes(t: &MountTable, ns: &NsRoot, out: &mut Vec<Finding>) {
    for e in t.iter() {
        if e.fs_type != "tmpfs" || e.mount_point.file_name() != Some(std::ffi::OsStr::new("dev")) {
            continue;
        }
        for (path, kind, major, minor, mode) in ns.devices_in(&e.mount_point) {
            let rule = match policy::device_class(kind, major, minor) {
                DeviceClass::Block => &rules::DEVICE_BLOCK,
                DeviceClass::Memory => &rules::DEVICE_MEMORY,
                _ => continue,
            };
            out.push(
                Finding::of(rule, crate::errors::escape(&path)).message(format!(
                    "{} is the {} device {major}:{minor} of the host, mode {mode:04o}",
                    path.display(),
                    if kind == DeviceKind::Block {
                        "block"
                    } else {
                        "character"
                    },
                )),
            );
        }
    }
}

fn check_proc(t: &MountTable, ns: Option<&NsRoot>, out: &mut Vec<Finding>) {
    let procs: Vec<&MountEntry> = t
        .iter()
        .filter(|e| e.fs_type == "proc" && e.root == Path::new("/"))
        .collect();
    for p in &procs {
        if !p.attrs.contains(MountAttr::RDONLY) {
            let sys = p.mount_point.join("sys");
            let covered = t.find_by_mount_point(&sys).is_some_and(|e| is_mask(e, ns));
            if !covered {
                out.push(
                    Finding::of(&rules::PROC_SYS_WRITABLE, crate::errors::escape(&sys)).message(
                        "procfs is mounted read-write and its sys/ is not covered by a read-only mount",
                    ),
                );
            }
        }
        for m in t.iter() {
            let Ok(rel) = m.mount_point.strip_prefix(&p.mount_point) else {
                continue;
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let as_proc = PathBuf::from("/proc").join(rel);
            if policy::PROC_ALLOWLIST
                .iter()
                .any(|a| as_proc == Path::new(a))
                || is_mask(m, ns)
            {
                continue;
            }
            out.push(
                Finding::of(&rules::PROC_OVERMOUNT, shown(m)).message(format!(
                    "a writable {} mount covers the procfs entry {}",
                    m.fs_type,
                    as_proc.display()
                )),
            );
        }
    }
    // Pieces of a procfs bound somewhere else, writable: out of reach of
    // the masks and read-only paths of /proc.
    for e in t.iter() {
        if e.fs_type != "proc"
            || e.root == Path::new("/")
            || e.attrs.contains(MountAttr::RDONLY)
            || procs
                .iter()
                .any(|p| e.mount_point.starts_with(&p.mount_point))
        {
            continue;
        }
        let rule = if e.root.starts_with("/sys") {
            &rules::PROC_SYS_WRITABLE
        } else {
            &rules::PROC_WRITABLE
        };
        out.push(Finding::of(rule, shown(e)).message(format!(
            "the procfs subtree {} is bound here read-write",
            e.root.display()
        )));
    }
}
