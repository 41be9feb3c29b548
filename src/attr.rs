//! Mount attributes and propagation types, shared by [`crate::mount`] (which
//! sets them) and [`crate::mountinfo`] (which reads them back).

use std::fmt;

use linux_raw_sys::general as k;

bitflags::bitflags! {
    /// Per-mount attributes, as `mount_setattr(2)` sets them.
    ///
    /// The access-time policy is one value in the kernel (relatime,
    /// noatime or strictatime); here each is a flag, and at most one of
    /// [`NOATIME`](Self::NOATIME), [`STRICTATIME`](Self::STRICTATIME) and
    /// [`RELATIME`](Self::RELATIME) may be set at once.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MountAttr: u64 {
        /// Read-only.
        const RDONLY = k::MOUNT_ATTR_RDONLY as u64;
        /// Ignore set-user-ID and set-group-ID bits and file capabilities.
        const NOSUID = k::MOUNT_ATTR_NOSUID as u64;
        /// No access to device nodes.
        const NODEV = k::MOUNT_ATTR_NODEV as u64;
        /// No execution of programs.
        const NOEXEC = k::MOUNT_ATTR_NOEXEC as u64;
        /// Do not update access times.
        const NOATIME = k::MOUNT_ATTR_NOATIME as u64;
        /// Always update access times.
        const STRICTATIME = k::MOUNT_ATTR_STRICTATIME as u64;
        /// Update access times relative to modification times (the
        /// kernel's default). The kernel encodes it as zero; saferoot gives
        /// it a bit of its own so that it can be asked for explicitly.
        const RELATIME = 1 << 40;
        /// Do not update directory access times.
        const NODIRATIME = k::MOUNT_ATTR_NODIRATIME as u64;
        /// Do not follow symlinks when resolving paths on this mount.
        const NOSYMFOLLOW = k::MOUNT_ATTR_NOSYMFOLLOW as u64;
    }
}

impl MountAttr {
    /// The three access-time policies.
    pub const ATIME_POLICY: MountAttr = MountAttr::NOATIME
        .union(MountAttr::STRICTATIME)
        .union(MountAttr::RELATIME);

    /// The kernel `attr_set`/`attr_clr` pair for setting `set` and clearing
    /// `clear`. Setting an access-time policy clears the others; clearing
    /// one goes back to relatime.
    pub(crate) fn to_kernel(set: MountAttr, clear: MountAttr) -> (u64, u64) {
        let plain = !MountAttr::ATIME_POLICY;
        let mut attr_set = (set & plain).bits();
        let mut attr_clr = (clear & plain).bits();
        let atime_bits = |a: MountAttr| {
            if a.contains(MountAttr::NOATIME) {
                k::MOUNT_ATTR_NOATIME as u64
            } else if a.contains(MountAttr::STRICTATIME) {
                k::MOUNT_ATTR_STRICTATIME as u64
            } else {
                k::MOUNT_ATTR_RELATIME as u64
            }
        };
        if set.intersects(MountAttr::ATIME_POLICY) {
            attr_clr |= k::MOUNT_ATTR__ATIME as u64;
            attr_set |= atime_bits(set);
        } else if clear.intersects(MountAttr::ATIME_POLICY) {
            attr_clr |= k::MOUNT_ATTR__ATIME as u64;
        }
        (attr_set, attr_clr)
    }

    /// The attributes encoded in a kernel `MOUNT_ATTR_*` value, as
    /// statmount reports them. The access-time policy always shows as
    /// exactly one of the three flags, whatever else `bits` holds (the
    /// bit saferoot uses for [`RELATIME`](Self::RELATIME) is not a kernel
    /// bit and is ignored).
    pub fn from_kernel(bits: u64) -> MountAttr {
        let mut a = MountAttr::from_bits_truncate(bits & !(k::MOUNT_ATTR__ATIME as u64))
            - MountAttr::ATIME_POLICY;
        a |= match bits & k::MOUNT_ATTR__ATIME as u64 {
            x if x == k::MOUNT_ATTR_NOATIME as u64 => MountAttr::NOATIME,
            x if x == k::MOUNT_ATTR_STRICTATIME as u64 => MountAttr::STRICTATIME,
            _ => MountAttr::RELATIME,
        };
        a
    }

    /// Whether the flags ask for more than one access-time policy.
    pub fn has_conflicting_atime(self) -> bool {
        (self & MountAttr::ATIME_POLICY).bits().count_ones() > 1
    }
}

impl fmt::Display for MountAttr {
    /// The mount options as `findmnt` spells them, comma-separated: `ro` or
    /// `rw` first, then the rest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = vec![if self.contains(MountAttr::RDONLY) {
            "ro"
        } else {
            "rw"
        }];
        for (flag, word) in [
            (MountAttr::NOSUID, "nosuid"),
            (MountAttr::NODEV, "nodev"),
            (MountAttr::NOEXEC, "noexec"),
            (MountAttr::NOATIME, "noatime"),
            (MountAttr::STRICTATIME, "strictatime"),
            (MountAttr::RELATIME, "relatime"),
            (MountAttr::NODIRATIME, "nodiratime"),
            (MountAttr::NOSYMFOLLOW, "nosymfollow"),
        ] {
            if self.contains(flag) {
                words.push(word);
            }
        }
        f.write_str(&words.join(","))
    }
}

/// The propagation type to give a mount (`mount_setattr`'s `propagation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// Neither receives nor sends mount events.
    Private,
    /// Receives mount events from its master, sends none.
    Slave,
    /// Sends and receives mount events within its peer group.
    Shared,
    /// Private, and cannot be bind-mounted.
    Unbindable,
}

impl Propagation {
    /// The kernel `MS_*` value.
    pub(crate) fn to_kernel(self) -> u64 {
        (match self {
            Propagation::Private => k::MS_PRIVATE,
            Propagation::Slave => k::MS_SLAVE,
            Propagation::Shared => k::MS_SHARED,
            Propagation::Unbindable => k::MS_UNBINDABLE,
        }) as u64
    }

    /// The name runc and mount(8) use: `private`, `slave`, `shared`,
    /// `unbindable`.
    pub fn name(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Slave => "slave",
            Propagation::Shared => "shared",
            Propagation::Unbindable => "unbindable",
        }
    }
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The propagation state of a mount as the mount table reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PropagationState {
    /// The peer group this mount shares events with, when shared.
    pub shared: Option<u64>,
    /// The peer group this mount receives events from, when a slave.
    pub master: Option<u64>,
    /// The nearest dominant peer group under the same root, when a slave
    /// of a group that is not visible here.
    pub propagate_from: Option<u64>,
    /// Whether the mount is unbindable.
    pub unbindable: bool,
}

impl PropagationState {
    /// The propagation type, as `findmnt -o PROPAGATION` names it: shared
    /// wins over slave (a mount can be both), then unbindable, then private.
    pub fn kind(&self) -> Propagation {
        if self.shared.is_some() {
            Propagation::Shared
        } else if self.master.is_some() {
            Propagation::Slave
        } else if self.unbindable {
            Propagation::Unbindable
        } else {
            Propagation::Private
        }
    }
}

impl fmt::Display for PropagationState {
    /// `shared:N`, `master:N`, `propagate_from:N`, `unbindable` or
    /// `private`, as in the optional fields of `/proc/self/mountinfo`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(g) = self.shared {
            words.push(format!("shared:{g}"));
        }
        if let Some(g) = self.master {
            words.push(format!("master:{g}"));
        }
        if let Some(g) = self.propagate_from {
            words.push(format!("propagate_from:{g}"));
        }
        if self.unbindable {
            words.push("unbindable".into());
        }
        if words.is_empty() {
            words.push("private".into());
        }
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atime_policy_encoding() {
        let (s, c) =
            MountAttr::to_kernel(MountAttr::NOATIME | MountAttr::RDONLY, MountAttr::empty());
        assert_eq!(s, (k::MOUNT_ATTR_NOATIME | k::MOUNT_ATTR_RDONLY) as u64);
        assert_eq!(c, k::MOUNT_ATTR__ATIME as u64);
        let (s, c) = MountAttr::to_kernel(MountAttr::RELATIME, MountAttr::NOSUID);
        assert_eq!(s, 0);
        assert_eq!(c, (k::MOUNT_ATTR__ATIME | k::MOUNT_ATTR_NOSUID) as u64);
        let (s, c) = MountAttr::to_kernel(MountAttr::empty(), MountAttr::STRICTATIME);
        assert_eq!((s, c), (0, k::MOUNT_ATTR__ATIME as u64));
        assert!((MountAttr::NOATIME | MountAttr::STRICTATIME).has_conflicting_atime());
        assert!(!MountAttr::NOATIME.has_conflicting_atime());
    }

    #[test]
    fn kernel_round_trip_and_display() {
        let a = MountAttr::from_kernel((k::MOUNT_ATTR_RDONLY | k::MOUNT_ATTR_NOATIME) as u64);
        assert_eq!(a, MountAttr::RDONLY | MountAttr::NOATIME);
        assert_eq!(MountAttr::from_kernel(0), MountAttr::RELATIME);
        assert_eq!(a.to_string(), "ro,noatime");
        assert_eq!(
            (MountAttr::NOSUID | MountAttr::RELATIME).to_string(),
            "rw,nosuid,relatime"
        );
    }

    #[test]
    fn propagation_state_kind() {
        let mut p = PropagationState::default();
        assert_eq!(p.kind(), Propagation::Private);
        assert_eq!(p.to_string(), "private");
        p.master = Some(3);
        assert_eq!(p.kind(), Propagation::Slave);
        p.shared = Some(7);
        assert_eq!(p.kind(), Propagation::Shared);
        assert_eq!(p.to_string(), "shared:7 master:3");
        let u = PropagationState {
            unbindable: true,
            ..Default::default()
        };
        assert_eq!(u.kind(), Propagation::Unbindable);
    }
}
