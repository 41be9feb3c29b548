//! The live audit: a process's mount namespace as the kernel reports it
//! (statmount/listmount, or mountinfo).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use saferoot::rootfs::policy::PROC_ALLOWLIST;
use saferoot::{MountAttr, MountEntry, MountTable};

use crate::errors::Escaped;
use crate::findings::{Finding, Severity};

/// Filesystems that hold no files a program could use for setuid or device
/// tricks: their flags do not matter for those findings.
const VIRTUAL: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "nsfs",
    "autofs",
    "efivarfs",
    "selinuxfs",
    "rpc_pipefs",
    "hugetlbfs",
];

/// What is known about the host, for telling leaks apart.
#[derive(Debug, Default)]
pub struct HostView {
    /// The audited namespace is pid 1's (the host's own).
    pub is_host: bool,
    /// Peer groups of shared mounts in pid 1's namespace.
    pub shared_groups: HashSet<u64>,
}

fn shown(e: &MountEntry) -> String {
    e.mount_point.escaped()
}

fn is_virtual(e: &MountEntry) -> bool {
    let base = e.fs_type.split('.').next().unwrap_or("");
    VIRTUAL.contains(&base)
}

/// Whether `e` is a mask: a read-only mount, or the host's /dev/null bound
/// over a file.
fn is_mask(e: &MountEntry) -> bool {
    e.attrs.contains(MountAttr::RDONLY)
        || (matches!(e.fs_type.as_str(), "devtmpfs" | "tmpfs") && e.root == Path::new("/null"))
}

/// Everything the live audit finds in `t`.
pub fn audit(t: &MountTable, host: &HostView) -> Vec<Finding> {
    let mut out = Vec::new();
    if host.is_host {
        out.push(
            Finding::new(Severity::Info, "host-namespace", "/")
                .problem("this is the host's own mount namespace (the one pid 1 is in)")
                .why("findings about leaks to or from the host, and host filesystems, do not apply; the rest describes the host itself")
                .fix("audit a container's process with --pid PID"),
        );
    }
    let own_groups: HashSet<u64> = t.iter().filter_map(|e| e.propagation.shared).collect();
    for e in t.iter() {
        check_propagation(e, host, &own_groups, &mut out);
        check_writable_flags(e, &mut out);
        if !host.is_host {
            check_host_fs(e, &mut out);
        }
        if e.fs_type == "sysfs" && !e.attrs.contains(MountAttr::RDONLY) {
            out.push(
                Finding::new(Severity::High, "sysfs-writable", shown(e))
                    .problem("sysfs is mounted read-write")
                    .why("root in the namespace can change host devices and kernel state through it (uevent_helper, power, firmware loading)")
                    .fix("mount sysfs with ro"),
            );
        }
    }
    check_proc(t, &mut out);
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
            Finding::new(severity, "shared-mount", shown(e))
                .problem(format!("the mount is shared (peer group {g}) with {whom}"))
                .why("mounts made below it propagate to its peers and theirs come back: a container can make mounts appear on the host, or be handed host mounts")
                .fix("make it a slave (receive only) or private: mount_setattr/mount --make-rslave"),
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
            Finding::new(severity, "slave-mount", shown(e))
                .problem(format!("the mount receives mount events from {whence} (master peer group {g})"))
                .why("mounts made there below this point (a USB disk, a network share, another container's volumes) appear inside this namespace too")
                .fix("make it private if the namespace should not see new outside mounts"),
        );
    }
}

fn check_writable_flags(e: &MountEntry, out: &mut Vec<Finding>) {
    if e.attrs.contains(MountAttr::RDONLY) || is_virtual(e) {
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
            Finding::new(severity, "writable-setuid-mount", shown(e))
                .problem(format!("the {} mount is writable and honours setuid bits (no nosuid)", e.fs_type.escaped()))
                .why("a setuid-root program written there (by a process that can chown, or copied in from elsewhere) is a way to regain privileges")
                .fix("mount it nosuid (or read-only)"),
        );
    }
    let dev_dir = e.mount_point == Path::new("/dev") || e.fs_type == "devtmpfs";
    if !e.attrs.contains(MountAttr::NODEV) && !dev_dir {
        out.push(
            Finding::new(severity, "writable-device-mount", shown(e))
                .problem(format!("the {} mount is writable and allows device nodes (no nodev)", e.fs_type.escaped()))
                .why("a device node created there (mknod, or one written by another namespace) gives raw access to host devices such as disks")
                .fix("mount it nodev (or read-only)"),
        );
    }
}

fn check_host_fs(e: &MountEntry, out: &mut Vec<Finding>) {
    if e.dev.0 == 0 {
        return;
    }
    let rw = !e.attrs.contains(MountAttr::RDONLY);
    out.push(
        Finding::new(
            if rw { Severity::Medium } else { Severity::Low },
            "host-filesystem",
            shown(e),
        )
        .problem(format!(
            "a block-device filesystem ({} {} on {}:{}{}) is mounted here, {}",
            e.fs_type.escaped(),
            e.source.as_deref().unwrap_or("?").escaped(),
            e.dev.0,
            e.dev.1,
            if e.root == Path::new("/") {
                String::new()
            } else {
                format!(", subtree {}", e.root.escaped())
            },
            if rw { "writable" } else { "read-only" }
        ))
        .why("a host disk in the namespace exposes host files; writable, it lets the namespace change them (and, without nosuid/nodev, plant setuid programs or device nodes)")
        .fix("bind only the directories needed, read-only where possible"),
    );
}

fn check_proc(t: &MountTable, out: &mut Vec<Finding>) {
    let procs: Vec<&MountEntry> = t
        .iter()
        .filter(|e| e.fs_type == "proc" && e.root == Path::new("/"))
        .collect();
    for p in procs {
        if !p.attrs.contains(MountAttr::RDONLY) {
            let sys = p.mount_point.join("sys");
            let covered = t.find_by_mount_point(&sys).is_some_and(is_mask);
            if !covered {
                out.push(
                    Finding::new(Severity::High, "proc-sys-writable", sys.escaped())
                        .problem("procfs is mounted read-write and its sys/ is not covered by a read-only mount")
                        .why("root in the namespace can change host kernel settings, such as kernel.core_pattern, which makes the host run a program of its choosing as root")
                        .fix("bind <proc>/sys over itself read-only (runc's readonlyPaths do)"),
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
            if PROC_ALLOWLIST.iter().any(|a| as_proc == Path::new(a)) || is_mask(m) {
                continue;
            }
            out.push(
                Finding::new(Severity::High, "proc-overmount", shown(m))
                    .problem(format!(
                        "a writable {} mount covers the procfs entry {}",
                        m.fs_type.escaped(),
                        as_proc.escaped()
                    ))
                    .why("what the runtime, the LSM or the kernel interface reads and writes there is no longer procfs: confinement writes can go nowhere, or somewhere chosen")
                    .cve("CVE-2019-19921")
                    .fix(format!(
                        "remove it; only {} may be mounted over (and masks must be read-only or /dev/null)",
                        PROC_ALLOWLIST.join(", ")
                    )),
            );
        }
    }
}
