//! The program's privileges: resource limits, capabilities, user and
//! groups, `no_new_privs` and seccomp filters, applied by the last process
//! of the chain right before it execs the program ([`apply`]), and the OOM
//! score, written earlier where a procfs is reachable
//! ([`apply_oom_score_adj`]).
//!
//! [`apply`] works in this order, each step needing what the one before
//! still allows:
//!
//! 1. resource limits (`setrlimit`), while `CAP_SYS_RESOURCE` may still
//!    raise a hard limit;
//! 2. the bounding set, reduced to the requested one (`PR_CAPBSET_DROP`
//!    for every other capability the kernel has, which needs `CAP_SETPCAP`);
//! 3. when the program runs as a non-zero uid with capabilities,
//!    `PR_SET_KEEPCAPS`, so that `setresuid` keeps the permitted set;
//! 4. supplementary groups, group and user (`setgroups`, `setresgid`,
//!    `setresuid`);
//! 5. the inheritable, effective and permitted sets (`capset`, in that
//!    order: each call stays within what the kernel allows after the one
//!    before);
//! 6. the ambient set: cleared, then each requested capability raised. A
//!    capability that cannot be raised (it is not both permitted and
//!    inheritable, or the kernel lacks it) is skipped and logged at debug
//!    level, as bubblewrap does;
//! 7. `PR_SET_NO_NEW_PRIVS`;
//! 8. the seccomp programs, in order, last: from here on the filters judge
//!    every system call, so nothing but the exec follows.
//!
//! A [`ProcessSecurity`] is filled by the OCI bundle reader
//! ([`crate::bundle`]) or the command line ([`crate::bwrap`]); its
//! [`Origin`] decides which flag or config field an error names.

use std::sync::Arc;

use caps::{CapSet, Capability, CapsHashSet};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use saferoot::oci::oci_spec::runtime::PosixRlimitType;
use serde::{Serialize, Serializer};

use crate::errors::CliError;
use crate::sandbox::ProcessUser;

/// Where a [`ProcessSecurity`] came from: errors name the config field or
/// the flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The command line (bubblewrap's flags).
    #[default]
    Flags,
    /// The `process` of an OCI bundle's `config.json`.
    Oci,
}

/// A part of the program's privileges, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The bounding set.
    Bounding,
    /// The effective set.
    Effective,
    /// The permitted set.
    Permitted,
    /// The inheritable set.
    Inheritable,
    /// The ambient set.
    Ambient,
    /// The resource limits.
    Rlimits,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// The OOM score adjustment.
    OomScoreAdj,
    /// The seccomp programs.
    Seccomp,
    /// The user id.
    Uid,
    /// The group id.
    Gid,
    /// The supplementary groups.
    Groups,
}

impl Origin {
    /// The config field or flag of `field`.
    pub fn name(self, field: Field) -> &'static str {
        match (self, field) {
            (Origin::Oci, Field::Bounding) => "process.capabilities.bounding",
            (Origin::Oci, Field::Effective) => "process.capabilities.effective",
            (Origin::Oci, Field::Permitted) => "process.capabilities.permitted",
            (Origin::Oci, Field::Inheritable) => "process.capabilities.inheritable",
            (Origin::Oci, Field::Ambient) => "process.capabilities.ambient",
            (Origin::Oci, Field::Rlimits) => "process.rlimits",
            (Origin::Oci, Field::NoNewPrivs) => "process.noNewPrivileges",
            (Origin::Oci, Field::OomScoreAdj) => "process.oomScoreAdj",
            // OCI's linux.seccomp is not read; programs come from flags.
            (Origin::Oci, Field::Seccomp) => "seccomp",
            (Origin::Oci, Field::Uid) => "process.user.uid",
            (Origin::Oci, Field::Gid) => "process.user.gid",
            (Origin::Oci, Field::Groups) => "process.user.additionalGids",
            (
                Origin::Flags,
                Field::Bounding
                | Field::Effective
                | Field::Permitted
                | Field::Inheritable
                | Field::Ambient,
            ) => "--cap-add/--cap-drop",
            (Origin::Flags, Field::Rlimits) => "rlimits",
            (Origin::Flags, Field::NoNewPrivs) => "no_new_privs",
            (Origin::Flags, Field::OomScoreAdj) => "oom_score_adj",
            (Origin::Flags, Field::Seccomp) => "--seccomp/--add-seccomp-fd",
            (Origin::Flags, Field::Uid) => "--uid",
            (Origin::Flags, Field::Gid) => "--gid",
            (Origin::Flags, Field::Groups) => "supplementary groups",
        }
    }
}

/// The five capability sets the program gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CapabilitySets {
    /// The bounding set: every capability the kernel has and this set does
    /// not list is dropped (also those newer than the `caps` crate).
    #[serde(serialize_with = "cap_names")]
    pub bounding: CapsHashSet,
    /// The effective set; must be part of `permitted`.
    #[serde(serialize_with = "cap_names")]
    pub effective: CapsHashSet,
    /// The permitted set.
    #[serde(serialize_with = "cap_names")]
    pub permitted: CapsHashSet,
    /// The inheritable set.
    #[serde(serialize_with = "cap_names")]
    pub inheritable: CapsHashSet,
    /// The ambient set: what a non-root program keeps across exec. Only
    /// capabilities that are both permitted and inheritable can be raised.
    #[serde(serialize_with = "cap_names")]
    pub ambient: CapsHashSet,
}

impl CapabilitySets {
    /// The same set in all five: what bubblewrap gives the program for
    /// the capabilities it was asked to keep (`--cap-add`, `--cap-drop`).
    // For the bubblewrap personality's --cap-add/--cap-drop.
    #[allow(dead_code)]
    pub fn uniform(set: CapsHashSet) -> CapabilitySets {
        CapabilitySets {
            bounding: set.clone(),
            effective: set.clone(),
            permitted: set.clone(),
            inheritable: set.clone(),
            ambient: set,
        }
    }

    /// The set `field` names (one of the five capability fields).
    pub fn get(&self, field: Field) -> Option<&CapsHashSet> {
        match field {
            Field::Bounding => Some(&self.bounding),
            Field::Effective => Some(&self.effective),
            Field::Permitted => Some(&self.permitted),
            Field::Inheritable => Some(&self.inheritable),
            Field::Ambient => Some(&self.ambient),
            _ => None,
        }
    }

    /// The set `field` names, to fill (one of the five capability
    /// fields).
    pub fn get_mut(&mut self, field: Field) -> Option<&mut CapsHashSet> {
        match field {
            Field::Bounding => Some(&mut self.bounding),
            Field::Effective => Some(&mut self.effective),
            Field::Permitted => Some(&mut self.permitted),
            Field::Inheritable => Some(&mut self.inheritable),
            Field::Ambient => Some(&mut self.ambient),
            _ => None,
        }
    }
}

/// The five capability fields, in the order OCI lists them.
pub const CAPABILITY_FIELDS: [Field; 5] = [
    Field::Bounding,
    Field::Effective,
    Field::Inheritable,
    Field::Permitted,
    Field::Ambient,
];

/// What happens to the program's capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Capabilities {
    /// Nothing: the process's sets stay as they are (a switch to a
    /// non-zero uid still clears them, as the kernel does).
    #[default]
    Unchanged,
    /// Exactly these sets.
    Sets(Box<CapabilitySets>),
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Capabilities::Unchanged => s.serialize_str("unchanged"),
            Capabilities::Sets(sets) => sets.serialize(s),
        }
    }
}

/// The names of `set`, in the kernel's order.
fn sorted(set: &CapsHashSet) -> Vec<Capability> {
    let mut v: Vec<Capability> = set.iter().copied().collect();
    v.sort_by_key(|c| c.index());
    v
}

/// `set` as its names (`CAP_CHOWN`, ...), in the kernel's order.
pub fn names(set: &CapsHashSet) -> Vec<String> {
    sorted(set).iter().map(|c| c.to_string()).collect()
}

fn cap_names<S: Serializer>(set: &CapsHashSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(names(set))
}

/// A capability by the name bubblewrap and OCI give it: `CAP_SYS_ADMIN`,
/// in any case. `ALL` is not a capability (the caller expands it, to
/// `caps::all()`); an unknown name is an error that names it.
pub fn parse_capability(name: &str) -> Result<Capability, String> {
    let upper = name.to_ascii_uppercase();
    if !upper.starts_with("CAP_") {
        return Err(format!(
            "{name:?} is not a capability name (they are written CAP_SYS_ADMIN, CAP_NET_RAW, ...)"
        ));
    }
    upper
        .parse::<Capability>()
        .map_err(|_| format!("unknown capability {name:?}"))
}

/// The rlimit types, as OCI and `getrlimit(2)` name them.
pub const RLIMIT_NAMES: [&str; 16] = [
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

/// One resource limit (OCI `process.rlimits[N]`). `u64::MAX` is
/// `RLIM_INFINITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rlimit {
    /// Which limit.
    #[serde(rename = "type")]
    pub kind: PosixRlimitType,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl Rlimit {
    /// The type named `name` (`RLIMIT_NOFILE`, as OCI writes it); an
    /// unknown name is an error that lists the known ones.
    pub fn parse_type(name: &str) -> Result<PosixRlimitType, String> {
        if !RLIMIT_NAMES.contains(&name) {
            return Err(format!(
                "unknown rlimit type {name:?} (the types are {})",
                RLIMIT_NAMES.join(", ")
            ));
        }
        name.parse::<PosixRlimitType>()
            .map_err(|_| format!("unknown rlimit type {name:?}"))
    }

    /// The type's name (`RLIMIT_NOFILE`).
    pub fn name(&self) -> String {
        self.kind.to_string()
    }

    fn resource(&self) -> rustix::process::Resource {
        use rustix::process::Resource as R;
        use PosixRlimitType as T;
        match self.kind {
            T::RlimitCpu => R::Cpu,
            T::RlimitFsize => R::Fsize,
            T::RlimitData => R::Data,
            T::RlimitStack => R::Stack,
            T::RlimitCore => R::Core,
            T::RlimitRss => R::Rss,
            T::RlimitNproc => R::Nproc,
            T::RlimitNofile => R::Nofile,
            T::RlimitMemlock => R::Memlock,
            T::RlimitAs => R::As,
            T::RlimitLocks => R::Locks,
            T::RlimitSigpending => R::Sigpending,
            T::RlimitMsgqueue => R::Msgqueue,
            T::RlimitNice => R::Nice,
            T::RlimitRtprio => R::Rtprio,
            T::RlimitRttime => R::Rttime,
        }
    }

    fn limits(&self) -> rustix::process::Rlimit {
        let value = |v: u64| (v != u64::MAX).then_some(v);
        rustix::process::Rlimit {
            current: value(self.soft),
            maximum: value(self.hard),
        }
    }
}

/// The largest seccomp program the kernel takes, in instructions
/// (`BPF_MAXINSNS`).
pub const SECCOMP_MAX_INSNS: usize = 4096;

/// The size of one classic BPF instruction (`struct sock_filter`).
pub const SOCK_FILTER_SIZE: usize = 8;

/// Checks a raw seccomp program (the bytes of an array of `struct
/// sock_filter`, as bubblewrap's `--seccomp FD` reads them) and returns
/// its instructions: it must be non-empty, a whole number of 8-byte
/// instructions, and at most 4096 of them. Whether the kernel accepts the
/// program itself is known only when it is loaded.
pub fn seccomp_instructions(program: &[u8]) -> Result<Vec<libc::sock_filter>, String> {
    if program.is_empty() {
        return Err("the seccomp program is empty".into());
    }
    if program.len() % SOCK_FILTER_SIZE != 0 {
        return Err(format!(
            "the seccomp program has {} bytes, not a whole number of {SOCK_FILTER_SIZE}-byte \
             instructions (struct sock_filter)",
            program.len()
        ));
    }
    let n = program.len() / SOCK_FILTER_SIZE;
    if n > SECCOMP_MAX_INSNS {
        return Err(format!(
            "the seccomp program has {n} instructions; the kernel takes at most \
             {SECCOMP_MAX_INSNS} (BPF_MAXINSNS)"
        ));
    }
    Ok(program
        .chunks_exact(SOCK_FILTER_SIZE)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

fn seccomp_summary<S: Serializer>(programs: &[Arc<Vec<u8>>], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Program {
        instructions: usize,
    }
    s.collect_seq(programs.iter().map(|p| Program {
        instructions: p.len() / SOCK_FILTER_SIZE,
    }))
}

/// The program's privileges: everything [`apply`] sets right before exec,
/// and the OOM score ([`apply_oom_score_adj`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessSecurity {
    /// Which fields and flags errors name.
    pub origin: Origin,
    /// `PR_SET_NO_NEW_PRIVS` before exec (OCI `process.noNewPrivileges`).
    pub no_new_privs: bool,
    /// The capability sets (OCI `process.capabilities`).
    pub capabilities: Capabilities,
    /// Resource limits (OCI `process.rlimits`), each type at most once.
    pub rlimits: Vec<Rlimit>,
    /// `/proc/PID/oom_score_adj`, -1000 to 1000 (OCI `process.oomScoreAdj`).
    pub oom_score_adj: Option<i32>,
    /// Raw classic-BPF seccomp programs (arrays of 8-byte `struct
    /// sock_filter`), loaded in this order after everything else (see
    /// [`seccomp_instructions`]). Shown in dry runs by size only.
    #[serde(serialize_with = "seccomp_summary")]
    pub seccomp: Vec<Arc<Vec<u8>>>,
    /// With [`Capabilities::Unchanged`]: raise each effective capability
    /// into the ambient set where the kernel allows it (only those also
    /// inheritable), as bubblewrap does for a caller with uid 0 that gave
    /// no `--cap-add` or `--cap-drop`.
    pub raise_ambient: bool,
}

/// A [`ProcessSecurity`] that cannot be applied: the field (or flag) and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The config field or flag (`process.rlimits[1]`, `--seccomp`, ...).
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl ProcessSecurity {
    /// Checks everything that can be checked before any process exists:
    /// the effective set is part of the permitted set, each rlimit type
    /// appears once with its soft limit at most its hard limit, the OOM
    /// score adjustment is within -1000..=1000, and each seccomp program
    /// has a valid size.
    pub fn validate(&self) -> Result<(), Invalid> {
        let o = self.origin;
        let invalid = |field: String, why: String| Invalid { field, why };
        if let Capabilities::Sets(s) = &self.capabilities {
            let extra: CapsHashSet = s.effective.difference(&s.permitted).copied().collect();
            if !extra.is_empty() {
                return Err(invalid(
                    o.name(Field::Effective).into(),
                    format!(
                        "{} not in {}: the kernel refuses an effective capability that is not permitted",
                        names(&extra).join(", "),
                        o.name(Field::Permitted)
                    ),
                ));
            }
        }
        for (i, r) in self.rlimits.iter().enumerate() {
            let field = format!("{}[{i}]", o.name(Field::Rlimits));
            if r.soft > r.hard {
                return Err(invalid(
                    field,
                    format!(
                        "{}: the soft limit {} is above the hard limit {}",
                        r.name(),
                        r.soft,
                        r.hard
                    ),
                ));
            }
            if let Some(j) = self.rlimits[..i].iter().position(|p| p.kind == r.kind) {
                return Err(invalid(
                    field,
                    format!(
                        "{} is already set by {}[{j}]; each type may appear once",
                        r.name(),
                        o.name(Field::Rlimits)
                    ),
                ));
            }
        }
        if let Some(v) = self.oom_score_adj {
            if !(-1000..=1000).contains(&v) {
                return Err(invalid(
                    o.name(Field::OomScoreAdj).into(),
                    format!("{v} is out of range: it must be between -1000 and 1000"),
                ));
            }
        }
        for (i, p) in self.seccomp.iter().enumerate() {
            seccomp_instructions(p).map_err(|why| {
                invalid(
                    format!(
                        "{} (program {} of {})",
                        o.name(Field::Seccomp),
                        i + 1,
                        self.seccomp.len()
                    ),
                    why,
                )
            })?;
        }
        Ok(())
    }
}

/// Writes the OOM score adjustment of `sec`, if it has one, for the
/// calling process (`pid` `None`) or the process `pid` (as `procfs` sees
/// it), through a private procfs (never a `/proc` the sandbox could have
/// changed). Children inherit it. Lowering the score needs
/// `CAP_SYS_RESOURCE` in the initial user namespace: the namespace child
/// writes its own before it creates a user namespace, and saferoot writes
/// the score of an init it cloned into one.
pub fn apply_oom_score_adj(
    sec: &ProcessSecurity,
    procfs: &saferoot::procfs::Procfs,
    pid: Option<rustix::process::Pid>,
) -> Result<(), CliError> {
    use std::io::Write;
    let Some(value) = sec.oom_score_adj else {
        return Ok(());
    };
    let field = sec.origin.name(Field::OomScoreAdj);
    let fail = |what: String| CliError::setup(format!("{field} {value}: {what}"));
    let (opened, shown) = match pid {
        None => (
            procfs.open_self("oom_score_adj", rustix::fs::OFlags::WRONLY),
            "/proc/self/oom_score_adj".to_string(),
        ),
        Some(pid) => {
            let sub = format!("{}/oom_score_adj", pid.as_raw_nonzero());
            (
                procfs.open_root(&sub, rustix::fs::OFlags::WRONLY),
                format!("/proc/{sub}"),
            )
        }
    };
    let mut f = opened.map_err(|e| fail(e.to_string()))?;
    f.write_all(value.to_string().as_bytes()).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (lowering the score below what the process inherited needs CAP_SYS_RESOURCE)"
        } else {
            ""
        };
        fail(format!("write {shown}: {e}{hint}"))
    })?;
    log::debug!("oom_score_adj = {value}");
    Ok(())
}

/// The name of capability number `n`, or `capability N` when the `caps`
/// crate does not know it.
fn cap_name(n: u32) -> String {
    caps::all()
        .into_iter()
        .find(|c| u32::from(c.index()) == n)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("capability {n}"))
}

/// Drops from the bounding set every capability the kernel has that
/// `keep` does not list, by number, so that capabilities newer than the
/// `caps` crate go too. The kernel numbers its capabilities from 0 to its
/// last one without a gap and answers `EINVAL` for any number above: the
/// first `EINVAL` ends the walk (rather than asking up to 63 each time).
/// Dropping a capability that is not in the set succeeds, so each number
/// is one `PR_CAPBSET_DROP`; only where that is refused (`EPERM`, without
/// `CAP_SETPCAP`) does `PR_CAPBSET_READ` tell a capability that is already
/// gone, which is fine, from one that stays, which is an error.
fn reduce_bounding_set(keep: &CapsHashSet) -> Result<(), String> {
    use crate::sys::privileges::{bounding_set_drop, bounding_set_has};
    for n in 0..64u32 {
        if keep.iter().any(|c| u32::from(c.index()) == n) {
            continue;
        }
        match bounding_set_drop(n) {
            Ok(()) => {}
            Err(Errno::INVAL) => break,
            // Without the privilege the kernel says EPERM before it looks
            // at the number: the read then finds the end.
            Err(drop_err) => match bounding_set_has(n) {
                Ok(false) => {}
                Err(Errno::INVAL) => break,
                Ok(true) => {
                    return Err(format!(
                        "drop {} (PR_CAPBSET_DROP): {drop_err}",
                        cap_name(n)
                    ))
                }
                Err(e) => return Err(format!("read {} (PR_CAPBSET_READ): {e}", cap_name(n))),
            },
        }
    }
    Ok(())
}

/// Supplementary groups, then the group, then the user (OCI
/// `process.user`). The process has one thread, so the per-thread system
/// calls cover it all.
fn switch_user(o: Origin, u: &ProcessUser) -> Result<(), CliError> {
    let groups: Vec<Gid> = u
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| {
        CliError::setup(format!(
            "{} {:?}: setgroups: {e}",
            o.name(Field::Groups),
            u.additional_gids
        ))
    })?;
    let gid = Gid::from_raw(u.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| {
        CliError::setup(format!("{} {}: setresgid: {e}", o.name(Field::Gid), u.gid))
    })?;
    let uid = Uid::from_raw(u.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| {
        CliError::setup(format!("{} {}: setresuid: {e}", o.name(Field::Uid), u.uid))
    })?;
    Ok(())
}

/// Clears the ambient set and raises each capability of `set`. One that
/// cannot be raised (`EPERM`: not both permitted and inheritable; `EINVAL`:
/// the kernel lacks it or has no ambient set) is skipped and logged at
/// debug level, as bubblewrap does.
fn set_ambient(o: Origin, set: &CapsHashSet) -> Result<(), CliError> {
    let field = o.name(Field::Ambient);
    match rustix::thread::clear_ambient_capability_set() {
        Ok(()) => {}
        Err(Errno::INVAL) => {
            log::debug!("{field}: the kernel has no ambient set (Linux 4.3+)");
            return Ok(());
        }
        Err(e) => {
            return Err(CliError::setup(format!(
                "{field}: clear the ambient set (PR_CAP_AMBIENT_CLEAR_ALL): {e}"
            )))
        }
    }
    for c in sorted(set) {
        match crate::sys::privileges::ambient_raise(u32::from(c.index())) {
            Ok(()) => {}
            Err(e @ (Errno::PERM | Errno::INVAL)) => {
                log::debug!("{field}: {c} not raised ({e}): an ambient capability must be permitted and inheritable");
            }
            Err(e) => {
                return Err(CliError::setup(format!(
                    "{field}: raise {c} (PR_CAP_AMBIENT_RAISE): {e}"
                )))
            }
        }
    }
    Ok(())
}

/// Applies `sec` and switches to `user` (when given) in the calling
/// process, which must have one thread and be about to exec; see the
/// module's documentation for the order. A failure returns the error to
/// report; the process must then exit without running the program.
pub fn apply(sec: &ProcessSecurity, user: Option<&ProcessUser>) -> Result<(), CliError> {
    let o = sec.origin;
    sec.validate().map_err(|e| CliError::setup(e.to_string()))?;
    // Decoded before anything changes.
    let programs: Vec<Vec<libc::sock_filter>> = sec
        .seccomp
        .iter()
        .map(|p| seccomp_instructions(p))
        .collect::<Result<_, _>>()
        .map_err(|why| CliError::setup(format!("{}: {why}", o.name(Field::Seccomp))))?;
    let sets = match &sec.capabilities {
        Capabilities::Unchanged => None,
        Capabilities::Sets(s) => Some(s),
    };

    for (i, r) in sec.rlimits.iter().enumerate() {
        rustix::process::setrlimit(r.resource(), r.limits()).map_err(|e| {
            CliError::setup(format!(
                "{}[{i}] ({} soft {} hard {}): setrlimit: {e}",
                o.name(Field::Rlimits),
                r.name(),
                r.soft,
                r.hard
            ))
        })?;
    }
    if let Some(s) = sets {
        reduce_bounding_set(&s.bounding)
            .map_err(|why| CliError::setup(format!("{}: {why}", o.name(Field::Bounding))))?;
    }
    if let Some(u) = user {
        if u.uid != 0 && sets.is_some() {
            // setresuid to a non-zero uid would clear the permitted set;
            // the sets are written right after it.
            rustix::thread::set_keep_capabilities(true).map_err(|e| {
                CliError::setup(format!(
                    "{}: keep capabilities across setresuid (PR_SET_KEEPCAPS): {e}",
                    o.name(Field::Permitted)
                ))
            })?;
        }
        switch_user(o, u)?;
    }
    if let Some(s) = sets {
        // Inheritable first, while the permitted set still covers it;
        // effective before permitted shrinks below it.
        for (cset, field) in [
            (CapSet::Inheritable, Field::Inheritable),
            (CapSet::Effective, Field::Effective),
            (CapSet::Permitted, Field::Permitted),
        ] {
            let want = s.get(field).cloned().unwrap_or_default();
            caps::set(None, cset, &want).map_err(|e| {
                CliError::setup(format!(
                    "{}: set [{}] (capset): {e}",
                    o.name(field),
                    names(&want).join(", ")
                ))
            })?;
        }
        set_ambient(o, &s.ambient)?;
    }
    if sets.is_none() && sec.raise_ambient {
        let effective = caps::read(None, CapSet::Effective).map_err(|e| {
            CliError::setup(format!(
                "{}: read the effective set: {e}",
                o.name(Field::Ambient)
            ))
        })?;
        // The kernel raises only what is also inheritable (and permitted,
        // which the effective set is part of): try just those, rather than
        // asking once per capability to be refused.
        let inheritable = caps::read(None, CapSet::Inheritable).map_err(|e| {
            CliError::setup(format!(
                "{}: read the inheritable set: {e}",
                o.name(Field::Ambient)
            ))
        })?;
        let raisable: caps::CapsHashSet = effective.intersection(&inheritable).copied().collect();
        for c in sorted(&raisable) {
            match crate::sys::privileges::ambient_raise(u32::from(c.index())) {
                Ok(()) | Err(Errno::PERM | Errno::INVAL) => {}
                Err(e) => {
                    return Err(CliError::setup(format!(
                        "{}: raise {c} (PR_CAP_AMBIENT_RAISE): {e}",
                        o.name(Field::Ambient)
                    )))
                }
            }
        }
    }
    if sec.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(|e| {
            CliError::setup(format!(
                "{}: prctl(PR_SET_NO_NEW_PRIVS): {e}",
                o.name(Field::NoNewPrivs)
            ))
        })?;
    }
    let n = programs.len();
    for (i, prog) in programs.iter().enumerate() {
        crate::sys::privileges::seccomp_set_filter(prog).map_err(|e| {
            let hint = match e {
                Errno::ACCESS => " (loading a filter needs no_new_privs or CAP_SYS_ADMIN)",
                Errno::INVAL => {
                    " (the kernel refused the program: it is not a valid seccomp filter)"
                }
                _ => "",
            };
            CliError::setup(format!(
                "{} (program {} of {n}): prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER): {e}{hint}",
                o.name(Field::Seccomp),
                i + 1
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_parse_in_any_case() {
        assert_eq!(
            parse_capability("CAP_SYS_ADMIN").unwrap(),
            Capability::CAP_SYS_ADMIN
        );
        assert_eq!(
            parse_capability("cap_net_raw").unwrap(),
            Capability::CAP_NET_RAW
        );
        assert_eq!(
            parse_capability("Cap_Checkpoint_Restore").unwrap(),
            Capability::CAP_CHECKPOINT_RESTORE
        );
        let e = parse_capability("CAP_FROBNICATE").unwrap_err();
        assert!(e.contains("CAP_FROBNICATE"), "{e}");
        let e = parse_capability("SYS_ADMIN").unwrap_err();
        assert!(e.contains("SYS_ADMIN"), "{e}");
        assert!(parse_capability("ALL").is_err());
        assert!(parse_capability("").is_err());
    }

    #[test]
    fn uniform_sets_are_the_same_five_times() {
        let set: CapsHashSet = [Capability::CAP_KILL, Capability::CAP_CHOWN].into();
        let s = CapabilitySets::uniform(set.clone());
        for f in CAPABILITY_FIELDS {
            assert_eq!(s.get(f), Some(&set), "{f:?}");
        }
        let json = serde_json::to_value(Capabilities::Sets(Box::new(s))).unwrap();
        assert_eq!(
            json["ambient"],
            serde_json::json!(["CAP_CHOWN", "CAP_KILL"])
        );
        assert_eq!(
            serde_json::to_value(Capabilities::Unchanged).unwrap(),
            "unchanged"
        );
    }

    #[test]
    fn every_rlimit_name_parses_and_maps() {
        for name in RLIMIT_NAMES {
            let kind = Rlimit::parse_type(name).unwrap();
            let r = Rlimit {
                kind,
                soft: 1,
                hard: 2,
            };
            assert_eq!(r.name(), name);
            // Each type maps to a different resource.
            let others = RLIMIT_NAMES
                .iter()
                .filter(|n| **n != name)
                .map(|n| Rlimit {
                    kind: Rlimit::parse_type(n).unwrap(),
                    soft: 0,
                    hard: 0,
                })
                .filter(|o| o.resource() == r.resource())
                .count();
            assert_eq!(others, 0, "{name}");
        }
        let e = Rlimit::parse_type("RLIMIT_FROB").unwrap_err();
        assert!(
            e.contains("RLIMIT_FROB") && e.contains("RLIMIT_NOFILE"),
            "{e}"
        );
        assert!(Rlimit::parse_type("rlimit_nofile").is_err());
        let inf = Rlimit {
            kind: PosixRlimitType::RlimitCore,
            soft: 7,
            hard: u64::MAX,
        };
        assert_eq!(inf.limits().current, Some(7));
        assert_eq!(inf.limits().maximum, None);
    }

    #[test]
    fn validation_names_the_field() {
        let oci = |f: &dyn Fn(&mut ProcessSecurity)| {
            let mut s = ProcessSecurity {
                origin: Origin::Oci,
                ..Default::default()
            };
            f(&mut s);
            s.validate()
        };
        assert!(oci(&|_| {}).is_ok());
        let e = oci(&|s| s.oom_score_adj = Some(1001)).unwrap_err();
        assert_eq!(e.field, "process.oomScoreAdj");
        assert!(e.why.contains("1001"), "{e}");
        assert!(oci(&|s| s.oom_score_adj = Some(-1000)).is_ok());
        assert!(oci(&|s| s.oom_score_adj = Some(-1001)).is_err());
        let rl = |kind, soft, hard| Rlimit { kind, soft, hard };
        let e = oci(&|s| s.rlimits = vec![rl(PosixRlimitType::RlimitNofile, 10, 5)]).unwrap_err();
        assert_eq!(e.field, "process.rlimits[0]");
        assert!(e.why.contains("RLIMIT_NOFILE"), "{e}");
        let e = oci(&|s| {
            s.rlimits = vec![
                rl(PosixRlimitType::RlimitNofile, 1, 5),
                rl(PosixRlimitType::RlimitCore, 1, 5),
                rl(PosixRlimitType::RlimitNofile, 1, 5),
            ]
        })
        .unwrap_err();
        assert_eq!(e.field, "process.rlimits[2]");
        assert!(e.why.contains("process.rlimits[0]"), "{e}");
        let e = oci(&|s| {
            s.capabilities = Capabilities::Sets(Box::new(CapabilitySets {
                effective: [Capability::CAP_KILL].into(),
                ..Default::default()
            }))
        })
        .unwrap_err();
        assert_eq!(e.field, "process.capabilities.effective");
        assert!(e.why.contains("CAP_KILL"), "{e}");
    }

    #[test]
    fn malformed_seccomp_programs_are_refused() {
        let e = seccomp_instructions(&[]).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = seccomp_instructions(&[0; 12]).unwrap_err();
        assert!(e.contains("12 bytes") && e.contains("8-byte"), "{e}");
        let e = seccomp_instructions(&vec![0; 8 * 4097]).unwrap_err();
        assert!(e.contains("4097") && e.contains("4096"), "{e}");
        assert_eq!(
            seccomp_instructions(&vec![0; 8 * 4096]).unwrap().len(),
            4096
        );
        // Flags name the flag, and which program.
        let s = ProcessSecurity {
            seccomp: vec![Arc::new(allow_all()), Arc::new(vec![0; 9])],
            ..Default::default()
        };
        let e = s.validate().unwrap_err();
        assert_eq!(e.field, "--seccomp/--add-seccomp-fd (program 2 of 2)");
        assert!(e.why.contains("9 bytes"), "{e}");
        // apply refuses it before changing anything: no_new_privs stays
        // off (checked on a thread of its own, where the flag would land).
        let s2 = ProcessSecurity {
            no_new_privs: true,
            ..s
        };
        std::thread::spawn(move || {
            let e = apply(&s2, None).unwrap_err();
            assert!(e.message.contains("--seccomp"), "{e}");
            assert_eq!(status_field("NoNewPrivs"), "0");
        })
        .join()
        .unwrap();
    }

    fn insn(code: u32, jt: u8, jf: u8, k: u32) -> Vec<u8> {
        let mut v = (code as u16).to_ne_bytes().to_vec();
        v.extend([jt, jf]);
        v.extend(k.to_ne_bytes());
        v
    }

    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;

    fn allow_all() -> Vec<u8> {
        insn(libc::BPF_RET | libc::BPF_K, 0, 0, RET_ALLOW)
    }

    /// `getpriority` fails with `EPERM`, everything else is allowed.
    fn deny_getpriority() -> Vec<u8> {
        let mut p = Vec::new();
        // A = seccomp_data.nr (offset 0)
        p.extend(insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0));
        p.extend(insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_getpriority as u32,
        ));
        p.extend(insn(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            RET_ERRNO | libc::EPERM as u32,
        ));
        p.extend(allow_all());
        p
    }

    /// A field of `/proc/thread-self/status`.
    fn status_field(name: &str) -> String {
        let text = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in status"))
            .trim()
            .to_string()
    }

    /// The loader, on a thread of its own (seccomp filters and
    /// `no_new_privs` belong to the thread that sets them, and to what it
    /// starts; the test's other threads are untouched): two programs load
    /// in order, the second makes `getpriority` fail with `EPERM`, and the
    /// thread reports filter mode.
    #[test]
    fn seccomp_programs_are_loaded_and_enforced() {
        let sec = ProcessSecurity {
            no_new_privs: true,
            seccomp: vec![Arc::new(allow_all()), Arc::new(deny_getpriority())],
            ..Default::default()
        };
        let prio = || rustix::process::getpriority_process(None);
        std::thread::spawn(move || {
            assert!(prio().is_ok());
            assert_eq!(status_field("Seccomp"), "0");
            apply(&sec, None).unwrap();
            assert_eq!(prio(), Err(Errno::PERM));
            assert_eq!(status_field("Seccomp"), "2");
            assert_eq!(status_field("NoNewPrivs"), "1");
            // Everything else still works.
            assert_eq!(rustix::process::getpid(), rustix::process::getpid());
        })
        .join()
        .unwrap();
        // The rest of the process is not filtered.
        assert!(prio().is_ok());
        assert_eq!(status_field("Seccomp"), "0");
    }

    /// A program the kernel's verifier refuses (a jump out of the program)
    /// gives an error that says so, naming the flag.
    #[test]
    fn seccomp_programs_the_kernel_refuses_are_reported() {
        let mut bad = insn(libc::BPF_JMP | libc::BPF_JA, 0, 0, 5);
        bad.extend(allow_all());
        let sec = ProcessSecurity {
            no_new_privs: true,
            seccomp: vec![Arc::new(bad)],
            ..Default::default()
        };
        std::thread::spawn(move || {
            let e = apply(&sec, None).unwrap_err();
            assert!(
                e.message
                    .contains("--seccomp/--add-seccomp-fd (program 1 of 1)")
                    && e.message.contains("not a valid seccomp filter"),
                "{e}"
            );
            assert_eq!(status_field("Seccomp"), "0");
        })
        .join()
        .unwrap();
    }
}
