//! [`OsTree`]: an operating system's mount namespace, its root filesystem at `/` with the
//! other filesystems of its /etc/fstab mounted on top, resolving paths across them.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmchannel_proto::{DirEntry, FileKind, Stat, Usage};

use crate::fs::{FileSystem, FsError, FullStat, MAX_SYMLINKS, RawDirEntry};

/// Longest path accepted from a caller, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// An operating system's filesystems mounted together, as `guestfish -i` mounts them.
///
/// Path resolution is done here, component by component, so that symlinks and `..` cross
/// mountpoints: each prefix is looked up (`lstat`) in the filesystem of the longest
/// mountpoint containing it, and absolute symlink targets restart at the OS root (so
/// `/bin -> /usr/bin` reaches a separate /usr). The underlying filesystems only ever see
/// paths with no symlink in them.
pub struct OsTree {
    /// (device, mountpoint), the root first, in mount order.
    mounts: Vec<(String, String)>,
    /// The filesystem of each entry of `mounts`.
    fses: Vec<Rc<dyn FileSystem>>,
}

/// Where a path resolved to: which mount, the path inside that filesystem, and its `lstat`.
struct Resolved {
    /// The canonical (symlink-free) path in the tree.
    path: String,
    mount: usize,
    inner: String,
    stat: Stat,
}

impl OsTree {
    /// A tree with just `root` (on device `root_device`) at `/`.
    pub fn new(root_device: &str, root: Rc<dyn FileSystem>) -> OsTree {
        OsTree {
            mounts: alloc::vec![(String::from(root_device), String::from("/"))],
            fses: alloc::vec![root],
        }
    }

    /// Mounts `fs` (on `device`) at `mountpoint`, an absolute path other than `/`; repeated
    /// slashes and a trailing slash are ignored. A later mount on the same point hides an
    /// earlier one. The mountpoint need not exist in the tree.
    pub fn add_mount(
        &mut self,
        device: &str,
        mountpoint: &str,
        fs: Rc<dyn FileSystem>,
    ) -> Result<(), FsError> {
        let mp = canonical_mountpoint(mountpoint)
            .ok_or_else(|| FsError::BadPath(String::from(mountpoint)))?;
        self.mounts.push((String::from(device), mp));
        self.fses.push(fs);
        Ok(())
    }

    /// The device of the root filesystem.
    pub fn root_device(&self) -> &str {
        self.mounts.first().map_or("", |(d, _)| d.as_str())
    }

    /// The mount table: (device, mountpoint), the root (`/`) first.
    pub fn mounts(&self) -> &[(String, String)] {
        &self.mounts
    }

    /// Usage of the filesystem holding `path` (links followed).
    pub fn usage_at(&self, path: &str) -> Result<Usage, FsError> {
        let r = self.resolve(path, true)?;
        self.fs(r.mount)?.usage()
    }

    /// The filesystem holding `path` (links followed) and the path inside it, which has no
    /// symlinks in it: for repeated reads of one file (downloads) without resolving the
    /// path through the mounts each time.
    pub fn locate(&self, path: &str) -> Result<(Rc<dyn FileSystem>, String), FsError> {
        let r = self.resolve(path, true)?;
        let fs = self
            .fses
            .get(r.mount)
            .cloned()
            .ok_or_else(|| FsError::Corrupt(String::from("mount table")))?;
        Ok((fs, r.inner))
    }

    /// `path` with every symlink resolved, through the mounts (realpath(3)); the file must
    /// exist.
    pub fn realpath(&self, path: &str) -> Result<String, FsError> {
        Ok(self.resolve(path, true)?.path)
    }

    /// stat(2) of `path` (a final symlink followed when `follow`) and the device of the
    /// mount holding it.
    pub fn full_stat_at(&self, path: &str, follow: bool) -> Result<(&str, FullStat), FsError> {
        let r = self.resolve(path, follow)?;
        let st = self
            .fs(r.mount)?
            .full_stat(&r.inner, false)
            .map_err(|e| relabel(e, path))?;
        Ok((self.device(r.mount), st))
    }

    /// The device mounted as mount `i`.
    fn device(&self, i: usize) -> &str {
        self.mounts.get(i).map_or("", |(d, _)| d.as_str())
    }

    /// The device holding `path` (links followed) and the filesystem's `fsid`, if it has one
    /// of its own.
    pub fn device_of(&self, path: &str) -> Result<(&str, Option<u64>), FsError> {
        let r = self.resolve(path, true)?;
        Ok((self.device(r.mount), self.fs(r.mount)?.fsid()))
    }

    /// The filesystem of mount `i`.
    fn fs(&self, i: usize) -> Result<&dyn FileSystem, FsError> {
        self.fses
            .get(i)
            .map(|f| &**f)
            .ok_or_else(|| FsError::Corrupt(String::from("mount table")))
    }

    /// The mount owning canonical path `path` (longest mountpoint prefix, the latest mount
    /// on ties) and the path inside it.
    fn owner(&self, path: &str) -> (usize, String) {
        let mut best = 0;
        let mut best_len = 0;
        for (i, (_, mp)) in self.mounts.iter().enumerate() {
            let contains = mp == "/"
                || path == mp
                || (path.starts_with(mp.as_str()) && path.as_bytes().get(mp.len()) == Some(&b'/'));
            if contains && mp.len() >= best_len {
                best = i;
                best_len = mp.len();
            }
        }
        let inner = match self.mounts.get(best) {
            Some((_, mp)) if mp != "/" => {
                let rest = path.get(mp.len()..).unwrap_or("");
                if rest.is_empty() {
                    String::from("/")
                } else {
                    String::from(rest)
                }
            }
            _ => String::from(path),
        };
        (best, inner)
    }

    /// `lstat` of canonical path `path` in the mount owning it.
    fn lstat_canonical(&self, path: &str) -> Result<Resolved, FsError> {
        let (mount, inner) = self.owner(path);
        let stat = self
            .fs(mount)?
            .lstat(&inner)
            .map_err(|e| relabel(e, path))?;
        Ok(Resolved {
            path: String::from(path),
            mount,
            inner,
            stat,
        })
    }

    /// Resolves `path` to a symlink-free location, following a final symlink when
    /// `follow_final`.
    fn resolve(&self, path: &str, follow_final: bool) -> Result<Resolved, FsError> {
        if !path.starts_with('/') || path.len() > MAX_PATH {
            return Err(FsError::BadPath(clip_path(path)));
        }
        // Components still to walk, the next one last.
        let mut todo: Vec<String> = components(path).rev().map(String::from).collect();
        // The canonical (symlink-free) path walked so far, and its lstat when known.
        let mut cur = String::from("/");
        let mut cur_stat: Option<Resolved> = None;
        let mut links = 0u32;
        while let Some(comp) = todo.pop() {
            if let Some(r) = &cur_stat
                && r.stat.kind != FileKind::Directory
            {
                return Err(FsError::NotADirectory(cur));
            }
            match comp.as_str() {
                "." => continue,
                ".." => {
                    parent(&mut cur);
                    cur_stat = None;
                    continue;
                }
                _ => {}
            }
            let cand = join(&cur, &comp);
            let r = self.lstat_canonical(&cand)?;
            if r.stat.kind == FileKind::Symlink && (follow_final || !todo.is_empty()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::SymlinkLoop(clip_path(path)));
                }
                let target = match r.stat.link_target.clone() {
                    Some(t) => t,
                    None => self
                        .fs(r.mount)?
                        .read_link(&r.inner)
                        .map_err(|e| relabel(e, &cand))?,
                };
                if target.is_empty() {
                    return Err(FsError::NotFound(cand));
                }
                if target.len() > MAX_PATH {
                    return Err(FsError::BadPath(clip_path(&target)));
                }
                if target.starts_with('/') {
                    cur = String::from("/");
                }
                todo.extend(components(&target).rev().map(String::from));
                // `cur` is a directory: the one that held the link, or the root.
                cur_stat = None;
                continue;
            }
            cur = cand;
            cur_stat = Some(r);
        }
        match cur_stat {
            Some(r) => Ok(r),
            None => self.lstat_canonical(&cur),
        }
    }
}

impl FileSystem for OsTree {
    fn full_stat(&self, path: &str, follow: bool) -> Result<FullStat, FsError> {
        Ok(self.full_stat_at(path, follow)?.1)
    }

    fn readdir_raw(&self, path: &str) -> Result<Vec<RawDirEntry>, FsError> {
        let r = self.resolve(path, true)?;
        if r.stat.kind != FileKind::Directory {
            return Err(FsError::NotADirectory(clip_path(path)));
        }
        self.fs(r.mount)?
            .readdir_raw(&r.inner)
            .map_err(|e| relabel(e, path))
    }

    fn xattrs(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, FsError> {
        let r = self.resolve(path, false)?;
        self.fs(r.mount)?
            .xattrs(&r.inner)
            .map_err(|e| relabel(e, path))
    }

    fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        Ok(self.resolve(path, false)?.stat)
    }

    fn stat(&self, path: &str) -> Result<Stat, FsError> {
        Ok(self.resolve(path, true)?.stat)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let r = self.resolve(path, true)?;
        if r.stat.kind != FileKind::Directory {
            return Err(FsError::NotADirectory(clip_path(path)));
        }
        self.fs(r.mount)?.read_dir(&r.inner)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let r = self.resolve(path, false)?;
        if r.stat.kind != FileKind::Symlink {
            return Err(FsError::BadPath(format!(
                "not a symlink: {}",
                clip_path(path)
            )));
        }
        match r.stat.link_target {
            Some(t) => Ok(t),
            None => self.fs(r.mount)?.read_link(&r.inner),
        }
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let r = self.resolve(path, true)?;
        if r.stat.kind == FileKind::Directory {
            return Err(FsError::IsADirectory(clip_path(path)));
        }
        self.fs(r.mount)?.read_at(&r.inner, offset, buf)
    }

    fn usage(&self) -> Result<Usage, FsError> {
        self.fs(0)?.usage()
    }

    fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        // Resolve once rather than on every read_at.
        let r = self.resolve(path, true)?;
        if r.stat.kind == FileKind::Directory {
            return Err(FsError::IsADirectory(clip_path(path)));
        }
        self.fs(r.mount)?.read_file(&r.inner, max)
    }
}

/// The non-empty components of `path`.
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// `dir` + `/` + `name` for a canonical `dir`.
fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Replaces canonical `path` by its parent (`/` stays `/`).
fn parent(path: &mut String) {
    match path.rfind('/') {
        Some(0) | None => *path = String::from("/"),
        Some(i) => path.truncate(i),
    }
}

/// `/usr//local/` -> `/usr/local`; `None` for a relative path, `/` itself, or one with `.` or
/// `..` components.
pub(crate) fn canonical_mountpoint(mp: &str) -> Option<String> {
    if !mp.starts_with('/') || mp.len() > MAX_PATH {
        return None;
    }
    let mut out = String::new();
    for c in components(mp) {
        if c == "." || c == ".." {
            return None;
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() { None } else { Some(out) }
}

/// A path for an error message, cut to a sane length.
fn clip_path(path: &str) -> String {
    let mut end = path.len().min(256);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_string()
}

/// The error of a lookup inside one filesystem, renamed to the tree's path.
fn relabel(e: FsError, path: &str) -> FsError {
    match e {
        FsError::NotFound(_) => FsError::NotFound(String::from(path)),
        FsError::NotADirectory(_) => FsError::NotADirectory(String::from(path)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    fn tree() -> OsTree {
        let root = TestFs::new()
            .dir("/etc")
            .file("/etc/hostname", b"root\n")
            .dir("/usr")
            .dir("/boot")
            .link("/bin", "usr/bin")
            .link("/lib", "/usr/lib")
            .link("/abs-sh", "/bin/sh")
            .link("/rel-up", "../../../etc/hostname")
            .link("/loop", "loop")
            .link("/loop-a", "loop-b")
            .link("/loop-b", "loop-a")
            .link("/dangling", "/nowhere")
            .link("/empty", "")
            .file("/etc/fstab", b"")
            .usage(100)
            .rc();
        let usr = TestFs::new()
            .file("/bin/sh", b"#!usr-sh")
            .link("/bin/up", "../../etc/hostname")
            .dir("/lib")
            .file("/lib/os-release", b"ID=x\n")
            .usage(200)
            .rc();
        let boot = TestFs::new().file("/vmlinuz", b"kernel").usage(300).rc();
        let mut t = OsTree::new("/dev/sda1", root);
        t.add_mount("/dev/sda2", "//usr/", usr).unwrap();
        t.add_mount("/dev/sda3", "/boot", boot).unwrap();
        t
    }

    fn read(t: &OsTree, p: &str) -> Result<Vec<u8>, FsError> {
        t.read_file(p, 1 << 20)
    }

    #[test]
    fn mount_table() {
        let t = tree();
        assert_eq!(t.root_device(), "/dev/sda1");
        let m: Vec<(&str, &str)> = t
            .mounts()
            .iter()
            .map(|(d, p)| (d.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            m,
            [
                ("/dev/sda1", "/"),
                ("/dev/sda2", "/usr"),
                ("/dev/sda3", "/boot")
            ]
        );
        let mut t = t;
        assert!(t.add_mount("/dev/x", "/", TestFs::new().rc()).is_err());
        assert!(t.add_mount("/dev/x", "rel", TestFs::new().rc()).is_err());
        assert!(
            t.add_mount("/dev/x", "/a/../b", TestFs::new().rc())
                .is_err()
        );
    }

    #[test]
    fn crosses_mounts_through_symlinks() {
        let t = tree();
        assert_eq!(read(&t, "/bin/sh").unwrap(), b"#!usr-sh");
        assert_eq!(read(&t, "/abs-sh").unwrap(), b"#!usr-sh");
        assert_eq!(read(&t, "/lib/os-release").unwrap(), b"ID=x\n");
        assert_eq!(read(&t, "/boot/vmlinuz").unwrap(), b"kernel");
        // A relative link inside /usr climbing out of it into the root filesystem.
        assert_eq!(read(&t, "/usr/bin/up").unwrap(), b"root\n");
        assert_eq!(read(&t, "/bin/up").unwrap(), b"root\n");
        // `..` does not go above the root.
        assert_eq!(read(&t, "/rel-up").unwrap(), b"root\n");
        assert_eq!(t.lstat("/bin").unwrap().kind, FileKind::Symlink);
        assert_eq!(t.stat("/bin").unwrap().kind, FileKind::Directory);
        assert_eq!(t.read_link("/bin").unwrap(), "usr/bin");
        assert!(t.read_link("/etc").is_err());
        let names: Vec<String> = t
            .read_dir("/bin")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["sh", "up"]);
        // A mountpoint is the mounted filesystem's root.
        let names: Vec<String> = t
            .read_dir("/boot")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["vmlinuz"]);
    }

    #[test]
    fn dots_and_slashes() {
        let t = tree();
        assert_eq!(read(&t, "//etc///hostname").unwrap(), b"root\n");
        assert_eq!(read(&t, "/./etc/./hostname").unwrap(), b"root\n");
        assert_eq!(read(&t, "/../../etc/../etc/hostname").unwrap(), b"root\n");
        // `..` out of a mountpoint lands in the parent filesystem.
        assert_eq!(read(&t, "/usr/../etc/hostname").unwrap(), b"root\n");
        // `..` after a symlink is taken from the link's target (/usr/bin/.. = /usr).
        assert_eq!(read(&t, "/bin/../lib/os-release").unwrap(), b"ID=x\n");
        assert_eq!(t.stat("/").unwrap().kind, FileKind::Directory);
        assert_eq!(t.stat("/..").unwrap().kind, FileKind::Directory);
        assert!(matches!(
            t.stat("/etc/hostname/x"),
            Err(FsError::NotADirectory(_))
        ));
        assert!(matches!(
            t.stat("/etc/hostname/.."),
            Err(FsError::NotADirectory(_))
        ));
        assert!(matches!(t.stat("/nope/x"), Err(FsError::NotFound(p)) if p == "/nope"));
        assert!(matches!(t.stat("relative"), Err(FsError::BadPath(_))));
        assert!(matches!(t.stat(""), Err(FsError::BadPath(_))));
        let long = "/a".repeat(MAX_PATH);
        assert!(matches!(t.stat(&long), Err(FsError::BadPath(_))));
        assert!(matches!(
            t.read_file("/etc", 10),
            Err(FsError::IsADirectory(_))
        ));
        assert!(matches!(
            t.read_dir("/etc/hostname"),
            Err(FsError::NotADirectory(_))
        ));
    }

    #[test]
    fn symlink_loops_and_dangling() {
        let t = tree();
        assert!(matches!(t.stat("/loop"), Err(FsError::SymlinkLoop(_))));
        assert!(matches!(t.stat("/loop-a/x"), Err(FsError::SymlinkLoop(_))));
        assert_eq!(t.lstat("/loop").unwrap().kind, FileKind::Symlink);
        assert!(matches!(t.stat("/dangling"), Err(FsError::NotFound(_))));
        assert!(matches!(t.stat("/empty"), Err(FsError::NotFound(_))));
        let mut buf = [0u8; 4];
        assert!(t.read_at("/loop", 0, &mut buf).is_err());
    }

    #[test]
    fn chain_of_forty_links_is_allowed() {
        let mut root = TestFs::new().file("/target", b"ok");
        let n = MAX_SYMLINKS as usize;
        for i in 0..n {
            let next = if i + 1 == n {
                String::from("target")
            } else {
                format!("l{}", i + 1)
            };
            root = root.link(&format!("/l{i}"), &next);
        }
        let root = root.link("/over", "l0");
        let t = OsTree::new("/dev/sda1", root.rc());
        assert_eq!(t.read_file("/l0", 10).unwrap(), b"ok");
        assert!(matches!(t.stat("/over"), Err(FsError::SymlinkLoop(_))));
    }

    #[test]
    fn usage_per_mount() {
        let t = tree();
        assert_eq!(t.usage().unwrap().blocks, 100);
        assert_eq!(t.usage_at("/etc").unwrap().blocks, 100);
        assert_eq!(t.usage_at("/boot/vmlinuz").unwrap().blocks, 300);
        assert_eq!(t.usage_at("/bin/sh").unwrap().blocks, 200);
        assert_eq!(t.usage_at("/bin").unwrap().blocks, 200);
        assert!(t.usage_at("/nope").is_err());
    }

    #[test]
    fn locate_gives_the_underlying_file() {
        let t = tree();
        let (fs, inner) = t.locate("/abs-sh").unwrap();
        assert_eq!(inner, "/bin/sh");
        assert_eq!(fs.read_file(&inner, 100).unwrap(), b"#!usr-sh");
        let (_, inner) = t.locate("/boot").unwrap();
        assert_eq!(inner, "/");
        assert!(t.locate("/loop").is_err());
    }

    #[test]
    fn later_mount_hides_earlier() {
        let mut t = tree();
        t.add_mount(
            "/dev/sdb1",
            "/boot",
            TestFs::new().file("/other", b"2").rc(),
        )
        .unwrap();
        assert_eq!(read(&t, "/boot/other").unwrap(), b"2");
        assert!(t.stat("/boot/vmlinuz").is_err());
    }
}
