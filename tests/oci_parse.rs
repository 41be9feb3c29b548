#![cfg(feature = "oci")]
//! `saferoot::oci::spec_from_slice` reads a `config.json` into the same
//! `Spec`, and refuses it with the same message, as oci-spec's own
//! `Deserialize` (`serde_json::from_slice::<Spec>`), which saferoot's
//! programs no longer link (see `src/oci/config_json.rs`): every fixture,
//! a config that sets every field of `process` and of the top level, and
//! each way a `process` can be wrong. The one intended difference, CPU
//! lists written with other Unicode digits, is checked too.

use saferoot::oci::oci_spec::runtime::Spec;
use saferoot::oci::{spec_from_slice, spec_from_value};

/// Both readers on `text`: equal values, or errors with equal messages;
/// and the same from the text parsed as a JSON value first (which keeps
/// the last of duplicate keys, so it is compared with oci-spec's reading
/// of that value).
fn same(what: &str, text: &str) {
    agree(
        what,
        serde_json::from_slice::<Spec>(text.as_bytes()),
        spec_from_slice(text.as_bytes()),
    );
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        agree(
            &format!("{what} (from a value)"),
            serde_json::from_value::<Spec>(value.clone()),
            spec_from_value(value),
        );
    }
}

/// oci-spec's result and saferoot's: equal values, or equal messages.
fn agree(what: &str, theirs: serde_json::Result<Spec>, ours: serde_json::Result<Spec>) {
    match (&theirs, &ours) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
        _ => panic!("{what}: oci-spec gives {theirs:?}, saferoot {ours:?}"),
    }
}

#[test_log::test]
fn every_fixture_reads_the_same() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut n = 0;
    for sub in [dir.clone(), dir.join("audit")] {
        for entry in std::fs::read_dir(&sub).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                same(
                    &path.display().to_string(),
                    &std::fs::read_to_string(&path).unwrap(),
                );
                n += 1;
            }
        }
    }
    assert!(n >= 6, "only {n} fixtures found in {}", dir.display());
}

/// Every field of `process` and of the top level set.
const FULL: &str = r#"{
  "ociVersion": "1.2.0",
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}],
  "process": {
    "terminal": true,
    "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1, "gid": 2, "umask": 18, "additionalGids": [3, 4], "username": "u"},
    "args": ["sh", "-c", "true"],
    "commandLine": "sh -c true",
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/work",
    "capabilities": {
      "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "inheritable": [],
      "permitted": ["CAP_CHOWN", "CAP_KILL"], "ambient": ["CAP_KILL"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
    "noNewPrivileges": false,
    "apparmorProfile": "unconfined",
    "oomScoreAdj": -100,
    "selinuxLabel": "system_u:system_r:container_t:s0",
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "scheduler": {"policy": "SCHED_OTHER", "nice": 5},
    "execCPUAffinity": {"initial": "0-3,7", "final": "1"}
  },
  "hostname": "h",
  "domainname": "d",
  "hooks": {"createRuntime": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]},
  "annotations": {"a": "b"},
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}],
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    "maskedPaths": ["/proc/kcore"],
    "readonlyPaths": ["/proc/sys"]
  },
  "solaris": {"milestone": "m"},
  "windows": {"layerFolders": ["C:\\l"]},
  "vm": {"kernel": {"path": "/k"}},
  "zos": {},
  "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
  "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]
}"#;

#[test_log::test]
fn every_field_reads_the_same() {
    same("every field", FULL);
    let spec = spec_from_slice(FULL.as_bytes()).unwrap();
    let process = spec.process().as_ref().unwrap();
    let affinity = process.exec_cpu_affinity().as_ref().unwrap();
    assert_eq!(affinity.initial().as_deref(), Some("0-3,7"));
    assert_eq!(affinity.cpu_affinity_final().as_deref(), Some("1"));
    assert_eq!(process.oom_score_adj(), Some(-100));
}

#[test_log::test]
fn edge_cases_read_or_fail_the_same() {
    let user = r#""user": {"uid": 0, "gid": 0}"#;
    let cases = [
        ("empty object", "{}".to_string()),
        ("not an object", "[]".to_string()),
        ("not JSON", "{".to_string()),
        ("null process", r#"{"process": null}"#.to_string()),
        ("empty process", r#"{"process": {}}"#.to_string()),
        ("no user", r#"{"process": {"cwd": "/"}}"#.to_string()),
        ("no cwd", format!(r#"{{"process": {{{user}}}}}"#)),
        (
            "smallest process",
            format!(r#"{{"process": {{{user}, "cwd": "/"}}}}"#),
        ),
        (
            "nulls",
            format!(
                r#"{{"process": {{{user}, "cwd": "/", "terminal": null, "oomScoreAdj": null, "args": null, "execCPUAffinity": null}}}}"#
            ),
        ),
        (
            "unknown fields",
            format!(r#"{{"x": 1, "process": {{{user}, "cwd": "/", "y": [1]}}}}"#),
        ),
        (
            "wrong type",
            format!(r#"{{"process": {{{user}, "cwd": "/", "args": "sh"}}}}"#),
        ),
        (
            "wrong oomScoreAdj",
            format!(r#"{{"process": {{{user}, "cwd": "/", "oomScoreAdj": 3000000000}}}}"#),
        ),
        (
            "duplicate process",
            format!(r#"{{"process": {{{user}, "cwd": "/"}}, "process": null}}"#),
        ),
        (
            "duplicate field in process",
            format!(r#"{{"process": {{{user}, "cwd": "/", "cwd": "/x"}}}}"#),
        ),
        (
            "unknown capability",
            format!(
                r#"{{"process": {{{user}, "cwd": "/", "capabilities": {{"bounding": ["CAP_NOPE"]}}}}}}"#
            ),
        ),
        (
            "unknown rlimit",
            format!(
                r#"{{"process": {{{user}, "cwd": "/", "rlimits": [{{"type": "RLIMIT_NOPE", "hard": 1, "soft": 1}}]}}}}"#
            ),
        ),
        (
            "empty affinity",
            format!(r#"{{"process": {{{user}, "cwd": "/", "execCPUAffinity": {{}}}}}}"#),
        ),
    ];
    for (what, text) in &cases {
        same(what, text);
    }
    for list in [
        "0", "0-3,7", "1,2,3", "", ",", "0,", "0-", "-1", "0--1", "0-1-2", "a", " 0", "0x1",
    ] {
        for key in ["initial", "final"] {
            let text = format!(
                r#"{{"process": {{{user}, "cwd": "/", "execCPUAffinity": {{"{key}": "{list}"}}}}}}"#
            );
            same(&format!("execCPUAffinity.{key} {list:?}"), &text);
        }
    }
}

/// The one difference: oci-spec's `\d` took any Unicode decimal digit.
#[test_log::test]
fn cpu_lists_take_only_ascii_digits() {
    let text = r#"{"process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "execCPUAffinity": {"initial": "٣"}}}"#;
    assert!(serde_json::from_slice::<Spec>(text.as_bytes()).is_ok());
    let e = spec_from_slice(text.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("Invalid execCPUAffinity format: ٣"),
        "{e}"
    );
}
