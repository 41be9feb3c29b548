//! The static audit: an OCI config and its rootfs, inspected without
//! running anything.
//!
//! The rootfs is opened as a `saferoot::Root` and walked component by
//! component with `resolve_nofollow` and `readlink`: a symlink is read and
//! reported, and followed only inside the root, never out of it. The config
//! is read as a raw OCI `Spec`, so that every mount is looked at even when
//! one of them is refused by `saferoot::oci`.

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;
use saferoot::oci::oci_spec::runtime::Spec;
use saferoot::rootfs::options::parse_options;
use saferoot::rootfs::policy::{clean, PROC_ALLOWLIST};
use saferoot::{ErrorKind, MountAttr, Root};

use crate::errors::Escaped;
use crate::findings::{Finding, Severity, DEFAULT_MASKED};

/// What the walk of a path inside the root met.
#[derive(Debug, Default)]
struct Walk {
    /// Symlinks met: where each is, what it says.
    links: Vec<(PathBuf, PathBuf)>,
    /// The in-root path the walk ended at.
    end: PathBuf,
}

/// Walks `path` inside `root` one component at a time, reading every
/// symlink and following it only inside the root (as saferoot resolves).
fn walk(root: &Root, path: &Path) -> Walk {
    let mut w = Walk {
        end: PathBuf::from("/"),
        ..Default::default()
    };
    let mut queue: VecDeque<PathBuf> = path
        .components()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut budget = 40;
    while let Some(comp) = queue.pop_front() {
        match Path::new(&comp).components().next() {
            Some(Component::RootDir) | Some(Component::CurDir) | None => continue,
            Some(Component::ParentDir) => {
                w.end.pop();
                continue;
            }
            _ => {}
        }
        let next = w.end.join(&comp);
        let Ok(h) = root.resolve_nofollow(&next) else {
            // Missing (or unreadable): the rest is created as directories.
            w.end = next;
            for rest in queue {
                w.end.push(rest);
            }
            return w;
        };
        if h.file_type().ok() != Some(FileType::Symlink) {
            w.end = next;
            continue;
        }
        let Ok(target) = root.readlink(&next) else {
            w.end = next;
            continue;
        };
        w.links.push((next, target.clone()));
        budget -= 1;
        if budget == 0 {
            return w;
        }
        if target.is_absolute() {
            w.end = PathBuf::from("/");
        }
        for c in target.components().rev() {
            queue.push_front(PathBuf::from(c.as_os_str()));
        }
    }
    w
}

/// Whether a symlink at `link` (in-root path) with contents `target` leads
/// out of the root when a runtime follows it on the host, where the root is
/// just a directory: an absolute target, or `..` above the root.
fn leaves_root(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let start = link
        .parent()
        .map_or(0, |p| p.components().count().saturating_sub(1)) as i64;
    climbs_above(start, target)
}

/// Whether `path`, walked lexically from `depth` levels below `/`, goes
/// above `/` with `..`.
fn climbs_above(mut depth: i64, path: &Path) -> bool {
    for c in path.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// Whether a destination climbs above `/` with `..` (lexically).
fn dotdot_escapes(dest: &Path) -> bool {
    climbs_above(0, dest)
}

/// One mount of the config, with what the audit needs.
struct AMount {
    index: usize,
    dest: PathBuf,
    clean_dest: PathBuf,
    fs_type: String,
    is_bind: bool,
    source: Option<PathBuf>,
    options: Vec<String>,
}

impl AMount {
    fn entry(&self) -> String {
        format!("mounts[{}]", self.index)
    }
}

fn mounts_of(config: &Spec, bundle: &Path) -> Vec<AMount> {
    config
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, m)| {
            let options = m.options().clone().unwrap_or_default();
            let fs_type = m.typ().clone().unwrap_or_default();
            let is_bind = fs_type == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            let source = m.source().clone().map(|s| {
                if is_bind && s.is_relative() {
                    bundle.join(s)
                } else {
                    s
                }
            });
            AMount {
                index,
                clean_dest: clean(m.destination()),
                dest: m.destination().clone(),
                fs_type,
                is_bind,
                source,
                options,
            }
        })
        .collect()
}

/// Everything the static audit finds in `config` (read from `bundle`,
/// for relative paths) with its root at `rootfs`.
pub fn audit(config: &Spec, bundle: &Path, rootfs: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(e) = saferoot::oci::spec_from_config(config, bundle) {
        out.push(
            Finding::new(Severity::Medium, "config-invalid", e.path().map(|p| p.escaped()).unwrap_or_else(|| "-".into()))
                .entry(e.operation().to_string())
                .problem(format!("saferoot refuses the config: {e}"))
                .why("the container does not start with saferoot; a runtime that accepts it may not do what the entry seems to say (runc ignores unknown bind options, so a misspelt nosuid is silently dropped)")
                .fix("correct the entry named"),
        );
    }
    let mounts = mounts_of(config, bundle);
    let root = match Root::open(rootfs) {
        Ok(r) if rootfs.is_dir() => Some(r),
        _ => {
            out.push(
                Finding::new(Severity::High, "rootfs-missing", rootfs.escaped())
                    .entry("root.path")
                    .problem("the rootfs is not a directory that can be opened")
                    .why("the container cannot start; nothing in the rootfs could be checked")
                    .fix("point root.path (or --rootfs) at the root filesystem directory"),
            );
            None
        }
    };
    check_mount_options(&mounts, &mut out);
    check_destinations(&mounts, root.as_ref(), &mut out);
    check_bind_sources(&mounts, &mut out);
    check_propagation(config, &mounts, &mut out);
    check_flags(&mounts, &mut out);
    check_proc_sys(config, &mounts, &mut out);
    check_masked(config, &mounts, &mut out);
    if let Some(root) = &root {
        check_root_layout(root, &mounts, &mut out);
    }
    out
}

fn check_mount_options(mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts {
        if let Err(e) = parse_options(&m.options, m.fs_type == "bind") {
            out.push(
                Finding::new(Severity::Medium, "mount-option-invalid", m.dest.escaped())
                    .entry(format!("{}.options", m.entry()))
                    .problem(format!(
                        "bad mount options {}: {e}",
                        m.options.iter().map(|o| o.escaped()).collect::<Vec<_>>().join(",")
                    ))
                    .why("saferoot refuses the mount; runc silently ignores unknown options on bind mounts, so the flag the author meant (say nosuid) is not applied")
                    .fix("use only the options runc and crun document (see docs/oci.md)"),
            );
        }
    }
}

fn under(p: &Path, top: &str) -> bool {
    p.starts_with(top)
}

fn check_destinations(mounts: &[AMount], root: Option<&Root>, out: &mut Vec<Finding>) {
    for m in mounts {
        let shown = m.dest.escaped();
        if dotdot_escapes(&m.dest) {
            out.push(
                Finding::new(Severity::High, "dest-dotdot-escape", shown.clone())
                    .entry(format!("{}.destination", m.entry()))
                    .problem("the destination climbs above / with `..`")
                    .why("a runtime that joins the destination to the rootfs path and follows it mounts outside the rootfs, onto the host; saferoot keeps it inside, but the config only works by luck")
                    .cve("CVE-2021-30465")
                    .fix(format!("write the destination as the absolute path it means ({})", m.clean_dest.escaped())),
            );
        }
        if under(&m.clean_dest, "/proc")
            && m.clean_dest != Path::new("/proc")
            && !PROC_ALLOWLIST.iter().any(|p| m.clean_dest == Path::new(p))
        {
            out.push(
                Finding::new(Severity::High, "proc-mount-not-allowed", shown.clone())
                    .entry(m.entry())
                    .problem("a mount inside /proc that is not on the lxcfs allowlist")
                    .why("mounting over procfs entries can hide or redirect what the runtime and LSMs write there (such as /proc/self/attr), disabling confinement")
                    .cve("CVE-2019-19921")
                    .fix(format!("mount only on /proc itself or on {}", PROC_ALLOWLIST.join(", "))),
            );
        }
        let Some(root) = root else { continue };
        let w = walk(root, &m.dest);
        for (link, target) in &w.links {
            // /proc, /sys and /dev have findings of their own.
            if ["/proc", "/sys", "/dev"]
                .iter()
                .any(|p| link == Path::new(p))
            {
                continue;
            }
            let escapes = leaves_root(link, target);
            let kernel_fs = ["/proc", "/sys"]
                .iter()
                .any(|p| under(&m.clean_dest, p) || under(&w.end, p));
            let severity = if kernel_fs {
                Severity::Critical
            } else if escapes {
                Severity::High
            } else {
                Severity::Low
            };
            let whereto = if escapes {
                format!(
                    "it points out of the root ({}): a runtime that follows it on the host mounts onto the host",
                    target.escaped()
                )
            } else {
                format!("inside the root it leads to {}", w.end.escaped())
            };
            let mut f = Finding::new(severity, "dest-through-symlink", shown.clone())
                .entry(format!("{}.destination", m.entry()))
                .problem(format!(
                    "the destination {} {}, a symlink to {}; {whereto}",
                    if link == &m.clean_dest { "is" } else { "passes through" },
                    link.escaped(),
                    target.escaped()
                ))
                .why(if kernel_fs {
                    "a mount whose target is redirected into /proc or /sys can defeat the runtime's procfs and LSM writes (a container-controlled symlink swapped in at the right moment)"
                } else if escapes {
                    "a path-based runtime that follows the symlink mounts onto a place the container chose, possibly on the host"
                } else {
                    "the mount does not land where the destination says; saferoot resolves it inside the root, other runtimes may differ"
                })
                .fix(format!(
                    "use the real path ({}) as the destination, or replace the symlink with a directory",
                    w.end.escaped()
                ));
            if kernel_fs {
                f = f.cve("CVE-2019-19921");
            } else if escapes {
                f = f.cve("CVE-2021-30465");
            }
            out.push(f);
        }
    }
}

fn check_bind_sources(mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts.iter().filter(|m| m.is_bind) {
        let Some(src) = &m.source else { continue };
        let Ok(meta) = std::fs::metadata(src) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o002 == 0 {
            continue;
        }
        let sticky = mode & 0o1000 != 0;
        out.push(
            Finding::new(
                if sticky { Severity::Medium } else { Severity::High },
                "bind-source-world-writable",
                m.dest.escaped(),
            )
            .entry(format!("{}.source", m.entry()))
            .problem(format!(
                "the bind source {} is world-writable (mode {:o}{})",
                src.escaped(),
                mode & 0o7777,
                if sticky { ", sticky" } else { "" }
            ))
            .why("any user on the host can change what the container sees there: plant symlinks, swap files, or drop setuid programs for the container to run")
            .fix("bind a directory only root (or the container's owner) can write, or add nosuid,nodev,noexec and ro"),
        );
    }
}

fn check_propagation(config: &Spec, mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts {
        for o in &m.options {
            if o == "shared" || o == "rshared" {
                out.push(
                    Finding::new(Severity::High, "shared-propagation", m.dest.escaped())
                        .entry(format!("{}.options", m.entry()))
                        .problem(format!("the mount is made {o}"))
                        .why("mounts made inside the container propagate to its peers on the host, and the host's to it: the container can make mounts appear on the host")
                        .fix("use rslave (receive host mounts) or rprivate"),
                );
            }
        }
    }
    if let Some(p) = config
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    {
        if p == "shared" || p == "rshared" {
            out.push(
                Finding::new(Severity::High, "shared-propagation", "/")
                    .entry("linux.rootfsPropagation")
                    .problem(format!("the root is made {p}"))
                    .why("every mount of the container is in a peer group with the host's: mounts made inside appear outside")
                    .fix("use rslave (the default) or rprivate"),
            );
        }
    }
}

/// The flags a mount should have, by filesystem and place.
fn expected_flags(m: &AMount) -> MountAttr {
    let d = m.clean_dest.as_path();
    let all = MountAttr::NOSUID | MountAttr::NODEV | MountAttr::NOEXEC;
    match m.fs_type.as_str() {
        "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" => all,
        "devpts" => MountAttr::NOSUID | MountAttr::NOEXEC,
        "tmpfs" if d == Path::new("/dev/shm") => all,
        "tmpfs" if d == Path::new("/dev") => MountAttr::NOSUID,
        "tmpfs"
            if ["/tmp", "/var/tmp", "/run", "/var/run"]
                .iter()
                .any(|p| d == Path::new(p)) =>
        {
            MountAttr::NOSUID | MountAttr::NODEV
        }
        _ => MountAttr::empty(),
    }
}

fn check_flags(mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts.iter().filter(|m| !m.is_bind) {
        let want = expected_flags(m);
        if want.is_empty() {
            continue;
        }
        let Ok(o) = parse_options(&m.options, false) else {
            continue;
        };
        let have = (o.set | o.rec_set) - (o.clear | o.rec_clear);
        let missing = want - have;
        if missing.is_empty() {
            continue;
        }
        let words: Vec<String> = missing
            .iter_names()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let severity = if missing.intersects(MountAttr::NOSUID | MountAttr::NODEV) {
            Severity::Medium
        } else {
            Severity::Low
        };
        out.push(
            Finding::new(severity, "missing-mount-flags", m.dest.escaped())
                .entry(format!("{}.options", m.entry()))
                .problem(format!("the {} mount lacks {}", m.fs_type.escaped(), words.join(", ")))
                .why("a writable place without nosuid lets a program gain privileges from a setuid file dropped there; without nodev, device nodes made there give raw access to host devices; without noexec, it can hold and run tools")
                .fix(format!("add {} to the options", words.join(","))),
        );
    }
}

fn listed(list: &[PathBuf], p: &Path) -> bool {
    list.iter().any(|x| {
        let x = clean(x);
        p.starts_with(&x)
    })
}

fn path_lists(config: &Spec) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let linux = config.linux().as_ref();
    let get = |v: Option<&Vec<String>>| -> Vec<PathBuf> {
        v.map(|v| v.iter().map(PathBuf::from).collect())
            .unwrap_or_default()
    };
    (
        get(linux.and_then(|l| l.masked_paths().as_ref())),
        get(linux.and_then(|l| l.readonly_paths().as_ref())),
    )
}

fn is_ro(m: &AMount) -> bool {
    parse_options(&m.options, m.fs_type == "bind")
        .is_ok_and(|o| ((o.set | o.rec_set) - (o.clear | o.rec_clear)).contains(MountAttr::RDONLY))
}

fn check_proc_sys(config: &Spec, mounts: &[AMount], out: &mut Vec<Finding>) {
    let (masked, readonly) = path_lists(config);
    let proc = mounts
        .iter()
        .rev()
        .find(|m| m.clean_dest == Path::new("/proc") && (m.fs_type == "proc" || m.is_bind));
    if let Some(p) = proc {
        let sys = Path::new("/proc/sys");
        if !is_ro(p) && !listed(&readonly, sys) && !listed(&masked, sys) {
            out.push(
                Finding::new(Severity::High, "proc-sys-writable", "/proc/sys")
                    .entry("linux.readonlyPaths")
                    .problem("procfs is mounted at /proc and /proc/sys is not read-only")
                    .why("root in the container can change host kernel settings through /proc/sys, for instance kernel.core_pattern, which makes the host run a program of the container's choosing as root")
                    .fix("add /proc/sys (and /proc/sysrq-trigger, /proc/irq, /proc/bus, /proc/fs) to linux.readonlyPaths"),
            );
        }
    }
    for m in mounts {
        let sysfs = m.fs_type == "sysfs"
            || (m.is_bind && m.source.as_deref().map(clean).as_deref() == Some(Path::new("/sys")));
        if !sysfs || is_ro(m) || listed(&readonly, &m.clean_dest) {
            continue;
        }
        out.push(
            Finding::new(Severity::High, "sysfs-writable", m.dest.escaped())
                .entry(format!("{}.options", m.entry()))
                .problem("sysfs is mounted read-write")
                .why("writable sysfs lets root in the container change host devices and kernel state (uevent_helper, power, firmware loading)")
                .fix("add ro to the sysfs mount's options"),
        );
    }
}

fn check_masked(config: &Spec, mounts: &[AMount], out: &mut Vec<Finding>) {
    let (masked, _) = path_lists(config);
    let has = |top: &str, fs: &str| {
        mounts
            .iter()
            .any(|m| m.clean_dest == Path::new(top) && (m.fs_type == fs || m.is_bind))
    };
    let proc = has("/proc", "proc");
    let sys = has("/sys", "sysfs");
    for p in DEFAULT_MASKED {
        let path = Path::new(p);
        let relevant = (proc && under(path, "/proc")) || (sys && under(path, "/sys"));
        if !relevant || listed(&masked, path) {
            continue;
        }
        let (why, cve) = masked_why(p);
        let mut f = Finding::new(Severity::Medium, "masked-path-missing", *p)
            .entry("linux.maskedPaths")
            .problem(format!(
                "{p} is not masked (runc's default config masks it)"
            ))
            .why(why)
            .fix(format!("add {p} to linux.maskedPaths"));
        if let Some(c) = cve {
            f = f.cve(c);
        }
        out.push(f);
    }
}

/// Why each of the usual masked paths is masked.
fn masked_why(p: &str) -> (&'static str, Option<&'static str>) {
    match p {
        "/proc/kcore" => ("it is an image of the host kernel's memory", None),
        "/proc/keys" => ("it lists the kernel keyrings of the host", None),
        "/proc/timer_list" | "/proc/timer_stats" | "/proc/sched_debug" | "/proc/latency_stats" => (
            "it shows kernel addresses and the timing of host tasks: help for defeating KASLR and for side channels",
            None,
        ),
        "/sys/devices/virtual/powercap" => (
            "its energy counters leak what the host computes (the PLATYPUS power side channel)",
            Some("CVE-2020-8694"),
        ),
        "/sys/firmware" => (
            "it exposes firmware tables and variables (ACPI, EFI) of the host",
            None,
        ),
        _ => (
            "it is a host hardware interface (ACPI, sound, SCSI), some of whose files accept writes",
            None,
        ),
    }
}

fn check_root_layout(root: &Root, mounts: &[AMount], out: &mut Vec<Finding>) {
    let mounted_at = |p: &str| mounts.iter().any(|m| m.clean_dest == Path::new(p));
    for (top, fs) in [("/proc", "procfs"), ("/sys", "sysfs")] {
        let Ok(h) = root.resolve_nofollow(top) else {
            continue;
        };
        if h.file_type().ok() != Some(FileType::Symlink) {
            continue;
        }
        let target = root.readlink(top).unwrap_or_default();
        let used = mounted_at(top);
        out.push(
            Finding::new(
                if used { Severity::Critical } else { Severity::High },
                "proc-sys-symlink",
                top,
            )
            .problem(format!(
                "{top} in the rootfs is a symlink to {}{}",
                target.escaped(),
                if used { ", and the config mounts there" } else { "" }
            ))
            .why(format!(
                "a {fs} mounted through the symlink lands where the image chose: on a path-following runtime that hides procfs from the LSM (AppArmor/SELinux writes to /proc/self/attr go nowhere) or mounts it elsewhere"
            ))
            .cve("CVE-2019-19921")
            .fix(format!("make {top} an empty directory in the rootfs")),
        );
    }
    if let Ok(h) = root.resolve_nofollow("/dev") {
        if h.file_type().ok() == Some(FileType::Symlink) {
            let target = root.readlink("/dev").unwrap_or_default();
            out.push(
                Finding::new(Severity::Critical, "dev-symlink", "/dev")
                    .problem(format!("/dev in the rootfs is a symlink to {}", target.escaped()))
                    .why("a runtime that creates device nodes and /dev symlinks by path follows it and creates them where the image chose, possibly on the host")
                    .cve("CVE-2026-41579")
                    .fix("make /dev an empty directory in the rootfs"),
            );
        }
    }
    if mounted_at("/dev") {
        // A fresh /dev covers whatever the rootfs has there.
        return;
    }
    match root.resolve_nofollow("/dev/null") {
        Ok(h) => {
            let st = h.stat();
            let ok = st.as_ref().is_ok_and(|s| {
                s.file_type == FileType::CharacterDevice && s.rdev == rustix::fs::makedev(1, 3)
            });
            if !ok {
                let what = match st {
                    Ok(s) if s.file_type == FileType::Symlink => format!(
                        "a symlink to {}",
                        root.readlink("/dev/null").unwrap_or_default().escaped()
                    ),
                    Ok(s) if s.file_type == FileType::CharacterDevice => format!(
                        "the character device {}:{}",
                        rustix::fs::major(s.rdev),
                        rustix::fs::minor(s.rdev)
                    ),
                    Ok(s) => format!("a {:?}", s.file_type).to_lowercase(),
                    Err(e) => format!("unreadable ({e})"),
                };
                out.push(
                    Finding::new(Severity::High, "devnull-not-chardev", "/dev/null")
                        .problem(format!("/dev/null in the rootfs is {what}, not the character device 1:3"))
                        .why("runtimes that mask paths by bind-mounting the container's /dev/null can be made to bind a file of the image's choosing (a procfs file, say) over the masked path, writable")
                        .cve("CVE-2025-31133")
                        .fix("remove it from the image, or mount a fresh tmpfs on /dev so the runtime creates the nodes"),
                );
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_that_leave_the_root() {
        assert!(leaves_root(Path::new("/a"), Path::new("/etc")));
        assert!(leaves_root(Path::new("/a"), Path::new("../etc")));
        assert!(!leaves_root(Path::new("/a/b"), Path::new("../etc")));
        assert!(leaves_root(Path::new("/a/b"), Path::new("../../etc")));
        assert!(!leaves_root(Path::new("/var/run"), Path::new("../run")));
        assert!(dotdot_escapes(Path::new("/../etc")));
        assert!(dotdot_escapes(Path::new("/a/../../etc")));
        assert!(!dotdot_escapes(Path::new("/a/../etc")));
    }
}
