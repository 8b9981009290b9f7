//! The commands the agent serves, and their arguments checked as QEMU's QAPI visitor checks
//! them (declared arguments in order, then anything undeclared), with its error messages.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value, json};

use super::reply::AgentError;
use crate::power::{PowerAction, PowerRequests};
use crate::rtc::WallTime;

/// What a command can use.
pub struct Context<'a> {
    /// The appliance's host name.
    pub host_name: &'a str,
    /// Wall-clock time.
    pub clock: &'a dyn WallTime,
    /// Where `guest-shutdown` records its action.
    pub power: &'a PowerRequests,
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Reply with this value.
    Return(Value),
    /// Reply with this value, prefixed by the 0xFF sentinel.
    Delimited(Value),
    /// Send nothing (a `success-response: false` command that succeeded).
    Silent,
}

type Run = fn(&Args<'_>, &Context<'_>) -> Result<Outcome, AgentError>;

/// One command.
pub struct Command {
    /// Its name (the request's `"execute"`).
    pub name: &'static str,
    /// Whether success is answered (`guest-shutdown` is not).
    pub success_response: bool,
    run: Run,
}

impl Command {
    /// Runs the command with these arguments.
    pub fn run(&self, args: &Map<String, Value>, ctx: &Context<'_>) -> Result<Outcome, AgentError> {
        (self.run)(&Args(args), ctx)
    }
}

/// Every command, in the order `guest-info` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "guest-sync-delimited",
        success_response: true,
        run: sync_delimited,
    },
    Command {
        name: "guest-sync",
        success_response: true,
        run: sync,
    },
    Command {
        name: "guest-ping",
        success_response: true,
        run: ping,
    },
    Command {
        name: "guest-info",
        success_response: true,
        run: info,
    },
    Command {
        name: "guest-get-osinfo",
        success_response: true,
        run: osinfo,
    },
    Command {
        name: "guest-get-host-name",
        success_response: true,
        run: host_name,
    },
    Command {
        name: "guest-get-time",
        success_response: true,
        run: time,
    },
    Command {
        name: "guest-get-users",
        success_response: true,
        run: users,
    },
    Command {
        name: "guest-shutdown",
        success_response: false,
        run: shutdown,
    },
];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The agent's version, as `guest-info` and `guest-get-osinfo` give it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A command's `"arguments"` object.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn missing(name: &str) -> AgentError {
        AgentError::generic(format!("Parameter '{name}' is missing"))
    }

    fn wrong_type(name: &str, expected: &str) -> AgentError {
        AgentError::generic(format!(
            "Invalid parameter type for '{name}', expected: {expected}"
        ))
    }

    /// A required 64-bit signed integer.
    fn int(&self, name: &str) -> Result<i64, AgentError> {
        let v = self.0.get(name).ok_or_else(|| Self::missing(name))?;
        v.as_i64().ok_or_else(|| Self::wrong_type(name, "integer"))
    }

    /// An optional string.
    fn opt_str(&self, name: &str) -> Result<Option<&str>, AgentError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(name, "string")),
        }
    }

    /// Fails on the first argument not in `declared`.
    fn only(&self, declared: &[&str]) -> Result<(), AgentError> {
        match self.0.keys().find(|k| !declared.contains(&k.as_str())) {
            Some(k) => Err(AgentError::generic(format!(
                "Parameter '{k}' is unexpected"
            ))),
            None => Ok(()),
        }
    }
}

fn sync(args: &Args<'_>, _: &Context<'_>) -> Result<Outcome, AgentError> {
    let id = args.int("id")?;
    args.only(&["id"])?;
    Ok(Outcome::Return(Value::from(id)))
}

fn sync_delimited(args: &Args<'_>, ctx: &Context<'_>) -> Result<Outcome, AgentError> {
    match sync(args, ctx)? {
        Outcome::Return(v) => Ok(Outcome::Delimited(v)),
        other => Ok(other),
    }
}

fn ping(args: &Args<'_>, _: &Context<'_>) -> Result<Outcome, AgentError> {
    args.only(&[])?;
    Ok(Outcome::Return(json!({})))
}

fn info(args: &Args<'_>, _: &Context<'_>) -> Result<Outcome, AgentError> {
    args.only(&[])?;
    let commands: Vec<Value> = COMMANDS
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "enabled": true,
                "success-response": c.success_response,
            })
        })
        .collect();
    Ok(Outcome::Return(json!({
        "version": VERSION,
        "supported_commands": commands,
    })))
}

fn osinfo(args: &Args<'_>, _: &Context<'_>) -> Result<Outcome, AgentError> {
    args.only(&[])?;
    Ok(Outcome::Return(json!({
        "id": "vmchannel",
        "name": "vmchannel",
        "pretty-name": format!("vmchannel appliance {VERSION}"),
        "version": VERSION,
        "version-id": VERSION,
        "kernel-release": VERSION,
        "kernel-version": format!("vmchannel unikernel {VERSION}"),
        "machine": "x86_64",
    })))
}

fn host_name(args: &Args<'_>, ctx: &Context<'_>) -> Result<Outcome, AgentError> {
    args.only(&[])?;
    Ok(Outcome::Return(json!({ "host-name": ctx.host_name })))
}

fn time(args: &Args<'_>, ctx: &Context<'_>) -> Result<Outcome, AgentError> {
    args.only(&[])?;
    let ns = ctx
        .clock
        .unix_ns()
        .map_err(|e| AgentError::generic(format!("cannot read the time: {e}")))?;
    Ok(Outcome::Return(Value::from(ns)))
}

fn users(args: &Args<'_>, _: &Context<'_>) -> Result<Outcome, AgentError> {
    args.only(&[])?;
    Ok(Outcome::Return(json!([])))
}

fn shutdown(args: &Args<'_>, ctx: &Context<'_>) -> Result<Outcome, AgentError> {
    let mode = args.opt_str("mode")?;
    args.only(&["mode"])?;
    let action = match mode {
        None | Some("powerdown") => PowerAction::PowerOff,
        Some("halt") => PowerAction::Halt,
        Some("reboot") => PowerAction::Reboot,
        Some(_) => {
            return Err(AgentError::generic(
                "Parameter 'mode' expects 'halt', 'powerdown', or 'reboot'",
            ));
        }
    };
    log::info!("guest agent: guest-shutdown, mode {}", action.mode());
    ctx.power.request(action);
    Ok(Outcome::Silent)
}
