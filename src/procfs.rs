//! A private, verified procfs, for sysctls and fd checks.
//!
//! saferoot never reads or writes the container's `/proc`: a container can
//! mount over or symlink anything in its own tree (CVE-2025-52881). Instead
//! it uses a procfs instance of its own: a fresh detached `fsopen("proc")`
//! mount made here where the kernel allows, otherwise whatever pathrs can
//! give safely (a checked clone of the host's `/proc`). Every file under it
//! is opened without following magic links or crossing mounts. On a fresh
//! instance, which nothing can be mounted over, the common opens are one
//! `openat2` each; on any other, pathrs checks each open.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};

use crate::{Error, Result};

/// A handle on a private procfs.
///
/// Cloning is cheap (the handle is shared), so one instance can serve a
/// whole run: made once, handed to [`crate::rootfs::AssembleOptions::procfs`]
/// and [`crate::rootfs::MountLock::nested_with`], and kept by forked
/// children. A procfs shows the pid namespace of the process that made it:
/// what is looked up by pid (`/proc/PID/...`) must be looked up in an
/// instance made in the caller's own pid namespace; `/proc/self`,
/// `/proc/thread-self` and the global files are right in any instance made
/// in the caller's pid namespace or an ancestor of it.
#[derive(Debug, Clone)]
pub struct Procfs {
    inner: std::sync::Arc<std::sync::OnceLock<Instance>>,
}

/// The procfs behind a [`Procfs`].
#[derive(Debug)]
enum Instance {
    /// A fresh `fsopen("proc")` instance made here: detached, so nothing
    /// can be mounted over anything in it, and its files and namespace
    /// links can be looked up with one call each (see [`Procfs::ns_inode`]).
    /// The fd of its root, and pathrs's handle on it, made (and checked by
    /// pathrs) only when a lookup needs pathrs. Most runs never do.
    ///
    /// `mount` is the fd `fsmount` gave: the instance stays mounted (in a
    /// mount namespace of its own) until the last copy of that fd goes,
    /// and that unmount waits for an RCU grace period. `root` is a plain
    /// `O_PATH` reopen of the same directory, whose last close costs no
    /// such wait; lookups go through it, so they go on working once
    /// `mount` is given up ([`Procfs::release_mount`]).
    Fresh {
        root: std::os::fd::OwnedFd,
        mount: std::sync::Mutex<Option<std::os::fd::OwnedFd>>,
        checked: std::sync::OnceLock<ProcfsHandle>,
    },
    /// What pathrs gave where no fresh instance could be made.
    Checked(ProcfsHandle),
}

impl std::os::fd::AsFd for Instance {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Instance::Fresh { root, .. } => root.as_fd(),
            Instance::Checked(h) => h.as_fd(),
        }
    }
}

impl Instance {
    /// pathrs's handle on the instance, for lookups pathrs checks.
    fn handle(&self) -> Result<&ProcfsHandle> {
        match self {
            Instance::Checked(h) => Ok(h),
            Instance::Fresh { root, checked, .. } => {
                if let Some(h) = checked.get() {
                    return Ok(h);
                }
                let fd = root
                    .try_clone()
                    .map_err(|e| Error::os("duplicate the procfs root", errno_of(&e)))?;
                let h = crate::error::pathrs_call("check the private procfs", "/proc", || {
                    ProcfsHandle::try_from_fd(fd)
                })?;
                // Another thread may have set it meanwhile; either handle
                // is on the same instance.
                let _ = checked.set(h);
                checked
                    .get()
                    .ok_or_else(|| Error::invalid("procfs", "no handle on the private procfs"))
            }
        }
    }
}

/// A fresh `fsopen("proc")` instance where the kernel allows it (its root
/// checked to be procfs; pathrs's own checks of it run only if a lookup
/// needs pathrs); otherwise whatever pathrs can give safely (a clone of the
/// host's `/proc`, checked on every use).
fn make_instance() -> Result<Instance> {
    if let Ok(mount) = fresh_procfs() {
        let root = rustix::fs::openat(
            &mount,
            c".",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        );
        if let Ok(root) = root {
            if rustix::fs::fstatfs(&root).is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC)
            {
                return Ok(Instance::Fresh {
                    root,
                    mount: std::sync::Mutex::new(Some(mount)),
                    checked: std::sync::OnceLock::new(),
                });
            }
        }
    }
    let inner = crate::error::pathrs_call("open private procfs", "/proc", || {
        ProcfsHandleBuilder::new().subset_pid(false).build()
    })?;
    Ok(Instance::Checked(inner))
}

/// Turns a sysctl name into its path under `/proc/sys`: `net.ipv4.ip_forward`
/// → `net/ipv4/ip_forward`. A name with a `/` is taken as a path already
/// (needed for names with dots in them, such as `net/ipv4/conf/eth0.1/...`).
/// Empty, `.` and `..` components are refused.
pub fn sysctl_path(name: &str) -> Result<PathBuf> {
    let op = "sysctl";
    if name.is_empty() || name.contains('\0') {
        return Err(Error::invalid(op, format!("bad sysctl name {name:?}")));
    }
    let sep = if name.contains('/') { '/' } else { '.' };
    let mut path = PathBuf::from("sys");
    for part in name.split(sep) {
        if part.is_empty() || part == "." || part == ".." {
            return Err(Error::invalid(
                op,
                format!("bad sysctl name {name:?}: empty, . or .. component"),
            ));
        }
        path.push(part);
    }
    Ok(path)
}

impl Procfs {
    /// Whether the instance is a fresh one saferoot made (see
    /// [`Instance::Fresh`]).
    fn is_fresh(&self) -> Result<bool> {
        Ok(matches!(self.instance()?, Instance::Fresh { .. }))
    }

    /// Gives up this process's hold on the mount of a fresh instance (see
    /// [`new`](Self::new)) and returns whether it held one. Lookups go on
    /// working through the handle. Where this was the last hold (in this
    /// process and every process forked with a copy), the instance is
    /// unmounted now, which waits for an RCU grace period here; the last
    /// copy of the handle then goes later without that wait. Otherwise the
    /// call only closes an fd. For a process that can choose when to wait:
    /// a run's forked children give up their copies first, and saferoot,
    /// idle while they set up, gives up the last.
    pub fn release_mount(&self) -> bool {
        let Some(Instance::Fresh { mount, .. }) = self.inner.get() else {
            return false;
        };
        let held = match mount.lock() {
            Ok(mut m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        held.is_some()
    }

    /// Whether this handle's instance exists: always, except for a
    /// [`deferred`](Self::deferred) handle that nothing has used yet in
    /// this process.
    pub fn is_made(&self) -> bool {
        self.inner.get().is_some()
    }

    /// The instance, made now if this handle was [`deferred`](Self::deferred)
    /// and nothing has used it yet.
    fn instance(&self) -> Result<&Instance> {
        if let Some(i) = self.inner.get() {
            return Ok(i);
        }
        let made = make_instance()?;
        // Another thread may have made one meanwhile; either serves.
        let _ = self.inner.set(made);
        self.inner
            .get()
            .ok_or_else(|| Error::invalid("procfs", "no private procfs"))
    }

    /// A full procfs (including `/proc/sys`), private to this process.
    ///
    /// A fresh `fsopen("proc")` instance where the kernel allows it (made
    /// here, its root checked to be procfs; pathrs's own checks of it run
    /// only if a lookup needs pathrs); otherwise whatever pathrs can give
    /// safely (a clone of the host's `/proc`, checked on every use).
    pub fn new() -> Result<Procfs> {
        Ok(Procfs {
            inner: std::sync::Arc::new(std::sync::OnceLock::from(make_instance()?)),
        })
    }

    /// A handle whose instance is made by its first use, by whichever
    /// process uses it first (as [`new`](Self::new) would make it there),
    /// and never if nothing uses it. For a caller that may not need a
    /// procfs at all: making one costs a superblock, and dropping the
    /// last reference to it an RCU grace period. A process forked before
    /// the first use makes its own on its own first use, in its own pid
    /// namespace: lookups by pid must then stay within the process that
    /// made it (see the type's documentation).
    pub fn deferred() -> Procfs {
        Procfs {
            inner: std::sync::Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Opens the sysctl `name` with `flags`; returns the file and the
    /// path it is shown as in errors.
    fn open_sysctl(&self, name: &str, flags: OpenFlags) -> Result<(std::fs::File, PathBuf)> {
        let path = sysctl_path(name)?;
        let shown = Path::new("/proc").join(&path);
        let h = self.instance()?.handle()?;
        let f = crate::error::pathrs_call("open sysctl", &shown, || {
            h.open(ProcfsBase::ProcRoot, &path, flags | OpenFlags::O_CLOEXEC)
        })?;
        Ok((f, shown))
    }

    /// Writes `value` to the sysctl `name` (dotted or slashed), in the
    /// namespaces of the calling thread.
    pub fn write_sysctl(&self, name: &str, value: &str) -> Result<()> {
        let (mut f, shown) = self.open_sysctl(name, OpenFlags::O_WRONLY)?;
        f.write_all(value.as_bytes())
            .map_err(|e| Error::os_at("write sysctl", &shown, errno_of(&e)))?;
        log::debug!("sysctl {name} = {value}");
        Ok(())
    }

    /// Reads the sysctl `name`, without the trailing newline.
    pub fn read_sysctl(&self, name: &str) -> Result<String> {
        let (mut f, shown) = self.open_sysctl(name, OpenFlags::O_RDONLY)?;
        let mut s = String::new();
        f.read_to_string(&mut s)
            .map_err(|e| Error::os_at("read sysctl", &shown, errno_of(&e)))?;
        Ok(s.trim_end_matches('\n').to_string())
    }

    /// The calling process's pid in this procfs's pid namespace (what
    /// `/proc/self` links to): its pid there, which differs from
    /// `getpid()` in a process of a descendant pid namespace.
    pub fn self_pid(&self) -> Result<u32> {
        use std::os::unix::ffi::OsStrExt;
        let target = if self.is_fresh()? {
            rustix::fs::readlinkat(self.instance()?, "self", Vec::new())
                .map(|t| PathBuf::from(std::ffi::OsStr::from_bytes(t.to_bytes())))
                .map_err(|e| Error::os_at("readlink", "/proc/self", e))?
        } else {
            let h = self.instance()?.handle()?;
            crate::error::pathrs_call("readlink", "/proc/self", || {
                h.readlink(ProcfsBase::ProcRoot, "self")
            })?
        };
        target
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::invalid(
                    "readlink /proc/self",
                    format!("not a pid: {}", target.display()),
                )
            })
    }

    /// The number of threads of the calling process (the entries of
    /// `/proc/self/task`), for a caller that must be single-threaded
    /// before it forks.
    ///
    /// On a fresh instance this is one `statx` of `self/task`: procfs gives
    /// that directory a link count of two plus the thread group's thread
    /// count, the same number its listing has (nothing can be mounted over
    /// it in a private instance). Otherwise the directory is opened
    /// through pathrs's checks and its entries counted.
    pub fn thread_count(&self) -> Result<usize> {
        if self.is_fresh()? {
            let st = rustix::fs::statx(
                self.instance()?,
                "self/task",
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                rustix::fs::StatxFlags::NLINK,
            )
            .map_err(|e| Error::os_at("statx", "/proc/self/task", e))?;
            return match usize::try_from(st.stx_nlink) {
                Ok(n) if n > 2 => Ok(n - 2),
                _ => Err(Error::invalid(
                    "statx /proc/self/task",
                    format!("link count {} counts no thread", st.stx_nlink),
                )),
            };
        }
        let dir = self.open_self(
            "task",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        )?;
        let mut n = 0;
        for entry in rustix::fs::Dir::read_from(&dir)
            .map_err(|e| Error::os_at("read directory", "/proc/self/task", e))?
        {
            let entry = entry.map_err(|e| Error::os_at("read directory", "/proc/self/task", e))?;
            if !matches!(entry.file_name().to_bytes(), b"." | b"..") {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Opens anew, with `flags`, the file that the calling thread's fd `fd`
    /// refers to: `/proc/thread-self/fd/N`, whose magic link is followed
    /// on purpose (`O_CLOEXEC` is added). On a fresh instance this is one
    /// `openat`; otherwise pathrs's checked open. Callers refuse symlink
    /// fds first (see [`crate::path::Handle::reopen_with`]).
    pub fn reopen_fd(
        &self,
        fd: BorrowedFd<'_>,
        flags: rustix::fs::OFlags,
    ) -> Result<std::fs::File> {
        let sub = PathBuf::from(format!("fd/{}", fd.as_raw_fd()));
        let shown = Path::new("/proc/thread-self").join(&sub);
        if let Some(r) = self.open_fresh("thread-self", &sub, flags, Last::FollowMagic) {
            return r
                .map(std::fs::File::from)
                .map_err(|e| Error::os_at("reopen fd", shown, e));
        }
        let flags = OpenFlags::from_bits_retain((flags | rustix::fs::OFlags::CLOEXEC).bits() as _);
        let h = self.instance()?.handle()?;
        crate::error::pathrs_call("reopen fd", shown, || {
            h.open_follow(ProcfsBase::ProcThreadSelf, &sub, flags)
        })
    }

    /// What the fd `fd` of the calling thread refers to, as the kernel
    /// names it (`readlink /proc/thread-self/fd/N` on the private procfs).
    pub fn fd_target(&self, fd: BorrowedFd<'_>) -> Result<PathBuf> {
        let sub = PathBuf::from(format!("fd/{}", fd.as_raw_fd()));
        let h = self.instance()?.handle()?;
        crate::error::pathrs_call(
            "readlink fd",
            Path::new("/proc/thread-self").join(&sub),
            || h.readlink(ProcfsBase::ProcThreadSelf, &sub),
        )
    }

    /// Opens `subpath` (e.g. `mountinfo`) under `/proc/thread-self`,
    /// read-only and without following symlinks.
    pub fn open_thread_self(&self, subpath: impl AsRef<Path>) -> Result<std::fs::File> {
        let sub = subpath.as_ref();
        if let Some(r) = self.open_fresh(
            "thread-self",
            sub,
            rustix::fs::OFlags::RDONLY,
            Last::NoFollow,
        ) {
            return r.map(std::fs::File::from).map_err(|e| {
                Error::os_at(
                    "open procfs file",
                    Path::new("/proc/thread-self").join(sub),
                    e,
                )
            });
        }
        self.instance()?
            .handle()?
            .open(
                ProcfsBase::ProcThreadSelf,
                sub,
                OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
            )
            .map_err(|e| {
                Error::resolve(
                    "open procfs file",
                    Path::new("/proc/thread-self").join(sub),
                    e,
                )
            })
    }

    /// Opens `subpath` under `/proc/thread-self` with `flags` (for example
    /// `O_WRONLY` for `attr/exec`), without following symlinks;
    /// `O_CLOEXEC` is added.
    pub fn open_thread_self_with(
        &self,
        subpath: impl AsRef<Path>,
        flags: rustix::fs::OFlags,
    ) -> Result<std::fs::File> {
        let sub = subpath.as_ref();
        if let Some(r) = self.open_fresh("thread-self", sub, flags, Last::NoFollow) {
            return r.map(std::fs::File::from).map_err(|e| {
                Error::os_at(
                    "open procfs file",
                    Path::new("/proc/thread-self").join(sub),
                    e,
                )
            });
        }
        let flags = OpenFlags::from_bits_retain((flags | rustix::fs::OFlags::CLOEXEC).bits() as _);
        let h = self.instance()?.handle()?;
        crate::error::pathrs_call(
            "open procfs file",
            Path::new("/proc/thread-self").join(sub),
            || h.open(ProcfsBase::ProcThreadSelf, sub, flags),
        )
    }

    /// Opens `subpath` (e.g. `task`) under `/proc/self`, the calling
    /// process, with `flags`, without following symlinks; `O_CLOEXEC` is
    /// added.
    pub fn open_self(
        &self,
        subpath: impl AsRef<Path>,
        flags: rustix::fs::OFlags,
    ) -> Result<std::fs::File> {
        let sub = subpath.as_ref();
        if let Some(r) = self.open_fresh("self", sub, flags, Last::NoFollow) {
            return r.map(std::fs::File::from).map_err(|e| {
                Error::os_at("open procfs file", Path::new("/proc/self").join(sub), e)
            });
        }
        let flags = OpenFlags::from_bits_retain((flags | rustix::fs::OFlags::CLOEXEC).bits() as _);
        let h = self.instance()?.handle()?;
        crate::error::pathrs_call(
            "open procfs file",
            Path::new("/proc/self").join(sub),
            || h.open(ProcfsBase::ProcSelf, sub, flags),
        )
    }

    /// Opens `subpath` under `/proc` (e.g. `PID/ns/mnt` or `kcore`),
    /// without following symlinks, with `flags` (`O_CLOEXEC` is added).
    pub fn open_root(
        &self,
        subpath: impl AsRef<Path>,
        flags: rustix::fs::OFlags,
    ) -> Result<std::fs::File> {
        let sub = subpath.as_ref();
        if let Some(r) = self.open_fresh("", sub, flags, Last::NoFollow) {
            return r
                .map(std::fs::File::from)
                .map_err(|e| Error::os_at("open procfs file", Path::new("/proc").join(sub), e));
        }
        let flags = OpenFlags::from_bits_retain((flags | rustix::fs::OFlags::CLOEXEC).bits() as _);
        let h = self.instance()?.handle()?;
        crate::error::pathrs_call("open procfs file", Path::new("/proc").join(sub), || {
            h.open(ProcfsBase::ProcRoot, sub, flags)
        })
    }
}

impl Procfs {
    /// Opens `sub` (relative to the procfs root) on a fresh instance with
    /// one system call, without pathrs's per-open checks, which guard
    /// against what cannot happen to an instance made here: a mount over a
    /// file in it, or the handle being some other filesystem. `None` when
    /// the instance is not fresh (the caller then asks pathrs).
    ///
    /// With [`Last::NoFollow`] the lookup is pathrs's own: it stays beneath
    /// the root and on this mount, follows no magic link, and does not
    /// follow the last component (`openat2` with `O_NOFOLLOW` and
    /// `RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS`; procfs's
    /// own symlinks on the way, such as `self`, are followed). With
    /// [`Last::FollowMagic`] it is a plain `openat` that follows the last
    /// component (a namespace link leaves procfs for nsfs by design); the
    /// components before it are this procfs's own (pid directories, `ns`,
    /// and `thread-self`, a symlink within it).
    ///
    /// `sub` is taken under `base` (`""`, `"self"` or `"thread-self"`) and
    /// must be plain names only (no `..`, `.` or leading `/`), so that the
    /// lookup cannot leave `base`, as pathrs's cannot; anything else is
    /// left to pathrs.
    fn open_fresh(
        &self,
        base: &str,
        sub: &Path,
        flags: rustix::fs::OFlags,
        last: Last,
    ) -> Option<rustix::io::Result<std::os::fd::OwnedFd>> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        // Not made (an error the pathrs path reports) or not fresh: pathrs.
        let inst = self.instance().ok()?;
        if !matches!(inst, Instance::Fresh { .. }) {
            return None;
        }
        let mut path = String::from(base);
        for c in sub.components() {
            match c {
                std::path::Component::Normal(n) => {
                    if !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str(n.to_str()?);
                }
                _ => return None,
            }
        }
        if path.is_empty() || path == base {
            return None;
        }
        let sub = path.as_str();
        let flags = flags | OFlags::CLOEXEC;
        Some(match last {
            Last::NoFollow => rustix::fs::openat2(
                inst,
                sub,
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_XDEV | ResolveFlags::NO_MAGICLINKS,
            ),
            Last::FollowMagic => rustix::fs::openat(inst, sub, flags, Mode::empty()),
        })
    }

    /// A user namespace with the given uid and gid maps (each line
    /// `inside outside count`), as an fd: what an idmapped mount needs.
    /// A child is parked in a new user namespace for as long as it takes to
    /// write its maps and open its namespace.
    pub fn make_userns(&self, uid_map: &str, gid_map: &str) -> Result<std::os::fd::OwnedFd> {
        let child = crate::sys::userns::UsernsChild::spawn()
            .map_err(|e| Error::os("fork into a new user namespace", e))?;
        let pid = child.pid();
        self.write_id_maps(pid, uid_map, gid_map)?;
        let f = self.open_namespace(Some(pid), "user")?;
        drop(child);
        Ok(f.into())
    }

    /// Writes `uid_map` and then `gid_map` (each line `inside outside
    /// count`) of the process `pid`, as this procfs numbers it.
    pub(crate) fn write_id_maps(&self, pid: u32, uid_map: &str, gid_map: &str) -> Result<()> {
        for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let sub = PathBuf::from(format!("{pid}/{file}"));
            let mut f = self.open_root(&sub, rustix::fs::OFlags::WRONLY)?;
            f.write_all(map.as_bytes()).map_err(|e| {
                Error::os_at("write id map", Path::new("/proc").join(&sub), errno_of(&e))
            })?;
        }
        Ok(())
    }

    /// Opens the namespace `kind` (`mnt`, `user`, `pid`, `net`, ...) of
    /// `pid`, or of the calling thread when `None`, as an nsfs fd.
    pub fn open_namespace(&self, pid: Option<u32>, kind: &str) -> Result<std::fs::File> {
        check_ns_name("open namespace", kind)?;
        let (fresh_base, fresh_sub) = match pid {
            Some(p) => (String::new(), format!("{p}/ns/{kind}")),
            None => ("thread-self".to_string(), format!("ns/{kind}")),
        };
        if let Some(r) = self.open_fresh(
            &fresh_base,
            Path::new(&fresh_sub),
            rustix::fs::OFlags::RDONLY,
            Last::FollowMagic,
        ) {
            return r.map(std::fs::File::from).map_err(|e| {
                let shown = Path::new("/proc").join(&fresh_base).join(&fresh_sub);
                Error::os_at("open namespace", shown, e)
            });
        }
        let (base, sub, shown) = match pid {
            Some(p) => (
                ProcfsBase::ProcRoot,
                PathBuf::from(format!("{p}/ns/{kind}")),
                format!("/proc/{p}/ns/{kind}"),
            ),
            None => (
                ProcfsBase::ProcThreadSelf,
                PathBuf::from(format!("ns/{kind}")),
                format!("/proc/thread-self/ns/{kind}"),
            ),
        };
        let h = self.instance()?.handle()?;
        crate::error::pathrs_call("open namespace", shown, || {
            h.open_follow(base, &sub, OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC)
        })
    }

    /// Whether the calling thread is in the initial pid namespace: the
    /// kernel gives the initial namespaces fixed inode numbers, the pid
    /// namespace's being `0xEFFFFFFC` (`PROC_PID_INIT_INO`, since Linux 3.8).
    /// (`NSpid` in `status` cannot tell: it lists only the levels visible
    /// to the procfs it is read from.)
    pub fn in_initial_pid_ns(&self) -> Result<bool> {
        const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;
        let f = self.open_namespace(None, "pid")?;
        let st = rustix::fs::fstat(&f).map_err(|e| Error::os("fstat pid namespace", e))?;
        Ok(st.st_ino == PROC_PID_INIT_INO)
    }

    /// The inode number of the mount namespace of `pid` (or of the calling
    /// thread when `None`), which identifies the namespace.
    pub fn mount_ns_id(&self, pid: Option<u32>) -> Result<u64> {
        self.ns_inode("mnt", pid)
    }

    /// The inode number of the namespace `name` (`mnt`, `net`, `ipc`,
    /// `uts`, `pid`, `cgroup`, ...) of `pid`, or of the calling thread when
    /// `None`; it identifies the namespace.
    ///
    /// On a fresh instance this is one `statx` through the namespace link:
    /// the instance is detached and private, so no mount can hide or replace
    /// anything on the way, and nothing is opened. Otherwise the link is
    /// opened through pathrs's checks.
    pub fn ns_inode(&self, name: &str, pid: Option<u32>) -> Result<u64> {
        if self.is_fresh()? {
            check_ns_name("namespace inode", name)?;
            let sub = match pid {
                Some(p) => format!("{p}/ns/{name}"),
                None => format!("thread-self/ns/{name}"),
            };
            let st = rustix::fs::statx(
                self.instance()?,
                sub.as_str(),
                rustix::fs::AtFlags::empty(),
                rustix::fs::StatxFlags::INO,
            )
            .map_err(|e| Error::os_at("statx namespace", Path::new("/proc").join(&sub), e))?;
            return Ok(st.stx_ino);
        }
        let f = self.open_namespace(pid, name)?;
        let st = rustix::fs::fstat(&f).map_err(|e| Error::os("fstat namespace", e))?;
        Ok(st.st_ino)
    }
}

/// A new procfs superblock, mounted detached (`nosuid,nodev,noexec`), as an
/// `O_PATH` fd on its root.
fn fresh_procfs() -> std::result::Result<std::os::fd::OwnedFd, rustix::io::Errno> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let fs = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_create(&fs)?;
    rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
}

/// Refuses a namespace name (`mnt`, `user`, ...) that is empty, has a `/`
/// or starts with a `.`: it must name one link in `ns/`.
fn check_ns_name(op: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Error::invalid(op, format!("bad namespace name {name:?}")));
    }
    Ok(())
}

/// How [`Procfs::open_fresh`] treats the last component.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Never followed: no symlink anywhere on the way.
    NoFollow,
    /// Followed, for the namespace links (`PID/ns/KIND`), which are magic
    /// links into nsfs.
    FollowMagic,
}

fn errno_of(e: &std::io::Error) -> rustix::io::Errno {
    rustix::io::Errno::from_io_error(e).unwrap_or(rustix::io::Errno::IO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_map_to_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            Path::new("sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.1/forwarding").unwrap(),
            Path::new("sys/net/ipv4/conf/eth0.1/forwarding")
        );
        for bad in ["", "net..x", "net/../../etc", ".", "kernel.", "a\0b"] {
            let e = sysctl_path(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    /// A fresh instance (made by [`Procfs::new`], as root on this kernel)
    /// and one pathrs made, which takes the checked path for everything.
    fn fresh_and_checked() -> (Procfs, Procfs) {
        let fresh = Procfs::new().unwrap();
        assert!(
            fresh.is_fresh().unwrap(),
            "this kernel allows fsopen(\"proc\") as root"
        );
        let checked = Procfs {
            inner: std::sync::Arc::new(std::sync::OnceLock::from(Instance::Checked(
                ProcfsHandleBuilder::new()
                    .subset_pid(false)
                    .build()
                    .unwrap(),
            ))),
        };
        (fresh, checked)
    }

    /// The one-`statx` lookup of a fresh instance and pathrs's checked open
    /// of the link agree with each other and with the host's `/proc`, for
    /// the calling thread and by pid, before and after the thread moves
    /// to a new mount namespace; a bad name is refused by both.
    #[test]
    fn namespace_inodes_agree_between_the_fresh_and_the_checked_lookup() {
        use std::os::unix::fs::MetadataExt;
        let (fresh, checked) = fresh_and_checked();
        let pid = std::process::id();
        let host = |name: &str| {
            std::fs::metadata(format!("/proc/thread-self/ns/{name}"))
                .unwrap()
                .ino()
        };
        std::thread::spawn(move || {
            for name in ["mnt", "net", "user", "pid", "uts"] {
                let want = host(name);
                assert_eq!(fresh.ns_inode(name, None).unwrap(), want, "{name}");
                assert_eq!(checked.ns_inode(name, None).unwrap(), want, "{name}");
            }
            let main_mnt = fresh.ns_inode("mnt", Some(pid)).unwrap();
            assert_eq!(main_mnt, checked.ns_inode("mnt", Some(pid)).unwrap());
            // A thread of its own in a new mount namespace: the thread's
            // answer changes, the process's (by pid: its main thread) not.
            crate::namespace::unshare(rustix::thread::UnshareFlags::NEWNS).unwrap();
            let now = host("mnt");
            assert_ne!(now, main_mnt);
            assert_eq!(fresh.ns_inode("mnt", None).unwrap(), now);
            assert_eq!(checked.ns_inode("mnt", None).unwrap(), now);
            assert_eq!(fresh.ns_inode("mnt", Some(pid)).unwrap(), main_mnt);
            for bad in ["", "../mnt", ".", "mnt/x"] {
                assert_eq!(
                    fresh.ns_inode(bad, None).unwrap_err().kind(),
                    crate::ErrorKind::InvalidInput,
                    "{bad:?}"
                );
                assert!(checked.ns_inode(bad, None).is_err(), "{bad:?}");
            }
        })
        .join()
        .unwrap();
    }

    /// Reopening an `O_PATH` fd gives the inode itself with the flags
    /// asked for, close-on-exec, on the fresh and the checked instance.
    #[test]
    fn reopening_an_fd_agrees_between_the_fresh_and_the_checked_instance() {
        use std::io::{Read as _, Write as _};
        use std::os::fd::AsFd;
        let (fresh, checked) = fresh_and_checked();
        let file =
            std::env::temp_dir().join(format!("saferoot-procfs-reopen.{}", std::process::id()));
        std::fs::write(&file, "contents").unwrap();
        let opath = rustix::fs::open(
            &file,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        for p in [&fresh, &checked] {
            std::fs::write(&file, "contents").unwrap();
            let mut s = String::new();
            p.reopen_fd(opath.as_fd(), rustix::fs::OFlags::RDONLY)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(s, "contents");
            // The reopened file is the inode itself, writable as asked.
            p.reopen_fd(opath.as_fd(), rustix::fs::OFlags::WRONLY)
                .unwrap()
                .write_all(b"C")
                .unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "Contents");
            let fd = p
                .reopen_fd(opath.as_fd(), rustix::fs::OFlags::RDONLY)
                .unwrap();
            let st = rustix::io::fcntl_getfd(&fd).unwrap();
            assert!(st.contains(rustix::io::FdFlags::CLOEXEC));
        }
        std::fs::remove_file(&file).unwrap();
    }

    /// `thread_count` of a fresh instance (a link count) and of a checked
    /// one (a listing) both equal the entries of the host's
    /// `/proc/self/task`, as threads come and go. Other tests of this
    /// binary run threads of their own meanwhile, so the three are read
    /// until they agree once for each number of helper threads.
    #[test_log::test]
    fn thread_counts_agree_with_the_task_listing() {
        let (fresh, checked) = fresh_and_checked();
        let listed = || std::fs::read_dir("/proc/self/task").unwrap().count();
        let agree = |at_least: usize| {
            for _ in 0..1000 {
                let before = listed();
                let (f, c) = (
                    fresh.thread_count().unwrap(),
                    checked.thread_count().unwrap(),
                );
                if f == before && c == before && listed() == before {
                    assert!(f >= at_least, "{f} threads, at least {at_least} expected");
                    return f;
                }
                std::thread::yield_now();
            }
            panic!("the thread counts never agreed with the task listing");
        };
        let base = agree(1);
        log::debug!("{base} threads before the helpers");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let helpers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    let _ = rx.lock().map(|r| r.recv());
                })
            })
            .collect();
        agree(4);
        drop(tx);
        for h in helpers {
            h.join().unwrap();
        }
        agree(1);
    }

    /// A deferred handle makes no instance until something needs one:
    /// then it makes the kind `new` makes (fresh, as root here), once,
    /// shared by its clones, and keeps it.
    #[test_log::test]
    fn a_deferred_handle_makes_its_instance_at_first_use_only() {
        let deferred = Procfs::deferred();
        let copy = deferred.clone();
        assert!(!deferred.is_made() && !copy.is_made());
        assert!(deferred.inner.get().is_none());
        assert!(deferred.thread_count().unwrap() >= 1);
        assert!(
            deferred.is_made() && copy.is_made(),
            "clones share the instance"
        );
        assert!(
            deferred.is_fresh().unwrap(),
            "as root here, a fresh instance"
        );
        let root = |p: &Procfs| {
            p.inner
                .get()
                .map(|i| std::os::fd::AsFd::as_fd(i).as_raw_fd())
        };
        let fd = root(&deferred).unwrap();
        let st = rustix::fs::fstatfs(deferred.instance().unwrap()).unwrap();
        assert_eq!(st.f_type, rustix::fs::PROC_SUPER_MAGIC);
        // Used again, through the clone: the same instance.
        assert_eq!(copy.self_pid().unwrap(), std::process::id());
        assert_eq!(root(&copy), Some(fd));
        assert_eq!(root(&deferred), Some(fd));
    }

    /// Giving up the mount fd of a fresh instance: the clones share the
    /// one hold (the second call finds none), and lookups, the
    /// pathrs-checked ones included, go on working through the handle. A deferred handle nothing has used
    /// holds nothing.
    #[test_log::test]
    fn lookups_go_on_after_the_mount_is_released() {
        assert!(!Procfs::deferred().release_mount());
        let p = Procfs::new().unwrap();
        let copy = p.clone();
        let Some(Instance::Fresh { root, mount, .. }) = p.inner.get() else {
            panic!("as root here, a fresh instance");
        };
        let m = mount.lock().unwrap().as_ref().map(|m| m.as_raw_fd());
        let m = m.expect("held until released");
        assert_ne!(m, root.as_raw_fd(), "lookups go through a reopen");
        assert!(mount.lock().unwrap().is_some());
        assert!(copy.release_mount());
        assert!(mount.lock().unwrap().is_none(), "given up for every clone");
        assert!(!p.release_mount());
        assert_eq!(p.self_pid().unwrap(), std::process::id());
        assert!(p.thread_count().unwrap() >= 1);
        assert!(p.ns_inode("mnt", None).unwrap() > 0);
        assert!(!p.read_sysctl("kernel.ostype").unwrap().is_empty());
        // pathrs's checked handle is made from the reopen too.
        assert!(p.instance().unwrap().handle().is_ok());
    }

    /// The one-call opens of a fresh instance (`open_root`, `open_self`,
    /// `open_thread_self`, namespace links, `make_userns`) give what
    /// pathrs's checked opens give, and refuse what they refuse: a symlink
    /// as the last component of a non-following open, `..` out of the
    /// base.
    #[test]
    fn fresh_opens_agree_with_the_checked_ones() {
        use std::io::Read as _;
        use std::os::unix::fs::MetadataExt;
        let (fresh, checked) = fresh_and_checked();
        let pid = std::process::id();
        for p in [&fresh, &checked] {
            let mut s = String::new();
            p.open_root(format!("{pid}/status"), rustix::fs::OFlags::RDONLY)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert!(s.contains(&format!("Pid:\t{pid}")), "{s}");
            // "self" is a symlink within procfs: followed on the way, not
            // as the last component.
            let mut via_self = String::new();
            p.open_root("self/status", rustix::fs::OFlags::RDONLY)
                .unwrap()
                .read_to_string(&mut via_self)
                .unwrap();
            assert!(via_self.contains(&format!("Pid:\t{pid}")));
            assert!(p.open_root("self", rustix::fs::OFlags::RDONLY).is_err());
            assert!(p.open_root("self/cwd", rustix::fs::OFlags::RDONLY).is_err());
            // Under self and thread-self: the same files as the host's
            // /proc shows, and no way out of the base with "..".
            let mut map = String::new();
            p.open_thread_self("uid_map")
                .unwrap()
                .read_to_string(&mut map)
                .unwrap();
            assert_eq!(map, std::fs::read_to_string("/proc/self/uid_map").unwrap());
            let task = p
                .open_self(
                    "task",
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                )
                .unwrap();
            assert!(task.metadata().unwrap().is_dir());
            assert!(p.open_thread_self("../../1/environ").is_err());
            assert!(p
                .open_self("../1/environ", rustix::fs::OFlags::RDONLY)
                .is_err());
            assert!(p
                .open_thread_self_with("cwd", rustix::fs::OFlags::RDONLY)
                .is_err());
            let ns = p.open_namespace(Some(pid), "mnt").unwrap();
            let host = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).unwrap();
            assert_eq!(ns.metadata().unwrap().ino(), host.ino());
            let ns = p.open_namespace(None, "net").unwrap();
            let host = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
            assert_eq!(ns.metadata().unwrap().ino(), host.ino());
            // A user namespace mapping root to root: its fd is a user
            // namespace (NS_GET_NSTYPE) other than ours.
            let userns = p.make_userns("0 0 1\n", "0 0 1\n").unwrap();
            assert_eq!(
                crate::sys::ns_type(std::os::fd::AsFd::as_fd(&userns)).unwrap(),
                libc::CLONE_NEWUSER
            );
            let ours = std::fs::metadata("/proc/self/ns/user").unwrap().ino();
            assert_ne!(rustix::fs::fstat(&userns).unwrap().st_ino, ours);
        }
    }

    #[test]
    fn reads_a_sysctl_through_the_private_procfs() {
        let p = Procfs::new().unwrap();
        let v = p.read_sysctl("kernel.ostype").unwrap();
        assert_eq!(v, "Linux");
        let e = p.read_sysctl("kernel.no_such_sysctl_here").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound, "{e}");
    }
}
