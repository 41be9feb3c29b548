//! Kernel feature probes.

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use saferoot::features::{self, Feature};

use crate::error::ffi_plain;
use crate::util::str_arg;

/// A kernel feature saferoot probes for. Values are stable; new features
/// get new values.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum saferoot_feature {
    /// `fsopen`, `fsconfig`, `fsmount`, `open_tree`, `move_mount` (Linux 5.2).
    SAFEROOT_FEATURE_MOUNT_API = 1,
    /// `openat2` with `RESOLVE_IN_ROOT` (Linux 5.6).
    SAFEROOT_FEATURE_OPENAT2 = 2,
    /// `mount_setattr` (Linux 5.12).
    SAFEROOT_FEATURE_MOUNT_SETATTR = 3,
    /// Idmapped mounts, `MOUNT_ATTR_IDMAP` (Linux 5.12).
    SAFEROOT_FEATURE_IDMAPPED_MOUNTS = 4,
    /// `MOVE_MOUNT_BENEATH` (Linux 6.5).
    SAFEROOT_FEATURE_MOVE_MOUNT_BENEATH = 5,
    /// `statmount` (Linux 6.8).
    SAFEROOT_FEATURE_STATMOUNT = 6,
    /// `listmount` (Linux 6.8).
    SAFEROOT_FEATURE_LISTMOUNT = 7,
    /// `move_mount` onto a mount in a detached tree (Linux 6.15).
    SAFEROOT_FEATURE_DETACHED_MOUNT_TARGETS = 8,
    /// `open_tree_attr` (Linux 6.15).
    SAFEROOT_FEATURE_OPEN_TREE_ATTR = 9,
    /// overlayfs layers given as fds (`FSCONFIG_SET_FD` on `lowerdir+`,
    /// `upperdir`, `workdir`; Linux 6.13).
    SAFEROOT_FEATURE_OVERLAY_LAYER_FDS = 10,
    /// Extended attributes set by name in a directory fd without following
    /// symlinks, so on symlinks and device nodes too (`setxattrat`; Linux
    /// 6.13).
    SAFEROOT_FEATURE_SETXATTRAT = 11,
}

/// The C values with the Rust features they stand for, and the features'
/// names and first kernels as static C strings (checked against the Rust
/// library's by a test, so no string is ever allocated for C).
const TABLE: [(c_int, Feature, &CStr, &CStr); 11] = [
    (
        saferoot_feature::SAFEROOT_FEATURE_MOUNT_API as c_int,
        Feature::MountApi,
        c"mount-api",
        c"5.2",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_OPENAT2 as c_int,
        Feature::Openat2,
        c"openat2",
        c"5.6",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_MOUNT_SETATTR as c_int,
        Feature::MountSetattr,
        c"mount_setattr",
        c"5.12",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_IDMAPPED_MOUNTS as c_int,
        Feature::IdmappedMounts,
        c"idmapped-mounts",
        c"5.12",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_MOVE_MOUNT_BENEATH as c_int,
        Feature::MoveMountBeneath,
        c"move_mount-beneath",
        c"6.5",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_STATMOUNT as c_int,
        Feature::Statmount,
        c"statmount",
        c"6.8",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_LISTMOUNT as c_int,
        Feature::Listmount,
        c"listmount",
        c"6.8",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_DETACHED_MOUNT_TARGETS as c_int,
        Feature::DetachedMountTargets,
        c"detached-mount-targets",
        c"6.15",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_OPEN_TREE_ATTR as c_int,
        Feature::OpenTreeAttr,
        c"open_tree_attr",
        c"6.15",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_OVERLAY_LAYER_FDS as c_int,
        Feature::OverlayLayerFds,
        c"overlay-layer-fds",
        c"6.13",
    ),
    (
        saferoot_feature::SAFEROOT_FEATURE_SETXATTRAT as c_int,
        Feature::Setxattrat,
        c"setxattrat",
        c"6.13",
    ),
];

fn lookup(feature: c_int) -> Option<&'static (c_int, Feature, &'static CStr, &'static CStr)> {
    TABLE.iter().find(|(n, ..)| *n == feature)
}

/// Whether the running kernel has `feature` (a `saferoot_feature` value):
/// 1 if it has, 0 if not (or the feature was disabled with the environment
/// variable `SAFEROOT_DISABLE_FEATURES`), `-EINVAL` for an unknown value.
/// Probes once per process and caches the answer. Thread-safe.
#[no_mangle]
pub extern "C" fn saferoot_has_feature(feature: c_int) -> c_int {
    ffi_plain(-libc::EINVAL, || {
        Ok(match lookup(feature) {
            Some((_, f, ..)) => c_int::from(features::has(*f)),
            None => -libc::EINVAL,
        })
    })
}

/// The `saferoot_feature` value whose short name (as `saferoot features`
/// prints it, e.g. `"statmount"`, `"move_mount-beneath"`) is `name`;
/// `-ENOENT` for an unknown name, `-EINVAL` for NULL or invalid UTF-8.
#[no_mangle]
pub unsafe extern "C" fn saferoot_feature_from_name(name: *const c_char) -> c_int {
    ffi_plain(-libc::EINVAL, || {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = match unsafe { str_arg(name, "name") } {
            Ok(n) => n,
            Err(_) => return Ok(-libc::EINVAL),
        };
        Ok(TABLE
            .iter()
            .find(|(.., c_name, _)| c_name.to_bytes() == name.as_bytes())
            .map_or(-libc::ENOENT, |(n, ..)| *n))
    })
}

/// The short name of `feature`: a static string, never freed. NULL for an
/// unknown value.
#[no_mangle]
pub extern "C" fn saferoot_feature_name(feature: c_int) -> *const c_char {
    ffi_plain(ptr::null(), || {
        Ok(lookup(feature).map_or(ptr::null(), |(.., name, _)| name.as_ptr()))
    })
}

/// The first Linux release with `feature`, as `"MAJOR.MINOR"`: a static
/// string, never freed. NULL for an unknown value.
#[no_mangle]
pub extern "C" fn saferoot_feature_min_kernel(feature: c_int) -> *const c_char {
    ffi_plain(ptr::null(), || {
        Ok(lookup(feature).map_or(ptr::null(), |(.., kernel)| kernel.as_ptr()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rust_feature_has_a_c_value() {
        for f in Feature::ALL {
            let (_, _, name, kernel) = TABLE.iter().find(|(_, g, ..)| *g == f).expect("missing");
            assert_eq!(name.to_str().unwrap(), f.name());
            assert_eq!(kernel.to_str().unwrap(), f.min_kernel());
        }
        assert_eq!(saferoot_has_feature(0), -libc::EINVAL);
        assert_eq!(saferoot_has_feature(1), 1);
        // SAFETY: static strings.
        unsafe {
            assert_eq!(saferoot_feature_from_name(c"statmount".as_ptr()), 6);
            assert_eq!(saferoot_feature_from_name(c"nope".as_ptr()), -libc::ENOENT);
            assert_eq!(saferoot_feature_from_name(ptr::null()), -libc::EINVAL);
            assert_eq!(
                CStr::from_ptr(saferoot_feature_name(5)).to_str().unwrap(),
                "move_mount-beneath"
            );
            assert_eq!(
                CStr::from_ptr(saferoot_feature_min_kernel(9))
                    .to_str()
                    .unwrap(),
                "6.15"
            );
        }
        assert!(saferoot_feature_name(42).is_null());
    }
}
