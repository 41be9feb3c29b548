//! bubblewrap-style flags → [`Sandbox`], for `saferoot run` and for the
//! bubblewrap personality ([`crate::bwrap_cmd`], which parses bubblewrap's
//! own command line into the same [`Op`]s).
//!
//! The mount and environment flags are applied in the order given. For
//! `run`, clap keeps the values of each flag and the position of each
//! value on the command line (`ArgMatches::indices_of`); [`ordered_ops`]
//! merges them back into one list sorted by position.
//!
//! [`compose_with`] turns the ops into the spec's mounts, in order, and
//! into [`Step`]s for everything that is not one of the spec's mounts
//! (`--dir`, `--symlink`, `--chmod`, files and binds from fds,
//! bubblewrap's `--remount-ro`, `--tmp-overlay`): each step records how
//! many mounts come before it, and the engine runs it between those and
//! the next (`saferoot::rootfs::assemble_with`), so a later mount can go
//! through a symlink made earlier. `run`'s `--remount-ro` and `--mask`
//! become the spec's read-only and masked paths, applied after every mount.
//! A bind onto `/` makes the bound host tree the root ([`RootKind::Bind`]).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use saferoot::rootfs::policy::clean;
use saferoot::rootfs::spec::{DeviceKind, DeviceSpec, IdMapping, MountSpec};
use saferoot::rootfs::{EnterMethod, RootfsSpec, Strategy};

use crate::args::{EnterArg, RunArgs, StrategyArg};
use crate::errors::{shown, CliError};
use crate::namespaces::Namespaces;
use crate::sandbox::{FdArg, IdMaps, RootKind, Sandbox, Step, StepKind, DEFAULT_PATH};

pub use crate::bwrap_op::{BindFlavor, Op};

impl Op {
    /// Whether this is an environment flag (everything else shapes the
    /// root).
    pub fn is_env(&self) -> bool {
        matches!(self, Op::Setenv(..) | Op::Unsetenv(_) | Op::Clearenv)
    }

    /// The flag as it was written, for messages.
    pub fn flag(&self) -> String {
        let one = |f: &str, p: &OsStr| format!("{f} {}", shown(p));
        let two = |f: &str, a: &OsStr, b: &OsStr| format!("{f} {} {}", shown(a), shown(b));
        match self {
            Op::Bind {
                flavor,
                try_,
                src,
                dest,
            } => {
                let base = match flavor {
                    BindFlavor::Rw => "--bind",
                    BindFlavor::Ro => "--ro-bind",
                    BindFlavor::Dev => "--dev-bind",
                };
                let name = if *try_ {
                    format!("{base}-try")
                } else {
                    base.to_string()
                };
                two(&name, src.as_os_str(), dest.as_os_str())
            }
            Op::Tmpfs(p) => one("--tmpfs", p.as_os_str()),
            Op::Size(s) => one("--size", OsStr::new(s)),
            Op::Perms(s) => one("--perms", OsStr::new(s)),
            Op::Proc(p) => one("--proc", p.as_os_str()),
            Op::Dev(p) => one("--dev", p.as_os_str()),
            Op::Mqueue(p) => one("--mqueue", p.as_os_str()),
            Op::Dir(p) => one("--dir", p.as_os_str()),
            Op::Symlink(t, p) => two("--symlink", t.as_os_str(), p.as_os_str()),
            Op::RemountRo(p) => one("--remount-ro", p.as_os_str()),
            Op::Mask(p) => one("--mask", p.as_os_str()),
            Op::Setenv(k, v) => two("--setenv", k, v),
            Op::Unsetenv(k) => one("--unsetenv", k),
            Op::Clearenv => "--clearenv".into(),
            Op::BindFd { ro, fd, dest } => {
                let f = if *ro { "--ro-bind-fd" } else { "--bind-fd" };
                format!("{f} {fd} {}", shown(dest))
            }
            Op::File(fd, dest) => format!("--file {fd} {}", shown(dest)),
            Op::BindData { ro, fd, dest } => {
                let f = if *ro { "--ro-bind-data" } else { "--bind-data" };
                format!("{f} {fd} {}", shown(dest))
            }
            Op::Chmod(m, p) => two("--chmod", OsStr::new(m), p.as_os_str()),
            Op::OverlaySrc(p) => one("--overlay-src", p.as_os_str()),
            Op::Overlay { upper, work, dest } => {
                format!("--overlay {} {} {}", shown(upper), shown(work), shown(dest))
            }
            Op::TmpOverlay(p) => one("--tmp-overlay", p.as_os_str()),
            Op::RoOverlay(p) => one("--ro-overlay", p.as_os_str()),
        }
    }
}

/// The ids (field names in [`RunArgs`]) of the ordered flags, with the
/// number of values each occurrence takes (0 for a plain flag).
const ORDERED: &[(&str, usize)] = &[
    ("bind", 2),
    ("bind_try", 2),
    ("ro_bind", 2),
    ("ro_bind_try", 2),
    ("dev_bind", 2),
    ("dev_bind_try", 2),
    ("tmpfs", 1),
    ("size", 1),
    ("perms", 1),
    ("proc", 1),
    ("dev", 1),
    ("mqueue", 1),
    ("dir", 1),
    ("symlink", 2),
    ("remount_ro", 1),
    ("mask", 1),
    ("setenv", 2),
    ("unsetenv", 1),
    ("clearenv", 0),
];

/// The ordered flags of a `run` command line, in command-line order.
pub fn ordered_ops(m: &ArgMatches) -> Vec<Op> {
    let mut found: Vec<(usize, Op)> = Vec::new();
    for &(id, arity) in ORDERED {
        // Defaults (a count of 0, an empty list) have no place in the order.
        if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let Some(indices) = m.indices_of(id) else {
            continue;
        };
        let indices: Vec<usize> = indices.collect();
        if arity == 0 {
            found.extend(indices.into_iter().map(|i| (i, Op::Clearenv)));
            continue;
        }
        let values: Vec<OsString> = m
            .get_raw(id)
            .map(|v| v.map(OsStr::to_os_string).collect())
            .unwrap_or_default();
        for (chunk, idx) in values.chunks(arity).zip(indices.chunks(arity)) {
            if chunk.len() != arity {
                continue;
            }
            let p = |i: usize| PathBuf::from(&chunk[i]);
            let bind = |flavor, try_| Op::Bind {
                flavor,
                try_,
                src: p(0),
                dest: p(1),
            };
            let op = match id {
                "bind" => bind(BindFlavor::Rw, false),
                "bind_try" => bind(BindFlavor::Rw, true),
                "ro_bind" => bind(BindFlavor::Ro, false),
                "ro_bind_try" => bind(BindFlavor::Ro, true),
                "dev_bind" => bind(BindFlavor::Dev, false),
                "dev_bind_try" => bind(BindFlavor::Dev, true),
                "tmpfs" => Op::Tmpfs(p(0)),
                "size" => Op::Size(chunk[0].to_string_lossy().into_owned()),
                "perms" => Op::Perms(chunk[0].to_string_lossy().into_owned()),
                "proc" => Op::Proc(p(0)),
                "dev" => Op::Dev(p(0)),
                "mqueue" => Op::Mqueue(p(0)),
                "dir" => Op::Dir(p(0)),
                "symlink" => Op::Symlink(p(0), p(1)),
                "remount_ro" => Op::RemountRo(p(0)),
                "mask" => Op::Mask(p(0)),
                "setenv" => Op::Setenv(chunk[0].clone(), chunk[1].clone()),
                "unsetenv" => Op::Unsetenv(chunk[0].clone()),
                _ => continue,
            };
            found.push((idx[0], op));
        }
    }
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().map(|(_, op)| op).collect()
}

/// The root-shaping part of a command line, turned into spec parts.
#[derive(Debug, Default)]
pub struct Composition {
    /// Mounts, in order, each with the flag it came from.
    pub mounts: Vec<(MountSpec, String)>,
    /// Device nodes (for `--dev` on a path other than `/dev`).
    pub devices: Vec<DeviceSpec>,
    /// Directories and symlinks.
    pub steps: Vec<Step>,
    /// `--remount-ro` paths other than `/`.
    pub readonly: Vec<(PathBuf, String)>,
    /// `--mask` paths.
    pub masked: Vec<(PathBuf, String)>,
    /// `--remount-ro /`.
    pub readonly_root: bool,
    /// A bind onto `/`: the host tree that becomes the root, how it is
    /// bound, and the flag.
    pub root_bind: Option<(PathBuf, BindFlavor, String)>,
    /// Whether a `--dev` was given.
    pub dev: bool,
}

fn in_sandbox(flag: &Op, p: &Path) -> Result<PathBuf, CliError> {
    if !p.is_absolute() {
        return Err(CliError::usage(format!(
            "{}: {} must be an absolute path inside the sandbox",
            flag.flag(),
            shown(p)
        )));
    }
    Ok(p.to_path_buf())
}

/// The largest `--size`: half the 64-bit address space (`i64::MAX` bytes),
/// as bubblewrap's limit; also the largest file size the kernel has
/// (`MAX_LFS_FILESIZE`), so a tmpfs cannot usefully be bigger.
pub const MAX_TMPFS_BYTES: u64 = i64::MAX as u64;

/// `--size`: a number of bytes, optionally with `k`, `m` or `g` (powers of
/// 1024, either case), or a percentage of RAM with `%` (1 to 100). Zero,
/// overflow and sizes above [`MAX_TMPFS_BYTES`] are refused. Returns the
/// tmpfs `size=` value: the number of bytes, or `N%`.
fn parse_size(flag: &Op, s: &str) -> Result<String, CliError> {
    let bad = |why: &str| CliError::usage(format!("{}: {why}", flag.flag()));
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if !c.is_ascii_digit() => (&s[..i], Some(c)),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "not a size (a number of bytes, optionally with k, m, g, or a percentage with %)",
        ));
    }
    let n: u64 = digits.parse().map_err(|_| {
        bad(&format!(
            "too big: a tmpfs can have at most {MAX_TMPFS_BYTES} bytes"
        ))
    })?;
    if n == 0 {
        return Err(bad(
            "a tmpfs of size 0 is not a limit (the kernel would make it unlimited); leave --size out for the default",
        ));
    }
    let shift = match unit {
        None => 0,
        Some('k' | 'K') => 10,
        Some('m' | 'M') => 20,
        Some('g' | 'G') => 30,
        Some('%') => {
            if n > 100 {
                return Err(bad("a percentage of RAM is at most 100%"));
            }
            return Ok(format!("{n}%"));
        }
        Some(_) => {
            return Err(bad(
                "unknown unit (use bytes, or k, m, g, or a percentage with %)",
            ))
        }
    };
    match n.checked_mul(1u64 << shift) {
        Some(bytes) if bytes <= MAX_TMPFS_BYTES => Ok(bytes.to_string()),
        _ => Err(bad(&format!(
            "too big: a tmpfs can have at most {MAX_TMPFS_BYTES} bytes"
        ))),
    }
}

fn parse_perms(flag: &Op, s: &str) -> Result<u32, CliError> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 && !s.is_empty() => Ok(m),
        _ => Err(CliError::usage(format!(
            "{}: not an octal mode of at most 7777",
            flag.flag()
        ))),
    }
}

fn source_path(flag: &Op, src: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(src).map_err(|e| {
        CliError::setup(format!(
            "{}: cannot make the source absolute: {e}",
            flag.flag()
        ))
    })
}

/// The mounts that make up a `/dev` (the library's
/// [`saferoot::rootfs::policy::dev_mounts`]: the tmpfs itself, a private
/// devpts, a `/dev/shm`), each with `origin`. `tty_gid`: devpts gets
/// `gid=5` (not in a user namespace that does not map the tty group).
pub fn dev_mounts(dest: &Path, origin: &str, tty_gid: bool) -> Vec<(MountSpec, String)> {
    saferoot::rootfs::policy::dev_mounts(dest, tty_gid)
        .into_iter()
        .map(|m| (m, origin.to_string()))
        .collect()
}

/// Which command line the ops came from: the two differ where bubblewrap
/// has a behaviour of its own that `saferoot run` does not copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `saferoot run` flags.
    Run,
    /// bubblewrap's command line (`bwrap`, `saferoot bwrap`).
    Bwrap,
}

/// The fds named on a bubblewrap command line, taken (duplicated
/// close-on-exec) before composing.
#[derive(Debug, Default)]
pub struct FdTable(pub Vec<FdArg>);

impl FdTable {
    fn get(&self, op: &Op, n: i32) -> Result<FdArg, CliError> {
        self.0
            .iter()
            .find(|f| f.number == n)
            .cloned()
            .ok_or_else(|| CliError::setup(format!("{}: fd {n} is not open", op.flag())))
    }
}

/// How [`compose_with`] reads the ops.
#[derive(Debug)]
pub struct ComposeContext<'a> {
    /// The first `n_default` ops are the embedded default's (their origin
    /// says so).
    pub n_default: usize,
    /// Whether devpts may be given `gid=5`.
    pub tty_gid: bool,
    /// Which command line.
    pub dialect: Dialect,
    /// The fds the ops name.
    pub fds: &'a FdTable,
    /// Whether the sandbox has a pid namespace of its own (bubblewrap
    /// binds the caller's procfs for `--proc` when it does not).
    pub pid_ns: bool,
}

/// [`compose_with`] for `saferoot run` flags.
pub fn compose(ops: &[Op], n_default: usize, tty_gid: bool) -> Result<Composition, CliError> {
    compose_with(
        ops,
        &ComposeContext {
            n_default,
            tty_gid,
            dialect: Dialect::Run,
            fds: &FdTable::default(),
            pid_ns: true,
        },
    )
}

/// An overlay layer list for the `lowerdir` option: top layer first, each
/// path with `\`, `:` and `,` escaped.
fn lowerdir(layers_bottom_first: &[PathBuf]) -> String {
    layers_bottom_first
        .iter()
        .rev()
        .map(|p| {
            let mut out = String::new();
            for c in p.to_string_lossy().chars() {
                if matches!(c, '\\' | ':' | ',') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// What bubblewrap makes read-only in every `--proc`: old interfaces
/// that change the host when written (`sysrq-trigger`, `sys`, ...).
fn proc_covers(dest: &Path) -> Vec<PathBuf> {
    ["sys", "sysrq-trigger", "irq", "bus"]
        .iter()
        .map(|n| dest.join(n))
        .collect()
}

/// Turns the root-shaping flags into mounts, steps and paths, in order.
pub fn compose_with(ops: &[Op], cx: &ComposeContext<'_>) -> Result<Composition, CliError> {
    let bwrap = cx.dialect == Dialect::Bwrap;
    let mut c = Composition::default();
    let mut size: Option<(String, Op)> = None;
    let mut perms: Option<(u32, Op)> = None;
    let mut overlay_srcs: Vec<PathBuf> = Vec::new();
    for (i, op) in ops.iter().enumerate().filter(|(_, o)| !o.is_env()) {
        let origin = if i < cx.n_default {
            format!("default: {}", op.flag())
        } else {
            op.flag()
        };
        // --size and --perms apply to the flag right after them.
        let takes_size = matches!(op, Op::Tmpfs(_));
        let takes_perms = matches!(
            op,
            Op::Tmpfs(_) | Op::Dir(_) | Op::File(..) | Op::BindData { .. }
        );
        if let Some((_, s)) = &size {
            if !takes_size && !matches!(op, Op::Perms(_) | Op::Size(_)) {
                return Err(CliError::usage(format!(
                    "{} must be followed by --tmpfs, not {origin}",
                    s.flag()
                )));
            }
        }
        if let Some((_, p)) = &perms {
            if !takes_perms && !matches!(op, Op::Perms(_) | Op::Size(_)) {
                return Err(CliError::usage(format!(
                    "{} must be followed by --tmpfs or --dir, not {origin}",
                    p.flag()
                )));
            }
        }
        if bwrap {
            // bubblewrap makes the missing parents of what an option
            // creates with 0755, less the group or other bits the option's
            // permissions lack (0 for options without any): mount points'
            // parents are made here, before the mount, by the same rule.
            let skipped_try = matches!(op, Op::Bind { try_: true, src, .. }
                if source_path(op, src).map_or(true, |s| std::fs::metadata(s).is_err()));
            let made = match op {
                _ if skipped_try => None,
                Op::Bind { dest, .. }
                | Op::Proc(dest)
                | Op::Dev(dest)
                | Op::Mqueue(dest)
                | Op::Overlay { dest, .. }
                | Op::RoOverlay(dest) => Some((dest, 0)),
                Op::Tmpfs(dest) => Some((dest, perms.as_ref().map_or(0o755, |(m, _)| *m))),
                _ => None,
            };
            if let Some((dest, mode)) = made {
                let dest = in_sandbox(op, dest)?;
                if let Some(parent) = dest.parent().filter(|p| clean(p) != Path::new("/")) {
                    let mut m = 0o755;
                    if mode & 0o070 == 0 {
                        m &= !0o050;
                    }
                    if mode & 0o007 == 0 {
                        m &= !0o005;
                    }
                    c.steps.push(Step {
                        kind: StepKind::Dir {
                            path: parent.to_path_buf(),
                            mode: m,
                        },
                        after_mounts: c.mounts.len(),
                        origin: origin.clone(),
                    });
                }
            }
        }
        let at = c.mounts.len();
        let mut step = |kind: StepKind, origin: String| {
            c.steps.push(Step {
                kind,
                after_mounts: at,
                origin,
            })
        };
        match op {
            // As bubblewrap: a second --size or --perms before the flag
            // that takes it is an error, not a silent override.
            Op::Size(_) | Op::Perms(_) => {
                let pending = if matches!(op, Op::Size(_)) {
                    size.as_ref().map(|(_, o)| o)
                } else {
                    perms.as_ref().map(|(_, o)| o)
                };
                if let Some(first) = pending {
                    return Err(CliError::usage(format!(
                        "{} after {}: given twice for the same flag",
                        op.flag(),
                        first.flag()
                    )));
                }
                match op {
                    Op::Size(s) => size = Some((parse_size(op, s)?, op.clone())),
                    Op::Perms(s) => perms = Some((parse_perms(op, s)?, op.clone())),
                    _ => {}
                }
            }
            Op::Bind {
                flavor,
                try_,
                src,
                dest,
            } => {
                let dest = in_sandbox(op, dest)?;
                let src = source_path(op, src)?;
                if let Err(e) = std::fs::metadata(&src) {
                    if *try_ {
                        log::info!("{origin}: skipped, the source does not exist");
                        continue;
                    }
                    return Err(CliError::setup(if bwrap {
                        format!(
                            "Can't find source path {}: {}",
                            src.display(),
                            crate::errors::os_text(&e)
                        )
                    } else {
                        format!("{origin}: the source {} does not exist", shown(&src))
                    }));
                }
                if clean(&dest) == Path::new("/") {
                    // The bound tree becomes the root. Whatever came
                    // before is beneath it, out of sight: start over.
                    if !c.mounts.is_empty() || !c.steps.is_empty() {
                        log::info!(
                            "{origin}: covers the {} mounts and {} other steps given before it",
                            c.mounts.len(),
                            c.steps.len()
                        );
                    }
                    c = Composition {
                        root_bind: Some((src, *flavor, origin)),
                        ..Composition::default()
                    };
                    continue;
                }
                let options: &[&str] = match flavor {
                    BindFlavor::Rw => &["rbind", "rnosuid", "rnodev"],
                    BindFlavor::Ro => &["rbind", "rro", "rnosuid", "rnodev"],
                    BindFlavor::Dev => &["rbind", "rnosuid"],
                };
                c.mounts
                    .push((MountSpec::new(dest, "bind", Some(src), options), origin));
            }
            Op::Tmpfs(dest) => {
                let dest = in_sandbox(op, dest)?;
                let mode = perms.take().map_or(0o755, |(m, _)| m);
                let mut options = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    format!("mode={mode:o}"),
                ];
                if let Some((s, _)) = size.take() {
                    options.push(format!("size={s}"));
                }
                let mut m = MountSpec::new(dest, "tmpfs", Some("tmpfs".into()), &[]);
                m.options = options;
                c.mounts.push((m, origin));
            }
            Op::Proc(dest) if bwrap && !cx.pid_ns => {
                // As bubblewrap: without a pid namespace of its own the
                // sandbox shares the caller's, so it gets the caller's
                // procfs, bound (a user namespace could not mount a new
                // one anyway).
                let dest = in_sandbox(op, dest)?;
                c.mounts.push((
                    MountSpec::new(
                        dest.clone(),
                        "bind",
                        Some("/proc".into()),
                        &["bind", "nosuid", "nodev", "noexec"],
                    ),
                    origin.clone(),
                ));
                c.readonly
                    .extend(proc_covers(&dest).into_iter().map(|p| (p, origin.clone())));
            }
            Op::Proc(dest) | Op::Mqueue(dest) => {
                // A kernel filesystem of the sandbox's own: no setuid, no
                // devices, nothing to run from it.
                let fstype = if matches!(op, Op::Proc(_)) {
                    "proc"
                } else {
                    "mqueue"
                };
                let dest = in_sandbox(op, dest)?;
                if bwrap && fstype == "proc" {
                    c.readonly
                        .extend(proc_covers(&dest).into_iter().map(|p| (p, origin.clone())));
                }
                c.mounts.push((
                    MountSpec::new(
                        dest,
                        fstype,
                        Some(fstype.into()),
                        &["nosuid", "nodev", "noexec"],
                    ),
                    origin,
                ));
            }
            Op::Dev(dest) => {
                let dest = in_sandbox(op, dest)?;
                if clean(&dest) != Path::new("/dev") {
                    // The default devices go in /dev; elsewhere they are
                    // listed one by one.
                    for d in saferoot::rootfs::plan::default_devices() {
                        let name = d.path.file_name().map(PathBuf::from).unwrap_or_default();
                        c.devices.push(DeviceSpec {
                            path: dest.join(name),
                            kind: DeviceKind::Char,
                            ..d
                        });
                    }
                }
                c.dev = true;
                c.mounts.extend(dev_mounts(&dest, &origin, cx.tty_gid));
                if bwrap {
                    // bubblewrap's /dev also has core -> /proc/kcore.
                    c.steps.push(Step {
                        kind: StepKind::Symlink {
                            target: "/proc/kcore".into(),
                            path: dest.join("core"),
                        },
                        after_mounts: c.mounts.len(),
                        origin: origin.clone(),
                    });
                }
            }
            Op::Dir(dest) => {
                let path = in_sandbox(op, dest)?;
                let mode = perms.take().map_or(0o755, |(m, _)| m);
                step(StepKind::Dir { path, mode }, origin);
            }
            Op::Symlink(target, dest) => {
                let path = in_sandbox(op, dest)?;
                if clean(&path) == Path::new("/") {
                    return Err(CliError::usage(format!(
                        "{origin}: cannot replace the root with a symlink"
                    )));
                }
                if target.as_os_str().is_empty() {
                    return Err(CliError::usage(format!("{origin}: the target is empty")));
                }
                step(
                    StepKind::Symlink {
                        target: target.clone(),
                        path,
                    },
                    origin,
                );
            }
            Op::RemountRo(dest) => {
                let dest = in_sandbox(op, dest)?;
                if bwrap {
                    step(StepKind::RemountRo { path: dest }, origin);
                } else if clean(&dest) == Path::new("/") {
                    c.readonly_root = true;
                } else {
                    c.readonly.push((dest, origin));
                }
            }
            Op::Mask(p) => {
                let p = in_sandbox(op, p)?;
                c.masked.push((p, origin));
            }
            Op::Chmod(mode, p) => {
                let path = in_sandbox(op, p)?;
                let mode = parse_perms(op, mode)?;
                step(StepKind::Chmod { path, mode }, origin);
            }
            Op::File(fd, dest) => {
                let path = in_sandbox(op, dest)?;
                let mode = perms.take().map_or(0o666, |(m, _)| m);
                let fd = cx.fds.get(op, *fd)?;
                step(StepKind::File { path, mode, fd }, origin);
            }
            Op::BindData { ro, fd, dest } => {
                let path = in_sandbox(op, dest)?;
                let mode = perms.take().map_or(0o600, |(m, _)| m);
                let fd = cx.fds.get(op, *fd)?;
                step(
                    StepKind::BindData {
                        path,
                        mode,
                        ro: *ro,
                        fd,
                    },
                    origin,
                );
            }
            Op::BindFd { ro, fd, dest } => {
                let path = in_sandbox(op, dest)?;
                let fd = cx.fds.get(op, *fd)?;
                step(StepKind::BindFd { path, ro: *ro, fd }, origin);
            }
            Op::OverlaySrc(src) => overlay_srcs.push(source_path(op, src)?),
            Op::Overlay { upper, work, dest } => {
                let dest = in_sandbox(op, dest)?;
                let options = vec![
                    format!("lowerdir={}", lowerdir(&overlay_srcs)),
                    format!("upperdir={}", lowerdir(&[source_path(op, upper)?])),
                    format!("workdir={}", lowerdir(&[source_path(op, work)?])),
                ];
                overlay_srcs.clear();
                let mut m = MountSpec::new(dest, "overlay", Some("overlay".into()), &[]);
                m.options = options;
                c.mounts.push((m, origin));
            }
            Op::RoOverlay(dest) => {
                let dest = in_sandbox(op, dest)?;
                let mut m = MountSpec::new(dest, "overlay", Some("overlay".into()), &["ro"]);
                m.options
                    .push(format!("lowerdir={}", lowerdir(&overlay_srcs)));
                overlay_srcs.clear();
                c.mounts.push((m, origin));
            }
            Op::TmpOverlay(dest) => {
                let path = in_sandbox(op, dest)?;
                let lower = std::mem::take(&mut overlay_srcs);
                step(StepKind::TmpOverlay { path, lower }, origin);
            }
            Op::Setenv(..) | Op::Unsetenv(_) | Op::Clearenv => {}
        }
    }
    if let Some((_, s)) = size {
        return Err(CliError::usage(format!(
            "{} must be followed by --tmpfs",
            s.flag()
        )));
    }
    if let Some((_, p)) = perms {
        return Err(CliError::usage(format!(
            "{} must be followed by --tmpfs or --dir",
            p.flag()
        )));
    }
    Ok(c)
}

/// The program's environment: saferoot's own (or none with
/// `--clearenv`), changed by the environment flags in order; PATH gets a
/// default when it ends up unset.
pub fn environment(ops: &[Op]) -> Vec<(OsString, OsString)> {
    environment_with(ops, true)
}

/// [`environment`]; `default_path`: give PATH a default when it ends up
/// unset (bubblewrap does not).
pub fn environment_with(ops: &[Op], default_path: bool) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for op in ops {
        match op {
            Op::Clearenv => env.clear(),
            Op::Setenv(k, v) => {
                env.retain(|(key, _)| key != k);
                env.push((k.clone(), v.clone()));
            }
            Op::Unsetenv(k) => env.retain(|(key, _)| key != k),
            _ => {}
        }
    }
    if default_path && !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

fn strategy(a: StrategyArg) -> Strategy {
    match a {
        StrategyArg::Auto => Strategy::Auto,
        StrategyArg::Detached => Strategy::Detached,
        StrategyArg::InPlace => Strategy::InPlace,
    }
}

fn enter_method(a: EnterArg) -> EnterMethod {
    match a {
        EnterArg::PivotRoot => EnterMethod::PivotRoot,
        EnterArg::MoveRoot => EnterMethod::MoveRoot,
        EnterArg::Chroot => EnterMethod::Chroot,
    }
}

/// Strategy and entering method from the flags.
pub fn assembly(args: &RunArgs) -> (Strategy, EnterMethod) {
    (strategy(args.strategy), enter_method(args.enter))
}

/// A placeholder rootfs for planning a fresh tmpfs root before it exists.
pub const FRESH_ROOT_PLACEHOLDER: &str = "/run/saferoot/fresh-tmpfs-root";

/// The [`Sandbox`] for a `run` command line without `--bundle`.
pub fn sandbox_from_flags(args: &RunArgs, m: &ArgMatches) -> Result<Sandbox, CliError> {
    let user_ops = ordered_ops(m);
    let shaping = user_ops.iter().any(|o| !o.is_env());
    let embedded = !shaping && args.rootfs.is_none();

    let mut ns = Namespaces {
        user: args.unshare_user,
        pid: args.unshare_pid || args.unshare_all,
        net: args.unshare_net || args.unshare_all,
        ipc: args.unshare_ipc || args.unshare_all,
        uts: args.unshare_uts || args.unshare_all,
        cgroup: args.unshare_all,
    };
    if embedded {
        ns.pid = true;
        ns.ipc = true;
        ns.uts = true;
    }
    if !ns.user && (args.uid.is_some() || args.gid.is_some()) {
        let which = if args.uid.is_some() { "--uid" } else { "--gid" };
        return Err(CliError::usage(format!(
            "{which} needs --unshare-user: the ids are mapped in a new user namespace"
        )));
    }
    let hostname = match (&args.hostname, embedded) {
        (Some(h), _) => Some(h.clone()),
        (None, true) => Some("saferoot".to_string()),
        (None, false) => None,
    };
    if let Some(h) = &hostname {
        if !ns.uts {
            return Err(CliError::usage(
                "--hostname needs a UTS namespace of its own: add --unshare-uts (or --unshare-all)",
            ));
        }
        if h.is_empty() || h.len() > 64 || h.contains('\0') {
            return Err(CliError::usage(format!(
                "--hostname {}: a hostname has 1 to 64 bytes",
                shown(h)
            )));
        }
    }
    let id_maps = ns.user.then(|| {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        IdMaps {
            uid: vec![IdMapping {
                container_id: args.uid.unwrap_or(uid),
                host_id: uid,
                size: 1,
            }],
            gid: vec![IdMapping {
                container_id: args.gid.unwrap_or(gid),
                host_id: gid,
                size: 1,
            }],
        }
    });
    let tty_gid = id_maps.as_ref().is_none_or(|m| IdMaps::maps(&m.gid, 5));

    let mut ops = if embedded {
        crate::default_sandbox::ops()
    } else {
        Vec::new()
    };
    let n_default = ops.len();
    ops.extend(user_ops.iter().cloned());
    let mut comp = compose(&ops, n_default, tty_gid)?;
    if ns.user && !ns.pid {
        if let Some((_, origin)) = comp.mounts.iter().find(|(m, _)| m.fs_type == "proc") {
            return Err(CliError::usage(format!(
                "{origin} with --unshare-user needs --unshare-pid: the kernel lets a user \
                 namespace mount only a procfs of a pid namespace it owns"
            )));
        }
    }
    if ns.user && !comp.devices.is_empty() {
        return Err(CliError::usage(
            "--dev on a path other than /dev needs the host's device nodes at that path; \
             with --unshare-user only --dev /dev works",
        ));
    }
    // A minimal /dev unless a flag mounts something there.
    if !comp
        .mounts
        .iter()
        .any(|(m, _)| clean(&m.destination) == Path::new("/dev"))
    {
        let origin = if embedded {
            "default: --dev /dev"
        } else {
            "implicit /dev (no flag mounts /dev)"
        };
        let mut dev = dev_mounts(Path::new("/dev"), origin, tty_gid);
        let k = dev.len();
        dev.append(&mut comp.mounts);
        comp.mounts = dev;
        for s in &mut comp.steps {
            // A step under /dev given before any mount goes into the new
            // /dev (made first), not beneath it.
            if s.after_mounts > 0 || clean(s.kind.path()).starts_with("/dev") {
                s.after_mounts += k;
            }
        }
    }

    let root = match (&args.rootfs, &comp.root_bind) {
        (Some(_), Some((_, _, origin))) => {
            return Err(CliError::usage(format!(
                "{origin} cannot be combined with --rootfs: both say what the root is"
            )))
        }
        (None, Some((source, flavor, _))) => RootKind::Bind {
            source: source.clone(),
            ro: *flavor == BindFlavor::Ro,
            devices: *flavor == BindFlavor::Dev,
        },
        (Some(dir), None) => {
            let dir = std::path::absolute(dir)
                .map_err(|e| CliError::setup(format!("--rootfs {}: {e}", shown(dir))))?;
            if !dir.is_dir() {
                return Err(CliError::setup(format!(
                    "--rootfs {}: not a directory",
                    shown(&dir)
                )));
            }
            RootKind::Directory(dir)
        }
        (None, None) => RootKind::Tmpfs,
    };
    let rootfs = match &root {
        RootKind::Directory(d) => d.clone(),
        _ => PathBuf::from(FRESH_ROOT_PLACEHOLDER),
    };
    // As bubblewrap: --chdir given more than once warns, and the last wins.
    if args.chdir.len() > 1 {
        log::warn!(
            "--chdir given {} times: only the last ({}) is used",
            args.chdir.len(),
            shown(
                args.chdir
                    .last()
                    .map(PathBuf::as_path)
                    .unwrap_or(Path::new(""))
            )
        );
    }
    let cwd = match args.chdir.last() {
        Some(d) if !d.is_absolute() => {
            return Err(CliError::usage(format!(
                "--chdir {}: must be an absolute path inside the sandbox",
                shown(d)
            )))
        }
        other => other.cloned(),
    };
    let spec = RootfsSpec {
        rootfs,
        mounts: comp.mounts.iter().map(|(m, _)| m.clone()).collect(),
        devices: comp.devices.clone(),
        default_devices: true,
        masked_paths: comp.masked.iter().map(|(p, _)| p.clone()).collect(),
        readonly_paths: comp.readonly.iter().map(|(p, _)| p.clone()).collect(),
        readonly_root: comp.readonly_root,
        cwd,
        user_namespace: ns.user,
        namespaces: ns.spec_namespaces(),
        ..RootfsSpec::default()
    };
    if args.command.is_empty() {
        return Err(CliError::usage(
            "no program to run: give it after the flags, e.g. `saferoot run -- /bin/sh`",
        ));
    }
    let (strategy, enter) = assembly(args);
    let mut path_origins = comp.masked.clone();
    path_origins.extend(comp.readonly.iter().cloned());
    Ok(Sandbox {
        spec,
        origins: comp.mounts.iter().map(|(_, o)| o.clone()).collect(),
        device_origins: comp
            .devices
            .iter()
            .map(|d| {
                format!(
                    "--dev {}",
                    d.path.parent().unwrap_or(Path::new("/")).display()
                )
            })
            .collect(),
        root,
        steps: comp.steps,
        path_origins,
        namespaces: ns,
        hostname,
        id_maps,
        user: None,
        security: crate::privileges::ProcessSecurity::default(),
        env: environment(&user_ops),
        argv: args.command.clone(),
        strategy,
        enter,
        die_with_parent: args.die_with_parent,
        new_session: crate::sandbox::new_session(args),
        as_pid_1: false,
        exit_with_program: false,
        preserve_fds: crate::fds::preserved_count(args.preserve_fds),
        ignored: Vec::new(),
        extras: Default::default(),
        mount_ns: match &args.mount_ns {
            Some(p) => Some(crate::host_view::open_or_create(p)?),
            None => None,
        },
        plan: Default::default(),
    })
}

/// Flags that cannot be combined with `--bundle` (the config says it all).
pub fn bundle_conflicts(args: &RunArgs, m: &ArgMatches) -> Option<String> {
    if let Some(op) = ordered_ops(m).first() {
        return Some(op.flag());
    }
    let flags = [
        (!args.chdir.is_empty(), "--chdir"),
        (args.hostname.is_some(), "--hostname"),
        (args.unshare_user, "--unshare-user"),
        (args.uid.is_some(), "--uid"),
        (args.gid.is_some(), "--gid"),
        (args.unshare_pid, "--unshare-pid"),
        (args.unshare_net, "--unshare-net"),
        (args.unshare_ipc, "--unshare-ipc"),
        (args.unshare_uts, "--unshare-uts"),
        (args.unshare_all, "--unshare-all"),
    ];
    flags.iter().find(|(on, _)| *on).map(|(_, f)| f.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_perms_apply_to_the_next_flag() {
        let ops = vec![
            Op::Size("1m".into()),
            Op::Perms("700".into()),
            Op::Tmpfs("/t".into()),
            Op::Perms("711".into()),
            Op::Dir("/t/d".into()),
        ];
        let c = compose(&ops, 0, true).unwrap();
        assert_eq!(
            c.mounts[0].0.options,
            ["nosuid", "nodev", "mode=700", "size=1048576"]
        );
        assert_eq!(
            c.steps[0].kind,
            StepKind::Dir {
                path: "/t/d".into(),
                mode: 0o711
            }
        );
        assert_eq!(c.steps[0].after_mounts, 1);
        let e = compose(&[Op::Size("1m".into()), Op::Proc("/proc".into())], 0, true).unwrap_err();
        assert!(
            e.message.contains("--size 1m must be followed by --tmpfs"),
            "{e}"
        );
        let e = compose(&[Op::Perms("9".into()), Op::Dir("/x".into())], 0, true).unwrap_err();
        assert!(e.message.contains("--perms 9"), "{e}");
        let e = compose(&[Op::Size("x1".into()), Op::Tmpfs("/x".into())], 0, true).unwrap_err();
        assert!(e.message.contains("not a size"), "{e}");
    }

    #[test]
    fn sizes_are_checked_and_in_bytes() {
        let size = |s: &str| parse_size(&Op::Size(s.into()), s);
        assert_eq!(size("4096").unwrap(), "4096");
        assert_eq!(size("2k").unwrap(), "2048");
        assert_eq!(size("3G").unwrap(), (3u64 << 30).to_string());
        assert_eq!(size("50%").unwrap(), "50%");
        assert_eq!(size("9223372036854775807").unwrap(), i64::MAX.to_string());
        for bad in [
            "0",
            "0k",
            "0%",
            "",
            "k",
            "-1",
            "+1",
            " 1",
            "1.5m",
            "1e30",
            "16E",
            "1kk",
            "101%",
            "9223372036854775808",
            "99999999999999999999",
            "8589934592g",
        ] {
            let e = size(bad).unwrap_err();
            assert_eq!(e.code, crate::errors::EXIT_USAGE);
            assert!(e.message.starts_with("--size"), "{bad}: {e}");
        }
    }

    #[test]
    fn size_or_perms_twice_for_one_flag_is_refused() {
        for ops in [
            vec![
                Op::Size("1m".into()),
                Op::Size("2m".into()),
                Op::Tmpfs("/t".into()),
            ],
            vec![
                Op::Perms("700".into()),
                Op::Perms("711".into()),
                Op::Dir("/d".into()),
            ],
        ] {
            let e = compose(&ops, 0, true).unwrap_err();
            assert!(e.message.contains("given twice"), "{e}");
        }
        // One for each flag is fine.
        let ops = vec![
            Op::Perms("700".into()),
            Op::Dir("/a".into()),
            Op::Perms("711".into()),
            Op::Dir("/b".into()),
        ];
        assert_eq!(compose(&ops, 0, true).unwrap().steps.len(), 2);
    }

    #[test]
    fn steps_keep_their_place_among_the_mounts() {
        let ops = vec![
            Op::Symlink("usr/lib".into(), "/lib".into()),
            Op::Tmpfs("/tmp".into()),
            Op::Dir("/tmp/a".into()),
            Op::Dir("/var/b".into()),
            Op::RemountRo("/".into()),
            Op::Mask("/etc/shadow".into()),
        ];
        let c = compose(&ops, 0, true).unwrap();
        let at: Vec<usize> = c.steps.iter().map(|s| s.after_mounts).collect();
        assert_eq!(at, [0, 1, 1]);
        assert!(c.readonly_root);
        assert!(c.readonly.is_empty());
        assert_eq!(c.masked[0].1, "--mask /etc/shadow");
    }

    #[test]
    fn relative_destinations_are_refused_naming_the_flag() {
        let e = compose(&[Op::Tmpfs("tmp".into())], 0, true).unwrap_err();
        assert_eq!(e.code, crate::errors::EXIT_USAGE);
        assert!(e.message.starts_with("--tmpfs tmp:"), "{e}");
    }

    #[test]
    fn environment_ops_apply_in_order() {
        let env = environment(&[
            Op::Setenv("A".into(), "1".into()),
            Op::Clearenv,
            Op::Setenv("B".into(), "2".into()),
            Op::Setenv("C".into(), "3".into()),
            Op::Unsetenv("C".into()),
        ]);
        assert_eq!(
            env,
            vec![
                ("B".into(), "2".into()),
                ("PATH".into(), DEFAULT_PATH.into())
            ]
        );
    }
}
