//! `saferoot extract`: archives from files and stdin, applied in order,
//! confined to `--into`, with a JSON summary.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use common::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

fn gnu_tar(args: &[&str]) {
    let st = Command::new("tar").args(args).status().expect("run tar");
    assert!(st.success(), "tar {args:?}");
}

#[test_log::test]
fn layers_apply_in_order_and_stay_inside() {
    let top = TempDir::new();
    let host = top.join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("MARKER"), "host\n").unwrap();
    // The real root's MARKER is what `evil/MARKER` would hit unconfined.
    assert!(!std::path::Path::new("/MARKER").exists());

    // Layer 1: a symlink to the host directory and a file under it.
    let l1 = top.join("l1");
    std::fs::create_dir_all(l1.join("etc")).unwrap();
    std::fs::write(l1.join("etc/old"), "old\n").unwrap();
    // An outward-looking symlink; in the root it means the root itself.
    std::os::unix::fs::symlink("/", l1.join("evil")).unwrap();
    gnu_tar(&[
        "-C",
        l1.to_str().unwrap(),
        "-czf",
        top.join("l1.tgz").to_str().unwrap(),
        ".",
    ]);

    // Layer 2 (from stdin): writes through the symlink, and an OCI
    // whiteout of etc/old.
    let l2 = top.join("l2");
    std::fs::create_dir_all(l2.join("evil")).unwrap();
    std::fs::create_dir_all(l2.join("etc")).unwrap();
    std::fs::write(l2.join("evil/MARKER"), "pwned\n").unwrap();
    std::fs::write(l2.join("etc/.wh.old"), "").unwrap();
    // Keep `evil` a symlink in the destination: archive only its child.
    gnu_tar(&[
        "-C",
        l2.to_str().unwrap(),
        "-cf",
        top.join("l2.tar").to_str().unwrap(),
        "evil/MARKER",
        "etc/.wh.old",
    ]);

    let into = top.join("into");
    std::fs::create_dir(&into).unwrap();
    let mut child = Command::new(EXE)
        .args(["extract", "--whiteouts", "oci", "--json", "--into"])
        .arg(&into)
        .arg(top.join("l1.tgz"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let layer2 = std::fs::read(top.join("l2.tar")).unwrap();
    child.stdin.take().unwrap().write_all(&layer2).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["archives"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["archives"][1]["whiteouts"], 1, "{json}");

    assert_eq!(
        std::fs::read_to_string(host.join("MARKER")).unwrap(),
        "host\n"
    );
    assert!(!std::path::Path::new("/MARKER").exists());
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(into.join("MARKER")).unwrap(),
        "pwned\n"
    );
    assert!(!into.join("etc/old").exists());
    assert!(!into.join("etc/.wh.old").exists());
    assert!(std::fs::symlink_metadata(into.join("evil"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test_log::test]
fn no_same_owner_gives_the_caller_the_files_and_errors_name_the_entry() {
    let top = TempDir::new();
    let src = top.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(4321), Some(4321)).unwrap();
    gnu_tar(&[
        "-C",
        src.to_str().unwrap(),
        "-cf",
        top.join("a.tar").to_str().unwrap(),
        "f",
    ]);
    for (flag, uid) in [
        ("--same-owner", 4321),
        ("--no-same-owner", rustix::process::geteuid().as_raw()),
    ] {
        let into = top.join(flag);
        std::fs::create_dir(&into).unwrap();
        let out = Command::new(EXE)
            .args(["extract", flag, "--into"])
            .arg(&into)
            .arg(top.join("a.tar"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::metadata(into.join("f")).unwrap().uid(),
            uid,
            "{flag}"
        );
    }
    // A hard link to a missing target fails with the entry named.
    std::fs::remove_file(src.join("f")).unwrap();
    std::fs::write(src.join("t"), "t").unwrap();
    std::fs::hard_link(src.join("t"), src.join("h")).unwrap();
    gnu_tar(&[
        "-C",
        src.to_str().unwrap(),
        "-cf",
        top.join("b.tar").to_str().unwrap(),
        "t",
        "h",
    ]);
    let into = top.join("partial");
    std::fs::create_dir(&into).unwrap();
    // Extract only the link: strip the first entry by using a filter.
    let data = std::fs::read(top.join("b.tar")).unwrap();
    // The second entry starts after t's header and one data block.
    std::fs::write(top.join("h.tar"), &data[1024..]).unwrap();
    let out = Command::new(EXE)
        .args(["extract", "--into"])
        .arg(&into)
        .arg(top.join("h.tar"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unpack h"), "{err}");
}
