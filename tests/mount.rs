//! The path and mount layers against the real kernel, in private mount
//! namespaces. Every check reads the mount table or the filesystem, never
//! the code's own account of what it did.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::TempDir;
use saferoot::mount::Scope;
use saferoot::mount::{unmount_handle, unmount_in_root};
use saferoot::{ErrorKind, Feature, Mount, MountAttr, NodeKind, Propagation, Root};

/// The per-mount options and optional fields of the topmost mount at `p`,
/// read straight from `/proc/thread-self/mountinfo`.
fn mount_line(p: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (Path::new(&f[4].replace("\\040", " ")) == p)
                .then(|| (f[5].to_string(), f[6..sep].join(" ")))
        })
        .next_back()
}

fn opts(p: &Path) -> String {
    mount_line(p)
        .unwrap_or_else(|| panic!("{} is not a mount point", p.display()))
        .0
}

fn has_opt(p: &Path, o: &str) -> bool {
    opts(p).split(',').any(|x| x == o)
}

#[test_log::test]
fn tmpfs_is_configured_before_attach_and_lands_on_the_handle() {
    let dir = TempDir::new();
    common::in_mount_ns(|| {
        let m = Mount::fs("tmpfs")
            .data("mode=700,size=64k")
            .attrs(MountAttr::NOSUID | MountAttr::NODEV | MountAttr::NOEXEC)
            .mount()
            .unwrap();
        m.set_attr(MountAttr::RDONLY | MountAttr::NOATIME, MountAttr::empty())
            .unwrap();
        // Invariant 1: the detached mount has every flag before it is seen.
        let a = m.attrs().unwrap();
        assert!(
            a.contains(
                MountAttr::RDONLY
                    | MountAttr::NOSUID
                    | MountAttr::NODEV
                    | MountAttr::NOEXEC
                    | MountAttr::NOATIME
            ),
            "{a}"
        );
        assert!(!common::is_mount_point(dir.path()));
        let root = Root::open(dir.path()).unwrap();
        let att = m.attach(root.handle().unwrap()).unwrap();
        for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
            assert!(has_opt(dir.path(), o), "{o} missing: {}", opts(dir.path()));
        }
        let st = std::fs::metadata(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(st.permissions().mode() & 0o777, 0o700);
        att.detach().unwrap();
        assert!(!common::is_mount_point(dir.path()));
    });
}

#[test_log::test]
fn every_common_filesystem_type_mounts() {
    let dir = TempDir::new();
    let lower = TempDir::new();
    std::fs::write(lower.join("hello"), "hi").unwrap();
    let lower2 = TempDir::new();
    std::fs::write(lower2.join("bye"), "bye").unwrap();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        let cases: Vec<(&str, Mount)> = vec![
            ("proc", Mount::fs("proc").mount().unwrap()),
            ("sysfs", Mount::fs("sysfs").mount().unwrap()),
            ("mqueue", Mount::fs("mqueue").mount().unwrap()),
            (
                "devpts",
                Mount::fs("devpts")
                    .data("newinstance,ptmxmode=0666,mode=0620")
                    .mount()
                    .unwrap(),
            ),
            ("cgroup2", Mount::fs("cgroup2").mount().unwrap()),
            ("tmpfs", Mount::fs("tmpfs").source("shm").mount().unwrap()),
        ];
        for (fstype, m) in cases {
            let d = root.mkdir_all(format!("/{fstype}"), 0o755).unwrap();
            m.attach(&d).unwrap().forget();
            let p = dir.join(fstype);
            assert!(
                common::mount_points().contains(&(p.clone(), fstype.to_string())),
                "{fstype}"
            );
        }
        // overlay, read-only with two lower layers
        let d = root.mkdir_all("/overlay", 0o755).unwrap();
        let lowers = format!("{}:{}", lower.path().display(), lower2.path().display());
        Mount::fs("overlay")
            .string("lowerdir", lowers)
            .mount()
            .unwrap()
            .attach(&d)
            .unwrap()
            .forget();
        assert_eq!(
            std::fs::read_to_string(dir.join("overlay/hello")).unwrap(),
            "hi"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("overlay/bye")).unwrap(),
            "bye"
        );
        assert!(std::fs::read_to_string(dir.join("proc/self/status"))
            .unwrap()
            .contains("Pid:"));
        unmount_in_root(&root, "/overlay").unwrap();
        assert!(!common::is_mount_point(&dir.join("overlay")));
        for fstype in ["proc", "sysfs", "mqueue", "devpts", "cgroup2", "tmpfs"] {
            unmount_in_root(&root, format!("/{fstype}")).unwrap();
        }
    });
}

#[test_log::test]
fn bad_filesystem_input_is_refused_with_a_clear_error() {
    common::in_mount_ns(|| {
        let e = Mount::fs("nosuchfs").mount().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("nosuchfs"), "{e}");
        let e = Mount::fs("tmpfs").data("frobnicate=1").mount().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("frobnicate"), "{e}");
        let e = Mount::fs("tmpfs")
            .data("size=1m,,mode=755")
            .mount()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = Mount::fs("tmp\0fs").mount().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = Mount::fs("tmpfs").data("mode=zzz").mount().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = Mount::fs("tmpfs")
            .attrs(MountAttr::NOATIME | MountAttr::STRICTATIME)
            .mount()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let m = Mount::fs("tmpfs").mount().unwrap();
        let e = m
            .set_attr(MountAttr::RDONLY, MountAttr::RDONLY)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    });
}

#[test_log::test]
fn clone_tree_recursive_or_not_nofollow_and_missing_source() {
    let src = TempDir::new();
    let dst = TempDir::new();
    std::fs::create_dir(src.join("sub")).unwrap();
    std::fs::write(src.join("marker"), "src").unwrap();
    symlink(src.join("sub"), src.join("link")).unwrap();
    common::in_mount_ns(|| {
        let srcroot = Root::open(src.path()).unwrap();
        Mount::fs("tmpfs")
            .mount()
            .unwrap()
            .attach(srcroot.resolve("/sub").unwrap())
            .unwrap()
            .forget();
        std::fs::write(src.join("sub/inner"), "x").unwrap();
        let root = Root::open(dst.path()).unwrap();
        let a = root.mkdir_all("/flat", 0o755).unwrap();
        let b = root.mkdir_all("/deep", 0o755).unwrap();
        Mount::clone_tree(src.path(), Scope::Mount)
            .unwrap()
            .attach(&a)
            .unwrap()
            .forget();
        Mount::clone_tree(src.path(), Scope::Tree)
            .unwrap()
            .attach(&b)
            .unwrap()
            .forget();
        assert_eq!(
            std::fs::read_to_string(dst.join("flat/marker")).unwrap(),
            "src"
        );
        assert!(
            !dst.join("flat/sub/inner").exists(),
            "non-recursive clone took the submount"
        );
        assert!(
            dst.join("deep/sub/inner").exists(),
            "recursive clone lost the submount"
        );
        // nofollow binds the symlink itself, so it needs a non-directory target.
        let m = Mount::clone_tree_nofollow(src.join("link"), Scope::Mount).unwrap();
        let st = rustix::fs::fstat(&m).unwrap();
        assert_eq!(
            rustix::fs::FileType::from_raw_mode(st.st_mode),
            rustix::fs::FileType::Symlink
        );
        let m = Mount::clone_tree(src.join("link"), Scope::Mount).unwrap();
        let st = rustix::fs::fstat(&m).unwrap();
        assert_eq!(
            rustix::fs::FileType::from_raw_mode(st.st_mode),
            rustix::fs::FileType::Directory
        );
        let e = Mount::clone_tree(src.join("missing"), Scope::Mount).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
        let e = Mount::clone_tree("/a\0b", Scope::Mount).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        unmount_in_root(&root, "/flat").unwrap();
        unmount_in_root(&root, "/deep").unwrap();
        unmount_in_root(&srcroot, "/sub").unwrap();
    });
}

#[test_log::test]
fn recursive_attributes_and_clearing() {
    let dir = TempDir::new();
    common::in_mount_ns(|| {
        let base = Mount::fs("tmpfs").mount().unwrap();
        let r = base.root().unwrap();
        let sub = r.mkdir_all("/sub", 0o755).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let top = base.attach(root.handle().unwrap()).unwrap();
        Mount::fs("tmpfs")
            .mount()
            .unwrap()
            .attach(&sub)
            .unwrap()
            .forget();
        let clone = Mount::clone_tree(dir.path(), Scope::Tree).unwrap();
        clone
            .set_attr_recursive(MountAttr::RDONLY | MountAttr::NOEXEC, MountAttr::empty())
            .unwrap();
        clone
            .set_attr(MountAttr::empty(), MountAttr::RDONLY)
            .unwrap();
        let other = TempDir::new();
        let att = clone
            .attach(Root::open(other.path()).unwrap().handle().unwrap())
            .unwrap();
        assert!(
            has_opt(other.path(), "rw") && has_opt(other.path(), "noexec"),
            "{}",
            opts(other.path())
        );
        let subp = other.join("sub");
        assert!(
            has_opt(&subp, "ro") && has_opt(&subp, "noexec"),
            "{}",
            opts(&subp)
        );
        att.detach().unwrap();
        top.detach().unwrap();
        assert!(!common::is_mount_point(other.path()));
        assert!(!common::is_mount_point(dir.path()));
    });
}

#[test_log::test]
fn propagation_shared_and_slave_show_in_the_table() {
    let a = TempDir::new();
    let b = TempDir::new();
    common::in_mount_ns(|| {
        let m = Mount::fs("tmpfs").mount().unwrap();
        m.set_propagation(Propagation::Shared, Scope::Mount)
            .unwrap();
        let ra = Root::open(a.path()).unwrap();
        let att = m.attach(ra.handle().unwrap()).unwrap();
        let (_, fields) = mount_line(a.path()).unwrap();
        assert!(fields.contains("shared:"), "{fields}");
        let peer = fields
            .split(' ')
            .find(|f| f.starts_with("shared:"))
            .unwrap()
            .to_string();
        let c = Mount::clone_tree(a.path(), Scope::Mount).unwrap();
        c.set_propagation(Propagation::Slave, Scope::Mount).unwrap();
        let att2 = c
            .attach(Root::open(b.path()).unwrap().handle().unwrap())
            .unwrap();
        let (_, fields) = mount_line(b.path()).unwrap();
        let master = peer.replace("shared:", "master:");
        assert!(fields.contains(&master), "{fields} lacks {master}");
        // An event on the master reaches the slave.
        let ra = Root::open(a.path()).unwrap();
        let sub = ra.mkdir_all("/sub", 0o755).unwrap();
        Mount::fs("tmpfs")
            .mount()
            .unwrap()
            .attach(&sub)
            .unwrap()
            .forget();
        assert!(
            common::is_mount_point(&b.join("sub")),
            "mount did not propagate to the slave"
        );
        unmount_in_root(&ra, "/sub").unwrap();
        att2.detach().unwrap();
        att.detach().unwrap();
        // Unbindable: cloning it is refused.
        let m = Mount::fs("tmpfs").mount().unwrap();
        m.set_propagation(Propagation::Unbindable, Scope::Mount)
            .unwrap();
        let att = m
            .attach(Root::open(a.path()).unwrap().handle().unwrap())
            .unwrap();
        assert!(mount_line(a.path()).unwrap().1.contains("unbindable"));
        assert!(Mount::clone_tree(a.path(), Scope::Mount).is_err());
        att.detach().unwrap();
    });
}

#[test_log::test]
fn idmapped_mount_shows_files_with_mapped_owners() {
    let src = TempDir::new();
    let dst = TempDir::new();
    std::fs::write(src.join("f"), "x").unwrap();
    // tmpfs accepts idmapped mounts from Linux 6.3 on. Before that the
    // source stays on the filesystem of /tmp (ext4 where CI runs, and in
    // the tests/kernels guests), and a tmpfs must be refused clearly.
    let tmpfs_idmaps = common::kernel_version() >= (6, 3);
    common::in_mount_ns(|| {
        let srcroot = Root::open(src.path()).unwrap();
        let procfs = saferoot::procfs::Procfs::new().unwrap();
        let userns = procfs.make_userns("0 1000 1\n", "0 2000 1\n").unwrap();
        let tmp = Mount::fs("tmpfs").mount().unwrap();
        if tmpfs_idmaps {
            tmp.attach(srcroot.handle().unwrap()).unwrap().forget();
            std::fs::write(src.join("f"), "x").unwrap();
        } else {
            let e = tmp.set_idmap(&userns, Scope::Mount).unwrap_err();
            assert!(
                e.kind() == saferoot::ErrorKind::Os && e.errno() == libc::EINVAL,
                "{e:?}"
            );
            assert!(
                e.to_string().contains("may not support idmapped mounts"),
                "{e}"
            );
            drop(tmp);
        }
        let m = Mount::clone_tree(src.path(), Scope::Mount).unwrap();
        m.set_idmap(&userns, Scope::Mount).unwrap();
        drop(userns);
        let att = m
            .attach(Root::open(dst.path()).unwrap().handle().unwrap())
            .unwrap();
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(dst.join("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1000, 2000));
        let md = std::fs::metadata(src.join("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 0));
        att.detach().unwrap();
        if tmpfs_idmaps {
            // srcroot was opened before the tmpfs covered it; unmounting
            // through it takes the mount on top of that place.
            unmount_handle(&srcroot.handle().unwrap()).unwrap();
        }
        assert!(!common::is_mount_point(src.path()));
    });
}

#[test_log::test]
fn attach_beneath_then_detach_top_swaps_atomically() {
    let dir = TempDir::new();
    common::in_mount_ns(|| {
        if !saferoot::features::has(Feature::MoveMountBeneath) {
            // An older kernel, or the feature turned off: refused by name.
            let e = Mount::fs("tmpfs")
                .mount()
                .unwrap()
                .attach_beneath(Root::open(dir.path()).unwrap().handle().unwrap())
                .unwrap_err();
            assert_eq!(e.error().kind(), ErrorKind::Unsupported, "{e}");
            return;
        }
        let root = Root::open(dir.path()).unwrap();
        let old = Mount::fs("tmpfs").mount().unwrap();
        let oldroot = old.root().unwrap();
        oldroot.create_file("/old", 0o644).unwrap();
        let top = old.attach(root.handle().unwrap()).unwrap();
        let new = Mount::fs("tmpfs").mount().unwrap();
        new.root().unwrap().create_file("/new", 0o644).unwrap();
        let target = Root::open(dir.path()).unwrap().handle().unwrap();
        let under = new.attach_beneath(&target).unwrap();
        assert!(dir.join("old").exists(), "top mount must stay on top");
        top.detach().unwrap();
        assert!(dir.join("new").exists() && !dir.join("old").exists());
        under.detach().unwrap();
        assert!(!common::is_mount_point(dir.path()));
    });
}

#[test_log::test]
fn file_mounts_detach_through_their_parent() {
    let dir = TempDir::new();
    std::fs::write(dir.join("target"), "under").unwrap();
    let src = TempDir::new();
    std::fs::write(src.join("f"), "over").unwrap();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        let m = Mount::clone_tree(src.join("f"), Scope::Mount).unwrap();
        let att = m.attach_at(&root, "/target").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("target")).unwrap(), "over");
        att.detach().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("target")).unwrap(),
            "under"
        );
        // By handle only, a file mount cannot be detached that way...
        let att = Mount::clone_tree(src.join("f"), Scope::Mount)
            .unwrap()
            .attach(root.resolve("/target").unwrap())
            .unwrap();
        assert_eq!(att.detach().unwrap_err().kind(), ErrorKind::InvalidInput);
        // ...but unmount_in_root can, through the parent and name.
        unmount_in_root(&root, "/target").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("target")).unwrap(),
            "under"
        );
    });
}

#[test_log::test]
fn root_operations_create_inside_the_root() {
    let dir = TempDir::new();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        root.mkdir_all("/a/b/c", 0o750).unwrap();
        assert!(dir.join("a/b/c").is_dir());
        let h = root.create_file("/a/file", 0o640).unwrap();
        assert!(!h.is_dir().unwrap());
        // create_file on an existing regular file returns it
        root.create_file("/a/file", 0o640).unwrap();
        let e = root.create_file("/a/b", 0o640).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        // A symlink there is refused, never followed: not even a dangling
        // one that points out of the root makes anything outside.
        let outside = TempDir::new();
        let target = outside.join("made-through-the-link");
        symlink(&target, dir.join("a/link")).unwrap();
        let e = root.create_file("/a/link", 0o640).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(!target.exists(), "created through the symlink");
        // The parent must exist.
        let e = root.create_file("/missing/file", 0o640).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        // And a node never lands through a symlink either.
        symlink(outside.join("node"), dir.join("a/nodelink")).unwrap();
        let e = root
            .mknod("/a/nodelink", NodeKind::Fifo, 0o600)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert!(!outside.join("node").exists(), "made through the symlink");
        let n = root
            .mknod("/null", NodeKind::Char { major: 1, minor: 3 }, 0o666)
            .unwrap();
        assert_eq!(n.stat().unwrap().rdev, rustix::fs::makedev(1, 3));
        root.mknod("/fifo", NodeKind::Fifo, 0o600).unwrap();
        let b = root
            .mknod("/loop", NodeKind::Block { major: 7, minor: 0 }, 0o600)
            .unwrap();
        let st = b.stat().unwrap();
        assert_eq!(st.file_type, rustix::fs::FileType::BlockDevice);
        assert_eq!(st.rdev, rustix::fs::makedev(7, 0));
        let e = root.mknod("/fifo", NodeKind::Fifo, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(dir.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        root.symlink("/a/b", "/lnk").unwrap();
        assert_eq!(root.readlink("/lnk").unwrap(), Path::new("/a/b"));
        assert!(root.resolve("/lnk/c").unwrap().is_dir().unwrap());
        assert_eq!(
            root.resolve_nofollow("/lnk").unwrap().file_type().unwrap(),
            rustix::fs::FileType::Symlink
        );
        root.remove_file("/lnk").unwrap();
        root.remove_dir("/a/b/c").unwrap();
        assert!(!dir.join("a/b/c").exists());
        // bad inputs
        for (e, what) in [
            (root.resolve("relative").unwrap_err(), "relative"),
            (root.mkdir_all("/a\0b", 0o755).unwrap_err(), "nul"),
            (root.mkdir_all("/x", 0o17777).unwrap_err(), "mode"),
            (root.symlink("", "/s").unwrap_err(), "empty target"),
            (root.create_file("/", 0o644).unwrap_err(), "root"),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
        }
        let e = root.mkdir_all("/a/file/sub", 0o755).unwrap_err();
        assert_ne!(e.kind(), ErrorKind::InvalidInput, "{e}");
        symlink("loop2", dir.join("loop1")).unwrap();
        symlink("loop1", dir.join("loop2")).unwrap();
        let e = root.resolve("/loop1/x").unwrap_err();
        assert_eq!(e.path(), Some(Path::new("/loop1/x")), "{e}");
        assert_eq!(e.errno(), libc::ELOOP, "{e}");
        let e = root.resolve("/missing").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    });
}

/// The escape scenarios: whatever a symlink in the rootfs says, a mount
/// lands inside the root or not at all. Checked in the mount table and on
/// the host side.
#[test_log::test]
fn symlinks_out_of_the_root_are_confined() {
    let dir = TempDir::new();
    let host = TempDir::new();
    std::fs::write(host.join("marker"), "host").unwrap();
    symlink("/", dir.join("evil")).unwrap();
    symlink("../../..", dir.join("evil2")).unwrap();
    symlink(host.path(), dir.join("evil3")).unwrap();
    symlink("loop2", dir.join("loop1")).unwrap();
    symlink("loop1", dir.join("loop2")).unwrap();
    symlink("/proc/self/root", dir.join("proc-self")).unwrap();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        let before = common::mount_points();
        for link in ["/evil", "/evil2", "/evil3", "/loop1", "/proc-self"] {
            let target = format!("{link}/x");
            let r = root
                .mkdir_all(&target, 0o755)
                .and_then(|h| Mount::fs("tmpfs").mount()?.attach(&h).map_err(Into::into));
            let after = common::mount_points();
            let new: Vec<_> = after.iter().filter(|m| !before.contains(m)).collect();
            match r {
                Ok(att) => {
                    assert_eq!(new.len(), 1, "{link}: {new:?}");
                    assert!(
                        new[0].0.starts_with(dir.path()),
                        "{link} escaped to {:?}",
                        new[0]
                    );
                    att.detach().unwrap();
                }
                Err(e) => assert!(new.is_empty(), "{link} failed ({e}) but left {new:?}"),
            }
        }
        assert!(
            !Path::new("/x").exists(),
            "a directory was created on the host"
        );
        assert_eq!(
            std::fs::read_dir(host.path()).unwrap().count(),
            1,
            "host dir touched"
        );
        assert!(
            dir.join("x").is_dir(),
            "the absolute symlinks should resolve to the root"
        );
        assert_eq!(
            root.resolve("/proc-self").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    });
}

/// An attacker swaps a directory and a symlink to `/` as fast as it can
/// while mounts are attached at that path. Every attach must land inside
/// the root. Raise the count with SAFEROOT_RACE_ITERATIONS.
#[test_log::test]
fn racing_symlink_exchange_never_escapes() {
    race(
        std::env::var("SAFEROOT_RACE_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    );
}

#[test_log::test]
#[ignore = "long race run; run with --ignored"]
fn racing_symlink_exchange_never_escapes_long() {
    race(100_000);
}

fn race(iterations: usize) {
    let dir = TempDir::new();
    std::fs::create_dir(dir.join("d")).unwrap();
    symlink("/", dir.join("s")).unwrap();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        let ((inside, failed), swaps) = common::while_exchanging(dir.path(), "d", "s", || {
            let (mut inside, mut failed) = (0usize, 0usize);
            for _ in 0..iterations {
                let r = root
                    .resolve("/d")
                    .and_then(|h| Mount::fs("tmpfs").mount()?.attach(&h).map_err(Into::into));
                match r {
                    Ok(att) => {
                        let mp = mount_point_of(&att);
                        assert!(
                            mp.starts_with(dir.path()),
                            "escaped: mounted at {}",
                            mp.display()
                        );
                        inside += 1;
                        att.detach().unwrap();
                    }
                    Err(_) => failed += 1,
                }
            }
            (inside, failed)
        });
        log::info!("race: {iterations} attempts, {swaps} swaps, {inside} inside the root, {failed} refused");
        eprintln!("race: {iterations} attempts, {swaps} swaps, {inside} inside the root, {failed} refused");
        assert_eq!(inside + failed, iterations);
        assert!(inside > 0, "no attach ever succeeded");
        assert!(swaps > 0, "the attacker never swapped");
    });
}

/// Where the mount behind `fd` is, from the mount table (by its mount id).
fn mount_point_of(fd: impl std::os::fd::AsFd) -> PathBuf {
    let id = rustix::fs::statx(
        fd,
        c"",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::MNT_ID,
    )
    .unwrap()
    .stx_mnt_id
    .to_string();
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.split(' ').next() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("mount {id} not in the table"));
    PathBuf::from(line.split(' ').nth(4).unwrap())
}

#[test_log::test]
fn missing_features_are_reported_not_worked_around() {
    common::in_child(
        "missing_features_are_reported_not_worked_around",
        &[("SAFEROOT_DISABLE_FEATURES", "move_mount-beneath")],
        false,
        || {
            assert!(!saferoot::features::has(Feature::MoveMountBeneath));
            let dir = TempDir::new();
            common::in_mount_ns(|| {
                let root = Root::open(dir.path()).unwrap();
                let e = Mount::fs("tmpfs")
                    .mount()
                    .unwrap()
                    .attach_beneath(root.handle().unwrap())
                    .unwrap_err();
                assert_eq!(e.error().kind(), ErrorKind::Unsupported);
                let s = e.to_string();
                assert!(s.contains("move_mount-beneath") && s.contains("6.5"), "{s}");
                assert!(!common::is_mount_point(dir.path()));
            });
        },
    );
}

#[test_log::test]
fn seccomp_enosys_makes_probes_report_missing_syscalls() {
    common::in_child(
        "seccomp_enosys_makes_probes_report_missing_syscalls",
        &[],
        false,
        || {
            saferoot::testing::deny_with_enosys(&[
                linux_raw_sys::general::__NR_mount_setattr,
                linux_raw_sys::general::__NR_open_tree_attr,
            ])
            .unwrap();
            assert!(!saferoot::features::has(Feature::MountSetattr));
            assert!(!saferoot::features::has(Feature::DetachedMountTargets));
            let e = Mount::fs("tmpfs")
                .mount()
                .unwrap()
                .set_attr(MountAttr::RDONLY, MountAttr::empty())
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            assert!(e.to_string().contains("5.12"), "{e}");
        },
    );
}

/// Linux 6.15+: mounts can be attached inside a detached tree, and the
/// finished tree attached once; nothing is visible before that last step.
#[test_log::test]
fn a_detached_tree_is_built_then_attached_once() {
    // What the kernel can do, whatever SAFEROOT_DISABLE_FEATURES says.
    let supported = saferoot::testing::probe_detached_mount_targets();
    let dir = TempDir::new();
    common::in_mount_ns(|| {
        if !supported {
            // Before 6.15 the kernel refuses; the probe must agree with it.
            let tree = Mount::fs("tmpfs").mount().unwrap();
            let b = tree.root().unwrap().mkdir_all("/b", 0o755).unwrap();
            assert!(Mount::fs("tmpfs").mount().unwrap().attach(&b).is_err());
            return;
        }
        let tree = Mount::fs("tmpfs").mount().unwrap();
        let inner = tree.root().unwrap();
        let a = inner.mkdir_all("/a", 0o755).unwrap();
        let b = inner.mkdir_all("/a/b", 0o755).unwrap();
        let child = Mount::fs("tmpfs").mount().unwrap();
        child
            .root()
            .unwrap()
            .create_file("/child-marker", 0o644)
            .unwrap();
        child
            .set_attr(MountAttr::RDONLY, MountAttr::empty())
            .unwrap();
        child.attach(&b).unwrap().forget();
        drop(a);
        let before = common::mount_points();
        assert!(
            !before.iter().any(|(p, _)| p.starts_with(dir.path())),
            "visible before the attach"
        );
        let att = tree
            .attach(Root::open(dir.path()).unwrap().handle().unwrap())
            .unwrap();
        assert!(dir.join("a/b/child-marker").exists());
        assert!(
            has_opt(&dir.join("a/b"), "ro"),
            "{}",
            opts(&dir.join("a/b"))
        );
        att.detach().unwrap();
        assert!(!common::is_mount_point(dir.path()));
    });
}

/// A mount knows whether its root is a directory: a new filesystem's
/// always is, a bind is what its source is (a file or device bind is not
/// one), and the attached mount carries the same answer.
#[test_log::test]
fn a_mount_knows_whether_its_root_is_a_directory() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("f"), "x").unwrap();
    common::in_mount_ns(|| {
        let fs = Mount::fs("tmpfs").mount().unwrap();
        assert!(fs.is_dir().unwrap());
        let d = Mount::clone_tree(dir.join("d"), Scope::Mount).unwrap();
        assert!(d.is_dir().unwrap());
        let f = Mount::clone_tree(dir.join("f"), Scope::Mount).unwrap();
        assert!(!f.is_dir().unwrap());
        let null = Mount::clone_tree_nofollow("/dev/null", Scope::Mount).unwrap();
        assert!(!null.is_dir().unwrap());
        // Attached: a file mount onto a file, read back from the table.
        std::fs::write(dir.join("target"), "").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let a = f.attach_at(&root, "/target").unwrap();
        assert!(mount_line(&dir.join("target")).is_some());
        assert_eq!(std::fs::read_to_string(dir.join("target")).unwrap(), "x");
        a.detach().unwrap();
        assert!(mount_line(&dir.join("target")).is_none());
    });
}
