//! Tar archives (plain, gzip, zstd; ustar, GNU and PAX headers) unpacked
//! with `Root::unpack` into a fresh tmpfs, in a private mount namespace.
//!
//! Layout, made new for every input: a tmpfs (16 MiB, nodev, nosuid,
//! noexec) over `/tmp` in the fuzzer's own mount namespace, holding
//! `root/` (the destination) and `host/` beside it (marker files, a
//! subdirectory, a symlink), so that names such as `../host/MARKER` and
//! `/tmp/host/MARKER` aim at something.
//!
//! Input: one byte of options, then the archive. Bits 0-1: whiteouts
//! none/OCI/overlay, or none with owners outside the id maps given the
//! overflow id (3); bit 2: same owner; bit 3: extended attributes; bit 4:
//! keep the header checksums as they are; bit 5: hard links by name;
//! bit 6: read the archive from a file (a memfd, through `unpack_fd`:
//! `pread` and `copy_file_range`) instead of as a stream; bit 7: id maps
//! (container ids 0-65535 as 100000-165535). Unless bit 4 is set, the
//! checksum of every header of a plain (uncompressed) archive is made
//! right before unpacking, so that mutated headers reach the code behind
//! the header parser (GNU and PAX extensions, sparse maps) instead of all
//! failing its checksum test.
//!
//! With `SAFEROOT_FUZZ_DEBUG` set, each result is printed (to see where
//! the inputs of a corpus end: `-runs=0` runs the corpus once).
//!
//! Checks: `host/` is unchanged afterwards (names, types, modes, owners,
//! link counts, sizes, times, contents) and the tmpfs holds nothing but
//! `root/` and `host/`, whether the unpack succeeded or was refused; no
//! fd is left open; the limits hold; every owner in the root is the
//! caller's, or, with the same owner, one the maps give (or the overflow
//! id); a refusal is typed: invalid input
//! for a malformed archive or a limit, otherwise an errno that the
//! archive's content can cause (never EIO, EBADF or the like, which would
//! mean a bug). Hangs (a fifo opened for writing) are caught by
//! libFuzzer's -timeout, memory by -rss_limit_mb.

#![no_main]

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::UnshareFlags;
use saferoot::archive::{
    HardLinks, IdMap, IdRange, Limits, UnmappedIds, UnpackOptions, UnpackProgress, Whiteouts,
};
use saferoot::mount::Scope;
use saferoot::{ErrorKind, Mount, MountAttr, Propagation, Root};

const TOP: &str = "/tmp";
const MAX_BYTES: u64 = 8 << 20;
const MAX_ENTRIES: u64 = 4096;
/// The id maps of option bit 7: container ids 0-65535 as 100000-165535.
const MAP: IdRange = IdRange {
    container: 0,
    host: 100_000,
    len: 65_536,
};
/// The kernel's default overflow uid and gid.
const OVERFLOW_ID: u32 = 65_534;

static INIT: Once = Once::new();

/// Moves the fuzzing thread into a mount namespace of its own, with every
/// mount private, so that nothing mounted here is seen outside (once, on
/// the first input; libFuzzer runs every input on the same thread).
fn private_namespace() {
    INIT.call_once(|| {
        // pathrs keeps a procfs handle open for the life of the process,
        // made on first use: made here, it is not taken for a leaked fd.
        if let Err(e) = pathrs::procfs::ProcfsHandle::new() {
            eprintln!("pathrs procfs handle: {e}");
        }
        saferoot::namespace::unshare(UnshareFlags::FS | UnshareFlags::NEWNS)
            .expect("unshare(CLONE_FS | CLONE_NEWNS): run the fuzzer as root");
        let slash =
            rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).expect("open /");
        saferoot::mount::change_attrs(
            &slash,
            MountAttr::empty(),
            MountAttr::empty(),
            Some(Propagation::Private),
            Scope::Tree,
        )
        .expect("make / private, recursively");
    });
}

fn open_fds() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/thread-self/fd")
        .expect("read /proc/thread-self/fd")
        .map(|e| {
            e.expect("fd entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Everything observable about a tree, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let md = std::fs::symlink_metadata(p).expect("stat in the snapshot");
    let ft = md.file_type();
    let what = if ft.is_symlink() {
        format!("symlink -> {:?}", std::fs::read_link(p).expect("readlink"))
    } else if ft.is_file() {
        format!("file {:?}", std::fs::read(p).expect("read marker"))
    } else if ft.is_dir() {
        "dir".into()
    } else if ft.is_fifo() {
        "fifo".into()
    } else {
        format!("special {:#x}", md.rdev())
    };
    out.insert(
        p.strip_prefix(base).expect("below base").to_path_buf(),
        format!(
            "{what} mode={:o} uid={} gid={} nlink={} size={} mtime={}.{} ino={}",
            md.mode(),
            md.uid(),
            md.gid(),
            md.nlink(),
            if ft.is_dir() { 0 } else { md.len() },
            md.mtime(),
            md.mtime_nsec(),
            md.ino()
        ),
    );
    if ft.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(p)
            .expect("readdir")
            .map(|e| e.expect("dir entry").path())
            .collect();
        names.sort();
        for n in names {
            walk(base, &n, out);
        }
    }
}

/// Panics unless every inode under `dir` (and `dir`) has an owner (uid,
/// gid) `ok` allows.
fn check_owners(dir: &Path, ok: &dyn Fn(u32, u32) -> bool, result: &dyn std::fmt::Debug) {
    let md = std::fs::symlink_metadata(dir).expect("stat");
    assert!(
        ok(md.uid(), md.gid()),
        "{dir:?} is owned by {}:{}, which the options do not allow ({result:?})",
        md.uid(),
        md.gid()
    );
    if md.is_dir() {
        for e in std::fs::read_dir(dir).expect("readdir") {
            check_owners(&e.expect("dir entry").path(), ok, result);
        }
    }
}

/// The non-zero bytes of the regular files under `dir`, each inode once:
/// bytes that were certainly written (a hole reads as zeros, and the
/// holes of sparse files do not count as written). Only the data extents
/// are read (`SEEK_DATA`, `SEEK_HOLE`), so a huge sparse file costs
/// nothing.
fn written_bytes(dir: &Path, seen: &mut std::collections::HashSet<u64>) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("readdir") {
        let e = e.expect("dir entry");
        let md = std::fs::symlink_metadata(e.path()).expect("stat");
        if md.is_dir() {
            total += written_bytes(&e.path(), seen);
        } else if md.is_file() && seen.insert(md.ino()) {
            total += nonzero_bytes(&std::fs::File::open(e.path()).expect("open a file"));
        }
    }
    total
}

fn nonzero_bytes(f: &std::fs::File) -> u64 {
    use rustix::fs::{seek, SeekFrom};
    let mut buf = vec![0u8; 64 << 10];
    let (mut pos, mut n) = (0u64, 0u64);
    loop {
        let start = match seek(f, SeekFrom::Data(pos)) {
            Ok(at) => at,
            Err(Errno::NXIO) => return n,
            Err(e) => panic!("SEEK_DATA: {e}"),
        };
        let end = seek(f, SeekFrom::Hole(start)).expect("SEEK_HOLE");
        let mut at = start;
        while at < end {
            let want = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let k = rustix::io::pread(f, &mut buf[..want], at).expect("pread");
            if k == 0 {
                break;
            }
            n += buf[..k].iter().filter(|b| **b != 0).count() as u64;
            at += k as u64;
        }
        pos = end;
    }
}

fn make_host(top: &Path) {
    let host = top.join("host");
    std::fs::create_dir(top.join("root")).expect("mkdir root");
    std::fs::create_dir(&host).expect("mkdir host");
    std::fs::write(host.join("MARKER"), "host marker\n").expect("write marker");
    std::fs::create_dir(host.join("sub")).expect("mkdir host/sub");
    std::fs::write(host.join("sub/deep"), "deep marker\n").expect("write deep marker");
    std::os::unix::fs::symlink("MARKER", host.join("link")).expect("symlink");
    std::os::unix::fs::symlink("/", host.join("slash")).expect("symlink");
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A header's size field: octal digits (with spaces or NULs around), or
/// base-256 when the first byte has its high bit set.
fn header_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..].iter().fold(0u64, |n, b| {
            n.saturating_mul(256).saturating_add(u64::from(*b))
        });
    }
    field
        .iter()
        .skip_while(|b| **b == b' ' || **b == 0)
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .fold(0u64, |n, b| {
            n.saturating_mul(8).saturating_add(u64::from(b - b'0'))
        })
}

/// Makes the checksum of every header of a plain tar stream right,
/// following the headers' size fields from one header to the next.
fn fix_checksums(tar: &mut [u8]) {
    let mut pos = 0usize;
    while let Some(h) = pos.checked_add(512).and_then(|end| tar.get_mut(pos..end)) {
        if h.iter().all(|b| *b == 0) {
            pos += 512;
            continue;
        }
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let data = header_size(&h[124..136]).div_ceil(512).saturating_mul(512);
        pos = pos
            .saturating_add(512)
            .saturating_add(usize::try_from(data).unwrap_or(usize::MAX));
    }
}

/// The errnos an archive's content can make the kernel answer.
const CONTENT_ERRNOS: &[Errno] = &[
    Errno::NOSPC,
    Errno::DQUOT,
    Errno::FBIG,
    Errno::NAMETOOLONG,
    Errno::LOOP,
    Errno::NOTDIR,
    Errno::ISDIR,
    Errno::NOTEMPTY,
    Errno::MLINK,
    Errno::NOENT,
    Errno::EXIST,
    Errno::INVAL,
    Errno::RANGE,
    Errno::TOOBIG,
    Errno::NOTSUP,
    Errno::NODATA,
    Errno::PERM,
];

fn check_error(e: &saferoot::Error) {
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::SafetyViolation => {}
        _ => {
            let errno = Errno::from_raw_os_error(e.errno());
            assert!(
                CONTENT_ERRNOS.contains(&errno),
                "unpack failed with {errno:?}, which no archive content should cause: {e:?} ({e})"
            );
        }
    }
}

fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("SAFEROOT_FUZZ_DEBUG").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, archive)) = data.split_first() else {
        return;
    };
    let mut archive = archive.to_vec();
    if flags & 0x10 == 0 && !archive.starts_with(GZIP_MAGIC) && !archive.starts_with(ZSTD_MAGIC) {
        fix_checksums(&mut archive);
    }
    let archive = archive.as_slice();
    private_namespace();
    let mapped = flags & 0x80 != 0;
    let map = if mapped {
        IdMap::new(&[MAP]).expect("a valid id map")
    } else {
        IdMap::default()
    };
    let opts = UnpackOptions {
        whiteouts: match flags & 3 {
            1 => Whiteouts::Oci,
            2 => Whiteouts::Overlay,
            _ => Whiteouts::None,
        },
        same_owner: flags & 4 != 0,
        xattrs: flags & 8 != 0,
        limits: Limits {
            max_bytes: MAX_BYTES,
            max_entries: MAX_ENTRIES,
            ..Limits::default()
        },
        hardlinks: if flags & 0x20 != 0 {
            HardLinks::ByName
        } else {
            HardLinks::Auto
        },
        uid_map: map,
        gid_map: map,
        unmapped_ids: if flags & 3 == 3 {
            UnmappedIds::Overflow
        } else {
            UnmappedIds::Error
        },
    };
    // Bit 6: the archive in a file, as `saferoot extract FILE` reads it.
    let file = (flags & 0x40 != 0).then(|| {
        let fd = rustix::fs::memfd_create("archive", rustix::fs::MemfdFlags::CLOEXEC)
            .expect("memfd_create");
        let mut f = std::fs::File::from(fd);
        std::io::Write::write_all(&mut f, archive).expect("write the archive to a memfd");
        std::io::Seek::rewind(&mut f).expect("rewind the memfd");
        f
    });

    let top = Path::new(TOP);
    let tmpfs = Mount::fs("tmpfs")
        .source("saferoot-fuzz")
        .data("size=16m,nr_inodes=8192,mode=0755")
        .attrs(MountAttr::NODEV | MountAttr::NOSUID | MountAttr::NOEXEC)
        .mount()
        .expect("make a tmpfs");
    let over: OwnedFd = rustix::fs::open(
        top,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open /tmp");
    let attached = tmpfs
        .attach(over.as_fd())
        .map_err(|e| e.into_parts().1)
        .expect("attach the tmpfs");
    drop(over);
    make_host(top);
    let host_before = snapshot(&top.join("host"));
    let fds_before = open_fds();

    let root = Root::open(top.join("root")).expect("open the root");
    let result = match &file {
        Some(f) => root.unpack_fd(f, &opts, &UnpackProgress::new()),
        None => root.unpack(archive, &opts),
    };
    drop(root);

    let fds_after = open_fds();
    if fds_after != fds_before {
        let new: Vec<String> = fds_after
            .iter()
            .filter(|fd| !fds_before.contains(fd))
            .map(|fd| {
                let target = std::fs::read_link(format!("/proc/thread-self/fd/{fd}"));
                format!("{fd} -> {target:?}")
            })
            .collect();
        panic!("unpack left fds open: {new:?} ({result:?})");
    }
    assert_eq!(
        snapshot(&top.join("host")),
        host_before,
        "the host directory beside the root changed ({result:?})"
    );
    let mut names: Vec<String> = std::fs::read_dir(top)
        .expect("readdir /tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["host", "root"],
        "something was made beside the root"
    );
    // The fuzzer's own ids own what gets no owner from the archive (the
    // root, parents made on the way, everything without the same owner).
    let id_ok = |id: u32, mine: u32| {
        id == mine
            || (opts.same_owner
                && (!mapped
                    || (MAP.host..MAP.host + MAP.len).contains(&id)
                    || (opts.unmapped_ids == UnmappedIds::Overflow && id == OVERFLOW_ID)))
    };
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    check_owners(
        &top.join("root"),
        &|uid, gid| id_ok(uid, euid) && id_ok(gid, egid),
        &result,
    );
    match &result {
        Ok(s) => {
            assert!(s.bytes <= MAX_BYTES && s.entries <= MAX_ENTRIES, "{s:?}");
            let made =
                s.files + s.dirs + s.symlinks + s.hardlinks + s.nodes + s.whiteouts + s.skipped;
            assert!(made <= s.entries, "more made than read: {s:?}");
            let written = written_bytes(&top.join("root"), &mut Default::default());
            assert!(
                written <= s.bytes,
                "{written} non-zero bytes in the root, {s:?}"
            );
        }
        Err(e) => check_error(e),
    }
    if debug() {
        match &result {
            Ok(s) => eprintln!("unpack: ok: {s:?}"),
            Err(e) => eprintln!("unpack: {:?} ({}): {e}", e.kind(), e.errno()),
        }
    }
    attached.detach().expect("detach the tmpfs");
    drop(file);
});
