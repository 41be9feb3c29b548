//! OCI `config.json` → `RootfsSpec` → `Plan`: `saferoot::oci::spec_from_json`
//! and `saferoot::rootfs::plan`. Nothing is mounted.
//!
//! Input: the text of a config.json (bundle `/bundle`).
//!
//! Checks: every refusal, of the config or of the spec, is `InvalidInput`
//! (never a catch-all); translation and planning are deterministic; an
//! accepted spec holds absolute paths, survives a JSON round trip
//! unchanged, and plans the same after it (the options the translation
//! parsed and kept equal the options parsed again from the strings); the
//! verdict does not depend on how a destination is spelt (`/proc/.`,
//! `/a/../proc`, `//proc/`); a plan serializes to JSON that names only
//! mounts of the spec.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use saferoot::oci::spec_from_json;
use saferoot::rootfs::policy::clean;
use saferoot::rootfs::{plan, RootfsSpec};
use saferoot_fuzz::assert_refused;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let bundle = Path::new("/bundle");
    let spec = match spec_from_json(text, bundle) {
        Ok(spec) => spec,
        Err(e) => {
            assert_refused("spec_from_json", &e);
            let again = spec_from_json(text, bundle).expect_err("deterministic");
            assert_eq!(again.to_string(), e.to_string());
            return;
        }
    };
    assert_eq!(spec_from_json(text, bundle).ok().as_ref(), Some(&spec));
    assert!(spec.rootfs.is_absolute(), "{:?}", spec.rootfs);
    for m in &spec.mounts {
        assert!(m.destination.is_absolute(), "relative destination: {m:?}");
        if m.fs_type == "bind" {
            assert!(m.source.as_deref().is_some_and(Path::is_absolute), "{m:?}");
        }
    }
    for d in &spec.devices {
        assert!(d.path.is_absolute(), "{d:?}");
    }

    // The spec as saferoot's own JSON, and back.
    let json = serde_json::to_string(&spec).expect("a spec serializes");
    let back: RootfsSpec = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("the spec's own JSON does not read back: {e}\n{json}"));
    assert_eq!(back, spec, "JSON round trip changed the spec");

    let planned = plan(&spec);
    let replanned = plan(&back);
    match (&planned, &replanned) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the options kept by the translation differ"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("planning the spec and its JSON copy disagree: {planned:?} / {replanned:?}"),
    }
    // The policy judges a destination as the resolver will see it: the
    // same destinations spelt without `.`, `..`, repeated or trailing
    // slashes are accepted or refused alike.
    let mut cleaned = spec.clone();
    for m in &mut cleaned.mounts {
        m.destination = clean(&m.destination);
    }
    let replanned = plan(&cleaned);
    assert_eq!(
        planned.is_ok(),
        replanned.is_ok(),
        "the spelling of a destination changed the verdict: {planned:?} / {replanned:?}"
    );
    if let (Ok(a), Ok(b)) = (&planned, &replanned) {
        assert_eq!(a.mounts.len(), b.mounts.len(), "{a:?} / {b:?}");
    }

    match planned {
        Ok(p) => {
            let text = serde_json::to_string(&p).expect("a plan serializes");
            let v: serde_json::Value = serde_json::from_str(&text).expect("plan JSON parses");
            assert!(v.is_object());
            assert_eq!(
                serde_json::to_string(&p).ok().as_deref(),
                Some(text.as_str())
            );
            for m in &p.mounts {
                assert!(m.destination.is_absolute(), "{m:?}");
                if let Some(i) = m.index {
                    assert!(i < spec.mounts.len(), "plan names mount {i}: {m:?}");
                }
            }
        }
        Err(e) => assert_refused("plan", &e),
    }
});
