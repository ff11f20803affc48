//! Megatron-LM / NeMo indexed datasets (`MMIDIDX`): `PREFIX.bin` holds the token arrays one
//! after the other; `PREFIX.idx` holds a 9-byte magic, version 1 (u64), the dtype code (u8),
//! the sequence count (u64), the document count (u64), then the sequence lengths (i32), the
//! sequence byte offsets (i64) and the document boundaries (i64, sequence indices), all
//! little-endian. One sequence per document here, so the boundaries are 0..=n.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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

/// A Megatron indexed dataset read back: the index in memory, its counts, lengths, offsets and
/// document boundaries checked against the sizes of the `.idx` and the `.bin` before anything is
/// allocated for them; each sequence read from the `.bin` when asked for.
pub struct MegatronReader {
    dtype: TokenType,
    /// Each sequence's byte offset in the `.bin` and its tokens.
    sequences: Vec<(u64, u32)>,
    documents: Vec<i64>,
    bin: Mutex<File>,
    bin_path: PathBuf,
}

/// The fixed part of an index: magic, version, dtype, sequence and document counts.
const HEADER: usize = 34;

impl MegatronReader {
    /// Reads `prefix.idx` and opens `prefix.bin`.
    pub fn open(prefix: &Path) -> Result<Self, TokenizeError> {
        let idx_path = with_suffix(prefix, "idx");
        let bad = |m: String| TokenizeError::Input(idx_path.clone(), m);
        let (file, idx_len) = open_sized(&idx_path)?;
        let mut idx = BufReader::new(file);
        let (dtype, n, docs) = read_header(&mut idx, idx_len).map_err(bad)?;
        let read_err = |e: std::io::Error| bad(e.to_string());
        let lengths = read_values(&mut idx, n, i32::from_le_bytes).map_err(read_err)?;
        let pointers = read_values(&mut idx, n, i64::from_le_bytes).map_err(read_err)?;
        let documents = read_values(&mut idx, docs, i64::from_le_bytes).map_err(read_err)?;
        let in_order = documents.windows(2).all(|w| w[0] <= w[1]);
        if !in_order || documents.iter().any(|&d| d < 0 || d as u64 > n as u64) {
            return Err(bad(format!(
                "document boundaries out of order or outside 0..={n}"
            )));
        }
        let bin_path = with_suffix(prefix, "bin");
        let (bin, bin_len) = open_sized(&bin_path)?;
        let sequences = lengths
            .into_iter()
            .zip(pointers)
            .enumerate()
            .map(|(i, (length, pointer))| {
                extent(pointer, length, dtype, bin_len).ok_or_else(|| {
                    TokenizeError::Input(
                        bin_path.clone(),
                        format!(
                            "sequence {i} ({length} tokens at byte {pointer}) runs past the end \
                             of the file ({bin_len} bytes)"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            dtype,
            sequences,
            documents,
            bin: Mutex::new(bin),
            bin_path,
        })
    }

    /// Sequences.
    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// Document boundaries (sequence indices, in order, each at most [`len`](Self::len)).
    pub fn documents(&self) -> &[i64] {
        &self.documents
    }

    /// The token width.
    pub fn dtype(&self) -> TokenType {
        self.dtype
    }

    /// Sequence `i`, read from the `.bin`.
    pub fn get(&self, i: usize) -> Result<Vec<u32>, TokenizeError> {
        let fail = |m: String| TokenizeError::Input(self.bin_path.clone(), m);
        let &(start, length) = self
            .sequences
            .get(i)
            .ok_or_else(|| fail(format!("no sequence {i}: there are {}", self.len())))?;
        let mut bytes = vec![0u8; length as usize * self.dtype.size()];
        let mut bin = self.bin.lock().unwrap_or_else(PoisonError::into_inner);
        bin.seek(SeekFrom::Start(start))
            .and_then(|_| bin.read_exact(&mut bytes))
            .map_err(|e| fail(format!("sequence {i}: {e}")))?;
        Ok(match self.dtype {
            TokenType::Uint16 => bytes
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            TokenType::Int32 => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4")) as u32)
                .collect(),
        })
    }
}

/// The token width and the sequence and document counts, checked to fit in the index's `len`
/// bytes.
fn read_header(idx: &mut impl Read, len: u64) -> Result<(TokenType, usize, usize), String> {
    let mut header = [0u8; HEADER];
    if idx.read_exact(&mut header).is_err() || &header[..9] != MAGIC {
        return Err("not a Megatron index (no MMIDIDX header)".into());
    }
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    if u64_at(9) != 1 {
        return Err(format!("index version {} (only 1 is read)", u64_at(9)));
    }
    let dtype = match header[17] {
        8 => TokenType::Uint16,
        4 => TokenType::Int32,
        other => return Err(format!("token dtype code {other} (only 4 and 8 are read)")),
    };
    let (n, docs) = (u64_at(18), u64_at(26));
    // Per sequence a length (4 bytes) and an offset (8); per document boundary 8 bytes.
    let need = n
        .checked_mul(12)
        .and_then(|b| b.checked_add(docs.checked_mul(8)?))
        .and_then(|b| b.checked_add(HEADER as u64));
    match need {
        Some(need) if need <= len => Ok((dtype, n as usize, docs as usize)),
        _ => Err(format!(
            "truncated index: {n} sequences and {docs} document boundaries do not fit in its \
             {len} bytes"
        )),
    }
}

/// A sequence's byte offset and token count when both are positive and it lies within the
/// `.bin`'s `bin_len` bytes.
fn extent(pointer: i64, length: i32, dtype: TokenType, bin_len: u64) -> Option<(u64, u32)> {
    let start = u64::try_from(pointer).ok()?;
    let length = u32::try_from(length).ok()?;
    let end = start.checked_add(u64::from(length) * dtype.size() as u64)?;
    (end <= bin_len).then_some((start, length))
}

/// The file and its size.
fn open_sized(path: &Path) -> Result<(File, u64), TokenizeError> {
    let bad = |e: std::io::Error| TokenizeError::Input(path.to_owned(), e.to_string());
    let file = File::open(path).map_err(bad)?;
    let len = file.metadata().map_err(bad)?.len();
    Ok((file, len))
}

/// `count` little-endian values of `W` bytes each, decoded by `decode` (the caller has checked
/// that the file holds them).
fn read_values<const W: usize, T>(
    input: &mut impl Read,
    count: usize,
    decode: fn([u8; W]) -> T,
) -> std::io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(count);
    let mut value = [0u8; W];
    for _ in 0..count {
        input.read_exact(&mut value)?;
        out.push(decode(value));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard of three sequences (2, 0 and 3 tokens): its prefix and its index's bytes.
    fn shard(dir: &Path) -> (PathBuf, Vec<u8>) {
        let prefix = dir.join("shard");
        let mut writer = MegatronWriter::create(&prefix, TokenType::Uint16).unwrap();
        for ids in [&[5, 6][..], &[], &[7, 8, 9]] {
            writer.push(ids).unwrap();
        }
        writer.finish().unwrap();
        let idx = std::fs::read(with_suffix(&prefix, "idx")).unwrap();
        (prefix, idx)
    }

    /// The error of opening the shard with its index's bytes at `at` replaced by `value`.
    fn error_with(at: usize, value: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (prefix, mut idx) = shard(dir.path());
        idx[at..at + value.len()].copy_from_slice(value);
        std::fs::write(with_suffix(&prefix, "idx"), idx).unwrap();
        match MegatronReader::open(&prefix) {
            Ok(_) => panic!("read"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (prefix, _) = shard(dir.path());
        let reader = MegatronReader::open(&prefix).unwrap();
        assert_eq!(reader.len(), 3);
        assert_eq!(reader.get(0).unwrap(), [5, 6]);
        assert!(reader.get(1).unwrap().is_empty());
        assert_eq!(reader.get(2).unwrap(), [7, 8, 9]);
        assert_eq!(reader.documents(), [0, 1, 2, 3]);
    }

    /// `34 + n * 4 + …` overflowed (a panic in debug builds) for a huge sequence count.
    #[test]
    fn counts_past_the_file_are_refused_without_overflow() {
        for n in [u64::MAX, u64::MAX / 4 + 1, 1 << 40, 4] {
            let err = error_with(18, &n.to_le_bytes());
            assert!(err.contains("truncated index"), "{n}: {err}");
        }
        let err = error_with(26, &u64::MAX.to_le_bytes());
        assert!(err.contains("truncated index"), "{err}");
    }

    /// A negative offset or length became a huge `usize` and overflowed.
    #[test]
    fn negative_or_huge_lengths_and_offsets_are_refused() {
        let lengths = HEADER;
        let pointers = HEADER + 3 * 4;
        for (at, value) in [
            (lengths, (-1i32).to_le_bytes().to_vec()),
            (lengths + 8, i32::MAX.to_le_bytes().to_vec()),
            (pointers, (-2i64).to_le_bytes().to_vec()),
            (pointers + 16, i64::MAX.to_le_bytes().to_vec()),
        ] {
            let err = error_with(at, &value);
            assert!(err.contains("runs past the end"), "{err}");
        }
    }

    /// Boundaries were returned unchecked: a reader slicing sequences by them panicked.
    #[test]
    fn document_boundaries_out_of_range_are_refused() {
        let documents = HEADER + 3 * 12;
        for d in [-1i64, 4, i64::MAX] {
            let err = error_with(documents + 8, &d.to_le_bytes());
            assert!(err.contains("document boundaries"), "{d}: {err}");
        }
    }

    /// `get` indexed its arrays and the whole `.bin` in memory: past the end it panicked.
    #[test]
    fn a_missing_sequence_or_a_shrunk_bin_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (prefix, _) = shard(dir.path());
        let reader = MegatronReader::open(&prefix).unwrap();
        assert!(
            reader
                .get(3)
                .unwrap_err()
                .to_string()
                .contains("no sequence 3")
        );
        std::fs::write(with_suffix(&prefix, "bin"), [0u8; 4]).unwrap();
        assert!(reader.get(2).is_err());
    }
}
