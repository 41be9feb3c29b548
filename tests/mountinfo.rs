//! The mount table layer against real mounts: both backends (statmount and
//! mountinfo) must see the same mounts, with the flags, propagation and
//! names the kernel has, in private mount namespaces (see `tests/common`).

mod common;

/// Named so that `cargo test mountinfo` runs these with the unit tests.
mod mountinfo {
    use std::ffi::OsString;
    use std::io::{BufRead, BufReader};
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::ffi::OsStringExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use linux_raw_sys::general as k;
    use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags, CWD};
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree, FsMountFlags,
        FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
    };
    use rustix::process::Pid;
    use saferoot::mountinfo::Backend;
    use saferoot::{ErrorKind, Feature, MountAttr, MountEntry, MountTable, Propagation};

    // ---------------------------------------------------------------------------
    // Helpers

    /// A detached tmpfs with `source` (none if empty) and `options`, its
    /// attributes set with mount_setattr while still detached.
    fn tmpfs(source: &str, options: &[(&str, &str)], attrs: u32) -> OwnedFd {
        let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).expect("fsopen tmpfs");
        if !source.is_empty() {
            fsconfig_set_string(&fs, "source", source).expect("fsconfig source");
        }
        for (key, value) in options {
            fsconfig_set_string(&fs, *key, *value).expect("fsconfig option");
        }
        fsconfig_create(&fs).expect("fsconfig create");
        // A fresh mount takes its attributes from fsmount, before anyone
        // can see it.
        fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::from_bits_retain(attrs),
        )
        .expect("fsmount")
    }

    /// Attaches a detached mount on `target` (a test directory, by path).
    fn attach(mnt: &OwnedFd, target: &Path) {
        move_mount(
            mnt.as_fd(),
            c"",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .unwrap_or_else(|e| panic!("move_mount onto {}: {e}", target.display()));
    }

    fn mount_tmpfs_at(source: &str, target: &Path) {
        attach(&tmpfs(source, &[], 0), target);
    }

    fn set_propagation(target: &Path, propagation: u32) {
        let propagation = match propagation {
            k::MS_SHARED => Propagation::Shared,
            k::MS_SLAVE => Propagation::Slave,
            k::MS_PRIVATE => Propagation::Private,
            k::MS_UNBINDABLE => Propagation::Unbindable,
            other => panic!("not a propagation type: {other:#x}"),
        };
        let mnt = rustix::fs::open(target, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("open {}: {e}", target.display()));
        saferoot::mount::change_attrs(
            &mnt,
            MountAttr::empty(),
            MountAttr::empty(),
            Some(propagation),
            saferoot::mount::Scope::Mount,
        )
        .unwrap_or_else(|e| panic!("mount_setattr propagation on {}: {e}", target.display()));
    }

    /// `STATX_MNT_ID` of the mount `p` is on: the kernel's own answer,
    /// independent of the code under test.
    fn statx_mount_id(p: &Path) -> u64 {
        rustix::fs::statx(CWD, p, AtFlags::empty(), StatxFlags::MNT_ID)
            .expect("statx")
            .stx_mnt_id
    }

    /// `STATX_MNT_ID_UNIQUE` of the mount `p` is on (Linux 6.8, like
    /// statmount).
    fn statx_unique_id(p: &Path) -> u64 {
        let unique = rustix::fs::statx(
            CWD,
            p,
            AtFlags::empty(),
            StatxFlags::from_bits_retain(k::STATX_MNT_ID_UNIQUE),
        )
        .expect("statx unique");
        assert_ne!(
            unique.stx_mask & k::STATX_MNT_ID_UNIQUE,
            0,
            "no STATX_MNT_ID_UNIQUE"
        );
        unique.stx_mnt_id
    }

    /// Asserts that reading with the statmount backend was refused as
    /// unsupported, naming statmount (or listmount) and Linux 6.8: what a
    /// kernel without the calls must answer.
    #[track_caller]
    fn assert_statmount_refused(r: saferoot::Result<MountTable>) {
        match r {
            Err(ref e)
                if matches!(e.feature(), Some(Feature::Statmount | Feature::Listmount))
                    && e.min_kernel() == Some("6.8") =>
            {
                assert_eq!(e.kind(), ErrorKind::Unsupported)
            }
            other => panic!("expected Unsupported statmount (6.8), got {other:?}"),
        }
    }

    /// The backend [`Backend::Auto`] must pick on this kernel.
    fn best_backend() -> Backend {
        if have_statmount() {
            Backend::Statmount
        } else {
            Backend::Mountinfo
        }
    }

    /// The table from each backend the kernel has, read back to back:
    /// statmount then mountinfo on Linux 6.8+; before that mountinfo alone,
    /// once the statmount backend was seen to be refused.
    fn tables() -> Vec<MountTable> {
        if !have_statmount() {
            assert_statmount_refused(MountTable::read_with(Backend::Statmount));
            let mi = MountTable::read_with(Backend::Mountinfo).expect("mountinfo backend");
            assert_eq!(mi.backend(), Backend::Mountinfo);
            return vec![mi];
        }
        let st = MountTable::read_with(Backend::Statmount).expect("statmount backend");
        let mi = MountTable::read_with(Backend::Mountinfo).expect("mountinfo backend");
        assert_eq!(st.backend(), Backend::Statmount);
        assert_eq!(mi.backend(), Backend::Mountinfo);
        vec![st, mi]
    }

    /// Whether this kernel's statmount fills in the `STATMOUNT_*` group
    /// `bit`, asked of the caller's root mount.
    fn statmount_reports(bit: u32) -> bool {
        let root = statx_unique_id(Path::new("/"));
        saferoot::testing::statmount(root, u64::from(bit))
            .expect("statmount of /")
            .has(bit)
    }

    /// Asserts that `e`, as `t`'s backend read it, has the source `want`:
    /// statmount leaves it out on kernels without `STATMOUNT_SB_SOURCE`
    /// (before Linux 6.13), and then it must be `None`, not a guess.
    #[track_caller]
    fn assert_source(t: &MountTable, e: &MountEntry, want: &str) {
        if t.backend() == Backend::Statmount && !statmount_reports(k::STATMOUNT_SB_SOURCE) {
            assert_eq!(e.source, None, "statmount without STATMOUNT_SB_SOURCE");
        } else {
            assert_eq!(e.source.as_deref(), Some(want), "{:?}", t.backend());
        }
    }

    /// Asserts that the tables (from [`tables`]) hold the same mounts in
    /// the same order, field for field: `unique_id` is statmount's alone,
    /// and a source statmount cannot report is `None` for every mount.
    #[track_caller]
    fn assert_tables_agree(tables: &[MountTable]) {
        let mi = tables.last().expect("a table");
        assert!(mi.iter().all(|e| e.unique_id.is_none()));
        assert!(mi.iter().all(|e| e.source.is_some()), "{mi:#?}");
        let [st, mi] = tables else {
            return;
        };
        let with_source = statmount_reports(k::STATMOUNT_SB_SOURCE);
        assert!(
            st.iter().all(|e| e.source.is_some() == with_source),
            "statmount sources (expected: {with_source}):\n{st:#?}"
        );
        let diff: Vec<String> = st
            .iter()
            .zip(mi.iter())
            .filter(|(a, b)| !a.same_as(b))
            .map(|(a, b)| format!("statmount: {a:?}\nmountinfo: {b:?}"))
            .collect();
        assert!(diff.is_empty(), "backends differ:\n{}", diff.join("\n"));
        assert_eq!(
            st.len(),
            mi.len(),
            "statmount:\n{st:#?}\nmountinfo:\n{mi:#?}"
        );
        assert!(st.iter().all(|e| e.unique_id.is_some()));
    }

    #[track_caller]
    fn at<'a>(table: &'a MountTable, p: &Path) -> &'a MountEntry {
        table.find_by_mount_point(p).unwrap_or_else(|| {
            panic!(
                "no mount at {} ({:?} backend):\n{}",
                p.display(),
                table.backend(),
                table.iter().map(|e| format!("  {e}\n")).collect::<String>()
            )
        })
    }

    fn mkdir(p: &Path) {
        std::fs::create_dir(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }

    fn have_statmount() -> bool {
        // Probed here, on an unfiltered thread, so the process-wide cache is
        // filled with the truth before any test filters a thread.
        saferoot::features::has(Feature::Statmount) && saferoot::features::has(Feature::Listmount)
    }

    // ---------------------------------------------------------------------------
    // Tests

    #[test_log::test]
    fn backends_agree_on_a_private_namespace() {
        let dir = super::common::TempDir::new();
        super::common::in_mount_ns(|| {
            // Something of each kind: a tmpfs with options, a read-only bind
            // mount of a subdirectory (root != "/"), a nosymfollow mount.
            let base = dir.join("base");
            let bind = dir.join("bind");
            let nosym = dir.join("nosym");
            let nameless = dir.join("nameless");
            for d in [&base, &bind, &nosym, &nameless] {
                mkdir(d);
            }
            attach(&tmpfs("", &[], 0), &nameless);
            attach(
                &tmpfs("agree-base", &[("size", "2m"), ("mode", "0750")], 0),
                &base,
            );
            mkdir(&base.join("sub"));
            let clone = open_tree(
                CWD,
                base.join("sub").as_path(),
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .expect("open_tree clone");
            saferoot::mount::change_attrs(
                &clone,
                MountAttr::RDONLY,
                MountAttr::empty(),
                None,
                saferoot::mount::Scope::Mount,
            )
            .expect("ro");
            attach(&clone, &bind);
            attach(
                &tmpfs("agree-nosym", &[], k::MOUNT_ATTR_NOSYMFOLLOW),
                &nosym,
            );

            let ts = tables();
            assert_tables_agree(&ts);
            let auto = MountTable::read().expect("auto");
            assert_eq!(
                auto.backend(),
                best_backend(),
                "Auto must pick statmount on 6.8+, mountinfo before"
            );

            for t in &ts {
                let b = at(t, &bind);
                assert_eq!(b.root, Path::new("/sub"), "{:?}", t.backend());
                assert_eq!(b.attrs, MountAttr::RDONLY | MountAttr::RELATIME);
                assert_source(t, b, "agree-base");
                assert_eq!(
                    b.dev,
                    at(t, &base).dev,
                    "a bind mount shares its superblock"
                );
                let opts = at(t, &base).super_options.clone().unwrap_or_default();
                assert!(
                    opts.starts_with("rw,")
                        && opts.contains("size=2048k")
                        && opts.contains("mode=750"),
                    "{opts}"
                );
                assert!(at(t, &nosym).attrs.contains(MountAttr::NOSYMFOLLOW));
                assert_source(t, at(t, &nameless), "none");
            }
        });
    }

    #[test_log::test]
    fn tmpfs_attrs_ids_and_parent_as_the_kernel_reports() {
        let dir = super::common::TempDir::new();
        super::common::in_mount_ns(|| {
            let target = dir.join("t");
            mkdir(&target);
            let parent_old = statx_mount_id(dir.path());
            let set = k::MOUNT_ATTR_RDONLY
                | k::MOUNT_ATTR_NOSUID
                | k::MOUNT_ATTR_NODEV
                | k::MOUNT_ATTR_NOEXEC
                | k::MOUNT_ATTR_NOATIME
                | k::MOUNT_ATTR_NODIRATIME;
            let mnt = tmpfs("saferoot-mi", &[("size", "1m")], set);
            attach(&mnt, &target);
            let old = statx_mount_id(&target);
            assert_ne!(old, parent_old);

            let ts = tables();
            assert_tables_agree(&ts);
            for t in &ts {
                let e = at(t, &target);
                assert_eq!(
                    e.id,
                    old,
                    "{:?}: id is the 32-bit STATX_MNT_ID",
                    t.backend()
                );
                assert_eq!(e.parent_id, parent_old);
                assert_eq!(e.fs_type, "tmpfs");
                assert_source(t, e, "saferoot-mi");
                assert_eq!(e.root, Path::new("/"));
                assert_eq!(
                    e.attrs,
                    MountAttr::RDONLY
                        | MountAttr::NOSUID
                        | MountAttr::NODEV
                        | MountAttr::NOEXEC
                        | MountAttr::NOATIME
                        | MountAttr::NODIRATIME
                );
                assert!(!e.idmapped);
                assert_eq!(e.propagation.kind(), Propagation::Private);
                // Read-only is per mount; the superblock stays writable.
                let opts = e.super_options.as_deref().unwrap_or_default();
                assert!(
                    opts.starts_with("rw,") && opts.contains("size=1024k"),
                    "{opts}"
                );
                assert_eq!(e.dev.0, 0, "tmpfs has an anonymous device");
                assert!(t.children(parent_old).any(|c| c.id == old));
                assert_eq!(t.get(old), Some(e));
            }
            if have_statmount() {
                let unique = statx_unique_id(&target);
                assert_eq!(at(&ts[0], &target).unique_id, Some(unique));
            }
        });
    }

    #[test_log::test]
    fn shared_slave_and_unbindable_peer_groups() {
        let dir = super::common::TempDir::new();
        super::common::in_mount_ns(|| {
            let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
            for d in [&a, &b, &c] {
                mkdir(d);
            }
            mount_tmpfs_at("prop-a", &a);
            set_propagation(&a, k::MS_SHARED);
            // A clone of a shared mount joins its peer group; then make it a
            // slave of that group.
            let clone = open_tree(
                CWD,
                a.as_path(),
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .expect("open_tree clone");
            attach(&clone, &b);
            set_propagation(&b, k::MS_SLAVE);
            mount_tmpfs_at("prop-c", &c);
            set_propagation(&c, k::MS_UNBINDABLE);

            let ts = tables();
            assert_tables_agree(&ts);
            let group = at(&ts[0], &a).propagation.shared.expect("a is shared");
            for t in &ts {
                let (pa, pb, pc) = (
                    at(t, &a).propagation,
                    at(t, &b).propagation,
                    at(t, &c).propagation,
                );
                assert_eq!(pa.kind(), Propagation::Shared, "{:?}", t.backend());
                assert_eq!(pa.shared, Some(group));
                assert_eq!(pb.kind(), Propagation::Slave);
                assert_eq!((pb.shared, pb.master), (None, Some(group)));
                assert_eq!(pb.propagate_from, None, "the master is visible");
                assert_eq!(pc.kind(), Propagation::Unbindable);
                assert!(pc.unbindable && pc.shared.is_none() && pc.master.is_none());
            }

            // Shared and slave at once: a peer group of its own, and a master.
            set_propagation(&b, k::MS_SHARED);
            let ts = tables();
            assert_tables_agree(&ts);
            for t in &ts {
                let pb = at(t, &b).propagation;
                assert_eq!(pb.kind(), Propagation::Shared);
                assert_eq!(pb.master, Some(group));
                assert!(pb.shared.is_some_and(|g| g != group), "{pb:?}");
            }
        });
    }

    #[test_log::test]
    fn odd_mount_point_names_round_trip() {
        let dir = super::common::TempDir::new();
        let names: Vec<OsString> = vec![
            "with space".into(),
            "new\nline".into(),
            "tab\there".into(),
            "back\\slash\\040".into(),
            " - ".into(),
            "caf\u{e9}".into(),
            OsString::from_vec(b"bytes\xff\xfe".to_vec()),
        ];
        super::common::in_mount_ns(|| {
            let targets: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
            for (i, t) in targets.iter().enumerate() {
                mkdir(t);
                mount_tmpfs_at(&format!("odd source {i}"), t);
            }
            let ts = tables();
            assert_tables_agree(&ts);
            for t in &ts {
                for (i, target) in targets.iter().enumerate() {
                    let e = at(t, target);
                    assert_eq!(&e.mount_point, target, "{:?}", t.backend());
                    assert_source(t, e, &format!("odd source {i}"));
                    assert_eq!(e.id, statx_mount_id(target));
                }
            }
        });
    }

    #[test_log::test]
    fn mount_point_longer_than_a_page_grows_the_statmount_buffer() {
        let dir = super::common::TempDir::new();
        super::common::in_mount_ns(|| {
            // 30 components of 200 bytes: past PATH_MAX, so built with
            // mkdirat/openat one level at a time, and past the 4 KiB first
            // statmount buffer, so the kernel answers EOVERFLOW first.
            let part = "d".repeat(200);
            let mut long = dir.path().to_path_buf();
            let mut fd = rustix::fs::open(
                dir.path(),
                OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .expect("open the temp dir");
            for _ in 0..30 {
                rustix::fs::mkdirat(&fd, part.as_str(), Mode::from_raw_mode(0o700))
                    .expect("mkdirat");
                fd = rustix::fs::openat(
                    &fd,
                    part.as_str(),
                    OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .expect("openat");
                long.push(&part);
            }
            assert!(long.as_os_str().len() > 6000);
            let mnt = tmpfs("long-one", &[], 0);
            move_mount(
                mnt.as_fd(),
                c"",
                fd.as_fd(),
                c"",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .expect("move_mount onto the deep directory");
            let ts = tables();
            assert_tables_agree(&ts);
            for t in &ts {
                assert_source(t, at(t, &long), "long-one");
            }
        });
    }

    #[test_log::test]
    fn children_subtree_and_stacked_mounts() {
        let dir = super::common::TempDir::new();
        super::common::in_mount_ns(|| {
            let d = dir.join("d");
            mkdir(&d);
            mount_tmpfs_at("bottom", &d);
            let bottom = statx_mount_id(&d);
            mkdir(&d.join("x"));
            mount_tmpfs_at("x", &d.join("x"));
            let x = statx_mount_id(&d.join("x"));
            mkdir(&d.join("x/y"));
            mount_tmpfs_at("y", &d.join("x/y"));
            let y = statx_mount_id(&d.join("x/y"));
            // A second tmpfs on d goes on top of the stack and hides d/x.
            mount_tmpfs_at("top", &d);
            let top = statx_mount_id(&d);
            assert!(!d.join("x").exists(), "the top tmpfs hides x");

            let ts = tables();
            assert_tables_agree(&ts);
            for t in &ts {
                let ids = |v: Vec<&MountEntry>| v.iter().map(|e| e.id).collect::<Vec<_>>();
                assert_eq!(
                    ids(t.subtree(bottom)),
                    vec![bottom, x, y, top],
                    "{:?}",
                    t.backend()
                );
                assert_eq!(ids(t.children(bottom).collect()), vec![x, top]);
                assert_eq!(ids(t.children(x).collect()), vec![y]);
                assert_eq!(ids(t.subtree(y)), vec![y]);
                assert_eq!(
                    at(t, &d).id,
                    top,
                    "the kernel's statx agrees on the top mount"
                );
                assert!(t.find_by_mount_point(d.join("x")).is_none(), "x is hidden");
                assert_eq!(t.get(top).map(|e| e.parent_id), Some(bottom));
            }
        });
    }

    #[test_log::test]
    fn statmount_under_seccomp_is_unsupported_and_auto_falls_back() {
        super::common::in_mount_ns(|| {
            // The filter applies to this (harness) thread only, and to threads
            // it starts; the feature cache was filled above, unfiltered.
            saferoot::testing::deny_with_enosys(&[k::__NR_statmount, k::__NR_listmount])
                .expect("seccomp filter");
            match MountTable::read_with(Backend::Statmount) {
                Err(e) if e.feature().is_some() => {
                    assert_eq!(e.kind(), ErrorKind::Unsupported);
                    assert!(e.to_string().contains("6.8"), "{e}");
                }
                other => panic!("expected Unsupported, got {other:?}"),
            }
            let auto = MountTable::read().expect("Auto falls back");
            assert_eq!(auto.backend(), Backend::Mountinfo);
            assert!(auto.find_by_mount_point("/").is_some());
            let me = Pid::from_raw(std::process::id() as i32).expect("pid");
            let err = MountTable::read_pid(me, Backend::Statmount).expect_err("filtered");
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
            let theirs = MountTable::read_pid(me, Backend::Auto).expect("Auto falls back");
            assert_eq!(theirs.backend(), Backend::Mountinfo);
        });
        // Other threads still have the calls (where the kernel has them).
        assert_eq!(MountTable::read().unwrap().backend(), best_backend());
    }

    #[test_log::test]
    fn disabled_statmount_feature_means_mountinfo() {
        super::common::in_child(
            "mountinfo::disabled_statmount_feature_means_mountinfo",
            &[("SAFEROOT_DISABLE_FEATURES", "statmount")],
            false,
            || {
                let err = MountTable::read_with(Backend::Statmount).expect_err("disabled");
                assert_eq!(err.feature(), Some(Feature::Statmount), "{err:?}");
                let t = MountTable::read().expect("mountinfo");
                assert_eq!(t.backend(), Backend::Mountinfo);
                assert!(t.find_by_mount_point("/").is_some());
            },
        );
    }

    #[test_log::test]
    fn read_pid_of_this_process_equals_read() {
        if !super::common::require_root() {
            return;
        }
        // This test thread is in the process's namespace (it never unshares),
        // which is the thread-group leader's, the one /proc/PID/ns/mnt names.
        let me = Pid::from_raw(std::process::id() as i32).expect("pid");
        let backends = if have_statmount() {
            vec![Backend::Statmount, Backend::Mountinfo]
        } else {
            assert_statmount_refused(MountTable::read_pid(me, Backend::Statmount));
            vec![Backend::Mountinfo]
        };
        for backend in backends {
            // The host's table may change between two reads; it must not keep
            // changing.
            let agreed = (0..5).any(|_| {
                let here = MountTable::read_with(backend).expect("read");
                let there = MountTable::read_pid(me, backend).expect("read_pid");
                assert_eq!(there.backend(), backend);
                here.entries() == there.entries()
            });
            assert!(agreed, "{backend:?}: read_pid(self) never equalled read()");
        }
    }

    #[test_log::test]
    fn read_pid_sees_another_namespace_without_entering_it() {
        if !super::common::require_root() {
            return;
        }
        let dir = super::common::TempDir::new();
        let target = dir.join("theirs");
        mkdir(&target);
        // A process in a mount namespace of its own, with a tmpfs that exists
        // only there.
        let script =
            "mount -t tmpfs -o size=1m saferoot-pid-test \"$1\" && echo ready && exec sleep 60";
        let mut child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&target)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start `unshare` (util-linux)");
        let mut ready = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut ready);
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_eq!(ready.trim(), "ready", "the child did not mount its tmpfs");
            let pid = Pid::from_raw(child.id() as i32).expect("pid");
            let my_ns = std::fs::read_link("/proc/thread-self/ns/mnt").unwrap();
            let mut ts = Vec::new();
            if have_statmount() {
                ts.push(MountTable::read_pid(pid, Backend::Statmount).expect("statmount read_pid"));
            } else {
                assert_statmount_refused(MountTable::read_pid(pid, Backend::Statmount));
            }
            ts.push(MountTable::read_pid(pid, Backend::Mountinfo).expect("mountinfo read_pid"));
            assert_eq!(
                std::fs::read_link("/proc/thread-self/ns/mnt").unwrap(),
                my_ns
            );
            assert_tables_agree(&ts);
            for t in &ts {
                let e = at(t, &target);
                assert_source(t, e, "saferoot-pid-test");
                assert_eq!(e.fs_type, "tmpfs");
            }
            let mine = MountTable::read().expect("read");
            assert!(
                mine.find_by_mount_point(&target).is_none(),
                "the child's mount leaked here"
            );
        }));
        let _ = child.kill();
        let _ = child.wait();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}
