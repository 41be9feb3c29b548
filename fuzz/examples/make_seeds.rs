//! Writes the seed inputs of the fuzz targets into `fuzz/corpus/TARGET/`
//! (files named `seed-*`; what libFuzzer adds has other names).
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! Seeds come from the repository's fixtures (OCI configs), the C tests'
//! and unit tests' inputs, the mount table of the machine it runs on
//! (mountinfo and statmount seeds), and the hostile archives of
//! tests/archive.rs (rebuilt here by hand, as there). Run as root for the
//! statmount seeds of this machine; without root they are skipped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use saferoot::testing::StatmountInfo;
use saferoot::{MountAttr, MountEntry, MountTable};
use saferoot_fuzz::statmount::{encode, BUF};

struct Out {
    dir: PathBuf,
    count: usize,
}

impl Out {
    fn new(corpus: &Path, target: &str) -> Out {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).expect("mkdir corpus");
        for e in fs::read_dir(&dir).expect("readdir corpus") {
            let e = e.expect("entry");
            if e.file_name().to_string_lossy().starts_with("seed-") {
                fs::remove_file(e.path()).expect("remove old seed");
            }
        }
        Out { dir, count: 0 }
    }

    fn put(&mut self, name: &str, data: &[u8]) {
        self.count += 1;
        fs::write(self.dir.join(format!("seed-{name}")), data).expect("write seed");
    }
}

fn with_byte(b: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![b];
    v.extend_from_slice(data);
    v
}

// ---------------------------------------------------------------------------
// OCI configs and RootfsSpecs

const EXTRA_CONFIGS: &[(&str, &str)] = &[
    (
        "everything",
        r#"{"ociVersion":"1.0.2","root":{"path":"/srv/root","readonly":true},
"process":{"cwd":"/work","user":{"uid":0,"gid":0,"umask":18}},
"mounts":[{"destination":"/proc","type":"proc","source":"proc"},
{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},
{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro","nosuid","rslave"]},
{"destination":"/tmp","type":"tmpfs","options":["tmpcopyup","x-foo","sync","rw","noatime"]},
{"destination":"/etc/resolv.conf","type":"bind","source":"/etc/resolv.conf","options":["bind","ro","src-nofollow"]},
{"destination":"/link","type":"bind","source":"lnk","options":["bind","copy-symlink"]},
{"destination":"/data","options":["rbind","rro","rnosuid","dest-nofollow","private"],"source":"data"},
{"destination":"/merged","type":"overlay","source":"overlay","options":["lowerdir=/l1:/l2","upperdir=/u","workdir=/w"]}],
"linux":{"namespaces":[{"type":"mount"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"pid"},{"type":"cgroup"}],
"devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":0,"gid":0},
{"path":"/dev/loop0","type":"b","major":7,"minor":0},{"path":"/dev/fifo","type":"p"},{"path":"/dev/u","type":"u","major":1,"minor":3}],
"sysctl":{"net.ipv4.ip_forward":"1","kernel.shmmax":"100000","fs.mqueue.queues_max":"8"},
"rootfsPropagation":"rslave","maskedPaths":["/proc/kcore","/sys/firmware"],"readonlyPaths":["/proc/sys","/proc/bus"],
"mountLabel":"system_u:object_r:container_file_t:s0"}}"#,
    ),
    (
        "idmap",
        r#"{"ociVersion":"1.1.0","root":{"path":"rootfs"},
"mounts":[{"destination":"/data","type":"bind","source":"data","options":["rbind","ridmap","ro"],
"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]},
{"destination":"/other","type":"none","source":"/srv/other","options":["bind","idmap"]}],
"linux":{"namespaces":[{"type":"user"},{"type":"mount"}],
"uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}"#,
    ),
    (
        "minimal",
        r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"}}"#,
    ),
    (
        "bad-relative-destination",
        r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"destination":"proc","type":"proc","source":"proc"}]}"#,
    ),
    (
        "bad-proc-placement",
        r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"destination":"/etc","type":"proc","source":"proc"},{"destination":"/proc/self/x","type":"bind","source":"/x","options":["bind"]}]}"#,
    ),
];

fn oci_configs(repo: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["tests/fixtures", "tests/fixtures/audit"] {
        let mut files: Vec<PathBuf> = fs::read_dir(repo.join(dir))
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_stem().expect("name").to_string_lossy().into_owned();
            out.push((name, fs::read_to_string(&f).expect("read fixture")));
        }
    }
    for (name, text) in EXTRA_CONFIGS {
        out.push((name.to_string(), text.to_string()));
    }
    out
}

const NATIVE_SPECS: &[(&str, &str)] = &[
    (
        "c-test",
        r#"{"rootfs":"/srv/c1","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/tmp","type":"tmpfs","options":["nosuid","size=1m"]}],"maskedPaths":["/proc/kcore"],"readonlyRoot":true}"#,
    ),
    (
        "source-root",
        r#"{"rootfs":"/srv/r","mounts":[{"destination":"/d","type":"bind","source":"data/x","sourceRoot":"/srv/bundle","options":["rbind","ro"]}],"devices":[{"path":"/dev/fuse","kind":"char","major":10,"minor":229,"fileMode":438}],"defaultDevices":false,"rootfsPropagation":"rprivate","cwd":"/w","sysctls":{"kernel.msgmax":"8192"},"namespaces":{"ipc":true,"uts":true},"userNamespace":true,"umask":18,"mountLabel":"l","strictMountLabel":true}"#,
    ),
    ("unknown-field", r#"{"rootfs":"/x","readOnlyRoot":true}"#),
    ("array", r#"{"rootfs":"/x","namespaces":[true]}"#),
];

// ---------------------------------------------------------------------------
// Mount tables

const MOUNTINFO: &str = r"1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
24 1 0:6 / /dev rw,nosuid,relatime shared:3 - devtmpfs udev rw,size=8000k,nr_inodes=2000,mode=755
25 24 0:23 / /dev/pts rw,nosuid,noexec,relatime shared:4 - devpts devpts rw,gid=5,mode=620,ptmxmode=000
26 1 0:24 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=1000k,mode=755
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
40 1 8:1 /srv/data /mnt/with\040space ro,nosuid,nodev,noexec,noatime master:1 - ext4 /dev/sda1 ro
41 40 0:50 / /mnt/with\040space/idm rw,idmapped,nosymfollow,nodiratime master:4 propagate_from:3 unbindable - fuse.sshfs user@host:/x rw,user_id=0
42 1 0:51 / /tmp rw,relatime - tmpfs  rw
43 42 0:51 / /tmp rw - tmpfs none rw,sync,dirsync,lazytime
";

/// Lines of the unit tests in src/mountinfo.rs, good and bad.
const MOUNTINFO_LINES: &[&[u8]] = &[
    b"36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
    b"40 27 0:50 /a\\040b /tmp/with\\040space\\012and\\011tab\\134back rw,relatime - fuse.my\\040fs my\\040src rw,opt=a\\054b",
    b"41 27 0:50 / /x\\04\\x\\777\\ rw - tmpfs none rw",
    b"42 27 0:50 / /bin\xff\xfe rw - tmpfs none rw",
    b"50 27 0:51 / /a rw shared:7 master:3 propagate_from:2 unbindable x-future:9 - tmpfs t rw",
    b"63 27 0:52 / /a rw,noatime,relatime - tmpfs t rw",
    b"64 27 0:52 / /a rw,future,relatime - tmpfs t rw",
    b"70 27 0:53 / /a rw - weirdfs none rw,label=two words",
    b"36 35 98:99999999999 / /a rw - ext3 /dev/root rw",
    b"36 35 98:0 / /a rw master: - ext3 /dev/root rw",
    b"36 35 98:0  /a rw - ext3 /dev/root rw",
];

fn kernel_attr(a: MountAttr) -> u64 {
    use linux_raw_sys::general as k;
    let mut bits = 0u64;
    for (flag, bit) in [
        (MountAttr::RDONLY, k::MOUNT_ATTR_RDONLY),
        (MountAttr::NOSUID, k::MOUNT_ATTR_NOSUID),
        (MountAttr::NODEV, k::MOUNT_ATTR_NODEV),
        (MountAttr::NOEXEC, k::MOUNT_ATTR_NOEXEC),
        (MountAttr::NOATIME, k::MOUNT_ATTR_NOATIME),
        (MountAttr::STRICTATIME, k::MOUNT_ATTR_STRICTATIME),
        (MountAttr::NODIRATIME, k::MOUNT_ATTR_NODIRATIME),
        (MountAttr::NOSYMFOLLOW, k::MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if a.contains(flag) {
            bits |= u64::from(bit);
        }
    }
    bits
}

/// What statmount would answer for `e` (unique ids made up from the old
/// ones when the entry has none).
fn statmount_info(e: &MountEntry) -> StatmountInfo {
    use linux_raw_sys::general as k;
    let (fs_type, fs_subtype) = match e.fs_type.split_once('.') {
        Some((t, s)) => (t.to_string(), Some(s.to_string())),
        None => (e.fs_type.clone(), None),
    };
    let sopts = e.super_options.clone().unwrap_or_default();
    let (ro, rest) = match sopts.split_once(',') {
        Some((first, rest)) => (first == "ro", rest.to_string()),
        None => (sopts == "ro", String::new()),
    };
    let mut propagation = 0u64;
    if e.propagation.shared.is_some() {
        propagation |= u64::from(k::MS_SHARED);
    }
    if e.propagation.master.is_some() {
        propagation |= u64::from(k::MS_SLAVE);
    }
    if e.propagation.unbindable {
        propagation |= u64::from(k::MS_UNBINDABLE);
    }
    if propagation == 0 {
        propagation = u64::from(k::MS_PRIVATE);
    }
    let mut mask = k::STATMOUNT_SB_BASIC
        | k::STATMOUNT_MNT_BASIC
        | k::STATMOUNT_PROPAGATE_FROM
        | k::STATMOUNT_MNT_ROOT
        | k::STATMOUNT_MNT_POINT
        | k::STATMOUNT_FS_TYPE
        | k::STATMOUNT_SB_SOURCE
        | k::STATMOUNT_SUPPORTED_MASK;
    if fs_subtype.is_some() {
        mask |= k::STATMOUNT_FS_SUBTYPE;
    }
    if !rest.is_empty() {
        mask |= k::STATMOUNT_MNT_OPTS;
    }
    let mut attr = kernel_attr(e.attrs);
    if e.idmapped {
        attr |= u64::from(k::MOUNT_ATTR_IDMAP);
    }
    StatmountInfo {
        mask: u64::from(mask),
        mnt_id: e.unique_id.unwrap_or(0x1_0000_0000 + e.id),
        parent_id: 0x1_0000_0000 + e.parent_id,
        mnt_id_old: e.id as u32,
        parent_id_old: e.parent_id as u32,
        mnt_attr: attr,
        propagation,
        peer_group: e.propagation.shared.unwrap_or(0),
        master: e.propagation.master.unwrap_or(0),
        propagate_from: e.propagation.propagate_from.unwrap_or(0),
        sb_dev_major: e.dev.0,
        sb_dev_minor: e.dev.1,
        sb_magic: 0x0102_1994,
        sb_flags: if ro { k::MS_RDONLY } else { 0 },
        fs_type: Some(fs_type),
        fs_subtype,
        mnt_root: Some(e.root.clone()),
        mnt_point: Some(e.mount_point.clone()),
        sb_source: e.source.clone(),
        mnt_opts: (!rest.is_empty()).then_some(rest),
        supported_mask: u64::from(
            k::STATMOUNT_MNT_OPTS | k::STATMOUNT_FS_SUBTYPE | k::STATMOUNT_SB_SOURCE | mask,
        ),
    }
}

/// The table as the statmount target's input: one `BUF`-sized buffer per
/// mount (mounts whose strings do not fit are left out).
fn statmount_input(entries: &[MountEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut b = encode(&statmount_info(e));
        if b.len() <= BUF {
            b.resize(BUF, 0);
            out.extend(b);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// bubblewrap command lines: arguments separated by spaces here, by NUL
// in the input; " | " starts the data of the next fd (3, 4, ...).

const BWRAP: &[(&str, &str)] = &[
    (
        "simple",
        "--ro-bind /usr /usr --symlink usr/lib /lib --proc /proc --dev /dev --unshare-all \
         --die-with-parent sh",
    ),
    (
        "env-and-ns",
        "--bind / / --tmpfs /tmp --size 1048576 --tmpfs /run --perms 0700 --dir /run/x \
         --setenv A B --unsetenv C --clearenv --chdir / --hostname h --uid 1000 --gid 1000 \
         --unshare-user --unshare-uts --unshare-ipc --unshare-pid --unshare-net --share-net \
         --unshare-cgroup-try --new-session --as-pid-1 --cap-add CAP_NET_ADMIN --cap-drop ALL \
         -- /bin/sh -c true",
    ),
    (
        "args",
        "--args 3 sh | --ro-bind /usr /usr --dev-bind-try /dev/null /dev/null \
         --ro-bind-try /nope /nope",
    ),
    (
        "args-then-options",
        "--args 3 --dir /z --perms 0755 --dir /y true | --dir /a --perms 0700",
    ),
    ("args-nested", "--args 3 true | --args 4 | --dir /b"),
    (
        "args-program-inside",
        "--args 3 sh -c x | --dir /a prog --dir /b",
    ),
    (
        "overlay",
        "--overlay-src /a --overlay-src /b --overlay /u /w /m --overlay-src /c --tmp-overlay /t \
         --overlay-src /d --ro-overlay /r sh",
    ),
    (
        "fds",
        "--bind-fd 3 /x --ro-bind-fd 4 /y --file 5 /f --bind-data 6 /d --ro-bind-data 7 /e \
         --chmod 0755 /f --remount-ro / --mqueue /dev/mqueue sh",
    ),
    (
        "process",
        "--userns 3 --userns2 4 --pidns 5 --disable-userns --assert-userns-disabled \
         --lock-file /l --sync-fd 3 --block-fd 4 --userns-block-fd 5 --info-fd 6 \
         --json-status-fd 7 --seccomp 8 --level-prefix --exec-label x --file-label y --argv0 z sh",
    ),
    (
        "seccomp-fds",
        "--add-seccomp-fd 3 --add-seccomp-fd 4 --unshare-user-try --unshare-cgroup sh",
    ),
    ("help", "--help"),
    ("version", "--dir /x --version"),
    ("no-program", "--dir /x"),
    ("bad-number", "--uid x1 sh"),
];

fn bwrap_input(text: &str) -> Vec<u8> {
    let sections: Vec<Vec<u8>> = text
        .split(" | ")
        .map(|s| s.split(' ').collect::<Vec<_>>().join("\0").into_bytes())
        .collect();
    sections.join(&0x1e)
}

// ---------------------------------------------------------------------------
// Tar archives, by hand (tests/archive.rs builds the same kinds)

#[derive(Default)]
struct Raw(Vec<u8>);

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

impl Raw {
    fn header(&mut self, name: &[u8], typ: u8, mode: u32, size: usize, link: &[u8]) -> &mut Self {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], 1_000_000_000);
        h[156] = typ;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], 1);
        octal(&mut h[337..345], 3);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
        self
    }

    fn data(&mut self, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn entry(&mut self, name: &str, typ: u8, mode: u32, data: &[u8], link: &str) -> &mut Self {
        self.header(name.as_bytes(), typ, mode, data.len(), link.as_bytes());
        self.data(data)
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.entry(name, b'0', 0o644, data.as_bytes(), "")
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'5', 0o755, b"", "")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', 0o777, b"", target)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'1', 0o644, b"", target)
    }

    fn pax(&mut self, typ: u8, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let mut rest = format!(" {k}=").into_bytes();
            rest.extend_from_slice(v);
            rest.push(b'\n');
            let mut len = rest.len() + 1;
            while format!("{len}").len() + rest.len() != len {
                len += 1;
            }
            body.extend(format!("{len}").into_bytes());
            body.extend(rest);
        }
        self.header(b"././@PaxHeader", typ, 0o644, body.len(), b"");
        self.data(&body)
    }

    fn gnu_long(&mut self, typ: u8, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.header(b"././@LongLink", typ, 0o644, v.len(), b"");
        self.data(&v)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend(std::iter::repeat_n(0u8, 1024));
        v
    }
}

/// The host directory beside the root, as the archive target lays it out.
const HOST: &str = "/tmp/host";

fn archives() -> Vec<(&'static str, u8, Vec<u8>)> {
    let climb = "../".repeat(8);
    let long = format!("{}/file", "d".repeat(150));
    vec![
        (
            "plain",
            4,
            Raw::default()
                .dir("a")
                .file("a/f", "data\n")
                .symlink("a/l", "f")
                .hardlink("a/h", "a/f")
                .entry("a/p", b'6', 0o644, b"", "")
                .entry("a/null", b'3', 0o666, b"", "")
                .entry("a/blk", b'4', 0o600, b"", "")
                .entry("a/cont", b'7', 0o644, b"contiguous", "")
                .finish(),
        ),
        (
            "dotdot",
            0,
            Raw::default()
                .file("../host/MARKER", "x")
                .file(&format!("a/{climb}tmp/host/new"), "x")
                .file("a/../../host/sub/deep", "x")
                .finish(),
        ),
        (
            "absolute",
            0,
            Raw::default()
                .file(&format!("{HOST}/MARKER"), "x")
                .file("/tmp/host/sub/new", "x")
                .file("//./tmp/../tmp/host/link", "x")
                .finish(),
        ),
        (
            "pax-and-gnu-long-names",
            0,
            Raw::default()
                .pax(
                    b'x',
                    &[("path", format!("{climb}tmp/host/MARKER").as_bytes())],
                )
                .file("ignored", "x")
                .gnu_long(b'L', &format!("{climb}tmp/host/long"))
                .file("ignored2", "x")
                .gnu_long(b'K', "../host/MARKER")
                .hardlink("hl", "ignored3")
                .pax(b'x', &[("path", long.as_bytes())])
                .file("short", "long name")
                .finish(),
        ),
        (
            "outward-symlinks",
            0,
            Raw::default()
                .symlink("esc", "../host")
                .file("esc/MARKER", "x")
                .symlink("abs", HOST)
                .file("abs/new", "x")
                .symlink("slash", "/")
                .file("slash/tmp/host/MARKER", "x")
                .symlink("hostlink", "/tmp/host/link")
                .file("hostlink", "replaced")
                .finish(),
        ),
        (
            "symlink-chains",
            0,
            Raw::default()
                .symlink("a", "b")
                .symlink("b", "c")
                .symlink("c", "../host")
                .file("a/x", "x")
                .symlink("loop1", "loop2")
                .symlink("loop2", "loop1")
                .file("loop1/x", "x")
                .finish(),
        ),
        (
            "outward-hardlinks",
            0,
            Raw::default()
                .hardlink("h1", "../host/MARKER")
                .hardlink("h2", "/tmp/host/MARKER")
                .symlink("s", "/tmp/host/MARKER")
                .hardlink("h3", "s")
                .hardlink("h4", "missing")
                .finish(),
        ),
        (
            "metadata-of-outward-symlink",
            4,
            Raw::default()
                .symlink("s", "/tmp/host/MARKER")
                .entry("s", b'2', 0o7777, b"", "/tmp/host/MARKER")
                .pax(
                    b'x',
                    &[("mtime", b"1.5"), ("uid", b"4242"), ("gid", b"4242")],
                )
                .dir("s")
                .finish(),
        ),
        (
            "dot-symlinks",
            0,
            Raw::default()
                .symlink(".", "/tmp/host")
                .symlink("x/..", "/tmp/host")
                .file("MARKER", "x")
                .finish(),
        ),
        (
            "oci-whiteouts",
            1,
            Raw::default()
                .dir("d")
                .file("d/keep", "x")
                .file("d/gone", "x")
                .file("d/.wh.gone", "")
                .symlink("out", "/tmp/host")
                .file("out/.wh.MARKER", "")
                .file(".wh.out", "")
                .file("d/.wh..wh..opq", "")
                .finish(),
        ),
        (
            "overlay-whiteouts",
            2 | 8,
            Raw::default()
                .dir("d")
                .file("d/.wh.gone", "")
                .file("d/.wh..wh..opq", "")
                .symlink("up", "..")
                .file("up/.wh.host", "")
                .finish(),
        ),
        (
            "fifo-then-file",
            0,
            Raw::default()
                .entry("p", b'6', 0o644, b"", "")
                .file("p", "must not block")
                .finish(),
        ),
        (
            "pax-xattrs",
            8,
            Raw::default()
                .pax(
                    b'x',
                    &[
                        ("SCHILY.xattr.user.comment", b"hello"),
                        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                        ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
                    ],
                )
                .file("x", "with xattrs")
                .pax(b'g', &[("comment", b"global")])
                .pax(b'x', &[("size", b"3"), ("linkpath", b"/tmp/host")])
                .file("sized", "abc")
                .finish(),
        ),
        (
            "directory-replaced-by-symlink",
            0,
            Raw::default()
                .dir("d")
                .file("d/a", "x")
                .symlink("d", "/tmp/host")
                .file("d/b", "x")
                .finish(),
        ),
        ("bad-header", 0, {
            let mut r = Raw::default();
            r.file("ok", "x");
            let mut v = r.finish();
            v.truncate(512 + 512);
            v.extend_from_slice(&[b'7'; 512]);
            v
        }),
    ]
}

/// A sparse file (32 KiB, three data regions) archived by GNU tar in each
/// of its sparse formats, trimmed to two end-of-archive blocks; none when
/// `tar` is missing.
fn gnu_tar_sparse() -> Vec<(String, Vec<u8>)> {
    let dir = std::env::temp_dir().join(format!("saferoot-fuzz-seeds.{}", std::process::id()));
    fs::create_dir_all(&dir).expect("mkdir scratch");
    let mut f = fs::File::create(dir.join("sparse")).expect("create sparse file");
    for (at, data) in [
        (0u64, [b'a'; 100].as_slice()),
        (8192, &[b'b'; 600]),
        (20000, &[b'c'; 10]),
    ] {
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(at)).expect("seek");
        f.write_all(data).expect("write sparse file");
    }
    f.set_len(32768).expect("truncate sparse file");
    drop(f);
    // No atime, ctime or process id in the extended headers (the 0.1 and
    // 1.0 formats still put tar's process id in the member's own header
    // name, GNUSparseFile.PID/NAME, so those seeds change a little from
    // one run to the next).
    const PAX: &str = "--pax-option=delete=atime,delete=ctime,exthdr.name=%d/PaxHeaders/%f";
    let mut out = Vec::new();
    for (name, args) in [
        ("gnu", &["--format=gnu"][..]),
        (
            "posix-0.0",
            &["--format=posix", "--sparse-version=0.0", PAX],
        ),
        (
            "posix-0.1",
            &["--format=posix", "--sparse-version=0.1", PAX],
        ),
        (
            "posix-1.0",
            &["--format=posix", "--sparse-version=1.0", PAX],
        ),
    ] {
        let run = std::process::Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .args([
                "--sparse",
                "--mtime=@1",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            .args(["-cf", "-"])
            .args(args)
            .arg("sparse")
            .output();
        match run {
            Ok(o) if o.status.success() => {
                let mut tar = o.stdout;
                while tar.len() >= 512 && tar[tar.len() - 512..].iter().all(|b| *b == 0) {
                    tar.truncate(tar.len() - 512);
                }
                tar.resize(tar.len() + 1024, 0);
                out.push((format!("sparse-{name}"), tar));
            }
            Ok(o) => eprintln!("tar {name}: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("no sparse seeds (tar: {e})"),
        }
    }
    fs::remove_dir_all(&dir).expect("remove scratch");
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz.parent().expect("the repository");
    let corpus = fuzz.join("corpus");

    let configs = oci_configs(repo);
    let mut oci = Out::new(&corpus, "oci_plan");
    let mut ffi = Out::new(&corpus, "ffi_plan_json");
    let mut opts = Out::new(&corpus, "mount_options");
    for (name, text) in &configs {
        oci.put(name, text.as_bytes());
        ffi.put(&format!("oci-{name}"), &with_byte(1, text.as_bytes()));
        if let Ok(spec) = saferoot::oci::spec_from_json(text, Path::new("/bundle")) {
            let native = serde_json::to_string(&spec).expect("serializes");
            ffi.put(&format!("native-{name}"), &with_byte(0, native.as_bytes()));
        }
        let v: serde_json::Value = serde_json::from_str(text).expect("fixtures are JSON");
        for (i, m) in v["mounts"].as_array().into_iter().flatten().enumerate() {
            let words: Vec<&str> = m["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o.as_str())
                .collect();
            if words.is_empty() {
                continue;
            }
            let bind = u8::from(m["type"] == "bind");
            opts.put(
                &format!("{name}-{i}"),
                &with_byte(bind, words.join("\n").as_bytes()),
            );
        }
    }
    for (name, text) in NATIVE_SPECS {
        ffi.put(&format!("native-{name}"), &with_byte(0, text.as_bytes()));
    }
    ffi.put("null-bundle", &with_byte(2, br#"{"ociVersion":"1.0.2"}"#));
    ffi.put("bad-is-oci", &with_byte(3, br#"{"rootfs":"/x"}"#));
    opts.put("data", b"\0mode=755,size=65536k,newinstance,x-a=b,=bad,,");
    opts.put(
        "bind-junk",
        b"\x01bind\nrro\nrslave\nsize=1m\nsync\nfrobnicate",
    );
    println!(
        "oci_plan: {}, ffi_plan_json: {}, mount_options: {}",
        oci.count, ffi.count, opts.count
    );

    let mut mi = Out::new(&corpus, "mountinfo");
    let mut sm = Out::new(&corpus, "statmount");
    mi.put("table", MOUNTINFO.as_bytes());
    for (i, line) in MOUNTINFO_LINES.iter().enumerate() {
        mi.put(&format!("line-{i}"), line);
    }
    let table = MountTable::parse_mountinfo(MOUNTINFO.as_bytes()).expect("the seed table parses");
    sm.put("table", &statmount_input(table.entries()));
    match MountTable::read() {
        Ok(here) => {
            sm.put("this-machine", &statmount_input(here.entries()));
            let text: String = here
                .entries()
                .iter()
                .filter_map(saferoot_fuzz::mountinfo_line)
                .map(|l| String::from_utf8_lossy(&l).into_owned() + "\n")
                .collect();
            mi.put("this-machine", text.as_bytes());
        }
        Err(e) => eprintln!("no mount table of this machine: {e}"),
    }
    println!("mountinfo: {}, statmount: {}", mi.count, sm.count);

    let mut bw = Out::new(&corpus, "bwrap_args");
    for (name, args) in BWRAP {
        bw.put(name, &bwrap_input(args));
    }
    println!("bwrap_args: {}", bw.count);

    let mut ar = Out::new(&corpus, "archive_unpack");
    for (name, flags, tar) in archives() {
        ar.put(name, &with_byte(flags, &tar));
        if matches!(name, "plain" | "outward-symlinks" | "pax-xattrs") {
            ar.put(&format!("{name}.gz"), &with_byte(flags, &gzip(&tar)));
            ar.put(&format!("{name}.zst"), &with_byte(flags, &zstd(&tar)));
        }
    }
    // The option bits no seed above sets: hard links by name (0x20), the
    // archive read from a file (0x40), id maps (0x80, with 3: overflow).
    let all = archives();
    let tar_of = |name: &str| {
        all.iter()
            .find(|a| a.0 == name)
            .map(|a| (a.1, a.2.clone()))
            .expect("a seed archive")
    };
    let (_, hard) = tar_of("outward-hardlinks");
    ar.put("outward-hardlinks-by-name", &with_byte(0x20, &hard));
    ar.put(
        "outward-hardlinks-by-name-from-file",
        &with_byte(0x60, &hard),
    );
    let (flags, plain) = tar_of("plain");
    ar.put("plain-from-file", &with_byte(flags | 0x40, &plain));
    let (_, long) = tar_of("pax-and-gnu-long-names");
    ar.put("pax-and-gnu-long-names-mapped", &with_byte(0x84, &long));
    ar.put(
        "pax-and-gnu-long-names-mapped-overflow",
        &with_byte(0x87, &long),
    );
    for (name, tar) in gnu_tar_sparse() {
        ar.put(&name, &with_byte(0, &tar));
        if matches!(name.as_str(), "sparse-gnu" | "sparse-posix-1.0") {
            ar.put(&format!("{name}-from-file"), &with_byte(0x40, &tar));
        }
    }
    let mut two = gzip(&Raw::default().file("one", "1").finish());
    two.extend(gzip(&Raw::default().file("two", "2").finish()));
    ar.put("multi-member.gz", &with_byte(0, &two));
    let mut cut = zstd(&Raw::default().file("cut", "abc").finish());
    cut.truncate(cut.len() / 2);
    ar.put("truncated.zst", &with_byte(0, &cut));
    ar.put("xz-magic", &with_byte(0, b"\xfd7zXZ\0rest"));
    println!("archive_unpack: {}", ar.count);
}
