package saferoot

/*
#include <stdlib.h>
#include <saferoot.h>
*/
import "C"

import (
	"io"
	"os"
	"sync"
)

// Whiteouts is what Unpack does with whiteout entries (the deletion
// markers of image layers).
type Whiteouts int

// Whiteout modes.
const (
	// WhiteoutsNone: .wh.* entries are ordinary files.
	WhiteoutsNone Whiteouts = C.SAFEROOT_WHITEOUTS_NONE
	// WhiteoutsOCI: OCI layer whiteouts are applied and never written.
	WhiteoutsOCI Whiteouts = C.SAFEROOT_WHITEOUTS_OCI
	// WhiteoutsOverlay: OCI whiteouts become overlayfs ones (a character
	// device 0:0, the trusted.overlay.opaque attribute).
	WhiteoutsOverlay Whiteouts = C.SAFEROOT_WHITEOUTS_OVERLAY
)

// Owners says whose files Unpack makes.
type Owners int

// Owner policies.
const (
	// OwnersDefault: the archive's owners when running as root, the
	// caller otherwise (as GNU tar does).
	OwnersDefault Owners = iota
	// OwnersKeep: the owners recorded in the archive.
	OwnersKeep
	// OwnersCaller: the caller owns every entry.
	OwnersCaller
)

// UnpackOptions configure Root.Unpack. The zero value (or nil) means the
// defaults.
type UnpackOptions struct {
	Whiteouts Whiteouts
	Owners    Owners
	// Xattrs applies PAX SCHILY.xattr.* records to files and directories
	// (trusted.overlay.* never).
	Xattrs bool
	// MaxBytes limits the bytes of file contents written; 0 is no limit.
	MaxBytes uint64
	// MaxEntries limits the entries; 0 is no limit.
	MaxEntries uint64
	// MaxPathLen limits entry names and link targets, in bytes; 0 is 4095.
	MaxPathLen uint64
}

// UnpackSummary is what an unpack did.
type UnpackSummary struct {
	Entries, Files, Dirs, Symlinks, Hardlinks, Nodes, Whiteouts, Skipped, Bytes uint64
}

// Unpack unpacks the tar archive read from src (plain, gzip or zstd, told
// apart by their magic numbers) into the root. Nothing the archive holds,
// and nothing a process inside the root does meanwhile, makes it write
// outside the root (docs/archive.md).
//
// An *os.File is read directly (from its current offset; it stays open
// and the caller's); any other reader is copied into a pipe by a
// goroutine. What was unpacked before an error stays.
func (r *Root) Unpack(src io.Reader, opts *UnpackOptions) (UnpackSummary, error) {
	var o C.struct_saferoot_unpack_options
	o.size = C.size_t(C.sizeof_struct_saferoot_unpack_options)
	if opts != nil {
		o.whiteouts = C.uint32_t(opts.Whiteouts)
		switch opts.Owners {
		case OwnersDefault:
		case OwnersKeep:
			o.flags |= C.SAFEROOT_UNPACK_SAME_OWNER
		case OwnersCaller:
			o.flags |= C.SAFEROOT_UNPACK_NO_SAME_OWNER
		default:
			return UnpackSummary{}, invalidInput("unknown Owners value")
		}
		if opts.Xattrs {
			o.flags |= C.SAFEROOT_UNPACK_XATTRS
		}
		o.max_bytes = C.uint64_t(opts.MaxBytes)
		o.max_entries = C.uint64_t(opts.MaxEntries)
		o.max_path_len = C.uint64_t(opts.MaxPathLen)
	}
	if src == nil {
		return UnpackSummary{}, invalidInput("archive reader is nil")
	}
	p, done, err := r.use()
	if err != nil {
		return UnpackSummary{}, err
	}
	defer done()
	var s C.struct_saferoot_unpack_summary
	s.size = C.size_t(C.sizeof_struct_saferoot_unpack_summary)
	call := func(fd C.int) error {
		var cerr *C.saferoot_error
		if rc := C.saferoot_unpack(p, fd, &o, &s, &cerr); rc < 0 {
			return takeError(cerr, rc)
		}
		return nil
	}
	if f, ok := src.(*os.File); ok {
		err = withFile("archive", f, call)
	} else {
		err = throughPipe(src, func(f *os.File) error { return withFile("archive", f, call) })
	}
	if err != nil {
		return UnpackSummary{}, err
	}
	return UnpackSummary{
		Entries:   uint64(s.entries),
		Files:     uint64(s.files),
		Dirs:      uint64(s.dirs),
		Symlinks:  uint64(s.symlinks),
		Hardlinks: uint64(s.hardlinks),
		Nodes:     uint64(s.nodes),
		Whiteouts: uint64(s.whiteouts),
		Skipped:   uint64(s.skipped),
		Bytes:     uint64(s.bytes),
	}, nil
}

// readErr remembers the first error reading the caller's reader, so it is
// told apart from the pipe closing because the unpack stopped.
type readErr struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *readErr) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		e.err = err
		e.mu.Unlock()
	}
	return n, err
}

// throughPipe runs fn with the read end of a pipe that a goroutine fills
// from src. A failure reading src wins over what fn says (the archive it
// saw was cut short).
func throughPipe(src io.Reader, fn func(*os.File) error) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	re := &readErr{r: src}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(pw, re)
		pw.Close()
	}()
	err = fn(pr)
	// Unblocks the copy if fn stopped reading early (EPIPE).
	pr.Close()
	<-copied
	re.mu.Lock()
	rerr := re.err
	re.mu.Unlock()
	if rerr != nil {
		return rerr
	}
	return err
}

// CopyOptions configure Root.CopyIn and Root.CopyOut. The zero value (or
// nil) means the defaults: links copied as links, the copies owned by the
// caller (without set-id bits), no limits.
type CopyOptions struct {
	// FollowLink copies what the source itself points at when it is a
	// symlink (docker cp -L): on the host as the host resolves it for
	// CopyIn, inside the root for CopyOut.
	FollowLink bool
	// SameOwner keeps the source's owners and set-id bits (docker cp -a).
	SameOwner bool
	// MaxBytes limits the bytes of file contents written; 0 is no limit.
	MaxBytes uint64
	// MaxEntries limits the entries; 0 is no limit.
	MaxEntries uint64
	// MaxPathLen limits names (from the copy's top) and link targets, in
	// bytes; 0 is 4095.
	MaxPathLen uint64
}

// CopySummary is what a copy did.
type CopySummary struct {
	Entries, Files, Dirs, Symlinks, Hardlinks, Nodes, Skipped, Bytes uint64
}

type copyFn func(p *C.saferoot_root, a, b *C.char, o *C.struct_saferoot_copy_options,
	s *C.struct_saferoot_copy_summary, cerr **C.saferoot_error) C.int

func (r *Root) copyCall(src, dest string, opts *CopyOptions, fn copyFn) (CopySummary, error) {
	var o C.struct_saferoot_copy_options
	o.size = C.size_t(C.sizeof_struct_saferoot_copy_options)
	if opts != nil {
		if opts.FollowLink {
			o.flags |= C.SAFEROOT_COPY_FOLLOW_LINK
		}
		if opts.SameOwner {
			o.flags |= C.SAFEROOT_COPY_SAME_OWNER
		}
		o.max_bytes = C.uint64_t(opts.MaxBytes)
		o.max_entries = C.uint64_t(opts.MaxEntries)
		o.max_path_len = C.uint64_t(opts.MaxPathLen)
	}
	p, done, err := r.use()
	if err != nil {
		return CopySummary{}, err
	}
	defer done()
	a, err := cString("source", src)
	if err != nil {
		return CopySummary{}, err
	}
	defer freeString(a)
	b, err := cString("destination", dest)
	if err != nil {
		return CopySummary{}, err
	}
	defer freeString(b)
	var s C.struct_saferoot_copy_summary
	s.size = C.size_t(C.sizeof_struct_saferoot_copy_summary)
	var cerr *C.saferoot_error
	if rc := fn(p, a, b, &o, &s, &cerr); rc < 0 {
		return CopySummary{}, takeError(cerr, rc)
	}
	return CopySummary{
		Entries:   uint64(s.entries),
		Files:     uint64(s.files),
		Dirs:      uint64(s.dirs),
		Symlinks:  uint64(s.symlinks),
		Hardlinks: uint64(s.hardlinks),
		Nodes:     uint64(s.nodes),
		Skipped:   uint64(s.skipped),
		Bytes:     uint64(s.bytes),
	}, nil
}

// CopyIn copies the host file or tree hostSrc to the in-root path dest,
// with docker cp's rules: dest an existing directory receives the copy
// under hostSrc's name; a missing dest is created as the copy (its parent
// must exist); a file replaces an existing non-directory dest, a
// directory there is refused (ENOTDIR); hostSrc ending in "/." copies a
// directory's contents; dest ending in "/" must be an existing directory.
//
// dest's parent is resolved in the root and its last component is never
// followed; nothing in the tree, and no process in the root swapping
// entries meanwhile, makes the copy write outside the directory it lands
// in. Symlinks are copied as symlinks.
func (r *Root) CopyIn(hostSrc, dest string, opts *CopyOptions) (CopySummary, error) {
	return r.copyCall(hostSrc, dest, opts, func(p *C.saferoot_root, a, b *C.char,
		o *C.struct_saferoot_copy_options, s *C.struct_saferoot_copy_summary,
		cerr **C.saferoot_error) C.int {
		return C.saferoot_copy_in(p, a, b, o, s, cerr)
	})
}

// CopyOut copies the file or tree at the in-root path src to the host
// path hostDest, with CopyIn's rules (roles swapped). src is resolved in
// the root (its last component followed only with FollowLink, and then
// inside the root); the tree is read through fds without following any
// symlink, and written into the host directory the copy lands in, whose
// last component is never followed either.
func (r *Root) CopyOut(src, hostDest string, opts *CopyOptions) (CopySummary, error) {
	return r.copyCall(src, hostDest, opts, func(p *C.saferoot_root, a, b *C.char,
		o *C.struct_saferoot_copy_options, s *C.struct_saferoot_copy_summary,
		cerr **C.saferoot_error) C.int {
		return C.saferoot_copy_out(p, a, b, o, s, cerr)
	})
}
