package saferoot_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/saferoot/saferoot-go/saferoot"
)

// hostile builds a tar stream from (header, body) pairs.
func tarOf(t *testing.T, entries ...interface{}) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(entries); i += 2 {
		h := entries[i].(*tar.Header)
		body := entries[i+1].(string)
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
func symlink(name, target string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
}

// hostDir makes top/host with one file, MARKER, and returns a check that
// it is still exactly that (and that nothing landed in the real /).
func hostDir(t *testing.T, top string) (string, func()) {
	t.Helper()
	host := filepath.Join(top, "host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "MARKER"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return host, func() {
		t.Helper()
		ents, err := os.ReadDir(host)
		if err != nil || len(ents) != 1 || ents[0].Name() != "MARKER" {
			t.Errorf("the host directory changed: %v %v", ents, err)
		}
		if b, err := os.ReadFile(filepath.Join(host, "MARKER")); err != nil || string(b) != "host\n" {
			t.Errorf("the host marker changed: %q %v", b, err)
		}
		for _, p := range []string{"/MARKER_ESCAPE", "/abs_escape"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists", p)
			}
		}
	}
}

func wantFile(t *testing.T, path, text string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != text {
		t.Errorf("%s: %q %v, want %q", path, b, err, text)
	}
}

func wantSymlink(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is not a symlink: %v %v", path, fi, err)
	}
}

type failingReader struct {
	data []byte
}

var errBroken = errors.New("the archive's source broke")

func (f *failingReader) Read(b []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errBroken
	}
	n := copy(b, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestUnpackHostileArchives(t *testing.T) {
	requireRoot(t)
	top := t.TempDir()
	host, hostUnchanged := hostDir(t, top)
	rootDir := filepath.Join(top, "root")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := saferoot.OpenRoot(rootDir)
	if !check(t, err, "open root") {
		return
	}
	defer r.Close()

	// From a plain reader (through a pipe): climbing and absolute names
	// are confined, writes through a symlink to / land in the root.
	a := tarOf(t,
		reg("../../../../../../../../MARKER_ESCAPE"), "pwned\n",
		reg("/abs_escape"), "pwned\n",
		symlink("up", "/"), "",
		reg("up/through"), "inside\n",
	)
	s, err := r.Unpack(bytes.NewReader(a), nil)
	if check(t, err, "unpack") {
		if s.Entries != 4 || s.Files != 3 || s.Symlinks != 1 || s.Bytes != 19 {
			t.Errorf("summary %+v", s)
		}
	}
	wantFile(t, filepath.Join(rootDir, "MARKER_ESCAPE"), "pwned\n")
	wantFile(t, filepath.Join(rootDir, "abs_escape"), "pwned\n")
	wantFile(t, filepath.Join(rootDir, "through"), "inside\n")
	hostUnchanged()

	// From a file: a symlink to the host directory, then a write through
	// it.
	b := tarOf(t,
		symlink("hostlink", host), "",
		reg("hostlink/MARKER"), "pwned\n",
	)
	path := filepath.Join(top, "b.tar")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// (The link's target does not exist in the root: the write through
	// it is refused.)
	_, err = r.Unpack(f, &saferoot.UnpackOptions{Owners: saferoot.OwnersCaller})
	var e *saferoot.Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "hostlink/MARKER") {
		t.Errorf("write through an outward symlink: want an error naming the entry, got %v", err)
	}
	f.Close()
	wantSymlink(t, filepath.Join(rootDir, "hostlink"))
	hostUnchanged()

	// OCI whiteouts and limits.
	_, err = r.Unpack(bytes.NewReader(tarOf(t, reg(".wh.through"), "")),
		&saferoot.UnpackOptions{Whiteouts: saferoot.WhiteoutsOCI})
	check(t, err, "whiteout")
	if _, err := os.Lstat(filepath.Join(rootDir, "through")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whiteout not applied: %v", err)
	}
	_, err = r.Unpack(bytes.NewReader(a), &saferoot.UnpackOptions{MaxEntries: 1})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "limit")

	// A reader that fails: its error, not a truncated success.
	_, err = r.Unpack(&failingReader{data: a[:600]}, nil)
	if !errors.Is(err, errBroken) {
		t.Errorf("want the reader's error, got %v", err)
	}
	// Bad input.
	_, err = r.Unpack(nil, nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "nil reader")
	_, err = r.Unpack(bytes.NewReader(a), &saferoot.UnpackOptions{Owners: 9})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bad owners")
	_, err = r.Unpack(bytes.NewReader(a), &saferoot.UnpackOptions{Whiteouts: 9})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "bad whiteouts")
	hostUnchanged()
}

func TestCopyInAndOut(t *testing.T) {
	requireRoot(t)
	top := t.TempDir()
	host, hostUnchanged := hostDir(t, top)
	rootDir := filepath.Join(top, "root")
	src := filepath.Join(top, "src")
	out := filepath.Join(top, "out")
	for _, d := range []string{rootDir, filepath.Join(src, "d"), out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "d/g"), []byte("g\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "f"), []byte("f\n"), 0o644))
	must(os.Symlink("/", filepath.Join(rootDir, "up")))
	must(os.Symlink(host, filepath.Join(rootDir, "hostlink")))
	must(os.Symlink(filepath.Join(host, "MARKER"), filepath.Join(rootDir, "ml")))
	r, err := saferoot.OpenRoot(rootDir)
	if !check(t, err, "open root") {
		return
	}
	defer r.Close()

	// In, through a parent that is a symlink to /.
	s, err := r.CopyIn(filepath.Join(src, "d"), "/up/d2", nil)
	if check(t, err, "copy in") && (s.Files != 1 || s.Dirs != 1 || s.Bytes != 2) {
		t.Errorf("summary %+v", s)
	}
	wantFile(t, filepath.Join(rootDir, "d2/g"), "g\n")
	// Into an existing directory; the contents of one.
	_, err = r.CopyIn(filepath.Join(src, "f"), "/d2", nil)
	check(t, err, "copy a file into a directory")
	wantFile(t, filepath.Join(rootDir, "d2/f"), "f\n")
	_, err = r.CopyIn(filepath.Join(src, "d")+"/.", "/d2", nil)
	check(t, err, "copy contents")
	// The destination an outward symlink: not followed.
	_, err = r.CopyIn(filepath.Join(src, "d"), "/hostlink", nil)
	wantErr(t, err, syscall.ENOTDIR, saferoot.KindOS, "directory onto a symlink")
	wantSymlink(t, filepath.Join(rootDir, "hostlink"))
	_, err = r.CopyIn(filepath.Join(src, "f"), "/no/such", nil)
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "missing parent")
	_, err = r.CopyIn(filepath.Join(src, "f"), "relative", nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "relative in-root path")
	_, err = r.CopyIn(filepath.Join(src, "f"), "/x\x00y", nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "NUL byte")
	hostUnchanged()

	// Out: the whole root; symlinks come out as symlinks.
	s, err = r.CopyOut("/", filepath.Join(out, "all"), nil)
	if check(t, err, "copy out") && s.Symlinks != 3 {
		t.Errorf("summary %+v", s)
	}
	wantSymlink(t, filepath.Join(out, "all/hostlink"))
	wantFile(t, filepath.Join(out, "all/d2/g"), "g\n")
	// Following the source link resolves it inside the root.
	_, err = r.CopyOut("/ml", filepath.Join(out, "ml"), &saferoot.CopyOptions{FollowLink: true})
	wantErr(t, err, syscall.ENOENT, saferoot.KindNotFound, "follow an outward link")
	// The host destination an outward symlink: not followed.
	must(os.Symlink(host, filepath.Join(out, "trap")))
	_, err = r.CopyOut("/d2", filepath.Join(out, "trap"), nil)
	wantErr(t, err, syscall.ENOTDIR, saferoot.KindOS, "directory onto a host symlink")
	// Owners kept, or not.
	must(os.Chown(filepath.Join(rootDir, "d2/g"), 4321, 4321))
	_, err = r.CopyOut("/d2/g", filepath.Join(out, "kept"), &saferoot.CopyOptions{SameOwner: true})
	check(t, err, "same owner")
	if fi, err := os.Stat(filepath.Join(out, "kept")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 4321 {
		t.Errorf("owner not kept: %v", err)
	}
	_, err = r.CopyOut("/d2/g", filepath.Join(out, "mine"), nil)
	check(t, err, "caller's owner")
	if fi, err := os.Stat(filepath.Join(out, "mine")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("owner not the caller: %v", err)
	}
	// A limit.
	_, err = r.CopyOut("/d2", filepath.Join(out, "small"), &saferoot.CopyOptions{MaxBytes: 1})
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "limit")
	if err != nil && !strings.Contains(err.Error(), "limit") {
		t.Errorf("message does not say limit: %v", err)
	}
	hostUnchanged()

	// A closed root.
	r.Close()
	_, err = r.CopyIn(filepath.Join(src, "f"), "/z", nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "closed root")
	_, err = r.Unpack(io.LimitReader(nil, 0), nil)
	wantErr(t, err, syscall.EINVAL, saferoot.KindInvalidInput, "closed root")
}
