//! bubblewrap's command line as the `saferoot bwrap` personality parses it
//! (`cli/src/bwrap_args.rs`, compiled here as it is), including `--args FD`
//! NUL-separated streams.
//!
//! Input: sections separated by the byte 0x1e. The first is the command
//! line (NUL-separated arguments, without argv[0]); section N (N >= 1) is
//! what fd N + 2 holds (so `--args 3` reads section 1). Other fds cannot
//! be read.
//!
//! Checks: the parser is deterministic; a refusal has a message; a parse
//! that succeeds has a program, which is a suffix of the real command line
//! (never text from an `--args` stream); and `--args FD` as the first
//! option gives the same invocation as the stream's arguments written in
//! its place, whenever both give the same program.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../cli/src/bwrap_op.rs"]
mod bwrap_op;

#[allow(dead_code)]
#[path = "../../cli/src/bwrap_args.rs"]
mod bwrap_args;

use bwrap_args::{parse, FdReader, Invocation, ParseError, MAX_ARGS};

/// Separates the sections of the input.
const SECTION: u8 = 0x1e;

struct Streams<'a> {
    sections: &'a [&'a [u8]],
}

impl FdReader for Streams<'_> {
    fn read_fd(&mut self, fd: i32) -> std::io::Result<Vec<u8>> {
        usize::try_from(fd)
            .ok()
            .and_then(|fd| fd.checked_sub(2))
            .filter(|&i| i >= 1)
            .and_then(|i| self.sections.get(i))
            .map(|s| s.to_vec())
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))
    }
}

/// A NUL-separated list, as bubblewrap splits an `--args` stream: a final
/// NUL ends the last argument, it does not start an empty one.
fn split_nul(data: &[u8]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        out.push(OsString::from_vec(rest[..end].to_vec()));
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    out
}

type Parsed = Result<Result<Invocation, bwrap_args::Early>, ParseError>;

fn run(args: &[OsString], sections: &[&[u8]]) -> Parsed {
    parse(args.to_vec(), &mut Streams { sections })
}

fuzz_target!(|data: &[u8]| {
    let sections: Vec<&[u8]> = data.split(|b| *b == SECTION).collect();
    let args = split_nul(sections[0]);
    let got = run(&args, &sections);
    assert_eq!(
        run(&args, &sections),
        got,
        "the parser is not deterministic"
    );
    let inv = match &got {
        Ok(Ok(inv)) => inv,
        Ok(Err(_early)) => return,
        Err(ParseError::NoCommand) => return,
        Err(ParseError::Invalid(msg)) => {
            assert!(!msg.is_empty(), "a refusal without a message");
            return;
        }
    };
    assert!(!inv.command.is_empty(), "success without a program");
    assert!(
        args.ends_with(&inv.command),
        "the program {:?} is not the end of the command line {args:?}",
        inv.command
    );
    assert!(inv.ops.len() <= args.len() + MAX_ARGS);

    // `--args FD` first: the same as its arguments written in place.
    if args.len() >= 2 && args[0] == "--args" {
        let mut reader = Streams {
            sections: &sections,
        };
        let Some(fd) = args[1].to_str().and_then(|s| s.parse::<i32>().ok()) else {
            return;
        };
        let Ok(stream) = reader.read_fd(fd) else {
            return;
        };
        let mut inline = split_nul(&stream);
        inline.extend_from_slice(&args[2..]);
        // When the stream holds a program, bubblewrap ignores the rest of
        // it and the two differ; they must agree whenever the program is
        // the same.
        if let Ok(Ok(inv2)) = run(&inline, &sections) {
            if inv2.command == inv.command {
                assert_eq!(
                    &inv2, inv,
                    "--args differs from its arguments in place: {inline:?}"
                );
            }
        }
    }
});
