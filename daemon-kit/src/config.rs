//! JSON configuration files whose errors name the file, line and reason.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

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

// Values are checked while a file is parsed (the types below), so their errors carry
// serde's position. A relation between two places in a file (an entry naming another) has
// no single position; such checks run after parsing and name the referring key's line.

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

/// The name and range of a bounded number in a configuration file. Values of [`Millis`] and
/// [`Int`] are checked against it while the file is parsed, so the error carries serde's
/// line and column — where the value is — and names the key.
pub trait Bound {
    const KEY: &'static str;
    const MIN: u64;
    const MAX: u64;
}

/// Declares a [`Bound`]: `bound!(/// why, pub SelCapacity, "sel_capacity", 1..=0xFFFD);`.
#[macro_export]
macro_rules! bound {
    ($(#[$doc:meta])* $vis:vis $name:ident, $key:literal, $min:literal ..= $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $name;
        impl $crate::config::Bound for $name {
            const KEY: &'static str = $key;
            const MIN: u64 = $min;
            const MAX: u64 = $max;
        }
    };
}

bound!(
    /// `call_timeout_ms`, the deadline of every outgoing D-Bus call, in every daemon: long
    /// enough for a busy single-core BMC, short enough that a stalled peer is noticed.
    pub CallTimeout, "call_timeout_ms", 10..=60_000
);

fn out_of_range<B: Bound>(shown: &dyn std::fmt::Display) -> String {
    format!(
        "{} {shown} is out of range ({}..={})",
        B::KEY,
        B::MIN,
        B::MAX
    )
}

// The checks run inside the visitors: serde_json places an error raised there right after
// the value, while one raised after the value has been returned lands wherever the parser
// has got to by then (often the next line).

fn in_range<B: Bound, E: de::Error>(n: u64, shown: &dyn std::fmt::Display) -> Result<u64, E> {
    if (B::MIN..=B::MAX).contains(&n) {
        Ok(n)
    } else {
        Err(E::custom(out_of_range::<B>(shown)))
    }
}

/// A duration given in milliseconds (a JSON number) within `B`'s range.
pub struct Millis<B>(Duration, PhantomData<B>);

// By hand: derives would ask the same of the marker `B`, which is only a name for a range.
impl<B> Clone for Millis<B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Millis<B> {}
impl<B> PartialEq for Millis<B> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<B> Eq for Millis<B> {}
impl<B> std::fmt::Debug for Millis<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<B> Millis<B> {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<B: Bound> Millis<B> {
    /// A default written in code; it must be within `B`'s range (checked in debug builds and
    /// by the tests that parse an empty file).
    pub fn from_const(d: Duration) -> Self {
        debug_assert!((B::MIN..=B::MAX).contains(&(d.as_millis() as u64)));
        Self(d, PhantomData)
    }
}

impl<'de, B: Bound> Deserialize<'de> for Millis<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<B>(PhantomData<B>);
        impl<B: Bound> Visitor<'_> for V<B> {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: milliseconds, a whole number", B::KEY)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
                in_range::<B, E>(n, &n)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
                Err(E::custom(out_of_range::<B>(&n)))
            }
        }
        let ms = d.deserialize_u64(V::<B>(PhantomData))?;
        Ok(Self(Duration::from_millis(ms), PhantomData))
    }
}

/// An integer within `B`'s range, given as a JSON number or as a string, decimal or `"0x…"`
/// (JSON has no hex literals, and bus addresses and IANA numbers are written in hex).
pub struct Int<B>(u64, PhantomData<B>);

// By hand: derives would ask the same of the marker `B`, which is only a name for a range.
impl<B> Clone for Int<B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Int<B> {}
impl<B> PartialEq for Int<B> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<B> Eq for Int<B> {}
impl<B> std::fmt::Debug for Int<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<B> Int<B> {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de, B: Bound> Deserialize<'de> for Int<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<B>(PhantomData<B>);
        impl<B: Bound> Visitor<'_> for V<B> {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: a number, or a string such as \"0x1f\"", B::KEY)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
                in_range::<B, E>(n, &n)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
                match u64::try_from(n) {
                    Ok(u) => in_range::<B, E>(u, &n),
                    Err(_) => Err(E::custom(out_of_range::<B>(&n))),
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
                let n = parse_int(s).ok_or_else(|| {
                    E::custom(format!(
                        "{} `{s}` is not a number (decimal, or hex as \"0x…\")",
                        B::KEY
                    ))
                })?;
                in_range::<B, E>(n, &format!("`{s}`"))
            }
        }
        Ok(Self(d.deserialize_any(V::<B>(PhantomData))?, PhantomData))
    }
}

/// For `#[serde(deserialize_with = "within::<B, _, _>")]` on a plain integer field: the value
/// read as an [`Int`] (number or `"0x…"`) within `B`'s range, in the field's own type.
pub fn within<'de, B: Bound, T: TryFrom<u64>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let n = Int::<B>::deserialize(d)?.get();
    T::try_from(n).map_err(|_| de::Error::custom(out_of_range::<B>(&n)))
}

/// An entry of a list whose entries must differ in one key (a name, a number).
pub trait Keyed {
    /// What the list holds, for the error: `channel`, `sensor name`.
    const WHAT: &'static str;
    fn key(&self) -> String;
}

/// For `#[serde(deserialize_with = "unique")]` on a `Vec` of objects: a repeated key is
/// refused as the repeat is read, so the error's position is the end of the repeated entry,
/// not the end of the list or the file.
pub fn unique<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
where
    T: Deserialize<'de> + Keyed,
    D: Deserializer<'de>,
{
    let mut out: Vec<T> = Vec::new();
    each_entry(d, T::WHAT, |item: T| {
        let key = item.key();
        if out.iter().any(|o| o.key() == key) {
            return Err(format!("{} `{key}` appears twice", T::WHAT));
        }
        out.push(item);
        Ok(())
    })?;
    Ok(out)
}

/// A list of objects (`what`s), each handed to `accept` as soon as it is read, for rules that
/// relate an entry to the ones before it: an error `accept` returns is placed at the end of
/// the entry it refused.
pub fn each_entry<'de, T, D, F>(d: D, what: &'static str, accept: F) -> Result<(), D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
    F: FnMut(T) -> Result<(), String>,
{
    struct List<T, F> {
        what: &'static str,
        accept: F,
        item: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>, F: FnMut(T) -> Result<(), String>> Visitor<'de> for List<T, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of {}s", self.what)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Entry {
                    what: self.what,
                    accept: &mut self.accept,
                    item: PhantomData,
                })?
                .is_some()
            {}
            Ok(())
        }
    }
    // The rule runs inside the entry's own map visitor, where serde_json still knows where
    // the entry ends.
    struct Entry<'a, T, F> {
        what: &'static str,
        accept: &'a mut F,
        item: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>, F: FnMut(T) -> Result<(), String>> de::DeserializeSeed<'de>
        for Entry<'_, T, F>
    {
        type Value = ();
        fn deserialize<D2: Deserializer<'de>>(self, d: D2) -> Result<(), D2::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de, T: Deserialize<'de>, F: FnMut(T) -> Result<(), String>> Visitor<'de> for Entry<'_, T, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a {} (an object)", self.what)
        }
        fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<(), M::Error> {
            let item = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.accept)(item).map_err(de::Error::custom)
        }
    }
    d.deserialize_seq(List {
        what,
        accept,
        item: PhantomData,
    })
}

/// A decimal or `0x` hexadecimal integer, surrounding blanks allowed.
fn parse_int(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// A path that must be absolute (a relative one would depend on the daemon's working
/// directory, which systemd sets to `/`, but tests and hand runs do not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsolutePath(pub PathBuf);

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an absolute path", |s| {
            let p = PathBuf::from(s);
            if p.is_absolute() {
                Ok(Self(p))
            } else {
                Err(format!("`{s}` must be an absolute path"))
            }
        })
    }
}

/// A string value checked by `check` while it is parsed, so a refusal carries the value's
/// own line and column; `what` is what serde says it expected when the value is no string.
pub fn checked_str<'de, D, T>(
    d: D,
    what: &'static str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(&'static str, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.1)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V(what, check))
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

    bound!(Addr, "address", 0x08..=0x77);

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Bounded {
        call_timeout_ms: Option<Millis<CallTimeout>>,
        address: Option<Int<Addr>>,
        file: Option<AbsolutePath>,
    }

    fn bounded(text: &str) -> Result<Bounded, String> {
        parse::<Bounded>(Path::new("/etc/acpigate/x.json"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn bounded_values_are_checked_where_they_are() {
        let ok = bounded("{\"call_timeout_ms\": 2500, \"address\": \"0x18\", \"file\": \"/a\"}")
            .expect("valid");
        assert_eq!(
            ok.call_timeout_ms.map(Millis::get),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(ok.address.map(Int::get), Some(0x18));
        assert_eq!(ok.file, Some(AbsolutePath(PathBuf::from("/a"))));
        assert_eq!(
            bounded("{\"address\": 24}")
                .expect("valid")
                .address
                .map(Int::get),
            Some(24)
        );
        assert_eq!(
            bounded("{\"address\": \" 24 \"}")
                .expect("ok")
                .address
                .map(Int::get),
            Some(24)
        );
        let cases = [
            (
                "{\n  \"call_timeout_ms\": 5\n}",
                ":2:",
                "call_timeout_ms 5 is out of range (10..=60000)",
            ),
            (
                "{\n\n  \"call_timeout_ms\": 70000}",
                ":3:",
                "call_timeout_ms 70000 is out of range",
            ),
            ("{\"call_timeout_ms\": \"fast\"}", ":1:", "invalid type"),
            (
                "{\n  \"address\": \"0x80\"\n}",
                ":2:",
                "address `0x80` is out of range (8..=119)",
            ),
            (
                "{\n  \"address\": -1\n}",
                ":2:",
                "address -1 is out of range",
            ),
            (
                "{\n  \"address\": \"0xzz\"\n}",
                ":2:",
                "address `0xzz` is not a number",
            ),
            (
                "{\n  \"address\": true\n}",
                ":2:",
                "address: a number, or a string",
            ),
            (
                "{\n  \"file\": \"rel/x\"\n}",
                ":2:",
                "`rel/x` must be an absolute path",
            ),
        ];
        for (text, line, want) in cases {
            let e = bounded(text).expect_err(text);
            assert!(
                e.starts_with(&format!("/etc/acpigate/x.json{line}")),
                "{text}: {e}"
            );
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    bound!(Channel, "number", 0..=15);

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Chan {
        name: String,
        #[serde(deserialize_with = "within::<Channel, _, _>")]
        number: u8,
    }

    impl Keyed for Chan {
        const WHAT: &'static str = "channel";
        fn key(&self) -> String {
            self.name.clone()
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Chans {
        #[serde(deserialize_with = "unique")]
        channels: Vec<Chan>,
    }

    #[test]
    fn plain_fields_within_a_range_and_lists_without_repeats() {
        let p = Path::new("c.json");
        let ok: Chans = parse(
            p,
            r#"{"channels": [{"name": "a", "number": "0xf"}, {"name": "b", "number": 1}]}"#,
        )
        .expect("valid");
        let got: Vec<(&str, u8)> = ok
            .channels
            .iter()
            .map(|c| (c.name.as_str(), c.number))
            .collect();
        assert_eq!(got, [("a", 15), ("b", 1)]);
        let e = parse::<Chans>(
            p,
            "{\"channels\": [\n {\"name\": \"a\", \"number\": 16}\n]}",
        )
        .expect_err("16 is no channel")
        .to_string();
        assert!(
            e.starts_with("c.json:2:") && e.contains("number 16 is out of range (0..=15)"),
            "{e}"
        );
        let e = parse::<Chans>(
            p,
            "{\"channels\": [\n {\"name\": \"a\", \"number\": 1},\n {\"name\": \"a\", \"number\": 2},\n {\"name\": \"c\", \"number\": 3}\n]}",
        )
        .expect_err("a twice")
        .to_string();
        assert!(
            e.starts_with("c.json:3:") && e.contains("channel `a` appears twice"),
            "{e}"
        );
    }
}
