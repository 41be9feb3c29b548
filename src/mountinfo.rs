//! The mount table: statmount/listmount (Linux 6.8+) with a mountinfo
//! fallback.
//!
//! [`MountTable::read`] returns the mounts of the calling thread's mount
//! namespace, as the calling thread sees them (paths relative to its root).
//! Two backends produce it:
//!
//! - [`Backend::Statmount`]: `listmount(LSMT_ROOT)` for the ids, then one
//!   `statmount` per mount. No text parsing; the kernel reports typed fields.
//! - [`Backend::Mountinfo`]: `/proc/thread-self/mountinfo`, opened through
//!   saferoot's private procfs ([`crate::procfs`]) and parsed.
//!
//! For the same namespace both give the same entries, field for field, in
//! the same order (ascending unique mount id, the order both interfaces use
//! from Linux 6.8 on), except where a field's documentation on
//! [`MountEntry`] says otherwise: [`unique_id`](MountEntry::unique_id) is
//! only known to statmount, and on kernels older than the statmount fields
//! it needs, statmount leaves [`source`](MountEntry::source) and
//! [`super_options`](MountEntry::super_options) empty and reports
//! [`fs_type`](MountEntry::fs_type) without its subtype.
//!
//! Reading the whole table is for audits and tests. Building a root never
//! does it (invariant 7 of the design): its cost grows with the number of
//! mounts on the host.
//!
//! ```no_run
//! use saferoot::MountTable;
//!
//! let table = MountTable::read()?;
//! if let Some(proc) = table.find_by_mount_point("/proc") {
//!     println!("{} on /proc, {}, {}", proc.fs_type, proc.attrs, proc.propagation);
//!     for below in table.subtree(proc.id).iter().skip(1) {
//!         println!("  {} below it", below.mount_point.display());
//!     }
//! }
//! # Ok::<(), saferoot::Error>(())
//! ```

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use linux_raw_sys::general as k;
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandleBuilder};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::features::{self, Feature};
use crate::procfs::Procfs;
use crate::sys::statmount::{self as sm, StatmountInfo};
use crate::{Error, ErrorKind, MountAttr, PropagationState, Result};

/// One mount of a mount table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MountEntry {
    /// The mount id: the reusable 32-bit id of `/proc/self/mountinfo` and of
    /// `statx(STATX_MNT_ID)`. Unique among the mounts that exist at one time.
    pub id: u64,
    /// The id of the parent mount. For the root of a namespace it is the
    /// mount's own id, or the id of a mount that is not in the table (such
    /// as the initial `rootfs` below `/`).
    pub parent_id: u64,
    /// The unique 64-bit mount id (never reused while the system runs), as
    /// `statx(STATX_MNT_ID_UNIQUE)` and `listmount` report it. Only the
    /// statmount backend knows it; `None` from mountinfo.
    pub unique_id: Option<u64>,
    /// Where the mount is attached, relative to the reader's root directory
    /// (see [`MountTable::read_pid`] for another process's table).
    pub mount_point: PathBuf,
    /// The directory of the mounted filesystem that is the root of this
    /// mount: `/` for a whole filesystem, a subdirectory for a bind mount.
    pub root: PathBuf,
    /// The filesystem type, with its subtype after a dot where there is one
    /// (`fuse.sshfs`), as mountinfo spells it. statmount on kernels without
    /// `STATMOUNT_FS_SUBTYPE` cannot see the subtype and gives `fuse`.
    pub fs_type: String,
    /// The mount source (device, or the name given to a virtual
    /// filesystem); `none` when the mount was made without one, as in
    /// mountinfo. `None` only from statmount on kernels without
    /// `STATMOUNT_SB_SOURCE`.
    pub source: Option<String>,
    /// The per-mount flags: read-only, nosuid, nodev, noexec, nodiratime,
    /// nosymfollow and exactly one access-time policy (a mount without
    /// `noatime` or `relatime` is strictatime).
    pub attrs: MountAttr,
    /// Whether the mount is idmapped (`MOUNT_ATTR_IDMAP`).
    pub idmapped: bool,
    /// Shared/slave/unbindable state and peer group ids.
    /// `propagate_from` is reported only where it differs from `master`,
    /// as mountinfo does.
    pub propagation: PropagationState,
    /// The superblock's options: `ro` or `rw` first, then `sync`,
    /// `dirsync`, `lazytime` where set, then the filesystem's own options.
    /// The kernel's octal escapes (for `,`, `=`, whitespace and `\`) are
    /// kept, so the list can still be split at commas. `None` only from
    /// statmount on kernels without `STATMOUNT_MNT_OPTS`.
    pub super_options: Option<String>,
    /// Major and minor number of the filesystem's device (`st_dev` of files
    /// on it).
    pub dev: (u32, u32),
}

impl MountEntry {
    /// Parses one line of a mountinfo file (without its newline).
    ///
    /// Fields are separated by single spaces; the kernel escapes spaces,
    /// tabs, newlines and backslashes in paths as `\ooo`, which this undoes.
    /// Optional fields other than `shared:`, `master:`, `propagate_from:`
    /// and `unbindable`, and per-mount options it does not know, are
    /// ignored. Anything else that does not fit the format is an
    /// [`crate::ErrorKind::InvalidInput`].
    pub fn from_mountinfo_line(line: &[u8]) -> Result<MountEntry> {
        parse_line(line).map_err(|why| {
            Error::invalid(
                "parse mountinfo line",
                format!("{why}: {}", show_line(line)),
            )
        })
    }

    /// Whether `other` describes the same mount in the same state, ignoring
    /// [`unique_id`](Self::unique_id), which only the statmount backend
    /// knows, and [`source`](Self::source) and
    /// [`super_options`](Self::super_options) where either entry lacks
    /// them (statmount on kernels without the fields, such as 6.8 to 6.12
    /// for the source).
    pub fn same_as(&self, other: &MountEntry) -> bool {
        fn agree(a: &Option<String>, b: &Option<String>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        let bare = |e: &MountEntry| MountEntry {
            unique_id: None,
            source: None,
            super_options: None,
            ..e.clone()
        };
        agree(&self.source, &other.source)
            && agree(&self.super_options, &other.super_options)
            && bare(self) == bare(other)
    }
}

impl fmt::Display for MountEntry {
    /// `ID PARENT MOUNT_POINT FS_TYPE SOURCE ATTRS PROPAGATION`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}{} {}",
            self.id,
            self.parent_id,
            self.mount_point.display(),
            self.fs_type,
            self.source.as_deref().unwrap_or("?"),
            self.attrs,
            if self.idmapped { ",idmapped" } else { "" },
            self.propagation
        )
    }
}

/// Where a [`MountTable`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// statmount/listmount when the kernel has them (and they were not
    /// disabled, see [`crate::features`]), mountinfo otherwise. Also falls
    /// back to mountinfo when the calls fail with `ENOSYS`, `EPERM` or
    /// `EACCES` at run time (a seccomp filter that hides them).
    #[default]
    Auto,
    /// statmount/listmount (Linux 6.8), or [`crate::ErrorKind::Unsupported`].
    Statmount,
    /// `/proc/<thread or pid>/mountinfo`.
    Mountinfo,
}

/// A snapshot of the mounts of one mount namespace.
///
/// Entries are in the kernel's order: ascending unique mount id (creation
/// order, more or less) from Linux 6.8 on, for both backends. Lookups by id
/// are constant time; [`children`](Self::children) and
/// [`subtree`](Self::subtree) cost what they return.
#[derive(Debug, Clone)]
pub struct MountTable {
    entries: Vec<MountEntry>,
    by_id: HashMap<u64, usize>,
    /// Indices of each mount's children, in table order. A mount that is
    /// its own parent (a namespace root) is not its own child.
    children: HashMap<u64, Vec<usize>>,
    backend: Backend,
}

static TABLE_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many whole mount tables this process has read so far (through
/// [`MountTable::read_with`] or [`MountTable::read_pid`]). Building a root
/// must not read one (its cost must not grow with the host's mounts); tests
/// use this counter to hold that line (test-only: cargo feature
/// `test-hooks`).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn table_reads() -> u64 {
    TABLE_READS.load(std::sync::atomic::Ordering::Relaxed)
}

impl MountTable {
    /// The mount table of the calling thread's mount namespace, from the
    /// best backend the kernel offers ([`Backend::Auto`]).
    pub fn read() -> Result<MountTable> {
        MountTable::read_with(Backend::Auto)
    }

    /// The mount table of the calling thread's mount namespace, from
    /// `backend`. [`Backend::Statmount`] on a kernel without statmount and
    /// listmount (or with them disabled, or hidden by seccomp) is
    /// [`crate::ErrorKind::Unsupported`].
    pub fn read_with(backend: Backend) -> Result<MountTable> {
        TABLE_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match backend {
            Backend::Mountinfo => read_mountinfo_here(),
            Backend::Statmount => {
                require_statmount()?;
                MountTable::from_entries(statmount_entries()?, Backend::Statmount)
            }
            Backend::Auto => {
                if statmount_enabled() {
                    match statmount_entries() {
                        Ok(e) => return MountTable::from_entries(e, Backend::Statmount),
                        Err(e) if may_fall_back(&e) => {
                            log::debug!(
                                "mount table: statmount backend failed ({e}); reading mountinfo"
                            );
                        }
                        Err(e) => return Err(e),
                    }
                }
                read_mountinfo_here()
            }
        }
    }

    /// The mount table of the mount namespace of process `pid` (a pid in
    /// the caller's pid namespace).
    ///
    /// With mountinfo this reads `/proc/PID/mountinfo`, whose paths are
    /// relative to that process's root directory. With statmount it enters
    /// the namespace on a short-lived thread of its own (`unshare(CLONE_FS)`
    /// then `setns`), so the caller's namespace, root and cwd are never
    /// touched; paths are then relative to the namespace's root, which is
    /// the same thing unless the process is chrooted. Entering needs
    /// `CAP_SYS_ADMIN` over the namespace; [`Backend::Auto`] falls back to
    /// mountinfo when that is refused.
    pub fn read_pid(pid: Pid, backend: Backend) -> Result<MountTable> {
        TABLE_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match backend {
            Backend::Mountinfo => read_mountinfo_pid(pid),
            Backend::Statmount => {
                require_statmount()?;
                read_statmount_pid(pid)
            }
            Backend::Auto => {
                if statmount_enabled() {
                    match read_statmount_pid(pid) {
                        Ok(t) => return Ok(t),
                        Err(e) if may_fall_back(&e) => {
                            log::debug!(
                                "mount table of pid {}: statmount backend failed ({e}); reading mountinfo",
                                pid.as_raw_nonzero()
                            );
                        }
                        Err(e) => return Err(e),
                    }
                }
                read_mountinfo_pid(pid)
            }
        }
    }

    /// Parses the text of a mountinfo file. Empty lines are skipped; any
    /// malformed line is an [`crate::ErrorKind::InvalidInput`] naming its line number.
    pub fn parse_mountinfo(text: &[u8]) -> Result<MountTable> {
        parse_mountinfo_text(text, None)
    }

    /// Which backend produced the table: [`Backend::Statmount`] or
    /// [`Backend::Mountinfo`], never [`Backend::Auto`].
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// All entries, in table order.
    pub fn entries(&self) -> &[MountEntry] {
        &self.entries
    }

    /// An iterator over all entries, in table order.
    pub fn iter(&self) -> std::slice::Iter<'_, MountEntry> {
        self.entries.iter()
    }

    /// The number of mounts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no mounts (possible only for a parsed text).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mount with the (32-bit, reusable) id `id`.
    pub fn get(&self, id: u64) -> Option<&MountEntry> {
        self.by_id.get(&id).map(|&i| &self.entries[i])
    }

    /// The mount a path lookup of `path` would end on when `path` is a
    /// mount point: of the mounts attached at `path`, the visible one on
    /// top of the stack. A mount is hidden when another mount on the same
    /// parent sits on one of its mount point's ancestors (or a mount on an
    /// ancestor of its parent is hidden). `None` when no visible mount is
    /// attached exactly at `path`. `path` is compared component-wise and is
    /// not resolved: give it as the table spells it (absolute, no symlinks).
    pub fn find_by_mount_point(&self, path: impl AsRef<Path>) -> Option<&MountEntry> {
        let path = path.as_ref();
        let visible: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].mount_point == path && self.is_visible(i))
            .collect();
        visible
            .iter()
            .copied()
            .find(|&i| {
                let id = self.entries[i].id;
                !visible
                    .iter()
                    .any(|&j| j != i && self.entries[j].parent_id == id)
            })
            .map(|i| &self.entries[i])
    }

    /// The mounts attached directly on mount `id`, in table order.
    pub fn children(&self, id: u64) -> impl Iterator<Item = &MountEntry> + '_ {
        self.children
            .get(&id)
            .into_iter()
            .flatten()
            .map(move |&i| &self.entries[i])
    }

    /// Mount `id` followed by every mount below it, parents before their
    /// children (depth first, siblings in table order). Empty when `id` is
    /// not in the table.
    pub fn subtree(&self, id: u64) -> Vec<&MountEntry> {
        let Some(&start) = self.by_id.get(&id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue; // a parent cycle in hand-written input
            }
            let e = &self.entries[i];
            out.push(e);
            if let Some(kids) = self.children.get(&e.id) {
                stack.extend(kids.iter().rev());
            }
        }
        out
    }

    fn from_entries(entries: Vec<MountEntry>, backend: Backend) -> Result<MountTable> {
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if by_id.insert(e.id, i).is_some() {
                return Err(Error::invalid(
                    "build mount table",
                    format!("mount id {} appears twice", e.id),
                ));
            }
            if e.parent_id != e.id {
                children.entry(e.parent_id).or_default().push(i);
            }
        }
        Ok(MountTable {
            entries,
            by_id,
            children,
            backend,
        })
    }

    /// Whether no mount hides entry `i` or one of its ancestors.
    fn is_visible(&self, mut i: usize) -> bool {
        for _ in 0..=self.entries.len() {
            let e = &self.entries[i];
            let Some(&parent) = self.by_id.get(&e.parent_id) else {
                return true;
            };
            if parent == i {
                return true;
            }
            let covered = self.children.get(&e.parent_id).is_some_and(|sibs| {
                sibs.iter().any(|&s| {
                    let mp = &self.entries[s].mount_point;
                    s != i && *mp != e.mount_point && e.mount_point.starts_with(mp)
                })
            });
            if covered {
                return false;
            }
            i = parent;
        }
        false // a parent cycle
    }
}

impl<'a> IntoIterator for &'a MountTable {
    type Item = &'a MountEntry;
    type IntoIter = std::slice::Iter<'a, MountEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

// ---------------------------------------------------------------------------
// Backend selection

fn statmount_enabled() -> bool {
    features::has(Feature::Statmount) && features::has(Feature::Listmount)
}

fn require_statmount() -> Result<()> {
    features::require(Feature::Statmount)?;
    features::require(Feature::Listmount)
}

/// Errors after which [`Backend::Auto`] reads mountinfo instead: the calls
/// are missing or filtered.
fn may_fall_back(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unsupported | ErrorKind::Permission)
}

// ---------------------------------------------------------------------------
// mountinfo backend

const THREAD_SELF_MOUNTINFO: &str = "/proc/thread-self/mountinfo";

fn read_mountinfo_here() -> Result<MountTable> {
    let procfs = Procfs::new()?;
    let file = procfs.open_thread_self("mountinfo")?;
    let text = read_all(file, THREAD_SELF_MOUNTINFO)?;
    parse_mountinfo_text(&text, Some(Path::new(THREAD_SELF_MOUNTINFO)))
}

fn read_mountinfo_pid(pid: Pid) -> Result<MountTable> {
    let sub = format!("{}/mountinfo", pid.as_raw_nonzero());
    let shown = format!("/proc/{sub}");
    let procfs = Procfs::new()?;
    let file = procfs.open_root(&sub, rustix::fs::OFlags::RDONLY)?;
    let text = read_all(file, &shown)?;
    parse_mountinfo_text(&text, Some(Path::new(&shown)))
}

fn read_all(mut file: std::fs::File, shown: &str) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(|e| {
        let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
        Error::os_at("read mountinfo", shown, errno)
    })?;
    Ok(text)
}

fn parse_mountinfo_text(text: &[u8], origin: Option<&Path>) -> Result<MountTable> {
    let mut entries = Vec::new();
    for (n, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = parse_line(line).map_err(|why| {
            let reason = format!("line {}: {why}: {}", n + 1, show_line(line));
            match origin {
                Some(p) => Error::invalid_at("parse mountinfo", p, reason),
                None => Error::invalid("parse mountinfo", reason),
            }
        })?;
        entries.push(entry);
    }
    MountTable::from_entries(entries, Backend::Mountinfo)
}

/// A line for an error message: lossy UTF-8, at most 200 characters.
fn show_line(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    if s.chars().count() > 200 {
        format!("{:?}...", s.chars().take(200).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// Parses `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] -
/// FSTYPE SOURCE SUPER_OPTIONS`.
fn parse_line(line: &[u8]) -> std::result::Result<MountEntry, String> {
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    if fields.len() < 10 {
        return Err(format!("{} fields, expected at least 10", fields.len()));
    }
    // Optional fields start at 6; the separator is the first "-" after them.
    let sep = fields
        .iter()
        .skip(6)
        .position(|f| *f == b"-")
        .map(|p| p + 6)
        .ok_or("no \" - \" separator")?;
    if fields.len() < sep + 4 {
        return Err("missing fields after the \" - \" separator".into());
    }
    let id = number(fields[0], "mount id")?;
    let parent_id = number(fields[1], "parent id")?;
    let dev = device(fields[2])?;
    let root = path_field(fields[3], "root")?;
    let mount_point = path_field(fields[4], "mount point")?;
    let (attrs, idmapped) = mount_options(fields[5])?;
    let propagation = optional_fields(&fields[6..sep])?;
    let fs_type = text_field(fields[sep + 1], "filesystem type")?;
    let source = String::from_utf8_lossy(&unescape(fields[sep + 2])).into_owned();
    // Filesystems print their own options; a stray space must not lose any.
    let super_options = String::from_utf8_lossy(&fields[sep + 3..].join(&b' ')).into_owned();
    if !(super_options == "ro"
        || super_options == "rw"
        || super_options.starts_with("ro,")
        || super_options.starts_with("rw,"))
    {
        return Err("super options do not start with ro or rw".into());
    }
    Ok(MountEntry {
        id,
        parent_id,
        unique_id: None,
        mount_point,
        root,
        fs_type,
        source: Some(normalize_source(source)),
        attrs,
        idmapped,
        propagation,
        super_options: Some(super_options),
        dev,
    })
}

fn number(field: &[u8], what: &str) -> std::result::Result<u64, String> {
    std::str::from_utf8(field)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad {what} {:?}", String::from_utf8_lossy(field)))
}

fn device(field: &[u8]) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("bad device {:?}", String::from_utf8_lossy(field));
    let colon = field.iter().position(|b| *b == b':').ok_or_else(bad)?;
    let major = number(&field[..colon], "device major")?;
    let minor = number(&field[colon + 1..], "device minor")?;
    Ok((
        u32::try_from(major).map_err(|_| bad())?,
        u32::try_from(minor).map_err(|_| bad())?,
    ))
}

fn path_field(field: &[u8], what: &str) -> std::result::Result<PathBuf, String> {
    if field.is_empty() {
        return Err(format!("empty {what}"));
    }
    Ok(PathBuf::from(OsString::from_vec(unescape(field))))
}

fn text_field(field: &[u8], what: &str) -> std::result::Result<String, String> {
    if field.is_empty() {
        return Err(format!("empty {what}"));
    }
    Ok(String::from_utf8_lossy(&unescape(field)).into_owned())
}

/// Undoes the kernel's `\ooo` escapes. A backslash not followed by three
/// octal digits that make a byte stays as it is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            if let Some(d) = field.get(i + 1..i + 4) {
                if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// The per-mount options field: `ro` or `rw`, then flags.
fn mount_options(field: &[u8]) -> std::result::Result<(MountAttr, bool), String> {
    let text = std::str::from_utf8(field).map_err(|_| "mount options are not ASCII")?;
    let mut words = text.split(',');
    let mut attrs = match words.next() {
        Some("ro") => MountAttr::RDONLY,
        Some("rw") => MountAttr::empty(),
        _ => return Err(format!("mount options {text:?} do not start with ro or rw")),
    };
    let mut idmapped = false;
    for word in words {
        attrs |= match word {
            "nosuid" => MountAttr::NOSUID,
            "nodev" => MountAttr::NODEV,
            "noexec" => MountAttr::NOEXEC,
            "noatime" => MountAttr::NOATIME,
            "relatime" => MountAttr::RELATIME,
            "nodiratime" => MountAttr::NODIRATIME,
            "nosymfollow" => MountAttr::NOSYMFOLLOW,
            "idmapped" => {
                idmapped = true;
                continue;
            }
            "" => return Err(format!("empty word in mount options {text:?}")),
            other => {
                log::trace!("mountinfo: unknown mount option {other:?} ignored");
                continue;
            }
        };
    }
    // The kernel prints noatime or relatime, or neither for strictatime;
    // noatime wins if both appear, as in statmount's MOUNT_ATTR_* value.
    if attrs.contains(MountAttr::NOATIME) {
        attrs.remove(MountAttr::RELATIME);
    } else if !attrs.contains(MountAttr::RELATIME) {
        attrs |= MountAttr::STRICTATIME;
    }
    Ok((attrs, idmapped))
}

fn optional_fields(fields: &[&[u8]]) -> std::result::Result<PropagationState, String> {
    let mut p = PropagationState::default();
    for field in fields {
        let text = String::from_utf8_lossy(field);
        let group = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|g| *g != 0 && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("bad optional field {text:?}"))
        };
        match text.split_once(':') {
            Some(("shared", v)) => p.shared = Some(group(v)?),
            Some(("master", v)) => p.master = Some(group(v)?),
            Some(("propagate_from", v)) => p.propagate_from = Some(group(v)?),
            None if text == "unbindable" => p.unbindable = true,
            _ if text.is_empty() => return Err("empty optional field".into()),
            // proc(5): parsers must ignore optional fields they do not know.
            _ => log::trace!("mountinfo: unknown optional field {text:?} ignored"),
        }
    }
    Ok(p)
}

/// Empty sources show as `none`, as mountinfo prints a missing one.
fn normalize_source(s: String) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// statmount backend

/// The entries of the calling thread's namespace, from statmount/listmount.
fn statmount_entries() -> Result<Vec<MountEntry>> {
    let mut list = |parent: Option<u64>| match sm::listmount(parent) {
        Ok(ids) => Ok(Some(ids)),
        // The mount went away since it was listed.
        Err(Errno::NOENT) if parent.is_some() => Ok(None),
        Err(e) => Err(call_error("listmount", parent, e)),
    };
    let mut stat = |id: u64| match sm::statmount_all(id) {
        Ok(info) => Ok(Some(info)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(call_error("statmount", Some(id), e)),
    };
    let infos = collect_statmount(&mut list, &mut stat)?;
    Ok(entries_from_statmount(infos))
}

fn call_error(call: &'static str, id: Option<u64>, errno: Errno) -> Error {
    if errno == Errno::NOSYS {
        return Error::unsupported(if call == "listmount" {
            Feature::Listmount
        } else {
            Feature::Statmount
        });
    }
    let target = id.map_or_else(|| "LSMT_ROOT".to_string(), |i| format!("mount {i}"));
    Error::os(format!("{call}({target})"), errno)
}

type ListFn<'a> = dyn FnMut(Option<u64>) -> Result<Option<Vec<u64>>> + 'a;
type StatFn<'a> = dyn FnMut(u64) -> Result<Option<StatmountInfo>> + 'a;

/// Collects every mount visible from the caller's root with listmount and
/// statmount, whichever listing semantics the kernel has.
///
/// Released kernels list a mount's whole subtree; pre-release 6.8 patches
/// listed immediate children only (see [`crate::sys::statmount`]). A
/// recursive listing is recognised by a listed mount whose parent is not
/// the mount asked about (for `LSMT_ROOT`: a grandchild among the listed).
/// Once seen, the first `LSMT_ROOT` listing was complete. Until then every
/// mount is expanded once, breadth first: one listmount per mount with the
/// children-only semantics, and, with recursive semantics on a table too
/// flat to tell, empty answers for the leaves. Either way the number of
/// calls and ids is linear in the number of mounts.
///
/// `list(None)` is `LSMT_ROOT`; `list`/`stat` answer `Ok(None)` for a mount
/// that vanished meanwhile.
fn collect_statmount(list: &mut ListFn<'_>, stat: &mut StatFn<'_>) -> Result<Vec<StatmountInfo>> {
    let mut infos: Vec<StatmountInfo> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut add =
        |id: u64, infos: &mut Vec<StatmountInfo>, index: &mut HashMap<u64, usize>| -> Result<()> {
            if let Entry::Vacant(slot) = index.entry(id) {
                if let Some(mut info) = stat(id)? {
                    info.mnt_id = id;
                    slot.insert(infos.len());
                    infos.push(info);
                }
            }
            Ok(())
        };

    for id in list(None)?.unwrap_or_default() {
        add(id, &mut infos, &mut index)?;
    }
    let is_top = |i: &StatmountInfo, index: &HashMap<u64, usize>| {
        i.parent_id == i.mnt_id || !index.contains_key(&i.parent_id)
    };
    let mut recursive = infos.iter().any(|i| {
        !is_top(i, &index)
            && index
                .get(&i.parent_id)
                .is_some_and(|&p| !is_top(&infos[p], &index))
    });

    if !recursive {
        let mut queue: VecDeque<u64> = infos.iter().map(|i| i.mnt_id).collect();
        let mut expanded = HashSet::new();
        while let Some(id) = queue.pop_front() {
            if !expanded.insert(id) {
                continue;
            }
            let Some(kids) = list(Some(id))? else {
                continue;
            };
            for &kid in &kids {
                add(kid, &mut infos, &mut index)?;
            }
            let deeper = kids
                .iter()
                .filter_map(|kid| index.get(kid))
                .any(|&i| infos[i].parent_id != id);
            if deeper {
                recursive = true;
                break;
            }
            queue.extend(kids.iter().filter(|kid| index.contains_key(kid)));
        }
    }
    log::trace!(
        "listmount: {} mounts, {} listing",
        infos.len(),
        if recursive {
            "recursive"
        } else {
            "children-only or flat"
        }
    );

    // A listing that leaves the root mount out: look for it among the
    // parents of the top mounts.
    let root = Path::new("/");
    if !infos.iter().any(|i| i.mnt_point.as_deref() == Some(root)) {
        let mut parents: Vec<u64> = infos
            .iter()
            .filter(|i| is_top(i, &index) && i.parent_id != i.mnt_id)
            .map(|i| i.parent_id)
            .collect();
        parents.sort_unstable();
        parents.dedup();
        for p in parents {
            if let Some(mut info) = stat(p)? {
                if info.mnt_point.as_deref() == Some(root) {
                    info.mnt_id = p;
                    index.insert(p, infos.len());
                    infos.push(info);
                    break;
                }
            }
        }
    }
    Ok(infos)
}

/// Turns statmount answers into entries, in ascending unique-id order, with
/// the fields normalised to what mountinfo shows.
fn entries_from_statmount(mut infos: Vec<StatmountInfo>) -> Vec<MountEntry> {
    infos.sort_by_key(|i| i.mnt_id);
    let opts_bit = u64::from(k::STATMOUNT_MNT_OPTS);
    // The kernel omits STATMOUNT_MNT_OPTS for a mount without options, so
    // "supported" has to be learnt from the supported mask or another mount.
    let opts_supported = infos
        .iter()
        .any(|i| i.mask & opts_bit != 0 || i.supported_mask & opts_bit != 0);
    let mut entries: Vec<MountEntry> = Vec::with_capacity(infos.len());
    let mut by_old_id: HashMap<u64, usize> = HashMap::new();
    for info in &infos {
        let Some(entry) = entry_from_statmount(info, opts_supported) else {
            log::debug!("statmount: mount {} skipped: {info:?}", info.mnt_id);
            continue;
        };
        // A 32-bit id reused while the table was read: keep the newer mount.
        match by_old_id.get(&entry.id) {
            Some(&at) => entries[at] = entry,
            None => {
                by_old_id.insert(entry.id, entries.len());
                entries.push(entry);
            }
        }
    }
    entries
}

/// The table the statmount backend makes of these answers, without any
/// system call (cargo feature `test-hooks`, for tests and fuzzing).
#[cfg(feature = "test-hooks")]
pub(crate) fn table_from_statmount(infos: Vec<StatmountInfo>) -> Result<MountTable> {
    MountTable::from_entries(entries_from_statmount(infos), Backend::Statmount)
}

fn entry_from_statmount(i: &StatmountInfo, opts_supported: bool) -> Option<MountEntry> {
    if !i.has(k::STATMOUNT_MNT_BASIC) || !i.has(k::STATMOUNT_SB_BASIC) {
        return None;
    }
    // Mounts whose mount point the caller cannot reach have none (mountinfo
    // leaves them out too).
    let mount_point = i.mnt_point.clone().filter(|p| !p.as_os_str().is_empty())?;
    let root = i.mnt_root.clone()?;
    let mut fs_type = i.fs_type.clone()?;
    if let Some(sub) = i.fs_subtype.as_deref().filter(|s| !s.is_empty()) {
        fs_type = format!("{fs_type}.{sub}");
    }
    let flags = |bit: u32| i.propagation & u64::from(bit) != 0;
    let master = flags(k::MS_SLAVE).then_some(i.master).filter(|g| *g != 0);
    let propagation = PropagationState {
        shared: flags(k::MS_SHARED)
            .then_some(i.peer_group)
            .filter(|g| *g != 0),
        master,
        propagate_from: master
            .map(|_| i.propagate_from)
            .filter(|g| *g != 0 && Some(*g) != master),
        unbindable: flags(k::MS_UNBINDABLE),
    };
    let super_options = opts_supported.then(|| {
        let mut s = String::from(if i.sb_flags & k::MS_RDONLY != 0 {
            "ro"
        } else {
            "rw"
        });
        for (bit, word) in [
            (k::MS_SYNCHRONOUS, ",sync"),
            (k::MS_DIRSYNC, ",dirsync"),
            (k::MS_MANDLOCK, ",mand"),
            (k::MS_LAZYTIME, ",lazytime"),
        ] {
            if i.sb_flags & bit != 0 {
                s.push_str(word);
            }
        }
        if let Some(o) = i.mnt_opts.as_deref().filter(|o| !o.is_empty()) {
            s.push(',');
            s.push_str(o);
        }
        s
    });
    Some(MountEntry {
        id: u64::from(i.mnt_id_old),
        parent_id: u64::from(i.parent_id_old),
        unique_id: Some(i.mnt_id),
        mount_point,
        root,
        fs_type,
        source: i.sb_source.clone().map(normalize_source),
        attrs: MountAttr::from_kernel(i.mnt_attr),
        idmapped: i.mnt_attr & u64::from(k::MOUNT_ATTR_IDMAP) != 0,
        propagation,
        super_options,
        dev: (i.sb_dev_major, i.sb_dev_minor),
    })
}

/// Opens `/proc/PID/ns/mnt`, a magic link, through a private procfs
/// ([`Procfs`] opens without following links, so pathrs is asked directly;
/// the handle is not the process-wide cached one, and is closed on return).
fn open_mount_ns(pid: i32) -> Result<OwnedFd> {
    let sub = format!("{pid}/ns/mnt");
    let shown = || Path::new("/proc").join(&sub);
    let procfs = ProcfsHandleBuilder::new()
        .subset_pid(false)
        .build()
        .map_err(|e| Error::resolve("open private procfs", "/proc", e))?;
    let file = procfs
        .open_follow(
            ProcfsBase::ProcRoot,
            &sub,
            OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        )
        .map_err(|e| Error::resolve("open mount namespace", shown(), e))?;
    Ok(file.into())
}

fn read_statmount_pid(pid: Pid) -> Result<MountTable> {
    let raw = pid.as_raw_nonzero().get();
    let ns = open_mount_ns(raw)?;
    let worker = std::thread::Builder::new()
        .name("saferoot-mountns".into())
        .spawn(move || -> Result<Vec<MountEntry>> {
            // setns(CLONE_NEWNS) needs a thread that shares its root and
            // cwd with no other; it then moves only this thread.
            sm::unshare_fs_for_this_thread().map_err(|e| Error::os("unshare(CLONE_FS)", e))?;
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Mount),
            )
            .map_err(|e| Error::os(format!("setns(mount namespace of pid {raw})"), e))?;
            drop(ns);
            statmount_entries()
        })
        .map_err(|e| {
            Error::os(
                "spawn a thread to enter a mount namespace",
                Errno::from_io_error(&e).unwrap_or(Errno::AGAIN),
            )
        })?;
    let entries = match worker.join() {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    MountTable::from_entries(entries, Backend::Statmount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn line(s: &str) -> MountEntry {
        MountEntry::from_mountinfo_line(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test_log::test]
    fn parses_a_plain_line() {
        let e = line(
            "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        );
        assert_eq!(e.id, 36);
        assert_eq!(e.parent_id, 35);
        assert_eq!(e.dev, (98, 0));
        assert_eq!(e.root, Path::new("/mnt1"));
        assert_eq!(e.mount_point, Path::new("/mnt/parent"));
        assert_eq!(e.attrs, MountAttr::NOATIME);
        assert_eq!(e.propagation.master, Some(1));
        assert_eq!(e.propagation.kind(), crate::Propagation::Slave);
        assert_eq!(e.fs_type, "ext3");
        assert_eq!(e.source.as_deref(), Some("/dev/root"));
        assert_eq!(e.super_options.as_deref(), Some("rw,errors=continue"));
        assert_eq!(e.unique_id, None);
        assert!(!e.idmapped);
    }

    #[test_log::test]
    fn same_as_ignores_only_what_one_backend_cannot_know() {
        let mi = line("36 35 0:22 / /t rw,relatime shared:1 - tmpfs src rw,size=8k");
        // statmount on 6.8 to 6.12: a unique id, no source; before 6.11
        // no super options either.
        let mut st = mi.clone();
        st.unique_id = Some(0x8000_0001);
        st.source = None;
        assert!(st.same_as(&mi) && mi.same_as(&st));
        st.super_options = None;
        assert!(st.same_as(&mi) && mi.same_as(&st));
        // Known on both sides, they must agree.
        st.source = Some("other".into());
        assert!(!st.same_as(&mi));
        let mut other = mi.clone();
        other.super_options = Some("rw,size=16k".into());
        assert!(!other.same_as(&mi));
        let mut other = mi.clone();
        other.mount_point = PathBuf::from("/u");
        assert!(!other.same_as(&mi));
    }

    #[test_log::test]
    fn unescapes_octal_in_paths_source_and_type() {
        let e = line(
            r"40 27 0:50 /a\040b /tmp/with\040space\012and\011tab\134back rw,relatime - fuse.my\040fs my\040src rw,opt=a\054b",
        );
        assert_eq!(e.root, Path::new("/a b"));
        assert_eq!(e.mount_point, Path::new("/tmp/with space\nand\ttab\\back"));
        assert_eq!(e.fs_type, "fuse.my fs");
        assert_eq!(e.source.as_deref(), Some("my src"));
        // Super options keep their escapes, so commas still split them.
        assert_eq!(e.super_options.as_deref(), Some(r"rw,opt=a\054b"));
        // Not escapes: too short, not octal, out of byte range.
        let e = line(r"41 27 0:50 / /x\04\x\777\ rw - tmpfs none rw");
        assert_eq!(e.mount_point, Path::new(r"/x\04\x\777\"));
        // Non-UTF-8 bytes in paths are kept exactly.
        let raw = b"42 27 0:50 / /bin\xff\xfe rw - tmpfs none rw";
        let e = MountEntry::from_mountinfo_line(raw).unwrap();
        assert_eq!(
            e.mount_point.as_os_str().as_encoded_bytes(),
            b"/bin\xff\xfe"
        );
    }

    #[test_log::test]
    fn parses_optional_fields() {
        let e = line("50 27 0:51 / /a rw shared:7 master:3 propagate_from:2 unbindable x-future:9 - tmpfs t rw");
        assert_eq!(e.propagation.shared, Some(7));
        assert_eq!(e.propagation.master, Some(3));
        assert_eq!(e.propagation.propagate_from, Some(2));
        assert!(e.propagation.unbindable);
        assert_eq!(e.propagation.kind(), crate::Propagation::Shared);
        let e = line("51 27 0:51 / /b rw - tmpfs t rw");
        assert_eq!(e.propagation, PropagationState::default());
        assert_eq!(e.propagation.kind(), crate::Propagation::Private);
        let e = line("52 27 0:51 / /c rw unbindable - tmpfs t rw");
        assert_eq!(e.propagation.kind(), crate::Propagation::Unbindable);
    }

    #[test_log::test]
    fn per_mount_options_map_to_attrs() {
        let e = line(
            "60 27 0:52 / /a ro,nosuid,nodev,noexec,nodiratime,nosymfollow,idmapped - tmpfs t ro",
        );
        assert_eq!(
            e.attrs,
            MountAttr::RDONLY
                | MountAttr::NOSUID
                | MountAttr::NODEV
                | MountAttr::NOEXEC
                | MountAttr::NODIRATIME
                | MountAttr::NOSYMFOLLOW
                | MountAttr::STRICTATIME
        );
        assert!(e.idmapped);
        assert_eq!(
            line("61 27 0:52 / /a rw,relatime - tmpfs t rw").attrs,
            MountAttr::RELATIME
        );
        assert_eq!(
            line("62 27 0:52 / /a rw - tmpfs t rw").attrs,
            MountAttr::STRICTATIME
        );
        assert_eq!(
            line("63 27 0:52 / /a rw,noatime,relatime - tmpfs t rw").attrs,
            MountAttr::NOATIME
        );
        // Unknown words are ignored.
        assert_eq!(
            line("64 27 0:52 / /a rw,future,relatime - tmpfs t rw").attrs,
            MountAttr::RELATIME
        );
        // The same attrs as statmount's MOUNT_ATTR_* for the same mount.
        let kernel =
            (k::MOUNT_ATTR_RDONLY | k::MOUNT_ATTR_NOSUID | k::MOUNT_ATTR_STRICTATIME) as u64;
        assert_eq!(
            line("65 27 0:52 / /a ro,nosuid - tmpfs t rw").attrs,
            MountAttr::from_kernel(kernel)
        );
    }

    #[test_log::test]
    fn super_options_with_spaces_and_sources_spelt_none() {
        let e = line("70 27 0:53 / /a rw - weirdfs none rw,label=two words");
        assert_eq!(e.super_options.as_deref(), Some("rw,label=two words"));
        assert_eq!(e.source.as_deref(), Some("none"));
        let e = line("71 27 0:53 / /a rw - tmpfs  rw");
        assert_eq!(
            e.source.as_deref(),
            Some("none"),
            "an empty source reads as none"
        );
    }

    #[test_log::test]
    fn malformed_lines_are_typed_errors() {
        for bad in [
            "",
            "garbage",
            "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 ext3 /dev/root rw",
            "x 35 98:0 / /a rw - ext3 /dev/root rw",
            "36 -1 98:0 / /a rw - ext3 /dev/root rw",
            "36 35 98 / /a rw - ext3 /dev/root rw",
            "36 35 98:x / /a rw - ext3 /dev/root rw",
            "36 35 98:99999999999 / /a rw - ext3 /dev/root rw",
            "36 35 98:0 / /a - ext3 /dev/root rw x y",
            "36 35 98:0 / /a rw - ext3",
            "36 35 98:0 / /a rw - ext3 /dev/root",
            "36 35 98:0 / /a nosuid - ext3 /dev/root rw",
            "36 35 98:0 / /a rw,,nodev - ext3 /dev/root rw",
            "36 35 98:0 / /a rw shared:x - ext3 /dev/root rw",
            "36 35 98:0 / /a rw master: - ext3 /dev/root rw",
            "36 35 98:0 / /a rw shared:0 - ext3 /dev/root rw",
            "36 35 98:0 / /a rw - ext3 /dev/root errors=continue",
            "36 35 98:0 / /a rw  - ext3 /dev/root rw",
            "36 35 98:0  /a rw - ext3 /dev/root rw",
            "36 35 98:0 / /a rw -  /dev/root rw",
        ] {
            match MountEntry::from_mountinfo_line(bad.as_bytes()) {
                Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}"),
                Ok(e) => panic!("{bad:?} parsed as {e:?}"),
            }
        }
    }

    #[test_log::test]
    fn table_errors_name_the_line() {
        let text =
            b"1 1 0:1 / / rw - rootfs rootfs rw\n\n2 1 0:2 / /a rw - tmpfs t rw\nbroken line\n";
        let e = MountTable::parse_mountinfo(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("line 4"), "{e}");
        let dup = b"1 1 0:1 / / rw - rootfs rootfs rw\n1 1 0:2 / /a rw - tmpfs t rw\n";
        let e = MountTable::parse_mountinfo(dup).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    const TREE: &str = "\
20 1 0:1 / / rw - ext4 /dev/root rw
21 20 0:2 / /proc rw,nosuid - proc proc rw
22 20 0:3 / /sys rw - sysfs sysfs rw
23 22 0:4 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
24 20 0:5 / /mnt rw - tmpfs a rw
25 24 0:6 / /mnt rw - tmpfs b rw
26 25 0:7 / /mnt rw - tmpfs c rw
27 20 0:8 / /data/x rw - tmpfs hidden rw
28 20 0:9 / /data rw - tmpfs over rw
29 28 0:10 / /data/x rw - tmpfs shown rw
30 24 0:11 / /mnt/sub rw - tmpfs under-b rw
";

    fn tree() -> MountTable {
        MountTable::parse_mountinfo(TREE.as_bytes()).unwrap()
    }

    fn ids<'a>(v: impl IntoIterator<Item = &'a MountEntry>) -> Vec<u64> {
        v.into_iter().map(|e| e.id).collect()
    }

    #[test_log::test]
    fn lookups_children_and_subtrees() {
        let t = tree();
        assert_eq!(t.len(), 11);
        assert!(!t.is_empty());
        assert_eq!(t.backend(), Backend::Mountinfo);
        assert_eq!(
            t.get(23).map(|e| e.mount_point.as_path()),
            Some(Path::new("/sys/fs/cgroup"))
        );
        assert!(t.get(99).is_none());
        assert_eq!(ids(t.children(20)), vec![21, 22, 24, 27, 28]);
        assert_eq!(ids(t.children(23)), Vec::<u64>::new());
        assert_eq!(ids(t.subtree(22)), vec![22, 23]);
        assert_eq!(ids(t.subtree(24)), vec![24, 25, 26, 30]);
        assert_eq!(t.subtree(20).len(), 11);
        assert!(t.subtree(99).is_empty());
        assert_eq!(ids(&t), ids(t.iter()));
        assert_eq!(t.entries().len(), 11);
    }

    #[test_log::test]
    fn find_by_mount_point_takes_the_visible_top() {
        let t = tree();
        // Three tmpfs stacked on /mnt: the last one is on top.
        assert_eq!(t.find_by_mount_point("/mnt").map(|e| e.id), Some(26));
        assert_eq!(t.find_by_mount_point("/mnt/").map(|e| e.id), Some(26));
        // /data/x exists twice: under / (hidden by /data) and under /data.
        assert_eq!(t.find_by_mount_point("/data/x").map(|e| e.id), Some(29));
        // /mnt/sub sits on the bottom /mnt, which the stack covers: a
        // lookup of /mnt/sub ends in the top tmpfs, not on it.
        assert!(t.find_by_mount_point("/mnt/sub").is_none());
        assert_eq!(ids(t.children(24)), vec![25, 30]);
        assert_eq!(t.find_by_mount_point("/").map(|e| e.id), Some(20));
        assert!(t.find_by_mount_point("/nowhere").is_none());
    }

    #[test_log::test]
    fn parent_cycles_do_not_hang() {
        let t =
            MountTable::parse_mountinfo(b"1 2 0:1 / /a rw - t t rw\n2 1 0:1 / /a/b rw - t t rw\n")
                .unwrap();
        assert_eq!(t.subtree(1).len(), 2);
        assert!(t.find_by_mount_point("/a").is_none());
    }

    /// A fake kernel: mounts (unique id, parent, mount point) and one of
    /// the listmount semantics, counting calls.
    struct Fake {
        mounts: Vec<(u64, u64, &'static str)>,
        recursive: bool,
        root_in_listing: bool,
        lists: Cell<usize>,
        stats: Cell<usize>,
    }

    impl Fake {
        fn new(
            mounts: Vec<(u64, u64, &'static str)>,
            recursive: bool,
            root_in_listing: bool,
        ) -> Fake {
            Fake {
                mounts,
                recursive,
                root_in_listing,
                lists: Cell::new(0),
                stats: Cell::new(0),
            }
        }

        fn below(&self, id: u64, out: &mut Vec<u64>) {
            for m in &self.mounts {
                if m.1 == id && m.0 != id {
                    out.push(m.0);
                    if self.recursive {
                        self.below(m.0, out);
                    }
                }
            }
        }

        fn list(&self, parent: Option<u64>) -> Result<Option<Vec<u64>>> {
            self.lists.set(self.lists.get() + 1);
            let root = self.mounts.iter().find(|m| m.2 == "/").map(|m| m.0);
            let id = parent.or(root).unwrap_or(0);
            let mut out = Vec::new();
            if parent.is_none() && self.root_in_listing {
                out.push(id);
            }
            self.below(id, &mut out);
            out.sort_unstable();
            Ok(Some(out))
        }

        fn stat(&self, id: u64) -> Result<Option<StatmountInfo>> {
            self.stats.set(self.stats.get() + 1);
            Ok(self
                .mounts
                .iter()
                .find(|m| m.0 == id)
                .map(|m| StatmountInfo {
                    mask: u64::from(k::STATMOUNT_MNT_BASIC | k::STATMOUNT_MNT_POINT),
                    mnt_id: m.0,
                    parent_id: m.1,
                    mnt_point: Some(PathBuf::from(m.2)),
                    ..Default::default()
                }))
        }

        fn collect(&self) -> Vec<u64> {
            let mut got: Vec<u64> =
                collect_statmount(&mut |p| self.list(p), &mut |id| self.stat(id))
                    .unwrap()
                    .iter()
                    .map(|i| i.mnt_id)
                    .collect();
            got.sort_unstable();
            got
        }

        fn all(&self) -> Vec<u64> {
            let mut v: Vec<u64> = self.mounts.iter().map(|m| m.0).collect();
            v.sort_unstable();
            v
        }
    }

    /// A chain /, /a, /a/a, ... of `n` mounts, plus a hidden parent of /.
    fn chain(n: u64) -> Vec<(u64, u64, &'static str)> {
        let mut v = vec![(1000, 1, "/")];
        for i in 1..n {
            v.push((1000 + i, 1000 + i - 1, "/deep"));
        }
        v
    }

    /// `n` mounts directly on /.
    fn flat(n: u64) -> Vec<(u64, u64, &'static str)> {
        let mut v = vec![(1000, 1, "/")];
        for i in 1..n {
            v.push((1000 + i, 1000, "/flat"));
        }
        v
    }

    #[test_log::test]
    fn collect_is_linear_with_recursive_listmount() {
        let f = Fake::new(chain(300), true, true);
        assert_eq!(f.collect(), f.all());
        assert_eq!(
            f.lists.get(),
            1,
            "a deep recursive listing needs one listmount"
        );
        assert_eq!(f.stats.get(), 300);

        let f = Fake::new(flat(300), true, true);
        assert_eq!(f.collect(), f.all());
        assert!(f.lists.get() <= 301, "{} listmount calls", f.lists.get());
        assert!(f.stats.get() <= 301, "{} statmount calls", f.stats.get());
    }

    #[test_log::test]
    fn collect_is_complete_and_linear_with_children_only_listmount() {
        for root_in_listing in [true, false] {
            let f = Fake::new(chain(300), false, root_in_listing);
            assert_eq!(f.collect(), f.all(), "root listed: {root_in_listing}");
            assert!(f.lists.get() <= 302, "{} listmount calls", f.lists.get());
            assert!(f.stats.get() <= 302, "{} statmount calls", f.stats.get());

            let mut bushy = flat(50);
            for i in 0..200u64 {
                bushy.push((2000 + i, 1001 + i % 40, "/flat/sub"));
            }
            let f = Fake::new(bushy, false, root_in_listing);
            assert_eq!(f.collect(), f.all());
            assert!(f.lists.get() <= 252, "{} listmount calls", f.lists.get());
        }
        // The recursive semantics without the root in the listing (the
        // pre-release 6.8 variant) also finds the root.
        let f = Fake::new(chain(20), true, false);
        assert_eq!(f.collect(), f.all());
    }

    fn info(propagation: u32, peer: u64, master: u64, from: u64) -> StatmountInfo {
        StatmountInfo {
            mask: u64::from(
                k::STATMOUNT_MNT_BASIC
                    | k::STATMOUNT_SB_BASIC
                    | k::STATMOUNT_MNT_POINT
                    | k::STATMOUNT_MNT_ROOT
                    | k::STATMOUNT_FS_TYPE
                    | k::STATMOUNT_PROPAGATE_FROM,
            ),
            mnt_id: 5000,
            parent_id: 4000,
            mnt_id_old: 50,
            parent_id_old: 40,
            propagation: u64::from(propagation),
            peer_group: peer,
            master,
            propagate_from: from,
            fs_type: Some("fuse".into()),
            mnt_root: Some("/".into()),
            mnt_point: Some("/m".into()),
            ..Default::default()
        }
    }

    #[test_log::test]
    fn statmount_fields_normalise_like_mountinfo() {
        let e = entry_from_statmount(&info(k::MS_SHARED | k::MS_SLAVE, 7, 3, 3), false).unwrap();
        assert_eq!(e.propagation.shared, Some(7));
        assert_eq!(e.propagation.master, Some(3));
        assert_eq!(
            e.propagation.propagate_from, None,
            "equal to master: not shown"
        );
        let e = entry_from_statmount(&info(k::MS_SLAVE, 0, 3, 9), false).unwrap();
        assert_eq!(e.propagation.propagate_from, Some(9));
        let e = entry_from_statmount(&info(k::MS_PRIVATE, 0, 0, 0), false).unwrap();
        assert_eq!(e.propagation, PropagationState::default());
        assert_eq!(e.super_options, None);
        assert_eq!(e.source, None);
        assert_eq!((e.id, e.parent_id, e.unique_id), (50, 40, Some(5000)));

        let mut i = info(k::MS_UNBINDABLE, 0, 0, 0);
        i.sb_flags = k::MS_RDONLY | k::MS_LAZYTIME;
        i.fs_subtype = Some("sshfs".into());
        i.sb_source = Some(String::new());
        let e = entry_from_statmount(&i, true).unwrap();
        assert!(e.propagation.unbindable);
        assert_eq!(e.fs_type, "fuse.sshfs");
        assert_eq!(e.source.as_deref(), Some("none"));
        assert_eq!(e.super_options.as_deref(), Some("ro,lazytime"));
        i.mnt_opts = Some("user_id=0".into());
        let e = entry_from_statmount(&i, true).unwrap();
        assert_eq!(e.super_options.as_deref(), Some("ro,lazytime,user_id=0"));

        // Unreachable mounts have no mount point and are left out.
        i.mnt_point = None;
        assert!(entry_from_statmount(&i, true).is_none());
    }

    #[test_log::test]
    fn reused_old_ids_keep_the_newer_mount() {
        let mut a = info(k::MS_PRIVATE, 0, 0, 0);
        let mut b = a.clone();
        a.mnt_id = 10;
        b.mnt_id = 20;
        b.mnt_point = Some("/newer".into());
        let entries = entries_from_statmount(vec![b, a]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].mount_point, Path::new("/newer"));
    }

    #[test_log::test]
    fn both_backends_read_this_namespace() {
        // Read-only, in the process's own namespace; the integration tests
        // compare the backends mount by mount in namespaces of their own.
        let mi = MountTable::read_with(Backend::Mountinfo).unwrap();
        assert_eq!(mi.backend(), Backend::Mountinfo);
        assert!(mi.find_by_mount_point("/").is_some(), "no / in {mi:#?}");
        assert!(
            features::has(Feature::Statmount),
            "statmount missing on this kernel"
        );
        let st = MountTable::read_with(Backend::Statmount).unwrap();
        assert_eq!(st.backend(), Backend::Statmount);
        assert!(st.iter().all(|e| e.unique_id.is_some()));
        let auto = MountTable::read().unwrap();
        assert_eq!(auto.backend(), Backend::Statmount);
        let root = st.find_by_mount_point("/").unwrap();
        assert_eq!(Some(root.id), mi.find_by_mount_point("/").map(|e| e.id));
    }
}
