package saferoot

/*
#cgo pkg-config: saferoot
#include <stdlib.h>
#include <saferoot.h>
*/
import "C"

import (
	"os"
	"strings"
	"unsafe"
)

// cString copies s into C memory; the caller frees it with freeString.
// A string with a NUL byte cannot be passed to C and is refused here.
func cString(what, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalidInput(what + " contains a NUL byte")
	}
	return C.CString(s), nil
}

// cStringOpt is cString with "" meaning NULL.
func cStringOpt(what, s string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return cString(what, s)
}

func freeString(p *C.char) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}

// withFile runs fn with the fd of f, which stays open (and owned by f)
// during the call.
func withFile(what string, f *os.File, fn func(fd C.int) error) error {
	if f == nil {
		return invalidInput(what + " is nil")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(C.int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Version is the version of the C library in use, "MAJOR.MINOR.PATCH".
func Version() string {
	return C.GoString(C.saferoot_version())
}

// ABIVersion is the ABI version of the header this package was built
// against; it changes with the soname (libsaferoot.so.ABIVersion).
const ABIVersion = C.SAFEROOT_ABI_VERSION
