package saferoot

/*
#include <stdlib.h>
#include <saferoot.h>
*/
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"
)

// Feature is a kernel feature saferoot probes for.
type Feature int

// The features.
const (
	FeatureMountAPI             Feature = C.SAFEROOT_FEATURE_MOUNT_API
	FeatureOpenat2              Feature = C.SAFEROOT_FEATURE_OPENAT2
	FeatureMountSetattr         Feature = C.SAFEROOT_FEATURE_MOUNT_SETATTR
	FeatureIdmappedMounts       Feature = C.SAFEROOT_FEATURE_IDMAPPED_MOUNTS
	FeatureMoveMountBeneath     Feature = C.SAFEROOT_FEATURE_MOVE_MOUNT_BENEATH
	FeatureStatmount            Feature = C.SAFEROOT_FEATURE_STATMOUNT
	FeatureListmount            Feature = C.SAFEROOT_FEATURE_LISTMOUNT
	FeatureDetachedMountTargets Feature = C.SAFEROOT_FEATURE_DETACHED_MOUNT_TARGETS
	FeatureOpenTreeAttr         Feature = C.SAFEROOT_FEATURE_OPEN_TREE_ATTR
	FeatureOverlayLayerFds      Feature = C.SAFEROOT_FEATURE_OVERLAY_LAYER_FDS
	FeatureSetxattrat           Feature = C.SAFEROOT_FEATURE_SETXATTRAT
)

// AllFeatures lists every feature this package knows, in report order.
var AllFeatures = []Feature{
	FeatureMountAPI, FeatureOpenat2, FeatureMountSetattr, FeatureIdmappedMounts,
	FeatureMoveMountBeneath, FeatureStatmount, FeatureListmount,
	FeatureDetachedMountTargets, FeatureOpenTreeAttr, FeatureOverlayLayerFds,
	FeatureSetxattrat,
}

// Available reports whether the running kernel has the feature (probed
// once per process, then cached). An unknown feature is not available.
func (f Feature) Available() bool {
	return C.saferoot_has_feature(C.int(f)) == 1
}

// String is the feature's short name, as `saferoot features` prints it.
func (f Feature) String() string {
	if p := C.saferoot_feature_name(C.int(f)); p != nil {
		return C.GoString(p)
	}
	return fmt.Sprintf("feature %d", int(f))
}

// MinKernel is the first Linux release with the feature, "MAJOR.MINOR",
// or "" for an unknown feature.
func (f Feature) MinKernel() string {
	if p := C.saferoot_feature_min_kernel(C.int(f)); p != nil {
		return C.GoString(p)
	}
	return ""
}

// FeatureByName looks a feature up by its short name.
func FeatureByName(name string) (Feature, error) {
	c, err := cString("feature name", name)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(c))
	n := C.saferoot_feature_from_name(c)
	if n < 0 {
		errno := syscall.Errno(-n)
		kind := KindInvalidInput
		if errno == syscall.ENOENT {
			kind = KindNotFound
		}
		return 0, &Error{Errno: errno, Kind: kind, Msg: fmt.Sprintf("unknown feature %q", name)}
	}
	return Feature(n), nil
}
