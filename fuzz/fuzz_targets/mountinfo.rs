//! `/proc/self/mountinfo` text: `MountTable::parse_mountinfo` and
//! `MountEntry::from_mountinfo_line`.
//!
//! Checks: a refusal is `InvalidInput`; the table and the line parser
//! agree line by line; an entry printed back the way the kernel prints it
//! parses to the same entry (the parser is a left inverse of the kernel's
//! format); the table's lookups and walks are consistent and terminate.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saferoot::{MountEntry, MountTable};
use saferoot_fuzz::{assert_refused, check_table, mountinfo_line};

fn reparse(e: &MountEntry) {
    let Some(line) = mountinfo_line(e) else {
        return;
    };
    let again = MountEntry::from_mountinfo_line(&line).unwrap_or_else(|err| {
        panic!(
            "the printed entry does not parse: {err}\nentry: {e:?}\nline: {:?}",
            String::from_utf8_lossy(&line)
        )
    });
    assert_eq!(&again, e, "printed and parsed again, the entry changed");
}

fuzz_target!(|data: &[u8]| {
    // Line by line.
    let mut good = Vec::new();
    let mut all_good = true;
    for line in data.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match MountEntry::from_mountinfo_line(line) {
            Ok(e) => {
                assert!(e.unique_id.is_none(), "mountinfo has no unique id");
                assert!(e.source.is_some() && e.super_options.is_some());
                assert!(!e.mount_point.as_os_str().is_empty());
                assert!(!e.root.as_os_str().is_empty());
                assert!(!e.fs_type.is_empty());
                reparse(&e);
                good.push(e);
            }
            Err(err) => {
                assert_refused("mountinfo line", &err);
                all_good = false;
            }
        }
    }

    // The whole text.
    match MountTable::parse_mountinfo(data) {
        Ok(table) => {
            assert!(all_good, "the table parsed a text with a bad line");
            assert_eq!(table.entries(), &good[..], "table and line parser disagree");
            assert_eq!(table.backend(), saferoot::mountinfo::Backend::Mountinfo);
            check_table(&table);
            // The table printed back parses to the same table.
            let mut text = Vec::new();
            for e in table.entries() {
                if let Some(line) = mountinfo_line(e) {
                    text.extend(line);
                    text.push(b'\n');
                } else {
                    return;
                }
            }
            let again = MountTable::parse_mountinfo(&text).expect("the printed table parses");
            assert_eq!(again.entries(), table.entries());
        }
        Err(err) => {
            assert_refused("mountinfo", &err);
            if all_good {
                // Only duplicate ids make a table of good lines bad.
                let mut ids: Vec<u64> = good.iter().map(|e| e.id).collect();
                ids.sort_unstable();
                let n = ids.len();
                ids.dedup();
                assert!(
                    ids.len() < n,
                    "good lines, unique ids, and still refused: {err}"
                );
            }
        }
    }
});
