//! Making one planned mount: build the mount fd, configure it completely,
//! resolve or create its destination inside the root, attach.

use std::path::Path;

use rustix::fs::FileType;

use crate::mount::AttachedMount;
use crate::mount::Scope;
use crate::path::{split_parent, Handle, Root};
use crate::procfs::Procfs;
use crate::rootfs::plan::{IdmapPlan, MountKind, PlannedMount};
use crate::rootfs::policy::{self, BindSource, FsClass};
use crate::rootfs::sources::{self, OverlayLayer};
use crate::rootfs::spec::{IdMapping, Namespaces};
use crate::{Error, ErrorKind, Mount, MountAttr, Result};

/// Flags a user namespace cannot clear on a bind of a mount that has them
/// (the kernel locks them).
const LOCKABLE: MountAttr = MountAttr::RDONLY
    .union(MountAttr::NOSUID)
    .union(MountAttr::NODEV)
    .union(MountAttr::NOEXEC)
    .union(MountAttr::ATIME_POLICY);

/// What making a mount produced.
pub(crate) enum Made {
    /// A mount, attached.
    Mount(AttachedMount),
    /// No mount (a copied symlink).
    Nothing,
}

/// Refuses mount `pm` at mount time, naming its index and destination.
fn refuse(pm: &PlannedMount, reason: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    let op = match pm.index {
        Some(i) => format!("mounts[{i}]: mount"),
        None => "mount".to_string(),
    };
    let e = Error::invalid_at(op, &pm.destination, reason);
    match pm.index {
        Some(i) => e.with_entry(crate::error::Entry::Mount(i)),
        None => e,
    }
}

/// Makes `pm` inside `root`. `user_namespace` relaxes locked flags;
/// `namespaces` are the container's own (a bind of a procfs needs the
/// container to share the pid namespace it shows).
pub(crate) fn make(
    root: &Root,
    pm: &PlannedMount,
    user_namespace: bool,
    namespaces: &Namespaces,
) -> Result<Made> {
    let dest = &pm.destination;
    let mut bind_source = BindSource::NotABind;
    // What the destination holds now, looked up once: for a new
    // filesystem before it is made (a tmpfs takes the mode of what it
    // covers and copies it up), for the others once they are made; the
    // mount then goes onto that very inode.
    let (mount, found) = match &pm.kind {
        MountKind::CopySymlink { source, lookup } => {
            let target = sources::read_source_link(root, source, lookup)?;
            if let Some(parent) = dest.parent() {
                root.mkdir_all(parent, 0o755)?;
            }
            root.symlink(target, dest)?;
            return Ok(Made::Nothing);
        }
        MountKind::Fs {
            fstype,
            source,
            data,
            sb_flags,
            layers,
        } => {
            let found = lookup_target(root, pm);
            let m = make_fs(
                root,
                pm,
                FsParts {
                    fstype,
                    source: source.as_deref(),
                    data,
                    sb_flags,
                    layers,
                },
                found.as_ref().ok(),
            )?;
            (m, found)
        }
        MountKind::Cgroup => (make_cgroup(pm)?, lookup_target(root, pm)),
        MountKind::Bind {
            source,
            lookup,
            recursive,
            nofollow,
        } => {
            let m = sources::clone_source(root, source, lookup, *recursive, *nofollow)?;
            let class = policy::fs_class(&m)?;
            let host_cgroup = class == FsClass::Other && policy::is_host_cgroup_root(&m)?;
            bind_source = check_bind_source(&m, pm, source, class, host_cgroup)?;
            set_bind_attrs(&m, pm, user_namespace)?;
            let needs_readonly = policy::READONLY_BIND_SOURCES.contains(&class) || host_cgroup;
            if bind_source == BindSource::Other && needs_readonly && *recursive {
                // Every mount below a read-only bind of sysfs or a cgroup
                // tree is read-only too: an rbind of /sys would otherwise
                // bring the v1 hierarchies below it writable.
                m.set_attr_recursive(MountAttr::RDONLY, MountAttr::empty())?;
            }
            if let Some(idmap) = &pm.idmap {
                apply_idmap(&m, idmap)?;
            }
            let found = lookup_target(root, pm);
            (m, found)
        }
    };
    for p in &pm.propagation {
        mount.set_propagation(p.kind, Scope::tree_if(p.recursive))?;
    }
    let target = target_for(root, pm, &mount, found)?;
    check_target(root, &target, pm, bind_source, namespaces)?;
    Ok(Made::Mount(
        mount.attach(&target).map_err(|e| e.with_path(dest))?,
    ))
}

/// The bind-source policy, on the cloned source itself (`class` its
/// filesystem, `host_cgroup` whether it is the caller's `/sys/fs/cgroup`):
/// a procfs is noted (it may only become the container's /proc, see
/// [`check_target`]); sysfs and cgroup hierarchies of the host only go in
/// read-only.
fn check_bind_source(
    m: &Mount,
    pm: &PlannedMount,
    source: &Path,
    class: FsClass,
    host_cgroup: bool,
) -> Result<BindSource> {
    let proc_root = class == FsClass::Procfs
        && rustix::fs::fstat(m)
            .map_err(|e| Error::os_at("fstat bind source", source, e))?
            .st_ino
            == policy::PROC_ROOT_INO;
    let readonly = (pm.set | pm.rec_set).contains(MountAttr::RDONLY);
    policy::judge_bind_source(class, proc_root, host_cgroup, readonly, source)
        .map_err(|v| refuse(pm, v.reason))
}

/// The destination policy ([`policy::judge_target`]), on the resolved
/// target, just before attaching.
fn check_target(
    root: &Root,
    target: &Handle,
    pm: &PlannedMount,
    bind_source: BindSource,
    namespaces: &Namespaces,
) -> Result<()> {
    let is_proc_fs = matches!(&pm.kind, MountKind::Fs { fstype, .. } if fstype == "proc");
    let place = policy::target_place(root, target)?;
    policy::judge_target(place, is_proc_fs, bind_source, namespaces.pid)
        .map_err(|v| refuse(pm, v.reason))
}

/// What [`make_fs`] makes, from [`MountKind::Fs`].
struct FsParts<'a> {
    fstype: &'a str,
    source: Option<&'a str>,
    data: &'a [(String, Option<String>)],
    sb_flags: &'a [String],
    layers: &'a [OverlayLayer],
}

/// Makes the filesystem of `pm`, configured completely. `found` is what
/// the destination holds now, if anything: a tmpfs takes its mode and,
/// with `tmpcopyup`, a copy of its contents.
fn make_fs(
    root: &Root,
    pm: &PlannedMount,
    parts: FsParts<'_>,
    found: Option<&Handle>,
) -> Result<Mount> {
    let FsParts {
        fstype,
        source,
        data,
        sb_flags,
        layers,
    } = parts;
    let dest = &pm.destination;
    // A new filesystem has no mounts below it: recursive flags (`rro`, ...)
    // are flags on the mount itself.
    let set = pm.set | pm.rec_set;
    let mut b = Mount::fs(fstype).attrs(set - MountAttr::RDONLY);
    if let Some(s) = source {
        b = b.source(s);
    }
    for (k, v) in data {
        b = match v {
            Some(v) => b.string(k, v),
            None => b.flag(k),
        };
    }
    for f in sb_flags {
        b = b.flag(f);
    }
    if !layers.is_empty() {
        b = sources::add_overlay_layers(root, b, layers).map_err(|e| e.with_path(dest))?;
    }
    // A new tmpfs keeps the mode of the directory it covers, as runc does.
    if fstype == "tmpfs" && !data.iter().any(|(k, _)| k == "mode") {
        if let Some(st) = found.and_then(|h| h.stat().ok()) {
            if st.file_type == FileType::Directory {
                b = b.string("mode", format!("{:o}", st.mode));
            }
        }
    }
    let m = b.mount().map_err(|e| e.with_path(dest))?;
    if pm.tmpcopyup {
        if let Some(src) = found {
            crate::rootfs::copyup::copy_tree(src, &m).map_err(|e| e.with_path(dest))?;
        }
    }
    // Read-only goes on last, after any copy-up filled the tmpfs, and still
    // before the mount is attached.
    if set.contains(MountAttr::RDONLY) {
        m.set_attr(MountAttr::RDONLY, MountAttr::empty())?;
    }
    Ok(m)
}

fn make_cgroup(pm: &PlannedMount) -> Result<Mount> {
    let host = Root::open("/sys/fs/cgroup")?;
    let st =
        rustix::fs::fstatfs(&host).map_err(|e| Error::os_at("fstatfs", "/sys/fs/cgroup", e))?;
    if st.f_type as i64 == policy::CGROUP2_SUPER_MAGIC {
        match Mount::fs("cgroup2")
            .source("cgroup2")
            .attrs(pm.set | pm.rec_set)
            .mount()
        {
            Ok(m) => return Ok(m),
            Err(e) if matches!(e.kind(), ErrorKind::Permission) || e.errno() == libc::EBUSY => {
                log::debug!("fresh cgroup2 refused ({e}); binding the host's /sys/fs/cgroup");
            }
            Err(e) => return Err(e.with_path(&pm.destination)),
        }
    }
    // cgroup v1 hosts, and cgroup2 without a cgroup namespace: the host's
    // hierarchy, with every mount below it, and only ever read-only.
    if !(pm.set | pm.rec_set).contains(MountAttr::RDONLY) {
        return Err(refuse(
            pm,
            "a read-write cgroup mount cannot be confined here (no new cgroup2 instance \
             allowed): it would be a writable bind of the host's hierarchy; mount it ro",
        ));
    }
    let m = Mount::clone_tree("/sys/fs/cgroup", Scope::Tree)?;
    let (set, clear) = (pm.set | pm.rec_set, pm.clear | pm.rec_clear);
    m.set_attr_recursive(set, clear - set)?;
    Ok(m)
}

/// Sets the requested flags on a bind. In a user namespace, a flag the
/// kernel locks on the source (because the source has it) cannot be
/// cleared; it is kept rather than failing, as runc does.
fn set_bind_attrs(m: &Mount, pm: &PlannedMount, user_namespace: bool) -> Result<()> {
    let try_set = |set: MountAttr, clear: MountAttr, recursive: bool| -> Result<()> {
        if set.is_empty() && clear.is_empty() {
            return Ok(());
        }
        let r = if recursive {
            m.set_attr_recursive(set, clear)
        } else {
            m.set_attr(set, clear)
        };
        match r {
            Err(e) if user_namespace && e.kind() == ErrorKind::Permission => {
                // Which flags are locked is not reported; like runc, keep
                // whatever the source has of the lockable ones.
                let current = m.attrs()?;
                let locked = current & LOCKABLE;
                let mut set2 = set | (locked - MountAttr::ATIME_POLICY);
                if set.intersects(MountAttr::ATIME_POLICY) {
                    set2 = (set2 - MountAttr::ATIME_POLICY) | (current & MountAttr::ATIME_POLICY);
                }
                let clear2 = (clear - locked) - set2;
                log::debug!(
                    "keeping locked flags {locked} on {}: set {set2}, clear {clear2:?}",
                    pm.destination.display()
                );
                if recursive {
                    m.set_attr_recursive(set2, clear2)
                } else {
                    m.set_attr(set2, clear2)
                }
            }
            r => r,
        }
    };
    try_set(pm.rec_set, pm.rec_clear, true)?;
    try_set(pm.set, pm.clear, false)
}

fn map_lines(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

fn apply_idmap(m: &Mount, idmap: &IdmapPlan) -> Result<()> {
    let procfs = Procfs::new()?;
    let userns = procfs.make_userns(
        &map_lines(&idmap.uid_mappings),
        &map_lines(&idmap.gid_mappings),
    )?;
    m.set_idmap(&userns, Scope::tree_if(idmap.recursive))
}

/// What the destination of `pm` holds now, resolved inside the root: proc
/// and sysfs must land on a real directory, so for them (and where the
/// plan says so) the last component is not followed, and a symlink there
/// is caught (CVE-2019-19921).
fn lookup_target(root: &Root, pm: &PlannedMount) -> Result<Handle> {
    if is_special(pm) || pm.dest_nofollow {
        root.resolve_nofollow(&pm.destination)
    } else {
        root.resolve(&pm.destination)
    }
}

/// proc and sysfs.
fn is_special(pm: &PlannedMount) -> bool {
    matches!(pm.fstype(), "proc" | "sysfs")
}

/// The inode the mount goes onto: `existing` ([`lookup_target`]), or made
/// when that found nothing (a directory, or an empty file when a file is
/// bound).
fn target_for(
    root: &Root,
    pm: &PlannedMount,
    mount: &Mount,
    existing: Result<Handle>,
) -> Result<Handle> {
    let dest = &pm.destination;
    let source_is_dir = mount.is_dir().map_err(|e| e.with_path(dest))?;
    let special = is_special(pm);
    // Made here: of the source's kind, and (a directory opened
    // `O_NOFOLLOW | O_DIRECTORY`, a file checked regular) nothing else.
    let mut made = false;
    let h = match existing {
        Ok(h) => h,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            made = true;
            if source_is_dir {
                root.mkdir_all_missing(dest, 0o755)?
            } else {
                let (parent, _) = split_parent("mount", dest)?;
                root.mkdir_all(parent, 0o755)?;
                // Never written through (a file is bound on it): read-only
                // bits, as bubblewrap makes them.
                root.create_file(dest, 0o444)?
            }
        }
        Err(e) => return Err(e),
    };
    if made {
        if special {
            policy::check_real_directory(&h, dest, pm.fstype())?;
        }
        return Ok(h);
    }
    let ft = h.file_type().map_err(|e| e.with_path(dest))?;
    if special {
        policy::check_real_directory_type(ft, dest, pm.fstype())?;
    }
    let is_dir = ft == FileType::Directory;
    if is_dir != source_is_dir && ft != FileType::Symlink {
        return Err(Error::invalid_at(
            "mount",
            dest,
            if source_is_dir {
                "the source is a directory but the destination is not"
            } else {
                "the source is a file but the destination is a directory"
            },
        ));
    }
    Ok(h)
}
