//! A [`RootfsSpec`] from an OCI runtime-spec `config.json` (feature `oci`).
//!
//! This reads the part of an [OCI runtime-spec] configuration that is about
//! the root filesystem — `root`, `mounts`, `linux.devices`,
//! `linux.maskedPaths`, `linux.readonlyPaths`, `linux.rootfsPropagation`,
//! `linux.mountLabel`, `linux.sysctl`, the presence of a user namespace,
//! `process.cwd` and `process.user.umask` — and checks it before anything is
//! done with it. Every refusal is an [`crate::ErrorKind::InvalidInput`] whose operation
//! names the config entry at fault (`mounts[3].destination`,
//! `linux.devices[0].type`, `linux.sysctl["kernel.shmmax"]`, ...), so a user
//! can find the line to fix.
//!
//! The rest of the configuration (process arguments, capabilities, rlimits,
//! seccomp, cgroups, hooks, AppArmor and SELinux process labels) is outside
//! saferoot's job and is ignored here; `docs/oci.md` lists what maps where.
//!
//! # Differences from runc
//!
//! - Mount destinations, masked paths, read-only paths, device paths and
//!   `process.cwd` must be absolute. runc historically accepted a relative
//!   mount destination and read it relative to the rootfs; the runtime-spec
//!   requires absolute ones, and accepting both spellings for the same place
//!   only hides configuration bugs (a destination of `proc` next to `/proc`
//!   looks like two mounts and is one). We refuse instead of guessing.
//! - Every mount's options are parsed here with
//!   [`parse_options`], so an unknown
//!   option on a bind mount, which runc would silently ignore, is refused with
//!   the index of the mount.
//! - A mount with a filesystem type other than `bind` or `none` *and* a
//!   `bind`/`rbind` option is refused: runc silently ignores the type in that
//!   case, so the configuration does not say what its author meant.
//! - Device major numbers above 4095 and minor numbers above 1048575 are
//!   refused: the kernel's `mknod` cannot represent them and would create a
//!   different device.
//!
//! [OCI runtime-spec]: https://github.com/opencontainers/runtime-spec

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Mount, Spec};
use rustix::io::Errno;

use crate::error::Entry;
use crate::rootfs::options::parse_options;
use crate::rootfs::spec::{
    DeviceKind, DeviceSpec, IdMapping, MountSpec, PropagationSetting, RootfsSpec,
};
use crate::{Error, ErrorKind, Result};

/// The `oci-spec` crate this module reads, re-exported so callers name the
/// same version of [`Spec`] that saferoot takes.
pub use oci_spec;

mod config_json;

/// Parses the text of a `config.json` into oci-spec's [`Spec`]: the same
/// value, and the same errors, as `serde_json::from_slice::<Spec>`, except
/// that the CPU lists of `process.execCPUAffinity` must use the digits
/// `0`-`9`. saferoot reads every configuration through this, so that
/// oci-spec's own reading of `process` (which links the `regex` crate for
/// that one check) is not part of its programs.
///
/// # Errors
///
/// The parser's error, with line and column, when `bytes` is not a valid
/// OCI configuration.
pub fn spec_from_slice(bytes: &[u8]) -> serde_json::Result<Spec> {
    config_json::from_slice(bytes)
}

/// [`spec_from_slice`] for a configuration already parsed as a JSON value
/// (one the caller has changed, say).
///
/// # Errors
///
/// The parser's error when `value` is not a valid OCI configuration.
pub fn spec_from_value(value: serde_json::Value) -> serde_json::Result<Spec> {
    config_json::from_value(value)
}

/// The longest path accepted, as the kernel's `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// The largest major number the kernel's `mknod` dev_t encoding has room
/// for (12 bits).
const MAX_MAJOR: i64 = (1 << 12) - 1;

/// The largest minor number the kernel's `mknod` dev_t encoding has room
/// for (20 bits).
const MAX_MINOR: i64 = (1 << 20) - 1;

/// The file type bits of a mode (`S_IFMT`).
const S_IFMT: u32 = 0o170000;

/// The name of the configuration file in a bundle.
const CONFIG_JSON: &str = "config.json";

/// An [`ErrorKind::InvalidInput`] error whose operation is the config entry
/// at fault, with that entry as [`Entry::Config`] (the loops over mounts,
/// devices, paths and sysctls replace it by the typed entry).
fn refuse(
    entry: impl Into<Cow<'static, str>>,
    path: Option<&Path>,
    reason: impl Into<Cow<'static, str>>,
) -> Error {
    let entry = entry.into();
    let field = Entry::Config(entry.to_string());
    match path {
        Some(p) => Error::invalid_at(entry, p, reason),
        None => Error::invalid(entry, reason),
    }
    .with_entry(field)
}

/// `e` as a refusal of `entry` when it refused input; otherwise `other(e)`.
fn refuse_as(
    e: Error,
    entry: impl FnOnce() -> String,
    path: Option<&Path>,
    other: impl FnOnce(Error) -> Error,
) -> Error {
    match (e.kind(), e.reason()) {
        (ErrorKind::InvalidInput, Some(reason)) => refuse(entry(), path, reason.to_string()),
        _ => other(e),
    }
}

/// Refuses a path that contains a NUL byte or is empty.
fn check_path(entry: std::fmt::Arguments<'_>, path: &Path) -> Result<()> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(refuse(entry.to_string(), None, "path is empty"));
    }
    if bytes.contains(&0) {
        // Not recorded as the error's path: a C caller would see it cut
        // short at the NUL.
        return Err(refuse(
            entry.to_string(),
            None,
            format!("path {path:?} contains a NUL byte"),
        ));
    }
    if bytes.len() >= PATH_MAX {
        return Err(refuse(
            entry.to_string(),
            Some(path),
            "path is longer than PATH_MAX",
        ));
    }
    Ok(())
}

/// Refuses an in-container path that is not usable: empty, relative, with a
/// NUL byte or too long.
fn check_in_root(entry: std::fmt::Arguments<'_>, path: &Path) -> Result<()> {
    check_path(entry, path)?;
    if !path.is_absolute() {
        return Err(refuse(
            entry.to_string(),
            Some(path),
            "path inside the container must be absolute",
        ));
    }
    Ok(())
}

/// Refuses a string with a NUL byte; `path` is the path the entry is
/// about, if any.
fn check_no_nul(entry: std::fmt::Arguments<'_>, path: Option<&Path>, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(refuse(
            entry.to_string(),
            path,
            format!("{value:?} contains a NUL byte"),
        ));
    }
    Ok(())
}

/// Converts id mappings, refusing empty and overflowing ranges.
fn id_mappings(entry: &str, maps: &[LinuxIdMapping]) -> Result<Vec<IdMapping>> {
    maps.iter()
        .enumerate()
        .map(|(j, m)| {
            let map = IdMapping {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            };
            if map.size == 0 {
                return Err(refuse(format!("{entry}[{j}]"), None, "size is 0"));
            }
            let overflows = |start: u32| start.checked_add(map.size - 1).is_none();
            if overflows(map.container_id) || overflows(map.host_id) {
                return Err(refuse(
                    format!("{entry}[{j}]"),
                    None,
                    format!(
                        "range of {} ids from container id {} / host id {} goes past 2^32",
                        map.size, map.container_id, map.host_id
                    ),
                ));
            }
            Ok(map)
        })
        .collect()
}

/// The relative path `rel` in the bundle directory, without `.` components.
fn in_bundle(bundle: &Path, rel: &Path) -> PathBuf {
    let mut p = bundle.to_path_buf();
    p.extend(rel.components().filter(|c| *c != Component::CurDir));
    p
}

/// The user-namespace id mappings of the configuration, used for `idmap`
/// mounts that give none of their own.
struct NamespaceMaps {
    uid: Vec<IdMapping>,
    gid: Vec<IdMapping>,
}

/// Converts one entry of `mounts`.
fn mount_spec(i: usize, m: &Mount, bundle: &Path, ns: &NamespaceMaps) -> Result<MountSpec> {
    let dest = m.destination();
    check_in_root(format_args!("mounts[{i}].destination"), dest)?;

    let mut options: Vec<String> = m.options().clone().unwrap_or_default();
    for (j, o) in options.iter().enumerate() {
        check_no_nul(format_args!("mounts[{i}].options[{j}]"), Some(dest), o)?;
    }
    let bind_option = options.iter().any(|o| o == "bind" || o == "rbind");

    let fs_type = match m.typ().as_deref() {
        None | Some("") | Some("none") if bind_option => "bind".to_string(),
        None | Some("") => {
            return Err(refuse(
                format!("mounts[{i}].type"),
                Some(dest),
                "no filesystem type, and no bind or rbind option",
            ))
        }
        Some(t) => {
            check_no_nul(format_args!("mounts[{i}].type"), Some(dest), t)?;
            if bind_option && t != "bind" {
                return Err(refuse(
                    format!("mounts[{i}].type"),
                    Some(dest),
                    format!(
                        "type {t:?} with a bind or rbind option: a bind mount has type \
                         \"bind\" (or none), so it is unclear which was meant"
                    ),
                ));
            }
            t.to_string()
        }
    };
    let is_bind = fs_type == "bind";

    let mut parsed = parse_options(&options, is_bind).map_err(|e| {
        refuse_as(
            e,
            || format!("mounts[{i}].options"),
            Some(dest),
            |o| o.with_path(dest),
        )
    })?;

    // Paths that name something in the bundle are resolved inside it
    // (saferoot::rootfs::sources): a relative bind source or overlay layer
    // (as runc reads them: relative to the bundle), or an absolute one that
    // lies in the bundle directory.
    let in_the_bundle = |p: &Path| {
        p.is_relative()
            || crate::rootfs::policy::clean(p).starts_with(crate::rootfs::policy::clean(bundle))
    };
    let mut source_root = None;
    let source = match m.source() {
        Some(s) if !s.as_os_str().is_empty() => {
            check_path(format_args!("mounts[{i}].source"), s)?;
            if is_bind && in_the_bundle(s) {
                source_root = Some(bundle.to_path_buf());
            }
            if is_bind && s.is_relative() {
                // As runc does: a relative bind source is a path in the
                // bundle directory.
                Some(in_bundle(bundle, s))
            } else {
                Some(s.clone())
            }
        }
        _ if is_bind => {
            return Err(refuse(
                format!("mounts[{i}].source"),
                Some(dest),
                "a bind mount needs a source",
            ))
        }
        _ => None,
    };

    let mut uid_mappings = id_mappings(
        &format!("mounts[{i}].uidMappings"),
        m.uid_mappings().as_deref().unwrap_or_default(),
    )?;
    let mut gid_mappings = id_mappings(
        &format!("mounts[{i}].gidMappings"),
        m.gid_mappings().as_deref().unwrap_or_default(),
    )?;
    if uid_mappings.is_empty() != gid_mappings.is_empty() {
        let missing = if uid_mappings.is_empty() {
            "uidMappings"
        } else {
            "gidMappings"
        };
        return Err(refuse(
            format!("mounts[{i}].{missing}"),
            Some(dest),
            "uidMappings and gidMappings must be given together",
        ));
    }
    if !uid_mappings.is_empty() && !is_bind {
        return Err(refuse(
            format!("mounts[{i}].uidMappings"),
            Some(dest),
            "only bind mounts can be idmapped",
        ));
    }
    if parsed.idmap.is_none() && !uid_mappings.is_empty() {
        // Mappings alone ask for an idmapped mount (as runc reads them);
        // say so in the options, and in their parsed value kept with the
        // mount, which the planner reads.
        options.push("idmap".to_string());
        parsed.idmap = Some(false);
    } else if parsed.idmap.is_some() && uid_mappings.is_empty() {
        // The runtime-spec: an idmap mount without mappings of its own uses
        // the container's user namespace mappings.
        if ns.uid.is_empty() || ns.gid.is_empty() {
            return Err(refuse(
                format!("mounts[{i}].options"),
                Some(dest),
                "idmap or ridmap without uidMappings and gidMappings on the mount, and no \
                 linux.uidMappings and linux.gidMappings to use instead",
            ));
        }
        uid_mappings = ns.uid.clone();
        gid_mappings = ns.gid.clone();
    }

    if fs_type == "overlay" && overlay_layers_in_bundle(&options, &in_the_bundle) {
        source_root = Some(bundle.to_path_buf());
    }

    let mut spec = MountSpec::new(dest.clone(), fs_type, source, &[]);
    spec.source_root = source_root;
    spec.options = options;
    spec.uid_mappings = uid_mappings;
    spec.gid_mappings = gid_mappings;
    spec.set_parsed_options(parsed);
    Ok(spec)
}

/// Whether an overlay mount's options name a layer in the bundle, by the
/// test `in_the_bundle`. Escapes (`\:`) are not undone here: a wrong
/// split can only make this say yes too often, and a source root changes
/// nothing for layers outside it.
fn overlay_layers_in_bundle(options: &[String], in_the_bundle: &dyn Fn(&Path) -> bool) -> bool {
    options.iter().any(|o| {
        let Some((key, value)) = o.split_once('=') else {
            return false;
        };
        match key {
            "lowerdir" => value
                .split(':')
                .filter(|p| !p.is_empty())
                .any(|p| in_the_bundle(Path::new(p))),
            "lowerdir+" | "datadir+" | "upperdir" | "workdir" => in_the_bundle(Path::new(value)),
            _ => false,
        }
    })
}

/// Converts a major or minor number, refusing what `mknod` cannot encode.
fn device_number(entry: String, path: &Path, value: i64, max: i64) -> Result<u32> {
    if !(0..=max).contains(&value) {
        return Err(refuse(
            entry,
            Some(path),
            format!("{value} is outside 0..={max}, the range mknod can encode"),
        ));
    }
    // In range of u32 by the check above.
    u32::try_from(value).map_err(|_| Error::invalid("device number", "out of range"))
}

/// Converts one entry of `linux.devices`.
fn device_spec(i: usize, d: &oci_spec::runtime::LinuxDevice) -> Result<DeviceSpec> {
    let path = d.path();
    check_in_root(format_args!("linux.devices[{i}].path"), path)?;
    let (kind, type_bits) = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => (DeviceKind::Char, 0o020000),
        LinuxDeviceType::B => (DeviceKind::Block, 0o060000),
        LinuxDeviceType::P => (DeviceKind::Fifo, 0o010000),
        LinuxDeviceType::A => {
            return Err(refuse(
                format!("linux.devices[{i}].type"),
                Some(path),
                "type \"a\" (all) is for cgroup device rules, not a device node type \
                 (expected c, u, b or p)",
            ))
        }
    };
    let (major, minor) = if kind == DeviceKind::Fifo {
        // mknod ignores the numbers of a fifo.
        (0, 0)
    } else {
        (
            device_number(
                format!("linux.devices[{i}].major"),
                path,
                d.major(),
                MAX_MAJOR,
            )?,
            device_number(
                format!("linux.devices[{i}].minor"),
                path,
                d.minor(),
                MAX_MINOR,
            )?,
        )
    };
    let file_mode = match d.file_mode() {
        None => None,
        Some(mode) => {
            let fmt = mode & S_IFMT;
            // Some tools write the whole st_mode, type bits included; accept
            // them when they agree with the type.
            if (fmt != 0 && fmt != type_bits) || mode & !(S_IFMT | 0o7777) != 0 {
                return Err(refuse(
                    format!("linux.devices[{i}].fileMode"),
                    Some(path),
                    format!(
                        "mode {mode:#o} is not permission bits (0o7777), optionally with \
                         the file type bits of a device of type {:?}",
                        d.typ().as_str()
                    ),
                ));
            }
            Some(mode & 0o7777)
        }
    };
    Ok(DeviceSpec {
        path: path.clone(),
        kind,
        major,
        minor,
        file_mode,
        uid: d.uid(),
        gid: d.gid(),
    })
}

/// Refuses a sysctl name that could name something outside `/proc/sys`
/// (the rule [`crate::procfs::sysctl_path`] applies when writing it), or a
/// value with a NUL byte.
fn check_sysctl(key: &str, value: &str) -> Result<()> {
    let entry = || format!("linux.sysctl[{key:?}]");
    crate::procfs::sysctl_path(key).map_err(|e| refuse_as(e, entry, None, |o| o))?;
    check_no_nul(format_args!("linux.sysctl[{key:?}]"), None, value)
}

/// Turns an OCI runtime-spec configuration into a [`RootfsSpec`].
///
/// `bundle` is the bundle directory: a relative `root.path` and relative
/// bind mount sources are read relative to it (as runc does). A relative
/// `bundle` is made absolute with the current directory (lexically, without
/// resolving symlinks), so the returned spec holds absolute host paths.
///
/// Mounts are kept in order with their options as strings, after every
/// mount's options were parsed with
/// [`parse_options`]. A mount with no
/// type (or type `none`) and a `bind` or `rbind` option gets type `bind`. A
/// mount with an `idmap` or `ridmap` option and no mappings of its own gets
/// `linux.uidMappings` and `linux.gidMappings`; a mount with mappings and
/// neither option gets `idmap` appended to its options (mappings alone ask
/// for an idmapped mount).
///
/// # Errors
///
/// [`crate::ErrorKind::InvalidInput`] naming the config entry at fault (for instance
/// `mounts[3].destination`, `mounts[1].options`, `linux.devices[0].type`,
/// `linux.rootfsPropagation`) for: a missing or empty `root.path`; relative,
/// empty or NUL-containing paths; mounts without a type; bind mounts without
/// a source or with a filesystem type other than `bind`; options
/// [`parse_options`] refuses;
/// unpaired, empty or overflowing id mappings; idmapped mounts that are not
/// binds; device type `a` and device numbers `mknod` cannot encode; an
/// unknown `rootfsPropagation`; sysctl names with empty components; a
/// `umask` above `0o777`.
pub fn spec_from_config(config: &Spec, bundle: &Path) -> Result<RootfsSpec> {
    check_path(format_args!("bundle"), bundle)?;
    let bundle = if bundle.is_absolute() {
        bundle.to_path_buf()
    } else {
        std::path::absolute(bundle).map_err(|e| io_error("bundle", bundle, e))?
    };

    let root = config
        .root()
        .as_ref()
        .ok_or_else(|| refuse("root", None, "the config has no root"))?;
    check_path(format_args!("root.path"), root.path())?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        in_bundle(&bundle, root.path())
    };

    let mut spec = RootfsSpec {
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        ..RootfsSpec::default()
    };

    let linux = config.linux().as_ref();
    let ns = NamespaceMaps {
        uid: id_mappings(
            "linux.uidMappings",
            linux
                .and_then(|l| l.uid_mappings().as_deref())
                .unwrap_or_default(),
        )?,
        gid: id_mappings(
            "linux.gidMappings",
            linux
                .and_then(|l| l.gid_mappings().as_deref())
                .unwrap_or_default(),
        )?,
    };

    if let Some(mounts) = config.mounts() {
        spec.mounts = mounts
            .iter()
            .enumerate()
            .map(|(i, m)| mount_spec(i, m, &bundle, &ns).map_err(|e| e.with_entry(Entry::Mount(i))))
            .collect::<Result<_>>()?;
    }

    if let Some(linux) = linux {
        if let Some(devices) = linux.devices() {
            spec.devices = devices
                .iter()
                .enumerate()
                .map(|(i, d)| device_spec(i, d).map_err(|e| e.with_entry(Entry::Device(i))))
                .collect::<Result<_>>()?;
        }
        for (field, paths, out, entry) in [
            (
                "maskedPaths",
                linux.masked_paths(),
                &mut spec.masked_paths,
                Entry::MaskedPath as fn(usize) -> Entry,
            ),
            (
                "readonlyPaths",
                linux.readonly_paths(),
                &mut spec.readonly_paths,
                Entry::ReadonlyPath,
            ),
        ] {
            for (i, p) in paths.iter().flatten().enumerate() {
                let p = PathBuf::from(p);
                check_in_root(format_args!("linux.{field}[{i}]"), &p)
                    .map_err(|e| e.with_entry(entry(i)))?;
                out.push(p);
            }
        }
        spec.rootfs_propagation = match linux.rootfs_propagation().as_deref() {
            None | Some("") => None,
            Some(word) => Some(PropagationSetting::parse(word).ok_or_else(|| {
                refuse(
                    "linux.rootfsPropagation",
                    None,
                    format!(
                        "unknown propagation {word:?} (expected private, rprivate, slave, \
                         rslave, shared, rshared, unbindable or runbindable)"
                    ),
                )
            })?),
        };
        spec.mount_label = match linux.mount_label().as_deref() {
            None | Some("") => None,
            Some(label) => {
                check_no_nul(format_args!("linux.mountLabel"), None, label)?;
                Some(label.to_string())
            }
        };
        if let Some(sysctl) = linux.sysctl() {
            // oci-spec keeps them in a HashMap, whose order changes from
            // one map to the next: checked in name order, a config with
            // two bad names is always refused for the same one.
            let sorted: BTreeMap<&String, &String> = sysctl.iter().collect();
            spec.sysctls = sorted
                .into_iter()
                .map(|(k, v)| {
                    check_sysctl(k, v).map_err(|e| e.with_entry(Entry::Sysctl(k.clone())))?;
                    Ok((k.clone(), v.clone()))
                })
                .collect::<Result<BTreeMap<_, _>>>()?;
        }
        spec.user_namespace = linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::User);
        // Every listed namespace is the container's own, new or joined: a
        // `path` joins an existing one, and whether that one is the host's
        // cannot be known from the config (runc takes a joined namespace as
        // the container's too). Whoever sets up the namespaces must check
        // the paths it joins.
        for n in linux.namespaces().iter().flatten() {
            match n.typ() {
                LinuxNamespaceType::Pid => spec.namespaces.pid = true,
                LinuxNamespaceType::Network => spec.namespaces.net = true,
                LinuxNamespaceType::Ipc => spec.namespaces.ipc = true,
                LinuxNamespaceType::Uts => spec.namespaces.uts = true,
                LinuxNamespaceType::Cgroup => spec.namespaces.cgroup = true,
                _ => {}
            }
        }
    }

    if let Some(process) = config.process() {
        check_in_root(format_args!("process.cwd"), process.cwd())
            .map_err(|e| e.with_entry(Entry::Cwd))?;
        spec.cwd = Some(process.cwd().clone());
        if let Some(umask) = process.user().umask() {
            if umask > 0o777 {
                return Err(refuse(
                    "process.user.umask",
                    None,
                    format!("umask {umask:#o} has bits outside 0o777"),
                ));
            }
            spec.umask = Some(umask);
        }
    }

    log::debug!(
        "OCI config: rootfs {}, {} mounts, {} devices",
        spec.rootfs.display(),
        spec.mounts.len(),
        spec.devices.len()
    );
    Ok(spec)
}

/// Parses a configuration, reporting JSON errors with their line and
/// column, and unknown device types with their entry.
fn parse_config(bytes: &[u8]) -> Result<Spec> {
    spec_from_slice(bytes).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            if let Some(err) = find_bad_device_type(bytes, &e) {
                return err;
            }
        }
        refuse(CONFIG_JSON, None, format!("not a valid OCI config: {e}"))
    })
}

/// When `linux.devices[i].type` is a string the OCI types do not include,
/// an error naming that entry.
fn find_bad_device_type(bytes: &[u8], e: &serde_json::Error) -> Option<Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let devices = value.get("linux")?.get("devices")?.as_array()?;
    devices.iter().enumerate().find_map(|(i, d)| {
        let t = d.get("type")?;
        match t.as_str() {
            Some("c" | "u" | "b" | "p" | "a") => None,
            _ => Some(
                refuse(
                    format!("linux.devices[{i}].type"),
                    None,
                    format!("unknown device type {t} (expected c, u, b or p): {e}"),
                )
                .with_entry(Entry::Device(i)),
            ),
        }
    })
}

/// Parses the text of a `config.json` and turns it into a [`RootfsSpec`]
/// with [`spec_from_config`], relative paths being read relative to
/// `bundle`.
///
/// # Errors
///
/// [`crate::ErrorKind::InvalidInput`] with operation `config.json` and the parser's
/// message (with line and column) when the text is not a valid OCI
/// configuration (operation `linux.devices[N].type` for an unknown device
/// type), and every error of [`spec_from_config`].
pub fn spec_from_json(text: &str, bundle: &Path) -> Result<RootfsSpec> {
    spec_from_config(&parse_config(text.as_bytes())?, bundle)
}

/// Turns an I/O error of reading the bundle into an [`Error`].
fn io_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(raw) => Error::os_at(op, path, Errno::from_raw_os_error(raw)),
        None => Error::invalid_at(op, path, e.to_string()),
    }
}

/// The largest `config.json` saferoot reads: 16 MiB. Real configs are a few
/// kilobytes; a bigger file is refused before any of it is read, so a
/// planted multi-gigabyte (or sparse) file cannot exhaust memory.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// Reads the configuration file open as the `O_PATH` fd `fd` (`path` is for
/// messages): it must be a regular file of at most [`MAX_CONFIG_SIZE`]
/// bytes, checked with `fstat` on the fd before the file is opened for
/// reading, so a fifo or a device is never opened and nothing blocks.
///
/// `by_name` is the directory and name the fd was resolved from, when the
/// file may be opened again by that name (see [`open_checked_by_name`]).
fn read_config_fd(
    fd: std::os::fd::OwnedFd,
    path: &Path,
    by_name: Option<(BorrowedFd<'_>, &str)>,
) -> Result<Vec<u8>> {
    const OP: &str = "read config.json";
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::os_at(OP, path, e))?;
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if ft != rustix::fs::FileType::RegularFile {
        let what = match ft {
            rustix::fs::FileType::Fifo => "a fifo",
            rustix::fs::FileType::CharacterDevice => "a character device",
            rustix::fs::FileType::BlockDevice => "a block device",
            rustix::fs::FileType::Socket => "a socket",
            rustix::fs::FileType::Directory => "a directory",
            _ => "not a regular file",
        };
        return Err(Error::invalid_at(
            OP,
            path,
            format!("the configuration is {what}; it must be a regular file"),
        ));
    }
    let too_big = |size: u64| {
        Error::invalid_at(
            OP,
            path,
            format!(
                "the configuration has {size} bytes or more; saferoot reads at most {MAX_CONFIG_SIZE} (16 MiB)"
            ),
        )
    };
    let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
    if size > MAX_CONFIG_SIZE {
        return Err(too_big(size));
    }
    // The file checked above is the file read, whatever happens to the
    // path meanwhile: opened again by name when that gives the same inode,
    // otherwise reopened through the library's procfs handle.
    let direct = by_name.and_then(|(dir, name)| open_checked_by_name(dir, name, &st));
    let file = match direct {
        Some(f) => f,
        None => crate::path::Handle::from_fd(fd)
            .reopen(
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::NONBLOCK
                    | rustix::fs::OFlags::NOCTTY,
            )
            .map_err(|e| e.with_path(path))?,
    };
    // Room for the size checked (at most 16 MiB, above) and the byte that
    // shows the end: the file is read in two calls, not in doubling ones.
    let mut bytes = Vec::with_capacity(usize::try_from(size).map_or(0, |s| s.saturating_add(1)));
    file.take(MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(OP, path, e))?;
    if bytes.len() as u64 > MAX_CONFIG_SIZE {
        // It grew after the check.
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Opens `name` in `dir` for reading, if it is the regular file `checked`
/// describes: with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
/// RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`, then
/// kept only if it is the same inode. This opens nothing but a file that
/// sits under that name itself (no symlink is followed): what could take
/// its place between the check and this open is another entry of the
/// same directory, which is then refused by its inode, and a device node
/// there is made only with the privilege to make devices. `None` (the
/// caller reopens the checked fd through procfs, which is exact, at the
/// cost of a procfs handle and its checks) when `name` is a symlink or
/// anything else went another way.
fn open_checked_by_name(
    dir: BorrowedFd<'_>,
    name: &str,
    checked: &rustix::fs::Stat,
) -> Option<std::fs::File> {
    use rustix::fs::{OFlags, ResolveFlags};
    let fd = rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    ((st.st_dev, st.st_ino) == (checked.st_dev, checked.st_ino)).then(|| std::fs::File::from(fd))
}

/// Reads `config.json` of the bundle directory `bundle`, the way both
/// [`load_bundle`] and `saferoot audit --bundle` read it.
///
/// `config.json` is resolved inside the bundle with
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: a relative symlink
/// that stays inside the bundle is followed; an absolute symlink, or one
/// (or a `..`) that leads out of the bundle, is refused. It is opened
/// `O_PATH` and checked with `fstat` to be a regular file of at most
/// [`MAX_CONFIG_SIZE`] bytes before it is opened for reading, so a fifo or
/// device planted there is refused without being opened, and a huge file
/// without being read.
///
/// # Errors
///
/// [`crate::ErrorKind::Os`] when the bundle or `config.json` cannot be opened or read,
/// [`crate::ErrorKind::SafetyViolation`] when `config.json` leads outside the bundle,
/// [`crate::ErrorKind::InvalidInput`] when it is not a regular file or is too big.
pub fn read_config(bundle: &Path) -> Result<Vec<u8>> {
    use rustix::fs::{OFlags, ResolveFlags};
    check_path(format_args!("bundle"), bundle)?;
    let config_path = bundle.join(CONFIG_JSON);
    let dir = rustix::fs::open(
        bundle,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::os_at("open bundle directory", bundle, e))?;
    let mut tries = 0;
    let fd = loop {
        match rustix::fs::openat2(
            &dir,
            CONFIG_JSON,
            OFlags::PATH | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => break fd,
            // A rename elsewhere on the system raced the lookup.
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            Err(Errno::XDEV) => {
                return Err(Error::unsafe_at(
                    "open config.json",
                    &config_path,
                    "config.json leads outside the bundle directory (an absolute symlink, or a symlink or `..` out of it)",
                ))
            }
            Err(Errno::NOSYS) => return Err(Error::unsupported(crate::Feature::Openat2)),
            Err(e) => return Err(Error::os_at("open config.json", &config_path, e)),
        }
    };
    read_config_fd(fd, &config_path, Some((dir.as_fd(), CONFIG_JSON)))
}

/// Reads a configuration file given by its own path (`saferoot audit
/// --config FILE`), with the checks of [`read_config`]: the path is the
/// caller's (symlinks in it are followed), the file must be a regular file
/// of at most [`MAX_CONFIG_SIZE`] bytes, and it is checked before it is
/// opened for reading.
///
/// # Errors
///
/// As [`read_config`].
pub fn read_config_file(path: &Path) -> Result<Vec<u8>> {
    use rustix::fs::OFlags;
    let fd = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::os_at("open config.json", path, e))?;
    read_config_fd(fd, path, None)
}

/// Reads `config.json` from the bundle directory `bundle` with
/// [`read_config`] and turns it into a [`RootfsSpec`] with
/// [`spec_from_config`]; returns the configuration too, for the parts
/// saferoot does not handle.
///
/// # Errors
///
/// Every error of [`read_config`] and of [`spec_from_json`].
pub fn load_bundle(bundle: &Path) -> Result<(Spec, RootfsSpec)> {
    let bytes = read_config(bundle)?;
    let config = parse_config(&bytes)?;
    let spec = spec_from_config(&config, bundle)?;
    Ok((config, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn oci_sysctl_names() {
        for good in [
            "net.ipv4.ip_forward",
            "net/ipv4/conf/eth0.100/forwarding",
            "kernel.shmmax",
        ] {
            check_sysctl(good, "1").unwrap();
        }
        for bad in [
            "",
            "net..ipv4",
            "/net/ipv4",
            "net/../../etc",
            "..",
            "kernel.",
            "a\0b",
        ] {
            let e = check_sysctl(bad, "1").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(e.to_string().contains("linux.sysctl["), "{e}");
        }
        assert!(check_sysctl("kernel.shmmax", "1\0").is_err());
    }

    #[test]
    fn oci_device_numbers() {
        assert_eq!(
            device_number("x".into(), Path::new("/dev/x"), 4095, MAX_MAJOR).unwrap(),
            4095
        );
        assert!(device_number("x".into(), Path::new("/dev/x"), 4096, MAX_MAJOR).is_err());
        assert!(device_number("x".into(), Path::new("/dev/x"), -1, MAX_MINOR).is_err());
        assert_eq!(
            device_number("x".into(), Path::new("/dev/x"), MAX_MINOR, MAX_MINOR).unwrap(),
            1_048_575
        );
    }

    #[test]
    fn oci_id_mappings_are_checked() {
        let m = |c, h, s| {
            serde_json::from_value::<LinuxIdMapping>(serde_json::json!({
                "containerID": c, "hostID": h, "size": s
            }))
            .unwrap()
        };
        let ok = id_mappings("m", &[m(0, 100000, 65536)]).unwrap();
        assert_eq!(
            ok,
            vec![IdMapping {
                container_id: 0,
                host_id: 100000,
                size: 65536
            }]
        );
        let e = id_mappings("m", &[m(0, 1, 1), m(0, 1, 0)]).unwrap_err();
        assert!(e.to_string().contains("m[1]"), "{e}");
        assert!(id_mappings("m", &[m(0, u32::MAX, 2)]).is_err());
        assert!(id_mappings("m", &[m(0, u32::MAX, 1)]).is_ok());
    }
}
