//! The statmount buffer decoder (`saferoot::testing::decode_statmount`,
//! the code that reads what `statmount(2)` wrote) and the table the
//! statmount backend builds from its answers
//! (`saferoot::testing::mount_table_from_statmount`).
//!
//! Input: buffers of `BUF` bytes each, shaped like the kernel's
//! `struct statmount` followed by its strings.
//!
//! Checks: decoding fails (`EIO`) exactly when the buffer is shorter than
//! the struct or a string the mask announces lies outside it or has no
//! NUL; a decoded value holds exactly what the buffer says, only for the
//! groups in the mask, and encoding it again decodes to the same value;
//! the table built from the answers is never refused, its lookups and
//! walks are consistent, every entry has one access-time policy, and each
//! entry printed as a mountinfo line parses to the same mount (the two
//! backends agree).

#![no_main]

use std::mem::offset_of;

use libfuzzer_sys::fuzz_target;
use linux_raw_sys::general as k;
use rustix::io::Errno;
use saferoot::testing::{decode_statmount, mount_table_from_statmount, StatmountInfo};
use saferoot::MountEntry;
use saferoot_fuzz::statmount::{encode, info_strings, BUF, STRINGS, STRING_FIELDS, STRUCT};
use saferoot_fuzz::{check_table, mountinfo_line};

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

/// The bytes of the string announced at `field`, from the raw buffer
/// (what the decoder must find), or `None` when it is out of bounds or
/// unterminated.
fn raw_string(buf: &[u8], field: usize) -> Option<&[u8]> {
    let off = u32_at(buf, field) as usize;
    let rest = buf[STRINGS..].get(off..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    Some(&rest[..end])
}

/// Checks a decoded buffer against its raw bytes.
fn check_decoded(buf: &[u8], info: &StatmountInfo) {
    let mask = u64_at(buf, offset_of!(k::statmount, mask));
    assert_eq!(info.mask, mask);
    let has = |bit: u32| mask & u64::from(bit) != 0;
    let strings = info_strings(info);
    for ((bit, field), got) in STRING_FIELDS.iter().zip(&strings) {
        if !has(*bit) {
            assert!(got.is_none(), "string outside the mask decoded: {info:?}");
            continue;
        }
        let raw = raw_string(buf, *field).expect("decoded, so the string is there");
        let got = got.as_ref().expect("in the mask, so decoded");
        if *bit == k::STATMOUNT_MNT_ROOT || *bit == k::STATMOUNT_MNT_POINT {
            assert_eq!(got.as_slice(), raw, "a path must keep its bytes");
        } else {
            assert_eq!(got.as_slice(), String::from_utf8_lossy(raw).as_bytes());
        }
    }
    let zero_unless = |bit: u32, v: u64, off: usize, wide: bool| {
        let want = if !has(bit) {
            0
        } else if wide {
            u64_at(buf, off)
        } else {
            u64::from(u32_at(buf, off))
        };
        assert_eq!(v, want, "field at {off}, group {bit:#x}: {info:?}");
    };
    use k::{STATMOUNT_MNT_BASIC as MB, STATMOUNT_SB_BASIC as SB};
    zero_unless(
        SB,
        info.sb_dev_major.into(),
        offset_of!(k::statmount, sb_dev_major),
        false,
    );
    zero_unless(
        SB,
        info.sb_dev_minor.into(),
        offset_of!(k::statmount, sb_dev_minor),
        false,
    );
    zero_unless(SB, info.sb_magic, offset_of!(k::statmount, sb_magic), true);
    zero_unless(
        SB,
        info.sb_flags.into(),
        offset_of!(k::statmount, sb_flags),
        false,
    );
    zero_unless(MB, info.mnt_id, offset_of!(k::statmount, mnt_id), true);
    zero_unless(
        MB,
        info.parent_id,
        offset_of!(k::statmount, mnt_parent_id),
        true,
    );
    zero_unless(
        MB,
        info.mnt_id_old.into(),
        offset_of!(k::statmount, mnt_id_old),
        false,
    );
    zero_unless(
        MB,
        info.parent_id_old.into(),
        offset_of!(k::statmount, mnt_parent_id_old),
        false,
    );
    zero_unless(MB, info.mnt_attr, offset_of!(k::statmount, mnt_attr), true);
    zero_unless(
        MB,
        info.propagation,
        offset_of!(k::statmount, mnt_propagation),
        true,
    );
    zero_unless(
        MB,
        info.peer_group,
        offset_of!(k::statmount, mnt_peer_group),
        true,
    );
    zero_unless(MB, info.master, offset_of!(k::statmount, mnt_master), true);
    zero_unless(
        k::STATMOUNT_PROPAGATE_FROM,
        info.propagate_from,
        offset_of!(k::statmount, propagate_from),
        true,
    );
    zero_unless(
        k::STATMOUNT_SUPPORTED_MASK,
        info.supported_mask,
        offset_of!(k::statmount, supported_mask),
        true,
    );
}

fn check_buffer(buf: &[u8]) -> Option<StatmountInfo> {
    let words = buf.len() / 8 * 8;
    let whole = &buf[..words];
    match decode_statmount(buf) {
        Ok(info) => {
            assert!(whole.len() >= STRUCT, "decoded a short buffer");
            check_decoded(whole, &info);
            let again = decode_statmount(&encode(&info)).expect("an encoded value decodes");
            assert_eq!(again, info, "encoded and decoded again, the value changed");
            Some(info)
        }
        Err(e) => {
            assert_eq!(e, Errno::IO, "the decoder fails with EIO only");
            if whole.len() >= STRUCT {
                let mask = u64_at(whole, offset_of!(k::statmount, mask));
                assert!(
                    STRING_FIELDS.iter().any(|(bit, field)| {
                        mask & u64::from(*bit) != 0 && raw_string(whole, *field).is_none()
                    }),
                    "refused a buffer whose announced strings are all there"
                );
            }
            None
        }
    }
}

/// The statmount entry and the mountinfo parser agree on what the kernel
/// would print for it.
fn same_through_mountinfo(e: &MountEntry) {
    let Some(line) = mountinfo_line(e) else {
        return;
    };
    let parsed = MountEntry::from_mountinfo_line(&line).unwrap_or_else(|err| {
        panic!(
            "statmount entry printed as mountinfo does not parse: {err}\n{e:?}\n{:?}",
            String::from_utf8_lossy(&line)
        )
    });
    assert!(
        parsed.same_as(e),
        "the backends disagree:\nstatmount: {e:?}\nmountinfo: {parsed:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut infos = Vec::new();
    for chunk in data.chunks(BUF) {
        infos.extend(check_buffer(chunk));
    }
    let table = mount_table_from_statmount(infos.clone())
        .expect("the statmount backend's table is never refused");
    assert_eq!(table.backend(), saferoot::mountinfo::Backend::Statmount);
    assert!(table.len() <= infos.len());
    check_table(&table);
    for e in table.entries() {
        assert!(
            infos.iter().any(|i| Some(i.mnt_id) == e.unique_id
                && u64::from(i.mnt_id_old) == e.id
                && i.has(k::STATMOUNT_MNT_BASIC)
                && i.has(k::STATMOUNT_SB_BASIC)
                && e.fs_type
                    .starts_with(i.fs_type.as_deref().unwrap_or_default())),
            "an entry that comes from no answer: {e:?}"
        );
        assert!(!e.mount_point.as_os_str().is_empty());
        // The kernel never reports an empty root or type; mountinfo
        // could not print them.
        if !e.root.as_os_str().is_empty() && !e.fs_type.is_empty() {
            same_through_mountinfo(e);
        }
    }
});
