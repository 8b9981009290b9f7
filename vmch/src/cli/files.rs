//! The file commands: `ls`, `cat`, `stat`, `df` and `download`, in the manner of
//! libguestfs's virt-ls, virt-cat, virt-df and `guestfish download`.
//!
//! Paths are in the operating system found on the disks (its mounts combined, as the guest
//! would see them), or on one filesystem with `--device`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use vmch::exit;
use vmch::launch::Appliance;
use vmch::proto::client::ClientError;
use vmch::proto::{FileKind, Stat, Target};
use vmch::session::{Select, client_status, resolve, select_status};
use vmch::transfer::{self, TransferError, hex};

use super::{ApplianceArgs, fail};

/// Which disks, and which tree in them.
#[derive(clap::Args)]
pub struct Where {
    /// The disk image (raw or qcow2).
    image: PathBuf,
    /// Further disks of the same machine (repeatable).
    #[arg(long = "add", value_name = "IMAGE")]
    more: Vec<PathBuf>,
    /// The operating system whose root is this device, when the disks hold several.
    #[arg(long, conflicts_with = "device")]
    root: Option<String>,
    /// A filesystem on its own (`/dev/sda1`) instead of an operating system.
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    appliance: ApplianceArgs,
}

impl Where {
    fn select(&self) -> Select {
        match (&self.root, &self.device) {
            (_, Some(d)) => Select::Device(d.clone()),
            (Some(r), None) => Select::Root(r.clone()),
            (None, None) => Select::Auto,
        }
    }

    /// Starts the appliance and resolves what `path` names: the target and the path in it
    /// (a Windows drive letter, `C:\Windows`, picks the drive; see [`resolve`]).
    fn open(&self, path: &str) -> Result<(Appliance, Target, String), ExitCode> {
        let mut images = vec![self.image.clone()];
        images.extend(self.more.iter().cloned());
        let mut appliance = self.appliance.launch(&images)?;
        match resolve(appliance.client(), &self.select(), path) {
            Ok((t, p)) => Ok((appliance, t, p)),
            Err(e) => {
                let status = select_status(&e);
                Err(fail(e, status))
            }
        }
    }
}

/// Reports a failed request for `path`.
fn request_failed(appliance: &mut Appliance, path: &str, e: ClientError) -> ExitCode {
    let status = client_status(&e);
    if let ClientError::Remote(remote) = &e {
        // The appliance's message names the path already.
        let message = if remote.message.contains(path) {
            e.to_string()
        } else {
            format!("{path}: {e}")
        };
        fail(message, status)
    } else {
        fail(appliance.explain(e), status)
    }
}

/// `vmch ls`'s arguments.
#[derive(clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    at: Where,
    /// The directory.
    path: String,
    /// Long listing: type and permissions, owner, size, modification time.
    #[arg(short, long)]
    long: bool,
}

/// `vmch cat`'s arguments.
#[derive(clap::Args)]
pub struct CatArgs {
    #[command(flatten)]
    at: Where,
    /// The file.
    path: String,
}

/// `vmch stat`'s arguments.
#[derive(clap::Args)]
pub struct StatArgs {
    #[command(flatten)]
    at: Where,
    /// The file.
    path: String,
    /// Describe the link the path ends in, not what it points to.
    #[arg(long)]
    no_follow: bool,
}

/// `vmch df`'s arguments (`-h` is human-readable sizes, as in df, so help is `--help` only).
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct DfArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The disk image.
    image: PathBuf,
    /// Further disks of the same machine (repeatable).
    #[arg(long = "add", value_name = "IMAGE")]
    more: Vec<PathBuf>,
    /// Sizes in powers of 1024 with a unit (K, M, G), as df -h.
    #[arg(short = 'h', long)]
    human: bool,
    /// Inodes instead of blocks.
    #[arg(short, long)]
    inodes: bool,
    #[command(flatten)]
    appliance: ApplianceArgs,
}

/// `vmch download`'s arguments.
#[derive(clap::Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    at: Where,
    /// The file in the guest.
    path: String,
    /// Where to put it on the host (a file, or a directory to put it in).
    dest: PathBuf,
    /// No progress bar, even on a terminal.
    #[arg(long, short)]
    quiet: bool,
}

/// The `ls -l` style type-and-permissions column.
pub fn mode_string(stat: &Stat) -> String {
    let kind = match stat.kind {
        FileKind::File => '-',
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
        FileKind::Unknown => '?',
    };
    let m = stat.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, lower: char, upper: char| match (exec, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(m & 0o100 != 0, m & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(m & 0o010 != 0, m & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(m & 0o001 != 0, m & 0o1000 != 0, 't', 'T'));
    s
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC (the VMM's clock does the date
/// arithmetic).
pub fn utc(secs: i64) -> String {
    let t = vmm::rtc::civil(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "regular file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symbolic link",
        FileKind::CharDevice => "character device",
        FileKind::BlockDevice => "block device",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
        FileKind::Unknown => "unknown",
    }
}

fn write_out(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(exit::OK),
        Err(e) => fail(format!("writing the output: {e}"), exit::FAILED),
    }
}

/// `vmch ls`.
pub fn ls(args: LsArgs) -> ExitCode {
    let (mut appliance, target, path) = match args.at.open(&args.path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut entries = match appliance.client().read_dir(&target, &path) {
        Ok(e) => e,
        Err(e) => return request_failed(&mut appliance, &args.path, e),
    };
    appliance.shutdown();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for e in entries {
        if args.long {
            let link = e
                .stat
                .link_target
                .as_deref()
                .map(|t| format!(" -> {t}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "{} {:>5} {:>5} {:>12} {} {}{link}\n",
                mode_string(&e.stat),
                e.stat.uid,
                e.stat.gid,
                e.stat.size,
                utc(e.stat.mtime),
                e.name
            ));
        } else {
            out.push_str(&e.name);
            out.push('\n');
        }
    }
    write_out(&out)
}

/// `vmch stat`.
pub fn stat(args: StatArgs) -> ExitCode {
    let (mut appliance, target, path) = match args.at.open(&args.path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let s = match appliance.client().stat(&target, &path, !args.no_follow) {
        Ok(s) => s,
        Err(e) => return request_failed(&mut appliance, &args.path, e),
    };
    appliance.shutdown();
    let mut out = format!("  File: {}", args.path);
    if let Some(t) = &s.link_target {
        out.push_str(&format!(" -> {t}"));
    }
    out.push('\n');
    out.push_str(&format!(
        "  Type: {}\n  Size: {}\n  Mode: {:04o} ({})\n   Uid: {}\n   Gid: {}\nModify: {} UTC\n",
        kind_name(s.kind),
        s.size,
        s.mode & 0o7777,
        mode_string(&s),
        s.uid,
        s.gid,
        utc(s.mtime)
    ));
    write_out(&out)
}

/// `vmch cat`.
pub fn cat(args: CatArgs) -> ExitCode {
    let (mut appliance, target, path) = match args.at.open(&args.path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    let result = transfer::copy(
        appliance.client(),
        &target,
        &path,
        &mut stdout,
        &mut |_, _| {},
    );
    match result {
        Ok(_) => {
            appliance.shutdown();
            ExitCode::from(exit::OK)
        }
        Err(TransferError::Client(ClientError::Io(e)))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::from(exit::OK)
        }
        Err(TransferError::Client(e)) => request_failed(&mut appliance, &args.path, e),
        Err(e) => fail(format!("{}: {e}", args.path), exit::FAILED),
    }
}

/// `vmch download`.
pub fn download(args: DownloadArgs) -> ExitCode {
    let (mut appliance, target, path) = match args.at.open(&args.path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(args.path.clone());
        bar
    });
    let mut progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let result = transfer::download(
        appliance.client(),
        &target,
        &path,
        &args.dest,
        &mut progress,
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok((dest, done)) => {
            appliance.shutdown();
            eprintln!(
                "vmch: {} -> {} ({} bytes, sha256 {} verified)",
                args.path,
                dest.display(),
                done.size,
                hex(&done.sha256)
            );
            ExitCode::from(exit::OK)
        }
        Err(TransferError::Client(e)) => request_failed(&mut appliance, &args.path, e),
        Err(e) => fail(format!("{}: {e}", args.path), exit::FAILED),
    }
}

/// Sizes for `df`: 1K blocks, or human units.
fn size(bytes: u64, human: bool) -> String {
    if !human {
        return (bytes / 1024).to_string();
    }
    let units = ["", "K", "M", "G", "T", "P"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}")
    } else if v < 10.0 {
        format!("{v:.1}{}", units[u])
    } else {
        format!("{v:.0}{}", units[u])
    }
}

/// `vmch df`: every filesystem the appliance can read, as virt-df prints them.
pub fn df(args: DfArgs) -> ExitCode {
    let mut images = vec![args.image.clone()];
    images.extend(args.more.iter().cloned());
    let mut appliance = match args.appliance.launch(&images) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let filesystems = match appliance.client().list_filesystems() {
        Ok(f) => f,
        Err(e) => {
            let status = client_status(&e);
            return fail(appliance.explain(e), status);
        }
    };
    let name = args.image.display().to_string();
    let mut out = if args.inodes {
        format!(
            "{:<36} {:>10} {:>10} {:>10} {:>5}\n",
            "Filesystem", "Inodes", "IUsed", "IFree", "IUse%"
        )
    } else {
        let head = if args.human { "Size" } else { "1K-blocks" };
        format!(
            "{:<36} {:>10} {:>10} {:>10} {:>5}\n",
            "Filesystem", head, "Used", "Available", "Use%"
        )
    };
    let mut any = false;
    for fs in filesystems {
        let usage = match appliance
            .client()
            .usage(&Target::Device(fs.device.clone()), "/")
        {
            Ok(u) => u,
            // Swap, LVM members and filesystems the appliance cannot read have no usage.
            Err(ClientError::Remote(_)) => continue,
            Err(e) => {
                let status = client_status(&e);
                return fail(appliance.explain(e), status);
            }
        };
        any = true;
        let label = format!("{name}:{}", fs.device);
        let pct = |used: u64, total: u64| {
            if total == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", used as f64 * 100.0 / total as f64)
            }
        };
        if args.inodes {
            let used = usage.inodes.saturating_sub(usage.inodes_free);
            out.push_str(&format!(
                "{label:<36} {:>10} {:>10} {:>10} {:>5}\n",
                usage.inodes,
                used,
                usage.inodes_free,
                pct(used, usage.inodes)
            ));
        } else {
            let bs = usage.block_size;
            let total = usage.blocks * bs;
            let used = usage.blocks.saturating_sub(usage.blocks_free) * bs;
            let avail = usage.blocks_available * bs;
            out.push_str(&format!(
                "{label:<36} {:>10} {:>10} {:>10} {:>5}\n",
                size(total, args.human),
                size(used, args.human),
                size(avail, args.human),
                pct(used, used + avail)
            ));
        }
    }
    appliance.shutdown();
    if !any {
        return fail(format!("no readable filesystem on {name}"), exit::NO_OS);
    }
    write_out(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_modes() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_725_148_800), "2024-09-01 00:00:00");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01");
        assert_eq!(utc(-1), "1969-12-31 23:59:59");
        let s = |kind, mode| Stat {
            kind,
            size: 0,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            link_target: None,
        };
        assert_eq!(mode_string(&s(FileKind::File, 0o644)), "-rw-r--r--");
        assert_eq!(mode_string(&s(FileKind::Directory, 0o1777)), "drwxrwxrwt");
        assert_eq!(mode_string(&s(FileKind::File, 0o4755)), "-rwsr-xr-x");
        assert_eq!(mode_string(&s(FileKind::Symlink, 0o777)), "lrwxrwxrwx");
        assert_eq!(size(1536, true), "1.5K");
        assert_eq!(size(10 << 20, true), "10M");
        assert_eq!(size(4096, false), "4");
    }
}
