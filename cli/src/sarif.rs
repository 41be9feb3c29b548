//! SARIF 2.1.0 output of `saferoot audit --format sarif`, so findings show
//! up in code-scanning tools.
//!
//! One run; the tool's rules are every rule a finding can be reported
//! under (the library's policy and the audit's own), each with its
//! default level and a `security-severity` score. A finding of a static
//! audit points at the bundle's `config.json` (with the config entry and
//! the in-root path as logical locations); a live finding has only logical
//! locations (the mount point).

use serde_json::{json, Value};

use crate::findings::{all_rules, Finding, Severity, Target};

/// The SARIF level of a severity.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The `security-severity` score code-scanning tools sort by (0.0-10.0).
fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// `path` as a `file://` URI: absolute, with every byte outside the
/// unreserved set and `/` percent-encoded.
pub fn file_uri(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn result(f: &Finding, rule_index: usize, target: &Target) -> Value {
    let mut text = f.message.clone();
    text.push_str(". Why: ");
    text.push_str(&f.why);
    if let Some(c) = f.cve {
        text.push_str(&format!(" ({c})"));
    }
    text.push_str(". Fix: ");
    text.push_str(&f.fix);
    let mut logical = vec![json!({
        "name": f.path,
        "fullyQualifiedName": f.path,
        "kind": if target.config.is_some() { "resource" } else { "mountPoint" },
    })];
    if let Some(e) = &f.entry {
        logical.push(json!({"name": e, "fullyQualifiedName": e, "kind": "member"}));
    }
    let mut location = json!({ "logicalLocations": logical });
    if let Some(config) = &target.config {
        location["physicalLocation"] = json!({
            "artifactLocation": { "uri": file_uri(config) }
        });
    }
    json!({
        "ruleId": f.id,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": text },
        "locations": [location],
        "properties": {
            "severity": f.severity.name(),
            "path": f.path,
            "entry": f.entry,
            "cve": f.cve,
            "fix": f.fix,
        },
    })
}

/// The SARIF log of `findings` about `target`.
pub fn log(target: &Target, findings: &[Finding]) -> Value {
    let rules: Vec<_> = all_rules().collect();
    let descriptors: Vec<Value> = rules
        .iter()
        .map(|r| {
            let sev = r.severity;
            let mut tags = vec!["security"];
            if let Some(c) = r.cve {
                tags.push(c);
            }
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.why },
                "help": { "text": r.fix },
                "defaultConfiguration": { "level": level(sev) },
                "properties": {
                    "security-severity": score(sev),
                    "severity": sev.name(),
                    "refusedBySaferoot": r.refused,
                    "tags": tags,
                },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let i = rules.iter().position(|r| r.id == f.id).unwrap_or(0);
            result(f, i, target)
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "saferoot",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": descriptors,
                }
            },
            "automationDetails": { "id": format!("saferoot-audit/{}", target.kind) },
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(
            file_uri(std::path::Path::new("/b x/c%.json")),
            "file:///b%20x/c%25.json"
        );
    }

    #[test]
    fn every_result_names_a_rule_of_the_driver() {
        let t = Target {
            kind: "bundle",
            what: "/b".into(),
            config: Some("/b/config.json".into()),
        };
        let f = Finding::of(&saferoot::rootfs::policy::rules::DEVTMPFS_MOUNT, "/dev")
            .entry("mounts[1]");
        let log = log(&t, &[f]);
        let run = &log["runs"][0];
        let r = &run["results"][0];
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][i]["id"], "devtmpfs-mount");
        assert_eq!(r["level"], "error");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "file:///b/config.json"
        );
    }
}
