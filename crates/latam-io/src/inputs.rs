//! Input discovery: paths, directories and globs become a sorted list of files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::IoError;

/// Stream compression of a JSONL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`.gz`), concatenated members allowed.
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Compression {
    /// The file-name suffix, with its dot (empty for none).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Gzip => ".gz",
            Self::Zstd => ".zst",
        }
    }
}

/// How an input file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl(Compression),
    /// A Parquet file (Hugging Face datasets layout: one row per document).
    Parquet,
    /// A whole `.txt` or `.md` file is one document.
    Text,
}

impl Format {
    /// Tells the format from a file name, or `None` when the name says nothing.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let (stem, compression) = if let Some(stem) = name.strip_suffix(".gz") {
            (stem, Compression::Gzip)
        } else if let Some(stem) = name.strip_suffix(".zst") {
            (stem, Compression::Zstd)
        } else {
            (name.as_str(), Compression::None)
        };
        let ext = Path::new(stem).extension()?.to_str()?;
        match (ext, compression) {
            ("jsonl" | "json" | "ndjson", c) => Some(Self::Jsonl(c)),
            ("parquet", Compression::None) => Some(Self::Parquet),
            ("txt" | "md", Compression::None) => Some(Self::Text),
            _ => None,
        }
    }
}

/// Where the bytes of an input come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on disk.
    Path(PathBuf),
    /// Bytes built into the program (the bundled sample corpus).
    Memory(&'static [u8]),
    /// Standard input: JSONL, plain or compressed (gzip and zstd are told by their magic bytes).
    Stdin,
}

/// One input file.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The name shown in errors, stats and the manifest (the path as found).
    pub name: String,
    /// Where to read it from.
    pub source: Source,
    /// How to read it.
    pub format: Format,
    /// Size in bytes, as stored (compressed size for compressed files).
    pub size: u64,
    /// Modification time in seconds since the epoch (0 for built-in inputs).
    pub modified: u64,
    /// The document id of a text file: its path relative to the directory it was found in.
    pub text_id: String,
    /// Only the records of these lines (rows), when a task reads part of the file (see
    /// [`crate::task_inputs`]); `None` for the whole file.
    pub lines: Option<std::ops::Range<u64>>,
}

impl InputFile {
    /// An input built into the program.
    pub fn in_memory(name: &str, format: Format, bytes: &'static [u8]) -> Self {
        Self {
            name: name.to_owned(),
            source: Source::Memory(bytes),
            format,
            size: bytes.len() as u64,
            modified: 0,
            text_id: name.to_owned(),
            lines: None,
        }
    }

    /// Standard input, read as JSONL (plain, gzip or zstd).
    pub fn stdin() -> Self {
        Self {
            name: "stdin".to_owned(),
            source: Source::Stdin,
            format: Format::Jsonl(Compression::None),
            size: 0,
            modified: 0,
            text_id: "stdin".to_owned(),
            lines: None,
        }
    }

    /// The file on disk, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::Path(path) => Some(path),
            Source::Memory(_) | Source::Stdin => None,
        }
    }

    fn from_path(path: &Path, root: Option<&Path>) -> Result<Self, IoError> {
        let format = Format::from_path(path).ok_or_else(|| IoError::UnknownFormat(path.into()))?;
        let meta = std::fs::metadata(path).map_err(|e| IoError::os(path, e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let relative = root
            .and_then(|r| path.strip_prefix(r).ok())
            .unwrap_or_else(|| path.file_name().map_or(path, Path::new));
        let text_id = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        Ok(Self {
            name: path.display().to_string(),
            source: Source::Path(path.to_owned()),
            format,
            size: meta.len(),
            modified,
            text_id,
            lines: None,
        })
    }
}

/// Resolves input specifications (files, directories, glob patterns) into files.
///
/// Directories are walked recursively and contribute the files whose format their name tells
/// (other files are skipped); their files, like a glob's matches, come in sorted order. The
/// specifications keep the order they were given in; `-` is standard input (JSONL, plain or
/// compressed), at most once. A path that does not exist, a glob that matches nothing and a
/// named file of unknown format are errors.
pub fn resolve_inputs(specs: &[String]) -> Result<Vec<InputFile>, IoError> {
    let mut files = Vec::new();
    for spec in specs {
        let path = Path::new(spec);
        if spec == "-" {
            if files
                .iter()
                .any(|f: &InputFile| matches!(f.source, Source::Stdin))
            {
                return Err(IoError::StdinTwice);
            }
            files.push(InputFile::stdin());
        } else if path.is_dir() {
            let mut found = Vec::new();
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                let entry = entry.map_err(|e| {
                    let at = e.path().unwrap_or(path).to_owned();
                    IoError::os(at, e.into())
                })?;
                if entry.file_type().is_file() && Format::from_path(entry.path()).is_some() {
                    found.push(InputFile::from_path(entry.path(), Some(path))?);
                }
            }
            files.extend(found);
        } else if path.exists() {
            files.push(InputFile::from_path(path, None)?);
        } else if spec.contains(['*', '?', '[']) {
            let paths = glob::glob(spec).map_err(|e| IoError::BadGlob {
                pattern: spec.clone(),
                message: e.msg.to_owned(),
            })?;
            let mut matched: Vec<PathBuf> = Vec::new();
            for entry in paths {
                let p = entry.map_err(|e| {
                    let at = e.path().to_owned();
                    IoError::os(at, e.into())
                })?;
                if p.is_file() {
                    matched.push(p);
                }
            }
            if matched.is_empty() {
                return Err(IoError::NoMatch(spec.clone()));
            }
            matched.sort();
            for p in matched {
                files.push(InputFile::from_path(&p, None)?);
            }
        } else {
            return Err(IoError::NotFound(spec.clone()));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names() {
        let f = |s: &str| Format::from_path(Path::new(s));
        assert_eq!(f("a/b.jsonl.zst"), Some(Format::Jsonl(Compression::Zstd)));
        assert_eq!(f("b.JSON.gz"), Some(Format::Jsonl(Compression::Gzip)));
        assert_eq!(f("train-0000.parquet"), Some(Format::Parquet));
        assert_eq!(f("notes.md"), Some(Format::Text));
        assert_eq!(f("archive.tar.gz"), None);
        assert_eq!(f("README"), None);
    }

    #[test]
    fn directories_and_globs_resolve_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        for name in ["b.txt", "a.md", "sub/c.txt", "skip.bin", "x.jsonl"] {
            std::fs::write(root.join(name), "hola").unwrap();
        }
        let found = resolve_inputs(&[root.display().to_string()]).unwrap();
        let ids: Vec<_> = found.iter().map(|f| f.text_id.as_str()).collect();
        assert_eq!(ids, ["a.md", "b.txt", "sub/c.txt", "x.jsonl"]);

        let pattern = format!("{}/*.txt", root.display());
        let found = resolve_inputs(&[pattern]).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].name.ends_with("b.txt"));
    }

    #[test]
    fn missing_inputs_are_errors() {
        let err = resolve_inputs(&["/no/such/file.jsonl".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input `/no/such/file.jsonl` does not exist"
        );
        let err = resolve_inputs(&["/no/such/*.jsonl".into()]).unwrap_err();
        assert!(matches!(err, IoError::NoMatch(_)));
    }
}
