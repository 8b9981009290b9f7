//! `vmch agent SOCKET COMMAND [ARGUMENTS-JSON]`: one guest agent command, its answer printed
//! as JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use vmch::agent::{AgentClient, AgentError};
use vmch::exit;

use super::fail;

/// `vmch agent`'s arguments.
#[derive(clap::Args)]
pub struct AgentArgs {
    /// The unix socket of the guest's `org.qemu.guest_agent.0` port.
    socket: PathBuf,
    /// The command (`guest-ping`, `guest-info`, ...; the `guest-` prefix may be left out).
    command: String,
    /// The command's arguments, a JSON object (`'{"mode": "reboot"}'`).
    arguments: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Runs `vmch agent`.
pub fn main(args: AgentArgs) -> ExitCode {
    let command = if args.command.starts_with("guest-") {
        args.command.clone()
    } else {
        format!("guest-{}", args.command)
    };
    let arguments = match args.arguments.as_deref().map(serde_json::from_str) {
        None => None,
        Some(Ok(v @ serde_json::Value::Object(_))) => Some(v),
        Some(Ok(_)) => return fail("the arguments must be a JSON object", exit::USAGE),
        Some(Err(e)) => return fail(format!("the arguments are not JSON: {e}"), exit::USAGE),
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut client = match AgentClient::connect(&args.socket, timeout) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                format!("cannot reach the agent at {}: {e}", args.socket.display()),
                exit::APPLIANCE_FAILED,
            );
        }
    };
    match client.execute(&command, arguments) {
        Ok(serde_json::Value::Null) => ExitCode::from(exit::OK),
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
            );
            ExitCode::from(exit::OK)
        }
        Err(e @ AgentError::Guest { .. }) => fail(format!("{command}: {e}"), exit::FAILED),
        Err(e) => fail(format!("{command}: {e}"), exit::APPLIANCE_FAILED),
    }
}
