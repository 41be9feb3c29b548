//! The static audit: an OCI config and its rootfs, inspected without
//! running anything, judged by the library's policy
//! (`saferoot::rootfs::policy`), the same rules `plan` refuses by.
//!
//! The audit resolves like the runtime does. The rootfs is opened as a
//! `saferoot::Root` and every destination is walked one component at a
//! time with `resolve_nofollow` and `readlink`, following a symlink only
//! inside the root: a finding names where the mount would really land.
//! Bind sources and overlay layers are classified by the library
//! (`saferoot::rootfs::sources::classify`, through `plan`): one inside the
//! rootfs or the bundle is walked inside it; a host path is looked at
//! where the host's lookup leads.
//!
//! Each mount is translated by `saferoot::oci` and planned by
//! `saferoot::rootfs::plan` on its own, at the place it resolves to; the
//! policy's judges (`judge_destination`, `judge_fs_placement`,
//! `judge_cgroup_mount`, `judge_bind_source`, `judge_target`,
//! `judge_sysctl`) give typed violations, and anything `plan` refuses that
//! no judge named becomes a `plan-refused` finding: whatever saferoot
//! refuses is reported at high or critical. On top of that come the
//! checks for what saferoot allows but a reviewer should know (host
//! sources, devices, missing masks and flags, propagation, the image's
//! own symlinks).

use std::collections::VecDeque;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;
use saferoot::oci::oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};
use saferoot::rootfs::options::{parse_options, MountOptions};
use saferoot::rootfs::plan::{MountKind, PlannedMount};
use saferoot::rootfs::policy::{self, clean, rules, DeviceClass, Rule, Violation};
use saferoot::rootfs::sources::{LayerKind, SourceLookup};
use saferoot::rootfs::{DeviceKind, MountSpec, Namespaces, RootfsSpec};
use saferoot::{ErrorKind, MountAttr, Root};

use crate::findings::{self, Finding, Severity};

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
    fs_type: String,
    is_bind: bool,
    options: Vec<String>,
    /// `options`, parsed once (the library's parser; the error's text when
    /// it refuses them).
    parsed: Result<MountOptions, String>,
    /// Where the destination resolves inside the root (`.`, `..` and the
    /// image's symlinks followed, confined), cleaned.
    landing: PathBuf,
}

impl AMount {
    fn entry(&self) -> String {
        format!("mounts[{}]", self.index)
    }

    fn landing(&self) -> String {
        self.landing.display().to_string()
    }

    /// `where` for messages: the landing, and the destination as written
    /// when they differ.
    fn place(&self) -> String {
        if clean(&self.dest) == self.landing {
            self.landing()
        } else {
            format!(
                "{} (written {})",
                self.landing.display(),
                self.dest.display()
            )
        }
    }
}

fn mounts_of(config: &Spec, root: Option<&Root>) -> Vec<AMount> {
    config
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, m)| {
            let options = m.options().clone().unwrap_or_default();
            let fs_type = m.typ().clone().unwrap_or_default();
            let is_bind = fs_type == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            let landing = match root {
                Some(r) => clean(&walk(r, m.destination()).end),
                None => clean(m.destination()),
            };
            let parsed = parse_options(&options, fs_type == "bind").map_err(|e| e.to_string());
            AMount {
                index,
                dest: m.destination().clone(),
                fs_type,
                is_bind,
                options,
                parsed,
                landing,
            }
        })
        .collect()
}

/// What the audit knows about the container as a whole.
struct Ctx<'a> {
    root: Option<&'a Root>,
    rootfs: PathBuf,
    namespaces: Namespaces,
    /// The spec without mounts, sysctls and devices (each is judged on its
    /// own); `None` when saferoot's OCI reader refuses the rest.
    base: Option<RootfsSpec>,
}

/// The config's namespaces, as `saferoot::oci` reads them.
fn namespaces_of(config: &Spec) -> Namespaces {
    let mut ns = Namespaces::default();
    for n in config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        match n.typ() {
            LinuxNamespaceType::Pid => ns.pid = true,
            LinuxNamespaceType::Network => ns.net = true,
            LinuxNamespaceType::Ipc => ns.ipc = true,
            LinuxNamespaceType::Uts => ns.uts = true,
            LinuxNamespaceType::Cgroup => ns.cgroup = true,
            _ => {}
        }
    }
    ns
}

/// `config` with only `mounts` and none of the entries judged one by one.
fn reduced(config: &Spec, mounts: Option<Vec<saferoot::oci::oci_spec::runtime::Mount>>) -> Spec {
    let mut c = config.clone();
    c.set_mounts(mounts);
    c.set_process(None);
    if let Some(l) = c.linux_mut() {
        l.set_sysctl(None);
        l.set_devices(None);
    }
    c
}

/// A finding for a violation of the policy.
fn violated(v: Violation, path: impl Into<String>, entry: impl Into<String>) -> Finding {
    Finding::of(v.rule, path).entry(entry).message(v.reason)
}

/// A finding of `rule` for saferoot's refusal `e` of the whole config, at
/// the path and entry the error names.
fn refused(rule: &'static Rule, e: &saferoot::Error) -> Finding {
    Finding::of(
        rule,
        e.path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into()),
    )
    .entry(e.operation().to_string())
    .message(format!("saferoot refuses the config: {e}"))
}

/// Everything the static audit finds in `config` (read from `bundle`,
/// for relative paths) with its root at `rootfs`.
pub fn audit(config: &Spec, bundle: &Path, rootfs: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let full = saferoot::oci::spec_from_config(config, bundle);
    if let Err(e) = &full {
        out.push(refused(&findings::CONFIG_INVALID, e));
    }
    let root = match Root::open(rootfs) {
        Ok(r) if rootfs.is_dir() => Some(r),
        _ => {
            out.push(
                Finding::of(&findings::ROOTFS_MISSING, rootfs.display().to_string())
                    .entry("root.path")
                    .message("the rootfs is not a directory that can be opened"),
            );
            None
        }
    };
    let ctx = Ctx {
        root: root.as_ref(),
        rootfs: clean(rootfs),
        namespaces: namespaces_of(config),
        base: saferoot::oci::spec_from_config(&reduced(config, None), bundle).ok(),
    };
    let mounts = mounts_of(config, ctx.root);
    let raw_mounts: Vec<_> = config.mounts().clone().unwrap_or_default();
    let mut refusals = Vec::new();
    check_mount_options(&mounts, &mut out);
    check_destinations(&mounts, ctx.root, &mut out);
    for (m, raw) in mounts.iter().zip(&raw_mounts) {
        // The mount alone, translated as saferoot's OCI reader does.
        let Ok(one) =
            saferoot::oci::spec_from_config(&reduced(config, Some(vec![raw.clone()])), bundle)
        else {
            continue;
        };
        let Some(ms) = one.mounts.into_iter().next() else {
            continue;
        };
        judge_mount(&ctx, m, ms, &mut refusals, &mut out);
    }
    check_propagation(config, &mounts, &mut out);
    check_flags(&mounts, &mut out);
    check_proc_sys(config, &mounts, &mut out);
    check_masked(config, &mounts, &mut out);
    check_sysctls(config, &ctx, &mut out);
    check_devices(config, &mut out);
    if let Some(root) = ctx.root {
        check_root_layout(root, &mounts, &mut out);
    }
    // Whatever plan refuses is a finding at high or critical: a refusal no
    // judge above named becomes `plan-refused`.
    for (entry, path, e) in refusals {
        let named = out
            .iter()
            .any(|f| f.entry.as_deref() == Some(&entry) && f.severity >= Severity::High);
        if !named {
            out.push(
                Finding::of(&findings::PLAN_REFUSED, path)
                    .entry(entry)
                    .message(format!("saferoot refuses the mount: {e}")),
            );
        }
    }
    if let Ok(mut spec) = full {
        for (ms, m) in spec.mounts.iter_mut().zip(&mounts) {
            ms.destination = m.landing.clone();
        }
        if let Err(e) = saferoot::rootfs::plan(&spec) {
            if !out.iter().any(|f| f.severity >= Severity::High) {
                out.push(refused(&findings::PLAN_REFUSED, &e));
            }
        }
    }
    out
}

fn check_mount_options(mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts {
        if let Err(e) = &m.parsed {
            out.push(
                Finding::of(&findings::MOUNT_OPTION_INVALID, m.landing())
                    .entry(format!("{}.options", m.entry()))
                    .message(format!("bad mount options {:?}: {e}", m.options)),
            );
        }
    }
}

fn under(p: &Path, top: &str) -> bool {
    p.starts_with(top)
}

/// The destination as written: `..` above `/`, and symlinks of the image
/// on the way (where a path-following runtime would land instead).
fn check_destinations(mounts: &[AMount], root: Option<&Root>, out: &mut Vec<Finding>) {
    for m in mounts {
        if dotdot_escapes(&m.dest) {
            out.push(
                Finding::of(&rules::DEST_DOTDOT_ESCAPE, m.dest.display().to_string())
                    .entry(format!("{}.destination", m.entry()))
                    .message(format!(
                        "the destination {} climbs above / with `..`; it lands on {}",
                        m.dest.display(),
                        m.landing.display()
                    ))
                    .fix(format!(
                        "write the destination as the absolute path it means ({})",
                        m.landing.display()
                    )),
            );
        }
        let Some(root) = root else { continue };
        let w = walk(root, &m.dest);
        let clean_dest = clean(&m.dest);
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
                .any(|p| under(&clean_dest, p) || under(&m.landing, p));
            let (severity, cve) = if kernel_fs {
                (Severity::Critical, Some("CVE-2019-19921"))
            } else if escapes {
                (Severity::High, Some("CVE-2021-30465"))
            } else {
                (Severity::Low, None)
            };
            let whereto = if escapes {
                format!(
                    "it points out of the root ({}): a runtime that follows it on the host mounts onto the host; saferoot mounts on {}",
                    target.display(),
                    m.landing.display()
                )
            } else {
                format!("inside the root it leads to {}", m.landing.display())
            };
            out.push(
                Finding::of(&rules::DEST_THROUGH_SYMLINK, m.dest.display().to_string())
                    .severity(severity)
                    .cve(cve)
                    .entry(format!("{}.destination", m.entry()))
                    .message(format!(
                        "the destination {} {}, a symlink to {}; {whereto}",
                        if *link == clean_dest { "is" } else { "passes through" },
                        link.display(),
                        target.display()
                    ))
                    .fix(format!(
                        "use the real path ({}) as the destination, or replace the symlink with a directory",
                        m.landing.display()
                    )),
            );
        }
    }
}

/// One mount, translated, judged where it lands.
fn judge_mount(
    ctx: &Ctx<'_>,
    m: &AMount,
    ms: MountSpec,
    refusals: &mut Vec<(String, String, saferoot::Error)>,
    out: &mut Vec<Finding>,
) {
    let entry = m.entry();
    let at = m.landing();
    // What plan says about it, at the place it lands.
    let mut one = ctx.base.clone().unwrap_or_else(|| RootfsSpec {
        rootfs: ctx.rootfs.clone(),
        namespaces: ctx.namespaces,
        ..Default::default()
    });
    one.default_devices = false;
    one.masked_paths.clear();
    one.readonly_paths.clear();
    one.cwd = None;
    let mut at_landing = ms;
    at_landing.destination = m.landing.clone();
    one.mounts = vec![at_landing];
    let planned: Option<PlannedMount> = match saferoot::rootfs::plan(&one) {
        Ok(p) => p.mounts.into_iter().find(|pm| pm.index == Some(0)),
        Err(e) => {
            refusals.push((entry.clone(), at.clone(), e));
            None
        }
    };
    let placement = match policy::judge_destination(&m.landing) {
        Ok(p) => Some(p),
        Err(v) => {
            out.push(violated(v, &at, &entry));
            None
        }
    };
    let is_proc = m.fs_type == "proc";
    if let Some(pl) = placement {
        if let Err(v) = policy::judge_fs_placement(pl, is_proc, m.is_bind) {
            out.push(violated(v, &at, &entry));
        }
    }
    if m.fs_type == "cgroup" || m.fs_type == "cgroup2" {
        let readonly = m.parsed.as_ref().is_ok_and(|o| {
            ((o.set | o.rec_set) - (o.clear | o.rec_clear)).contains(MountAttr::RDONLY)
        });
        if !readonly {
            let layout = policy::host_cgroup_layout().unwrap_or(policy::CgroupLayout::Legacy);
            if let Err(v) =
                policy::judge_cgroup_mount(&m.fs_type, readonly, &ctx.namespaces, layout)
            {
                out.push(violated(v, &at, &entry));
            }
        }
    }
    let Some(pm) = planned else { return };
    let readonly = (pm.set | pm.rec_set).contains(MountAttr::RDONLY);
    match &pm.kind {
        MountKind::Fs {
            fstype,
            source,
            layers,
            ..
        } => {
            if fstype == "devtmpfs" {
                out.push(
                    Finding::of(&rules::DEVTMPFS_MOUNT, &at)
                        .entry(&entry)
                        .message(format!(
                            "a devtmpfs (the host's device filesystem) is mounted on {}",
                            m.place()
                        )),
                );
            } else if let Some(src) = source.as_deref() {
                check_block_device_mount(m, fstype, src, readonly, out);
            }
            for l in layers {
                judge_layer(ctx, m, l.kind, &l.path, &l.lookup, out);
            }
        }
        MountKind::Bind { source, lookup, .. } => judge_bind(ctx, m, &pm, source, lookup, out),
        MountKind::Cgroup | MountKind::CopySymlink { .. } => {}
    }
}

/// A filesystem of a host disk, mounted by the container itself.
fn check_block_device_mount(
    m: &AMount,
    fstype: &str,
    src: &str,
    readonly: bool,
    out: &mut Vec<Finding>,
) {
    if policy::PSEUDO_FILESYSTEMS.contains(&fstype)
        || matches!(fstype, "tmpfs" | "overlay" | "ramfs" | "devtmpfs")
        || !src.starts_with('/')
    {
        return;
    }
    let (is_block, how) = match std::fs::metadata(src) {
        Ok(md) if md.file_type().is_block_device() => (
            true,
            format!(
                "the host's block device {} ({}:{})",
                src,
                rustix::fs::major(std::os::unix::fs::MetadataExt::rdev(&md)),
                rustix::fs::minor(std::os::unix::fs::MetadataExt::rdev(&md))
            ),
        ),
        Ok(_) => (false, String::new()),
        Err(_) => (
            src.starts_with("/dev/"),
            format!("{src} (not present here; by its name a device of the host)"),
        ),
    };
    if !is_block {
        return;
    }
    out.push(
        Finding::of(&rules::HOST_BLOCK_DEVICE_MOUNT, m.landing())
            .severity(if readonly {
                Severity::High
            } else {
                Severity::Critical
            })
            .entry(m.entry())
            .message(format!(
                "{how} is mounted as {fstype} on {}, {}",
                m.place(),
                if readonly { "read-only" } else { "read-write" }
            )),
    );
}

/// Where a source (or layer) really is: what saferoot opens, and, when an
/// image symlink on the way points out of the image, what a runtime that
/// follows it on the host would open.
struct Reach {
    /// The host path saferoot opens (for an in-root source: inside the
    /// rootfs or the bundle, symlinks followed there).
    path: PathBuf,
    /// The in-root (or in-bundle) path it resolved to, when confined.
    confined: Option<PathBuf>,
    /// An image symlink that leads out: (link, its target, where the host's
    /// own lookup of the source leads).
    escape: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
}

fn reach_of(ctx: &Ctx<'_>, source: &Path, lookup: &SourceLookup) -> Reach {
    let (dir, inner) = match lookup {
        SourceLookup::Host => {
            let path = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
            return Reach {
                path,
                confined: None,
                escape: None,
            };
        }
        SourceLookup::Rootfs { rootfs, path } => (rootfs.clone(), path.clone()),
        SourceLookup::Dir { dir, path } => (dir.clone(), path.clone()),
    };
    let opened;
    let root = if dir == ctx.rootfs && ctx.root.is_some() {
        ctx.root
    } else {
        opened = Root::open(&dir).ok();
        opened.as_ref()
    };
    let Some(root) = root else {
        return Reach {
            path: source.to_path_buf(),
            confined: Some(inner),
            escape: None,
        };
    };
    let w = walk(root, &inner);
    let end = clean(&w.end);
    let escape = w
        .links
        .iter()
        .find(|(link, target)| leaves_root(link, target))
        .map(|(link, target)| {
            (
                link.clone(),
                target.clone(),
                std::fs::canonicalize(source).ok(),
            )
        });
    Reach {
        path: dir.join(end.strip_prefix("/").unwrap_or(&end)),
        confined: Some(end),
        escape,
    }
}

/// The severity of exposing the host path `host` (`None`: not
/// sensitive), writable or not.
fn sensitivity(
    host: &Path,
    readonly: bool,
) -> Option<(&'static policy::SensitiveSource, Severity)> {
    policy::sensitive_host_source(host).map(|s| (s, if readonly { s.ro } else { s.rw }))
}

/// A finding for an image symlink that sends a source out of the image.
fn escape_finding(
    m: &AMount,
    what: &str,
    source: &Path,
    reach: &Reach,
    readonly: bool,
) -> Option<Finding> {
    let (link, target, host) = reach.escape.as_ref()?;
    let host_sev = host
        .as_deref()
        .map(|h| {
            if h == Path::new("/") {
                Severity::Critical
            } else {
                sensitivity(h, readonly).map_or(Severity::High, |(_, s)| s.max(Severity::High))
            }
        })
        .unwrap_or(Severity::High);
    Some(
        Finding::of(&rules::BIND_SOURCE_ESCAPES_ROOT, m.landing())
            .severity(host_sev)
            .entry(format!("{}.source", m.entry()))
            .message(format!(
                "the {what} {} passes through the image's symlink {} -> {}: saferoot resolves it inside, reaching {}; a runtime that follows it on the host would reach {}",
                source.display(),
                link.display(),
                target.display(),
                reach.path.display(),
                host.as_deref()
                    .map_or_else(|| "a path outside the image".to_string(), |h| format!("the host's {}", h.display()))
            )),
    )
}

fn judge_layer(
    ctx: &Ctx<'_>,
    m: &AMount,
    kind: LayerKind,
    path: &Path,
    lookup: &SourceLookup,
    out: &mut Vec<Finding>,
) {
    let writable = matches!(kind, LayerKind::Upper | LayerKind::Work);
    let what = match kind {
        LayerKind::Lower => "overlay lowerdir",
        LayerKind::Data => "overlay data layer",
        LayerKind::Upper => "overlay upperdir",
        LayerKind::Work => "overlay workdir",
    };
    let reach = reach_of(ctx, path, lookup);
    if let Some(f) = escape_finding(m, what, path, &reach, !writable) {
        out.push(f);
    }
    if reach.confined.is_some() {
        return;
    }
    let host = &reach.path;
    let sev = if host == Path::new("/") {
        Some(Severity::Critical)
    } else {
        sensitivity(host, !writable).map(|(_, s)| s)
    };
    let Some(sev) = sev else { return };
    let shown =
        policy::sensitive_host_source(host).map_or("the host's root filesystem", |s| s.what);
    out.push(
        Finding::of(&rules::OVERLAY_HOST_LAYER, m.landing())
            .severity(sev)
            .entry(format!("{}.options", m.entry()))
            .message(format!(
                "the {what} {} is {shown}, mounted on {}",
                path.display(),
                m.place()
            )),
    );
}

/// What the bind source is, by fd: `(fs class, root inode of a procfs,
/// the host's /sys/fs/cgroup itself, file type, device number, mode)`.
type SourceFacts = (policy::FsClass, bool, bool, FileType, u64, u32);

fn facts_of(ctx: &Ctx<'_>, reach: &Reach, lookup: &SourceLookup) -> Option<SourceFacts> {
    use std::os::fd::AsFd;
    let fd: std::os::fd::OwnedFd = match (lookup, &reach.confined) {
        (SourceLookup::Host, _) | (_, None) => rustix::fs::open(
            &reach.path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?,
        (SourceLookup::Rootfs { .. }, Some(inner)) if ctx.root.is_some() => {
            ctx.root?.resolve(inner).ok()?.into_fd()
        }
        (SourceLookup::Rootfs { rootfs: dir, .. } | SourceLookup::Dir { dir, .. }, Some(inner)) => {
            Root::open(dir).ok()?.resolve(inner).ok()?.into_fd()
        }
    };
    let class = policy::fs_class(fd.as_fd()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    let host_cgroup = policy::is_host_cgroup_root(fd.as_fd()).unwrap_or(false);
    Some((
        class,
        class == policy::FsClass::Procfs && st.st_ino == policy::PROC_ROOT_INO,
        host_cgroup,
        FileType::from_raw_mode(st.st_mode),
        st.st_rdev,
        st.st_mode & 0o7777,
    ))
}

fn judge_bind(
    ctx: &Ctx<'_>,
    m: &AMount,
    pm: &PlannedMount,
    source: &Path,
    lookup: &SourceLookup,
    out: &mut Vec<Finding>,
) {
    let attrs = pm.set | pm.rec_set;
    let readonly = attrs.contains(MountAttr::RDONLY);
    let nodev = attrs.contains(MountAttr::NODEV);
    let entry = m.entry();
    let at = m.landing();
    let reach = reach_of(ctx, source, lookup);
    if let Some(f) = escape_finding(m, "bind source", source, &reach, readonly) {
        out.push(f);
    }
    // Sockets and sensitive host paths, by where the host's lookup leads
    // (even when the path is not on this machine).
    if reach.confined.is_none() && policy::is_runtime_socket(&reach.path) {
        out.push(
            Finding::of(&rules::RUNTIME_SOCKET_BIND, &at)
                .entry(format!("{entry}.source"))
                .message(format!(
                    "the host's container runtime socket {} is bound on {}",
                    reach.path.display(),
                    m.place()
                )),
        );
        return;
    }
    let facts = facts_of(ctx, &reach, lookup);
    // The mount-time rules, on what the source is and where it lands.
    let mut judged = false;
    if let Some((class, proc_root, host_cgroup, ..)) = facts {
        match policy::judge_bind_source(class, proc_root, host_cgroup, readonly, source) {
            Err(v) => {
                out.push(violated(v, &at, &entry));
                judged = true;
            }
            Ok(bs) => {
                if let Err(v) = policy::judge_target(
                    policy::place_of_path(&m.landing),
                    false,
                    bs,
                    ctx.namespaces.pid,
                ) {
                    out.push(violated(v, &at, &entry));
                    judged = true;
                }
            }
        }
    }
    if let Some((_, _, _, ftype, rdev, mode)) = facts {
        // A bind source any host user can write.
        if matches!(ftype, FileType::Directory | FileType::RegularFile) && mode & 0o002 != 0 {
            let sticky = mode & 0o1000 != 0;
            out.push(
                Finding::of(&rules::BIND_SOURCE_WORLD_WRITABLE, &at)
                    .severity(if sticky {
                        Severity::Medium
                    } else {
                        Severity::High
                    })
                    .entry(format!("{entry}.source"))
                    .message(format!(
                        "the bind source {} is world-writable (mode {:o}{})",
                        reach.path.display(),
                        mode,
                        if sticky { ", sticky" } else { "" }
                    )),
            );
        }
        // Devices, wherever they are.
        let dev =
            |kind| policy::device_class(kind, rustix::fs::major(rdev), rustix::fs::minor(rdev));
        let device = match ftype {
            FileType::BlockDevice => Some((dev(DeviceKind::Block), "block")),
            FileType::CharacterDevice => Some((dev(DeviceKind::Char), "character")),
            _ => None,
        };
        if let Some((class, word)) = device {
            let rule: Option<&'static Rule> = match class {
                DeviceClass::Block => Some(&rules::DEVICE_BLOCK),
                DeviceClass::Memory => Some(&rules::DEVICE_MEMORY),
                DeviceClass::Unusual => Some(&rules::DEVICE_UNUSUAL),
                DeviceClass::Usual | DeviceClass::NotADevice => None,
            };
            if let Some(rule) = rule {
                let mut f =
                    Finding::of(rule, &at)
                        .entry(format!("{entry}.source"))
                        .message(format!(
                        "the bind source {} is the {word} device {}:{} of the host, bound on {}{}",
                        reach.path.display(),
                        rustix::fs::major(rdev),
                        rustix::fs::minor(rdev),
                        m.place(),
                        if nodev { " with nodev (it cannot be opened)" } else { "" }
                    ));
                if nodev {
                    f = f.severity(Severity::Low);
                }
                out.push(f);
            }
            return;
        }
    }
    if judged || reach.confined.is_some() {
        return;
    }
    if let Some((s, mut sev)) = sensitivity(&reach.path, readonly) {
        if s.rule.id == rules::HOST_DEV_BIND.id && nodev {
            sev = Severity::Low;
        }
        out.push(
            Finding::of(s.rule, &at)
                .severity(sev)
                .entry(&entry)
                .message(format!(
                    "{} ({}) is bound on {}, {}",
                    reach.path.display(),
                    s.what,
                    m.place(),
                    if readonly { "read-only" } else { "read-write" }
                )),
        );
    }
}

fn check_propagation(config: &Spec, mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts {
        for o in &m.options {
            if o == "shared" || o == "rshared" {
                out.push(
                    Finding::of(&rules::SHARED_PROPAGATION, m.landing())
                        .entry(format!("{}.options", m.entry()))
                        .message(format!("the mount on {} is made {o}", m.place())),
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
                Finding::of(&rules::SHARED_PROPAGATION, "/")
                    .entry("linux.rootfsPropagation")
                    .message(format!(
                        "the root is made {p}: every mount of the container is in a peer group with the host's"
                    )),
            );
        }
    }
}

fn check_flags(mounts: &[AMount], out: &mut Vec<Finding>) {
    for m in mounts.iter().filter(|m| !m.is_bind) {
        let Some(want) = policy::expected_flags(&m.fs_type, &m.landing) else {
            continue;
        };
        let Ok(o) = &m.parsed else {
            continue;
        };
        let have = (o.set | o.rec_set) - (o.clear | o.rec_clear);
        let missing = want.want - have;
        if missing.is_empty() {
            continue;
        }
        let words: Vec<String> = missing
            .iter_names()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let mut f = Finding::of(&rules::MISSING_MOUNT_FLAGS, m.landing())
            .severity(want.severity(missing))
            .entry(format!("{}.options", m.entry()))
            .message(format!(
                "the {} mount on {} lacks {}",
                m.fs_type,
                m.place(),
                words.join(", ")
            ))
            .fix(format!("add {} to the options", words.join(",")));
        if !want.holds_files {
            f = f.why(format!(
                "{} holds no files a process can create, so this is a difference from the usual flags, not a weakness",
                m.fs_type
            ));
        }
        out.push(f);
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
    m.parsed
        .as_ref()
        .is_ok_and(|o| ((o.set | o.rec_set) - (o.clear | o.rec_clear)).contains(MountAttr::RDONLY))
}

/// The container's /proc and /sys mounts (the last on each place wins).
fn proc_and_sys(mounts: &[AMount]) -> (Option<&AMount>, Option<&AMount>) {
    let last = |top: &str, fs: &str| {
        mounts
            .iter()
            .rev()
            .find(|m| m.landing == Path::new(top) && (m.fs_type == fs || m.is_bind))
    };
    (last("/proc", "proc"), last("/sys", "sysfs"))
}

fn check_proc_sys(config: &Spec, mounts: &[AMount], out: &mut Vec<Finding>) {
    let (masked, readonly) = path_lists(config);
    if let Some(p) = proc_and_sys(mounts).0.filter(|p| !is_ro(p)) {
        for d in policy::DEFAULT_READONLY_PATHS {
            let path = Path::new(d.path);
            if listed(&readonly, path) || listed(&masked, path) {
                continue;
            }
            let rule = if d.path == "/proc/sys" {
                &rules::PROC_SYS_WRITABLE
            } else {
                &rules::READONLY_PATH_MISSING
            };
            out.push(
                Finding::of(rule, d.path)
                    .severity(if d.usual { d.missing } else { Severity::Info })
                    .entry("linux.readonlyPaths")
                    .message(format!(
                        "procfs is mounted on /proc ({}) and {} is neither read-only nor masked",
                        p.entry(),
                        d.path
                    ))
                    .why(format!("{}: {}", d.path, d.why))
                    .fix(format!("add {} to linux.readonlyPaths", d.path)),
            );
        }
    }
    for m in mounts {
        if m.fs_type != "sysfs" || is_ro(m) || listed(&readonly, &m.landing) {
            continue;
        }
        out.push(
            Finding::of(&rules::SYSFS_WRITABLE, m.landing())
                .entry(format!("{}.options", m.entry()))
                .message(format!("sysfs is mounted read-write on {}", m.place())),
        );
    }
}

fn check_masked(config: &Spec, mounts: &[AMount], out: &mut Vec<Finding>) {
    let (masked, readonly) = path_lists(config);
    let (proc, sys) = proc_and_sys(mounts);
    for d in policy::DEFAULT_MASKED_PATHS {
        let path = Path::new(d.path);
        let relevant =
            (proc.is_some() && under(path, "/proc")) || (sys.is_some() && under(path, "/sys"));
        if !relevant || listed(&masked, path) {
            continue;
        }
        let ro = listed(&readonly, path);
        let severity = if ro || !d.usual {
            Severity::Info
        } else {
            d.missing
        };
        let note = if ro {
            ", only read-only"
        } else if !d.usual {
            " (saferoot's default sandbox masks it; runc's and crun's default specs do not)"
        } else {
            ""
        };
        out.push(
            Finding::of(&rules::MASKED_PATH_MISSING, d.path)
                .severity(severity)
                .cve(d.cve)
                .entry("linux.maskedPaths")
                .message(format!("{} is not masked{note}", d.path))
                .why(d.why)
                .fix(format!("add {} to linux.maskedPaths", d.path)),
        );
    }
}

fn check_sysctls(config: &Spec, ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let Some(sysctl) = config.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return;
    };
    for (k, v) in sysctl {
        // Names saferoot cannot write at all are config-invalid already.
        let Ok(rule) = policy::sysctl_rule(k) else {
            continue;
        };
        if let Err(viol) = policy::judge_sysctl(&rule, &ctx.namespaces) {
            let path = saferoot::procfs::sysctl_path(k)
                .map(|p| Path::new("/proc").join(p))
                .unwrap_or_else(|_| PathBuf::from("/proc/sys"));
            out.push(
                Finding::of(viol.rule, path.display().to_string())
                    .entry(format!("linux.sysctl[{k:?}]"))
                    .message(format!("{k} = {v:?} is {}", viol.reason)),
            );
        }
    }
}

fn check_devices(config: &Spec, out: &mut Vec<Finding>) {
    let Some(devices) = config.linux().as_ref().and_then(|l| l.devices().as_ref()) else {
        return;
    };
    for (i, d) in devices.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            _ => continue,
        };
        let (Ok(major), Ok(minor)) = (u32::try_from(d.major()), u32::try_from(d.minor())) else {
            continue;
        };
        let rule: &'static Rule = match policy::device_class(kind, major, minor) {
            DeviceClass::Block => &rules::DEVICE_BLOCK,
            DeviceClass::Memory => &rules::DEVICE_MEMORY,
            DeviceClass::Unusual => &rules::DEVICE_UNUSUAL,
            DeviceClass::Usual | DeviceClass::NotADevice => continue,
        };
        let mode = d.file_mode().map(|m| m & 0o7777);
        out.push(
            Finding::of(rule, clean(d.path()).display().to_string())
                .entry(format!("linux.devices[{i}]"))
                .message(format!(
                    "linux.devices creates {} as the {} device {major}:{minor} of the host{}",
                    d.path().display(),
                    if kind == DeviceKind::Block {
                        "block"
                    } else {
                        "character"
                    },
                    match mode {
                        Some(m) if m & 0o006 != 0 => format!(", mode {m:04o} (open to every user)"),
                        Some(m) => format!(", mode {m:04o}"),
                        None => String::new(),
                    }
                )),
        );
    }
}

fn check_root_layout(root: &Root, mounts: &[AMount], out: &mut Vec<Finding>) {
    let mounted_at = |p: &str| mounts.iter().any(|m| clean(&m.dest) == Path::new(p));
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
            Finding::of(&rules::PROC_SYS_SYMLINK, top)
                .severity(if used { Severity::Critical } else { Severity::High })
                .message(format!(
                    "{top} in the rootfs is a symlink to {}{}; a {fs} mounted there lands where the image chose",
                    target.display(),
                    if used { ", and the config mounts there" } else { "" }
                ))
                .fix(format!("make {top} an empty directory in the rootfs")),
        );
    }
    if let Ok(h) = root.resolve_nofollow("/dev") {
        if h.file_type().ok() == Some(FileType::Symlink) {
            let target = root.readlink("/dev").unwrap_or_default();
            out.push(Finding::of(&rules::DEV_SYMLINK, "/dev").message(format!(
                "/dev in the rootfs is a symlink to {}",
                target.display()
            )));
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
                        root.readlink("/dev/null").unwrap_or_default().display()
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
                    Finding::of(&rules::DEVNULL_NOT_CHARDEV, "/dev/null").message(format!(
                        "/dev/null in the rootfs is {what}, not the character device 1:3"
                    )),
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
