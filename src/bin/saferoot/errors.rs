//! The command's error: a message for stderr and the exit status.

use std::fmt;

/// Exit status for a bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the sandbox could not be set up.
pub const EXIT_SETUP: i32 = 125;
/// Exit status when the program exists but could not be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// Exit status when the program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// An error that ends the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit status.
    pub code: i32,
    /// What went wrong; printed after `saferoot: `.
    pub message: String,
}

impl CliError {
    /// A bad command line (exit status 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// The sandbox could not be set up (exit status 125).
    pub fn setup(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_SETUP,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Shell-like display of a path or argument, for messages.
pub fn shown(s: impl AsRef<std::ffi::OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
