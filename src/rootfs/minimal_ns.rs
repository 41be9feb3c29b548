//! Starting a container from a mount namespace that never holds the
//! host's mounts.
//!
//! `unshare(CLONE_NEWNS)` copies every mount of the caller's namespace,
//! and `pivot_root` then has to detach all of them again: both cost time in
//! proportion to the host's mount count (tens of milliseconds at 20000
//! mounts), for every container. Instead:
//!
//! 1. [`MinimalNamespace::create`] makes, once, a mount namespace whose only
//!    mount is a small read-only tmpfs root (paying the copy once), kept
//!    as an nsfs fd, and optionally pinned at a path ([`pin`]) for later
//!    processes ([`open`]);
//! 2. for each container, the host objects it needs (bind sources, the
//!    rootfs, `/dev`) are opened first, in the caller's namespace, as
//!    detached mounts ([`HostView::open`]), with the same confined lookup
//!    as bind sources get during assembly;
//! 3. the process enters a private copy of the minimal namespace
//!    ([`MinimalNamespace::enter`]: `setns` then `unshare(CLONE_NEWNS)`,
//!    which now copies one mount), and [`HostView::install`] makes a fresh
//!    tmpfs its root, with each host object attached at its own path.
//!
//! From there a container is assembled exactly as in a copy of the host's
//! namespace (host paths name the same objects), but its namespace holds
//! only what it asked for, and entering it detaches a handful of mounts.
//!
//! [`pin`]: MinimalNamespace::pin
//! [`open`]: MinimalNamespace::open

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{open_tree, OpenTreeFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use crate::mount::Scope;
use crate::procfs::Procfs;
use crate::{Error, Mount, MountAttr, Result, Root};

/// The directory of the minimal root that a container's root may be
/// attached on (made when the namespace is created; the root is read-only
/// afterwards).
pub const MINIMAL_MOUNT_POINT: &str = "/root";

/// A mount namespace whose only mount is an empty, read-only tmpfs, as an
/// nsfs fd. See the module documentation.
#[derive(Debug)]
pub struct MinimalNamespace {
    fd: OwnedFd,
}

fn os(op: &'static str) -> impl Fn(Errno) -> Error {
    move |e| Error::os(op, e)
}

impl MinimalNamespace {
    /// Makes a new minimal namespace. This copies the caller's mounts once
    /// (a helper thread unshares, makes a tmpfs its root and detaches the
    /// rest); the caller's own namespace is not changed.
    pub fn create() -> Result<MinimalNamespace> {
        crate::features::require(crate::features::Feature::MountApi)?;
        let procfs = Procfs::new()?;
        crate::fsthread::on_helper_thread(move || -> Result<OwnedFd> {
            crate::sys::unshare(UnshareFlags::NEWNS).map_err(os("unshare(CLONE_NEWNS)"))?;
            // The namespace's fd, taken while this thread's procfs is at
            // hand (the pivot below leaves none).
            let ns = OwnedFd::from(procfs.open_namespace(None, "mnt")?);
            let slash = rustix::fs::open(
                "/",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(os("open /"))?;
            // Nothing done here may reach the caller's namespace.
            crate::mount::change_attrs(
                &slash,
                MountAttr::empty(),
                MountAttr::empty(),
                Some(crate::Propagation::Private),
                Scope::Tree,
            )?;
            let tmpfs = Mount::fs("tmpfs")
                .source("saferoot-minimal")
                .data("mode=755,size=16k,nr_inodes=16")
                .mount()?;
            let root = tmpfs.root()?;
            drop(root.mkdir_all(MINIMAL_MOUNT_POINT, 0o755)?);
            let attached = tmpfs.attach(&slash).map_err(Error::from)?;
            rustix::process::fchdir(&attached).map_err(os("fchdir to the minimal root"))?;
            rustix::process::pivot_root(c".", c".").map_err(os("pivot_root(\".\", \".\")"))?;
            rustix::mount::unmount(c".", UnmountFlags::DETACH)
                .map_err(os("detach the copied mounts"))?;
            rustix::process::chdir(c"/").map_err(os("chdir /"))?;
            let top = rustix::fs::open(
                "/",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(os("open the minimal root"))?;
            crate::mount::change_attrs(
                &top,
                MountAttr::RDONLY | MountAttr::NOSUID | MountAttr::NODEV | MountAttr::NOEXEC,
                MountAttr::empty(),
                None,
                Scope::Mount,
            )?;
            Ok(ns)
        })
        .map_err(os("start a helper thread"))?
        .map(|fd| MinimalNamespace { fd })
    }

    /// [`create`](Self::create), then [`pin`](Self::pin) at `path`. The
    /// kernel refuses (`ELOOP`) to pin a mount namespace whose id is not
    /// above that of the pinning thread's own namespace, and hands out ids
    /// from per-CPU batches (Linux 6.18), so a namespace made on one CPU can
    /// get a lower id than an older one: on `ELOOP` the namespace is made
    /// again, from each CPU the caller may run on in turn.
    pub fn create_pinned(path: impl AsRef<Path>) -> Result<MinimalNamespace> {
        let path = path.as_ref();
        let first = MinimalNamespace::create()?;
        let mut last = match first.pin(path) {
            Ok(()) => return Ok(first),
            Err(e) if e.errno() == libc_eloop() => e,
            Err(e) => return Err(e),
        };
        let allowed = rustix::thread::sched_getaffinity(None).map_err(os("sched_getaffinity"))?;
        for cpu in (0..rustix::thread::CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c)) {
            let mut one = rustix::thread::CpuSet::new();
            one.set(cpu);
            rustix::thread::sched_setaffinity(None, &one).map_err(os("sched_setaffinity"))?;
            // The helper thread that makes the namespace inherits the mask.
            let made = MinimalNamespace::create();
            rustix::thread::sched_setaffinity(None, &allowed).map_err(os("sched_setaffinity"))?;
            let ns = made?;
            match ns.pin(path) {
                Ok(()) => return Ok(ns),
                Err(e) if e.errno() == libc_eloop() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Uses `fd`, which must be an nsfs fd of a mount namespace.
    pub fn from_fd(fd: impl Into<OwnedFd>) -> Result<MinimalNamespace> {
        let fd = fd.into();
        check_mount_ns(fd.as_fd())?;
        Ok(MinimalNamespace { fd })
    }

    /// Opens a namespace pinned at `path` by [`pin`](Self::pin).
    pub fn open(path: impl AsRef<Path>) -> Result<MinimalNamespace> {
        let path = path.as_ref();
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::os_at("open mount namespace", path, e))?;
        check_mount_ns(fd.as_fd()).map_err(|e| e.with_path(path))?;
        Ok(MinimalNamespace { fd })
    }

    /// Keeps the namespace alive at `path`, a new empty file (it must not
    /// exist; its directory must): the nsfs file is bound onto it. Undo
    /// with `umount PATH` and removing the file.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = rustix::fs::open(
            path,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o444),
        )
        .map_err(|e| Error::os_at("create the pin file", path, e))?;
        let bound = open_tree(
            self.fd.as_fd(),
            c"",
            OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(|e| Error::os_at("open_tree(nsfs)", path, e));
        let attached = bound.and_then(|fd| {
            Mount::from_fd(fd)
                .attach(&file)
                .map_err(|e| Error::from(e).with_path(path))
        });
        match attached {
            Ok(a) => {
                a.forget();
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Moves the calling thread into a private copy of the namespace:
    /// `setns` into it, then `unshare(CLONE_NEWNS)`, which copies its one
    /// mount. The caller must be single-threaded, or a thread with a
    /// private fs struct (`CLONE_FS`), as `setns` requires; its working
    /// directory becomes the minimal root.
    pub fn enter(&self) -> Result<()> {
        rustix::thread::move_into_link_name_space(
            self.fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Mount),
        )
        .map_err(os("setns(CLONE_NEWNS) into the minimal namespace"))?;
        crate::sys::unshare(UnshareFlags::NEWNS).map_err(os("unshare(CLONE_NEWNS)"))?;
        rustix::process::chdir(c"/").map_err(os("chdir /"))
    }
}

impl AsFd for MinimalNamespace {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The mount point for `path` in the host view whose root is `top`:
/// walked one component at a time without following symlinks, missing
/// components created (directories 0755, a last component that is a file
/// 0444) when `create`, an `O_PATH` fd of it.
fn mount_point(top: BorrowedFd<'_>, path: &Path, is_dir: bool, create: bool) -> Result<OwnedFd> {
    use std::path::Component;
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let at = |op: &'static str| move |e: Errno| Error::os_at(op, path, e);
    let mut cur = rustix::io::dup(top).map_err(at("dup"))?;
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let want_dir = !last || is_dir;
        let open = |dir: &OwnedFd| {
            let mut flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if want_dir {
                flags |= OFlags::DIRECTORY;
            }
            rustix::fs::openat(dir, *name, flags, Mode::empty())
        };
        cur = match open(&cur) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                if want_dir {
                    rustix::fs::mkdirat(&cur, *name, Mode::from_raw_mode(0o755))
                        .map_err(at("mkdirat"))?;
                } else {
                    drop(
                        rustix::fs::openat(
                            &cur,
                            *name,
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::WRONLY
                                | OFlags::CLOEXEC
                                | OFlags::NOFOLLOW,
                            Mode::from_raw_mode(0o444),
                        )
                        .map_err(at("create mount point"))?,
                    );
                }
                open(&cur).map_err(at("open mount point"))?
            }
            Err(e) => return Err(at("open mount point")(e)),
        };
    }
    Ok(cur)
}

/// Checks that `fd` is an nsfs file of a mount namespace
/// (`NS_GET_NSTYPE`).
fn check_mount_ns(fd: BorrowedFd<'_>) -> Result<()> {
    match crate::sys::ns_type(fd) {
        Ok(t) if t == libc_clone_newns() => Ok(()),
        Ok(_) => Err(Error::invalid(
            "open mount namespace",
            "not a mount namespace",
        )),
        // Not an nsfs file at all (a plain file, a directory).
        Err(Errno::NOTTY) => Err(Error::invalid(
            "open mount namespace",
            "not a mount namespace (not a namespace file)",
        )),
        Err(e) => Err(Error::os("ioctl(NS_GET_NSTYPE)", e)),
    }
}

fn libc_eloop() -> i32 {
    Errno::LOOP.raw_os_error()
}

fn libc_clone_newns() -> i32 {
    UnshareFlags::NEWNS.bits() as i32
}

/// One host object of a [`HostView`].
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    mount: Mount,
    is_dir: bool,
}

/// Host objects opened as detached mounts, to be installed at their own
/// paths in a private copy of a [`MinimalNamespace`].
#[derive(Debug)]
pub struct HostView {
    entries: Vec<Entry>,
}

impl HostView {
    /// Opens each host path as a detached mount (with the mounts below it
    /// for [`Scope::Tree`]), in the caller's namespace. Paths are looked up
    /// as bind sources are during assembly: symlinks are followed, but a
    /// host path that leads into `rootfs` (a directory the container
    /// controls) is resolved inside it from there. Duplicates are dropped;
    /// paths must be absolute.
    pub fn open(
        rootfs: &Path,
        paths: impl IntoIterator<Item = (PathBuf, Scope)>,
    ) -> Result<HostView> {
        let root = Root::open(rootfs)?;
        let mut wanted: Vec<(PathBuf, Scope)> = Vec::new();
        for (p, scope) in paths {
            if !p.is_absolute() {
                return Err(Error::invalid_at(
                    "host view",
                    &p,
                    "host paths must be absolute",
                ));
            }
            let p = crate::rootfs::policy::clean(&p);
            match wanted.iter_mut().find(|(q, _)| *q == p) {
                Some((_, s)) if scope == Scope::Tree => *s = Scope::Tree,
                Some(_) => {}
                None => wanted.push((p, scope)),
            }
        }
        // Parents first, so that a path below another is attached on top.
        wanted.sort_by_key(|(p, _)| p.components().count());
        let mut entries = Vec::with_capacity(wanted.len());
        for (path, scope) in wanted {
            let fd = crate::rootfs::sources::open_host_path(&root, &path)?;
            let mount = Mount::clone_fd(&fd, scope).map_err(|e| e.with_path(&path))?;
            let is_dir = rustix::fs::fstat(&mount)
                .map(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::Directory
                })
                .map_err(|e| Error::os_at("fstat host object", &path, e))?;
            entries.push(Entry {
                path,
                mount,
                is_dir,
            });
        }
        Ok(HostView { entries })
    }

    /// The paths opened, in the order they are installed.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().map(|e| e.path.as_path())
    }

    /// Makes a fresh tmpfs the calling thread's root, with every host
    /// object attached at its own path, and detaches what was the root.
    /// Call it right after [`MinimalNamespace::enter`]. A path below
    /// another host object must exist in it (nothing is created inside a
    /// host object).
    pub fn install(self) -> Result<()> {
        let scaffold = Mount::fs("tmpfs")
            .source("saferoot-host-view")
            .data("mode=755")
            .mount()?;
        let slash = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(os("open /"))?;
        let scaffold = scaffold.attach(&slash).map_err(Error::from)?;
        let mut placed: Vec<PathBuf> = Vec::new();
        for e in self.entries {
            // Never created inside a host object: that would write to the
            // host. (No pathrs here: the minimal namespace has no procfs.)
            let inside_object = placed.iter().any(|p| e.path.starts_with(p));
            let target = mount_point(scaffold.as_fd(), &e.path, e.is_dir, !inside_object)?;
            e.mount
                .attach(&target)
                .map_err(|err| Error::from(err).with_path(&e.path))?
                .forget();
            placed.push(e.path);
        }
        rustix::process::fchdir(&scaffold).map_err(os("fchdir to the host view"))?;
        scaffold.forget();
        rustix::process::pivot_root(c".", c".").map_err(os("pivot_root(\".\", \".\")"))?;
        rustix::mount::unmount(c".", UnmountFlags::DETACH)
            .map_err(os("detach the minimal root"))?;
        rustix::process::chdir(c"/").map_err(os("chdir /"))
    }
}
