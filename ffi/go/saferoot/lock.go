package saferoot

/*
#include <saferoot.h>
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// NewLockUserNamespace makes the user namespace in which a container's
// program cannot undo the mounts saferoot made (see docs/security.md): a
// child of the caller's user namespace that maps every id the caller's
// namespace maps to itself. The returned file is the namespace (nsfs, close
// on exec); hand it to the process that execs the program, which joins it
// and unshares its mount namespace (saferoot_lock_mounts in C).
//
// A Go program cannot join a user namespace itself (the kernel refuses
// setns(CLONE_NEWUSER) from a multi-threaded process); from Go, start the
// program with LockedSysProcAttr instead.
func NewLockUserNamespace() (*os.File, error) {
	var cerr *C.saferoot_error
	fd := C.saferoot_lock_userns_new(&cerr)
	if fd < 0 {
		return nil, takeError(cerr, fd)
	}
	return os.NewFile(uintptr(fd), "lock-userns"), nil
}

// LockedSysProcAttr returns process attributes that start a program with
// every mount of the caller's mount namespace locked against it: the kernel
// creates a user namespace that maps the caller's ids to themselves
// (CLONE_NEWUSER) and copies the mount namespace into one it owns
// (CLONE_NEWNS). In that copy no mount can be unmounted or moved and no
// read-only, nosuid, nodev, noexec or atime flag can be changed, even by a
// program with CAP_SYS_ADMIN in its namespace.
//
// Start the program from the goroutine (locked to its OS thread) that
// assembled and entered the root, or set Chroot to the assembled rootfs.
func LockedSysProcAttr() (*syscall.SysProcAttr, error) {
	uids, err := identityMap("/proc/thread-self/uid_map")
	if err != nil {
		return nil, err
	}
	gids, err := identityMap("/proc/thread-self/gid_map")
	if err != nil {
		return nil, err
	}
	return &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                uids,
		GidMappings:                gids,
		GidMappingsEnableSetgroups: true,
	}, nil
}

// identityMap reads a uid_map or gid_map and maps each inside range to
// itself.
func identityMap(path string) ([]syscall.SysProcIDMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []syscall.SysProcIDMap
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, invalidInput(fmt.Sprintf("%s: unexpected line %q", path, sc.Text()))
		}
		inside, err1 := strconv.ParseUint(fields[0], 10, 32)
		count, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, invalidInput(fmt.Sprintf("%s: unexpected line %q", path, sc.Text()))
		}
		out = append(out, syscall.SysProcIDMap{ContainerID: int(inside), HostID: int(inside), Size: int(count)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, invalidInput(path + ": no ids mapped")
	}
	return out, nil
}
