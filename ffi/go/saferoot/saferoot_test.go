package saferoot_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/saferoot/saferoot-go/saferoot"
)

// requireRoot fails (never skips silently) when the tests cannot run,
// unless SAFEROOT_TEST_ALLOW_SKIP=1.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SAFEROOT_TEST_ALLOW_SKIP") == "1" {
		t.Skip("SKIPPED: not root (SAFEROOT_TEST_ALLOW_SKIP=1)")
	}
	t.Fatal("these tests need root (set SAFEROOT_TEST_ALLOW_SKIP=1 to skip)")
}

// inMountNS runs fn on a goroutine locked to an OS thread that has a mount
// namespace (and fs context) of its own, with / made rprivate, so nothing
// it mounts is seen by the host. The thread is never unlocked: it exits
// with the goroutine.
func inMountNS(t *testing.T, fn func()) {
	t.Helper()
	requireRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_FS | syscall.CLONE_NEWNS); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			t.Errorf("make / rprivate: %v", err)
			return
		}
		fn()
	}()
	<-done
}

// mountsAt counts the mounts of the calling thread's namespace at path,
// from /proc/thread-self/mountinfo (not from the library under test), and
// returns the fs type of the last one.
func mountsAt(t *testing.T, path string) (int, string) {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return -1, ""
	}
	n, fstype := 0, ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[4] != path {
			continue
		}
		n++
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				fstype = f[i+1]
			}
		}
	}
	return n, fstype
}

func check(t *testing.T, err error, what string) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return false
	}
	return true
}

func wantErr(t *testing.T, err error, errno syscall.Errno, kind saferoot.ErrorKind, what string) {
	t.Helper()
	var e *saferoot.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: want *saferoot.Error (%v, %v), got %v", what, errno, kind, err)
		return
	}
	if e.Errno != errno || e.Kind != kind || !errors.Is(err, errno) || !errors.Is(err, kind) {
		t.Errorf("%s: want %v/%v, got %v/%v: %v", what, errno, kind, e.Errno, e.Kind, e)
	}
}

func TestVersionAndFeatures(t *testing.T) {
	if v := saferoot.Version(); !strings.Contains(v, ".") {
		t.Errorf("version %q", v)
	}
	if saferoot.ABIVersion != 0 {
		t.Errorf("ABI version %d", saferoot.ABIVersion)
	}
	if !saferoot.FeatureMountAPI.Available() || !saferoot.FeatureMountSetattr.Available() {
		t.Errorf("baseline features missing")
	}
	for _, f := range saferoot.AllFeatures {
		g, err := saferoot.FeatureByName(f.String())
		if err != nil || g != f || f.MinKernel() == "" {
			t.Errorf("feature %v: %v %v %q", f, g, err, f.MinKernel())
		}
	}
	_, err := saferoot.FeatureByName("no-such-feature")
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "unknown feature")
	_, err = saferoot.FeatureByName("nul\x00byte")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in feature name")
	if saferoot.Feature(99).Available() || saferoot.Feature(99).MinKernel() != "" {
		t.Errorf("unknown feature reported")
	}
}

func TestErrorsUnwrapToErrno(t *testing.T) {
	requireRoot(t)
	r, err := saferoot.OpenRoot(t.TempDir())
	if !check(t, err, "open root") {
		return
	}
	defer r.Close()
	_, err = r.Resolve("/missing/file")
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "resolve missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("not fs.ErrNotExist: %v", err)
	}
	var e *saferoot.Error
	if errors.As(err, &e) && (e.Path != "/missing/file" || !strings.Contains(e.Error(), "/missing/file")) {
		t.Errorf("path not named: %+v", e)
	}
	_, err = saferoot.OpenRoot("/no/such/dir")
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "open missing root")
	_, err = saferoot.OpenRoot("")
	if err == nil {
		t.Errorf("empty root path accepted")
	}
}

func TestRootPathOperations(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	r, err := saferoot.OpenRoot(dir)
	if !check(t, err, "open root") {
		return
	}
	defer r.Close()
	if r.Fd() < 0 {
		t.Errorf("root fd %d", r.Fd())
	}
	check(t, r.MkdirAll("/etc/sub", 0o755), "mkdir")
	d, err := r.MkdirAllHandle("/etc", 0o755)
	if check(t, err, "mkdir handle") {
		st, _ := d.Stat()
		if st == nil || !st.IsDir() {
			t.Errorf("mkdir handle is not a directory")
		}
		d.Close()
	}
	check(t, r.CreateFile("/etc/hostname", 0o644), "create file")
	f, err := r.CreateFileHandle("/etc/hostname", 0o644)
	if check(t, err, "create file handle") {
		f.Close()
	}
	check(t, r.Mknod("/null", saferoot.NodeChar, 1, 3, 0o666), "mknod")
	n, err := r.MknodHandle("/fifo", saferoot.NodeFifo, 0, 0, 0o600)
	if check(t, err, "mknod fifo") {
		n.Close()
	}
	err = r.Mknod("/bad", saferoot.NodeFifo, 1, 0, 0o600)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "fifo with major")
	// Device numbers the kernel cannot encode are refused before anything
	// is created; the mode given is the mode created, whatever the umask.
	err = r.Mknod("/big", saferoot.NodeChar, 4096, 0, 0o600)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "major above 12 bits")
	err = r.Mknod("/big", saferoot.NodeBlock, 7, 1<<20, 0o600)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "minor above 20 bits")
	if _, err := os.Lstat(filepath.Join(dir, "big")); !os.IsNotExist(err) {
		t.Errorf("a refused mknod left something behind: %v", err)
	}
	old := syscall.Umask(0o022)
	check(t, r.Mknod("/exact", saferoot.NodeChar, 1, 3, 0o666), "mknod exact mode")
	syscall.Umask(old)
	if st, err := os.Lstat(filepath.Join(dir, "exact")); err != nil || st.Mode().Perm() != 0o666 {
		t.Errorf("mknod with mode 0666 under umask 022 gave %v (%v)", st.Mode(), err)
	}
	check(t, r.Symlink("/link", "/etc/hostname"), "symlink")
	target, err := r.Readlink("/link")
	if check(t, err, "readlink") && target != "/etc/hostname" {
		t.Errorf("readlink %q", target)
	}
	check(t, r.Symlink("/escape", "../../../../"), "symlink escape")

	// Resolve gives an O_PATH file; "/escape/etc" stays inside.
	h, err := r.Resolve("/escape/etc/hostname")
	if check(t, err, "resolve through escape link") {
		var a, b syscall.Stat_t
		if err := syscall.Fstat(int(h.Fd()), &a); err != nil || syscall.Stat(filepath.Join(dir, "etc/hostname"), &b) != nil || a.Ino != b.Ino {
			t.Errorf("resolved to another inode")
		}
		fl, _ := fcntl(h, syscall.F_GETFL)
		if fl&oPath == 0 {
			t.Errorf("not O_PATH: %#x", fl)
		}
		fd, _ := fcntl(h, syscall.F_GETFD)
		if fd&syscall.FD_CLOEXEC == 0 {
			t.Errorf("not close-on-exec")
		}
		h.Close()
	}
	l, err := r.ResolveNoFollow("/link")
	if check(t, err, "resolve nofollow") {
		// The fd of a symlink itself: readlinkat(fd, "") reads it.
		buf := make([]byte, 64)
		n, _, e := syscall.Syscall6(syscall.SYS_READLINKAT, l.Fd(), uintptr(unsafe.Pointer(&[]byte{0}[0])),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		if e != 0 || string(buf[:n]) != "/etc/hostname" {
			t.Errorf("nofollow did not give the link: %v %q", e, buf[:n])
		}
		l.Close()
	}
	check(t, r.RemoveFile("/link"), "remove file")
	check(t, r.RemoveDir("/etc/sub"), "remove dir")
	err = r.RemoveDir("/etc")
	wantErr(t, err, syscall.ENOTEMPTY, saferoot.KindOS, "remove non-empty dir")

	// Bad input: relative paths, NUL bytes, invalid UTF-8.
	_, err = r.Resolve("relative")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "relative")
	_, err = r.Resolve("/nul\x00byte")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL byte")
	_, err = r.Resolve("/\xff\xfe")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "invalid UTF-8")
	err = r.MkdirAll("/x", 0o10000)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "mode bits")

	// A root from a file: the file stays ours.
	df, err := os.Open(dir)
	if check(t, err, "open dir") {
		r2, err := saferoot.RootFromFile(df)
		if check(t, err, "root from file") {
			r2.Close()
			if _, err := df.Stat(); err != nil {
				t.Errorf("caller's file closed: %v", err)
			}
		}
		df.Close()
	}
	_, err = saferoot.RootFromFile(nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "nil file")

	// A closed root refuses further use.
	r.Close()
	r.Close()
	_, err = r.Resolve("/etc")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "closed root")
	if r.Fd() != -1 {
		t.Errorf("closed root has an fd")
	}
}

// O_PATH, which package syscall does not name (Linux, every architecture
// but alpha, parisc and sparc).
const oPath = 0x200000

func fcntl(f *os.File, cmd int) (int, error) {
	v, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(v), nil
}

func TestMountLifecycle(t *testing.T) {
	dir := t.TempDir()
	inMountNS(t, func() {
		r, err := saferoot.OpenRoot(dir)
		if !check(t, err, "open root") {
			return
		}
		defer r.Close()
		m, err := saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{
			Source: "saferoot-go", Data: "size=1m,mode=755",
			Attrs: saferoot.AttrNoSuid | saferoot.AttrNoDev,
		})
		if !check(t, err, "tmpfs") {
			return
		}
		defer m.Close()
		check(t, m.SetAttr(saferoot.AttrReadOnly, 0, false), "set ro")
		check(t, m.SetPropagation(saferoot.PropagationPrivate, true), "private")
		a, err := m.Attr()
		if check(t, err, "attr") && a&(saferoot.AttrReadOnly|saferoot.AttrNoSuid|saferoot.AttrNoDev) != saferoot.AttrReadOnly|saferoot.AttrNoSuid|saferoot.AttrNoDev {
			t.Errorf("attrs %#x", a)
		}
		if m.Fd() < 0 {
			t.Errorf("mount fd")
		}
		// Build inside the detached tree, then attach it.
		inner, err := m.Root()
		if check(t, err, "mount root") {
			// Read-only: creating fails with EROFS inside.
			err = inner.MkdirAll("/sub", 0o755)
			wantErr(t, err, syscall.EROFS, saferoot.KindOS, "mkdir on ro tmpfs")
			inner.Close()
		}
		check(t, r.MkdirAll("/mnt", 0o755), "mkdir")
		if n, _ := mountsAt(t, dir+"/mnt"); n != 0 {
			t.Errorf("mounted before attach")
		}
		if !check(t, m.AttachAt(r, "/mnt"), "attach at") {
			return
		}
		if n, typ := mountsAt(t, dir+"/mnt"); n != 1 || typ != "tmpfs" {
			t.Errorf("after attach: %d %q", n, typ)
		}
		err = m.AttachAt(r, "/mnt")
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "attach twice")
		tbl, err := saferoot.ReadMountTable(saferoot.BackendAuto)
		if check(t, err, "mount table") {
			e := tbl.Find(dir + "/mnt")
			if e == nil || e.FsType != "tmpfs" || e.Source != "saferoot-go" || e.Attrs&saferoot.AttrReadOnly == 0 {
				t.Errorf("table entry %+v", e)
			}
		}
		check(t, m.Detach(), "detach")
		if n, _ := mountsAt(t, dir+"/mnt"); n != 0 {
			t.Errorf("still mounted after detach")
		}
		err = m.Detach()
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "detach twice")

		// A bind of a host path onto a resolved file; then unmount by path.
		b, err := saferoot.CloneTree(dir+"/mnt", saferoot.CloneRecursive)
		if !check(t, err, "clone") {
			return
		}
		defer b.Close()
		check(t, r.MkdirAll("/bound", 0o755), "mkdir")
		target, err := r.Resolve("/bound")
		if !check(t, err, "resolve") {
			return
		}
		check(t, b.Attach(target), "attach onto file")
		if _, err := target.Stat(); err != nil {
			t.Errorf("target file closed: %v", err)
		}
		target.Close()
		if n, _ := mountsAt(t, dir+"/bound"); n != 1 {
			t.Errorf("bind not attached")
		}
		check(t, r.Unmount("/bound"), "unmount in root")
		if n, _ := mountsAt(t, dir+"/bound"); n != 0 {
			t.Errorf("bind still there")
		}

		// IntoFile and MountFromFile round trip; a clone of a file.
		c, err := r.Clone("/mnt", 0)
		if !check(t, err, "clone in root") {
			return
		}
		f, err := c.IntoFile()
		if !check(t, err, "into file") {
			return
		}
		_, err = c.IntoFile()
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "into file twice")
		m2, err := saferoot.MountFromFile(f)
		f.Close()
		if check(t, err, "mount from file") {
			check(t, m2.AttachAt(r, "/bound"), "attach adopted")
			// The fd of a live (attached) mount is refused: changes
			// through it would change the live mount.
			live, err := os.Open(filepath.Join(dir, "bound"))
			if check(t, err, "open live mount") {
				_, err = saferoot.MountFromFile(live)
				wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "adopt an attached mount")
				live.Close()
			}
			check(t, m2.Detach(), "detach adopted")
			m2.Close()
		}
		d, _ := os.Open(dir)
		m3, err := saferoot.CloneFile(d, saferoot.CloneRecursive)
		if check(t, err, "clone file") {
			m3.Close()
		}
		_, err = saferoot.CloneFile(d, saferoot.CloneNoFollow)
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "clone file flags")
		d.Close()
	})
}

func TestMountBadInput(t *testing.T) {
	requireRoot(t)
	_, err := saferoot.NewFilesystem("no-such-fs", saferoot.FsOptions{})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown fs")
	_, err = saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{Data: "bogus_option=1"})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown option")
	_, err = saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{Attrs: 1 << 50})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown attr")
	_, err = saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{Attrs: saferoot.AttrNoAtime | saferoot.AttrStrictAtime})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "two atime policies")
	_, err = saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{Data: "size=1m\x00,x"})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in data")
	_, err = saferoot.NewFilesystem("\xff", saferoot.FsOptions{})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "invalid UTF-8 fstype")
	_, err = saferoot.CloneTree("/", 0x80)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown clone flag")
	_, err = saferoot.CloneTree("/no/such/path", 0)
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "clone missing")
	m, err := saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{})
	if !check(t, err, "tmpfs") {
		return
	}
	err = m.SetAttr(saferoot.AttrReadOnly, saferoot.AttrReadOnly, false)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "set and clear")
	err = m.SetPropagation(saferoot.Propagation(9), false)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown propagation")
	err = m.Attach(nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "nil target")
	err = m.SetIdmap(nil, false)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "nil userns")
	err = m.Detach()
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "detach detached")
	m.Close()
	m.Close()
	err = m.SetAttr(saferoot.AttrReadOnly, 0, false)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "closed mount")
	if m.Fd() != -1 {
		t.Errorf("closed mount has an fd")
	}
}

func TestSymlinkEscapeIsConfined(t *testing.T) {
	dir := t.TempDir()
	if _, err := os.Lstat("/x"); err == nil {
		t.Fatalf("/x exists on the host; the test needs it not to")
	}
	check(t, os.Symlink("/", filepath.Join(dir, "evil")), "plant evil -> /")
	check(t, os.Symlink("../../../../..", filepath.Join(dir, "up")), "plant up")
	inMountNS(t, func() {
		r, err := saferoot.OpenRoot(dir)
		if !check(t, err, "open root") {
			return
		}
		defer r.Close()
		check(t, r.MkdirAll("/evil/x", 0o755), "mkdir through evil")
		if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
			t.Errorf("x not created inside: %v", err)
		}
		if _, err := os.Lstat("/x"); err == nil {
			t.Errorf("/x created on the host")
		}
		m, err := saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{})
		if !check(t, err, "tmpfs") {
			return
		}
		defer m.Close()
		if !check(t, m.AttachAt(r, "/evil/x"), "attach at /evil/x") {
			return
		}
		if n, typ := mountsAt(t, dir+"/x"); n != 1 || typ != "tmpfs" {
			t.Errorf("mount not inside the root: %d %q", n, typ)
		}
		if n, _ := mountsAt(t, "/x"); n != 0 {
			t.Errorf("mount escaped to /x")
		}
		check(t, m.Detach(), "detach")

		// ".." chains through a relative link resolve inside too.
		h, err := r.Resolve("/up/../evil/x")
		if !check(t, err, "resolve") {
			return
		}
		defer h.Close()
		m2, err := saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{})
		if !check(t, err, "tmpfs") {
			return
		}
		defer m2.Close()
		check(t, m2.Attach(h), "attach onto resolved")
		if n, _ := mountsAt(t, dir+"/x"); n != 1 {
			t.Errorf("mount not inside the root")
		}
		if n, _ := mountsAt(t, "/x"); n != 0 {
			t.Errorf("mount escaped to /x")
		}
		check(t, m2.Detach(), "detach")
	})
}

func TestIdmappedMount(t *testing.T) {
	dir := t.TempDir()
	requireRoot(t)
	// A process in a new user namespace mapping 0..65535 to 100000.
	cmd := exec.Command("cat")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	stdin, err := cmd.StdinPipe()
	if !check(t, err, "pipe") {
		return
	}
	if !check(t, cmd.Start(), "start userns child") {
		return
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	userns, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if !check(t, err, "open userns") {
		return
	}
	defer userns.Close()
	inMountNS(t, func() {
		r, err := saferoot.OpenRoot(dir)
		if !check(t, err, "open root") {
			return
		}
		defer r.Close()
		src, err := saferoot.NewFilesystem("tmpfs", saferoot.FsOptions{})
		if !check(t, err, "tmpfs") {
			return
		}
		defer src.Close()
		check(t, r.MkdirAll("/src", 0o755), "mkdir")
		check(t, r.MkdirAll("/mapped", 0o755), "mkdir")
		if !check(t, src.AttachAt(r, "/src"), "attach src") {
			return
		}
		check(t, os.WriteFile(filepath.Join(dir, "src/file"), []byte("x"), 0o644), "write")
		m, err := r.Clone("/src", 0)
		if !check(t, err, "clone") {
			return
		}
		defer m.Close()
		check(t, m.SetIdmap(userns, false), "idmap")
		check(t, m.AttachAt(r, "/mapped"), "attach mapped")
		var st syscall.Stat_t
		if check(t, syscall.Stat(filepath.Join(dir, "mapped/file"), &st), "stat") && st.Uid != 100000 {
			t.Errorf("uid through idmapped mount: %d", st.Uid)
		}
		check(t, m.Detach(), "detach mapped")
		check(t, src.Detach(), "detach src")
	})
}

func TestMountTable(t *testing.T) {
	requireRoot(t)
	for _, b := range []saferoot.Backend{saferoot.BackendAuto, saferoot.BackendMountinfo} {
		tbl, err := saferoot.ReadMountTable(b)
		if !check(t, err, "read table") {
			continue
		}
		if len(tbl.Entries) == 0 || tbl.Find("/") == nil {
			t.Errorf("backend %d: empty table or no /", b)
		}
	}
	if saferoot.FeatureStatmount.Available() {
		tbl, err := saferoot.ReadMountTable(saferoot.BackendStatmount)
		if check(t, err, "statmount table") && (tbl.Backend != saferoot.BackendStatmount || tbl.Entries[0].UniqueID == 0) {
			t.Errorf("statmount table: backend %d", tbl.Backend)
		}
	}
	tbl, err := saferoot.ReadMountTablePid(os.Getpid(), saferoot.BackendMountinfo)
	if check(t, err, "table of pid") && tbl.Find("/") == nil {
		t.Errorf("no / in the table of this pid")
	}
	_, err = saferoot.ReadMountTablePid(0, saferoot.BackendAuto)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "pid 0")
	_, err = saferoot.ReadMountTable(saferoot.Backend(7))
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown backend")
	tbl, err = saferoot.ParseMountinfo([]byte("22 1 0:21 / / rw,relatime shared:1 - tmpfs none rw\n"))
	if check(t, err, "parse") && (len(tbl.Entries) != 1 || tbl.Entries[0].SharedGroup != 1 || tbl.Entries[0].FsType != "tmpfs") {
		t.Errorf("parsed %+v", tbl.Entries)
	}
	_, err = saferoot.ParseMountinfo([]byte("garbage\n"))
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "garbage mountinfo")
	tbl, err = saferoot.ParseMountinfo(nil)
	if check(t, err, "parse empty") && len(tbl.Entries) != 0 {
		t.Errorf("entries from nothing")
	}
}

const configJSON = `{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
"process":{"cwd":"/work","args":["sh"],"user":{"uid":0,"gid":0}},
"mounts":[{"destination":"/proc","type":"proc","source":"proc"},
{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid","nodev","size=1m"]}],
"linux":{"maskedPaths":["/etc/secret"],"readonlyPaths":["/proc/sys"]}}`

func makeBundle(t *testing.T) string {
	b := t.TempDir()
	for _, d := range []string{"rootfs/proc", "rootfs/dev", "rootfs/tmp", "rootfs/etc", "rootfs/work"} {
		check(t, os.MkdirAll(filepath.Join(b, d), 0o755), "mkdir "+d)
	}
	check(t, os.WriteFile(filepath.Join(b, "rootfs/etc/hostname"), []byte("container\n"), 0o644), "hostname")
	check(t, os.WriteFile(filepath.Join(b, "rootfs/etc/secret"), []byte("s\n"), 0o644), "secret")
	check(t, os.WriteFile(filepath.Join(b, "config.json"), []byte(configJSON), 0o644), "config")
	return b
}

func TestValidateOCI(t *testing.T) {
	b := makeBundle(t)
	check(t, saferoot.ValidateOCI(configJSON, b), "validate")
	err := saferoot.ValidateOCI("{", b)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bad json")
	err = saferoot.ValidateOCI(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"destination":"proc","type":"proc"}]}`, b)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "relative destination")
}

func TestAssembleDetachAndEnter(t *testing.T) {
	b := makeBundle(t)
	rootfs := filepath.Join(b, "rootfs")
	inMountNS(t, func() {
		rf, err := saferoot.AssembleBundle(b, nil)
		if !check(t, err, "assemble bundle") {
			return
		}
		defer rf.Close()
		if s := rf.Strategy(); s != saferoot.StrategyDetached && s != saferoot.StrategyInPlace {
			t.Errorf("strategy %d", s)
		}
		if rf.Fd() < 0 {
			t.Errorf("rootfs fd")
		}
		for p, want := range map[string]string{"/proc": "proc", "/dev": "tmpfs", "/tmp": "tmpfs"} {
			if n, typ := mountsAt(t, rootfs+p); n != 1 || typ != want {
				t.Errorf("%s: %d %q", p, n, typ)
			}
		}
		if n, _ := mountsAt(t, rootfs+"/etc/secret"); n != 1 {
			t.Errorf("masked path not masked")
		}
		if err := os.WriteFile(rootfs+"/etc/new", nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("root not read-only: %v", err)
		}
		inner, err := rf.Root()
		if check(t, err, "rootfs root") {
			target, err := inner.Readlink("/dev/ptmx")
			if check(t, err, "readlink /dev/ptmx") && target != "pts/ptmx" {
				t.Errorf("/dev/ptmx -> %q", target)
			}
			inner.Close()
		}
		check(t, rf.Detach(), "detach")
		if n, _ := mountsAt(t, rootfs+"/proc"); n != 0 {
			t.Errorf("proc still mounted")
		}
		err = rf.Enter(saferoot.EnterChroot)
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "enter after detach")

		_, err = saferoot.AssembleOCI(configJSON, b, &saferoot.AssembleOptions{Strategy: saferoot.Strategy(9)})
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown strategy")
		_, err = saferoot.AssembleOCI("{", b, nil)
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bad config")
		if n, _ := mountsAt(t, rootfs); n != 0 {
			t.Errorf("failed assembly left a mount")
		}

		// In place, then entered: this thread's root becomes the container's
		// (it unshared CLONE_FS, so no other thread is affected).
		rf2, err := saferoot.AssembleOCI(configJSON, b, &saferoot.AssembleOptions{Strategy: saferoot.StrategyInPlace})
		if !check(t, err, "assemble in place") {
			return
		}
		defer rf2.Close()
		if rf2.Strategy() != saferoot.StrategyInPlace {
			t.Errorf("strategy %d", rf2.Strategy())
		}
		if !check(t, rf2.Enter(saferoot.EnterPivotRoot), "enter") {
			return
		}
		host, _ := os.ReadFile("/etc/hostname")
		if string(host) != "container\n" {
			t.Errorf("/etc/hostname inside: %q", host)
		}
		if wd, err := os.Getwd(); err != nil || wd != "/work" {
			t.Errorf("cwd %q %v", wd, err)
		}
		if _, err := os.Stat(b); err == nil {
			t.Errorf("host bundle visible from inside")
		}
		if n, typ := mountsAt(t, "/proc"); n != 1 || typ != "proc" {
			t.Errorf("/proc inside: %d %q", n, typ)
		}
	})
	// Other threads kept the host's root.
	if _, err := os.Stat(b); err != nil {
		t.Errorf("host root changed for other threads: %v", err)
	}
}

// nativeSpec is a saferoot RootfsSpec (not an OCI config) for the rootfs
// of a bundle made by makeBundle: proc, a small tmpfs /tmp, a read-only
// bind of the host directory data onto /data, no /dev (saferoot adds
// /dev, /dev/pts and /dev/shm), a masked file and a read-only root.
func nativeSpec(t *testing.T, bundle, data string) string {
	t.Helper()
	spec := map[string]interface{}{
		"rootfs": filepath.Join(bundle, "rootfs"),
		"mounts": []map[string]interface{}{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "size=1m"}},
			{"destination": "/data", "type": "bind", "source": data, "options": []string{"rbind", "ro"}},
		},
		"maskedPaths":  []string{"/etc/secret"},
		"readonlyRoot": true,
		"cwd":          "/work",
	}
	text, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatalf("marshal spec: %v", err)
	}
	return string(text)
}

// plan is the part of a plan's JSON the tests look at.
type plan struct {
	Rootfs string `json:"rootfs"`
	Mounts []struct {
		Destination string `json:"destination"`
		Kind        string `json:"kind"`
	} `json:"mounts"`
	ReadonlyRoot bool     `json:"readonlyRoot"`
	MaskedPaths  []string `json:"maskedPaths"`
}

func parsePlan(t *testing.T, text string) (plan, []string) {
	t.Helper()
	var p plan
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		t.Errorf("plan is not JSON: %v: %s", err, text)
	}
	var dests []string
	for _, m := range p.Mounts {
		dests = append(dests, m.Destination)
	}
	return p, dests
}

func TestPlanJSON(t *testing.T) {
	b := makeBundle(t)
	spec := nativeSpec(t, b, b)

	text, err := saferoot.PlanJSON(spec, false, "")
	if check(t, err, "plan native spec") {
		p, dests := parsePlan(t, text)
		if got := strings.Join(dests, " "); got != "/dev /dev/pts /dev/shm /proc /tmp /data" {
			t.Errorf("destinations %q", got)
		}
		if p.Rootfs != filepath.Join(b, "rootfs") || !p.ReadonlyRoot || len(p.MaskedPaths) != 1 {
			t.Errorf("plan %+v", p)
		}
		if len(p.Mounts) == 6 && p.Mounts[5].Kind != "bind" {
			t.Errorf("/data is a %q", p.Mounts[5].Kind)
		}
	}
	text, err = saferoot.PlanJSON(configJSON, true, b)
	if check(t, err, "plan OCI config") {
		p, dests := parsePlan(t, text)
		if got := strings.Join(dests, " "); got != "/proc /dev /tmp" {
			t.Errorf("OCI destinations %q", got)
		}
		if p.Rootfs != filepath.Join(b, "rootfs") {
			t.Errorf("OCI rootfs %q", p.Rootfs)
		}
	}
	// Planning changed nothing.
	if _, err := os.Stat(filepath.Join(b, "rootfs/data")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("planning created /data: %v", err)
	}

	_, err = saferoot.PlanJSON("{\"rootfs\": \"/x\",\n  \"mounts\": }", false, "")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bad JSON")
	if err != nil && !strings.Contains(err.Error(), "line 2 column 13") {
		t.Errorf("no line and column: %v", err)
	}
	_, err = saferoot.PlanJSON(`{"rootfs":"/x","readOnlyRoot":true}`, false, "")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown field")
	if err != nil && !strings.Contains(err.Error(), "readOnlyRoot") {
		t.Errorf("unknown field not named: %v", err)
	}
	_, err = saferoot.PlanJSON(spec, false, b)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bundle with a native spec")
	_, err = saferoot.PlanJSON(configJSON, false, "")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "OCI config as a native spec")
	_, err = saferoot.PlanJSON(`{"rootfs":"/x","mounts":[{"destination":"proc","type":"proc"}]}`, false, "")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "relative destination")
	_, err = saferoot.PlanJSON("{\x00}", false, "")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in spec")
	_, err = saferoot.PlanJSON(configJSON, true, "/b\x00")
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in bundle")
}

func TestAssembleSpec(t *testing.T) {
	b := makeBundle(t)
	rootfs := filepath.Join(b, "rootfs")
	data := t.TempDir()
	check(t, os.WriteFile(filepath.Join(data, "hello"), []byte("hello\n"), 0o644), "hello")
	spec := nativeSpec(t, b, data)
	inMountNS(t, func() {
		rf, err := saferoot.AssembleSpec(spec, nil)
		if !check(t, err, "assemble spec") {
			return
		}
		defer rf.Close()
		for p, want := range map[string]string{"/proc": "proc", "/tmp": "tmpfs", "/dev": "tmpfs", "/dev/pts": "devpts"} {
			if n, typ := mountsAt(t, rootfs+p); n != 1 || typ != want {
				t.Errorf("%s: %d %q", p, n, typ)
			}
		}
		if n, _ := mountsAt(t, rootfs+"/data"); n != 1 {
			t.Errorf("/data: %d mounts", n)
		}
		if got, err := os.ReadFile(rootfs + "/data/hello"); err != nil || string(got) != "hello\n" {
			t.Errorf("/data/hello: %q %v", got, err)
		}
		if err := os.WriteFile(rootfs+"/data/new", nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("/data not read-only: %v", err)
		}
		if err := os.WriteFile(rootfs+"/etc/new", nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("root not read-only: %v", err)
		}
		if n, _ := mountsAt(t, rootfs+"/etc/secret"); n != 1 {
			t.Errorf("masked path not masked")
		}
		check(t, rf.Detach(), "detach")
		if n, _ := mountsAt(t, rootfs); n != 0 {
			t.Errorf("root still mounted after detach")
		}

		rf2, err := saferoot.AssembleSpec(spec, &saferoot.AssembleOptions{Strategy: saferoot.StrategyInPlace})
		if check(t, err, "assemble spec in place") {
			if rf2.Strategy() != saferoot.StrategyInPlace {
				t.Errorf("strategy %d", rf2.Strategy())
			}
			check(t, rf2.Detach(), "detach in place")
			rf2.Close()
		}

		_, err = saferoot.AssembleSpec("{\"rootfs\": \"/x\",\n  \"mounts\": }", nil)
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bad JSON")
		if err != nil && !strings.Contains(err.Error(), "line 2 column 13") {
			t.Errorf("no line and column: %v", err)
		}
		_, err = saferoot.AssembleSpec(spec, &saferoot.AssembleOptions{Strategy: saferoot.Strategy(9)})
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "unknown strategy")
		_, err = saferoot.AssembleSpec("{\x00}", nil)
		wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL in spec")
		if n, _ := mountsAt(t, rootfs); n != 0 {
			t.Errorf("failed assembly left a mount")
		}
	})
}

// TestLockedProgramCannotUndoMounts: a program started with
// LockedSysProcAttr in an assembled root is root with CAP_SYS_ADMIN in its
// namespace, yet cannot make the read-only root writable, unmount a mask
// or the read-only /proc/sys. Started without the lock, the same remount
// works: the check can fail.
func TestLockedProgramCannotUndoMounts(t *testing.T) {
	b := makeBundle(t)
	rootfs := filepath.Join(b, "rootfs")
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		if target, err := os.Readlink("/" + d); err == nil {
			if err := os.Symlink(target, filepath.Join(rootfs, d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	config := strings.Replace(configJSON, `"mounts":[`,
		`"mounts":[{"destination":"/usr","type":"bind","source":"/usr","options":["rbind","ro"]},`, 1)
	script := `
		try() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name=$?"; }
		try can_mount mount -t tmpfs t /tmp
		try remount_root mount -o remount,bind,rw /
		try umount_mask umount /etc/secret
		try umount_sys umount /proc/sys
		try write_root touch /etc/new`
	run := func(locked bool) map[string]string {
		out := map[string]string{}
		inMountNS(t, func() {
			rf, err := saferoot.AssembleOCI(config, b, nil)
			if !check(t, err, "assemble") {
				return
			}
			defer rf.Close()
			attr := &syscall.SysProcAttr{}
			if locked {
				attr, err = saferoot.LockedSysProcAttr()
				if !check(t, err, "LockedSysProcAttr") {
					return
				}
			}
			attr.Chroot = rootfs
			cmd := exec.Command("/bin/sh", "-c", script)
			cmd.Dir = "/"
			cmd.SysProcAttr = attr
			text, err := cmd.CombinedOutput()
			if !check(t, err, "run the script: "+string(text)) {
				return
			}
			for _, line := range strings.Split(string(text), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					out[k] = v
				}
			}
		})
		return out
	}
	locked := run(true)
	if locked["can_mount"] != "0" {
		t.Errorf("no CAP_SYS_ADMIN in the lock namespace: %v", locked)
	}
	for _, k := range []string{"remount_root", "umount_mask", "umount_sys", "write_root"} {
		if v, ok := locked[k]; !ok || v == "0" {
			t.Errorf("%s worked in the locked namespace: %v", k, locked)
		}
	}
	if unlocked := run(false); unlocked["remount_root"] != "0" {
		t.Errorf("without the lock the remount should work: %v", unlocked)
	}
	if n, _ := mountsAt(t, rootfs); n != 0 {
		t.Errorf("assembled root left mounted")
	}
	f, err := saferoot.NewLockUserNamespace()
	if check(t, err, "NewLockUserNamespace") {
		f.Close()
	}
}
