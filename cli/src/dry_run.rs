//! `saferoot run --dry-run [--json]`: the plan, printed instead of run.

use saferoot::rootfs::plan::{Plan, PlannedMount};
use saferoot::rootfs::spec::DeviceKind;
use saferoot::MountAttr;
use serde::Serialize;

use crate::errors::{shown, CliError, Escaped};
use crate::output::{print, print_json, table};
use crate::privileges::{Capabilities, ProcessSecurity};
use crate::sandbox::{IdMaps, ProcessUser, RootKind, Sandbox, Step, StepKind};

/// One mount, as shown.
#[derive(Debug, Serialize)]
struct MountView {
    destination: String,
    source: String,
    #[serde(rename = "type")]
    fs_type: String,
    /// Attributes the mount gets (`ro,nosuid,...`).
    attributes: String,
    /// Attributes cleared.
    cleared: Vec<String>,
    /// Whether the attributes apply to every mount of a bind's tree.
    recursive: bool,
    /// Propagation changes (`rslave`, ...).
    propagation: Vec<String>,
    /// Filesystem parameters (`mode=755`, ...).
    data: Vec<String>,
    /// The flag or config entry, or `implicit` for mounts saferoot adds.
    origin: String,
}

#[derive(Debug, Serialize)]
struct DryRun<'a> {
    root: &'a RootKind,
    strategy: &'static str,
    requested_strategy: &'static str,
    enter: saferoot::rootfs::EnterMethod,
    namespaces: Vec<&'static str>,
    hostname: Option<&'a str>,
    id_maps: Option<&'a IdMaps>,
    user: Option<&'a ProcessUser>,
    no_new_privileges: bool,
    process_security: &'a ProcessSecurity,
    command: Vec<String>,
    env: Vec<String>,
    mounts: Vec<MountView>,
    steps: &'a [Step],
    not_applied: &'a [String],
    plan: &'a Plan,
}

fn words(a: MountAttr) -> Vec<String> {
    a.iter_names()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect()
}

fn view(pm: &PlannedMount, sb: &Sandbox) -> MountView {
    let data = match &pm.kind {
        saferoot::rootfs::MountKind::Fs { data, .. } => data
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    MountView {
        destination: pm.destination.escaped(),
        source: pm.source_display(),
        fs_type: pm.fstype().to_string(),
        attributes: (pm.set | pm.rec_set).to_string(),
        cleared: words(pm.clear | pm.rec_clear),
        recursive: !pm.rec_set.is_empty() || !pm.rec_clear.is_empty(),
        propagation: pm.propagation.iter().map(|p| p.name()).collect(),
        data,
        origin: pm
            .index
            .and_then(|i| sb.origins.get(i).cloned())
            .unwrap_or_else(|| "implicit (saferoot adds it)".into()),
    }
}

fn root_line(root: &RootKind) -> String {
    match root {
        RootKind::Tmpfs => "a fresh tmpfs (mounted on a private scratch directory when run)".into(),
        RootKind::Directory(d) => format!("the directory {}", shown(d)),
        RootKind::Bundle(d) => format!("the bundle root {}", shown(d)),
        RootKind::Bind {
            source,
            ro,
            devices,
        } => format!(
            "the host tree {} bound{}{} (on a private scratch directory when run)",
            shown(source),
            if *ro { " read-only" } else { "" },
            if *devices { " with devices" } else { "" }
        ),
    }
}

/// The lines of the text plan about the program's privileges, for what
/// is not left as it is.
fn security_facts(sec: &ProcessSecurity) -> Vec<(&'static str, String)> {
    let mut facts = Vec::new();
    if let Capabilities::Sets(s) = &sec.capabilities {
        let list = |set| {
            let n = crate::privileges::names(set);
            if n.is_empty() {
                "none".to_string()
            } else {
                n.join(",")
            }
        };
        facts.push((
            "capabilities",
            format!(
                "bounding {}; effective {}; permitted {}; inheritable {}; ambient {}",
                list(&s.bounding),
                list(&s.effective),
                list(&s.permitted),
                list(&s.inheritable),
                list(&s.ambient)
            ),
        ));
    }
    if !sec.rlimits.is_empty() {
        let limit = |v: u64| {
            if v == u64::MAX {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        facts.push((
            "rlimits",
            sec.rlimits
                .iter()
                .map(|r| format!("{} {}/{}", r.name(), limit(r.soft), limit(r.hard)))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(v) = sec.oom_score_adj {
        facts.push(("oom score", format!("{v} (oom_score_adj)")));
    }
    if sec.no_new_privs {
        facts.push(("privileges", "no_new_privs".to_string()));
    }
    if !sec.seccomp.is_empty() {
        facts.push((
            "seccomp",
            format!(
                "{} program(s), loaded last: {} instructions",
                sec.seccomp.len(),
                sec.seccomp
                    .iter()
                    .map(|p| (p.len() / crate::privileges::SOCK_FILTER_SIZE).to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        ));
    }
    facts
}

/// Prints the plan of `sb`; changes nothing.
pub fn dry_run(sb: &Sandbox, json: bool) -> Result<(), CliError> {
    let plan = crate::run::checked_plan(sb)?;
    let strategy = sb
        .strategy
        .resolve()
        .map_err(|e| CliError::setup(format!("--strategy {}: {e}", sb.strategy.name())))?;
    let mounts: Vec<MountView> = plan.mounts.iter().map(|pm| view(pm, sb)).collect();
    let dr = DryRun {
        root: &sb.root,
        strategy: strategy.name(),
        requested_strategy: sb.strategy.name(),
        enter: sb.enter,
        namespaces: sb.namespaces.names(),
        hostname: sb.hostname.as_deref(),
        id_maps: sb.id_maps.as_ref(),
        user: sb.user.as_ref(),
        no_new_privileges: sb.security.no_new_privs,
        process_security: &sb.security,
        command: sb
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        env: sb
            .env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        mounts,
        steps: &sb.steps,
        not_applied: &sb.ignored,
        plan: &plan,
    };
    if json {
        return print_json(&dr);
    }
    let mut out = String::from("saferoot run plan (dry run: nothing was changed)\n\n");
    let enter = match sb.enter {
        saferoot::rootfs::EnterMethod::PivotRoot => "pivot-root",
        saferoot::rootfs::EnterMethod::MoveRoot => "move-root",
        saferoot::rootfs::EnterMethod::Chroot => "chroot",
    };
    let mut facts = vec![
        ("root", root_line(&sb.root)),
        (
            "strategy",
            format!("{} (asked: {})", strategy.name(), sb.strategy.name()),
        ),
        ("enter", enter.to_string()),
        ("namespaces", sb.namespaces.names().join(", ")),
    ];
    if let Some(h) = &sb.hostname {
        facts.push(("hostname", h.clone()));
    }
    if let Some(m) = &sb.id_maps {
        facts.push((
            "uid map",
            IdMaps::text(&m.uid).trim_end().replace('\n', "; "),
        ));
        facts.push((
            "gid map",
            IdMaps::text(&m.gid).trim_end().replace('\n', "; "),
        ));
    }
    if let Some(u) = &sb.user {
        facts.push((
            "user",
            format!("uid {} gid {} groups {:?}", u.uid, u.gid, u.additional_gids),
        ));
    }
    facts.extend(security_facts(&sb.security));
    facts.push((
        "command",
        sb.argv.iter().map(shown).collect::<Vec<_>>().join(" "),
    ));
    facts.push((
        "root mount",
        format!(
            "{}, propagation {}",
            if plan.readonly_root {
                "read-only"
            } else {
                "read-write"
            },
            plan.rootfs_propagation.name()
        ),
    ));
    if let Some(cwd) = &plan.cwd {
        facts.push(("working dir", shown(cwd)));
    }
    for (k, v) in facts {
        out += &format!("{k:<12} {v}\n");
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = dr
        .mounts
        .iter()
        .map(|m| {
            vec![
                m.destination.clone(),
                m.source.clone(),
                m.fs_type.clone(),
                m.attributes.clone(),
                if m.propagation.is_empty() {
                    "-".into()
                } else {
                    m.propagation.join(",")
                },
                m.origin.clone(),
            ]
        })
        .collect();
    out += &table(
        &[
            "DESTINATION",
            "SOURCE",
            "TYPE",
            "ATTRIBUTES",
            "PROPAGATION",
            "FROM",
        ],
        &rows,
    );
    if !plan.devices.is_empty() {
        out += "\ndevices:\n";
        for d in &plan.devices {
            let kind = match d.kind {
                DeviceKind::Char => "c",
                DeviceKind::Block => "b",
                DeviceKind::Fifo => "p",
            };
            out += &format!(
                "  {} ({kind} {}:{}, mode {:o})\n",
                d.path.escaped(),
                d.major,
                d.minor,
                d.file_mode.unwrap_or(0o666)
            );
        }
    }
    for (title, list) in [
        ("read-only paths", &plan.readonly_paths),
        ("masked paths", &plan.masked_paths),
    ] {
        if !list.is_empty() {
            out += &format!("\n{title}:\n");
            for p in list {
                out += &format!("  {}\n", p.escaped());
            }
        }
    }
    if !sb.steps.is_empty() {
        out += "\nsteps:\n";
        for s in &sb.steps {
            let when = match s.after_mounts {
                0 => "before the mounts".to_string(),
                n if n >= sb.spec.mounts.len() => "after the mounts".to_string(),
                n => format!("after mount {n}"),
            };
            let what = match &s.kind {
                StepKind::Dir { path, mode } => {
                    format!("directory {} (mode {mode:o})", path.escaped())
                }
                StepKind::Symlink { target, path } => {
                    format!("symlink {} -> {}", path.escaped(), target.escaped())
                }
                StepKind::Chmod { path, mode } => {
                    format!("chmod {} to {mode:o}", path.escaped())
                }
                StepKind::File { path, mode, fd } => format!(
                    "file {} (mode {mode:o}) from fd {}",
                    path.escaped(),
                    fd.number
                ),
                StepKind::BindData { path, mode, ro, fd } => format!(
                    "{}bind of a private file (mode {mode:o}) from fd {} at {}",
                    if *ro { "read-only " } else { "" },
                    fd.number,
                    path.escaped()
                ),
                StepKind::BindFd { path, ro, fd } => format!(
                    "{}bind of fd {} at {}",
                    if *ro { "read-only " } else { "" },
                    fd.number,
                    path.escaped()
                ),
                StepKind::RemountRo { path } => {
                    format!("remount the mount at {} read-only", path.escaped())
                }
                StepKind::TmpOverlay { path, lower } => format!(
                    "overlay at {} of {} with writes to a private tmpfs",
                    path.escaped(),
                    lower
                        .iter()
                        .map(|l| l.escaped().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            out += &format!("  {what}, {when} ({})\n", s.origin);
        }
    }
    if !sb.ignored.is_empty() {
        out += &format!("\nnot applied: {}\n", sb.ignored.join(", "));
    }
    print(&out);
    Ok(())
}
