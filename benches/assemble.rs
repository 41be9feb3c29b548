//! What saferoot's operations cost, measured (run as root: `cargo bench`).
//!
//! - `resolve`: one confined lookup of a 16-deep path;
//! - `tmpfs`: a detached tmpfs made, configured, attached and detached;
//! - `assemble/mounts/N`: a whole root with N mounts, each strategy, to show
//!   the cost grows linearly with the spec;
//! - `assemble/host-mounts/N`: the same root with N unrelated mounts in the
//!   namespace, to show the cost does not depend on them (DESIGN.md
//!   invariant 7).
//!
//! The process moves into a private mount namespace first; nothing it
//! mounts is seen outside, and it all goes when the process exits.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use saferoot::rootfs::{assemble, AssembleOptions, MountSpec, RootfsSpec, Strategy};
use saferoot::{Mount, MountAttr, Root};

fn private_namespace() {
    use rustix::thread::UnshareFlags;
    saferoot::namespace::unshare(UnshareFlags::NEWNS | UnshareFlags::FS)
        .expect("unshare (run as root)");
    let slash = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("open /");
    saferoot::mount::change_attrs(
        &slash,
        MountAttr::empty(),
        MountAttr::empty(),
        Some(saferoot::Propagation::Private),
        saferoot::mount::Scope::Tree,
    )
    .expect("make / private");
}

fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("saferoot-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn spec(rootfs: &Path, mounts: usize) -> RootfsSpec {
    for d in ["proc", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let mut m = vec![MountSpec::new(
        "/proc",
        "proc",
        None,
        &["nosuid", "nodev", "noexec"],
    )];
    for i in 0..mounts {
        m.push(MountSpec::new(
            format!("/m/{i}"),
            "tmpfs",
            None,
            &["nosuid", "size=64k"],
        ));
    }
    RootfsSpec {
        rootfs: rootfs.into(),
        mounts: m,
        masked_paths: vec!["/proc/keys".into()],
        readonly_paths: vec!["/proc/sys".into()],
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    private_namespace();

    let dir = scratch("resolve");
    let deep: PathBuf = (0..16).map(|i| format!("d{i}")).collect();
    std::fs::create_dir_all(dir.join(&deep)).unwrap();
    let root = Root::open(&dir).unwrap();
    let target = Path::new("/").join(&deep);
    c.bench_function("resolve/16-deep", |b| {
        b.iter(|| root.resolve(&target).unwrap())
    });

    let handle = root.handle().unwrap();
    c.bench_function("tmpfs/make-configure-attach-detach", |b| {
        b.iter(|| {
            let m = Mount::fs("tmpfs").data("size=64k").mount().unwrap();
            m.set_attr(MountAttr::RDONLY | MountAttr::NOSUID, MountAttr::empty())
                .unwrap();
            m.attach(&handle).unwrap().detach().unwrap();
        })
    });

    let rootfs = scratch("rootfs");
    let mut g = c.benchmark_group("assemble/mounts");
    g.sample_size(20);
    for n in [4, 16, 64] {
        let s = spec(&rootfs, n);
        for strategy in [Strategy::Detached, Strategy::InPlace] {
            if strategy.resolve().is_err() {
                continue;
            }
            let opts = AssembleOptions {
                strategy,
                ..Default::default()
            };
            g.bench_with_input(BenchmarkId::new(strategy.name(), n), &s, |b, s| {
                b.iter(|| assemble(s, &opts).unwrap().detach().unwrap())
            });
        }
    }
    g.finish();

    let clutter = scratch("clutter");
    let croot = Root::open(&clutter).unwrap();
    let s = spec(&rootfs, 8);
    let opts = AssembleOptions::default();
    let mut g = c.benchmark_group("assemble/host-mounts");
    g.sample_size(20);
    let mut made = 0;
    for n in [0usize, 1000, 4000] {
        while made < n {
            let h = croot.mkdir_all(format!("/c{made}"), 0o755).unwrap();
            Mount::fs("tmpfs")
                .mount()
                .unwrap()
                .attach(&h)
                .unwrap()
                .forget();
            made += 1;
        }
        g.bench_with_input(BenchmarkId::from_parameter(n), &s, |b, s| {
            b.iter(|| assemble(s, &opts).unwrap().detach().unwrap())
        });
    }
    g.finish();

    for i in 0..made {
        saferoot::mount::unmount_in_root(&croot, format!("/c{i}")).unwrap();
    }
    drop((root, handle, croot));
    for d in [dir, rootfs, clutter] {
        std::fs::remove_dir_all(&d).unwrap_or_else(|e| panic!("remove {}: {e}", d.display()));
    }
}

criterion_group!(assemble_benches, benches);
criterion_main!(assemble_benches);
