//! A client for the QEMU guest agent protocol (the guest's `org.qemu.guest_agent.0` port),
//! as qemu-ga speaks it and as the vmchannel kernel's agent answers it.
//!
//! Commands are JSON objects (`{"execute": NAME, "arguments": {...}}`); each answer is one
//! JSON line, `{"return": ...}` or `{"error": {"class": ..., "desc": ...}}`. Before its first
//! command the client resynchronises as libvirt does: a 0xFF byte flushes whatever the agent
//! had half-parsed, then `guest-sync-delimited` with a fresh id is answered by a 0xFF byte and
//! the id, and everything before that marker (answers meant for an earlier client) is
//! dropped. `guest-shutdown` has no answer.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The byte that flushes the agent's parser and marks a `guest-sync-delimited` answer.
pub const DELIMITER: u8 = 0xff;
/// Longest answer line accepted.
pub const MAX_LINE: usize = 16 << 20;

/// Why an agent command failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The connection failed.
    #[error("agent connection: {0}")]
    Io(#[from] io::Error),
    /// No answer came in time (is another client connected? a chardev socket serves one).
    #[error(
        "no answer from the agent in time (is the guest running its agent, and no other client connected?)"
    )]
    Timeout,
    /// The agent hung up.
    #[error("the agent closed the connection")]
    Closed,
    /// The agent answered something that is not a JSON answer.
    #[error("bad answer from the agent: {0}")]
    Protocol(String),
    /// The agent answered with an error.
    #[error("{class}: {desc}")]
    Guest {
        /// The error class (`GenericError`, `CommandNotFound` ...).
        class: String,
        /// Its description.
        desc: String,
    },
}

/// Commands that have no answer when they succeed.
pub fn has_no_reply(command: &str) -> bool {
    matches!(
        command,
        "guest-shutdown" | "guest-suspend-disk" | "guest-suspend-ram" | "guest-suspend-hybrid"
    )
}

/// How long [`AgentClient::connect`] waits for one resync's answer before sending another.
pub const SYNC_RETRY: Duration = Duration::from_secs(2);

/// A guest agent client over a byte stream.
pub struct AgentClient<S> {
    stream: S,
    buf: Vec<u8>,
}

impl AgentClient<UnixStream> {
    /// Connects to the agent's socket, with `timeout` for each answer, and resynchronises.
    /// The resync is as [`AgentClient::resync`].
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, AgentError> {
        let stream = UnixStream::connect(path)?;
        let mut client = AgentClient::new(stream);
        client.resync(timeout)?;
        Ok(client)
    }

    /// [`AgentClient::sync`], sent again every [`SYNC_RETRY`] until answered or `timeout`
    /// has passed (each time with a new id; answers to the earlier ones are passed over), as
    /// libvirt does with qemu-ga: a request that reaches the guest while its agent is still
    /// draining the previous client's session is answered to nobody, and the guest cannot
    /// tell (virtio-serial orders nothing between its control queue and a port's data). The
    /// read timeout is `timeout` afterwards.
    pub fn resync(&mut self, timeout: Duration) -> Result<(), AgentError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(AgentError::Timeout);
            }
            self.stream.set_read_timeout(Some(left.min(SYNC_RETRY)))?;
            match self.sync() {
                Ok(()) => break,
                Err(AgentError::Timeout) => continue,
                Err(e) => return Err(e),
            }
        }
        self.stream.set_read_timeout(Some(timeout))?;
        Ok(())
    }
}

impl<S: Read + Write> AgentClient<S> {
    /// A client on `stream` (not yet synchronised: see [`AgentClient::sync`]).
    pub fn new(stream: S) -> Self {
        AgentClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// The stream, for tests that send raw bytes.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Flushes the agent's parser and waits for the answer to a fresh `guest-sync-delimited`,
    /// dropping anything before it.
    pub fn sync(&mut self) -> Result<(), AgentError> {
        let id = sync_id();
        self.stream.write_all(&[DELIMITER])?;
        self.send("guest-sync-delimited", Some(json!({ "id": id })))?;
        loop {
            // Skip to the delimiter, then read the line after it.
            loop {
                if let Some(at) = self.buf.iter().position(|&b| b == DELIMITER) {
                    self.buf.drain(..=at);
                    break;
                }
                self.buf.clear();
                self.fill()?;
            }
            let line = self.line()?;
            let value: Value = match serde_json::from_slice(&line) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if value.get("return").and_then(Value::as_u64) == Some(id) {
                return Ok(());
            }
        }
    }

    /// Sends one command.
    pub fn send(&mut self, command: &str, arguments: Option<Value>) -> Result<(), AgentError> {
        let mut request = json!({ "execute": command });
        if let Some(args) = arguments {
            request["arguments"] = args;
        }
        let mut bytes = serde_json::to_vec(&request)
            .map_err(|e| AgentError::Protocol(format!("encoding the request: {e}")))?;
        bytes.push(b'\n');
        self.stream.write_all(&bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Reads one answer: the `return` value, or the agent's error.
    pub fn answer(&mut self) -> Result<Value, AgentError> {
        loop {
            let line = self.line()?;
            let text = line.strip_prefix(&[DELIMITER]).unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value: Value = serde_json::from_slice(text).map_err(|e| {
                AgentError::Protocol(format!("{e}: {}", String::from_utf8_lossy(text)))
            })?;
            if let Some(r) = value.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = value.get("error") {
                let field = |k: &str| {
                    e.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                return Err(AgentError::Guest {
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            return Err(AgentError::Protocol(format!(
                "neither return nor error: {value}"
            )));
        }
    }

    /// Runs a command and returns its answer (`Value::Null` for commands with no answer).
    pub fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, AgentError> {
        self.send(command, arguments)?;
        if has_no_reply(command) {
            return Ok(Value::Null);
        }
        self.answer()
    }

    fn fill(&mut self) -> Result<(), AgentError> {
        let mut chunk = [0u8; 4096];
        let n = match self.stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(AgentError::Timeout);
            }
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(AgentError::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// One line, without its newline.
    fn line(&mut self) -> Result<Vec<u8>, AgentError> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(AgentError::Protocol(format!(
                    "an answer longer than {MAX_LINE} bytes"
                )));
            }
            self.fill()?;
        }
    }
}

/// A sync id unlikely to repeat: time and process id mixed.
fn sync_id() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) & ((1 << 53) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted peer: what it answers, and what it was sent.
    struct Peer {
        input: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn client(answers: &[u8]) -> AgentClient<Peer> {
        AgentClient::new(Peer {
            input: io::Cursor::new(answers.to_vec()),
            sent: Vec::new(),
        })
    }

    #[test]
    fn answers_and_errors() {
        let mut c = client(b"{\"return\": {}}\n{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}\n\n{\"return\": 5}\nnot json\n");
        assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));
        match c.execute("guest-nope", None) {
            Err(AgentError::Guest { class, desc }) => {
                assert_eq!((class.as_str(), desc.as_str()), ("CommandNotFound", "nope"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.answer().unwrap(), json!(5));
        assert!(matches!(c.answer(), Err(AgentError::Protocol(_))));
        assert!(matches!(c.answer(), Err(AgentError::Closed)));
        assert!(c.stream.sent.starts_with(b"{\"execute\":\"guest-ping\"}\n"));
        // No answer is awaited for a shutdown.
        let mut c = client(b"");
        let args = Some(json!({"mode": "halt"}));
        assert_eq!(c.execute("guest-shutdown", args).unwrap(), Value::Null);
    }

    /// A peer that answers `guest-sync-delimited` as an agent with a stale reply pending
    /// would: an old answer, a half line, then the marker and the id it was sent.
    struct Agent {
        input: Vec<u8>,
        sent: Vec<u8>,
    }

    impl Read for Agent {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.input.len()).min(3); // dribble
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Agent {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            if let Some(end) = self.sent.iter().rposition(|&b| b == b'\n') {
                let line = &self.sent[..end];
                let start = line.iter().rposition(|&b| b == b'\n' || b == DELIMITER);
                let req: Value = serde_json::from_slice(&line[start.map_or(0, |s| s + 1)..])
                    .unwrap_or(Value::Null);
                if req["execute"] == "guest-sync-delimited" {
                    let id = &req["arguments"]["id"];
                    self.input
                        .extend_from_slice(b"{\"return\": 1}\n{\"return\": 12");
                    self.input.push(DELIMITER);
                    self.input
                        .extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
                    self.input.extend_from_slice(b"{\"return\": {}}\n");
                }
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sync_drops_what_came_before_the_delimiter() {
        let mut c = AgentClient::new(Agent {
            input: Vec::new(),
            sent: Vec::new(),
        });
        c.sync().unwrap();
        assert_eq!(c.stream.sent[0], DELIMITER, "the parser is flushed first");
        // The stale answers are gone: the next answer is the one after the marker's.
        assert_eq!(c.answer().unwrap(), json!({}));
        // A marker followed by the wrong id is not taken for the sync.
        let mut c = client(b"{\"return\": 1}\n\xff{\"return\": 7}\n");
        assert!(matches!(c.sync(), Err(AgentError::Closed)));
    }

    /// A first resync that the agent never answers (drained as the previous client's) is
    /// sent again, and the second one's answer ends the resync.
    #[test]
    fn an_unanswered_resync_is_sent_again() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let agent = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            // Ignore everything until the second request, then answer its id.
            loop {
                let n = theirs.read(&mut buf).unwrap();
                assert!(n > 0, "the client hung up");
                seen.extend_from_slice(&buf[..n]);
                let requests: Vec<&[u8]> = seen
                    .split(|&b| b == DELIMITER)
                    .filter(|r| r.ends_with(b"\n"))
                    .collect();
                if let [_, second, ..] = requests.as_slice() {
                    let v: Value = serde_json::from_slice(second).unwrap();
                    let id = v["arguments"]["id"].as_u64().unwrap();
                    theirs.write_all(&[DELIMITER]).unwrap();
                    theirs
                        .write_all(format!("{{\"return\": {id}}}\n").as_bytes())
                        .unwrap();
                    return requests.len();
                }
            }
        });
        let mut c = AgentClient::new(ours);
        let started = std::time::Instant::now();
        c.resync(Duration::from_secs(20)).unwrap();
        assert!(started.elapsed() >= SYNC_RETRY);
        assert_eq!(agent.join().unwrap(), 2);
    }
}
