package saferoot

/*
#include <stdlib.h>
#include <saferoot.h>
*/
import "C"

// Backend is where a mount table comes from.
type Backend int

// Backends.
const (
	// BackendAuto: statmount/listmount when the kernel has them, else
	// mountinfo.
	BackendAuto Backend = C.SAFEROOT_TABLE_AUTO
	// BackendStatmount: statmount/listmount only (Linux 6.8).
	BackendStatmount Backend = C.SAFEROOT_TABLE_STATMOUNT
	// BackendMountinfo: /proc/thread-self/mountinfo.
	BackendMountinfo Backend = C.SAFEROOT_TABLE_MOUNTINFO
)

// MountEntry is one mount of a mount table.
type MountEntry struct {
	ID       uint64 // as in /proc/self/mountinfo
	ParentID uint64
	UniqueID uint64 // statmount only; 0 when unknown
	// MountPoint is where the mount is attached, relative to the reader's
	// root; Root is the directory of the filesystem mounted there.
	MountPoint, Root string
	FsType           string
	Source           string // "" when the backend could not tell
	SuperOptions     string // "" when the backend could not tell
	Attrs            MountAttr
	Idmapped         bool
	Unbindable       bool
	DevMajor         uint32
	DevMinor         uint32
	SharedGroup      uint64 // 0 when not shared
	MasterGroup      uint64 // 0 when not a slave
	PropagateFrom    uint64 // 0 unless it differs from MasterGroup
}

// MountTable is a snapshot of the mounts of one mount namespace, in
// ascending unique-id order.
type MountTable struct {
	Entries []MountEntry
	// Backend is BackendStatmount or BackendMountinfo.
	Backend Backend
}

// Find returns the topmost mount at mountPoint, or nil.
func (t *MountTable) Find(mountPoint string) *MountEntry {
	for i := len(t.Entries) - 1; i >= 0; i-- {
		if t.Entries[i].MountPoint == mountPoint {
			return &t.Entries[i]
		}
	}
	return nil
}

func goStringOrEmpty(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// takeTable copies a C table into Go memory and frees it.
func takeTable(t *C.saferoot_mount_table, cerr *C.saferoot_error) (*MountTable, error) {
	if t == nil {
		return nil, takeError(cerr, 0)
	}
	defer C.saferoot_mount_table_free(t)
	n := int(C.saferoot_mount_table_len(t))
	out := &MountTable{Entries: make([]MountEntry, 0, n), Backend: Backend(C.saferoot_mount_table_backend(t))}
	for i := 0; i < n; i++ {
		e := C.saferoot_mount_table_entry(t, C.size_t(i))
		if e == nil {
			break
		}
		out.Entries = append(out.Entries, MountEntry{
			ID:            uint64(e.id),
			ParentID:      uint64(e.parent_id),
			UniqueID:      uint64(e.unique_id),
			MountPoint:    goStringOrEmpty(e.mount_point),
			Root:          goStringOrEmpty(e.root),
			FsType:        goStringOrEmpty(e.fs_type),
			Source:        goStringOrEmpty(e.source),
			SuperOptions:  goStringOrEmpty(e.super_options),
			Attrs:         MountAttr(e.attrs),
			Idmapped:      e.flags&C.SAFEROOT_MOUNT_ENTRY_IDMAPPED != 0,
			Unbindable:    e.flags&C.SAFEROOT_MOUNT_ENTRY_UNBINDABLE != 0,
			DevMajor:      uint32(e.dev_major),
			DevMinor:      uint32(e.dev_minor),
			SharedGroup:   uint64(e.shared_group),
			MasterGroup:   uint64(e.master_group),
			PropagateFrom: uint64(e.propagate_from),
		})
	}
	return out, nil
}

// ReadMountTable reads the mount table of the calling OS thread's mount
// namespace (hold runtime.LockOSThread in a goroutine with a namespace of
// its own). For audits and tests; building a root never needs it.
func ReadMountTable(b Backend) (*MountTable, error) {
	var cerr *C.saferoot_error
	return takeTable(C.saferoot_mount_table_read(C.uint32_t(b), &cerr), cerr)
}

// ReadMountTablePid reads the mount table of process pid's namespace.
func ReadMountTablePid(pid int, b Backend) (*MountTable, error) {
	var cerr *C.saferoot_error
	return takeTable(C.saferoot_mount_table_read_pid(C.int(pid), C.uint32_t(b), &cerr), cerr)
}

// ParseMountinfo parses the text of a mountinfo file.
func ParseMountinfo(text []byte) (*MountTable, error) {
	var cerr *C.saferoot_error
	if len(text) == 0 {
		return takeTable(C.saferoot_mount_table_parse_mountinfo(nil, 0, &cerr), cerr)
	}
	c := C.CBytes(text)
	defer C.free(c)
	return takeTable(C.saferoot_mount_table_parse_mountinfo((*C.char)(c), C.size_t(len(text)), &cerr), cerr)
}
