//! A container's mount namespace made from a minimal namespace and a host
//! view (`saferoot::rootfs::minimal_ns`): it holds exactly the host objects
//! asked for, none of the host's other mounts, and making it changes
//! nothing in the caller's namespace.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::TempDir;
use saferoot::mount::Scope;
use saferoot::rootfs::{HostView, MinimalNamespace};
use saferoot::{Mount, Root};

/// The mount points of the calling thread's namespace, read from its own
/// mountinfo (the view includes the host's procfs for this).
fn thread_mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo").expect("read mountinfo");
    common::parse_mountinfo(&text)
        .expect("parse mountinfo")
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// Mounts `n` tmpfs under `dir` in the calling thread's namespace: host
/// mounts a container must not get.
fn clutter(dir: &Path, n: usize) {
    let root = Root::open(dir).unwrap();
    for i in 0..n {
        let h = root.mkdir_all(format!("/m{i}"), 0o755).unwrap();
        Mount::fs("tmpfs")
            .source("clutter")
            .mount()
            .unwrap()
            .attach(&h)
            .unwrap()
            .forget();
    }
}

#[test_log::test]
fn a_container_namespace_holds_only_the_host_objects_asked_for() {
    // Made (and removed) by this thread: the namespace thread's root
    // changes.
    let wanted = TempDir::new();
    std::fs::write(wanted.join("marker"), "wanted\n").unwrap();
    let elsewhere = TempDir::new();
    let Some(()) = common::in_mount_ns(|| {
        let ns = MinimalNamespace::create().expect("create a minimal namespace");
        clutter(elsewhere.path(), 40);
        let host_before = thread_mount_points();
        assert!(host_before.len() >= 40);

        let view = HostView::open(
            wanted.path(),
            [
                (wanted.path().to_path_buf(), Scope::Tree),
                (PathBuf::from("/proc"), Scope::Mount),
                (PathBuf::from("/usr"), Scope::Mount),
            ],
        )
        .expect("open the host view");
        // Opening changed nothing here.
        assert_eq!(thread_mount_points(), host_before);
        ns.enter().expect("enter the minimal namespace");
        view.install().expect("install the host view");

        let inside: BTreeSet<PathBuf> = thread_mount_points().into_iter().collect();
        let expected: BTreeSet<PathBuf> = [
            PathBuf::from("/"),
            PathBuf::from("/proc"),
            PathBuf::from("/usr"),
            wanted.path().to_path_buf(),
        ]
        .into_iter()
        .collect();
        assert_eq!(inside, expected, "the namespace holds exactly the view");
        assert_eq!(
            std::fs::read_to_string(wanted.join("marker")).unwrap(),
            "wanted\n"
        );
        assert!(Path::new("/usr/bin").is_dir());
        assert!(
            !elsewhere.path().exists(),
            "a host path not asked for is absent"
        );
        assert!(!Path::new("/etc/passwd").exists());
    }) else {
        return;
    };
}

#[test_log::test]
fn a_missing_host_path_is_refused_and_changes_nothing() {
    let Some(()) = common::in_mount_ns(|| {
        let dir = TempDir::new();
        let before = thread_mount_points();
        let e = HostView::open(dir.path(), [(dir.join("does-not-exist"), Scope::Tree)])
            .expect_err("a missing path is refused");
        assert_eq!(e.kind(), saferoot::ErrorKind::NotFound, "{e}");
        let e = HostView::open(dir.path(), [(PathBuf::from("relative"), Scope::Tree)])
            .expect_err("a relative path is refused");
        assert_eq!(e.kind(), saferoot::ErrorKind::InvalidInput, "{e}");
        assert_eq!(thread_mount_points(), before);
    }) else {
        return;
    };
}

#[test_log::test]
fn a_pinned_namespace_is_opened_again_and_only_mount_namespaces_are() {
    let dir = TempDir::new();
    let Some(()) = common::in_mount_ns(|| {
        let pin = dir.join("ns");
        // create_pinned: a plain pin may meet ELOOP on Linux 6.18, whose
        // per-CPU namespace ids can put a new namespace below an older one.
        let ns = MinimalNamespace::create_pinned(&pin).expect("create and pin");
        assert!(common::is_mount_point(&pin));
        let again = MinimalNamespace::open(&pin).expect("open the pin");
        let id = |m: &MinimalNamespace| rustix::fs::fstat(m).unwrap().st_ino;
        assert_eq!(id(&ns), id(&again));
        // Pinning onto an existing file is refused.
        assert!(ns.pin(&pin).is_err());
        // Not a mount namespace.
        let e = MinimalNamespace::open("/proc/self/ns/net").expect_err("a net namespace");
        assert_eq!(e.kind(), saferoot::ErrorKind::InvalidInput, "{e}");
        let e = MinimalNamespace::open(dir.path()).expect_err("a directory");
        assert!(
            matches!(
                e.kind(),
                saferoot::ErrorKind::Os | saferoot::ErrorKind::InvalidInput
            ),
            "{e}"
        );
        // Entered on a thread of its own (with a private fs struct): the
        // minimal namespace has no procfs, which this thread still needs.
        let inside = std::thread::scope(|s| {
            s.spawn(|| {
                saferoot::namespace::unshare(rustix::thread::UnshareFlags::FS).unwrap();
                again.enter().expect("enter the pinned namespace");
                thread_mount_points_without_proc()
            })
            .join()
            .unwrap()
        });
        assert_eq!(inside, 1, "the minimal namespace has one mount");
    }) else {
        return;
    };
}

/// Counts the mounts of the calling thread's namespace without a procfs:
/// `listmount` through the library.
fn thread_mount_points_without_proc() -> usize {
    saferoot::mountinfo::MountTable::read()
        .map(|t| t.entries().len())
        .unwrap_or(0)
}
