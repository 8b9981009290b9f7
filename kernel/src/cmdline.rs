//! The kernel command line: whitespace-separated `flag` and `key=value` words.
//!
//! Values may be double-quoted to hold spaces (`name="a b"`), as on Linux. Unknown words are
//! kept; callers ask for what they understand.

/// A parsed view of the command line; borrows the original string.
#[derive(Debug, Clone, Copy)]
pub struct Cmdline<'a> {
    raw: &'a str,
}

/// One word: `key` alone, or `key=value` with quotes around the value removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The part before `=`, or the whole word.
    pub key: &'a str,
    /// The part after `=`, if any.
    pub value: Option<&'a str>,
}

impl<'a> Cmdline<'a> {
    /// Wraps a command line.
    pub const fn new(raw: &'a str) -> Self {
        Self { raw }
    }

    /// The original text.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Every word in order.
    pub fn params(&self) -> Params<'a> {
        Params { rest: self.raw }
    }

    /// True when the bare word `key` (or `key=...`) is present.
    pub fn has(&self, key: &str) -> bool {
        self.params().any(|p| p.key == key)
    }

    /// The value of the last `key=value` (the last one wins, as on Linux).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.params()
            .filter(|p| p.key == key)
            .filter_map(|p| p.value)
            .last()
    }
}

/// Iterator over [`Param`]s.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let s = self.rest.trim_start();
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        // A word ends at whitespace outside double quotes.
        let mut in_quotes = false;
        let mut end = s.len();
        for (i, c) in s.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                c if c.is_whitespace() && !in_quotes => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let word = &s[..end];
        self.rest = &s[end..];
        Some(match word.split_once('=') {
            None => Param {
                key: word,
                value: None,
            },
            Some((key, value)) => {
                let value = value
                    .strip_prefix('"')
                    .map(|v| v.strip_suffix('"').unwrap_or(v))
                    .unwrap_or(value);
                Param {
                    key,
                    value: Some(value),
                }
            }
        })
    }
}

/// Parses a `loglevel=` value: a name (`off`, `error`, `warn`, `info`, `debug`, `trace`) or a
/// digit 0..=5 in the same order.
pub fn parse_level(value: &str) -> Option<log::LevelFilter> {
    use log::LevelFilter::*;
    // Runs before the heap exists: compare in place rather than lowercasing a copy.
    const LEVELS: [(&str, &str, log::LevelFilter); 6] = [
        ("off", "0", Off),
        ("error", "1", Error),
        ("warn", "2", Warn),
        ("info", "3", Info),
        ("debug", "4", Debug),
        ("trace", "5", Trace),
    ];
    LEVELS
        .iter()
        .find(|(name, digit, _)| value.eq_ignore_ascii_case(name) || value == *digit)
        .map(|(_, _, level)| *level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_values_and_quotes() {
        let c = Cmdline::new("  selftest loglevel=debug name=\"a b c\" empty= x=1 x=2 ");
        assert!(c.has("selftest"));
        assert!(!c.has("self"));
        assert_eq!(c.get("loglevel"), Some("debug"));
        assert_eq!(c.get("name"), Some("a b c"));
        assert_eq!(c.get("empty"), Some(""));
        assert_eq!(c.get("x"), Some("2"));
        assert_eq!(c.get("selftest"), None);
        assert_eq!(c.params().count(), 6);
    }

    #[test]
    fn empty_and_unterminated_quote() {
        assert_eq!(Cmdline::new("").params().count(), 0);
        assert_eq!(Cmdline::new("   \t ").params().count(), 0);
        let c = Cmdline::new("a=\"open ended");
        assert_eq!(c.get("a"), Some("open ended"));
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("DEBUG"), Some(log::LevelFilter::Debug));
        assert_eq!(parse_level("0"), Some(log::LevelFilter::Off));
        assert_eq!(parse_level("5"), Some(log::LevelFilter::Trace));
        assert_eq!(parse_level("loud"), None);
    }
}
