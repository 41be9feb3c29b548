//! Output helpers: aligned text tables, JSON, and a small stderr logger.
//!
//! Everything printed goes through here or [`crate::errors::print_error`],
//! and each applies [`terminal_safe`] last: values from mount tables,
//! configs and root filesystems are escaped where they are put into text
//! ([`crate::errors::escape`]), and no control character that slipped
//! through (in a library error naming a path, say) reaches a terminal.

use std::io::Write;

use crate::errors::terminal_safe;

/// Formats `rows` under `headers` in columns separated by two spaces. The
/// last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| terminal_safe(c, false)).collect())
        .collect();
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
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
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Makes every string in `v` (keys too) [`terminal_safe`].
fn sanitize_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = terminal_safe(s, false),
        serde_json::Value::Array(a) => a.iter_mut().for_each(sanitize_json),
        serde_json::Value::Object(o) => {
            let old = std::mem::take(o);
            for (k, mut x) in old {
                sanitize_json(&mut x);
                o.insert(terminal_safe(&k, false), x);
            }
        }
        _ => {}
    }
}

/// Prints `value` as pretty JSON on stdout. Strings that came from outside
/// were escaped where they were made (so non-UTF-8 bytes keep an exact
/// form); as a last step no string keeps a control character, so the
/// output is safe even after `jq -r`.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), crate::errors::CliError> {
    let mut v = serde_json::to_value(value)
        .map_err(|e| crate::errors::CliError::setup(format!("JSON output: {e}")))?;
    sanitize_json(&mut v);
    let text = serde_json::to_string_pretty(&v)
        .map_err(|e| crate::errors::CliError::setup(format!("JSON output: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// Prints `text` on stdout, ignoring a closed pipe. Its lines are kept;
/// any other control character is escaped.
pub fn print(text: &str) {
    let text = terminal_safe(text, true);
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
                terminal_safe(&r.args().to_string(), false)
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
}
