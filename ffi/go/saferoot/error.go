package saferoot

/*
#include <saferoot.h>
*/
import "C"

import (
	"fmt"
	"syscall"
)

// ErrorKind is what went wrong, coarsely. It is an error itself, so that
// errors.Is(err, saferoot.KindUnsupported) works on any error the package
// returns. New kinds may appear in later releases.
type ErrorKind int

// The kinds of error.
const (
	// KindNotFound: a path, a mount or a source does not exist (ENOENT).
	KindNotFound ErrorKind = C.SAFEROOT_ERRKIND_NOT_FOUND
	// KindAlreadyExists: the thing to create exists already (EEXIST).
	KindAlreadyExists ErrorKind = C.SAFEROOT_ERRKIND_ALREADY_EXISTS
	// KindInvalidInput: refused input (a relative in-root path, a NUL
	// byte, invalid UTF-8, unknown flags or options); nothing changed.
	KindInvalidInput ErrorKind = C.SAFEROOT_ERRKIND_INVALID_INPUT
	// KindUnsupported: the running kernel lacks a feature the operation
	// needs. saferoot never falls back to path-based mount(2).
	KindUnsupported ErrorKind = C.SAFEROOT_ERRKIND_UNSUPPORTED
	// KindSafetyViolation: an attack, or something indistinguishable from
	// one: a path escaped the root, an inode was swapped.
	KindSafetyViolation ErrorKind = C.SAFEROOT_ERRKIND_SAFETY_VIOLATION
	// KindPermission: the kernel refused for lack of privilege.
	KindPermission ErrorKind = C.SAFEROOT_ERRKIND_PERMISSION
	// KindOS: any other error reported by the kernel.
	KindOS ErrorKind = C.SAFEROOT_ERRKIND_OS
	// KindInternal: a bug in saferoot, caught at the C boundary.
	KindInternal ErrorKind = C.SAFEROOT_ERRKIND_INTERNAL
)

var kindNames = map[ErrorKind]string{
	KindNotFound:        "not found",
	KindAlreadyExists:   "already exists",
	KindInvalidInput:    "invalid input",
	KindUnsupported:     "unsupported",
	KindSafetyViolation: "safety violation",
	KindPermission:      "permission denied",
	KindOS:              "os error",
	KindInternal:        "internal error",
}

// String names the kind.
func (k ErrorKind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("error kind %d", int(k))
}

// Error makes a kind usable as an errors.Is target.
func (k ErrorKind) Error() string { return "saferoot: " + k.String() }

// Error is the error of every fallible function of the package.
//
// It unwraps to its syscall.Errno, so errors.Is(err, syscall.ENOENT) and
// errors.Is(err, fs.ErrNotExist) work, and it matches its ErrorKind:
// errors.Is(err, saferoot.KindSafetyViolation).
type Error struct {
	// Errno is the error number that best describes the error.
	Errno syscall.Errno
	// Kind is the coarse kind.
	Kind ErrorKind
	// Msg names the operation, the path and the cause.
	Msg string
	// Path is the in-root path the operation was working on, or "".
	Path string
}

func (e *Error) Error() string { return "saferoot: " + e.Msg }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// Is matches an ErrorKind target against the error's kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(ErrorKind)
	return ok && k == e.Kind
}

func invalidInput(msg string) *Error {
	return &Error{Errno: syscall.EINVAL, Kind: KindInvalidInput, Msg: msg}
}

func errClosed(what string) *Error {
	return invalidInput("use of a closed " + what)
}

// takeError turns a C error into an *Error and frees it. rc is the
// function's -errno, used when cerr is NULL.
func takeError(cerr *C.saferoot_error, rc C.int) error {
	if cerr == nil {
		errno := syscall.Errno(-rc)
		if rc >= 0 {
			errno = syscall.EIO
		}
		return &Error{Errno: errno, Kind: KindOS, Msg: errno.Error()}
	}
	defer C.saferoot_error_free(cerr)
	e := &Error{
		Errno: syscall.Errno(C.saferoot_error_errno(cerr)),
		Kind:  ErrorKind(C.saferoot_error_kind(cerr)),
		Msg:   C.GoString(C.saferoot_error_message(cerr)),
	}
	if p := C.saferoot_error_path(cerr); p != nil {
		e.Path = C.GoString(p)
	}
	return e
}
