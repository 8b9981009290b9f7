//! What a VM is made of, and the command-line shapes that describe it (QEMU's
//! `virtserialport` properties for ports).

use std::path::PathBuf;
use std::str::FromStr;

/// Default guest RAM: the unikernel needs a few MiB; the rest is heap.
pub const DEFAULT_MEM_MIB: u64 = 64;

/// A malformed `--port` or `--serial` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A property the port does not have.
    #[error(
        "unknown port property \"{0}\" (expected name, socket, server, client, console, cache_buffers, byte_limit, guest_byte_limit)"
    )]
    UnknownProperty(String),
    /// A required property is missing.
    #[error("the port needs {0}=")]
    Missing(&'static str),
    /// A value that does not parse.
    #[error("bad value for {property}: \"{value}\"")]
    BadValue {
        /// The property.
        property: &'static str,
        /// What was given.
        value: String,
    },
    /// A bad `--serial` destination.
    #[error("bad serial destination \"{0}\" (expected stdout, none or file:PATH)")]
    Serial(String),
}

/// Whether the VMM listens on the port's socket or connects to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketMode {
    /// Listen (QEMU's `server=on,wait=off`): the default.
    #[default]
    Server,
    /// Connect to a listening socket at start-up.
    Client,
}

/// One named port: `name=N,socket=PATH[,server|client][,console][,cache_buffers=0|1]
/// [,byte_limit=N][,guest_byte_limit=N]`. Sizes take an optional K, M or G suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The name the guest sees.
    pub name: String,
    /// The unix socket.
    pub socket: PathBuf,
    /// Listen or connect.
    pub mode: SocketMode,
    /// A console port (port 0, QEMU's `virtconsole`).
    pub console: bool,
    /// `cache_buffers`, when given.
    pub cache_buffers: Option<bool>,
    /// `byte_limit`, when given.
    pub byte_limit: Option<usize>,
    /// `guest_byte_limit`, when given.
    pub guest_byte_limit: Option<usize>,
}

fn parse_size(property: &'static str, value: &str) -> Result<usize, ConfigError> {
    let bad = || ConfigError::BadValue {
        property,
        value: value.to_string(),
    };
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 10),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 20),
        Some(b'g' | b'G') => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1usize << shift).ok_or_else(bad)
}

fn parse_bool(property: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err(ConfigError::BadValue {
            property,
            value: value.to_string(),
        }),
    }
}

impl FromStr for PortSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut name = None;
        let mut socket = None;
        let mut spec = PortSpec {
            name: String::new(),
            socket: PathBuf::new(),
            mode: SocketMode::Server,
            console: false,
            cache_buffers: None,
            byte_limit: None,
            guest_byte_limit: None,
        };
        for item in s.split(',').filter(|i| !i.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            match (key, value) {
                ("name", Some(v)) if !v.is_empty() => name = Some(v.to_string()),
                ("socket" | "path", Some(v)) if !v.is_empty() => socket = Some(PathBuf::from(v)),
                ("server", None) => spec.mode = SocketMode::Server,
                ("server", Some(v)) => {
                    spec.mode = if parse_bool("server", v)? {
                        SocketMode::Server
                    } else {
                        SocketMode::Client
                    }
                }
                ("client", None) => spec.mode = SocketMode::Client,
                ("console", None) => spec.console = true,
                ("console", Some(v)) => spec.console = parse_bool("console", v)?,
                ("cache_buffers", Some(v)) => {
                    spec.cache_buffers = Some(parse_bool("cache_buffers", v)?)
                }
                ("byte_limit", Some(v)) => spec.byte_limit = Some(parse_size("byte_limit", v)?),
                ("guest_byte_limit", Some(v)) => {
                    spec.guest_byte_limit = Some(parse_size("guest_byte_limit", v)?)
                }
                ("name", _) => return Err(ConfigError::Missing("name")),
                ("socket" | "path", _) => return Err(ConfigError::Missing("socket")),
                _ => return Err(ConfigError::UnknownProperty(key.to_string())),
            }
        }
        spec.name = name.ok_or(ConfigError::Missing("name"))?;
        spec.socket = socket.ok_or(ConfigError::Missing("socket"))?;
        Ok(spec)
    }
}

/// Where COM1's output goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SerialOutput {
    /// The VMM's standard output.
    #[default]
    Stdout,
    /// Appended to a file.
    File(PathBuf),
    /// Discarded.
    None,
}

impl FromStr for SerialOutput {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stdout" | "stdio" => Ok(SerialOutput::Stdout),
            "none" | "null" => Ok(SerialOutput::None),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(SerialOutput::File(PathBuf::from(p))),
                _ => Err(ConfigError::Serial(s.to_string())),
            },
        }
    }
}

/// A whole VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The PVH kernel ELF.
    pub kernel: PathBuf,
    /// The kernel command line.
    pub cmdline: String,
    /// Guest RAM in MiB.
    pub mem_mib: u64,
    /// Named ports on the virtio-serial device.
    pub ports: Vec<PortSpec>,
    /// Read-only disk images (raw or qcow2), one virtio-blk device each.
    pub disks: Vec<PathBuf>,
    /// Which backing files a qcow2 disk may lead the VMM to open (beside it, by default).
    pub backing: host_device::block::image::BackingPolicy,
    /// Where COM1 goes.
    pub serial: SerialOutput,
    /// The virtio-serial device's `max_ports`; `None` sizes it to the ports given (see
    /// [`VmConfig::max_ports`]).
    pub max_ports: Option<u32>,
    /// The KVM device.
    pub kvm_device: PathBuf,
    /// Whether the VMM's threads run under seccomp filters (see [`crate::seccomp`]).
    pub seccomp: crate::seccomp::SeccompMode,
}

impl VmConfig {
    /// A VM booting `kernel` with defaults: 64 MiB, no ports, no disks, COM1 on stdout.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            kernel: kernel.into(),
            cmdline: String::new(),
            mem_mib: DEFAULT_MEM_MIB,
            ports: Vec::new(),
            disks: Vec::new(),
            backing: Default::default(),
            serial: SerialOutput::Stdout,
            max_ports: None,
            kvm_device: PathBuf::from("/dev/kvm"),
            seccomp: crate::seccomp::SeccompMode::default(),
        }
    }

    /// The `max_ports` the device gets: as given, else just enough for the ports given (port 0
    /// stays for a console, as in QEMU) and at least 2. QEMU's default is 31, but every port
    /// costs the guest two queues to set up at boot, and under nested KVM that is most of the
    /// start-up time; pass 31 to get QEMU's.
    pub fn max_ports(&self) -> u32 {
        self.max_ports
            .unwrap_or_else(|| (self.ports.iter().filter(|p| !p.console).count() as u32 + 1).max(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_like_qemu_virtserialport() {
        let p: PortSpec = "name=org.libguestfs.channel.0,socket=/tmp/a.sock"
            .parse()
            .unwrap();
        assert_eq!(p.name, "org.libguestfs.channel.0");
        assert_eq!(p.socket, PathBuf::from("/tmp/a.sock"));
        assert_eq!(p.mode, SocketMode::Server);
        assert_eq!((p.cache_buffers, p.byte_limit), (None, None));
        let p: PortSpec =
            "name=x,socket=s,client,cache_buffers=0,byte_limit=64K,guest_byte_limit=2M,console"
                .parse()
                .unwrap();
        assert_eq!(p.mode, SocketMode::Client);
        assert!(p.console);
        assert_eq!(p.cache_buffers, Some(false));
        assert_eq!(p.byte_limit, Some(64 << 10));
        assert_eq!(p.guest_byte_limit, Some(2 << 20));
        let p: PortSpec = "name=x,socket=s,server=on".parse().unwrap();
        assert_eq!(p.mode, SocketMode::Server);
    }

    #[test]
    fn bad_port_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<PortSpec>().unwrap_err();
        assert_eq!(err("socket=s"), ConfigError::Missing("name"));
        assert_eq!(err("name=x"), ConfigError::Missing("socket"));
        assert_eq!(err("name=,socket=s"), ConfigError::Missing("name"));
        assert_eq!(
            err("name=x,socket=s,colour=red"),
            ConfigError::UnknownProperty("colour".into())
        );
        assert!(matches!(
            err("name=x,socket=s,byte_limit=lots"),
            ConfigError::BadValue { .. }
        ));
        assert!(matches!(
            err("name=x,socket=s,byte_limit=99999999999999999999G"),
            ConfigError::BadValue { .. }
        ));
        assert!(matches!(
            err("name=x,socket=s,cache_buffers=2"),
            ConfigError::BadValue { .. }
        ));
    }

    #[test]
    fn max_ports_fits_the_ports_unless_given() {
        let mut c = VmConfig::new("k");
        assert_eq!(c.max_ports(), 2);
        c.ports = (0..5)
            .map(|i| format!("name=p{i},socket=s{i}").parse().unwrap())
            .collect();
        assert_eq!(c.max_ports(), 6);
        c.max_ports = Some(31);
        assert_eq!(c.max_ports(), 31);
    }

    #[test]
    fn serial_destinations() {
        assert_eq!("stdout".parse(), Ok(SerialOutput::Stdout));
        assert_eq!("none".parse(), Ok(SerialOutput::None));
        assert_eq!(
            "file:/tmp/x".parse(),
            Ok(SerialOutput::File("/tmp/x".into()))
        );
        assert!("file:".parse::<SerialOutput>().is_err());
        assert!("tcp:1".parse::<SerialOutput>().is_err());
    }
}
