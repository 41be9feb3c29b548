//! `saferoot extract`: archives from files and stdin, applied in order,
//! confined to `--into`, with a JSON summary.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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

fn extract(
    args: &[&str],
    into: &std::path::Path,
    archives: &[std::path::PathBuf],
) -> std::process::Output {
    Command::new(EXE)
        .arg("extract")
        .args(args)
        .arg("--into")
        .arg(into)
        .args(archives)
        .output()
        .unwrap()
}

fn owner(p: std::path::PathBuf) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

/// `--map-ids` shifts owners (files, directories, symlinks), `--map-uids`
/// alone keeps gids, an owner outside the map is refused by name unless
/// `--unmapped-ids overflow`; `--oci-layer` applies whiteouts and xattrs
/// and keeps owners.
#[test_log::test]
fn id_maps_and_oci_layers() {
    let top = TempDir::new();
    let l1 = top.join("l1");
    std::fs::create_dir_all(l1.join("etc")).unwrap();
    std::fs::write(l1.join("etc/old"), "old\n").unwrap();
    std::fs::write(l1.join("etc/user"), "user\n").unwrap();
    std::os::unix::fs::chown(l1.join("etc/user"), Some(1000), Some(1001)).unwrap();
    std::os::unix::fs::symlink("user", l1.join("etc/link")).unwrap();
    std::os::unix::fs::lchown(l1.join("etc/link"), Some(7), Some(8)).unwrap();
    rustix::fs::setxattr(
        l1.join("etc/user").as_path(),
        "user.layer",
        b"one",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    gnu_tar(&[
        "-C",
        l1.to_str().unwrap(),
        "--xattrs",
        "--format=posix",
        "-cf",
        top.join("l1.tar").to_str().unwrap(),
        "etc",
    ]);
    let l2 = top.join("l2");
    std::fs::create_dir_all(l2.join("etc")).unwrap();
    std::fs::write(l2.join("etc/.wh.old"), "").unwrap();
    gnu_tar(&[
        "-C",
        l2.to_str().unwrap(),
        "-cf",
        top.join("l2.tar").to_str().unwrap(),
        "etc/.wh.old",
    ]);
    let layers = [top.join("l1.tar"), top.join("l2.tar")];

    let into = top.join("mapped");
    std::fs::create_dir(&into).unwrap();
    let out = extract(
        &["--oci-layer", "--map-ids", "0:100000:65536"],
        &into,
        &layers,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(owner(into.join("etc")), (100_000, 100_000));
    assert_eq!(owner(into.join("etc/user")), (101_000, 101_001));
    assert_eq!(owner(into.join("etc/link")), (100_007, 100_008));
    assert!(!into.join("etc/old").exists() && !into.join("etc/.wh.old").exists());
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(into.join("etc/user").as_path(), "user.layer", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"one");

    // uids only.
    let into = top.join("uids");
    std::fs::create_dir(&into).unwrap();
    let out = extract(&["--map-uids", "0:100000:65536"], &into, &layers[..1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(owner(into.join("etc/user")), (101_000, 1001));
    // Without --oci-layer, no whiteouts: the marker is a file.
    assert!(into.join("etc/old").exists());

    // Outside the map.
    let into = top.join("narrow");
    std::fs::create_dir(&into).unwrap();
    let out = extract(&["--map-ids", "0:100000:1000"], &into, &layers[..1]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("etc/user") && err.contains("uid 1000"),
        "{err}"
    );
    let out = extract(
        &["--map-ids", "0:100000:1000", "--unmapped-ids", "overflow"],
        &into,
        &layers[..1],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(owner(into.join("etc/user")), (65534, 65534));
    assert_eq!(owner(into.join("etc/link")), (100_007, 100_008));

    // Bad specifications are usage errors.
    for bad in [
        &["--map-ids", "1:2"][..],
        &["--map-ids", "0:0:0"],
        &["--map-ids", "0:0:10", "--map-ids", "5:100:10"],
        &["--map-ids", "0:0:1", "--map-uids", "0:0:1"],
        &["--map-ids", "0:0:1", "--no-same-owner"],
    ] {
        let out = extract(bad, &into, &layers[..1]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// Writes `data` to `w` in two halves with a pause between, so that the
/// extraction takes longer than the progress bar's delay.
fn feed_slowly(mut w: impl Write, data: &[u8]) {
    let half = data.len() / 2;
    w.write_all(&data[..half]).unwrap();
    w.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    w.write_all(&data[half..]).unwrap();
}

/// A tar of `n` small files, made with GNU tar.
fn many_files(top: &std::path::Path, n: usize) -> Vec<u8> {
    let src = top.join("many");
    std::fs::create_dir(&src).unwrap();
    for i in 0..n {
        std::fs::write(src.join(format!("f{i}")), format!("{i}\n")).unwrap();
    }
    let tarball = top.join("many.tar");
    gnu_tar(&[
        "-C",
        src.to_str().unwrap(),
        "-cf",
        tarball.to_str().unwrap(),
        ".",
    ]);
    std::fs::read(tarball).unwrap()
}

/// Runs `saferoot extract [flags] --into INTO -` with the archive fed
/// slowly on stdin and stderr on a new pseudo-terminal (or a pipe when
/// `tty` is false); returns what it wrote to stderr.
fn extract_watched(flags: &[&str], into: &std::path::Path, archive: &[u8], tty: bool) -> Vec<u8> {
    use rustix::pty::OpenptFlags;
    let mut cmd = Command::new(EXE);
    cmd.arg("extract")
        .args(flags)
        .arg("--into")
        .arg(into)
        .arg("-")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let master = if tty {
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
                .unwrap();
        rustix::pty::grantpt(&master).unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(std::ffi::OsStr::from_bytes(name.as_bytes()))
            .unwrap();
        cmd.stderr(Stdio::from(slave));
        Some(std::fs::File::from(master))
    } else {
        cmd.stderr(Stdio::piped());
        None
    };
    let mut child = cmd.spawn().unwrap();
    // The parent's copy of the terminal's far end goes with `cmd`.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut m) = master {
            let mut buf = [0u8; 4096];
            // Read until the far end is closed by the child's exit (EIO).
            while let Ok(n) = m.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
        out
    });
    feed_slowly(child.stdin.take().unwrap(), archive);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut seen = reader.join().unwrap();
    seen.extend_from_slice(&output.stderr);
    seen
}

/// The progress bar is drawn on a terminal once an archive takes more
/// than a second, and never when stderr is not a terminal or with --json.
#[test_log::test]
fn progress_bar_only_on_a_terminal() {
    let top = TempDir::new();
    let archive = many_files(top.path(), 300);
    for (flags, tty, drawn) in [
        (&[][..], true, true),
        (&[][..], false, false),
        (&["--json"][..], true, false),
    ] {
        let into = top.join(format!("into-{tty}-{}", flags.len()));
        std::fs::create_dir(&into).unwrap();
        let seen = extract_watched(flags, &into, &archive, tty);
        let text = String::from_utf8_lossy(&seen);
        log::info!("{flags:?} tty={tty}: {text:?}");
        if drawn {
            assert!(
                text.contains("entries") && text.contains("extract -"),
                "{text:?}"
            );
            // Entries are counted as they are made: with half the archive
            // in, the bar shows some but not all of them.
            let counts: Vec<u64> = text
                .split(" entries")
                .filter_map(|s| s.rsplit(' ').next()?.parse().ok())
                .collect();
            assert!(counts.iter().any(|n| (1..300).contains(n)), "{counts:?}");
        } else {
            assert!(seen.is_empty(), "stderr not empty: {text:?}");
        }
        assert_eq!(std::fs::read_dir(into.join(".")).unwrap().count(), 300);
    }
}
