//! Tests of the test harness itself (`tests/common`): that its checks catch
//! what they are there to catch, and that what it isolates stays isolated.

mod common;

use std::any::Any;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::{in_mount_ns, TempDir};
use rustix::mount::{mount_bind, unmount, MountFlags, UnmountFlags};

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f`, expects it to panic, returns the panic message.
#[track_caller]
fn expect_panic(f: impl FnOnce()) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected a panic, got none"),
        Err(payload) => panic_message(&*payload),
    }
}

fn mount_tmpfs(target: &Path) {
    rustix::mount::mount("tmpfs", target, "tmpfs", MountFlags::empty(), c"size=1m")
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", target.display()));
}

#[test_log::test]
fn namespace_is_separate_and_private() {
    let leader_ns = std::fs::read_link(format!("/proc/{}/ns/mnt", std::process::id())).unwrap();
    in_mount_ns(|| {
        let own_ns = std::fs::read_link("/proc/thread-self/ns/mnt").unwrap();
        assert_ne!(
            own_ns, leader_ns,
            "the test thread is in the host mount namespace"
        );
        let info = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        for line in info.lines() {
            let optional = line.split(" - ").next().unwrap();
            assert!(
                !optional.contains("shared:") && !optional.contains("master:"),
                "mount not private in the test namespace: {line}"
            );
        }
    });
}

#[test_log::test]
fn returns_the_value_of_the_body() {
    let captured = String::from("borrowed");
    let Some(r) = in_mount_ns(|| format!("{captured} ok")) else {
        return;
    };
    assert_eq!(r, "borrowed ok");
}

#[test_log::test]
fn leaked_fd_is_detected() {
    if !common::require_root() {
        return;
    }
    let msg = expect_panic(|| {
        in_mount_ns(|| {
            let f = std::fs::File::open("/dev/null").unwrap();
            std::mem::forget(f);
        });
    });
    assert!(msg.contains("leaked fds"), "unexpected message: {msg}");
    assert!(
        msg.contains("/dev/null"),
        "leaked fd target not shown: {msg}"
    );
}

#[test_log::test]
fn fds_closed_in_time_are_fine() {
    in_mount_ns(|| {
        let a = std::fs::File::open("/dev/null").unwrap();
        let b = rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert!(common::open_fds().len() >= 2);
        drop((a, b));
    });
}

#[test_log::test]
fn panic_in_body_propagates() {
    if !common::require_root() {
        return;
    }
    let msg = expect_panic(|| {
        in_mount_ns(|| panic!("deliberate panic 4711"));
    });
    assert!(msg.contains("deliberate panic 4711"), "payload lost: {msg}");
}

#[test_log::test]
fn mount_in_namespace_is_not_visible_outside() {
    let dir = TempDir::new();
    let r = in_mount_ns(|| {
        mount_tmpfs(dir.path());
        assert!(common::is_mount_point(dir.path()));
        assert!(common::mount_points()
            .iter()
            .any(|(m, t)| m == dir.path() && t == "tmpfs"));
        std::fs::write(dir.join("marker"), "inside").unwrap();
        // Deliberately left mounted: the namespace dies with the thread.
    });
    if r.is_none() {
        return;
    }
    assert!(!common::is_mount_point(dir.path()));
    assert!(
        !dir.join("marker").exists(),
        "tmpfs content visible on the host"
    );
    assert!(!common::leader_mount_points()
        .iter()
        .any(|(m, _)| m == dir.path()));
}

/// In a child in its own user and mount namespace (so the real host never
/// sees it), a body that mounts into the leader's namespace must fail the
/// host table check.
#[test_log::test]
fn host_mount_leak_is_detected() {
    common::in_child("host_mount_leak_is_detected", &[], true, || {
        let dir = TempDir::new();
        let leader_ns = format!("/proc/{}/ns/mnt", std::process::id());
        let msg = expect_panic(|| {
            in_mount_ns(|| {
                std::thread::scope(|s| {
                    s.spawn(|| {
                        // setns into a mount namespace needs an fs context of
                        // our own; this thread touches no fd but `ns`.
                        #[allow(deprecated)]
                        rustix::thread::unshare(rustix::thread::UnshareFlags::FS).unwrap();
                        let ns = std::fs::File::open(&leader_ns).unwrap();
                        rustix::thread::move_into_link_name_space(
                            ns.as_fd(),
                            Some(rustix::thread::LinkNameSpaceType::Mount),
                        )
                        .unwrap();
                        drop(ns);
                        mount_tmpfs(dir.path());
                    })
                    .join()
                    .unwrap();
                });
            });
        });
        // This thread is in the leader's namespace: clean up there.
        unmount(dir.path(), UnmountFlags::DETACH).unwrap();
        assert!(msg.contains("host"), "unexpected message: {msg}");
        assert!(
            msg.contains(&format!("+ {} (tmpfs)", dir.path().display())),
            "leaked mount not named: {msg}"
        );
    });
}

/// Passes when run normally; fails when started as a child. Used by
/// `run_child_reports_child_failure`.
#[test_log::test]
fn child_fails_deliberately() {
    if common::child_test().as_deref() == Some("child_fails_deliberately") {
        let marker = std::env::var("HARNESS_MARKER").unwrap_or_default();
        panic!("deliberate child failure, marker {marker}");
    }
}

#[test_log::test]
fn run_child_reports_child_failure() {
    let msg = expect_panic(|| {
        common::run_child(
            "child_fails_deliberately",
            &[("HARNESS_MARKER", "m-31337")],
            false,
        );
    });
    assert!(msg.contains("failed"), "unexpected message: {msg}");
    assert!(
        msg.contains("deliberate child failure, marker m-31337"),
        "child output not shown: {msg}"
    );
}

#[test_log::test]
fn run_child_rejects_a_test_that_does_not_exist() {
    let msg = expect_panic(|| {
        common::run_child("no_such_test_anywhere", &[], false);
    });
    assert!(
        msg.contains("did not report exactly one passed test"),
        "unexpected message: {msg}"
    );
}

#[test_log::test]
fn child_gets_its_environment() {
    common::in_child(
        "child_gets_its_environment",
        &[("HARNESS_VALUE", "42")],
        false,
        || {
            assert_eq!(std::env::var("HARNESS_VALUE").as_deref(), Ok("42"));
            assert!(!common::in_child_userns());
        },
    );
}

#[test_log::test]
fn userns_child_is_root_only_in_its_own_namespace() {
    common::in_child(
        "userns_child_is_root_only_in_its_own_namespace",
        &[],
        true,
        || {
            assert!(common::in_child_userns());
            assert_eq!(rustix::process::geteuid().as_raw(), 0);
            let map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
            let fields: Vec<&str> = map.split_whitespace().collect();
            assert_eq!(
                fields.get(2),
                Some(&"1"),
                "expected a one-uid map, not the initial user namespace: {map}"
            );
            // The namespace machinery works in a user namespace too.
            let dir = TempDir::new();
            in_mount_ns(|| {
                mount_tmpfs(dir.path());
                assert!(common::is_mount_point(dir.path()));
            })
            .expect("root in the user namespace");
        },
    );
}

#[test_log::test]
fn temp_dir_is_removed_without_following_symlinks() {
    let outside = TempDir::new();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    let path;
    {
        let dir = TempDir::new();
        path = dir.path().to_path_buf();
        assert!(path.starts_with("/tmp"));
        std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
        std::fs::write(dir.join("a/b/c/file"), "x").unwrap();
        std::fs::write(dir.join("top"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.join("keep"), dir.join("filelink")).unwrap();
        assert_ne!(dir.path(), TempDir::new().path());
    }
    assert!(!path.exists(), "{} still exists", path.display());
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "keep"
    );
}

#[test_log::test]
fn temp_dir_does_not_cross_into_mounts() {
    let outside = TempDir::new();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    in_mount_ns(|| {
        let dir = TempDir::new();
        let path = dir.path().to_path_buf();
        std::fs::create_dir(dir.join("sub")).unwrap();
        mount_bind(outside.path(), dir.join("sub")).unwrap();
        let msg = expect_panic(move || drop(dir));
        assert!(msg.contains("is a mount point; left alone"), "{msg}");
        unmount(path.join("sub"), UnmountFlags::empty()).unwrap();
        std::fs::remove_dir_all(&path).unwrap();
    });
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "keep"
    );
}

#[test_log::test]
fn mountinfo_reader_handles_escapes() {
    let text = "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 - ext3 /dev/root rw\n\
                37 36 0:5 / /a\\011b\\012c\\134d rw - fuse.x\\040y none rw\n";
    let v = common::parse_mountinfo(text).unwrap();
    assert_eq!(
        v,
        vec![
            ("/mnt/my dir".into(), "ext3".to_string()),
            ("/a\tb\nc\\d".into(), "fuse.x y".to_string()),
        ]
    );
    assert!(common::parse_mountinfo("1 2 3 4 5\n").is_err());

    let dir = TempDir::new();
    let spaced = dir.join("with space");
    std::fs::create_dir(&spaced).unwrap();
    in_mount_ns(|| {
        assert!(!common::is_mount_point(&spaced));
        mount_tmpfs(&spaced);
        assert!(common::is_mount_point(&spaced));
        assert!(common::is_mount_point(Path::new("/")));
        assert!(!common::is_mount_point(&dir.join("missing")));
    });
}
