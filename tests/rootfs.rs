//! Rootfs assembly against the real kernel: full specs, both strategies,
//! entering, failure injection, and one regression test per CVE class the
//! design removes. Every check reads the mount table or host-side files.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::TempDir;
use saferoot::mount::Scope;
use saferoot::rootfs::{
    assemble, plan, AssembleOptions, DeviceKind, DeviceSpec, EnterMethod, MountSpec, RootfsSpec,
    Strategy,
};
use saferoot::ErrorKind;

/// One row of the mount table below a root, read from
/// `/proc/thread-self/mountinfo` independently of the code under test.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    point: PathBuf,
    fstype: String,
    opts: String,
    propagation: String,
}

fn table_under(root: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let mut rows = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-").unwrap();
        let point = PathBuf::from(f[4].replace("\\040", " "));
        let Ok(rel) = point.strip_prefix(root) else {
            continue;
        };
        let prop = f[6..sep]
            .iter()
            .map(|x| x.split(':').next().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        rows.push(Row {
            point: Path::new("/").join(rel),
            fstype: f[sep + 1].to_string(),
            opts: f[5].to_string(),
            propagation: if prop.is_empty() {
                "private".into()
            } else {
                prop
            },
        });
    }
    rows
}

fn has(rows: &[Row], point: &str, fstype: &str, opts: &[&str]) -> bool {
    rows.iter().rev().any(|r| {
        r.point == Path::new(point)
            && r.fstype == fstype
            && opts.iter().all(|o| r.opts.split(',').any(|x| x == *o))
    })
}

/// A small rootfs: the directories a container expects, a few files.
fn make_rootfs() -> TempDir {
    let d = TempDir::new();
    for sub in ["proc", "sys", "dev", "tmp", "etc", "data", "usr/bin"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("etc/hostname"), "container\n").unwrap();
    std::fs::write(d.join("etc/motd"), "hello\n").unwrap();
    symlink("../usr/bin", d.join("etc/bin-link")).unwrap();
    d
}

fn base_spec(rootfs: &Path) -> RootfsSpec {
    RootfsSpec {
        rootfs: rootfs.to_path_buf(),
        mounts: vec![
            MountSpec::new(
                "/proc",
                "proc",
                Some("proc".into()),
                &["nosuid", "noexec", "nodev"],
            ),
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
                    "gid=5",
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
            MountSpec::new(
                "/sys",
                "sysfs",
                Some("sysfs".into()),
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            MountSpec::new("/tmp", "tmpfs", None, &["nosuid", "nodev", "size=1m"]),
        ],
        masked_paths: [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/acpi",
            "/sys/firmware",
            "/proc/nonexistent",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
        readonly_paths: ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq"]
            .iter()
            .map(PathBuf::from)
            .collect(),
        ..Default::default()
    }
}

/// The strategies this kernel (with SAFEROOT_DISABLE_FEATURES applied) can
/// use: both on Linux 6.15+, in place only before. CI also runs this file
/// with every optional feature turned off, to cover the older kernels.
fn strategies() -> Vec<Strategy> {
    let s: Vec<Strategy> = [Strategy::Detached, Strategy::InPlace]
        .into_iter()
        .filter(|s| s.resolve().is_ok())
        .collect();
    assert!(
        s.contains(&Strategy::InPlace),
        "in place works on every supported kernel"
    );
    if s.len() < 2 {
        eprintln!("strategies: only {s:?} on this kernel or with these settings");
    }
    s
}

/// Assembles `spec` in the calling (private) namespace, expecting it to be
/// refused with `kind`; checks that nothing was left mounted in the root
/// and returns the error's text.
fn assert_refused(spec: &RootfsSpec, strategy: Strategy, kind: ErrorKind) -> String {
    let e = assemble(spec, &opts(strategy)).unwrap_err();
    assert_eq!(e.kind(), kind, "{e}");
    assert!(
        table_under(&spec.rootfs).is_empty(),
        "a refused assembly left mounts"
    );
    e.to_string()
}

fn opts(strategy: Strategy) -> AssembleOptions {
    AssembleOptions {
        strategy,
        ..Default::default()
    }
}

fn check_full_table(rows: &[Row]) {
    assert!(
        has(rows, "/", "ext4", &[]) || rows.iter().any(|r| r.point == Path::new("/")),
        "{rows:#?}"
    );
    assert!(
        has(rows, "/proc", "proc", &["nosuid", "nodev", "noexec"]),
        "{rows:#?}"
    );
    assert!(has(rows, "/dev", "tmpfs", &["nosuid"]), "{rows:#?}");
    assert!(
        has(rows, "/dev/pts", "devpts", &["nosuid", "noexec"]),
        "{rows:#?}"
    );
    assert!(
        has(rows, "/dev/shm", "tmpfs", &["nosuid", "nodev", "noexec"]),
        "{rows:#?}"
    );
    assert!(has(rows, "/dev/mqueue", "mqueue", &[]), "{rows:#?}");
    assert!(has(rows, "/sys", "sysfs", &["ro", "nosuid"]), "{rows:#?}");
    assert!(
        has(rows, "/tmp", "tmpfs", &["rw", "nosuid", "nodev"]),
        "{rows:#?}"
    );
    assert!(
        has(rows, "/proc/sys", "proc", &["ro", "nosuid"]),
        "{rows:#?}"
    );
    assert!(
        has(rows, "/proc/keys", "devtmpfs", &[])
            || has(rows, "/proc/keys", "tmpfs", &[])
            || rows.iter().any(|r| r.point == Path::new("/proc/keys")),
        "{rows:#?}"
    );
    assert!(has(rows, "/sys/firmware", "tmpfs", &["ro"]), "{rows:#?}");
    assert!(!rows
        .iter()
        .any(|r| r.point == Path::new("/proc/nonexistent")));
}

fn check_devices(root: &Path) {
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let md = std::fs::symlink_metadata(root.join("dev").join(name)).unwrap();
        assert!(md.file_type().is_char_device(), "{name}");
        assert_eq!(md.rdev(), rustix::fs::makedev(major, minor), "{name}");
        assert_eq!(md.mode() & 0o777, 0o666, "{name}");
    }
    assert_eq!(
        std::fs::read_link(root.join("dev/ptmx")).unwrap(),
        Path::new("pts/ptmx")
    );
    assert_eq!(
        std::fs::read_link(root.join("dev/fd")).unwrap(),
        Path::new("/proc/self/fd")
    );
    assert_eq!(
        std::fs::read_link(root.join("dev/stderr")).unwrap(),
        Path::new("/proc/self/fd/2")
    );
}

#[test_log::test]
fn both_strategies_build_the_same_tree() {
    let rootfs = make_rootfs();
    let spec = base_spec(rootfs.path());
    let tables: Vec<Vec<Row>> = strategies()
        .into_iter()
        .map(|s| {
            common::in_mount_ns(|| {
                let a = assemble(&spec, &opts(s)).unwrap();
                assert_eq!(a.strategy(), s);
                let rows = table_under(rootfs.path());
                check_full_table(&rows);
                check_devices(rootfs.path());
                // masked files are the host's /dev/null: char 1:3
                let md = std::fs::metadata(rootfs.join("proc/timer_list")).unwrap();
                assert!(md.file_type().is_char_device());
                assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
                assert_eq!(
                    std::fs::read_dir(rootfs.join("sys/firmware"))
                        .unwrap()
                        .count(),
                    0
                );
                a.detach().unwrap();
                assert!(table_under(rootfs.path()).is_empty(), "detach left mounts");
                rows
            })
            .unwrap_or_default()
        })
        .collect();
    assert!(
        tables.windows(2).all(|w| w[0] == w[1]),
        "detached and in-place trees differ: {tables:#?}"
    );
    assert!(tables[0].len() >= 12, "{:#?}", tables[0]);
}

#[test_log::test]
fn auto_strategy_falls_back_to_in_place_without_detached_targets() {
    common::in_child(
        "auto_strategy_falls_back_to_in_place_without_detached_targets",
        &[("SAFEROOT_DISABLE_FEATURES", "detached-mount-targets")],
        false,
        || {
            let rootfs = make_rootfs();
            let spec = base_spec(rootfs.path());
            common::in_mount_ns(|| {
                let e = assert_refused(&spec, Strategy::Detached, ErrorKind::Unsupported);
                assert!(e.contains("6.15"), "{e}");
                let a = assemble(&spec, &opts(Strategy::Auto)).unwrap();
                assert_eq!(a.strategy(), Strategy::InPlace);
                check_full_table(&table_under(rootfs.path()));
                a.detach().unwrap();
            });
        },
    );
}

#[test_log::test]
fn readonly_root_tmpcopyup_rro_binds_devices_and_sysctls() {
    let rootfs = make_rootfs();
    let data = TempDir::new();
    std::fs::create_dir(data.join("sub")).unwrap();
    std::fs::write(data.join("file"), "data").unwrap();
    let mut spec = base_spec(rootfs.path());
    spec.readonly_root = true;
    spec.mounts.push(MountSpec::new(
        "/etc",
        "tmpfs",
        None,
        &["tmpcopyup", "nosuid"],
    ));
    // Recursive flags on a new filesystem are flags on the mount itself.
    spec.mounts
        .push(MountSpec::new("/rotmp", "tmpfs", None, &["rro", "rnoexec"]));
    spec.mounts.push(MountSpec::new(
        "/data",
        "bind",
        Some(data.path().into()),
        &["rbind", "rro", "nosuid"],
    ));
    spec.mounts.push(MountSpec::new(
        "/mnt/file",
        "bind",
        Some(data.join("file")),
        &["bind", "ro"],
    ));
    spec.devices.push(DeviceSpec {
        path: "/dev/fuse".into(),
        kind: DeviceKind::Char,
        major: 10,
        minor: 229,
        file_mode: Some(0o620),
        uid: Some(7),
        gid: Some(8),
    });
    common::in_mount_ns(|| {
        // A submount in the bind source, so that rro has something to recurse into.
        let dr = saferoot::Root::open(data.path()).unwrap();
        saferoot::Mount::fs("tmpfs")
            .mount()
            .unwrap()
            .attach(dr.resolve("/sub").unwrap())
            .unwrap()
            .forget();
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        let rows = table_under(rootfs.path());
        assert!(
            has(&rows, "/", "ext4", &["ro"])
                || rows
                    .iter()
                    .any(|r| r.point == Path::new("/") && r.opts.starts_with("ro")),
            "{rows:#?}"
        );
        assert!(has(&rows, "/etc", "tmpfs", &["nosuid"]), "{rows:#?}");
        assert!(
            has(&rows, "/rotmp", "tmpfs", &["ro", "noexec"]),
            "{rows:#?}"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
            "hello\n"
        );
        assert_eq!(
            std::fs::read_link(rootfs.join("etc/bin-link")).unwrap(),
            Path::new("../usr/bin")
        );
        assert!(
            has(&rows, "/data", "ext4", &["ro", "nosuid"])
                || rows
                    .iter()
                    .any(|r| r.point == Path::new("/data") && r.opts.starts_with("ro")),
            "{rows:#?}"
        );
        assert!(
            has(&rows, "/data/sub", "tmpfs", &["ro"]),
            "rro must reach the submount: {rows:#?}"
        );
        assert!(
            rows.iter()
                .any(|r| r.point == Path::new("/mnt/file") && r.opts.starts_with("ro")),
            "{rows:#?}"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("mnt/file")).unwrap(),
            "data"
        );
        let md = std::fs::symlink_metadata(rootfs.join("dev/fuse")).unwrap();
        assert_eq!(
            (md.rdev(), md.mode() & 0o777, md.uid(), md.gid()),
            (rustix::fs::makedev(10, 229), 0o620, 7, 8)
        );
        // The host side of the binds is untouched and writable.
        std::fs::write(data.join("file2"), "x").unwrap();
        assert!(std::fs::write(rootfs.join("data/file3"), "x").is_err());
        a.detach().unwrap();
        saferoot::mount::unmount_in_root(&dr, "/sub").unwrap();
    });
}

/// Entering: pivot_root through the root fd on a thread of its own (it has
/// its own fs struct and mount namespace), then look around from inside.
#[test_log::test]
fn enter_with_each_method_changes_root_and_cwd_stays_inside() {
    for method in [
        EnterMethod::PivotRoot,
        EnterMethod::Chroot,
        EnterMethod::MoveRoot,
    ] {
        let rootfs = make_rootfs();
        std::fs::write(rootfs.join("inside-marker"), "in").unwrap();
        let mut spec = base_spec(rootfs.path());
        spec.cwd = Some("/../../work/dir".into());
        spec.umask = Some(0o027);
        common::in_mount_ns(|| {
            // This thread has its own fd table: point its stdin at the
            // host's /dev/null, as a runtime's stdio often is.
            let host_null = std::fs::File::open("/dev/null").unwrap();
            rustix::stdio::dup2_stdin(&host_null).unwrap();
            let host_id = std::fs::metadata("/dev/null").unwrap();
            drop(host_null);
            let a = assemble(&spec, &AssembleOptions::default()).unwrap();
            a.enter(method).unwrap();
            let inside = std::fs::metadata("/dev/null").unwrap();
            let stdin = rustix::fs::fstat(std::io::stdin()).unwrap();
            assert_eq!(
                (stdin.st_dev, stdin.st_ino),
                (inside.dev(), inside.ino()),
                "{method:?}: stdin not reopened"
            );
            assert_ne!((inside.dev(), inside.ino()), (host_id.dev(), host_id.ino()));
            assert_eq!(
                std::fs::read_to_string("/inside-marker").unwrap(),
                "in",
                "{method:?}"
            );
            assert_eq!(
                std::env::current_dir().unwrap(),
                Path::new("/work/dir"),
                "{method:?}"
            );
            let md = std::fs::metadata("/dev/null").unwrap();
            assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
            let mi = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
            if method == EnterMethod::PivotRoot {
                // The host tree is gone from this namespace.
                let points: Vec<&str> = mi.lines().filter_map(|l| l.split(' ').nth(4)).collect();
                assert!(points.iter().all(|p| !p.contains("saferoot-test")), "{mi}");
                assert!(
                    !points.contains(&"/work"),
                    "the host's mounts are still there: {mi}"
                );
            }
            let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
            assert_eq!(old.bits(), 0o027);
        });
    }
}

#[test_log::test]
fn bad_specs_change_nothing() {
    let rootfs = make_rootfs();
    let cases: Vec<(&str, RootfsSpec)> = vec![
        (
            "relative rootfs",
            RootfsSpec {
                rootfs: "rel".into(),
                ..Default::default()
            },
        ),
        (
            "mount over /",
            RootfsSpec {
                mounts: vec![MountSpec::new("/", "tmpfs", None, &[])],
                ..base_spec(rootfs.path())
            },
        ),
        ("tmpfs in /proc", {
            let mut s = base_spec(rootfs.path());
            s.mounts
                .push(MountSpec::new("/proc/self/attr", "tmpfs", None, &[]));
            s
        }),
        ("unknown option on bind", {
            let mut s = base_spec(rootfs.path());
            s.mounts.push(MountSpec::new(
                "/x",
                "bind",
                Some("/etc".into()),
                &["bind", "frobnicate"],
            ));
            s
        }),
        ("bad sysctl", {
            let mut s = base_spec(rootfs.path());
            s.sysctls.insert("../../etc".into(), "1".into());
            s
        }),
    ];
    for (what, spec) in cases {
        assert!(plan(&spec).is_err(), "{what}");
        common::in_mount_ns(|| {
            let before = common::mount_points();
            let e = assemble(&spec, &AssembleOptions::default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
            assert_eq!(common::mount_points(), before, "{what}");
        });
    }
}

/// For every k, a spec whose k-th mount fails at mount time (its bind
/// source vanishes) leaves no mount and no fd behind, in both strategies.
#[test_log::test]
fn kth_mount_failure_rolls_back_everything() {
    let rootfs = make_rootfs();
    let spec = base_spec(rootfs.path());
    let n = spec.mounts.len();
    for strategy in strategies() {
        for k in 0..=n {
            let mut s = spec.clone();
            s.mounts.insert(
                k,
                MountSpec::new(
                    "/data",
                    "bind",
                    Some("/nonexistent/saferoot-source".into()),
                    &["bind"],
                ),
            );
            common::in_mount_ns(|| {
                let before = common::mount_points();
                let e = assemble(&s, &opts(strategy)).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotFound, "k={k}: {e}");
                assert_eq!(
                    common::mount_points(),
                    before,
                    "{strategy:?} k={k} left mounts"
                );
                // the fd check of in_mount_ns covers leaks
            });
        }
    }
}

#[test_log::test]
fn refuses_to_run_in_the_host_mount_namespace() {
    let rootfs = make_rootfs();
    let spec = base_spec(rootfs.path());
    common::in_child(
        "refuses_to_run_in_the_host_mount_namespace",
        &[],
        false,
        || {
            // This child process never unshared: it is in pid 1's namespace only
            // if the test runner is; when it is not, the check has nothing to say.
            let procfs = saferoot::procfs::Procfs::new().unwrap();
            let ours = procfs.mount_ns_id(None).unwrap();
            match procfs.mount_ns_id(Some(1)) {
                Ok(init) if init == ours => {
                    let e = assemble(&spec, &AssembleOptions::default()).unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                    assert!(e.to_string().contains("unshare"), "{e}");
                }
                // Another namespace than pid 1's: nothing to refuse, and the
                // check must not get in the way.
                Ok(_) => {}
                // Without CAP_SYS_PTRACE pid 1's namespace cannot be read; the
                // error must say so rather than pass as a match.
                Err(e) => assert_eq!(e.kind(), ErrorKind::Permission, "{e}"),
            }
        },
    );
}

// ---- CVE regression tests: the attacker's rootfs, checked from the host ----

/// CVE-2019-19921 / CVE-2023-27561: /proc in the rootfs is a symlink to a
/// directory the attacker controls; a proc mount must not follow it.
#[test_log::test]
fn cve_2019_19921_proc_symlink_is_refused() {
    for target in ["/evil", "evil"] {
        let rootfs = make_rootfs();
        std::fs::remove_dir(rootfs.join("proc")).unwrap();
        std::fs::create_dir(rootfs.join("evil")).unwrap();
        symlink(target, rootfs.join("proc")).unwrap();
        let spec = base_spec(rootfs.path());
        common::in_mount_ns(|| {
            let e = assert_refused(&spec, Strategy::Auto, ErrorKind::SafetyViolation);
            assert!(e.contains("/proc"), "{e}");
            assert!(!common::is_mount_point(&rootfs.join("evil")));
        });
    }
}

/// CVE-2023-27561 variant: /sys as a symlink.
#[test_log::test]
fn cve_2023_27561_sys_symlink_is_refused() {
    let rootfs = make_rootfs();
    std::fs::remove_dir(rootfs.join("sys")).unwrap();
    symlink("/tmp", rootfs.join("sys")).unwrap();
    let spec = base_spec(rootfs.path());
    common::in_mount_ns(|| {
        assert_refused(&spec, Strategy::Auto, ErrorKind::SafetyViolation);
    });
}

/// CVE-2021-30465: a mount destination swapped for a symlink to / while
/// mounts are made. The attacker exchanges a directory and a symlink in a
/// loop; every assembled tree must have its tmpfs inside the rootfs and
/// nothing mounted anywhere else.
#[test_log::test]
fn cve_2021_30465_destination_exchange_race_stays_inside() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::write(host.join("marker"), "host").unwrap();
    std::fs::create_dir(rootfs.join("data/d")).unwrap();
    symlink(host.path(), rootfs.join("data/s")).unwrap();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![MountSpec::new("/data/d", "tmpfs", None, &[])],
        default_devices: false,
        ..Default::default()
    };
    common::in_mount_ns(|| {
        let (attempts, swaps) = common::while_exchanging(&rootfs.join("data"), "d", "s", || {
            let mut attempts = 0;
            for _ in 0..200 {
                attempts += 1;
                if let Ok(a) = assemble(&spec, &opts(Strategy::Auto)) {
                    for r in common::mount_points() {
                        if r.0.starts_with(host.path()) {
                            panic!("mount escaped to {}", r.0.display());
                        }
                    }
                    a.detach().unwrap();
                }
            }
            attempts
        });
        assert!(swaps > 0, "the attacker never swapped");
        eprintln!("CVE-2021-30465 race: {attempts} assemblies, {swaps} swaps");
        assert!(!common::is_mount_point(host.path()));
        assert_eq!(
            std::fs::read_to_string(host.join("marker")).unwrap(),
            "host"
        );
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 1);
    });
}

/// CVE-2024-45310: mkdir_all racing a symlink swap must not create
/// directories on the host.
#[test_log::test]
fn cve_2024_45310_racing_mkdir_all_creates_nothing_on_the_host() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::create_dir(rootfs.join("data/d")).unwrap();
    symlink(host.path(), rootfs.join("data/s")).unwrap();
    common::in_mount_ns(|| {
        let root = saferoot::Root::open(rootfs.path()).unwrap();
        let ((), swaps) = common::while_exchanging(&rootfs.join("data"), "d", "s", || {
            for i in 0..2000 {
                let _ = root.mkdir_all(format!("/data/d/n{i}/m"), 0o755);
            }
        });
        assert!(swaps > 0, "the attacker never swapped");
        assert_eq!(
            std::fs::read_dir(host.path()).unwrap().count(),
            0,
            "directories appeared on the host"
        );
    });
}

/// CVE-2025-31133: the container's /dev/null is a symlink to a host file;
/// masking must use the host's real /dev/null, and masked files must be
/// char 1:3.
#[test_log::test]
fn cve_2025_31133_masking_never_uses_the_containers_dev_null() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::write(host.join("core_pattern"), "precious").unwrap();
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    symlink(host.join("core_pattern"), rootfs.join("dev/null")).unwrap();
    // /dev is bound from the rootfs itself, so saferoot does not replace it.
    let mut spec = base_spec(rootfs.path());
    spec.mounts.retain(|m| !m.destination.starts_with("/dev"));
    let devdir = TempDir::new();
    symlink(host.join("core_pattern"), devdir.join("null")).unwrap();
    spec.mounts.push(MountSpec::new(
        "/dev",
        "bind",
        Some(devdir.path().into()),
        &["rbind"],
    ));
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        let md = std::fs::metadata(rootfs.join("proc/timer_list")).unwrap();
        assert!(md.file_type().is_char_device());
        assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(
            std::fs::read_to_string(host.join("core_pattern")).unwrap(),
            "precious"
        );
        assert!(!common::is_mount_point(&host.join("core_pattern")));
        a.detach().unwrap();
    });
}

/// CVE-2025-52565: /dev/console planted as a symlink to a host file; the
/// console bind must not follow it.
#[test_log::test]
fn cve_2025_52565_console_symlink_is_not_followed() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::write(host.join("target"), "host").unwrap();
    let devdir = TempDir::new();
    symlink(host.join("target"), devdir.join("console")).unwrap();
    let mut spec = base_spec(rootfs.path());
    spec.mounts.retain(|m| !m.destination.starts_with("/dev"));
    spec.mounts.push(MountSpec::new(
        "/dev",
        "bind",
        Some(devdir.path().into()),
        &["rbind"],
    ));
    common::in_mount_ns(|| {
        let (master, peer) = open_pty();
        let o = AssembleOptions {
            console: Some(peer),
            ..Default::default()
        };
        let a = assemble(&spec, &o).unwrap();
        assert!(
            !common::is_mount_point(&host.join("target")),
            "console was bound onto the host file"
        );
        assert_eq!(
            std::fs::read_to_string(host.join("target")).unwrap(),
            "host"
        );
        let md = std::fs::symlink_metadata(rootfs.join("dev/console")).unwrap();
        assert!(md.file_type().is_char_device(), "{md:?}");
        a.detach().unwrap();
        drop(o);
        drop(master);
    });
}

/// A pty pair: (master, peer). The peer's node exists only while the
/// master is open.
fn open_pty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use rustix::fs::OFlags;
    let m = rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
        .unwrap();
    rustix::pty::grantpt(&m).unwrap();
    rustix::pty::unlockpt(&m).unwrap();
    let name = rustix::pty::ptsname(&m, Vec::new()).unwrap();
    let p = PathBuf::from(name.to_str().unwrap());
    let peer = rustix::fs::open(
        &p,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    (m, peer)
}

/// CVE-2025-52881: a sysctl write redirected through the container's /proc
/// (here: the sysctl's file masked in the container, and a host file bound
/// over an allowed /proc path) must go to the real procfs instead, in the
/// container's (the assembling thread's own) ipc namespace.
#[test_log::test]
fn cve_2025_52881_sysctls_use_a_private_procfs() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::write(host.join("fake"), "untouched").unwrap();
    let mut spec = base_spec(rootfs.path());
    spec.mounts.push(MountSpec::new(
        "/proc/sys/kernel/ns_last_pid",
        "bind",
        Some(host.join("fake")),
        &["bind"],
    ));
    spec.masked_paths.push("/proc/sys/kernel/shmmni".into());
    spec.namespaces.ipc = true;
    let host_value = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    common::in_mount_ns(|| {
        #[allow(deprecated)]
        rustix::thread::unshare(rustix::thread::UnshareFlags::NEWIPC).unwrap();
        let procfs = saferoot::procfs::Procfs::new().unwrap();
        let cur = procfs.read_sysctl("kernel.shmmni").unwrap();
        let want = if cur == "1234" { "1235" } else { "1234" };
        let mut s = spec.clone();
        s.sysctls = BTreeMap::from([("kernel.shmmni".to_string(), want.to_string())]);
        let a = assemble(&s, &AssembleOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(host.join("fake")).unwrap(),
            "untouched"
        );
        // The container's file is the mask; the namespace got the value.
        assert_eq!(
            std::fs::read_to_string(rootfs.join("proc/sys/kernel/shmmni")).unwrap(),
            ""
        );
        assert_eq!(procfs.read_sysctl("kernel.shmmni").unwrap(), want);
        a.detach().unwrap();
    });
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_value
    );
}

/// CVE-2026-41579: the rootfs's /dev is a symlink out of the root; /dev
/// setup must happen inside the root.
#[test_log::test]
fn cve_2026_41579_dev_symlink_stays_inside_the_root() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::remove_dir(rootfs.join("dev")).unwrap();
    symlink(host.path(), rootfs.join("dev")).unwrap();
    let mut spec = base_spec(rootfs.path());
    spec.mounts.retain(|m| !m.destination.starts_with("/dev"));
    common::in_mount_ns(|| {
        let r = assemble(&spec, &AssembleOptions::default());
        assert_eq!(
            std::fs::read_dir(host.path()).unwrap().count(),
            0,
            "nodes created on the host"
        );
        assert!(
            !common::is_mount_point(host.path()),
            "/dev landed on the host directory"
        );
        if let Ok(a) = r {
            for p in common::mount_points() {
                assert!(!p.0.starts_with(host.path()), "{p:?}");
            }
            a.detach().unwrap();
        }
    });
}

/// Mounts inside /proc: only the lxcfs allowlist, and /proc itself only
/// from a procfs.
#[test_log::test]
fn proc_policy_is_enforced_at_mount_time() {
    let rootfs = make_rootfs();
    let mut spec = base_spec(rootfs.path());
    let src = TempDir::new();
    std::fs::write(src.join("cpuinfo"), "fake cpu").unwrap();
    spec.mounts.push(MountSpec::new(
        "/proc/cpuinfo",
        "bind",
        Some(src.join("cpuinfo")),
        &["bind"],
    ));
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(rootfs.join("proc/cpuinfo")).unwrap(),
            "fake cpu"
        );
        a.detach().unwrap();
    });
    let mut bad = base_spec(rootfs.path());
    bad.mounts[0] = MountSpec::new("/proc", "bind", Some(src.path().into()), &["rbind"]);
    common::in_mount_ns(|| {
        assert_refused(&bad, Strategy::Auto, ErrorKind::InvalidInput);
    });
}

#[test_log::test]
fn user_namespace_binds_devices_and_keeps_locked_flags() {
    common::in_child(
        "user_namespace_binds_devices_and_keeps_locked_flags",
        &[],
        true,
        || {
            let rootfs = make_rootfs();
            let mut spec = base_spec(rootfs.path());
            spec.user_namespace = true;
            // sysfs, proc and mqueue need namespaces (net, pid, ipc) owned by this
            // user namespace; the child has only a mount namespace of its own.
            spec.mounts
                .retain(|m| !matches!(m.fs_type.as_str(), "sysfs" | "proc" | "mqueue"));
            spec.masked_paths.clear();
            spec.readonly_paths.clear();
            // Only uid/gid 0 are mapped: devpts cannot be given group 5.
            for m in &mut spec.mounts {
                m.options.retain(|o| o != "gid=5");
            }
            spec.mounts.push(MountSpec::new(
                "/usr",
                "bind",
                Some("/usr".into()),
                &["rbind", "ro"],
            ));
            // The mounts inherited from the parent namespace are locked:
            // their atime policy cannot be changed here. Asking for noatime
            // must keep the source's policy instead of failing.
            spec.mounts.push(MountSpec::new(
                "/data",
                "bind",
                Some("/usr".into()),
                &["bind", "noatime", "nosuid"],
            ));
            common::in_mount_ns(|| {
                let a = assemble(&spec, &AssembleOptions::default()).unwrap();
                let md = std::fs::metadata(rootfs.join("dev/null")).unwrap();
                assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
                let rows = table_under(rootfs.path());
                assert!(
                    rows.iter().any(|r| r.point == Path::new("/dev/null")),
                    "expected a bind of the host node: {rows:#?}"
                );
                let data = rows.iter().rev().find(|r| r.point == Path::new("/data"));
                let data = data.expect("no /data mount");
                assert!(
                    data.opts.contains("nosuid") && !data.opts.contains("noatime"),
                    "{data:?}"
                );
                a.detach().unwrap();
                // The same bind without the user-namespace flag fails: the
                // flag really is locked.
                let mut strict = spec.clone();
                strict.user_namespace = false;
                strict.default_devices = false;
                strict
                    .mounts
                    .retain(|m| m.destination == Path::new("/data"));
                let e = assemble(&strict, &AssembleOptions::default()).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
            });
        },
    );
}

/// The default `runc spec` config plus binds, tmpcopyup, rro, a device and
/// extra masked and read-only paths: assembled, entered with pivot_root,
/// and the mount table seen from inside compared with the expected one.
#[cfg(feature = "oci")]
#[test_log::test]
fn full_runc_default_config_assembled_entered_and_compared() {
    full_oci_config("tests/fixtures/runc-spec-default.json");
}

/// The same with the config `crun spec` writes.
#[cfg(feature = "oci")]
#[test_log::test]
fn full_crun_default_config_assembled_entered_and_compared() {
    full_oci_config("tests/fixtures/crun-spec-default.json");
}

#[cfg(feature = "oci")]
fn full_oci_config(fixture: &str) {
    let rootfs = make_rootfs();
    let data = TempDir::new();
    std::fs::write(data.join("secret"), "s").unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    cfg["root"]["path"] = rootfs.path().to_str().unwrap().into();
    cfg["root"]["readonly"] = true.into();
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    mounts.push(serde_json::json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", "rro", "nosuid", "nodev"]}));
    mounts.push(serde_json::json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "nosuid", "nodev", "mode=755"]}));
    cfg["linux"]["devices"] = serde_json::json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    cfg["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push("/data/secret".into());
    cfg["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push("/etc".into());
    let spec = saferoot::oci::spec_from_json(&cfg.to_string(), Path::new("/")).unwrap();
    let masked: Vec<PathBuf> = spec.masked_paths.clone();
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        a.enter(EnterMethod::PivotRoot).unwrap();
        // thread-self: this thread alone has the container's namespace.
        let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        let mut seen: Vec<(String, String, String)> = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let sep = f.iter().position(|x| *x == "-").unwrap();
                (f[4].to_string(), f[sep + 1].to_string(), f[5].to_string())
            })
            .collect();
        let mut expected: Vec<(&str, &str)> = vec![
            ("/", "ext4"),
            ("/proc", "proc"),
            ("/dev", "tmpfs"),
            ("/dev/pts", "devpts"),
            ("/dev/shm", "tmpfs"),
            ("/dev/mqueue", "mqueue"),
            ("/sys", "sysfs"),
            ("/data", "ext4"),
            ("/etc", "tmpfs"),
            ("/etc", "tmpfs"),
        ];
        for p in [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ] {
            if Path::new(p).exists() {
                expected.push((p, "proc"));
            }
        }
        let mut masked_points = Vec::new();
        for p in &masked {
            if p.exists() {
                masked_points.push(p.to_str().unwrap().to_string());
            }
        }
        // Which masks exist depends on the kernel; each must be a mount.
        for p in &masked_points {
            assert!(
                seen.iter().any(|(m, _, _)| m == p),
                "{p} not masked: {seen:#?}"
            );
        }
        let mut unexpected: Vec<_> = seen
            .iter()
            .filter(|(m, fs, _)| {
                !expected.iter().any(|(em, efs)| em == m && efs == fs) && !masked_points.contains(m)
            })
            .cloned()
            .collect();
        unexpected.retain(|(m, _, _)| m != "/");
        // A cgroup v1 host: the container gets the host's hierarchy, a
        // tmpfs with one cgroup mount per controller, all read-only.
        unexpected.retain(|(m, fs, o)| {
            !(m.starts_with("/sys/fs/cgroup")
                && matches!(fs.as_str(), "tmpfs" | "cgroup" | "cgroup2")
                && o.starts_with("ro"))
        });
        assert!(unexpected.is_empty(), "unexpected mounts: {unexpected:#?}");
        for (m, fs) in &expected {
            assert!(
                seen.iter()
                    .any(|(sm, sfs, _)| sm == m && (sfs == fs || *m == "/")),
                "missing {m} {fs}: {seen:#?}"
            );
        }
        let opts_of = |p: &str| {
            seen.iter()
                .rev()
                .find(|(m, _, _)| m == p)
                .map(|(_, _, o)| o.clone())
                .unwrap()
        };
        assert!(opts_of("/").starts_with("ro"), "{}", opts_of("/"));
        assert!(opts_of("/sys").starts_with("ro"));
        assert!(opts_of("/sys/fs/cgroup").starts_with("ro"));
        assert!(seen
            .iter()
            .any(|(m, fs, _)| m == "/sys/fs/cgroup" && (fs == "cgroup2" || fs == "tmpfs")));
        assert!(opts_of("/data").starts_with("ro") && opts_of("/data").contains("nosuid"));
        assert!(opts_of("/proc/sys").starts_with("ro"));
        assert!(
            opts_of("/etc").starts_with("ro"),
            "readonlyPaths /etc: {}",
            opts_of("/etc")
        );
        assert_eq!(std::fs::read_to_string("/etc/motd").unwrap(), "hello\n");
        assert!(std::fs::read_to_string("/data/secret").unwrap().is_empty());
        let md = std::fs::metadata("/dev/fuse").unwrap();
        assert_eq!(md.rdev(), rustix::fs::makedev(10, 229));
        assert!(
            std::fs::write("/newfile", "x").is_err(),
            "root must be read-only"
        );
        seen.clear();
    });
}

/// A root without /proc: entering must not depend on the container's
/// procfs (stdio and the working directory are prepared before the switch).
#[test_log::test]
fn enter_a_root_without_proc() {
    let rootfs = make_rootfs();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![MountSpec::new("/tmp", "tmpfs", None, &[])],
        cwd: Some("/work".into()),
        ..Default::default()
    };
    common::in_mount_ns(|| {
        let host_null = std::fs::File::open("/dev/null").unwrap();
        rustix::stdio::dup2_stdout(&host_null).unwrap();
        drop(host_null);
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        a.enter(EnterMethod::PivotRoot).unwrap();
        assert!(!Path::new("/proc/self").exists());
        assert_eq!(std::env::current_dir().unwrap(), Path::new("/work"));
        let out = rustix::fs::fstat(std::io::stdout()).unwrap();
        let null = std::fs::metadata("/dev/null").unwrap();
        assert_eq!((out.st_dev, out.st_ino), (null.dev(), null.ino()));
        // The harness reads /proc for its fd and mount-table checks.
        let root = saferoot::Root::open("/").unwrap();
        saferoot::Mount::fs("proc")
            .mount()
            .unwrap()
            .attach(root.resolve("/proc").unwrap())
            .unwrap()
            .forget();
    });
}

/// Without default devices and without a /dev in the rootfs, nothing is
/// created under /dev but the devices the spec asks for.
#[test_log::test]
fn no_default_devices_and_no_dev_directory() {
    let rootfs = make_rootfs();
    std::fs::remove_dir(rootfs.join("dev")).unwrap();
    let mut spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        default_devices: false,
        ..Default::default()
    };
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        assert!(!rootfs.join("dev").exists());
        a.detach().unwrap();
    });
    spec.devices.push(DeviceSpec {
        path: "/dev/null".into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 3,
        file_mode: None,
        uid: None,
        gid: None,
    });
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        let names: Vec<_> = std::fs::read_dir(rootfs.join("dev"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["null"]);
        a.detach().unwrap();
    });
    std::fs::remove_file(rootfs.join("dev/null")).unwrap();
    std::fs::remove_dir(rootfs.join("dev")).unwrap();
}

/// A cgroup2 host: the OCI `cgroup` mount is a fresh cgroup2 where the
/// kernel allows one, and a bind of the host's hierarchy where it refuses
/// (a user namespace without a cgroup namespace of its own). The host's
/// unified hierarchy is bound over /sys/fs/cgroup first, in the test's own
/// namespace, so that the machine looks like a cgroup2 host either way.
#[test_log::test]
fn cgroup_is_fresh_cgroup2_or_falls_back_to_a_bind() {
    fn run(expect_fresh_refused: bool) {
        let rootfs = make_rootfs();
        std::fs::create_dir_all(rootfs.join("sys/fs/cgroup")).unwrap();
        let spec = RootfsSpec {
            rootfs: rootfs.path().into(),
            mounts: vec![MountSpec::new(
                "/sys/fs/cgroup",
                "cgroup",
                Some("cgroup".into()),
                &["nosuid", "noexec", "nodev", "ro"],
            )],
            default_devices: false,
            user_namespace: expect_fresh_refused,
            ..Default::default()
        };
        common::in_mount_ns(|| {
            let unified = if Path::new("/sys/fs/cgroup/unified").is_dir() {
                "/sys/fs/cgroup/unified"
            } else {
                "/sys/fs/cgroup"
            };
            let host = saferoot::Root::open("/sys/fs/cgroup").unwrap();
            saferoot::Mount::clone_tree(unified, Scope::Mount)
                .unwrap()
                .attach(host.handle().unwrap())
                .unwrap()
                .forget();
            let fresh = saferoot::Mount::fs("cgroup2").mount();
            assert_eq!(fresh.is_err(), expect_fresh_refused, "{fresh:?}");
            drop(fresh);
            let a = assemble(&spec, &AssembleOptions::default()).unwrap();
            let rows = table_under(rootfs.path());
            assert!(
                has(
                    &rows,
                    "/sys/fs/cgroup",
                    "cgroup2",
                    &["ro", "nosuid", "nodev", "noexec"]
                ),
                "{rows:#?}"
            );
            a.detach().unwrap();
            saferoot::mount::unmount_handle(
                &saferoot::Root::open("/sys/fs/cgroup")
                    .unwrap()
                    .handle()
                    .unwrap(),
            )
            .unwrap();
        });
    }
    if !common::is_child() {
        run(false);
    }
    common::in_child(
        "cgroup_is_fresh_cgroup2_or_falls_back_to_a_bind",
        &[],
        true,
        || run(true),
    );
}

/// In a new pid namespace, pid 1 is the container's own init, not the
/// host's: the host-namespace check must not mistake the caller's own
/// (private) mount namespace for the host's. The child runs as pid 1 of a
/// new pid namespace, in a mount namespace of its own.
#[test_log::test]
fn assembly_in_a_new_pid_namespace_is_not_refused() {
    const NAME: &str = "assembly_in_a_new_pid_namespace_is_not_refused";
    if common::is_child() {
        let procfs = saferoot::procfs::Procfs::new().unwrap();
        assert!(!procfs.in_initial_pid_ns().unwrap());
        assert_eq!(rustix::process::getpid().as_raw_nonzero().get(), 1);
        let rootfs = make_rootfs();
        let a = assemble(&base_spec(rootfs.path()), &AssembleOptions::default()).unwrap();
        assert!(has(&table_under(rootfs.path()), "/proc", "proc", &[]));
        a.detach().unwrap();
        return;
    }
    let out = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount",
            "--propagation",
            "private",
            "--",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("SAFEROOT_TEST_CHILD", NAME)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // And here, in the pid namespace the tests started in, the answer
    // matches what the kernel says in NSpid.
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let levels = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .count();
    let procfs = saferoot::procfs::Procfs::new().unwrap();
    assert_eq!(procfs.in_initial_pid_ns().unwrap(), levels == 1);
}

/// `rootfsPropagation: rshared`: the container's mounts are shared, and
/// pivot_root still works because the mount the rootfs lives on was made
/// private (pivot_root refuses a shared parent).
#[test_log::test]
fn shared_root_propagation_and_pivot_root() {
    let rootfs = make_rootfs();
    let mut spec = base_spec(rootfs.path());
    spec.rootfs_propagation = saferoot::rootfs::PropagationSetting::parse("rshared");
    assert!(spec.rootfs_propagation.is_some());
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        // Until it is entered, the tree is a slave: a shared copy of the
        // host's mounts would send the container's mounts to the host.
        let rows = table_under(rootfs.path());
        assert!(
            rows.iter().all(|r| !r.propagation.contains("shared")),
            "{rows:#?}"
        );
        a.enter(EnterMethod::PivotRoot).unwrap();
        assert!(Path::new("/etc/motd").exists());
        let rows = table_under(Path::new("/"));
        for p in ["/", "/proc", "/dev"] {
            let r = rows.iter().find(|r| r.point == Path::new(p)).unwrap();
            assert!(r.propagation.contains("shared"), "{r:?}");
        }
    });
}

/// After entering a root without /proc, pathrs 0.2 panics while it
/// describes an error. saferoot turns that into an error naming the
/// operation: a runtime working in the new root gets a `Result`, not an
/// unwinding panic. Lookups and mkdir_all, which saferoot makes itself
/// with openat2, need no /proc at all.
#[test_log::test]
fn a_root_without_proc_gives_errors_not_panics() {
    let rootfs = make_rootfs();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        default_devices: false,
        ..Default::default()
    };
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        a.enter(EnterMethod::PivotRoot).unwrap();
        assert!(!Path::new("/proc/self").exists());
        let root = saferoot::Root::open("/").unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            root.resolve("/nonexistent/x").map(drop)
        }));
        let e = r.expect("a panic escaped from the library").unwrap_err();
        assert_eq!(e.path(), Some(Path::new("/nonexistent/x")), "{e}");
        // An operation that still goes through pathrs and fails.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            root.readlink("/nonexistent/link").map(drop)
        }));
        let e = r.expect("a panic escaped from the library").unwrap_err();
        assert_eq!(e.path(), Some(Path::new("/nonexistent/link")), "{e}");
        // mkdir_all needs no /proc: missing directories are made with
        // mkdirat and opened from their parent's fd.
        root.mkdir_all("/made/here", 0o755).unwrap();
        assert!(Path::new("/made/here").is_dir());
        // Lookups that succeed need no /proc.
        assert!(root.resolve("/etc/motd").is_ok());
        // The harness needs a /proc for its own checks.
        saferoot::Mount::fs("proc")
            .mount()
            .unwrap()
            .attach(root.resolve("/proc").unwrap())
            .unwrap()
            .forget();
    });
}

/// A device whose name the rootfs already holds replaces what is there, as
/// runc does: a regular file and a symlink (to a host file) in a directory
/// of the rootfs become the nodes asked for, the symlink's target is
/// neither followed nor changed, and a name that is free is made as usual.
#[test_log::test]
fn devices_replace_what_the_rootfs_has_at_their_names() {
    let rootfs = make_rootfs();
    let host = TempDir::new();
    std::fs::write(host.join("file"), "host").unwrap();
    std::fs::create_dir(rootfs.join("data/devs")).unwrap();
    std::fs::write(rootfs.join("data/devs/was-file"), "old").unwrap();
    symlink(host.join("file"), rootfs.join("data/devs/was-link")).unwrap();
    let mut spec = base_spec(rootfs.path());
    let node = |path: &str, minor| DeviceSpec {
        path: path.into(),
        kind: DeviceKind::Char,
        major: 1,
        minor,
        file_mode: Some(0o640),
        uid: None,
        gid: None,
    };
    spec.devices = vec![
        node("/data/devs/was-file", 3),
        node("/data/devs/was-link", 5),
        node("/data/devs/was-free", 7),
    ];
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        for (name, minor) in [("was-file", 3), ("was-link", 5), ("was-free", 7)] {
            let md = std::fs::symlink_metadata(rootfs.join("data/devs").join(name)).unwrap();
            assert!(md.file_type().is_char_device(), "{name}: {md:?}");
            assert_eq!(md.rdev(), rustix::fs::makedev(1, minor), "{name}");
            assert_eq!(md.mode() & 0o7777, 0o640, "{name}");
        }
        let md = std::fs::symlink_metadata(host.join("file")).unwrap();
        assert!(md.file_type().is_file());
        assert_eq!(std::fs::read_to_string(host.join("file")).unwrap(), "host");
        a.detach().unwrap();
    });
}

/// Masked directories are all one empty read-only tmpfs (one superblock),
/// each mask a mount of its own that is a peer of no other, also under a
/// shared `/proc`: a mount made later on one masked directory shows on no
/// other.
#[test_log::test]
fn masked_directories_share_a_superblock_and_no_peer_group() {
    let rootfs = make_rootfs();
    let mut spec = base_spec(rootfs.path());
    spec.mounts[0] = MountSpec::new(
        "/proc",
        "proc",
        Some("proc".into()),
        &["nosuid", "noexec", "nodev", "rshared"],
    );
    let dirs = ["/proc/fs", "/proc/tty", "/proc/driver"];
    spec.masked_paths = dirs
        .iter()
        .chain(&["/proc/kcore"])
        .map(PathBuf::from)
        .collect();
    for s in strategies() {
        common::in_mount_ns(|| {
            let a = assemble(&spec, &opts(s)).unwrap();
            // (mount point, major:minor, options, optional fields) of each
            // masked directory, read from the mount table.
            let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
            let masks: Vec<(String, String, String, Vec<String>)> = dirs
                .iter()
                .map(|d| {
                    let point = rootfs.join(&d[1..]);
                    let l = text
                        .lines()
                        .rfind(|l| l.split(' ').nth(4) == point.to_str())
                        .unwrap_or_else(|| panic!("{d} is not a mount ({s:?}): {text}"));
                    let f: Vec<&str> = l.split(' ').collect();
                    let sep = f.iter().position(|x| *x == "-").unwrap();
                    assert_eq!(f[sep + 1], "tmpfs", "{l}");
                    assert!(f[5].split(',').any(|o| o == "ro"), "{l}");
                    let optional = f[6..sep].iter().map(|x| x.to_string()).collect();
                    (d.to_string(), f[2].to_string(), f[5].to_string(), optional)
                })
                .collect();
            assert!(
                masks.windows(2).all(|w| w[0].1 == w[1].1),
                "one superblock for all masks ({s:?}): {masks:#?}"
            );
            // Under the shared /proc each mask is shared, in a group of
            // its own.
            let groups: Vec<&String> = masks
                .iter()
                .flat_map(|m| m.3.iter().filter(|o| o.starts_with("shared:")))
                .collect();
            let distinct: std::collections::BTreeSet<_> = groups.iter().collect();
            assert_eq!(
                distinct.len(),
                groups.len(),
                "masks are peers ({s:?}): {masks:#?}"
            );
            for d in dirs {
                assert_eq!(std::fs::read_dir(rootfs.join(&d[1..])).unwrap().count(), 0);
            }
            // What the container could do: mount on one masked directory.
            let fs =
                rustix::mount::fsopen("tmpfs", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
            rustix::mount::fsconfig_create(&fs).unwrap();
            let m = rustix::mount::fsmount(
                &fs,
                rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
                rustix::mount::MountAttrFlags::empty(),
            )
            .unwrap();
            rustix::mount::move_mount(
                &m,
                c"",
                rustix::fs::CWD,
                rootfs.join("proc/fs").as_path(),
                rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .unwrap();
            std::fs::write(rootfs.join("proc/fs/marker"), "x").unwrap();
            for d in &dirs[1..] {
                assert_eq!(
                    std::fs::read_dir(rootfs.join(&d[1..])).unwrap().count(),
                    0,
                    "the mount on /proc/fs reached {d} ({s:?})"
                );
            }
            rustix::mount::unmount(
                rootfs.join("proc/fs").as_path(),
                rustix::mount::UnmountFlags::DETACH,
            )
            .unwrap();
            a.detach().unwrap();
        });
    }
}
