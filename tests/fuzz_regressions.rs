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

/// archive_unpack target: a directory entry whose size field (base-256)
/// is near 2^64 overflowed `remaining + padding` when the parser skipped
/// the data nobody read: a panic where overflow checks are on, and in a
/// release build a skip of a few bytes, after which the directory's
/// "data" was read as the next header. It must be refused as a malformed
/// archive (the skip runs into the end of the input).
#[cfg(feature = "archive")]
#[test_log::test]
fn archive_huge_size_on_a_directory_is_refused_not_wrapped() {
    use saferoot::archive::UnpackOptions;
    use saferoot::{ErrorKind, Root};

    let checksum = |h: &mut [u8; 512]| {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    };
    let mut h = [0u8; 512];
    h[..2].copy_from_slice(b"d/");
    h[100..108].copy_from_slice(b"0000755\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    // Size: base-256, u64::MAX.
    h[124] = 0x80;
    h[128..136].fill(0xff);
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'5';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    checksum(&mut h);
    // What a wrapped skip would take for the next header: a file "x".
    let mut next = [0u8; 512];
    next[..1].copy_from_slice(b"x");
    next[100..108].copy_from_slice(b"0000644\0");
    next[124..136].copy_from_slice(b"00000000000\0");
    next[156] = b'0';
    next[257..263].copy_from_slice(b"ustar\0");
    next[263..265].copy_from_slice(b"00");
    checksum(&mut next);
    let mut archive = h.to_vec();
    archive.extend_from_slice(&next);

    let dir = std::env::temp_dir().join(format!("saferoot-fuzzreg.{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let root = Root::open(&dir).unwrap();
    let result = root.unpack(archive.as_slice(), &UnpackOptions::default());
    drop(root);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    let e = result.expect_err("the directory's data runs past the archive");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?} ({e})");
    assert!(e.to_string().contains("ends in the middle"), "{e}");
    assert!(
        !left.iter().any(|n| n == "x"),
        "read data as a header: {left:?}"
    );
}

/// Found by reading the code behind the previous finding: with no byte
/// limit (the default), a file of 1 byte and then a file whose size field
/// is near 2^64 overflowed the running byte count before the second
/// file's data was found missing (a panic with overflow checks on).
#[cfg(feature = "archive")]
#[test_log::test]
fn archive_huge_file_after_another_is_refused_without_overflow() {
    use saferoot::archive::UnpackOptions;
    use saferoot::{ErrorKind, Root};

    let header = |name: &[u8], size: Option<u64>| {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        match size {
            Some(n) => h[124..136].copy_from_slice(format!("{n:011o}\0").as_bytes()),
            None => {
                // Base-256: u64::MAX.
                h[124] = 0x80;
                h[128..136].fill(0xff);
            }
        }
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    };
    let mut archive = header(b"a", Some(1)).to_vec();
    let mut data = [0u8; 512];
    data[0] = b'a';
    archive.extend_from_slice(&data);
    archive.extend_from_slice(&header(b"b", None));
    archive.extend_from_slice(b"some of b");

    let dir = std::env::temp_dir().join(format!("saferoot-fuzzreg2.{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let root = Root::open(&dir).unwrap();
    let opts = UnpackOptions::default();
    assert_eq!(opts.limits.max_bytes, u64::MAX, "no byte limit");
    let result = root.unpack(archive.as_slice(), &opts);
    drop(root);
    std::fs::remove_dir_all(&dir).unwrap();
    let e = result.expect_err("b's data runs past the archive");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?} ({e})");
}
