//! A [`RootfsSpec`] checked and turned into a [`Plan`]: the mounts to make,
//! in order, with everything about each decided before anything is changed.
//!
//! Planning touches nothing but the host's filesystem metadata (which kind of
//! cgroup hierarchy the host has); every error in the spec is found here, so
//! that bad input changes nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Entry;
use crate::path::check_in_root_path;
use crate::rootfs::options::{parse_options, BindKind, MountOptions};
use crate::rootfs::policy::{self, check_destination, NsKind};
use crate::rootfs::sources::{classify, split_overlay_layers, OverlayLayer, SourceLookup};
use crate::rootfs::spec::{
    DeviceKind, DeviceSpec, IdMapping, Namespaces, PropagationSetting, RootfsSpec,
};
use crate::{Error, ErrorKind, MountAttr, Result};

/// What a planned mount is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum MountKind {
    /// A new filesystem instance.
    Fs {
        /// Filesystem type.
        fstype: String,
        /// The `source` parameter, when given.
        source: Option<String>,
        /// Filesystem parameters.
        data: Vec<(String, Option<String>)>,
        /// Superblock flags (`sync`, ...).
        sb_flags: Vec<String>,
        /// overlayfs layers, taken out of `data` and each looked up safely
        /// (see [`crate::rootfs::sources`]); empty for other filesystems.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        layers: Vec<OverlayLayer>,
    },
    /// A clone of a host path, or of a path inside the rootfs or a source
    /// root.
    Bind {
        /// The source, as an absolute host path, lexically cleaned.
        source: PathBuf,
        /// Where `source` is looked up.
        lookup: SourceLookup,
        /// With the mounts below it.
        recursive: bool,
        /// Do not follow a symlink as the source's last component.
        nofollow: bool,
    },
    /// OCI `cgroup`: a fresh cgroup2 when the host has the unified
    /// hierarchy, falling back to a bind of the host's `/sys/fs/cgroup`
    /// when a new instance is refused (no cgroup namespace).
    Cgroup,
    /// crun's `copy-symlink`: the source is a symlink; make the same
    /// symlink at the destination instead of a mount.
    CopySymlink {
        /// Host path of the symlink, lexically cleaned.
        source: PathBuf,
        /// Where `source` is looked up.
        lookup: SourceLookup,
    },
}

/// Idmapped-mount settings of a planned bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdmapPlan {
    /// `ridmap`: applies to every mount of the cloned tree.
    pub recursive: bool,
    /// Uid mappings for the mount's user namespace.
    pub uid_mappings: Vec<IdMapping>,
    /// Gid mappings for the mount's user namespace.
    pub gid_mappings: Vec<IdMapping>,
}

/// One mount of a [`Plan`]. Made only by [`plan`] (it is
/// `#[non_exhaustive]`): its fields are what the checks passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PlannedMount {
    /// The index of the mount in `RootfsSpec::mounts`, or `None` for
    /// mounts saferoot adds (an implicit `/dev`).
    pub index: Option<usize>,
    /// Where, inside the root.
    pub destination: PathBuf,
    /// What is mounted.
    #[serde(flatten)]
    pub kind: MountKind,
    /// Attributes set on the mount before it is attached.
    #[serde(serialize_with = "ser_attr_words")]
    pub set: MountAttr,
    /// Attributes cleared on the mount before it is attached.
    #[serde(serialize_with = "ser_attr_words")]
    pub clear: MountAttr,
    /// Attributes set on the whole cloned tree.
    #[serde(serialize_with = "ser_attr_words")]
    pub rec_set: MountAttr,
    /// Attributes cleared on the whole cloned tree.
    #[serde(serialize_with = "ser_attr_words")]
    pub rec_clear: MountAttr,
    /// Propagation changes.
    pub propagation: Vec<PropagationSetting>,
    /// Idmapping, for binds.
    pub idmap: Option<IdmapPlan>,
    /// Copy the destination's old contents into the new tmpfs.
    pub tmpcopyup: bool,
    /// Mount onto a symlink destination itself instead of following it.
    pub dest_nofollow: bool,
    /// Options of a bind mount that only a new filesystem takes (`mode=`,
    /// `size=`, `sync`, ...): ignored, as runc and crun ignore them, with
    /// a warning naming the mount and the option.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_options: Vec<String>,
}

fn ser_attr_words<S: serde::Serializer>(
    a: &MountAttr,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let words: Vec<&str> = a.iter_names().map(|(n, _)| n).collect();
    s.collect_seq(words.iter().map(|w| w.to_ascii_lowercase()))
}

impl PlannedMount {
    /// Whether this mount is a bind mount of a host path.
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
    }

    /// The filesystem type, or `bind`.
    pub fn fstype(&self) -> &str {
        match &self.kind {
            MountKind::Fs { fstype, .. } => fstype,
            MountKind::Bind { .. } => "bind",
            MountKind::Cgroup => "cgroup",
            MountKind::CopySymlink { .. } => "symlink",
        }
    }

    /// The source, for display.
    pub fn source_display(&self) -> String {
        match &self.kind {
            MountKind::Fs { source, fstype, .. } => {
                source.clone().unwrap_or_else(|| fstype.clone())
            }
            MountKind::Bind { source, .. } | MountKind::CopySymlink { source, .. } => {
                source.display().to_string()
            }
            MountKind::Cgroup => "cgroup".into(),
        }
    }
}

/// The default devices every container gets, as runc creates them
/// ([`policy::DEFAULT_DEVICES`]).
pub fn default_devices() -> Vec<DeviceSpec> {
    policy::DEFAULT_DEVICES
        .iter()
        .map(|d| DeviceSpec {
            path: PathBuf::from("/dev").join(d.name),
            kind: DeviceKind::Char,
            major: d.major,
            minor: d.minor,
            file_mode: Some(0o666),
            uid: Some(0),
            gid: Some(0),
        })
        .collect()
}

/// A checked spec: everything [`super::assemble`] will do, in order.
///
/// Only [`plan`] makes one (the type is `#[non_exhaustive]`, so code
/// outside saferoot cannot build it field by field and skip the checks);
/// its fields are public to read, and it serializes to JSON for dry runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Plan {
    /// The host directory that becomes `/`.
    pub rootfs: PathBuf,
    /// Mounts, in order.
    pub mounts: Vec<PlannedMount>,
    /// Whether saferoot populates `/dev` (false when the spec binds `/dev`).
    pub setup_dev: bool,
    /// Whether the default devices and the `/dev` symlinks are created.
    pub default_devices: bool,
    /// Device nodes to create (defaults first, then the spec's).
    pub devices: Vec<DeviceSpec>,
    /// For each entry of `devices`, its index in `RootfsSpec::devices`, or
    /// `None` for a default device: errors about a device name the entry
    /// (`devices[i]`).
    #[serde(skip)]
    pub device_index: Vec<Option<usize>>,
    /// Paths to mask.
    pub masked_paths: Vec<PathBuf>,
    /// Paths to make read-only.
    pub readonly_paths: Vec<PathBuf>,
    /// Make `/` read-only at the end.
    pub readonly_root: bool,
    /// Propagation of the root mount; `rslave` when the spec has none.
    pub rootfs_propagation: PropagationSetting,
    /// Sysctls.
    pub sysctls: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// The user-namespace flag of the spec.
    pub user_namespace: bool,
    /// umask for the container process.
    pub umask: Option<u32>,
    /// The spec's SELinux mount label, given as `context=` to the
    /// filesystems of `mounts` that take one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    /// Whether assembly fails, rather than dropping the label with a
    /// warning, on a kernel without SELinux.
    pub strict_mount_label: bool,
    /// The container's own namespaces, as the spec gives them.
    pub namespaces: Namespaces,
    /// The namespaces that the sysctls and read-write cgroup mounts of the
    /// plan rely on: assembly refuses to start when the calling thread is
    /// in the host's namespace of one of these kinds.
    pub relies_on: Vec<NsKind>,
}

impl Plan {
    /// The propagation that assembly gives the caller's `/` before anything
    /// is mounted: the spec's rootfs propagation, except that a shared one
    /// becomes a recursive slave. A copy of the host's shared mounts made
    /// shared again would send the container's mounts back to the host; a
    /// shared root propagation is applied to the container's own `/` once
    /// it is entered, as pivot_root refuses a shared root anyway.
    ///
    /// When it is recursive, no mount of the caller's namespace sends mount
    /// events anywhere once assembly has begun, and a caller has no need to
    /// make its namespace a slave first (unless it mounts something itself
    /// before assembling).
    pub fn caller_propagation(&self) -> PropagationSetting {
        match self.rootfs_propagation.kind {
            crate::Propagation::Shared => PropagationSetting {
                kind: crate::Propagation::Slave,
                recursive: true,
            },
            _ => self.rootfs_propagation,
        }
    }
}

/// A mount saferoot adds (not in the spec), from its options as runc's
/// spec writes them ([`policy::dev_mounts`]).
fn implicit_mount(m: &crate::rootfs::spec::MountSpec) -> Result<PlannedMount> {
    let opts = parse_options(&m.options, false)?;
    Ok(PlannedMount {
        index: None,
        destination: m.destination.clone(),
        kind: MountKind::Fs {
            fstype: m.fs_type.clone(),
            source: m.source.as_ref().map(|s| s.to_string_lossy().into_owned()),
            data: opts.data,
            sb_flags: opts.sb_flags,
            layers: vec![],
        },
        set: opts.set,
        clear: opts.clear,
        rec_set: opts.rec_set,
        rec_clear: opts.rec_clear,
        propagation: opts.propagation,
        idmap: None,
        tmpcopyup: false,
        dest_nofollow: false,
        ignored_options: vec![],
    })
}

fn mount_err(i: usize, dest: &Path, e: Error) -> Error {
    let e = e.with_entry(Entry::Mount(i));
    if e.kind() == ErrorKind::InvalidInput {
        e.map_op(|op| format!("mounts[{i}]: {op}").into())
            .set_path(dest, true)
    } else {
        e.with_path(dest)
    }
}

/// An error about device `i` of the spec, named `devices[i]` in its
/// message and [`Entry::Device`] as data.
pub(crate) fn device_err(i: usize, path: &Path, e: Error) -> Error {
    let prefix = format!("devices[{i}]");
    e.with_entry(Entry::Device(i))
        .map_op(|op| {
            if op.starts_with(&prefix) {
                op
            } else {
                format!("{prefix}: {op}").into()
            }
        })
        .set_path(path, false)
}

/// Filesystems that take an SELinux `context=` option.
fn takes_label(fstype: &str) -> bool {
    !matches!(fstype, "proc" | "sysfs" | "cgroup" | "cgroup2" | "bind")
}

/// Checks `spec` and plans it. Nothing on the system is changed.
pub fn plan(spec: &RootfsSpec) -> Result<Plan> {
    if spec.rootfs.as_os_str().is_empty() {
        return Err(Error::invalid("plan rootfs", "rootfs path is empty"));
    }
    if !spec.rootfs.is_absolute() {
        return Err(Error::invalid_at(
            "plan rootfs",
            &spec.rootfs,
            "rootfs path must be absolute",
        ));
    }
    let mut relies_on = Vec::new();
    let mut mounts = Vec::with_capacity(spec.mounts.len() + 1);
    for (i, m) in spec.mounts.iter().enumerate() {
        mounts.push(
            plan_mount(i, m, spec, &mut relies_on).map_err(|e| mount_err(i, &m.destination, e))?,
        );
    }
    // /dev: saferoot populates it unless the spec binds it; without a /dev
    // mount in the spec it gets a tmpfs of its own.
    let dev_mount = mounts
        .iter()
        .find(|m| crate::rootfs::policy::clean(&m.destination) == Path::new("/dev"));
    let setup_dev = !dev_mount.is_some_and(PlannedMount::is_bind);
    if setup_dev && dev_mount.is_none() && spec.default_devices {
        // With a /dev of its own, the container also gets the usual
        // pseudo-terminal and shared-memory mounts, unless the spec has them.
        // A user namespace may not map group 5 (tty); devpts would refuse
        // it. Rootless runtimes drop it the same way.
        let has = |p: &Path| {
            mounts
                .iter()
                .any(|m| crate::rootfs::policy::clean(&m.destination) == p)
        };
        let mut extra = Vec::new();
        for (n, m) in policy::dev_mounts(Path::new("/dev"), !spec.user_namespace)
            .iter()
            .enumerate()
        {
            if n == 0 || !has(&m.destination) {
                extra.push(implicit_mount(m)?);
            }
        }
        for (n, m) in extra.into_iter().enumerate() {
            mounts.insert(n, m);
        }
        // The mounts saferoot adds get the label as the same mounts written
        // in the spec would.
        if let Some(label) = &spec.mount_label {
            for m in mounts.iter_mut().filter(|m| m.index.is_none()) {
                if let MountKind::Fs { fstype, data, .. } = &mut m.kind {
                    if takes_label(fstype) && !data.iter().any(|(k, _)| k == "context") {
                        data.push(("context".into(), Some(label.clone())));
                    }
                }
            }
        }
    }
    let mut devices: Vec<(DeviceSpec, Option<usize>)> = if setup_dev && spec.default_devices {
        default_devices().into_iter().map(|d| (d, None)).collect()
    } else {
        Vec::new()
    };
    for (i, d) in spec.devices.iter().enumerate() {
        check_in_root_path("plan device", &d.path).map_err(|e| device_err(i, &d.path, e))?;
        let kind = match d.kind {
            DeviceKind::Char => Some(crate::NodeKind::Char {
                major: d.major,
                minor: d.minor,
            }),
            DeviceKind::Block => Some(crate::NodeKind::Block {
                major: d.major,
                minor: d.minor,
            }),
            DeviceKind::Fifo => None,
        };
        if let Some(Err(why)) = kind.map(crate::NodeKind::check) {
            return Err(Error::invalid_at(format!("devices[{i}]"), &d.path, why)
                .with_entry(Entry::Device(i)));
        }
        if d.file_mode.is_some_and(|m| m & !0o7777 != 0) {
            return Err(Error::invalid_at(
                format!("devices[{i}]"),
                &d.path,
                "fileMode has bits outside 0o7777",
            )
            .with_entry(Entry::Device(i)));
        }
        if d.path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            // Devices are created without following symlinks (see
            // rootfs/dev.rs); `..` would have no clear meaning there.
            return Err(Error::invalid_at(
                format!("devices[{i}]"),
                &d.path,
                "a device path may not contain ..",
            )
            .with_entry(Entry::Device(i)));
        }
        if crate::rootfs::policy::clean(&d.path) == Path::new("/dev") {
            return Err(Error::invalid_at(
                format!("devices[{i}]"),
                &d.path,
                "a device cannot replace /dev",
            )
            .with_entry(Entry::Device(i)));
        }
        // A spec device replaces a default one at the same path.
        devices.retain(|(x, _)| x.path != d.path);
        devices.push((d.clone(), Some(i)));
    }
    for (what, list, entry) in [
        (
            "maskedPaths",
            &spec.masked_paths,
            Entry::MaskedPath as fn(usize) -> Entry,
        ),
        ("readonlyPaths", &spec.readonly_paths, Entry::ReadonlyPath),
    ] {
        for (j, p) in list.iter().enumerate() {
            check_in_root_path("plan", p).map_err(|e| {
                let e = e.with_entry(entry(j));
                match e.kind() {
                    ErrorKind::InvalidInput => e.map_op(|_| what.into()),
                    _ => e,
                }
            })?;
        }
    }
    if let Some(cwd) = &spec.cwd {
        check_in_root_path("plan cwd", cwd).map_err(|e| e.with_entry(Entry::Cwd))?;
    }
    // Only sysctls that a namespace of the container's own isolates; the
    // rest would be written in the host's namespaces.
    for k in spec.sysctls.keys() {
        let kind = policy::check_sysctl(k, &spec.namespaces)
            .map_err(|e| e.with_entry(Entry::Sysctl(k.clone())))?;
        if !relies_on.contains(&kind) {
            relies_on.push(kind);
        }
    }
    if spec.umask.is_some_and(|u| u & !0o777 != 0) {
        return Err(Error::invalid("plan umask", "umask has bits outside 0o777"));
    }
    Ok(Plan {
        rootfs: spec.rootfs.clone(),
        mounts,
        setup_dev,
        default_devices: setup_dev && spec.default_devices,
        device_index: devices.iter().map(|(_, i)| *i).collect(),
        devices: devices.into_iter().map(|(d, _)| d).collect(),
        masked_paths: spec.masked_paths.clone(),
        readonly_paths: spec.readonly_paths.clone(),
        readonly_root: spec.readonly_root,
        rootfs_propagation: spec.rootfs_propagation.unwrap_or(PropagationSetting {
            kind: crate::Propagation::Slave,
            recursive: true,
        }),
        sysctls: spec
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cwd: spec.cwd.clone(),
        user_namespace: spec.user_namespace,
        umask: spec.umask,
        mount_label: spec.mount_label.clone(),
        strict_mount_label: spec.strict_mount_label,
        namespaces: spec.namespaces,
        relies_on,
    })
}

fn plan_mount(
    i: usize,
    m: &crate::rootfs::spec::MountSpec,
    spec: &RootfsSpec,
    relies_on: &mut Vec<NsKind>,
) -> Result<PlannedMount> {
    let dest = &m.destination;
    check_in_root_path("plan mount", dest)?;
    let placement = check_destination(dest)?;
    let is_bind_type = m.fs_type == "bind";
    let opts: MountOptions = m.parsed_options()?.into_owned();
    for w in &opts.ignored {
        log::warn!(
            "mounts[{i}] ({}): option {w:?} is a filesystem option, which a bind mount does \
             not take; ignored (as runc and crun do)",
            dest.display()
        );
    }
    let bind = opts.bind.or(if is_bind_type {
        Some(BindKind::Bind)
    } else {
        None
    });
    let kind = if let Some(b) = bind {
        let source = m
            .source
            .clone()
            .ok_or_else(|| Error::invalid_at("plan mount", dest, "a bind mount needs a source"))?;
        let (source, lookup) = classify(
            "bind source",
            &source,
            m.source_root.as_deref(),
            &spec.rootfs,
        )?;
        if opts.copy_symlink {
            MountKind::CopySymlink { source, lookup }
        } else {
            MountKind::Bind {
                source,
                lookup,
                recursive: b == BindKind::RBind,
                nofollow: opts.src_nofollow,
            }
        }
    } else {
        if m.fs_type.is_empty() {
            return Err(Error::invalid_at("plan mount", dest, "mount has no type"));
        }
        if m.fs_type == "cgroup" {
            MountKind::Cgroup
        } else {
            let mut data = opts.data.clone();
            if let Some(label) = &spec.mount_label {
                if takes_label(&m.fs_type) && !opts.has_data("context") {
                    // fsconfig takes the value as it is: no quoting, which
                    // a mount(2) data string needs for labels with commas.
                    data.push(("context".into(), Some(label.clone())));
                }
            }
            let (layers, data) = if m.fs_type == "overlay" {
                split_overlay_layers(data, m.source_root.as_deref(), &spec.rootfs)?
            } else {
                (Vec::new(), data)
            };
            MountKind::Fs {
                fstype: m.fs_type.clone(),
                source: m
                    .source
                    .as_ref()
                    .map(|s| s.to_string_lossy().into_owned())
                    .filter(|s| !s.is_empty()),
                data,
                sb_flags: opts.sb_flags.clone(),
                layers,
            }
        }
    };
    policy::judge_fs_placement(
        placement,
        matches!(&kind, MountKind::Fs { fstype, .. } if fstype == "proc"),
        matches!(kind, MountKind::Bind { .. }),
    )
    .map_err(|v| v.into_error("plan mount", Some(dest)))?;
    // cgroups: never a writable view of the host's hierarchies.
    let cgroup_type = match &kind {
        MountKind::Cgroup => Some("cgroup"),
        MountKind::Fs { fstype, .. } if fstype == "cgroup2" => Some("cgroup2"),
        _ => None,
    };
    if let Some(t) = cgroup_type {
        let readonly = (opts.set | opts.rec_set).contains(MountAttr::RDONLY);
        if !readonly {
            let layout = policy::host_cgroup_layout()?;
            if policy::check_cgroup_mount(t, readonly, &spec.namespaces, layout)?
                && !relies_on.contains(&NsKind::Cgroup)
            {
                relies_on.push(NsKind::Cgroup);
            }
        }
    }
    let idmap = opts.idmap.map(|recursive| IdmapPlan {
        recursive,
        uid_mappings: m.uid_mappings.clone(),
        gid_mappings: m.gid_mappings.clone(),
    });
    if let Some(im) = &idmap {
        if im.uid_mappings.is_empty() || im.gid_mappings.is_empty() {
            return Err(Error::invalid_at(
                "plan mount",
                dest,
                "idmap needs uidMappings and gidMappings on the mount",
            ));
        }
    }
    if opts.tmpcopyup && !matches!(&kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs") {
        return Err(Error::invalid_at(
            "plan mount",
            dest,
            "tmpcopyup only applies to tmpfs",
        ));
    }
    let _ = i;
    Ok(PlannedMount {
        index: Some(i),
        destination: dest.clone(),
        kind,
        set: opts.set,
        clear: opts.clear,
        rec_set: opts.rec_set,
        rec_clear: opts.rec_clear,
        propagation: opts.propagation,
        idmap,
        tmpcopyup: opts.tmpcopyup,
        dest_nofollow: opts.dest_nofollow,
        ignored_options: opts.ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::spec::MountSpec;

    fn spec(mounts: Vec<MountSpec>) -> RootfsSpec {
        RootfsSpec {
            rootfs: "/tmp/rootfs".into(),
            mounts,
            ..Default::default()
        }
    }

    #[test]
    fn refusals_carry_their_entry_and_kind() {
        let entry = |s: &RootfsSpec| plan(s).unwrap_err();
        let mut s = spec(vec![
            MountSpec::new("/proc", "proc", Some("proc".into()), &[]),
            MountSpec::new("tmp", "tmpfs", None, &[]),
        ]);
        let e = entry(&s);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.entry(), Some(&Entry::Mount(1)), "{e}");
        assert!(e.to_string().starts_with("mounts[1]: "), "{e}");
        s.mounts.pop();
        s.devices.push(DeviceSpec {
            path: "/dev/../x".into(),
            kind: DeviceKind::Char,
            major: 1,
            minor: 3,
            file_mode: None,
            uid: None,
            gid: None,
        });
        let e = entry(&s);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.entry(), Some(&Entry::Device(0)), "{e}");
        s.devices.clear();
        s.readonly_paths = vec!["/proc/sys".into(), "proc/x".into()];
        let e = entry(&s);
        assert_eq!(e.entry(), Some(&Entry::ReadonlyPath(1)), "{e}");
        s.readonly_paths.clear();
        s.cwd = Some("home".into());
        let e = entry(&s);
        assert_eq!(e.entry(), Some(&Entry::Cwd), "{e}");
        s.cwd = None;
        s.sysctls.insert("kernel.shmmax".into(), "1".into());
        let e = entry(&s);
        assert_eq!(
            e.entry(),
            Some(&Entry::Sysctl("kernel.shmmax".into())),
            "{e}"
        );
    }

    #[test]
    fn plans_an_implicit_dev_and_default_devices() {
        let p = plan(&spec(vec![MountSpec::new(
            "/proc",
            "proc",
            Some("proc".into()),
            &[],
        )]))
        .unwrap();
        let dests: Vec<_> = p.mounts.iter().map(|m| m.destination.clone()).collect();
        assert_eq!(
            dests,
            ["/dev", "/dev/pts", "/dev/shm", "/proc"].map(PathBuf::from)
        );
        assert_eq!(p.mounts[1].fstype(), "devpts");
        assert_eq!(p.mounts[3].fstype(), "proc");
        assert!(p.mounts[..3].iter().all(|m| m.index.is_none()));
        assert_eq!(p.mounts[3].index, Some(0));
        assert!(p.setup_dev);
        assert_eq!(p.devices.len(), 6);
        assert_eq!(p.rootfs_propagation.name(), "rslave");
    }

    #[test]
    fn user_namespace_drops_the_tty_group_from_the_implicit_devpts() {
        let mut s = spec(vec![]);
        s.user_namespace = true;
        let p = plan(&s).unwrap();
        let MountKind::Fs { data, .. } = &p.mounts[1].kind else {
            panic!()
        };
        assert!(!data.iter().any(|(k, _)| k == "gid"), "{data:?}");
        s.user_namespace = false;
        let p = plan(&s).unwrap();
        let MountKind::Fs { data, .. } = &p.mounts[1].kind else {
            panic!()
        };
        assert!(data
            .iter()
            .any(|(k, v)| k == "gid" && v.as_deref() == Some("5")));
    }

    #[test]
    fn bind_of_dev_disables_dev_setup() {
        let p = plan(&spec(vec![MountSpec::new(
            "/dev",
            "bind",
            Some("/dev".into()),
            &["rbind"],
        )]))
        .unwrap();
        assert!(!p.setup_dev);
        assert!(p.devices.is_empty());
        assert_eq!(p.mounts.len(), 1);
    }

    #[test]
    fn bad_mounts_name_index_and_path() {
        let cases = [
            MountSpec::new("relative", "tmpfs", None, &[]),
            MountSpec::new("/", "tmpfs", None, &[]),
            MountSpec::new("/proc/self/attr", "tmpfs", None, &[]),
            MountSpec::new("/proc", "tmpfs", None, &[]),
            MountSpec::new("/x", "bind", None, &[]),
            MountSpec::new("/x", "bind", Some("rel".into()), &[]),
            MountSpec::new("/x", "bind", Some("/a".into()), &["newinstance"]),
            MountSpec::new("/x", "", None, &[]),
            MountSpec::new("/x", "proc", None, &["tmpcopyup"]),
            MountSpec::new("/x", "bind", Some("/a".into()), &["idmap"]),
        ];
        for m in cases {
            let e = plan(&spec(vec![
                MountSpec::new("/ok", "tmpfs", None, &[]),
                m.clone(),
            ]))
            .unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{m:?}: {e}");
            let s = e.to_string();
            assert!(s.contains("mounts[1]"), "{s}");
        }
    }

    #[test]
    fn data_options_on_binds_are_ignored_and_listed() {
        let p = plan(&spec(vec![MountSpec::new(
            "/data",
            "bind",
            Some("/srv".into()),
            &["rbind", "mode=755", "size=1m", "uid=1000", "nosuid"],
        )]))
        .unwrap();
        let m = p.mounts.iter().find(|m| m.index == Some(0)).unwrap();
        assert_eq!(m.ignored_options, ["mode=755", "size=1m", "uid=1000"]);
        assert_eq!(m.set, MountAttr::NOSUID);
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(json["ignoredOptions"][0], "mode=755", "{json}");
        let e = plan(&spec(vec![MountSpec::new(
            "/data",
            "bind",
            Some("/srv".into()),
            &["newinstance"],
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("mounts[0]"), "{e}");
        assert!(e.to_string().contains("newinstance"), "{e}");
    }

    #[test]
    fn device_numbers_beyond_the_kernel_encoding_are_refused() {
        for (major, minor) in [(4096, 0), (1, 1 << 20), (u32::MAX, 3)] {
            let mut s = spec(vec![]);
            s.devices.push(DeviceSpec {
                path: "/dev/big".into(),
                kind: DeviceKind::Char,
                major,
                minor,
                file_mode: None,
                uid: None,
                gid: None,
            });
            let e = plan(&s).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().starts_with("devices[0]"), "{e}");
        }
        let mut s = spec(vec![]);
        s.devices.push(DeviceSpec {
            path: "relative".into(),
            kind: DeviceKind::Fifo,
            major: 0,
            minor: 0,
            file_mode: None,
            uid: None,
            gid: None,
        });
        let e = plan(&s).unwrap_err();
        assert!(e.to_string().starts_with("devices[0]"), "{e}");
        assert!(!e.to_string().contains("mounts["), "{e}");
    }

    #[test]
    fn device_paths_with_dot_dot_are_refused() {
        let mut s = spec(vec![]);
        s.devices.push(DeviceSpec {
            path: "/dev/../vol/null".into(),
            kind: DeviceKind::Char,
            major: 1,
            minor: 3,
            file_mode: None,
            uid: None,
            gid: None,
        });
        let e = plan(&s).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("devices[0]"), "{e}");
    }

    #[test]
    fn label_goes_to_filesystems_that_take_it() {
        let mut s = spec(vec![
            MountSpec::new("/tmp", "tmpfs", None, &[]),
            MountSpec::new("/proc", "proc", None, &[]),
        ]);
        s.mount_label = Some("system_u:object_r:container_file_t:s0".into());
        let p = plan(&s).unwrap();
        let MountKind::Fs { data, .. } = &p.mounts[3].kind else {
            panic!()
        };
        assert!(data.iter().any(|(k, v)| k == "context"
            && v.as_deref() == Some("system_u:object_r:container_file_t:s0")));
        let MountKind::Fs { data, .. } = &p.mounts[4].kind else {
            panic!()
        };
        assert!(data.is_empty());
        // The implicit /dev, /dev/pts and /dev/shm carry it too.
        for m in &p.mounts[..3] {
            assert_eq!(m.index, None);
            let MountKind::Fs { data, .. } = &m.kind else {
                panic!()
            };
            assert!(
                data.iter().any(|(k, v)| k == "context"
                    && v.as_deref() == Some("system_u:object_r:container_file_t:s0")),
                "{m:?}"
            );
        }
        assert_eq!(
            p.mount_label.as_deref(),
            Some("system_u:object_r:container_file_t:s0")
        );
    }

    #[test]
    fn sysctls_are_refused_unless_a_namespace_of_the_container_isolates_them() {
        let mut s = spec(vec![]);
        s.sysctls
            .insert("kernel.core_pattern".into(), "|/evil".into());
        s.namespaces = Namespaces {
            pid: true,
            net: true,
            ipc: true,
            uts: true,
            cgroup: true,
        };
        let e = plan(&s).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("kernel.core_pattern"), "{e}");

        let mut s = spec(vec![]);
        s.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        let e = plan(&s).unwrap_err();
        assert!(e.to_string().contains("net.ipv4.ip_forward"), "{e}");
        s.namespaces.net = true;
        s.sysctls.insert("kernel.shmmax".into(), "1".into());
        assert!(plan(&s).is_err(), "kernel.shmmax without an ipc namespace");
        s.namespaces.ipc = true;
        let p = plan(&s).unwrap();
        assert_eq!(p.relies_on, vec![NsKind::Ipc, NsKind::Net]);
        assert_eq!(p.namespaces, s.namespaces);
    }

    #[test]
    fn procfs_only_on_proc() {
        for dest in ["/x", "/proc/sys", "/procx", "/proc/cpuinfo"] {
            let e = plan(&spec(vec![MountSpec::new(dest, "proc", None, &[])])).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{dest}: {e}");
        }
        for dest in ["/proc", "/proc/", "/x/../proc"] {
            plan(&spec(vec![MountSpec::new(dest, "proc", None, &[])])).unwrap();
        }
    }

    #[test]
    fn rw_cgroup_needs_a_cgroup_namespace() {
        let m = MountSpec::new("/sys/fs/cgroup", "cgroup2", None, &["nosuid"]);
        let e = plan(&spec(vec![m.clone()])).unwrap_err();
        assert!(e.to_string().contains("mounts[0]"), "{e}");
        assert!(e.to_string().contains("cgroup namespace"), "{e}");
        let mut s = spec(vec![m]);
        s.namespaces.cgroup = true;
        assert_eq!(plan(&s).unwrap().relies_on, vec![NsKind::Cgroup]);
        let ro = MountSpec::new("/sys/fs/cgroup", "cgroup", None, &["ro"]);
        assert!(plan(&spec(vec![ro])).unwrap().relies_on.is_empty());
    }
}
