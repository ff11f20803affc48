//! Atomic writes: a temp file in the target's directory, renamed into place when complete, so a
//! killed run never leaves a half-written file under a final name.
//!
//! Temp names are unique per process and file (`<name>.<pid>-<n>.tmp`), so tasks that start
//! together on a shared directory (a Slurm job array) never rename each other's files away; a
//! file that several tasks may create is written with [`create_new`], which keeps the first.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::IoError;

/// A file being written under a temporary name, renamed on [`AtomicFile::commit`]; dropped
/// without a commit, the temp file is removed.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

/// A temp name beside `path` that no other file of this or another process uses.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}-{n}.tmp", std::process::id()));
    PathBuf::from(tmp)
}

impl AtomicFile {
    /// Creates a temp file beside `path` (and missing parent directories).
    pub fn create(path: &Path) -> Result<Self, IoError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| IoError::os(parent, e))?;
        }
        let tmp = temp_path(path);
        // Unique among live processes; one left by a dead process of the same pid is replaced.
        let file = File::create(&tmp).map_err(|e| IoError::os(&tmp, e))?;
        Ok(Self {
            path: path.to_owned(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("an uncommitted file")
    }

    /// Flushes and syncs the temp file; returns its path.
    fn complete(&mut self) -> Result<PathBuf, IoError> {
        let file = self
            .file
            .take()
            .expect("an uncommitted file")
            .into_inner()
            .map_err(|e| IoError::os(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| IoError::os(&self.tmp, e))?;
        Ok(std::mem::take(&mut self.tmp))
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<(), IoError> {
        let tmp = self.complete()?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            IoError::os(&self.path, e)
        })
    }

    /// Flushes and syncs the file, then gives it its final name only if no file has it yet
    /// (atomically, by a hard link): `Ok(true)` when this one was placed, `Ok(false)` when
    /// another was there first (this one is discarded).
    pub fn commit_new(mut self) -> Result<bool, IoError> {
        let tmp = self.complete()?;
        let placed = match std::fs::hard_link(&tmp, &self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(IoError::os(&self.path, e)),
        };
        std::fs::remove_file(&tmp).map_err(|e| IoError::os(&tmp, e))?;
        placed
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

/// Writes a whole file atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(|e| IoError::os(path, e))?;
    file.commit()
}

/// Creates `path` with `contents` unless it exists: `Ok(true)` when this call created it,
/// `Ok(false)` when a file was already there (left as it was; read it to compare). Safe when
/// several processes race to create the same file: exactly one wins, and no reader ever sees a
/// partial file.
pub fn create_new(path: &Path, contents: &[u8]) -> Result<bool, IoError> {
    if path.exists() {
        return Ok(false);
    }
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(|e| IoError::os(path, e))?;
    file.commit_new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn two_writers_of_one_path_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("params.json");
        let mut a = AtomicFile::create(&path).unwrap();
        let mut b = AtomicFile::create(&path).unwrap();
        a.write_all(b"a").unwrap();
        b.write_all(b"b").unwrap();
        a.commit().unwrap();
        b.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"b");
        assert_eq!(names(dir.path()), ["params.json"]);
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = AtomicFile::create(&dir.path().join("part.jsonl")).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn create_new_keeps_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("params.json");
        assert!(create_new(&path, b"first").unwrap());
        assert!(!create_new(&path, b"second").unwrap());
        let late = AtomicFile::create(&path).unwrap();
        assert!(!late.commit_new().unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["params.json"]);
    }

    #[test]
    fn racing_creators_agree_on_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("params.json");
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let path = &path;
                    s.spawn(move || {
                        usize::from(create_new(path, format!("{i}").as_bytes()).unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
        assert_eq!(names(dir.path()), ["params.json"]);
    }
}
