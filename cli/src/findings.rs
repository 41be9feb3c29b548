//! Audit findings: what `saferoot audit` reports, and how it prints them.
//!
//! A finding has a severity, a kind (a stable name tools can match on), the
//! path it is about, the config entry when there is one, what is wrong, why
//! it matters (with the CVE where one applies) and how to fix it.

use serde::Serialize;

use crate::errors::CliError;
use crate::output::{print, print_json, table};

/// Finding severities, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not a problem by itself.
    Info,
    /// A weakness with little impact.
    Low,
    /// A weakness that helps an attack, or breaks something.
    Medium,
    /// A likely way to harm the host or escape.
    High,
    /// A known escape vector.
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Every severity, highest first.
    pub const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What kind of problem (stable name).
    pub kind: &'static str,
    /// The path it is about (inside the root, or a mount point).
    pub path: String,
    /// The config entry (`mounts[2]`, `linux.maskedPaths`), for static
    /// audits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// Why it matters.
    pub why: String,
    /// The CVE where one applies.
    pub cve: Option<&'static str>,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    /// A finding; fill in the rest with the builder methods.
    pub fn new(severity: Severity, kind: &'static str, path: impl Into<String>) -> Finding {
        Finding {
            severity,
            kind,
            path: path.into(),
            entry: None,
            problem: String::new(),
            why: String::new(),
            cve: None,
            fix: String::new(),
        }
    }

    /// Sets the config entry.
    pub fn entry(mut self, e: impl Into<String>) -> Finding {
        self.entry = Some(e.into());
        self
    }

    /// Sets what is wrong.
    pub fn problem(mut self, s: impl Into<String>) -> Finding {
        self.problem = s.into();
        self
    }

    /// Sets why it matters.
    pub fn why(mut self, s: impl Into<String>) -> Finding {
        self.why = s.into();
        self
    }

    /// Sets the CVE.
    pub fn cve(mut self, c: &'static str) -> Finding {
        self.cve = Some(c);
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
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    target: &'a Target,
    fail_on: Severity,
    failed: bool,
    counts: std::collections::BTreeMap<&'static str, usize>,
    findings: &'a [Finding],
}

/// Sorts `findings` (most severe first, then by path), prints them as a
/// table or JSON, and returns the exit status: 1 when one is at or above
/// `fail_on`, 0 otherwise.
pub fn report(
    target: &Target,
    mut findings: Vec<Finding>,
    fail_on: Severity,
    json: bool,
) -> Result<i32, CliError> {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.kind.cmp(b.kind))
    });
    findings.dedup();
    // Paths were escaped where the findings were made; a library error
    // quoted in a problem may still hold a control character.
    for f in &mut findings {
        for s in [&mut f.path, &mut f.problem, &mut f.why, &mut f.fix] {
            *s = crate::errors::terminal_safe(s, false);
        }
        if let Some(e) = &mut f.entry {
            *e = crate::errors::terminal_safe(e, false);
        }
    }
    let target = &Target {
        kind: target.kind,
        what: crate::errors::terminal_safe(&target.what, false),
    };
    let failed = findings.iter().any(|f| f.severity >= fail_on);
    let mut counts = std::collections::BTreeMap::new();
    for s in Severity::DESCENDING {
        counts.insert(
            s.name(),
            findings.iter().filter(|f| f.severity == s).count(),
        );
    }
    if json {
        print_json(&Report {
            target,
            fail_on,
            failed,
            counts,
            findings: &findings,
        })?;
    } else {
        print(&human(target, &findings, fail_on, failed));
    }
    Ok(i32::from(failed))
}

fn human(target: &Target, findings: &[Finding], fail_on: Severity, failed: bool) -> String {
    let mut out = format!("saferoot audit of {} {}\n\n", target.kind, target.what);
    if findings.is_empty() {
        out += "no findings\n";
        return out;
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.severity.name().to_string(),
                f.kind.to_string(),
                f.path.clone(),
                f.problem.clone(),
            ]
        })
        .collect();
    out += &table(&["SEVERITY", "KIND", "PATH", "PROBLEM"], &rows);
    out.push('\n');
    for (i, f) in findings.iter().enumerate() {
        out += &format!(
            "{}. [{}] {} at {}",
            i + 1,
            f.severity.name(),
            f.kind,
            f.path
        );
        if let Some(e) = &f.entry {
            out += &format!(" ({e})");
        }
        out += &format!("\n   problem: {}\n   why:     {}", f.problem, f.why);
        if let Some(c) = f.cve {
            out += &format!(" ({c})");
        }
        out += &format!("\n   fix:     {}\n", f.fix);
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

/// The masked paths of runc's default spec.
pub const DEFAULT_MASKED: &[&str] = crate::default_sandbox::MASKED;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        assert_eq!(Severity::DESCENDING[0], Severity::Critical);
    }

    #[test]
    fn human_output_lists_every_finding() {
        let f = Finding::new(Severity::High, "k", "/p")
            .problem("bad")
            .why("because")
            .cve("CVE-1")
            .fix("do x");
        let t = Target {
            kind: "self",
            what: "1".into(),
        };
        let s = human(&t, &[f], Severity::High, true);
        assert!(s.contains("high"), "{s}");
        assert!(s.contains("(CVE-1)"), "{s}");
        assert!(s.contains("FAILED"), "{s}");
    }
}
