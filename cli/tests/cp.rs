//! `saferoot cp`: copies into (`--into`) and out of (`--from`) a
//! directory with docker cp's rules, confined to it, with a JSON summary.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use common::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

fn cp(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(EXE);
    c.arg("cp");
    for a in args {
        c.arg(a);
    }
    c.output().expect("run saferoot cp")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `top/{root,host,src,out}`; the root holds symlinks to `/` and to the
/// host directory.
fn setup() -> TempDir {
    let top = TempDir::new();
    for d in ["root", "host", "src/dir/sub", "out"] {
        std::fs::create_dir_all(top.join(d)).unwrap();
    }
    std::fs::write(top.join("host/MARKER"), "host\n").unwrap();
    std::fs::write(top.join("src/dir/a"), "a\n").unwrap();
    std::fs::write(top.join("src/dir/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink("/", top.join("root/evil")).unwrap();
    std::os::unix::fs::symlink(top.join("host"), top.join("root/hostlink")).unwrap();
    std::os::unix::fs::symlink(top.join("host/MARKER"), top.join("root/markerlink")).unwrap();
    top
}

fn host_unchanged(top: &TempDir) {
    let names: Vec<_> = std::fs::read_dir(top.join("host"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["MARKER"], "the host directory changed");
    assert_eq!(
        std::fs::read_to_string(top.join("host/MARKER")).unwrap(),
        "host\n"
    );
    assert!(!Path::new("/MARKER").exists() && !Path::new("/dir").exists());
}

#[test_log::test]
fn into_and_out_of_a_hostile_root_stays_inside() {
    let top = setup();
    let root = top.join("root");
    // Into: a parent that is a symlink to / means the root; a relative
    // in-root path gets its leading /.
    let text = ok(&cp(&[&"--into", &root, &top.join("src/dir"), &"evil/"]));
    assert!(text.contains("-> "), "{text}");
    assert_eq!(
        std::fs::read_to_string(root.join("dir/sub/b")).unwrap(),
        "b\n"
    );
    // The destination an outward symlink: a directory cannot replace it.
    let out = cp(&[&"--into", &root, &top.join("src/dir"), &"/hostlink"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-directory"), "{err}");

    // Out, with JSON: the symlinks come out as symlinks.
    let json = ok(&cp(&[
        &"--from",
        &root,
        &"--json",
        &"/.",
        &top.join("out/all"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["direction"], "from", "{v}");
    assert_eq!(v["files"], 2, "{v}");
    assert_eq!(v["symlinks"], 3, "{v}");
    assert_eq!(
        v["destination"],
        top.join("out/all").display().to_string(),
        "{v}"
    );
    for l in ["evil", "hostlink", "markerlink"] {
        assert!(std::fs::symlink_metadata(top.join("out/all").join(l))
            .unwrap()
            .file_type()
            .is_symlink());
    }
    // -L resolves the link inside the root, where the host path is not.
    let out = cp(&[&"--from", &root, &"-L", &"/markerlink", &top.join("out/m")]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No such file"), "{err}");
    assert!(!top.join("out/m").exists());
    host_unchanged(&top);
}

#[test_log::test]
fn owners_follow_link_and_usage_errors() {
    let top = setup();
    let root = top.join("root");
    let f = top.join("src/owned");
    std::fs::write(&f, "o\n").unwrap();
    std::os::unix::fs::chown(&f, Some(4321), Some(4321)).unwrap();
    let me = rustix::process::geteuid().as_raw();
    ok(&cp(&[&"--into", &root, &f, &"/kept", &"--same-owner"]));
    ok(&cp(&[&"--into", &root, &f, &"/mine"]));
    ok(&cp(&[
        &"--into",
        &root,
        &f,
        &"/mine2",
        &"-a",
        &"--no-same-owner",
    ]));
    assert_eq!(std::fs::metadata(root.join("kept")).unwrap().uid(), 4321);
    assert_eq!(std::fs::metadata(root.join("mine")).unwrap().uid(), me);
    assert_eq!(std::fs::metadata(root.join("mine2")).unwrap().uid(), me);

    // -L on the host side follows the host's link.
    let l = top.join("src/link");
    std::os::unix::fs::symlink(&f, &l).unwrap();
    ok(&cp(&[&"--into", &root, &"-L", &l, &"/followed"]));
    assert_eq!(
        std::fs::read_to_string(root.join("followed")).unwrap(),
        "o\n"
    );
    ok(&cp(&[&"--into", &root, &l, &"/asis"]));
    assert!(std::fs::symlink_metadata(root.join("asis"))
        .unwrap()
        .file_type()
        .is_symlink());

    // Usage: exactly one direction.
    let out = cp(&[&f, &"/x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = cp(&[&"--into", &root, &"--from", &root, &f, &"/x"]);
    assert_eq!(out.status.code(), Some(2));
    // A missing parent names the paths.
    let out = cp(&[&"--into", &root, &f, &"/no/such"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such") && err.contains("must exist"),
        "{err}"
    );
    host_unchanged(&top);
}
