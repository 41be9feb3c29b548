//! The bubblewrap command line, parsed the way bubblewrap 0.11 parses it:
//! strictly left to right, one option at a time, until `--` or the first
//! argument that does not start with `-`; that argument and everything
//! after it are the program and its arguments.
//!
//! Options that shape the root or the environment become [`Op`]s in
//! command-line order (the engine carries them out in that order); the
//! others set fields of [`Invocation`]. `--args FD` splices a
//! NUL-separated argument list read from FD in at its place.
//!
//! This module only parses: it opens nothing, except that `--args` data
//! is read through the caller's [`FdReader`], so that the parser can be
//! exercised without real file descriptors.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::bwrap_op::{BindFlavor, Op};

/// At most this many arguments, counting those read through `--args`
/// (bubblewrap's limit too).
pub const MAX_ARGS: usize = 9000;

/// The largest `--size` bubblewrap accepts (tmpfs sizes are signed 64-bit
/// in the kernel).
pub const MAX_TMPFS_BYTES: u64 = i64::MAX as u64;

/// A bubblewrap command line that could not be parsed. The message is
/// bubblewrap's wording where scripts are known to match it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A usage error: the message to print.
    #[error("{0}")]
    Invalid(String),
    /// No program was given (bubblewrap prints its usage and exits 1).
    #[error("no program to run")]
    NoCommand,
}

fn invalid(msg: impl Into<String>) -> ParseError {
    ParseError::Invalid(msg.into())
}

/// Reads the whole content of a file descriptor given on the command line
/// (for `--args`).
pub trait FdReader {
    /// The bytes readable from `fd` until end of file.
    fn read_fd(&mut self, fd: i32) -> std::io::Result<Vec<u8>>;
}

/// A capability change, in command-line order (`ALL` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapOp {
    /// `--cap-add CAP`.
    Add(Option<caps::Capability>),
    /// `--cap-drop CAP`.
    Drop(Option<caps::Capability>),
}

/// Which namespaces to create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unshare {
    /// `--unshare-user`.
    pub user: bool,
    /// `--unshare-user-try` (or `--unshare-all`).
    pub user_try: bool,
    /// `--unshare-ipc`.
    pub ipc: bool,
    /// `--unshare-pid`.
    pub pid: bool,
    /// `--unshare-net` (`--share-net` clears it).
    pub net: bool,
    /// `--unshare-uts`.
    pub uts: bool,
    /// `--unshare-cgroup`.
    pub cgroup: bool,
    /// `--unshare-cgroup-try` (or `--unshare-all`).
    pub cgroup_try: bool,
}

/// What to do instead of running a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Early {
    /// `--help`: usage on stdout, exit 0.
    Help,
    /// `--version`.
    Version,
}

/// A parsed bubblewrap command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Root-shaping and environment options, in order.
    pub ops: Vec<Op>,
    /// Namespaces to create.
    pub unshare: Unshare,
    /// `--userns FD`.
    pub userns: Option<i32>,
    /// `--userns2 FD`.
    pub userns2: Option<i32>,
    /// `--pidns FD`.
    pub pidns: Option<i32>,
    /// `--disable-userns`.
    pub disable_userns: bool,
    /// `--assert-userns-disabled`.
    pub assert_userns_disabled: bool,
    /// `--uid`.
    pub uid: Option<u32>,
    /// `--gid`.
    pub gid: Option<u32>,
    /// `--hostname`.
    pub hostname: Option<OsString>,
    /// `--chdir`.
    pub chdir: Option<PathBuf>,
    /// `--lock-file`, each.
    pub lock_files: Vec<PathBuf>,
    /// `--sync-fd`.
    pub sync_fd: Option<i32>,
    /// `--block-fd`.
    pub block_fd: Option<i32>,
    /// `--userns-block-fd`.
    pub userns_block_fd: Option<i32>,
    /// `--info-fd`.
    pub info_fd: Option<i32>,
    /// `--json-status-fd`.
    pub json_status_fd: Option<i32>,
    /// `--seccomp FD` (at most one, not with `--add-seccomp-fd`).
    pub seccomp: Option<i32>,
    /// `--add-seccomp-fd FD`, each, in order.
    pub add_seccomp: Vec<i32>,
    /// `--new-session`.
    pub new_session: bool,
    /// `--die-with-parent`.
    pub die_with_parent: bool,
    /// `--as-pid-1`.
    pub as_pid_1: bool,
    /// `--level-prefix`.
    pub level_prefix: bool,
    /// `--cap-add` and `--cap-drop`, in order.
    pub caps: Vec<CapOp>,
    /// `--exec-label`.
    pub exec_label: Option<OsString>,
    /// `--file-label`.
    pub file_label: Option<OsString>,
    /// `--argv0`.
    pub argv0: Option<OsString>,
    /// Options that were given more than once where only the last counts
    /// (bubblewrap warns about them).
    pub warnings: Vec<String>,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// Parses `args` (without argv\[0\]). `Ok(Err(early))` is `--help` or
/// `--version`.
pub fn parse(
    args: Vec<OsString>,
    reader: &mut dyn FdReader,
) -> Result<Result<Invocation, Early>, ParseError> {
    let mut st = State::default();
    let mut total = 0usize;
    let rest = match st.parse(args, false, &mut total, reader)? {
        Flow::Early(e) => return Ok(Err(e)),
        Flow::Rest(rest) => rest,
    };
    st.finish()?;
    if rest.is_empty() {
        return Err(ParseError::NoCommand);
    }
    let mut inv = st.inv;
    inv.command = rest;
    Ok(Ok(inv))
}

enum Flow {
    Early(Early),
    Rest(Vec<OsString>),
}

#[derive(Default)]
struct State {
    inv: Invocation,
    /// `--perms` waiting for the option that takes it.
    perms: Option<String>,
    /// `--size` waiting for `--tmpfs`.
    size: Option<String>,
    /// `--overlay-src` count waiting for an overlay.
    overlay_srcs: usize,
}

fn fd_arg(s: &OsStr) -> Result<i32, ParseError> {
    s.to_str()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i32>().ok())
        .ok_or_else(|| invalid(format!("Invalid fd: {}", s.to_string_lossy())))
}

fn id_arg(what: &str, s: &OsStr) -> Result<u32, ParseError> {
    s.to_str()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i32>().ok())
        .map(|v| v as u32)
        .ok_or_else(|| invalid(format!("Invalid {what}: {}", s.to_string_lossy())))
}

fn octal_arg(flag: &str, s: &OsStr) -> Result<String, ParseError> {
    let t = s.to_str().unwrap_or("");
    match u32::from_str_radix(t, 8) {
        Ok(v) if !t.is_empty() && !t.starts_with(['+', '-']) && v <= 0o7777 => Ok(t.to_string()),
        _ => Err(invalid(format!("{flag} takes an octal argument <= 07777"))),
    }
}

fn cap_arg(s: &OsStr) -> Result<Option<caps::Capability>, ParseError> {
    let t = s.to_string_lossy();
    if t.eq_ignore_ascii_case("ALL") {
        return Ok(None);
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    name.parse::<caps::Capability>()
        .map(Some)
        .map_err(|_| invalid(format!("unknown cap: {t}")))
}

/// Whether an option only modifies the one after it.
fn is_modifier(arg: &OsStr) -> bool {
    arg == "--perms" || arg == "--size"
}

impl State {
    fn warn_last(&mut self, flag: &str) {
        self.inv
            .warnings
            .push(format!("Only the last {flag} option will take effect"));
    }

    fn parse(
        &mut self,
        args: Vec<OsString>,
        in_file: bool,
        total: &mut usize,
        reader: &mut dyn FdReader,
    ) -> Result<Flow, ParseError> {
        if *total > MAX_ARGS {
            return Err(invalid(format!(
                "Exceeded maximum number of arguments {MAX_ARGS}"
            )));
        }
        let mut i = 0usize;
        while i < args.len() {
            let arg = args[i].as_os_str();
            let a = arg.as_bytes();
            // The values after the option, checked to be there.
            let need = |n: usize, what: &str| -> Result<&[OsString], ParseError> {
                if args.len() - i - 1 < n {
                    Err(invalid(format!("{} {what}", arg.to_string_lossy())))
                } else {
                    Ok(&args[i + 1..i + 1 + n])
                }
            };
            let one = "takes an argument";
            let two = "takes two arguments";
            let p = |v: &OsString| PathBuf::from(v);
            let mut used = 0usize;
            match a {
                b"--help" => return Ok(Flow::Early(Early::Help)),
                b"--version" => return Ok(Flow::Early(Early::Version)),
                b"--args" => {
                    if in_file {
                        return Err(invalid("--args not supported in arguments file"));
                    }
                    let v = need(1, one)?;
                    let fd = fd_arg(&v[0])?;
                    let data = reader
                        .read_fd(fd)
                        .map_err(|e| invalid(format!("Can't read --args data: {e}")))?;
                    let mut inner: Vec<OsString> = Vec::new();
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                        inner.push(OsString::from_vec(rest[..end].to_vec()));
                        *total += 1;
                        if *total > MAX_ARGS {
                            return Err(invalid(format!(
                                "Exceeded maximum number of arguments {MAX_ARGS}"
                            )));
                        }
                        rest = rest.get(end + 1..).unwrap_or(&[]);
                    }
                    match self.parse(inner, true, total, reader)? {
                        Flow::Early(e) => return Ok(Flow::Early(e)),
                        // As bubblewrap: what the file leaves over is
                        // ignored, the command comes from the real argv.
                        Flow::Rest(_) => {}
                    }
                    used = 1;
                }
                b"--argv0" => {
                    let v = need(1, "takes one argument")?;
                    if self.inv.argv0.is_some() {
                        return Err(invalid("--argv0 used multiple times"));
                    }
                    self.inv.argv0 = Some(v[0].clone());
                    used = 1;
                }
                b"--level-prefix" => self.inv.level_prefix = true,
                b"--unshare-all" => {
                    let u = &mut self.inv.unshare;
                    u.user_try = true;
                    u.ipc = true;
                    u.pid = true;
                    u.uts = true;
                    u.cgroup_try = true;
                    u.net = true;
                }
                b"--unshare-user" => self.inv.unshare.user = true,
                b"--unshare-user-try" => self.inv.unshare.user_try = true,
                b"--unshare-ipc" => self.inv.unshare.ipc = true,
                b"--unshare-pid" => self.inv.unshare.pid = true,
                b"--unshare-net" => self.inv.unshare.net = true,
                b"--unshare-uts" => self.inv.unshare.uts = true,
                b"--unshare-cgroup" => self.inv.unshare.cgroup = true,
                b"--unshare-cgroup-try" => self.inv.unshare.cgroup_try = true,
                b"--share-net" => self.inv.unshare.net = false,
                b"--chdir" => {
                    let v = need(1, "takes one argument")?;
                    if self.inv.chdir.is_some() {
                        self.warn_last("--chdir");
                    }
                    self.inv.chdir = Some(p(&v[0]));
                    used = 1;
                }
                b"--disable-userns" => self.inv.disable_userns = true,
                b"--assert-userns-disabled" => self.inv.assert_userns_disabled = true,
                b"--remount-ro" => {
                    let v = need(1, "takes one argument")?;
                    self.inv.ops.push(Op::RemountRo(p(&v[0])));
                    used = 1;
                }
                b"--bind" | b"--bind-try" | b"--ro-bind" | b"--ro-bind-try" | b"--dev-bind"
                | b"--dev-bind-try" => {
                    let v = need(2, two)?;
                    let flavor = if a.starts_with(b"--ro-") {
                        BindFlavor::Ro
                    } else if a.starts_with(b"--dev-") {
                        BindFlavor::Dev
                    } else {
                        BindFlavor::Rw
                    };
                    self.inv.ops.push(Op::Bind {
                        flavor,
                        try_: a.ends_with(b"-try"),
                        src: p(&v[0]),
                        dest: p(&v[1]),
                    });
                    used = 2;
                }
                b"--bind-fd" | b"--ro-bind-fd" => {
                    let v = need(2, two)?;
                    let fd = fd_arg(&v[0])?;
                    self.inv.ops.push(Op::BindFd {
                        ro: a == b"--ro-bind-fd",
                        fd,
                        dest: p(&v[1]),
                    });
                    used = 2;
                }
                b"--overlay-src" => {
                    let v = need(1, one)?;
                    self.inv.ops.push(Op::OverlaySrc(p(&v[0])));
                    self.overlay_srcs += 1;
                    used = 1;
                }
                b"--overlay" => {
                    let v = need(3, "takes three arguments")?;
                    if self.overlay_srcs < 1 {
                        return Err(invalid("--overlay requires at least one --overlay-src"));
                    }
                    self.inv.ops.push(Op::Overlay {
                        upper: p(&v[0]),
                        work: p(&v[1]),
                        dest: p(&v[2]),
                    });
                    self.overlay_srcs = 0;
                    used = 3;
                }
                b"--tmp-overlay" => {
                    let v = need(1, one)?;
                    if self.overlay_srcs < 1 {
                        return Err(invalid("--tmp-overlay requires at least one --overlay-src"));
                    }
                    self.inv.ops.push(Op::TmpOverlay(p(&v[0])));
                    self.overlay_srcs = 0;
                    used = 1;
                }
                b"--ro-overlay" => {
                    let v = need(1, one)?;
                    if self.overlay_srcs < 2 {
                        return Err(invalid("--ro-overlay requires at least two --overlay-src"));
                    }
                    self.inv.ops.push(Op::RoOverlay(p(&v[0])));
                    self.overlay_srcs = 0;
                    used = 1;
                }
                b"--proc" | b"--dev" | b"--mqueue" | b"--dir" | b"--tmpfs" => {
                    let v = need(1, one)?;
                    let dest = p(&v[0]);
                    let op = match a {
                        b"--proc" => Op::Proc(dest),
                        b"--dev" => Op::Dev(dest),
                        b"--mqueue" => Op::Mqueue(dest),
                        b"--dir" => Op::Dir(dest),
                        _ => Op::Tmpfs(dest),
                    };
                    self.take_modifiers(&op);
                    self.inv.ops.push(op);
                    used = 1;
                }
                b"--exec-label" | b"--file-label" => {
                    let v = need(1, one)?;
                    let exec = a == b"--exec-label";
                    let slot = if exec {
                        &mut self.inv.exec_label
                    } else {
                        &mut self.inv.file_label
                    };
                    let again = slot.replace(v[0].clone()).is_some();
                    if again {
                        self.warn_last(if exec { "--exec-label" } else { "--file-label" });
                    }
                    used = 1;
                }
                b"--file" | b"--bind-data" | b"--ro-bind-data" => {
                    let v = need(2, two)?;
                    let fd = fd_arg(&v[0])?;
                    let dest = p(&v[1]);
                    let op = match a {
                        b"--file" => Op::File(fd, dest),
                        _ => Op::BindData {
                            ro: a == b"--ro-bind-data",
                            fd,
                            dest,
                        },
                    };
                    self.take_modifiers(&op);
                    self.inv.ops.push(op);
                    used = 2;
                }
                b"--symlink" => {
                    let v = need(2, two)?;
                    self.inv.ops.push(Op::Symlink(p(&v[0]), p(&v[1])));
                    used = 2;
                }
                b"--lock-file" => {
                    let v = need(1, one)?;
                    self.inv.lock_files.push(p(&v[0]));
                    used = 1;
                }
                b"--sync-fd" | b"--block-fd" | b"--userns-block-fd" | b"--info-fd"
                | b"--json-status-fd" | b"--userns" | b"--userns2" | b"--pidns" => {
                    let v = need(1, one)?;
                    let fd = fd_arg(&v[0])?;
                    let name = arg.to_string_lossy().into_owned();
                    let slot = match a {
                        b"--sync-fd" => &mut self.inv.sync_fd,
                        b"--block-fd" => &mut self.inv.block_fd,
                        b"--userns-block-fd" => &mut self.inv.userns_block_fd,
                        b"--info-fd" => &mut self.inv.info_fd,
                        b"--json-status-fd" => &mut self.inv.json_status_fd,
                        b"--userns" => &mut self.inv.userns,
                        b"--userns2" => &mut self.inv.userns2,
                        _ => &mut self.inv.pidns,
                    };
                    if slot.replace(fd).is_some() {
                        self.warn_last(&name);
                    }
                    used = 1;
                }
                b"--seccomp" => {
                    let v = need(1, one)?;
                    if !self.inv.add_seccomp.is_empty() {
                        return Err(invalid(
                            "--seccomp cannot be combined with --add-seccomp-fd",
                        ));
                    }
                    let fd = fd_arg(&v[0])?;
                    if self.inv.seccomp.replace(fd).is_some() {
                        self.warn_last("--seccomp");
                    }
                    used = 1;
                }
                b"--add-seccomp-fd" => {
                    let v = need(1, one)?;
                    if self.inv.seccomp.is_some() {
                        return Err(invalid(
                            "--add-seccomp-fd cannot be combined with --seccomp",
                        ));
                    }
                    self.inv.add_seccomp.push(fd_arg(&v[0])?);
                    used = 1;
                }
                b"--clearenv" => self.inv.ops.push(Op::Clearenv),
                b"--setenv" => {
                    let v = need(2, two)?;
                    self.inv.ops.push(Op::Setenv(v[0].clone(), v[1].clone()));
                    used = 2;
                }
                b"--unsetenv" => {
                    let v = need(1, one)?;
                    self.inv.ops.push(Op::Unsetenv(v[0].clone()));
                    used = 1;
                }
                b"--uid" | b"--gid" => {
                    let v = need(1, one)?;
                    let uid = a == b"--uid";
                    let id = id_arg(if uid { "uid" } else { "gid" }, &v[0])?;
                    let slot = if uid {
                        &mut self.inv.uid
                    } else {
                        &mut self.inv.gid
                    };
                    if slot.replace(id).is_some() {
                        self.warn_last(if uid { "--uid" } else { "--gid" });
                    }
                    used = 1;
                }
                b"--hostname" => {
                    let v = need(1, one)?;
                    if self.inv.hostname.replace(v[0].clone()).is_some() {
                        self.warn_last("--hostname");
                    }
                    used = 1;
                }
                b"--new-session" => self.inv.new_session = true,
                b"--die-with-parent" => self.inv.die_with_parent = true,
                b"--as-pid-1" => self.inv.as_pid_1 = true,
                b"--cap-add" | b"--cap-drop" => {
                    let v = need(1, one)?;
                    let cap = cap_arg(&v[0])?;
                    self.inv.caps.push(if a == b"--cap-add" {
                        CapOp::Add(cap)
                    } else {
                        CapOp::Drop(cap)
                    });
                    used = 1;
                }
                b"--perms" => {
                    let v = need(1, one)?;
                    if self.perms.is_some() {
                        return Err(invalid("--perms given twice for the same action"));
                    }
                    self.perms = Some(octal_arg("--perms", &v[0])?);
                    self.inv
                        .ops
                        .push(Op::Perms(self.perms.clone().unwrap_or_default()));
                    used = 1;
                }
                b"--size" => {
                    let v = need(1, one)?;
                    if self.size.is_some() {
                        return Err(invalid("--size given twice for the same action"));
                    }
                    let t = v[0].to_string_lossy().into_owned();
                    let ok = t.bytes().next().is_some_and(|b| b.is_ascii_digit())
                        && parse_c_ull(&t).is_some_and(|n| n != 0);
                    if !ok {
                        return Err(invalid("--size takes a non-zero number of bytes"));
                    }
                    if parse_c_ull(&t).is_some_and(|n| n > MAX_TMPFS_BYTES) {
                        return Err(invalid(format!(
                            "--size (for tmpfs) is limited to {MAX_TMPFS_BYTES}"
                        )));
                    }
                    let bytes = parse_c_ull(&t).unwrap_or(0).to_string();
                    self.size = Some(bytes.clone());
                    self.inv.ops.push(Op::Size(bytes));
                    used = 1;
                }
                b"--chmod" => {
                    let v = need(2, two)?;
                    let mode = octal_arg("--chmod", &v[0])?;
                    self.inv.ops.push(Op::Chmod(mode, p(&v[1])));
                    used = 2;
                }
                b"--" => {
                    return Ok(Flow::Rest(args[i + 1..].to_vec()));
                }
                _ if a.first() == Some(&b'-') => {
                    return Err(invalid(format!("Unknown option {}", arg.to_string_lossy())));
                }
                _ => return Ok(Flow::Rest(args[i..].to_vec())),
            }
            if !is_modifier(arg) && self.perms.is_some() {
                return Err(invalid(
                    "--perms must be followed by an option that creates a file",
                ));
            }
            if !is_modifier(arg) && self.size.is_some() {
                return Err(invalid("--size must be followed by --tmpfs"));
            }
            if arg != "--overlay-src" && self.overlay_srcs > 0 {
                return Err(invalid(
                    "--overlay-src must be followed by another --overlay-src or one of \
                     --overlay, --tmp-overlay, or --ro-overlay",
                ));
            }
            i += 1 + used;
        }
        Ok(Flow::Rest(Vec::new()))
    }

    /// `--perms` applies to the options that create something; `--size`
    /// to `--tmpfs` only. Consumed here (the ops themselves were pushed
    /// before, in order, and `compose` pairs them the same way).
    fn take_modifiers(&mut self, op: &Op) {
        let takes_perms = matches!(
            op,
            Op::Tmpfs(_) | Op::Dir(_) | Op::File(..) | Op::BindData { .. }
        );
        if takes_perms {
            self.perms = None;
        }
        if matches!(op, Op::Tmpfs(_)) {
            self.size = None;
        }
    }

    /// Checks that need the whole command line.
    fn finish(&mut self) -> Result<(), ParseError> {
        if self.perms.is_some() {
            return Err(invalid(
                "--perms must be followed by an option that creates a file",
            ));
        }
        if self.size.is_some() {
            return Err(invalid("--size must be followed by --tmpfs"));
        }
        if self.overlay_srcs > 0 {
            return Err(invalid(
                "--overlay-src must be followed by another --overlay-src or one of \
                 --overlay, --tmp-overlay, or --ro-overlay",
            ));
        }
        Ok(())
    }
}

/// `strtoull(s, &end, 0)` for a whole string: decimal, `0x` hex or
/// leading-`0` octal; `None` when not all of it is a number or it
/// overflows.
fn parse_c_ull(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Whether `arg` is one of bubblewrap's option names.
pub fn is_option(arg: &OsStr) -> bool {
    OPTION_HELP
        .iter()
        .any(|(o, _)| o.split(' ').next().is_some_and(|name| arg == name))
}

/// The text `--help` prints.
pub fn usage(argv0: &OsStr) -> String {
    let mut s = format!(
        "usage: {} [OPTIONS...] [--] COMMAND [ARGS...]\n\n",
        argv0.to_string_lossy()
    );
    for (opt, text) in OPTION_HELP {
        s.push_str(&format!("    {opt:<28} {text}\n"));
    }
    s
}

/// Each option with a one-line description (saferoot's own words).
const OPTION_HELP: &[(&str, &str)] = &[
    ("--help", "Show this text"),
    ("--version", "Show the version"),
    ("--args FD", "Read more options, NUL-separated, from FD"),
    ("--argv0 VALUE", "Run the program with VALUE as its argv[0]"),
    (
        "--level-prefix",
        "Start each message with a syslog level like <3>",
    ),
    (
        "--unshare-all",
        "New namespaces of every kind (user and cgroup if possible)",
    ),
    (
        "--share-net",
        "Keep the network namespace (after --unshare-all)",
    ),
    ("--unshare-user", "New user namespace"),
    (
        "--unshare-user-try",
        "New user namespace, unless they are disabled here",
    ),
    ("--unshare-ipc", "New IPC namespace"),
    ("--unshare-pid", "New pid namespace"),
    ("--unshare-net", "New network namespace (only loopback)"),
    ("--unshare-uts", "New UTS namespace"),
    ("--unshare-cgroup", "New cgroup namespace"),
    (
        "--unshare-cgroup-try",
        "New cgroup namespace, if the kernel has them",
    ),
    (
        "--userns FD",
        "Enter the user namespace FD (not with --unshare-user)",
    ),
    (
        "--userns2 FD",
        "Enter the user namespace FD once set up (with --userns)",
    ),
    (
        "--disable-userns",
        "No new user namespaces inside (with --unshare-user)",
    ),
    (
        "--assert-userns-disabled",
        "Fail unless new user namespaces are impossible inside",
    ),
    (
        "--pidns FD",
        "Enter the pid namespace FD (the parent with --unshare-pid)",
    ),
    (
        "--uid UID",
        "The uid inside (with --unshare-user or --userns)",
    ),
    (
        "--gid GID",
        "The gid inside (with --unshare-user or --userns)",
    ),
    (
        "--hostname NAME",
        "The hostname inside (with --unshare-uts)",
    ),
    ("--chdir DIR", "The working directory inside"),
    ("--clearenv", "Start from an empty environment"),
    ("--setenv VAR VALUE", "Set VAR in the environment"),
    ("--unsetenv VAR", "Remove VAR from the environment"),
    (
        "--lock-file DEST",
        "Hold a lock on DEST while the sandbox runs",
    ),
    ("--sync-fd FD", "Hold FD open while the sandbox runs"),
    ("--bind SRC DEST", "Bind the host path SRC at DEST"),
    (
        "--bind-try SRC DEST",
        "--bind, skipped when SRC does not exist",
    ),
    ("--dev-bind SRC DEST", "--bind, with device nodes usable"),
    (
        "--dev-bind-try SRC DEST",
        "--dev-bind, skipped when SRC does not exist",
    ),
    ("--ro-bind SRC DEST", "--bind, read-only"),
    (
        "--ro-bind-try SRC DEST",
        "--ro-bind, skipped when SRC does not exist",
    ),
    (
        "--bind-fd FD DEST",
        "Bind what the open fd FD refers to at DEST",
    ),
    ("--ro-bind-fd FD DEST", "--bind-fd, read-only"),
    (
        "--remount-ro DEST",
        "Make the mount at DEST read-only (not its submounts)",
    ),
    (
        "--overlay-src SRC",
        "A lower layer for the next overlay option",
    ),
    (
        "--overlay RWSRC WORKDIR DEST",
        "Overlay at DEST, writes to RWSRC",
    ),
    (
        "--tmp-overlay DEST",
        "Overlay at DEST, writes to a private tmpfs",
    ),
    ("--ro-overlay DEST", "Read-only overlay at DEST"),
    ("--exec-label LABEL", "SELinux label of the program"),
    (
        "--file-label LABEL",
        "SELinux label of files saferoot creates",
    ),
    ("--proc DEST", "A new procfs at DEST"),
    ("--dev DEST", "A new minimal /dev at DEST"),
    ("--tmpfs DEST", "A new tmpfs at DEST"),
    ("--mqueue DEST", "A new mqueue filesystem at DEST"),
    ("--dir DEST", "Create the directory DEST"),
    ("--file FD DEST", "Create DEST with the contents of FD"),
    (
        "--bind-data FD DEST",
        "Bind a private file with the contents of FD at DEST",
    ),
    ("--ro-bind-data FD DEST", "--bind-data, read-only"),
    (
        "--symlink SRC DEST",
        "Create the symlink DEST pointing to SRC",
    ),
    ("--seccomp FD", "Load a seccomp program from FD (once)"),
    (
        "--add-seccomp-fd FD",
        "Load a seccomp program from FD (repeatable)",
    ),
    (
        "--block-fd FD",
        "Wait for data on FD before running the program",
    ),
    (
        "--userns-block-fd FD",
        "Wait for data on FD once the user namespace exists",
    ),
    (
        "--info-fd FD",
        "Write the sandbox's pid and namespaces to FD as JSON",
    ),
    (
        "--json-status-fd FD",
        "Write status, then the exit code, to FD as JSON",
    ),
    ("--new-session", "Run the program in a session of its own"),
    ("--die-with-parent", "Kill the sandbox when the caller dies"),
    (
        "--as-pid-1",
        "Run the program as pid 1 (with --unshare-pid)",
    ),
    (
        "--cap-add CAP",
        "Keep capability CAP (or ALL) in the sandbox",
    ),
    (
        "--cap-drop CAP",
        "Drop capability CAP (or ALL) in the sandbox",
    ),
    (
        "--perms OCTAL",
        "Permissions for the next --tmpfs, --dir, --file, --bind-data",
    ),
    ("--size BYTES", "Size of the next --tmpfs"),
    (
        "--chmod OCTAL PATH",
        "Change the permissions of PATH (which must exist)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(Vec<(i32, Vec<u8>)>);

    impl FdReader for Files {
        fn read_fd(&mut self, fd: i32) -> std::io::Result<Vec<u8>> {
            self.0
                .iter()
                .find(|(f, _)| *f == fd)
                .map(|(_, d)| d.clone())
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))
        }
    }

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    fn ok(s: &[&str]) -> Invocation {
        parse(args(s), &mut Files(vec![]))
            .expect("parses")
            .expect("not --help")
    }

    fn err(s: &[&str]) -> String {
        parse(args(s), &mut Files(vec![]))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn options_end_at_the_first_non_option_or_dashes() {
        let inv = ok(&["--unshare-pid", "ls", "--bind", "/a", "/b"]);
        assert!(inv.unshare.pid);
        assert!(inv.ops.is_empty());
        assert_eq!(inv.command, args(&["ls", "--bind", "/a", "/b"]));
        let inv = ok(&["--", "--weird-program"]);
        assert_eq!(inv.command, args(&["--weird-program"]));
        assert_eq!(err(&["--unshare-pid"]), "no program to run");
        assert_eq!(err(&["--frob", "x"]), "Unknown option --frob");
    }

    #[test]
    fn ops_keep_their_order() {
        let inv = ok(&[
            "--dir",
            "/a",
            "--bind",
            "/s",
            "/a/b",
            "--symlink",
            "x",
            "/y",
            "--setenv",
            "K",
            "V",
            "true",
        ]);
        assert!(matches!(inv.ops[0], Op::Dir(_)));
        assert!(matches!(inv.ops[1], Op::Bind { .. }));
        assert!(matches!(inv.ops[2], Op::Symlink(..)));
        assert!(matches!(inv.ops[3], Op::Setenv(..)));
    }

    #[test]
    fn args_fd_is_spliced_in_place_and_not_nested() {
        let mut files = Files(vec![(5, b"--unshare-net\0--dir\0/x\0".to_vec())]);
        let inv = parse(
            args(&["--dir", "/w", "--args", "5", "--dir", "/z", "sh"]),
            &mut files,
        )
        .unwrap()
        .unwrap();
        assert!(inv.unshare.net);
        let dirs: Vec<_> = inv
            .ops
            .iter()
            .map(|o| match o {
                Op::Dir(p) => p.clone(),
                _ => PathBuf::new(),
            })
            .collect();
        assert_eq!(dirs, [PathBuf::from("/w"), "/x".into(), "/z".into()]);
        let mut files = Files(vec![(5, b"--args\x005\0".to_vec())]);
        let e = parse(args(&["--args", "5", "sh"]), &mut files).unwrap_err();
        assert_eq!(e.to_string(), "--args not supported in arguments file");
        let e = parse(args(&["--args", "9", "sh"]), &mut Files(vec![])).unwrap_err();
        assert!(e.to_string().starts_with("Can't read --args data"), "{e}");
    }

    #[test]
    fn too_many_arguments_are_refused() {
        let mut data = Vec::new();
        for _ in 0..(MAX_ARGS + 1) {
            data.extend_from_slice(b"--unshare-pid\0");
        }
        let mut files = Files(vec![(3, data)]);
        let e = parse(args(&["--args", "3", "sh"]), &mut files).unwrap_err();
        assert!(e.to_string().contains("maximum number of arguments"), "{e}");
    }

    #[test]
    fn missing_values_and_bad_numbers() {
        assert_eq!(err(&["--bind", "/a"]), "--bind takes two arguments");
        assert_eq!(err(&["--tmpfs"]), "--tmpfs takes an argument");
        assert_eq!(err(&["--info-fd", "x1", "sh"]), "Invalid fd: x1");
        assert_eq!(err(&["--info-fd", "-1", "sh"]), "Invalid fd: -1");
        assert_eq!(err(&["--uid", "", "sh"]), "Invalid uid: ");
        assert_eq!(
            err(&["--cap-add", "CAP_NOPE", "sh"]),
            "unknown cap: CAP_NOPE"
        );
        assert_eq!(
            err(&["--argv0", "a", "--argv0", "b", "sh"]),
            "--argv0 used multiple times"
        );
    }

    #[test]
    fn perms_and_size_modify_only_the_next_option() {
        let inv = ok(&["--perms", "0700", "--size", "4096", "--tmpfs", "/t", "sh"]);
        assert_eq!(inv.ops.len(), 3);
        assert_eq!(
            err(&["--perms", "0700", "--proc", "/proc", "sh"]),
            "--perms must be followed by an option that creates a file"
        );
        assert_eq!(
            err(&["--size", "4096", "--dir", "/d", "sh"]),
            "--size must be followed by --tmpfs"
        );
        assert_eq!(
            err(&["--perms", "1", "--perms", "2", "--dir", "/d", "sh"]),
            "--perms given twice for the same action"
        );
        assert_eq!(
            err(&["--perms", "8", "--dir", "/d", "sh"]),
            "--perms takes an octal argument <= 07777"
        );
        assert_eq!(
            err(&["--size", "0", "--tmpfs", "/d", "sh"]),
            "--size takes a non-zero number of bytes"
        );
        assert_eq!(
            err(&["--size", " 1", "--tmpfs", "/d", "sh"]),
            "--size takes a non-zero number of bytes"
        );
        let inv = ok(&["--size", "0x1000", "--tmpfs", "/t", "sh"]);
        assert_eq!(inv.ops[0], Op::Size("4096".into()));
        assert_eq!(
            err(&["--perms", "700", "sh"]),
            "--perms must be followed by an option that creates a file"
        );
    }

    #[test]
    fn overlay_sources_must_precede_an_overlay() {
        assert_eq!(
            err(&["--overlay-src", "/a", "--dir", "/x", "sh"]),
            "--overlay-src must be followed by another --overlay-src or one of --overlay, \
             --tmp-overlay, or --ro-overlay"
        );
        assert_eq!(
            err(&["--overlay-src", "/a", "--ro-overlay", "/x", "sh"]),
            "--ro-overlay requires at least two --overlay-src"
        );
        assert_eq!(
            err(&["--tmp-overlay", "/x", "sh"]),
            "--tmp-overlay requires at least one --overlay-src"
        );
        let inv = ok(&[
            "--overlay-src",
            "/a",
            "--overlay-src",
            "/b",
            "--ro-overlay",
            "/x",
            "sh",
        ]);
        assert_eq!(inv.ops.len(), 3);
    }

    #[test]
    fn seccomp_forms_do_not_mix() {
        assert_eq!(
            err(&["--seccomp", "3", "--add-seccomp-fd", "4", "sh"]),
            "--add-seccomp-fd cannot be combined with --seccomp"
        );
        assert_eq!(
            err(&["--add-seccomp-fd", "4", "--seccomp", "3", "sh"]),
            "--seccomp cannot be combined with --add-seccomp-fd"
        );
        let inv = ok(&["--add-seccomp-fd", "4", "--add-seccomp-fd", "5", "sh"]);
        assert_eq!(inv.add_seccomp, [4, 5]);
    }

    #[test]
    fn help_and_version_stop_parsing() {
        let r = parse(
            args(&["--unshare-pid", "--help", "--frob"]),
            &mut Files(vec![]),
        )
        .unwrap();
        assert_eq!(r, Err(Early::Help));
        let r = parse(args(&["--version"]), &mut Files(vec![])).unwrap();
        assert_eq!(r, Err(Early::Version));
        assert!(usage(OsStr::new("bwrap"))
            .starts_with("usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]"));
    }

    #[test]
    fn unshare_all_and_share_net() {
        let inv = ok(&["--unshare-all", "--share-net", "sh"]);
        let u = inv.unshare;
        assert!(u.user_try && u.ipc && u.pid && u.uts && u.cgroup_try && !u.net && !u.user);
    }

    #[test]
    fn caps_in_order_with_all() {
        let inv = ok(&[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "cap_net_raw",
            "--cap-add",
            "SYS_ADMIN",
            "sh",
        ]);
        assert_eq!(
            inv.caps,
            vec![
                CapOp::Drop(None),
                CapOp::Add(Some(caps::Capability::CAP_NET_RAW)),
                CapOp::Add(Some(caps::Capability::CAP_SYS_ADMIN)),
            ]
        );
    }
}
