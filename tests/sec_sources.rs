//! Issue 8, classes 4 and 5: bind sources and overlay layers inside the
//! rootfs or the bundle are resolved inside that directory, so an image
//! symlink there never leads to a host path.
//!
//! Every hostile case plants a marker file in a host directory that an
//! image symlink points at, assembles, and then looks at what is mounted
//! from the outside: the marker must not be readable through the mount, and
//! the mounted directory must be the in-root target (same device and
//! inode), or the assembly refused with nothing left mounted.

mod common;

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use common::TempDir;
use saferoot::features::{self, Feature};
use saferoot::rootfs::{assemble, AssembleOptions, MountSpec, RootfsSpec, Strategy};
use saferoot::ErrorKind;

const HOST_SECRET: &str = "host secret\n";
const IN_ROOT: &str = "in-root\n";

/// A host directory with a marker file the container must never see.
fn host_dir() -> TempDir {
    let d = TempDir::new();
    std::fs::write(d.join("MARKER"), HOST_SECRET).unwrap();
    symlink("/host-link-target", d.join("link")).unwrap();
    d
}

/// A bundle `bundle/rootfs` whose image holds hostile symlinks:
/// `evil -> <host dir>` (absolute), `slash -> /`, and, at the path the host
/// directory has on the host, a directory of its own with an in-root marker
/// (what a confined lookup of `evil` finds).
fn hostile_bundle(host: &Path) -> TempDir {
    let b = TempDir::new();
    let r = b.join("rootfs");
    for sub in ["proc", "dev", "tmp", "etc", "layers/up", "layers/work"] {
        std::fs::create_dir_all(r.join(sub)).unwrap();
    }
    std::fs::write(r.join("etc/marker"), "image etc\n").unwrap();
    let shadow = r.join(host.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&shadow).unwrap();
    std::fs::write(shadow.join("MARKER"), IN_ROOT).unwrap();
    symlink("/in-root-link-target", shadow.join("link")).unwrap();
    symlink(host, r.join("evil")).unwrap();
    symlink("/", r.join("slash")).unwrap();
    std::fs::write(b.join("BUNDLE_MARKER"), "bundle\n").unwrap();
    b
}

fn spec(rootfs: &Path, mounts: Vec<MountSpec>) -> RootfsSpec {
    RootfsSpec {
        rootfs: rootfs.to_path_buf(),
        mounts,
        default_devices: false,
        ..Default::default()
    }
}

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

/// The mount points below `root` in the calling thread's namespace, read
/// independently of saferoot.
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    common::mount_points()
        .into_iter()
        .filter(|(p, _)| p.starts_with(root) && p != root)
        .map(|(p, _)| p)
        .collect()
}

fn dev_ino(p: &Path) -> (u64, u64) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.dev(), m.ino())
}

/// Checks that the directory mounted at `dest` (host path of the mount
/// point, seen through the assembled tree) is `expected` and shows no host
/// marker.
fn assert_shows(dest: &Path, expected: (u64, u64), what: &str) {
    assert!(
        common::is_mount_point(dest),
        "{} is not mounted",
        dest.display()
    );
    if let Ok(s) = std::fs::read_to_string(dest.join("MARKER")) {
        assert_ne!(
            s,
            HOST_SECRET,
            "{what}: the host's directory is mounted at {}",
            dest.display()
        );
    }
    assert_eq!(
        dev_ino(dest),
        expected,
        "{what}: {} is not the in-root target",
        dest.display()
    );
}

#[test_log::test]
fn sec_bind_source_under_the_rootfs_is_resolved_in_the_rootfs() {
    let host = host_dir();
    let bundle = hostile_bundle(host.path());
    let rootfs = bundle.join("rootfs");
    let shadow = rootfs.join(host.path().strip_prefix("/").unwrap());
    // What the confined lookups must find, taken before anything is mounted.
    let want_evil = dev_ino(&shadow);
    let want_etc = dev_ino(&rootfs.join("etc"));
    let host_id = dev_ino(host.path());
    assert_ne!(want_evil, host_id);
    // A host symlink outside the rootfs that leads into it: not lexically
    // under the rootfs, caught by walking the host path.
    let links = TempDir::new();
    symlink(&rootfs, links.join("to-rootfs")).unwrap();
    common::in_mount_ns(|| {
        for strategy in strategies() {
            let s = spec(
                &rootfs,
                vec![
                    MountSpec::new(
                        "/m-via-host-link",
                        "bind",
                        Some(links.join("to-rootfs/evil")),
                        &["bind"],
                    ),
                    // Absolute, lexically under the rootfs, through `evil`.
                    MountSpec::new("/m-evil", "bind", Some(rootfs.join("evil")), &["rbind"]),
                    // `slash -> /`, then etc: the image's /etc.
                    MountSpec::new("/m-etc", "bind", Some(rootfs.join("slash/etc")), &["bind"]),
                    // Spelt with `.` and `//`: cleaned before it is judged.
                    MountSpec::new(
                        "/m-dots",
                        "bind",
                        Some(PathBuf::from(format!("{}/./evil//", rootfs.display()))),
                        &["bind"],
                    ),
                    // copy-symlink reads the in-root link, not the host's.
                    MountSpec::new(
                        "/m-link",
                        "bind",
                        Some(rootfs.join("evil/link")),
                        &["bind", "copy-symlink"],
                    ),
                ],
            );
            let a = assemble(&s, &opts(strategy))
                .unwrap_or_else(|e| panic!("{}: {e}", strategy.name()));
            let what = strategy.name();
            assert_shows(&rootfs.join("m-evil"), want_evil, what);
            assert_eq!(
                std::fs::read_to_string(rootfs.join("m-evil/MARKER")).unwrap(),
                IN_ROOT
            );
            assert_shows(&rootfs.join("m-etc"), want_etc, what);
            assert_eq!(
                std::fs::read_to_string(rootfs.join("m-etc/marker")).unwrap(),
                "image etc\n"
            );
            assert_shows(&rootfs.join("m-dots"), want_evil, what);
            assert_shows(&rootfs.join("m-via-host-link"), want_evil, what);
            assert_eq!(
                std::fs::read_link(rootfs.join("m-link")).unwrap(),
                Path::new("/in-root-link-target")
            );
            a.detach().unwrap();
            assert!(mounts_under(&rootfs).is_empty(), "{what}");
            std::fs::remove_file(rootfs.join("m-link")).unwrap();
        }
    });
    // Nothing was written through the symlink on the host.
    assert_eq!(
        std::fs::read_to_string(host.join("MARKER")).unwrap(),
        HOST_SECRET
    );
    assert!(!host.join("m-link").exists());
}

#[test_log::test]
fn sec_oci_bundle_sources_are_resolved_in_the_bundle_or_the_rootfs() {
    let host = host_dir();
    let bundle = hostile_bundle(host.path());
    let b = bundle.path();
    let rootfs = b.join("rootfs");
    symlink("/", b.join("vol")).unwrap();
    symlink(host.path(), b.join("vol-host")).unwrap();
    let shadow = rootfs.join(host.path().strip_prefix("/").unwrap());
    let want_bundle = dev_ino(b);
    let want_etc = dev_ino(&rootfs.join("etc"));
    let want_evil = dev_ino(&shadow);
    let config = |mounts: &str| {
        format!(
            r#"{{ "ociVersion": "1.2.0", "root": {{ "path": "rootfs" }},
                 "linux": {{ "namespaces": [ {{ "type": "mount" }} ] }},
                 "mounts": [ {mounts} ] }}"#
        )
    };
    let good = config(&format!(
        r#"{{ "destination": "/vol", "type": "bind", "source": "vol", "options": ["rbind"] }},
           {{ "destination": "/etc2", "type": "bind", "source": "rootfs/slash/etc", "options": ["bind"] }},
           {{ "destination": "/m-evil", "type": "bind", "source": "{}/rootfs/evil", "options": ["bind"] }}"#,
        b.display()
    ));
    let mut s = saferoot::oci::spec_from_json(&good, b).unwrap();
    s.default_devices = false;
    // The translation says where each source is confined.
    assert_eq!(s.mounts[0].source_root.as_deref(), Some(b));
    common::in_mount_ns(|| {
        for strategy in strategies() {
            let what = strategy.name();
            let a = assemble(&s, &opts(strategy)).unwrap_or_else(|e| panic!("{what}: {e}"));
            // `vol -> /` is the bundle's own root, never the host's /.
            assert_shows(&rootfs.join("vol"), want_bundle, what);
            assert!(rootfs.join("vol/BUNDLE_MARKER").exists(), "{what}");
            assert_shows(&rootfs.join("etc2"), want_etc, what);
            assert_shows(&rootfs.join("m-evil"), want_evil, what);
            a.detach().unwrap();
            assert!(mounts_under(&rootfs).is_empty(), "{what}");
        }
        // `vol-host -> <host dir>` resolves inside the bundle, where there
        // is no such directory: refused, nothing mounted.
        let bad = config(
            r#"{ "destination": "/vh", "type": "bind", "source": "vol-host", "options": ["bind"] }"#,
        );
        let mut s = saferoot::oci::spec_from_json(&bad, b).unwrap();
        s.default_devices = false;
        for strategy in strategies() {
            let e = assemble(&s, &opts(strategy)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
            assert!(mounts_under(&rootfs).is_empty(), "{}", strategy.name());
        }
        // A relative source may not leave the bundle.
        let bad = config(
            r#"{ "destination": "/up", "type": "bind", "source": "../etc", "options": ["bind"] }"#,
        );
        let mut s = saferoot::oci::spec_from_json(&bad, b).unwrap();
        s.default_devices = false;
        let e = assemble(&s, &opts(Strategy::InPlace)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("leaves"), "{e}");
        assert!(mounts_under(&rootfs).is_empty());
    });
}

#[test_log::test]
fn sec_host_sources_outside_the_rootfs_stay_host_paths() {
    // A host symlink outside the rootfs is the caller's: followed as on the
    // host, as before.
    let host = host_dir();
    let links = TempDir::new();
    symlink(host.path(), links.join("to-host")).unwrap();
    let bundle = hostile_bundle(host.path());
    let rootfs = bundle.join("rootfs");
    let want = dev_ino(host.path());
    common::in_mount_ns(|| {
        for strategy in strategies() {
            let s = spec(
                &rootfs,
                vec![
                    MountSpec::new("/h", "bind", Some(links.join("to-host")), &["bind", "ro"]),
                    MountSpec::new(
                        "/netns",
                        "bind",
                        Some("/proc/self/ns/net".into()),
                        &["bind"],
                    ),
                ],
            );
            let a = assemble(&s, &opts(strategy)).unwrap();
            assert!(common::is_mount_point(&rootfs.join("h")));
            // A magic link on procfs is still followed by the kernel.
            assert_eq!(
                dev_ino(&rootfs.join("netns")),
                dev_ino(Path::new("/proc/self/ns/net"))
            );
            assert_eq!(dev_ino(&rootfs.join("h")), want);
            assert_eq!(
                std::fs::read_to_string(rootfs.join("h/MARKER")).unwrap(),
                HOST_SECRET
            );
            a.detach().unwrap();
        }
    });
}

/// An overlay spec: options `lowerdir=...,upperdir=...,workdir=...`.
fn overlay(dest: &str, lower: &[&Path], upper: &Path, work: &Path) -> MountSpec {
    let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let opts = [
        format!("lowerdir={}", lower.join(":")),
        format!("upperdir={}", upper.display()),
        format!("workdir={}", work.display()),
    ];
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    MountSpec::new(dest, "overlay", Some("overlay".into()), &opts)
}

#[test_log::test]
fn sec_overlay_layers_work_as_fds_and_write_through_upper() {
    let host = host_dir();
    let layers = TempDir::new();
    for sub in ["lower", "upper", "work"] {
        std::fs::create_dir(layers.join(sub)).unwrap();
    }
    std::fs::write(layers.join("lower/from-lower"), "lower\n").unwrap();
    let bundle = hostile_bundle(host.path());
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("layers/lower")).unwrap();
    std::fs::write(rootfs.join("layers/lower/in-image"), "image layer\n").unwrap();
    eprintln!(
        "overlay-layer-fds: {}",
        features::has(Feature::OverlayLayerFds)
    );
    common::in_mount_ns(|| {
        for strategy in strategies() {
            let what = strategy.name();
            let s = spec(
                &rootfs,
                vec![
                    // Host layers.
                    overlay(
                        "/ovl",
                        &[&layers.join("lower")],
                        &layers.join("upper"),
                        &layers.join("work"),
                    ),
                    // Layers inside the image, symlink-free.
                    overlay(
                        "/ovl-in",
                        &[&rootfs.join("layers/lower")],
                        &rootfs.join("layers/up"),
                        &rootfs.join("layers/work"),
                    ),
                ],
            );
            let a = assemble(&s, &opts(strategy)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let ovl = rootfs.join("ovl");
            assert!(common::mount_points()
                .iter()
                .any(|(p, t)| *p == ovl && t == "overlay"));
            assert_eq!(
                std::fs::read_to_string(ovl.join("from-lower")).unwrap(),
                "lower\n"
            );
            std::fs::write(ovl.join(format!("written-{what}")), what).unwrap();
            let ovl_in = rootfs.join("ovl-in");
            assert_eq!(
                std::fs::read_to_string(ovl_in.join("in-image")).unwrap(),
                "image layer\n"
            );
            std::fs::write(ovl_in.join("w"), what).unwrap();
            a.detach().unwrap();
            // The write went to the upper layer, seen on the host side.
            assert_eq!(
                std::fs::read_to_string(layers.join(format!("upper/written-{what}"))).unwrap(),
                what
            );
            assert_eq!(
                std::fs::read_to_string(rootfs.join("layers/up/w")).unwrap(),
                what
            );
            assert!(!layers.join(format!("lower/written-{what}")).exists());
        }
    });
}

/// Assembles an overlay whose lower layer is the image symlink `evil ->
/// <host dir>`; returns whether it was mounted (and then checked to be the
/// in-root directory) or the refusal.
fn hostile_overlay(strategy: Strategy) -> Result<(), saferoot::Error> {
    let host = host_dir();
    let bundle = hostile_bundle(host.path());
    let rootfs = bundle.join("rootfs");
    let s = spec(
        &rootfs,
        vec![overlay(
            "/ovl",
            &[&rootfs.join("evil")],
            &rootfs.join("layers/up"),
            &rootfs.join("layers/work"),
        )],
    );
    let r = common::in_mount_ns(|| {
        let r = assemble(&s, &opts(strategy));
        let ovl = rootfs.join("ovl");
        match r {
            Ok(a) => {
                let marker = std::fs::read_to_string(ovl.join("MARKER")).unwrap();
                assert_ne!(marker, HOST_SECRET, "the host's directory is a layer");
                assert_eq!(marker, IN_ROOT);
                a.detach().unwrap();
                Ok(())
            }
            Err(e) => {
                assert!(mounts_under(&rootfs).is_empty(), "refused but left mounts");
                Err(e)
            }
        }
    })
    .expect("runs as root");
    assert_eq!(
        std::fs::read_to_string(host.join("MARKER")).unwrap(),
        HOST_SECRET
    );
    r
}

#[test_log::test]
fn sec_overlay_layer_through_an_image_symlink_is_confined() {
    for strategy in strategies() {
        let r = hostile_overlay(strategy);
        if features::has(Feature::OverlayLayerFds) {
            r.unwrap_or_else(|e| panic!("{}: with layer fds it is confined: {e}", strategy.name()));
        } else {
            let e = r.expect_err("a symlinked layer cannot be proven safe without layer fds");
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        }
    }
}

#[test_log::test]
fn sec_overlay_without_layer_fds_refuses_symlinked_layers() {
    common::in_child(
        "sec_overlay_without_layer_fds_refuses_symlinked_layers",
        &[("SAFEROOT_DISABLE_FEATURES", "overlay-layer-fds")],
        false,
        || {
            assert!(!features::has(Feature::OverlayLayerFds));
            for strategy in strategies() {
                let e = hostile_overlay(strategy).expect_err("must be refused");
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
                let msg = e.to_string();
                assert!(
                    msg.contains("overlay-layer-fds") && msg.contains("6.13"),
                    "{msg}"
                );
            }
            // Symlink-free layers inside the image, and host layers, still
            // work: the first proven through their fd, the second as
            // strings.
            let host = host_dir();
            let layers = TempDir::new();
            std::fs::create_dir(layers.join("lower")).unwrap();
            std::fs::write(layers.join("lower/from-host-lower"), "l\n").unwrap();
            let bundle = hostile_bundle(host.path());
            let rootfs = bundle.join("rootfs");
            std::fs::create_dir_all(rootfs.join("layers/lower")).unwrap();
            std::fs::write(rootfs.join("layers/lower/in-image"), "image layer\n").unwrap();
            let s = spec(
                &rootfs,
                vec![overlay(
                    "/ovl",
                    &[&rootfs.join("layers/lower"), &layers.join("lower")],
                    &rootfs.join("layers/up"),
                    &rootfs.join("layers/work"),
                )],
            );
            common::in_mount_ns(|| {
                for strategy in strategies() {
                    let a = assemble(&s, &opts(strategy)).unwrap();
                    let ovl = rootfs.join("ovl");
                    assert!(ovl.join("in-image").exists());
                    assert!(ovl.join("from-host-lower").exists());
                    std::fs::write(ovl.join("new"), "x").unwrap();
                    a.detach().unwrap();
                    assert!(rootfs.join("layers/up/new").exists());
                    std::fs::remove_file(rootfs.join("layers/up/new")).unwrap();
                }
            });
            // A symlink in the middle of an in-root layer path (not only
            // at its end) is caught as well.
            symlink("layers", rootfs.join("lnk")).unwrap();
            let s = spec(
                &rootfs,
                vec![overlay(
                    "/ovl",
                    &[&rootfs.join("lnk/lower")],
                    &rootfs.join("layers/up"),
                    &rootfs.join("layers/work"),
                )],
            );
            common::in_mount_ns(|| {
                let e = assemble(&s, &opts(Strategy::InPlace)).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
                assert!(mounts_under(&rootfs).is_empty());
            });
        },
    );
}
