//! An OCI bundle → [`Sandbox`].
//!
//! The root filesystem part comes from `saferoot::oci` (`read_config`,
//! then `spec_from_config`, as `load_bundle` does); this adds what `run`
//! does beyond the root: the namespaces listed in `linux.namespaces` (new
//! ones only; joining an existing namespace by path is refused), the user
//! namespace's maps, the hostname, the process (`args`, `env`, `cwd`,
//! `user`), and the process's privileges
//! (`capabilities`, `noNewPrivileges`, `rlimits`, `oomScoreAdj`, applied
//! by [`crate::privileges`]).
//!
//! An unknown capability name in `process.capabilities` is skipped with a
//! warning, as runc does, so that a config written for a newer kernel
//! still runs (without that capability: nothing is granted that was not
//! understood). An unknown rlimit type, a duplicate one, a soft limit above
//! its hard limit, an `oomScoreAdj` outside -1000..=1000 and an effective
//! capability that is not permitted are refused, naming the entry, before
//! any process exists.
//!
//! What saferoot does not do is collected in [`Sandbox::ignored`] and
//! printed on stderr: it is not a full runtime.

use std::ffi::OsString;
use std::path::Path;

use saferoot::oci::oci_spec::runtime::{
    Capability as OciCapability, LinuxCapabilities, LinuxNamespaceType, Process, Spec,
};
use saferoot::rootfs::spec::IdMapping;
use serde_json::Value;

use crate::args::RunArgs;
use crate::errors::{shown, CliError, Escaped};
use crate::namespaces::Namespaces;
use crate::privileges::{
    parse_capability, Capabilities, CapabilitySets, Field, Origin, ProcessSecurity, Rlimit,
    CAPABILITY_FIELDS,
};
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
        note(p.apparmor_profile().is_some(), "process.apparmorProfile");
        note(p.selinux_label().is_some(), "process.selinuxLabel");
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

/// Removes the capability names the OCI types do not know from the five
/// sets of `process.capabilities` in `config`; returns a warning for each.
fn strip_unknown_capabilities(config: &mut Value) -> Vec<String> {
    let mut skipped = Vec::new();
    let Some(caps) = config
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    else {
        return skipped;
    };
    for field in CAPABILITY_FIELDS {
        // process.capabilities.bounding → bounding
        let key = Origin::Oci
            .name(field)
            .rsplit('.')
            .next()
            .unwrap_or_default();
        let Some(list) = caps.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        list.retain(|v| match v.as_str() {
            Some(name) if serde_json::from_value::<OciCapability>(v.clone()).is_err() => {
                skipped.push(format!(
                    "{}: unknown capability {name:?}",
                    Origin::Oci.name(field)
                ));
                false
            }
            // Known, or not a string (which the parser then refuses).
            _ => true,
        });
    }
    skipped
}

/// The entry of an rlimit type the OCI types do not include, and why.
fn find_bad_rlimit_type(config: &Value) -> Option<(String, String)> {
    let list = config.get("process")?.get("rlimits")?.as_array()?;
    list.iter().enumerate().find_map(|(i, r)| {
        let name = r.get("type")?.as_str()?;
        Rlimit::parse_type(name)
            .err()
            .map(|why| (format!("process.rlimits[{i}].type"), why))
    })
}

/// `config.json` of the bundle `dir`, read once (`saferoot::oci::read_config`),
/// and its root filesystem spec. When the OCI types refuse the text, an
/// unknown rlimit type is reported by its entry, and unknown capability
/// names are skipped (the returned warnings say which); every other
/// problem gets the library's own message.
fn load(dir: &Path) -> Result<(Spec, saferoot::rootfs::RootfsSpec, Vec<String>), CliError> {
    let lib = |e: saferoot::Error| CliError::setup(format!("--bundle {}: {e}", shown(dir)));
    let bytes = saferoot::oci::read_config(dir).map_err(lib)?;
    let mut warnings = Vec::new();
    let config = match saferoot::oci::spec_from_slice(&bytes) {
        Ok(c) => c,
        Err(first) => {
            // The library's message for text it cannot take (it parses it
            // the same way), or the parser's when it takes what was not
            // valid UTF-8.
            let refused =
                || match saferoot::oci::spec_from_json(&String::from_utf8_lossy(&bytes), dir) {
                    Err(e) => lib(e),
                    Ok(_) => CliError::setup(format!(
                        "--bundle {}: config.json: not a valid OCI config: {first}",
                        shown(dir)
                    )),
                };
            let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
                return Err(refused());
            };
            if let Some((what, why)) = find_bad_rlimit_type(&value) {
                return Err(CliError::setup(format!(
                    "{}/config.json: {what}: {why}",
                    dir.escaped()
                )));
            }
            let skipped = strip_unknown_capabilities(&mut value);
            if skipped.is_empty() {
                return Err(refused());
            }
            match saferoot::oci::spec_from_value(value) {
                Ok(c) => {
                    warnings = skipped;
                    c
                }
                Err(_) => return Err(refused()),
            }
        }
    };
    let spec = saferoot::oci::spec_from_config(&config, dir).map_err(lib)?;
    Ok((config, spec, warnings))
}

/// The five sets of `process.capabilities`; a set that is not given is
/// empty. A name the `caps` crate does not know is skipped with a warning.
fn capability_sets(caps: &LinuxCapabilities, warnings: &mut Vec<String>) -> CapabilitySets {
    let mut sets = CapabilitySets::default();
    for field in CAPABILITY_FIELDS {
        let list = match field {
            Field::Bounding => caps.bounding(),
            Field::Effective => caps.effective(),
            Field::Permitted => caps.permitted(),
            Field::Inheritable => caps.inheritable(),
            _ => caps.ambient(),
        };
        let Some(out) = sets.get_mut(field) else {
            continue;
        };
        for cap in list.iter().flatten() {
            // The OCI type's name is the config's spelling, CAP_...
            let name = serde_json::to_value(cap)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{cap:?}"));
            match parse_capability(&name) {
                Ok(c) => {
                    out.insert(c);
                }
                Err(why) => warnings.push(format!("{}: {why}", Origin::Oci.name(field))),
            }
        }
    }
    sets
}

/// The privileges of `process`: capabilities (when the config has the
/// object), `noNewPrivileges`, `rlimits` and `oomScoreAdj`, unchecked.
fn process_security(process: Option<&Process>, warnings: &mut Vec<String>) -> ProcessSecurity {
    let Some(p) = process else {
        return ProcessSecurity {
            origin: Origin::Oci,
            ..ProcessSecurity::default()
        };
    };
    ProcessSecurity {
        origin: Origin::Oci,
        raise_ambient: false,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        capabilities: match p.capabilities() {
            Some(c) => Capabilities::Sets(Box::new(capability_sets(c, warnings))),
            None => Capabilities::Unchanged,
        },
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .map(|r| Rlimit {
                kind: r.typ(),
                soft: r.soft(),
                hard: r.hard(),
            })
            .collect(),
        oom_score_adj: p.oom_score_adj(),
        seccomp: Vec::new(),
    }
}

/// The [`Sandbox`] of the bundle in `dir`. `args` gives the assembly
/// choices, `--die-with-parent`, `--new-session`, and a command that
/// replaces `process.args`.
pub fn sandbox_from_bundle(dir: &Path, args: &RunArgs) -> Result<Sandbox, CliError> {
    let dir = std::path::absolute(dir)
        .map_err(|e| CliError::setup(format!("--bundle {}: {e}", shown(dir))))?;
    let (config, mut spec, mut warnings) = load(&dir)?;
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
    let security = process_security(process, &mut warnings);
    security.validate().map_err(|e| entry(&e.field, e.why))?;
    for w in &warnings {
        log::warn!("{}/config.json: {w}: skipped, as runc does", dir.escaped());
    }

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
    let as_pid_1 = ns.pid && !args.init;
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
        security,
        env,
        argv,
        strategy,
        enter,
        die_with_parent: args.die_with_parent,
        new_session: crate::sandbox::new_session(args),
        // As runc and crun: the container's process is pid 1 of its pid
        // namespace, unless --init puts saferoot's init there.
        as_pid_1,
        // The container ends when its pid 1 has: saferoot returns once it
        // is reaped.
        exit_with_program: false,
        preserve_fds: crate::fds::preserved_count(args.preserve_fds),
        ignored: ignored_fields(&config),
        extras: Default::default(),
        mount_ns: match &args.mount_ns {
            Some(p) => Some(crate::host_view::open_or_create(p)?),
            None => None,
        },
        plan: Default::default(),
    })
}
