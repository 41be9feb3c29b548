//! An OCI bundle → [`Sandbox`].
//!
//! The root filesystem part comes from `saferoot::oci::load_bundle`; this
//! adds what `run` does beyond the root: the namespaces listed in
//! `linux.namespaces` (new ones only; joining an existing namespace by path
//! is refused), the user namespace's maps, the hostname, and the process
//! (`args`, `env`, `cwd`, `user`, `noNewPrivileges`).
//!
//! What saferoot does not do is collected in [`Sandbox::ignored`] and
//! printed on stderr: it is not a full runtime.

use std::ffi::OsString;
use std::path::Path;

use saferoot::oci::oci_spec::runtime::{LinuxNamespaceType, Spec};
use saferoot::rootfs::spec::IdMapping;

use crate::args::RunArgs;
use crate::errors::{shown, CliError, Escaped};
use crate::namespaces::Namespaces;
use crate::sandbox::{IdMaps, ProcessUser, RootKind, Sandbox};

fn id_maps(list: Option<&Vec<saferoot::oci::oci_spec::runtime::LinuxIdMapping>>) -> Vec<IdMapping> {
    list.map(|v| {
        v.iter()
            .map(|m| IdMapping {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The fields of the config that saferoot does not apply, when present.
fn ignored_fields(config: &Spec) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |present: bool, name: &str| {
        if present {
            out.push(name.to_string());
        }
    };
    note(config.hooks().is_some(), "hooks");
    if let Some(p) = config.process() {
        note(
            p.terminal() == Some(true),
            "process.terminal (stdio is inherited)",
        );
        note(p.capabilities().is_some(), "process.capabilities");
        note(p.rlimits().is_some(), "process.rlimits");
        note(p.apparmor_profile().is_some(), "process.apparmorProfile");
        note(p.selinux_label().is_some(), "process.selinuxLabel");
        note(p.oom_score_adj().is_some(), "process.oomScoreAdj");
        note(p.scheduler().is_some(), "process.scheduler");
        note(p.io_priority().is_some(), "process.ioPriority");
    }
    if let Some(l) = config.linux() {
        note(l.seccomp().is_some(), "linux.seccomp");
        note(l.resources().is_some(), "linux.resources (cgroup limits)");
        note(l.cgroups_path().is_some(), "linux.cgroupsPath");
        note(l.intel_rdt().is_some(), "linux.intelRdt");
        note(l.personality().is_some(), "linux.personality");
        note(l.time_offsets().is_some(), "linux.timeOffsets");
    }
    note(config.domainname().is_some(), "domainname");
    out
}

/// The [`Sandbox`] of the bundle in `dir`. `args` gives the assembly
/// choices, `--die-with-parent`, `--new-session`, and a command that
/// replaces `process.args`.
pub fn sandbox_from_bundle(dir: &Path, args: &RunArgs) -> Result<Sandbox, CliError> {
    let dir = std::path::absolute(dir)
        .map_err(|e| CliError::setup(format!("--bundle {}: {e}", shown(dir))))?;
    let (config, mut spec) = saferoot::oci::load_bundle(&dir)
        .map_err(|e| CliError::setup(format!("--bundle {}: {e}", shown(&dir))))?;
    let entry = |what: &str, why: String| {
        CliError::setup(format!("{}/config.json: {what}: {why}", dir.escaped()))
    };

    let mut ns = Namespaces::default();
    let mut has_mount_ns = false;
    if let Some(linux) = config.linux() {
        for (i, n) in linux.namespaces().iter().flatten().enumerate() {
            if let Some(p) = n.path() {
                return Err(entry(
                    &format!("linux.namespaces[{i}].path"),
                    format!(
                        "joining an existing namespace ({}) is not supported; saferoot only creates new ones",
                        p.escaped()
                    ),
                ));
            }
            match n.typ() {
                LinuxNamespaceType::Mount => has_mount_ns = true,
                LinuxNamespaceType::User => ns.user = true,
                LinuxNamespaceType::Pid => ns.pid = true,
                LinuxNamespaceType::Network => ns.net = true,
                LinuxNamespaceType::Ipc => ns.ipc = true,
                LinuxNamespaceType::Uts => ns.uts = true,
                LinuxNamespaceType::Cgroup => ns.cgroup = true,
                LinuxNamespaceType::Time => {
                    return Err(entry(
                        &format!("linux.namespaces[{i}].type"),
                        "time namespaces are not supported".into(),
                    ))
                }
            }
        }
    }
    if !has_mount_ns {
        log::info!("config.json lists no mount namespace; saferoot always creates one");
    }
    // The namespaces saferoot creates are the ones the policy judges by.
    spec.namespaces = ns.spec_namespaces();
    let id_maps = if ns.user {
        let linux = config.linux().as_ref();
        let maps = IdMaps {
            uid: id_maps(linux.and_then(|l| l.uid_mappings().as_ref())),
            gid: id_maps(linux.and_then(|l| l.gid_mappings().as_ref())),
        };
        if maps.uid.is_empty() || maps.gid.is_empty() {
            let which = if maps.uid.is_empty() {
                "linux.uidMappings"
            } else {
                "linux.gidMappings"
            };
            return Err(entry(
                which,
                "a user namespace needs uid and gid mappings".into(),
            ));
        }
        Some(maps)
    } else {
        None
    };
    let hostname = config.hostname().clone().filter(|h| !h.is_empty());
    if hostname.is_some() && !ns.uts {
        return Err(entry(
            "hostname",
            "setting a hostname needs a uts namespace in linux.namespaces".into(),
        ));
    }

    let process = config.process().as_ref();
    // A NUL byte cannot be passed to execve: each string that would hold
    // one is refused here, naming it, before any process exists.
    let nul = |what: String| {
        entry(
            &what,
            "contains a NUL byte (\\u0000), which no program argument, environment \
             entry or path can hold"
                .into(),
        )
    };
    let argv: Vec<OsString> = if !args.command.is_empty() {
        args.command.clone()
    } else {
        let list = process.and_then(|p| p.args().clone()).unwrap_or_default();
        if let Some(i) = list.iter().position(|a| a.contains('\0')) {
            return Err(nul(format!("process.args[{i}]")));
        }
        list.into_iter().map(OsString::from).collect()
    };
    if argv.is_empty() {
        return Err(entry("process.args", "no program to run".into()));
    }
    let mut env = Vec::new();
    for (i, kv) in process
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if kv.contains('\0') {
            return Err(nul(format!("process.env[{i}]")));
        }
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((OsString::from(k), OsString::from(v))),
            _ => {
                return Err(entry(
                    &format!("process.env[{i}]"),
                    format!("{} is not NAME=VALUE", shown(&kv)),
                ))
            }
        }
    }
    let user = process.map(|p| ProcessUser {
        uid: p.user().uid(),
        gid: p.user().gid(),
        additional_gids: p.user().additional_gids().clone().unwrap_or_default(),
    });
    if let (Some(u), Some(maps)) = (&user, &id_maps) {
        if !IdMaps::maps(&maps.uid, u.uid) {
            return Err(entry(
                "process.user.uid",
                format!("{} is not mapped by linux.uidMappings", u.uid),
            ));
        }
        if !IdMaps::maps(&maps.gid, u.gid) {
            return Err(entry(
                "process.user.gid",
                format!("{} is not mapped by linux.gidMappings", u.gid),
            ));
        }
    }
    let no_new_privs = process.and_then(|p| p.no_new_privileges()).unwrap_or(false);

    let origins = (0..spec.mounts.len())
        .map(|i| format!("mounts[{i}]"))
        .collect();
    let device_origins = (0..spec.devices.len())
        .map(|i| format!("linux.devices[{i}]"))
        .collect();
    let mut path_origins = Vec::new();
    for (i, p) in spec.masked_paths.iter().enumerate() {
        path_origins.push((p.clone(), format!("linux.maskedPaths[{i}]")));
    }
    for (i, p) in spec.readonly_paths.iter().enumerate() {
        path_origins.push((p.clone(), format!("linux.readonlyPaths[{i}]")));
    }
    let (strategy, enter) = crate::bwrap::assembly(args);
    Ok(Sandbox {
        root: RootKind::Bundle(spec.rootfs.clone()),
        spec,
        origins,
        device_origins,
        steps: Vec::new(),
        path_origins,
        namespaces: ns,
        hostname,
        id_maps,
        user,
        no_new_privs,
        env,
        argv,
        strategy,
        enter,
        die_with_parent: args.die_with_parent,
        new_session: crate::sandbox::new_session(args),
        preserve_fds: crate::fds::preserved_count(args.preserve_fds),
        ignored: ignored_fields(&config),
        extras: Default::default(),
    })
}
