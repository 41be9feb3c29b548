//! Audit findings: what `saferoot audit` reports, and how it prints them.
//!
//! A finding is a violation of a rule of `saferoot::rootfs::policy` (the
//! same rules `plan` refuses by), or of one of the few rules about the
//! input itself that only the audit has ([`META_RULES`]). It carries the
//! rule's stable id, a severity (the rule's, or lower for a milder case),
//! the path it is about, the config entry when there is one, a message
//! saying what exactly is wrong, why it matters (with the CVE where one
//! applies) and how to fix it.

use saferoot::rootfs::policy::{self, Rule};
use serde::Serialize;

use crate::errors::{terminal_safe, CliError};
use crate::output::{print, print_json, table};

/// Finding severities: the library's, so that a finding is rated on the
/// same scale as the rule it reports.
pub use saferoot::rootfs::policy::Severity;

/// The `--fail-on` parser: one of the severity names.
pub fn severity_parser() -> impl clap::builder::TypedValueParser<Value = Severity> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Severity::DESCENDING.map(Severity::name))
        .try_map(|s| s.parse::<Severity>())
}

/// `config-unparsable`.
pub const CONFIG_UNPARSABLE: Rule = Rule {
    id: "config-unparsable",
    severity: policy::Severity::High,
    refused: true,
    title: "config.json is not an OCI runtime config",
    why: "nothing in it can be checked, and no runtime will run it as meant",
    cve: None,
    fix: "fix the JSON at the line and column given",
};

/// `config-invalid`.
pub const CONFIG_INVALID: Rule = Rule {
    id: "config-invalid",
    severity: policy::Severity::Medium,
    refused: true,
    title: "an entry saferoot's OCI reader refuses",
    why: "the container does not start with saferoot; a runtime that accepts it may not do what the entry seems to say (runc ignores unknown bind options, so a misspelt nosuid is silently dropped)",
    cve: None,
    fix: "correct the entry named",
};

/// `mount-option-invalid`.
pub const MOUNT_OPTION_INVALID: Rule = Rule {
    id: "mount-option-invalid",
    severity: policy::Severity::Medium,
    refused: true,
    title: "mount options saferoot refuses",
    why: "saferoot refuses the mount; runc silently ignores unknown options on bind mounts, so the flag the author meant (say nosuid) is not applied",
    cve: None,
    fix: "use only the options runc and crun document (see docs/oci.md)",
};

/// `rootfs-missing`.
pub const ROOTFS_MISSING: Rule = Rule {
    id: "rootfs-missing",
    severity: policy::Severity::High,
    refused: true,
    title: "the rootfs is not a directory",
    why: "the container cannot start; nothing in the rootfs could be checked",
    cve: None,
    fix: "point root.path (or --rootfs) at the root filesystem directory",
};

/// `plan-refused`.
pub const PLAN_REFUSED: Rule = Rule {
    id: "plan-refused",
    severity: policy::Severity::High,
    refused: true,
    title: "saferoot's plan refuses the spec",
    why: "saferoot will not build this root; what it refuses is unsafe or meaningless, and a runtime that accepts it may do something the author did not mean",
    cve: None,
    fix: "correct the entry named",
};

/// `host-namespace`.
pub const HOST_NAMESPACE: Rule = Rule {
    id: "host-namespace",
    severity: policy::Severity::Info,
    refused: false,
    title: "the audited namespace is the host's",
    why: "findings about leaks to or from the host, and host filesystems, do not apply; the rest describes the host itself",
    cve: None,
    fix: "audit a container's process with --pid PID",
};

/// Rules about the audit's input itself, which the library's policy does
/// not have.
pub const META_RULES: &[&Rule] = &[
    &CONFIG_UNPARSABLE,
    &CONFIG_INVALID,
    &MOUNT_OPTION_INVALID,
    &ROOTFS_MISSING,
    &PLAN_REFUSED,
    &HOST_NAMESPACE,
];

/// Every rule a finding can be reported under: the library's, then the
/// audit's own.
pub fn all_rules() -> impl Iterator<Item = &'static Rule> {
    policy::rules::ALL.iter().chain(META_RULES).copied()
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's stable id.
    pub id: &'static str,
    /// How bad.
    pub severity: Severity,
    /// The path it is about (inside the root, where a mount really lands;
    /// or a mount point).
    pub path: String,
    /// The config entry (`mounts[2]`, `linux.maskedPaths`), for static
    /// audits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// What exactly is wrong.
    pub message: String,
    /// Why it matters.
    pub why: String,
    /// The CVE where one applies.
    pub cve: Option<&'static str>,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    /// A finding of `rule` at its severity, with its reason, CVE and fix;
    /// change the rest with the builder methods.
    pub fn of(rule: &'static Rule, path: impl Into<String>) -> Finding {
        Finding {
            id: rule.id,
            severity: rule.severity,
            path: path.into(),
            entry: None,
            message: rule.title.to_string(),
            why: rule.why.to_string(),
            cve: rule.cve,
            fix: rule.fix.to_string(),
        }
    }

    /// Sets the severity (a milder case of the rule).
    pub fn severity(mut self, s: Severity) -> Finding {
        self.severity = s;
        self
    }

    /// Sets the config entry.
    pub fn entry(mut self, e: impl Into<String>) -> Finding {
        self.entry = Some(e.into());
        self
    }

    /// Sets what exactly is wrong.
    pub fn message(mut self, s: impl Into<String>) -> Finding {
        self.message = s.into();
        self
    }

    /// Sets why it matters.
    pub fn why(mut self, s: impl Into<String>) -> Finding {
        self.why = s.into();
        self
    }

    /// Sets (or clears) the CVE.
    pub fn cve(mut self, c: Option<&'static str>) -> Finding {
        self.cve = c;
        self
    }

    /// Sets the fix.
    pub fn fix(mut self, s: impl Into<String>) -> Finding {
        self.fix = s.into();
        self
    }
}

/// What was audited.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// `bundle`, `rootfs`, `pid` or `self`.
    pub kind: &'static str,
    /// The bundle or rootfs directory, or the pid.
    pub what: String,
    /// The config file, for static audits (SARIF locations point into it).
    #[serde(skip)]
    pub config: Option<std::path::PathBuf>,
}

/// How `saferoot audit` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table followed by the details of each finding.
    Table,
    /// A JSON object with a `findings` list.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    target: &'a Target,
    fail_on: Severity,
    failed: bool,
    counts: std::collections::BTreeMap<&'static str, usize>,
    findings: &'a [Finding],
}

/// Sorts `findings` (most severe first, then by path and id), drops
/// duplicates, prints them in `format`, and returns the exit status: 1
/// when one is at or above `fail_on`, 0 otherwise.
pub fn report(
    target: &Target,
    mut findings: Vec<Finding>,
    fail_on: Severity,
    format: Format,
) -> Result<i32, CliError> {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.id.cmp(b.id))
            .then_with(|| a.entry.cmp(&b.entry))
    });
    // The same rule at the same place, found twice (by the policy check
    // and by plan's refusal), is one finding: the first, most severe.
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.id, f.path.clone(), f.entry.clone())));
    let failed = findings.iter().any(|f| f.severity >= fail_on);
    let mut counts = std::collections::BTreeMap::new();
    for s in Severity::DESCENDING {
        counts.insert(
            s.name(),
            findings.iter().filter(|f| f.severity == s).count(),
        );
    }
    match format {
        Format::Json => print_json(&Report {
            target,
            fail_on,
            failed,
            counts,
            findings: &findings,
        })?,
        Format::Sarif => print_json(&crate::sarif::log(target, &findings))?,
        Format::Table => print(&human(target, &findings, fail_on, failed)),
    }
    Ok(i32::from(failed))
}

/// The table and the details. Every string that can come from the
/// container or the config goes through [`escape`].
fn human(target: &Target, findings: &[Finding], fail_on: Severity, failed: bool) -> String {
    let mut out = format!(
        "saferoot audit of {} {}\n\n",
        target.kind,
        terminal_safe(&target.what, false)
    );
    if findings.is_empty() {
        out += "no findings\n";
        return out;
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.severity.name().to_string(),
                f.id.to_string(),
                terminal_safe(&f.path, false),
                terminal_safe(&f.message, false),
            ]
        })
        .collect();
    out += &table(&["SEVERITY", "ID", "PATH", "MESSAGE"], &rows);
    out.push('\n');
    for (i, f) in findings.iter().enumerate() {
        out += &format!(
            "{}. [{}] {} at {}",
            i + 1,
            f.severity.name(),
            f.id,
            terminal_safe(&f.path, false)
        );
        if let Some(e) = &f.entry {
            out += &format!(" ({})", terminal_safe(e, false));
        }
        out += &format!(
            "\n   what:    {}\n   why:     {}",
            terminal_safe(&f.message, false),
            terminal_safe(&f.why, false)
        );
        if let Some(c) = f.cve {
            out += &format!(" ({c})");
        }
        out += &format!("\n   fix:     {}\n", terminal_safe(&f.fix, false));
    }
    let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    out += &format!(
        "\n{} findings: {} critical, {} high, {} medium, {} low, {} info; {} (--fail-on {})\n",
        findings.len(),
        n(Severity::Critical),
        n(Severity::High),
        n(Severity::Medium),
        n(Severity::Low),
        n(Severity::Info),
        if failed { "FAILED" } else { "passed" },
        fail_on.name()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        assert_eq!(Severity::DESCENDING[0], Severity::Critical);
        for s in Severity::DESCENDING {
            assert_eq!(s.name().parse::<Severity>(), Ok(s));
        }
        assert!("sometimes".parse::<Severity>().is_err());
    }

    #[test]
    fn rule_ids_are_unique_and_refused_rules_are_high() {
        let mut ids = std::collections::HashSet::new();
        for r in all_rules() {
            assert!(ids.insert(r.id), "{} twice", r.id);
            assert!(!r.why.is_empty() && !r.fix.is_empty() && !r.title.is_empty());
        }
        for r in policy::rules::ALL {
            if r.refused {
                assert!(r.severity >= policy::Severity::High, "{}", r.id);
            }
        }
    }

    #[test]
    fn human_output_lists_every_finding_and_escapes_control_bytes() {
        let f = Finding::of(&policy::rules::DEV_SYMLINK, "/dev\x1b[2J\u{9b}31m")
            .message("bad\nline\u{202e}")
            .fix("do x");
        let t = Target {
            kind: "self",
            what: "1".into(),
            config: None,
        };
        let s = human(&t, &[f], Severity::High, true);
        assert!(s.contains("critical"), "{s}");
        assert!(s.contains("(CVE-2026-41579)"), "{s}");
        assert!(s.contains("FAILED"), "{s}");
        assert!(
            !s.contains('\x1b') && !s.contains('\u{9b}') && !s.contains('\u{202e}'),
            "{s:?}"
        );
        assert!(s.contains("\\x1b[2J") && s.contains("bad\\nline"), "{s}");
    }
}
