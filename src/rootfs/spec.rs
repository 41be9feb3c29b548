//! The rootfs specification: what a root filesystem should look like.
//!
//! Plain data, serde-friendly, independent of any config format. The OCI
//! runtime-spec reader (`saferoot::oci`, feature `oci`) produces one; so can
//! any caller. Mount options are kept as the strings runc and crun accept
//! (`ro`, `nosuid`, `rbind`, `rro`, `rslave`, `tmpcopyup`, `mode=755`, ...)
//! and are parsed once, into [`MountOptions`]: by the OCI translation,
//! which keeps the parsed value with the mount, or else when the spec is
//! planned; the plan carries the parsed value from there on. A bad option is
//! reported with the mount it belongs to.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rootfs::options::{parse_options, MountOptions};
use crate::{Propagation, Result};

/// Everything needed to assemble a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RootfsSpec {
    /// The host directory that becomes `/`.
    pub rootfs: PathBuf,
    /// Mounts, in the order they are made.
    pub mounts: Vec<MountSpec>,
    /// Device nodes to create under `/dev`, beyond the defaults.
    pub devices: Vec<DeviceSpec>,
    /// Whether to create the default devices (`null`, `zero`, `full`,
    /// `random`, `urandom`, `tty`) and `/dev` symlinks, as runc does.
    pub default_devices: bool,
    /// Paths to hide: files get the host's `/dev/null` bound over them,
    /// directories an empty read-only tmpfs.
    pub masked_paths: Vec<PathBuf>,
    /// Paths to bind over themselves read-only.
    pub readonly_paths: Vec<PathBuf>,
    /// Propagation for the root mount (OCI `rootfsPropagation`).
    pub rootfs_propagation: Option<PropagationSetting>,
    /// Make `/` read-only once everything is mounted.
    pub readonly_root: bool,
    /// SELinux label for mounts, passed as the `context=` option of
    /// filesystems that take one: those of the spec and the ones saferoot
    /// adds itself (`/dev`, `/dev/pts`, `/dev/shm`). On a kernel without
    /// SELinux the label is dropped with a warning, as crun does, unless
    /// [`strict_mount_label`](Self::strict_mount_label) is set.
    pub mount_label: Option<String>,
    /// Fail instead of dropping [`mount_label`](Self::mount_label) when the
    /// kernel has no SELinux (JSON `strictMountLabel`, default false).
    pub strict_mount_label: bool,
    /// The working directory to change into after entering the root; it is
    /// created when missing and checked to be inside the root.
    pub cwd: Option<PathBuf>,
    /// Sysctls to write (through a private procfs, never the container's).
    pub sysctls: BTreeMap<String, String>,
    /// Whether the container runs in a user namespace. Device nodes are
    /// then bound from the host instead of created, and flags the kernel
    /// locks on bind mounts are kept instead of failing.
    pub user_namespace: bool,
    /// The umask for the container process (OCI `process.user.umask`);
    /// applied when the root is entered.
    pub umask: Option<u32>,
    /// The namespaces, other than mount and user, that the container has
    /// of its own. Sysctls and read-write cgroup mounts are judged by them
    /// (see [`super::policy`]); the caller creates them.
    pub namespaces: Namespaces,
}

/// Which namespaces the container has of its own, besides its mount
/// namespace (always) and its user namespace
/// ([`RootfsSpec::user_namespace`]).
///
/// saferoot does not create them: the caller does, and must assemble the
/// root from a thread that is already in them. They decide what the spec
/// may ask for: a sysctl is only accepted when the container has the
/// namespace that isolates it, a read-write cgroup mount only with a cgroup
/// namespace. A namespace the container joins (an OCI entry with a `path`)
/// counts as its own: whether a path names the host's namespace cannot be
/// known from the spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Namespaces {
    /// A pid namespace.
    pub pid: bool,
    /// A network namespace.
    pub net: bool,
    /// An IPC namespace.
    pub ipc: bool,
    /// A UTS (hostname) namespace.
    pub uts: bool,
    /// A cgroup namespace.
    pub cgroup: bool,
}

impl Namespaces {
    /// Whether the container has a namespace of `kind` of its own.
    pub fn has(&self, kind: super::policy::NsKind) -> bool {
        use super::policy::NsKind;
        match kind {
            NsKind::Pid => self.pid,
            NsKind::Net => self.net,
            NsKind::Ipc => self.ipc,
            NsKind::Uts => self.uts,
            NsKind::Cgroup => self.cgroup,
        }
    }
}

impl Default for RootfsSpec {
    fn default() -> Self {
        RootfsSpec {
            rootfs: PathBuf::new(),
            mounts: Vec::new(),
            devices: Vec::new(),
            default_devices: true,
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            rootfs_propagation: None,
            readonly_root: false,
            mount_label: None,
            strict_mount_label: false,
            cwd: None,
            sysctls: BTreeMap::new(),
            user_namespace: false,
            umask: None,
            namespaces: Namespaces::default(),
        }
    }
}

/// One mount of a [`RootfsSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct MountSpec {
    /// Where, inside the root. Must be absolute.
    pub destination: PathBuf,
    /// The filesystem type (`proc`, `tmpfs`, ...), or `bind` (or empty with
    /// a `bind`/`rbind` option) for a bind mount.
    #[serde(rename = "type")]
    pub fs_type: String,
    /// The source: a host path for binds, a device or a name otherwise.
    ///
    /// A bind source (and an overlay layer: `lowerdir`, `upperdir`,
    /// `workdir`) that lies under [`RootfsSpec::rootfs`] is resolved inside
    /// the rootfs, so that the image's symlinks cannot lead out of it; see
    /// [`source_root`](Self::source_root) for other confining directories.
    /// Paths are cleaned lexically (`.` and `..` removed) before they are
    /// judged, and the cleaned path is the one opened.
    pub source: Option<PathBuf>,
    /// A directory that `source` (and overlay layers) must be resolved in
    /// (`RESOLVE_IN_ROOT`): a relative path is relative to it, and a path
    /// lexically under it is resolved inside it, so a symlink there can
    /// never reach a host path outside it. The OCI reader sets it to the
    /// bundle directory for bind sources and overlay layers given relative
    /// to the bundle or inside it. A relative path that leaves it (`../x`)
    /// is refused. `None`: paths outside the rootfs are host paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_root: Option<PathBuf>,
    /// Options as runc and crun accept them.
    pub options: Vec<String>,
    /// User id mappings for an idmapped mount (OCI `uidMappings`).
    pub uid_mappings: Vec<IdMapping>,
    /// Group id mappings for an idmapped mount (OCI `gidMappings`).
    pub gid_mappings: Vec<IdMapping>,
    /// `options` as parsed by whoever made this mount (the OCI
    /// translation), so that planning does not parse them again.
    #[serde(skip)]
    parsed: ParsedOptions,
}

/// Options parsed once, with the strings and bind-ness they were parsed
/// from: a caller may edit [`MountSpec::options`] or
/// [`MountSpec::fs_type`] after the spec was made, and then the stored
/// value no longer applies and is not used. Not part of the mount's value:
/// it never affects equality and is not serialized.
#[derive(Clone, Default)]
struct ParsedOptions(Option<Arc<(Vec<String>, bool, MountOptions)>>);

impl PartialEq for ParsedOptions {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ParsedOptions {}

impl fmt::Debug for ParsedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "parsed"
        } else {
            "not parsed"
        })
    }
}

impl MountSpec {
    /// A mount with the given destination, type, source and options.
    pub fn new(
        destination: impl Into<PathBuf>,
        fs_type: impl Into<String>,
        source: Option<PathBuf>,
        options: &[&str],
    ) -> MountSpec {
        MountSpec {
            destination: destination.into(),
            fs_type: fs_type.into(),
            source,
            options: options.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Records `parsed` as what [`MountSpec::options`] parse to, so that
    /// [`MountSpec::parsed_options`] need not parse them again.
    #[cfg(any(feature = "oci", test))]
    pub(crate) fn set_parsed_options(&mut self, parsed: MountOptions) {
        let key = (self.options.clone(), self.fs_type == "bind", parsed);
        self.parsed = ParsedOptions(Some(Arc::new(key)));
    }

    /// The options, parsed: the value recorded when the mount was made if
    /// the options (and whether the type is `bind`) are still the ones it
    /// was parsed from, otherwise parsed now with
    /// [`parse_options`].
    pub fn parsed_options(&self) -> Result<Cow<'_, MountOptions>> {
        let is_bind = self.fs_type == "bind";
        match self.parsed.0.as_deref() {
            Some((from, bind, parsed)) if *from == self.options && *bind == is_bind => {
                Ok(Cow::Borrowed(parsed))
            }
            _ => parse_options(&self.options, is_bind).map(Cow::Owned),
        }
    }
}

/// A range of ids mapped into a user namespace or an idmapped mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    /// First id inside.
    pub container_id: u32,
    /// First id outside.
    pub host_id: u32,
    /// How many ids.
    pub size: u32,
}

/// The kind of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A character device (OCI type `c` or `u`).
    Char,
    /// A block device (OCI type `b`).
    Block,
    /// A fifo (OCI type `p`).
    Fifo,
}

/// A device node to create under the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSpec {
    /// Where, inside the root (normally under `/dev`).
    pub path: PathBuf,
    /// Character, block or fifo.
    pub kind: DeviceKind,
    /// Major number (ignored for fifos).
    pub major: u32,
    /// Minor number (ignored for fifos).
    pub minor: u32,
    /// Permission bits; 0o666 when not given.
    pub file_mode: Option<u32>,
    /// Owner; 0 when not given.
    pub uid: Option<u32>,
    /// Group; 0 when not given.
    pub gid: Option<u32>,
}

/// A propagation type and whether it applies to the whole tree (`rslave`)
/// or one mount (`slave`). In JSON it is that word, as in OCI configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PropagationSetting {
    /// The type.
    pub kind: Propagation,
    /// Whether it applies recursively.
    pub recursive: bool,
}

impl PropagationSetting {
    /// Parses `private`, `rprivate`, `slave`, `rslave`, `shared`, `rshared`,
    /// `unbindable` or `runbindable`.
    pub fn parse(word: &str) -> Option<PropagationSetting> {
        let (recursive, base) = match word.strip_prefix('r') {
            Some(rest) => (true, rest),
            _ => (false, word),
        };
        let kind = match base {
            "private" => Propagation::Private,
            "slave" => Propagation::Slave,
            "shared" => Propagation::Shared,
            "unbindable" => Propagation::Unbindable,
            _ => return None,
        };
        Some(PropagationSetting { kind, recursive })
    }

    /// The word [`parse`](Self::parse) accepts for this setting.
    pub fn name(&self) -> String {
        format!(
            "{}{}",
            if self.recursive { "r" } else { "" },
            self.kind.name()
        )
    }
}

impl Serialize for PropagationSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for PropagationSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        PropagationSetting::parse(&word).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown propagation {word:?} (private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_is_a_word_in_json() {
        let p = PropagationSetting::parse("rslave").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"rslave\"");
        let back: PropagationSetting = serde_json::from_str("\"runbindable\"").unwrap();
        assert_eq!(back.name(), "runbindable");
        let e = serde_json::from_str::<PropagationSetting>("\"rfoo\"").unwrap_err();
        assert!(e.to_string().contains("rfoo"), "{e}");
        for w in [
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "runbindable",
        ] {
            assert_eq!(PropagationSetting::parse(w).unwrap().name(), w);
        }
        let spec: RootfsSpec =
            serde_json::from_str(r#"{"rootfs": "/r", "rootfsPropagation": "rshared"}"#).unwrap();
        assert_eq!(spec.rootfs_propagation.unwrap().name(), "rshared");
    }
}

#[cfg(test)]
mod parsed_options_tests {
    use super::*;

    #[test]
    fn recorded_options_are_used_until_the_strings_change() {
        let mut m = MountSpec::new("/tmp", "tmpfs", None, &["nosuid"]);
        assert!(!m.parsed_options().unwrap().tmpcopyup);
        // A recorded value is returned as is, not parsed again (this one
        // differs from what the strings parse to, to tell them apart).
        let mut recorded = parse_options(&["nosuid"], false).unwrap();
        recorded.tmpcopyup = true;
        m.set_parsed_options(recorded.clone());
        assert_eq!(*m.parsed_options().unwrap(), recorded);
        assert_eq!(m, MountSpec::new("/tmp", "tmpfs", None, &["nosuid"]));
        // Edited options (or type) are parsed afresh.
        m.options.push("nodev".into());
        let now = m.parsed_options().unwrap();
        assert!(!now.tmpcopyup);
        assert!(now.set.contains(crate::MountAttr::NODEV));
        m.options.pop();
        m.fs_type = "bind".into();
        assert!(!m.parsed_options().unwrap().tmpcopyup);
    }
}
