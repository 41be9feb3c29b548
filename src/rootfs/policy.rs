//! What is dangerous, as data, in one place: the `/proc` allowlist, the
//! namespaced sysctls, the pseudo-filesystems a bind may not expose
//! writable, the cgroup rules, the default masked and read-only paths and
//! the shapes of masks, the `/dev` layout (default devices, symlinks,
//! mounts), the flags each filesystem should have, device classes, and the
//! host sources a container should not get.
//!
//! Every rule has a stable id, a severity, a reason, the CVE of its class
//! and a fix ([`Rule`], [`rules`]). The judges (`judge_*`) return a typed
//! [`Violation`] of a rule. [`super::plan()`] turns one into a refusal
//! (lexically, before anything changes) and the mount code does the same
//! on the resolved inode, just before a mount is attached, so that what
//! counts is where a destination really is, not how it is spelled;
//! `saferoot audit` turns the same violation into a finding. A rule exists
//! once.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;
use serde::Serialize;

use crate::path::{Handle, Root};
use crate::rootfs::spec::Namespaces;
use crate::MountAttr;
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
    judge_sysctl(&rule, ns).map_err(|v| v.into_error(format!("sysctl {name:?}"), None))
}

/// The policy decision for a sysctl whose rule is `rule`, for a container
/// with the namespaces `ns`: the namespace the write lands in, or the
/// violated [`Rule`] ([`rules::SYSCTL_HOST_GLOBAL`] or
/// [`rules::SYSCTL_WITHOUT_NAMESPACE`]). [`check_sysctl`] (and so `plan`)
/// refuses by it; an audit reports by it.
pub fn judge_sysctl(rule: &SysctlRule, ns: &Namespaces) -> std::result::Result<NsKind, Violation> {
    match rule.namespace {
        None => Err(Violation::new(
            &rules::SYSCTL_HOST_GLOBAL,
            format!("refused: {}", rule.reason),
        )),
        Some(kind) if !ns.has(kind) => Err(Violation::new(
            &rules::SYSCTL_WITHOUT_NAMESPACE,
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
    judge_destination(dest).map_err(|v| v.into_error("check mount destination", Some(dest)))
}

/// The policy decision for a mount destination, by its spelling (`.` and
/// `..` folded): where it is relative to `/proc`, or the violated rule
/// ([`rules::MOUNT_OVER_ROOT`], [`rules::PROC_MOUNT_NOT_ALLOWED`]). An
/// audit that resolved the destination inside the image passes the
/// resolved path, which is what the mount-time check judges.
pub fn judge_destination(dest: &Path) -> std::result::Result<ProcPlacement, Violation> {
    let cleaned = clean(dest);
    if cleaned == Path::new("/") {
        return Err(Violation::new(
            &rules::MOUNT_OVER_ROOT,
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
        return Err(Violation::new(
            &rules::PROC_MOUNT_NOT_ALLOWED,
            "mounts inside /proc are only allowed on the lxcfs paths",
        ));
    }
    Ok(ProcPlacement::Outside)
}

/// The policy decision for what goes at a destination placed `placement`
/// (by [`judge_destination`]): only a new procfs or a bind may go on
/// `/proc` ([`rules::PROC_COVERED`]), and a new procfs nowhere else
/// ([`rules::PROC_OUTSIDE_PROC`]).
pub fn judge_fs_placement(
    placement: ProcPlacement,
    is_proc_fs: bool,
    is_bind: bool,
) -> std::result::Result<(), Violation> {
    match placement {
        ProcPlacement::ProcItself if !(is_proc_fs || is_bind) => Err(Violation::new(
            &rules::PROC_COVERED,
            "only a proc mount or a bind of a procfs may go on /proc",
        )),
        // A procfs anywhere but /proc would be a second, unmasked one
        // (checked again on the resolved target when it is mounted).
        ProcPlacement::Allowed | ProcPlacement::Outside if is_proc_fs => Err(Violation::new(
            &rules::PROC_OUTSIDE_PROC,
            "a procfs may only be mounted on /proc",
        )),
        _ => Ok(()),
    }
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
pub fn is_host_cgroup_root(fd: impl AsFd) -> Result<bool> {
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
    judge_cgroup_mount(fstype, readonly, ns, layout).map_err(|v| v.into_error("plan mount", None))
}

/// The policy decision behind [`check_cgroup_mount`]: whether the mount
/// relies on the container's cgroup namespace, or the violated rule
/// ([`rules::CGROUP_WRITABLE`]).
pub fn judge_cgroup_mount(
    fstype: &str,
    readonly: bool,
    ns: &Namespaces,
    layout: CgroupLayout,
) -> std::result::Result<bool, Violation> {
    if readonly {
        return Ok(false);
    }
    if fstype == "cgroup" && layout == CgroupLayout::Legacy {
        return Err(Violation::new(
            &rules::CGROUP_WRITABLE,
            "a read-write cgroup mount cannot be confined on a cgroup v1 or hybrid host: \
             the container would get the host's hierarchies writable (release_agent, \
             CVE-2022-0492); mount it ro",
        ));
    }
    if !ns.cgroup {
        return Err(Violation::new(
            &rules::CGROUP_WRITABLE,
            "a read-write cgroup mount needs a cgroup namespace of its own (without one \
             the new cgroup2 shows the host's whole hierarchy); add a cgroup namespace or \
             mount it ro",
        ));
    }
    Ok(true)
}

/// `(dev, ino, mount id)` of an fd.
fn id_of(fd: impl AsFd) -> Result<(u64, u64, u64)> {
    crate::path::identity(fd).map_err(|e| Error::os("statx", e))
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
    if here == root.identity()? {
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

/// What the bind source of a mount is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindSource {
    /// Not a bind.
    NotABind,
    /// The root directory of a procfs: the only procfs bind allowed, and
    /// only onto the container's `/proc`.
    ProcRoot,
    /// Any other procfs inode.
    ProcOther,
    /// Anything else (read-only rules already applied).
    Other,
}

/// The bind-source policy: a procfs is noted (it may only become the
/// container's `/proc`, see [`judge_target`]); sysfs and the host's cgroup
/// hierarchies (`class` in [`READONLY_BIND_SOURCES`], or
/// `host_cgroup_root`: the host's `/sys/fs/cgroup` itself) only go in
/// read-only. `proc_root`: the source is the root inode of its procfs.
/// `source` names it in the reason.
pub fn judge_bind_source(
    class: FsClass,
    proc_root: bool,
    host_cgroup_root: bool,
    readonly: bool,
    source: &Path,
) -> std::result::Result<BindSource, Violation> {
    if class == FsClass::Procfs {
        return Ok(if proc_root {
            BindSource::ProcRoot
        } else {
            BindSource::ProcOther
        });
    }
    let host_cgroup = class == FsClass::Other && host_cgroup_root;
    if (READONLY_BIND_SOURCES.contains(&class) || host_cgroup) && !readonly {
        let what = if host_cgroup {
            "the host's /sys/fs/cgroup"
        } else {
            class.describe()
        };
        let rule = if class == FsClass::Sysfs {
            &rules::SYSFS_WRITABLE
        } else {
            &rules::CGROUP_WRITABLE
        };
        return Err(Violation::new(
            rule,
            format!(
                "{} is {what}; a bind of it must be read-only (ro): a writable view \
                 changes the host (cgroup release_agent, CVE-2022-0492)",
                source.display()
            ),
        ));
    }
    Ok(BindSource::Other)
}

/// The destination policy on the resolved target `place`: nothing over the
/// tree's root; on the container's `/proc` only a procfs (new, or the root
/// of one bound, and that only when the container shares the pid namespace
/// it shows: `pid_ns` false); inside a procfs only the allowlist; a procfs
/// nowhere else.
pub fn judge_target(
    place: TargetPlace,
    is_proc_fs: bool,
    bind_source: BindSource,
    pid_ns: bool,
) -> std::result::Result<(), Violation> {
    let v = |rule: &'static Rule, reason: &'static str| Err(Violation::new(rule, reason));
    match place {
        TargetPlace::TreeRoot => {
            return v(
                &rules::MOUNT_OVER_ROOT,
                "the destination resolves to the root of the tree itself; mounting over the root is not allowed",
            )
        }
        TargetPlace::InsideProcfs => {
            return v(
                &rules::PROC_MOUNT_NOT_ALLOWED,
                "the destination resolves inside a procfs, at a place that is not on the /proc allowlist",
            )
        }
        TargetPlace::ContainerProc => {
            return match bind_source {
                BindSource::ProcRoot if pid_ns => v(
                    &rules::HOST_PROC_BIND,
                    "a bind of a procfs onto /proc shows the processes of another pid \
                     namespace than the container's own; mount a new proc instead",
                ),
                BindSource::ProcRoot => Ok(()),
                BindSource::NotABind if is_proc_fs => Ok(()),
                BindSource::ProcOther => v(
                    &rules::HOST_PROC_BIND,
                    "the bind source is a procfs subdirectory, never the container's /proc",
                ),
                _ => v(
                    &rules::PROC_COVERED,
                    "only a proc mount or a bind of a whole procfs may go on the container's /proc",
                ),
            }
        }
        TargetPlace::ProcAllowed | TargetPlace::Elsewhere => {}
    }
    if is_proc_fs {
        return v(
            &rules::PROC_OUTSIDE_PROC,
            "a procfs may only be mounted on the container's /proc; this destination resolves elsewhere",
        );
    }
    if matches!(bind_source, BindSource::ProcRoot | BindSource::ProcOther) {
        return v(
            &rules::HOST_PROC_BIND,
            "the bind source is on a procfs; outside the container's /proc it would be a second procfs without the masks",
        );
    }
    Ok(())
}

/// Where an in-root path (already resolved, `.` and `..` folded) is, as
/// [`target_place`] would judge the inode it leads to when the container's
/// `/proc` is a procfs: the same decision made on the path, for audits of
/// a spec that has not been assembled.
pub fn place_of_path(resolved: &Path) -> TargetPlace {
    let p = clean(resolved);
    if p == Path::new("/") {
        TargetPlace::TreeRoot
    } else if p == Path::new("/proc") {
        TargetPlace::ContainerProc
    } else if p.starts_with("/proc") {
        if PROC_ALLOWLIST.iter().any(|a| p == Path::new(a)) {
            TargetPlace::ProcAllowed
        } else {
            TargetPlace::InsideProcfs
        }
    } else {
        TargetPlace::Elsewhere
    }
}

/// Refuses a resolved target that is the root of the tree: a mount there
/// would cover the whole root, and undoing it would unmount the wrong
/// mount. `what` names the input (`mounts[3]`, `maskedPaths`). Returns
/// what the target is (one `statx`, which the caller may use further).
pub fn check_not_tree_root(
    root: &Root,
    h: &Handle,
    what: &str,
    dest: &Path,
) -> Result<crate::path::HandleStat> {
    let st = h.stat().map_err(|e| e.with_path(dest))?;
    if (st.dev, st.ino, st.mount_id) == root.identity()? {
        return Err(Error::invalid_at(
            format!("{what}: mount"),
            dest,
            "the destination resolves to the root of the tree itself; mounting over the root is not allowed",
        ));
    }
    Ok(st)
}

/// For a proc or sysfs mount: the destination must be a real directory,
/// not a symlink to one (CVE-2019-19921, CVE-2023-27561). `h` was resolved
/// without following the last component.
pub fn check_real_directory(h: &Handle, dest: &Path, fstype: &str) -> Result<()> {
    let ft = h.file_type().map_err(|e| e.with_path(dest))?;
    check_real_directory_type(ft, dest, fstype)
}

/// [`check_real_directory`] for a caller that has the file type `ft` of
/// the target at hand.
pub fn check_real_directory_type(ft: FileType, dest: &Path, fstype: &str) -> Result<()> {
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

// ---------------------------------------------------------------------------
// Rules: stable ids, severities, reasons. `plan` and the mount code refuse
// by them; `saferoot audit` reports by them.

/// How bad breaking a rule is, lowest first (the severities of
/// `saferoot audit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not a problem by itself.
    Info,
    /// A weakness with little impact.
    Low,
    /// A weakness that helps an attack, or breaks something.
    Medium,
    /// A likely way to harm the host or escape.
    High,
    /// A known escape vector.
    Critical,
}

impl Severity {
    /// Every severity, highest first.
    pub const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    /// Parses a lowercase name (`info`, `low`, `medium`, `high`,
    /// `critical`).
    fn from_str(s: &str) -> std::result::Result<Severity, String> {
        Severity::DESCENDING
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown severity {s:?} (info, low, medium, high or critical)"))
    }
}

/// One rule of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable id: what `saferoot audit` reports as a finding's `id`.
    pub id: &'static str,
    /// The severity of a violation; a finding may be rated lower when the
    /// case is milder (read-only, inside the image), never higher.
    pub severity: Severity,
    /// Whether saferoot refuses a spec that breaks the rule (in `plan`, or
    /// on the resolved inode when mounting). Refused rules are high or
    /// critical.
    pub refused: bool,
    /// What the rule is about, in a few words.
    pub title: &'static str,
    /// Why breaking it matters.
    pub why: &'static str,
    /// The CVE of the class, where there is one.
    pub cve: Option<&'static str>,
    /// How to fix a violation.
    pub fix: &'static str,
}

/// A rule broken by a spec: which, and what exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: &'static Rule,
    /// What was wrong, for the error or the finding.
    pub reason: String,
}

impl Violation {
    /// A violation of `rule`.
    pub fn new(rule: &'static Rule, reason: impl Into<String>) -> Violation {
        Violation {
            rule,
            reason: reason.into(),
        }
    }

    /// The refusal: an error of kind [`crate::ErrorKind::InvalidInput`]
    /// with `op`, `path` and the reason.
    pub fn into_error(
        self,
        op: impl Into<std::borrow::Cow<'static, str>>,
        path: Option<&Path>,
    ) -> Error {
        match path {
            Some(p) => Error::invalid_at(op, p, self.reason),
            None => Error::invalid(op, self.reason),
        }
    }
}

/// Every rule, by id. `saferoot audit` reports each finding under one of
/// these (or under one of its own about the input itself: unreadable
/// config, missing rootfs).
pub mod rules {
    use super::{Rule, Severity};

    macro_rules! rule {
        ($name:ident, $id:literal, $sev:ident, $refused:literal, $title:literal, $why:literal, $cve:expr, $fix:literal) => {
            #[doc = concat!("`", $id, "`: ", $title, ".")]
            pub const $name: Rule = Rule {
                id: $id,
                severity: Severity::$sev,
                refused: $refused,
                title: $title,
                why: $why,
                cve: $cve,
                fix: $fix,
            };
        };
    }

    rule!(SYSCTL_HOST_GLOBAL, "sysctl-host-global", Critical, true,
        "a sysctl that no namespace isolates",
        "the value is written into the host's kernel: kernel.core_pattern makes the host run a program of the container's choosing as root at the next crash, kernel.modprobe at the next module load",
        None,
        "remove it from linux.sysctl; host-wide settings belong on the host");
    rule!(SYSCTL_WITHOUT_NAMESPACE, "sysctl-without-namespace", High, true,
        "a namespaced sysctl without that namespace",
        "the container has no namespace of its own of the kind that isolates this sysctl, so it is written in the host's: net.* changes the host's network stack, kernel.shm* the host's IPC limits",
        None,
        "add the namespace to linux.namespaces (network for net.*, ipc for kernel.shm*/msg*/sem and fs.mqueue.*, uts for kernel.hostname), or drop the sysctl");
    rule!(MOUNT_OVER_ROOT, "mount-over-root", High, true,
        "a mount on the root of the tree",
        "a mount there covers the whole image, and undoing it unmounts the wrong mount; an image symlink (tmp -> /) can make an innocent destination land there",
        None,
        "mount on a real directory below /");
    rule!(PROC_MOUNT_NOT_ALLOWED, "proc-mount-not-allowed", High, true,
        "a mount inside /proc off the lxcfs allowlist",
        "mounting over procfs entries can hide or redirect what the runtime and LSMs write there (such as /proc/self/attr), disabling confinement",
        Some("CVE-2019-19921"),
        "mount only on /proc itself or on the lxcfs files (saferoot::rootfs::policy::PROC_ALLOWLIST)");
    rule!(PROC_COVERED, "proc-covered", High, true,
        "something other than a procfs on /proc",
        "the runtime and the LSM write to /proc/self/attr and /proc/self/fd of the container; a filesystem of the spec's choosing there makes those writes go nowhere, or somewhere chosen",
        Some("CVE-2019-19921"),
        "mount a new proc on /proc, nothing else");
    rule!(PROC_OUTSIDE_PROC, "proc-outside-proc", Critical, true,
        "a second procfs outside /proc",
        "it gets none of the masks and read-only paths that cover /proc: /proc/sys (kernel.core_pattern: a program run as host root), /proc/sysrq-trigger and /proc/kcore are open to the container",
        None,
        "mount proc only on /proc");
    rule!(HOST_PROC_BIND, "host-proc-bind", Critical, true,
        "a bind of the host's procfs",
        "a bind of the host's procfs shows host processes: /proc/1/root of a host process leads to the host's root, /proc/sys changes the host's kernel, and the masks of the container's own /proc do not cover a bind elsewhere",
        None,
        "mount a new proc on /proc, in a pid namespace of the container's own");
    rule!(SYSFS_WRITABLE, "sysfs-writable", High, true,
        "a writable sysfs",
        "writable sysfs lets root in the container change host devices and kernel state (uevent_helper, power, firmware loading)",
        None,
        "mount or bind sysfs with ro");
    rule!(CGROUP_WRITABLE, "cgroup-writable", Critical, true,
        "a writable view of the host's cgroup hierarchy",
        "the container can change other groups' limits, and on cgroup v1 write release_agent, which the host kernel runs as root when a group empties",
        Some("CVE-2022-0492"),
        "mount cgroup with ro, or give the container a cgroup namespace on a cgroup v2 host");
    rule!(PROC_SYS_WRITABLE, "proc-sys-writable", High, false,
        "a procfs whose sys/ is writable",
        "root in the container can change host kernel settings through /proc/sys, for instance kernel.core_pattern, which makes the host run a program of the container's choosing as root",
        None,
        "add /proc/sys to linux.readonlyPaths (bind <proc>/sys over itself read-only)");
    rule!(READONLY_PATH_MISSING, "readonly-path-missing", High, false,
        "a default read-only path left writable",
        "these /proc files change the host: /proc/sysrq-trigger can reboot or crash it, /proc/irq moves interrupts, /proc/bus and /proc/fs reach drivers",
        None,
        "add the path to linux.readonlyPaths");
    rule!(MASKED_PATH_MISSING, "masked-path-missing", Medium, false,
        "a default masked path left visible",
        "these files show the host (kernel memory, keyrings, timers of host tasks, firmware, energy counters) or reach its hardware",
        None,
        "add the path to linux.maskedPaths");
    rule!(MISSING_MOUNT_FLAGS, "missing-mount-flags", Medium, false,
        "a mount without the flags its filesystem should have",
        "a writable place without nosuid lets a program gain privileges from a setuid file dropped there; without nodev, device nodes made there give raw access to host devices; without noexec, it can hold and run tools",
        None,
        "add the missing flags to the options");
    rule!(DEVTMPFS_MOUNT, "devtmpfs-mount", Critical, false,
        "a devtmpfs",
        "devtmpfs is the host's own device filesystem: every disk, /dev/mem and /dev/kmsg of the host, with the host's permissions",
        None,
        "mount a tmpfs on /dev and list the devices the container needs in linux.devices");
    rule!(HOST_BLOCK_DEVICE_MOUNT, "host-block-device-mount", Critical, false,
        "a host disk mounted in the container",
        "the filesystem of a host disk, mounted by the container's own mount: all of the host's files on it, past any bind the host meant to give, writable when mounted rw; a crafted filesystem image attacks the host kernel",
        None,
        "bind the host directories needed instead, read-only");
    rule!(OVERLAY_HOST_LAYER, "overlay-host-layer", Critical, false,
        "an overlay layer from a sensitive host path",
        "an overlay whose layer is the host's / (or /etc, /proc, ...) shows the host's files in the container; as upper or work directory, writes land on the host",
        None,
        "build overlays from image layers only");
    rule!(BIND_SOURCE_ESCAPES_ROOT, "bind-source-escapes-root", Critical, false,
        "a bind source that an image symlink sends out of the image",
        "the source lies in the image (or the bundle), and a symlink there points out of it: saferoot resolves it inside, but a runtime that follows it on the host binds what the image chose, up to the host's /",
        None,
        "point the source at the real directory, and remove the symlink from the image");
    rule!(HOST_ROOT_BIND, "host-root-bind", Critical, false,
        "a bind of the host's /",
        "every host file (/etc/shadow, keys, runtime sockets, /proc of the host below it with rbind) in the container; writable, the container changes the host",
        None,
        "bind only the directories the container needs, read-only");
    rule!(HOST_DEV_BIND, "host-dev-bind", High, false,
        "a bind of the host's /dev",
        "the host's device nodes: raw disks, /dev/mem, /dev/kmsg; a read-only mount does not stop writes to a device, only nodev does",
        None,
        "mount a tmpfs on /dev and list the devices needed in linux.devices");
    rule!(HOST_SENSITIVE_BIND, "host-sensitive-bind", High, false,
        "a bind of a sensitive host directory",
        "the host's /etc, /boot, /root or runtime state: credentials, the boot loader and kernels, root's keys; writable, the container changes how the host boots or who can log in",
        None,
        "bind only the files the container needs, read-only");
    rule!(RUNTIME_SOCKET_BIND, "runtime-socket-bind", Critical, false,
        "a container runtime's API socket",
        "whoever can connect to a runtime's socket (docker, containerd, podman, CRI-O) can start a privileged container with the host's / in it; a read-only mount does not stop connect()",
        None,
        "do not give the socket to the container; use a proxy that allows only what it needs");
    rule!(DEVICE_BLOCK, "device-block", Critical, false,
        "a block device node of the host",
        "raw access to a host disk reads and changes the host's filesystems below every mount the host set up; a mode like 0666 opens it to every user in the container",
        None,
        "remove the device; give the container a filesystem, not a disk");
    rule!(
        DEVICE_MEMORY,
        "device-memory",
        Critical,
        false,
        "a memory or I/O port device",
        "/dev/mem, /dev/kmem and /dev/port reach the host's physical memory and I/O ports",
        None,
        "remove the device"
    );
    rule!(DEVICE_UNUSUAL, "device-unusual", Low, false,
        "a character device beyond the usual ones",
        "every device node is a driver interface of the host kernel; the usual set (null, zero, full, random, urandom, tty, console, ptmx, pts, net/tun, fuse) is what containers normally get",
        None,
        "check that the container needs it");
    rule!(SHARED_PROPAGATION, "shared-propagation", High, false,
        "a mount made shared",
        "mounts made inside the container propagate to its peers on the host, and the host's to it: the container can make mounts appear on the host",
        None,
        "use rslave (receive host mounts) or rprivate");
    rule!(DEST_DOTDOT_ESCAPE, "dest-dotdot-escape", High, false,
        "a destination that climbs above / with ..",
        "a runtime that joins the destination to the rootfs path and follows it mounts outside the rootfs, onto the host; saferoot keeps it inside, but the config only works by luck",
        Some("CVE-2021-30465"),
        "write the destination as the absolute path it means");
    rule!(DEST_THROUGH_SYMLINK, "dest-through-symlink", Critical, false,
        "a destination through an image symlink",
        "the mount does not land where the destination says: a path-based runtime that follows the symlink mounts where the image chose, possibly on the host or into /proc",
        Some("CVE-2021-30465"),
        "use the real path as the destination, or replace the symlink with a directory");
    rule!(PROC_SYS_SYMLINK, "proc-sys-symlink", Critical, false,
        "the image's /proc or /sys is a symlink",
        "a procfs or sysfs mounted through the symlink lands where the image chose: on a path-following runtime that hides procfs from the LSM (AppArmor/SELinux writes to /proc/self/attr go nowhere) or mounts it elsewhere",
        Some("CVE-2019-19921"),
        "make the directory a real, empty directory in the image");
    rule!(DEV_SYMLINK, "dev-symlink", Critical, false,
        "the image's /dev is a symlink",
        "a runtime that creates device nodes and /dev symlinks by path follows it and creates them where the image chose, possibly on the host or in a volume",
        Some("CVE-2026-41579"),
        "make /dev an empty directory in the rootfs");
    rule!(DEVNULL_NOT_CHARDEV, "devnull-not-chardev", High, false,
        "the image's /dev/null is not the null device",
        "runtimes that mask paths by bind-mounting the container's /dev/null can be made to bind a file of the image's choosing (a procfs file, say) over the masked path, writable",
        Some("CVE-2025-31133"),
        "remove it from the image, or mount a fresh tmpfs on /dev so the runtime creates the nodes");
    rule!(BIND_SOURCE_WORLD_WRITABLE, "bind-source-world-writable", High, false,
        "a bind source any host user can write",
        "any user on the host can change what the container sees there: plant symlinks, swap files, or drop setuid programs for the container to run",
        None,
        "bind a directory only root (or the container's owner) can write, or add nosuid,nodev,noexec and ro");
    rule!(SHARED_MOUNT, "shared-mount", High, false,
        "a shared mount in the namespace",
        "mounts made below it propagate to its peers and theirs come back: a container can make mounts appear on the host, or be handed host mounts",
        None,
        "make it a slave (receive only) or private: mount_setattr/mount --make-rslave");
    rule!(SLAVE_MOUNT, "slave-mount", Medium, false,
        "a mount that receives mounts from outside",
        "mounts made there below this point (a USB disk, a network share, another container's volumes) appear inside this namespace too",
        None,
        "make it private if the namespace should not see new outside mounts");
    rule!(WRITABLE_SETUID_MOUNT, "writable-setuid-mount", Medium, false,
        "a writable mount that honours setuid bits",
        "a setuid-root program written there (by a process that can chown, or copied in from elsewhere) is a way to regain privileges",
        None,
        "mount it nosuid (or read-only)");
    rule!(WRITABLE_DEVICE_MOUNT, "writable-device-mount", Medium, false,
        "a writable mount that allows device nodes",
        "a device node created there (mknod, or one written by another namespace) gives raw access to host devices such as disks",
        None,
        "mount it nodev (or read-only)");
    rule!(HOST_FILESYSTEM, "host-filesystem", High, false,
        "a host disk's filesystem in the namespace",
        "a host disk in the namespace exposes host files; writable, it lets the namespace change them (and, without nosuid/nodev, plant setuid programs or device nodes)",
        None,
        "bind only the directories needed, read-only where possible");
    rule!(PROC_OVERMOUNT, "proc-overmount", High, false,
        "a writable mount over a procfs entry",
        "what the runtime, the LSM or the kernel interface reads and writes there is no longer procfs: confinement writes can go nowhere, or somewhere chosen",
        Some("CVE-2019-19921"),
        "remove it; only the lxcfs files may be mounted over (and masks must be read-only or /dev/null)");
    rule!(PROC_WRITABLE, "proc-writable", High, false,
        "a writable piece of procfs outside /proc",
        "a procfs subtree bound elsewhere writable is out of reach of the masks and read-only paths of /proc",
        None,
        "remove it, or make it read-only");

    /// Every rule above, in the order `saferoot audit` lists them.
    pub const ALL: &[&Rule] = &[
        &SYSCTL_HOST_GLOBAL,
        &SYSCTL_WITHOUT_NAMESPACE,
        &MOUNT_OVER_ROOT,
        &PROC_MOUNT_NOT_ALLOWED,
        &PROC_COVERED,
        &PROC_OUTSIDE_PROC,
        &HOST_PROC_BIND,
        &SYSFS_WRITABLE,
        &CGROUP_WRITABLE,
        &PROC_SYS_WRITABLE,
        &READONLY_PATH_MISSING,
        &MASKED_PATH_MISSING,
        &MISSING_MOUNT_FLAGS,
        &DEVTMPFS_MOUNT,
        &HOST_BLOCK_DEVICE_MOUNT,
        &OVERLAY_HOST_LAYER,
        &BIND_SOURCE_ESCAPES_ROOT,
        &HOST_ROOT_BIND,
        &HOST_DEV_BIND,
        &HOST_SENSITIVE_BIND,
        &RUNTIME_SOCKET_BIND,
        &DEVICE_BLOCK,
        &DEVICE_MEMORY,
        &DEVICE_UNUSUAL,
        &SHARED_PROPAGATION,
        &DEST_DOTDOT_ESCAPE,
        &DEST_THROUGH_SYMLINK,
        &PROC_SYS_SYMLINK,
        &DEV_SYMLINK,
        &DEVNULL_NOT_CHARDEV,
        &BIND_SOURCE_WORLD_WRITABLE,
        &SHARED_MOUNT,
        &SLAVE_MOUNT,
        &WRITABLE_SETUID_MOUNT,
        &WRITABLE_DEVICE_MOUNT,
        &HOST_FILESYSTEM,
        &PROC_OVERMOUNT,
        &PROC_WRITABLE,
    ];
}

// ---------------------------------------------------------------------------
// Default masked and read-only paths.

/// A path of the default masked or read-only lists, with what leaving it
/// out costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DefaultPath {
    /// The path inside the container.
    pub path: &'static str,
    /// The severity of leaving it out while its filesystem is mounted.
    pub missing: Severity,
    /// Whether the usual runtimes (runc's and crun's `spec`, docker,
    /// podman) all have it. When they do not, leaving it out is `info`: it
    /// is a difference from saferoot's own defaults, not a weakness of
    /// theirs.
    pub usual: bool,
    /// Why it is masked or read-only.
    pub why: &'static str,
    /// The CVE, where one applies.
    pub cve: Option<&'static str>,
}

const fn dp(
    path: &'static str,
    missing: Severity,
    usual: bool,
    why: &'static str,
    cve: Option<&'static str>,
) -> DefaultPath {
    DefaultPath {
        path,
        missing,
        usual,
        why,
        cve,
    }
}

/// The paths saferoot's default sandbox masks (files get the host's
/// `/dev/null`, directories an empty read-only tmpfs): runc's default
/// list, and the powercap counters docker and podman mask too.
pub const DEFAULT_MASKED_PATHS: &[DefaultPath] = &[
    dp("/proc/acpi", Severity::Low, true, "it is the host's ACPI interface, some of whose files accept writes", None),
    dp("/proc/asound", Severity::Low, true, "it is the host's sound card interface", None),
    dp("/proc/kcore", Severity::Medium, true, "it is an image of the host kernel's memory", None),
    dp("/proc/keys", Severity::Medium, true, "it lists the kernel keyrings of the host", None),
    dp("/proc/latency_stats", Severity::Low, true, "it shows kernel addresses and the timing of host tasks: help for defeating KASLR and for side channels", None),
    dp("/proc/timer_list", Severity::Low, true, "it shows kernel addresses and the timing of host tasks: help for defeating KASLR and for side channels", None),
    dp("/proc/timer_stats", Severity::Low, true, "it shows kernel addresses and the timing of host tasks: help for defeating KASLR and for side channels", None),
    dp("/proc/sched_debug", Severity::Low, true, "it shows the host's tasks and their scheduling", None),
    dp("/proc/scsi", Severity::Low, true, "it is the host's SCSI interface, some of whose files accept writes", None),
    dp("/sys/firmware", Severity::Medium, true, "it exposes firmware tables and variables (ACPI, EFI) of the host", None),
    dp("/sys/devices/virtual/powercap", Severity::Medium, false, "its energy counters leak what the host computes (the PLATYPUS power side channel)", Some("CVE-2020-8694")),
];

/// The paths saferoot's default sandbox makes read-only, as runc's default
/// spec does.
pub const DEFAULT_READONLY_PATHS: &[DefaultPath] = &[
    dp(
        "/proc/bus",
        Severity::Low,
        true,
        "it reaches host buses (PCI, USB) through their drivers",
        None,
    ),
    dp(
        "/proc/fs",
        Severity::Low,
        true,
        "it holds settings of host filesystems (nfsd, ...)",
        None,
    ),
    dp(
        "/proc/irq",
        Severity::Low,
        true,
        "it moves the host's interrupts between CPUs",
        None,
    ),
    dp(
        "/proc/sys",
        Severity::High,
        true,
        "it changes the host's kernel settings (kernel.core_pattern runs a program as host root)",
        None,
    ),
    dp(
        "/proc/sysrq-trigger",
        Severity::High,
        true,
        "a write reboots, crashes or freezes the host",
        None,
    ),
];

/// Whether a mount of type `fs_type` whose root (the path inside its
/// filesystem) is `root` has the shape of a mask that saferoot, runc or
/// crun make: a read-only mount (saferoot's empty tmpfs on a directory,
/// runc's and crun's read-only tmpfs, a read-only bind), or the null
/// device bound on a file (`root` `/null` of a devtmpfs or tmpfs: the
/// host's `/dev/null` for saferoot, the container's for runc and crun).
pub fn is_mask_shape(fs_type: &str, root: &Path, readonly: bool) -> bool {
    readonly || (matches!(fs_type, "devtmpfs" | "tmpfs") && root == Path::new("/null"))
}

// ---------------------------------------------------------------------------
// The /dev layout.

/// A device node every container gets: `/dev/<name>`, a character device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DefaultDevice {
    /// The name under `/dev`.
    pub name: &'static str,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// The default devices, as runc creates them (mode 0666, owned by root).
pub const DEFAULT_DEVICES: &[DefaultDevice] = &[
    DefaultDevice {
        name: "null",
        major: 1,
        minor: 3,
    },
    DefaultDevice {
        name: "zero",
        major: 1,
        minor: 5,
    },
    DefaultDevice {
        name: "full",
        major: 1,
        minor: 7,
    },
    DefaultDevice {
        name: "random",
        major: 1,
        minor: 8,
    },
    DefaultDevice {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    DefaultDevice {
        name: "tty",
        major: 5,
        minor: 0,
    },
];

/// The symlinks every `/dev` gets, `(link, target)`.
pub const DEFAULT_DEV_SYMLINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// The `/dev/core` symlink, made only when the host has `/proc/kcore`.
pub const DEV_CORE_SYMLINK: (&str, &str) = ("/dev/core", "/proc/kcore");

/// Character devices that containers commonly get besides the defaults:
/// `(major, minor)`, `None` for any minor. `/dev/console` and `/dev/ptmx`
/// (5:1, 5:2), pseudo-terminals (136), `/dev/net/tun` (10:200),
/// `/dev/fuse` (10:229).
pub const USUAL_CHAR_DEVICES: &[(u32, Option<u32>)] = &[
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
    (10, Some(200)),
    (10, Some(229)),
];

/// `/dev/mem`, `/dev/kmem`, `/dev/port`: the host's physical memory and
/// I/O ports.
pub const MEMORY_CHAR_DEVICES: &[(u32, u32)] = &[(1, 1), (1, 2), (1, 4)];

/// What a device node is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClass {
    /// One of [`DEFAULT_DEVICES`] or [`USUAL_CHAR_DEVICES`].
    Usual,
    /// A block device: a disk ([`rules::DEVICE_BLOCK`]).
    Block,
    /// Memory or I/O ports ([`rules::DEVICE_MEMORY`]).
    Memory,
    /// Another character device ([`rules::DEVICE_UNUSUAL`]).
    Unusual,
    /// Not a device (a fifo).
    NotADevice,
}

/// Classifies a node of `kind` with numbers `major:minor`.
pub fn device_class(kind: crate::rootfs::spec::DeviceKind, major: u32, minor: u32) -> DeviceClass {
    use crate::rootfs::spec::DeviceKind;
    match kind {
        DeviceKind::Block => DeviceClass::Block,
        DeviceKind::Fifo => DeviceClass::NotADevice,
        DeviceKind::Char => {
            if MEMORY_CHAR_DEVICES.contains(&(major, minor)) {
                DeviceClass::Memory
            } else if DEFAULT_DEVICES
                .iter()
                .any(|d| (d.major, d.minor) == (major, minor))
                || USUAL_CHAR_DEVICES
                    .iter()
                    .any(|&(ma, mi)| ma == major && mi.is_none_or(|mi| mi == minor))
            {
                DeviceClass::Usual
            } else {
                DeviceClass::Unusual
            }
        }
    }
}

/// The mounts that make up a `/dev` at `dev`, as runc's default spec has
/// them: a tmpfs (`nosuid,strictatime,mode=755,size=65536k`), a private
/// devpts (`gid=5` only with `tty_gid`: a user namespace may not map the
/// tty group) and a `/dev/shm` tmpfs.
pub fn dev_mounts(dev: &Path, tty_gid: bool) -> Vec<crate::rootfs::spec::MountSpec> {
    use crate::rootfs::spec::MountSpec;
    let mut pts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if tty_gid {
        pts.push("gid=5");
    }
    vec![
        MountSpec::new(
            dev,
            "tmpfs",
            Some("tmpfs".into()),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        MountSpec::new(dev.join("pts"), "devpts", Some("devpts".into()), &pts),
        MountSpec::new(
            dev.join("shm"),
            "tmpfs",
            Some("shm".into()),
            &["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"],
        ),
    ]
}

// ---------------------------------------------------------------------------
// Expected flags per filesystem.

/// The flags a mount of some filesystem (at some place) should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedFlags {
    /// Filesystem type.
    pub fstype: &'static str,
    /// Only at this destination; `None`: anywhere.
    pub dest: Option<&'static str>,
    /// The flags.
    pub want: MountAttr,
    /// Whether the filesystem holds files a process can create (setuid
    /// programs, device nodes): missing flags matter there. On the pseudo
    /// filesystems they are a difference from the usual, nothing more.
    pub holds_files: bool,
}

const ALL3: MountAttr = MountAttr::NOSUID
    .union(MountAttr::NODEV)
    .union(MountAttr::NOEXEC);

const fn ef(
    fstype: &'static str,
    dest: Option<&'static str>,
    want: MountAttr,
    holds_files: bool,
) -> ExpectedFlags {
    ExpectedFlags {
        fstype,
        dest,
        want,
        holds_files,
    }
}

/// The flags each filesystem should have, as runc's default spec gives
/// them. The first entry that matches counts.
pub const EXPECTED_FLAGS: &[ExpectedFlags] = &[
    ef("proc", None, ALL3, false),
    ef("sysfs", None, ALL3, false),
    ef("mqueue", None, ALL3, false),
    ef("cgroup", None, ALL3, false),
    ef("cgroup2", None, ALL3, false),
    ef(
        "devpts",
        None,
        MountAttr::NOSUID.union(MountAttr::NOEXEC),
        false,
    ),
    ef("tmpfs", Some("/dev/shm"), ALL3, true),
    ef("tmpfs", Some("/dev"), MountAttr::NOSUID, true),
    ef(
        "tmpfs",
        Some("/tmp"),
        MountAttr::NOSUID.union(MountAttr::NODEV),
        true,
    ),
    ef(
        "tmpfs",
        Some("/var/tmp"),
        MountAttr::NOSUID.union(MountAttr::NODEV),
        true,
    ),
    ef(
        "tmpfs",
        Some("/run"),
        MountAttr::NOSUID.union(MountAttr::NODEV),
        true,
    ),
    ef(
        "tmpfs",
        Some("/var/run"),
        MountAttr::NOSUID.union(MountAttr::NODEV),
        true,
    ),
];

/// The expected flags for a mount of `fstype` at `dest` (cleaned), if the
/// policy has any.
pub fn expected_flags(fstype: &str, dest: &Path) -> Option<&'static ExpectedFlags> {
    let dest = clean(dest);
    EXPECTED_FLAGS
        .iter()
        .find(|e| e.fstype == fstype && e.dest.is_none_or(|d| dest == Path::new(d)))
}

impl ExpectedFlags {
    /// How bad lacking `missing` (a subset of [`Self::want`]) is.
    pub fn severity(&self, missing: MountAttr) -> Severity {
        if !self.holds_files {
            Severity::Info
        } else if missing.intersects(MountAttr::NOSUID | MountAttr::NODEV) {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// Filesystems that hold no files a program could use for setuid or
/// device tricks: their flags do not matter for those findings.
pub const PSEUDO_FILESYSTEMS: &[&str] = &[
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

// ---------------------------------------------------------------------------
// Sensitive host sources.

/// A host path that a bind source (or overlay layer) should not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensitiveSource {
    /// The host path.
    pub path: &'static str,
    /// Whether paths below it count too.
    pub subtree: bool,
    /// The rule a bind of it breaks.
    pub rule: &'static Rule,
    /// Severity when bound writable.
    pub rw: Severity,
    /// Severity when bound read-only.
    pub ro: Severity,
    /// What it is, for messages.
    pub what: &'static str,
}

const fn ss(
    path: &'static str,
    subtree: bool,
    rule: &'static Rule,
    rw: Severity,
    ro: Severity,
    what: &'static str,
) -> SensitiveSource {
    SensitiveSource {
        path,
        subtree,
        rule,
        rw,
        ro,
        what,
    }
}

/// Host paths a container should not get, most specific first. Devices
/// and sockets are judged by what they are ([`device_class`],
/// [`RUNTIME_SOCKETS`]), wherever they lie; sysfs and the cgroup
/// hierarchies by the filesystem the source is on
/// ([`READONLY_BIND_SOURCES`], [`judge_bind_source`]), wherever they are
/// mounted.
pub const SENSITIVE_HOST_SOURCES: &[SensitiveSource] = &[
    ss(
        "/proc",
        true,
        &rules::HOST_PROC_BIND,
        Severity::Critical,
        Severity::Critical,
        "the host's procfs",
    ),
    ss(
        "/dev",
        false,
        &rules::HOST_DEV_BIND,
        Severity::High,
        Severity::High,
        "the host's /dev",
    ),
    ss(
        "/etc",
        true,
        &rules::HOST_SENSITIVE_BIND,
        Severity::High,
        Severity::Low,
        "the host's configuration (/etc)",
    ),
    ss(
        "/boot",
        true,
        &rules::HOST_SENSITIVE_BIND,
        Severity::High,
        Severity::Medium,
        "the host's boot loader and kernels (/boot)",
    ),
    ss(
        "/root",
        true,
        &rules::HOST_SENSITIVE_BIND,
        Severity::High,
        Severity::Medium,
        "root's home directory on the host",
    ),
    ss(
        "/run",
        false,
        &rules::HOST_SENSITIVE_BIND,
        Severity::High,
        Severity::High,
        "the host's runtime state (/run, with the runtime sockets)",
    ),
    ss(
        "/var/run",
        false,
        &rules::HOST_SENSITIVE_BIND,
        Severity::High,
        Severity::High,
        "the host's runtime state (/var/run, with the runtime sockets)",
    ),
    ss(
        "/",
        false,
        &rules::HOST_ROOT_BIND,
        Severity::Critical,
        Severity::High,
        "the host's root filesystem",
    ),
];

/// File names of container runtime API sockets.
pub const RUNTIME_SOCKETS: &[&str] = &[
    "docker.sock",
    "containerd.sock",
    "podman.sock",
    "crio.sock",
    "cri-dockerd.sock",
    "buildkitd.sock",
];

/// The entry of [`SENSITIVE_HOST_SOURCES`] for the host path `path`
/// (absolute, resolved), if any.
pub fn sensitive_host_source(path: &Path) -> Option<&'static SensitiveSource> {
    let path = clean(path);
    SENSITIVE_HOST_SOURCES
        .iter()
        .find(|s| path == Path::new(s.path) || (s.subtree && path.starts_with(s.path)))
}

/// Whether the host path `path` names a container runtime's API socket
/// (by its file name).
pub fn is_runtime_socket(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| RUNTIME_SOCKETS.contains(&n))
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
