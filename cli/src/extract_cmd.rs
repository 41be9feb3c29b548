//! `saferoot extract`: archives unpacked into a directory through
//! [`saferoot::Root::unpack`], confined to it.

use saferoot::archive::{UnpackOptions, UnpackSummary, Whiteouts};
use saferoot::Root;
use serde::Serialize;

use crate::args::{ExtractArgs, WhiteoutsArg};
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

/// Runs `saferoot extract`.
pub fn extract(args: &ExtractArgs) -> Result<(), CliError> {
    let root = Root::open(&args.into)
        .map_err(|e| CliError::setup(format!("open {}: {e}", shown(&args.into))))?;
    let mut opts = UnpackOptions {
        whiteouts: match args.whiteouts {
            WhiteoutsArg::None => Whiteouts::None,
            WhiteoutsArg::Oci => Whiteouts::Oci,
            WhiteoutsArg::Overlay => Whiteouts::Overlay,
        },
        xattrs: args.xattrs,
        ..UnpackOptions::default()
    };
    if args.same_owner {
        opts.same_owner = true;
    }
    if args.no_same_owner {
        opts.same_owner = false;
    }
    if args
        .archives
        .iter()
        .filter(|a| a.as_os_str() == "-")
        .count()
        > 1
    {
        return Err(CliError::usage("stdin (-) can be given only once"));
    }
    let mut report = Report {
        into: args.into.display().to_string(),
        archives: Vec::new(),
    };
    for a in &args.archives {
        let summary = if a.as_os_str() == "-" {
            root.unpack(std::io::stdin().lock(), &opts)
        } else {
            let f = std::fs::File::open(a)
                .map_err(|e| CliError::setup(format!("open {}: {e}", shown(a))))?;
            root.unpack(std::io::BufReader::with_capacity(1 << 20, f), &opts)
        }
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
