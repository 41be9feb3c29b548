//! What is dangerous, as data, in one place: the `/proc` allowlist, the
//! namespaced sysctls, the pseudo-filesystems a bind may not expose
//! writable, the cgroup rules. [`super::plan()`] refuses by these rules
//! (lexically, before anything changes) and the mount code checks them
//! again on the resolved inode, just before a mount is attached, so that
//! what counts is where a destination really is, not how it is spelled.
//! An audit can judge a spec by the same tables.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;
use serde::Serialize;

use crate::path::{Handle, Root};
use crate::rootfs::spec::Namespaces;
use crate::{Error, Result};

/// Paths inside `/proc` that may be mounted over (the files lxcfs
/// provides, and the two sysctls runc lets it cover). Nothing else inside
/// the container's `/proc` may be a mount destination: the check is made
/// on the resolved inode at mount time (a symlink or `..` that leads into
/// `/proc` is judged by where it leads).
pub const PROC_ALLOWLIST: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/pressure/cpu",
    "/proc/pressure/io",
    "/proc/pressure/memory",
    "/proc/pressure/irq",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// A kind of namespace that a policy rule depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NsKind {
    /// pid namespace.
    Pid,
    /// network namespace.
    Net,
    /// IPC namespace (System V IPC, POSIX message queues).
    Ipc,
    /// UTS namespace (hostname, domain name).
    Uts,
    /// cgroup namespace.
    Cgroup,
}

impl NsKind {
    /// The name used in `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
        }
    }

    /// The `unshare(2)` flag that creates one, for messages.
    pub fn clone_flag(self) -> &'static str {
        match self {
            NsKind::Pid => "CLONE_NEWPID",
            NsKind::Net => "CLONE_NEWNET",
            NsKind::Ipc => "CLONE_NEWIPC",
            NsKind::Uts => "CLONE_NEWUTS",
            NsKind::Cgroup => "CLONE_NEWCGROUP",
        }
    }

    /// The OCI `linux.namespaces[].type` word.
    pub fn oci_name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Net => "network",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
        }
    }

    /// The inode number the kernel gives the initial (host) namespace of
    /// this kind (`PROC_*_INIT_INO`). Fixed since Linux 3.8 for ipc, uts
    /// and pid, 4.6 for cgroup; the network namespace got a fixed one
    /// later (on older kernels its inode is dynamic, never this value, and
    /// the comparison simply finds nothing).
    pub fn initial_inode(self) -> u64 {
        match self {
            NsKind::Ipc => 0xEFFF_FFFF,
            NsKind::Uts => 0xEFFF_FFFE,
            NsKind::Pid => 0xEFFF_FFFC,
            NsKind::Cgroup => 0xEFFF_FFFB,
            NsKind::Net => 0xEFFF_FFF9,
        }
    }
}

/// What the policy says about one sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SysctlRule {
    /// The names the rule covers, dotted: `net.*` (any name below `net`),
    /// `kernel.shm*` (a second component starting with `shm`, nothing
    /// after it), `kernel.hostname` (exactly that).
    pub pattern: &'static str,
    /// The namespace that isolates these sysctls: a container may set them
    /// only when it has that namespace of its own. `None`: host-global, a
    /// container never may.
    pub namespace: Option<NsKind>,
    /// Why, for messages and audit findings.
    pub reason: &'static str,
}

/// The sysctls a namespace isolates, as runc accepts them. A name matched
/// by no rule gets [`SYSCTL_HOST_GLOBAL`].
pub const SYSCTL_RULES: &[SysctlRule] = &[
    SysctlRule {
        pattern: "kernel.msg*",
        namespace: Some(NsKind::Ipc),
        reason: "System V message queue limits belong to the IPC namespace",
    },
    SysctlRule {
        pattern: "kernel.sem",
        namespace: Some(NsKind::Ipc),
        reason: "System V semaphore limits belong to the IPC namespace",
    },
    SysctlRule {
        pattern: "kernel.sem_next_id",
        namespace: Some(NsKind::Ipc),
        reason: "System V semaphore ids belong to the IPC namespace",
    },
    SysctlRule {
        pattern: "kernel.shm*",
        namespace: Some(NsKind::Ipc),
        reason: "System V shared memory limits belong to the IPC namespace",
    },
    SysctlRule {
        pattern: "fs.mqueue.*",
        namespace: Some(NsKind::Ipc),
        reason: "POSIX message queue limits belong to the IPC namespace",
    },
    SysctlRule {
        pattern: "net.*",
        namespace: Some(NsKind::Net),
        reason: "network sysctls belong to the network namespace",
    },
    SysctlRule {
        pattern: "kernel.hostname",
        namespace: Some(NsKind::Uts),
        reason: "the hostname belongs to the UTS namespace",
    },
    SysctlRule {
        pattern: "kernel.domainname",
        namespace: Some(NsKind::Uts),
        reason: "the domain name belongs to the UTS namespace",
    },
];

/// The rule for every sysctl that [`SYSCTL_RULES`] does not name
/// (`kernel.core_pattern`, `kernel.modprobe`, `vm.*`, most of `fs.*`, ...).
pub const SYSCTL_HOST_GLOBAL: SysctlRule = SysctlRule {
    pattern: "*",
    namespace: None,
    reason: "it is not isolated by any namespace: writing it would change the host",
};

/// The components of a sysctl name, split as
/// [`crate::procfs::sysctl_path`] splits it (on `/` when the name has one,
/// else on `.`). Errors for names it refuses.
fn sysctl_components(name: &str) -> Result<Vec<String>> {
    let path = crate::procfs::sysctl_path(name)?;
    Ok(path
        .components()
        .skip(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect())
}

fn pattern_matches(pattern: &str, name: &[String]) -> bool {
    let pat: Vec<&str> = pattern.split('.').collect();
    if pat.last() == Some(&"*") {
        let fixed = &pat[..pat.len() - 1];
        return name.len() > fixed.len() && fixed.iter().zip(name).all(|(p, n)| comp_matches(p, n));
    }
    pat.len() == name.len() && pat.iter().zip(name).all(|(p, n)| comp_matches(p, n))
}

fn comp_matches(pat: &str, comp: &str) -> bool {
    match pat.strip_suffix('*') {
        Some(prefix) => comp.starts_with(prefix),
        None => pat == comp,
    }
}

/// The rule for the sysctl `name` (dotted, or slashed like
/// `net/ipv4/conf/eth0.1/forwarding`). Errors only for names that are not
/// sysctl names at all (see [`crate::procfs::sysctl_path`]).
pub fn sysctl_rule(name: &str) -> Result<SysctlRule> {
    let comps = sysctl_components(name)?;
    Ok(SYSCTL_RULES
        .iter()
        .find(|r| pattern_matches(r.pattern, &comps))
        .copied()
        .unwrap_or(SYSCTL_HOST_GLOBAL))
}

/// Accepts the sysctl `name` for a container with the namespaces `ns`, or
/// refuses it with an [`crate::ErrorKind::InvalidInput`] that names it and says why.
/// Returns the namespace the write will land in.
pub fn check_sysctl(name: &str, ns: &Namespaces) -> Result<NsKind> {
    let rule = sysctl_rule(name)?;
    let op = format!("sysctl {name:?}");
    match rule.namespace {
        None => Err(Error::invalid(op, format!("refused: {}", rule.reason))),
        Some(kind) if !ns.has(kind) => Err(Error::invalid(
            op,
            format!(
                "refused: {}, and the container has no {} namespace of its own \
                 (it would be written in the host's)",
                rule.reason,
                kind.oci_name()
            ),
        )),
        Some(kind) => Ok(kind),
    }
}

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

/// `fstatfs` magic of procfs.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `fstatfs` magic of sysfs.
pub const SYSFS_MAGIC: i64 = 0x6265_6572;
/// `fstatfs` magic of a cgroup v1 hierarchy.
pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
/// `fstatfs` magic of the cgroup v2 (unified) hierarchy.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// The inode number of the root directory of every procfs.
pub const PROC_ROOT_INO: u64 = 1;

/// The filesystems the policy treats specially, told apart by `fstatfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsClass {
    /// A procfs.
    Procfs,
    /// A sysfs.
    Sysfs,
    /// A cgroup v1 hierarchy (has `release_agent`).
    CgroupV1,
    /// The cgroup v2 hierarchy.
    Cgroup2,
    /// Anything else.
    Other,
}

impl FsClass {
    /// What the class is called in messages.
    pub fn describe(self) -> &'static str {
        match self {
            FsClass::Procfs => "procfs",
            FsClass::Sysfs => "the host's sysfs",
            FsClass::CgroupV1 => "a host cgroup v1 hierarchy",
            FsClass::Cgroup2 => "the host's cgroup v2 hierarchy",
            FsClass::Other => "an ordinary filesystem",
        }
    }
}

/// Host filesystems that a bind mount may only expose read-only: a
/// writable view of them changes the host (sysfs knobs, cgroup limits of
/// other groups, a v1 `release_agent` run as host root: CVE-2022-0492). A
/// recursive bind of one is made read-only with every mount below it.
/// The host's `/sys/fs/cgroup` directory itself (a tmpfs holding the v1
/// hierarchies on v1 and hybrid hosts) is treated the same way.
pub const READONLY_BIND_SOURCES: &[FsClass] =
    &[FsClass::Sysfs, FsClass::CgroupV1, FsClass::Cgroup2];

/// Which filesystem the inode `fd` lives on.
pub fn fs_class(fd: impl AsFd) -> Result<FsClass> {
    let st = rustix::fs::fstatfs(fd).map_err(|e| Error::os("fstatfs", e))?;
    #[allow(clippy::unnecessary_cast)]
    Ok(match st.f_type as i64 {
        PROC_SUPER_MAGIC => FsClass::Procfs,
        SYSFS_MAGIC => FsClass::Sysfs,
        CGROUP_SUPER_MAGIC => FsClass::CgroupV1,
        CGROUP2_SUPER_MAGIC => FsClass::Cgroup2,
        _ => FsClass::Other,
    })
}

/// Whether the inode `h` lives on a procfs.
pub fn is_on_procfs(h: &Handle) -> Result<bool> {
    Ok(fs_class(h)? == FsClass::Procfs)
}

/// Whether the inode `h` lives on a sysfs.
pub fn is_on_sysfs(h: &Handle) -> Result<bool> {
    Ok(fs_class(h)? == FsClass::Sysfs)
}

/// How the host's cgroups are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupLayout {
    /// cgroup v2 only: `/sys/fs/cgroup` is the unified hierarchy.
    Unified,
    /// cgroup v1 or hybrid: `/sys/fs/cgroup` holds v1 hierarchies.
    Legacy,
}

/// The cgroup layout of the host, from `fstatfs` of the caller's
/// `/sys/fs/cgroup` (its metadata only).
pub fn host_cgroup_layout() -> Result<CgroupLayout> {
    let host = Root::open("/sys/fs/cgroup")?;
    Ok(match fs_class(&host)? {
        FsClass::Cgroup2 => CgroupLayout::Unified,
        _ => CgroupLayout::Legacy,
    })
}

/// Whether `fd` is the caller's `/sys/fs/cgroup` directory itself.
pub(crate) fn is_host_cgroup_root(fd: impl AsFd) -> Result<bool> {
    let Ok(host) = Root::open("/sys/fs/cgroup") else {
        return Ok(false);
    };
    let a = id_of(fd)?;
    let b = id_of(&host)?;
    Ok((a.0, a.1) == (b.0, b.1))
}

/// Whether a cgroup mount that asks for `readonly` is allowed for a
/// container with namespaces `ns` on a host with `layout`. `fstype` is
/// `cgroup` (OCI's type: a fresh cgroup2 or a bind of the host's
/// hierarchies) or `cgroup2` (always a fresh cgroup2). Returns whether the
/// mount relies on the container's cgroup namespace.
pub fn check_cgroup_mount(
    fstype: &str,
    readonly: bool,
    ns: &Namespaces,
    layout: CgroupLayout,
) -> Result<bool> {
    if readonly {
        return Ok(false);
    }
    if fstype == "cgroup" && layout == CgroupLayout::Legacy {
        return Err(Error::invalid(
            "plan mount",
            "a read-write cgroup mount cannot be confined on a cgroup v1 or hybrid host: \
             the container would get the host's hierarchies writable (release_agent, \
             CVE-2022-0492); mount it ro",
        ));
    }
    if !ns.cgroup {
        return Err(Error::invalid(
            "plan mount",
            "a read-write cgroup mount needs a cgroup namespace of its own (without one \
             the new cgroup2 shows the host's whole hierarchy); add a cgroup namespace or \
             mount it ro",
        ));
    }
    Ok(true)
}

/// `(dev, ino, mount id)` of an fd.
fn id_of(fd: impl AsFd) -> Result<(u64, u64, u64)> {
    let st = rustix::fs::statx(
        fd,
        c"",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID,
    )
    .map_err(|e| Error::os("statx", e))?;
    Ok((
        rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        st.stx_ino,
        st.stx_mnt_id,
    ))
}

/// Where a resolved mount target is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPlace {
    /// The root of the tree being assembled (same mount, same inode).
    TreeRoot,
    /// The container's `/proc` directory itself (what `/proc` resolves to
    /// without following a symlink there).
    ContainerProc,
    /// A procfs file on [`PROC_ALLOWLIST`] (the same inode as what that
    /// path resolves to in the root).
    ProcAllowed,
    /// Somewhere else on a procfs.
    InsideProcfs,
    /// Anywhere else.
    Elsewhere,
}

/// Judges the resolved mount target `h` inside `root`: by identity of
/// inodes and mounts, never by the path it was reached by.
pub fn target_place(root: &Root, h: &Handle) -> Result<TargetPlace> {
    let here = id_of(h)?;
    if here == id_of(root)? {
        return Ok(TargetPlace::TreeRoot);
    }
    match root.resolve_nofollow("/proc") {
        Ok(p) if id_of(&p)? == here => return Ok(TargetPlace::ContainerProc),
        Ok(_) => {}
        Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if fs_class(h)? != FsClass::Procfs {
        return Ok(TargetPlace::Elsewhere);
    }
    for p in PROC_ALLOWLIST {
        if let Ok(a) = root.resolve(p) {
            let a = id_of(&a)?;
            if (a.0, a.1) == (here.0, here.1) {
                return Ok(TargetPlace::ProcAllowed);
            }
        }
    }
    Ok(TargetPlace::InsideProcfs)
}

/// Refuses a resolved target that is the root of the tree: a mount there
/// would cover the whole root, and undoing it would unmount the wrong
/// mount. `what` names the input (`mounts[3]`, `maskedPaths`).
pub fn check_not_tree_root(root: &Root, h: &Handle, what: &str, dest: &Path) -> Result<()> {
    if id_of(h)? == id_of(root)? {
        return Err(Error::invalid_at(
            format!("{what}: mount"),
            dest,
            "the destination resolves to the root of the tree itself; mounting over the root is not allowed",
        ));
    }
    Ok(())
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

    #[test]
    fn sysctl_rules_follow_the_namespaces() {
        use NsKind::*;
        for (name, want) in [
            ("kernel.shmmax", Some(Ipc)),
            ("kernel.shm_rmid_forced", Some(Ipc)),
            ("kernel.msgmnb", Some(Ipc)),
            ("kernel.sem", Some(Ipc)),
            ("kernel/sem", Some(Ipc)),
            ("fs.mqueue.msg_max", Some(Ipc)),
            ("net.ipv4.ip_forward", Some(Net)),
            ("net/ipv4/conf/eth0.100/forwarding", Some(Net)),
            ("kernel.hostname", Some(Uts)),
            ("kernel.domainname", Some(Uts)),
            ("kernel.core_pattern", None),
            ("kernel.modprobe", None),
            ("kernel.ns_last_pid", None),
            ("vm.overcommit_memory", None),
            ("fs.file-max", None),
            ("fs.mqueue", None),
            ("net", None),
            ("kernel.shmmax.x", None),
            ("kernel.semx", None),
            ("kernel.hostname.x", None),
        ] {
            assert_eq!(sysctl_rule(name).unwrap().namespace, want, "{name}");
        }
        assert!(sysctl_rule("net..x").is_err());
        // Every rule names a reason; the fallback refuses.
        assert!(SYSCTL_RULES.iter().all(|r| !r.reason.is_empty()));
        assert_eq!(SYSCTL_HOST_GLOBAL.namespace, None);
    }

    #[test]
    fn sysctls_need_the_namespace_that_isolates_them() {
        let none = Namespaces::default();
        let all = Namespaces {
            pid: true,
            net: true,
            ipc: true,
            uts: true,
            cgroup: true,
        };
        for name in ["kernel.core_pattern", "vm.swappiness", "kernel.modprobe"] {
            for ns in [&none, &all] {
                let e = check_sysctl(name, ns).unwrap_err();
                assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
                let msg = e.to_string();
                assert!(msg.contains(name) && msg.contains("not isolated"), "{msg}");
            }
        }
        for (name, kind) in [
            ("kernel.shmmax", NsKind::Ipc),
            ("net.ipv4.ip_forward", NsKind::Net),
            ("kernel.hostname", NsKind::Uts),
        ] {
            let e = check_sysctl(name, &none).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(name) && msg.contains(&format!("no {} namespace", kind.oci_name())),
                "{msg}"
            );
            assert_eq!(check_sysctl(name, &all).unwrap(), kind);
        }
    }

    #[test]
    fn cgroup_mounts_are_read_only_unless_confined() {
        let none = Namespaces::default();
        let cg = Namespaces {
            cgroup: true,
            ..Default::default()
        };
        for layout in [CgroupLayout::Unified, CgroupLayout::Legacy] {
            for t in ["cgroup", "cgroup2"] {
                assert!(!check_cgroup_mount(t, true, &none, layout).unwrap());
                assert!(check_cgroup_mount(t, false, &none, layout).is_err());
            }
        }
        let e = check_cgroup_mount("cgroup", false, &cg, CgroupLayout::Legacy).unwrap_err();
        assert!(e.to_string().contains("CVE-2022-0492"), "{e}");
        assert!(check_cgroup_mount("cgroup", false, &cg, CgroupLayout::Unified).unwrap());
        assert!(check_cgroup_mount("cgroup2", false, &cg, CgroupLayout::Legacy).unwrap());
    }
}
