//! `saferoot extract`: archives unpacked into a directory through
//! [`saferoot::Root::unpack_with_progress`], confined to it, with a
//! progress bar on a terminal.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use saferoot::archive::{
    IdMap, UnmappedIds, UnpackOptions, UnpackProgress, UnpackSummary, Whiteouts,
};
use saferoot::Root;
use serde::Serialize;

use crate::args::{ExtractArgs, UnmappedIdsArg, WhiteoutsArg};
use crate::errors::{shown, CliError};
use crate::output::{print, print_json};

#[derive(Debug, Serialize)]
struct ArchiveReport {
    archive: String,
    #[serde(flatten)]
    summary: UnpackSummary,
}

#[derive(Debug, Serialize)]
struct Report {
    into: String,
    archives: Vec<ArchiveReport>,
}

/// How long an archive may take before a progress bar appears.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// The unpack options the flags ask for.
fn options(args: &ExtractArgs) -> Result<UnpackOptions, CliError> {
    let whiteouts = match args.whiteouts {
        Some(w) => w,
        None if args.oci_layer => WhiteoutsArg::Oci,
        None => WhiteoutsArg::None,
    };
    let map = |ranges: &[saferoot::archive::IdRange], what: &str| {
        IdMap::new(ranges).map_err(|e| CliError::usage(format!("--map-{what}: {e}")))
    };
    let (uid_map, gid_map) = if args.map_ids.is_empty() {
        (map(&args.map_uids, "uids")?, map(&args.map_gids, "gids")?)
    } else {
        let m = map(&args.map_ids, "ids")?;
        (m, m)
    };
    let mut opts = UnpackOptions {
        whiteouts: match whiteouts {
            WhiteoutsArg::None => Whiteouts::None,
            WhiteoutsArg::Oci => Whiteouts::Oci,
            WhiteoutsArg::Overlay => Whiteouts::Overlay,
        },
        xattrs: args.xattrs || args.oci_layer,
        uid_map,
        gid_map,
        unmapped_ids: match args.unmapped_ids {
            UnmappedIdsArg::Error => UnmappedIds::Error,
            UnmappedIdsArg::Overflow => UnmappedIds::Overflow,
        },
        ..UnpackOptions::default()
    };
    if args.same_owner || args.oci_layer || !uid_map.is_identity() || !gid_map.is_identity() {
        opts.same_owner = true;
    }
    if args.no_same_owner {
        opts.same_owner = false;
    }
    Ok(opts)
}

/// Runs `saferoot extract`.
pub fn extract(args: &ExtractArgs) -> Result<(), CliError> {
    let opts = options(args)?;
    if args
        .archives
        .iter()
        .filter(|a| a.as_os_str() == "-")
        .count()
        > 1
    {
        return Err(CliError::usage("stdin (-) can be given only once"));
    }
    let root = Root::open(&args.into)
        .map_err(|e| CliError::setup(format!("open {}: {e}", shown(&args.into))))?;
    // A progress bar only for a person watching: stderr a terminal, and
    // no machine-read output.
    let show = !args.json && std::io::stderr().is_terminal();
    let mut report = Report {
        into: args.into.display().to_string(),
        archives: Vec::new(),
    };
    for a in &args.archives {
        // A file (or stdin redirected from one) holding a plain archive is
        // read with pread and its large contents copied in the kernel.
        let file = if a.as_os_str() == "-" {
            None
        } else {
            Some(
                std::fs::File::open(a)
                    .map_err(|e| CliError::setup(format!("open {}: {e}", shown(a))))?,
            )
        };
        let stdin = std::io::stdin();
        let fd = match &file {
            Some(f) => f.as_fd(),
            None => stdin.as_fd(),
        };
        let total = rustix::fs::fstat(fd)
            .ok()
            .filter(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
            .and_then(|st| u64::try_from(st.st_size).ok());
        let progress = UnpackProgress::new();
        let summary = with_progress(show, a, total, &progress, || {
            root.unpack_fd(fd, &opts, &progress)
        })
        .map_err(|e| CliError::setup(format!("extract {}: {e}", shown(a))))?;
        report.archives.push(ArchiveReport {
            archive: a.display().to_string(),
            summary,
        });
    }
    if args.json {
        return print_json(&report);
    }
    for a in &report.archives {
        let s = &a.summary;
        print(&format!(
            "{}: {} entries ({} files, {} directories, {} symlinks, {} hard links, {} nodes, \
             {} whiteouts, {} skipped), {} bytes\n",
            a.archive,
            s.entries,
            s.files,
            s.dirs,
            s.symlinks,
            s.hardlinks,
            s.nodes,
            s.whiteouts,
            s.skipped,
            s.bytes
        ));
    }
    Ok(())
}

/// Runs `f` (an unpack updating `progress`); when `show`, a progress bar
/// is drawn on stderr once it has taken [`PROGRESS_AFTER`]: bytes of the
/// archive read (of `total`, when known) and entries extracted. The bar is
/// cleared when `f` returns.
fn with_progress<T>(
    show: bool,
    archive: &Path,
    total: Option<u64>,
    progress: &UnpackProgress,
    f: impl FnOnce() -> T,
) -> T {
    if !show {
        return f();
    }
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            if stopped.recv_timeout(PROGRESS_AFTER) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let (bar, template) = match total {
                Some(n) => (
                    ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}), {msg}",
                ),
                None => (
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                    "{spinner} {prefix} {bytes} read ({binary_bytes_per_sec}), {msg}",
                ),
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("extract {}", archive.display()));
            loop {
                bar.set_position(progress.archive_bytes());
                bar.set_message(format!("{} entries", progress.entries()));
                bar.tick();
                if stopped.recv_timeout(Duration::from_millis(100))
                    != Err(RecvTimeoutError::Timeout)
                {
                    break;
                }
            }
            bar.finish_and_clear();
        });
        let r = f();
        drop(stop);
        r
    })
}
