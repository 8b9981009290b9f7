//! An in-memory [`FileSystem`] for the inspection tests: directories, files, symlinks and
//! unreadable files built from a list.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::{DirEntry, FileKind, FilesystemInfo, Stat, Usage};

use crate::fs::{FileSystem, FsError, MAX_SYMLINKS, Volume};

#[derive(Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
    /// A file whose reads fail (a corrupt inode), with its claimed size.
    Broken(u64),
    Link(String),
    Fifo,
}

/// An in-memory filesystem. Parent directories are created as needed.
#[derive(Clone)]
pub struct TestFs {
    nodes: BTreeMap<String, Node>,
    blocks: u64,
}

impl TestFs {
    /// An empty filesystem: just `/`.
    pub fn new() -> TestFs {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::from("/"), Node::Dir);
        TestFs { nodes, blocks: 0 }
    }

    fn put(mut self, path: &str, node: Node) -> TestFs {
        let mut prefix = String::new();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            prefix.push('/');
            prefix.push_str(c);
            if i + 1 < comps.len() {
                self.nodes.entry(prefix.clone()).or_insert(Node::Dir);
            }
        }
        self.nodes.insert(prefix, node);
        self
    }

    /// Adds directory `path`.
    pub fn dir(self, path: &str) -> TestFs {
        self.put(path, Node::Dir)
    }

    /// Adds regular file `path` with `data`.
    pub fn file(self, path: &str, data: &[u8]) -> TestFs {
        self.put(path, Node::File(data.to_vec()))
    }

    /// Adds a regular file of `size` bytes whose reads fail with an I/O error.
    pub fn broken(self, path: &str, size: u64) -> TestFs {
        self.put(path, Node::Broken(size))
    }

    /// Adds symlink `path` pointing at `target`.
    pub fn link(self, path: &str, target: &str) -> TestFs {
        self.put(path, Node::Link(String::from(target)))
    }

    /// Adds a FIFO at `path`.
    pub fn fifo(self, path: &str) -> TestFs {
        self.put(path, Node::Fifo)
    }

    /// Sets the block count `usage()` reports.
    pub fn usage(mut self, blocks: u64) -> TestFs {
        self.blocks = blocks;
        self
    }

    /// This filesystem behind an `Rc`.
    pub fn rc(self) -> Rc<dyn FileSystem> {
        Rc::new(self)
    }

    /// A volume on `device` holding this filesystem.
    pub fn volume(self, device: &str, uuid: Option<&str>, label: Option<&str>) -> Volume {
        Volume {
            info: FilesystemInfo {
                device: String::from(device),
                fstype: String::from("ext4"),
                label: label.map(String::from),
                uuid: uuid.map(String::from),
            },
            partuuid: None,
            partlabel: None,
            fs: Some(self.rc()),
            subvolume: None,
        }
    }

    /// The canonical key of `path`, following symlinks in every component but the last
    /// unless `follow`.
    fn walk(&self, path: &str, follow: bool, depth: &mut u32) -> Result<String, FsError> {
        if !path.starts_with('/') {
            return Err(FsError::BadPath(String::from(path)));
        }
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut cur = String::from("/");
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if !matches!(self.nodes.get(&cur), Some(Node::Dir)) {
                return Err(FsError::NotADirectory(cur));
            }
            match *c {
                "." => continue,
                ".." => {
                    match cur.rfind('/') {
                        Some(0) | None => cur = String::from("/"),
                        Some(i) => cur.truncate(i),
                    }
                    continue;
                }
                _ => {}
            }
            let cand = if cur == "/" {
                format!("/{c}")
            } else {
                format!("{cur}/{c}")
            };
            match self.nodes.get(&cand) {
                None => return Err(FsError::NotFound(cand)),
                Some(Node::Link(t)) if !last || follow => {
                    *depth += 1;
                    if *depth > MAX_SYMLINKS {
                        return Err(FsError::SymlinkLoop(String::from(path)));
                    }
                    let base = if t.starts_with('/') {
                        t.clone()
                    } else {
                        format!("{cur}/{t}")
                    };
                    cur = self.walk(&base, true, depth)?;
                }
                Some(_) => cur = cand,
            }
        }
        Ok(cur)
    }

    fn node(&self, path: &str, follow: bool) -> Result<(String, &Node), FsError> {
        let key = self.walk(path, follow, &mut 0)?;
        let node = self
            .nodes
            .get(&key)
            .ok_or_else(|| FsError::NotFound(key.clone()))?;
        Ok((key, node))
    }

    fn stat_of(node: &Node) -> Stat {
        let (kind, size, mode, link_target) = match node {
            Node::Dir => (FileKind::Directory, 4096, 0o040755, None),
            Node::File(d) => (FileKind::File, d.len() as u64, 0o100644, None),
            Node::Broken(n) => (FileKind::File, *n, 0o100644, None),
            Node::Link(t) => (FileKind::Symlink, t.len() as u64, 0o120777, Some(t.clone())),
            Node::Fifo => (FileKind::Fifo, 0, 0o010644, None),
        };
        Stat {
            kind,
            size,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            link_target,
        }
    }
}

impl FileSystem for TestFs {
    fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        Ok(Self::stat_of(self.node(path, false)?.1))
    }

    fn stat(&self, path: &str) -> Result<Stat, FsError> {
        Ok(Self::stat_of(self.node(path, true)?.1))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let (key, node) = self.node(path, true)?;
        if !matches!(node, Node::Dir) {
            return Err(FsError::NotADirectory(key));
        }
        let prefix = if key == "/" {
            key.clone()
        } else {
            format!("{key}/")
        };
        Ok(self
            .nodes
            .iter()
            .filter_map(|(k, n)| {
                let name = k.strip_prefix(prefix.as_str())?;
                (!name.is_empty() && !name.contains('/')).then(|| DirEntry {
                    name: String::from(name),
                    stat: Self::stat_of(n),
                })
            })
            .collect())
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        match self.node(path, false)? {
            (_, Node::Link(t)) => Ok(t.clone()),
            (key, _) => Err(FsError::BadPath(key)),
        }
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match self.node(path, true)? {
            (_, Node::File(d)) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
                let n = buf.len().min(d.len() - start);
                buf[..n].copy_from_slice(&d[start..start + n]);
                Ok(n)
            }
            (key, Node::Dir) => Err(FsError::IsADirectory(key)),
            (key, Node::Broken(_)) => Err(FsError::Io(key)),
            (key, _) => Err(FsError::NotAFile(key)),
        }
    }

    fn usage(&self) -> Result<Usage, FsError> {
        Ok(Usage {
            block_size: 4096,
            blocks: self.blocks,
            blocks_free: 0,
            blocks_available: 0,
            inodes: self.nodes.len() as u64,
            inodes_free: 0,
        })
    }
}
