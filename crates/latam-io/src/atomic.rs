//! Atomic writes: a temp file in the target's directory, renamed into place when complete, so a
//! killed run never leaves a half-written file under a final name.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::IoError;

/// A file being written under a temporary name (`<name>.tmp`), renamed on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<File>,
}

impl AtomicFile {
    /// Creates `<path>.tmp` (and missing parent directories).
    pub fn create(path: &Path) -> Result<Self, IoError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| IoError::os(parent, e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| IoError::os(&tmp, e))?;
        Ok(Self {
            path: path.to_owned(),
            tmp,
            file: BufWriter::with_capacity(1 << 20, file),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> Result<(), IoError> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| IoError::os(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| IoError::os(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| IoError::os(&self.path, e))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes a whole file atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(|e| IoError::os(path, e))?;
    file.commit()
}
