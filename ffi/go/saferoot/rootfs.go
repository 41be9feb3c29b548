package saferoot

/*
#include <stdlib.h>
#include <saferoot.h>
*/
import "C"

import (
	"os"
	"runtime"
	"sync"
)

// Strategy is how a root is assembled.
type Strategy int

// Strategies.
const (
	// StrategyAuto: detached when the kernel can (Linux 6.15), else in place.
	StrategyAuto Strategy = C.SAFEROOT_STRATEGY_AUTO
	// StrategyDetached: build the tree detached and attach it at once; on
	// failure nothing was ever visible.
	StrategyDetached Strategy = C.SAFEROOT_STRATEGY_DETACHED
	// StrategyInPlace: attach mounts one by one onto an attached clone of
	// the rootfs; on failure the clone is detached.
	StrategyInPlace Strategy = C.SAFEROOT_STRATEGY_IN_PLACE
)

// EnterMethod is how an assembled root becomes the process's root.
type EnterMethod int

// Enter methods.
const (
	// EnterPivotRoot: pivot_root through the root's fd; the host's tree is
	// detached from the namespace.
	EnterPivotRoot EnterMethod = C.SAFEROOT_ENTER_PIVOT_ROOT
	// EnterMoveRoot: move the root over / and chroot, for when pivot_root
	// is impossible.
	EnterMoveRoot EnterMethod = C.SAFEROOT_ENTER_MOVE_ROOT
	// EnterChroot: plain chroot; the host's tree stays in the namespace.
	EnterChroot EnterMethod = C.SAFEROOT_ENTER_CHROOT
)

// AssembleOptions configure AssembleOCI, AssembleBundle and AssembleSpec.
// The zero value (or nil) means the defaults.
type AssembleOptions struct {
	Strategy Strategy
	// Console, when set, is the pty peer bound onto /dev/console. It
	// stays the caller's.
	Console *os.File
	// AllowHostNamespace turns off the refusal to run in pid 1's mount
	// namespace (where changing the propagation of / affects the host).
	AllowHostNamespace bool
}

// withOptions runs fn with the C form of opts (the console fd held open
// for the call).
func withOptions(opts *AssembleOptions, fn func(o *C.struct_saferoot_assemble_options) error) error {
	var o C.struct_saferoot_assemble_options
	o.size = C.size_t(C.sizeof_struct_saferoot_assemble_options)
	if opts == nil {
		return fn(&o)
	}
	o.strategy = C.uint32_t(opts.Strategy)
	if opts.AllowHostNamespace {
		o.flags |= C.SAFEROOT_ASSEMBLE_ALLOW_HOST_NAMESPACE
	}
	if opts.Console == nil {
		return fn(&o)
	}
	return withFile("console", opts.Console, func(fd C.int) error {
		o.flags |= C.SAFEROOT_ASSEMBLE_CONSOLE
		o.console_fd = fd
		return fn(&o)
	})
}

// Rootfs is a container root that has been assembled and attached over
// its rootfs directory, ready to be entered. Close leaves the mounts
// where they are; Detach takes them down.
type Rootfs struct {
	mu sync.Mutex
	p  *C.saferoot_rootfs
}

func newRootfs(p *C.saferoot_rootfs) *Rootfs {
	r := &Rootfs{p: p}
	runtime.SetFinalizer(r, (*Rootfs).Close)
	return r
}

// ValidateOCI checks an OCI runtime-spec config.json (its text) and plans
// its root without changing anything. Relative paths are read from
// bundleDir.
func ValidateOCI(configJSON, bundleDir string) error {
	j, err := cString("config", configJSON)
	if err != nil {
		return err
	}
	defer freeString(j)
	b, err := cString("bundle", bundleDir)
	if err != nil {
		return err
	}
	defer freeString(b)
	var cerr *C.saferoot_error
	if rc := C.saferoot_oci_validate(j, b, &cerr); rc < 0 {
		return takeError(cerr, rc)
	}
	return nil
}

// AssembleOCI assembles the root filesystem described by an OCI
// runtime-spec config.json (its text); relative paths are read from
// bundleDir.
//
// Call it as root in a mount namespace of its own, on a locked OS thread
// that will also enter the root (see the package documentation): like
// runc, it changes the propagation of / first. The spec is checked before
// anything changes; a failure later leaves no mount and no fd behind.
func AssembleOCI(configJSON, bundleDir string, opts *AssembleOptions) (*Rootfs, error) {
	j, err := cString("config", configJSON)
	if err != nil {
		return nil, err
	}
	defer freeString(j)
	b, err := cString("bundle", bundleDir)
	if err != nil {
		return nil, err
	}
	defer freeString(b)
	return assembleWith(opts, func(o *C.struct_saferoot_assemble_options, cerr **C.saferoot_error) *C.saferoot_rootfs {
		return C.saferoot_rootfs_assemble_oci(j, b, o, cerr)
	})
}

// AssembleBundle is AssembleOCI with the config.json of the bundle
// directory bundleDir (opened inside it: a config.json leading out of the
// bundle is refused).
func AssembleBundle(bundleDir string, opts *AssembleOptions) (*Rootfs, error) {
	b, err := cString("bundle", bundleDir)
	if err != nil {
		return nil, err
	}
	defer freeString(b)
	return assembleWith(opts, func(o *C.struct_saferoot_assemble_options, cerr **C.saferoot_error) *C.saferoot_rootfs {
		return C.saferoot_rootfs_assemble_bundle(b, o, cerr)
	})
}

// AssembleSpec assembles the root filesystem described by specJSON:
// saferoot's own RootfsSpec as JSON (camelCase field names, absolute
// paths; see docs/c-api.md), not an OCI config. A JSON error is a
// KindInvalidInput error whose message has the line and column; a field
// the spec does not have is refused, not ignored.
//
// As for AssembleOCI: call it as root in a mount namespace of its own, on
// a locked OS thread that will also enter the root. The spec is checked
// before anything changes; a failure later leaves no mount and no fd
// behind.
func AssembleSpec(specJSON string, opts *AssembleOptions) (*Rootfs, error) {
	j, err := cString("spec", specJSON)
	if err != nil {
		return nil, err
	}
	defer freeString(j)
	return assembleWith(opts, func(o *C.struct_saferoot_assemble_options, cerr **C.saferoot_error) *C.saferoot_rootfs {
		return C.saferoot_rootfs_assemble_spec(j, o, cerr)
	})
}

// PlanJSON checks a spec and returns its plan as one line of JSON: every
// mount assembling it would make, in order, the devices, masked and
// read-only paths, the propagation. Nothing on the system changes; use it
// for dry runs and audits.
//
// With isOCI, specJSON is an OCI runtime-spec config.json (its text) whose
// relative paths are read from bundleDir, as in AssembleOCI. Without it,
// specJSON is a RootfsSpec, as for AssembleSpec, and bundleDir must be "".
func PlanJSON(specJSON string, isOCI bool, bundleDir string) (string, error) {
	j, err := cString("spec", specJSON)
	if err != nil {
		return "", err
	}
	defer freeString(j)
	var b *C.char
	isOCIArg := C.int(0)
	if isOCI {
		isOCIArg = 1
		b, err = cString("bundle", bundleDir)
	} else {
		// "" is NULL; anything else is refused by the library.
		b, err = cStringOpt("bundle", bundleDir)
	}
	if err != nil {
		return "", err
	}
	defer freeString(b)
	var cerr *C.saferoot_error
	s := C.saferoot_plan_json(j, isOCIArg, b, &cerr)
	if s == nil {
		return "", takeError(cerr, 0)
	}
	defer C.saferoot_string_free(s)
	return C.GoString(s), nil
}

func (r *Rootfs) call(fn func(p *C.saferoot_rootfs, cerr **C.saferoot_error) C.int) error {
	if r == nil {
		return errClosed("Rootfs")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return errClosed("Rootfs")
	}
	var cerr *C.saferoot_error
	if rc := fn(r.p, &cerr); rc < 0 {
		return takeError(cerr, rc)
	}
	return nil
}

// Root returns a Root for working inside the assembled root.
func (r *Rootfs) Root() (*Root, error) {
	var root *C.saferoot_root
	err := r.call(func(p *C.saferoot_rootfs, cerr **C.saferoot_error) C.int {
		root = C.saferoot_rootfs_root(p, cerr)
		if root == nil {
			return -1
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	return newRoot(root), nil
}

// Fd is the fd of the root mount, owned by the Rootfs (do not close it),
// or -1 once entered, detached or closed.
func (r *Rootfs) Fd() int {
	fd := -1
	_ = r.call(func(p *C.saferoot_rootfs, _ **C.saferoot_error) C.int {
		fd = int(C.saferoot_rootfs_fd(p))
		return 0
	})
	if fd < 0 {
		return -1
	}
	return fd
}

// Strategy is the strategy that was used (StrategyDetached or
// StrategyInPlace), or -1 once entered, detached or closed.
func (r *Rootfs) Strategy() Strategy {
	s := -1
	_ = r.call(func(p *C.saferoot_rootfs, _ **C.saferoot_error) C.int {
		s = int(C.saferoot_rootfs_strategy(p))
		return 0
	})
	if s < 0 {
		return -1
	}
	return Strategy(s)
}

// Detach takes the whole assembled root down again.
func (r *Rootfs) Detach() error {
	return r.call(func(p *C.saferoot_rootfs, cerr **C.saferoot_error) C.int {
		return C.saferoot_rootfs_detach(p, cerr)
	})
}

// Enter makes the assembled root the root of the calling thread's fs
// context with method: of the whole process, unless the thread unshared
// CLONE_FS (see the package documentation). Then stdio pointing at the
// host's /dev/null is reopened on the container's, the working directory
// is created and entered, the umask set. Afterwards only Close is left.
func (r *Rootfs) Enter(method EnterMethod) error {
	return r.call(func(p *C.saferoot_rootfs, cerr **C.saferoot_error) C.int {
		return C.saferoot_rootfs_enter(p, C.uint32_t(method), cerr)
	})
}

// Close frees the handle; the assembled mounts stay. Closing twice is
// harmless.
func (r *Rootfs) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		C.saferoot_rootfs_free(r.p)
		r.p = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// assembleWith runs one of the C assemble calls with opts and wraps the
// root it returns, or turns its error into a Go error.
func assembleWith(opts *AssembleOptions, call func(o *C.struct_saferoot_assemble_options, cerr **C.saferoot_error) *C.saferoot_rootfs) (*Rootfs, error) {
	var p *C.saferoot_rootfs
	err := withOptions(opts, func(o *C.struct_saferoot_assemble_options) error {
		var cerr *C.saferoot_error
		p = call(o, &cerr)
		if p == nil {
			return takeError(cerr, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return newRootfs(p), nil
}
