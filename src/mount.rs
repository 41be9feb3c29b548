//! Detached mounts: made, configured, then attached onto an fd.
//!
//! A [`Mount`] is a mount fd that is not yet part of any mount table (a
//! "detached" mount). It is made either from a filesystem
//! ([`Mount::fs`] → `fsopen`, `fsconfig`, `fsmount`) or by cloning an
//! existing tree ([`Mount::clone_tree`] → `open_tree(OPEN_TREE_CLONE)`). Its
//! attributes and propagation are set with `mount_setattr` while nobody can
//! see it, and only then is it attached with `move_mount` onto a [`Handle`]
//! (`MOVE_MOUNT_T_EMPTY_PATH`): the target is an fd, never a path that could
//! be swapped for a symlink between check and use.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use linux_raw_sys::general as k;
use rustix::fs::{FileType, StatVfsMountFlags};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen,
    move_mount, open_tree, unmount, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use crate::features::{self, Feature};
use crate::path::{check_in_root_path, split_parent, Handle, Root};
use crate::sys::{self, MountAttrArgs};
use crate::{Error, MountAttr, Propagation, Result};

/// One `fsconfig` parameter.
enum FsParam {
    Flag(String),
    String(String, String),
    /// A parameter whose value is an open file (`FSCONFIG_SET_FD`); the
    /// string is what the file stands for, for messages.
    Fd(String, OwnedFd, String),
}

impl fmt::Debug for FsParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsParam::Flag(k) => f.write_str(k),
            FsParam::String(k, v) => write!(f, "{k}={v}"),
            FsParam::Fd(k, _, what) => write!(f, "{k}=<fd of {what}>"),
        }
    }
}

/// Splits a mount data string such as `mode=755,size=65536k,newinstance`
/// into parameters: `key=value` pairs and bare flags. Empty items (from
/// `a,,b` or a trailing comma) are refused, as are NUL bytes.
pub fn parse_data(data: &str) -> Result<Vec<(String, Option<String>)>> {
    if data.contains('\0') {
        return Err(Error::invalid(
            "parse mount data",
            "mount data contains a NUL byte",
        ));
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    data.split(',')
        .map(|item| {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (item, None),
            };
            if key.is_empty() {
                return Err(Error::invalid(
                    "parse mount data",
                    format!("empty option name in {data:?}"),
                ));
            }
            Ok((key.to_string(), value))
        })
        .collect()
}

/// Builds a new filesystem instance; see [`Mount::fs`].
#[derive(Debug)]
#[must_use = "a builder does nothing until .mount() is called"]
pub struct FsBuilder {
    fstype: String,
    params: Vec<FsParam>,
    attrs: MountAttr,
    error: Option<Error>,
}

impl FsBuilder {
    /// Sets the `source` parameter (the device, or a name shown in the mount
    /// table for virtual filesystems).
    pub fn source(self, source: impl Into<String>) -> Self {
        self.string("source", source)
    }

    /// Adds a flag parameter, e.g. `newinstance` for devpts.
    pub fn flag(mut self, key: impl Into<String>) -> Self {
        self.params.push(FsParam::Flag(key.into()));
        self
    }

    /// Adds a string parameter, e.g. `size` = `64k`.
    pub fn string(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push(FsParam::String(key.into(), value.into()));
        self
    }

    /// Adds a parameter whose value is an open file (`fsconfig`
    /// `FSCONFIG_SET_FD`): for overlayfs, a layer directory as `lowerdir+`,
    /// `datadir+`, `upperdir` or `workdir` (Linux 6.13), so that the kernel
    /// looks no path up. The fd must be opened for real (not `O_PATH`): the
    /// kernel refuses `O_PATH` files here. `what` names it in messages.
    pub fn fd(mut self, key: impl Into<String>, fd: OwnedFd, what: impl Into<String>) -> Self {
        self.params.push(FsParam::Fd(key.into(), fd, what.into()));
        self
    }

    /// Adds every parameter of a comma-separated data string such as
    /// `mode=755,size=65536k,newinstance`. A malformed string makes
    /// [`mount`](Self::mount) fail.
    pub fn data(mut self, data: &str) -> Self {
        match parse_data(data) {
            Ok(items) => {
                for (key, value) in items {
                    self.params.push(match value {
                        Some(v) => FsParam::String(key, v),
                        None => FsParam::Flag(key),
                    });
                }
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Mount attributes given to `fsmount`, so that the mount exists with
    /// them from its first moment.
    pub fn attrs(mut self, attrs: MountAttr) -> Self {
        self.attrs = attrs;
        self
    }

    /// Creates the filesystem and returns it as a detached mount.
    ///
    /// An unknown filesystem type or a parameter the filesystem refuses is
    /// [`crate::ErrorKind::InvalidInput`], with the
    /// kernel's own message where it gave one.
    pub fn mount(self) -> Result<Mount> {
        let what = describe(&self.fstype, &self.params);
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.fstype.is_empty() || self.fstype.contains(['\0', ',', ' ', '/']) {
            return Err(Error::invalid(
                "fsopen",
                format!("{:?} is not a filesystem type name", self.fstype),
            ));
        }
        if self.attrs.has_conflicting_atime() {
            return Err(Error::invalid(
                "fsmount",
                "more than one access-time policy",
            ));
        }
        features::require(Feature::MountApi)?;
        let fs = fsopen(self.fstype.as_str(), FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| {
            if e == Errno::NODEV {
                Error::invalid(
                    "fsopen",
                    format!("unknown filesystem type {:?}", self.fstype),
                )
            } else {
                Error::os(format!("fsopen({})", self.fstype), e)
            }
        })?;
        for p in &self.params {
            let r = match p {
                FsParam::Flag(key) => fsconfig_set_flag(&fs, key.as_str()),
                FsParam::String(key, value) => {
                    fsconfig_set_string(&fs, key.as_str(), value.as_str())
                }
                FsParam::Fd(key, fd, _) => fsconfig_set_fd(&fs, key.as_str(), fd.as_fd()),
            };
            if let Err(e) = r {
                let log = fs_log(&fs);
                return Err(if matches!(e, Errno::INVAL | Errno::OPNOTSUPP) {
                    Error::invalid(
                        format!("fsconfig({})", self.fstype),
                        format!("option {p:?} refused: {e}{log}"),
                    )
                } else {
                    Error::os(format!("fsconfig({}, {p:?}){log}", self.fstype), e)
                });
            }
        }
        if let Err(e) = fsconfig_create(&fs) {
            let log = fs_log(&fs);
            return Err(if e == Errno::INVAL {
                Error::invalid(format!("create {what}"), format!("{e}{log}"))
            } else {
                Error::os(format!("create {what}{log}"), e)
            });
        }
        let (set, _) = MountAttr::to_kernel(self.attrs, MountAttr::empty());
        let fd = fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::from_bits_retain(set as u32),
        )
        .map_err(|e| Error::os(format!("fsmount {what}"), e))?;
        log::debug!("made detached mount {what} with {}", self.attrs);
        Ok(Mount {
            fd,
            what,
            is_dir: OnceLock::from(true),
        })
    }
}

/// `fstype(param,param,...)`, for messages: written into one string (a
/// new filesystem is described on every mount, errors or not).
fn describe(fstype: &str, params: &[FsParam]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(fstype.len() + 2 + 24 * params.len());
    out.push_str(fstype);
    out.push('(');
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{p:?}");
    }
    out.push(')');
    out
}

/// The messages the kernel logged on a filesystem context (read(2) on the
/// fsopen fd), formatted for an error message.
fn fs_log(fs: &OwnedFd) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        match rustix::io::read(fs, &mut buf) {
            Ok(n) if n > 0 => {
                out.push_str(" [kernel: ");
                out.push_str(String::from_utf8_lossy(&buf[..n]).trim_end());
                out.push(']');
            }
            _ => break,
        }
    }
    out
}

/// A detached mount: an fd to a mount that is in no mount table yet.
///
/// Dropping it unmounts it (the kernel does, when the last fd goes).
#[derive(Debug)]
pub struct Mount {
    fd: OwnedFd,
    what: String,
    /// Whether the mount's root is a directory, once known (a new
    /// filesystem's root always is).
    is_dir: OnceLock<bool>,
}

impl Mount {
    /// Starts building a new instance of the filesystem `fstype` (`tmpfs`,
    /// `proc`, `sysfs`, `mqueue`, `devpts`, `cgroup2`, `overlay`, ...).
    pub fn fs(fstype: impl Into<String>) -> FsBuilder {
        FsBuilder {
            fstype: fstype.into(),
            params: Vec::new(),
            attrs: MountAttr::empty(),
            error: None,
        }
    }

    /// Clones the mount at the host path `source` (a bind mount), with the
    /// mounts below it for [`Scope::Tree`] (an `rbind`). `source` is the
    /// caller's host path and symlinks in it are followed; see
    /// [`clone_tree_nofollow`](Self::clone_tree_nofollow).
    pub fn clone_tree(source: impl AsRef<Path>, scope: Scope) -> Result<Mount> {
        Self::clone_path(source.as_ref(), scope, OpenTreeFlags::empty())
    }

    /// Like [`clone_tree`](Self::clone_tree), but a symlink as the last
    /// component of `source` is not followed (the symlink itself is bound).
    pub fn clone_tree_nofollow(source: impl AsRef<Path>, scope: Scope) -> Result<Mount> {
        Self::clone_path(source.as_ref(), scope, OpenTreeFlags::AT_SYMLINK_NOFOLLOW)
    }

    fn clone_path(source: &Path, scope: Scope, extra: OpenTreeFlags) -> Result<Mount> {
        let c = CString::new(source.as_os_str().as_bytes())
            .map_err(|_| Error::invalid_at("open_tree", source, "path contains a NUL byte"))?;
        if source.as_os_str().is_empty() {
            return Err(Error::invalid("open_tree", "empty source path"));
        }
        features::require(Feature::MountApi)?;
        let fd = open_tree(rustix::fs::CWD, c.as_c_str(), clone_flags(scope) | extra)
            .map_err(|e| Error::os_at("open_tree(clone)", source, e))?;
        log::debug!("cloned {} ({scope:?})", source.display());
        Ok(Mount {
            fd,
            what: format!("bind of {}", source.display()),
            is_dir: OnceLock::new(),
        })
    }

    /// Clones the mount at an fd (with the mounts below it for
    /// [`Scope::Tree`]): a [`Handle`], a [`Root`], an open file or
    /// directory, or another mount fd.
    pub fn clone_fd(source: impl AsFd, scope: Scope) -> Result<Mount> {
        features::require(Feature::MountApi)?;
        let fd = open_tree(
            source,
            c"",
            clone_flags(scope) | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| Error::os("open_tree(clone, fd)", e))?;
        Ok(Mount {
            fd,
            what: "bind of fd".into(),
            is_dir: OnceLock::new(),
        })
    }

    /// Clones `path` inside `root`, resolved without leaving it.
    pub fn clone_in_root(root: &Root, path: impl AsRef<Path>, scope: Scope) -> Result<Mount> {
        let path = path.as_ref();
        let h = root.resolve(path)?;
        let mut m = Self::clone_fd(&h, scope).map_err(|e| e.with_path(path))?;
        m.what = format!("bind of {} in root", path.display());
        Ok(m)
    }

    /// Adopts a mount fd made elsewhere (e.g. by `fsmount` or `open_tree`),
    /// unchecked: changes made through it act on whatever mount the fd is
    /// on, attached or not. [`from_detached_fd`](Self::from_detached_fd)
    /// refuses fds of live mounts.
    pub fn from_fd(fd: impl Into<OwnedFd>) -> Mount {
        Mount {
            fd: fd.into(),
            what: "mount fd".into(),
            is_dir: OnceLock::new(),
        }
    }

    /// Adopts a mount fd made elsewhere after checking that it is a
    /// *detached* mount: the root of a mount (`STATX_ATTR_MOUNT_ROOT`) that
    /// is not attached in the calling thread's mount namespace, as
    /// `fsmount` and `open_tree(OPEN_TREE_CLONE)` make them.
    ///
    /// [`from_fd`](Self::from_fd) takes any fd; attribute and propagation
    /// changes on an fd of a mount attached in the caller's namespace (such
    /// as `open_tree` without `OPEN_TREE_CLONE`, or an `O_PATH` open of a
    /// mount point) would change that live mount. This refuses such an fd
    /// with [`crate::ErrorKind::InvalidInput`], as well as an fd that is not the root
    /// of a mount. A mount attached in *another* namespace cannot be
    /// changed through the fd at all (`mount_setattr` and `move_mount`
    /// refuse mounts of other namespaces), so it passes the check but every
    /// change to it fails.
    ///
    /// Whether the mount is attached here is asked of the kernel by its
    /// unique id with `statmount` (Linux 6.8+: `ENOENT` means not in this
    /// namespace); older kernels have the calling thread's
    /// `/proc/thread-self/mountinfo` searched for its mount id.
    pub fn from_detached_fd(fd: impl Into<OwnedFd>) -> Result<Mount> {
        const OP: &str = "adopt a detached mount fd";
        let fd = fd.into();
        let unique = rustix::fs::StatxFlags::from_bits_retain(k::STATX_MNT_ID_UNIQUE);
        let ask = |flags| {
            rustix::fs::statx(&fd, c"", rustix::fs::AtFlags::EMPTY_PATH, flags)
                .map_err(|e| Error::os(format!("{OP}: statx"), e))
        };
        let st = ask(rustix::fs::StatxFlags::MNT_ID)?;
        let root_bit = rustix::fs::StatxAttributes::MOUNT_ROOT;
        if st.stx_attributes_mask.contains(root_bit) && !st.stx_attributes.contains(root_bit) {
            return Err(Error::invalid(
                OP,
                "the fd is not the root of a mount (give the fd fsmount or \
                 open_tree(OPEN_TREE_CLONE) returned)",
            ));
        }
        let mut here = None;
        if features::has(Feature::Statmount) {
            let st2 = ask(rustix::fs::StatxFlags::MNT_ID | unique)?;
            if st2.stx_mask & k::STATX_MNT_ID_UNIQUE != 0 {
                match sys::statmount::statmount(st2.stx_mnt_id, u64::from(k::STATMOUNT_MNT_BASIC)) {
                    Ok(_) => here = Some(true),
                    Err(Errno::NOENT) => here = Some(false),
                    Err(e) => log::debug!("{OP}: statmount: {e}; reading mountinfo"),
                }
            }
        }
        let here = match here {
            Some(h) => h,
            None => crate::MountTable::read_with(crate::mountinfo::Backend::Mountinfo)?
                .get(st.stx_mnt_id)
                .is_some(),
        };
        if here {
            return Err(Error::invalid(
                OP,
                "the fd is a mount attached in the caller's mount namespace, not a detached \
                 one: changing its attributes would change that live mount",
            ));
        }
        Ok(Mount {
            fd,
            what: "detached mount fd".into(),
            is_dir: OnceLock::new(),
        })
    }

    /// Gives up the mount fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// A short description of what this mount is, for logs and errors.
    pub fn description(&self) -> &str {
        &self.what
    }

    /// Sets `set` and clears `clear` on this mount only.
    pub fn set_attr(&self, set: MountAttr, clear: MountAttr) -> Result<()> {
        self.setattr(set, clear, None, Scope::Mount)
    }

    /// Sets `set` and clears `clear` on this mount and every mount below it.
    pub fn set_attr_recursive(&self, set: MountAttr, clear: MountAttr) -> Result<()> {
        self.setattr(set, clear, None, Scope::Tree)
    }

    /// Gives this mount (and, for [`Scope::Tree`], every mount below it)
    /// the propagation type `propagation`.
    pub fn set_propagation(&self, propagation: Propagation, scope: Scope) -> Result<()> {
        self.setattr(
            MountAttr::empty(),
            MountAttr::empty(),
            Some(propagation),
            scope,
        )
    }

    /// Makes this an idmapped mount (and, for [`Scope::Tree`], every
    /// mount below it) with the uid and gid maps of the user namespace
    /// `userns` (an fd to `/proc/PID/ns/user`). Only possible while the
    /// mount is detached and not yet idmapped, which is why
    /// [`AttachedMount`] has no such method.
    pub fn set_idmap(&self, userns: impl AsFd, scope: Scope) -> Result<()> {
        features::require(Feature::IdmappedMounts)?;
        let args = MountAttrArgs {
            attr_set: k::MOUNT_ATTR_IDMAP as u64,
            userns_fd: Some(userns.as_fd()),
            ..Default::default()
        };
        sys::mount_setattr(self.fd.as_fd(), c"", at_flags(scope == Scope::Tree), &args).map_err(
            |e| {
                // The kernel's answer for a filesystem without idmap support is
                // a bare EINVAL (tmpfs before Linux 6.3, for one).
                let hint = if e == Errno::INVAL {
                    " (the filesystem may not support idmapped mounts on this kernel)"
                } else {
                    ""
                };
                Error::os(format!("mount_setattr(idmap) on {}{hint}", self.what), e)
            },
        )
    }

    fn setattr(
        &self,
        set: MountAttr,
        clear: MountAttr,
        propagation: Option<Propagation>,
        scope: Scope,
    ) -> Result<()> {
        setattr_checked(self.fd.as_fd(), &self.what, set, clear, propagation, scope)
    }

    /// The per-mount attributes of this mount as the kernel reports them
    /// (`fstatvfs`): read-only, nosuid, nodev, noexec, the access-time
    /// policy, nodiratime and nosymfollow.
    pub fn attrs(&self) -> Result<MountAttr> {
        attrs_of(&self.fd).map_err(|e| Error::os(format!("fstatvfs {}", self.what), e))
    }

    /// Records whether the root of this mount is a directory, for a caller
    /// that has just looked at what it cloned ([`is_dir`](Self::is_dir)
    /// then asks nothing).
    pub(crate) fn known_dir(self, dir: bool) -> Mount {
        let _ = self.is_dir.set(dir);
        self
    }

    /// Whether the root of this mount is a directory (a bind of a file,
    /// or of a device node, is not). Asked of the kernel once.
    pub fn is_dir(&self) -> Result<bool> {
        if let Some(d) = self.is_dir.get() {
            return Ok(*d);
        }
        let st = rustix::fs::fstat(&self.fd)
            .map_err(|e| Error::os(format!("fstat {}", self.what), e))?;
        let d = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        Ok(*self.is_dir.get_or_init(|| d))
    }

    /// The root of this mount as a [`Root`], for resolving and creating
    /// paths inside it, and attaching mounts below it, while it is detached.
    pub fn root(&self) -> Result<Root> {
        let fd =
            crate::sys::dup_cloexec(self.fd.as_fd()).map_err(|e| Error::os("dup mount fd", e))?;
        Root::from_fd(fd)
    }

    /// Attaches the mount onto `target` (`move_mount` with
    /// `MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH`): usually a
    /// [`Handle`] from [`Root::resolve`], or any borrowed fd on the target
    /// inode. The target may be inside the caller's mount namespace or, on
    /// Linux 6.15 and later, inside another detached tree.
    ///
    /// # Errors
    ///
    /// An [`AttachError`], which gives the mount back, still detached
    /// ([`AttachError::into_mount`]); `?` turns it into an [`Error`].
    pub fn attach(self, target: impl AsFd) -> Result<AttachedMount, AttachError> {
        self.move_onto(target.as_fd(), MoveMountFlags::empty(), None)
    }

    /// Attaches the mount beneath the mount that is on top at `target`
    /// (`MOVE_MOUNT_BENEATH`, Linux 6.5): once the top mount is then
    /// detached, the new one is in its place, with no moment where neither
    /// is there. Errors as [`attach`](Self::attach).
    pub fn attach_beneath(self, target: impl AsFd) -> Result<AttachedMount, AttachError> {
        if let Err(error) = features::require(Feature::MoveMountBeneath) {
            return Err(AttachError { mount: self, error });
        }
        self.move_onto(target.as_fd(), MoveMountFlags::MOVE_MOUNT_BENEATH, None)
    }

    /// Resolves `path` in `root` and attaches the mount there. Unlike
    /// [`attach`](Self::attach), the mount remembers its parent directory and
    /// name, so that [`AttachedMount::detach`] works for file mounts too.
    /// Errors as [`attach`](Self::attach), with `path` recorded.
    pub fn attach_at(
        self,
        root: &Root,
        path: impl AsRef<Path>,
    ) -> Result<AttachedMount, AttachError> {
        let path = path.as_ref();
        let resolved = root.resolve(path).and_then(|target| {
            let parent = match split_parent("attach", path) {
                Ok((parent, name)) => Some((root.resolve(parent)?, name.as_os_str().to_owned())),
                Err(_) => None,
            };
            Ok((target, parent))
        });
        let (target, parent) = match resolved {
            Ok(v) => v,
            Err(error) => return Err(AttachError { mount: self, error }),
        };
        self.move_onto(target.as_fd(), MoveMountFlags::empty(), parent)
            .map_err(|e| e.with_path(path))
    }

    fn move_onto(
        self,
        target: BorrowedFd<'_>,
        extra: MoveMountFlags,
        parent: Option<(Handle, OsString)>,
    ) -> Result<AttachedMount, AttachError> {
        if let Err(error) = features::require(Feature::MountApi) {
            return Err(AttachError { mount: self, error });
        }
        if let Err(e) = move_mount(
            self.fd.as_fd(),
            c"",
            target,
            c"",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH
                | extra,
        ) {
            let error = Error::os(format!("move_mount {}", self.what), e);
            return Err(AttachError { mount: self, error });
        }
        log::debug!("attached {}", self.what);
        let is_dir = self.is_dir().unwrap_or(false);
        Ok(AttachedMount {
            fd: self.fd,
            what: self.what,
            is_dir,
            parent,
        })
    }
}

impl AsFd for Mount {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A failed [`Mount::attach`] (or [`Mount::attach_beneath`],
/// [`Mount::attach_at`]): why, and the mount, still detached, so the caller
/// can try elsewhere or drop it. Like [`std::ffi::NulError`] it hands the
/// input back ([`into_mount`](Self::into_mount)); `?` in a function that
/// returns [`crate::Result`] converts it into its [`Error`] (dropping the
/// mount).
#[derive(Debug)]
pub struct AttachError {
    mount: Mount,
    error: Error,
}

impl AttachError {
    /// Why the attach failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The mount, still detached.
    pub fn into_mount(self) -> Mount {
        self.mount
    }

    /// The mount and the error.
    pub fn into_parts(self) -> (Mount, Error) {
        (self.mount, self.error)
    }

    /// Records `path` in the error when it has none.
    pub(crate) fn with_path(mut self, p: impl AsRef<Path>) -> Self {
        self.error = self.error.with_path(p);
        self
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<AttachError> for Error {
    fn from(e: AttachError) -> Error {
        e.error
    }
}

fn clone_flags(scope: Scope) -> OpenTreeFlags {
    let mut f = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if scope == Scope::Tree {
        f |= OpenTreeFlags::AT_RECURSIVE;
    }
    f
}

/// Which mounts a change of attributes applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The mount the fd is on, alone.
    Mount,
    /// The mount the fd is on and every mount below it (`AT_RECURSIVE`).
    Tree,
}

impl Scope {
    /// [`Scope::Tree`] when `recursive` (an `r`-prefixed option), else
    /// [`Scope::Mount`].
    pub fn tree_if(recursive: bool) -> Scope {
        if recursive {
            Scope::Tree
        } else {
            Scope::Mount
        }
    }
}

/// Sets `set`, clears `clear` and, if given, changes the propagation of the
/// mount that `fd` is on (or of its whole tree), with `mount_setattr` on the
/// fd (`AT_EMPTY_PATH`). Works on attached and detached mounts alike; `fd`
/// may be a mount fd or any fd (`O_PATH` included) on the mount, such as
/// one of `/` to change the caller's whole tree.
pub fn change_attrs(
    fd: impl AsFd,
    set: MountAttr,
    clear: MountAttr,
    propagation: Option<Propagation>,
    scope: Scope,
) -> Result<()> {
    // No probe: a kernel without the call answers ENOSYS, which is
    // reported as the missing feature (probing here would cache the answer
    // before a test installs its ENOSYS filter).
    setattr_fd(
        fd.as_fd(),
        "the mount of an fd",
        set,
        clear,
        propagation,
        scope == Scope::Tree,
    )
    .map_err(|e| {
        if e.errno() == libc::ENOSYS {
            Error::unsupported(Feature::MountSetattr)
        } else {
            e
        }
    })
}

/// Refuses attribute changes that mean nothing, before any kernel feature
/// is looked at: bad input gets the same answer on every kernel.
fn check_attr_args(set: MountAttr, clear: MountAttr) -> Result<()> {
    if set.has_conflicting_atime() {
        return Err(Error::invalid(
            "mount_setattr",
            "more than one access-time policy",
        ));
    }
    if set.intersects(clear) {
        return Err(Error::invalid(
            "mount_setattr",
            format!(
                "the same attribute is both set and cleared: {}",
                set & clear
            ),
        ));
    }
    Ok(())
}

/// `mount_setattr` on a mount of saferoot's own (detached or attached):
/// the arguments checked first, then the feature, then the call.
fn setattr_checked(
    fd: BorrowedFd<'_>,
    what: &str,
    set: MountAttr,
    clear: MountAttr,
    propagation: Option<Propagation>,
    scope: Scope,
) -> Result<()> {
    check_attr_args(set, clear)?;
    features::require(Feature::MountSetattr)?;
    setattr_fd(fd, what, set, clear, propagation, scope == Scope::Tree)
}

fn setattr_fd(
    fd: BorrowedFd<'_>,
    what: &str,
    set: MountAttr,
    clear: MountAttr,
    propagation: Option<Propagation>,
    recursive: bool,
) -> Result<()> {
    check_attr_args(set, clear)?;
    let (attr_set, attr_clr) = MountAttr::to_kernel(set, clear);
    let args = MountAttrArgs {
        attr_set,
        attr_clr,
        propagation: propagation.map_or(0, Propagation::to_kernel),
        userns_fd: None,
    };
    sys::mount_setattr(fd, c"", at_flags(recursive), &args).map_err(|e| {
        Error::os(
            format!(
                "mount_setattr(set {set}, clear {clear}, propagation {:?}, recursive {recursive}) on {}",
                propagation.map(Propagation::name),
                what
            ),
            e
        )
    })?;
    log::debug!(
        "{}: set {set:?} clear {clear:?} propagation {propagation:?} recursive {recursive}",
        what
    );
    Ok(())
}

fn at_flags(recursive: bool) -> u32 {
    let mut f = k::AT_EMPTY_PATH;
    if recursive {
        f |= k::AT_RECURSIVE;
    }
    f
}

/// The per-mount attributes of the mount `fd` is on, from `fstatvfs`.
pub fn attrs_of(fd: impl AsFd) -> std::result::Result<MountAttr, Errno> {
    let st = rustix::fs::fstatvfs(fd)?;
    let f = st.f_flag;
    let mut a = MountAttr::empty();
    for (flag, attr) in [
        (StatVfsMountFlags::RDONLY, MountAttr::RDONLY),
        (StatVfsMountFlags::NOSUID, MountAttr::NOSUID),
        (StatVfsMountFlags::NODEV, MountAttr::NODEV),
        (StatVfsMountFlags::NOEXEC, MountAttr::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountAttr::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountAttr::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountAttr::RELATIME),
    ] {
        if f.contains(flag) {
            a |= attr;
        }
    }
    // ST_NOSYMFOLLOW (0x2000) is newer than rustix's flag list.
    if f.bits() & 0x2000 != 0 {
        a |= MountAttr::NOSYMFOLLOW;
    }
    if !a.intersects(MountAttr::NOATIME | MountAttr::RELATIME) {
        a |= MountAttr::STRICTATIME;
    }
    Ok(a)
}

/// A mount that has been attached. Holding it keeps an fd to the mount's
/// root, which [`detach`](Self::detach) uses to unmount exactly this mount.
#[derive(Debug)]
pub struct AttachedMount {
    fd: OwnedFd,
    what: String,
    is_dir: bool,
    parent: Option<(Handle, OsString)>,
}

impl AttachedMount {
    /// A short description of the mount.
    pub fn description(&self) -> &str {
        &self.what
    }

    /// The per-mount attributes as the kernel reports them.
    pub fn attrs(&self) -> Result<MountAttr> {
        attrs_of(&self.fd).map_err(|e| Error::os(format!("fstatvfs {}", self.what), e))
    }

    /// Sets `set` and clears `clear` on this mount only. The kernel allows
    /// this on attached mounts as on detached ones; configure a mount
    /// before attaching it where you can, so it is never visible with
    /// weaker attributes.
    pub fn set_attr(&self, set: MountAttr, clear: MountAttr) -> Result<()> {
        self.change(set, clear, None, Scope::Mount)
    }

    /// Sets `set` and clears `clear` on this mount and every mount below it.
    pub fn set_attr_recursive(&self, set: MountAttr, clear: MountAttr) -> Result<()> {
        self.change(set, clear, None, Scope::Tree)
    }

    /// Gives this mount (and, for [`Scope::Tree`], every mount below it)
    /// the propagation type `propagation`.
    pub fn set_propagation(&self, propagation: Propagation, scope: Scope) -> Result<()> {
        self.change(
            MountAttr::empty(),
            MountAttr::empty(),
            Some(propagation),
            scope,
        )
    }

    fn change(
        &self,
        set: MountAttr,
        clear: MountAttr,
        propagation: Option<Propagation>,
        scope: Scope,
    ) -> Result<()> {
        setattr_checked(self.fd.as_fd(), &self.what, set, clear, propagation, scope)
    }

    /// Keeps the mount and closes the fd.
    pub fn forget(self) {}

    /// Gives up the fd to the mount's root.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Unmounts this mount (lazily, `MNT_DETACH`), with everything mounted
    /// below it.
    ///
    /// A directory mount is unmounted through its own root fd (`fchdir`
    /// into it on a private helper thread, then `umount2(".")`), so no path
    /// is looked up. The kernel unmounts the topmost mount at that place:
    /// if something was mounted over this mount's root since, that goes. A file mount needs the parent directory and name that
    /// [`Mount::attach_at`] recorded.
    pub fn detach(self) -> Result<()> {
        if self.is_dir {
            return unmount_dir_fd(self.fd.as_fd())
                .map_err(|e| Error::os(format!("umount2(MNT_DETACH) {}", self.what), e));
        }
        match &self.parent {
            Some((parent, name)) => {
                unmount_name(parent, name, Some(&self.fd)).map_err(|e| e.with_path(Path::new(name)))
            }
            None => Err(Error::invalid(
                "detach",
                "a file mount attached by handle can only be detached with mount::unmount",
            )),
        }
    }
}

impl AsFd for AttachedMount {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Runs `f` on a helper thread whose working directory is `dir`; the
/// caller's working directory is untouched (the helper unshares its fs
/// struct first). The helper is in the caller's mount namespace.
pub(crate) fn with_cwd<R: Send>(
    dir: BorrowedFd<'_>,
    f: impl FnOnce() -> std::result::Result<R, Errno> + Send,
) -> std::result::Result<R, Errno> {
    crate::fsthread::on_fs_thread(|| {
        rustix::process::fchdir(dir)?;
        f()
    })?
}

/// Unmounts the mount whose root `dir` is, through `fchdir` + `umount2(".")`.
fn unmount_dir_fd(dir: BorrowedFd<'_>) -> std::result::Result<(), Errno> {
    with_cwd(dir, || unmount(c".", UnmountFlags::DETACH))
}

/// Unmounts the mount at `name` in the directory `parent`, not following a
/// symlink there. When `expect` is given, the mount found must be that one.
fn unmount_name(parent: &Handle, name: &OsStr, expect: Option<&OwnedFd>) -> Result<()> {
    let cname = CString::new(name.as_bytes())
        .map_err(|_| Error::invalid("unmount", "name contains a NUL byte"))?;
    if let Some(fd) = expect {
        let want = mount_id_of(fd).map_err(|e| Error::os("statx mount id", e))?;
        let found = rustix::fs::statx(
            parent,
            cname.as_c_str(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            rustix::fs::StatxFlags::MNT_ID,
        )
        .map_err(|e| Error::os("statx mount point", e))?
        .stx_mnt_id;
        if want != found {
            return Err(Error::unsafe_at(
                "unmount",
                PathBuf::from(name),
                "the mount at this name is not the one that was attached",
            ));
        }
    }
    with_cwd(parent.as_fd(), || {
        unmount(
            cname.as_c_str(),
            UnmountFlags::DETACH | UnmountFlags::NOFOLLOW,
        )
    })
    .map_err(|e| Error::os("umount2(MNT_DETACH|UMOUNT_NOFOLLOW)", e))
}

fn mount_id_of(fd: impl AsFd) -> std::result::Result<u64, Errno> {
    Ok(rustix::fs::statx(
        fd,
        c"",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::MNT_ID,
    )?
    .stx_mnt_id)
}

/// Unmounts (lazily) the topmost mount at `path` inside `root`.
///
/// For a directory, the mount root is resolved and unmounted through its fd;
/// for a file, through its parent directory's fd and its name, without
/// following a symlink. No path the container could redirect is given to
/// `umount2`.
pub fn unmount_in_root(root: &Root, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    check_in_root_path("unmount", path)?;
    let h = root.resolve_nofollow(path)?;
    if h.is_dir().map_err(|e| e.with_path(path))? {
        return unmount_dir_fd(h.as_fd()).map_err(|e| Error::os_at("umount2(MNT_DETACH)", path, e));
    }
    let (parent, name) = split_parent("unmount", path)?;
    let parent = root.resolve(parent)?;
    unmount_name(&parent, name.as_os_str(), None).map_err(|e| e.with_path(path))
}

/// Unmounts (lazily) the mount whose root directory `handle` refers to.
/// `handle` must be the root of a mount (as a handle resolved to a mount
/// point is); otherwise the kernel answers `EINVAL`.
pub fn unmount_handle(handle: &Handle) -> Result<()> {
    unmount_dir_fd(handle.as_fd()).map_err(|e| Error::os("umount2(MNT_DETACH) on handle", e))
}
