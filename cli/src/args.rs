//! The command line, as clap sees it.
//!
//! The mount and environment flags of `run` take effect in the order they
//! are given, which clap's derived structs do not keep across different
//! flags; [`crate::bwrap`] recovers the order from the `ArgMatches`
//! indices. The ids it looks up are the field names below.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

pub use crate::findings::{Format, Severity};

/// Race-free container root filesystems on the new Linux mount API.
#[derive(Debug, Parser)]
#[command(name = "saferoot", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log what saferoot does to stderr (repeat for more detail).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each one's arguments are built only when it is the
/// one invoked (`defer`): clap otherwise builds every subcommand's
/// arguments, help texts included, for every start, about 0.2 ms of a
/// bundle's start. A deferred subcommand's own struct is applied after
/// the variant, so a doc comment on the struct would replace the
/// variant's help text: the structs carry theirs for rustdoc only
/// (`cfg_attr(doc, ...)`).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run a program in a new root filesystem and new namespaces.
    #[command(long_about = RUN_ABOUT)]
    Run(Box<RunArgs>),
    /// Find dangerous or broken mount setups, in an OCI bundle or a live
    /// mount namespace.
    #[command(long_about = AUDIT_ABOUT)]
    Audit(AuditArgs),
    /// Show the mount tree of this (or another) process's mount namespace.
    Mounts(MountsArgs),
    /// Show which kernel features saferoot found, and the strategy `run` uses.
    Features(FeaturesArgs),
    /// Unpack tar archives (plain, gzip or zstd) into a directory, confined
    /// to it: no entry, symlink or hard link in the archive, and no process
    /// changing the directory meanwhile, makes it write outside.
    Extract(ExtractArgs),
    /// Copy files or trees into or out of a directory with `docker cp`'s
    /// rules, never following a symlink that the directory controls out
    /// of it.
    #[command(long_about = CP_ABOUT)]
    Cp(CpArgs),
    /// Run a sandbox from a bubblewrap command line, exactly as bubblewrap
    /// 0.11 takes it (saferoot invoked as `bwrap` does the same); see
    /// docs/bwrap.md.
    #[command(disable_help_flag = true)]
    Bwrap(BwrapArgs),
}

#[cfg_attr(
    doc,
    doc = "`saferoot bwrap`: everything after it is bubblewrap's command line."
)]
#[derive(Debug, clap::Args)]
pub struct BwrapArgs {
    /// bubblewrap's options, then the program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

const RUN_ABOUT: &str = "\
Run a program in a new root filesystem and new namespaces.

The root is built with saferoot's fd-based mount code: every mount is a file
descriptor, configured before it is attached, and attached onto an fd resolved
inside the root, so nothing the root contains can redirect a mount.

With no mount flags, no --rootfs and no --bundle, the program gets the
embedded default sandbox: read-only binds of the host's /usr, /bin, /sbin,
/lib* and /etc (merged-usr symlinks are recreated as symlinks), a fresh /proc
in a new pid namespace, a minimal /dev, tmpfs /tmp and /run, new mount, pid,
ipc and uts namespaces and the hostname \"saferoot\".

Mount flags are applied in the order given, like bubblewrap's. Without
--rootfs the root is a fresh, empty tmpfs that the flags fill.

saferoot is not a full container runtime. It does not set cgroup limits,
seccomp filters, capabilities, rlimits, AppArmor or SELinux process labels,
and it runs no OCI hooks; with --bundle those parts of config.json are
ignored (and listed on stderr). The program runs with the capabilities the
namespaces give it: as root without --unshare-user that is full root, so the
sandbox is a filesystem view, not a security boundary, unless a user
namespace is used.

Exit status: the program's, or 128+N when it was killed by signal N; 125 when
saferoot could not set the sandbox up, 126 when the program could not be
executed, 127 when it was not found, 2 for a bad command line.";

const AUDIT_ABOUT: &str = "\
Find dangerous or broken mount setups.

Static audit (--bundle DIR, or --rootfs DIR --config FILE): reads the OCI
config and inspects the rootfs without following any symlink out of it.
Live audit (--pid PID or --self): reads that process's mount namespace
(statmount/listmount, or mountinfo).

Each finding has a stable id (the rule of saferoot's policy it breaks), a
severity (info, low, medium, high, critical), a path, what is wrong, why it
matters (with the CVE where one applies) and how to fix it. Output: a table,
--json (or --format json), or --format sarif (SARIF 2.1.0).

Exit status: 1 when a finding at or above --fail-on (default high) was made,
0 otherwise, 2 when the audit could not run (bad command line, unreadable
target).";

/// How `run` assembles the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Detached when the kernel can (Linux 6.15+), otherwise in place.
    Auto,
    /// Build the whole tree detached and attach it with one move_mount.
    Detached,
    /// Attach mounts one by one onto an attached clone of the rootfs.
    InPlace,
}

/// How `run` enters the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnterArg {
    /// pivot_root, then detach the old root.
    PivotRoot,
    /// Move the root over / and chroot (for initramfs roots).
    MoveRoot,
    /// Plain chroot; the host tree stays reachable in the namespace.
    Chroot,
}

#[cfg_attr(doc, doc = "`saferoot run`.")]
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Build on this existing directory instead of a fresh tmpfs.
    #[arg(long, value_name = "DIR", help_heading = "Root")]
    pub rootfs: Option<PathBuf>,
    /// Run the OCI bundle in DIR (config.json and its root).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "rootfs",
        help_heading = "Root"
    )]
    pub bundle: Option<PathBuf>,

    /// Bind SRC (with the mounts below it) on DEST, nosuid and nodev.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub bind: Vec<PathBuf>,
    /// Like --bind, but skip it when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub bind_try: Vec<PathBuf>,
    /// Bind SRC on DEST read-only (recursively), nosuid and nodev.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub ro_bind: Vec<PathBuf>,
    /// Like --ro-bind, but skip it when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub ro_bind_try: Vec<PathBuf>,
    /// Bind SRC on DEST allowing device nodes (nosuid only).
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub dev_bind: Vec<PathBuf>,
    /// Like --dev-bind, but skip it when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub dev_bind_try: Vec<PathBuf>,
    /// Mount a new tmpfs on DEST (nosuid, nodev; see --size and --perms).
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub tmpfs: Vec<PathBuf>,
    /// Size limit of the next --tmpfs (bytes, or with k, m, g or %).
    #[arg(long, value_name = "SIZE", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub size: Vec<String>,
    /// Permissions (octal) of the next --tmpfs or --dir.
    #[arg(long, value_name = "OCTAL", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub perms: Vec<String>,
    /// Mount a new procfs on DEST (nosuid, nodev, noexec).
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub proc: Vec<PathBuf>,
    /// Mount a new /dev on DEST: a tmpfs with null, zero, full, random,
    /// urandom, tty, a private devpts and a /dev/shm.
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub dev: Vec<PathBuf>,
    /// Mount a new mqueue filesystem on DEST.
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub mqueue: Vec<PathBuf>,
    /// Create the directory DEST (and its parents).
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub dir: Vec<PathBuf>,
    /// Create a symlink DEST pointing at TARGET.
    #[arg(long, num_args = 2, value_names = ["TARGET", "DEST"], action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub symlink: Vec<PathBuf>,
    /// Make DEST and everything mounted below it read-only (after all
    /// mounts; `--remount-ro /` makes the root mount read-only).
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub remount_ro: Vec<PathBuf>,
    /// Hide PATH: a file gets /dev/null over it, a directory an empty
    /// read-only tmpfs (after all mounts).
    #[arg(long, value_name = "PATH", action = ArgAction::Append, help_heading = "Mounts (applied in order)")]
    pub mask: Vec<PathBuf>,

    /// Working directory of the program (created when missing; default /).
    /// Given more than once, the last is used (with a warning).
    #[arg(long, value_name = "DIR", action = ArgAction::Append, help_heading = "Process")]
    pub chdir: Vec<PathBuf>,
    /// Hostname in the sandbox (needs --unshare-uts or --unshare-all).
    #[arg(long, value_name = "NAME", help_heading = "Process")]
    pub hostname: Option<String>,
    /// Set VAR to VALUE in the program's environment.
    #[arg(long, num_args = 2, value_names = ["VAR", "VALUE"], action = ArgAction::Append, allow_hyphen_values = true, help_heading = "Process")]
    pub setenv: Vec<OsString>,
    /// Remove VAR from the program's environment.
    #[arg(long, value_name = "VAR", action = ArgAction::Append, help_heading = "Process")]
    pub unsetenv: Vec<OsString>,
    /// Start from an empty environment (PATH gets a default unless set).
    #[arg(long, action = ArgAction::Count, help_heading = "Process")]
    pub clearenv: u8,
    /// Put the program in a new session (setsid), away from the terminal.
    /// This is the default when stdin, stdout or stderr is a terminal.
    #[arg(long, help_heading = "Process")]
    pub new_session: bool,
    /// Keep the program in saferoot's session even when stdio is a
    /// terminal (job control works, but the program can push input into
    /// the terminal with TIOCSTI where the kernel allows it).
    #[arg(long, conflicts_with = "new_session", help_heading = "Process")]
    pub no_new_session: bool,
    /// Kill the sandbox (SIGKILL) when saferoot's parent dies.
    #[arg(long, help_heading = "Process")]
    pub die_with_parent: bool,
    /// With --bundle and a pid namespace: run saferoot's init as pid 1,
    /// reaping orphans and forwarding signals, and the process as pid 2.
    /// Without it the process is pid 1 itself, as runc and crun run it.
    #[arg(long, requires = "bundle", help_heading = "Process")]
    pub init: bool,
    /// Pass fds 3 to 3+N-1 on to the program (as runc's --preserve-fds).
    /// Every other fd saferoot inherited is closed on exec; with
    /// LISTEN_FDS=N in saferoot's environment (socket activation), those
    /// N fds are passed on as well.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Process")]
    pub preserve_fds: u32,

    /// Start the sandbox's mount namespace from the minimal namespace
    /// pinned at PATH (made and pinned there when PATH does not exist),
    /// instead of a copy of this one: the sandbox then holds only the host
    /// objects it uses, and its start does not grow with the host's mount
    /// count. Remove it with `umount PATH; rm PATH`.
    #[arg(long, value_name = "PATH", help_heading = "Namespaces")]
    pub mount_ns: Option<std::path::PathBuf>,
    /// New user namespace, mapping --uid/--gid to the caller's ids.
    #[arg(long, help_heading = "Namespaces")]
    pub unshare_user: bool,
    /// User id inside the user namespace (default: the caller's).
    #[arg(long, value_name = "UID", help_heading = "Namespaces")]
    pub uid: Option<u32>,
    /// Group id inside the user namespace (default: the caller's).
    #[arg(long, value_name = "GID", help_heading = "Namespaces")]
    pub gid: Option<u32>,
    /// New pid namespace (a small init is pid 1, the program pid 2).
    #[arg(long, help_heading = "Namespaces")]
    pub unshare_pid: bool,
    /// New network namespace (only a loopback interface, brought up).
    #[arg(long, help_heading = "Namespaces")]
    pub unshare_net: bool,
    /// New IPC namespace.
    #[arg(long, help_heading = "Namespaces")]
    pub unshare_ipc: bool,
    /// New UTS namespace (hostname).
    #[arg(long, help_heading = "Namespaces")]
    pub unshare_uts: bool,
    /// New pid, network, ipc, uts and cgroup namespaces (not user: add
    /// --unshare-user for that).
    #[arg(long, help_heading = "Namespaces")]
    pub unshare_all: bool,

    /// How to assemble the root.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Assembly")]
    pub strategy: StrategyArg,
    /// How to enter the root.
    #[arg(
        long,
        value_enum,
        default_value = "pivot-root",
        help_heading = "Assembly"
    )]
    pub enter: EnterArg,
    /// Print the plan instead of running it.
    #[arg(long, help_heading = "Assembly")]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON.
    #[arg(long, requires = "dry_run", help_heading = "Assembly")]
    pub json: bool,

    /// The program and its arguments (after `--`). With --bundle, replaces
    /// process.args.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

#[cfg_attr(doc, doc = "`saferoot audit`.")]
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit the OCI bundle in DIR (config.json and its root).
    #[arg(long, value_name = "DIR", group = "target")]
    pub bundle: Option<PathBuf>,
    /// Audit the root filesystem DIR, with --config.
    #[arg(long, value_name = "DIR", requires = "config", group = "target")]
    pub rootfs: Option<PathBuf>,
    /// The OCI config.json for --rootfs.
    #[arg(long, value_name = "FILE", requires = "rootfs")]
    pub config: Option<PathBuf>,
    /// Audit the live mount namespace of process PID.
    #[arg(long, value_name = "PID", group = "target")]
    pub pid: Option<u32>,
    /// Audit saferoot's own mount namespace.
    #[arg(long = "self", group = "target")]
    pub self_: bool,
    /// Exit with status 1 when a finding at or above this severity is made.
    #[arg(
        long,
        value_name = "SEVERITY",
        default_value = "high",
        value_parser = crate::findings::severity_parser()
    )]
    pub fail_on: Severity,
    /// Print a JSON object with a `findings` list instead of a table
    /// (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format: a table, JSON, or SARIF 2.1.0 for code-scanning tools.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    pub format: Format,
}

/// Where a mount table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// statmount/listmount when the kernel has them, mountinfo otherwise.
    Auto,
    /// statmount/listmount (Linux 6.8+).
    Statmount,
    /// /proc/PID/mountinfo.
    Mountinfo,
}

#[cfg_attr(doc, doc = "`saferoot mounts`.")]
#[derive(Debug, Args)]
pub struct MountsArgs {
    /// Show the mount namespace of process PID instead of saferoot's own.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Where to read the mount table from.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Print JSON (a tree under `filesystems`, like findmnt --json).
    #[arg(long)]
    pub json: bool,
}

#[cfg_attr(doc, doc = "`saferoot features`.")]
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// How `extract` treats whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhiteoutsArg {
    /// `.wh.*` entries are ordinary files.
    None,
    /// OCI layer whiteouts are applied (never written).
    Oci,
    /// OCI whiteouts become overlayfs whiteouts (char 0:0, opaque xattr).
    Overlay,
}

#[cfg_attr(doc, doc = "`saferoot extract`.")]
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The directory to unpack into (it must exist); everything the
    /// archives contain stays inside it.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// The archives are OCI image layers: the same as `--whiteouts oci
    /// --same-owner --xattrs` (`--whiteouts` and `--no-same-owner` still
    /// override).
    #[arg(long)]
    pub oci_layer: bool,
    /// Whiteout handling, for image layers [default: none; oci with
    /// --oci-layer].
    #[arg(long, value_enum)]
    pub whiteouts: Option<WhiteoutsArg>,
    /// Give entries the owners recorded in the archive (the default when
    /// running as root).
    #[arg(long, overrides_with = "no_same_owner")]
    pub same_owner: bool,
    /// Entries belong to the caller (the default when not root).
    #[arg(long)]
    pub no_same_owner: bool,
    /// Map the archive's uids and gids to host ids before they are applied:
    /// CONTAINER:HOST:LEN, like an OCI uidMappings entry (repeat for more
    /// ranges, up to 16). Implies --same-owner.
    #[arg(
        long,
        value_name = "C:H:N",
        value_parser = parse_id_range,
        conflicts_with_all = ["map_uids", "map_gids", "no_same_owner"]
    )]
    pub map_ids: Vec<saferoot::archive::IdRange>,
    /// Like --map-ids, for uids only (gids are then kept unless
    /// --map-gids is given).
    #[arg(long, value_name = "C:H:N", value_parser = parse_id_range, conflicts_with = "no_same_owner")]
    pub map_uids: Vec<saferoot::archive::IdRange>,
    /// Like --map-ids, for gids only.
    #[arg(long, value_name = "C:H:N", value_parser = parse_id_range, conflicts_with = "no_same_owner")]
    pub map_gids: Vec<saferoot::archive::IdRange>,
    /// What an owner outside the maps becomes.
    #[arg(long, value_enum, default_value = "error")]
    pub unmapped_ids: UnmappedIdsArg,
    /// Apply extended attributes recorded in the archives (PAX
    /// SCHILY.xattr records, as GNU tar --xattrs writes them).
    #[arg(long)]
    pub xattrs: bool,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
    /// Archives, applied in order (as image layers are); `-` is stdin.
    #[arg(required = true, value_name = "ARCHIVE")]
    pub archives: Vec<PathBuf>,
}

const CP_ABOUT: &str = "\
Copy files or trees into or out of a directory (a container's root), with
docker cp's rules, never following a symlink that the directory controls out
of it.

  saferoot cp --into DIR HOST_SRC IN_ROOT_DEST
  saferoot cp --from DIR IN_ROOT_SRC HOST_DEST

IN_ROOT paths are read relative to DIR (a missing leading / is added).
DEST an existing directory: the copy goes into it under SRC's name. DEST
missing: the copy is made there (its parent must exist). DEST an existing
file: a file replaces it, a directory is refused. SRC ending in /. copies a
directory's contents. DEST ending in / must be an existing directory.
Symlinks are copied as symlinks; -L follows SRC itself (inside DIR for
--from). See docs/archive.md.";

#[cfg_attr(doc, doc = "`saferoot cp`.")]
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("direction").required(true).args(["into", "from"])))]
pub struct CpArgs {
    /// Copy the host's SRC into the directory DIR (DEST is inside DIR).
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Copy SRC out of the directory DIR (SRC is inside DIR) to the host's
    /// DEST.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// When SRC itself is a symlink, copy what it points at (with --from,
    /// resolved inside DIR).
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Give the copies the source's owners (docker cp -a). Without it the
    /// copies belong to the caller and lose set-user-id and set-group-id
    /// bits.
    #[arg(short = 'a', long, overrides_with = "no_same_owner")]
    pub same_owner: bool,
    /// The copies belong to the caller (the default).
    #[arg(long)]
    pub no_same_owner: bool,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
    /// What to copy: a host path with --into, a path inside DIR with --from.
    #[arg(value_name = "SRC")]
    pub src: PathBuf,
    /// Where to copy it: a path inside DIR with --into, a host path with
    /// --from.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

/// What `extract` does with an owner outside the id maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnmappedIdsArg {
    /// The extraction fails, naming the entry and the id.
    Error,
    /// The kernel's overflow id (/proc/sys/kernel/overflowuid, usually
    /// 65534) is given instead.
    Overflow,
}

/// `CONTAINER:HOST:LEN`, three decimal numbers.
fn parse_id_range(s: &str) -> Result<saferoot::archive::IdRange, String> {
    let bad = || format!("{s:?} is not CONTAINER:HOST:LEN (three decimal numbers)");
    let mut parts = s.split(':').map(|p| p.parse::<u32>().map_err(|_| bad()));
    let (Some(container), Some(host), Some(len), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok(saferoot::archive::IdRange {
        container: container?,
        host: host?,
        len: len?,
    })
}
