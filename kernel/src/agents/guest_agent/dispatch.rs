//! From one JSON text to its reply, as qemu-ga's dispatcher does it: parse, check the
//! request's shape (`"execute"` a string, `"arguments"` an object, `"id"` anything, nothing
//! else), find the command, run it. The request's `"id"` is echoed in the reply, success or
//! error; texts that are not valid JSON or not objects are answered without one.

use alloc::format;

use serde_json::{Map, Value};

use super::commands::{self, Context, Outcome};
use super::reply::{AgentError, Reply};

/// The reply to one text, or `None` for a command that answers nothing on success.
pub fn handle_text(text: &[u8], ctx: &Context<'_>) -> Option<Reply> {
    match serde_json::from_slice::<Value>(text) {
        Ok(value) => handle(value, ctx),
        Err(e) => Some(Reply::error(AgentError::generic(format!(
            "JSON parse error, {e}"
        )))),
    }
}

/// The reply to one parsed request.
pub fn handle(request: Value, ctx: &Context<'_>) -> Option<Reply> {
    let Value::Object(request) = request else {
        return Some(Reply::error(AgentError::generic(
            "QMP input must be a JSON object",
        )));
    };
    let id = request.get("id").cloned();
    let body = run(&request, ctx);
    let (body, delimited) = match body {
        Ok(Outcome::Silent) => return None,
        Ok(Outcome::Return(v)) => (Ok(v), false),
        Ok(Outcome::Delimited(v)) => (Ok(v), true),
        Err(e) => (Err(e), false),
    };
    Some(Reply {
        id,
        body,
        delimited,
    })
}

fn run(
    request: &Map<alloc::string::String, Value>,
    ctx: &Context<'_>,
) -> Result<Outcome, AgentError> {
    for (key, value) in request {
        match key.as_str() {
            "execute" if !value.is_string() => {
                return Err(AgentError::generic(
                    "QMP input member 'execute' must be a string",
                ));
            }
            "arguments" if !value.is_object() => {
                return Err(AgentError::generic(
                    "QMP input member 'arguments' must be an object",
                ));
            }
            "execute" | "arguments" | "id" => {}
            other => {
                return Err(AgentError::generic(format!(
                    "QMP input member '{other}' is unexpected"
                )));
            }
        }
    }
    let Some(name) = request.get("execute").and_then(Value::as_str) else {
        return Err(AgentError::generic("QMP input lacks member 'execute'"));
    };
    let command = commands::find(name)
        .ok_or_else(|| AgentError::not_found(format!("The command {name} has not been found")))?;
    let empty = Map::new();
    let args = request
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    command.run(args, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::{PowerAction, PowerRequests};
    use crate::rtc::{RtcError, WallTime};
    use alloc::string::String;
    use alloc::vec::Vec;
    use serde_json::json;

    struct FixedClock(Result<i64, RtcError>);

    impl WallTime for FixedClock {
        fn unix_ns(&self) -> Result<i64, RtcError> {
            self.0
        }
    }

    struct Env {
        clock: FixedClock,
        power: PowerRequests,
    }

    impl Env {
        fn new() -> Self {
            Env {
                clock: FixedClock(Ok(1_700_000_000_123_456_789)),
                power: PowerRequests::new(),
            }
        }

        fn ctx(&self) -> Context<'_> {
            Context {
                host_name: "appliance-7",
                clock: &self.clock,
                power: &self.power,
            }
        }

        /// The reply to `text`, as a JSON value plus its delimited flag.
        fn ask(&self, text: &str) -> Option<(Value, bool)> {
            handle_text(text.as_bytes(), &self.ctx()).map(|r| (r.to_value(), r.delimited))
        }

        fn ret(&self, text: &str) -> Value {
            let (v, _) = self.ask(text).expect("a reply");
            v.get("return")
                .cloned()
                .unwrap_or_else(|| panic!("no return in {v}"))
        }

        fn err(&self, text: &str) -> (String, String) {
            let (v, _) = self.ask(text).expect("a reply");
            let e = &v["error"];
            (
                e["class"].as_str().unwrap().into(),
                e["desc"].as_str().unwrap().into(),
            )
        }
    }

    fn generic(desc: &str) -> (String, String) {
        ("GenericError".into(), desc.into())
    }

    #[test]
    fn sync_and_sync_delimited() {
        let env = Env::new();
        assert_eq!(
            env.ask(r#"{"execute":"guest-sync","arguments":{"id":-42}}"#),
            Some((json!({"return": -42}), false))
        );
        assert_eq!(
            env.ask(r#"{"execute":"guest-sync-delimited","arguments":{"id":9223372036854775807}}"#),
            Some((json!({"return": i64::MAX}), true))
        );
    }

    #[test]
    fn ping_users_host_name_time() {
        let env = Env::new();
        assert_eq!(env.ret(r#"{"execute":"guest-ping"}"#), json!({}));
        assert_eq!(
            env.ret(r#"{"execute":"guest-ping","arguments":{}}"#),
            json!({})
        );
        assert_eq!(env.ret(r#"{"execute":"guest-get-users"}"#), json!([]));
        assert_eq!(
            env.ret(r#"{"execute":"guest-get-host-name"}"#),
            json!({"host-name": "appliance-7"})
        );
        assert_eq!(
            env.ret(r#"{"execute":"guest-get-time"}"#),
            json!(1_700_000_000_123_456_789i64)
        );
        let no_rtc = Env {
            clock: FixedClock(Err(RtcError::Absent)),
            ..Env::new()
        };
        assert_eq!(
            no_rtc.err(r#"{"execute":"guest-get-time"}"#),
            generic("cannot read the time: no real-time clock answers")
        );
    }

    #[test]
    fn info_lists_every_command() {
        let env = Env::new();
        let info = env.ret(r#"{"execute":"guest-info"}"#);
        assert_eq!(info["version"], json!(commands::VERSION));
        let listed = info["supported_commands"].as_array().unwrap();
        let names: Vec<&str> = listed.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "guest-sync-delimited",
                "guest-sync",
                "guest-ping",
                "guest-info",
                "guest-get-osinfo",
                "guest-get-host-name",
                "guest-get-time",
                "guest-get-users",
                "guest-shutdown"
            ]
        );
        for c in listed {
            assert_eq!(c["enabled"], json!(true));
            let silent = c["name"] == json!("guest-shutdown");
            assert_eq!(c["success-response"], json!(!silent), "{c}");
            // Every listed command is served: none is "not found".
            let (v, _) = env
                .ask(&format!(
                    r#"{{"execute":{},"arguments":{{"x":1}}}}"#,
                    c["name"]
                ))
                .unwrap();
            assert_eq!(v["error"]["class"], json!("GenericError"), "{v}");
        }
        assert_eq!(env.power.pending(), None);
    }

    #[test]
    fn osinfo_is_the_appliance() {
        let env = Env::new();
        let os = env.ret(r#"{"execute":"guest-get-osinfo"}"#);
        assert_eq!(os["id"], json!("vmchannel"));
        assert_eq!(os["machine"], json!("x86_64"));
        for key in [
            "name",
            "pretty-name",
            "version",
            "version-id",
            "kernel-release",
            "kernel-version",
        ] {
            assert!(os[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
        }
    }

    #[test]
    fn shutdown_records_the_action_and_answers_nothing() {
        for (request, action) in [
            (r#"{"execute":"guest-shutdown"}"#, PowerAction::PowerOff),
            (
                r#"{"execute":"guest-shutdown","arguments":{"mode":"powerdown"}}"#,
                PowerAction::PowerOff,
            ),
            (
                r#"{"execute":"guest-shutdown","arguments":{"mode":"halt"}}"#,
                PowerAction::Halt,
            ),
            (
                r#"{"execute":"guest-shutdown","arguments":{"mode":"reboot"},"id":3}"#,
                PowerAction::Reboot,
            ),
        ] {
            let env = Env::new();
            assert_eq!(env.ask(request), None, "{request}");
            assert_eq!(env.power.pending(), Some(action), "{request}");
        }
        let env = Env::new();
        assert_eq!(
            env.err(r#"{"execute":"guest-shutdown","arguments":{"mode":"sleep"}}"#),
            generic("Parameter 'mode' expects 'halt', 'powerdown', or 'reboot'")
        );
        assert_eq!(
            env.err(r#"{"execute":"guest-shutdown","arguments":{"mode":1}}"#),
            generic("Invalid parameter type for 'mode', expected: string")
        );
        assert_eq!(
            env.err(r#"{"execute":"guest-shutdown","arguments":{"mode":"halt","force":true}}"#),
            generic("Parameter 'force' is unexpected")
        );
        assert_eq!(env.power.pending(), None);
    }

    #[test]
    fn id_is_echoed_on_success_and_error() {
        let env = Env::new();
        let (v, _) = env.ask(r#"{"execute":"guest-ping","id":"abc"}"#).unwrap();
        assert_eq!(v, json!({"return": {}, "id": "abc"}));
        let (v, _) = env.ask(r#"{"id":{"n":[1]},"execute":"nope"}"#).unwrap();
        assert_eq!(v["id"], json!({"n":[1]}));
        assert_eq!(v["error"]["class"], json!("CommandNotFound"));
        let (v, _) = env.ask(r#"{"id":7,"execute":5}"#).unwrap();
        assert_eq!(v["id"], json!(7));
        assert_eq!(v["error"]["class"], json!("GenericError"));
    }

    #[test]
    fn malformed_requests() {
        let env = Env::new();
        assert_eq!(
            env.err(r#"{"execute":"guest-reboot-please"}"#),
            (
                "CommandNotFound".into(),
                "The command guest-reboot-please has not been found".into()
            )
        );
        assert_eq!(
            env.err(r#"{"arguments":{}}"#),
            generic("QMP input lacks member 'execute'")
        );
        assert_eq!(
            env.err(r#"{"execute":["guest-ping"]}"#),
            generic("QMP input member 'execute' must be a string")
        );
        assert_eq!(
            env.err(r#"{"execute":"guest-ping","arguments":[]}"#),
            generic("QMP input member 'arguments' must be an object")
        );
        assert_eq!(
            env.err(r#"{"execute":"guest-ping","exec-oob":"guest-ping"}"#),
            generic("QMP input member 'exec-oob' is unexpected")
        );
        for not_object in ["[1,2]", "42", "\"guest-ping\"", "null", "true"] {
            assert_eq!(
                env.err(not_object),
                generic("QMP input must be a JSON object"),
                "{not_object}"
            );
            assert_eq!(env.ask(not_object).unwrap().0.get("id"), None);
        }
    }

    #[test]
    fn bad_arguments() {
        let env = Env::new();
        assert_eq!(
            env.err(r#"{"execute":"guest-sync"}"#),
            generic("Parameter 'id' is missing")
        );
        assert_eq!(
            env.err(r#"{"execute":"guest-sync","arguments":{"id":"1"}}"#),
            generic("Invalid parameter type for 'id', expected: integer")
        );
        // Floats and integers beyond 64-bit signed are not integers here either.
        for id in ["1.5", "1e3", "9223372036854775808", "-9223372036854775809"] {
            assert_eq!(
                env.err(&format!(
                    r#"{{"execute":"guest-sync-delimited","arguments":{{"id":{id}}}}}"#
                )),
                generic("Invalid parameter type for 'id', expected: integer"),
                "{id}"
            );
        }
        assert_eq!(
            env.err(r#"{"execute":"guest-sync","arguments":{"id":1,"extra":2}}"#),
            generic("Parameter 'extra' is unexpected")
        );
        assert_eq!(
            env.err(r#"{"execute":"guest-get-time","arguments":{"when":"now"}}"#),
            generic("Parameter 'when' is unexpected")
        );
    }

    #[test]
    fn bad_json_is_a_generic_parse_error() {
        let env = Env::new();
        for text in [
            "{\"execute\":guest-ping}",
            "{\"execute\":\"guest-ping\",}",
            "{]",
            "}}}",
            "{'execute':'guest-ping'}",
            "{\"execute\":\"guest-\x01ping\"}",
        ] {
            let (class, desc) = env.err(text);
            assert_eq!(class, "GenericError", "{text:?}");
            assert!(desc.starts_with("JSON parse error, "), "{text:?}: {desc}");
        }
        // Invalid UTF-8 inside a string.
        let reply = handle_text(b"{\"execute\":\"\xc3\x28\"}", &env.ctx()).unwrap();
        let desc = reply.body.unwrap_err().desc;
        assert!(desc.starts_with("JSON parse error, "), "{desc}");
        // Nesting deeper than the parser's limit is an error, not a stack overflow.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let (class, desc) = env.err(&deep);
        assert_eq!(class, "GenericError");
        assert!(desc.starts_with("JSON parse error, "), "{desc}");
    }
}
