//! Escape class 1 of docs/security.md, at the library level: a program
//! that is root with every capability of its user namespace cannot undo
//! what saferoot mounted once [`MountLock`] has moved it into a locked copy
//! of the mount namespace. The same script run without the lock shows that
//! the checks can fail.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::TempDir;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use saferoot::procfs::Procfs;
use saferoot::rootfs::{assemble, AssembleOptions, InPlaceLock, MountLock, MountSpec, RootfsSpec};

const HOST_DIR_ENV: &str = "SAFEROOT_TEST_HOST_DIR";

// The remount keeps every flag but ro as it was (nosuid, nodev, relatime),
// so that only the read-only flag decides whether it works: a mount(8) that
// passes all flags (busybox's) would otherwise trip over the atime lock the
// bind inherits from its source mount.
const SCRIPT: &str = r#"
    try() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name=$?"; }
    try can_mount sh -c 'mkdir -p /tmp/new && mount -t tmpfs new /tmp/new'
    try remount_vol mount -o remount,bind,rw,nosuid,nodev,relatime /vol
    try remount_root mount -o remount,bind,rw /
    try clear_nodev mount -o remount,bind,dev /tmp
    try umount_mask_dir umount /vol/secret
    try umount_mask_file umount /vol/masked-file
    try umount_vol umount -l /vol
    try bind_vol sh -c 'mkdir -p /tmp/v && mount --bind /vol /tmp/v && cat /tmp/v/secret/key'
    [ -n "$NO_WRITE" ] || try write_vol sh -c 'echo pwned > /vol/marker'
"#;

const MUST_FAIL: &[&str] = &[
    "remount_vol",
    "remount_root",
    "clear_nodev",
    "umount_mask_dir",
    "umount_mask_file",
    "umount_vol",
    "bind_vol",
    "write_vol",
];

fn vars(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The host's programs in a root: /usr bound read-only, the merged-usr
/// symlinks (or binds) for /bin, /lib and friends.
fn spec_with_host_programs(rootfs: &Path, vol: &Path) -> RootfsSpec {
    let mut mounts = vec![MountSpec::new(
        "/usr",
        "bind",
        Some("/usr".into()),
        &["rbind", "ro", "nosuid", "nodev"],
    )];
    for d in ["/bin", "/sbin", "/lib", "/lib64"] {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() => {
                std::os::unix::fs::symlink(std::fs::read_link(d).unwrap(), rootfs.join(&d[1..]))
                    .unwrap();
            }
            Ok(m) if m.is_dir() => {
                mounts.push(MountSpec::new(d, "bind", Some(d.into()), &["rbind", "ro"]))
            }
            _ => {}
        }
    }
    mounts.push(MountSpec::new("/tmp", "tmpfs", None, &["nosuid", "nodev"]));
    mounts.push(MountSpec::new(
        "/dev",
        "tmpfs",
        None,
        &["nosuid", "mode=755"],
    ));
    mounts.push(MountSpec::new(
        "/vol",
        "bind",
        Some(vol.to_path_buf()),
        &["bind", "ro", "nosuid", "nodev"],
    ));
    RootfsSpec {
        rootfs: rootfs.to_path_buf(),
        mounts,
        masked_paths: vec!["/vol/secret".into(), "/vol/masked-file".into()],
        readonly_root: true,
        user_namespace: true,
        ..RootfsSpec::default()
    }
}

/// How the script's process locks its mounts.
enum Locking {
    /// Not at all.
    None,
    /// By joining a namespace made before ([`MountLock::nested`]).
    Nested(MountLock),
    /// In place: the process unshares its user namespace and this process
    /// (from another thread, while `spawn` waits for the exec) writes its
    /// maps ([`InPlaceLock`]).
    InPlace(InPlaceLock),
}

/// Runs [`SCRIPT`] chrooted into `rootfs`, first locking the mounts in
/// the forked child as `locking` says.
fn run_script(rootfs: &Path, locking: Locking) -> BTreeMap<String, String> {
    // Unlocked, the write would get through to the host's file.
    let no_write = if matches!(locking, Locking::None) {
        "1"
    } else {
        ""
    };
    let root = CString::new(rootfs.as_os_str().as_bytes()).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", SCRIPT])
        .env("NO_WRITE", no_write)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let mut lock = None;
    let mut in_place = None;
    let mut writer = None;
    match locking {
        Locking::None => {}
        Locking::Nested(l) => lock = Some(l),
        Locking::InPlace(l) => {
            let procfs = Procfs::new().expect("procfs");
            let (mut parent, child) = UnixStream::pair().expect("socketpair");
            let parent_procfs = procfs.clone();
            writer = Some(std::thread::spawn(move || {
                let mut pid = [0u8; 4];
                parent.read_exact(&mut pid)?;
                let pid = u32::from_ne_bytes(pid);
                if let Err(e) = l.write_maps(&parent_procfs, pid) {
                    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                    return Err(std::io::Error::other(e.to_string()));
                }
                parent.write_all(&[1])
            }));
            in_place = Some((procfs, child));
        }
    }
    // The closure runs in the forked child, which has one thread, as
    // MountLock::apply and InPlaceLock::enter need. (`before_exec` is the
    // safe, deprecated spelling of `pre_exec`; the tests have no unsafe
    // code.)
    #[allow(deprecated)]
    cmd.before_exec(move || {
        let other = |e: saferoot::Error| std::io::Error::other(e.to_string());
        if let Some(l) = lock.take() {
            l.apply().map_err(other)?;
        }
        if let Some((procfs, mut chan)) = in_place.take() {
            let pid = InPlaceLock::enter(&procfs).map_err(other)?;
            chan.write_all(&pid.to_ne_bytes())?;
            chan.read_exact(&mut [0u8])?;
        }
        rustix::process::chroot(root.as_c_str())?;
        rustix::process::chdir(c"/")?;
        Ok(())
    });
    let out = cmd.output().expect("run the script in the root");
    // The closure's copy of the child's end goes with the command, so a
    // writer still waiting sees end-of-file.
    drop(cmd);
    if let Some(w) = writer {
        w.join().unwrap().expect("write the child's maps");
    }
    assert!(out.status.success(), "{out:?}");
    vars(&String::from_utf8_lossy(&out.stdout))
}

#[test_log::test]
fn a_locked_namespace_keeps_every_mount_and_flag() {
    if !common::require_root() {
        return;
    }
    const NAME: &str = "a_locked_namespace_keeps_every_mount_and_flag";
    if common::child_test().as_deref() == Some(NAME) {
        let host = PathBuf::from(std::env::var_os(HOST_DIR_ENV).expect("host dir"));
        let rootfs = TempDir::new();
        let spec = spec_with_host_programs(rootfs.path(), &host);
        let assembled = assemble(&spec, &AssembleOptions::default()).expect("assemble");

        // Locked, either way: as root of the lock namespace with
        // CAP_SYS_ADMIN there, every attempt fails.
        let procfs = Procfs::new().expect("procfs");
        for (how, locking) in [
            (
                "nested",
                Locking::Nested(MountLock::nested().expect("make the lock namespace")),
            ),
            (
                "in place",
                Locking::InPlace(InPlaceLock::new(&procfs).expect("read the maps")),
            ),
        ] {
            let locked = run_script(rootfs.path(), locking);
            assert_eq!(
                locked["can_mount"], "0",
                "{how}: the program holds CAP_SYS_ADMIN over its mount namespace: {locked:?}"
            );
            for what in MUST_FAIL {
                assert_ne!(
                    locked[*what], "0",
                    "{how}: {what} worked in the locked namespace: {locked:?}"
                );
            }
        }

        // Unlocked (the program in the namespace the mounts were made in),
        // the same script gets through: the checks above can fail.
        let unlocked = run_script(rootfs.path(), Locking::None);
        assert_eq!(unlocked["remount_vol"], "0", "{unlocked:?}");
        assert_eq!(unlocked["umount_mask_dir"], "0", "{unlocked:?}");
        assembled.detach().expect("detach");
        return;
    }
    let host = TempDir::new();
    std::fs::write(host.join("marker"), "host\n").unwrap();
    std::fs::create_dir(host.join("secret")).unwrap();
    std::fs::write(host.join("secret/key"), "hidden\n").unwrap();
    std::fs::write(host.join("masked-file"), "hidden\n").unwrap();
    common::run_child(NAME, &[(HOST_DIR_ENV, host.path().to_str().unwrap())], true);
    // The host side: nothing written, nothing added.
    assert_eq!(
        std::fs::read_to_string(host.join("marker")).unwrap(),
        "host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("secret/key")).unwrap(),
        "hidden\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("masked-file")).unwrap(),
        "hidden\n"
    );
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 3);
}

#[test_log::test]
fn joining_a_namespace_that_is_not_a_child_is_refused() {
    if !common::require_root() {
        return;
    }
    // The caller's own user namespace is not its own child: joining it
    // would lock nothing.
    let own = std::fs::File::open("/proc/thread-self/ns/user").unwrap();
    let e = MountLock::join(own.into()).unwrap_err();
    assert_eq!(e.kind(), saferoot::ErrorKind::InvalidInput, "{e}");
    // A fresh child namespace is accepted.
    let child = MountLock::nested().expect("nested");
    let fd = child
        .user_namespace()
        .try_clone_to_owned()
        .expect("dup the namespace fd");
    MountLock::join(fd).expect("a child namespace is accepted");
}
