//! `saferoot`: run a program in a race-free root filesystem, audit mount
//! setups, show mount trees and kernel features.
//!
//! Subcommands live in modules of their own; see `docs/cli.md`.

#![deny(unsafe_code)]

mod args;
mod audit_bundle;
mod audit_cmd;
mod audit_live;
mod bundle;
mod bwrap;
mod bwrap_args;
mod bwrap_cmd;
mod bwrap_op;
mod cp_cmd;
mod cpu_apart;
mod default_sandbox;
mod dry_run;
mod errors;
mod exec;
mod extract_cmd;
mod fd_passing;
mod fds;
mod features_cmd;
mod findings;
mod host_view;
mod lock;
mod mounts_cmd;
mod namespaces;
mod net_ahead;
mod output;
mod privileges;
mod relay;
mod report;
mod rootfs_setup;
mod run;
mod sandbox;
mod sarif;
mod sys;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::errors::CliError;

/// clap takes an unknown `--flag` before the program for the program
/// itself; a program whose name starts with `-` must follow `--`.
fn check_program_name(args: &args::RunArgs) -> Result<(), CliError> {
    let Some(first) = args.command.first() else {
        return Ok(());
    };
    if !first.to_string_lossy().starts_with('-') {
        return Ok(());
    }
    let after_dashes = std::env::args_os().skip_while(|a| a != "--").nth(1);
    if after_dashes.as_ref() == Some(first) {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "unknown flag {} for `saferoot run` (see saferoot run --help; \
         a program whose name starts with - goes after --)",
        errors::shown(first)
    )))
}

fn run_command(args: &args::RunArgs, m: &clap::ArgMatches) -> Result<i32, CliError> {
    check_program_name(args)?;
    let sb = match &args.bundle {
        Some(dir) => {
            if let Some(flag) = bwrap::bundle_conflicts(args, m) {
                return Err(CliError::usage(format!(
                    "{flag} cannot be combined with --bundle: the bundle's config.json \
                     says what the sandbox is (only --strategy, --enter, --dry-run, --json, \
                     --die-with-parent, --new-session, --no-new-session and a COMMAND are allowed with it)"
                )));
            }
            bundle::sandbox_from_bundle(dir, args)?
        }
        None => bwrap::sandbox_from_flags(args, m)?,
    };
    if args.dry_run {
        dry_run::dry_run(&sb, args.json)?;
        return Ok(0);
    }
    run::run(sb)
}

/// The allocator: dlmalloc, in every build of the command, so that the
/// tests run the one that is shipped. The shipped build links musl
/// (cli/dist.sh), whose own allocator maps and unmaps a page group for
/// nearly every size class it serves and gives it back as soon as it is
/// empty: a bundle's start made about sixty `mmap`/`munmap` pairs, and the
/// start of line (a) of docs/performance.md cost 0.5 ms more than with
/// dlmalloc, which keeps what it maps; behind a lock of the command's own
/// (`sys::alloc`: an atomic flag, not a mutex of the C library).
#[global_allocator]
static ALLOCATOR: sys::alloc::Allocator = sys::alloc::Allocator::new();

fn main() {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_else(|| "saferoot".into());
    let rest: Vec<std::ffi::OsString> = argv.collect();
    if bwrap_cmd::invoked_as_bwrap(&argv0, rest.first().map(|a| a.as_os_str())) {
        std::process::exit(bwrap_cmd::main(argv0, rest));
    }
    if rest.first().is_some_and(|a| a == "bwrap") {
        // `saferoot bwrap ARGS...`: bubblewrap's command line as it is.
        std::process::exit(bwrap_cmd::main("bwrap".into(), rest[1..].to_vec()));
    }
    // The parser's description of every argument lives until the process
    // exits: it is not freed, one allocation at a time, before any work.
    let matches = Box::leak(Box::new(Cli::command())).get_matches_mut();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    output::init_logging(cli.verbose);
    let result = match &cli.command {
        Command::Run(args) => {
            let sub = matches
                .subcommand_matches("run")
                .expect("clap gives the matches of the subcommand it parsed");
            run_command(args, sub)
        }
        Command::Audit(args) => audit_cmd::audit(args),
        Command::Mounts(args) => mounts_cmd::mounts(args).map(|()| 0),
        Command::Features(args) => features_cmd::features(args).map(|()| 0),
        Command::Extract(args) => extract_cmd::extract(args).map(|()| 0),
        Command::Cp(args) => cp_cmd::cp(args).map(|()| 0),
        Command::Bwrap(args) => Ok(bwrap_cmd::main("bwrap".into(), args.args.clone())),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            crate::errors::print_error(&e);
            std::process::exit(e.code);
        }
    }
}
