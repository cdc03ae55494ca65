//! JSON configuration files whose errors name the file, line and reason.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A value that parsed but makes no sense (an address out of range, a duplicate name).
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Parse `text` (the content of `path`) as `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        reason: strip_position(&e.to_string()),
    })
}

/// Read and parse a configuration file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let value = parse(path, &text)?;
    Ok((value, text))
}

/// The 1-based line of the first occurrence of `"key"` followed by `value_hint` in `text`,
/// for semantic errors found after parsing; falls back to the first occurrence of the key, then
/// to line 1.
pub fn line_of(text: &str, key: &str, value_hint: Option<&str>) -> usize {
    let quoted = format!("\"{key}\"");
    let mut first_key = None;
    for (i, line) in text.lines().enumerate() {
        if line.contains(&quoted) {
            first_key.get_or_insert(i + 1);
            match value_hint {
                Some(v) if line.contains(v) => return i + 1,
                None => return i + 1,
                _ => {}
            }
        }
    }
    first_key.unwrap_or(1)
}

/// An [`ConfigError::Invalid`] located by [`line_of`].
pub fn invalid(
    path: &Path,
    text: &str,
    key: &str,
    hint: Option<&str>,
    reason: String,
) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        line: line_of(text, key, hint),
        reason,
    }
}

/// The range every daemon accepts for a D-Bus call deadline (`call_timeout_ms`): long enough
/// for a busy single-core BMC, short enough that a stalled peer is noticed.
pub const CALL_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 10..=60_000;

/// A duration given in milliseconds under `key`, checked against `range` (an error names the
/// file, the key's line and the range).
pub fn millis_in(
    path: &Path,
    text: &str,
    key: &str,
    ms: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<std::time::Duration, ConfigError> {
    if !range.contains(&ms) {
        return Err(invalid(
            path,
            text,
            key,
            None,
            format!(
                "{key} {ms} is out of range ({}..={})",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(std::time::Duration::from_millis(ms))
}

// serde_json appends " at line L column C"; we print the position ourselves, first.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        poll_ms: u64,
    }

    #[test]
    fn parse_errors_name_file_line_and_reason() {
        let text = "{\n  \"poll_ms\": 10,\n  \"pol_ms\": 3\n}\n";
        let err = parse::<Cfg>(Path::new("/etc/x.json"), text).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.starts_with("/etc/x.json:3:"), "{msg}");
        assert!(msg.contains("unknown field `pol_ms`"), "{msg}");
        assert!(!msg.contains(" at line "), "{msg}");
    }

    #[test]
    fn type_errors_too() {
        let text = "{\n\n  \"poll_ms\": \"fast\"\n}";
        let msg = parse::<Cfg>(Path::new("c.json"), text)
            .expect_err("fail")
            .to_string();
        assert!(msg.starts_with("c.json:3:"), "{msg}");
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn missing_file() {
        let msg = load::<Cfg>(Path::new("/nonexistent/acpigate.json"))
            .expect_err("fail")
            .to_string();
        assert!(
            msg.starts_with("/nonexistent/acpigate.json: cannot read"),
            "{msg}"
        );
    }

    #[test]
    fn line_of_finds_key_and_value() {
        let text = "{\n \"name\": \"a\",\n \"name\": \"b\"\n}";
        assert_eq!(line_of(text, "name", Some("\"b\"")), 3);
        assert_eq!(line_of(text, "name", None), 2);
        assert_eq!(line_of(text, "nope", None), 1);
    }

    #[test]
    fn millis_in_range_or_an_error_with_the_line() {
        let p = Path::new("/etc/acpigate/x.json");
        let text = "{\n  \"call_timeout_ms\": 5\n}";
        assert_eq!(
            millis_in(p, text, "call_timeout_ms", 2500, CALL_TIMEOUT_MS).ok(),
            Some(std::time::Duration::from_millis(2500))
        );
        let e = millis_in(p, text, "call_timeout_ms", 5, CALL_TIMEOUT_MS)
            .expect_err("5 ms is below the range")
            .to_string();
        assert!(e.starts_with("/etc/acpigate/x.json:2:"), "{e}");
        assert!(
            e.contains("call_timeout_ms 5 is out of range (10..=60000)"),
            "{e}"
        );
    }
}
