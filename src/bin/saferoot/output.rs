//! Output helpers: aligned text tables, JSON, and a small stderr logger.

use std::io::Write;

/// Formats `rows` under `headers` in columns separated by two spaces. The
/// last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate().take(n) {
            if i + 1 < n {
                let pad = widths[i] - cell.chars().count();
                l.push_str(cell);
                l.extend(std::iter::repeat_n(' ', pad + 2));
            } else {
                l.push_str(cell);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `s` safe to print on a terminal: control characters (C0, DEL, C1), the
/// Unicode bidirectional overrides and isolates (which reorder what is
/// shown) and backslashes are written as escapes (`\x1b`, `\n`,
/// `\u{202e}`, `\\`), so no byte from a container or a config reaches
/// the terminal as a command. Strings with nothing to escape are returned
/// as they are.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || c == '\\'
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && bad(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if bad(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), crate::errors::CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::errors::CliError::setup(format!("JSON output: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// Prints `text` on stdout, ignoring a closed pipe.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let _ = writeln!(
                std::io::stderr(),
                "saferoot[{}]: {}: {}",
                std::process::id(),
                r.level().as_str().to_ascii_lowercase(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Logs to stderr: warnings by default, more with each `-v`.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB", "C"],
            &[vec!["xxx".into(), "y".into(), "z z".into()]],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z z\n");
    }

    #[test]
    fn escape_leaves_plain_text_and_escapes_controls() {
        assert!(matches!(
            escape("/proc/sys ok"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape("a\nb\\c"), "a\\nb\\\\c");
        assert_eq!(escape("x\u{9b}y\u{202e}z\x7f"), "x\\u{9b}y\\u{202e}z\\x7f");
    }
}
