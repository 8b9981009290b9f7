//! `vmch`: the vmchannel host tool. Inspects disk images and reads their files through the
//! unikernel appliance (under the bundled VMM or QEMU), and runs the VMM itself.

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vmch",
    version,
    about = "Ask a virtual machine's disk what is on it",
    after_help = "Exit status: 0 success (inspect: an OS was found); 1 the command failed \
                  (a missing path, a checksum mismatch); 2 usage; 3 no operating system found; \
                  4 an image cannot be read; 5 the appliance failed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect disk images: operating systems, versions, hostnames, mount points, packages
    /// (virt-inspector's XML with --format xml). With no image, inspects the bundled demo disk.
    Inspect(cli::inspect::InspectArgs),
    /// List a directory of the guest's filesystem.
    Ls(cli::files::LsArgs),
    /// Print a file of the guest's filesystem (its sha256 checked against the appliance's).
    Cat(cli::files::CatArgs),
    /// Show a file's metadata.
    Stat(cli::files::StatArgs),
    /// Show filesystem usage, as virt-df.
    Df(cli::files::DfArgs),
    /// Copy a file out of the guest's filesystem, verified by sha256.
    Download(cli::files::DownloadArgs),
    /// Send one command to a guest agent (org.qemu.guest_agent.0) on a unix socket and print
    /// its answer.
    Agent(cli::agent::AgentArgs),
    /// Boot a kernel under the bundled KVM VMM.
    Run(cli::run::RunArgs),
    /// Write a libguestfs fixed appliance of this kernel into DIR: unmodified libguestfs
    /// programs use it with LIBGUESTFS_PATH=DIR.
    LibguestfsAppliance {
        /// The directory (created if missing).
        dir: std::path::PathBuf,
        /// The kernel [default: the one built with vmch].
        #[arg(long)]
        kernel: Option<std::path::PathBuf>,
    },
    /// Write the bundled demo disk (the one `vmch inspect` inspects with no image) to a file.
    DemoDisk {
        /// Where to write it.
        path: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    // Commands that start an appliance leave nothing behind when a signal stops them (the
    // VMM, `vmch run`, handles its own signals).
    if matches!(
        cli.command,
        Command::Inspect(_)
            | Command::Ls(_)
            | Command::Cat(_)
            | Command::Stat(_)
            | Command::Df(_)
            | Command::Download(_)
    ) && let Err(e) = vmch::cleanup::install_signal_handlers()
    {
        return cli::fail(e, vmch::exit::FAILED);
    }
    let code = match cli.command {
        Command::Inspect(args) => cli::inspect::main(args),
        Command::Ls(args) => cli::files::ls(args),
        Command::Cat(args) => cli::files::cat(args),
        Command::Stat(args) => cli::files::stat(args),
        Command::Df(args) => cli::files::df(args),
        Command::Download(args) => cli::files::download(args),
        Command::Agent(args) => cli::agent::main(args),
        Command::Run(args) => cli::run::run(args, started),
        Command::LibguestfsAppliance { dir, kernel } => {
            let kernel = kernel.unwrap_or_else(|| vmch::launch::BUILT_KERNEL.into());
            match vmch::fixed_appliance::write(&dir, &kernel) {
                Ok(()) => {
                    println!(
                        "wrote a libguestfs appliance to {}: use it with LIBGUESTFS_PATH={}",
                        dir.display(),
                        dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => cli::fail(e, vmch::exit::FAILED),
            }
        }
        Command::DemoDisk { path } => match vmch::demo::write(&path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => cli::fail(e, vmch::exit::FAILED),
        },
    };
    vmch::cleanup::finish(code)
}
