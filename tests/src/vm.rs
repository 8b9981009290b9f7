//! A running QEMU guest with a virtio-serial device whose ports are unix sockets, plus a QMP
//! monitor for hot-plug: what the echo tests and benchmarks talk to.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::hosts::QEMU;
use crate::qemu::QemuBoot;

/// The virtio-serial device's id; its bus is `vser0.0`.
pub const DEVICE_ID: &str = "vser0";

/// Errors from the running VM or its monitor.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// I/O with QEMU, a port socket or the monitor.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A QMP command failed or the monitor said something unexpected.
    #[error("QMP {command}: {reply}")]
    Qmp {
        /// The command.
        command: String,
        /// QEMU's answer.
        reply: String,
    },
    /// Something did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// There is no port by that name.
    #[error("no port named {0}")]
    NoPort(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

/// A QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events received while waiting for replies.
    pub events: Vec<Value>,
}

impl Qmp {
    fn connect(path: &Path) -> Result<Self, VmError> {
        let stream = UnixStream::connect(path).map_err(io("connecting to QMP"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io("QMP timeout"))?;
        let writer = stream.try_clone().map_err(io("QMP clone"))?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        qmp.read_message()?; // greeting
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value, VmError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(io("reading QMP"))?;
        if n == 0 {
            return Err(VmError::Qmp {
                command: "read".into(),
                reply: "monitor closed".into(),
            });
        }
        serde_json::from_str(&line).map_err(|e| VmError::Qmp {
            command: "read".into(),
            reply: format!("{e}: {line}"),
        })
    }

    /// Runs a command and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, VmError> {
        let msg = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{msg}").map_err(io("writing QMP"))?;
        loop {
            let reply = self.read_message()?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if reply.get("error").is_some() {
                return Err(VmError::Qmp {
                    command: command.into(),
                    reply: reply.to_string(),
                });
            }
            self.events.push(reply);
        }
    }
}

/// One port of the device.
#[derive(Debug, Clone)]
pub struct Port {
    /// The port name the guest sees.
    pub name: String,
    /// The unix socket QEMU listens on.
    pub socket: PathBuf,
    /// The qdev id (for `device_del`).
    pub id: String,
}

/// A guest running under QEMU with named ports; killed when dropped.
pub struct SerialVm {
    child: Child,
    dir: tempfile::TempDir,
    serial: PathBuf,
    qmp: Qmp,
    ports: Vec<Port>,
    next: usize,
    /// What was booted (for messages).
    pub description: String,
}

fn chardev_socket(id: &str, path: &Path) -> String {
    format!("socket,id={id},path={},server=on,wait=off", path.display())
}

impl SerialVm {
    /// Boots `boot` with a virtio-serial device (`device_props` appended, e.g.
    /// `disable-legacy=on`) and one `virtserialport` per name, each on its own unix socket.
    /// With `console`, port 0 is a `virtconsole` named `org.vmchannel.console` (it carries the
    /// kernel log).
    pub fn start(
        boot: &QemuBoot,
        device_props: &str,
        names: &[&str],
        console: bool,
    ) -> Result<Self, VmError> {
        let dir = tempfile::tempdir().map_err(io("temp dir"))?;
        let serial = dir.path().join("serial.log");
        let qmp_path = dir.path().join("qmp.sock");
        let mut args = boot.args();
        let mut device = format!("virtio-serial-pci,id={DEVICE_ID}");
        if !device_props.is_empty() {
            device.push(',');
            device.push_str(device_props);
        }
        args.extend(["-device".into(), device]);
        let mut ports = Vec::new();
        if console {
            let socket = dir.path().join("console.sock");
            args.extend(["-chardev".into(), chardev_socket("con", &socket)]);
            args.extend([
                "-device".into(),
                format!("virtconsole,bus={DEVICE_ID}.0,chardev=con,name=org.vmchannel.console,id=port-con"),
            ]);
            ports.push(Port {
                name: "org.vmchannel.console".into(),
                socket,
                id: "port-con".into(),
            });
        }
        for (i, name) in names.iter().enumerate() {
            let socket = dir.path().join(format!("p{i}.sock"));
            let id = format!("port{i}");
            args.extend(["-chardev".into(), chardev_socket(&format!("c{i}"), &socket)]);
            args.extend([
                "-device".into(),
                format!("virtserialport,bus={DEVICE_ID}.0,chardev=c{i},name={name},id={id}"),
            ]);
            ports.push(Port {
                name: name.to_string(),
                socket,
                id,
            });
        }
        args.extend([
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp_path.display()),
            "-serial".into(),
            format!("file:{}", serial.display()),
        ]);
        let mut child = Command::new(QEMU)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io(format!("starting {QEMU}")))?;
        // The socket file appears (bind) a moment before QEMU listens on it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let qmp = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(VmError::Qmp {
                    command: "start".into(),
                    reply: format!("QEMU exited at start-up with {status}"),
                });
            }
            match Qmp::connect(&qmp_path) {
                Ok(q) => break q,
                Err(e) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        };
        Ok(Self {
            child,
            dir,
            serial,
            qmp,
            next: names.len(),
            ports,
            description: boot.to_string(),
        })
    }

    /// The QEMU process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The ports, in order.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// Connects to the port called `name`.
    pub fn connect(&self, name: &str) -> Result<UnixStream, VmError> {
        let port = self
            .ports
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| VmError::NoPort(name.into()))?;
        UnixStream::connect(&port.socket).map_err(io(format!("connecting to {name}")))
    }

    /// The guest's serial log so far.
    pub fn serial_log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// Waits until the serial log contains `needle` `count` times.
    pub fn wait_for_log(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.serial_log().matches(needle).count() >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(VmError::Timeout(format!(
                    "{count}x \"{needle}\" in the guest log:\n{}",
                    self.serial_log()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The monitor.
    pub fn qmp(&mut self) -> &mut Qmp {
        &mut self.qmp
    }

    /// Hot-plugs a `virtserialport` called `name` on a new socket (QMP `chardev-add`,
    /// `device_add`).
    pub fn hotplug(&mut self, name: &str) -> Result<Port, VmError> {
        let i = self.next;
        self.next += 1;
        let socket = self.dir.path().join(format!("p{i}.sock"));
        let chardev = format!("c{i}");
        self.qmp.execute(
            "chardev-add",
            json!({
                "id": chardev,
                "backend": { "type": "socket", "data": {
                    "addr": { "type": "unix", "data": { "path": socket.display().to_string() } },
                    "server": true, "wait": false
                }}
            }),
        )?;
        let id = format!("port{i}");
        self.qmp.execute(
            "device_add",
            json!({ "driver": "virtserialport", "bus": format!("{DEVICE_ID}.0"),
                    "chardev": chardev, "name": name, "id": id }),
        )?;
        let port = Port {
            name: name.into(),
            socket,
            id,
        };
        self.ports.push(port.clone());
        Ok(port)
    }

    /// Unplugs the port called `name` (QMP `device_del`).
    pub fn unplug(&mut self, name: &str) -> Result<(), VmError> {
        let at = self
            .ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| VmError::NoPort(name.into()))?;
        let port = self.ports.remove(at);
        self.qmp.execute("device_del", json!({ "id": port.id }))?;
        Ok(())
    }

    /// True while QEMU runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl crate::scenarios::PortHost for SerialVm {
    fn connect_port(&self, name: &str) -> Result<UnixStream, String> {
        self.connect(name).map_err(|e| e.to_string())
    }
    fn log(&self) -> String {
        self.serial_log()
    }
}

impl Drop for SerialVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
