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
	"syscall"
	"unsafe"
)

// Scope is how much of the mounts at and below a host path a HostView
// takes.
type Scope int

// Scopes.
const (
	// ScopeMount: only the mount at the path, as a non-recursive bind.
	ScopeMount Scope = C.SAFEROOT_SCOPE_MOUNT
	// ScopeTree: the mount at the path with every mount below it, as a
	// recursive bind.
	ScopeTree Scope = C.SAFEROOT_SCOPE_TREE
)

// MinimalNamespace is a mount namespace whose only mount is an empty,
// read-only tmpfs. A container started from a private copy of it, with a
// HostView of the host objects it needs, never holds the host's other
// mounts, so its start costs the same on a host with 100 mounts or 20000
// (unshare(CLONE_NEWNS) copies every mount of the caller's namespace).
//
// Make one with CreateMinimalNamespace (once; Pin keeps it for other
// processes, which OpenMinimalNamespace it), then per container: open a
// HostView in the caller's namespace, Enter a copy of the namespace on a
// goroutine of its own, Install the view. A MinimalNamespace may be used
// from several goroutines at once. Close it when done (a finalizer closes
// a forgotten one); a pinned namespace lives on at its pin.
type MinimalNamespace struct {
	mu sync.RWMutex
	p  *C.saferoot_minimal_ns
}

func newMinimalNamespace(p *C.saferoot_minimal_ns) *MinimalNamespace {
	n := &MinimalNamespace{p: p}
	runtime.SetFinalizer(n, (*MinimalNamespace).Close)
	return n
}

// use returns the C handle for one call, with the read lock held until
// done is called, so Close cannot free it meanwhile.
func (n *MinimalNamespace) use() (p *C.saferoot_minimal_ns, done func(), err error) {
	if n == nil {
		return nil, nil, errClosed("MinimalNamespace")
	}
	n.mu.RLock()
	if n.p == nil {
		n.mu.RUnlock()
		return nil, nil, errClosed("MinimalNamespace")
	}
	return n.p, n.mu.RUnlock, nil
}

// CreateMinimalNamespace makes a new minimal namespace. This copies the
// caller's mounts once (a helper thread unshares, makes a small tmpfs its
// root and detaches the rest); no namespace of the caller changes.
func CreateMinimalNamespace() (*MinimalNamespace, error) {
	var cerr *C.saferoot_error
	p := C.saferoot_minimal_ns_create(&cerr)
	if p == nil {
		return nil, takeError(cerr, 0)
	}
	return newMinimalNamespace(p), nil
}

// OpenMinimalNamespace opens the namespace pinned at the host path path
// by Pin (any nsfs file of a mount namespace is accepted). A file that is
// not a mount namespace is an invalid-input error.
func OpenMinimalNamespace(path string) (*MinimalNamespace, error) {
	c, err := cString("path", path)
	if err != nil {
		return nil, err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	p := C.saferoot_minimal_ns_open(c, &cerr)
	if p == nil {
		return nil, takeError(cerr, 0)
	}
	return newMinimalNamespace(p), nil
}

// MinimalNamespaceFromFile makes a MinimalNamespace of the mount
// namespace file f (an nsfs file, as /proc/PID/ns/mnt). f stays the
// caller's: the namespace keeps its own duplicate of the fd.
func MinimalNamespaceFromFile(f *os.File) (*MinimalNamespace, error) {
	var p *C.saferoot_minimal_ns
	err := withFile("file", f, func(fd C.int) error {
		var cerr *C.saferoot_error
		p = C.saferoot_minimal_ns_from_fd(fd, &cerr)
		if p == nil {
			return takeError(cerr, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return newMinimalNamespace(p), nil
}

// Fd is the namespace's nsfs fd. It stays owned by the MinimalNamespace
// and is valid until Close; do not close it. -1 after Close.
func (n *MinimalNamespace) Fd() int {
	p, done, err := n.use()
	if err != nil {
		return -1
	}
	defer done()
	return int(C.saferoot_minimal_ns_fd(p))
}

// Pin keeps the namespace alive at the host path path, which must not
// exist (its directory must): a new empty file is made there and the
// namespace bound onto it, in the calling thread's mount namespace. Undo
// with unmount and remove. On failure nothing is left at path.
//
// The kernel refuses (ELOOP) to pin a namespace whose id is not above
// that of the calling thread's namespace. Linux 6.18 hands out namespace
// ids from per-CPU batches, so a namespace made just now on one CPU can
// have a lower id than one made earlier on another: then make another
// with the calling thread (locked) bound to another CPU
// (sched_setaffinity; the library's helper thread inherits it) and pin
// that.
func (n *MinimalNamespace) Pin(path string) error {
	p, done, err := n.use()
	if err != nil {
		return err
	}
	defer done()
	c, err := cString("path", path)
	if err != nil {
		return err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	if rc := C.saferoot_minimal_ns_pin(p, c, &cerr); rc < 0 {
		return takeError(cerr, rc)
	}
	return nil
}

// Enter moves the calling goroutine's OS thread into a private copy of
// the namespace; its working directory becomes the namespace's root.
// Open the HostView first (the minimal namespace holds nothing of the
// host, not even a procfs) and Install it right after, on the same
// goroutine.
//
// Mount namespaces belong to OS threads, and the kernel lets only a
// thread with an fs context of its own change its mount namespace. So
// Enter locks the goroutine to its thread for good (it never unlocks it:
// the thread exits with the goroutine instead of going back to the pool
// in the container's namespace) and unshares the thread's fs context
// (CLONE_FS) before it enters. Call it on a goroutine started for the
// container, never on main.
func (n *MinimalNamespace) Enter() error {
	p, done, err := n.use()
	if err != nil {
		return err
	}
	defer done()
	runtime.LockOSThread() // never unlocked on purpose
	if err := syscall.Unshare(syscall.CLONE_FS); err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = syscall.EINVAL
		}
		return &Error{Errno: errno, Kind: KindOS, Msg: "unshare(CLONE_FS): " + err.Error()}
	}
	var cerr *C.saferoot_error
	if rc := C.saferoot_minimal_ns_enter(p, &cerr); rc < 0 {
		return takeError(cerr, rc)
	}
	return nil
}

// Close frees the handle and closes its fd; a pinned namespace, or one a
// thread is in, lives on. Closing twice is harmless.
func (n *MinimalNamespace) Close() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		C.saferoot_minimal_ns_free(n.p)
		n.p = nil
		runtime.SetFinalizer(n, nil)
	}
	return nil
}

// HostPath is one host object of a HostView: an absolute host path and
// how much of the mounts below it to take.
type HostPath struct {
	Path  string
	Scope Scope
}

// HostView is a set of host objects (files, directories, mount trees)
// opened as detached mounts, to be installed at their own paths in a
// private copy of a MinimalNamespace. Close it when done, also after
// Install (a finalizer closes a forgotten one); closing a view that was
// not installed destroys its mounts.
type HostView struct {
	mu sync.Mutex
	p  *C.saferoot_host_view
}

// OpenHostView opens the host paths as detached mounts, in the calling
// thread's mount namespace. Paths are absolute host paths, looked up as
// bind sources are: symlinks are followed, but a path that leads into
// rootfs (the container's root directory, which the container controls)
// is resolved inside it from there. Duplicates are merged (the wider
// scope wins); a path below another is installed on top of it. Nothing in
// the caller's namespace changes.
func OpenHostView(rootfs string, paths []HostPath) (*HostView, error) {
	cr, err := cString("rootfs", rootfs)
	if err != nil {
		return nil, err
	}
	defer freeString(cr)
	n := len(paths)
	var cpaths **C.char
	var cscopes *C.uint32_t
	if n > 0 {
		// C memory: a C array may not hold Go pointers.
		cpaths = (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		cscopes = (*C.uint32_t)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.uint32_t(0)))))
		defer C.free(unsafe.Pointer(cscopes))
		ps := unsafe.Slice(cpaths, n)
		defer func() {
			for _, p := range ps {
				freeString(p)
			}
			C.free(unsafe.Pointer(cpaths))
		}()
		ss := unsafe.Slice(cscopes, n)
		for i, hp := range paths {
			c, err := cString("path", hp.Path)
			if err != nil {
				return nil, err
			}
			ps[i] = c
			ss[i] = C.uint32_t(hp.Scope)
		}
	}
	var cerr *C.saferoot_error
	p := C.saferoot_host_view_open(cr, cpaths, cscopes, C.size_t(n), &cerr)
	if p == nil {
		return nil, takeError(cerr, 0)
	}
	v := &HostView{p: p}
	runtime.SetFinalizer(v, (*HostView).Close)
	return v, nil
}

// Install makes a fresh tmpfs the calling thread's root, with every host
// object attached at its own path (missing directories and files are made
// on the tmpfs, never inside a host object), and detaches what was the
// root. Call it right after MinimalNamespace.Enter, on the same goroutine.
// The view is used up, also when Install fails.
func (v *HostView) Install() error {
	if v == nil {
		return errClosed("HostView")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p == nil {
		return errClosed("HostView")
	}
	var cerr *C.saferoot_error
	if rc := C.saferoot_host_view_install(v.p, &cerr); rc < 0 {
		return takeError(cerr, rc)
	}
	return nil
}

// Close frees the view. Closing twice is harmless.
func (v *HostView) Close() error {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p != nil {
		C.saferoot_host_view_free(v.p)
		v.p = nil
		runtime.SetFinalizer(v, nil)
	}
	return nil
}
