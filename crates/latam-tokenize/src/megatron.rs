//! Megatron-LM / NeMo indexed datasets (`MMIDIDX`): `PREFIX.bin` holds the token arrays one
//! after the other; `PREFIX.idx` holds a 9-byte magic, version 1 (u64), the dtype code (u8),
//! the sequence count (u64), the document count (u64), then the sequence lengths (i32), the
//! sequence byte offsets (i64) and the document boundaries (i64, sequence indices), all
//! little-endian. One sequence per document here, so the boundaries are 0..=n.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use latam_io::AtomicFile;

use crate::TokenizeError;

const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

/// Token width: Megatron's `uint16` (code 8) for vocabularies up to 65,535 ids, else `int32`
/// (code 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// 2 bytes.
    Uint16,
    /// 4 bytes.
    Int32,
}

impl TokenType {
    /// The width that holds every id below `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 65_535 {
            Self::Uint16
        } else {
            Self::Int32
        }
    }

    /// Bytes per token.
    pub fn size(self) -> usize {
        match self {
            Self::Uint16 => 2,
            Self::Int32 => 4,
        }
    }

    /// Megatron's dtype code.
    pub fn code(self) -> u8 {
        match self {
            Self::Uint16 => 8,
            Self::Int32 => 4,
        }
    }

    /// numpy's `descr`.
    pub fn numpy(self) -> &'static str {
        match self {
            Self::Uint16 => "<u2",
            Self::Int32 => "<i4",
        }
    }

    /// Appends `ids` in this width, little-endian (ids are below the vocabulary size, which
    /// chose the width).
    #[allow(clippy::cast_possible_wrap)]
    pub fn encode(self, ids: &[u32], out: &mut Vec<u8>) {
        match self {
            Self::Uint16 => ids
                .iter()
                .for_each(|id| out.extend_from_slice(&(*id as u16).to_le_bytes())),
            Self::Int32 => ids
                .iter()
                .for_each(|id| out.extend_from_slice(&(*id as i32).to_le_bytes())),
        }
    }
}

/// Writes `PREFIX.bin` and, at `finish`, `PREFIX.idx` (both atomically).
pub struct MegatronWriter {
    bin: AtomicFile,
    idx_path: PathBuf,
    dtype: TokenType,
    lengths: Vec<i32>,
    buf: Vec<u8>,
}

impl MegatronWriter {
    /// Starts `prefix.bin`.
    pub fn create(prefix: &Path, dtype: TokenType) -> Result<Self, TokenizeError> {
        let bin_path = with_suffix(prefix, "bin");
        let bin = AtomicFile::create(&bin_path)
            .map_err(|e| TokenizeError::Output(bin_path.clone(), e.to_string()))?;
        Ok(Self {
            bin,
            idx_path: with_suffix(prefix, "idx"),
            dtype,
            lengths: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Appends one document's tokens as a sequence.
    pub fn push(&mut self, ids: &[u32]) -> Result<(), TokenizeError> {
        let len = i32::try_from(ids.len()).map_err(|_| {
            TokenizeError::Output(
                self.idx_path.clone(),
                "a document of more than 2^31 tokens".into(),
            )
        })?;
        self.buf.clear();
        self.dtype.encode(ids, &mut self.buf);
        self.bin
            .write_all(&self.buf)
            .map_err(|e| TokenizeError::Output(self.idx_path.clone(), e.to_string()))?;
        self.lengths.push(len);
        Ok(())
    }

    /// Commits the `.bin` and writes the `.idx` (counts and offsets are far below 2^63).
    #[allow(clippy::cast_possible_wrap)]
    pub fn finish(self) -> Result<(), TokenizeError> {
        let fail = |e: String| TokenizeError::Output(self.idx_path.clone(), e);
        self.bin.commit().map_err(|e| fail(e.to_string()))?;
        let n = self.lengths.len();
        let mut idx = Vec::with_capacity(34 + n * 20);
        idx.extend_from_slice(MAGIC);
        idx.extend_from_slice(&1u64.to_le_bytes());
        idx.push(self.dtype.code());
        idx.extend_from_slice(&(n as u64).to_le_bytes());
        idx.extend_from_slice(&(n as u64 + 1).to_le_bytes());
        for len in &self.lengths {
            idx.extend_from_slice(&len.to_le_bytes());
        }
        let mut offset = 0i64;
        for len in &self.lengths {
            idx.extend_from_slice(&offset.to_le_bytes());
            offset += i64::from(*len) * self.dtype.size() as i64;
        }
        for i in 0..=n as i64 {
            idx.extend_from_slice(&i.to_le_bytes());
        }
        latam_io::write_atomic(&self.idx_path, &idx).map_err(|e| fail(e.to_string()))
    }
}

/// `prefix` + `.suffix` (a prefix's own dots are kept).
pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// A Megatron indexed dataset read back.
pub struct MegatronReader {
    dtype: TokenType,
    lengths: Vec<i32>,
    pointers: Vec<i64>,
    documents: Vec<i64>,
    bin: Vec<u8>,
}

impl MegatronReader {
    /// Reads `prefix.idx` and `prefix.bin`, checking the header and the offsets.
    pub fn open(prefix: &Path) -> Result<Self, TokenizeError> {
        let idx_path = with_suffix(prefix, "idx");
        let bad = |m: &str| TokenizeError::Input(idx_path.clone(), m.to_owned());
        let mut idx = Vec::new();
        File::open(&idx_path)
            .and_then(|mut f| f.read_to_end(&mut idx))
            .map_err(|e| bad(&e.to_string()))?;
        if idx.len() < 34 || &idx[..9] != MAGIC {
            return Err(bad("not a Megatron index (no MMIDIDX header)"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(idx[at..at + 8].try_into().expect("8 bytes"));
        if u64_at(9) != 1 {
            return Err(bad("index version other than 1"));
        }
        let dtype = match idx[17] {
            8 => TokenType::Uint16,
            4 => TokenType::Int32,
            other => {
                return Err(bad(&format!(
                    "token dtype code {other} (only 4 and 8 are read)"
                )));
            }
        };
        let (n, docs) = (u64_at(18) as usize, u64_at(26) as usize);
        let need = 34 + n * 4 + n * 8 + docs * 8;
        if idx.len() < need {
            return Err(bad("truncated index"));
        }
        let lengths = idx[34..34 + n * 4]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        let start = 34 + n * 4;
        let pointers = idx[start..start + n * 8]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        let start = start + n * 8;
        let documents = idx[start..start + docs * 8]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        let bin_path = with_suffix(prefix, "bin");
        let bin = std::fs::read(&bin_path)
            .map_err(|e| TokenizeError::Input(bin_path.clone(), e.to_string()))?;
        let reader = Self {
            dtype,
            lengths,
            pointers,
            documents,
            bin,
        };
        for i in 0..reader.len() {
            let end = reader.pointers[i] as usize + reader.lengths[i] as usize * dtype.size();
            if end > reader.bin.len() {
                return Err(TokenizeError::Input(
                    bin_path,
                    format!("sequence {i} runs past the end of the file"),
                ));
            }
        }
        Ok(reader)
    }

    /// Sequences.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Document boundaries (sequence indices).
    pub fn documents(&self) -> &[i64] {
        &self.documents
    }

    /// The token width.
    pub fn dtype(&self) -> TokenType {
        self.dtype
    }

    /// Sequence `i`.
    pub fn get(&self, i: usize) -> Vec<u32> {
        let start = self.pointers[i] as usize;
        let bytes = &self.bin[start..start + self.lengths[i] as usize * self.dtype.size()];
        match self.dtype {
            TokenType::Uint16 => bytes
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            TokenType::Int32 => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4")) as u32)
                .collect(),
        }
    }
}

/// Writes one flat token array as a `.npy` file (numpy format 1.0), nanoGPT/llm.c style: the
/// documents one after the other, each ending with the end-of-document token. Tokens stream to
/// a side file; `finish` writes the header (which needs the count) and the tokens atomically.
pub struct NpyWriter {
    path: PathBuf,
    raw_path: PathBuf,
    raw: std::io::BufWriter<File>,
    dtype: TokenType,
    count: u64,
    buf: Vec<u8>,
}

impl NpyWriter {
    /// Starts `path`.
    pub fn create(path: &Path, dtype: TokenType) -> Result<Self, TokenizeError> {
        let raw_path = with_suffix(path, "tokens.tmp");
        let raw = File::create(&raw_path)
            .map_err(|e| TokenizeError::Output(raw_path.clone(), e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            raw_path,
            raw: std::io::BufWriter::with_capacity(1 << 20, raw),
            dtype,
            count: 0,
            buf: Vec::new(),
        })
    }

    /// Appends one document's tokens.
    pub fn push(&mut self, ids: &[u32]) -> Result<(), TokenizeError> {
        self.buf.clear();
        self.dtype.encode(ids, &mut self.buf);
        self.raw
            .write_all(&self.buf)
            .map_err(|e| TokenizeError::Output(self.raw_path.clone(), e.to_string()))?;
        self.count += ids.len() as u64;
        Ok(())
    }

    /// Writes the `.npy` and removes the side file.
    pub fn finish(self) -> Result<(), TokenizeError> {
        let fail = |e: String| TokenizeError::Output(self.path.clone(), e);
        self.raw.into_inner().map_err(|e| fail(e.to_string()))?;
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': ({},), }}",
            self.dtype.numpy(),
            self.count
        );
        // magic (6) + version (2) + header length (2) + header, padded to 64 bytes, ending in \n.
        let total = (10 + header.len() + 1).div_ceil(64) * 64;
        while 10 + header.len() + 1 < total {
            header.push(' ');
        }
        header.push('\n');
        let mut out = AtomicFile::create(&self.path).map_err(|e| fail(e.to_string()))?;
        out.write_all(b"\x93NUMPY\x01\x00")
            .map_err(|e| fail(e.to_string()))?;
        out.write_all(&(header.len() as u16).to_le_bytes())
            .map_err(|e| fail(e.to_string()))?;
        out.write_all(header.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        let mut raw = File::open(&self.raw_path).map_err(|e| fail(e.to_string()))?;
        std::io::copy(&mut raw, &mut out).map_err(|e| fail(e.to_string()))?;
        out.commit().map_err(|e| fail(e.to_string()))?;
        std::fs::remove_file(&self.raw_path).map_err(|e| fail(e.to_string()))
    }
}
