//! Confined paths: a [`Root`] directory fd and [`Handle`]s to inodes inside it.
//!
//! Every lookup goes through pathrs, which uses `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`: `..`, absolute symlinks and symlink chains are all
//! interpreted relative to the root, and magic links (`/proc/self/root`,
//! `/proc/self/fd/N`) are refused. A [`Handle`] is held as an fd; operations
//! on an inode we already hold never resolve its path again.
//!
//! In-root paths given to these functions must be absolute (they are read
//! relative to the root, but a relative path is almost always a caller's bug:
//! OCI requires absolute mount destinations) and must not contain NUL bytes.

use std::fs::Permissions;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;
use rustix::mount::{open_tree, OpenTreeFlags};

use crate::{Error, Result};

/// The longest in-root path accepted, as the kernel's `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// Checks that `path` is a usable in-root path: absolute, no NUL byte, not
/// longer than `PATH_MAX`.
pub(crate) fn check_in_root_path(op: &'static str, path: &Path) -> Result<()> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(Error::invalid_at(op, path, "path contains a NUL byte"));
    }
    if !path.is_absolute() {
        return Err(Error::invalid_at(
            op,
            path,
            "path inside the root must be absolute",
        ));
    }
    if bytes.len() >= PATH_MAX {
        return Err(Error::invalid_at(op, path, "path is longer than PATH_MAX"));
    }
    Ok(())
}

/// Whether the in-root path `path` (absolute) names the root itself: `/`,
/// possibly with more slashes and `.` components.
fn is_root_path(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::CurDir))
}

/// Splits an in-root path into its parent and final component, refusing
/// paths whose final component is `/`, `.` or `..`.
pub(crate) fn split_parent<'p>(op: &'static str, path: &'p Path) -> Result<(&'p Path, &'p Path)> {
    match (path.parent(), path.components().next_back()) {
        (Some(parent), Some(Component::Normal(name))) => Ok((parent, Path::new(name))),
        _ => Err(Error::invalid_at(
            op,
            path,
            "path must end in a name (not /, . or ..)",
        )),
    }
}

/// The type of a special file for [`Root::mknod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A character device with the given major and minor numbers.
    Char {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device with the given major and minor numbers.
    Block {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// The largest major number a device node can have: the kernel encodes
/// device numbers for `mknod` in 32 bits, 12 of them for the major.
pub const MAX_MAJOR: u32 = (1 << 12) - 1;

/// The largest minor number a device node can have (20 bits).
pub const MAX_MINOR: u32 = (1 << 20) - 1;

impl NodeKind {
    /// Checks that the device numbers fit the kernel's encoding
    /// ([`MAX_MAJOR`], [`MAX_MINOR`]); the reason when they do not.
    pub fn check(self) -> std::result::Result<(), String> {
        match self {
            NodeKind::Char { major, minor } | NodeKind::Block { major, minor } => {
                if major > MAX_MAJOR {
                    return Err(format!(
                        "major number {major} is outside 0..={MAX_MAJOR} (12 bits, what the \
                         kernel's device numbers can hold)"
                    ));
                }
                if minor > MAX_MINOR {
                    return Err(format!(
                        "minor number {minor} is outside 0..={MAX_MINOR} (20 bits, what the \
                         kernel's device numbers can hold)"
                    ));
                }
                Ok(())
            }
            NodeKind::Fifo => Ok(()),
        }
    }

    /// The file type a node of this kind has.
    pub fn file_type(self) -> FileType {
        match self {
            NodeKind::Char { .. } => FileType::CharacterDevice,
            NodeKind::Block { .. } => FileType::BlockDevice,
            NodeKind::Fifo => FileType::Fifo,
        }
    }

    /// The device number, or 0 for a fifo.
    pub fn rdev(self) -> u64 {
        match self {
            NodeKind::Char { major, minor } | NodeKind::Block { major, minor } => {
                rustix::fs::makedev(major, minor)
            }
            NodeKind::Fifo => 0,
        }
    }
}

/// What [`Handle::stat`] reports about an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleStat {
    /// The file type.
    pub file_type: FileType,
    /// The permission bits (with set-id and sticky bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The device number, for device nodes.
    pub rdev: u64,
    /// The device the inode lives on.
    pub dev: u64,
    /// The inode number.
    pub ino: u64,
    /// The id of the mount the inode was reached through, as in
    /// `/proc/self/mountinfo` (`STATX_MNT_ID`).
    pub mount_id: u64,
}

/// An fd to an inode inside a [`Root`], usually opened `O_PATH`.
///
/// A handle is what mounts are attached onto: the kernel is given the fd,
/// never the path it was found at.
#[derive(Debug)]
pub struct Handle {
    fd: OwnedFd,
}

impl Handle {
    /// Wraps an fd. The caller vouches that it refers to the inode meant.
    pub fn from_fd(fd: impl Into<OwnedFd>) -> Handle {
        Handle { fd: fd.into() }
    }

    /// Gives up the fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Another fd to the same inode (`O_CLOEXEC`).
    pub fn try_clone(&self) -> Result<Handle> {
        let fd =
            crate::sys::dup_cloexec(self.fd.as_fd()).map_err(|e| Error::os("dup handle", e))?;
        Ok(Handle { fd })
    }

    /// Type, mode, owner, device numbers and mount id of the inode.
    pub fn stat(&self) -> Result<HandleStat> {
        let st = rustix::fs::statx(
            &self.fd,
            c"",
            rustix::fs::AtFlags::EMPTY_PATH,
            StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
        )
        .map_err(|e| Error::os("statx handle", e))?;
        Ok(HandleStat {
            file_type: FileType::from_raw_mode(st.stx_mode as _),
            mode: u32::from(st.stx_mode) & 0o7777,
            uid: st.stx_uid,
            gid: st.stx_gid,
            rdev: rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor),
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            mount_id: st.stx_mnt_id,
        })
    }

    /// The file type of the inode.
    pub fn file_type(&self) -> Result<FileType> {
        Ok(self.stat()?.file_type)
    }

    /// Whether the inode is a directory.
    pub fn is_dir(&self) -> Result<bool> {
        Ok(self.file_type()? == FileType::Directory)
    }

    /// [`reopen`](Self::reopen) through `procfs` (a private procfs the
    /// caller has at hand, such as the one of
    /// [`crate::rootfs::AssembleOptions::procfs`]): on a fresh instance one
    /// `openat` of the fd's magic link, without pathrs's checks of its own
    /// cached procfs (tens of system calls). A symlink handle is refused
    /// with `ELOOP`, as pathrs refuses it; `O_NOFOLLOW` is dropped (the
    /// handle is not a symlink, and the magic link must be followed).
    pub fn reopen_with(
        &self,
        procfs: &crate::procfs::Procfs,
        flags: rustix::fs::OFlags,
    ) -> Result<std::fs::File> {
        if self.file_type()? == FileType::Symlink {
            return Err(Error::os("reopen handle: a symlink", Errno::LOOP));
        }
        procfs.reopen_fd(self.fd.as_fd(), flags - rustix::fs::OFlags::NOFOLLOW)
    }

    /// Opens the inode itself with `flags` (e.g. `O_RDONLY`), safely: pathrs
    /// reopens through its private procfs and refuses magic-link tricks.
    /// `O_CLOEXEC` is always added.
    pub fn reopen(&self, flags: rustix::fs::OFlags) -> Result<std::fs::File> {
        let flags = pathrs::flags::OpenFlags::from_bits_retain(
            (flags | rustix::fs::OFlags::CLOEXEC).bits() as _,
        );
        crate::error::pathrs_call("reopen handle", "", || {
            pathrs::HandleRef::from_fd(self.fd.as_fd()).reopen(flags)
        })
    }
}

impl AsFd for Handle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Handle> for OwnedFd {
    fn from(h: Handle) -> OwnedFd {
        h.fd
    }
}

/// A directory that confines path resolution: the root of a container
/// filesystem, or any other tree that must not be escaped.
#[derive(Debug)]
pub struct Root {
    inner: pathrs::Root,
    /// For the root of a tree being assembled: the mount id and inode of
    /// the rootfs directory as the caller's namespace has it, which host
    /// paths are compared with (see `rootfs::sources`).
    host_identity: Option<(u64, u64)>,
    /// `(dev, ino, mount id)` of the root directory, once asked for: the
    /// fd never moves, so neither do they.
    identity: OnceLock<(u64, u64, u64)>,
}

impl Root {
    /// Opens the host directory `path` as a root (`O_PATH | O_DIRECTORY`).
    ///
    /// `path` is a host path chosen by the caller and is resolved normally;
    /// everything below it is then confined.
    pub fn open(path: impl AsRef<Path>) -> Result<Root> {
        let path = path.as_ref();
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(Error::invalid_at(
                "open root",
                path,
                "path contains a NUL byte",
            ));
        }
        let inner = crate::error::pathrs_call("open root", path, || pathrs::Root::open(path))?;
        Ok(Root {
            inner,
            host_identity: None,
            identity: OnceLock::new(),
        })
    }

    /// Uses `fd`, which must be a directory (an `O_PATH` fd is fine), as a
    /// root. The fd may also be a detached mount from
    /// [`Mount`](crate::Mount): resolution then happens inside the detached
    /// tree.
    pub fn from_fd(fd: impl Into<OwnedFd>) -> Result<Root> {
        let fd = fd.into();
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::os("fstat root", e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(Error::invalid("open root", "root fd is not a directory"));
        }
        Ok(Root {
            inner: pathrs::Root::from_fd(fd),
            host_identity: None,
            identity: OnceLock::new(),
        })
    }

    /// Another fd to the same root.
    pub fn try_clone(&self) -> Result<Root> {
        let fd = crate::sys::dup_cloexec(self.inner.as_fd())
            .map_err(|e| Error::os_at("clone root", "/", e))?;
        Ok(Root {
            inner: pathrs::Root::from_fd(fd),
            host_identity: self.host_identity,
            identity: self.identity.clone(),
        })
    }

    /// Records where this root's tree came from (crate-private): the mount
    /// id and inode of the rootfs directory in the caller's namespace.
    pub(crate) fn set_host_identity(&mut self, id: (u64, u64)) {
        self.host_identity = Some(id);
    }

    /// `(dev, ino, mount id)` of the root directory (asked of the kernel
    /// once per `Root`).
    pub(crate) fn identity(&self) -> Result<(u64, u64, u64)> {
        if let Some(id) = self.identity.get() {
            return Ok(*id);
        }
        let id = identity(self).map_err(|e| Error::os_at("statx", "/", e))?;
        Ok(*self.identity.get_or_init(|| id))
    }

    /// See [`set_host_identity`](Self::set_host_identity).
    pub(crate) fn host_identity(&self) -> Option<(u64, u64)> {
        self.host_identity
    }

    /// Resolves `path` inside the root, following symlinks (confined to the
    /// root), to an `O_PATH` handle.
    pub fn resolve(&self, path: impl AsRef<Path>) -> Result<Handle> {
        let path = path.as_ref();
        check_in_root_path("resolve", path)?;
        if let Some(r) = self.open_in_root(path, OFlags::empty()) {
            return r
                .map(Handle::from_fd)
                .map_err(|e| Error::os_at("resolve", path, e));
        }
        let h = crate::error::pathrs_call("resolve", path, || self.inner.resolve(path))?;
        log::trace!("resolved {}", path.display());
        Ok(Handle::from_fd(h))
    }

    /// `openat2(root, path, O_PATH | O_CLOEXEC | extra, RESOLVE_IN_ROOT |
    /// RESOLVE_NO_MAGICLINKS)`: the lookup pathrs makes for `resolve` on a
    /// kernel with openat2, made directly. pathrs builds a detailed error
    /// for every failed lookup (it reads the fd's path through its procfs,
    /// about ten system calls), and the hot path of an assembly looks up
    /// many paths that do not exist yet; here a miss costs one call.
    /// Retried on `EAGAIN` (a rename or mount raced with the lookup), as
    /// pathrs does. `None` when the kernel has no openat2 (or it was turned
    /// off): the caller then asks pathrs, which can emulate it.
    fn open_in_root(&self, path: &Path, extra: OFlags) -> Option<rustix::io::Result<OwnedFd>> {
        if !crate::features::has(crate::features::Feature::Openat2) {
            return None;
        }
        let flags = OFlags::PATH | OFlags::CLOEXEC | extra;
        let resolve = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
        for _ in 0..128 {
            match rustix::fs::openat2(&self.inner, path, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => return None,
                r => return Some(r),
            }
        }
        Some(Err(Errno::AGAIN))
    }

    /// Like [`resolve`](Self::resolve), but a symlink in the final component
    /// is returned as itself instead of being followed.
    pub fn resolve_nofollow(&self, path: impl AsRef<Path>) -> Result<Handle> {
        let path = path.as_ref();
        check_in_root_path("resolve_nofollow", path)?;
        if let Some(r) = self.open_in_root(path, OFlags::NOFOLLOW) {
            return r
                .map(Handle::from_fd)
                .map_err(|e| Error::os_at("resolve_nofollow", path, e));
        }
        let h = crate::error::pathrs_call("resolve_nofollow", path, || {
            self.inner.resolve_nofollow(path)
        })?;
        Ok(Handle::from_fd(h))
    }

    /// Creates `path` and any missing parents as directories with `mode`
    /// (less the umask), and returns a handle to it. Existing directories
    /// are kept; a non-directory in the way is an error. Each component is
    /// created with `mkdirat` on the handle of its parent, so no component
    /// can be redirected outside the root (CVE-2024-45310).
    pub fn mkdir_all(&self, path: impl AsRef<Path>, mode: u32) -> Result<Handle> {
        self.mkdir_all_from(path.as_ref(), mode, false)
    }

    /// [`mkdir_all`](Self::mkdir_all) for a `path` the caller has just
    /// failed to resolve: the walk starts at its parent. Should the
    /// directory have appeared meanwhile, it is opened `O_NOFOLLOW`, so a
    /// symlink put there in the meantime fails the call.
    pub(crate) fn mkdir_all_missing(&self, path: impl AsRef<Path>, mode: u32) -> Result<Handle> {
        self.mkdir_all_from(path.as_ref(), mode, true)
    }

    fn mkdir_all_from(&self, path: &Path, mode: u32, missing: bool) -> Result<Handle> {
        check_in_root_path("mkdir_all", path)?;
        if mode & !0o7777 != 0 {
            return Err(Error::invalid_at(
                "mkdir_all",
                path,
                "mode has bits outside 0o7777",
            ));
        }
        let journaling = crate::journal::current().is_some();
        if let Some(r) = self.mkdir_all_direct(path, mode, journaling, missing) {
            return r
                .map(Handle::from_fd)
                .map_err(|e| Error::os_at("mkdir_all", path, e));
        }
        let prefixes = if journaling {
            self.missing_prefixes(path)
        } else {
            Vec::new()
        };
        let h: OwnedFd = crate::error::pathrs_call("mkdir_all", path, || {
            self.inner.mkdir_all(path, &Permissions::from_mode(mode))
        })?
        .into();
        // Record the directories this call made: each missing prefix, in
        // the directory its parent resolves to now.
        for p in prefixes {
            let (Some(parent), Some(Component::Normal(name))) =
                (p.parent(), p.components().next_back())
            else {
                continue;
            };
            if let Ok(dir) = self.resolve(parent) {
                crate::journal::record(
                    dir.as_fd(),
                    name,
                    crate::journal::Made::Type(FileType::Directory),
                );
            }
        }
        Ok(Handle::from_fd(h))
    }

    /// `mkdir_all` as pathrs makes it on a kernel with openat2, without
    /// its per-call procfs work (a reopen of the deepest existing
    /// directory through its procfs, and an error text built from the fd's
    /// path for every miss, tens of system calls): the deepest existing
    /// prefix is found with [`open_in_root`](Self::open_in_root) (confined
    /// to the root, symlinks followed inside it), then each missing
    /// component is made with `mkdirat` in its parent's fd and opened with
    /// `O_NOFOLLOW | O_DIRECTORY` from there, so a component swapped for a
    /// symlink meanwhile fails instead of being followed (CVE-2024-45310).
    /// `None` (pathrs decides) without openat2, for paths with `..` (pathrs
    /// resolves them inside the root) and for modes with set-id bits
    /// (pathrs refuses them: mkdirat would drop them silently).
    ///
    /// The first lookup is of the whole path, so a directory that is
    /// already there costs one call; with `missing` (the caller has just
    /// seen the path missing) it is of the parent. With `journaling`, each
    /// directory made is recorded in the journal in force against the
    /// parent fd it was made in, as it is made.
    fn mkdir_all_direct(
        &self,
        path: &Path,
        mode: u32,
        journaling: bool,
        missing: bool,
    ) -> Option<rustix::io::Result<OwnedFd>> {
        if mode & !0o1777 != 0 {
            return None;
        }
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => parts.push(n),
                Component::RootDir | Component::CurDir => {}
                _ => return None,
            }
        }
        // The deepest prefix that exists.
        let mut have = if missing {
            parts.len().saturating_sub(1)
        } else {
            parts.len()
        };
        let mut cur = loop {
            let prefix: PathBuf = std::iter::once(Path::new("/").as_os_str())
                .chain(parts[..have].iter().copied())
                .collect();
            match self.open_in_root(&prefix, OFlags::DIRECTORY)? {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if have > 0 => have -= 1,
                Err(e) => return Some(Err(e)),
            }
        };
        for part in &parts[have..] {
            let made = match rustix::fs::mkdirat(&cur, *part, Mode::from_raw_mode(mode)) {
                Ok(()) => journaling,
                Err(Errno::EXIST) => false,
                Err(e) => return Some(Err(e)),
            };
            let next = rustix::fs::openat(
                &cur,
                *part,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            );
            // The journal takes the parent fd, which the walk no longer
            // needs (recorded even when the open failed: what was made
            // must still be undone).
            if made {
                crate::journal::record_owned(
                    cur,
                    part,
                    crate::journal::Made::Type(FileType::Directory),
                );
            }
            cur = match next {
                Ok(fd) => fd,
                Err(e) => return Some(Err(e)),
            };
        }
        Some(Ok(cur))
    }

    /// The prefixes of `path` (from the shortest) that do not resolve yet:
    /// what [`mkdir_all`](Self::mkdir_all) is about to create.
    fn missing_prefixes(&self, path: &Path) -> Vec<PathBuf> {
        let mut prefix = PathBuf::new();
        let mut missing = Vec::new();
        for c in path.components() {
            prefix.push(c);
            if !missing.is_empty() {
                missing.push(prefix.clone());
                continue;
            }
            if let Err(e) = self.resolve(&prefix) {
                if e.kind() == crate::ErrorKind::NotFound {
                    missing.push(prefix.clone());
                }
            }
        }
        missing
    }

    /// The handle of `path`'s parent, when a journal records what this
    /// thread creates (see [`crate::journal`]).
    fn journal_parent(&self, path: &Path) -> Option<Handle> {
        crate::journal::current()?;
        self.resolve(path.parent()?).ok()
    }

    /// Makes sure `path` is a regular file, creating it empty with `mode`
    /// when it is missing, and returns a handle to it: what a file bind
    /// mount is attached onto. The parent must exist. A symlink, directory
    /// or special file at `path` is refused.
    pub fn create_file(&self, path: impl AsRef<Path>, mode: u32) -> Result<Handle> {
        let path = path.as_ref();
        check_in_root_path("create_file", path)?;
        split_parent("create_file", path)?;
        if mode & !0o7777 != 0 {
            return Err(Error::invalid_at(
                "create_file",
                path,
                "mode has bits outside 0o7777",
            ));
        }
        if let Some(r) = self.create_file_direct(path, mode) {
            return r;
        }
        let parent = self.journal_parent(path);
        // Two rounds at most: if the file appears between the lookup and
        // the O_EXCL create, the second lookup finds it.
        for _ in 0..2 {
            match self.resolve_nofollow(path) {
                Ok(h) => {
                    let ft = h.file_type().map_err(|e| e.with_path(path))?;
                    if ft != FileType::RegularFile {
                        return Err(Error::invalid_at(
                            "create_file",
                            path,
                            format!("exists and is a {}, not a regular file", type_name(ft)),
                        ));
                    }
                    return Ok(h);
                }
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let flags = pathrs::flags::OpenFlags::O_RDONLY
                | pathrs::flags::OpenFlags::O_EXCL
                | pathrs::flags::OpenFlags::O_NOFOLLOW
                | pathrs::flags::OpenFlags::O_NOCTTY
                | pathrs::flags::OpenFlags::O_CLOEXEC;
            let created = crate::error::catch_pathrs("create_file", path, || {
                self.inner
                    .create_file(path, flags, &Permissions::from_mode(mode))
            })?;
            match created {
                Ok(file) => {
                    let h = Handle::from_fd(to_opath(file.into(), path)?);
                    record_made(parent.as_ref(), path, &h);
                    return Ok(h);
                }
                Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::EEXIST)) => {
                    continue
                }
                Err(e) => return Err(Error::resolve("create_file", path, e)),
            }
        }
        Err(Error::os_at("create_file", path, Errno::EXIST))
    }

    /// The parent directory of `path`, resolved inside the root with one
    /// [`open_in_root`](Self::open_in_root), and the name `path` ends in:
    /// where the direct `create_file`, `mknod` and `symlink` make their
    /// entry by name. `None` without openat2 (pathrs decides then).
    ///
    /// A parent that is the root itself (`/null`, as every default device
    /// is made in a [`Root`] of `/dev`) is the root's own directory: its fd
    /// is duplicated instead of looked up, which is the same inode on the
    /// same mount for one cheap call.
    fn open_parent_direct<'p>(
        &self,
        op: &'static str,
        path: &'p Path,
    ) -> Option<Result<(OwnedFd, &'p Path)>> {
        let (parent, name) = match split_parent(op, path) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        if is_root_path(parent) && crate::features::has(crate::features::Feature::Openat2) {
            return Some(
                crate::sys::dup_cloexec(self.inner.as_fd())
                    .map(|dir| (dir, name))
                    .map_err(|e| Error::os_at(op, path, e)),
            );
        }
        Some(
            self.open_in_root(parent, OFlags::DIRECTORY)?
                .map(|dir| (dir, name))
                .map_err(|e| Error::os_at(op, path, e)),
        )
    }

    /// `create_file` as pathrs makes it on a kernel with openat2, made
    /// directly: the parent resolved inside the root with one
    /// [`open_in_root`](Self::open_in_root), the file created in it by
    /// name with `O_CREAT | O_EXCL | O_NOFOLLOW` (which never follows and
    /// never opens anything already there), and turned into an `O_PATH`
    /// handle through its own fd. When something is there already, it is
    /// opened `O_PATH | O_NOFOLLOW` in the same parent and must be a
    /// regular file. pathrs would also check each step through its procfs
    /// and, for every miss, build an error text from the fd's path: tens
    /// of calls per file. The journal in force records the file against
    /// the parent fd it was made in. `None` (pathrs decides) without
    /// openat2.
    fn create_file_direct(&self, path: &Path, mode: u32) -> Option<Result<Handle>> {
        let (dir, name) = match self.open_parent_direct("create_file", path)? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        let fail = |e| Error::os_at("create_file", path, e);
        let created = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        );
        Some(match created {
            Ok(file) => {
                let made = rustix::fs::fstat(&file).map_err(fail);
                to_opath(file, path).and_then(|fd| {
                    let st = made?;
                    crate::journal::record_owned(
                        dir,
                        name.as_os_str(),
                        crate::journal::Made::Inode(st.st_dev, st.st_ino),
                    );
                    Ok(Handle::from_fd(fd))
                })
            }
            Err(Errno::EXIST) => rustix::fs::openat(
                &dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(fail)
            .and_then(|fd| {
                let h = Handle::from_fd(fd);
                match h.file_type().map_err(|e| e.with_path(path))? {
                    FileType::RegularFile => Ok(h),
                    ft => Err(Error::invalid_at(
                        "create_file",
                        path,
                        format!("exists and is a {}, not a regular file", type_name(ft)),
                    )),
                }
            }),
            Err(e) => Err(fail(e)),
        })
    }

    /// Creates a device node or fifo at `path` (the parent must exist) with
    /// exactly the permission bits `mode`: the umask is not applied (the
    /// node is made on a thread whose umask is 0; the caller's umask is
    /// left alone). Then checks that the inode now there has exactly the
    /// type and device number asked for, and returns a handle to it.
    ///
    /// Device numbers the kernel cannot encode (a major above
    /// [`MAX_MAJOR`], a minor above [`MAX_MINOR`]) are refused before
    /// anything is created: `mknod` would silently truncate them to
    /// another device.
    pub fn mknod(&self, path: impl AsRef<Path>, kind: NodeKind, mode: u32) -> Result<Handle> {
        let path = path.as_ref();
        check_in_root_path("mknod", path)?;
        split_parent("mknod", path)?;
        if mode & !0o7777 != 0 {
            return Err(Error::invalid_at(
                "mknod",
                path,
                "mode has bits outside 0o7777",
            ));
        }
        kind.check()
            .map_err(|why| Error::invalid_at("mknod", path, why))?;
        if let Some(r) = self.mknod_direct(path, kind, mode) {
            return r;
        }
        let perm = Permissions::from_mode(mode);
        let inode = match kind {
            NodeKind::Char { .. } => pathrs::InodeType::CharacterDevice(perm, kind.rdev()),
            NodeKind::Block { .. } => pathrs::InodeType::BlockDevice(perm, kind.rdev()),
            NodeKind::Fifo => pathrs::InodeType::Fifo(perm),
        };
        let parent = self.journal_parent(path);
        let inner = &self.inner;
        crate::fsthread::with_umask_zero(|| {
            crate::error::pathrs_call("mknod", path, || inner.create(path, &inode))
        })
        .map_err(|e| Error::os_at("mknod (start the umask-0 helper thread)", path, e))??;
        let h = self.resolve_nofollow(path)?;
        record_made(parent.as_ref(), path, &h);
        let st = h.stat().map_err(|e| e.with_path(path))?;
        check_node(path, kind, &st)?;
        Ok(h)
    }

    /// `mknod` as pathrs makes it on a kernel with openat2, made directly:
    /// the parent resolved inside the root with one
    /// [`open_in_root`](Self::open_in_root), the node made in it by name
    /// with `mknodat` (which never follows a symlink in its last
    /// component) under a umask of 0, then opened `O_PATH | O_NOFOLLOW` in
    /// the same parent, recorded in the journal in force against that
    /// parent, and checked to be the type and device number asked for.
    /// pathrs would check each step through its procfs and, for every
    /// miss, build an error text from the fd's path. `None` (pathrs
    /// decides) without openat2.
    fn mknod_direct(&self, path: &Path, kind: NodeKind, mode: u32) -> Option<Result<Handle>> {
        let (dir, name) = match self.open_parent_direct("mknod", path)? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        let fail = |e| Error::os_at("mknod", path, e);
        let made = crate::fsthread::with_umask_zero(|| {
            rustix::fs::mknodat(
                &dir,
                name,
                kind.file_type(),
                Mode::from_raw_mode(mode),
                kind.rdev(),
            )
        });
        Some((|| {
            made.map_err(|e| Error::os_at("mknod (start the umask-0 helper thread)", path, e))?
                .map_err(fail)?;
            let fd = rustix::fs::openat(
                &dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(fail)?;
            let h = Handle::from_fd(fd);
            let st = h.stat().map_err(|e| e.with_path(path))?;
            crate::journal::record_owned(
                dir,
                name.as_os_str(),
                crate::journal::Made::Inode(st.dev, st.ino),
            );
            check_node(path, kind, &st)?;
            Ok(h)
        })())
    }

    /// Creates a symlink at the in-root path `link` pointing at `target`
    /// (stored as given; it is not resolved now). The parent must exist.
    /// The order is std's ([`std::os::unix::fs::symlink`]`(original,
    /// link)`): what the link points at first, where it is made second.
    pub fn symlink(&self, target: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<()> {
        let path = link.as_ref();
        let target = target.as_ref();
        check_in_root_path("symlink", path)?;
        split_parent("symlink", path)?;
        if target.as_os_str().is_empty() || target.as_os_str().as_bytes().contains(&0) {
            return Err(Error::invalid_at(
                "symlink",
                path,
                "symlink target is empty or contains a NUL byte",
            ));
        }
        // The parent resolved inside the root, the link made in it by name
        // (symlinkat never follows its last component), and the journal
        // told against that same parent fd.
        if let Some(opened) = self.open_parent_direct("symlink", path) {
            let (dir, name) = opened?;
            rustix::fs::symlinkat(target, &dir, name)
                .map_err(|e| Error::os_at("symlink", path, e))?;
            crate::journal::record_owned(
                dir,
                name.as_os_str(),
                crate::journal::Made::Type(FileType::Symlink),
            );
            return Ok(());
        }
        let parent = self.journal_parent(path);
        crate::error::pathrs_call("symlink", path, || {
            self.inner
                .create(path, &pathrs::InodeType::Symlink(target.to_path_buf()))
        })?;
        if let (Some(p), Some(name)) = (&parent, path.file_name()) {
            crate::journal::record(
                p.as_fd(),
                name,
                crate::journal::Made::Type(FileType::Symlink),
            );
        }
        Ok(())
    }

    /// Reads the symlink at `path` (not following it).
    pub fn readlink(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        check_in_root_path("readlink", path)?;
        crate::error::pathrs_call("readlink", path, || self.inner.readlink(path))
    }

    /// Removes the non-directory at `path`.
    pub fn remove_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        check_in_root_path("remove_file", path)?;
        // The parent resolved inside the root, the name unlinked in it
        // (never followed), as pathrs does, without its error texts: a
        // missing name, which callers that replace a file expect, is one
        // failed call.
        if let Ok((parent, name)) = split_parent("remove_file", path) {
            if let Some(dir) = self.open_in_root(parent, OFlags::DIRECTORY) {
                return dir
                    .and_then(|d| rustix::fs::unlinkat(&d, name, rustix::fs::AtFlags::empty()))
                    .map_err(|e| Error::os_at("remove_file", path, e));
            }
        }
        crate::error::pathrs_call("remove_file", path, || self.inner.remove_file(path))
    }

    /// Removes the empty directory at `path`.
    pub fn remove_dir(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        check_in_root_path("remove_dir", path)?;
        crate::error::pathrs_call("remove_dir", path, || self.inner.remove_dir(path))
    }

    /// A handle to the root directory itself.
    pub fn handle(&self) -> Result<Handle> {
        let fd = open_tree(
            &self.inner,
            c"",
            OpenTreeFlags::AT_EMPTY_PATH | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(|e| Error::os("open root handle", e))?;
        Ok(Handle::from_fd(fd))
    }
}

/// `(dev, ino, mount id)` of the inode `fd` is open on.
pub(crate) fn identity(fd: impl AsFd) -> rustix::io::Result<(u64, u64, u64)> {
    let st = rustix::fs::statx(
        fd,
        c"",
        AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID,
    )?;
    Ok((
        rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        st.stx_ino,
        st.stx_mnt_id,
    ))
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl From<Root> for OwnedFd {
    fn from(r: Root) -> OwnedFd {
        r.inner.into()
    }
}

/// An `O_PATH` fd to the same inode as `fd`, made without any path lookup:
/// `open_tree` without `OPEN_TREE_CLONE` on an empty path returns one.
/// Records `h`, just created at `path`, in the journal in force (when
/// `parent` was resolved because one is).
fn record_made(parent: Option<&Handle>, path: &Path, h: &Handle) {
    let (Some(parent), Some(name)) = (parent, path.file_name()) else {
        return;
    };
    if let Ok(st) = h.stat() {
        crate::journal::record(
            parent.as_fd(),
            name,
            crate::journal::Made::Inode(st.dev, st.ino),
        );
    }
}

/// Refuses the inode `st` that `mknod` left at `path` unless it is the
/// type (and, for devices, the device number) `kind` asked for.
fn check_node(path: &Path, kind: NodeKind, st: &HandleStat) -> Result<()> {
    if st.file_type != kind.file_type() || (kind != NodeKind::Fifo && st.rdev != kind.rdev()) {
        return Err(Error::unsafe_at(
            "mknod",
            path,
            format!(
                "the inode created is a {} with rdev {:#x}, not what was asked",
                type_name(st.file_type),
                st.rdev
            ),
        ));
    }
    Ok(())
}

fn to_opath(fd: OwnedFd, path: &Path) -> Result<OwnedFd> {
    open_tree(
        &fd,
        c"",
        OpenTreeFlags::AT_EMPTY_PATH | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| Error::os_at("reopen O_PATH", path, e))
}

/// The name of a file type, for messages.
pub(crate) fn type_name(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory under the target directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!(
                "saferoot-path-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn mkdir_all_missing_makes_the_path_and_never_follows_what_appeared() {
        let s = Scratch::new("missing");
        std::fs::create_dir_all(s.0.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", s.0.join("link")).unwrap();
        let root = Root::open(&s.0).unwrap();

        // Missing: made, with its missing parents.
        let h = root.mkdir_all_missing("/a/b/c", 0o755).unwrap();
        assert!(h.is_dir().unwrap());
        assert!(s.0.join("a/b/c").is_dir());
        // Already a directory (it appeared since the caller looked): kept.
        root.mkdir_all_missing("/a/b/c", 0o755).unwrap();
        // A symlink at the last component: mkdir_all follows it inside the
        // root, the variant for a path just seen missing refuses it.
        root.mkdir_all("/link", 0o755).unwrap();
        let e = root.mkdir_all_missing("/link", 0o755).unwrap_err();
        assert!([libc::ELOOP, libc::ENOTDIR].contains(&e.errno()), "{e}");
        assert!(std::fs::symlink_metadata(s.0.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        // A file in the way.
        std::fs::write(s.0.join("file"), "").unwrap();
        assert!(root.mkdir_all_missing("/file", 0o755).is_err());
        assert!(s.0.join("file").is_file());
    }

    #[test]
    fn only_slashes_and_dots_name_the_root() {
        for p in ["/", "//", "/.", "/./", "/./."] {
            assert!(is_root_path(Path::new(p)), "{p}");
        }
        for p in ["", ".", "/a", "/..", "/a/..", "a", "./"] {
            assert!(!is_root_path(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn root_identity_is_the_directory_it_is_open_on() {
        let s = Scratch::new("identity");
        let root = Root::open(&s.0).unwrap();
        let st = std::fs::metadata(&s.0).unwrap();
        let (dev, ino, mnt) = root.identity().unwrap();
        assert_eq!(
            (dev, ino),
            (
                std::os::unix::fs::MetadataExt::dev(&st),
                std::os::unix::fs::MetadataExt::ino(&st)
            )
        );
        assert_ne!(mnt, 0);
        // Asked again, and through a clone: the same.
        assert_eq!(root.identity().unwrap(), (dev, ino, mnt));
        assert_eq!(
            root.try_clone().unwrap().identity().unwrap(),
            (dev, ino, mnt)
        );
    }
}
