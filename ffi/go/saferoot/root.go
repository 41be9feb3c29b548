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

// Root is a directory that confines path resolution: every in-root path
// given to its methods is absolute, read relative to the root, and
// resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so "..",
// absolute symlinks and symlink chains never leave it.
//
// A Root may be used from several goroutines at once. Close it when done
// (a finalizer closes a forgotten one).
type Root struct {
	mu sync.RWMutex
	p  *C.saferoot_root
}

func newRoot(p *C.saferoot_root) *Root {
	r := &Root{p: p}
	runtime.SetFinalizer(r, (*Root).Close)
	return r
}

// use returns the C root for one call, with the read lock held until
// done is called, so Close cannot free it meanwhile.
func (r *Root) use() (p *C.saferoot_root, done func(), err error) {
	if r == nil {
		return nil, nil, errClosed("Root")
	}
	r.mu.RLock()
	if r.p == nil {
		r.mu.RUnlock()
		return nil, nil, errClosed("Root")
	}
	return r.p, r.mu.RUnlock, nil
}

// OpenRoot opens the host directory path as a root. path is the
// caller's host path and is resolved normally; everything below it is
// then confined.
func OpenRoot(path string) (*Root, error) {
	c, err := cString("path", path)
	if err != nil {
		return nil, err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	p := C.saferoot_root_open(c, &cerr)
	if p == nil {
		return nil, takeError(cerr, 0)
	}
	return newRoot(p), nil
}

// RootFromFile makes a root of the directory f (an O_PATH file is fine,
// so is a detached mount). f stays the caller's: the root keeps its own
// duplicate of the fd.
func RootFromFile(f *os.File) (*Root, error) {
	var p *C.saferoot_root
	err := withFile("file", f, func(fd C.int) error {
		var cerr *C.saferoot_error
		p = C.saferoot_root_from_fd(fd, &cerr)
		if p == nil {
			return takeError(cerr, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return newRoot(p), nil
}

// Close frees the root and closes its fd. Files and mounts made through
// it stay valid. Closing twice is harmless.
func (r *Root) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		C.saferoot_root_free(r.p)
		r.p = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// Fd is the root's directory fd. It stays owned by the root and is valid
// until Close; do not close it. -1 after Close.
func (r *Root) Fd() int {
	p, done, err := r.use()
	if err != nil {
		return -1
	}
	defer done()
	return int(C.saferoot_root_fd(p))
}

// pathCall runs one C function that takes the root and an in-root path.
func (r *Root) pathCall(path string, fn func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int) (C.int, error) {
	p, done, err := r.use()
	if err != nil {
		return -1, err
	}
	defer done()
	c, err := cString("path", path)
	if err != nil {
		return -1, err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	rc := fn(p, c, &cerr)
	if rc < 0 {
		return rc, takeError(cerr, rc)
	}
	return rc, nil
}

func fileOrClose(fd C.int, name string, keep bool) *os.File {
	f := os.NewFile(uintptr(fd), name)
	if !keep {
		f.Close()
		return nil
	}
	return f
}

// Resolve resolves the in-root path, following symlinks without leaving
// the root, and returns an O_PATH file (close-on-exec) for it: what
// mounts are attached onto. The file is the caller's to close.
func (r *Root) Resolve(path string) (*os.File, error) {
	fd, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_resolve(p, c, cerr)
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// ResolveNoFollow is Resolve, except that a symlink as the last component
// is returned as itself.
func (r *Root) ResolveNoFollow(path string) (*os.File, error) {
	fd, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_resolve_nofollow(p, c, cerr)
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func (r *Root) mkdirAll(path string, mode uint32, keep bool) (*os.File, error) {
	var fd C.int = -1
	_, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_mkdir_all(p, c, C.uint32_t(mode), &fd, cerr)
	})
	if err != nil {
		return nil, err
	}
	return fileOrClose(fd, path, keep), nil
}

// MkdirAll creates the in-root directory path and any missing parents
// with permission bits mode (less the umask). Every component is created
// relative to its parent's fd, so none can be redirected out of the root.
func (r *Root) MkdirAll(path string, mode uint32) error {
	_, err := r.mkdirAll(path, mode, false)
	return err
}

// MkdirAllHandle is MkdirAll, returning a close-on-exec file for the
// directory (the caller closes it): a target for Mount.Attach.
func (r *Root) MkdirAllHandle(path string, mode uint32) (*os.File, error) {
	return r.mkdirAll(path, mode, true)
}

func (r *Root) createFile(path string, mode uint32, keep bool) (*os.File, error) {
	var fd C.int = -1
	_, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_create_file(p, c, C.uint32_t(mode), &fd, cerr)
	})
	if err != nil {
		return nil, err
	}
	return fileOrClose(fd, path, keep), nil
}

// CreateFile makes sure the in-root path is a regular file, creating it
// empty with mode when missing (the parent must exist): what a file bind
// mount is attached onto. A symlink, directory or device there is refused.
func (r *Root) CreateFile(path string, mode uint32) error {
	_, err := r.createFile(path, mode, false)
	return err
}

// CreateFileHandle is CreateFile, returning an O_PATH close-on-exec file
// for it (the caller closes it).
func (r *Root) CreateFileHandle(path string, mode uint32) (*os.File, error) {
	return r.createFile(path, mode, true)
}

// NodeType is the kind of node Mknod creates.
type NodeType uint32

// Node types.
const (
	NodeChar  NodeType = C.SAFEROOT_NODE_CHAR
	NodeBlock NodeType = C.SAFEROOT_NODE_BLOCK
	NodeFifo  NodeType = C.SAFEROOT_NODE_FIFO
)

func (r *Root) mknod(path string, t NodeType, major, minor, mode uint32, keep bool) (*os.File, error) {
	var fd C.int = -1
	_, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_mknod(p, c, C.uint32_t(t), C.uint32_t(major), C.uint32_t(minor), C.uint32_t(mode), &fd, cerr)
	})
	if err != nil {
		return nil, err
	}
	return fileOrClose(fd, path, keep), nil
}

// Mknod creates a device node or fifo at the in-root path (the parent
// must exist) with exactly the permission bits mode (the umask is not
// applied), then checks that the inode there has exactly the type and
// device number asked for (a KindSafetyViolation error if not). A fifo
// takes major and minor 0. A major above 4095 or a minor above 1048575
// (more than the kernel's device numbers hold) is a KindInvalidInput
// error, and nothing is created.
func (r *Root) Mknod(path string, t NodeType, major, minor, mode uint32) error {
	_, err := r.mknod(path, t, major, minor, mode, false)
	return err
}

// MknodHandle is Mknod, returning an O_PATH close-on-exec file for the
// node (the caller closes it).
func (r *Root) MknodHandle(path string, t NodeType, major, minor, mode uint32) (*os.File, error) {
	return r.mknod(path, t, major, minor, mode, true)
}

// Symlink creates a symlink at the in-root path pointing at target,
// stored as given (confined to the root whenever saferoot resolves it).
// The order is the C function's, link then target (os.Symlink and the Rust
// Root::symlink take the target first).
func (r *Root) Symlink(path, target string) error {
	t, err := cString("target", target)
	if err != nil {
		return err
	}
	defer freeString(t)
	_, err = r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_symlink(p, c, t, cerr)
	})
	return err
}

// Readlink reads the symlink at the in-root path (not following it).
func (r *Root) Readlink(path string) (string, error) {
	p, done, err := r.use()
	if err != nil {
		return "", err
	}
	defer done()
	c, err := cString("path", path)
	if err != nil {
		return "", err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	s := C.saferoot_readlink_alloc(p, c, &cerr)
	if s == nil {
		return "", takeError(cerr, 0)
	}
	defer C.saferoot_string_free(s)
	return C.GoString(s), nil
}

// RemoveFile removes the non-directory at the in-root path.
func (r *Root) RemoveFile(path string) error {
	_, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_remove_file(p, c, cerr)
	})
	return err
}

// RemoveDir removes the empty directory at the in-root path.
func (r *Root) RemoveDir(path string) error {
	_, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_remove_dir(p, c, cerr)
	})
	return err
}

// Unmount unmounts (lazily) the topmost mount at the in-root path, through
// fds: no path the container could redirect is given to umount2. It acts
// in the calling thread's mount namespace; see the package documentation.
func (r *Root) Unmount(path string) error {
	_, err := r.pathCall(path, func(p *C.saferoot_root, c *C.char, cerr **C.saferoot_error) C.int {
		return C.saferoot_unmount_in_root(p, c, cerr)
	})
	return err
}

// Clone clones the mount tree at the in-root path as a detached mount
// (a bind mount source resolved inside the root).
func (r *Root) Clone(path string, flags CloneFlags) (*Mount, error) {
	p, done, err := r.use()
	if err != nil {
		return nil, err
	}
	defer done()
	c, err := cString("path", path)
	if err != nil {
		return nil, err
	}
	defer freeString(c)
	var cerr *C.saferoot_error
	m := C.saferoot_mount_clone_in_root(p, c, C.uint32_t(flags), &cerr)
	if m == nil {
		return nil, takeError(cerr, 0)
	}
	return newMount(m), nil
}
