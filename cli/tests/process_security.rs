//! The program's privileges in `saferoot run --bundle`: `process.capabilities`
//! (all five sets), `process.noNewPrivileges`, `process.rlimits`,
//! `process.oomScoreAdj` and `process.user`, judged from inside the
//! sandbox by what the kernel says about the program itself
//! (`/proc/self/status`, `/proc/self/limits`, `/proc/self/oom_score_adj`,
//! read by the shell that saferoot exec'd, with builtins only, so that no
//! child process of its own is what is measured), and the refusals that
//! come before anything starts.
//!
//! Capability numbers are written out here (`capabilities(7)`), not taken
//! from the code under test.

// The library's namespace harness, shared with its own integration tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::TempDir;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

// capabilities(7)
const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_AUDIT_WRITE: u32 = 29;

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1u64 << c)
}

/// What a run of the command gave.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "saferoot failed:\n{self:#?}");
        self
    }

    /// `Name: value` lines of `/proc/self/status` and `key=value` lines.
    fn fields(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once(':').or_else(|| l.split_once('=')))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    #[track_caller]
    fn field(&self, key: &str) -> String {
        self.fields()
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in the output:\n{self:#?}"))
    }

    /// A capability mask of `/proc/self/status` (`CapBnd`, ...).
    #[track_caller]
    fn caps(&self, key: &str) -> u64 {
        u64::from_str_radix(&self.field(key), 16)
            .unwrap_or_else(|e| panic!("{key} is not hex ({e}):\n{self:#?}"))
    }

    /// The soft and hard limit of the line of `/proc/self/limits` that
    /// starts with `name` (`Max open files`).
    #[track_caller]
    fn limit(&self, name: &str) -> (String, String) {
        let line = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("limit ")?.strip_prefix(name))
            .unwrap_or_else(|| panic!("no limit {name:?}:\n{self:#?}"));
        let mut w = line.split_whitespace();
        (w.next().unwrap().to_string(), w.next().unwrap().to_string())
    }
}

/// Runs `saferoot ARGS` with its TMPDIR in a fresh directory that must be
/// empty again afterwards.
fn saferoot(args: &[&str]) -> Out {
    saferoot_under(&[], args)
}

/// [`saferoot`] started through the command line `prefix` (say,
/// `setpriv ...`), which must exec it.
fn saferoot_under(prefix: &[&str], args: &[&str]) -> Out {
    let tmp = TempDir::new();
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(EXE);
            c
        }
        None => Command::new(EXE),
    };
    let out = cmd
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("start saferoot");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.is_empty(),
        "saferoot left {left:?} behind in its TMPDIR"
    );
    Out {
        code: out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The script every sandbox runs: the shell's own status, limits and OOM
/// score adjustment, with builtins only.
const REPORT: &str = r#"
while read -r l; do case "$l" in Cap*|NoNewPrivs*|Seccomp*|Uid*|Gid*) echo "$l";; esac; done </proc/self/status
while read -r l; do case "$l" in Max*) echo "limit $l";; esac; done </proc/self/limits
read -r o </proc/self/oom_score_adj; echo "oom=$o"
echo ran=yes
"#;

/// A bundle whose root has the host's programs (read-only binds of
/// `/usr`, `/bin`, ... or the host's merged-usr symlinks), a `/proc` of
/// its own pid namespace, and `process` merged over a shell running
/// [`REPORT`] as root. With `userns`, a user namespace maps 0..65536 to
/// 100000.. and the root belongs to its root.
struct Bundle {
    dir: TempDir,
    config: Value,
}

impl Bundle {
    fn new(process: Value, userns: bool) -> Bundle {
        let dir = TempDir::new();
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        ];
        for d in common::host_program_dirs(&rootfs) {
            mounts.push(
                json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro", "nosuid", "nodev"]}),
            );
        }
        let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "mount"})];
        let mut linux = json!({});
        if userns {
            // The namespace's root (host uid 100000) must reach the rootfs.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&rootfs, Some(100000), Some(100000)).unwrap();
            namespaces.push(json!({"type": "user"}));
            linux["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            linux["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }
        linux["namespaces"] = json!(namespaces);
        let mut proc_obj = json!({
            "args": ["/bin/sh", "-c", REPORT],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0}
        });
        for (k, v) in process.as_object().unwrap() {
            proc_obj[k] = v.clone();
        }
        let config = json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": proc_obj,
            "mounts": mounts,
            "linux": linux
        });
        let b = Bundle { dir, config };
        b.write();
        b
    }

    fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn run(&self) -> Out {
        saferoot(&["run", "--bundle", self.path()])
    }
}

/// A capability set of the test process (`CapBnd`, `CapEff`, ...): what
/// saferoot, started by it, has.
fn own_set(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap()
        .trim();
    u64::from_str_radix(v, 16).unwrap()
}

/// Root with a reduced set: each of the five masks is exactly what the
/// config lists, `noNewPrivileges` shows, every rlimit is what it asks
/// (`u64::MAX` is unlimited), and the OOM score adjustment is set.
#[test_log::test]
fn root_gets_exactly_the_configured_sets_limits_and_oom_score() {
    if !common::require_root() {
        return;
    }
    let b = Bundle::new(
        json!({
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_CHOWN", "CAP_KILL"],
                "permitted": ["CAP_CHOWN", "CAP_KILL"],
                "inheritable": ["CAP_KILL"],
                "ambient": []
            },
            "noNewPrivileges": true,
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": u64::MAX},
                {"type": "RLIMIT_NPROC", "soft": 3000, "hard": 4000}
            ],
            "oomScoreAdj": 345
        }),
        false,
    );
    let out = b.run().ok();
    assert_eq!(out.caps("CapBnd"), mask(&[CAP_CHOWN, CAP_KILL]), "{out:#?}");
    assert_eq!(out.caps("CapEff"), mask(&[CAP_CHOWN, CAP_KILL]));
    assert_eq!(out.caps("CapPrm"), mask(&[CAP_CHOWN, CAP_KILL]));
    assert_eq!(out.caps("CapInh"), mask(&[CAP_KILL]));
    assert_eq!(out.caps("CapAmb"), 0);
    assert_eq!(out.field("NoNewPrivs"), "1");
    assert_eq!(out.field("Seccomp"), "0");
    assert_eq!(out.limit("Max open files"), ("256".into(), "512".into()));
    assert_eq!(
        out.limit("Max core file size"),
        ("0".into(), "unlimited".into())
    );
    assert_eq!(out.limit("Max processes"), ("3000".into(), "4000".into()));
    assert_eq!(out.field("oom"), "345");
    // Nothing about these fields is reported as not applied.
    assert!(!out.stderr.contains("not applied"), "{out:#?}");

    // The same bundle without noNewPrivileges and with other sets.
    let mut b = b;
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_AUDIT_WRITE"],
        "effective": ["CAP_NET_RAW"],
        "permitted": ["CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_AUDIT_WRITE"]
    });
    b.write();
    let out = b.run().ok();
    let three = mask(&[CAP_NET_RAW, CAP_SYS_ADMIN, CAP_AUDIT_WRITE]);
    assert_eq!(out.caps("CapBnd"), three, "{out:#?}");
    // Root's exec gives it its whole bounding set (capabilities(7)).
    assert_eq!(out.caps("CapPrm"), three);
    assert_eq!(out.caps("CapEff"), three);
    assert_eq!(out.caps("CapInh"), 0);
    assert_eq!(out.caps("CapAmb"), 0);
    assert_eq!(out.field("NoNewPrivs"), "0");
}

/// saferoot drops a capability from the bounding set with one
/// `PR_CAPBSET_DROP`, which needs `CAP_SETPCAP`. Started without it (and
/// without `CAP_CHOWN` in its bounding set, by setpriv), saferoot still
/// runs a bundle whose bounding set leaves out only what is already gone,
/// and refuses one that leaves out a capability it would have to drop,
/// naming it.
#[test_log::test]
fn without_cap_setpcap_only_capabilities_already_gone_may_be_left_out() {
    if !common::require_root() {
        return;
    }
    const CAP_SETPCAP: u32 = 8;
    let own = own_set("CapBnd");
    let keep_all_but = |out: &[u32]| -> Vec<String> {
        caps::all()
            .into_iter()
            .map(|c| (u32::from(c.index()), c.to_string()))
            .filter(|(n, _)| own & (1 << n) != 0 && !out.contains(n))
            .map(|(_, name)| name)
            .collect()
    };
    let setpriv = ["setpriv", "--bounding-set", "-setpcap,-chown"];
    let mut b = Bundle::new(
        json!({"capabilities": {"bounding": keep_all_but(&[CAP_CHOWN, CAP_SETPCAP])}}),
        false,
    );
    let out = saferoot_under(&setpriv, &["run", "--bundle", b.path()]).ok();
    assert_eq!(
        out.caps("CapBnd"),
        own & !mask(&[CAP_CHOWN, CAP_SETPCAP]),
        "{out:#?}"
    );

    b.config["process"]["capabilities"]["bounding"] =
        json!(keep_all_but(&[CAP_CHOWN, CAP_SETPCAP, CAP_KILL]));
    b.write();
    let out = saferoot_under(&setpriv, &["run", "--bundle", b.path()]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("drop CAP_KILL (PR_CAPBSET_DROP)"),
        "{out:#?}"
    );
    assert!(!out.stdout.contains("ran=yes"), "{out:#?}");
}

/// A non-root user keeps its capabilities across exec through the ambient
/// set (they must be permitted and inheritable), with and without a user
/// namespace; a non-root user without ambient capabilities has none. The
/// OOM score is set in both: where saferoot has `CAP_SYS_RESOURCE` it is
/// lowered below 0, which in the user namespace works only because it is
/// written before that namespace exists (machines without that capability
/// set a positive score).
#[test_log::test]
fn a_non_root_user_keeps_its_ambient_capabilities() {
    if !common::require_root() {
        return;
    }
    let two = mask(&[CAP_CHOWN, CAP_KILL]);
    let oom = if own_set("CapEff") & mask(&[CAP_SYS_RESOURCE]) != 0 {
        -17
    } else {
        17
    };
    for userns in [false, true] {
        let b = Bundle::new(
            json!({
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
                "capabilities": {
                    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_CHOWN", "CAP_KILL"],
                    "permitted": ["CAP_CHOWN", "CAP_KILL"],
                    "inheritable": ["CAP_CHOWN", "CAP_KILL"],
                    "ambient": ["CAP_CHOWN", "CAP_KILL"]
                },
                "noNewPrivileges": true,
                "oomScoreAdj": oom
            }),
            userns,
        );
        let out = b.run().ok();
        let ctx = format!("userns={userns}: {out:#?}");
        assert!(out.field("Uid").starts_with("1000"), "{ctx}");
        assert!(out.field("Gid").starts_with("1000"), "{ctx}");
        assert_eq!(
            out.caps("CapBnd"),
            mask(&[CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE]),
            "{ctx}"
        );
        assert_eq!(out.caps("CapAmb"), two, "{ctx}");
        assert_eq!(out.caps("CapEff"), two, "{ctx}");
        assert_eq!(out.caps("CapPrm"), two, "{ctx}");
        assert_eq!(out.caps("CapInh"), two, "{ctx}");
        assert_eq!(out.field("NoNewPrivs"), "1", "{ctx}");
        assert_eq!(out.field("oom"), oom.to_string(), "{ctx}");
    }

    // Without ambient capabilities, a non-root program has none after
    // exec, whatever its permitted set was.
    let b = Bundle::new(
        json!({
            "user": {"uid": 1000, "gid": 1000},
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_CHOWN"],
                "permitted": ["CAP_CHOWN"]
            }
        }),
        false,
    );
    let out = b.run().ok();
    assert_eq!(out.caps("CapBnd"), two, "{out:#?}");
    assert_eq!(out.caps("CapPrm"), 0, "{out:#?}");
    assert_eq!(out.caps("CapEff"), 0);
    assert_eq!(out.caps("CapAmb"), 0);
}

/// The `process` that `runc spec` writes (tests/fixtures): the three
/// default capabilities, RLIMIT_NOFILE 1024, noNewPrivileges. Its ambient
/// set cannot be raised (the capabilities are not inheritable): they are
/// skipped, not an error, as runc does.
#[test_log::test]
fn the_runc_default_process_runs_as_runc_would() {
    if !common::require_root() {
        return;
    }
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/runc-spec-default.json");
    let spec: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    let mut process = spec["process"].clone();
    let obj = process.as_object_mut().unwrap();
    obj.remove("args");
    obj.remove("env");
    obj.remove("terminal");
    let b = Bundle::new(process, false);
    let out = b.run().ok();
    let three = mask(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    assert_eq!(out.caps("CapBnd"), three, "{out:#?}");
    assert_eq!(out.caps("CapEff"), three);
    assert_eq!(out.caps("CapPrm"), three);
    assert_eq!(out.caps("CapInh"), 0);
    assert_eq!(out.caps("CapAmb"), 0);
    assert_eq!(out.field("NoNewPrivs"), "1");
    assert_eq!(out.limit("Max open files"), ("1024".into(), "1024".into()));
}

/// Without `process.capabilities` the sets stay as they are (root keeps
/// saferoot's own bounding set), and `noNewPrivileges` defaults to off.
#[test_log::test]
fn without_capabilities_the_sets_are_unchanged() {
    if !common::require_root() {
        return;
    }
    let b = Bundle::new(json!({}), false);
    let out = b.run().ok();
    assert_eq!(out.caps("CapBnd"), own_set("CapBnd"), "{out:#?}");
    assert_eq!(out.caps("CapEff"), own_set("CapBnd"), "{out:#?}");
    assert_eq!(out.field("NoNewPrivs"), "0");
}

/// An unknown capability name is skipped with a warning that names it
/// (as runc does); the rest of the set applies.
#[test_log::test]
fn unknown_capability_names_are_skipped_with_a_warning() {
    if !common::require_root() {
        return;
    }
    let b = Bundle::new(
        json!({
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_FROBNICATE"],
                "effective": ["cap_chown"],
                "permitted": ["CAP_CHOWN", "CAP_NOT_YET_INVENTED"]
            }
        }),
        false,
    );
    let out = b.run().ok();
    assert_eq!(out.caps("CapBnd"), mask(&[CAP_CHOWN]), "{out:#?}");
    assert_eq!(out.caps("CapEff"), mask(&[CAP_CHOWN]), "{out:#?}");
    for needle in [
        "process.capabilities.bounding: unknown capability \"CAP_FROBNICATE\"",
        "process.capabilities.permitted: unknown capability \"CAP_NOT_YET_INVENTED\"",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {out:#?}");
    }
}

/// Bad values are refused while the bundle is read, naming the entry:
/// nothing starts (no output, no scratch directory), exit status 125.
#[test_log::test]
fn bad_process_security_is_refused_before_anything_starts() {
    if !common::require_root() {
        return;
    }
    let cases = [
        (
            json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}, {"type": "RLIMIT_FROB", "soft": 1, "hard": 2}]}),
            "process.rlimits[1].type: unknown rlimit type \"RLIMIT_FROB\"",
        ),
        (
            json!({"oomScoreAdj": 1001}),
            "process.oomScoreAdj: 1001 is out of range",
        ),
        (
            json!({"oomScoreAdj": -1001}),
            "process.oomScoreAdj: -1001 is out of range",
        ),
        (
            json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 20, "hard": 10}]}),
            "process.rlimits[0]: RLIMIT_NOFILE: the soft limit 20 is above the hard limit 10",
        ),
        (
            json!({"rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}, {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]}),
            "process.rlimits[1]: RLIMIT_CORE is already set by process.rlimits[0]",
        ),
        (
            json!({"capabilities": {"effective": ["CAP_KILL"], "permitted": []}}),
            "process.capabilities.effective: CAP_KILL not in process.capabilities.permitted",
        ),
    ];
    for (process, needle) in cases {
        let b = Bundle::new(process, false);
        for dry in [false, true] {
            let mut args = vec!["run", "--bundle", b.path()];
            if dry {
                args.push("--dry-run");
            }
            let out = saferoot(&args);
            assert_eq!(out.code, 125, "{needle}: {out:#?}");
            assert!(out.stderr.contains(needle), "{needle}: {out:#?}");
            assert!(
                !out.stdout.lines().any(|l| l == "ran=yes"),
                "{needle}: {out:#?}"
            );
        }
    }
}

/// The dry run shows the privileges (text and JSON) and runs nothing.
#[test_log::test]
fn dry_run_shows_the_process_security() {
    if !common::require_root() {
        return;
    }
    let b = Bundle::new(
        json!({
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": [], "permitted": []},
            "noNewPrivileges": true,
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64}],
            "oomScoreAdj": 12
        }),
        false,
    );
    let out = saferoot(&["run", "--bundle", b.path(), "--dry-run", "--json"]).ok();
    assert!(!out.stdout.lines().any(|l| l == "ran=yes"), "{out:#?}");
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    let sec = &j["process_security"];
    assert_eq!(sec["origin"], "oci", "{j:#}");
    assert_eq!(sec["no_new_privs"], true);
    assert_eq!(
        sec["capabilities"]["bounding"],
        json!(["CAP_CHOWN", "CAP_KILL"])
    );
    assert_eq!(sec["capabilities"]["ambient"], json!([]));
    assert_eq!(
        sec["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64}])
    );
    assert_eq!(sec["oom_score_adj"], 12);
    assert_eq!(j["no_new_privileges"], true);
    let text = saferoot(&["run", "--bundle", b.path(), "--dry-run"]).ok();
    for needle in [
        "bounding CAP_CHOWN,CAP_KILL; effective none",
        "RLIMIT_NOFILE 64/64",
        "12 (oom_score_adj)",
        "no_new_privs",
    ] {
        assert!(text.stdout.contains(needle), "{needle}: {text:#?}");
    }
}
