//! `vmch inspect`: what operating systems the images hold.
//!
//! Without `-j`, every image given is a disk of one machine (as virt-inspector's `-a`), all
//! attached to one appliance. With `-j N`, each image is a machine of its own: N appliances
//! run at once and each result is printed as one JSON line as soon as it is known; one
//! image's failure does not stop the others.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use serde::Serialize;
use vmch::exit;
use vmch::launch::{Appliance, LaunchError};
use vmch::report::{Inspection, OperatingSystem};
use vmch::session::{client_status, launch_status};

use super::{ApplianceArgs, fail};

/// `vmch inspect`'s arguments.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Disk images (raw or qcow2) [default: the bundled demo disk].
    images: Vec<PathBuf>,
    /// Output: a readable summary, virt-inspector's XML, or JSON [default: summary; JSON lines
    /// with -j].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Leave out the list of installed applications (faster).
    #[arg(long)]
    no_applications: bool,
    /// Leave out the OS's icon (virt-inspector's --no-icon).
    #[arg(long)]
    no_icon: bool,
    /// Inspect each image in its own appliance, N at a time, printing one JSON line per image.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    #[command(flatten)]
    appliance: ApplianceArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Summary,
    Xml,
    Json,
}

/// Runs `vmch inspect`.
pub fn main(args: InspectArgs) -> ExitCode {
    if let Some(jobs) = args.jobs {
        if args.format.is_some_and(|f| f != Format::Json) {
            return fail(
                "-j prints JSON lines; --format cannot be changed",
                exit::USAGE,
            );
        }
        if jobs == 0 {
            return fail("-j needs at least 1", exit::USAGE);
        }
        if args.images.is_empty() {
            return fail("-j needs images", exit::USAGE);
        }
        return parallel(&args, jobs);
    }
    // The demo disk lives in a temporary directory for the length of the run.
    let mut _demo = None;
    let images = if args.images.is_empty() {
        match demo_image() {
            Ok((dir, path)) => {
                eprintln!("vmch: no image given: inspecting the bundled demo disk");
                _demo = Some(dir);
                vec![path]
            }
            Err(e) => return fail(e, exit::FAILED),
        }
    } else {
        args.images.clone()
    };
    let mut appliance = match args.appliance.launch(&images) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let applications = !args.no_applications;
    let oses = match appliance.client().inspect(applications) {
        Ok(o) => o,
        Err(e) => {
            let status = client_status(&e);
            return fail(appliance.explain(e), status);
        }
    };
    let mut report = Inspection::from_infos(&oses, applications);
    report.backend = Some(args.appliance.backend_name().to_string());
    let format = args.format.unwrap_or(Format::Summary);
    if format != Format::Summary
        && !args.no_icon
        && let Err(e) = add_icons(&mut appliance, &mut report)
    {
        let status = client_status(&e);
        return fail(appliance.explain(e), status);
    }
    appliance.shutdown();
    if oses.is_empty() {
        let names: Vec<String> = images.iter().map(|p| p.display().to_string()).collect();
        return fail(
            format!("no operating system was found on {}", names.join(", ")),
            exit::NO_OS,
        );
    }
    let text = match format {
        Format::Summary => vmch::summary::render(&report),
        Format::Xml => vmch::xml::render(&report),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => return fail(e, exit::FAILED),
        },
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        return fail(format!("writing the output: {e}"), exit::FAILED);
    }
    ExitCode::from(exit::OK)
}

/// Reads each OS's icon through the appliance.
fn add_icons(
    appliance: &mut Appliance,
    report: &mut Inspection,
) -> Result<(), vmch::proto::client::ClientError> {
    for os in &mut report.operatingsystems {
        os.icon = vmch::report::fetch_icon(appliance.client(), os)?;
    }
    Ok(())
}

/// Builds the demo disk in a fresh temporary directory.
/// Builds the demo disk in a fresh temporary directory (removed too if a signal stops us).
fn demo_image() -> Result<(DemoDir, PathBuf), String> {
    let dir = vmch::cleanup::temp_dir(&(vmch::cleanup::temp_prefix() + "demo-"))
        .map_err(|e| format!("creating a directory for the demo disk: {e}"))?;
    let path = dir.path().join("demo.img");
    vmch::demo::write(&path).map_err(|e| e.to_string())?;
    Ok((dir, path))
}

/// The demo disk's directory, registered for cleanup.
type DemoDir = vmch::cleanup::RegisteredDir;

/// One image's result in `-j` mode.
#[derive(Serialize)]
struct Line<'a> {
    image: String,
    /// What ran the appliance (`vmm`, `qemu-kvm`, `qemu-tcg`).
    backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    operatingsystems: Option<Vec<OperatingSystem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<LineError<'a>>,
}

#[derive(Serialize)]
struct LineError<'a> {
    /// The exit status this failure has on its own.
    status: u8,
    kind: &'a str,
    message: String,
}

fn kind_of(status: u8) -> &'static str {
    match status {
        exit::NO_OS => "no-os",
        exit::UNREADABLE_IMAGE => "unreadable-image",
        exit::APPLIANCE_FAILED => "appliance-failed",
        _ => "failed",
    }
}

/// Inspects one image in its own appliance: Ok with the OSes, or the status and message.
fn inspect_one(args: &InspectArgs, image: &PathBuf) -> Result<Inspection, (u8, String)> {
    let applications = !args.no_applications;
    let options = args
        .appliance
        .options()
        .map_err(|e| (exit::APPLIANCE_FAILED, e.to_string()))?;
    let mut appliance = Appliance::launch(std::slice::from_ref(image), &options)
        .map_err(|e: LaunchError| (launch_status(&e), e.to_string()))?;
    let oses = appliance.client().inspect(applications).map_err(|e| {
        let status = client_status(&e);
        (status, appliance.explain(e).to_string())
    })?;
    let mut report = Inspection::from_infos(&oses, applications);
    if !args.no_icon {
        add_icons(&mut appliance, &mut report).map_err(|e| {
            let status = client_status(&e);
            (status, appliance.explain(e).to_string())
        })?;
    }
    appliance.shutdown();
    if oses.is_empty() {
        return Err((exit::NO_OS, "no operating system was found".into()));
    }
    Ok(report)
}

/// `-j N`: N workers take images in order; each result is one JSON line. The exit status is 0
/// when every image has an OS, else the highest status among the failures.
fn parallel(args: &InspectArgs, jobs: usize) -> ExitCode {
    let next = Mutex::new(0usize);
    let worst = Mutex::new(exit::OK);
    let stdout = Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(args.images.len()) {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(image) = args.images.get(i) else {
                        return;
                    };
                    let result = inspect_one(args, image);
                    let status = result.as_ref().err().map_or(exit::OK, |(s, _)| *s);
                    let line = match result {
                        Ok(report) => Line {
                            image: image.display().to_string(),
                            backend: args.appliance.backend_name(),
                            operatingsystems: Some(report.operatingsystems),
                            error: None,
                        },
                        Err((status, message)) => Line {
                            image: image.display().to_string(),
                            backend: args.appliance.backend_name(),
                            operatingsystems: None,
                            error: Some(LineError {
                                status,
                                kind: kind_of(status),
                                message,
                            }),
                        },
                    };
                    let mut w = worst.lock().unwrap_or_else(|e| e.into_inner());
                    *w = (*w).max(status);
                    drop(w);
                    let text = serde_json::to_string(&line).unwrap_or_else(|e| {
                        format!(
                            "{{\"image\":{:?},\"error\":{{\"message\":\"{e}\"}}}}",
                            line.image
                        )
                    });
                    // A signal's clean-up killed this image's VM: no line for it.
                    vmch::cleanup::hold_if_stopping();
                    let mut out = stdout.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = writeln!(out, "{text}").and_then(|_| out.flush());
                }
            });
        }
    });
    let worst = *worst.lock().unwrap_or_else(|e| e.into_inner());
    ExitCode::from(worst)
}
