//! What the mount types allow, as the kernel does: a failed attach hands
//! the mount back, attributes and propagation change on attached mounts
//! too, and a target is any borrowed fd. Checked in the mount table.

mod common;

use std::os::fd::AsFd;

use std::path::Path;

use common::TempDir;
use saferoot::{ErrorKind, Mount, MountAttr, Propagation, Root, Scope};

/// The per-mount options and optional fields (`shared:N`, ...) of the
/// topmost mount at `p`, read from mountinfo, not from the code under test.
fn table_line(p: &Path) -> (String, String) {
    let p = std::fs::canonicalize(p).unwrap();
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (Path::new(f[4]) == p).then(|| (f[5].to_string(), f[6..sep].join(" ")))
        })
        .next_back()
        .unwrap_or_else(|| panic!("{} is not a mount point", p.display()))
}

#[test_log::test]
fn a_failed_attach_gives_the_mount_back_still_detached() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path().join("ok")).unwrap();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        let m = Mount::fs("tmpfs").data("size=64k").mount().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        // The mount is of a directory; a regular file is no place for it.
        let e = m.attach(root.resolve("/file").unwrap()).unwrap_err();
        assert_eq!(e.error().kind(), ErrorKind::Os, "{e}");
        assert!(!common::is_mount_point(&dir.path().join("file")));
        let m = e.into_mount();
        // The same mount, still detached, attaches elsewhere.
        let a = m.attach(root.resolve("/ok").unwrap().as_fd()).unwrap();
        assert!(common::is_mount_point(&dir.path().join("ok")));
        // Attributes change on the attached mount, as the table shows.
        a.set_attr(MountAttr::RDONLY, MountAttr::empty()).unwrap();
        assert!(a.attrs().unwrap().contains(MountAttr::RDONLY));
        let (options, _) = table_line(&dir.path().join("ok"));
        assert!(options.split(',').any(|o| o == "ro"), "{options}");
        a.set_propagation(Propagation::Shared, Scope::Mount)
            .unwrap();
        let (_, optional) = table_line(&dir.path().join("ok"));
        assert!(optional.contains("shared:"), "{optional}");
    })
    .expect("namespace");
}

/// `Handle::reopen_with` through saferoot's own procfs opens the same
/// inode as pathrs's `reopen`, drops `O_NOFOLLOW` (the magic link must be
/// followed), and refuses a symlink handle with `ELOOP` as pathrs does.
#[test_log::test]
fn a_handle_reopens_through_a_private_procfs_as_through_pathrs() {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new();
    std::fs::write(dir.join("f"), "data").unwrap();
    std::os::unix::fs::symlink("f", dir.join("link")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    let procfs = saferoot::procfs::Procfs::new().unwrap();
    let h = root.resolve("/f").unwrap();
    for flags in [
        rustix::fs::OFlags::RDONLY,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW,
    ] {
        let mut ours = h.reopen_with(&procfs, flags).unwrap();
        let theirs = h.reopen(flags).unwrap();
        let mut s = String::new();
        ours.read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
        let (a, b) = (ours.metadata().unwrap(), theirs.metadata().unwrap());
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
    }
    let link = root.resolve_nofollow("/link").unwrap();
    let e = link
        .reopen_with(&procfs, rustix::fs::OFlags::RDONLY)
        .unwrap_err();
    assert_eq!(e.errno(), rustix::io::Errno::LOOP.raw_os_error(), "{e}");
    assert!(link.reopen(rustix::fs::OFlags::RDONLY).is_err());
}
