//! `saferoot audit` against what a reviewer needs it to catch (issue 10):
//! a corpus of hostile bundles, one per finding kind, each checked for the
//! exact finding ids and severities; the default configs of runc, crun
//! (and their rootless variants), docker and podman held clean at medium
//! and above; the promise that whatever `plan` refuses is reported at high
//! or critical; SARIF and escaped human output; and live audits of a
//! sandbox saferoot built (clean) and of a deliberately leaky namespace
//! (every leak flagged).
//!
//! The command is run as a program (`CARGO_BIN_EXE_saferoot`); bundles
//! are written to temporary directories from the fixtures in
//! `tests/fixtures` and JSON written here.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_saferoot");

const RUNC_DEFAULT: &str = include_str!("../../tests/fixtures/runc-spec-default.json");
const CRUN_DEFAULT: &str = include_str!("../../tests/fixtures/crun-spec-default.json");
const RUNC_ROOTLESS: &str = include_str!("../../tests/fixtures/audit/runc-spec-rootless.json");
const CRUN_ROOTLESS: &str = include_str!("../../tests/fixtures/audit/crun-spec-rootless.json");
const DOCKER_DEFAULT: &str = include_str!("../../tests/fixtures/audit/docker-default.json");
const PODMAN_DEFAULT: &str = include_str!("../../tests/fixtures/audit/podman-default.json");

/// What the command did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}

fn saferoot<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Out {
    let out = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run saferoot");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The findings of a report as `(id, severity, path)`.
fn triples(report: &Value) -> BTreeSet<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            for field in ["id", "severity", "path", "message", "why", "fix"] {
                assert!(
                    f[field].as_str().is_some_and(|s| !s.is_empty()),
                    "empty {field}: {f:#}"
                );
            }
            assert!(f["cve"].is_null() || f["cve"].is_string(), "{f:#}");
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const RANK: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn rank(sev: &str) -> usize {
    RANK.iter()
        .position(|s| *s == sev)
        .unwrap_or_else(|| panic!("unknown severity {sev}"))
}

/// The findings at `min` or above.
fn at_least(report: &Value, min: &str) -> BTreeSet<(String, String, String)> {
    triples(report)
        .into_iter()
        .filter(|(_, s, _)| rank(s) >= rank(min))
        .collect()
}

/// A bundle: a rootfs with the usual directories and a config.json.
struct Bundle {
    dir: TempDir,
    config: Value,
}

impl Bundle {
    fn new(config_text: &str) -> Bundle {
        let dir = TempDir::new();
        for d in ["proc", "sys", "dev", "etc", "mnt", "tmp", "run", "var"] {
            std::fs::create_dir_all(dir.join("rootfs").join(d)).unwrap();
        }
        let mut config: Value = serde_json::from_str(config_text).unwrap();
        config["root"]["path"] = json!("rootfs");
        let b = Bundle { dir, config };
        b.write();
        b
    }

    /// runc's default spec.
    fn runc() -> Bundle {
        Bundle::new(RUNC_DEFAULT)
    }

    fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    fn rootfs(&self, p: &str) -> PathBuf {
        self.dir.join("rootfs").join(p)
    }

    fn push_mount(&mut self, m: Value) {
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self.write();
    }

    fn audit_with(&self, extra: &[&str]) -> Out {
        let mut args = vec!["audit", "--bundle", self.dir.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        saferoot(&args)
    }

    fn audit(&self) -> (i32, Value) {
        let out = self.audit_with(&["--json"]);
        assert!(out.code == 0 || out.code == 1, "{out:#?}");
        (out.code, out.json())
    }
}

fn t(id: &str, sev: &str, path: &str) -> (String, String, String) {
    (id.to_string(), sev.to_string(), path.to_string())
}

/// A hostile bundle: a name, how runc's default spec is changed, and the
/// exact findings at medium and above that it must get.
struct Hostile {
    name: &'static str,
    make: Box<dyn Fn(&mut Bundle)>,
    want: Vec<(String, String, String)>,
}

fn hostile(
    name: &'static str,
    make: impl Fn(&mut Bundle) + 'static,
    want: &[(&str, &str, &str)],
) -> Hostile {
    Hostile {
        name,
        make: Box::new(make),
        want: want.iter().map(|(a, b, c)| t(a, b, c)).collect(),
    }
}

fn drop_namespace(b: &mut Bundle, kind: &str) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != kind);
}

fn corpus() -> Vec<Hostile> {
    vec![
        hostile(
            "sysctl kernel.core_pattern",
            |b| {
                b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/tmp/evil %p"});
            },
            &[(
                "sysctl-host-global",
                "critical",
                "/proc/sys/kernel/core_pattern",
            )],
        ),
        hostile(
            "net sysctl without a network namespace",
            |b| {
                drop_namespace(b, "network");
                b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            },
            &[(
                "sysctl-without-namespace",
                "high",
                "/proc/sys/net/ipv4/ip_forward",
            )],
        ),
        hostile(
            "bind source sent to the host's / by an image symlink",
            |b| {
                std::os::unix::fs::symlink("/", b.rootfs("evil")).unwrap();
                b.push_mount(json!({"destination": "/mnt", "type": "bind", "source": "rootfs/evil", "options": ["rbind", "ro"]}));
            },
            &[("bind-source-escapes-root", "critical", "/mnt")],
        ),
        hostile(
            "rw bind of the host's /proc",
            |b| {
                b.push_mount(json!({"destination": "/hostproc", "type": "bind", "source": "/proc", "options": ["rbind", "rw"]}));
            },
            &[("host-proc-bind", "critical", "/hostproc")],
        ),
        hostile(
            "rw bind of the host's /proc over the container's /proc",
            |b| {
                b.config["mounts"][0] = json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "rw"]});
                b.write();
            },
            &[("host-proc-bind", "critical", "/proc")],
        ),
        hostile(
            "second procfs outside /proc",
            |b| {
                b.push_mount(json!({"destination": "/mnt/proc2", "type": "proc", "source": "proc", "options": ["nosuid", "nodev", "noexec"]}));
            },
            &[("proc-outside-proc", "critical", "/mnt/proc2")],
        ),
        hostile(
            "devtmpfs",
            |b| {
                b.push_mount(json!({"destination": "/mnt/dev", "type": "devtmpfs", "source": "devtmpfs", "options": ["nosuid"]}));
            },
            &[("devtmpfs-mount", "critical", "/mnt/dev")],
        ),
        hostile(
            "host disk mounted read-write",
            |b| {
                // A block device node of the host's disk numbers, made here
                // so that the test does not depend on the machine's disks.
                let disk = b.dir.join("vda");
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &disk,
                    rustix::fs::FileType::BlockDevice,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(254, 0),
                )
                .unwrap();
                b.push_mount(json!({"destination": "/mnt/disk", "type": "ext4", "source": disk, "options": ["rw"]}));
            },
            &[("host-block-device-mount", "critical", "/mnt/disk")],
        ),
        hostile(
            "overlay whose lowerdir is the host's root",
            |b| {
                b.push_mount(json!({"destination": "/mnt/ov", "type": "overlay", "source": "overlay", "options": ["lowerdir=/"]}));
            },
            &[("overlay-host-layer", "critical", "/mnt/ov")],
        ),
        hostile(
            "block device node of the host disk, mode 0666",
            |b| {
                b.config["linux"]["devices"] = json!([
                    {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 438, "uid": 0, "gid": 0},
                    {"path": "/dev/vda", "type": "b", "major": 254, "minor": 0, "fileMode": 438}
                ]);
            },
            &[
                ("device-block", "critical", "/dev/sda"),
                ("device-block", "critical", "/dev/vda"),
            ],
        ),
        hostile(
            "rw cgroup mount of the host hierarchy",
            |b| {
                b.config["mounts"][6] = json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "rw"]});
                b.write();
            },
            &[("cgroup-writable", "critical", "/sys/fs/cgroup")],
        ),
        hostile(
            "rw bind of the host's /sys/fs/cgroup",
            |b| {
                b.push_mount(json!({"destination": "/mnt/cg", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "rw"]}));
            },
            &[("cgroup-writable", "critical", "/mnt/cg")],
        ),
        hostile(
            "rw bind of the host's /sys",
            |b| {
                b.push_mount(json!({"destination": "/mnt/sys", "type": "bind", "source": "/sys", "options": ["rbind", "rw"]}));
            },
            &[("sysfs-writable", "high", "/mnt/sys")],
        ),
        hostile(
            "the host's /",
            |b| {
                b.push_mount(json!({"destination": "/host", "type": "bind", "source": "/", "options": ["rbind"]}));
            },
            &[("host-root-bind", "critical", "/host")],
        ),
        hostile(
            "a container runtime's socket",
            |b| {
                b.push_mount(json!({"destination": "/var/run/docker.sock", "type": "bind", "source": "/var/run/docker.sock", "options": ["bind", "ro"]}));
            },
            &[("runtime-socket-bind", "critical", "/var/run/docker.sock")],
        ),
        hostile(
            "/dev/mem",
            |b| {
                b.config["linux"]["devices"] =
                    json!([{"path": "/dev/mem", "type": "c", "major": 1, "minor": 1}]);
            },
            &[("device-memory", "critical", "/dev/mem")],
        ),
        hostile(
            "a destination that an image symlink sends onto the root",
            |b| {
                std::os::unix::fs::symlink("/", b.rootfs("tmp2")).unwrap();
                b.push_mount(json!({"destination": "/tmp2", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
            },
            &[
                ("mount-over-root", "high", "/"),
                ("dest-through-symlink", "high", "/tmp2"),
            ],
        ),
        hostile(
            "a destination that an image symlink sends into /proc",
            |b| {
                std::os::unix::fs::symlink("proc", b.rootfs("p")).unwrap();
                b.push_mount(json!({"destination": "/p/sys", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
            },
            &[
                // Named where it really lands.
                ("proc-mount-not-allowed", "high", "/proc/sys"),
                ("dest-through-symlink", "critical", "/p/sys"),
            ],
        ),
        hostile(
            "writable /proc/sysrq-trigger",
            |b| {
                b.config["linux"]["readonlyPaths"] =
                    json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"]);
            },
            &[("readonly-path-missing", "high", "/proc/sysrq-trigger")],
        ),
        hostile(
            "rshared root",
            |b| {
                b.config["linux"]["rootfsPropagation"] = json!("rshared");
            },
            &[("shared-propagation", "high", "/")],
        ),
    ]
}

#[test_log::test]
fn hostile_bundles_get_exactly_their_findings() {
    if !common::require_root() {
        return;
    }
    let (code, clean) = Bundle::runc().audit();
    assert_eq!(code, 0);
    assert!(at_least(&clean, "medium").is_empty(), "{clean:#}");
    let mut failures = Vec::new();
    for h in corpus() {
        let mut b = Bundle::runc();
        (h.make)(&mut b);
        b.write();
        let (code, report) = b.audit();
        let got = at_least(&report, "medium");
        let want: BTreeSet<_> = h.want.iter().cloned().collect();
        if got != want {
            failures.push(format!(
                "{}: want {want:?}\n  got {got:?}\n  {:#}",
                h.name, report["findings"]
            ));
        }
        // Each is high or critical: the default --fail-on high fails it.
        if code != 1 || report["failed"] != true {
            failures.push(format!("{}: exit status {code}, not 1", h.name));
        }
        // The table says so too, and the exit status is the same.
        let out = b.audit_with(&[]);
        assert_eq!(out.code, 1, "{}: {out:#?}", h.name);
        for (id, _, _) in &want {
            assert!(out.stdout.contains(id.as_str()), "{}: {out:#?}", h.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test_log::test]
fn cves_and_entries_name_the_class_and_the_config_line() {
    if !common::require_root() {
        return;
    }
    let mut b = Bundle::runc();
    b.config["mounts"][6] = json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["rw"]});
    b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/x"});
    b.write();
    let (_, r) = b.audit();
    let f = |id: &str| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {r:#}"))
            .clone()
    };
    assert_eq!(f("cgroup-writable")["cve"], "CVE-2022-0492");
    assert_eq!(f("cgroup-writable")["entry"], "mounts[6]");
    assert_eq!(
        f("sysctl-host-global")["entry"],
        "linux.sysctl[\"kernel.core_pattern\"]"
    );
    assert!(f("sysctl-host-global")["message"]
        .as_str()
        .unwrap()
        .contains("kernel.core_pattern"));
}

#[test_log::test]
fn runtime_defaults_have_no_finding_at_medium_or_above() {
    if !common::require_root() {
        return;
    }
    for (name, text) in [
        ("runc spec", RUNC_DEFAULT),
        ("crun spec", CRUN_DEFAULT),
        ("runc spec --rootless", RUNC_ROOTLESS),
        ("crun spec --rootless", CRUN_ROOTLESS),
        ("docker", DOCKER_DEFAULT),
        ("podman", PODMAN_DEFAULT),
    ] {
        let b = Bundle::new(text);
        let out = b.audit_with(&["--json", "--fail-on", "medium"]);
        assert_eq!(out.code, 0, "{name}: {out:#?}");
        let r = out.json();
        assert!(at_least(&r, "medium").is_empty(), "{name}: {r:#}");
        // Where saferoot's own defaults differ (runc and crun do not mask
        // the powercap counters), that is info.
        let powercap = t(
            "masked-path-missing",
            "info",
            "/sys/devices/virtual/powercap",
        );
        let expect_powercap = !matches!(name, "docker" | "podman");
        assert_eq!(
            triples(&r).contains(&powercap),
            expect_powercap,
            "{name}: {r:#}"
        );
    }
}

/// Specs that `saferoot::rootfs::plan` refuses, each reported at high or
/// critical (issue 10: everything plan refuses is such a finding).
#[test_log::test]
fn everything_plan_refuses_is_reported_high_or_critical() {
    if !common::require_root() {
        return;
    }
    type Make = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "host-global sysctl",
            Box::new(|b: &mut Bundle| {
                b.config["linux"]["sysctl"] = json!({"vm.overcommit_memory": "1"});
            }),
        ),
        (
            "ipc sysctl without an ipc namespace",
            Box::new(|b: &mut Bundle| {
                drop_namespace(b, "ipc");
                b.config["linux"]["sysctl"] = json!({"kernel.shmmax": "1"});
            }),
        ),
        (
            "tmpfs on /",
            Box::new(|b: &mut Bundle| {
                b.push_mount(json!({"destination": "/", "type": "tmpfs", "source": "tmpfs"}));
            }),
        ),
        (
            "tmpfs in /proc/sys",
            Box::new(|b: &mut Bundle| {
                b.push_mount(
                    json!({"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"}),
                );
            }),
        ),
        (
            "tmpfs on /proc",
            Box::new(|b: &mut Bundle| {
                b.push_mount(json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}));
            }),
        ),
        (
            "proc elsewhere",
            Box::new(|b: &mut Bundle| {
                b.push_mount(json!({"destination": "/x", "type": "proc", "source": "proc"}));
            }),
        ),
        (
            "rw cgroup2 without a cgroup namespace",
            Box::new(|b: &mut Bundle| {
                b.push_mount(
                    json!({"destination": "/mnt", "type": "cgroup2", "source": "cgroup2"}),
                );
            }),
        ),
        (
            "tmpcopyup on a proc mount",
            Box::new(|b: &mut Bundle| {
                b.config["mounts"][0]["options"] = json!(["tmpcopyup"]);
                b.write();
            }),
        ),
        (
            "device path with ..",
            Box::new(|b: &mut Bundle| {
                b.config["linux"]["devices"] =
                    json!([{"path": "/dev/../mnt/null", "type": "c", "major": 1, "minor": 3}]);
            }),
        ),
    ];
    for (name, make) in cases {
        let mut b = Bundle::runc();
        make(&mut b);
        b.write();
        // plan refuses it...
        let (_, spec) = saferoot::oci::load_bundle(b.dir.path()).unwrap();
        let e = saferoot::rootfs::plan(&spec).unwrap_err();
        assert_eq!(e.kind(), saferoot::ErrorKind::InvalidInput, "{name}: {e}");
        // ...and the audit reports it at high or critical.
        let (code, r) = b.audit();
        assert!(!at_least(&r, "high").is_empty(), "{name} ({e}): {r:#}");
        assert_eq!(code, 1, "{name}");
    }
}

#[test_log::test]
fn sarif_output_is_sarif_2_1_0() {
    if !common::require_root() {
        return;
    }
    let mut b = Bundle::runc();
    b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/x"});
    b.push_mount(json!({"destination": "/mnt/dev", "type": "devtmpfs", "source": "devtmpfs"}));
    let out = b.audit_with(&["--format", "sarif"]);
    assert_eq!(out.code, 1, "{out:#?}");
    let log = out.json();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "saferoot");
    assert!(driver["version"].is_string());
    let rules: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "devtmpfs-mount",
        "sysctl-host-global",
        "host-proc-bind",
        "plan-refused",
    ] {
        assert!(rules.contains(&id), "{id} not among {rules:?}");
    }
    let results = run["results"].as_array().unwrap();
    let ids: BTreeSet<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains("devtmpfs-mount") && ids.contains("sysctl-host-global"),
        "{ids:?}"
    );
    let config_uri = format!("file://{}", b.dir.join("config.json").display());
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i], r["ruleId"]);
        assert!(["error", "warning", "note", "none"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0];
        assert_eq!(
            loc["physicalLocation"]["artifactLocation"]["uri"],
            config_uri.as_str()
        );
        assert!(loc["logicalLocations"][0]["fullyQualifiedName"].is_string());
    }
    let dev = results
        .iter()
        .find(|r| r["ruleId"] == "devtmpfs-mount")
        .unwrap();
    assert_eq!(dev["level"], "error");
    // --json and --format cannot both be given.
    assert_eq!(b.audit_with(&["--json", "--format", "sarif"]).code, 2);
    // A live audit gives SARIF too, with logical locations only.
    let out = saferoot(&[
        "audit",
        "--self",
        "--format",
        "sarif",
        "--fail-on",
        "critical",
    ]);
    let log = out.json();
    assert_eq!(log["version"], "2.1.0");
    for r in log["runs"][0]["results"].as_array().unwrap() {
        assert!(r["locations"][0].get("physicalLocation").is_none(), "{r:#}");
    }
}

#[test_log::test]
fn human_output_never_prints_control_bytes_from_the_container() {
    if !common::require_root() {
        return;
    }
    let mut b = Bundle::runc();
    let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2J\n\u{9b}31m\u{202e}";
    std::os::unix::fs::symlink(format!("/{evil}"), b.rootfs("m")).unwrap();
    b.push_mount(json!({"destination": format!("/m/{evil}"), "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
    b.push_mount(
        json!({"destination": format!("/mnt/{evil}"), "type": "devtmpfs", "source": "devtmpfs"}),
    );
    let out = b.audit_with(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(
            !out.stdout.contains(bad),
            "{bad:?} reached the terminal: {:?}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("\\x1b]0;owned\\x07"), "{}", out.stdout);
    // Every finding line stays one line.
    assert!(out
        .stdout
        .lines()
        .all(|l| !l.contains("owned") || l.contains("\\x1b")));
    // JSON holds the same escaped text (exact, and safe after `jq -r`).
    let r = b.audit().1;
    assert!(r["findings"].as_array().unwrap().iter().any(|f| f["path"]
        .as_str()
        .unwrap()
        .contains("x\\x1b]0;owned\\x07\\x1b[2J\\n")));
}

#[test_log::test]
fn exit_status_follows_fail_on() {
    if !common::require_root() {
        return;
    }
    let mut b = Bundle::runc();
    b.config["linux"]["maskedPaths"] = json!([]);
    b.write();
    // Medium findings (kcore, keys, /sys/firmware) only.
    let medium = at_least(&b.audit().1, "medium");
    assert!(medium.iter().all(|(_, s, _)| s == "medium") && !medium.is_empty());
    assert_eq!(b.audit_with(&[]).code, 0);
    assert_eq!(b.audit_with(&["--fail-on", "medium"]).code, 1);
    assert_eq!(b.audit_with(&["--fail-on", "critical"]).code, 0);
    b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/x"});
    b.write();
    assert_eq!(b.audit_with(&["--fail-on", "critical"]).code, 1);
    for args in [
        &["audit", "--bundle", "/nonexistent-saferoot"][..],
        &["audit", "--self", "--format", "xml"][..],
    ] {
        let out = saferoot(args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(!out.stderr.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Live audits

/// The pid of the process whose command line is exactly `argv`, waiting
/// for it to appear.
fn find_process(argv: &[&str]) -> i32 {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want) {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no process {argv:?}");
}

/// A live audit of saferoot's own default sandbox (with and without a user
/// namespace): its /dev/null masks, its read-only /proc paths and its /dev
/// are clean at medium and above.
#[test_log::test]
fn live_audit_of_a_sandbox_saferoot_built_is_clean() {
    if !common::require_root() {
        return;
    }
    for (n, extra) in [(0, &[][..]), (1, &["--unshare-user"][..])] {
        // A unique command line to find the sandboxed program by.
        let secs = format!("{}.{n}{}", 300 + n, std::process::id() % 1000);
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sleep", &secs]);
        // Its scratch directory goes into a TMPDIR of the test's own, which
        // must be empty again once saferoot has ended (SIGTERM: saferoot
        // ends the sandbox and cleans up).
        let tmp = TempDir::new();
        let mut child = Command::new(EXE)
            .args(&args)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = find_process(&["sleep", &secs]);
        let table = saferoot(&["mounts", "--pid", &pid.to_string(), "--json"]).json();
        let out = saferoot(&[
            "audit",
            "--pid",
            &pid.to_string(),
            "--json",
            "--fail-on",
            "medium",
        ]);
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        );
        let _ = child.wait();
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "saferoot left its scratch directory behind"
        );
        let r = out.json();
        assert_eq!(r["target"]["kind"], "pid");
        assert_eq!(out.code, 0, "{extra:?}: {r:#}");
        assert!(at_least(&r, "medium").is_empty(), "{extra:?}: {r:#}");
        // The sandbox has masks of both shapes, so the audit did look at
        // them: a null device on a file, a read-only tmpfs on a directory.
        let text = table.to_string();
        assert!(text.contains("/proc/sys"), "{table:#}");
        let masks = triples(&r)
            .into_iter()
            .filter(|(_, _, p)| p.starts_with("/proc/") || p.starts_with("/dev/"))
            .collect::<Vec<_>>();
        assert!(masks.is_empty(), "{extra:?}: {masks:?}");
    }
}

fn attach(m: saferoot::Mount, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let target = saferoot::Root::open(dir).unwrap().handle().unwrap();
    m.attach(&target).unwrap().forget();
}

fn fresh(fs: &str, attrs: saferoot::MountAttr) -> saferoot::Mount {
    saferoot::Mount::fs(fs)
        .source(fs)
        .attrs(attrs)
        .mount()
        .unwrap()
}

/// A cgroup v1 hierarchy of the host, if it has one.
fn a_cgroup_v1_hierarchy() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        (right.split(' ').next() == Some("cgroup")).then(|| PathBuf::from(point))
    })
}

/// A namespace made leaky on purpose (a rw bind of /proc/sys, a devtmpfs,
/// a shared mount, a writable procfs and sysfs, a writable cgroup
/// hierarchy, a host block device in a /dev, a host disk bound
/// read-write): `audit --self` from inside it flags each leak, and nothing
/// about the clean mount and the masks of runc's and crun's shapes.
#[test_log::test]
fn live_audit_flags_every_leak_of_a_leaky_namespace() {
    use saferoot::MountAttr as A;
    let d = TempDir::new();
    let d2 = d.path().to_path_buf();
    let host_disk = rustix::fs::stat(d.path())
        .map(|s| rustix::fs::major(s.st_dev) != 0)
        .unwrap_or(false);
    common::in_mount_ns(move || {
        let d = d2.as_path();
        let p = |x: &str| d.join(x).display().to_string();
        // rw bind of the host's /proc/sys
        attach(
            saferoot::Mount::clone_tree("/proc/sys", saferoot::mount::Scope::Mount).unwrap(),
            &d.join("psys"),
        );
        // devtmpfs
        attach(fresh("devtmpfs", A::NOSUID), &d.join("devtmpfs"));
        // a shared tmpfs
        let shared = fresh("tmpfs", A::NOSUID | A::NODEV);
        shared
            .set_propagation(saferoot::Propagation::Shared, saferoot::mount::Scope::Mount)
            .unwrap();
        attach(shared, &d.join("shared"));
        // a writable procfs and sysfs
        attach(
            fresh("proc", A::NOSUID | A::NODEV | A::NOEXEC),
            &d.join("proc"),
        );
        attach(
            fresh("sysfs", A::NOSUID | A::NODEV | A::NOEXEC),
            &d.join("sys"),
        );
        // a writable cgroup hierarchy (v1 when the host has one)
        let (cg, cg_sev) = match a_cgroup_v1_hierarchy() {
            Some(h) => (h, "critical"),
            None => (PathBuf::from("/sys/fs/cgroup"), "medium"),
        };
        attach(
            saferoot::Mount::clone_tree(&cg, saferoot::mount::Scope::Mount).unwrap(),
            &d.join("cg"),
        );
        // a /dev with a block device of the host's in it
        attach(fresh("tmpfs", A::NOSUID), &d.join("dev"));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("dev/loop0"),
            rustix::fs::FileType::BlockDevice,
            rustix::fs::Mode::from_raw_mode(0o660),
            rustix::fs::makedev(7, 0),
        )
        .unwrap();
        // masks of runc's and crun's shapes on the writable procfs: the
        // container's own /dev/null (a tmpfs node) bound on a file, a
        // read-only tmpfs on a directory
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("dev/null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        let proc_root = saferoot::Root::open(d.join("proc")).unwrap();
        saferoot::Mount::clone_tree(d.join("dev/null"), saferoot::mount::Scope::Mount)
            .unwrap()
            .attach(proc_root.resolve("/keys").unwrap())
            .unwrap()
            .forget();
        fresh("tmpfs", A::RDONLY | A::NOSUID | A::NODEV | A::NOEXEC)
            .attach(proc_root.resolve("/fs").unwrap())
            .unwrap()
            .forget();
        drop(proc_root);
        // a host disk's directory bound read-write
        std::fs::create_dir(d.join("src")).unwrap();
        attach(
            saferoot::Mount::clone_tree(d.join("src"), saferoot::mount::Scope::Mount).unwrap(),
            &d.join("host"),
        );
        // and one clean mount
        attach(
            fresh("tmpfs", A::NOSUID | A::NODEV | A::RDONLY),
            &d.join("clean"),
        );

        let out = saferoot(&["audit", "--self", "--json", "--fail-on", "critical"]);
        let r = out.json();
        let got: BTreeSet<_> = triples(&r)
            .into_iter()
            .filter(|(_, _, path)| path.starts_with(d.to_str().unwrap()))
            .collect();
        let mut want = vec![
            t("proc-sys-writable", "high", &p("psys")),
            t("devtmpfs-mount", "critical", &p("devtmpfs")),
            t("shared-mount", "medium", &p("shared")),
            t("proc-sys-writable", "high", &p("proc/sys")),
            t("sysfs-writable", "high", &p("sys")),
            t("cgroup-writable", cg_sev, &p("cg")),
            t("device-block", "critical", &p("dev/loop0")),
        ];
        if host_disk {
            want.push(t("host-filesystem", "high", &p("host")));
        }
        for w in &want {
            assert!(got.contains(w), "{w:?} missing from {got:#?}");
        }
        for quiet in [p("clean"), p("proc/keys"), p("proc/fs"), p("dev/null")] {
            assert!(
                !got.iter().any(|(_, _, path)| *path == quiet),
                "{quiet} raised findings: {got:#?}"
            );
        }
        assert_eq!(out.code, 1, "critical leaks fail --fail-on critical");
    });
}

/// The library's default masks are what the CLI's default sandbox uses and
/// what the static audit expects: one list (issue 10, "no rule written
/// twice").
#[test_log::test]
fn default_masks_are_one_list() {
    if !common::require_root() {
        return;
    }
    let out = saferoot(&["run", "--dry-run", "--json", "--", "true"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let plan = out.json().to_string();
    for d in saferoot::rootfs::policy::DEFAULT_MASKED_PATHS
        .iter()
        .chain(saferoot::rootfs::policy::DEFAULT_READONLY_PATHS)
        .filter(|d| d.path.starts_with("/proc/"))
    {
        assert!(
            plan.contains(d.path),
            "{} not in the default sandbox: {plan}",
            d.path
        );
    }
    // A bundle that masks exactly the library's list gets no
    // masked-path-missing finding at all.
    let mut b = Bundle::runc();
    b.config["linux"]["maskedPaths"] = json!(saferoot::rootfs::policy::DEFAULT_MASKED_PATHS
        .iter()
        .map(|d| d.path)
        .collect::<Vec<_>>());
    b.write();
    assert!(!triples(&b.audit().1)
        .iter()
        .any(|(id, _, _)| id == "masked-path-missing"));
}
