//! What `saferoot run` is asked to do, decided before anything happens:
//! the rootfs spec, the steps that are not mounts, the namespaces, and the
//! process to start. Built from the flags ([`crate::bwrap`]), the embedded
//! default ([`crate::default_sandbox`]) or an OCI bundle
//! ([`crate::bundle`]); carried out by [`crate::run`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use saferoot::rootfs::spec::IdMapping;
use saferoot::rootfs::{EnterMethod, RootfsSpec, Strategy};
use serde::Serialize;

use crate::namespaces::Namespaces;
use crate::privileges::ProcessSecurity;

/// Where the root comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum RootKind {
    /// A fresh, empty tmpfs, made in the sandbox's mount namespace.
    Tmpfs,
    /// An existing host directory (`--rootfs`).
    Directory(PathBuf),
    /// The root of an OCI bundle (`--bundle`).
    Bundle(PathBuf),
    /// A host tree bound recursively as the root (`--bind SRC /`), on a
    /// scratch directory like a fresh root.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Read-only, all the way down (`--ro-bind`).
        ro: bool,
        /// Device nodes usable (`--dev-bind`); otherwise nodev.
        devices: bool,
    },
}

/// A file descriptor given on the command line (`--file FD`,
/// `--bind-fd FD`, ...), duplicated close-on-exec when the command line
/// was read. Shared, so that a [`Sandbox`] can be cloned; compared and
/// shown by the number the caller gave.
#[derive(Debug, Clone)]
pub struct FdArg {
    /// The number on the command line.
    pub number: i32,
    /// saferoot's own copy.
    pub fd: std::sync::Arc<std::os::fd::OwnedFd>,
    /// Where the fd led in the caller's mount namespace when the command
    /// line was read (for `--bind-fd`, whose mount is found again, and
    /// checked to be the same inode, in the sandbox's copy of it).
    pub path: Option<PathBuf>,
}

impl PartialEq for FdArg {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
    }
}

impl Eq for FdArg {}

impl Serialize for FdArg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.number)
    }
}

/// Something to do in the root that is not one of the spec's mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StepKind {
    /// `--dir`.
    Dir {
        /// Where.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
    },
    /// `--symlink`.
    Symlink {
        /// The link's contents.
        target: PathBuf,
        /// Where.
        path: PathBuf,
    },
    /// `--chmod`: the permission bits of an existing path.
    Chmod {
        /// Which (symlinks followed, inside the root).
        path: PathBuf,
        /// The new bits.
        mode: u32,
    },
    /// `--file FD DEST`: a new file with the contents of the fd.
    File {
        /// Where.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
        /// Where the contents come from.
        fd: FdArg,
    },
    /// `--bind-data` / `--ro-bind-data`: a private file with the contents
    /// of the fd, bound at the path.
    BindData {
        /// Where.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
        /// Read-only.
        ro: bool,
        /// Where the contents come from.
        fd: FdArg,
    },
    /// `--bind-fd` / `--ro-bind-fd`: what the fd refers to, bound at the
    /// path (recursively).
    BindFd {
        /// Where.
        path: PathBuf,
        /// Read-only.
        ro: bool,
        /// The directory (or O_PATH fd) to bind.
        fd: FdArg,
    },
    /// `--remount-ro` (bubblewrap dialect): the mount at the path becomes
    /// read-only, its submounts keep their flags.
    RemountRo {
        /// Which mount.
        path: PathBuf,
    },
    /// `--tmp-overlay`: an overlay of host directories whose writes go
    /// to a private tmpfs.
    TmpOverlay {
        /// Where.
        path: PathBuf,
        /// Lower layers, bottom first (host paths).
        lower: Vec<PathBuf>,
    },
}

impl StepKind {
    /// The path the step works on.
    pub fn path(&self) -> &Path {
        match self {
            StepKind::Dir { path, .. }
            | StepKind::Symlink { path, .. }
            | StepKind::Chmod { path, .. }
            | StepKind::File { path, .. }
            | StepKind::BindData { path, .. }
            | StepKind::BindFd { path, .. }
            | StepKind::RemountRo { path }
            | StepKind::TmpOverlay { path, .. } => path,
        }
    }
}

/// A step, with when it happens and the flag it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub kind: StepKind,
    /// When: after this many of the spec's mounts (`spec.mounts.len()`:
    /// after all of them, in the assembled root). Steps and mounts happen
    /// in command-line order.
    pub after_mounts: usize,
    /// The flag (or default) that asked for it.
    pub origin: String,
}

/// Ids for the program: set with setgroups/setresgid/setresuid before
/// exec (OCI `process.user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessUser {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

/// The uid and gid maps of a new user namespace, written by the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdMaps {
    /// Lines of `uid_map`.
    pub uid: Vec<IdMapping>,
    /// Lines of `gid_map`.
    pub gid: Vec<IdMapping>,
}

impl IdMaps {
    /// The text to write to `uid_map` or `gid_map`.
    pub fn text(maps: &[IdMapping]) -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect()
    }

    /// Whether the container id `id` is mapped by `maps`.
    pub fn maps(maps: &[IdMapping], id: u32) -> bool {
        maps.iter()
            .any(|m| id >= m.container_id && id - m.container_id < m.size)
    }
}

/// What only bubblewrap's command line asks for (all off for `run`).
#[derive(Debug, Clone, Default)]
pub struct BwrapExtras {
    /// `--info-fd`: the sandbox's pid and namespaces, as JSON, once it is
    /// set up.
    pub info_fd: Option<FdArg>,
    /// `--json-status-fd`: the same, then the exit code.
    pub json_status_fd: Option<FdArg>,
    /// `--sync-fd`: held open by the sandbox's init while it runs.
    pub sync_fd: Option<FdArg>,
    /// `--block-fd`: the program waits for a byte (or end of file) on it.
    pub block_fd: Option<FdArg>,
    /// `--userns-block-fd`: after the user namespace exists (and the
    /// info is written), saferoot waits on it instead of writing the maps.
    pub userns_block_fd: Option<FdArg>,
    /// `--userns`: the user namespace to join instead of making one.
    pub userns_fd: Option<FdArg>,
    /// `--userns2`: the user namespace the program runs in.
    pub userns2_fd: Option<FdArg>,
    /// `--pidns`: the pid namespace the sandbox starts in.
    pub pidns_fd: Option<FdArg>,
    /// `--lock-file`: paths in the sandbox the init holds a read lock on.
    pub lock_files: Vec<PathBuf>,
    /// `--argv0`.
    pub argv0: Option<OsString>,
    /// `--exec-label` (applied where SELinux is enabled).
    pub exec_label: Option<OsString>,
    /// `--disable-userns`.
    pub disable_userns: bool,
    /// `--assert-userns-disabled`.
    pub assert_userns_disabled: bool,
    /// `--chdir`: the working directory, which must exist inside (it is
    /// not created, unlike `run --chdir`).
    pub chdir: Option<PathBuf>,
    /// Working directories to try, in order, when no `--chdir` is given
    /// (the caller's, then `$HOME`); `/` when none exists inside.
    pub cwd_fallbacks: Vec<PathBuf>,
    /// Keep the caller's fds open for the program (bubblewrap passes on
    /// every fd it did not consume); `run` closes them.
    pub inherit_fds: bool,
}

impl BwrapExtras {
    /// Whether the sandbox needs a process that stays while the program
    /// runs (pid 1, or a holder of the lock files and the sync fd).
    pub fn needs_holder(&self) -> bool {
        !self.lock_files.is_empty() || self.sync_fd.is_some()
    }

    /// Whether the top process must hear when the program is about to
    /// start (to write `--info-fd` and `--json-status-fd`).
    pub fn reports(&self) -> bool {
        self.info_fd.is_some() || self.json_status_fd.is_some()
    }
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The root filesystem. For [`RootKind::Tmpfs`], `spec.rootfs` is only
    /// a placeholder until the scratch directory exists.
    pub spec: RootfsSpec,
    /// For each entry of `spec.mounts`, the flag or config entry it came
    /// from, for messages.
    pub origins: Vec<String>,
    /// Where the root comes from.
    pub root: RootKind,
    /// Directories and symlinks to create.
    pub steps: Vec<Step>,
    /// For each entry of `spec.devices`, the flag or config entry it came
    /// from (`linux.devices[N]`, `--dev DIR`).
    pub device_origins: Vec<String>,
    /// For `spec.masked_paths` and `spec.readonly_paths` (by path), the flag
    /// or entry they came from.
    pub path_origins: Vec<(PathBuf, String)>,
    /// Namespaces to create.
    pub namespaces: Namespaces,
    /// Hostname to set (in the new UTS namespace).
    pub hostname: Option<String>,
    /// Maps of the new user namespace.
    pub id_maps: Option<IdMaps>,
    /// Ids to switch to before exec.
    pub user: Option<ProcessUser>,
    /// The program's privileges: capabilities, rlimits, no_new_privs,
    /// seccomp, OOM score ([`crate::privileges`]).
    pub security: ProcessSecurity,
    /// The program's whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// How to assemble.
    pub strategy: Strategy,
    /// How to enter.
    pub enter: EnterMethod,
    /// Kill the sandbox when saferoot's parent dies.
    pub die_with_parent: bool,
    /// setsid (see [`new_session`]).
    pub new_session: bool,
    /// No init in the new pid namespace: the program is its pid 1 and
    /// reaps its own orphans. `run --bundle` (as OCI runtimes run a
    /// container's process) unless `--init`, and bubblewrap's `--as-pid-1`.
    pub as_pid_1: bool,
    /// saferoot exits as soon as the init reports the program's exit
    /// status, without waiting for the init's own end (bubblewrap's way:
    /// its monitor returns on the status pid 1 sends, while pid 1 is still
    /// tearing the namespaces down). Otherwise saferoot returns once the
    /// init is reaped, when the sandbox's namespaces are gone.
    pub exit_with_program: bool,
    /// How many fds after stdio the program gets (3 to 3+N-1); every other
    /// inherited fd is closed on exec.
    pub preserve_fds: u32,
    /// Parts of the input that saferoot does not apply (OCI fields).
    pub ignored: Vec<String>,
    /// bubblewrap-only options.
    pub extras: BwrapExtras,
    /// `--mount-ns`: start from this minimal mount namespace instead of a
    /// copy of the caller's ([`crate::host_view`]).
    pub mount_ns: Option<std::sync::Arc<saferoot::rootfs::MinimalNamespace>>,
    /// The plan of `spec`, made by `run` once the rootfs path is final,
    /// and taken by the process that assembles the root: the spec is
    /// checked and planned once per run, not again in the sandbox's first
    /// process. Empty until then; a setup that finds it empty plans `spec`
    /// itself.
    pub plan: std::cell::RefCell<Option<saferoot::rootfs::Plan>>,
}

/// Whether the program gets a session of its own: with `--new-session`,
/// and by default whenever stdin, stdout or stderr is a terminal, unless
/// `--no-new-session`. A program in the caller's session can push
/// characters into the caller's terminal with the `TIOCSTI` ioctl (they are
/// read as typed once the sandbox ends), which bubblewrap's
/// `--new-session` exists to stop; in a new session the terminal is not
/// its controlling terminal, and the kernel refuses `TIOCSTI` on it to
/// anyone without `CAP_SYS_ADMIN`.
pub fn new_session(args: &crate::args::RunArgs) -> bool {
    use std::io::IsTerminal;
    if args.new_session {
        return true;
    }
    if args.no_new_session {
        return false;
    }
    std::io::stdin().is_terminal()
        || std::io::stdout().is_terminal()
        || std::io::stderr().is_terminal()
}

/// The PATH given to a program whose environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Sandbox {
    /// The flag or entry a library error is about, when it can be told:
    /// `mounts[N]` or `devices[N]` in the operation, or a path that is a
    /// mount destination, a masked or read-only path, a step or the working
    /// directory. An error about a device is never put on a mount whose
    /// destination happens to be on the device's path.
    pub fn origin_of(&self, e: &saferoot::Error) -> Option<String> {
        match e.entry() {
            Some(saferoot::Entry::Mount(i)) => return self.origins.get(*i).cloned(),
            Some(saferoot::Entry::Device(i)) => {
                return Some(
                    self.device_origins
                        .get(*i)
                        .cloned()
                        .unwrap_or_else(|| format!("devices[{i}]")),
                )
            }
            _ => {}
        }
        let path = e.path()?;
        let clean = saferoot::rootfs::policy::clean;
        let same = |p: &Path| clean(p) == clean(path);
        if let Some(i) = self.spec.mounts.iter().rposition(|m| same(&m.destination)) {
            return self.origins.get(i).cloned();
        }
        if let Some((_, o)) = self.path_origins.iter().rev().find(|(p, _)| same(p)) {
            return Some(o.clone());
        }
        if let Some(s) = self.steps.iter().rev().find(|s| same(s.kind.path())) {
            return Some(s.origin.clone());
        }
        if self.spec.cwd.as_deref().is_some_and(same) {
            return Some("--chdir / process.cwd".into());
        }
        None
    }

    /// A library error as a message that names the flag or entry at fault.
    pub fn explain(&self, e: &saferoot::Error) -> String {
        match self.origin_of(e) {
            Some(o) if !e.to_string().starts_with(&o) => {
                // `devices[N]: ...` from the library becomes `linux.devices[N]: ...`.
                let text = e.to_string();
                let local = match e.entry() {
                    Some(entry @ saferoot::Entry::Device(_)) => Some(entry.to_string()),
                    _ => None,
                }
                .filter(|w| text.starts_with(w.as_str()));
                match local {
                    Some(w) => format!("{o}{}", &text[w.len()..]),
                    None => format!("{o}: {text}"),
                }
            }
            _ => e.to_string(),
        }
    }
}
