package saferoot

/*
#include <stdlib.h>
#include <string.h>
#include <saferoot.h>
*/
import "C"

import (
	"os"
	"runtime"
	"sync"
)

// MountAttr is a set of per-mount attributes.
type MountAttr uint64

// Mount attributes. At most one access-time policy (NoAtime, StrictAtime,
// RelAtime) may be set at once.
const (
	AttrReadOnly    MountAttr = C.SAFEROOT_MOUNT_ATTR_RDONLY
	AttrNoSuid      MountAttr = C.SAFEROOT_MOUNT_ATTR_NOSUID
	AttrNoDev       MountAttr = C.SAFEROOT_MOUNT_ATTR_NODEV
	AttrNoExec      MountAttr = C.SAFEROOT_MOUNT_ATTR_NOEXEC
	AttrNoAtime     MountAttr = C.SAFEROOT_MOUNT_ATTR_NOATIME
	AttrStrictAtime MountAttr = C.SAFEROOT_MOUNT_ATTR_STRICTATIME
	AttrNoDirAtime  MountAttr = C.SAFEROOT_MOUNT_ATTR_NODIRATIME
	AttrNoSymfollow MountAttr = C.SAFEROOT_MOUNT_ATTR_NOSYMFOLLOW
	AttrRelAtime    MountAttr = C.SAFEROOT_MOUNT_ATTR_RELATIME
)

// CloneFlags choose how CloneTree, CloneFile and Root.Clone copy a tree.
type CloneFlags uint32

// Clone flags.
const (
	// CloneRecursive takes the mounts below the source along (rbind).
	CloneRecursive CloneFlags = C.SAFEROOT_CLONE_RECURSIVE
	// CloneNoFollow binds a symlink at the last component itself.
	CloneNoFollow CloneFlags = C.SAFEROOT_CLONE_NOFOLLOW
)

// Propagation is a mount propagation type.
type Propagation uint32

// Propagation types.
const (
	PropagationPrivate    Propagation = C.SAFEROOT_PROPAGATION_PRIVATE
	PropagationSlave      Propagation = C.SAFEROOT_PROPAGATION_SLAVE
	PropagationShared     Propagation = C.SAFEROOT_PROPAGATION_SHARED
	PropagationUnbindable Propagation = C.SAFEROOT_PROPAGATION_UNBINDABLE
)

func recursiveFlag(recursive bool) C.uint32_t {
	if recursive {
		return C.SAFEROOT_ATTR_RECURSIVE
	}
	return 0
}

// Mount is a mount made by saferoot: detached (in no mount table,
// invisible) until one of the Attach methods attaches it. Configure it
// (SetAttr, SetPropagation, SetIdmap) before attaching, so it is never
// visible with weaker attributes than asked.
//
// Close frees the handle: a detached mount is destroyed with it, an
// attached mount stays attached. Calls on one Mount are serialized.
type Mount struct {
	mu sync.Mutex
	p  *C.saferoot_mount
}

func newMount(p *C.saferoot_mount) *Mount {
	m := &Mount{p: p}
	runtime.SetFinalizer(m, (*Mount).Close)
	return m
}

// call runs fn on the C mount with the lock held.
func (m *Mount) call(fn func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int) error {
	if m == nil {
		return errClosed("Mount")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil {
		return errClosed("Mount")
	}
	var cerr *C.saferoot_error
	if rc := fn(m.p, &cerr); rc < 0 {
		return takeError(cerr, rc)
	}
	return nil
}

// FsOptions configure NewFilesystem. The zero value means no source, no
// parameters, no attributes.
type FsOptions struct {
	// Source is the "source" parameter (a device, or the name shown in
	// the mount table for virtual filesystems).
	Source string
	// Data holds filesystem parameters as a comma-separated string, such
	// as "mode=755,size=65536k".
	Data string
	// Attrs are the attributes the mount has from its first moment.
	Attrs MountAttr
}

// NewFilesystem makes a new instance of the filesystem fstype ("tmpfs",
// "proc", "sysfs", "devpts", "mqueue", "cgroup2", "overlay", ...) as a
// detached mount (fsopen, fsconfig, fsmount).
func NewFilesystem(fstype string, opts FsOptions) (*Mount, error) {
	t, err := cString("fstype", fstype)
	if err != nil {
		return nil, err
	}
	defer freeString(t)
	src, err := cStringOpt("source", opts.Source)
	if err != nil {
		return nil, err
	}
	defer freeString(src)
	data, err := cStringOpt("data", opts.Data)
	if err != nil {
		return nil, err
	}
	defer freeString(data)
	var o C.struct_saferoot_fs_options
	o.size = C.size_t(C.sizeof_struct_saferoot_fs_options)
	o.source = src
	o.data = data
	o.attrs = C.uint64_t(opts.Attrs)
	var cerr *C.saferoot_error
	p := C.saferoot_mount_fs(t, &o, &cerr)
	if p == nil {
		return nil, takeError(cerr, 0)
	}
	return newMount(p), nil
}

// CloneTree clones the mount at the host path source (a bind mount) as a
// detached mount. source is the caller's host path, resolved normally.
func CloneTree(source string, flags CloneFlags) (*Mount, error) {
	c, err := cString("source", source)
	if err != nil {
		return nil, err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	p := C.saferoot_mount_clone(c, C.uint32_t(flags), &cerr)
	if p == nil {
		return nil, takeError(cerr, 0)
	}
	return newMount(p), nil
}

// CloneFile clones the mount tree at f (a resolved O_PATH file, a
// directory, another mount) as a detached mount. Only CloneRecursive is
// accepted. f stays the caller's.
func CloneFile(f *os.File, flags CloneFlags) (*Mount, error) {
	var p *C.saferoot_mount
	err := withFile("file", f, func(fd C.int) error {
		var cerr *C.saferoot_error
		p = C.saferoot_mount_clone_fd(fd, C.uint32_t(flags), &cerr)
		if p == nil {
			return takeError(cerr, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return newMount(p), nil
}

// MountFromFile adopts a detached mount fd made elsewhere (fsmount(2),
// open_tree(2) with OPEN_TREE_CLONE). f stays the caller's: the Mount
// keeps a duplicate. f must be the root of a mount that is not attached
// in the calling thread's mount namespace: the file of a live mount (an
// open mount point, open_tree without OPEN_TREE_CLONE) is refused with a
// KindInvalidInput error, because attribute changes through it would
// change the live mount. Clone a live mount with CloneFile instead.
func MountFromFile(f *os.File) (*Mount, error) {
	var p *C.saferoot_mount
	err := withFile("file", f, func(fd C.int) error {
		var cerr *C.saferoot_error
		p = C.saferoot_mount_from_fd(fd, &cerr)
		if p == nil {
			return takeError(cerr, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return newMount(p), nil
}

// Close frees the handle. Closing twice is harmless.
func (m *Mount) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil {
		C.saferoot_mount_free(m.p)
		m.p = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}

// Fd is the mount's fd, owned by the Mount (valid until Close or Detach;
// do not close it), or -1.
func (m *Mount) Fd() int {
	fd := -1
	_ = m.call(func(p *C.saferoot_mount, _ **C.saferoot_error) C.int {
		fd = int(C.saferoot_mount_fd(p))
		return 0
	})
	if fd < 0 {
		return -1
	}
	return fd
}

// SetAttr sets the attributes set and clears clear, on this mount or,
// with recursive, on every mount of its tree.
func (m *Mount) SetAttr(set, clear MountAttr, recursive bool) error {
	return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
		return C.saferoot_mount_set_attr(p, C.uint64_t(set), C.uint64_t(clear), recursiveFlag(recursive), cerr)
	})
}

// SetPropagation gives the mount (with recursive, its whole tree) the
// propagation type p.
func (m *Mount) SetPropagation(prop Propagation, recursive bool) error {
	return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
		return C.saferoot_mount_set_propagation(p, C.uint32_t(prop), recursiveFlag(recursive), cerr)
	})
}

// SetIdmap makes the detached mount an idmapped mount with the id maps of
// the user namespace userns (an open /proc/PID/ns/user; it stays the
// caller's). Only before attaching, and only once.
func (m *Mount) SetIdmap(userns *os.File, recursive bool) error {
	return withFile("userns", userns, func(fd C.int) error {
		return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
			return C.saferoot_mount_set_idmap(p, fd, recursiveFlag(recursive), cerr)
		})
	})
}

// Attr reports the mount's attributes as the kernel sees them.
func (m *Mount) Attr() (MountAttr, error) {
	var a C.uint64_t
	err := m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
		return C.saferoot_mount_get_attr(p, &a, cerr)
	})
	return MountAttr(a), err
}

// Root returns a Root for the mount's tree: resolve, create and attach
// below it, while it is still detached if it is.
func (m *Mount) Root() (*Root, error) {
	var r *C.saferoot_root
	err := m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
		r = C.saferoot_mount_root(p, cerr)
		if r == nil {
			return -1
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	return newRoot(r), nil
}

// Attach attaches the detached mount onto target (normally a file from
// Root.Resolve or Root.MkdirAllHandle): move_mount onto the fd, never a
// path. target stays the caller's. On failure the mount stays detached.
//
// Attaching acts in the mount namespace of the calling OS thread: a
// goroutine working in a namespace of its own must hold
// runtime.LockOSThread.
func (m *Mount) Attach(target *os.File) error {
	return withFile("target", target, func(fd C.int) error {
		return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
			return C.saferoot_mount_attach(p, fd, cerr)
		})
	})
}

// AttachBeneath attaches the detached mount beneath the top mount at
// target (MOVE_MOUNT_BENEATH, Linux 6.5), for atomic replacement: once
// the top mount is unmounted this one is in its place.
func (m *Mount) AttachBeneath(target *os.File) error {
	return withFile("target", target, func(fd C.int) error {
		return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
			return C.saferoot_mount_attach_beneath(p, fd, cerr)
		})
	})
}

// AttachAt resolves the in-root path in root and attaches the mount
// there; Detach then works for file mounts too.
func (m *Mount) AttachAt(root *Root, path string) error {
	rp, done, err := root.use()
	if err != nil {
		return err
	}
	defer done()
	c, err := cString("path", path)
	if err != nil {
		return err
	}
	defer freeString(c)
	return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
		return C.saferoot_mount_attach_at(p, rp, c, cerr)
	})
}

// Detach unmounts the attached mount (lazily, with everything below it)
// through its own fd. Afterwards only Close is left to do.
func (m *Mount) Detach() error {
	return m.call(func(p *C.saferoot_mount, cerr **C.saferoot_error) C.int {
		return C.saferoot_mount_detach(p, cerr)
	})
}

// IntoFile gives up the handle and returns its fd as a file: the
// detached mount fd (closing it destroys the mount) or, for an attached
// mount, an fd to its root. The Mount is closed afterwards.
func (m *Mount) IntoFile() (*os.File, error) {
	if m == nil {
		return nil, errClosed("Mount")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil {
		return nil, errClosed("Mount")
	}
	var cerr *C.saferoot_error
	fd := C.saferoot_mount_into_fd(m.p, &cerr)
	m.p = nil
	runtime.SetFinalizer(m, nil)
	if fd < 0 {
		return nil, takeError(cerr, fd)
	}
	return os.NewFile(uintptr(fd), "saferoot-mount"), nil
}
