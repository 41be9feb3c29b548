package saferoot_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/saferoot/saferoot-go/saferoot"
)

// cpuMask is a sched_setaffinity(2) mask for up to 1024 CPUs.
type cpuMask [16]uint64

// threadAffinity reads (set false) or sets (set true) the CPU mask of the
// calling thread; the goroutine must be locked to it.
func threadAffinity(m *cpuMask, set bool) error {
	nr := uintptr(syscall.SYS_SCHED_GETAFFINITY)
	if set {
		nr = syscall.SYS_SCHED_SETAFFINITY
	}
	_, _, e := syscall.RawSyscall(nr, 0, unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}

// createPinned makes a minimal namespace pinned at pin, on a goroutine
// locked to its thread. The kernel refuses (ELOOP) to pin a namespace
// whose id is not above the id of the pinning thread's namespace, and
// Linux 6.18 hands out namespace ids from per-CPU batches: a namespace
// made on one CPU can get a lower id than one made earlier on another. So
// the namespace is made with this thread (and the library's helper thread,
// which inherits it) bound to one CPU after the other until one can be
// pinned: on the CPU whose batch gave this thread's namespace its id,
// later ids are higher.
func createPinned(t *testing.T, pin string) *saferoot.MinimalNamespace {
	t.Helper()
	var allowed cpuMask
	if !check(t, threadAffinity(&allowed, false), "sched_getaffinity") {
		return nil
	}
	for round := 0; round < 2; round++ {
		for cpu := 0; cpu < 64*len(allowed); cpu++ {
			if allowed[cpu/64]&(1<<(cpu%64)) == 0 {
				continue
			}
			var one cpuMask
			one[cpu/64] = 1 << (cpu % 64)
			if !check(t, threadAffinity(&one, true), "sched_setaffinity") {
				return nil
			}
			ns, err := saferoot.CreateMinimalNamespace()
			check(t, threadAffinity(&allowed, true), "sched_setaffinity (restore)")
			if !check(t, err, "create a minimal namespace") {
				return nil
			}
			err = ns.Pin(pin)
			if err == nil {
				return ns
			}
			ns.Close()
			if !errors.Is(err, syscall.ELOOP) {
				t.Errorf("pin: %v", err)
				return nil
			}
			if _, err := os.Lstat(pin); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed pin left %s: %v", pin, err)
			}
		}
	}
	t.Errorf("pin: ELOOP on every CPU")
	return nil
}

// threadMountPoints lists the mount points of the calling thread's mount
// namespace, sorted, from /proc/thread-self/mountinfo.
func threadMountPoints(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 5 {
			out = append(out, f[4])
		}
	}
	sort.Strings(out)
	return out
}

func TestMinimalNamespaceBadInput(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	_, err := saferoot.OpenMinimalNamespace(filepath.Join(dir, "missing"))
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "open a missing pin")
	_, err = saferoot.OpenMinimalNamespace("/proc/self/ns/net")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "open a net namespace")
	_, err = saferoot.OpenMinimalNamespace("a\x00b")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in a path")
	_, err = saferoot.MinimalNamespaceFromFile(nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "nil file")
	if f, err := os.Open("/proc/self/ns/net"); check(t, err, "open net ns") {
		_, err = saferoot.MinimalNamespaceFromFile(f)
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "net namespace file")
		f.Close()
	}

	_, err = saferoot.OpenHostView(dir, []saferoot.HostPath{{Path: "proc", Scope: saferoot.ScopeMount}})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "relative host path")
	_, err = saferoot.OpenHostView(dir, []saferoot.HostPath{{Path: "/proc", Scope: saferoot.Scope(9)}})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown scope")
	_, err = saferoot.OpenHostView(dir, []saferoot.HostPath{{Path: "/pr\x00oc", Scope: saferoot.ScopeMount}})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in a host path")
	_, err = saferoot.OpenHostView(dir, []saferoot.HostPath{{Path: filepath.Join(dir, "missing"), Scope: saferoot.ScopeTree}})
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "missing host path")

	// Closed handles are refused, not crashed on.
	ns, err := saferoot.CreateMinimalNamespace()
	if check(t, err, "create") {
		if ns.Fd() < 0 {
			t.Errorf("Fd of a live namespace")
		}
		ns.Close()
		ns.Close()
		if ns.Fd() != -1 {
			t.Errorf("Fd after Close")
		}
		wantErr(t, ns.Pin(filepath.Join(dir, "ns")), syscall.EINVAL, saferoot.KindInvalidInput, "pin after close")
		wantErr(t, ns.Enter(), syscall.EINVAL, saferoot.KindInvalidInput, "enter after close")
	}
	v, err := saferoot.OpenHostView(dir, nil)
	if check(t, err, "empty view") {
		v.Close()
		wantErr(t, v.Install(), syscall.EINVAL, saferoot.KindInvalidInput, "install after close")
	}
}

// A goroutine of its own (on a thread with a private mount namespace, so
// the pin and the clutter never reach the host) pins a minimal namespace,
// opens it again by its pin, opens a view of one directory and /proc,
// enters a copy and installs the view: its mount table then lists exactly
// those.
func TestMinimalNamespaceWithHostView(t *testing.T) {
	dir := t.TempDir()
	view := filepath.Join(dir, "view")
	clutter := filepath.Join(dir, "clutter")
	for _, d := range []string{view, clutter} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(view, "marker"), []byte("here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(dir, "ns")
	inMountNS(t, func() {
		if err := syscall.Mount("clutter", clutter, "tmpfs", 0, "size=16k"); !check(t, err, "mount clutter") {
			return
		}
		made := createPinned(t, pin)
		if made == nil {
			return
		}
		defer made.Close()
		if n, typ := mountsAt(t, pin); n != 1 || typ != "nsfs" {
			t.Errorf("pin: %d mounts, type %q", n, typ)
		}
		wantErr(t, made.Pin(pin), syscall.EEXIST, saferoot.KindAlreadyExists, "pin twice")

		ns, err := saferoot.OpenMinimalNamespace(pin)
		if !check(t, err, "open the pin") {
			return
		}
		defer ns.Close()
		var a, b syscall.Stat_t
		if check(t, syscall.Fstat(ns.Fd(), &a), "fstat") && check(t, syscall.Fstat(made.Fd(), &b), "fstat") && a.Ino != b.Ino {
			t.Errorf("the pin holds another namespace")
		}

		hv, err := saferoot.OpenHostView(view, []saferoot.HostPath{
			{Path: view, Scope: saferoot.ScopeTree},
			{Path: "/proc", Scope: saferoot.ScopeMount},
		})
		if !check(t, err, "open the host view") {
			return
		}
		defer hv.Close()
		if !check(t, ns.Enter(), "enter") {
			return
		}
		if !check(t, hv.Install(), "install") {
			return
		}
		wantErr(t, hv.Install(), syscall.EINVAL, saferoot.KindInvalidInput, "install twice")

		got := threadMountPoints(t)
		want := []string{"/", "/proc", view}
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("mount points inside: %q, want %q", got, want)
		}
		if text, err := os.ReadFile(filepath.Join(view, "marker")); err != nil || string(text) != "here\n" {
			t.Errorf("marker inside: %q %v", text, err)
		}
		for _, p := range []string{clutter, pin, "/etc/passwd", "/usr"} {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is visible inside: %v", p, err)
			}
		}
		if wd, err := os.Getwd(); err != nil || wd != "/" {
			t.Errorf("working directory %q %v", wd, err)
		}
	})
	// The pin and the clutter lived in the goroutine's namespace only.
	if n, _ := mountsAt(t, pin); n != 0 {
		t.Errorf("the pin reached this namespace")
	}
	if n, _ := mountsAt(t, clutter); n != 0 {
		t.Errorf("the clutter reached this namespace")
	}
}
