//! Helpers shared by the fuzz targets: the mount-table checks (for the
//! mountinfo and statmount targets) and the error-kind checks.

use std::os::unix::ffi::OsStrExt;

use saferoot::{ErrorKind, MountAttr, MountEntry, MountTable};

/// Panics unless `e` is the typed refusal of bad input: kind
/// `InvalidInput`, errno `EINVAL`, a message that names something.
#[track_caller]
pub fn assert_refused(what: &str, e: &saferoot::Error) {
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "{what}: bad input must be refused as InvalidInput, got {e:?} ({e})"
    );
    assert_eq!(e.errno(), libc::EINVAL, "{what}: {e:?}");
    assert!(!e.to_string().is_empty(), "{what}: empty message");
    assert!(e.reason().is_some(), "{what}: no reason in {e:?}");
}

/// The kernel's mountinfo escapes: space, tab, newline and backslash as
/// `\ooo`.
pub fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// The per-mount options as mountinfo prints them (`ro`/`rw` first,
/// strictatime implied), or `None` when `attrs` cannot come from the
/// kernel (more than one access-time policy).
pub fn mount_options_field(attrs: MountAttr, idmapped: bool) -> Option<String> {
    if (attrs & MountAttr::ATIME_POLICY).bits().count_ones() != 1 {
        return None;
    }
    let mut s = String::from(if attrs.contains(MountAttr::RDONLY) {
        "ro"
    } else {
        "rw"
    });
    for (flag, word) in [
        (MountAttr::NOSUID, "nosuid"),
        (MountAttr::NODEV, "nodev"),
        (MountAttr::NOEXEC, "noexec"),
        (MountAttr::NOATIME, "noatime"),
        (MountAttr::RELATIME, "relatime"),
        (MountAttr::NODIRATIME, "nodiratime"),
        (MountAttr::NOSYMFOLLOW, "nosymfollow"),
    ] {
        if attrs.contains(flag) {
            s.push(',');
            s.push_str(word);
        }
    }
    if idmapped {
        s.push_str(",idmapped");
    }
    Some(s)
}

/// `e` as a line of `/proc/self/mountinfo`, the way the kernel would
/// print it. `None` when the entry holds something the kernel cannot
/// print in a line (a newline in the superblock options, which the kernel
/// escapes before they reach the entry).
pub fn mountinfo_line(e: &MountEntry) -> Option<Vec<u8>> {
    let sopts = e.super_options.clone().unwrap_or_else(|| "rw".into());
    if sopts.contains('\n') {
        return None;
    }
    let mut line = format!("{} {} {}:{} ", e.id, e.parent_id, e.dev.0, e.dev.1).into_bytes();
    line.extend(escape(e.root.as_os_str().as_bytes()));
    line.push(b' ');
    line.extend(escape(e.mount_point.as_os_str().as_bytes()));
    line.push(b' ');
    line.extend(mount_options_field(e.attrs, e.idmapped)?.into_bytes());
    let p = &e.propagation;
    if let Some(g) = p.shared {
        line.extend(format!(" shared:{g}").into_bytes());
    }
    if let Some(g) = p.master {
        line.extend(format!(" master:{g}").into_bytes());
    }
    if let Some(g) = p.propagate_from {
        line.extend(format!(" propagate_from:{g}").into_bytes());
    }
    if p.unbindable {
        line.extend_from_slice(b" unbindable");
    }
    line.extend_from_slice(b" - ");
    line.extend(escape(e.fs_type.as_bytes()));
    line.push(b' ');
    line.extend(escape(e.source.as_deref().unwrap_or("none").as_bytes()));
    line.push(b' ');
    line.extend(sopts.into_bytes());
    Some(line)
}

/// Checks what every table must satisfy, whatever it was made from:
/// lookups agree with the entries, walks terminate (even with parent
/// cycles) and stay inside the table, and every entry has exactly one
/// access-time policy.
pub fn check_table(table: &MountTable) {
    let entries = table.entries();
    assert_eq!(table.len(), entries.len());
    assert_eq!(table.is_empty(), entries.is_empty());
    assert_eq!(table.iter().count(), entries.len());
    for e in entries {
        assert_eq!(
            (e.attrs & MountAttr::ATIME_POLICY).bits().count_ones(),
            1,
            "entry without exactly one access-time policy: {e:?}"
        );
        let _ = e.to_string();
        let got = table.get(e.id).expect("every entry is found by its id");
        assert_eq!(got, e, "two entries with id {}", e.id);
        let sub = table.subtree(e.id);
        assert_eq!(
            sub.first().copied(),
            Some(e),
            "a subtree starts at its mount"
        );
        assert!(sub.len() <= entries.len(), "subtree longer than the table");
        for kid in table.children(e.id) {
            assert_eq!(kid.parent_id, e.id, "child with another parent");
            assert_ne!(kid.id, e.id, "a namespace root is not its own child");
        }
        if let Some(top) = table.find_by_mount_point(&e.mount_point) {
            assert_eq!(top.mount_point, e.mount_point);
        }
    }
}

/// The kernel's `struct statmount` buffer, written from a decoded value
/// (for the statmount target and its seeds).
pub mod statmount {
    use std::mem::{offset_of, size_of};
    use std::os::unix::ffi::OsStrExt;

    use linux_raw_sys::general as k;
    use saferoot::testing::StatmountInfo;

    /// The size of the struct, without its strings.
    pub const STRUCT: usize = size_of::<k::statmount>();
    /// Where the strings start.
    pub const STRINGS: usize = offset_of!(k::statmount, str_);
    /// One buffer of the statmount target's input: the struct and 256
    /// bytes of strings.
    pub const BUF: usize = STRUCT + 256;

    /// The string fields: mask bit, offset field.
    pub const STRING_FIELDS: [(u32, usize); 6] = [
        (k::STATMOUNT_FS_TYPE, offset_of!(k::statmount, fs_type)),
        (
            k::STATMOUNT_FS_SUBTYPE,
            offset_of!(k::statmount, fs_subtype),
        ),
        (k::STATMOUNT_MNT_ROOT, offset_of!(k::statmount, mnt_root)),
        (k::STATMOUNT_MNT_POINT, offset_of!(k::statmount, mnt_point)),
        (k::STATMOUNT_SB_SOURCE, offset_of!(k::statmount, sb_source)),
        (k::STATMOUNT_MNT_OPTS, offset_of!(k::statmount, mnt_opts)),
    ];

    /// The string fields of `info`, in the order of [`STRING_FIELDS`], as
    /// bytes.
    pub fn info_strings(info: &StatmountInfo) -> [Option<Vec<u8>>; 6] {
        let text = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
        let path =
            |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.as_os_str().as_bytes().to_vec());
        [
            text(&info.fs_type),
            text(&info.fs_subtype),
            path(&info.mnt_root),
            path(&info.mnt_point),
            text(&info.sb_source),
            text(&info.mnt_opts),
        ]
    }

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }

    /// `info` written as the kernel would write it: the struct, then each
    /// string the mask announces, NUL-terminated, padded to whole 8-byte
    /// words.
    pub fn encode(info: &StatmountInfo) -> Vec<u8> {
        let mut b = vec![0u8; STRUCT];
        put32(&mut b, offset_of!(k::statmount, size), STRUCT as u32);
        put64(&mut b, offset_of!(k::statmount, mask), info.mask);
        put32(
            &mut b,
            offset_of!(k::statmount, sb_dev_major),
            info.sb_dev_major,
        );
        put32(
            &mut b,
            offset_of!(k::statmount, sb_dev_minor),
            info.sb_dev_minor,
        );
        put64(&mut b, offset_of!(k::statmount, sb_magic), info.sb_magic);
        put32(&mut b, offset_of!(k::statmount, sb_flags), info.sb_flags);
        put64(&mut b, offset_of!(k::statmount, mnt_id), info.mnt_id);
        put64(
            &mut b,
            offset_of!(k::statmount, mnt_parent_id),
            info.parent_id,
        );
        put32(
            &mut b,
            offset_of!(k::statmount, mnt_id_old),
            info.mnt_id_old,
        );
        put32(
            &mut b,
            offset_of!(k::statmount, mnt_parent_id_old),
            info.parent_id_old,
        );
        put64(&mut b, offset_of!(k::statmount, mnt_attr), info.mnt_attr);
        put64(
            &mut b,
            offset_of!(k::statmount, mnt_propagation),
            info.propagation,
        );
        put64(
            &mut b,
            offset_of!(k::statmount, mnt_peer_group),
            info.peer_group,
        );
        put64(&mut b, offset_of!(k::statmount, mnt_master), info.master);
        put64(
            &mut b,
            offset_of!(k::statmount, propagate_from),
            info.propagate_from,
        );
        put64(
            &mut b,
            offset_of!(k::statmount, supported_mask),
            info.supported_mask,
        );
        let mut strings = Vec::new();
        for ((_, field), s) in STRING_FIELDS.iter().zip(info_strings(info)) {
            if let Some(s) = s {
                put32(&mut b, *field, strings.len() as u32);
                strings.extend_from_slice(&s);
                strings.push(0);
            }
        }
        b.truncate(STRINGS);
        b.extend(strings);
        b.resize(b.len().max(STRUCT).div_ceil(8) * 8, 0);
        b
    }
}
