//! LVM2's metadata text format (the "config" syntax `vgcfgbackup` writes), parsed with
//! fixed bounds.
//!
//! ```text
//! rhel {                       # a section
//!     id = "qksrir-..."        # key = string
//!     seqno = 3                # key = integer
//!     status = ["READ", "WRITE"]   # key = array of strings and integers
//!     physical_volumes { pv0 { ... } }
//! }
//! contents = "Text Format Volume Group"
//! ```
//!
//! `#` starts a comment to the end of the line; a NUL byte ends the text (the metadata area
//! stores it NUL-terminated). Strings take `\` escapes. Everything is bounded: nesting depth
//! ([`MAX_DEPTH`]), string and name lengths ([`MAX_STRING`], [`MAX_NAME`]) and the number of
//! values in the whole text ([`MAX_VALUES`]), so a hostile text costs at most linear time in
//! its length and memory in proportion to it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Deepest nesting of sections accepted (a VG's text nests 5 deep: VG, logical_volumes, LV,
/// segment, and the arrays in it).
pub const MAX_DEPTH: usize = 16;
/// Longest string value, in bytes (descriptions hold a whole command line).
pub const MAX_STRING: usize = 16 * 1024;
/// Longest key or section name (LVM names are at most 127 bytes).
pub const MAX_NAME: usize = 1024;
/// Most values (keys, sections, array elements) in one text.
pub const MAX_VALUES: usize = 200_000;

/// A value in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer (`seqno = 3`).
    Int(i64),
    /// A number LVM writes with a fraction; kept as written (no VG field uses one).
    Float(String),
    /// A string, escapes decoded.
    Str(String),
    /// An array of integers and strings.
    Array(Vec<Value>),
    /// A nested section.
    Section(Section),
}

/// A section: its items in text order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// (key or section name, value).
    pub items: Vec<(String, Value)>,
}

impl Section {
    /// The first value named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Integer `key`, if present and an integer.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// String `key`, if present and a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Section `key`, if present and a section.
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key)? {
            Value::Section(s) => Some(s),
            _ => None,
        }
    }

    /// Array `key`, if present and an array.
    pub fn array(&self, key: &str) -> Option<&[Value]> {
        match self.get(key)? {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Whether string array `key` holds `flag` (`status = ["READ", "VISIBLE"]`).
    pub fn has_flag(&self, key: &str, flag: &str) -> bool {
        self.array(key)
            .is_some_and(|a| a.iter().any(|v| matches!(v, Value::Str(s) if s == flag)))
    }

    /// The nested sections, in text order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.items.iter().filter_map(|(k, v)| match v {
            Value::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }
}

/// Parses `text` as a top-level section. The error says what was wrong and where.
pub fn parse(text: &[u8]) -> Result<Section, String> {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let mut p = Parser {
        s: &text[..end],
        pos: 0,
        values: 0,
    };
    let top = p.body(0)?;
    p.skip_space();
    if p.pos < p.s.len() {
        return Err(p.err("'}' without a section to close"));
    }
    Ok(top)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    values: usize,
}

/// Bytes a key, section name or bare word is made of (LVM names are `[A-Za-z0-9+_.-]`).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("metadata text, byte {}: {what}", self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'#' {
                while let Some(c) = self.peek() {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else if b.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn count(&mut self) -> Result<(), String> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(self.err(&format!("more than {MAX_VALUES} values")));
        }
        Ok(())
    }

    fn word(&mut self) -> Result<String, String> {
        let start = self.pos;
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
            if self.pos - start > MAX_NAME {
                return Err(self.err(&format!("name longer than {MAX_NAME} bytes")));
            }
        }
        if self.pos == start {
            return Err(self.err("expected a name"));
        }
        // Word bytes are ASCII.
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// Items up to a `}` (depth > 0) or the end of the text (depth 0).
    fn body(&mut self, depth: usize) -> Result<Section, String> {
        let mut sec = Section::default();
        loop {
            self.skip_space();
            match self.peek() {
                None if depth == 0 => return Ok(sec),
                None => return Err(self.err("unterminated section")),
                Some(b'}') if depth > 0 => {
                    self.pos += 1;
                    return Ok(sec);
                }
                Some(b'}') => return Ok(sec),
                Some(_) => {}
            }
            let key = self.word()?;
            self.count()?;
            self.skip_space();
            match self.peek() {
                Some(b'{') => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.err(&format!("sections nested over {MAX_DEPTH} deep")));
                    }
                    self.pos += 1;
                    let inner = self.body(depth + 1)?;
                    sec.items.push((key, Value::Section(inner)));
                }
                Some(b'=') => {
                    self.pos += 1;
                    self.skip_space();
                    let v = self.value()?;
                    sec.items.push((key, v));
                }
                _ => return Err(self.err(&format!("expected '=' or '{{' after {key:?}"))),
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.peek() {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        None => return Err(self.err("unterminated array")),
                        Some(b'[') => return Err(self.err("nested array")),
                        Some(_) => {}
                    }
                    self.count()?;
                    items.push(self.scalar()?);
                    self.skip_space();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {}
                        None => return Err(self.err("unterminated array")),
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
            }
            _ => self.scalar(),
        }
    }

    fn scalar(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b) if b.is_ascii_digit() || b == b'-' || b == b'+' => self.number(),
            _ => Err(self.err("expected a string, a number or an array")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(c) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    out.push(c);
                }
                _ => out.push(b),
            }
            if out.len() > MAX_STRING {
                return Err(self.err(&format!("string longer than {MAX_STRING} bytes")));
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        self.pos += 1;
        while self.peek().is_some_and(|b| b.is_ascii_digit() || b == b'.') {
            self.pos += 1;
            if self.pos - start > 64 {
                return Err(self.err("number longer than 64 characters"));
            }
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        if text.contains('.') {
            return Ok(Value::Float(text));
        }
        text.parse::<i64>()
            .map(Value::Int)
            .map_err(|_| self.err(&format!("bad integer {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_vg() {
        let t = parse(
            b"vg {\nid = \"a-b\"\nseqno = 3 # comment\nstatus = [\"READ\", \"WRITE\", ]\nflags = []\n\
              physical_volumes {\npv0 {\npe_start = 2048\n}\n}\n}\n\
              # Generated\ncontents = \"Text \\\"Format\\\\\"\nversion = 1\nf = 1.5\n\0garbage {",
        )
        .unwrap();
        let vg = t.section("vg").unwrap();
        assert_eq!(vg.str("id"), Some("a-b"));
        assert_eq!(vg.int("seqno"), Some(3));
        assert!(vg.has_flag("status", "WRITE") && !vg.has_flag("status", "X"));
        assert_eq!(vg.array("flags"), Some(&[][..]));
        let pvs = vg.section("physical_volumes").unwrap();
        let (name, pv0) = pvs.sections().next().unwrap();
        assert_eq!((name, pv0.int("pe_start")), ("pv0", Some(2048)));
        assert_eq!(t.str("contents"), Some("Text \"Format\\"));
        assert_eq!(t.get("f"), Some(&Value::Float(String::from("1.5"))));
        assert_eq!(t.sections().count(), 1);
    }

    #[test]
    fn refuses_hostile_text() {
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).unwrap_err().contains("nested"));
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        assert!(
            parse(b"a = \"open")
                .unwrap_err()
                .contains("unterminated string")
        );
        assert!(
            parse(b"a = \"x\\")
                .unwrap_err()
                .contains("unterminated string")
        );
        assert!(
            parse(b"a { b = 1")
                .unwrap_err()
                .contains("unterminated section")
        );
        assert!(
            parse(b"a = [1, 2")
                .unwrap_err()
                .contains("unterminated array")
        );
        assert!(parse(b"a = [[1]]").unwrap_err().contains("nested array"));
        assert!(parse(b"a = [1 2]").is_err());
        assert!(parse(b"}").is_err());
        assert!(parse(b"a b").is_err());
        assert!(parse(b"= 1").is_err());
        assert!(
            parse(b"a = 99999999999999999999")
                .unwrap_err()
                .contains("bad integer")
        );
        assert!(parse(b"a = -").is_err());
        let long = alloc::format!("a = \"{}\"", "x".repeat(MAX_STRING + 1));
        assert!(parse(long.as_bytes()).unwrap_err().contains("longer"));
        let name = "n".repeat(MAX_NAME + 1) + " = 1";
        assert!(parse(name.as_bytes()).unwrap_err().contains("longer"));
        let many = alloc::format!("a = [{}]", "1,".repeat(MAX_VALUES + 1));
        assert!(parse(many.as_bytes()).unwrap_err().contains("values"));
        assert_eq!(parse(b"").unwrap(), Section::default());
        assert_eq!(
            parse(b"\xff").unwrap_err(),
            "metadata text, byte 0: expected a name"
        );
    }
}
