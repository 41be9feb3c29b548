//! Issue 8, classes 6 and 7: `/dev` setup never writes through a symlink or
//! into a bind-mounted volume, and `tmpcopyup` never blocks and never copies
//! anything but regular files, directories and symlinks.
//!
//! Every check looks at the host side (marker files and directory listings
//! of the volumes, taken before and after) and at the mount table read by
//! the harness, never at saferoot's own report.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TempDir;
use rustix::fs::{FileType, Mode};
use saferoot::rootfs::{
    assemble, AssembleOptions, DeviceKind, DeviceSpec, MountSpec, RootfsSpec, Strategy,
};
use saferoot::ErrorKind;

/// The strategies this kernel (with `SAFEROOT_DISABLE_FEATURES` applied)
/// can use: detached and in place on 6.15+, in place before.
fn strategies() -> Vec<Strategy> {
    let s: Vec<Strategy> = [Strategy::Detached, Strategy::InPlace]
        .into_iter()
        .filter(|s| s.resolve().is_ok())
        .collect();
    assert!(s.contains(&Strategy::InPlace));
    s
}

fn opts(strategy: Strategy) -> AssembleOptions {
    AssembleOptions {
        strategy,
        ..Default::default()
    }
}

/// Mount points at or below `root`, from the harness's own mountinfo reader.
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    common::mount_points()
        .into_iter()
        .map(|m| m.0)
        .filter(|p| p.starts_with(root))
        .collect()
}

/// What a file looks like, for before/after comparisons: type, mode,
/// owner, device number, size, link target or content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    content: Vec<u8>,
    mtime: (i64, i64),
}

/// Every entry below `dir` (not following symlinks, never opening anything
/// but regular files and directories), keyed by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let (kind, content) = if ft.is_symlink() {
                (
                    "symlink",
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if ft.is_dir() {
                ("dir", vec![])
            } else if ft.is_file() {
                ("file", std::fs::read(&p).unwrap())
            } else if ft.is_fifo() {
                ("fifo", vec![])
            } else if ft.is_char_device() {
                ("char", vec![])
            } else if ft.is_block_device() {
                ("block", vec![])
            } else {
                ("socket", vec![])
            };
            out.insert(
                p.strip_prefix(base).unwrap().to_path_buf(),
                Entry {
                    kind,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    rdev: md.rdev(),
                    content,
                    mtime: (md.mtime(), md.mtime_nsec()),
                },
            );
            if ft.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Class 7: tmpcopyup

/// A spec with nothing but a tmpfs with `tmpcopyup` on `dest`.
fn copyup_spec(rootfs: &Path, dest: &str) -> RootfsSpec {
    RootfsSpec {
        rootfs: rootfs.to_path_buf(),
        mounts: vec![MountSpec::new(
            dest,
            "tmpfs",
            Some("tmpfs".into()),
            &["tmpcopyup", "nosuid", "nodev", "size=4m"],
        )],
        default_devices: false,
        ..Default::default()
    }
}

fn mknod(p: &Path, ft: FileType, mode: u32, dev: u64) {
    rustix::fs::mknodat(rustix::fs::CWD, p, ft, Mode::from_raw_mode(mode), dev)
        .unwrap_or_else(|e| panic!("mknod {}: {e}", p.display()));
}

fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// Three levels of directories with files, symlinks, modes and owners; a
/// fifo, a character device (1:3), a block device (7:0) and a socket that
/// must be left out.
fn make_copy_source(src: &Path) {
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::write(src.join("top.txt"), "top\n").unwrap();
    std::fs::write(src.join("a/one.txt"), "one\n").unwrap();
    std::fs::write(src.join("a/b/two.bin"), [0u8, 1, 2, 255]).unwrap();
    std::fs::write(src.join("a/b/c/three.txt"), "three\n").unwrap();
    std::fs::write(src.join("a/b/c/empty"), "").unwrap();
    symlink("../one.txt", src.join("a/b/rel-link")).unwrap();
    symlink("/etc/shadow", src.join("a/b/c/abs-link")).unwrap();
    symlink("nowhere", src.join("a/dangling")).unwrap();
    symlink("b", src.join("a/dir-link")).unwrap();
    for (p, mode, uid, gid) in [
        ("top.txt", 0o640, 1000, 1001),
        ("a/one.txt", 0o4755, 0, 0),
        ("a/b/two.bin", 0o600, 1234, 5678),
        ("a/b/c/three.txt", 0o444, 7, 8),
        ("a/b/c/empty", 0o2750, 9, 10),
        ("a/b/c", 0o1777, 11, 12),
        ("a/b", 0o750, 13, 14),
        ("a", 0o711, 15, 16),
    ] {
        let p = src.join(p);
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    lchown(&src.join("a/b/rel-link"), 21, 22);
    lchown(&src.join("a/b/c/abs-link"), 23, 24);
    mknod(&src.join("a/fifo"), FileType::Fifo, 0o644, 0);
    mknod(
        &src.join("a/b/null"),
        FileType::CharacterDevice,
        0o666,
        rustix::fs::makedev(1, 3),
    );
    mknod(
        &src.join("a/b/c/loop0"),
        FileType::BlockDevice,
        0o660,
        rustix::fs::makedev(7, 0),
    );
    let sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    drop(sock);
    // Timestamps in the past, so that a copy that forgets them shows.
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 5,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 7,
        },
    };
    for p in [
        "top.txt",
        "a/one.txt",
        "a/b/c/three.txt",
        "a/b/c",
        "a/b",
        "a",
    ] {
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &src.join(p),
            &old,
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
    }
}

/// The snapshot of a copy source with the entries tmpcopyup leaves out.
fn without_specials(mut s: BTreeMap<PathBuf, Entry>) -> BTreeMap<PathBuf, Entry> {
    s.retain(|_, e| matches!(e.kind, "file" | "dir" | "symlink"));
    s
}

/// Nested directories (three levels) are copied with their files,
/// symlinks (as symlinks), modes, owners and modification times; fifos,
/// device nodes and sockets are left out. Checked on the mounted tmpfs.
#[test_log::test]
fn tmpcopyup_copies_nested_trees_and_skips_special_files() {
    let rootfs = TempDir::new();
    make_copy_source(&rootfs.join("data"));
    let before = snapshot(&rootfs.join("data"));
    assert!(before.values().any(|e| e.kind == "block"), "{before:#?}");
    let expected = without_specials(before.clone());
    let spec = copyup_spec(rootfs.path(), "/data");
    for strategy in strategies() {
        common::in_mount_ns(|| {
            let a = assemble(&spec, &opts(strategy))
                .unwrap_or_else(|e| panic!("{}: {e}", strategy.name()));
            let data = rootfs.join("data");
            let m = common::mount_points();
            let top = m.iter().rev().find(|p| p.0 == data);
            assert_eq!(
                top.map(|p| p.1.as_str()),
                Some("tmpfs"),
                "{}: /data is not the new tmpfs",
                strategy.name()
            );
            let copied = snapshot(&data);
            for (p, want) in &expected {
                let got = copied.get(p).unwrap_or_else(|| {
                    panic!("{}: {} was not copied", strategy.name(), p.display())
                });
                let mut want = want.clone();
                let mut got = got.clone();
                if want.kind == "symlink" {
                    // The kernel keeps a symlink's own mode at 0777.
                    assert_eq!(got.mode, 0o777);
                    want.mtime = (0, 0);
                    got.mtime = (0, 0);
                }
                if want.kind == "dir" {
                    want.rdev = 0;
                    got.rdev = 0;
                }
                assert_eq!(got, want, "{}: {}", strategy.name(), p.display());
            }
            assert_eq!(
                copied.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "{}: special files must not be copied",
                strategy.name()
            );
            a.detach().unwrap();
            assert!(mounts_under(rootfs.path()).is_empty());
        });
    }
    assert_eq!(snapshot(&rootfs.join("data")), before, "the source changed");
}

/// Runs `f` on a thread of its own and fails the test if it has not
/// finished after `limit`: a copy that blocks (on a fifo) makes the test
/// fail instead of hanging the suite.
fn with_watchdog<R: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("watched: {what}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(Ok(r)) => {
            worker.join().unwrap();
            r
        }
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("{what} did not finish within {limit:?}: it blocked"),
    }
}

const PAYLOADS: [&str; 3] = ["payload of f\n", "payload of g\n", "payload of h\n"];

/// A racer swaps regular files with a fifo and with a character device
/// (1:5, endless zeros) using `renameat2(RENAME_EXCHANGE)` while the
/// directory is copied again and again. The copy never blocks (a watchdog
/// fails the test instead of letting it hang), and the tmpfs never holds
/// a fifo, a device, or a byte that is not one of the files' contents.
#[test_log::test]
fn tmpcopyup_racing_fifo_and_device_swaps_never_block_or_leak() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let rootfs = Arc::new(TempDir::new());
    let data = rootfs.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("f"), PAYLOADS[0]).unwrap();
    std::fs::write(data.join("g"), PAYLOADS[1]).unwrap();
    std::fs::write(data.join("sub/h"), PAYLOADS[2]).unwrap();
    mknod(&data.join("p"), FileType::Fifo, 0o644, 0);
    mknod(&data.join("sub/q"), FileType::Fifo, 0o644, 0);
    mknod(
        &data.join("z"),
        FileType::CharacterDevice,
        0o666,
        rustix::fs::makedev(1, 5),
    );
    let pairs = [("", "f", "p"), ("", "g", "z"), ("sub", "h", "q")];

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let racer = {
        let (stop, swaps, data) = (stop.clone(), swaps.clone(), data.clone());
        std::thread::spawn(move || {
            let dirs: Vec<std::fs::File> = pairs
                .iter()
                .map(|(d, _, _)| std::fs::File::open(data.join(d)).unwrap())
                .collect();
            while !stop.load(Ordering::Relaxed) {
                for (d, (_, a, b)) in dirs.iter().zip(pairs) {
                    if rustix::fs::renameat_with(d, a, d, b, rustix::fs::RenameFlags::EXCHANGE)
                        .is_ok()
                    {
                        swaps.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let spec = copyup_spec(rootfs.path(), "/data");
    let root2 = rootfs.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_watchdog(
            Duration::from_secs(120),
            "tmpcopyup under a racer",
            move || {
                let rootfs = root2;
                let mut copies = 0u32;
                let mut swapped_seen = 0u32;
                common::in_mount_ns(|| {
                    let strategies = strategies();
                    for i in 0..300 {
                        let strategy = strategies[i % strategies.len()];
                        let a = assemble(&spec, &opts(strategy))
                            .unwrap_or_else(|e| panic!("{}: {e}", strategy.name()));
                        let copied = snapshot(&rootfs.join("data"));
                        for (p, e) in &copied {
                            match e.kind {
                                "dir" => assert_eq!(p, Path::new("sub")),
                                "file" => {
                                    assert!(
                                        PAYLOADS.iter().any(|x| x.as_bytes() == e.content),
                                        "{}: {} holds {} bytes that are no file's content",
                                        strategy.name(),
                                        p.display(),
                                        e.content.len()
                                    );
                                    let n = p.file_name().unwrap();
                                    if n == "p" || n == "z" || n == "q" {
                                        swapped_seen += 1;
                                    }
                                }
                                other => panic!(
                                    "{}: {} is a {other} in the container",
                                    strategy.name(),
                                    p.display()
                                ),
                            }
                        }
                        copies += 1;
                        a.detach().unwrap();
                    }
                    assert!(mounts_under(rootfs.path()).is_empty());
                });
                (copies, swapped_seen)
            },
        )
    }));
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    let (copies, swapped_seen) = match result {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    };
    let swaps = swaps.load(Ordering::Relaxed);
    log::info!("{copies} copies, {swaps} swaps, {swapped_seen} files copied from a swapped name");
    assert!(swaps > 1000, "the racer hardly ran ({swaps} swaps)");
    assert!(
        swapped_seen > 0,
        "the race never hit: no file was ever copied from a name the racer swapped in"
    );
}
