//! Applying entries to the root, on the extraction thread (which has a
//! private fs struct and umask 0, so modes given at creation are exact).
//!
//! Calls per regular file, in the common case: `openat(O_CREAT|O_EXCL)`
//! with the final permission bits, the writes, `futimens`, `close`.
//! `fchown` only when the owner differs from what the kernel gave the new
//! inode; `fchmod` only for set-id and sticky bits or under a directory
//! with a default ACL (which narrows the mode given at creation); the
//! name is cleared only when the creation finds something in the way.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid};
use rustix::io::Errno;

use super::parse::{Entry, Kind, Op, Sparse};
use super::{
    HardLinks, IdMap, UnmappedIds, UnpackOptions, UnpackProgress, UnpackSummary, Whiteouts,
};
use crate::path::HandleStat;
use crate::{Error, ErrorKind, Result, Root};

/// How owners are given: whether, through which maps, and the ids new
/// inodes get from the kernel anyway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owners {
    same: bool,
    uid_map: IdMap,
    gid_map: IdMap,
    /// Host ids for container ids outside the maps, when asked.
    overflow: Option<(u32, u32)>,
    /// The effective ids of the process: the owner of what it creates
    /// (the group unless the parent directory is set-group-id).
    euid: u32,
    egid: u32,
}

impl Owners {
    /// The owner policy of `opts` (reads the overflow ids when asked).
    pub(crate) fn new(opts: &UnpackOptions) -> Result<Owners> {
        let overflow = if opts.same_owner && opts.unmapped_ids == UnmappedIds::Overflow {
            let read = |name: &str| {
                crate::procfs::Procfs::new()
                    .and_then(|p| p.read_sysctl(name))
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(65534)
            };
            Some((read("kernel.overflowuid"), read("kernel.overflowgid")))
        } else {
            None
        };
        Ok(Owners {
            same: opts.same_owner,
            uid_map: opts.uid_map,
            gid_map: opts.gid_map,
            overflow,
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
        })
    }

    /// The host owner of an entry recorded as (`uid`, `gid`); `None` when
    /// owners are not applied.
    fn of(&self, uid: u64, gid: u64, path: &Path) -> Result<Option<(u32, u32)>> {
        if !self.same {
            return Ok(None);
        }
        let one = |id: u64, map: &IdMap, over: Option<u32>, what: &str| {
            let id = u32::try_from(id).map_err(|_| {
                Error::invalid_at("unpack", path, format!("{what} {id} is too large"))
            })?;
            map.map(id).or(over).ok_or_else(|| {
                Error::invalid_at(
                    "map owner",
                    path,
                    format!("{what} {id} is outside the {what} map (see unmapped_ids)"),
                )
            })
        };
        Ok(Some((
            one(uid, &self.uid_map, self.overflow.map(|o| o.0), "uid")?,
            one(gid, &self.gid_map, self.overflow.map(|o| o.1), "gid")?,
        )))
    }
}

/// Applies the ops received on `rx` to `root`. `Ok(None)` when the
/// channel closed before [`Op::End`] (the reader stopped on an error).
pub(crate) fn run(
    root: &Root,
    opts: &UnpackOptions,
    owners: Owners,
    progress: &UnpackProgress,
    archive: Option<BorrowedFd<'_>>,
    rx: Receiver<Vec<Op>>,
) -> Result<Option<UnpackSummary>> {
    // This thread's fs struct is its own (see fsthread::alongside_fs_thread).
    rustix::process::umask(Mode::empty());
    let mut st = State {
        root,
        opts,
        owners,
        progress,
        summary: UnpackSummary::default(),
        track_made: opts.whiteouts == Whiteouts::Oci,
        made: HashSet::new(),
        parents: HashMap::new(),
        ancestors: HashSet::new(),
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        by_name: opts.hardlinks == HardLinks::ByName,
        file: None,
        archive,
        copy_by_reading: false,
        scratch: Vec::new(),
    };
    for batch in rx {
        for op in batch {
            match op {
                Op::Entry(e) => {
                    st.close_file()?;
                    st.entry(&e)?;
                }
                Op::Data(d) => st.write(d.bytes())?,
                Op::Copy { offset, len } => st.copy(offset, len)?,
                Op::End => {
                    st.close_file()?;
                    st.finish()?;
                    return Ok(Some(st.summary));
                }
            }
        }
    }
    Ok(None)
}

/// The metadata applied to an entry.
#[derive(Debug)]
struct Meta {
    mode: u32,
    /// The host owner, when owners are applied.
    owner: Option<(u32, u32)>,
    times: Timestamps,
    /// Extended attributes to set (name, value).
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// A directory fd (resolved in the root, or made relative to such an fd)
/// and what new inodes in it get.
#[derive(Debug)]
struct Dir {
    fd: OwnedFd,
    /// Set-group-id: new inodes take its group.
    setgid: bool,
    gid: u32,
    /// Has (or may have) a default ACL, which narrows creation modes.
    acl: bool,
}

impl Dir {
    /// The group a new inode in this directory gets.
    fn new_gid(&self, egid: u32) -> u32 {
        if self.setgid {
            self.gid
        } else {
            egid
        }
    }

    /// What a directory found by [`Root::mkdir_all`] is like. Opened for
    /// reading (for `fgetxattr`) when it can be; otherwise the `O_PATH`
    /// handle is kept and a default ACL assumed.
    fn probe(h: crate::Handle, path: &Path) -> Result<Dir> {
        let (fd, readable) = match rustix::fs::openat(
            &h,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => (fd, true),
            Err(_) => (OwnedFd::from(h), false),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::os_at("fstat", path, e))?;
        let acl = !readable || has_default_acl(fd.as_fd());
        Ok(Dir {
            fd,
            setgid: st.st_mode & 0o2000 != 0,
            gid: st.st_gid,
            acl,
        })
    }
}

fn has_default_acl(fd: BorrowedFd<'_>) -> bool {
    match rustix::fs::fgetxattr(fd, c"system.posix_acl_default", &mut [0u8; 0][..]) {
        Ok(n) => n > 0,
        Err(Errno::NODATA) | Err(Errno::OPNOTSUPP) => false,
        Err(_) => true,
    }
}

/// A regular file being written.
struct Open {
    file: OwnedFd,
    /// The entry's name as stored, for errors.
    shown: PathBuf,
    mode: u32,
    /// The owner to give it (only when it differs from what it has).
    chown: Option<(u32, u32)>,
    fchmod: bool,
    times: Timestamps,
    xattrs: Vec<(CString, Vec<u8>)>,
    sparse: Option<Sparse>,
    /// The sparse region being written and how much of it is.
    region: usize,
    in_region: u64,
}

/// A directory whose mode and times are set at the end (making its
/// children changes its times; a read-only mode would stop them).
struct DirMeta {
    path: PathBuf,
    depth: usize,
    mode: u32,
    times: Timestamps,
}

struct State<'a> {
    root: &'a Root,
    opts: &'a UnpackOptions,
    owners: Owners,
    progress: &'a UnpackProgress,
    summary: UnpackSummary,
    /// Whether `made` is kept (only opaque OCI whiteouts read it).
    track_made: bool,
    /// Every in-root path this archive made, with all its prefixes: what an
    /// opaque whiteout keeps.
    made: HashSet<PathBuf>,
    /// Directory fds of recent parents and of directories this archive
    /// made, by in-root path: each was resolved in the root (or made
    /// relative to such an fd), so using it again is as safe as resolving
    /// again. An entry drops every one at or below its own path (it may
    /// replace a component with a symlink); a whiteout drops them all.
    parents: HashMap<PathBuf, Rc<Dir>>,
    /// Every proper prefix of a path in `parents`: an entry at a path in
    /// neither set has nothing cached below it (so most entries look up
    /// two hash sets instead of scanning the cache).
    ancestors: HashSet<PathBuf>,
    /// Directories whose mode and times are set at the end.
    dirs: Vec<DirMeta>,
    dir_index: HashMap<PathBuf, usize>,
    /// Hard links are made by name (asked, or `AT_EMPTY_PATH` refused).
    by_name: bool,
    /// The regular file whose contents are being received.
    file: Option<Open>,
    /// The archive file `Op::Copy` copies from.
    archive: Option<BorrowedFd<'a>>,
    /// `copy_file_range` is refused (another filesystem, say): copies are
    /// read and written instead.
    copy_by_reading: bool,
    /// The buffer for copies that are read and written.
    scratch: Vec<u8>,
}

/// The components of an entry name, normalised (see the module doc).
pub(crate) fn normalise(raw: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The in-root path of normalised components.
pub(crate) fn in_root(comps: &[&[u8]]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

fn cname(path: &Path, name: &[u8]) -> Result<CString> {
    CString::new(name).map_err(|_| Error::invalid_at("unpack", path, "name contains a NUL byte"))
}

/// How many directory fds [`State::parents`] keeps at most.
const MAX_CACHED_PARENTS: usize = 128;

fn prefixed(shown: &Path) -> impl FnOnce(Error) -> Error + '_ {
    move |err| err.map_op(|op| format!("unpack {}: {op}", shown.display()).into())
}

impl State<'_> {
    /// The directory `path`, created (with missing parents) if needed, from
    /// the cache or through [`Root::mkdir_all`].
    fn parent(&mut self, path: &Path) -> Result<Rc<Dir>> {
        if let Some(d) = self.parents.get(path) {
            return Ok(d.clone());
        }
        let dir = Rc::new(Dir::probe(self.root.mkdir_all(path, 0o755)?, path)?);
        self.remember(path, dir.clone());
        Ok(dir)
    }

    fn remember(&mut self, path: &Path, dir: Rc<Dir>) {
        if self.parents.len() >= MAX_CACHED_PARENTS {
            self.forget_all();
        }
        let mut a = path.parent();
        while let Some(p) = a {
            if !self.ancestors.insert(p.to_path_buf()) {
                break;
            }
            a = p.parent();
        }
        self.parents.insert(path.to_path_buf(), dir);
    }

    fn forget_all(&mut self) {
        self.parents.clear();
        self.ancestors.clear();
    }

    /// Drops the cached fds of `path` and everything below it.
    fn invalidate(&mut self, path: &Path) {
        if !self.parents.contains_key(path) && !self.ancestors.contains(path) {
            return;
        }
        self.parents.retain(|p, _| !p.starts_with(path));
        self.ancestors.clear();
        let kept: Vec<PathBuf> = self.parents.keys().cloned().collect();
        for k in kept {
            let mut a = k.parent();
            while let Some(p) = a {
                if !self.ancestors.insert(p.to_path_buf()) {
                    break;
                }
                a = p.parent();
            }
        }
    }

    fn entry(&mut self, e: &Entry) -> Result<()> {
        self.summary.entries += 1;
        self.progress.entries.fetch_add(1, Ordering::Relaxed);
        let comps = normalise(&e.name);
        let path = in_root(&comps);
        self.entry_at(e, &comps, &path).map_err(|err| {
            let shown = PathBuf::from(OsStr::from_bytes(&e.name));
            prefixed(&shown)(err)
        })
    }

    fn meta(&self, e: &Entry, path: &Path) -> Result<Meta> {
        let mut xattrs = Vec::new();
        if self.opts.xattrs {
            for (name, value) in &e.xattrs {
                if name.starts_with(b"trusted.overlay.") {
                    continue;
                }
                let name = CString::new(name.as_slice()).map_err(|_| {
                    Error::invalid_at("unpack", path, "PAX header has a bad xattr value")
                })?;
                xattrs.push((name, value.clone()));
            }
        }
        Ok(Meta {
            mode: e.mode,
            owner: self.owners.of(e.uid, e.gid, path)?,
            times: Timestamps {
                last_access: e.mtime,
                last_modification: e.mtime,
            },
            xattrs,
        })
    }

    fn entry_at(&mut self, e: &Entry, comps: &[&[u8]], path: &Path) -> Result<()> {
        if let Kind::Other(flag) = e.kind {
            log::debug!(
                "unpack: skipping {} of type {:?}",
                path.display(),
                char::from(flag)
            );
            self.summary.skipped += 1;
            return Ok(());
        }
        let meta = self.meta(e, path)?;
        let Some((name, parent_comps)) = comps.split_last() else {
            // The root itself ("./"): only a directory's metadata applies.
            if e.kind != Kind::Dir {
                return Err(Error::invalid_at(
                    "unpack",
                    path,
                    "only a directory may name the root itself",
                ));
            }
            self.forget_all();
            let h = self.root.handle()?;
            let dir = reopen_dir(h.as_fd(), path)?;
            if let Some((u, g)) = meta.owner {
                fchown(dir.as_fd(), u, g, path)?;
            }
            set_xattrs(dir.as_fd(), &meta.xattrs, path)?;
            self.defer_dir(path, 0, &meta);
            self.summary.dirs += 1;
            return Ok(());
        };
        let parent_path = in_root(parent_comps);

        if self.opts.whiteouts != Whiteouts::None {
            if let Some(target) = name.strip_prefix(b".wh.") {
                self.forget_all();
                return self.whiteout(&parent_path, target, path);
            }
        }
        self.invalidate(path);

        let cname = cname(path, name)?;
        match e.kind {
            Kind::Dir => self.dir(&parent_path, &cname, path, comps.len(), &meta)?,
            Kind::File => {
                let parent = self.parent(&parent_path)?;
                let fd = self.create(parent.fd.as_fd(), &cname, path, "create file", || {
                    rustix::fs::openat(
                        &parent.fd,
                        &*cname,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::NOCTTY
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(meta.mode & 0o777),
                    )
                })?;
                let new_owner = (self.owners.euid, parent.new_gid(self.owners.egid));
                self.file = Some(Open {
                    file: fd,
                    shown: PathBuf::from(OsStr::from_bytes(&e.name)),
                    mode: meta.mode,
                    chown: meta.owner.filter(|o| *o != new_owner),
                    fchmod: meta.mode & 0o7000 != 0 || parent.acl,
                    times: meta.times,
                    xattrs: meta.xattrs,
                    sparse: e.sparse.clone(),
                    region: 0,
                    in_region: 0,
                });
                self.summary.files += 1;
            }
            Kind::Symlink => {
                let target = e.link.as_deref().unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(Error::invalid_at(
                        "unpack",
                        path,
                        "symlink target is empty or has a NUL byte",
                    ));
                }
                let parent = self.parent(&parent_path)?;
                self.create(parent.fd.as_fd(), &cname, path, "symlinkat", || {
                    rustix::fs::symlinkat(target, &parent.fd, &*cname)
                })?;
                self.set_at_meta(&parent, &cname, path, &meta)?;
                self.summary.symlinks += 1;
            }
            Kind::HardLink => {
                let raw = e.link.as_deref().unwrap_or_default();
                let tcomps = normalise(raw);
                if tcomps.is_empty() {
                    return Err(Error::invalid_at(
                        "unpack",
                        path,
                        "hard link to the root directory",
                    ));
                }
                let tpath = in_root(&tcomps);
                if tpath == path {
                    return Ok(());
                }
                let target = self.root.resolve_nofollow(&tpath)?;
                let tst = target.stat()?;
                if tst.file_type == FileType::Directory {
                    return Err(Error::invalid_at(
                        "unpack",
                        path,
                        format!("hard link to the directory {}", tpath.display()),
                    ));
                }
                let parent = self.parent(&parent_path)?;
                self.link(&target, &tst, &tcomps, &parent, &cname, path)?;
                self.summary.hardlinks += 1;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let ft = match e.kind {
                    Kind::Char => FileType::CharacterDevice,
                    Kind::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let rdev = rustix::fs::makedev(e.dev.0, e.dev.1);
                let parent = self.parent(&parent_path)?;
                self.create(parent.fd.as_fd(), &cname, path, "mknodat", || {
                    rustix::fs::mknodat(
                        &parent.fd,
                        &*cname,
                        ft,
                        Mode::from_raw_mode(meta.mode),
                        rdev,
                    )
                })?;
                self.set_at_meta(&parent, &cname, path, &meta)?;
                self.summary.nodes += 1;
            }
            Kind::Other(_) => unreachable!("skipped above"),
        }
        if self.track_made {
            let mut p = path.to_path_buf();
            while p.as_os_str().len() > 1 && self.made.insert(p.clone()) {
                p.pop();
            }
        }
        Ok(())
    }

    /// Runs `make` (a creation that fails with `EEXIST` when the name is
    /// taken); if the name is taken, clears it and runs `make` once more.
    fn create<T>(
        &self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        op: &'static str,
        make: impl Fn() -> rustix::io::Result<T>,
    ) -> Result<T> {
        match make() {
            Err(Errno::EXIST) => {
                clear(parent, name, path, false)?;
                make().map_err(|e| Error::os_at(op, path, e))
            }
            r => r.map_err(|e| Error::os_at(op, path, e)),
        }
    }

    fn dir(
        &mut self,
        parent_path: &Path,
        cname: &CStr,
        path: &Path,
        depth: usize,
        meta: &Meta,
    ) -> Result<()> {
        let parent = self.parent(parent_path)?;
        let open = || open_dir_nofollow(parent.fd.as_fd(), cname, path);
        let mkdir = || rustix::fs::mkdirat(&parent.fd, cname, Mode::from_raw_mode(0o700));
        let (fd, existing) = match mkdir() {
            Ok(()) => (open()?, None),
            Err(Errno::EXIST) => {
                let st = rustix::fs::statat(&parent.fd, cname, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::os_at("fstatat", path, e))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    (open()?, Some(st))
                } else {
                    clear(parent.fd.as_fd(), cname, path, false)?;
                    mkdir().map_err(|e| Error::os_at("mkdirat", path, e))?;
                    (open()?, None)
                }
            }
            Err(e) => return Err(Error::os_at("mkdirat", path, e)),
        };
        let has = match &existing {
            Some(st) => (st.st_uid, st.st_gid),
            None => (self.owners.euid, parent.new_gid(self.owners.egid)),
        };
        if let Some(o) = meta.owner {
            if o != has {
                fchown(fd.as_fd(), o.0, o.1, path)?;
            }
        }
        set_xattrs(fd.as_fd(), &meta.xattrs, path)?;
        self.defer_dir(path, depth, meta);
        let dir = Dir {
            setgid: match &existing {
                Some(st) => st.st_mode & 0o2000 != 0,
                None => parent.setgid,
            },
            gid: meta.owner.map_or(has.1, |o| o.1),
            acl: match &existing {
                Some(_) => has_default_acl(fd.as_fd()),
                None => parent.acl,
            },
            fd,
        };
        self.remember(path, Rc::new(dir));
        self.summary.dirs += 1;
        Ok(())
    }

    fn defer_dir(&mut self, path: &Path, depth: usize, meta: &Meta) {
        let d = DirMeta {
            path: path.to_path_buf(),
            depth,
            mode: meta.mode,
            times: meta.times.clone(),
        };
        // A later entry for the same directory wins.
        match self.dir_index.get(path) {
            Some(&i) => self.dirs[i] = d,
            None => {
                self.dir_index.insert(path.to_path_buf(), self.dirs.len());
                self.dirs.push(d);
            }
        }
    }

    /// Makes the hard link `cname` in `parent` to `target` (a handle
    /// resolved in the root, whose stat is `tst`, at `tcomps`).
    fn link(
        &mut self,
        target: &crate::Handle,
        tst: &HandleStat,
        tcomps: &[&[u8]],
        parent: &Dir,
        cname: &CStr,
        path: &Path,
    ) -> Result<()> {
        if !self.by_name {
            let r = self.make_link(parent, cname, path, tst, || {
                rustix::fs::linkat(target, c"", &parent.fd, cname, AtFlags::EMPTY_PATH)
            })?;
            match r {
                Ok(()) => return Ok(()),
                // Refused without CAP_DAC_READ_SEARCH (before Linux 6.10).
                Err(Errno::NOENT) if self.opts.hardlinks == HardLinks::Auto => {
                    log::debug!("unpack: linkat(AT_EMPTY_PATH) refused; hard links by name now");
                    self.by_name = true;
                }
                Err(e) => return Err(Error::os_at("linkat", path, e)),
            }
        }
        let (tname, tparent) = tcomps
            .split_last()
            .ok_or_else(|| Error::invalid_at("unpack", path, "hard link to the root directory"))?;
        let tparent_path = in_root(tparent);
        let tdir = self.root.resolve(&tparent_path)?;
        let tcname = cname_of(&tparent_path, tname)?;
        self.make_link(parent, cname, path, tst, || {
            rustix::fs::linkat(&tdir, &*tcname, &parent.fd, cname, AtFlags::empty())
        })?
        .map_err(|e| Error::os_at("linkat (by name)", path, e))?;
        // The name may have been swapped since the target was resolved: the
        // new link must be the target's inode.
        let st = rustix::fs::statat(&parent.fd, cname, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::os_at("fstatat new link", path, e))?;
        if st.st_ino != tst.ino || st.st_dev != tst.dev {
            let _ = rustix::fs::unlinkat(&parent.fd, cname, AtFlags::empty());
            return Err(Error::unsafe_at(
                "linkat (by name)",
                path,
                "the link target was replaced while it was linked; the link was removed",
            ));
        }
        Ok(())
    }

    /// Runs `make` (a `linkat`); if the name is taken by the target's
    /// inode already, that is fine; by something else, it is cleared and
    /// `make` runs once more. The outer error is from clearing, the inner
    /// one from `linkat`.
    fn make_link(
        &self,
        parent: &Dir,
        cname: &CStr,
        path: &Path,
        tst: &HandleStat,
        make: impl Fn() -> rustix::io::Result<()>,
    ) -> Result<std::result::Result<(), Errno>> {
        match make() {
            Err(Errno::EXIST) => {}
            r => return Ok(r),
        }
        if let Ok(st) = rustix::fs::statat(&parent.fd, cname, AtFlags::SYMLINK_NOFOLLOW) {
            if st.st_ino == tst.ino && st.st_dev == tst.dev {
                return Ok(Ok(()));
            }
        }
        clear(parent.fd.as_fd(), cname, path, false)?;
        Ok(make())
    }

    /// Owner and times of a symlink or node, by name in its parent, never
    /// following a symlink. (A node's mode was given to `mknodat`.)
    fn set_at_meta(&self, parent: &Dir, name: &CStr, path: &Path, meta: &Meta) -> Result<()> {
        if let Some((u, g)) = meta.owner {
            if (u, g) != (self.owners.euid, parent.new_gid(self.owners.egid)) {
                rustix::fs::chownat(
                    &parent.fd,
                    name,
                    Some(Uid::from_raw(u)),
                    Some(Gid::from_raw(g)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| Error::os_at("fchownat", path, e))?;
            }
        }
        rustix::fs::utimensat(&parent.fd, name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::os_at("utimensat", path, e))
    }

    /// Writes the next piece of the current file.
    fn write(&mut self, mut d: &[u8]) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(Error::invalid("unpack", "file data without a file"));
        };
        let n = d.len() as u64;
        let shown = &f.shown;
        let io = |e| prefixed(shown)(Error::os_at("write file", shown, e));
        match &f.sparse {
            None => {
                while !d.is_empty() {
                    match rustix::io::write(&f.file, d) {
                        Ok(k) => d = &d[k..],
                        Err(Errno::INTR) => {}
                        Err(e) => return Err(io(e)),
                    }
                }
            }
            Some(sp) => {
                while !d.is_empty() {
                    let Some(&(off, len)) = sp.regions.get(f.region) else {
                        return Err(prefixed(shown)(Error::invalid(
                            "write file",
                            "more data than the sparse map holds",
                        )));
                    };
                    if f.in_region == len {
                        f.region += 1;
                        f.in_region = 0;
                        continue;
                    }
                    let k = d
                        .len()
                        .min(usize::try_from(len - f.in_region).unwrap_or(usize::MAX));
                    match rustix::io::pwrite(&f.file, &d[..k], off + f.in_region) {
                        Ok(w) => {
                            d = &d[w..];
                            f.in_region += w as u64;
                        }
                        Err(Errno::INTR) => {}
                        Err(e) => return Err(io(e)),
                    }
                }
            }
        }
        self.summary.bytes += n;
        Ok(())
    }

    /// Copies `len` bytes from the archive file at `offset` to the end of
    /// the current (not sparse) file: `copy_file_range`, or reading and
    /// writing where that is refused.
    fn copy(&mut self, mut offset: u64, len: u64) -> Result<()> {
        let (Some(f), Some(archive)) = (self.file.as_ref(), self.archive) else {
            return Err(Error::invalid("unpack", "file data without a file"));
        };
        let shown = &f.shown;
        let fail = |op: &'static str, e| prefixed(shown)(Error::os_at(op, shown, e));
        let ended = || {
            prefixed(shown)(Error::invalid_at(
                "read archive",
                "/",
                "malformed archive: the archive ends in the middle of this entry's data",
            ))
        };
        let mut left = len;
        while left > 0 && !self.copy_by_reading {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(1 << 30);
            match rustix::fs::copy_file_range(archive, Some(&mut offset), &f.file, None, want) {
                Ok(0) => return Err(ended()),
                Ok(k) => left -= k as u64,
                Err(Errno::INTR) => {}
                Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    log::debug!("unpack: copy_file_range refused; copying by reading");
                    self.copy_by_reading = true;
                }
                Err(e) => return Err(fail("copy_file_range", e)),
            }
        }
        if left > 0 && self.scratch.is_empty() {
            self.scratch = vec![0; 256 << 10];
        }
        while left > 0 {
            let want = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.scratch.len());
            let n = match rustix::io::pread(archive, &mut self.scratch[..want], offset) {
                Ok(0) => return Err(ended()),
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(fail("read archive", e)),
            };
            let mut d = &self.scratch[..n];
            while !d.is_empty() {
                match rustix::io::write(&f.file, d) {
                    Ok(k) => d = &d[k..],
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(fail("write file", e)),
                }
            }
            offset += n as u64;
            left -= n as u64;
        }
        self.summary.bytes += len;
        Ok(())
    }

    /// Finishes the file being written: size (sparse), owner, mode,
    /// xattrs, times, all through its fd.
    fn close_file(&mut self) -> Result<()> {
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let path = f.shown.as_path();
        let done = || -> Result<()> {
            if let Some(sp) = &f.sparse {
                rustix::fs::ftruncate(&f.file, sp.real_size)
                    .map_err(|e| Error::os_at("ftruncate", path, e))?;
            }
            if let Some((u, g)) = f.chown {
                fchown(f.file.as_fd(), u, g, path)?;
            }
            if f.fchmod {
                rustix::fs::fchmod(&f.file, Mode::from_raw_mode(f.mode))
                    .map_err(|e| Error::os_at("fchmod", path, e))?;
            }
            set_xattrs(f.file.as_fd(), &f.xattrs, path)?;
            rustix::fs::futimens(&f.file, &f.times).map_err(|e| Error::os_at("futimens", path, e))
        };
        done().map_err(prefixed(path))
    }

    fn whiteout(&mut self, parent_path: &Path, target: &[u8], path: &Path) -> Result<()> {
        self.summary.whiteouts += 1;
        if target == b".wh..opq" {
            let parent = match self.root.resolve(parent_path) {
                Ok(h) => h,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let dir = reopen_dir(parent.as_fd(), parent_path)?;
            if self.opts.whiteouts == Whiteouts::Overlay {
                return rustix::fs::fsetxattr(
                    &dir,
                    "trusted.overlay.opaque",
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| Error::os_at("set trusted.overlay.opaque", parent_path, e));
            }
            for (name, _) in list_dir(&dir, parent_path)? {
                let child = parent_path.join(OsStr::from_bytes(name.to_bytes()));
                if !self.made.contains(&child) {
                    clear(dir.as_fd(), &name, &child, false)?;
                }
            }
            return Ok(());
        }
        if target.starts_with(b".wh.") {
            // Other `.wh..wh.*` names are reserved (such as aufs' `.wh..wh.plnk`).
            self.summary.whiteouts -= 1;
            self.summary.skipped += 1;
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Error::invalid_at("unpack", path, "whiteout names no entry"));
        }
        let name = cname(path, target)?;
        let victim = parent_path.join(OsStr::from_bytes(target));
        match self.opts.whiteouts {
            Whiteouts::Oci => {
                let parent = match self.root.resolve(parent_path) {
                    Ok(h) => h,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(e),
                };
                clear(parent.as_fd(), &name, &victim, false)?;
            }
            _ => {
                let parent = self.root.mkdir_all(parent_path, 0o755)?;
                clear(parent.as_fd(), &name, &victim, false)?;
                rustix::fs::mknodat(&parent, &*name, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| Error::os_at("mknodat", &victim, e))?;
                if self.track_made {
                    self.made.insert(victim);
                }
            }
        }
        Ok(())
    }

    /// Sets the deferred directory modes and times, deepest first (so a
    /// read-only parent does not stop its children), each directory found
    /// again in the root without following its last component.
    fn finish(&mut self) -> Result<()> {
        self.forget_all();
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.depth));
        for d in dirs {
            let path = d.path.as_path();
            let h = match self.root.resolve_nofollow(path) {
                Ok(h) => h,
                // Removed by a later whiteout.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(prefixed(path)(e)),
            };
            let dir = match rustix::fs::openat(
                &h,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Replaced by a later entry of another type.
                Err(Errno::NOTDIR) => continue,
                Err(e) => return Err(prefixed(path)(Error::os_at("open directory", path, e))),
            };
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(d.mode))
                .map_err(|e| prefixed(path)(Error::os_at("fchmod", path, e)))?;
            rustix::fs::futimens(&dir, &d.times)
                .map_err(|e| prefixed(path)(Error::os_at("futimens", path, e)))?;
        }
        Ok(())
    }
}

fn cname_of(parent: &Path, name: &[u8]) -> Result<CString> {
    cname(&parent.join(OsStr::from_bytes(name)), name)
}

fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32, path: &Path) -> Result<()> {
    rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .map_err(|e| Error::os_at("fchown", path, e))
}

/// Sets extended attributes through the fd (after the owner, which clears
/// `security.capability`).
fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(CString, Vec<u8>)], path: &Path) -> Result<()> {
    for (name, value) in xattrs {
        rustix::fs::fsetxattr(fd, name.as_c_str(), value, rustix::fs::XattrFlags::empty())
            .map_err(|e| Error::os_at(format!("fsetxattr {}", name.to_string_lossy()), path, e))?;
    }
    Ok(())
}

fn open_dir_nofollow(parent: BorrowedFd<'_>, name: &CStr, path: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os_at("open directory", path, e))
}

/// Opens the directory `fd` (an `O_PATH` handle is fine) for reading,
/// without any path walk: `.` in it. A handle to anything but a directory
/// fails (`ENOTDIR`).
fn reopen_dir(fd: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(
        fd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os_at("open directory", path, e))
}

/// The names in the directory `dir` (without `.` and `..`).
fn list_dir(dir: &OwnedFd, path: &Path) -> Result<Vec<(CString, FileType)>> {
    let mut d =
        rustix::fs::Dir::read_from(dir).map_err(|e| Error::os_at("read directory", path, e))?;
    let mut names = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent.map_err(|e| Error::os_at("read directory", path, e))?;
        let name = ent.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push((name.to_owned(), ent.file_type()));
    }
    Ok(names)
}

/// Removes whatever is at `name` in `parent` (recursively for a
/// directory, all by fd), unless it is a directory and `keep_dir`. Returns
/// the type that was there (`None` if nothing was).
fn clear(
    parent: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    keep_dir: bool,
) -> Result<Option<FileType>> {
    let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::os_at("fstatat", path, e)),
    };
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft == FileType::Directory {
        if keep_dir {
            return Ok(Some(ft));
        }
        remove_tree(parent, name, path, 0)?;
    } else {
        rustix::fs::unlinkat(parent, name, AtFlags::empty())
            .map_err(|e| Error::os_at("unlinkat", path, e))?;
    }
    Ok(Some(ft))
}

/// Deepest directory nesting [`remove_tree`] goes into.
const MAX_DEPTH: usize = 2048;

/// Removes the directory `name` in `parent` and everything below it,
/// opening each directory with `O_NOFOLLOW` relative to its parent's fd.
fn remove_tree(parent: BorrowedFd<'_>, name: &CStr, path: &Path, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid_at(
            "remove directory",
            path,
            "nested too deep",
        ));
    }
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::os_at("open directory to remove", path, e))?;
    for (child, ft) in list_dir(&dir, path)? {
        let cpath = path.join(OsStr::from_bytes(child.to_bytes()));
        let ft = if ft == FileType::Unknown {
            match rustix::fs::statat(&dir, &*child, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(Error::os_at("fstatat", &cpath, e)),
            }
        } else {
            ft
        };
        if ft == FileType::Directory {
            remove_tree(dir.as_fd(), &child, &cpath, depth + 1)?;
        } else {
            match rustix::fs::unlinkat(&dir, &*child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::os_at("unlinkat", &cpath, e)),
            }
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
        .map_err(|e| Error::os_at("rmdir", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_confined_lexically() {
        let p = |s: &str| in_root(&normalise(s.as_bytes()));
        assert_eq!(p("../../etc/passwd"), Path::new("/etc/passwd"));
        assert_eq!(p("/abs/x"), Path::new("/abs/x"));
        assert_eq!(p("a/../../b/./c//d/"), Path::new("/b/c/d"));
        assert_eq!(p("./"), Path::new("/"));
        assert_eq!(p(".."), Path::new("/"));
    }

    #[test]
    fn id_maps_map_and_refuse() {
        let r = |c, h, l| super::super::IdRange {
            container: c,
            host: h,
            len: l,
        };
        let m = IdMap::new(&[r(0, 100_000, 65536), r(65536, 1000, 1)]).unwrap();
        assert_eq!(m.map(0), Some(100_000));
        assert_eq!(m.map(65535), Some(165_535));
        assert_eq!(m.map(65536), Some(1000));
        assert_eq!(m.map(65537), None);
        assert_eq!(IdMap::default().map(7), Some(7));
        assert!(IdMap::new(&[r(0, 0, 10), r(5, 100, 10)]).is_err());
        assert!(IdMap::new(&[r(0, u32::MAX, 2)]).is_err());
        assert!(IdMap::new(&[r(0, 0, 0)]).is_err());
        assert!(IdMap::new(&[r(0, 0, 1); 17]).is_err());
    }
}
