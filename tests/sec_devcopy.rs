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
    assemble, assemble_plan, plan, AssembleOptions, DeviceKind, DeviceSpec, MountSpec, RootfsSpec,
    Strategy,
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
            src.join(p),
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

// ---------------------------------------------------------------------------
// Class 6: /dev

/// The usual OCI /dev mounts (tmpfs, devpts, shm, mqueue).
fn dev_mounts() -> Vec<MountSpec> {
    vec![
        MountSpec::new(
            "/dev",
            "tmpfs",
            Some("tmpfs".into()),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        MountSpec::new(
            "/dev/pts",
            "devpts",
            Some("devpts".into()),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        MountSpec::new(
            "/dev/shm",
            "tmpfs",
            Some("shm".into()),
            &["nosuid", "noexec", "nodev", "mode=1777"],
        ),
        MountSpec::new(
            "/dev/mqueue",
            "mqueue",
            Some("mqueue".into()),
            &["nosuid", "noexec", "nodev"],
        ),
    ]
}

/// A host directory used as a volume, with marker files of every kind
/// /dev setup could clobber: a `null` that is a regular file, a `pts`
/// directory, an `fd` symlink, a `console` file.
fn make_volume() -> TempDir {
    let v = TempDir::new();
    std::fs::write(v.join("marker"), "precious volume data\n").unwrap();
    std::fs::write(v.join("null"), "not a device\n").unwrap();
    std::fs::write(v.join("console"), "not a console\n").unwrap();
    std::fs::create_dir(v.join("pts")).unwrap();
    std::fs::write(v.join("pts/keep"), "keep\n").unwrap();
    symlink("marker", v.join("fd")).unwrap();
    v
}

/// A rootfs whose /dev is a symlink to `target`, with an empty /vol
/// directory for the volume.
fn rootfs_with_dev_link(target: &Path) -> TempDir {
    let r = TempDir::new();
    for d in ["vol", "proc", "etc", "data"] {
        std::fs::create_dir(r.join(d)).unwrap();
    }
    std::fs::write(r.join("etc/hostname"), "container\n").unwrap();
    symlink(target, r.join("dev")).unwrap();
    r
}

fn vol_bind(vol: &Path) -> MountSpec {
    MountSpec::new("/vol", "bind", Some(vol.into()), &["rbind", "rw"])
}

/// Assembles `spec` with every strategy, expecting `InvalidInput` naming
/// `needle`; checks that nothing is left mounted under the rootfs or the
/// watched directories and that every watched directory (listing, types,
/// modes, owners, contents, timestamps) is exactly as before.
fn refused_and_untouched(spec: &RootfsSpec, watched: &[&Path], needle: &str) {
    let before: Vec<_> = watched.iter().map(|w| snapshot(w)).collect();
    for strategy in strategies() {
        common::in_mount_ns(|| {
            let e = match assemble(spec, &opts(strategy)) {
                Ok(a) => {
                    let _ = a.detach();
                    panic!("{}: assembled, but must be refused", strategy.name())
                }
                Err(e) => e,
            };
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidInput,
                "{}: {e}",
                strategy.name()
            );
            let msg = e.to_string();
            assert!(msg.contains(needle), "{}: {msg}", strategy.name());
            log::info!("{}: refused: {msg}", strategy.name());
            assert_eq!(mounts_under(&spec.rootfs), Vec::<PathBuf>::new());
            for w in watched {
                assert_eq!(mounts_under(w), Vec::<PathBuf>::new());
            }
        });
        for (w, b) in watched.iter().zip(&before) {
            assert_eq!(
                &snapshot(w),
                b,
                "{}: {} changed",
                strategy.name(),
                w.display()
            );
        }
    }
}

/// The spec variants every /dev-symlink image is tried with: the OCI /dev
/// mounts after the volume, the /dev mounts before it, the implicit /dev,
/// and no default devices with one spec device under /dev.
fn dev_specs(rootfs: &Path, vol: &Path) -> Vec<(&'static str, RootfsSpec)> {
    let base = RootfsSpec {
        rootfs: rootfs.into(),
        ..Default::default()
    };
    let mut explicit = base.clone();
    explicit.mounts = vec![vol_bind(vol)];
    explicit.mounts.extend(dev_mounts());
    let mut dev_first = base.clone();
    dev_first.mounts = dev_mounts();
    dev_first.mounts.push(vol_bind(vol));
    let mut implicit = base.clone();
    implicit.mounts = vec![vol_bind(vol)];
    let mut pts_only = base.clone();
    pts_only.mounts = vec![vol_bind(vol), dev_mounts().remove(1)];
    pts_only.default_devices = false;
    let mut device_only = base.clone();
    device_only.mounts = vec![vol_bind(vol)];
    device_only.default_devices = false;
    device_only.devices = vec![DeviceSpec {
        path: "/dev/fuse".into(),
        kind: DeviceKind::Char,
        major: 10,
        minor: 229,
        file_mode: Some(0o666),
        uid: None,
        gid: None,
    }];
    vec![
        ("explicit /dev mounts after the volume", explicit),
        ("explicit /dev mounts before the volume", dev_first),
        ("implicit /dev", implicit),
        ("only /dev/pts, no default devices", pts_only),
        ("one device, no /dev mount", device_only),
    ]
}

/// runc CVE-2026-41579 / crun CVE-2026-47766: the image's /dev is a
/// symlink to a volume mount point (`/dev -> /vol`). Whatever the spec
/// says about /dev, the run is refused and the volume is unchanged.
#[test_log::test]
fn dev_symlink_to_a_volume_is_refused_and_the_volume_is_untouched() {
    let vol = make_volume();
    let rootfs = rootfs_with_dev_link(Path::new("/vol"));
    for (what, spec) in dev_specs(rootfs.path(), vol.path()) {
        log::info!("case: {what}");
        refused_and_untouched(&spec, &[vol.path(), rootfs.path()], "/dev");
    }
}

/// `/dev -> /`: a symlink that stays inside the root is refused all the
/// same; nothing is created at the top of the rootfs.
#[test_log::test]
fn dev_symlink_to_the_root_is_refused_and_the_rootfs_is_untouched() {
    let vol = make_volume();
    let rootfs = rootfs_with_dev_link(Path::new("/"));
    for (what, spec) in dev_specs(rootfs.path(), vol.path()) {
        log::info!("case: {what}");
        refused_and_untouched(&spec, &[vol.path(), rootfs.path()], "/dev");
    }
}

/// `/dev -> ../../<host directory>`: a relative symlink that climbs out of
/// the rootfs on the host. The host directory and the rootfs are
/// unchanged.
#[test_log::test]
fn dev_symlink_climbing_to_a_host_path_is_refused() {
    let vol = make_volume();
    let host = make_volume();
    let up = "../../../../../../../../..";
    let target = PathBuf::from(up).join(host.path().strip_prefix("/").unwrap());
    let rootfs = rootfs_with_dev_link(&target);
    // The link does lead to the host directory when followed on the host.
    assert!(rootfs.join("dev/marker").exists());
    for (what, spec) in dev_specs(rootfs.path(), vol.path()) {
        log::info!("case: {what}");
        refused_and_untouched(&spec, &[host.path(), vol.path(), rootfs.path()], "/dev");
    }
}

/// A /dev tmpfs with `tmpcopyup` brings the image's symlinks into the new
/// /dev (`pts -> /vol`, `net -> /vol`, `shm -> /vol/shm`): the /dev/pts
/// mount and a device under /dev/net are refused rather than made through
/// them, and the volume is unchanged.
#[test_log::test]
fn symlinks_inside_dev_are_never_followed() {
    let vol = make_volume();
    let rootfs = TempDir::new();
    for d in ["vol", "dev"] {
        std::fs::create_dir(rootfs.join(d)).unwrap();
    }
    symlink("/vol", rootfs.join("dev/pts")).unwrap();
    symlink("/vol", rootfs.join("dev/net")).unwrap();
    symlink("/vol/shm", rootfs.join("dev/shm")).unwrap();
    let mut copyup_dev = dev_mounts()[0].clone();
    copyup_dev.options.push("tmpcopyup".into());

    // devpts onto /dev/pts -> /vol
    let mut spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![
            vol_bind(vol.path()),
            copyup_dev.clone(),
            dev_mounts().remove(1),
        ],
        default_devices: false,
        ..Default::default()
    };
    refused_and_untouched(&spec, &[vol.path(), rootfs.path()], "/dev/pts");

    // shm tmpfs onto /dev/shm -> /vol/shm (which does not exist yet)
    spec.mounts = vec![
        vol_bind(vol.path()),
        copyup_dev.clone(),
        dev_mounts().remove(2),
    ];
    refused_and_untouched(&spec, &[vol.path(), rootfs.path()], "/dev/shm");

    // a device under /dev/net -> /vol
    spec.mounts = vec![vol_bind(vol.path()), copyup_dev.clone()];
    spec.devices = vec![DeviceSpec {
        path: "/dev/net/tun".into(),
        kind: DeviceKind::Char,
        major: 10,
        minor: 200,
        file_mode: None,
        uid: None,
        gid: None,
    }];
    refused_and_untouched(&spec, &[vol.path(), rootfs.path()], "/dev/net");

    // /dev/mqueue listed before /dev, so that it would be made in the
    // image's own /dev: the image's `mqueue -> /vol` is refused too.
    symlink("/vol", rootfs.join("dev/mqueue")).unwrap();
    spec.devices.clear();
    spec.mounts = vec![vol_bind(vol.path()), dev_mounts().remove(3)];
    spec.mounts.extend(dev_mounts());
    spec.default_devices = true;
    refused_and_untouched(&spec, &[vol.path(), rootfs.path()], "/dev/mqueue");
}

/// Devices outside /dev: created in the rootfs, or in a tmpfs saferoot
/// made, but never in a bind-mounted volume and never through a symlink.
#[test_log::test]
fn devices_outside_dev_never_land_in_a_volume() {
    let vol = make_volume();
    let rootfs = TempDir::new();
    for d in ["vol", "dev", "data", "etc", "scratch"] {
        std::fs::create_dir(rootfs.join(d)).unwrap();
    }
    symlink("/vol", rootfs.join("etc/link")).unwrap();
    let dev = |p: &str| DeviceSpec {
        path: p.into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 3,
        file_mode: Some(0o640),
        uid: Some(0),
        gid: Some(0),
    };
    let mut spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![
            vol_bind(vol.path()),
            MountSpec::new("/scratch", "tmpfs", None, &["size=1m"]),
        ],
        ..Default::default()
    };
    for (p, culprit) in [
        ("/vol/null2", "at /vol:"),
        ("/vol/sub/dir/null", "at /vol:"),
        ("/etc/link/null3", "at /etc/link:"),
    ] {
        spec.devices = vec![dev(p)];
        refused_and_untouched(&spec, &[vol.path(), rootfs.path()], culprit);
    }
    // The rootfs itself and a tmpfs saferoot made are fine.
    // Devices that share a parent go into one checked directory fd; one
    // with another parent in between is checked on its own.
    spec.devices = vec![
        dev("/data/sub/null"),
        dev("/scratch/a/null"),
        dev("/data/sub/null2"),
        dev("/data/sub/null3"),
    ];
    for strategy in strategies() {
        common::in_mount_ns(|| {
            let a = assemble(&spec, &opts(strategy)).unwrap();
            for p in [
                "data/sub/null",
                "scratch/a/null",
                "data/sub/null2",
                "data/sub/null3",
            ] {
                let md = std::fs::symlink_metadata(rootfs.join(p)).unwrap();
                assert!(md.file_type().is_char_device(), "{p}");
                assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
            }
            a.detach().unwrap();
        });
        for n in ["null", "null2", "null3"] {
            std::fs::remove_file(rootfs.join("data/sub").join(n)).unwrap();
        }
        std::fs::remove_dir(rootfs.join("data/sub")).unwrap();
        assert!(!rootfs.join("scratch/a").exists(), "the tmpfs held them");
    }
}

/// Default devices go only into a tmpfs saferoot mounted on /dev: a /dev
/// of another filesystem is refused before a node is touched. (The case
/// that matters is devtmpfs, whose superblock is the host's own /dev; the
/// test uses ramfs, so that a regression cannot replace the host's device
/// nodes: the check does not single out any filesystem but tmpfs.)
#[test_log::test]
fn default_devices_only_go_into_saferoots_own_dev_tmpfs() {
    let rootfs = TempDir::new();
    std::fs::create_dir(rootfs.join("dev")).unwrap();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![MountSpec::new("/dev", "ramfs", Some("ramfs".into()), &[])],
        ..Default::default()
    };
    refused_and_untouched(&spec, &[rootfs.path()], "not a tmpfs saferoot mounted");
}

/// A plan that asks for the default devices but has no /dev tmpfs (built
/// by hand: `plan()` always adds one) is refused: the image's own /dev
/// directory is never populated.
#[test_log::test]
fn default_devices_without_a_dev_tmpfs_are_refused() {
    let rootfs = TempDir::new();
    std::fs::create_dir(rootfs.join("dev")).unwrap();
    std::fs::write(rootfs.join("dev/null"), "image file\n").unwrap();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        ..Default::default()
    };
    let mut p = plan(&spec).unwrap();
    assert!(p.default_devices);
    p.mounts.retain(|m| !m.destination.starts_with("/dev"));
    let before = snapshot(rootfs.path());
    for strategy in strategies() {
        common::in_mount_ns(|| {
            let e = assemble_plan(p.clone(), &opts(strategy)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("/dev"), "{e}");
            assert_eq!(mounts_under(rootfs.path()), Vec::<PathBuf>::new());
        });
        assert_eq!(snapshot(rootfs.path()), before, "{}", strategy.name());
    }
}
