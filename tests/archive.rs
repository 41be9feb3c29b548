//! Issue 13: archives unpacked into a root never reach outside it.
//!
//! Every hostile case builds an archive (by hand when the tar crate's
//! builder would refuse the name), unpacks it into `top/root` and checks
//! that `top/host`, a directory beside the root holding marker files that
//! the archive names, is byte-for-byte unchanged (names, types, modes,
//! owners, link counts, times, contents), whether the unpack succeeded or
//! was refused. Each unpack runs on its own thread with a deadline, so a
//! hang (a fifo opened for writing) fails the test instead of stalling it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TempDir;
use saferoot::archive::{
    HardLinks, IdMap, IdRange, Limits, UnmappedIds, UnpackOptions, UnpackProgress, UnpackSummary,
    Whiteouts,
};
use saferoot::{ErrorKind, Root};

/// A hand-made tar stream: any name, any type, PAX and GNU long names.
#[derive(Default)]
struct Raw(Vec<u8>);

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

impl Raw {
    fn header(&mut self, name: &[u8], typ: u8, mode: u32, size: usize, link: &[u8]) {
        self.header_owned(name, typ, mode, size, link, (0, 0));
    }

    fn header_owned(
        &mut self,
        name: &[u8],
        typ: u8,
        mode: u32,
        size: usize,
        link: &[u8],
        owner: (u32, u32),
    ) {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], u64::from(owner.0));
        octal(&mut h[116..124], u64::from(owner.1));
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], 1_000_000_000);
        h[156] = typ;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.0.extend_from_slice(&h);
    }

    fn data(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
    }

    fn entry(&mut self, name: &str, typ: u8, mode: u32, data: &[u8], link: &str) -> &mut Self {
        self.header(name.as_bytes(), typ, mode, data.len(), link.as_bytes());
        self.data(data);
        self
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.entry(name, b'0', 0o644, data.as_bytes(), "")
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.entry(name, b'5', mode, b"", "")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', 0o777, b"", target)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'1', 0o644, b"", target)
    }

    fn fifo(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'6', 0o644, b"", "")
    }

    /// A PAX extended header for the next entry.
    fn pax(&mut self, records: &[(&str, &str)]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}{rest}").len() != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len}{rest}").as_bytes());
        }
        self.header(b"././@PaxHeader", b'x', 0o644, body.len(), b"");
        self.data(&body);
        self
    }

    /// A GNU long name (`L`) or long link (`K`) for the next entry.
    fn gnu_long(&mut self, typ: u8, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.header(b"././@LongLink", typ, 0o644, v.len(), b"");
        self.data(&v);
        self
    }

    /// An entry with an owner.
    fn owned(&mut self, name: &str, typ: u8, link: &str, owner: (u32, u32)) -> &mut Self {
        self.header_owned(name.as_bytes(), typ, 0o755, 0, link.as_bytes(), owner);
        self
    }

    /// An old GNU sparse file ('S'): `regions` (offset, length) of a file
    /// of `real_size` bytes; each region's data is `fill` repeated, padded
    /// to a block. Regions past the header's four go to extension blocks.
    fn gnu_sparse(
        &mut self,
        name: &str,
        regions: &[(u64, u64)],
        real_size: u64,
        fill: u8,
    ) -> &mut Self {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        let stored: u64 = regions.iter().map(|r| r.1.div_ceil(512) * 512).sum();
        octal(&mut h[124..136], stored);
        octal(&mut h[136..148], 1_000_000_000);
        h[156] = b'S';
        h[257..265].copy_from_slice(b"ustar  \0");
        let field = |h: &mut [u8], at: usize, (off, len): (u64, u64)| {
            octal(&mut h[at..at + 12], off);
            octal(&mut h[at + 12..at + 24], len);
        };
        for (i, r) in regions.iter().take(4).enumerate() {
            field(&mut h, 386 + i * 24, *r);
        }
        h[482] = u8::from(regions.len() > 4);
        octal(&mut h[483..495], real_size);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
        let rest: Vec<_> = regions.iter().skip(4).collect();
        for (k, chunk) in rest.chunks(21).enumerate() {
            let mut ext = [0u8; 512];
            for (i, r) in chunk.iter().enumerate() {
                field(&mut ext, i * 24, **r);
            }
            ext[504] = u8::from((k + 1) * 21 < rest.len());
            self.0.extend_from_slice(&ext);
        }
        for r in regions {
            self.data(&vec![fill; r.1 as usize]);
        }
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend(std::iter::repeat_n(0u8, 1024));
        v
    }
}

/// `top/root` (the destination) and `top/host` (beside it, with markers).
struct Sandbox {
    top: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let top = TempDir::new();
        std::fs::create_dir(top.join("root")).unwrap();
        let host = top.join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("MARKER"), "host marker\n").unwrap();
        std::fs::set_permissions(host.join("MARKER"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::create_dir(host.join("sub")).unwrap();
        std::fs::write(host.join("sub/deep"), "deep marker\n").unwrap();
        std::os::unix::fs::symlink("MARKER", host.join("link")).unwrap();
        Sandbox { top }
    }

    fn root(&self) -> PathBuf {
        self.top.join("root")
    }

    /// The host directory's absolute path.
    fn host(&self) -> String {
        self.top.join("host").display().to_string()
    }

    /// `../` enough times to climb from any entry to `/`.
    fn climb() -> String {
        "../".repeat(40)
    }
}

/// Everything observable about a tree, keyed by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let md = std::fs::symlink_metadata(p).unwrap();
    let ft = md.file_type();
    let what = if ft.is_symlink() {
        format!("symlink -> {}", std::fs::read_link(p).unwrap().display())
    } else if ft.is_file() {
        format!("file {:?}", std::fs::read(p).unwrap())
    } else if ft.is_dir() {
        "dir".to_string()
    } else if ft.is_fifo() {
        "fifo".to_string()
    } else {
        format!("special {:#x}", md.rdev())
    };
    let mtime = if ft.is_dir() { 0 } else { md.mtime() };
    out.insert(
        p.strip_prefix(base).unwrap().to_path_buf(),
        format!(
            "{what} mode={:o} uid={} gid={} nlink={} size={} mtime={mtime}",
            md.mode(),
            md.uid(),
            md.gid(),
            if ft.is_dir() { 0 } else { md.nlink() },
            if ft.is_dir() { 0 } else { md.len() }
        ),
    );
    if ft.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            walk(base, &n, out);
        }
    }
}

/// Unpacks `archive` into `root` on a thread, failing if it takes more
/// than ten seconds.
fn unpack_into(
    root: &Path,
    archive: Vec<u8>,
    opts: UnpackOptions,
) -> saferoot::Result<UnpackSummary> {
    let root = root.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = Root::open(&root).and_then(|r| r.unpack(archive.as_slice(), &opts));
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("unpack hung (more than 10 s)")
}

/// Unpacks each archive in turn (errors allowed, and logged) and checks the
/// host directory did not change. Returns each result.
fn hostile(
    sb: &Sandbox,
    archives: Vec<Vec<u8>>,
    opts: UnpackOptions,
) -> Vec<saferoot::Result<UnpackSummary>> {
    let before = snapshot(&sb.top.join("host"));
    let mut results = Vec::new();
    for a in archives {
        let r = unpack_into(&sb.root(), a, opts);
        log::info!("unpack: {r:?}");
        results.push(r);
    }
    let after = snapshot(&sb.top.join("host"));
    assert_eq!(before, after, "the host directory beside the root changed");
    results
}

fn opts() -> UnpackOptions {
    UnpackOptions {
        same_owner: true,
        ..UnpackOptions::default()
    }
}

fn read_in_root(sb: &Sandbox, p: &str) -> String {
    std::fs::read_to_string(sb.root().join(p.trim_start_matches('/'))).unwrap()
}

#[test_log::test]
fn dotdot_names_stay_inside() {
    let sb = Sandbox::new();
    let h = sb.host();
    let a = Raw::default()
        .file("../host/MARKER", "pwned\n")
        .file(&format!("../../../..{h}/MARKER"), "pwned2\n")
        .file("a/../../../host/new", "x")
        .finish();
    let r = hostile(&sb, vec![a], opts());
    r[0].as_ref().expect("confined names are extracted");
    assert_eq!(read_in_root(&sb, "host/MARKER"), "pwned\n");
    assert_eq!(read_in_root(&sb, &format!("{h}/MARKER")), "pwned2\n");
    assert_eq!(read_in_root(&sb, "host/new"), "x");
}

#[test_log::test]
fn absolute_names_stay_inside() {
    let sb = Sandbox::new();
    let h = sb.host();
    let a = Raw::default()
        .file(&format!("{h}/MARKER"), "pwned\n")
        .dir(&format!("{h}/sub/"), 0o777)
        .finish();
    hostile(&sb, vec![a], opts())[0]
        .as_ref()
        .expect("extracted");
    assert_eq!(read_in_root(&sb, &format!("{h}/MARKER")), "pwned\n");
}

#[test_log::test]
fn pax_and_gnu_long_names_stay_inside() {
    let sb = Sandbox::new();
    let h = sb.host();
    let long = format!("{}{h}/MARKER", Sandbox::climb());
    assert!(long.len() > 100);
    let mut raw = Raw::default();
    raw.pax(&[("path", &long)]).file("short-pax", "pax\n");
    raw.gnu_long(b'L', &format!("{}{h}/sub/deep", Sandbox::climb()))
        .file("short-gnu", "gnu\n");
    // A long symlink target and a long hard-link target.
    raw.pax(&[("linkpath", &format!("{}{h}", Sandbox::climb()))])
        .symlink("paxlink", "x");
    raw.gnu_long(b'K', &format!("{}{h}/MARKER", Sandbox::climb()))
        .hardlink("gnuhard", "x");
    let r = hostile(&sb, vec![raw.finish()], opts());
    log::info!("{r:?}");
    assert_eq!(read_in_root(&sb, &format!("{h}/MARKER")), "pax\n");
    assert_eq!(read_in_root(&sb, &format!("{h}/sub/deep")), "gnu\n");
    // The hard link went to the in-root copy, not the host marker.
    assert_eq!(read_in_root(&sb, "gnuhard"), "pax\n");
}

#[test_log::test]
fn writing_through_an_outward_symlink_stays_inside() {
    let sb = Sandbox::new();
    let h = sb.host();
    // The in-root copy of the host path exists, so the symlinks below
    // resolve (a dangling parent symlink is refused, as GNU tar does).
    let a = Raw::default()
        .file(&format!("{h}/keep"), "")
        .symlink("a", &h)
        .file("a/MARKER", "pwned\n")
        .file("a/new", "new\n")
        .symlink("rel", &format!("{}{h}", Sandbox::climb()))
        .file("rel/sub/deep", "pwned\n")
        .symlink("file", &format!("{h}/MARKER"))
        .file("file", "replaced\n")
        .finish();
    hostile(&sb, vec![a], opts())[0]
        .as_ref()
        .expect("extracted");
    assert_eq!(read_in_root(&sb, &format!("{h}/MARKER")), "pwned\n");
    assert_eq!(read_in_root(&sb, "file"), "replaced\n");
    assert!(!std::fs::symlink_metadata(sb.root().join("file"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test_log::test]
fn symlink_chains_stay_inside() {
    let sb = Sandbox::new();
    let h = sb.host();
    let a = Raw::default()
        .symlink("l1", "l2")
        .symlink("l2", "d/l3")
        .dir("d", 0o755)
        .symlink("d/l3", &format!("../{}{h}", Sandbox::climb()))
        .file("l1/MARKER", "pwned\n")
        .finish();
    let b = Raw::default().file("l1/sub/deep", "pwned\n").finish();
    hostile(&sb, vec![a, b], opts());
}

#[test_log::test]
fn hardlinks_to_outside_and_to_outward_symlinks() {
    let sb = Sandbox::new();
    let h = sb.host();
    let a = Raw::default()
        .hardlink("h1", &format!("{h}/MARKER"))
        .finish();
    let b = Raw::default().hardlink("h2", "../host/MARKER").finish();
    let c = Raw::default()
        .symlink("s", &format!("{h}/MARKER"))
        .hardlink("h3", "s")
        .file("h3", "written\n")
        .finish();
    let d = Raw::default()
        .symlink("dir", &h)
        .hardlink("h4", "dir/MARKER")
        .finish();
    let r = hostile(&sb, vec![a, b, c, d], opts());
    // Targets that do not exist in the root are not found.
    for i in [0, 1, 3] {
        assert_eq!(
            r[i].as_ref().unwrap_err().kind(),
            ErrorKind::NotFound,
            "{r:?}"
        );
    }
    r[2].as_ref()
        .expect("a link to a symlink links the symlink");
    assert_eq!(read_in_root(&sb, "h3"), "written\n");
    assert!(std::fs::symlink_metadata(sb.root().join("s"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test_log::test]
fn metadata_of_an_outward_symlink_entry_is_not_applied_outside() {
    let sb = Sandbox::new();
    let h = sb.host();
    let mut a = Raw::default();
    a.symlink("s", &format!("{h}/MARKER"))
        .symlink("d", &h)
        // A second symlink entry for the same name (chown/utime by name).
        .symlink("d", &h)
        // A directory entry where the symlink is, and one with a trailing "/.".
        .dir("d", 0o777)
        .symlink("e", &h)
        .dir("e/.", 0o777)
        .symlink("f", &format!("{h}/MARKER"));
    // PAX owner and mtime for a file whose name is the symlink.
    a.pax(&[("uid", "4242"), ("gid", "4242"), ("mtime", "12345.5")])
        .file("f", "f\n");
    a.symlink("g", &format!("{h}/MARKER")).fifo("g");
    hostile(&sb, vec![a.finish()], opts())[0]
        .as_ref()
        .expect("extracted");
    let f = std::fs::symlink_metadata(sb.root().join("f")).unwrap();
    assert!(f.is_file());
    assert_eq!(
        (f.uid(), f.gid(), f.mtime(), f.mtime_nsec()),
        (4242, 4242, 12345, 500_000_000)
    );
    assert!(std::fs::symlink_metadata(sb.root().join("d"))
        .unwrap()
        .is_dir());
}

#[test_log::test]
fn dot_symlinks_are_refused_or_confined() {
    let sb = Sandbox::new();
    let h = sb.host();
    let a = Raw::default().symlink(".", &h).file("MARKER", "x").finish();
    let b = Raw::default().symlink("./", &h).finish();
    let c = Raw::default()
        .symlink("x", ".")
        .file("x/x/x/MARKER", "in root\n")
        .finish();
    let r = hostile(&sb, vec![a, b, c], opts());
    assert_eq!(r[0].as_ref().unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(r[1].as_ref().unwrap_err().kind(), ErrorKind::InvalidInput);
    r[2].as_ref().expect("a symlink to . is confined");
    assert_eq!(read_in_root(&sb, "MARKER"), "in root\n");
}

#[test_log::test]
fn whiteouts_through_symlinks_stay_inside() {
    let sb = Sandbox::new();
    let h = sb.host();
    for mode in [Whiteouts::Oci, Whiteouts::Overlay] {
        let a = Raw::default()
            .symlink("s", &h)
            .file("s/.wh.MARKER", "")
            .file("s/.wh.sub", "")
            .file("s/.wh..wh..opq", "")
            .symlink("up", &format!("{}{h}", Sandbox::climb()))
            .file("up/sub/.wh..wh..opq", "")
            .file(&format!("{}{h}/.wh.link", Sandbox::climb()), "")
            .finish();
        let r = hostile(
            &sb,
            vec![a],
            UnpackOptions {
                whiteouts: mode,
                ..opts()
            },
        );
        log::info!("{mode:?}: {r:?}");
    }
    // `.wh.s` removes the symlink itself, not what it points at.
    let a = Raw::default().file(".wh.s", "").finish();
    hostile(
        &sb,
        vec![a],
        UnpackOptions {
            whiteouts: Whiteouts::Oci,
            ..opts()
        },
    )[0]
    .as_ref()
    .expect("whiteout applied");
    assert!(std::fs::symlink_metadata(sb.root().join("s")).is_err());
}

#[test_log::test]
fn oci_whiteouts_remove_and_opaque_keeps_this_layers_entries() {
    let sb = Sandbox::new();
    let lower = Raw::default()
        .file("etc/a", "a")
        .file("etc/b", "b")
        .file("opq/old", "old")
        .dir("opq/olddir", 0o755)
        .file("opq/olddir/x", "x")
        .finish();
    let upper = Raw::default()
        .file("etc/.wh.a", "")
        .file("opq/new", "new")
        .file("opq/.wh..wh..opq", "")
        .finish();
    let o = UnpackOptions {
        whiteouts: Whiteouts::Oci,
        ..opts()
    };
    let r = hostile(&sb, vec![lower, upper], o);
    r[1].as_ref().expect("layer applied");
    let root = sb.root();
    assert!(!root.join("etc/a").exists());
    assert!(!root.join("etc/.wh.a").exists());
    assert_eq!(read_in_root(&sb, "etc/b"), "b");
    assert!(!root.join("opq/old").exists());
    assert!(!root.join("opq/olddir").exists());
    assert_eq!(read_in_root(&sb, "opq/new"), "new");
    assert!(!root.join("opq/.wh..wh..opq").exists());
}

#[test_log::test]
fn overlay_whiteouts_become_char_devices() {
    let sb = Sandbox::new();
    let a = Raw::default()
        .file("d/.wh.gone", "")
        .file("d/.wh..wh..opq", "")
        .finish();
    let o = UnpackOptions {
        whiteouts: Whiteouts::Overlay,
        ..opts()
    };
    hostile(&sb, vec![a], o)[0].as_ref().expect("converted");
    let md = std::fs::symlink_metadata(sb.root().join("d/gone")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), 0);
    let dir = std::fs::File::open(sb.root().join("d")).unwrap();
    let mut buf = [0u8; 8];
    let n = rustix::fs::fgetxattr(&dir, "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
}

#[test_log::test]
fn a_fifo_then_a_file_of_the_same_name_does_not_block() {
    let sb = Sandbox::new();
    let a = Raw::default()
        .fifo("p")
        .file("p", "now a file\n")
        .fifo("q")
        .dir("q", 0o755)
        .fifo("r")
        .hardlink("r2", "r")
        .dir("later-a-file", 0o755)
        .file("later-a-file", "file\n")
        .finish();
    hostile(&sb, vec![a], opts())[0]
        .as_ref()
        .expect("extracted");
    assert_eq!(read_in_root(&sb, "p"), "now a file\n");
    assert!(sb.root().join("q").is_dir());
    let r = std::fs::symlink_metadata(sb.root().join("r2")).unwrap();
    assert!(r.file_type().is_fifo());
    assert_eq!(r.nlink(), 2);
}

#[test_log::test]
fn symlink_loops_fail_without_hanging() {
    let sb = Sandbox::new();
    let a = Raw::default().symlink("l", "l").file("l/x", "x").finish();
    let b = Raw::default()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", "x")
        .finish();
    let c = Raw::default().hardlink("h", "a").finish();
    let r = hostile(&sb, vec![a, b, c], opts());
    assert!(r[0].is_err() && r[1].is_err(), "{r:?}");
    // A hard link to a looping symlink links the symlink itself.
    r[2].as_ref().expect("linked");
}

#[test_log::test]
fn limits_refuse_with_a_typed_error() {
    let sb = Sandbox::new();
    let big = Raw::default()
        .file("a", "0123456789")
        .file("b", "0123456789")
        .finish();
    let o = |limits| UnpackOptions { limits, ..opts() };
    let r = hostile(
        &sb,
        vec![big.clone(), big.clone(), big],
        o(Limits {
            max_bytes: 15,
            ..Limits::default()
        }),
    );
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("/b"), "{e}");
    let r = unpack_into(
        &sb.root(),
        Raw::default().file("a", "").file("b", "").finish(),
        o(Limits {
            max_entries: 1,
            ..Limits::default()
        }),
    );
    assert!(r.unwrap_err().to_string().contains("more than 1 entries"));
    let r = unpack_into(
        &sb.root(),
        Raw::default().file(&"x/".repeat(30), "").finish(),
        o(Limits {
            max_path_len: 10,
            ..Limits::default()
        }),
    );
    assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test_log::test]
fn gzip_and_zstd_are_detected() {
    let sb = Sandbox::new();
    let plain = Raw::default().file("gz", "gzip\n").finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst =
        zstd::encode_all(Raw::default().file("zst", "zstd\n").finish().as_slice(), 3).unwrap();
    let r = hostile(
        &sb,
        vec![
            gz,
            zst,
            b"garbage that is not a tar archive at all".repeat(20),
        ],
        opts(),
    );
    assert_eq!(read_in_root(&sb, "gz"), "gzip\n");
    assert_eq!(read_in_root(&sb, "zst"), "zstd\n");
    assert!(r[2].is_err(), "{r:?}");
}

/// A real tree archived by GNU tar extracts to what `tar -xp` makes.
#[test_log::test]
fn equivalent_to_gnu_tar() {
    let top = TempDir::new();
    let src = top.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("plain"), "plain contents\n").unwrap();
    std::fs::write(src.join("setuid"), "#!/bin/true\n").unwrap();
    std::fs::set_permissions(src.join("setuid"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::create_dir(src.join("sticky")).unwrap();
    std::fs::set_permissions(src.join("sticky"), PermissionsExt::from_mode(0o1777)).unwrap();
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    // Large enough to be copied with copy_file_range from a file.
    std::fs::write(src.join("a/b/c/deep"), vec![7u8; 1_000_000]).unwrap();
    std::fs::set_permissions(src.join("a/b"), PermissionsExt::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("../plain", src.join("a/link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).unwrap();
    std::fs::hard_link(src.join("plain"), src.join("a/hard")).unwrap();
    std::fs::write(src.join("empty"), "").unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("fifo").as_path(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    std::os::unix::fs::chown(src.join("empty"), Some(1234), Some(5678)).unwrap();
    let tarball = top.join("t.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    for d in ["gnu", "ours"] {
        std::fs::create_dir(top.join(d)).unwrap();
    }
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(top.join("gnu"))
        .arg("-xpf")
        .arg(&tarball)
        .status()
        .unwrap();
    assert!(st.success());
    let data = std::fs::read(&tarball).unwrap();
    let sum = unpack_into(&top.join("ours"), data.clone(), opts()).expect("unpacked");
    log::info!("{sum:?}");
    assert_eq!(sum.hardlinks, 1);
    assert_eq!(sum.files, 4);
    let gnu = snapshot(&top.join("gnu"));
    let ours = snapshot(&top.join("ours"));
    assert_eq!(gnu, ours);
    // From the archive file itself (large contents copied in the kernel),
    // from a memfd (copy_file_range refused across filesystems: read and
    // written instead), from a pipe (a stream), at an offset.
    let memfd = rustix::fs::memfd_create("archive", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let mut memfd = std::fs::File::from(memfd);
    memfd.write_all(b"junk before the archive").unwrap();
    memfd.write_all(&data).unwrap();
    rustix::fs::seek(&memfd, rustix::fs::SeekFrom::Start(23)).unwrap();
    let (r, mut w) = std::io::pipe().unwrap();
    let feeder = std::thread::spawn({
        let data = data.clone();
        move || w.write_all(&data)
    });
    let file = std::fs::File::open(&tarball).unwrap();
    for (label, fd) in [
        ("file", std::os::fd::AsFd::as_fd(&file)),
        ("memfd", std::os::fd::AsFd::as_fd(&memfd)),
        ("pipe", std::os::fd::AsFd::as_fd(&r)),
    ] {
        let into = top.join(format!("ours-{label}"));
        std::fs::create_dir(&into).unwrap();
        let p = UnpackProgress::new();
        let sum = Root::open(&into)
            .unwrap()
            .unpack_fd(fd, &opts(), &p)
            .expect(label);
        assert_eq!((sum.files, sum.hardlinks), (4, 1), "{label}");
        assert_eq!(gnu, snapshot(&into), "{label}");
        assert_eq!(p.entries(), sum.entries, "{label}");
    }
    feeder.join().unwrap().unwrap();
    // The memfd's offset was not moved.
    assert_eq!(
        rustix::fs::seek(&memfd, rustix::fs::SeekFrom::Current(0)).unwrap(),
        23
    );
    // Cut in the middle of the large file's contents: refused, naming it.
    let cut = top.join("cut.tar");
    let at = data
        .windows(100)
        .position(|w| w.iter().all(|b| *b == 7))
        .expect("the large file's contents")
        + 500_000;
    std::fs::write(&cut, &data[..at]).unwrap();
    std::fs::create_dir(top.join("cut")).unwrap();
    let e = Root::open(top.join("cut"))
        .unwrap()
        .unpack_fd(
            std::fs::File::open(&cut).unwrap(),
            &opts(),
            &UnpackProgress::new(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("deep"), "{e}");
    // And both are the source (set-id and sticky bits kept).
    assert!(gnu[Path::new("setuid")].contains("mode=104755"), "{gnu:?}");
    assert!(gnu[Path::new("sticky")].contains("mode=41777"), "{gnu:?}");
    assert!(gnu[Path::new("a/hard")].contains("nlink=2"), "{gnu:?}");
}

/// An attacker inside the destination swaps a directory the archives write
/// into with an outward symlink as fast as it can; nothing lands outside.
#[test_log::test]
fn exchange_race_never_writes_outside() {
    exchange_race(HardLinks::Auto, 2000);
}

/// The same race with hard links made by name (the path without
/// `AT_EMPTY_PATH`): the link's target parent is resolved in the root too.
#[test_log::test]
fn exchange_race_never_writes_outside_with_hardlinks_by_name() {
    exchange_race(HardLinks::ByName, 1000);
}

fn exchange_race(hardlinks: HardLinks, rounds: usize) {
    let sb = Sandbox::new();
    let h = sb.host();
    let root = sb.root();
    std::fs::create_dir(root.join("d")).unwrap();
    std::os::unix::fs::symlink(&h, root.join("s")).unwrap();
    // The symlink's target exists in the root too, so that writes through
    // it succeed (inside) and the unpacks keep going.
    std::fs::create_dir_all(root.join(h.trim_start_matches('/'))).unwrap();
    let before = snapshot(&sb.top.join("host"));
    let mut archive = Raw::default();
    for i in 0..2 {
        archive
            .file(&format!("d/f{i}"), "attack\n")
            .dir(&format!("d/sub{i}"), 0o777)
            .file(&format!("d/sub{i}/x"), "attack\n")
            .file("d/MARKER", "attack\n")
            .symlink(&format!("d/l{i}"), "/")
            .hardlink(&format!("d/h{i}"), "d/MARKER");
    }
    let archive = archive.finish();
    let o = UnpackOptions {
        hardlinks,
        ..opts()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ((ok, failed), swaps) = common::while_exchanging(&root, "d", "s", || {
        let r = Root::open(&root).unwrap();
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..rounds {
            match r.unpack(archive.as_slice(), &o) {
                Ok(_) => ok += 1,
                Err(e) => {
                    log::debug!("{e}");
                    failed += 1
                }
            }
            if std::time::Instant::now() > deadline {
                break;
            }
        }
        (ok, failed)
    });
    let landed = std::fs::read_dir(root.join(h.trim_start_matches('/')))
        .unwrap()
        .count();
    log::info!(
        "{hardlinks:?}: {ok} unpacks succeeded, {failed} failed, {swaps} swaps, {landed} \
         entries redirected to the symlink's in-root target"
    );
    assert!(swaps > 0, "the attacker never ran");
    assert!(ok > 0, "no unpack got through: the race was not exercised");
    assert_eq!(
        before,
        snapshot(&sb.top.join("host")),
        "the host directory changed"
    );
}

#[test_log::test]
fn pax_xattrs_are_set_through_the_fd_and_overlay_ones_refused() {
    let sb = Sandbox::new();
    let h = sb.host();
    let mut a = Raw::default();
    a.pax(&[("SCHILY.xattr.user.test", "hello")])
        .file("f", "f\n");
    a.pax(&[
        ("SCHILY.xattr.trusted.overlay.opaque", "y"),
        ("SCHILY.xattr.user.dir", "d"),
    ])
    .dir("d", 0o755);
    // An xattr for an entry whose name is an outward symlink.
    a.symlink("s", &format!("{h}/MARKER"))
        .pax(&[("SCHILY.xattr.user.evil", "1")])
        .file("s", "s\n");
    let o = UnpackOptions {
        xattrs: true,
        ..opts()
    };
    hostile(&sb, vec![a.finish()], o)[0]
        .as_ref()
        .expect("extracted");
    let get = |p: &str, name: &str| {
        let f = std::fs::File::open(sb.root().join(p)).unwrap();
        let mut buf = [0u8; 64];
        rustix::fs::fgetxattr(&f, name, &mut buf).map(|n| buf[..n].to_vec())
    };
    assert_eq!(get("f", "user.test").unwrap(), b"hello");
    assert_eq!(get("d", "user.dir").unwrap(), b"d");
    assert!(get("d", "trusted.overlay.opaque").is_err());
    assert_eq!(get("s", "user.evil").unwrap(), b"1");
    let host_marker = std::fs::File::open(sb.top.join("host/MARKER")).unwrap();
    let mut buf = [0u8; 8];
    assert!(rustix::fs::fgetxattr(&host_marker, "user.evil", &mut buf).is_err());
    // Without the option, none are set.
    let mut b = Raw::default();
    b.pax(&[("SCHILY.xattr.user.test", "x")]).file("g", "g\n");
    hostile(&sb, vec![b.finish()], opts())[0]
        .as_ref()
        .expect("extracted");
    assert!(get("g", "user.test").is_err());
}

/// An archive with `trusted.*` attributes on a symlink (pointing at a host
/// file) and on a fifo.
fn xattrs_on_links_and_nodes(sb: &Sandbox) -> Vec<u8> {
    let h = sb.host();
    let mut a = Raw::default();
    a.pax(&[("SCHILY.xattr.trusted.saferoot", "link")])
        .symlink("l", &format!("{h}/MARKER"));
    a.pax(&[("SCHILY.xattr.trusted.saferoot", "fifo")])
        .fifo("p");
    a.finish()
}

/// `lgetxattr(path, "trusted.saferoot")` (never follows the last symlink).
fn trusted_saferoot(path: &Path) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16];
    rustix::fs::lgetxattr(path, "trusted.saferoot", &mut buf)
        .ok()
        .map(|n| buf[..n].to_vec())
}

/// Unpacks [`xattrs_on_links_and_nodes`] into `sb` with attributes on.
fn unpack_links_and_nodes_with_xattrs(sb: &Sandbox) -> UnpackSummary {
    let o = UnpackOptions {
        xattrs: true,
        ..opts()
    };
    hostile(sb, vec![xattrs_on_links_and_nodes(sb)], o)
        .remove(0)
        .expect("extracted")
}

/// Symlinks and fifos get their attributes by name in their parent's fd
/// (`setxattrat`, never following); the symlink's host target gets none.
#[test_log::test]
fn pax_xattrs_on_symlinks_and_nodes_are_set_without_following() {
    let sb = Sandbox::new();
    let summary = unpack_links_and_nodes_with_xattrs(&sb);
    let host_marker = sb.top.join("host/MARKER");
    assert_eq!(trusted_saferoot(&host_marker), None, "set on the host file");
    if saferoot::features::has(saferoot::Feature::Setxattrat) {
        assert_eq!(summary.xattrs_skipped, 0);
        assert_eq!(
            trusted_saferoot(&sb.root().join("l")).as_deref(),
            Some(&b"link"[..])
        );
        assert_eq!(
            trusted_saferoot(&sb.root().join("p")).as_deref(),
            Some(&b"fifo"[..])
        );
    } else {
        assert_eq!(summary.xattrs_skipped, 2);
        assert_eq!(trusted_saferoot(&sb.root().join("l")), None);
    }
}

/// Without `setxattrat` (Linux < 6.13) those attributes are skipped and
/// counted, never set by path; everything else is extracted.
#[test_log::test]
fn pax_xattrs_on_symlinks_and_nodes_are_skipped_without_setxattrat() {
    common::in_child(
        "pax_xattrs_on_symlinks_and_nodes_are_skipped_without_setxattrat",
        &[("SAFEROOT_DISABLE_FEATURES", "setxattrat")],
        false,
        || {
            assert!(!saferoot::features::has(saferoot::Feature::Setxattrat));
            let sb = Sandbox::new();
            let summary = unpack_links_and_nodes_with_xattrs(&sb);
            assert_eq!(summary.xattrs_skipped, 2);
            assert_eq!((summary.symlinks, summary.nodes), (1, 1));
            assert_eq!(trusted_saferoot(&sb.root().join("l")), None);
            assert_eq!(trusted_saferoot(&sb.root().join("p")), None);
            assert_eq!(trusted_saferoot(&sb.top.join("host/MARKER")), None);
        },
    );
}

/// A directory replaced by a symlink mid-archive: later entries below it
/// follow the new symlink (confined), never the old directory's fd.
#[test_log::test]
fn a_directory_replaced_by_a_symlink_is_looked_up_again() {
    let sb = Sandbox::new();
    let h = sb.host();
    let a = Raw::default()
        .dir("other", 0o755)
        .dir("other/q/r", 0o755)
        // p/q/r is cached (made for p/q/r/x) while p and p/q are not.
        .file("p/q/r/x", "x\n")
        .symlink("p", "/other")
        .file("p/q/r/y", "y\n")
        .dir("d", 0o755)
        .file("d/x", "x\n")
        .symlink("d", "/other")
        .file("d/y", "y\n")
        .dir("e", 0o755)
        .file("e/x", "x\n")
        .symlink("e", &h)
        .file("e/y", "y\n")
        .finish();
    let r = hostile(&sb, vec![a], opts());
    log::info!("{r:?}");
    assert_eq!(read_in_root(&sb, "other/y"), "y\n");
    assert_eq!(read_in_root(&sb, "other/q/r/y"), "y\n");
    assert!(!sb.root().join("other/x").exists());
    // e -> the host path, which does not exist in the root: refused.
    assert!(r[0].is_err());
}

/// The capability sets of this thread, from `/proc/thread-self/status`.
fn cap_eff() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff line");
    u64::from_str_radix(line.trim(), 16).unwrap()
}

/// Hard links in a user namespace without `CAP_DAC_READ_SEARCH`: by name,
/// and (with a seccomp filter answering `linkat(AT_EMPTY_PATH)` with
/// `ENOENT`, as kernels before 6.10 do without the capability) by the
/// automatic fallback. Links are the target's inode; links to outside or
/// through outward symlinks are refused or confined as with handles.
#[test_log::test]
fn hardlinks_without_cap_dac_read_search() {
    common::in_child("hardlinks_without_cap_dac_read_search", &[], true, || {
        assert!(common::in_child_userns());
        // Drop the capability from this thread (the extraction thread
        // inherits its credentials).
        let mut caps = rustix::thread::capabilities(None).unwrap();
        caps.effective
            .remove(rustix::thread::CapabilitySet::DAC_READ_SEARCH);
        caps.permitted
            .remove(rustix::thread::CapabilitySet::DAC_READ_SEARCH);
        rustix::thread::set_capabilities(None, caps).unwrap();
        assert_eq!(
            cap_eff() & (1 << 2),
            0,
            "CAP_DAC_READ_SEARCH still effective"
        );

        let archive = || {
            Raw::default()
                .file("t", "target\n")
                .hardlink("h1", "t")
                .dir("d", 0o755)
                .hardlink("d/h2", "./t")
                .symlink("s", "t")
                .hardlink("hs", "s")
                .fifo("p")
                .hardlink("hp", "p")
                .file("h1", "rewritten\n")
                .hardlink("h3", "h1")
                .finish()
        };
        let check = |sb: &Sandbox, s: &UnpackSummary| {
            assert_eq!(s.hardlinks, 5, "{s:?}");
            let ino = |p: &str| std::fs::symlink_metadata(sb.root().join(p)).unwrap().ino();
            assert_eq!(ino("t"), ino("d/h2"));
            assert_eq!(ino("s"), ino("hs"));
            assert_eq!(ino("p"), ino("hp"));
            assert_eq!(ino("h1"), ino("h3"));
            assert_ne!(ino("t"), ino("h1"));
            assert_eq!(read_in_root(sb, "t"), "target\n");
        };
        let h = |sb: &Sandbox| sb.host();
        let hostile_links = |sb: &Sandbox| {
            vec![
                Raw::default()
                    .hardlink("x1", &format!("{}/MARKER", h(sb)))
                    .finish(),
                Raw::default().hardlink("x2", "../host/MARKER").finish(),
                Raw::default()
                    .symlink("out", &h(sb))
                    .hardlink("x3", "out/MARKER")
                    .finish(),
            ]
        };
        for mode in [HardLinks::ByName, HardLinks::Auto] {
            let sb = Sandbox::new();
            let o = UnpackOptions {
                hardlinks: mode,
                ..opts()
            };
            let r = hostile(&sb, vec![archive()], o);
            check(&sb, r[0].as_ref().expect("linked"));
            for r in hostile(&sb, hostile_links(&sb), o) {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
            }
        }

        // Now make linkat(AT_EMPTY_PATH) fail as an older kernel would.
        saferoot::testing::fail_when_flagged(
            libc::SYS_linkat as u32,
            4,
            libc::AT_EMPTY_PATH as u32,
            libc::ENOENT,
        )
        .unwrap();
        let sb = Sandbox::new();
        std::fs::write(sb.root().join("probe"), "").unwrap();
        let probe = std::fs::File::open(sb.root().join("probe")).unwrap();
        assert_eq!(
            rustix::fs::linkat(
                &probe,
                c"",
                rustix::fs::CWD,
                sb.root().join("probe2").as_path(),
                rustix::fs::AtFlags::EMPTY_PATH
            ),
            Err(rustix::io::Errno::NOENT),
            "the filter does not refuse AT_EMPTY_PATH"
        );
        let r = hostile(&sb, vec![archive()], opts());
        check(&sb, r[0].as_ref().expect("linked by the fallback"));
        for r in hostile(&sb, hostile_links(&sb), opts()) {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
        }
    });
}

/// A sparse file archived by GNU tar in each sparse format extracts to the
/// same contents as `tar -xp` gives, with its holes kept as holes.
#[test_log::test]
fn sparse_files_match_gnu_tar_and_keep_their_holes() {
    use std::os::unix::fs::FileExt;
    let top = TempDir::new();
    let src = top.join("src");
    std::fs::create_dir(&src).unwrap();
    // 16 MiB with 40 small data regions (more than the four an old GNU
    // header holds) and a hole at the end.
    let size: u64 = 16 << 20;
    let f = std::fs::File::create(src.join("sparse")).unwrap();
    f.set_len(size).unwrap();
    for i in 0..40u64 {
        f.write_at(
            format!("region {i} ").repeat(50).as_bytes(),
            i * 300_000 + 777,
        )
        .unwrap();
    }
    drop(f);
    std::fs::write(src.join("dense"), vec![b'd'; 10_000]).unwrap();
    let blocks = |p: &Path| std::fs::metadata(p).unwrap().blocks() * 512;
    if !common::require(
        blocks(&src.join("sparse")) < 1 << 20,
        "the filesystem under /tmp does not keep holes",
    ) {
        return;
    }
    let digest = |p: &Path| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(p).unwrap().hash(&mut h);
        h.finish()
    };
    let formats: [(&str, &[&str]); 4] = [
        ("posix-1.0", &["--format=posix"]),
        ("posix-0.1", &["--format=posix", "--sparse-version=0.1"]),
        ("posix-0.0", &["--format=posix", "--sparse-version=0.0"]),
        ("gnu", &["--format=gnu"]),
    ];
    for (label, args) in formats {
        let tarball = top.join(format!("{label}.tar"));
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("--sparse")
            .args(args)
            .arg("-cf")
            .arg(&tarball)
            .args(["sparse", "dense"])
            .status()
            .unwrap();
        assert!(st.success());
        let (gnu, ours) = (
            top.join(format!("gnu-{label}")),
            top.join(format!("ours-{label}")),
        );
        std::fs::create_dir(&gnu).unwrap();
        std::fs::create_dir(&ours).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&gnu)
            .arg("-xpSf")
            .arg(&tarball)
            .status()
            .unwrap();
        assert!(st.success());
        let sum = unpack_into(&ours, std::fs::read(&tarball).unwrap(), opts()).expect(label);
        log::info!("{label}: {sum:?}");
        assert_eq!(sum.files, 2, "{label}: {sum:?}");
        for name in ["sparse", "dense"] {
            let (g, o) = (gnu.join(name), ours.join(name));
            let (gm, om) = (
                std::fs::metadata(&g).unwrap(),
                std::fs::metadata(&o).unwrap(),
            );
            assert_eq!(gm.len(), om.len(), "{label} {name}: size");
            assert_eq!(gm.mode(), om.mode(), "{label} {name}: mode");
            assert_eq!(gm.mtime(), om.mtime(), "{label} {name}: mtime");
            assert_eq!(digest(&g), digest(&o), "{label} {name}: contents");
        }
        assert_eq!(std::fs::metadata(ours.join("sparse")).unwrap().len(), size);
        let (gb, ob) = (blocks(&gnu.join("sparse")), blocks(&ours.join("sparse")));
        log::info!("{label}: allocated: GNU tar {gb} bytes, saferoot {ob} bytes");
        assert!(
            ob <= gb && ob < 1 << 20,
            "{label}: holes filled ({ob} bytes allocated)"
        );
        assert_eq!(digest(&ours.join("sparse")), digest(&src.join("sparse")));
    }
}

/// Hostile sparse maps are refused; a huge hole costs nothing.
#[test_log::test]
fn sparse_maps_are_checked_and_holes_are_free() {
    let sb = Sandbox::new();
    let bad = [
        // Out of order.
        Raw::default()
            .gnu_sparse("a", &[(4096, 10), (0, 10)], 8192, b'a')
            .finish(),
        // Past the file's size.
        Raw::default()
            .gnu_sparse("b", &[(0, 10), (8190, 10)], 8192, b'b')
            .finish(),
        // Overlapping.
        Raw::default()
            .gnu_sparse("c", &[(0, 600), (512, 10)], 8192, b'c')
            .finish(),
    ];
    for r in hostile(&sb, bad.to_vec(), opts()) {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    // 4 GiB apparent, 30 bytes of data in 30 regions (extension blocks).
    let mut regions: Vec<(u64, u64)> = (0..29).map(|i| (i * 1_000_000, 1)).collect();
    regions.push(((4 << 30) - 1, 1));
    let a = Raw::default()
        .gnu_sparse("huge", &regions, 4 << 30, b'h')
        .file("after", "after\n")
        .finish();
    let t = std::time::Instant::now();
    let r = hostile(&sb, vec![a], opts());
    let s = r[0].as_ref().expect("extracted");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(s.bytes, 30 + 6);
    let md = std::fs::metadata(sb.root().join("huge")).unwrap();
    assert_eq!(md.len(), 4 << 30);
    assert!(md.blocks() * 512 < 1 << 20, "{} blocks", md.blocks());
    let f = std::fs::File::open(sb.root().join("huge")).unwrap();
    let mut b = [0u8; 2];
    use std::os::unix::fs::FileExt;
    f.read_exact_at(&mut b, 999_999).unwrap();
    assert_eq!(b, [0, b'h']);
    assert_eq!(read_in_root(&sb, "after"), "after\n");
    // The limit counts data, not holes.
    let o = UnpackOptions {
        limits: Limits {
            max_bytes: 20,
            ..Limits::default()
        },
        ..opts()
    };
    let small = Raw::default()
        .gnu_sparse("huge2", &[(1 << 30, 10)], 2 << 30, b'x')
        .finish();
    hostile(&sb, vec![small], o)[0]
        .as_ref()
        .expect("under the limit");
}

fn range(container: u32, host: u32, len: u32) -> IdRange {
    IdRange {
        container,
        host,
        len,
    }
}

/// Owners go through the id maps before fchown; an id outside them is an
/// error naming the entry, or the overflow id when asked.
#[test_log::test]
fn owners_are_mapped() {
    if !common::require_root() {
        return;
    }
    let sb = Sandbox::new();
    let a = Raw::default()
        .owned("d", b'5', "", (0, 0))
        .owned("d/f", b'0', "", (1000, 1001))
        .owned("d/s", b'2', "f", (7, 8))
        .owned("d/p", b'6', "", (65535, 65535))
        .finish();
    let map = IdMap::new(&[range(0, 100_000, 65536)]).unwrap();
    let o = UnpackOptions {
        uid_map: map,
        gid_map: IdMap::new(&[range(0, 200_000, 65536)]).unwrap(),
        ..opts()
    };
    hostile(&sb, vec![a], o)[0].as_ref().expect("mapped");
    let owner = |p: &str| {
        let m = std::fs::symlink_metadata(sb.root().join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("d"), (100_000, 200_000));
    assert_eq!(owner("d/f"), (101_000, 201_001));
    assert_eq!(owner("d/s"), (100_007, 200_008));
    assert_eq!(owner("d/p"), (165_535, 265_535));
    // Outside the map: refused, naming the entry and the id.
    let b = Raw::default().owned("far", b'0', "", (70000, 0)).finish();
    let e = hostile(&sb, vec![b.clone()], o).remove(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("far") && e.to_string().contains("70000"),
        "{e}"
    );
    assert!(!sb.root().join("far").exists());
    // Or the overflow id.
    let o2 = UnpackOptions {
        unmapped_ids: UnmappedIds::Overflow,
        ..o
    };
    hostile(&sb, vec![b], o2)[0].as_ref().expect("overflow");
    let overflow: u32 = std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(owner("far"), (overflow, 200_000));
    // Without same_owner the maps are not used.
    let c = Raw::default()
        .owned("mine", b'0', "", (70000, 70000))
        .finish();
    hostile(
        &sb,
        vec![c],
        UnpackOptions {
            same_owner: false,
            ..o
        },
    )[0]
    .as_ref()
    .expect("caller's owner");
    assert_eq!(owner("mine"), (0, 0));
}

/// The progress counters follow the unpack: every archive byte read,
/// every entry done.
#[test_log::test]
fn progress_counts_bytes_and_entries() {
    let sb = Sandbox::new();
    let mut raw = Raw::default();
    for i in 0..50 {
        raw.file(&format!("f{i}"), "x");
    }
    let a = raw.finish();
    let root = Root::open(sb.root()).unwrap();
    let p = UnpackProgress::new();
    let s = root
        .unpack_with_progress(a.as_slice(), &opts(), &p)
        .unwrap();
    assert_eq!(s.entries, 50);
    assert_eq!(p.entries(), 50);
    assert_eq!(p.archive_bytes(), a.len() as u64);
}

/// The peak resident memory of this process, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A stream of `n` one-byte files, each followed by a global PAX header
/// holding 1 MiB that is skipped, made on the fly.
struct TinyFilesBetweenSkips {
    n: usize,
    i: usize,
    pending: std::collections::VecDeque<u8>,
    zeros: u64,
}

impl std::io::Read for TinyFilesBetweenSkips {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() && self.zeros == 0 {
            if self.i == self.n {
                return Ok(0);
            }
            let mut r = Raw::default();
            r.file(&format!("f{}", self.i), "x");
            r.header(b"pax_global_header", b'g', 0o644, 1 << 20, b"");
            self.pending.extend(std::mem::take(&mut r.0));
            self.zeros = 1 << 20;
            self.i += 1;
            if self.i == self.n {
                self.zeros += 1024;
            }
        }
        if !self.pending.is_empty() {
            let k = buf.len().min(self.pending.len());
            for (b, p) in buf.iter_mut().zip(self.pending.drain(..k)) {
                *b = p;
            }
            return Ok(k);
        }
        let k = buf
            .len()
            .min(usize::try_from(self.zeros).unwrap_or(usize::MAX));
        buf[..k].fill(0);
        self.zeros -= k as u64;
        Ok(k)
    }
}

/// Read buffers travel to the extraction thread without copies; what is in
/// flight must stay bounded even when every tiny file keeps a whole read
/// buffer alive: 1-byte files with 1 MiB of skipped data between them,
/// from a stream (600 MiB made on the fly) and from a sparse archive file
/// (2 GiB, where skipped data is not even read).
#[test_log::test]
fn memory_in_flight_stays_bounded() {
    common::in_child("memory_in_flight_stays_bounded", &[], false, || {
        use std::os::unix::fs::FileExt;
        let sb = Sandbox::new();
        let root = Root::open(sb.root()).unwrap();
        let before = peak_rss_kib();
        let reader = TinyFilesBetweenSkips {
            n: 600,
            i: 0,
            pending: Default::default(),
            zeros: 0,
        };
        let s = root.unpack(reader, &opts()).unwrap();
        assert_eq!((s.files, s.skipped), (600, 600));
        let grew = peak_rss_kib().saturating_sub(before);
        log::info!("stream: peak RSS grew by {grew} KiB");
        assert!(grew < 40 << 10, "stream: peak RSS grew by {grew} KiB");

        let n = 2000u64;
        let path = sb.top.join("sparse.tar");
        let f = std::fs::File::create(&path).unwrap();
        let step = 1536 + (1 << 20);
        for i in 0..n {
            let mut r = Raw::default();
            r.file(&format!("g{i}"), "x");
            r.header(b"pax_global_header", b'g', 0o644, 1 << 20, b"");
            f.write_all_at(&r.0, i * step).unwrap();
        }
        f.set_len(n * step + 1024).unwrap();
        drop(f);
        let before = peak_rss_kib();
        let s = root
            .unpack_fd(
                std::fs::File::open(&path).unwrap(),
                &opts(),
                &UnpackProgress::new(),
            )
            .unwrap();
        assert_eq!((s.files, s.skipped), (n, n));
        let grew = peak_rss_kib().saturating_sub(before);
        log::info!("file: peak RSS grew by {grew} KiB");
        assert!(grew < 40 << 10, "file: peak RSS grew by {grew} KiB");
    });
}
