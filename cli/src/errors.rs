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

/// How the command presents itself: as `saferoot`, or as bubblewrap
/// (`bwrap`), whose scripts expect its conventions: messages start with
/// `bwrap: ` (after a syslog level such as `<3>` with `--level-prefix`),
/// and every failure of its own exits with status 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personality {
    /// bubblewrap's conventions.
    pub bwrap: bool,
    /// `--level-prefix`.
    pub level_prefix: bool,
}

static PERSONALITY: std::sync::OnceLock<Personality> = std::sync::OnceLock::new();

/// Switches to bubblewrap's conventions (once, before anything is
/// printed; forked processes inherit it).
pub fn set_bwrap_personality(level_prefix: bool) {
    let _ = PERSONALITY.set(Personality {
        bwrap: true,
        level_prefix,
    });
}

/// Whether the command runs as bubblewrap.
pub fn is_bwrap() -> bool {
    PERSONALITY.get().is_some_and(|p| p.bwrap)
}

/// The exit status for a failure of saferoot's own: `code`, or 1 as
/// bubblewrap.
pub fn failure_code(code: i32) -> i32 {
    if is_bwrap() {
        1
    } else {
        code
    }
}

/// The text of an OS error without Rust's ` (os error N)` suffix, as C
/// programs print it (`No such file or directory`).
pub fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

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
            code: failure_code(EXIT_USAGE),
            message: message.into(),
        }
    }

    /// The sandbox could not be set up (exit status 125).
    pub fn setup(message: impl Into<String>) -> CliError {
        CliError {
            code: failure_code(EXIT_SETUP),
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Prints `saferoot: MESSAGE` on stderr, with [`terminal_safe`] applied:
/// every error message leaves through here.
pub fn print_error(message: impl fmt::Display) {
    use std::io::Write;
    let prefix = match PERSONALITY.get() {
        Some(p) if p.bwrap && p.level_prefix => "<3>bwrap",
        Some(p) if p.bwrap => "bwrap",
        _ => "saferoot",
    };
    let _ = writeln!(
        std::io::stderr(),
        "{prefix}: {}",
        terminal_safe(&message.to_string(), false)
    );
}

/// Prints a warning on stderr like [`print_error`] (as bubblewrap with
/// `--level-prefix`, at syslog level 4).
pub fn print_warning(message: impl fmt::Display) {
    use std::io::Write;
    let prefix = match PERSONALITY.get() {
        Some(p) if p.bwrap && p.level_prefix => "<4>bwrap",
        Some(p) if p.bwrap => "bwrap",
        _ => "saferoot: warning",
    };
    let _ = writeln!(
        std::io::stderr(),
        "{prefix}: {}",
        terminal_safe(&message.to_string(), false)
    );
}

/// Whether `c` must not reach a terminal as it is: a control character
/// (C0, DEL, C1) or a character that reorders or hides text (bidirectional
/// overrides and isolates, zero-width marks).
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

/// Appends the escaped form of one unsafe character: `\n`, `\t`, `\r`,
/// `\xNN` for other ASCII controls, `\uXXXX` for the rest.
fn push_escaped_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{:04x}", c as u32)),
    }
}

/// The one escaping of a value that comes from outside (a mount point, a
/// source, mount options, a path in a rootfs, a string in a config): text
/// that is safe on a terminal and says exactly which bytes the value has.
///
/// Printable characters stay as they are (UTF-8 included); a backslash
/// becomes `\\`; newline, tab and carriage return become `\n`, `\t`, `\r`;
/// other ASCII control bytes (ESC is `\x1b`) and every byte that is not
/// part of valid UTF-8 become `\xNN`; other control and text-reordering
/// characters (C1 controls, bidirectional overrides) become `\uXXXX`. The
/// escapes are those of a shell's `$'...'` quoting, so the original bytes
/// can always be recovered.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if is_unsafe_char(c) {
                push_escaped_char(&mut out, c);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// [`escape_bytes`] of an OS string or path.
pub fn escape(s: impl AsRef<std::ffi::OsStr>) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_bytes(s.as_ref().as_bytes())
}

/// `.escaped()`: [`escape`] as a method, for paths and strings in messages
/// and reports.
pub trait Escaped {
    /// The value, escaped with [`escape_bytes`].
    fn escaped(&self) -> String;
}

impl<T: AsRef<std::ffi::OsStr> + ?Sized> Escaped for T {
    fn escaped(&self) -> String {
        escape(self)
    }
}

/// A whole message or report line made safe for a terminal: every control
/// or text-reordering character becomes an escape (as [`escape_bytes`]
/// writes them); everything else, backslashes included, is left alone, so
/// values already escaped keep their form. Newlines are kept when
/// `keep_newlines` (multi-line reports whose values were escaped one by
/// one).
///
/// This is the last step before stderr or stdout, for text that may hold a
/// value nobody escaped (a library error naming a path, say).
pub fn terminal_safe(text: &str, keep_newlines: bool) -> String {
    if !text
        .chars()
        .any(|c| is_unsafe_char(c) && !(keep_newlines && c == '\n'))
    {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) && !(keep_newlines && c == '\n') {
            push_escaped_char(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Shell-like display of a path or argument, for messages: as it is when it
/// has only harmless characters, in single quotes when it has spaces or
/// other printable characters a shell treats specially, and in `$'...'`
/// quoting with the escapes of [`escape_bytes`] when it has control
/// characters, backslashes or bytes that are not UTF-8.
pub fn shown(s: impl AsRef<std::ffi::OsStr>) -> String {
    let s = s.as_ref();
    let escaped = escape(s);
    if !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        escaped
    } else if !escaped.contains('\\') {
        format!("'{}'", escaped.replace('\'', "'\\''"))
    } else {
        format!("$'{}'", escaped.replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn escape_is_exact_and_terminal_safe() {
        let raw = b"/a\x1b[31mb\nc\\d\xffe\xc2\x9bf\xe2\x80\xaeg \xc3\xa9";
        let e = escape_bytes(raw);
        assert_eq!(e, r"/a\x1b[31mb\nc\\d\xffe\u009bf\u202eg é");
        assert!(!e.chars().any(is_unsafe_char));
        assert_eq!(escape_bytes(b"/plain/path"), "/plain/path");
    }

    #[test]
    fn shown_quotes_as_a_shell_would() {
        assert_eq!(shown("/usr/bin"), "/usr/bin");
        assert_eq!(shown("a b"), "'a b'");
        assert_eq!(shown("it's"), r"'it'\''s'");
        assert_eq!(shown(OsStr::from_bytes(b"x\x1by'\xff")), r"$'x\x1by\'\xff'");
        assert_eq!(shown(""), "''");
    }

    #[test]
    fn terminal_safe_escapes_only_controls() {
        assert_eq!(
            terminal_safe("a\x1b]0;x\x07 \\x", false),
            r"a\x1b]0;x\x07 \x"
        );
        assert_eq!(terminal_safe("l1\nl2", true), "l1\nl2");
        assert_eq!(terminal_safe("l1\nl2", false), r"l1\nl2");
    }
}
