//! Reading `config.json` into oci-spec's [`Spec`] without oci-spec's own
//! `Deserialize` for [`Process`].
//!
//! oci-spec checks `process.execCPUAffinity` with a regular expression, and
//! that one check links the whole `regex` crate with its Unicode tables
//! into every program that deserializes a [`Process`]: in saferoot's
//! static binary, 27 of the 47 pages of pointers the start-up relocation
//! writes and 2 MB of the binary, which every start paid for
//! (docs/performance.md). So `Spec` and `Process` are read here through
//! mirrors with the same fields, names, defaults and required fields,
//! every other type being oci-spec's own, and the CPU lists are checked
//! by hand. The result is the `Spec` that `serde_json::from_slice::<Spec>`
//! gives for the same text (tests/oci_parse.rs compares the two on every
//! fixture and on the edge cases), with one difference: a CPU list must be written
//! with the digits `0`-`9` (the regex's `\d` also took other Unicode
//! decimal digits, which no kernel interface reads as CPU numbers).

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Box as ConsoleSize, ExecCPUAffinity, Hooks, Linux, LinuxCapabilities, LinuxIOPriority,
    LinuxIdMapping, Mount, PosixRlimit, Process, Root, Scheduler, Solaris, Spec, User, Windows, VM,
    ZOS,
};
use serde::{de, Deserialize, Deserializer};

/// `Spec`'s fields, with [`ProcessJson`] for the process.
#[derive(Deserialize)]
#[serde(rename = "Spec", rename_all = "camelCase")]
struct SpecJson {
    #[serde(default, rename = "ociVersion")]
    version: String,
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    mounts: Option<Vec<Mount>>,
    #[serde(default)]
    process: Option<ProcessJson>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    domainname: Option<String>,
    #[serde(default)]
    hooks: Option<Hooks>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    linux: Option<Linux>,
    #[serde(default)]
    solaris: Option<Solaris>,
    #[serde(default)]
    windows: Option<Windows>,
    #[serde(default)]
    vm: Option<VM>,
    #[serde(default)]
    zos: Option<ZOS>,
    #[serde(default)]
    uid_mappings: Option<Vec<LinuxIdMapping>>,
    #[serde(default)]
    gid_mappings: Option<Vec<LinuxIdMapping>>,
}

/// `Process`'s fields: `user` and `cwd` are required, as there.
#[derive(Deserialize)]
#[serde(rename = "Process", rename_all = "camelCase")]
struct ProcessJson {
    #[serde(default)]
    terminal: Option<bool>,
    #[serde(default)]
    console_size: Option<ConsoleSize>,
    user: User,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    command_line: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    cwd: PathBuf,
    #[serde(default)]
    capabilities: Option<LinuxCapabilities>,
    #[serde(default)]
    rlimits: Option<Vec<PosixRlimit>>,
    #[serde(default)]
    no_new_privileges: Option<bool>,
    #[serde(default)]
    apparmor_profile: Option<String>,
    oom_score_adj: Option<i32>,
    #[serde(default)]
    selinux_label: Option<String>,
    #[serde(default)]
    io_priority: Option<LinuxIOPriority>,
    #[serde(default)]
    scheduler: Option<Scheduler>,
    #[serde(rename = "execCPUAffinity", default)]
    exec_cpu_affinity: Option<CpuAffinityJson>,
}

/// `ExecCPUAffinity`'s fields, each a checked CPU list.
#[derive(Deserialize)]
#[serde(rename = "ExecCPUAffinity", rename_all = "camelCase")]
struct CpuAffinityJson {
    #[serde(default, deserialize_with = "cpu_list")]
    initial: Option<String>,
    #[serde(default, rename = "final", deserialize_with = "cpu_list")]
    cpu_affinity_final: Option<String>,
}

/// A CPU list such as `0-3,7`: comma-separated CPU numbers or ranges of
/// two numbers joined by a dash, with the message oci-spec gives.
fn cpu_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    if let Some(s) = &value {
        if !is_cpu_list(s) {
            return Err(de::Error::custom(format!(
                "Invalid execCPUAffinity format: {s}"
            )));
        }
    }
    Ok(value)
}

/// Whether `s` is `N[-N](,N[-N])*` with `N` one or more of `0`-`9`.
fn is_cpu_list(s: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => number(a) && number(b),
        None => number(part),
    })
}

impl From<ProcessJson> for Process {
    fn from(p: ProcessJson) -> Process {
        let mut out = Process::default();
        out.set_terminal(p.terminal);
        out.set_console_size(p.console_size);
        out.set_user(p.user);
        out.set_args(p.args);
        out.set_command_line(p.command_line);
        out.set_env(p.env);
        out.set_cwd(p.cwd);
        out.set_capabilities(p.capabilities);
        out.set_rlimits(p.rlimits);
        out.set_no_new_privileges(p.no_new_privileges);
        out.set_apparmor_profile(p.apparmor_profile);
        out.set_oom_score_adj(p.oom_score_adj);
        out.set_selinux_label(p.selinux_label);
        out.set_io_priority(p.io_priority);
        out.set_scheduler(p.scheduler);
        out.set_exec_cpu_affinity(p.exec_cpu_affinity.map(|a| {
            let mut e = ExecCPUAffinity::default();
            e.set_initial(a.initial);
            e.set_cpu_affinity_final(a.cpu_affinity_final);
            e
        }));
        out
    }
}

impl From<SpecJson> for Spec {
    #[allow(deprecated)] // the top-level id mappings, kept as read
    fn from(s: SpecJson) -> Spec {
        let mut out = Spec::default();
        out.set_version(s.version);
        out.set_root(s.root);
        out.set_mounts(s.mounts);
        out.set_process(s.process.map(Process::from));
        out.set_hostname(s.hostname);
        out.set_domainname(s.domainname);
        out.set_hooks(s.hooks);
        out.set_annotations(s.annotations);
        out.set_linux(s.linux);
        out.set_solaris(s.solaris);
        out.set_windows(s.windows);
        out.set_vm(s.vm);
        out.set_zos(s.zos);
        out.set_uid_mappings(s.uid_mappings);
        out.set_gid_mappings(s.gid_mappings);
        out
    }
}

/// Parses `config.json` text into a [`Spec`]; see the module documentation.
pub(crate) fn from_slice(bytes: &[u8]) -> serde_json::Result<Spec> {
    serde_json::from_slice::<SpecJson>(bytes).map(Spec::from)
}

/// [`from_slice`] for a configuration already parsed as JSON.
pub(crate) fn from_value(value: serde_json::Value) -> serde_json::Result<Spec> {
    serde_json::from_value::<SpecJson>(value).map(Spec::from)
}

#[cfg(test)]
mod tests {
    use super::is_cpu_list;

    #[test]
    fn cpu_lists_as_the_runtime_spec_writes_them() {
        for ok in ["0", "7", "0-3", "0-3,7", "1,2,3", "10-20,30-40,50", "0-0"] {
            assert!(is_cpu_list(ok), "{ok:?}");
        }
        for bad in [
            "", ",", "0,", ",0", "0-", "-3", "0--3", "0-3-4", "a", "0 ,1", " 0", "0x3", "1,,2",
            "\u{663}",
        ] {
            assert!(!is_cpu_list(bad), "{bad:?}");
        }
    }
}
