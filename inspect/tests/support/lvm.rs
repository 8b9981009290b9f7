//! The lvm2 tools with no device-mapper (`--driverloaded n`, metadata only) on loop devices
//! over windows of image files, confined to those devices by a filter: what the LVM and
//! blkid tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::run;

/// Loop devices over windows of image files, and the lvm2 tools confined to them.
pub struct Lvm {
    /// (loop device, image file, offset of the window in the file).
    pub loops: Vec<(String, PathBuf, u64)>,
}

impl Lvm {
    /// No loop devices yet.
    pub fn new() -> Self {
        Self { loops: Vec::new() }
    }

    /// Attaches `size` bytes of `img` from `offset`; gives the loop device.
    pub fn attach(&mut self, img: &Path, offset: u64, size: u64) -> String {
        let dev = run(Command::new("losetup")
            .args(["-f", "--show", "-o", &offset.to_string()])
            .args(["--sizelimit", &size.to_string()])
            .arg(img));
        let dev = dev.trim().to_string();
        self.loops.push((dev.clone(), img.to_path_buf(), offset));
        dev
    }

    fn config(&self) -> String {
        let accept: String = self
            .loops
            .iter()
            .map(|(d, _, _)| format!("\"a|^{d}$|\", "))
            .collect();
        format!(
            "devices {{ use_devicesfile = 0 obtain_device_list_from_udev = 0 filter = [ {accept}\"r|.*|\" ] }} \
             activation {{ udev_sync = 0 udev_rules = 0 }} backup {{ backup = 0 archive = 0 }}"
        )
    }

    /// Runs `lvm CMD ARGS` without device-mapper; gives its output.
    pub fn lvm(&self, cmd: &str, args: &[&str]) -> String {
        run(Command::new("lvm")
            .arg(cmd)
            .args(["--driverloaded", "n", "--config", &self.config()])
            .args(args)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1"))
    }

    /// A report: rows of `;`-separated fields, sizes in bytes.
    pub fn report(&self, cmd: &str, fields: &str, args: &[&str]) -> Vec<Vec<String>> {
        let mut a = vec![
            "--noheadings",
            "--separator",
            ";",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            fields,
        ];
        a.extend_from_slice(args);
        self.lvm(cmd, &a)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().split(';').map(|f| f.trim().to_string()).collect())
            .collect()
    }
}

impl Drop for Lvm {
    fn drop(&mut self) {
        for (d, _, _) in self.loops.drain(..).rev() {
            let _ = Command::new("losetup").args(["-d", &d]).status();
        }
    }
}
