//! `--mount-ns PATH` (and `SAFEROOT_MOUNT_NS` for the bubblewrap
//! personality): the sandbox's mount namespace starts from a minimal
//! namespace instead of a copy of the caller's, so that its start costs
//! the same on a host with 100 mounts or 20000
//! ([`saferoot::rootfs::minimal_ns`]). The namespace child opens, while it
//! is still in the caller's namespace, every host object the sandbox will
//! use ([`host_paths`]), then enters a private copy of the minimal
//! namespace and installs them at their own paths; everything after that
//! runs as it would in a copy of the caller's namespace.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use saferoot::mount::Scope;
use saferoot::rootfs::{plan::MountKind, sources::SourceLookup, HostView, MinimalNamespace};

use crate::errors::{shown, CliError};
use crate::sandbox::{RootKind, Sandbox, StepKind};

/// The minimal namespace pinned at `path`, made and pinned there when the
/// path does not exist yet.
pub fn open_or_create(path: &Path) -> Result<Arc<MinimalNamespace>, CliError> {
    let fail = |e: saferoot::Error| CliError::setup(format!("--mount-ns {}: {e}", shown(path)));
    // Several saferoots may find no pin at once: one makes it, the others
    // meet its file (EEXIST), which is a plain empty file until the
    // namespace is bound onto it, and which it removes again if its pin
    // fails (to retry): so they wait, and make their own if it goes away.
    let mut tries = 0;
    loop {
        tries += 1;
        let last_try = tries > 200;
        if !path.exists() {
            match MinimalNamespace::create_pinned(path) {
                Ok(ns) => {
                    log::info!(
                        "made a minimal mount namespace, pinned at {}",
                        path.display()
                    );
                    return Ok(Arc::new(ns));
                }
                Err(e) if e.errno() == libc::EEXIST && !last_try => continue,
                Err(e) => return Err(fail(e)),
            }
        }
        match MinimalNamespace::open(path) {
            Ok(ns) => return Ok(Arc::new(ns)),
            Err(e)
                if !last_try
                    && (e.kind() == saferoot::ErrorKind::InvalidInput
                        || e.kind() == saferoot::ErrorKind::NotFound) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(fail(e)),
        }
    }
}

/// Every host path the sandbox reaches while it is set up, with how much
/// of the mounts below it it needs: the rootfs (or the scratch directory a
/// fresh root is mounted on), bind sources, source roots and overlay
/// layers looked up on the host, fd paths, the host's `/dev` (device
/// nodes bound in a user namespace, masks) and `/proc` (saferoot's own
/// checks).
pub fn host_paths(sb: &Sandbox) -> Result<Vec<(PathBuf, Scope)>, CliError> {
    let mut v: Vec<(PathBuf, Scope)> =
        vec![("/proc".into(), Scope::Mount), ("/dev".into(), Scope::Tree)];
    if Path::new("/sys/fs/selinux").exists() {
        v.push(("/sys/fs/selinux".into(), Scope::Mount));
    }
    match &sb.root {
        RootKind::Directory(d) | RootKind::Bundle(d) => v.push((d.clone(), Scope::Tree)),
        RootKind::Tmpfs => v.push((sb.spec.rootfs.clone(), Scope::Mount)),
        RootKind::Bind { source, .. } => {
            v.push((sb.spec.rootfs.clone(), Scope::Mount));
            v.push((source.clone(), Scope::Tree));
        }
    }
    let plan = saferoot::rootfs::plan(&sb.spec).map_err(|e| CliError::setup(sb.explain(&e)))?;
    let looked_up = |l: &SourceLookup, path: &Path| match l {
        SourceLookup::Host => Some(path.to_path_buf()),
        SourceLookup::Dir { dir, .. } => Some(dir.clone()),
        SourceLookup::Rootfs { .. } => None,
    };
    for m in &plan.mounts {
        match &m.kind {
            MountKind::Bind { source, lookup, .. } | MountKind::CopySymlink { source, lookup } => {
                v.extend(looked_up(lookup, source).map(|p| (p, Scope::Tree)))
            }
            MountKind::Fs { layers, .. } => v.extend(
                layers
                    .iter()
                    .filter_map(|l| looked_up(&l.lookup, &l.path))
                    .map(|p| (p, Scope::Tree)),
            ),
            MountKind::Cgroup => v.push(("/sys/fs/cgroup".into(), Scope::Tree)),
        }
    }
    for step in &sb.steps {
        match &step.kind {
            StepKind::BindFd { fd, .. } => {
                if let Some(p) = &fd.path {
                    v.push((p.clone(), Scope::Tree));
                }
            }
            StepKind::TmpOverlay { lower, .. } => {
                v.extend(lower.iter().map(|l| (l.clone(), Scope::Tree)))
            }
            _ => {}
        }
    }
    Ok(v)
}

/// In the namespace child, still in the caller's mount namespace: opens
/// the host objects, enters a private copy of `ns` and installs them.
pub fn enter(sb: &Sandbox, ns: &MinimalNamespace) -> Result<(), CliError> {
    let fail = |e: saferoot::Error| CliError::setup(format!("--mount-ns: {e}"));
    let anchor = match &sb.root {
        RootKind::Directory(d) | RootKind::Bundle(d) => d.clone(),
        _ => sb.spec.rootfs.clone(),
    };
    let view = HostView::open(&anchor, host_paths(sb)?).map_err(fail)?;
    ns.enter().map_err(fail)?;
    view.install().map_err(fail)
}
