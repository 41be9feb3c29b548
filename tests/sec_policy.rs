//! Escape classes of the policy (issue 8): sysctls only in the container's
//! own namespaces (class 2), the /proc policy judged on resolved targets
//! (class 3), no writable host cgroup hierarchy (class 9), nothing mounted
//! over the tree's root and a rollback that leaves nothing (class 10).
//!
//! Every hostile input is built as an image would plant it (symlinks in a
//! TempDir rootfs); every check reads the mount table, host-side files or
//! the kernel's sysctl values, never saferoot's own word.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::TempDir;
use saferoot::rootfs::policy::{self, CgroupLayout};
use saferoot::rootfs::{assemble, AssembleOptions, MountSpec, Namespaces, RootfsSpec, Strategy};
use saferoot::ErrorKind;

/// One mount below a root: (mount point relative to the root, fs type,
/// mount options), from `/proc/thread-self/mountinfo`.
fn table_under(root: &Path) -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let mut rows = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-").unwrap();
        let point = PathBuf::from(f[4].replace("\\040", " "));
        let Ok(rel) = point.strip_prefix(root) else {
            continue;
        };
        rows.push((
            Path::new("/").join(rel),
            f[sep + 1].to_string(),
            f[5].to_string(),
        ));
    }
    rows
}

fn strategies() -> Vec<Strategy> {
    let mut v = vec![Strategy::InPlace];
    if Strategy::Detached.resolve().is_ok() {
        v.push(Strategy::Detached);
    }
    v
}

fn opts(strategy: Strategy) -> AssembleOptions {
    AssembleOptions {
        strategy,
        ..Default::default()
    }
}

/// A rootfs with the usual directories and a marker file.
fn make_rootfs() -> TempDir {
    let d = TempDir::new();
    for sub in ["proc", "sys", "dev", "tmp", "etc", "data", "a/b"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("marker"), "image\n").unwrap();
    d
}

fn spec_with(rootfs: &Path, mounts: Vec<MountSpec>) -> RootfsSpec {
    RootfsSpec {
        rootfs: rootfs.into(),
        mounts,
        ..Default::default()
    }
}

fn proc_mount() -> MountSpec {
    MountSpec::new(
        "/proc",
        "proc",
        Some("proc".into()),
        &["nosuid", "nodev", "noexec"],
    )
}

/// Assembling `spec` fails with `kind`, leaves nothing mounted below the
/// rootfs, and the image's marker is still what the image had. Returns
/// the message.
#[track_caller]
fn assert_refused(spec: &RootfsSpec, strategy: Strategy, kind: ErrorKind) -> String {
    let e = assemble(spec, &opts(strategy)).unwrap_err();
    assert_eq!(e.kind(), kind, "{strategy:?}: {e}");
    let left = table_under(&spec.rootfs);
    assert!(
        left.is_empty(),
        "{strategy:?}: a refused assembly left mounts: {left:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(spec.rootfs.join("marker")).unwrap(),
        "image\n",
        "the rootfs is still covered by something"
    );
    e.to_string()
}

#[allow(deprecated)]
fn unshare(flags: rustix::thread::UnshareFlags) {
    // Namespaces belong to the calling task: only this (harness) thread
    // moves, the test process stays in the host's.
    rustix::thread::unshare(flags).unwrap_or_else(|e| panic!("unshare({flags:?}): {e}"));
}

fn read_sysctl_file(name: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys").join(name.replace('.', "/")))
        .unwrap()
        .trim_end()
        .to_string()
}

// ---- class 2: sysctls ----------------------------------------------------

/// Host-global sysctls and namespaced ones without their namespace are
/// refused at plan time, naming the sysctl; nothing is written or mounted.
#[test_log::test]
fn sysctls_outside_the_containers_namespaces_are_refused() {
    let rootfs = make_rootfs();
    let all = Namespaces {
        pid: true,
        net: true,
        ipc: true,
        uts: true,
        cgroup: true,
    };
    let watched = [
        "kernel.core_pattern",
        "kernel.modprobe",
        "vm.overcommit_memory",
        "kernel.shmmax",
        "net.ipv4.ip_forward",
        "kernel.hostname",
    ];
    // A kernel without modules has no kernel.modprobe: compared as absent.
    let snapshot = || -> Vec<Option<String>> {
        watched
            .iter()
            .map(|n| {
                let p = Path::new("/proc/sys").join(n.replace('.', "/"));
                std::fs::read_to_string(p).ok()
            })
            .collect()
    };
    let before = snapshot();
    assert!(before[0].is_some(), "kernel.core_pattern must be readable");
    let cases: Vec<(&str, &str, Namespaces)> = vec![
        ("kernel.core_pattern", "|/tmp/evil %p", all),
        ("kernel.modprobe", "/tmp/evil", all),
        ("vm.overcommit_memory", "1", all),
        ("fs/file-max", "12345", all),
        ("kernel.shmmax", "4096", Namespaces::default()),
        ("net.ipv4.ip_forward", "1", Namespaces::default()),
        ("net/ipv4/conf/all/forwarding", "1", Namespaces::default()),
        ("kernel.hostname", "evil", Namespaces::default()),
    ];
    common::in_mount_ns(|| {
        for (name, value, ns) in &cases {
            let mut spec = spec_with(rootfs.path(), vec![proc_mount()]);
            spec.namespaces = *ns;
            spec.sysctls = BTreeMap::from([(name.to_string(), value.to_string())]);
            let e = saferoot::rootfs::plan(&spec).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: {e}");
            assert!(e.to_string().contains(name), "{name}: {e}");
            for s in strategies() {
                assert_refused(&spec, s, ErrorKind::InvalidInput);
            }
        }
    });
    assert_eq!(before, snapshot(), "a refused sysctl reached the host");
}

/// A spec that says the container has its own ipc namespace, assembled by
/// a thread still in the host's: refused before anything is mounted, and
/// the host's value is untouched.
#[test_log::test]
fn sysctls_are_refused_when_the_caller_is_in_the_hosts_namespace() {
    let rootfs = make_rootfs();
    let host_before = read_sysctl_file("kernel.shmmni");
    let mut spec = spec_with(rootfs.path(), vec![proc_mount()]);
    spec.namespaces.ipc = true;
    spec.sysctls = BTreeMap::from([("kernel.shmmni".to_string(), "77".to_string())]);
    common::in_mount_ns(|| {
        for s in strategies() {
            let msg = assert_refused(&spec, s, ErrorKind::InvalidInput);
            assert!(msg.contains("CLONE_NEWIPC"), "{msg}");
        }
    });
    assert_eq!(read_sysctl_file("kernel.shmmni"), host_before);
}

/// Allowed sysctls land in the container's namespaces (the assembling
/// thread's new ipc, network and uts namespaces) and nowhere else.
#[test_log::test]
fn allowed_sysctls_are_written_in_the_containers_namespaces_only() {
    use rustix::thread::UnshareFlags as U;
    let rootfs = make_rootfs();
    let host_shmmni = read_sysctl_file("kernel.shmmni");
    let host_fwd = read_sysctl_file("net.ipv4.ip_forward");
    let host_name = read_sysctl_file("kernel.hostname");
    let want_shmmni = if host_shmmni == "1234" {
        "1235"
    } else {
        "1234"
    };
    let want_fwd = if host_fwd == "1" { "0" } else { "1" };
    let mut spec = spec_with(rootfs.path(), vec![proc_mount()]);
    spec.namespaces = Namespaces {
        ipc: true,
        net: true,
        uts: true,
        ..Default::default()
    };
    spec.sysctls = BTreeMap::from([
        ("kernel.shmmni".to_string(), want_shmmni.to_string()),
        ("net/ipv4/ip_forward".to_string(), want_fwd.to_string()),
        ("kernel.hostname".to_string(), "saferoot-sec".to_string()),
    ]);
    for s in strategies() {
        common::in_mount_ns(|| {
            unshare(U::NEWIPC | U::NEWNET | U::NEWUTS);
            let a = assemble(&spec, &opts(s)).unwrap();
            // Read in this thread's namespaces, independently of saferoot.
            assert_eq!(read_sysctl_file("kernel.shmmni"), want_shmmni);
            assert_eq!(read_sysctl_file("net.ipv4.ip_forward"), want_fwd);
            assert_eq!(read_sysctl_file("kernel.hostname"), "saferoot-sec");
            a.detach().unwrap();
        });
        assert_eq!(read_sysctl_file("kernel.shmmni"), host_shmmni, "{s:?}");
        assert_eq!(read_sysctl_file("net.ipv4.ip_forward"), host_fwd, "{s:?}");
        assert_eq!(read_sysctl_file("kernel.hostname"), host_name, "{s:?}");
    }
}

/// Sysctls are written last: when a mount fails, no sysctl was written.
#[test_log::test]
fn sysctls_are_not_written_when_assembly_fails() {
    let rootfs = make_rootfs();
    symlink("/", rootfs.join("tmp2")).unwrap();
    let mut spec = spec_with(
        rootfs.path(),
        vec![proc_mount(), MountSpec::new("/tmp2", "tmpfs", None, &[])],
    );
    spec.namespaces.ipc = true;
    for s in strategies() {
        common::in_mount_ns(|| {
            unshare(rustix::thread::UnshareFlags::NEWIPC);
            let before = read_sysctl_file("kernel.shmmni");
            let want = if before == "1234" { "1235" } else { "1234" };
            let mut spec = spec.clone();
            spec.sysctls = BTreeMap::from([("kernel.shmmni".to_string(), want.to_string())]);
            assert_refused(&spec, s, ErrorKind::InvalidInput);
            assert_eq!(read_sysctl_file("kernel.shmmni"), before, "{s:?}");
        });
    }
}

/// The OCI namespaces decide: a network namespace (new, or joined by
/// path) lets net.* through; without one it is refused.
#[test_log::test]
fn oci_namespaces_decide_which_sysctls_pass() {
    let config = |namespaces: &str| {
        format!(
            r#"{{"ociVersion": "1.2.0", "root": {{"path": "rootfs"}},
                "linux": {{"namespaces": [{namespaces}],
                           "sysctl": {{"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"}}}}}}"#
        )
    };
    let bundle = Path::new("/run/bundles/sec");
    let ok = [
        r#"{"type": "mount"}, {"type": "network"}, {"type": "ipc"}"#,
        r#"{"type": "network", "path": "/var/run/netns/c1"}, {"type": "ipc"}"#,
    ];
    for ns in ok {
        let spec = saferoot::oci::spec_from_json(&config(ns), bundle).unwrap();
        assert!(spec.namespaces.net && spec.namespaces.ipc, "{ns}");
        saferoot::rootfs::plan(&spec).unwrap();
    }
    for (ns, refused) in [
        (
            r#"{"type": "mount"}, {"type": "ipc"}"#,
            "net.ipv4.ip_forward",
        ),
        (r#"{"type": "network"}"#, "kernel.shmmax"),
    ] {
        let spec = saferoot::oci::spec_from_json(&config(ns), bundle).unwrap();
        let e = saferoot::rootfs::plan(&spec).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(refused), "{e}");
    }
}

// ---- class 3: /proc judged where it resolves ------------------------------

/// Destinations that reach into /proc through image symlinks, `..` or a
/// trailing slash are judged by where they land; procfs sources never
/// become the container's /proc or a second procfs elsewhere.
#[test_log::test]
fn proc_policy_judges_the_resolved_target() {
    let host = TempDir::new();
    std::fs::write(host.join("fake"), "fake\n").unwrap();
    let fake = host.join("fake");
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        MountSpec,
    );
    let cases: Vec<Case> = vec![
        (
            "symlink to /proc/self, tmpfs on attr",
            &[("foo", "/proc/self")],
            MountSpec::new("/foo/attr", "tmpfs", None, &[]),
        ),
        (
            "relative symlink into /proc/sys, file bind",
            &[("foo", "proc/sys/kernel")],
            MountSpec::new("/foo/core_pattern", "bind", Some(fake.clone()), &["bind"]),
        ),
        (
            "trailing slash through a symlink",
            &[("foo", "/proc/sys")],
            MountSpec::new("/foo/", "tmpfs", None, &[]),
        ),
        (
            "trailing /. through a symlink",
            &[("foo", "/proc/sys/kernel")],
            MountSpec::new("/foo/.", "tmpfs", None, &[]),
        ),
        (
            "symlink to /proc itself, tmpfs over it",
            &[("myproc", "/proc")],
            MountSpec::new("/myproc", "tmpfs", None, &[]),
        ),
        (
            "proc on /x/../proc through a symlinked x",
            &[("x", "/a/b")],
            MountSpec::new("/x/../proc", "proc", None, &[]),
        ),
        (
            "bind of the host's /proc/sys onto /proc",
            &[],
            MountSpec::new("/proc", "bind", Some("/proc/sys".into()), &["rbind"]),
        ),
        (
            "bind of the host's /proc/self/net elsewhere",
            &[],
            MountSpec::new(
                "/data",
                "bind",
                Some("/proc/self/net".into()),
                &["bind", "ro"],
            ),
        ),
        (
            "bind of a whole procfs outside /proc",
            &[],
            MountSpec::new("/data", "bind", Some("/proc".into()), &["rbind", "ro"]),
        ),
    ];
    for (what, links, m) in &cases {
        let rootfs = make_rootfs();
        for (name, target) in *links {
            symlink(target, rootfs.join(name)).unwrap();
        }
        let mut spec = spec_with(rootfs.path(), vec![proc_mount(), m.clone()]);
        spec.namespaces.pid = true;
        common::in_mount_ns(|| {
            for s in strategies() {
                let msg = assert_refused(&spec, s, ErrorKind::InvalidInput);
                assert!(msg.contains("mounts[1]"), "{what}: {msg}");
            }
        });
    }
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), "fake\n");
}

/// What the allowlist allows still works when reached through a symlink,
/// and a lexical check still refuses early what it can see.
#[test_log::test]
fn proc_allowlist_is_judged_by_identity() {
    let host = TempDir::new();
    std::fs::write(host.join("cpuinfo"), "fake cpu\n").unwrap();
    let rootfs = make_rootfs();
    symlink("/proc", rootfs.join("lxc")).unwrap();
    let spec = spec_with(
        rootfs.path(),
        vec![
            proc_mount(),
            MountSpec::new(
                "/lxc/cpuinfo",
                "bind",
                Some(host.join("cpuinfo")),
                &["bind", "ro"],
            ),
        ],
    );
    common::in_mount_ns(|| {
        for s in strategies() {
            let a = assemble(&spec, &opts(s)).unwrap();
            assert_eq!(
                std::fs::read_to_string(rootfs.join("proc/cpuinfo")).unwrap(),
                "fake cpu\n"
            );
            a.detach().unwrap();
            assert!(table_under(rootfs.path()).is_empty());
        }
        // Lexically visible: refused by plan, before anything is opened.
        for m in [
            MountSpec::new("/proc/self/attr", "tmpfs", None, &[]),
            MountSpec::new("/newproc", "proc", None, &[]),
            MountSpec::new("/proc", "tmpfs", None, &[]),
        ] {
            let bad = spec_with(rootfs.path(), vec![proc_mount(), m]);
            let e = saferoot::rootfs::plan(&bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        }
    });
}

// ---- class 9: cgroup v1 and hybrid hosts ----------------------------------

/// A host hierarchy is never writable in the container: rw cgroup mounts
/// are refused unless confined, binds of cgroup or sysfs sources must be
/// read-only and are read-only all the way down; release_agent cannot be
/// opened for writing.
#[test_log::test]
fn host_cgroup_hierarchies_are_never_writable() {
    let layout = policy::host_cgroup_layout().unwrap();
    let rootfs = make_rootfs();
    std::fs::create_dir_all(rootfs.join("sys/fs/cgroup")).unwrap();
    std::fs::create_dir_all(rootfs.join("hier")).unwrap();
    std::fs::create_dir_all(rootfs.join("cg")).unwrap();
    // A v1 hierarchy of the host, if it has one.
    let v1 = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.join("release_agent").exists());
    if layout == CgroupLayout::Unified {
        assert!(v1.is_none(), "a unified host with a v1 hierarchy: {v1:?}");
    }
    let rw_cgroup = MountSpec::new("/sys/fs/cgroup", "cgroup", None, &["nosuid", "nodev"]);
    let ro_cgroup = MountSpec::new("/sys/fs/cgroup", "cgroup", None, &["nosuid", "nodev", "ro"]);
    let mut refused: Vec<(RootfsSpec, &str)> = vec![
        (
            spec_with(rootfs.path(), vec![rw_cgroup.clone()]),
            "rw cgroup",
        ),
        (
            spec_with(
                rootfs.path(),
                vec![MountSpec::new(
                    "/cg",
                    "bind",
                    Some("/sys/fs/cgroup".into()),
                    &["rbind"],
                )],
            ),
            "rw rbind of /sys/fs/cgroup",
        ),
        (
            spec_with(
                rootfs.path(),
                vec![MountSpec::new(
                    "/sys",
                    "bind",
                    Some("/sys".into()),
                    &["rbind", "nosuid"],
                )],
            ),
            "rw rbind of /sys",
        ),
    ];
    if let Some(h) = &v1 {
        refused.push((
            spec_with(
                rootfs.path(),
                vec![MountSpec::new("/hier", "bind", Some(h.clone()), &["bind"])],
            ),
            "rw bind of a v1 hierarchy",
        ));
    }
    common::in_mount_ns(|| {
        for (spec, what) in &refused {
            for s in strategies() {
                let msg = assert_refused(spec, s, ErrorKind::InvalidInput);
                assert!(msg.contains("mounts[0]"), "{what}: {msg}");
            }
        }
        if layout == CgroupLayout::Legacy {
            // Even with a cgroup namespace, v1 hierarchies cannot be confined.
            let mut s = spec_with(rootfs.path(), vec![rw_cgroup.clone()]);
            s.namespaces.cgroup = true;
            let msg = assert_refused(&s, Strategy::InPlace, ErrorKind::InvalidInput);
            assert!(msg.contains("CVE-2022-0492"), "{msg}");
        }
        // Read-only requests are granted, read-only all the way down.
        let ok = [
            spec_with(rootfs.path(), vec![ro_cgroup.clone()]),
            spec_with(
                rootfs.path(),
                vec![MountSpec::new(
                    "/sys",
                    "bind",
                    Some("/sys".into()),
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                )],
            ),
            spec_with(
                rootfs.path(),
                vec![MountSpec::new(
                    "/cg",
                    "bind",
                    Some("/sys/fs/cgroup".into()),
                    &["rbind", "ro"],
                )],
            ),
        ];
        for spec in &ok {
            for s in strategies() {
                let a = assemble(spec, &opts(s)).unwrap();
                let rows = table_under(rootfs.path());
                let cg: Vec<_> = rows
                    .iter()
                    .filter(|(_, fs, _)| fs == "cgroup" || fs == "cgroup2" || fs == "sysfs")
                    .collect();
                assert!(!cg.is_empty(), "{rows:#?}");
                for (p, fs, o) in &cg {
                    assert!(
                        o.split(',').any(|x| x == "ro"),
                        "{s:?}: {} ({fs}) is writable: {o}",
                        p.display()
                    );
                }
                if let Some(h) = &v1 {
                    let name = h.file_name().unwrap();
                    for base in ["sys/fs/cgroup", "cg"] {
                        let ra = rootfs.join(base).join(name).join("release_agent");
                        if !ra.exists() {
                            continue;
                        }
                        // Opened for writing only, never written.
                        let e = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&ra)
                            .unwrap_err();
                        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{}", ra.display());
                    }
                }
                a.detach().unwrap();
            }
        }
    });
}

// ---- class 10: the tree's root ---------------------------------------------

/// A destination that resolves to the tree's root (image symlinks to `/`,
/// `..`, `/.`) is refused with the mount's index and path; masked and
/// read-only paths too; nothing of the tree stays mounted.
#[test_log::test]
fn a_mount_on_the_tree_root_is_refused_and_nothing_stays_mounted() {
    let rootfs = make_rootfs();
    symlink("/", rootfs.join("tmp2")).unwrap();
    symlink("..", rootfs.join("up")).unwrap();
    symlink("/.", rootfs.join("dot")).unwrap();
    symlink("a/..", rootfs.join("back")).unwrap();
    let host = TempDir::new();
    std::fs::create_dir(host.join("d")).unwrap();
    common::in_mount_ns(|| {
        for dest in ["/tmp2", "/up", "/dot", "/back", "/tmp2/", "/a/b/../../tmp2"] {
            for m in [
                MountSpec::new(dest, "tmpfs", None, &[]),
                MountSpec::new(dest, "bind", Some(host.join("d")), &["rbind"]),
            ] {
                let spec = spec_with(
                    rootfs.path(),
                    vec![proc_mount(), MountSpec::new("/tmp", "tmpfs", None, &[]), m],
                );
                for s in strategies() {
                    let msg = assert_refused(&spec, s, ErrorKind::InvalidInput);
                    assert!(
                        msg.contains("mounts[2]") && msg.contains(dest) && msg.contains("root"),
                        "{dest} {s:?}: {msg}"
                    );
                }
            }
        }
        for dest in ["/", "/.", "/..", "/a/../.."] {
            let spec = spec_with(
                rootfs.path(),
                vec![MountSpec::new(dest, "tmpfs", None, &[])],
            );
            for s in strategies() {
                assert_refused(&spec, s, ErrorKind::InvalidInput);
            }
        }
        for (masked, ro) in [(vec!["/tmp2"], vec![]), (vec![], vec!["/up"])] {
            let mut spec = spec_with(rootfs.path(), vec![proc_mount()]);
            spec.masked_paths = masked.iter().map(PathBuf::from).collect();
            spec.readonly_paths = ro.iter().map(PathBuf::from).collect();
            for s in strategies() {
                let msg = assert_refused(&spec, s, ErrorKind::InvalidInput);
                assert!(msg.contains("root"), "{msg}");
            }
        }
    });
    assert_eq!(std::fs::read_dir(host.join("d")).unwrap().count(), 0);
}
