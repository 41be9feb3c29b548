//! Where bind sources and overlay layers are looked up, and opening them.
//!
//! A bind source or an overlay layer names a directory on the host. When
//! that directory lies inside the rootfs (or inside a directory the spec
//! names as [`MountSpec::source_root`], such as an OCI bundle), the image
//! controls what is there: a symlink `rootfs/srv -> /etc` would make a
//! host-side lookup of `<rootfs>/srv` bind the host's `/etc`. Such paths are
//! therefore resolved inside that directory with `openat2(RESOLVE_IN_ROOT)`
//! (pathrs), never by the kernel's ordinary lookup from the host's `/`.
//!
//! The decision is made at plan time, on the lexically cleaned path
//! ([`classify`]); the cleaned path is also the one opened, so `..` cannot
//! make what is checked differ from what is used. Host paths outside every
//! such directory are host paths: opened once (one `open_tree`, or one
//! `open` for a layer), never looked up again.
//!
//! Overlay layers are handed to the kernel as open directories
//! (`FSCONFIG_SET_FD`, Linux 6.13, [`Feature::OverlayLayerFds`]). On older
//! kernels a layer inside the rootfs or the source root is passed as a
//! string only after its confined fd proved that the path has no symlink in
//! it (the kernel's name for the fd, read through the private procfs, equals
//! the lexical path); otherwise the mount is refused with
//! [`crate::ErrorKind::Unsupported`] naming the feature.
//!
//! [`MountSpec::source_root`]: crate::rootfs::MountSpec::source_root

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::OFlags;
use serde::Serialize;

use crate::features::{self, Feature};
use crate::mount::FsBuilder;
use crate::mount::Scope;
use crate::path::{Handle, Root};
use crate::procfs::Procfs;
use crate::rootfs::policy;
use crate::{Error, Mount, Result};

/// Where a bind source or an overlay layer is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum SourceLookup {
    /// A host path outside the rootfs and any source root: looked up once
    /// by the kernel, from the caller's `/`.
    Host,
    /// Inside the rootfs: `path` (absolute, in-root) is resolved confined to
    /// the root being assembled, with the mounts already made in it.
    Rootfs {
        /// The rootfs directory on the host (for messages, and for the
        /// string form on kernels without overlay layer fds).
        rootfs: PathBuf,
        /// The path inside it.
        path: PathBuf,
    },
    /// Inside the host directory `dir` (a [`source_root`]): `path` is
    /// resolved confined to it.
    ///
    /// [`source_root`]: crate::rootfs::MountSpec::source_root
    Dir {
        /// The confining directory on the host.
        dir: PathBuf,
        /// The path inside it.
        path: PathBuf,
    },
}

/// Which overlayfs parameter a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerKind {
    /// A lower layer (`lowerdir`, `lowerdir+`), topmost first.
    Lower,
    /// A data-only lower layer (after `::` in `lowerdir`, or `datadir+`).
    Data,
    /// The upper layer (`upperdir`).
    Upper,
    /// The work directory (`workdir`).
    Work,
}

impl LayerKind {
    /// The `fsconfig` key that takes one layer of this kind.
    fn key(self) -> &'static str {
        match self {
            LayerKind::Lower => "lowerdir+",
            LayerKind::Data => "datadir+",
            LayerKind::Upper => "upperdir",
            LayerKind::Work => "workdir",
        }
    }
}

/// One overlayfs layer of a planned overlay mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayLayer {
    /// Which parameter.
    pub kind: LayerKind,
    /// The host path, lexically cleaned.
    pub path: PathBuf,
    /// Where it is looked up.
    pub lookup: SourceLookup,
}

/// `rest` (a path below some directory) as an absolute in-root path.
fn in_root(rest: &Path) -> PathBuf {
    Path::new("/").join(rest)
}

/// Decides where `source` is looked up. `what` names it in errors (`bind
/// source`, `lowerdir`). A relative `source` is relative to `source_root`
/// and may not leave it; without a source root it is refused. The returned
/// path is the lexically cleaned absolute host path.
pub fn classify(
    what: &str,
    source: &Path,
    source_root: Option<&Path>,
    rootfs: &Path,
) -> Result<(PathBuf, SourceLookup)> {
    let bytes = source.as_os_str().as_encoded_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(Error::invalid(
            "plan mount",
            format!("{what} {source:?} is empty or contains a NUL byte"),
        ));
    }
    if let Some(d) = source_root {
        if !d.is_absolute() || d.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Error::invalid(
                "plan mount",
                format!("sourceRoot {} must be an absolute host path", d.display()),
            ));
        }
    }
    let dir = source_root.map(policy::clean);
    // The part of `source` below the source root, as written: relative, or
    // absolute and spelt inside it.
    let below = match &dir {
        Some(_) if source.is_relative() => Some(source),
        Some(d) => source.strip_prefix(d).ok(),
        None => None,
    };
    if let (Some(d), Some(below)) = (&dir, below) {
        // Lexically, `..` may not climb out of the source root: what is
        // judged must be what is opened.
        let mut depth = 0usize;
        for c in below.components() {
            match c {
                Component::Normal(_) => depth += 1,
                Component::ParentDir if depth == 0 => {
                    return Err(Error::invalid(
                        "plan mount",
                        format!(
                            "{what} {} leaves its source root {} with ..",
                            source.display(),
                            d.display()
                        ),
                    ))
                }
                Component::ParentDir => depth -= 1,
                _ => {}
            }
        }
    }
    let cleaned = match &dir {
        _ if source.is_absolute() => policy::clean(source),
        Some(d) => policy::clean(&d.join(source)),
        None => {
            return Err(Error::invalid(
                "plan mount",
                format!(
                    "{what} {} must be an absolute host path (or relative to a sourceRoot)",
                    source.display()
                ),
            ))
        }
    };
    let rootfs = policy::clean(rootfs);
    if let Ok(rest) = cleaned.strip_prefix(&rootfs) {
        let path = in_root(rest);
        return Ok((cleaned, SourceLookup::Rootfs { rootfs, path }));
    }
    if let Some(d) = dir {
        if let Ok(rest) = cleaned.strip_prefix(&d) {
            let path = in_root(rest);
            return Ok((cleaned, SourceLookup::Dir { dir: d, path }));
        }
    }
    Ok((cleaned, SourceLookup::Host))
}

/// Resolves a confined source to a handle: in the root being assembled
/// (`root`) for [`SourceLookup::Rootfs`], in its directory for
/// [`SourceLookup::Dir`]. `None` for a host path.
fn resolve_confined(root: &Root, lookup: &SourceLookup, nofollow: bool) -> Result<Option<Handle>> {
    let resolve = |r: &Root, p: &Path| {
        if nofollow {
            r.resolve_nofollow(p)
        } else {
            r.resolve(p)
        }
    };
    match lookup {
        SourceLookup::Host => Ok(None),
        SourceLookup::Rootfs { path, .. } => resolve(root, path).map(Some),
        SourceLookup::Dir { dir, path } => {
            let d = Root::open(dir)?;
            resolve(&d, path).map(Some)
        }
    }
}

/// What walking a host path found.
enum HostWalk {
    /// The path, opened (`O_PATH`), without passing through the rootfs.
    Opened(OwnedFd),
    /// The path went into the rootfs (through host symlinks that the
    /// lexical check cannot see); the rest was resolved inside it.
    IntoRootfs(Handle),
}

/// The most symlinks followed in one host path, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

/// `PROC_SUPER_MAGIC`: procfs, whose magic links only the kernel can follow.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Opens the host path `source` one component at a time (`O_PATH |
/// O_NOFOLLOW`, following symlinks by reading them), the way the kernel
/// would, and watches for the rootfs directory (`root`'s device and inode):
/// a host symlink can lead there even when the path is not lexically
/// under the rootfs. From there on, the rest of the path is resolved inside
/// the root being assembled. The path is walked once, and the result is
/// the fd that is used: nothing looks the path up again.
///
/// Symlinks on procfs (`/proc/PID/ns/net`, `/proc/self/fd/N`) are magic
/// links; those are left to the kernel to follow.
fn walk_host(root: &Root, source: &Path, nofollow: bool) -> Result<HostWalk> {
    use std::collections::VecDeque;
    use std::ffi::OsString;

    use rustix::fs::{fstat, fstatfs, openat, readlinkat, FileType, Mode};

    let os = |op: &'static str| move |e| Error::os_at(op, source, e);
    // By mount and inode when the root knows the rootfs directory's host
    // identity (an assembly), by device and inode otherwise.
    let by_mount = root.host_identity();
    let id = |fd: BorrowedFd<'_>| -> rustix::io::Result<(u64, u64)> {
        if by_mount.is_some() {
            let st = rustix::fs::statx(
                fd,
                c"",
                rustix::fs::AtFlags::EMPTY_PATH,
                rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID,
            )?;
            Ok((st.stx_mnt_id, st.stx_ino))
        } else {
            fstat(fd).map(|st| (st.st_dev, st.st_ino))
        }
    };
    let rootfs = match by_mount {
        Some(host) => host,
        None => id(root.as_fd()).map_err(os("stat rootfs"))?,
    };
    let slash = || {
        openat(
            rustix::fs::CWD,
            c"/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(os("open /"))
    };
    let parts = |p: &Path| -> VecDeque<OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect()
    };
    let mut cur = slash()?;
    let mut todo = parts(source);
    let mut links = 0;
    loop {
        if id(cur.as_fd()).map_err(os("stat bind source"))? == rootfs {
            let rest = Path::new("/").join(todo.iter().collect::<PathBuf>());
            log::debug!(
                "{} goes into the rootfs through a host symlink; {} is resolved inside it",
                source.display(),
                rest.display()
            );
            let h = if nofollow {
                root.resolve_nofollow(&rest)?
            } else {
                root.resolve(&rest)?
            };
            return Ok(HostWalk::IntoRootfs(h));
        }
        let Some(name) = todo.pop_front() else {
            return Ok(HostWalk::Opened(cur));
        };
        let last = todo.is_empty();
        let next = openat(
            &cur,
            name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(os("open bind source"))?;
        let is_link =
            FileType::from_raw_mode(fstat(&next).map_err(os("stat bind source"))?.st_mode)
                == FileType::Symlink;
        if !is_link || (last && nofollow) {
            cur = next;
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(Error::os_at(
                "open bind source",
                source,
                rustix::io::Errno::LOOP,
            ));
        }
        if fstatfs(&cur).map_err(os("statfs bind source"))?.f_type as i64 == PROC_SUPER_MAGIC {
            cur = openat(
                &cur,
                name.as_os_str(),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(os("open bind source"))?;
            continue;
        }
        let target = readlinkat(&next, c"", Vec::new()).map_err(os("readlink bind source"))?;
        let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
        let mut new = parts(&target);
        new.append(&mut todo);
        todo = new;
        if target.is_absolute() {
            cur = slash()?;
        }
    }
}

/// Opens the host path `source` as a bind source is looked up: walked
/// once from `/`, symlinks followed, but resolved inside `root` from the
/// moment it reaches the rootfs directory. An `O_PATH` fd of what it names.
pub(crate) fn open_host_path(root: &Root, source: &Path) -> Result<OwnedFd> {
    match walk_host(root, source, false).map_err(|e| e.with_path(source))? {
        HostWalk::Opened(fd) => Ok(fd),
        HostWalk::IntoRootfs(h) => Ok(OwnedFd::from(h)),
    }
}

/// The bind mount of a planned source: one `open_tree` of the host path,
/// or a clone of the handle resolved inside its root.
pub(crate) fn clone_source(
    root: &Root,
    source: &Path,
    lookup: &SourceLookup,
    recursive: bool,
    nofollow: bool,
) -> Result<Mount> {
    let confined = match resolve_confined(root, lookup, nofollow) {
        Ok(None) => match walk_host(root, source, nofollow)? {
            HostWalk::Opened(fd) => {
                return Mount::clone_fd(&fd, Scope::tree_if(recursive))
                    .map_err(|e| e.with_path(source))
            }
            HostWalk::IntoRootfs(h) => h,
        },
        Ok(Some(h)) => h,
        Err(e) => return Err(e.with_path(source)),
    };
    log::debug!("bind source {} resolved in {lookup:?}", source.display());
    Mount::clone_fd(&confined, Scope::tree_if(recursive)).map_err(|e| e.with_path(source))
}

/// The target of the symlink a copy-symlink mount copies, read inside its
/// root when it has one.
pub(crate) fn read_source_link(
    root: &Root,
    source: &Path,
    lookup: &SourceLookup,
) -> Result<PathBuf> {
    match lookup {
        SourceLookup::Host => match walk_host(root, source, true)? {
            HostWalk::Opened(fd) => rustix::fs::readlinkat(&fd, c"", Vec::new())
                .map(|t| PathBuf::from(std::ffi::OsString::from_vec(t.into_bytes())))
                .map_err(|e| Error::os_at("readlink bind source", source, e)),
            HostWalk::IntoRootfs(_) => Err(Error::invalid_at(
                "copy-symlink",
                source,
                "the host path leads into the rootfs; name the symlink by its path in the rootfs",
            )),
        },
        SourceLookup::Rootfs { path, .. } => root.readlink(path),
        SourceLookup::Dir { dir, path } => Root::open(dir)?.readlink(path),
    }
}

/// Splits the overlay parameters of `data` into layers, classified like
/// bind sources, and the other parameters. `lowerdir=a:b::c` gives lower
/// layers `a`, `b` and data layer `c` (`\` escapes a character); the keys
/// `lowerdir+`, `datadir+`, `upperdir` and `workdir` give one layer each.
#[allow(clippy::type_complexity)]
pub fn split_overlay_layers(
    data: Vec<(String, Option<String>)>,
    source_root: Option<&Path>,
    rootfs: &Path,
) -> Result<(Vec<OverlayLayer>, Vec<(String, Option<String>)>)> {
    let mut layers = Vec::new();
    let mut rest = Vec::new();
    let mut push = |kind: LayerKind, key: &str, p: &str| -> Result<()> {
        if p.is_empty() {
            return Err(Error::invalid(
                "plan mount",
                format!("overlay {key} has an empty layer"),
            ));
        }
        let (path, lookup) = classify(key, Path::new(p), source_root, rootfs)?;
        layers.push(OverlayLayer { kind, path, lookup });
        Ok(())
    };
    for (key, value) in data {
        let kind = match key.as_str() {
            "lowerdir" => None,
            "lowerdir+" => Some(LayerKind::Lower),
            "datadir+" => Some(LayerKind::Data),
            "upperdir" => Some(LayerKind::Upper),
            "workdir" => Some(LayerKind::Work),
            _ => {
                rest.push((key, value));
                continue;
            }
        };
        let Some(value) = value else {
            return Err(Error::invalid(
                "plan mount",
                format!("overlay {key} needs a value"),
            ));
        };
        match kind {
            Some(kind) => push(kind, &key, &unescape(&value))?,
            None => {
                let mut kind = LayerKind::Lower;
                let parts = split_lowerdir(&value);
                for (n, part) in parts.iter().enumerate() {
                    let between = n > 0 && n + 1 < parts.len() && !parts[n - 1].is_empty();
                    if part.is_empty() && between {
                        // `::` starts the data-only layers.
                        kind = LayerKind::Data;
                        continue;
                    }
                    push(kind, &key, part)?;
                }
            }
        }
    }
    Ok((layers, rest))
}

/// `lowerdir` split at unescaped `:`, each part unescaped.
fn split_lowerdir(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push(n);
                }
            }
            ':' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

/// Removes overlayfs' `\` escapes.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `\`, `:` and `,` for an overlayfs layer string.
fn escape(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .ok_or_else(|| Error::invalid_at("overlay layer", path, "a layer path must be UTF-8"))?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// Adds the layers to an overlay being built. With overlay layer fds
/// (Linux 6.13) every layer is an open directory: host layers opened once
/// by path, the others resolved inside their root. Without, layers are
/// strings; those inside the rootfs or a source root must be proven free of
/// symlinks first ([`proven_string`]).
pub(crate) fn add_overlay_layers(
    root: &Root,
    mut b: FsBuilder,
    layers: &[OverlayLayer],
) -> Result<FsBuilder> {
    if features::has(Feature::OverlayLayerFds) {
        for l in layers {
            let fd = open_layer(root, l).map_err(|e| e.with_path(&l.path))?;
            b = b.fd(l.kind.key(), fd, l.path.display().to_string());
        }
        return Ok(b);
    }
    let mut lower = Vec::new();
    let mut data = Vec::new();
    for l in layers {
        let s = match &l.lookup {
            SourceLookup::Host => {
                if let HostWalk::IntoRootfs(_) = walk_host(root, &l.path, false)? {
                    log::warn!(
                        "overlay layer {} reaches into the rootfs through a host symlink, and \
                         this kernel cannot take layers as fds",
                        l.path.display()
                    );
                    return Err(Error::unsupported(Feature::OverlayLayerFds));
                }
                escape(&l.path)?
            }
            _ => escape(&proven_string(l)?)?,
        };
        match l.kind {
            LayerKind::Lower => lower.push(s),
            LayerKind::Data => data.push(s),
            LayerKind::Upper => b = b.string("upperdir", s),
            LayerKind::Work => b = b.string("workdir", s),
        }
    }
    if !lower.is_empty() || !data.is_empty() {
        let mut v = lower.join(":");
        for d in data {
            v.push_str("::");
            v.push_str(&d);
        }
        b = b.string("lowerdir", v);
    }
    Ok(b)
}

/// One layer as an open directory (`O_RDONLY | O_DIRECTORY`: the kernel
/// takes no `O_PATH` file for `FSCONFIG_SET_FD`).
fn open_layer(root: &Root, l: &OverlayLayer) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let h = match resolve_confined(root, &l.lookup, false)? {
        Some(h) => h,
        None => match walk_host(root, &l.path, false)? {
            HostWalk::IntoRootfs(h) => h,
            HostWalk::Opened(fd) => {
                return rustix::fs::openat(&fd, c".", flags, rustix::fs::Mode::empty())
                    .map_err(|e| Error::os_at("open overlay layer", &l.path, e))
            }
        },
    };
    if !h.is_dir()? {
        return Err(Error::invalid_at(
            "overlay layer",
            &l.path,
            "a layer must be a directory",
        ));
    }
    Ok(h.reopen(flags)?.into())
}

/// The host path of a layer inside the rootfs or a source root, for a
/// kernel that takes layers only as strings: the layer is opened confined
/// to its directory, and the kernel's name for that fd (read through the
/// private procfs) must be the directory's own name joined with the lexical
/// path. A symlink anywhere in the path would make the two differ. Then the
/// kernel's name is what the kernel is given. If the proof fails, the mount
/// is refused with [`crate::ErrorKind::Unsupported`] for [`Feature::OverlayLayerFds`]:
/// that kernel feature would have made the layer safe to use.
///
/// A process that can rename inside the rootfs between this check and the
/// kernel's lookup could still swap a component; on these kernels nothing
/// closes that window, which is why the fd form is used whenever it exists.
fn proven_string(l: &OverlayLayer) -> Result<PathBuf> {
    let (dir, path) = match &l.lookup {
        SourceLookup::Host => return Ok(l.path.clone()),
        SourceLookup::Rootfs { rootfs, path } => (rootfs, path),
        SourceLookup::Dir { dir, path } => (dir, path),
    };
    let confining = Root::open(dir)?;
    let h = confining.resolve(path).map_err(|e| e.with_path(&l.path))?;
    if !h.is_dir()? {
        return Err(Error::invalid_at(
            "overlay layer",
            &l.path,
            "a layer must be a directory",
        ));
    }
    let procfs = Procfs::new()?;
    let base = procfs.fd_target(confining.as_fd())?;
    let actual = procfs.fd_target(h.as_fd())?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let expected = if rel.as_os_str().is_empty() {
        base.clone()
    } else {
        base.join(rel)
    };
    if actual != expected || !base.is_absolute() {
        log::warn!(
            "overlay {:?} layer {} resolves to {} inside {}, not to {}: it goes through a \
             symlink, and this kernel cannot take layers as fds",
            l.kind,
            l.path.display(),
            actual.display(),
            dir.display(),
            expected.display()
        );
        return Err(Error::unsupported(Feature::OverlayLayerFds));
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_under_the_rootfs_or_source_root_are_confined() {
        let rootfs = Path::new("/b/rootfs");
        let c = |s: &str, root: Option<&str>| {
            classify("bind source", Path::new(s), root.map(Path::new), rootfs)
        };
        assert_eq!(
            c("/srv", None).unwrap(),
            ("/srv".into(), SourceLookup::Host)
        );
        let inside = |p: &str| SourceLookup::Rootfs {
            rootfs: rootfs.into(),
            path: p.into(),
        };
        assert_eq!(c("/b/rootfs/srv", None).unwrap().1, inside("/srv"));
        assert_eq!(c("/b/rootfs", None).unwrap().1, inside("/"));
        assert_eq!(c("/b/./rootfs//evil/", None).unwrap().1, inside("/evil"));
        // `..` is taken lexically, and the cleaned path is what is opened.
        let (p, l) = c("/b/rootfs/evil/../../etc", None).unwrap();
        assert_eq!((p, l), ("/b/etc".into(), SourceLookup::Host));
        assert_eq!(c("/b/rootfsx", None).unwrap().1, SourceLookup::Host);
        // Relative: in the source root, and the rootfs rule first.
        assert_eq!(
            c("rootfs/evil/etc", Some("/b")).unwrap().1,
            inside("/evil/etc")
        );
        assert_eq!(
            c("vol", Some("/b")).unwrap(),
            (
                "/b/vol".into(),
                SourceLookup::Dir {
                    dir: "/b".into(),
                    path: "/vol".into()
                }
            )
        );
        assert_eq!(
            c("/b/vol/x", Some("/b")).unwrap().1,
            SourceLookup::Dir {
                dir: "/b".into(),
                path: "/vol/x".into()
            }
        );
        assert_eq!(c("/srv", Some("/b")).unwrap().1, SourceLookup::Host);
        for bad in [
            ("rel", None),
            ("../x", Some("/b")),
            ("a/../../x", Some("/b")),
            ("/b/a/../../x", Some("/b")),
            ("x", Some("rel")),
        ] {
            let e = c(bad.0, bad.1).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad:?}: {e}");
        }
    }

    #[test]
    fn overlay_layers_are_split_and_classified() {
        let data = vec![
            (
                "lowerdir".to_string(),
                Some(r"/l1:/b/rootfs/l\:2::/d1".to_string()),
            ),
            ("upperdir".to_string(), Some("/u".to_string())),
            ("workdir".to_string(), Some("w".to_string())),
            ("index".to_string(), Some("off".to_string())),
        ];
        let (layers, rest) =
            split_overlay_layers(data, Some(Path::new("/b")), Path::new("/b/rootfs")).unwrap();
        assert_eq!(rest, vec![("index".to_string(), Some("off".to_string()))]);
        let kinds: Vec<_> = layers.iter().map(|l| (l.kind, l.path.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (LayerKind::Lower, "/l1".into()),
                (LayerKind::Lower, "/b/rootfs/l:2".into()),
                (LayerKind::Data, "/d1".into()),
                (LayerKind::Upper, "/u".into()),
                (LayerKind::Work, "/b/w".into()),
            ]
        );
        assert!(matches!(layers[1].lookup, SourceLookup::Rootfs { .. }));
        assert!(matches!(layers[4].lookup, SourceLookup::Dir { .. }));
        assert_eq!(escape(Path::new(r"/a:b,c\d")).unwrap(), r"/a\:b\,c\\d");
        let data = vec![("lowerdir".to_string(), Some("/a::/b::/c".to_string()))];
        let (layers, _) = split_overlay_layers(data, None, Path::new("/r")).unwrap();
        let kinds: Vec<_> = layers.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, [LayerKind::Lower, LayerKind::Data, LayerKind::Data]);
        for bad in ["", "/a::", ":/a", "/a:::/b", "rel"] {
            let data = vec![("lowerdir".to_string(), Some(bad.to_string()))];
            assert!(
                split_overlay_layers(data, None, Path::new("/r")).is_err(),
                "{bad:?}"
            );
        }
    }
}
