//! Inputs the fuzz targets in `fuzz/` found, each turned into a test (see
//! docs/architecture.md, "Fuzz targets"). Each test names the target and
//! the invariant the input broke.

use std::mem::{offset_of, size_of};

use linux_raw_sys::general as k;
use saferoot::testing::{decode_statmount, mount_table_from_statmount};
use saferoot::MountAttr;

/// A statmount buffer: the struct with `mask`, `mnt_attr` and the strings
/// for the mount point, root and type, as the kernel lays them out.
fn statmount_buffer(mask: u32, mnt_attr: u64, strings: &[(usize, &str)]) -> Vec<u8> {
    let mut b = vec![0u8; size_of::<k::statmount>()];
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 =
        |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    put64(&mut b, offset_of!(k::statmount, mask), u64::from(mask));
    put64(&mut b, offset_of!(k::statmount, mnt_attr), mnt_attr);
    put64(&mut b, offset_of!(k::statmount, mnt_id), 1 << 32);
    put32(&mut b, offset_of!(k::statmount, mnt_id_old), 7);
    let mut text = Vec::new();
    for (field, s) in strings {
        put32(&mut b, *field, text.len() as u32);
        text.extend_from_slice(s.as_bytes());
        text.push(0);
    }
    b.truncate(offset_of!(k::statmount, str_));
    b.extend(text);
    b.resize(b.len().div_ceil(8) * 8, 0);
    b
}

/// statmount target: a `mnt_attr` with bit 40 set (never a kernel bit, but
/// saferoot's own bit for relatime) gave an entry both `noatime` and
/// `relatime`, where every entry must have exactly one access-time policy
/// (and the mountinfo backend could not have reported it).
#[test_log::test]
fn statmount_attr_with_saferoots_relatime_bit_has_one_atime_policy() {
    let bits = u64::from(k::MOUNT_ATTR_NOATIME | k::MOUNT_ATTR_RDONLY) | 1 << 40;
    assert_eq!(
        MountAttr::from_kernel(bits),
        MountAttr::RDONLY | MountAttr::NOATIME
    );
    assert_eq!(MountAttr::from_kernel(1 << 40), MountAttr::RELATIME);

    let buf = statmount_buffer(
        k::STATMOUNT_MNT_BASIC
            | k::STATMOUNT_SB_BASIC
            | k::STATMOUNT_MNT_POINT
            | k::STATMOUNT_MNT_ROOT
            | k::STATMOUNT_FS_TYPE,
        bits,
        &[
            (offset_of!(k::statmount, mnt_point), "/mnt"),
            (offset_of!(k::statmount, mnt_root), "/"),
            (offset_of!(k::statmount, fs_type), "tmpfs"),
        ],
    );
    let info = decode_statmount(&buf).expect("a well-formed buffer decodes");
    let table = mount_table_from_statmount(vec![info]).expect("a table of one mount");
    let e = table.get(7).expect("the mount, by its old id");
    assert_eq!(e.attrs, MountAttr::RDONLY | MountAttr::NOATIME, "{e:?}");
}

/// oci_plan target: a bind mount with `uidMappings` and `gidMappings` but
/// no `idmap` option got `idmap` appended to its option strings, while the
/// parsed options the translation keeps with the mount (and the planner
/// reads) still said "no idmap": the plan made a plain bind, showing the
/// container the host's ids, though the mappings ask for an idmapped
/// mount. The same spec read back from its JSON planned an idmapped one.
#[cfg(feature = "oci")]
#[test_log::test]
fn oci_mappings_alone_plan_an_idmapped_mount() {
    use std::path::Path;

    use saferoot::rootfs::{plan, RootfsSpec};

    let config = r#"{"ociVersion":"1.1.0","root":{"path":"rootfs"},
        "mounts":[{"destination":"/data","type":"bind","source":"data","options":["rbind"],
          "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
          "gidMappings":[{"containerID":0,"hostID":200000,"size":65536}]}],
        "linux":{"namespaces":[{"type":"user"},{"type":"mount"}],
          "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
          "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}"#;
    let spec = saferoot::oci::spec_from_json(config, Path::new("/bundle")).unwrap();
    assert_eq!(spec.mounts[0].options, ["rbind", "idmap"]);
    assert_eq!(
        spec.mounts[0].parsed_options().unwrap().idmap,
        Some(false),
        "the kept parse must say what the strings say"
    );
    let p = plan(&spec).unwrap();
    let m = p.mounts.iter().find(|m| m.index == Some(0)).unwrap();
    let idmap = m.idmap.as_ref().expect("an idmapped mount");
    assert!(!idmap.recursive);
    assert_eq!(idmap.uid_mappings[0].host_id, 100000);
    assert_eq!(idmap.gid_mappings[0].host_id, 200000);

    let back: RootfsSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(
        plan(&back).unwrap(),
        p,
        "planned the same from the spec's JSON"
    );
}

/// oci_plan target: a config with several bad `linux.sysctl` names was
/// refused for whichever name the map's random order gave first, so the
/// same config got a different error from one read to the next (oci-spec
/// keeps sysctls in a `HashMap`, freshly seeded for each config read).
/// Names are now checked in order: always the first bad one.
#[cfg(feature = "oci")]
#[test_log::test]
fn oci_bad_sysctls_are_refused_for_the_same_name_every_time() {
    use std::path::Path;

    let config = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "linux":{"namespaces":[{"type":"mount"}],
          "sysctl":{"net..b":"1","fs..d":"1","kernel..e":"1","vm..f":"1",
                    ".a":"1","x..c":"1","..g":"1","net.ipv4.ip_forward":"1"}}}"#;
    let first = saferoot::oci::spec_from_json(config, Path::new("/bundle"))
        .expect_err("bad sysctl names")
        .to_string();
    assert!(first.contains(r#"linux.sysctl["..g"]"#), "{first}");
    for _ in 0..32 {
        let again = saferoot::oci::spec_from_json(config, Path::new("/bundle"))
            .expect_err("bad sysctl names")
            .to_string();
        assert_eq!(again, first);
    }
}
