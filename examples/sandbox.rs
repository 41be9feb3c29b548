//! A minimal sandbox on the library alone: a fresh tmpfs root with the
//! host's /usr bound read-only, a new /proc and a /dev, entered with
//! pivot_root, then a command run inside.
//!
//! ```sh
//! cargo build --example sandbox && sudo target/debug/examples/sandbox /usr/bin/ls -l /
//! ```
//!
//! It needs root. Everything happens in a new mount namespace of its own,
//! so nothing it mounts is seen outside.

use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::thread::UnshareFlags;
use saferoot::rootfs::{assemble, AssembleOptions, EnterMethod, MountSpec, RootfsSpec};
use saferoot::{Mount, Root};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (program, args) = argv
        .split_first()
        .ok_or("usage: sandbox PROGRAM [ARGS...]")?;

    // A mount namespace of our own (this example is single-threaded).
    saferoot::namespace::unshare(UnshareFlags::NEWNS | UnshareFlags::FS)?;

    // The root: a fresh tmpfs on a scratch directory.
    let scratch = std::env::temp_dir().join(format!("saferoot-example-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let tmpfs = Mount::fs("tmpfs").data("mode=755,size=16m").mount()?;
    let skeleton = tmpfs.root()?;
    for dir in ["/usr", "/proc", "/dev", "/tmp"] {
        skeleton.mkdir_all(dir, 0o755)?;
    }
    // Merged-/usr hosts: /bin, /lib and friends are symlinks into /usr.
    for link in ["bin", "sbin", "lib", "lib64"] {
        if let Ok(target) = std::fs::read_link(Path::new("/").join(link)) {
            skeleton.symlink(target, Path::new("/").join(link))?;
        }
    }
    tmpfs.attach(&Root::open(&scratch)?.handle()?)?.forget();

    let spec = RootfsSpec {
        rootfs: scratch.clone(),
        mounts: vec![
            MountSpec::new(
                "/usr",
                "bind",
                Some("/usr".into()),
                &["rbind", "ro", "nosuid", "nodev"],
            ),
            MountSpec::new(
                "/proc",
                "proc",
                Some("proc".into()),
                &["nosuid", "nodev", "noexec"],
            ),
            MountSpec::new("/tmp", "tmpfs", None, &["nosuid", "nodev", "size=16m"]),
        ],
        masked_paths: vec!["/proc/kcore".into(), "/proc/keys".into()],
        readonly_paths: vec!["/proc/sys".into()],
        readonly_root: true,
        cwd: Some("/tmp".into()),
        ..Default::default()
    };
    let root = assemble(&spec, &AssembleOptions::default())?;
    eprintln!("assembled with the {} strategy", root.strategy().name());
    root.enter(EnterMethod::PivotRoot)?;

    // Only the host's view of the scratch directory is left to clean.
    let err = std::process::Command::new(program).args(args).exec();
    Err(format!("exec {program}: {err}").into())
}
