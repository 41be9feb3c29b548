//! `saferoot audit`: picks the target, runs the static or live audit,
//! reports.

use std::path::{Path, PathBuf};

use rustix::process::Pid;
use saferoot::mountinfo::Backend;
use saferoot::oci::oci_spec::runtime::Spec;
use saferoot::MountTable;

use crate::args::AuditArgs;
use crate::errors::{shown, CliError, Escaped};
use crate::findings::{self, report, Finding, Format, Target};
use crate::{audit_bundle, audit_live};

/// Reads `config.json` of the bundle `dir` with the reader `run` uses
/// (`saferoot::oci::read_config`), so both accept and refuse the same
/// files: a symlink that stays in the bundle is followed, one that leaves
/// it is refused, and so are fifos, devices and files over 16 MiB.
fn read_bundle_config(dir: &Path) -> Result<Vec<u8>, CliError> {
    saferoot::oci::read_config(dir)
        .map_err(|e| CliError::usage(format!("--bundle {}: {e}", shown(dir))))
}

fn unparsable(e: &serde_json::Error) -> Finding {
    Finding::of(&findings::CONFIG_UNPARSABLE, "config.json")
        .entry("config.json")
        .message(format!(
            "config.json is not a valid OCI runtime config: {e}"
        ))
}

fn static_audit(config_bytes: &[u8], bundle: &Path, rootfs: Option<&Path>) -> Vec<Finding> {
    let config: Spec = match saferoot::oci::spec_from_slice(config_bytes) {
        Ok(c) => c,
        Err(e) => return vec![unparsable(&e)],
    };
    let rootfs = match rootfs {
        Some(r) => r.to_path_buf(),
        None => match config.root() {
            Some(r) if r.path().is_absolute() => r.path().clone(),
            Some(r) => bundle.join(r.path()),
            None => {
                return vec![Finding::of(&findings::ROOTFS_MISSING, "-")
                    .entry("root")
                    .message("the config has no root")
                    .fix("add root.path")]
            }
        },
    };
    audit_bundle::audit(&config, bundle, &rootfs)
}

fn host_view(target_ns: Option<u64>) -> audit_live::HostView {
    let procfs = saferoot::procfs::Procfs::new().ok();
    let host_ns = procfs.as_ref().and_then(|p| p.mount_ns_id(Some(1)).ok());
    let is_host = matches!((target_ns, host_ns), (Some(a), Some(b)) if a == b);
    let shared_groups = if is_host {
        Default::default()
    } else {
        Pid::from_raw(1)
            .and_then(|one| MountTable::read_pid(one, Backend::Auto).ok())
            .map(|t| t.iter().filter_map(|e| e.propagation.shared).collect())
            .unwrap_or_default()
    };
    audit_live::HostView {
        is_host,
        shared_groups,
    }
}

/// Runs `saferoot audit`; returns the exit status.
pub fn audit(args: &AuditArgs) -> Result<i32, CliError> {
    let (target, findings) = if let Some(dir) = &args.bundle {
        let dir = std::path::absolute(dir)
            .map_err(|e| CliError::usage(format!("--bundle {}: {e}", shown(dir))))?;
        let bytes = read_bundle_config(&dir)?;
        (
            Target {
                kind: "bundle",
                what: dir.escaped(),
                config: Some(dir.join("config.json")),
            },
            static_audit(&bytes, &dir, None),
        )
    } else if let (Some(rootfs), Some(config)) = (&args.rootfs, &args.config) {
        let rootfs = std::path::absolute(rootfs)
            .map_err(|e| CliError::usage(format!("--rootfs {}: {e}", shown(rootfs))))?;
        let bytes = saferoot::oci::read_config_file(config)
            .map_err(|e| CliError::usage(format!("--config {}: {e}", shown(config))))?;
        let config_abs = std::path::absolute(config).unwrap_or_else(|_| config.clone());
        let bundle = config_abs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        (
            Target {
                kind: "rootfs",
                what: format!("{} with {}", rootfs.escaped(), config_abs.escaped()),
                config: Some(config_abs.clone()),
            },
            static_audit(&bytes, &bundle, Some(&rootfs)),
        )
    } else if args.pid.is_some() || args.self_ {
        let table = crate::mounts_cmd::read_table(args.pid, Backend::Auto)?;
        let procfs = saferoot::procfs::Procfs::new().ok();
        let ns = procfs.as_ref().and_then(|p| p.mount_ns_id(args.pid).ok());
        let target = match args.pid {
            Some(p) => Target {
                kind: "pid",
                what: p.to_string(),
                config: None,
            },
            None => Target {
                kind: "self",
                what: std::process::id().to_string(),
                config: None,
            },
        };
        let ns_root = audit_live::NsRoot::open(args.pid);
        (
            target,
            audit_live::audit(&table, &host_view(ns), ns_root.as_ref()),
        )
    } else {
        return Err(CliError::usage(
            "say what to audit: --bundle DIR, --rootfs DIR --config FILE, --pid PID or --self",
        ));
    };
    let format = if args.json { Format::Json } else { args.format };
    report(&target, findings, args.fail_on, format)
}
