//! Kernel feature probes.
//!
//! Each feature saferoot uses beyond its 5.12 baseline is probed once, at the
//! first use, and the answer cached for the life of the process. A probe
//! never mounts anything visible and leaves no fd behind.
//!
//! For testing the older code paths on a new kernel, features can be turned
//! off: for tests with `disable` (feature `test-hooks`), or for a whole process with the
//! environment variable `SAFEROOT_DISABLE_FEATURES` (a comma-separated list
//! of [`Feature::name`]s, or `all-optional`), read once at the first probe.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use crate::sys;

/// A kernel feature saferoot probes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// `fsopen`, `fsconfig`, `fsmount`, `open_tree`, `move_mount` (Linux 5.2).
    MountApi,
    /// `openat2` with `RESOLVE_IN_ROOT` (Linux 5.6).
    Openat2,
    /// `mount_setattr` (Linux 5.12).
    MountSetattr,
    /// `MOUNT_ATTR_IDMAP`: idmapped mounts (Linux 5.12; each filesystem
    /// needs its own support as well).
    IdmappedMounts,
    /// `MOVE_MOUNT_BENEATH`: mount beneath the top mount, for atomic
    /// replacement (Linux 6.5).
    MoveMountBeneath,
    /// `statmount` (Linux 6.8).
    Statmount,
    /// `listmount` (Linux 6.8).
    Listmount,
    /// `move_mount` onto a mount inside a detached tree, which makes
    /// detached assembly possible (Linux 6.15).
    DetachedMountTargets,
    /// `open_tree_attr`: clone a tree and set its attributes in one call
    /// (Linux 6.15).
    OpenTreeAttr,
    /// overlayfs takes its layers as open directories (`fsconfig`
    /// `FSCONFIG_SET_FD` on `lowerdir+`, `datadir+`, `upperdir`, `workdir`;
    /// Linux 6.13), so no layer path is looked up by the kernel.
    OverlayLayerFds,
    /// `setxattrat`: extended attributes set by name in a directory fd
    /// without following symlinks, which reaches symlinks and device nodes
    /// (Linux 6.13).
    Setxattrat,
}

impl Feature {
    /// Every feature, in the order [`probe_all`] reports them.
    pub const ALL: [Feature; 11] = [
        Feature::MountApi,
        Feature::Openat2,
        Feature::MountSetattr,
        Feature::IdmappedMounts,
        Feature::MoveMountBeneath,
        Feature::Statmount,
        Feature::Listmount,
        Feature::DetachedMountTargets,
        Feature::OpenTreeAttr,
        Feature::OverlayLayerFds,
        Feature::Setxattrat,
    ];

    /// The short name used in reports and in `SAFEROOT_DISABLE_FEATURES`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::MountApi => "mount-api",
            Feature::Openat2 => "openat2",
            Feature::MountSetattr => "mount_setattr",
            Feature::IdmappedMounts => "idmapped-mounts",
            Feature::MoveMountBeneath => "move_mount-beneath",
            Feature::Statmount => "statmount",
            Feature::Listmount => "listmount",
            Feature::DetachedMountTargets => "detached-mount-targets",
            Feature::OpenTreeAttr => "open_tree_attr",
            Feature::OverlayLayerFds => "overlay-layer-fds",
            Feature::Setxattrat => "setxattrat",
        }
    }

    /// The first Linux release that has the feature, as "major.minor".
    pub fn min_kernel(self) -> &'static str {
        match self {
            Feature::MountApi => "5.2",
            Feature::Openat2 => "5.6",
            Feature::MountSetattr | Feature::IdmappedMounts => "5.12",
            Feature::MoveMountBeneath => "6.5",
            Feature::Statmount | Feature::Listmount => "6.8",
            Feature::OverlayLayerFds | Feature::Setxattrat => "6.13",
            Feature::DetachedMountTargets | Feature::OpenTreeAttr => "6.15",
        }
    }

    /// True for features below saferoot's minimum kernel (5.12), which are
    /// required rather than optional.
    pub fn is_baseline(self) -> bool {
        matches!(
            self,
            Feature::MountApi | Feature::Openat2 | Feature::MountSetattr | Feature::IdmappedMounts
        )
    }

    /// Looks a feature up by its [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }

    fn index(self) -> usize {
        Feature::ALL
            .iter()
            .position(|f| *f == self)
            .unwrap_or_default()
    }

    fn probe(self) -> bool {
        match self {
            Feature::MountApi => sys::probe::mount_api(),
            Feature::Openat2 => sys::probe::openat2(),
            Feature::MountSetattr | Feature::IdmappedMounts => sys::probe::mount_setattr(),
            Feature::MoveMountBeneath => sys::probe::move_mount_beneath(),
            Feature::Statmount => sys::probe::statmount(),
            Feature::Listmount => sys::probe::listmount(),
            Feature::OpenTreeAttr => sys::probe::open_tree_attr(),
            Feature::DetachedMountTargets => sys::probe::detached_mount_targets(),
            Feature::OverlayLayerFds => sys::probe::overlay_layer_fds(),
            Feature::Setxattrat => sys::probe::setxattrat(),
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const UNKNOWN: u8 = 0;
const PRESENT: u8 = 1;
const ABSENT: u8 = 2;
const DISABLED: u8 = 3;

static STATE: [AtomicU8; Feature::ALL.len()] =
    [const { AtomicU8::new(UNKNOWN) }; Feature::ALL.len()];
static ENV_READ: Once = Once::new();

fn read_env_overrides() {
    ENV_READ.call_once(|| {
        let Ok(list) = std::env::var("SAFEROOT_DISABLE_FEATURES") else {
            return;
        };
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all-optional" {
                for f in Feature::ALL.into_iter().filter(|f| !f.is_baseline()) {
                    set_disabled(f);
                }
            } else if let Some(f) = Feature::from_name(name) {
                set_disabled(f);
            } else {
                log::warn!("SAFEROOT_DISABLE_FEATURES: unknown feature {name:?} ignored");
            }
        }
    });
}

/// Whether the running kernel has `feature` (and it was not disabled).
/// Probes at the first call and caches the answer.
pub fn has(feature: Feature) -> bool {
    read_env_overrides();
    let slot = &STATE[feature.index()];
    match slot.load(Ordering::Acquire) {
        PRESENT => true,
        ABSENT | DISABLED => false,
        _ => {
            let present = feature.probe();
            log::debug!("kernel feature {feature}: {present}");
            let value = if present { PRESENT } else { ABSENT };
            // Another thread may have disabled it meanwhile; keep that.
            let _ = slot.compare_exchange(UNKNOWN, value, Ordering::AcqRel, Ordering::Acquire);
            slot.load(Ordering::Acquire) == PRESENT
        }
    }
}

/// Whether assembly may count on [`Feature::DetachedMountTargets`] without
/// its probe having run. The probe makes two tmpfs mounts and moves one
/// onto the other; dropping them afterwards waits for an RCU grace period,
/// which a sandbox's start would pay each time. The feature came with
/// Linux 6.15, as did `open_tree_attr`, whose probe is one call that makes
/// nothing; so until the feature has been probed (or turned off), the
/// presence of `open_tree_attr` stands for it. Assembly checks the guess
/// where it would go wrong: a refused move onto the detached tree runs the
/// real probe (`has(Feature::DetachedMountTargets)`).
pub(crate) fn detached_targets_expected() -> bool {
    read_env_overrides();
    match STATE[Feature::DetachedMountTargets.index()].load(Ordering::Acquire) {
        PRESENT => true,
        ABSENT | DISABLED => false,
        _ => has(Feature::OpenTreeAttr),
    }
}

/// `Ok(())` when the kernel has `feature`, otherwise
/// [`crate::ErrorKind::Unsupported`] naming it.
pub fn require(feature: Feature) -> crate::Result<()> {
    if has(feature) {
        Ok(())
    } else {
        Err(crate::Error::unsupported(feature))
    }
}

/// Treats `feature` as missing for the rest of the process, so that the code
/// paths for older kernels can be exercised on a new one (test-only: cargo
/// feature `test-hooks`; programs use `SAFEROOT_DISABLE_FEATURES`).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn disable(feature: Feature) {
    set_disabled(feature);
}

fn set_disabled(feature: Feature) {
    STATE[feature.index()].store(DISABLED, Ordering::Release);
}

/// Whether `feature` was turned off with `disable` (tests) or
/// `SAFEROOT_DISABLE_FEATURES`.
pub fn is_disabled(feature: Feature) -> bool {
    read_env_overrides();
    STATE[feature.index()].load(Ordering::Acquire) == DISABLED
}

/// One line of a feature report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureStatus {
    /// The feature.
    pub feature: Feature,
    /// Whether it can be used.
    pub available: bool,
    /// Whether it was turned off by a setting (then `available` is false).
    pub disabled: bool,
}

/// Probes every feature and reports each.
pub fn probe_all() -> Vec<FeatureStatus> {
    Feature::ALL
        .into_iter()
        .map(|feature| FeatureStatus {
            feature,
            available: has(feature),
            disabled: is_disabled(feature),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_kernels_are_ordered() {
        for f in Feature::ALL {
            assert_eq!(Feature::from_name(f.name()), Some(f));
            assert_eq!(Feature::ALL[f.index()], f);
        }
        assert_eq!(Feature::from_name("nonsense"), None);
        assert_eq!(Feature::MoveMountBeneath.min_kernel(), "6.5");
        assert!(Feature::MountSetattr.is_baseline());
        assert!(!Feature::Statmount.is_baseline());
    }

    #[test]
    fn baseline_features_present_on_supported_kernels() {
        // The machines saferoot is tested on run Linux >= 5.12.
        for f in Feature::ALL.into_iter().filter(|f| f.is_baseline()) {
            assert!(has(f), "{f} missing");
            assert!(require(f).is_ok());
        }
    }
}
