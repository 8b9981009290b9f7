//! What the readers' host tests share: an image file as a block device, running the real
//! tools, scratch directories, and the skip-or-fail rule for a missing tool.
// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

pub mod lvm;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};

/// An image file read in place (`pread`s).
pub struct FileDev(fs::File, u64);

impl BlockDevice for FileDev {
    fn size(&self) -> u64 {
        self.1
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.1)?;
        self.0
            .read_exact_at(buf, offset)
            .map_err(|e| DiskError::Device(e.to_string()))
    }
}

/// The image at `path` as a block device.
pub fn open_dev(path: &Path) -> Rc<dyn BlockDevice> {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = f.metadata().unwrap().len();
    Rc::new(FileDev(f, len))
}

/// Skips a test that cannot run here, loudly; under `CI=true` fails it instead.
pub fn skip(why: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (required under CI=true)");
    }
    eprintln!("SKIPPED: {why}");
    true
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `cmd`, which must succeed; its standard output.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A scratch directory, `vmch-KIND-NAME-PID` in the temp dir, removed on drop.
pub struct Tmp(pub PathBuf);

impl Tmp {
    /// A fresh one for filesystem `kind`'s test `name`.
    pub fn new(kind: &str, name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("vmch-{kind}-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Bytes of a test file of size `n`: not a repeating pattern, so misplaced blocks or clusters
/// show.
pub fn content(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
