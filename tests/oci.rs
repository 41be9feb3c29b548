#![cfg(feature = "oci")]
//! The OCI runtime-spec reader: config.json → RootfsSpec. Pure tests, no
//! mounts: the real `runc spec` and `crun spec` defaults, the translation of
//! every field saferoot reads, and a refusal for each kind of bad config,
//! each naming the config entry at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use saferoot::oci::{load_bundle, spec_from_config, spec_from_json};
use saferoot::rootfs::{
    DeviceKind, DeviceSpec, IdMapping, MountSpec, Namespaces, PropagationSetting,
};
use saferoot::{ErrorKind, Propagation, RootfsSpec};

const RUNC_DEFAULT: &str = include_str!("fixtures/runc-spec-default.json");
const CRUN_DEFAULT: &str = include_str!("fixtures/crun-spec-default.json");

/// A directory under /tmp, removed (without following symlinks) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "saferoot-oci-test.{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn paths(ps: &[&str]) -> Vec<PathBuf> {
    ps.iter().map(PathBuf::from).collect()
}

/// What both `runc spec` and `crun spec` defaults must become.
fn default_spec(bundle: &Path) -> RootfsSpec {
    let m = |dest: &str, ty: &str, src: &str, opts: &[&str]| {
        MountSpec::new(dest, ty, Some(PathBuf::from(src)), opts)
    };
    RootfsSpec {
        rootfs: bundle.join("rootfs"),
        mounts: vec![
            m("/proc", "proc", "proc", &[]),
            m(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            m(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            m(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            m(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            m(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            m(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        devices: vec![],
        default_devices: true,
        masked_paths: paths(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ]),
        readonly_paths: paths(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]),
        rootfs_propagation: None,
        readonly_root: true,
        mount_label: None,
        strict_mount_label: false,
        cwd: Some(PathBuf::from("/")),
        sysctls: BTreeMap::new(),
        user_namespace: false,
        umask: None,
        namespaces: Namespaces {
            pid: true,
            net: true,
            ipc: true,
            uts: true,
            cgroup: false,
        },
    }
}

#[test_log::test]
fn oci_runc_default_config_maps_exactly() {
    let spec = spec_from_json(RUNC_DEFAULT, Path::new("/run/bundles/c1")).unwrap();
    assert_eq!(spec, default_spec(Path::new("/run/bundles/c1")));
}

#[test_log::test]
fn oci_crun_default_config_maps_exactly() {
    let spec = spec_from_json(CRUN_DEFAULT, Path::new("/run/bundles/c2")).unwrap();
    assert_eq!(spec, default_spec(Path::new("/run/bundles/c2")));
}

#[test_log::test]
fn oci_load_bundle_reads_config_json_from_the_bundle() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("config.json"), RUNC_DEFAULT).unwrap();
    let (config, spec) = load_bundle(dir.path()).unwrap();
    assert_eq!(spec, default_spec(dir.path()));
    assert_eq!(config.hostname().as_deref(), Some("runc"));
    // The config returned is the one converted.
    assert_eq!(spec_from_config(&config, dir.path()).unwrap(), spec);
}

#[test_log::test]
fn oci_relative_bundle_is_made_absolute() {
    let spec = spec_from_json(RUNC_DEFAULT, Path::new("bundles/c3")).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(spec.rootfs, cwd.join("bundles/c3/rootfs"));
    assert!(spec.rootfs.is_absolute());
}

/// A config exercising every field saferoot reads.
const FULL: &str = r#"{
    "ociVersion": "1.2.0",
    "process": {
        "user": { "uid": 1000, "gid": 1000, "umask": 18 },
        "args": ["sh"],
        "cwd": "/home/user"
    },
    "root": { "path": "/var/lib/images/alpine", "readonly": false },
    "mounts": [
        { "destination": "/data", "source": "volumes/data", "options": ["rbind", "rro", "rslave"] },
        { "destination": "/abs", "type": "bind", "source": "/srv/abs", "options": ["bind", "nosuid", "src-nofollow"] },
        { "destination": "/none", "type": "none", "source": "./rel", "options": ["rbind"] },
        { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=1777", "nodev"] },
        { "destination": "/home/user", "type": "bind", "source": "/srv/home",
          "options": ["rbind", "idmap"],
          "uidMappings": [{ "containerID": 0, "hostID": 200000, "size": 1000 }],
          "gidMappings": [{ "containerID": 0, "hostID": 300000, "size": 1000 }] },
        { "destination": "/shared", "type": "bind", "source": "/srv/shared", "options": ["bind", "ridmap"] }
    ],
    "linux": {
        "namespaces": [ { "type": "mount" }, { "type": "user" }, { "type": "pid" } ],
        "uidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ],
        "gidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ],
        "devices": [
            { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0 },
            { "path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 24992 },
            { "path": "/dev/ttyX", "type": "u", "major": 4, "minor": 64 },
            { "path": "/dev/pipe", "type": "p", "major": 0, "minor": 0, "fileMode": 384, "uid": 1000, "gid": 1000 }
        ],
        "sysctl": { "net.ipv4.ip_forward": "1", "net/ipv4/conf/eth0.100/forwarding": "0" },
        "maskedPaths": [ "/proc/kcore" ],
        "readonlyPaths": [ "/proc/sys" ],
        "rootfsPropagation": "rslave",
        "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2"
    }
}"#;

#[test_log::test]
fn oci_binds_idmaps_devices_sysctls_and_user_namespace() {
    let bundle = Path::new("/run/bundles/full");
    let spec = spec_from_json(FULL, bundle).unwrap();

    // An absolute root.path is kept.
    assert_eq!(spec.rootfs, PathBuf::from("/var/lib/images/alpine"));
    assert!(!spec.readonly_root);
    assert_eq!(spec.cwd, Some(PathBuf::from("/home/user")));
    assert_eq!(spec.umask, Some(0o22));
    assert!(spec.user_namespace);
    assert!(spec.default_devices);
    assert_eq!(
        spec.namespaces,
        Namespaces {
            pid: true,
            ..Default::default()
        }
    );

    let ns_map = vec![IdMapping {
        container_id: 0,
        host_id: 100000,
        size: 65536,
    }];
    let mut expected = vec![
        // No type + rbind = bind; relative source is in the bundle.
        MountSpec::new(
            "/data",
            "bind",
            Some(bundle.join("volumes/data")),
            &["rbind", "rro", "rslave"],
        ),
        // Absolute bind source kept.
        MountSpec::new(
            "/abs",
            "bind",
            Some(PathBuf::from("/srv/abs")),
            &["bind", "nosuid", "src-nofollow"],
        ),
        // Type "none" + rbind = bind.
        MountSpec::new("/none", "bind", Some(bundle.join("rel")), &["rbind"]),
        // Not a bind: source is a name, kept.
        MountSpec::new(
            "/tmp",
            "tmpfs",
            Some(PathBuf::from("tmpfs")),
            &["tmpcopyup", "mode=1777", "nodev"],
        ),
        MountSpec::new(
            "/home/user",
            "bind",
            Some(PathBuf::from("/srv/home")),
            &["rbind", "idmap"],
        ),
        MountSpec::new(
            "/shared",
            "bind",
            Some(PathBuf::from("/srv/shared")),
            &["bind", "ridmap"],
        ),
    ];
    // Mappings of the mount's own...
    expected[4].uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: 200000,
        size: 1000,
    }];
    expected[4].gid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: 300000,
        size: 1000,
    }];
    // ... or, for idmap without any, the user namespace's.
    expected[5].uid_mappings = ns_map.clone();
    expected[5].gid_mappings = ns_map;
    // Sources in the bundle are resolved inside it.
    expected[0].source_root = Some(bundle.to_path_buf());
    expected[2].source_root = Some(bundle.to_path_buf());
    assert_eq!(spec.mounts, expected);
    assert_eq!(
        spec.mounts[2].source.as_deref().map(Path::as_os_str),
        Some(bundle.join("rel").as_os_str())
    );

    assert_eq!(
        spec.devices,
        vec![
            DeviceSpec {
                path: "/dev/fuse".into(),
                kind: DeviceKind::Char,
                major: 10,
                minor: 229,
                file_mode: Some(0o666),
                uid: Some(0),
                gid: Some(0),
            },
            DeviceSpec {
                path: "/dev/sda".into(),
                kind: DeviceKind::Block,
                major: 8,
                minor: 0,
                // 24992 = S_IFBLK | 0o640: the type bits agree and are dropped.
                file_mode: Some(0o640),
                uid: None,
                gid: None,
            },
            DeviceSpec {
                path: "/dev/ttyX".into(),
                kind: DeviceKind::Char,
                major: 4,
                minor: 64,
                file_mode: None,
                uid: None,
                gid: None,
            },
            DeviceSpec {
                path: "/dev/pipe".into(),
                kind: DeviceKind::Fifo,
                major: 0,
                minor: 0,
                file_mode: Some(0o600),
                uid: Some(1000),
                gid: Some(1000),
            },
        ]
    );
    assert_eq!(
        spec.sysctls,
        BTreeMap::from([
            ("net.ipv4.ip_forward".to_string(), "1".to_string()),
            (
                "net/ipv4/conf/eth0.100/forwarding".to_string(),
                "0".to_string()
            ),
        ])
    );
    assert_eq!(spec.masked_paths, paths(&["/proc/kcore"]));
    assert_eq!(spec.readonly_paths, paths(&["/proc/sys"]));
    assert_eq!(
        spec.rootfs_propagation,
        Some(PropagationSetting {
            kind: Propagation::Slave,
            recursive: true
        })
    );
    assert_eq!(
        spec.mount_label.as_deref(),
        Some("system_u:object_r:container_file_t:s0:c1,c2")
    );
    // Every option list parses (the reader already did; the planner will).
    for m in &spec.mounts {
        saferoot::rootfs::parse_options(&m.options, m.fs_type == "bind").unwrap();
    }
}

#[test_log::test]
fn oci_mappings_without_idmap_option_get_one() {
    let text = full_with(|v| v["mounts"][4]["options"] = serde_json::json!(["rbind"]));
    let spec = spec_from_json(&text, Path::new("/b")).unwrap();
    assert_eq!(spec.mounts[4].options, vec!["rbind", "idmap"]);
    assert_eq!(spec.mounts[4].uid_mappings[0].host_id, 200000);
    assert_eq!(spec.mounts[4].gid_mappings[0].host_id, 300000);
    // ridmap is kept as the caller's choice, nothing appended.
    let text = full_with(|v| v["mounts"][4]["options"] = serde_json::json!(["rbind", "ridmap"]));
    let spec = spec_from_json(&text, Path::new("/b")).unwrap();
    assert_eq!(spec.mounts[4].options, vec!["rbind", "ridmap"]);
}

#[test_log::test]
fn oci_no_user_namespace_without_the_namespace_entry() {
    let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
    v["linux"]["namespaces"] = serde_json::json!([{ "type": "mount" }]);
    let spec = spec_from_json(&v.to_string(), Path::new("/b")).unwrap();
    assert!(!spec.user_namespace);
}

/// FULL with `f` applied to it.
fn full_with(f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
    f(&mut v);
    v.to_string()
}

/// Converts `text`, expects an InvalidInput error whose message names every
/// one of `needles`, and returns the message.
#[track_caller]
fn refused(text: &str, needles: &[&str]) -> String {
    let e = spec_from_json(text, Path::new("/run/bundles/bad")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(e.errno(), libc::EINVAL);
    let msg = e.to_string();
    log::debug!("refused: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg:?}");
    }
    msg
}

#[test_log::test]
fn oci_relative_mount_destination_is_refused() {
    let text = full_with(|v| v["mounts"][3]["destination"] = "tmp".into());
    refused(&text, &["mounts[3].destination", "tmp", "absolute"]);
}

#[test_log::test]
fn oci_unknown_option_on_a_bind_names_option_and_mount() {
    let text = full_with(|v| v["mounts"][1]["options"] = serde_json::json!(["bind", "frobnicate"]));
    let msg = refused(&text, &["mounts[1].options", "/abs", "frobnicate"]);
    assert!(!msg.contains("unknown"), "{msg}");
    // A filesystem data option means nothing to a bind: accepted and
    // ignored (with a warning when planned), as runc and crun do.
    let text = full_with(|v| v["mounts"][0]["options"] = serde_json::json!(["rbind", "size=1m"]));
    let spec = spec_from_json(&text, Path::new("/run/bundles/ok")).unwrap();
    assert_eq!(spec.mounts[0].options, ["rbind", "size=1m"]);
    // tmpcopyup is for tmpfs, idmap for binds.
    let text = full_with(|v| v["mounts"][1]["options"] = serde_json::json!(["bind", "tmpcopyup"]));
    refused(&text, &["mounts[1].options", "tmpcopyup"]);
    let text = full_with(|v| v["mounts"][3]["options"] = serde_json::json!(["idmap"]));
    refused(&text, &["mounts[3].options", "idmap"]);
}

#[test_log::test]
fn oci_unknown_rootfs_propagation_is_refused() {
    let text = full_with(|v| v["linux"]["rootfsPropagation"] = "rsideways".into());
    refused(&text, &["linux.rootfsPropagation", "rsideways"]);
}

#[test_log::test]
fn oci_unknown_device_type_is_refused() {
    // Not an OCI type at all: the JSON reader names the entry.
    let text = full_with(|v| v["linux"]["devices"][2]["type"] = "x".into());
    refused(&text, &["linux.devices[2].type", "\"x\""]);
    // "a" is a cgroup rule type, not a node type.
    let text = full_with(|v| v["linux"]["devices"][1]["type"] = "a".into());
    refused(&text, &["linux.devices[1].type", "/dev/sda"]);
}

#[test_log::test]
fn oci_invalid_json_reports_line_and_column() {
    let text = "{\n  \"ociVersion\": \"1.0.0\",\n  \"root\": { \"path\": \"rootfs\" ,, }\n}";
    refused(text, &["config.json", "line 3", "column"]);
    refused("", &["config.json", "EOF"]);
    // Valid JSON, wrong shape.
    refused(
        r#"{"mounts": {"destination": "/x"}}"#,
        &["config.json", "line 1"],
    );
}

#[test_log::test]
fn oci_config_json_symlink_out_of_the_bundle_is_refused() {
    let dir = TempDir::new();
    let outside = dir.path().join("outside.json");
    std::fs::write(&outside, RUNC_DEFAULT).unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();

    for target in [outside.clone(), PathBuf::from("../outside.json")] {
        let _ = std::fs::remove_file(bundle.join("config.json"));
        std::os::unix::fs::symlink(&target, bundle.join("config.json")).unwrap();
        let e = load_bundle(&bundle).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SafetyViolation, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("config.json"), "{msg}");
        assert!(msg.contains("outside the bundle"), "{msg}");
    }

    // A symlink that stays inside the bundle is fine.
    std::fs::remove_file(bundle.join("config.json")).unwrap();
    std::fs::write(bundle.join("real.json"), RUNC_DEFAULT).unwrap();
    std::os::unix::fs::symlink("real.json", bundle.join("config.json")).unwrap();
    let (_, spec) = load_bundle(&bundle).unwrap();
    assert_eq!(spec, default_spec(&bundle));
}

#[test_log::test]
fn oci_bundle_without_config_json_or_with_a_directory_there() {
    let dir = TempDir::new();
    let e = load_bundle(dir.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("config.json"), "{e}");

    std::fs::create_dir(dir.path().join("config.json")).unwrap();
    let e = load_bundle(dir.path()).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
    assert!(
        matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Os),
        "{e}"
    );

    let e = load_bundle(&dir.path().join("missing")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test_log::test]
fn oci_config_json_that_is_a_fifo_is_refused_without_blocking() {
    let dir = TempDir::new();
    let fifo = dir.path().join("config.json");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let e = load_bundle(dir.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("regular file"), "{e}");
}

#[test_log::test]
fn oci_other_bad_configs_name_their_entry() {
    use serde_json::json;
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(|v| v["mounts"][3]["destination"] = "/t\u{0}mp".into()),
            &["mounts[3].destination", "NUL"],
        ),
        (
            Box::new(|v| v["mounts"][3]["type"] = json!(null)),
            &["mounts[3].type", "no filesystem type"],
        ),
        (
            Box::new(|v| v["mounts"][3]["options"] = json!(["bind"])),
            &["mounts[3].type", "tmpfs"],
        ),
        (
            Box::new(|v| v["mounts"][1]["source"] = json!(null)),
            &["mounts[1].source", "needs a source"],
        ),
        (
            Box::new(|v| v["mounts"][1]["options"] = json!(["bind", "n\u{0}osuid"])),
            &["mounts[1].options[1]", "NUL"],
        ),
        (
            Box::new(|v| {
                v["mounts"][4]["gidMappings"] = json!(null);
            }),
            &["mounts[4].gidMappings", "together"],
        ),
        (
            Box::new(|v| {
                v["mounts"][4]["uidMappings"][0]["size"] = 0.into();
            }),
            &["mounts[4].uidMappings[0]", "size is 0"],
        ),
        (
            Box::new(|v| {
                v["mounts"][3]["uidMappings"] =
                    json!([{ "containerID": 0, "hostID": 1, "size": 1 }]);
                v["mounts"][3]["gidMappings"] =
                    json!([{ "containerID": 0, "hostID": 1, "size": 1 }]);
            }),
            &["mounts[3].uidMappings", "bind"],
        ),
        (
            Box::new(|v| {
                v["linux"]["uidMappings"] = json!(null);
            }),
            &["mounts[5].options", "idmap"],
        ),
        (
            Box::new(|v| v["linux"]["devices"][0]["path"] = "dev/fuse".into()),
            &["linux.devices[0].path", "absolute"],
        ),
        (
            Box::new(|v| v["linux"]["devices"][0]["major"] = 4096.into()),
            &["linux.devices[0].major", "4096"],
        ),
        (
            Box::new(|v| v["linux"]["devices"][1]["minor"] = (-1).into()),
            &["linux.devices[1].minor", "-1"],
        ),
        (
            // S_IFCHR bits on a block device.
            Box::new(|v| v["linux"]["devices"][1]["fileMode"] = 0o20640.into()),
            &["linux.devices[1].fileMode", "0o20640"],
        ),
        (
            Box::new(|v| v["linux"]["maskedPaths"] = json!(["/proc/kcore", "proc/keys"])),
            &["linux.maskedPaths[1]", "proc/keys"],
        ),
        (
            Box::new(|v| v["linux"]["readonlyPaths"] = json!([""])),
            &["linux.readonlyPaths[0]", "empty"],
        ),
        (
            Box::new(|v| v["linux"]["sysctl"] = json!({"net/../../../etc/passwd": "x"})),
            &["linux.sysctl[\"net/../../../etc/passwd\"]", ".."],
        ),
        (
            Box::new(|v| v["linux"]["mountLabel"] = "a\u{0}b".into()),
            &["linux.mountLabel", "NUL"],
        ),
        (
            Box::new(|v| v["process"]["cwd"] = "home".into()),
            &["process.cwd", "absolute"],
        ),
        (
            Box::new(|v| v["process"]["user"]["umask"] = 0o1022.into()),
            &["process.user.umask"],
        ),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("root");
            }),
            &["root", "no root"],
        ),
        (
            Box::new(|v| v["root"]["path"] = "".into()),
            &["root.path", "empty"],
        ),
    ];
    for (edit, needles) in cases {
        let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
        edit(&mut v);
        refused(&v.to_string(), needles);
    }
}

#[test_log::test]
fn oci_refusals_carry_their_entry_as_data() {
    use saferoot::Entry;
    use serde_json::json;
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, Entry)> = vec![
        (
            Box::new(|v| v["mounts"][3]["destination"] = "tmp".into()),
            Entry::Mount(3),
        ),
        (
            Box::new(|v| v["mounts"][1]["options"] = json!(["bind", "frobnicate"])),
            Entry::Mount(1),
        ),
        (
            Box::new(|v| v["linux"]["devices"][1]["minor"] = (-1).into()),
            Entry::Device(1),
        ),
        (
            Box::new(|v| v["linux"]["devices"][2]["type"] = "x".into()),
            Entry::Device(2),
        ),
        (
            Box::new(|v| v["linux"]["maskedPaths"] = json!(["/proc/kcore", "proc/keys"])),
            Entry::MaskedPath(1),
        ),
        (
            Box::new(|v| v["linux"]["readonlyPaths"] = json!([""])),
            Entry::ReadonlyPath(0),
        ),
        (
            Box::new(|v| v["linux"]["sysctl"] = json!({"net/../x": "1"})),
            Entry::Sysctl("net/../x".into()),
        ),
        (
            Box::new(|v| v["process"]["cwd"] = "home".into()),
            Entry::Cwd,
        ),
        (
            Box::new(|v| v["linux"]["rootfsPropagation"] = "rsideways".into()),
            Entry::Config("linux.rootfsPropagation".into()),
        ),
    ];
    for (edit, want) in cases {
        let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
        edit(&mut v);
        let e = spec_from_json(&v.to_string(), Path::new("/run/bundles/bad")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.entry(), Some(&want), "{e}");
    }
}
