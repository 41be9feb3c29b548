//! A failed assembly changes nothing: no mount stays, and no file,
//! directory, device node or symlink that saferoot created for the run stays
//! in the rootfs; what was there before is left exactly as it was.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::TempDir;
use saferoot::rootfs::{
    assemble, AssembleOptions, DeviceKind, DeviceSpec, MountSpec, Namespaces, RootfsSpec, Strategy,
};

/// Every entry below `dir` (not following symlinks, not crossing into
/// mounts: the walk is of the rootfs's own filesystem) with its type bits,
/// mode and inode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64)> {
    fn walk(base: &Path, dir: &Path, dev: u64, out: &mut BTreeMap<PathBuf, (u32, u64)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            out.insert(
                path.strip_prefix(base).unwrap().to_path_buf(),
                (meta.mode(), meta.ino()),
            );
            if meta.is_dir() && meta.dev() == dev {
                walk(base, &path, dev, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    let dev = std::fs::metadata(dir).unwrap().dev();
    walk(dir, dir, dev, &mut out);
    out
}

fn strategies() -> Vec<Strategy> {
    [Strategy::Detached, Strategy::InPlace]
        .into_iter()
        .filter(|s| s.resolve().is_ok())
        .collect()
}

/// A spec whose mounts create mount points at several depths (below a
/// directory that exists and below ones that do not), a file for a file
/// bind, a /dev with default devices and an extra device node, a /dev link,
/// and copy-symlink.
fn spec(rootfs: &Path, host: &Path) -> RootfsSpec {
    RootfsSpec {
        rootfs: rootfs.to_path_buf(),
        mounts: vec![
            MountSpec::new("/dev", "tmpfs", None, &["nosuid", "mode=755"]),
            MountSpec::new("/existing/new/deeper", "tmpfs", None, &["size=1m"]),
            MountSpec::new("/vol/a/b", "bind", Some(host.join("dir")), &["bind", "ro"]),
            MountSpec::new(
                "/files/here/file",
                "bind",
                Some(host.join("file")),
                &["bind", "ro"],
            ),
        ],
        devices: vec![
            DeviceSpec {
                path: "/dev/extra/null2".into(),
                kind: DeviceKind::Char,
                major: 1,
                minor: 3,
                file_mode: Some(0o666),
                uid: None,
                gid: None,
            },
            // Outside /dev: on the rootfs's own filesystem.
            DeviceSpec {
                path: "/nodes/here/null3".into(),
                kind: DeviceKind::Char,
                major: 1,
                minor: 3,
                file_mode: Some(0o600),
                uid: None,
                gid: None,
            },
        ],
        cwd: None,
        ..RootfsSpec::default()
    }
}

#[test_log::test]
fn a_failed_assembly_leaves_no_new_entry_in_the_rootfs() {
    let rootfs = TempDir::new();
    std::fs::create_dir_all(rootfs.join("existing")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "image\n").unwrap();
    std::fs::set_permissions(rootfs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = TempDir::new();
    std::fs::create_dir(host.join("dir")).unwrap();
    std::fs::write(host.join("file"), "host\n").unwrap();
    let base = spec(rootfs.path(), host.path());
    let before = snapshot(rootfs.path());
    let host_before = snapshot(host.path());

    // A mount that fails only when it is made (its source does not exist),
    // at every position, so that each prefix of the work is rolled back.
    let failing = MountSpec::new(
        "/late/failure",
        "bind",
        Some("/nonexistent/saferoot-source".into()),
        &["bind"],
    );
    let mut checked = 0;
    for strategy in strategies() {
        for k in 0..=base.mounts.len() {
            let mut s = base.clone();
            s.mounts.insert(k, failing.clone());
            common::in_mount_ns(|| {
                let e = assemble(
                    &s,
                    &AssembleOptions {
                        strategy,
                        ..Default::default()
                    },
                )
                .unwrap_err();
                assert_eq!(e.kind(), saferoot::ErrorKind::NotFound, "k={k}: {e}");
                assert!(
                    !common::mount_points()
                        .iter()
                        .any(|(p, _)| p.starts_with(rootfs.path())),
                    "{strategy:?} k={k}: a mount stayed"
                );
            });
            assert_eq!(
                snapshot(rootfs.path()),
                before,
                "{strategy:?}, failure at mounts[{k}]: the rootfs changed"
            );
            checked += 1;
        }
    }
    assert!(checked > base.mounts.len());
    assert_eq!(snapshot(host.path()), host_before, "the host side changed");

    // The same spec without the failure succeeds and leaves exactly its
    // mount points behind (documented): the rollback above had work to do.
    common::in_mount_ns(|| {
        let a = assemble(&base, &AssembleOptions::default()).expect("assemble");
        a.detach().expect("detach");
    });
    let after = snapshot(rootfs.path());
    for p in ["dev", "existing/new/deeper", "vol/a/b", "files/here/file"] {
        assert!(after.contains_key(Path::new(p)), "{p} missing: {after:#?}");
    }
}

#[test_log::test]
fn rollback_keeps_what_was_there_before() {
    // Everything the spec's mounts go onto exists already: a failure must
    // not remove any of it.
    let rootfs = TempDir::new();
    for d in ["dev", "existing/new/deeper", "vol/a/b", "files/here"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(rootfs.join("files/here/file"), "image\n").unwrap();
    let host = TempDir::new();
    std::fs::create_dir(host.join("dir")).unwrap();
    std::fs::write(host.join("file"), "host\n").unwrap();
    let mut s = spec(rootfs.path(), host.path());
    s.mounts.push(MountSpec::new(
        "/late/failure",
        "bind",
        Some("/nonexistent/saferoot-source".into()),
        &["bind"],
    ));
    let before = snapshot(rootfs.path());
    for strategy in strategies() {
        common::in_mount_ns(|| {
            let opts = AssembleOptions {
                strategy,
                ..Default::default()
            };
            assemble(&s, &opts).unwrap_err();
        });
        let after = snapshot(rootfs.path());
        // Only the failing mount's own parent, /late, may not come back (it
        // was created and removed); all of the rest is as before.
        assert_eq!(after, before, "{strategy:?}");
    }
}

/// A failure in the last step, after every mount, device node and link was
/// made: a sysctl the kernel refuses to take. Everything goes again.
#[test_log::test]
fn a_failure_after_the_devices_removes_them_too() {
    let rootfs = TempDir::new();
    std::fs::create_dir_all(rootfs.join("existing")).unwrap();
    let host = TempDir::new();
    std::fs::create_dir(host.join("dir")).unwrap();
    std::fs::write(host.join("file"), "host\n").unwrap();
    let mut s = spec(rootfs.path(), host.path());
    s.namespaces = Namespaces {
        ipc: true,
        ..Namespaces::default()
    };
    s.sysctls
        .insert("kernel.shmmni".into(), "not-a-number".into());
    let before = snapshot(rootfs.path());
    for strategy in strategies() {
        common::in_mount_ns(|| {
            saferoot::namespace::unshare(rustix::thread::UnshareFlags::NEWIPC)
                .expect("unshare ipc");
            let opts = AssembleOptions {
                strategy,
                ..Default::default()
            };
            let e = assemble(&s, &opts).unwrap_err();
            assert!(e.to_string().contains("shmmni"), "{e}");
            assert!(
                !common::mount_points()
                    .iter()
                    .any(|(p, _)| p.starts_with(rootfs.path())),
                "{strategy:?}: a mount stayed"
            );
        });
        assert_eq!(
            snapshot(rootfs.path()),
            before,
            "{strategy:?}: the rootfs changed"
        );
    }
    // Without the bad sysctl, the node outside /dev is made: the rollback
    // above removed it.
    s.sysctls.clear();
    common::in_mount_ns(|| {
        saferoot::namespace::unshare(rustix::thread::UnshareFlags::NEWIPC).expect("unshare ipc");
        assemble(&s, &AssembleOptions::default())
            .expect("assemble")
            .detach()
            .expect("detach");
    });
    assert!(rootfs.join("nodes/here/null3").exists());
}
