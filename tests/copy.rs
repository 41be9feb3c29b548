//! Issue 13: copying into and out of a root (`docker cp`) never reaches
//! outside it, on either side.
//!
//! Each test works in `top/`: `top/root` is the root (seeded with hostile
//! symlinks: to `/`, to `..`, to the host directory's absolute path),
//! `top/host` is a host directory beside it holding marker files, whose
//! names, types, modes, owners, link counts, times and contents must be
//! the same after every copy, whether the copy succeeded or was refused.
//! `top/src` is a host source tree and `top/out` a host destination.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TempDir;
use saferoot::archive::{CopyOptions, CopySummary};
use saferoot::{ErrorKind, Root};

const HOST_MARKER: &str = "host marker\n";

struct Sandbox {
    top: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let top = TempDir::new();
        for d in ["root", "host", "src", "out"] {
            std::fs::create_dir(top.join(d)).unwrap();
        }
        let host = top.join("host");
        std::fs::write(host.join("MARKER"), HOST_MARKER).unwrap();
        std::fs::set_permissions(host.join("MARKER"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::create_dir(host.join("sub")).unwrap();
        std::fs::write(host.join("sub/deep"), HOST_MARKER).unwrap();
        std::os::unix::fs::symlink("MARKER", host.join("link")).unwrap();
        let root = top.join("root");
        // Hostile symlinks a container could have made.
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("..", root.join("dotdot")).unwrap();
        std::os::unix::fs::symlink(&host, root.join("hostlink")).unwrap();
        std::os::unix::fs::symlink(host.join("MARKER"), root.join("markerlink")).unwrap();
        Sandbox { top }
    }

    fn root(&self) -> PathBuf {
        self.top.join("root")
    }

    fn host(&self) -> PathBuf {
        self.top.join("host")
    }

    fn src(&self) -> PathBuf {
        self.top.join("src")
    }

    fn out(&self) -> PathBuf {
        self.top.join("out")
    }

    fn open(&self) -> Root {
        Root::open(self.root()).unwrap()
    }

    /// The host directory's absolute path, as an in-root path: where its
    /// symlinks lead inside the root.
    fn host_in_root(&self) -> PathBuf {
        self.root().join(self.host().strip_prefix("/").unwrap())
    }
}

/// Everything observable about a tree, keyed by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let md = std::fs::symlink_metadata(p).unwrap();
    let ft = md.file_type();
    let what = if ft.is_symlink() {
        format!("symlink -> {}", std::fs::read_link(p).unwrap().display())
    } else if ft.is_file() {
        format!(
            "file {:?}",
            String::from_utf8_lossy(&std::fs::read(p).unwrap())
        )
    } else if ft.is_dir() {
        "dir".to_string()
    } else if ft.is_fifo() {
        "fifo".to_string()
    } else {
        format!("special {:#x}", md.rdev())
    };
    out.insert(
        p.strip_prefix(base).unwrap().to_path_buf(),
        format!(
            "{what} mode={:o} uid={} gid={} nlink={} mtime={}.{}",
            md.mode(),
            md.uid(),
            md.gid(),
            if ft.is_dir() { 0 } else { md.nlink() },
            md.mtime(),
            md.mtime_nsec()
        ),
    );
    if ft.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            walk(base, &n, out);
        }
    }
}

/// Every regular file's contents under `dir` (not following symlinks).
fn contents(dir: &Path) -> Vec<(PathBuf, String)> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, v)| v.starts_with("file "))
        .map(|(k, _)| {
            let text = std::fs::read_to_string(dir.join(&k)).unwrap_or_default();
            (k, text)
        })
        .collect()
}

fn assert_no_host_content(dir: &Path) {
    for (p, text) in contents(dir) {
        assert_ne!(text, HOST_MARKER, "{} holds the host's marker", p.display());
    }
}

fn opts() -> CopyOptions {
    CopyOptions::default()
}

/// Runs `f` on a thread and fails the test if it takes more than ten
/// seconds (a fifo opened by mistake would block forever).
fn deadline<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("copy hung (more than 10 s)")
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", p.as_ref().display()))
}

/// A small source tree: `dir/{a, sub/b, abs -> HOST/MARKER, rel -> ../x}`
/// and a file `file`.
fn seed_src(sb: &Sandbox) {
    let s = sb.src();
    std::fs::create_dir_all(s.join("dir/sub")).unwrap();
    std::fs::write(s.join("dir/a"), "a\n").unwrap();
    std::fs::write(s.join("dir/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink(sb.host().join("MARKER"), s.join("dir/abs")).unwrap();
    std::os::unix::fs::symlink("../x", s.join("dir/rel")).unwrap();
    std::fs::write(s.join("file"), "file\n").unwrap();
    std::fs::set_permissions(s.join("file"), PermissionsExt::from_mode(0o751)).unwrap();
}

#[test_log::test]
fn copy_in_through_hostile_symlinks_stays_inside() {
    let sb = Sandbox::new();
    seed_src(&sb);
    let before = snapshot(&sb.host());
    let r = sb.open();
    let file = sb.src().join("file");
    let dir = sb.src().join("dir");

    // A parent that is a symlink to / or to .. means the root.
    r.copy_in(&file, "/up/x", &opts()).unwrap();
    assert_eq!(read(sb.root().join("x")), "file\n");
    r.copy_in(&file, "/dotdot/y", &opts()).unwrap();
    assert_eq!(read(sb.root().join("y")), "file\n");
    r.copy_in(&dir, "/up/", &opts()).unwrap();
    assert_eq!(read(sb.root().join("dir/sub/b")), "b\n");
    r.copy_in(&dir, "/dotdot/../../up/dir2", &opts()).unwrap();
    assert_eq!(read(sb.root().join("dir2/a")), "a\n");

    // The destination itself an outward symlink: never followed. A
    // directory cannot replace it...
    let e = r.copy_in(&dir, "/hostlink", &opts()).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR, "{e}");
    assert!(is_symlink(&sb.root().join("hostlink")));
    // ... a file does (the link, not what it points at).
    r.copy_in(&file, "/markerlink", &opts()).unwrap();
    assert_eq!(read(sb.root().join("markerlink")), "file\n");
    assert!(!is_symlink(&sb.root().join("markerlink")));

    // With a trailing / the destination is followed, inside the root: the
    // host path does not exist there.
    let e = r.copy_in(&dir, "/hostlink/", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    std::fs::create_dir_all(sb.host_in_root()).unwrap();
    let s = r.copy_in(&dir, "/hostlink/", &opts()).unwrap();
    assert_eq!(s.destination, Path::new("/hostlink/dir"));
    assert_eq!(read(sb.host_in_root().join("dir/a")), "a\n");
    // A symlinked component in the middle of the destination.
    r.copy_in(&file, "/hostlink/MARKER", &opts()).unwrap();
    assert_eq!(read(sb.host_in_root().join("MARKER")), "file\n");
    r.copy_in(&dir, "/hostlink/sub", &opts()).unwrap();
    assert_eq!(read(sb.host_in_root().join("sub/sub/b")), "b\n");

    // Symlinks in the source are copied as symlinks, never followed.
    assert_eq!(
        std::fs::read_link(sb.root().join("dir/abs")).unwrap(),
        sb.host().join("MARKER")
    );
    assert_eq!(
        std::fs::read_link(sb.root().join("dir/rel")).unwrap(),
        Path::new("../x")
    );
    // The source itself a symlink: copied as one, or followed with -L.
    std::os::unix::fs::symlink(sb.host().join("MARKER"), sb.src().join("srclink")).unwrap();
    r.copy_in(sb.src().join("srclink"), "/sl", &opts()).unwrap();
    assert!(is_symlink(&sb.root().join("sl")));
    let follow = CopyOptions {
        follow_link: true,
        ..opts()
    };
    r.copy_in(sb.src().join("srclink"), "/sl2", &follow)
        .unwrap();
    assert_eq!(read(sb.root().join("sl2")), HOST_MARKER);

    // Later copies through the links the first ones made stay inside too.
    r.copy_in(&file, "/dir/abs", &opts()).unwrap();
    r.copy_in(&dir, "/dir/rel/", &opts()).unwrap_err();

    assert_eq!(before, snapshot(&sb.host()), "the host directory changed");
}

#[test_log::test]
fn copy_out_through_hostile_symlinks_reads_and_writes_only_inside() {
    let sb = Sandbox::new();
    let before = snapshot(&sb.host());
    let root = sb.root();
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::write(root.join("data/a"), "a\n").unwrap();
    std::fs::write(root.join("data/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink("/", root.join("data/escape")).unwrap();
    std::os::unix::fs::symlink(sb.host(), root.join("data/hostlink")).unwrap();
    std::os::unix::fs::symlink("../../..", root.join("data/sub/climb")).unwrap();
    let r = sb.open();
    let out = sb.out();

    let s = r.copy_out("/data", &out, &opts()).unwrap();
    assert_eq!(s.destination, out.join("data"));
    assert_eq!(read(out.join("data/sub/b")), "b\n");
    for l in ["data/escape", "data/hostlink", "data/sub/climb"] {
        assert!(is_symlink(&out.join(l)), "{l} was not copied as a symlink");
    }

    // The source itself a symlink to the host's marker: copied as a link;
    // with -L resolved inside the root, where the host path is absent.
    r.copy_out("/markerlink", out.join("x"), &opts()).unwrap();
    assert!(is_symlink(&out.join("x")));
    let follow = CopyOptions {
        follow_link: true,
        ..opts()
    };
    let e = r
        .copy_out("/markerlink", out.join("y"), &follow)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    std::fs::create_dir_all(sb.host_in_root()).unwrap();
    std::fs::write(sb.host_in_root().join("MARKER"), "decoy\n").unwrap();
    r.copy_out("/markerlink", out.join("y"), &follow).unwrap();
    assert_eq!(read(out.join("y")), "decoy\n");
    // Parents through outward symlinks are confined as well.
    r.copy_out("/hostlink/MARKER", out.join("z"), &opts())
        .unwrap();
    assert_eq!(read(out.join("z")), "decoy\n");
    r.copy_out("/up/data/a", out.join("w"), &opts()).unwrap();
    assert_eq!(read(out.join("w")), "a\n");
    r.copy_out("/dotdot/../data/sub/.", out.join("v"), &opts())
        .unwrap();
    assert_eq!(read(out.join("v/b")), "b\n");
    // -L on a link to a directory that climbs: confined.
    r.copy_out("/data/sub/climb", out.join("u"), &follow)
        .unwrap();
    assert_eq!(read(out.join("u/data/a")), "a\n");

    // The host destination's last component is a symlink: never followed.
    let trap = out.join("trap");
    std::os::unix::fs::symlink(sb.host(), &trap).unwrap();
    let e = r.copy_out("/data", &trap, &opts()).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR, "{e}");
    let trap2 = out.join("trap2");
    std::os::unix::fs::symlink(sb.host().join("MARKER"), &trap2).unwrap();
    r.copy_out("/data/a", &trap2, &opts()).unwrap();
    assert!(!is_symlink(&trap2));
    assert_eq!(read(&trap2), "a\n");

    assert_no_host_content(&out);
    assert_eq!(before, snapshot(&sb.host()), "the host directory changed");
}

/// docker cp's rules, each in both directions.
#[test_log::test]
fn docker_cp_rules() {
    let sb = Sandbox::new();
    seed_src(&sb);
    let r = sb.open();
    let root = sb.root();
    let out = sb.out();
    let file = sb.src().join("file");
    let dir = sb.src().join("dir");
    r.copy_in(&dir, "/dir", &opts()).unwrap();
    r.copy_in(&file, "/file", &opts()).unwrap();

    // A file onto a missing name: created there, mode kept.
    let s = r.copy_in(&file, "/f1", &opts()).unwrap();
    assert_eq!((s.files, s.bytes, s.entries), (1, 5, 1), "{s:?}");
    assert_eq!(read(root.join("f1")), "file\n");
    let mode = std::fs::metadata(root.join("f1")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o751);
    r.copy_out("/file", out.join("f1"), &opts()).unwrap();
    assert_eq!(read(out.join("f1")), "file\n");

    // A file onto a missing name with a trailing /: the directory must
    // exist.
    let e = r.copy_in(&file, "/nodir/", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!root.join("nodir").exists());
    let e = r
        .copy_out("/file", out.join("nodir/"), &opts())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!out.join("nodir").exists());

    // A missing parent is an error.
    let e = r.copy_in(&file, "/no/such", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = r
        .copy_out("/file", out.join("no/such"), &opts())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // So is a missing source.
    let e = r.copy_in(sb.src().join("nope"), "/x", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = r.copy_out("/nope", out.join("x"), &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // A file onto an existing file replaces it.
    std::fs::write(root.join("f2"), "old\n").unwrap();
    r.copy_in(&file, "/f2", &opts()).unwrap();
    assert_eq!(read(root.join("f2")), "file\n");
    std::fs::write(out.join("f2"), "old\n").unwrap();
    r.copy_out("/file", out.join("f2"), &opts()).unwrap();
    assert_eq!(read(out.join("f2")), "file\n");

    // A file onto an existing directory goes into it.
    std::fs::create_dir(root.join("d3")).unwrap();
    let s = r.copy_in(&file, "/d3", &opts()).unwrap();
    assert_eq!(s.destination, Path::new("/d3/file"));
    assert_eq!(read(root.join("d3/file")), "file\n");
    std::fs::create_dir(out.join("d3")).unwrap();
    r.copy_out("/file", out.join("d3"), &opts()).unwrap();
    assert_eq!(read(out.join("d3/file")), "file\n");

    // A file with a trailing / or /. is not a directory.
    let e = r
        .copy_in(sb.src().join("file/"), "/d3", &opts())
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR, "{e}");
    let e = r.copy_out("/file/.", out.join("d3"), &opts()).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR, "{e}");

    // A directory onto a missing name: created there as the copy.
    let s = r.copy_in(&dir, "/d4", &opts()).unwrap();
    assert_eq!(s.destination, Path::new("/d4"));
    assert_eq!((s.dirs, s.files, s.symlinks), (2, 2, 2), "{s:?}");
    assert_eq!(read(root.join("d4/sub/b")), "b\n");
    r.copy_out("/dir", out.join("d4"), &opts()).unwrap();
    assert_eq!(read(out.join("d4/sub/b")), "b\n");
    assert_eq!(snapshot(&root.join("d4")), snapshot(&out.join("d4")));

    // A directory onto an existing file is an error, and changes nothing.
    std::fs::write(root.join("f5"), "keep\n").unwrap();
    let e = r.copy_in(&dir, "/f5", &opts()).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR, "{e}");
    assert_eq!(read(root.join("f5")), "keep\n");
    std::fs::write(out.join("f5"), "keep\n").unwrap();
    let e = r.copy_out("/dir", out.join("f5"), &opts()).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR, "{e}");
    assert_eq!(read(out.join("f5")), "keep\n");

    // A directory onto an existing directory goes into it under its name.
    std::fs::create_dir(root.join("d6")).unwrap();
    let s = r.copy_in(&dir, "/d6", &opts()).unwrap();
    assert_eq!(s.destination, Path::new("/d6/dir"));
    assert_eq!(read(root.join("d6/dir/a")), "a\n");
    std::fs::create_dir(out.join("d6")).unwrap();
    r.copy_out("/dir", out.join("d6/"), &opts()).unwrap();
    assert_eq!(read(out.join("d6/dir/a")), "a\n");

    // SRC/. onto an existing directory: the contents go into it, and the
    // directory's own metadata is left alone.
    std::fs::create_dir(root.join("d7")).unwrap();
    std::fs::set_permissions(root.join("d7"), PermissionsExt::from_mode(0o701)).unwrap();
    let s = r.copy_in(sb.src().join("dir/."), "/d7", &opts()).unwrap();
    assert_eq!(s.destination, Path::new("/d7"));
    assert_eq!(read(root.join("d7/a")), "a\n");
    assert_eq!(read(root.join("d7/sub/b")), "b\n");
    assert_eq!(
        std::fs::metadata(root.join("d7")).unwrap().mode() & 0o7777,
        0o701
    );
    std::fs::create_dir(out.join("d7")).unwrap();
    r.copy_out("/dir/.", out.join("d7"), &opts()).unwrap();
    assert_eq!(read(out.join("d7/a")), "a\n");
    assert!(!out.join("d7/dir").exists());

    // SRC/. onto a missing name: a new directory with the contents.
    r.copy_in(sb.src().join("dir/."), "/d8", &opts()).unwrap();
    assert_eq!(read(root.join("d8/sub/b")), "b\n");
    r.copy_out("/dir/.", out.join("d8"), &opts()).unwrap();
    assert_eq!(read(out.join("d8/sub/b")), "b\n");

    // The root itself as a destination and as a source (its contents).
    r.copy_in(&file, "/", &opts()).unwrap();
    assert_eq!(read(root.join("file")), "file\n");
    let whole = out.join("whole");
    r.copy_out("/", &whole, &opts()).unwrap();
    assert_eq!(read(whole.join("d8/sub/b")), "b\n");
    assert!(is_symlink(&whole.join("up")));

    // In-root paths must be absolute; host paths must not be empty.
    let e = r.copy_in(&file, "rel", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = r.copy_out("rel", &out, &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = r.copy_in("", "/x", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

/// Owners, modes (set-id bits), times with nanoseconds, hard links, fifos,
/// long names and long symlink targets survive the copy.
#[test_log::test]
fn metadata_links_nodes_and_long_names() {
    let sb = Sandbox::new();
    let s = sb.src().join("t");
    std::fs::create_dir(&s).unwrap();
    std::fs::write(s.join("suid"), "x\n").unwrap();
    std::os::unix::fs::chown(s.join("suid"), Some(4321), Some(4322)).unwrap();
    std::fs::set_permissions(s.join("suid"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::create_dir(s.join("sticky")).unwrap();
    std::fs::set_permissions(s.join("sticky"), PermissionsExt::from_mode(0o1777)).unwrap();
    std::fs::write(s.join("h1"), "linked\n").unwrap();
    std::fs::hard_link(s.join("h1"), s.join("h2")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let long = "n".repeat(150);
    let deep = format!("{long}/{long}/{long}");
    std::fs::create_dir_all(s.join(&deep)).unwrap();
    std::fs::write(s.join(&deep).join("f"), "deep\n").unwrap();
    let target = format!("/{}/x", "t".repeat(200));
    std::os::unix::fs::symlink(&target, s.join("longlink")).unwrap();
    // Times with nanoseconds.
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_600_000_000,
            tv_nsec: 123_456_789,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_600_000_000,
            tv_nsec: 123_456_789,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        s.join("h1"),
        &t,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();

    let src = sb.src().join("t");
    let summary: CopySummary = deadline(move || {
        let r = Root::open(src.parent().unwrap().parent().unwrap().join("root")).unwrap();
        let same = CopyOptions {
            same_owner: true,
            ..CopyOptions::default()
        };
        r.copy_in(&src, "/same", &same).unwrap();
        r.copy_in(&src, "/mine", &CopyOptions::default()).unwrap()
    });
    assert_eq!(summary.hardlinks, 1, "{summary:?}");
    assert_eq!(summary.nodes, 1, "{summary:?}");
    let root = sb.root();
    // With same_owner, everything is as in the source.
    let (a, b) = (snapshot(&s), snapshot(&root.join("same")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        if std::fs::symlink_metadata(s.join(k)).unwrap().is_dir() {
            // Directory times are made by the copy's own writes first,
            // then set; compare the rest.
            let strip = |v: &String| v.split(" mtime=").next().unwrap().to_string();
            assert_eq!(strip(v), strip(&b[k]), "{}", k.display());
        } else {
            assert_eq!(v, &b[k], "{}", k.display());
        }
    }
    let md = std::fs::metadata(root.join("same/suid")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (4321, 4322, 0o4755)
    );
    let md = std::fs::metadata(root.join("same/h1")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(md.nlink(), 2);
    assert!(std::fs::symlink_metadata(root.join("same/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        std::fs::read_link(root.join("same/longlink")).unwrap(),
        Path::new(&target)
    );
    assert_eq!(read(root.join("same").join(&deep).join("f")), "deep\n");
    // Without, the caller owns the copies and set-id bits are dropped.
    let md = std::fs::metadata(root.join("mine/suid")).unwrap();
    let me = rustix::process::geteuid().as_raw();
    assert_eq!((md.uid(), md.mode() & 0o7777), (me, 0o755));
    let md = std::fs::metadata(root.join("mine/sticky")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o1777);

    // And out again.
    let out = sb.out();
    let r = sb.open();
    let same = CopyOptions {
        same_owner: true,
        ..CopyOptions::default()
    };
    deadline({
        let out = out.clone();
        move || r.copy_out("/same", out.join("back"), &same).unwrap()
    });
    let c = snapshot(&out.join("back"));
    for (k, v) in &a {
        let strip = |v: &String| v.split(" mtime=").next().unwrap().to_string();
        assert_eq!(strip(v), strip(&c[k]), "{}", k.display());
    }
    let md = std::fs::metadata(out.join("back/h2")).unwrap();
    assert_eq!(
        (md.mtime(), md.mtime_nsec(), md.nlink()),
        (1_600_000_000, 123_456_789, 2)
    );
}

/// A limit stops the copy with a typed error.
#[test_log::test]
fn limits_apply() {
    let sb = Sandbox::new();
    seed_src(&sb);
    let r = sb.open();
    let small = CopyOptions {
        limits: saferoot::archive::Limits {
            max_bytes: 3,
            ..Default::default()
        },
        ..opts()
    };
    let e = r.copy_in(sb.src().join("dir"), "/d", &small).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
}

/// An attacker inside the root swaps a directory the copies go through
/// with a symlink to the host directory, as fast as it can, while files
/// are copied in through it and out of it. Nothing is written to the host
/// directory, and nothing copied out holds its contents.
#[test_log::test]
fn exchange_race_copy_in_never_writes_outside() {
    let sb = Sandbox::new();
    seed_src(&sb);
    let root = sb.root();
    std::fs::create_dir(root.join("d")).unwrap();
    std::os::unix::fs::symlink(sb.host(), root.join("s")).unwrap();
    // The symlink's target exists in the root too, so that copies through
    // it succeed (inside) and keep going.
    std::fs::create_dir_all(sb.host_in_root()).unwrap();
    let before = snapshot(&sb.host());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let src = sb.src();
    let ((ok, failed), swaps) = common::while_exchanging(&root, "d", "s", || {
        let r = Root::open(&root).unwrap();
        let (mut ok, mut failed) = (0, 0);
        for i in 0..400 {
            let results = [
                r.copy_in(src.join("dir"), "/d", &opts()),
                r.copy_in(src.join("file"), "/d/MARKER", &opts()),
                r.copy_in(src.join("dir/."), format!("/d/n{i}"), &opts()),
                r.copy_in(src.join("dir"), "/d/sub/", &opts()),
            ];
            for res in results {
                match res {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        log::debug!("{e}");
                        failed += 1;
                    }
                }
            }
            if std::time::Instant::now() > deadline {
                break;
            }
        }
        (ok, failed)
    });
    log::info!("{ok} copies in succeeded, {failed} failed, {swaps} swaps");
    assert!(swaps > 0, "the attacker never ran");
    assert!(ok > 0, "no copy got through: the race was not exercised");
    assert_eq!(before, snapshot(&sb.host()), "the host directory changed");
}

#[test_log::test]
fn exchange_race_copy_out_never_reads_or_writes_outside() {
    let sb = Sandbox::new();
    let root = sb.root();
    std::fs::create_dir_all(root.join("d/sub")).unwrap();
    std::fs::write(root.join("d/MARKER"), "inside\n").unwrap();
    std::fs::write(root.join("d/sub/deep"), "inside\n").unwrap();
    std::os::unix::fs::symlink(sb.host(), root.join("s")).unwrap();
    // A second pair deeper down: d/sub against d/s2 -> the host.
    std::os::unix::fs::symlink(sb.host(), root.join("d/s2")).unwrap();
    std::fs::create_dir_all(sb.host_in_root().join("sub")).unwrap();
    std::fs::write(sb.host_in_root().join("MARKER"), "decoy\n").unwrap();
    std::fs::write(sb.host_in_root().join("sub/deep"), "decoy\n").unwrap();
    let before = snapshot(&sb.host());
    let out = sb.out();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let ((ok, failed), swaps) = common::while_exchanging(&root, "d", "s", || {
        let ((ok, failed), swaps2) = common::while_exchanging(&root.join("d"), "sub", "s2", || {
            let r = Root::open(&root).unwrap();
            let (mut ok, mut failed) = (0, 0);
            for i in 0..300 {
                let results = [
                    r.copy_out("/d", out.join(format!("a{i}")), &opts()),
                    r.copy_out("/d/.", out.join(format!("b{i}")), &opts()),
                    r.copy_out("/d/sub/deep", out.join(format!("c{i}")), &opts()),
                    r.copy_out("/d/MARKER", out.join(format!("e{i}")), &opts()),
                ];
                for res in results {
                    match res {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            log::debug!("{e}");
                            failed += 1;
                        }
                    }
                }
                if std::time::Instant::now() > deadline {
                    break;
                }
            }
            (ok, failed)
        });
        log::info!("{swaps2} inner swaps");
        (ok, failed)
    });
    log::info!("{ok} copies out succeeded, {failed} failed, {swaps} swaps");
    assert!(swaps > 0, "the attacker never ran");
    assert!(ok > 0, "no copy got through: the race was not exercised");
    assert_no_host_content(&out);
    assert_eq!(before, snapshot(&sb.host()), "the host directory changed");
}

/// A fifo in the source is copied as a fifo, never opened (a copy that
/// opened it would block), on both sides.
#[test_log::test]
fn fifos_are_never_opened() {
    let sb = Sandbox::new();
    for dir in [sb.src(), sb.root()] {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("p"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }
    let (src, out, rootp) = (sb.src(), sb.out(), sb.root());
    deadline(move || {
        let r = Root::open(&rootp).unwrap();
        r.copy_in(src.join("p"), "/q", &opts()).unwrap();
        r.copy_in(src.join("p"), "/p", &opts()).unwrap();
        r.copy_out("/p", out.join("p"), &opts()).unwrap();
        r.copy_out("/", out.join("all"), &opts()).unwrap();
    });
    for p in [
        sb.root().join("q"),
        sb.out().join("p"),
        sb.out().join("all/p"),
    ] {
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_fifo());
    }
}

/// The copy holds no fd when it returns, whatever the outcome (checked
/// by the harness on a thread with its own fd table; the walk's thread
/// shares it).
#[test_log::test]
fn no_fd_is_left_open() {
    let sb = Sandbox::new();
    seed_src(&sb);
    common::in_mount_ns(|| {
        let r = sb.open();
        r.copy_in(sb.src().join("dir"), "/d1", &opts()).unwrap();
        r.copy_in(sb.src().join("dir"), "/file-not-dir/", &opts())
            .unwrap_err();
        r.copy_out("/d1", sb.out().join("d1"), &opts()).unwrap();
        r.copy_out("/nope", sb.out().join("x"), &opts())
            .unwrap_err();
        let small = CopyOptions {
            limits: saferoot::archive::Limits {
                max_entries: 2,
                ..Default::default()
            },
            ..opts()
        };
        r.copy_out("/d1", sb.out().join("d2"), &small).unwrap_err();
        let e = r
            .copy_in(sb.src().join("dir"), "/d1/a", &opts())
            .unwrap_err();
        assert_eq!(e.errno(), libc::ENOTDIR, "{e}");
    });
}
