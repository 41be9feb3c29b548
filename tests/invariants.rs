//! The design invariants that cut across layers, each checked against the
//! kernel: configured-before-visible, every fd close-on-exec, and building a
//! root without reading the host's mount table.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::TempDir;
use saferoot::mount::Scope;
use saferoot::rootfs::{assemble, AssembleOptions, MountSpec, RootfsSpec};
use saferoot::{Mount, MountAttr, Root};

const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Invariant 1: a second thread watches the target while mounts are
/// attached; whenever it sees the tmpfs there, the tmpfs already has every
/// flag asked for. There is no moment with weaker flags.
#[test_log::test]
fn a_mount_is_never_visible_with_weaker_flags() {
    let dir = TempDir::new();
    common::in_mount_ns(|| {
        let root = Root::open(dir.path()).unwrap();
        let stop = AtomicBool::new(false);
        let seen_mounted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let want = rustix::fs::StatVfsMountFlags::RDONLY
                    | rustix::fs::StatVfsMountFlags::NOSUID
                    | rustix::fs::StatVfsMountFlags::NODEV
                    | rustix::fs::StatVfsMountFlags::NOEXEC;
                while !stop.load(Ordering::Relaxed) {
                    // One fd, so both answers are about the same mount.
                    let Ok(fd) = rustix::fs::open(
                        dir.path(),
                        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                        rustix::fs::Mode::empty(),
                    ) else {
                        continue;
                    };
                    let (Ok(fs), Ok(vfs)) = (rustix::fs::fstatfs(&fd), rustix::fs::fstatvfs(&fd))
                    else {
                        continue;
                    };
                    if fs.f_type == TMPFS_MAGIC {
                        seen_mounted.fetch_add(1, Ordering::Relaxed);
                        assert!(
                            vfs.f_flag.contains(want),
                            "tmpfs visible with flags {:?}",
                            vfs.f_flag
                        );
                    }
                }
            });
            for _ in 0..300 {
                let m = Mount::fs("tmpfs")
                    .attrs(MountAttr::NOSUID | MountAttr::NODEV | MountAttr::NOEXEC)
                    .mount()
                    .unwrap();
                m.set_attr(MountAttr::RDONLY, MountAttr::empty()).unwrap();
                let att = m.attach(root.handle().unwrap()).unwrap();
                std::thread::yield_now();
                att.detach().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            watcher.join().unwrap();
        });
        assert!(
            seen_mounted.load(Ordering::Relaxed) > 0,
            "the watcher never saw the mount"
        );
    });
}

/// Invariant 5: every fd saferoot opens is close-on-exec. Everything is
/// opened at once and the kernel's fdinfo flags of each new fd are read.
#[test_log::test]
fn every_fd_saferoot_opens_is_cloexec() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.join("d")).unwrap();
    common::in_mount_ns(|| {
        let before = common::open_fds();
        let root = Root::open(dir.path()).unwrap();
        let h = root.resolve("/d").unwrap();
        let f = root.create_file("/f", 0o644).unwrap();
        let m = Mount::fs("tmpfs").mount().unwrap();
        let c = Mount::clone_tree(dir.path(), Scope::Tree).unwrap();
        let c2 = Mount::clone_fd(&h, Scope::Mount).unwrap();
        let mr = m.root().unwrap();
        let procfs = saferoot::procfs::Procfs::new().unwrap();
        let userns = procfs.make_userns("0 0 1\n", "0 0 1\n").unwrap();
        let r = h.reopen(rustix::fs::OFlags::RDONLY).unwrap();
        let new: Vec<_> = common::open_fds().difference(&before).copied().collect();
        assert!(new.len() >= 8, "{new:?}");
        for fd in new {
            let info = std::fs::read_to_string(format!("/proc/thread-self/fdinfo/{fd}"))
                .unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
                .unwrap_or(0);
            if info.is_empty() {
                continue; // closed meanwhile (the fdinfo read itself)
            }
            assert_ne!(
                flags & libc::O_CLOEXEC as u32,
                0,
                "fd {fd} ({}) lacks O_CLOEXEC",
                common::fd_target(fd)
            );
        }
        drop((root, h, f, m, c, c2, mr, procfs, userns, r));
    });
}

/// Invariant 7: building a root reads no mount table, so its cost does not
/// depend on how many mounts the host has. Hundreds of extra mounts are
/// made first; the table-read counter must not move during assembly.
#[test_log::test]
fn assembly_never_reads_the_mount_table() {
    let rootfs = TempDir::new();
    for d in ["proc", "dev", "tmp"] {
        std::fs::create_dir(rootfs.join(d)).unwrap();
    }
    let clutter = TempDir::new();
    common::in_mount_ns(|| {
        let root = Root::open(clutter.path()).unwrap();
        for i in 0..300 {
            let h = root.mkdir_all(format!("/m{i}"), 0o755).unwrap();
            Mount::fs("tmpfs")
                .mount()
                .unwrap()
                .attach(&h)
                .unwrap()
                .forget();
        }
        let spec = RootfsSpec {
            rootfs: rootfs.path().into(),
            mounts: vec![
                MountSpec::new("/proc", "proc", None, &[]),
                MountSpec::new("/tmp", "tmpfs", None, &["nosuid"]),
            ],
            masked_paths: vec!["/proc/keys".into()],
            readonly_paths: vec!["/proc/sys".into()],
            ..Default::default()
        };
        let before = saferoot::mountinfo::table_reads();
        let a = assemble(&spec, &AssembleOptions::default()).unwrap();
        assert_eq!(
            saferoot::mountinfo::table_reads(),
            before,
            "assembly read a mount table"
        );
        a.detach().unwrap();
        // The counter does count: reading a table moves it.
        saferoot::MountTable::read().unwrap();
        assert_eq!(saferoot::mountinfo::table_reads(), before + 1);
        assert!(common::is_mount_point(&clutter.join("m0")));
        assert!(!common::is_mount_point(Path::new(&rootfs.join("proc"))));
    });
}
