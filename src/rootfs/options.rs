//! Mount options as runc and crun accept them, turned into attributes,
//! propagation and filesystem parameters.
//!
//! Every word is accounted for: a mount flag, a recursive (`r*`) flag, a
//! propagation type, a saferoot/crun extension, a superblock flag, or a
//! filesystem parameter. Words that are none of these are passed to the
//! filesystem for a new filesystem (the kernel refuses unknown ones and the
//! error names them) and refused outright for bind mounts, where they could
//! only be silently ignored.
//!
//! A bind mount makes no filesystem, so filesystem data options
//! (`key=value`: `mode=`, `size=`, `uid=`, `nr_inodes=`, ...) and
//! superblock flags (`sync`, ...) mean nothing there. runc and crun ignore
//! them; so does saferoot, listing them in [`MountOptions::ignored`] (the
//! planner logs a warning naming the mount and the option). A bare word
//! that is none of the above stays an error.

use crate::rootfs::spec::PropagationSetting;
use crate::{Error, MountAttr, Result};

/// Whether a bind mount takes the mounts below its source along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    /// `bind`: only the source mount.
    Bind,
    /// `rbind`: the source and every mount below it.
    RBind,
}

/// Mount options, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountOptions {
    /// `bind` or `rbind`, when the mount is a bind mount.
    pub bind: Option<BindKind>,
    /// Attributes to set on the mount itself.
    pub set: MountAttr,
    /// Attributes to clear on the mount itself (`rw`, `suid`, `dev`, ...).
    pub clear: MountAttr,
    /// Attributes to set on the mount and every mount below it (`rro`,
    /// `rnosuid`, ...).
    pub rec_set: MountAttr,
    /// Attributes to clear recursively (`rrw`, `rsuid`, ...).
    pub rec_clear: MountAttr,
    /// Propagation changes, in the order given.
    pub propagation: Vec<PropagationSetting>,
    /// `idmap` (false) or `ridmap` (true): make an idmapped mount.
    pub idmap: Option<bool>,
    /// `tmpcopyup`: copy the old contents into a new tmpfs.
    pub tmpcopyup: bool,
    /// `src-nofollow`: do not follow a symlink as the bind source's last
    /// component.
    pub src_nofollow: bool,
    /// `dest-nofollow`: mount onto a symlink destination itself (crun).
    pub dest_nofollow: bool,
    /// `copy-symlink`: for a bind whose source is a symlink, create the
    /// same symlink at the destination instead of mounting (crun).
    pub copy_symlink: bool,
    /// Superblock flags (`sync`, `dirsync`, `lazytime`, `mand`, `silent`)
    /// that a new filesystem gets as fsconfig flags.
    pub sb_flags: Vec<String>,
    /// Filesystem parameters: `key=value` pairs and bare flags.
    pub data: Vec<(String, Option<String>)>,
    /// Options given to a bind mount that only a new filesystem takes
    /// (`key=value` data options, superblock flags), as written: a bind
    /// ignores them, as runc and crun do. Empty for other mounts.
    pub ignored: Vec<String>,
}

impl MountOptions {
    /// The filesystem parameters as a data string (`mode=755,size=64k`).
    pub fn data_string(&self) -> String {
        self.data
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether a filesystem parameter named `key` was given.
    pub fn has_data(&self, key: &str) -> bool {
        self.data.iter().any(|(k, _)| k == key)
    }
}

/// Plain per-mount flags: (word, attribute, true to set / false to clear).
const FLAGS: &[(&str, MountAttr, bool)] = &[
    ("ro", MountAttr::RDONLY, true),
    ("rw", MountAttr::RDONLY, false),
    ("nosuid", MountAttr::NOSUID, true),
    ("suid", MountAttr::NOSUID, false),
    ("nodev", MountAttr::NODEV, true),
    ("dev", MountAttr::NODEV, false),
    ("noexec", MountAttr::NOEXEC, true),
    ("exec", MountAttr::NOEXEC, false),
    ("noatime", MountAttr::NOATIME, true),
    ("atime", MountAttr::NOATIME, false),
    ("relatime", MountAttr::RELATIME, true),
    ("norelatime", MountAttr::RELATIME, false),
    ("strictatime", MountAttr::STRICTATIME, true),
    ("nostrictatime", MountAttr::STRICTATIME, false),
    ("nodiratime", MountAttr::NODIRATIME, true),
    ("diratime", MountAttr::NODIRATIME, false),
    ("nosymfollow", MountAttr::NOSYMFOLLOW, true),
    ("symfollow", MountAttr::NOSYMFOLLOW, false),
];

/// Superblock flags a new filesystem takes through fsconfig.
const SB_FLAGS: &[&str] = &["sync", "dirsync", "lazytime", "mand", "silent"];

/// Words that ask for the default and change nothing.
const NO_OPS: &[&str] = &[
    "defaults",
    "async",
    "nolazytime",
    "nomand",
    "loud",
    "auto",
    "noauto",
    "user",
    "nouser",
];

fn apply_flag(set: &mut MountAttr, clear: &mut MountAttr, attr: MountAttr, on: bool) {
    if on {
        if MountAttr::ATIME_POLICY.contains(attr) {
            *set -= MountAttr::ATIME_POLICY;
            *clear -= MountAttr::ATIME_POLICY;
        }
        *set |= attr;
        *clear -= attr;
    } else {
        *set -= attr;
        *clear |= attr;
    }
}

/// Parses the options of one mount. `is_bind` says whether the mount is a
/// bind mount by its type (`bind`); a `bind`/`rbind` option makes it one too.
pub fn parse_options<S: AsRef<str>>(options: &[S], is_bind: bool) -> Result<MountOptions> {
    let mut o = MountOptions::default();
    let mut unknown = Vec::new();
    for opt in options {
        let opt = opt.as_ref();
        if opt.contains('\0') {
            return Err(Error::invalid(
                "mount options",
                "option contains a NUL byte",
            ));
        }
        if let Some((_, attr, on)) = FLAGS.iter().find(|(w, _, _)| *w == opt) {
            apply_flag(&mut o.set, &mut o.clear, *attr, *on);
            continue;
        }
        if let Some((_, attr, on)) = opt
            .strip_prefix('r')
            .and_then(|rest| FLAGS.iter().find(|(w, _, _)| *w == rest))
        {
            apply_flag(&mut o.rec_set, &mut o.rec_clear, *attr, *on);
            continue;
        }
        if let Some(p) = PropagationSetting::parse(opt) {
            o.propagation.push(p);
            continue;
        }
        match opt {
            "bind" => o.bind = Some(BindKind::Bind),
            "rbind" => o.bind = Some(BindKind::RBind),
            "idmap" => o.idmap = Some(false),
            "ridmap" => o.idmap = Some(true),
            "tmpcopyup" => o.tmpcopyup = true,
            "src-nofollow" => o.src_nofollow = true,
            "dest-nofollow" => o.dest_nofollow = true,
            "copy-symlink" => o.copy_symlink = true,
            _ if SB_FLAGS.contains(&opt) => o.sb_flags.push(opt.to_string()),
            _ if NO_OPS.contains(&opt) => {}
            // mount(8) convention: x-* options are for userspace helpers.
            _ if opt.starts_with("x-") => {}
            "" => return Err(Error::invalid("mount options", "empty option")),
            _ => match opt.split_once('=') {
                Some(("", _)) => {
                    return Err(Error::invalid(
                        "mount options",
                        format!("option {opt:?} has no name"),
                    ))
                }
                Some((k, v)) => o.data.push((k.to_string(), Some(v.to_string()))),
                None => unknown.push(opt.to_string()),
            },
        }
    }
    let bind = is_bind || o.bind.is_some();
    if bind {
        if let Some(word) = unknown.first() {
            return Err(Error::invalid(
                "mount options",
                format!(
                    "{word:?} is not a mount flag, propagation type or bind option that \
                     saferoot knows, and a bind mount takes no filesystem options"
                ),
            ));
        }
        // Filesystem data and superblock flags mean nothing on a bind.
        o.ignored = o
            .data
            .drain(..)
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .chain(o.sb_flags.drain(..))
            .collect();
        if o.tmpcopyup {
            return Err(Error::invalid(
                "mount options",
                "tmpcopyup only applies to tmpfs mounts",
            ));
        }
    } else {
        if o.idmap.is_some() {
            return Err(Error::invalid(
                "mount options",
                "idmap and ridmap only apply to bind mounts",
            ));
        }
        // Bare words we do not know go to the filesystem, which refuses
        // those it does not know either, naming them.
        o.data.extend(unknown.into_iter().map(|w| (w, None)));
    }
    if o.set.has_conflicting_atime() || o.rec_set.has_conflicting_atime() {
        return Err(Error::invalid(
            "mount options",
            "more than one access-time policy",
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Propagation;

    #[test]
    fn runc_default_proc_and_dev_options() {
        let o =
            parse_options(&["nosuid", "strictatime", "mode=755", "size=65536k"], false).unwrap();
        assert_eq!(o.set, MountAttr::NOSUID | MountAttr::STRICTATIME);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
        let o = parse_options(
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
            false,
        )
        .unwrap();
        assert_eq!(o.set, MountAttr::NOSUID | MountAttr::NOEXEC);
        assert!(o.has_data("newinstance"));
        assert_eq!(o.data.len(), 4);
    }

    #[test]
    fn binds_and_recursive_flags() {
        let o = parse_options(&["rbind", "rro", "nosuid", "rslave", "rw"], false).unwrap();
        assert_eq!(o.bind, Some(BindKind::RBind));
        assert_eq!(o.rec_set, MountAttr::RDONLY);
        assert_eq!(o.set, MountAttr::NOSUID);
        assert_eq!(o.clear, MountAttr::RDONLY);
        assert_eq!(
            o.propagation,
            vec![PropagationSetting {
                kind: Propagation::Slave,
                recursive: true
            }]
        );
        let o = parse_options(&["ro", "rw"], true).unwrap();
        assert_eq!(o.set, MountAttr::empty());
        assert_eq!(o.clear, MountAttr::RDONLY);
        let o = parse_options(&["noatime", "strictatime"], true).unwrap();
        assert_eq!(o.set, MountAttr::STRICTATIME);
    }

    #[test]
    fn unknown_words_are_refused_for_binds_and_kept_for_filesystems() {
        let e = parse_options(&["bind", "frobnicate"], false).unwrap_err();
        assert!(e.to_string().contains("frobnicate"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(!e.to_string().contains("unknown"), "{e}");
        // Data options and superblock flags mean nothing on a bind: kept
        // aside to be warned about, not refused, not applied.
        let o = parse_options(&["size=1m", "mode=755", "rbind", "sync", "ro"], true).unwrap();
        assert_eq!(o.ignored, ["size=1m", "mode=755", "sync"]);
        assert!(o.data.is_empty() && o.sb_flags.is_empty());
        assert_eq!(o.set, MountAttr::RDONLY);
        let o = parse_options(&["size=1m", "sync"], false).unwrap();
        assert!(o.ignored.is_empty());
        assert_eq!(o.data_string(), "size=1m");
        let o = parse_options(&["frobnicate"], false).unwrap();
        assert!(o.has_data("frobnicate"));
        assert!(parse_options(&["=x"], false).is_err());
        assert!(parse_options(&[""], false).is_err());
        assert!(parse_options(&["tmpcopyup", "bind"], false).is_err());
        assert!(parse_options(&["idmap"], false).is_err());
    }

    #[test]
    fn extensions_and_no_ops() {
        let o = parse_options(
            &[
                "defaults",
                "x-systemd.automount",
                "tmpcopyup",
                "sync",
                "ridmap",
            ],
            false,
        );
        assert!(o.is_err(), "ridmap on a tmpfs must be refused");
        let o = parse_options(&["defaults", "x-foo", "tmpcopyup", "sync"], false).unwrap();
        assert!(o.tmpcopyup);
        assert_eq!(o.sb_flags, vec!["sync".to_string()]);
        assert!(o.data.is_empty());
        let o = parse_options(&["bind", "ridmap", "src-nofollow", "rnosymfollow"], false).unwrap();
        assert_eq!(o.idmap, Some(true));
        assert!(o.src_nofollow);
        assert_eq!(o.rec_set, MountAttr::NOSYMFOLLOW);
    }
}
