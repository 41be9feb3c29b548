//! `saferoot cp`: copies into and out of a directory through
//! [`saferoot::Root::copy_in`] and [`saferoot::Root::copy_out`], with
//! `docker cp`'s rules.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use saferoot::archive::{CopyOptions, CopySummary};
use saferoot::Root;
use serde::Serialize;

use crate::args::CpArgs;
use crate::errors::{shown, CliError};
use crate::output::{print, print_json};

#[derive(Debug, Serialize)]
struct Report {
    /// `into` or `from`.
    direction: &'static str,
    /// The directory (the root).
    dir: String,
    src: String,
    dest: String,
    #[serde(flatten)]
    summary: CopySummary,
}

/// An in-root path as `docker cp` takes it: a missing leading `/` is
/// added; the rest (a trailing `/` or `/.`) is kept as given.
fn in_root(p: &Path) -> PathBuf {
    let b = p.as_os_str().as_bytes();
    if b.starts_with(b"/") {
        return p.to_path_buf();
    }
    let mut v = Vec::with_capacity(b.len() + 1);
    v.push(b'/');
    v.extend_from_slice(b);
    PathBuf::from(OsString::from_vec(v))
}

/// Runs `saferoot cp`.
pub fn cp(args: &CpArgs) -> Result<(), CliError> {
    let (direction, dir) = match (&args.into, &args.from) {
        (Some(d), None) => ("into", d),
        (None, Some(d)) => ("from", d),
        _ => {
            return Err(CliError::usage(
                "give exactly one of --into DIR and --from DIR",
            ))
        }
    };
    if args.src.as_os_str().is_empty() || args.dest.as_os_str().is_empty() {
        return Err(CliError::usage("SRC and DEST must not be empty"));
    }
    let root = Root::open(dir).map_err(|e| CliError::setup(format!("open {}: {e}", shown(dir))))?;
    let opts = CopyOptions {
        follow_link: args.follow_link,
        same_owner: args.same_owner && !args.no_same_owner,
        ..CopyOptions::default()
    };
    let (src, dest) = if direction == "into" {
        (args.src.clone(), in_root(&args.dest))
    } else {
        (in_root(&args.src), args.dest.clone())
    };
    let summary = if direction == "into" {
        root.copy_in(&src, &dest, &opts)
    } else {
        root.copy_out(&src, &dest, &opts)
    }
    .map_err(|e| {
        CliError::setup(format!(
            "cp {} to {}: {e}",
            shown(&args.src),
            shown(&args.dest)
        ))
    })?;
    let report = Report {
        direction,
        dir: dir.display().to_string(),
        src: src.display().to_string(),
        dest: dest.display().to_string(),
        summary,
    };
    if args.json {
        return print_json(&report);
    }
    let s = &report.summary;
    let place = if direction == "into" {
        format!("{}:{}", report.dir, s.destination.display())
    } else {
        s.destination.display().to_string()
    };
    print(&format!(
        "{} -> {}: {} entries ({} files, {} directories, {} symlinks, {} hard links, {} nodes, \
         {} skipped), {} bytes\n",
        report.src,
        place,
        s.entries,
        s.files,
        s.dirs,
        s.symlinks,
        s.hardlinks,
        s.nodes,
        s.skipped,
        s.bytes
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_root_paths_get_a_leading_slash_and_keep_their_tail() {
        assert_eq!(in_root(Path::new("a/b/.")), Path::new("/a/b/."));
        assert_eq!(in_root(Path::new("a/")).as_os_str().as_bytes(), b"/a/");
        assert_eq!(in_root(Path::new("/x")), Path::new("/x"));
        assert_eq!(in_root(Path::new(".")).as_os_str().as_bytes(), b"/.");
    }
}
