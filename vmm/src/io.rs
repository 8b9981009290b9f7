//! Port I/O devices: COM1 (vm-superio's 16550), the CMOS clock, the debug-exit port, the
//! boot-complete stamp, the ACPI sleep and reset registers, and the PCI configuration ports.

use std::io::Write;

use vm_superio::Serial;
use vm_superio::serial::NoEvents;

use crate::acpi;
use crate::layout::ports::*;
use crate::pci::PciBus;
use crate::rtc::{self, Rtc};

/// What a port access asks of the VMM beyond the device's own effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortEvent {
    /// The guest wrote `value` to the debug-exit port.
    DebugExit(u32),
    /// The guest entered ACPI S5.
    PowerOff,
    /// The guest wrote the ACPI reset value.
    Reset,
    /// The guest signalled that it finished booting.
    BootComplete,
}

/// COM1's interrupt: the guest polls COM1, so raising it is not needed.
pub struct NoInterrupt;

impl vm_superio::Trigger for NoInterrupt {
    type E = std::convert::Infallible;
    fn trigger(&self) -> Result<(), Self::E> {
        Ok(())
    }
}

/// The port-I/O side of the machine.
pub struct PortBus {
    serial: Serial<NoInterrupt, NoEvents, Box<dyn Write + Send>>,
    /// The PCI bus behind 0xCF8/0xCFC.
    pub pci: PciBus,
    /// Accesses to ports nothing decodes (counted, not logged each time).
    pub unhandled: u64,
    rtc: Rtc,
}

impl PortBus {
    /// COM1 writing to `serial_out`, and `pci`.
    pub fn new(serial_out: Box<dyn Write + Send>, pci: PciBus) -> Self {
        PortBus {
            serial: Serial::new(NoInterrupt, serial_out),
            pci,
            unhandled: 0,
            rtc: Rtc::new(),
        }
    }

    /// Flushes COM1's output.
    pub fn flush(&mut self) {
        let _ = self.serial.writer_mut().flush();
    }

    /// An IN instruction.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        match port {
            COM1..=0x3ff if data.len() == 1 => data[0] = self.serial.read((port - COM1) as u8),
            PCI_CONFIG_ADDRESS => self.pci.config_address_read(data),
            PCI_CONFIG_DATA..=0xcff => self.pci.config_data_read(port - PCI_CONFIG_DATA, data),
            ACPI_SLEEP_STATUS => data.fill(0),
            rtc::DATA if data.len() == 1 => data[0] = self.rtc.read(),
            _ => {
                self.unhandled += 1;
                data.fill(0xff)
            }
        }
    }

    /// An OUT instruction.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Option<PortEvent> {
        match port {
            COM1..=0x3ff if data.len() == 1 => {
                if let Err(e) = self.serial.write((port - COM1) as u8, data[0]) {
                    log::debug!("COM1: {e:?}");
                }
            }
            DEBUG_EXIT => {
                let mut v = [0u8; 4];
                for (d, s) in v.iter_mut().zip(data) {
                    *d = *s;
                }
                return Some(PortEvent::DebugExit(u32::from_le_bytes(v)));
            }
            BOOT_STAMP if data == [BOOT_STAMP_VALUE] => return Some(PortEvent::BootComplete),
            ACPI_SLEEP_CONTROL if data.len() == 1 && acpi::is_power_off(data[0]) => {
                return Some(PortEvent::PowerOff);
            }
            ACPI_RESET if data == [ACPI_RESET_VALUE] => return Some(PortEvent::Reset),
            rtc::INDEX if data.len() == 1 => self.rtc.select(data[0]),
            rtc::DATA => {}
            PCI_CONFIG_ADDRESS => self.pci.config_address_write(data),
            PCI_CONFIG_DATA..=0xcff => self.pci.config_data_write(port - PCI_CONFIG_DATA, data),
            _ => self.unhandled += 1,
        }
        None
    }
}
