//! A guest running under the bundled VMM: `vmch run` as a child process with its ports on unix
//! sockets in a temporary directory and COM1 in a file. Killed when dropped.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::scenarios::PortHost;

/// How to start `vmch run`.
#[derive(Debug, Clone, Default)]
pub struct VmchOptions {
    /// The kernel command line.
    pub cmdline: String,
    /// `--max-ports`, when given.
    pub max_ports: Option<u32>,
    /// `--disk` images.
    pub disks: Vec<PathBuf>,
    /// Extra `--port` properties appended to every port (e.g. `cache_buffers=0`).
    pub port_props: String,
    /// Further arguments.
    pub extra: Vec<String>,
}

/// A running `vmch run`.
pub struct VmchVm {
    child: Child,
    dir: tempfile::TempDir,
    serial: PathBuf,
    stderr: PathBuf,
    ports: Vec<(String, PathBuf)>,
}

impl VmchVm {
    /// Starts `vmch` (the binary at `binary`) with one port per name, each on its own socket.
    pub fn start(binary: &Path, names: &[&str], options: &VmchOptions) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let serial = dir.path().join("serial.log");
        let stderr = dir.path().join("stderr.log");
        let mut cmd = Command::new(binary);
        cmd.arg("run")
            .arg("--serial")
            .arg(format!("file:{}", serial.display()))
            .arg("--cmdline")
            .arg(&options.cmdline);
        if let Some(n) = options.max_ports {
            cmd.arg("--max-ports").arg(n.to_string());
        }
        for disk in &options.disks {
            cmd.arg("--disk").arg(disk);
        }
        let mut ports = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let socket = dir.path().join(format!("p{i}.sock"));
            let mut spec = format!("name={name},socket={}", socket.display());
            if !options.port_props.is_empty() {
                spec.push(',');
                spec.push_str(&options.port_props);
            }
            cmd.arg("--port").arg(spec);
            ports.push((name.to_string(), socket));
        }
        cmd.args(&options.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?);
        let child = cmd.spawn()?;
        Ok(VmchVm {
            child,
            dir,
            serial,
            stderr,
            ports,
        })
    }

    /// The temporary directory the sockets live in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The socket of the port called `name`.
    pub fn socket(&self, name: &str) -> Option<&Path> {
        self.ports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }

    /// Connects to the port called `name`, retrying for up to 30 s while the socket appears.
    pub fn connect(&self, name: &str) -> Result<UnixStream, String> {
        let socket = self
            .socket(name)
            .ok_or_else(|| format!("no port named {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match UnixStream::connect(socket) {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("connecting to {name}: {e}\n{}", self.serial_log()));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    }

    /// The guest's serial log so far.
    pub fn serial_log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// What `vmch` wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// Waits until the serial log contains `needle` `count` times.
    pub fn wait_for_log(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.serial_log().matches(needle).count() >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out waiting for {count}x \"{needle}\" in the guest log:\n{}",
                    self.serial_log()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to `vmch`.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for `vmch` to exit, up to `timeout` (then kills it and returns `None`).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl PortHost for VmchVm {
    fn connect_port(&self, name: &str) -> Result<UnixStream, String> {
        self.connect(name)
    }
    fn log(&self) -> String {
        format!(
            "{}--- vmch stderr ---\n{}",
            self.serial_log(),
            self.stderr()
        )
    }
}

impl Drop for VmchVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `vmch run` to its end with a timeout: (exit status, serial log, stderr). `None` as the
/// status means it was killed at the timeout.
pub fn run_to_end(
    binary: &Path,
    args: &[&str],
    timeout: Duration,
) -> std::io::Result<(Option<i32>, String, String)> {
    let dir = tempfile::tempdir()?;
    let serial = dir.path().join("serial.log");
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(binary)
        .arg("run")
        .arg("--serial")
        .arg(format!("file:{}", serial.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Ok((status, read(&serial), read(&stderr_path)))
}
