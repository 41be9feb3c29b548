//! `saferoot mounts`: a findmnt-like tree of a mount namespace, from
//! statmount/listmount (or mountinfo).

use std::collections::HashSet;

use rustix::process::Pid;
use saferoot::mountinfo::Backend;
use saferoot::{MountEntry, MountTable};
use serde::Serialize;

use crate::args::{BackendArg, MountsArgs};
use crate::errors::{CliError, Escaped};
use crate::output::{print, print_json, table};

/// Reads the mount table of `pid` (or of saferoot itself).
pub fn read_table(pid: Option<u32>, backend: Backend) -> Result<MountTable, CliError> {
    match pid {
        Some(p) => {
            let pid = i32::try_from(p)
                .ok()
                .and_then(Pid::from_raw)
                .ok_or_else(|| CliError::usage(format!("--pid {p}: not a process id")))?;
            MountTable::read_pid(pid, backend).map_err(|e| {
                CliError::usage(format!("--pid {p}: cannot read its mount table: {e}"))
            })
        }
        None => MountTable::read_with(backend)
            .map_err(|e| CliError::setup(format!("cannot read the mount table: {e}"))),
    }
}

/// The name of a backend.
pub fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Auto => "auto",
        Backend::Statmount => "statmount",
        Backend::Mountinfo => "mountinfo",
    }
}

/// The options column: the per-mount attributes, `idmapped` when it is.
pub fn options_of(e: &MountEntry) -> String {
    let mut s = e.attrs.to_string();
    if e.idmapped {
        s.push_str(",idmapped");
    }
    s
}

#[derive(Debug, Serialize)]
struct Node {
    id: u64,
    parent_id: u64,
    target: String,
    source: Option<String>,
    fstype: String,
    options: String,
    propagation: String,
    propagation_groups: String,
    root: String,
    dev: String,
    super_options: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<Node>,
}

#[derive(Debug, Serialize)]
struct Tree {
    backend: &'static str,
    pid: Option<u32>,
    filesystems: Vec<Node>,
}

/// The mounts at the top of the tree: those whose parent is not in the
/// table (or is themselves).
fn roots(t: &MountTable) -> Vec<&MountEntry> {
    t.iter()
        .filter(|e| e.parent_id == e.id || t.get(e.parent_id).is_none())
        .collect()
}

fn node(t: &MountTable, e: &MountEntry, seen: &mut HashSet<u64>) -> Node {
    seen.insert(e.id);
    let children = t
        .children(e.id)
        .filter(|c| !seen.contains(&c.id))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|c| node(t, c, seen))
        .collect();
    Node {
        id: e.id,
        parent_id: e.parent_id,
        target: e.mount_point.escaped(),
        source: e.source.as_ref().map(|s| s.escaped()),
        fstype: e.fs_type.escaped(),
        options: options_of(e).escaped(),
        propagation: e.propagation.kind().name().to_string(),
        propagation_groups: e.propagation.to_string(),
        root: e.root.escaped(),
        dev: format!("{}:{}", e.dev.0, e.dev.1),
        super_options: e.super_options.as_ref().map(|s| s.escaped()),
        children,
    }
}

fn rows(n: &Node, prefix: &str, last: bool, top: bool, out: &mut Vec<Vec<String>>) {
    let branch = if top {
        String::new()
    } else if last {
        format!("{prefix}└─")
    } else {
        format!("{prefix}├─")
    };
    out.push(vec![
        format!("{branch}{}", n.target),
        n.source.clone().unwrap_or_else(|| "?".into()),
        n.fstype.clone(),
        n.options.clone(),
        n.propagation_groups.clone(),
    ]);
    let child_prefix = if top {
        String::new()
    } else if last {
        format!("{prefix}  ")
    } else {
        format!("{prefix}│ ")
    };
    for (i, c) in n.children.iter().enumerate() {
        rows(c, &child_prefix, i + 1 == n.children.len(), false, out);
    }
}

/// Runs `saferoot mounts`.
pub fn mounts(args: &MountsArgs) -> Result<(), CliError> {
    let backend = match args.backend {
        BackendArg::Auto => Backend::Auto,
        BackendArg::Statmount => Backend::Statmount,
        BackendArg::Mountinfo => Backend::Mountinfo,
    };
    let t = read_table(args.pid, backend)?;
    let mut seen = HashSet::new();
    let filesystems: Vec<Node> = roots(&t)
        .into_iter()
        .map(|r| node(&t, r, &mut seen))
        .collect();
    let tree = Tree {
        backend: backend_name(t.backend()),
        pid: args.pid,
        filesystems,
    };
    if args.json {
        return print_json(&tree);
    }
    let mut out = Vec::new();
    for n in &tree.filesystems {
        rows(n, "", true, true, &mut out);
    }
    print(&table(
        &["TARGET", "SOURCE", "FSTYPE", "OPTIONS", "PROPAGATION"],
        &out,
    ));
    Ok(())
}
