// Command saferoot-example is a complete example of the saferoot Go
// package: in a container root directory, create /tmp and /run, mount a
// read-only, nosuid, nodev tmpfs on /tmp and a private, noexec copy of the
// host's /run, each configured before anyone can see it, list the mounts
// below the root, and take them down again.
//
// Run it as root in a private mount namespace, so the host is untouched:
//
//	unshare --mount --propagation private saferoot-example /path/to/rootfs
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"github.com/saferoot/saferoot-go/saferoot"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s ROOTFS\n", os.Args[0])
		os.Exit(2)
	}
	// Mounts are attached in the mount namespace of the calling OS thread.
	// Here the whole process is in one namespace, but a program that gives
	// a goroutine a namespace of its own must keep it on its thread.
	runtime.LockOSThread()
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		var e *saferoot.Error
		if errors.As(err, &e) {
			fmt.Fprintf(os.Stderr, "errno %d (%v), kind %v, path %q\n", int(e.Errno), e.Errno, e.Kind, e.Path)
		}
		os.Exit(1)
	}
}

func run(rootfs string) error {
	fmt.Printf("libsaferoot %s, statmount: %v\n", saferoot.Version(), saferoot.FeatureStatmount.Available())

	// Every in-root path below is resolved inside this directory, whatever
	// symlinks the rootfs contains.
	root, err := saferoot.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()

	// /tmp: a new tmpfs that is read-only, nosuid and nodev from its first
	// moment, attached onto the fd of the directory it goes on.
	dir, err := root.MkdirAllHandle("/tmp", 0o1777)
	if err != nil {
		return err
	}
	defer dir.Close()
	tmp, err := saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{
		Source: "example-tmp",
		Data:   "mode=1777,size=1m",
		Attrs:  saferoot.AttrReadOnly | saferoot.AttrNoSuid | saferoot.AttrNoDev,
	})
	if err != nil {
		return err
	}
	defer tmp.Close()
	if err := tmp.Attach(dir); err != nil {
		return err
	}

	// /run: a recursive bind of the host's /run, made private and noexec
	// while still detached, attached at an in-root path.
	if err := root.MkdirAll("/run", 0o755); err != nil {
		return err
	}
	run, err := saferoot.CloneTree("/run", saferoot.CloneRecursive)
	if err != nil {
		return err
	}
	defer run.Close()
	if err := run.SetPropagation(saferoot.PropagationPrivate, true); err != nil {
		return err
	}
	if err := run.SetAttr(saferoot.AttrNoExec, 0, true); err != nil {
		return err
	}
	if err := run.AttachAt(root, "/run"); err != nil {
		return err
	}

	// The mounts now below the root, from this thread's mount table.
	table, err := saferoot.ReadMountTable(saferoot.BackendAuto)
	if err != nil {
		return err
	}
	for _, e := range table.Entries {
		if strings.HasPrefix(e.MountPoint, rootfs+"/") {
			ro := ""
			if e.Attrs&saferoot.AttrReadOnly != 0 {
				ro = " ro"
			}
			fmt.Printf("%s %s%s\n", e.MountPoint, e.FsType, ro)
		}
	}

	// A path that is not there: the error unwraps to its errno.
	if _, err := root.Resolve("/no/such/file"); !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("expected ENOENT, got %v", err)
	}

	// Take the mounts down again, through their own fds.
	if err := run.Detach(); err != nil {
		return err
	}
	return tmp.Detach()
}
