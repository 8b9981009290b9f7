//! Replies in qemu-ga's shape: `{"return": value}` or
//! `{"error": {"class": ..., "desc": ...}}`, with the request's `"id"` echoed back when it had
//! one, as one line of compact JSON. A reply to `guest-sync-delimited` starts with a 0xFF byte
//! the client can scan for.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

/// The error classes this agent answers with (QEMU's `QapiErrorClass` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Everything but an unknown command: bad JSON, a malformed request, bad arguments, a
    /// command that failed.
    GenericError,
    /// The command does not exist.
    CommandNotFound,
}

impl ErrorClass {
    /// The class's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
        }
    }
}

/// A request that failed, as the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {desc}", class.as_str())]
pub struct AgentError {
    /// The error class.
    pub class: ErrorClass,
    /// The human-readable description.
    pub desc: String,
}

impl AgentError {
    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::GenericError,
            desc: desc.into(),
        }
    }

    /// A `CommandNotFound`.
    pub fn not_found(desc: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::CommandNotFound,
            desc: desc.into(),
        }
    }
}

/// One reply to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The request's `"id"`, echoed back.
    pub id: Option<Value>,
    /// The command's value or its error.
    pub body: Result<Value, AgentError>,
    /// Prefix the line with 0xFF (`guest-sync-delimited`).
    pub delimited: bool,
}

/// The sentinel byte before a delimited reply.
pub const SENTINEL: u8 = 0xff;

impl Reply {
    /// An error reply with no id (for input that is not a request at all).
    pub fn error(error: AgentError) -> Self {
        Self {
            id: None,
            body: Err(error),
            delimited: false,
        }
    }

    /// The reply as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut reply = Map::new();
        match &self.body {
            Ok(value) => {
                reply.insert("return".into(), value.clone());
            }
            Err(e) => {
                let mut error = Map::new();
                error.insert("class".into(), Value::from(e.class.as_str()));
                error.insert("desc".into(), Value::from(e.desc.as_str()));
                reply.insert("error".into(), Value::Object(error));
            }
        }
        if let Some(id) = &self.id {
            reply.insert("id".into(), id.clone());
        }
        Value::Object(reply)
    }

    /// Appends the reply's bytes (sentinel, JSON, newline) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.delimited {
            out.push(SENTINEL);
        }
        match serde_json::to_vec(&self.to_value()) {
            Ok(json) => out.extend_from_slice(&json),
            // Serializing a `Value` fails only for non-string map keys, which it cannot have.
            Err(_) => out.extend_from_slice(
                br#"{"error":{"class":"GenericError","desc":"reply could not be encoded"}}"#,
            ),
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(r: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out);
        out
    }

    #[test]
    fn shapes() {
        let ok = Reply {
            id: None,
            body: Ok(json!({})),
            delimited: false,
        };
        assert_eq!(line(&ok), b"{\"return\":{}}\n");
        let err = Reply::error(AgentError::not_found("The command x has not been found"));
        assert_eq!(
            line(&err),
            b"{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command x has not been found\"}}\n"
        );
        let with_id = Reply {
            id: Some(json!(["any", 1])),
            body: Ok(json!(5)),
            delimited: true,
        };
        assert_eq!(line(&with_id), b"\xff{\"id\":[\"any\",1],\"return\":5}\n");
        let generic = AgentError::generic("bad \"quote\"\n");
        assert_eq!(generic.to_string(), "GenericError: bad \"quote\"\n");
        // Descriptions are escaped: one reply is always one line.
        let escaped = line(&Reply::error(generic));
        assert_eq!(escaped.iter().filter(|&&b| b == b'\n').count(), 1);
    }
}
