//! Issue 9, library and C-ABI side: OCI correctness found by the
//! runtime-tools run (per-mount propagation, data options on binds,
//! mountLabel, move-root through a symlinked rootfs path) and errors that
//! name the config entry, the in-root path, the operation and the errno
//! text.
//!
//! Mount tests run in private namespaces (`common::in_mount_ns`, or a
//! fresh child process with `common::in_child`) and judge by the mount
//! table read from inside (`/proc/thread-self/mountinfo`), never by what
//! the library says it did. CLI tests run the built `saferoot` binary.

// The library's namespace harness, shared with its own integration tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::TempDir;
use saferoot::mount::Scope;
use saferoot::rootfs::{
    assemble, plan, AssembleOptions, EnterMethod, MountKind, MountSpec, RootfsSpec, Strategy,
};
use saferoot::ErrorKind;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

/// One mount as mountinfo shows it, from inside.
#[derive(Debug, Clone)]
struct Row {
    point: PathBuf,
    fstype: String,
    /// The optional fields: `shared:N`, `master:N`, `unbindable`, ...
    optional: Vec<String>,
    super_opts: String,
}

impl Row {
    fn shared(&self) -> Option<u64> {
        self.field("shared")
    }

    fn master(&self) -> Option<u64> {
        self.field("master")
    }

    fn unbindable(&self) -> bool {
        self.optional.iter().any(|o| o == "unbindable")
    }

    fn field(&self, name: &str) -> Option<u64> {
        self.optional.iter().find_map(|o| {
            o.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .and_then(|n| n.parse().ok())
        })
    }
}

/// The calling thread's mount table, by mount point (the topmost mount
/// wins), read with the test's own parser.
fn table() -> BTreeMap<PathBuf, Row> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let mut rows = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-").unwrap();
        let row = Row {
            point: PathBuf::from(f[4].replace("\\040", " ")),
            fstype: f[sep + 1].to_string(),
            optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
            super_opts: f.get(sep + 3).unwrap_or(&"").to_string(),
        };
        rows.insert(row.point.clone(), row);
    }
    rows
}

fn make_rootfs() -> TempDir {
    let d = TempDir::new();
    for sub in ["proc", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("etc/motd"), "hello\n").unwrap();
    d
}

fn proc_mount() -> MountSpec {
    MountSpec::new(
        "/proc",
        "proc",
        Some("proc".into()),
        &["nosuid", "noexec", "nodev"],
    )
}

// ---------------------------------------------------------------------------
// Per-mount propagation

/// Every propagation word on a bind mount is what the mount has inside the
/// entered container, in both strategies: neither the tree-wide
/// propagation at the end of assembly nor the slave step that detaches the
/// old root after pivot_root flattens it.
///
/// Sources: `src` (with a tmpfs mounted at `src/sub`, for the recursive
/// words) from the host, and for `slave`/`private` a bind of a mount made
/// shared earlier in the same container, so that a slave has a master to
/// show.
#[test_log::test]
fn per_mount_propagation_is_kept_inside_the_container() {
    // Detached assembly needs Linux 6.15; older kernels refuse it by name
    // (checked in tests/rootfs.rs) and are tested in place here.
    let strategies: Vec<Strategy> = [Strategy::Detached, Strategy::InPlace]
        .into_iter()
        .filter(|s| s.resolve().is_ok())
        .collect();
    for strategy in strategies {
        let rootfs = make_rootfs();
        let src = TempDir::new();
        std::fs::create_dir(src.join("sub")).unwrap();
        let bind = |dest: &str, source: PathBuf, opts: &[&str]| {
            MountSpec::new(dest, "bind", Some(source), opts)
        };
        let in_root = |p: &str| rootfs.join(p);
        let mut spec = RootfsSpec {
            rootfs: rootfs.path().into(),
            mounts: vec![
                proc_mount(),
                bind("/sh", src.path().into(), &["rbind", "shared"]),
                bind("/rsh", src.path().into(), &["rbind", "rshared"]),
                bind("/sl", in_root("sh"), &["bind", "slave"]),
                bind("/rsl", in_root("rsh"), &["rbind", "rslave"]),
                bind("/pr", in_root("sh"), &["bind", "private"]),
                bind("/rpr", in_root("rsh"), &["rbind", "rprivate"]),
                bind("/ub", src.path().into(), &["bind", "unbindable"]),
                bind("/rub", src.path().into(), &["rbind", "runbindable"]),
            ],
            ..Default::default()
        };
        spec.default_devices = true;
        let src_path = src.path().to_path_buf();
        common::in_mount_ns(move || {
            // The host side: a submount in the source, so that the r*
            // words have a mount below the top to act on.
            let sub = saferoot::Root::open(&src_path)
                .unwrap()
                .resolve("/sub")
                .unwrap();
            saferoot::Mount::fs("tmpfs")
                .mount()
                .unwrap()
                .attach(&sub)
                .unwrap()
                .forget();
            drop(sub);
            let opts = AssembleOptions {
                strategy,
                ..Default::default()
            };
            let a = assemble(&spec, &opts).unwrap_or_else(|e| panic!("{strategy:?}: {e}"));
            a.enter(EnterMethod::PivotRoot).unwrap();
            let t = table();
            let row = |p: &str| {
                t.get(Path::new(p))
                    .unwrap_or_else(|| panic!("{strategy:?}: no mount at {p}: {t:#?}"))
                    .clone()
            };
            let why = |p: &str| format!("{strategy:?} {p}: {:?}", row(p));
            // shared: the top only.
            let sh = row("/sh").shared();
            assert!(sh.is_some(), "{}", why("/sh"));
            assert!(row("/sh/sub").shared().is_none(), "{}", why("/sh/sub"));
            // rshared: the top and the mount below it.
            let rsh = row("/rsh").shared();
            let rsh_sub = row("/rsh/sub").shared();
            assert!(rsh.is_some(), "{}", why("/rsh"));
            assert!(rsh_sub.is_some(), "{}", why("/rsh/sub"));
            // slave: receives from /sh's peer group, sends nothing.
            assert_eq!(row("/sl").master(), sh, "{}", why("/sl"));
            assert!(row("/sl").shared().is_none(), "{}", why("/sl"));
            // rslave: both levels are slaves of the /rsh groups.
            assert_eq!(row("/rsl").master(), rsh, "{}", why("/rsl"));
            assert_eq!(row("/rsl/sub").master(), rsh_sub, "{}", why("/rsl/sub"));
            assert!(row("/rsl/sub").shared().is_none(), "{}", why("/rsl/sub"));
            // private / rprivate: cloned from shared mounts, yet no peer
            // and no master.
            for p in ["/pr", "/rpr", "/rpr/sub"] {
                let r = row(p);
                assert!(r.optional.is_empty(), "{}", why(p));
            }
            // unbindable / runbindable.
            assert!(row("/ub").unbindable(), "{}", why("/ub"));
            assert!(row("/rub").unbindable(), "{}", why("/rub"));
            assert!(row("/rub/sub").unbindable(), "{}", why("/rub/sub"));
            // Mounts without a word of their own are not shared: nothing
            // the container mounts under them reaches anyone else.
            for p in ["/", "/proc", "/dev"] {
                assert!(row(p).shared().is_none(), "{}", why(p));
            }
        });
    }
}

/// `rootfsPropagation: rshared` makes the container's mounts shared once
/// it is entered, and per-mount words still win over it.
#[test_log::test]
fn per_mount_propagation_wins_over_a_shared_root_propagation() {
    let rootfs = make_rootfs();
    let src = TempDir::new();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![
            proc_mount(),
            MountSpec::new("/pr", "bind", Some(src.path().into()), &["bind", "private"]),
            MountSpec::new(
                "/ub",
                "bind",
                Some(src.path().into()),
                &["bind", "unbindable"],
            ),
        ],
        rootfs_propagation: saferoot::rootfs::PropagationSetting::parse("rshared"),
        ..Default::default()
    };
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        a.enter(EnterMethod::PivotRoot).unwrap();
        let t = table();
        assert!(t[Path::new("/")].shared().is_some(), "{t:#?}");
        assert!(t[Path::new("/proc")].shared().is_some(), "{t:#?}");
        assert!(t[Path::new("/pr")].optional.is_empty(), "{t:#?}");
        assert!(t[Path::new("/ub")].unbindable(), "{t:#?}");
    });
}

// ---------------------------------------------------------------------------
// Data options on binds

/// `mode=`, `size=`, `uid=`, ... on a bind are ignored (the bind is made,
/// with its flags), and listed in the plan; a bare word that is no option
/// at all is still refused, and the message does not call it "unknown"
/// when it is a known filesystem option.
#[test_log::test]
fn data_options_on_a_bind_are_ignored_and_the_bind_is_made() {
    let rootfs = make_rootfs();
    let src = TempDir::new();
    std::fs::write(src.join("marker"), "m").unwrap();
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![MountSpec::new(
            "/data",
            "bind",
            Some(src.path().into()),
            &[
                "rbind",
                "ro",
                "mode=755",
                "size=1m",
                "uid=0",
                "nr_inodes=10",
            ],
        )],
        default_devices: false,
        ..Default::default()
    };
    let p = plan(&spec).unwrap();
    assert_eq!(
        p.mounts[0].ignored_options,
        ["mode=755", "size=1m", "uid=0", "nr_inodes=10"]
    );
    let root = rootfs.path().to_path_buf();
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        let t = table();
        let data = &t[&root.join("data")];
        assert!(data.super_opts.starts_with("rw"), "{data:?}");
        assert_eq!(
            std::fs::read_to_string(root.join("data/marker")).unwrap(),
            "m"
        );
        assert!(std::fs::write(root.join("data/new"), "x").is_err(), "ro");
        a.detach().unwrap();
    });
    let mut bad = spec.clone();
    bad.mounts[0].options = vec!["rbind".into(), "newinstance".into()];
    let e = plan(&bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let s = e.to_string();
    assert!(s.contains("mounts[0]") && s.contains("newinstance"), "{s}");
    assert!(!s.contains("unknown"), "{s}");
}

// ---------------------------------------------------------------------------
// mountLabel

const LABEL: &str = "system_u:object_r:container_file_t:s0:c1,c2";

fn has_selinux() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| t.contains("selinuxfs"))
}

/// The mounts saferoot adds itself (/dev, /dev/pts, /dev/shm) carry the
/// label in the plan, as the same mounts written in the spec do.
#[test_log::test]
fn mount_label_goes_to_the_implicit_dev_mounts() {
    let spec = RootfsSpec {
        rootfs: "/tmp/r".into(),
        mounts: vec![MountSpec::new("/tmp", "tmpfs", None, &[])],
        mount_label: Some(LABEL.into()),
        ..Default::default()
    };
    let p = plan(&spec).unwrap();
    for dest in ["/dev", "/dev/pts", "/dev/shm", "/tmp"] {
        let m = p
            .mounts
            .iter()
            .find(|m| m.destination == Path::new(dest))
            .unwrap();
        let MountKind::Fs { data, .. } = &m.kind else {
            panic!("{m:?}")
        };
        assert!(
            data.iter()
                .any(|(k, v)| k == "context" && v.as_deref() == Some(LABEL)),
            "{dest}: {data:?}"
        );
    }
    // Written in the spec, the same mounts get it the same way.
    let spec2 = RootfsSpec {
        mounts: vec![
            MountSpec::new("/dev", "tmpfs", Some("tmpfs".into()), &["mode=755"]),
            MountSpec::new("/dev/shm", "tmpfs", Some("shm".into()), &["mode=1777"]),
        ],
        ..spec.clone()
    };
    let p2 = plan(&spec2).unwrap();
    for m in &p2.mounts {
        if let MountKind::Fs { fstype, data, .. } = &m.kind {
            if fstype == "tmpfs" || fstype == "devpts" {
                assert!(data.iter().any(|(k, _)| k == "context"), "{m:?}");
            }
        }
    }
}

/// Without SELinux, a mountLabel is dropped (with a warning) and the
/// mounts are made; with strict labels the assembly fails before
/// anything is mounted, saying why.
#[test_log::test]
fn mount_label_without_selinux_is_dropped_unless_strict() {
    if has_selinux() {
        panic!("this test needs a kernel without SELinux (selinuxfs is registered here)");
    }
    let rootfs = make_rootfs();
    let mut spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![MountSpec::new("/tmp", "tmpfs", None, &["nosuid"])],
        mount_label: Some(LABEL.into()),
        ..Default::default()
    };
    let root = rootfs.path().to_path_buf();
    common::in_mount_ns(|| {
        let a = assemble(&spec, &AssembleOptions::default())
            .unwrap_or_else(|e| panic!("a mountLabel without SELinux failed the run: {e}"));
        let t = table();
        for p in ["dev", "dev/pts", "dev/shm", "tmp"] {
            let r = t
                .get(&root.join(p))
                .unwrap_or_else(|| panic!("no mount at {p}: {t:#?}"));
            assert!(!r.super_opts.contains("context"), "{r:?}");
        }
        a.detach().unwrap();
    });
    spec.strict_mount_label = true;
    let before = common::mount_points();
    common::in_mount_ns(|| {
        let e = assemble(&spec, &AssembleOptions::default()).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("SELinux") && s.contains(LABEL), "{s}");
        assert!(s.contains("strict"), "{s}");
        assert!(
            !common::is_mount_point(&root.join("dev")) && !common::is_mount_point(&root),
            "something was mounted before the refusal"
        );
    });
    assert_eq!(common::mount_points(), before);
    // strictMountLabel in JSON, camelCase, false by default.
    let parsed: RootfsSpec =
        serde_json::from_str(r#"{"rootfs": "/r", "mountLabel": "x", "strictMountLabel": true}"#)
            .unwrap();
    assert!(parsed.strict_mount_label);
    let parsed: RootfsSpec = serde_json::from_str(r#"{"rootfs": "/r"}"#).unwrap();
    assert!(!parsed.strict_mount_label);
}

// ---------------------------------------------------------------------------
// move-root through a symlink

/// `EnterMethod::MoveRoot` with a rootfs path whose parent directory is a
/// symlink keeps the container's own /proc: the host's proc and sysfs
/// mounts are told from the container's by mount identity, not by a
/// lexical comparison of paths.
#[test_log::test]
fn move_root_through_a_symlinked_rootfs_path_keeps_the_containers_proc() {
    common::in_child(
        "move_root_through_a_symlinked_rootfs_path_keeps_the_containers_proc",
        &[],
        false,
        || {
            let base = TempDir::new();
            let real = base.join("real");
            std::fs::create_dir_all(real.join("rootfs")).unwrap();
            for sub in ["proc", "etc"] {
                std::fs::create_dir_all(real.join("rootfs").join(sub)).unwrap();
            }
            std::fs::write(real.join("rootfs/etc/motd"), "inside\n").unwrap();
            std::os::unix::fs::symlink(&real, base.join("link")).unwrap();
            let spec = RootfsSpec {
                rootfs: base.join("link/rootfs"),
                mounts: vec![proc_mount()],
                ..Default::default()
            };
            common::in_mount_ns(|| {
                let a = assemble(&spec, &AssembleOptions::default()).unwrap();
                a.enter(EnterMethod::MoveRoot).unwrap();
                assert_eq!(std::fs::read_to_string("/etc/motd").unwrap(), "inside\n");
                // The container's procfs is still mounted on /proc, and it
                // is a procfs (not a tmpfs cover).
                let t = table();
                let proc_row = t.get(Path::new("/proc")).expect("no /proc mount");
                assert_eq!(proc_row.fstype, "proc", "{t:#?}");
                assert!(Path::new("/proc/self/status").exists());
            });
        },
    );
}

// ---------------------------------------------------------------------------
// Errors: errno text, device entries, id maps

/// An error from pathrs ends with the kernel's errno text and names the
/// in-root path and the operation.
#[test_log::test]
fn a_missing_in_root_path_error_ends_with_the_errno_text() {
    let rootfs = make_rootfs();
    let root = saferoot::Root::open(rootfs.path()).unwrap();
    let e = root.resolve("/no/such/dir").unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("resolve at /no/such/dir: "), "{s}");
    assert!(
        s.ends_with(": No such file or directory (os error 2)"),
        "{s}"
    );
    let e = root.readlink("/etc/motd/x").unwrap_err();
    let s = e.to_string();
    assert!(s.contains("readlink at /etc/motd/x"), "{s}");
    assert!(s.ends_with("Not a directory (os error 20)"), "{s}");
    // Through assembly, with the mount's entry.
    let spec = RootfsSpec {
        rootfs: rootfs.path().into(),
        mounts: vec![MountSpec::new(
            "/data",
            "bind",
            Some(rootfs.join("no-such-source")),
            &["rbind"],
        )],
        default_devices: false,
        ..Default::default()
    };
    common::in_mount_ns(|| {
        let e = assemble(&spec, &AssembleOptions::default()).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("No such file or directory (os error 2)"), "{s}");
        assert!(s.contains("no-such-source"), "{s}");
    });
}

/// `saferoot::Mount::from_detached_fd` takes detached mounts only: the fd
/// of a live mount would let attribute changes reach that mount.
#[test_log::test]
fn adopting_a_live_mount_fd_is_refused() {
    let dir = TempDir::new();
    let path = dir.path().to_path_buf();
    let check = move || {
        let target = saferoot::Root::open(&path).unwrap().handle().unwrap();
        let live = saferoot::Mount::fs("tmpfs")
            .mount()
            .unwrap()
            .attach(&target)
            .unwrap();
        drop(target);
        let fd = std::fs::File::open(&path).unwrap();
        let e = saferoot::Mount::from_detached_fd(fd).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("attached"), "{e}");
        // A subdirectory is not the root of a mount.
        std::fs::create_dir(path.join("sub")).unwrap();
        let fd = std::fs::File::open(path.join("sub")).unwrap();
        let e = saferoot::Mount::from_detached_fd(fd).unwrap_err();
        assert!(e.to_string().contains("not the root of a mount"), "{e}");
        // A detached clone is fine, and stays usable.
        let clone = saferoot::Mount::clone_fd(live.as_fd(), Scope::Mount).unwrap();
        let m = saferoot::Mount::from_detached_fd(clone.into_fd()).unwrap();
        m.set_attr(saferoot::MountAttr::RDONLY, saferoot::MountAttr::empty())
            .unwrap();
        let st = rustix::fs::statvfs(&path).unwrap();
        assert!(
            !st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
            "the live mount changed"
        );
        drop(m);
        live.detach().unwrap();
    };
    common::in_mount_ns(check);
}

/// The same, where the kernel has no statmount: the caller's mountinfo is
/// searched instead.
#[test_log::test]
fn adopting_a_live_mount_fd_is_refused_without_statmount() {
    common::in_child(
        "adopting_a_live_mount_fd_is_refused_without_statmount",
        &[("SAFEROOT_DISABLE_FEATURES", "statmount,listmount")],
        false,
        adopting_a_live_mount_fd_is_refused,
    );
}

/// Runs `saferoot ARGS`, returning (status, stdout, stderr).
fn saferoot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("start saferoot");
    (
        out.status.code().unwrap_or(128),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(bundle: &Path, config: &Value) {
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .unwrap();
}

/// A bundle whose program never runs far: every case here fails during
/// setup, or runs `/bin/true` from the host's /usr.
fn bundle_config(extra_mounts: Vec<Value>, linux: Value) -> Value {
    let mut mounts = vec![json!({"destination": "/proc", "type": "proc", "source": "proc"})];
    mounts.extend(extra_mounts);
    let mut l = json!({"namespaces": [{"type": "mount"}, {"type": "pid"}]});
    if let (Some(l), Some(extra)) = (l.as_object_mut(), linux.as_object()) {
        for (k, v) in extra {
            l.insert(k.clone(), v.clone());
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/sh", "-c", "echo ran"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "mounts": mounts,
        "linux": l
    })
}

/// A device entry whose path is a directory in the rootfs, or whose
/// parent is a file (here a file a mount put there), fails naming
/// `linux.devices[0]`, never the mount.
#[test_log::test]
fn a_bad_device_entry_is_named_as_linux_devices() {
    if !common::require_root() {
        return;
    }
    let before = common::mount_points();
    let host_file = TempDir::new();
    std::fs::write(host_file.join("f"), "x").unwrap();
    let dev = |path: &str| json!([{"path": path, "type": "c", "major": 1, "minor": 3}]);
    let cases = [
        ("/dir/dev0", vec![], "a directory"),
        (
            "/thing/dev0",
            vec![json!({"destination": "/thing", "type": "bind",
                         "source": host_file.join("f"), "options": ["bind"]})],
            "a file",
        ),
    ];
    for (path, mounts, what) in cases {
        let b = TempDir::new();
        std::fs::create_dir_all(b.join("rootfs/dir/dev0")).unwrap();
        write_config(
            b.path(),
            &bundle_config(mounts, json!({"devices": dev(path)})),
        );
        let (code, stdout, stderr) = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
        assert_eq!(code, 125, "{what}: {stderr}");
        assert!(!stdout.contains("ran"), "{what}: {stdout}");
        assert!(
            stderr.contains("linux.devices[0]"),
            "{what}: the error does not name the device entry: {stderr}"
        );
        assert!(
            !stderr.contains("mounts[1]"),
            "{what}: a device error named a mount: {stderr}"
        );
        let dir = Path::new(path)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(stderr.contains(&dir), "{what}: no in-root path: {stderr}");
    }
    assert_eq!(common::mount_points(), before);
}

/// A data option on a bind gives a warning on stderr naming the mount and
/// the option, and the run goes on; a mountLabel without SELinux gives a
/// warning and the run goes on.
#[test_log::test]
fn cli_warns_about_ignored_bind_options_and_a_dropped_mount_label() {
    if !common::require_root() {
        return;
    }
    let b = TempDir::new();
    let rootfs = b.join("rootfs");
    std::fs::create_dir_all(rootfs.join("data")).unwrap();
    let mut mounts = vec![
        json!({"destination": "/data", "type": "bind", "source": "/etc",
               "options": ["rbind", "ro", "mode=755", "size=1m"]}),
    ];
    for d in common::host_program_dirs(&rootfs) {
        mounts.push(
            json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]}),
        );
    }
    let mut config = bundle_config(mounts, json!({"mountLabel": LABEL}));
    config["process"]["args"] = json!([
        "/bin/sh",
        "-c",
        "echo ran; test -f /data/hostname && echo data=yes"
    ]);
    write_config(b.path(), &config);
    let (code, stdout, stderr) = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("ran"), "{stdout}");
    for opt in ["mode=755", "size=1m"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("mounts[1]") && l.contains(opt) && l.contains("ignored")),
            "no warning for {opt}: {stderr}"
        );
    }
    assert!(!stderr.contains("unknown"), "{stderr}");
    if !has_selinux() {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("mountLabel") && l.contains("dropped")),
            "no warning about the dropped label: {stderr}"
        );
    }
}

/// A uid map line the kernel refuses is named, with the likely reason:
/// overlapping container ranges (`EINVAL`), and, in a user namespace that
/// has only id 0, a host id saferoot's own namespace does not have
/// (`EPERM`).
#[test_log::test]
fn a_refused_id_map_line_is_named() {
    if !common::require_root() {
        return;
    }
    let b = TempDir::new();
    std::fs::create_dir(b.join("rootfs")).unwrap();
    let mut config = bundle_config(
        vec![],
        json!({
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10},
                            {"containerID": 5, "hostID": 200000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }),
    );
    config["mounts"] = json!([]);
    write_config(b.path(), &config);
    let (code, stdout, stderr) = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("uid_map line 2 \"5 200000 10\"")
            && stderr.contains("line 1")
            && stderr.contains("overlaps"),
        "{stderr}"
    );
    assert!(stderr.contains("Invalid argument"), "{stderr}");
}

/// The EPERM case needs a caller whose own user namespace lacks the host
/// ids: a child in a user namespace that maps only id 0.
#[test_log::test]
fn a_refused_id_map_line_is_named_in_a_user_namespace() {
    common::in_child(
        "a_refused_id_map_line_is_named_in_a_user_namespace",
        &[],
        true,
        || {
            let b = TempDir::new();
            std::fs::create_dir(b.join("rootfs")).unwrap();
            let mut config = bundle_config(
                vec![],
                json!({
                    "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"}],
                    "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1},
                                    {"containerID": 1, "hostID": 1000, "size": 10}],
                    "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]
                }),
            );
            config["mounts"] = json!([]);
            write_config(b.path(), &config);
            let (code, stdout, stderr) = saferoot(&["run", "--bundle", b.path().to_str().unwrap()]);
            assert_ne!(code, 0, "{stdout}");
            assert!(
                stderr.contains("uid_map line 2 \"1 1000 10\"")
                    && stderr.contains("host id 1000 is not mapped"),
                "{stderr}"
            );
            assert!(stderr.contains("Operation not permitted"), "{stderr}");
        },
    );
}
