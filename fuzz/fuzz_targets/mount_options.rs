//! Mount options: `saferoot::rootfs::parse_options` (the words of an OCI
//! mount, one per line of the input) and `saferoot::mount::parse_data`
//! (a comma-separated data string, the whole input).
//!
//! Input: one byte (bit 0: the mount is a bind by its type), then UTF-8
//! text.
//!
//! Checks: a refusal is `InvalidInput`; a parse that succeeds is
//! consistent (nothing both set and cleared, at most one access-time
//! policy, no filesystem data on a bind, no idmap off a bind) and is a
//! fixed point: the options written back as words parse to the same
//! value. `parse_data` gives back exactly the string it split.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saferoot::mount::parse_data;
use saferoot::rootfs::{parse_options, BindKind, MountOptions};
use saferoot::MountAttr;
use saferoot_fuzz::assert_refused;

/// (attribute, word that sets it, word that clears it).
const WORDS: &[(MountAttr, &str, &str)] = &[
    (MountAttr::RDONLY, "ro", "rw"),
    (MountAttr::NOSUID, "nosuid", "suid"),
    (MountAttr::NODEV, "nodev", "dev"),
    (MountAttr::NOEXEC, "noexec", "exec"),
    (MountAttr::NOATIME, "noatime", "atime"),
    (MountAttr::RELATIME, "relatime", "norelatime"),
    (MountAttr::STRICTATIME, "strictatime", "nostrictatime"),
    (MountAttr::NODIRATIME, "nodiratime", "diratime"),
    (MountAttr::NOSYMFOLLOW, "nosymfollow", "symfollow"),
];

/// `o` written back as option words.
fn words(o: &MountOptions) -> Vec<String> {
    let mut w: Vec<String> = Vec::new();
    match o.bind {
        Some(BindKind::Bind) => w.push("bind".into()),
        Some(BindKind::RBind) => w.push("rbind".into()),
        None => {}
    }
    for (prefix, set, clear) in [("", o.set, o.clear), ("r", o.rec_set, o.rec_clear)] {
        for (attr, on, _) in WORDS {
            if set.contains(*attr) {
                w.push(format!("{prefix}{on}"));
            }
        }
        for (attr, _, off) in WORDS {
            if clear.contains(*attr) {
                w.push(format!("{prefix}{off}"));
            }
        }
    }
    w.extend(o.propagation.iter().map(|p| p.name()));
    match o.idmap {
        Some(false) => w.push("idmap".into()),
        Some(true) => w.push("ridmap".into()),
        None => {}
    }
    for (on, word) in [
        (o.tmpcopyup, "tmpcopyup"),
        (o.src_nofollow, "src-nofollow"),
        (o.dest_nofollow, "dest-nofollow"),
        (o.copy_symlink, "copy-symlink"),
    ] {
        if on {
            w.push(word.into());
        }
    }
    w.extend(
        o.data
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or_default())),
    );
    w.extend(o.sb_flags.iter().cloned());
    w.extend(
        o.data
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone()),
    );
    w.extend(o.ignored.iter().cloned());
    w
}

fn check_options(options: &[&str], is_bind: bool) {
    let o = match parse_options(options, is_bind) {
        Ok(o) => o,
        Err(e) => {
            assert_refused("parse_options", &e);
            return;
        }
    };
    assert_eq!(parse_options(options, is_bind).ok().as_ref(), Some(&o));
    assert!(!o.set.intersects(o.clear), "set and cleared: {o:?}");
    assert!(!o.rec_set.intersects(o.rec_clear), "set and cleared: {o:?}");
    assert!(!o.set.has_conflicting_atime() && !o.rec_set.has_conflicting_atime());
    let bind = is_bind || o.bind.is_some();
    if bind {
        assert!(
            o.data.is_empty() && o.sb_flags.is_empty() && !o.tmpcopyup,
            "{o:?}"
        );
    } else {
        assert!(o.idmap.is_none() && o.ignored.is_empty(), "{o:?}");
    }
    for (k, v) in &o.data {
        assert!(!k.is_empty() && !k.contains('\0'), "{o:?}");
        assert!(v.as_deref().is_none_or(|v| !v.contains('\0')));
        assert!(!k.starts_with("x-"), "x-* options are for helpers: {o:?}");
    }
    assert!(o.data.len() + o.sb_flags.len() + o.ignored.len() <= options.len());
    // A fixed point: the value written back as words parses to itself.
    let again = words(&o);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    match parse_options(&again, is_bind) {
        Ok(o2) => assert_eq!(o2, o, "written back as {again:?}"),
        Err(e) => panic!("written back as {again:?}, refused: {e}"),
    }
}

fn check_data(data: &str) {
    match parse_data(data) {
        Ok(items) => {
            if data.is_empty() {
                assert!(items.is_empty());
                return;
            }
            let joined: Vec<String> = items
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            assert_eq!(joined.join(","), data, "parse_data lost or changed text");
            assert!(items.iter().all(|(k, _)| !k.is_empty() && !k.contains(',')));
        }
        Err(e) => {
            assert_refused("parse_data", &e);
            assert!(
                data.contains('\0') || data.split(',').any(|i| i.split('=').next() == Some("")),
                "refused a well-formed data string {data:?}: {e}"
            );
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let options: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').collect()
    };
    check_options(&options, flags & 1 != 0);
    check_data(text);
});
