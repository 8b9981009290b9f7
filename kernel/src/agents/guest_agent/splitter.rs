//! Splits the host's byte stream into JSON texts, one request each, the way QEMU's JSON
//! streamer does: by balancing brackets, not by lines.
//!
//! A text is an object or array (from its opening bracket to the bracket that balances it,
//! strings and their escapes taken into account), a top-level string, or a run of other
//! bytes (a number, a keyword, or garbage such as a stray `}`) that ends at whitespace or at
//! the start of another text. Whitespace between texts is skipped, so requests may come with
//! or without newlines, several per read or split across reads. Whether a text is valid JSON
//! is for the parser to say; the splitter only finds where it ends, in constant state, so
//! garbage never leaves it waiting for input that will not come.
//!
//! Two things bound it: a text longer than the limit is reported once as
//! [`Piece::TooLarge`] and skipped to its end without being kept, and a 0xFF byte (never
//! valid in JSON) discards any partial text at once.

use alloc::vec::Vec;

/// What the splitter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// One complete text.
    Text(Vec<u8>),
    /// A text grew past the limit. It is dropped and the rest of it skipped.
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between texts.
    Between,
    /// Inside an object or array.
    Nested,
    /// Inside a top-level string.
    TopString,
    /// In a run of other bytes.
    Run,
}

/// The splitter's state: the text so far (at most the limit) and where in it the scan is.
#[derive(Debug)]
pub struct Splitter {
    max: usize,
    text: Vec<u8>,
    mode: Mode,
    depth: u32,
    in_string: bool,
    escaped: bool,
    oversized: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The byte that flushes the splitter.
pub const FLUSH: u8 = 0xff;

impl Splitter {
    /// A splitter for texts of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            text: Vec::new(),
            mode: Mode::Between,
            depth: 0,
            in_string: false,
            escaped: false,
            oversized: false,
        }
    }

    /// Drops any partial text.
    pub fn reset(&mut self) {
        self.text = Vec::new();
        self.mode = Mode::Between;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.oversized = false;
    }

    /// True between texts (nothing partial is held).
    pub fn is_idle(&self) -> bool {
        self.mode == Mode::Between
    }

    /// Takes the next byte; returns a piece when this byte completes (or overflows) a text.
    pub fn push(&mut self, byte: u8) -> Option<Piece> {
        if byte == FLUSH {
            self.reset();
            return None;
        }
        match self.mode {
            Mode::Between => self.start(byte),
            Mode::Run if is_space(byte) => self.finish(),
            Mode::Run if matches!(byte, b'{' | b'[' | b'"') => {
                let run = self.finish();
                let next = self.start(byte);
                run.or(next)
            }
            Mode::Run => self.keep(byte),
            Mode::Nested | Mode::TopString => {
                let over = self.keep(byte);
                if self.scan(byte) {
                    let done = self.finish();
                    return over.or(done);
                }
                over
            }
        }
    }

    /// Begins a text with `byte` (or skips whitespace).
    fn start(&mut self, byte: u8) -> Option<Piece> {
        if is_space(byte) {
            return None;
        }
        match byte {
            b'{' | b'[' => {
                self.mode = Mode::Nested;
                self.depth = 1;
            }
            b'"' => {
                self.mode = Mode::TopString;
                self.in_string = true;
            }
            _ => self.mode = Mode::Run,
        }
        self.keep(byte)
    }

    /// Appends `byte` to the text, or reports the text too large (once) and drops it.
    fn keep(&mut self, byte: u8) -> Option<Piece> {
        if self.oversized {
            return None;
        }
        if self.text.len() >= self.max {
            self.oversized = true;
            self.text = Vec::new();
            return Some(Piece::TooLarge);
        }
        self.text.push(byte);
        None
    }

    /// Follows strings and brackets; true when `byte` ends the text.
    fn scan(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                return self.mode == Mode::TopString;
            }
            return false;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth = self.depth.saturating_add(1),
            b'}' | b']' => {
                self.depth -= 1;
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }

    /// Ends the current text: the text, or nothing if it was too large (already reported).
    fn finish(&mut self) -> Option<Piece> {
        let oversized = self.oversized;
        let text = core::mem::take(&mut self.text);
        self.reset();
        (!oversized).then_some(Piece::Text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn split(s: &mut Splitter, bytes: &[u8]) -> Vec<Piece> {
        bytes.iter().filter_map(|&b| s.push(b)).collect()
    }

    fn texts(pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Piece::TooLarge => "<too large>".into(),
            })
            .collect()
    }

    #[test]
    fn objects_with_and_without_separators() {
        let mut s = Splitter::new(1024);
        let got = split(
            &mut s,
            b"{\"a\":1}{\"b\":[1,{\"c\":2}]}\n  {\"d\":\"}{]\"}\r\n\t[1,2]",
        );
        assert_eq!(
            texts(&got),
            [
                "{\"a\":1}",
                "{\"b\":[1,{\"c\":2}]}",
                "{\"d\":\"}{]\"}",
                "[1,2]"
            ]
        );
        assert!(s.is_idle());
    }

    #[test]
    fn every_split_point_gives_the_same_texts() {
        let input =
            b" {\"execute\":\"guest-sync\",\"arguments\":{\"id\":12}} {\"s\":\"a\\\"}\\\\\"}x";
        let mut whole = Splitter::new(1024);
        let want = split(&mut whole, input);
        assert_eq!(want.len(), 2);
        for cut in 0..input.len() {
            let mut s = Splitter::new(1024);
            let mut got = split(&mut s, &input[..cut]);
            got.extend(split(&mut s, &input[cut..]));
            assert_eq!(got, want, "cut at {cut}");
        }
        // The trailing run `x` is still open: it ends only at a delimiter.
        assert!(!whole.is_idle());
        assert_eq!(texts(&split(&mut whole, b" ")), ["x"]);
    }

    #[test]
    fn escapes_inside_strings() {
        let mut s = Splitter::new(1024);
        let got = split(&mut s, br#"{"k":"\\"}{"k":"\"}"}"#);
        assert_eq!(texts(&got), [r#"{"k":"\\"}"#, r#"{"k":"\"}"}"#]);
    }

    #[test]
    fn scalars_strings_and_garbage_are_texts_too() {
        let mut s = Splitter::new(1024);
        let got = split(&mut s, b"42 \"str ing\"true}}]{}garbage\"x\" ");
        assert_eq!(
            texts(&got),
            ["42", "\"str ing\"", "true}}]", "{}", "garbage", "\"x\""]
        );
    }

    #[test]
    fn flush_byte_drops_the_partial_text() {
        let mut s = Splitter::new(1024);
        assert!(split(&mut s, b"{\"execute\":\"gue").is_empty());
        assert!(!s.is_idle());
        // Inside a string, inside a run, between texts: 0xFF always resets.
        let got = split(&mut s, b"\xff{\"a\":\"\xff{\"b\":1}12\xff \xff\xff{}");
        assert_eq!(texts(&got), ["{\"b\":1}", "{}"]);
        assert!(s.is_idle());
    }

    #[test]
    fn oversized_texts_are_reported_once_and_skipped_to_their_end() {
        let mut s = Splitter::new(16);
        let mut big = b"{\"k\":\"".to_vec();
        big.extend(vec![b'x'; 100]);
        // Brackets inside the string do not count; its closing quote and brace end the text.
        big.extend_from_slice(b"}{[");
        big.extend_from_slice(b"\"} {\"ok\":1}");
        let got = split(&mut s, &big);
        assert_eq!(texts(&got), ["<too large>", "{\"ok\":1}"]);
        // Exactly at the limit is fine; one more byte is not.
        let mut s = Splitter::new(8);
        assert_eq!(texts(&split(&mut s, b"{\"a\":12}")), ["{\"a\":12}"]);
        assert_eq!(
            texts(&split(&mut s, b"{\"a\":123} {}")),
            ["<too large>", "{}"]
        );
        // A long run of garbage also ends.
        let mut s = Splitter::new(8);
        let mut run = vec![b'z'; 50];
        run.extend_from_slice(b" 7 ");
        assert_eq!(texts(&split(&mut s, &run)), ["<too large>", "7"]);
        // Skipping holds no memory, however long the text.
        let mut s = Splitter::new(8);
        for _ in 0..10_000 {
            s.push(b'[');
        }
        assert!(s.text.capacity() <= 8);
        assert!(split(&mut s, b"\xff{}").len() == 1);
    }

    #[test]
    fn stray_closers_and_deep_nesting_do_not_break_the_scan() {
        let mut s = Splitter::new(1 << 20);
        let mut deep = vec![b'['; 5000];
        deep.extend(vec![b']'; 5000]);
        let got = split(&mut s, &deep);
        assert_eq!(got.len(), 1);
        // Mismatched closers still balance by count (the parser rejects the text).
        assert_eq!(texts(&split(&mut s, b"{]")), ["{]"]);
    }
}
