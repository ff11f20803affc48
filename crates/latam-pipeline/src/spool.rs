//! The spool: every batch as the steps before the first corpus-wide step left it, written by
//! that step's scan, so that the later scans and the final pass start from there instead of
//! reading the inputs and running those steps again.
//!
//! ```text
//! OUT/.latam/spool/batches.bin   frames: shard (u64), last in shard (u8), length (u64), then
//!                                the batch (its slots and step counts) as zstd-compressed JSON
//!                                (level -3)
//! OUT/.latam/spool/inputs.json   the inputs as read (for the manifest); written last: the
//!                                spool is complete when it exists
//! ```
//!
//! A run deletes its spool once its final files are written.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;
use latam_io::{AtomicFile, write_atomic};
use serde::{Deserialize, Serialize};

use crate::PipelineError;
use crate::engine::{InputSummary, RawBatch, RawPayload, Slot};
use crate::stats::RunStats;

/// One spooled batch, as written.
#[derive(Serialize)]
pub(crate) struct SpooledRef<'a> {
    pub slots: &'a [Slot],
    pub stats: &'a RunStats,
}

/// One spooled batch, as read.
#[derive(Deserialize)]
pub(crate) struct SpooledBatch {
    pub slots: Vec<Slot>,
    pub stats: RunStats,
}

fn error(path: &Path, message: impl std::fmt::Display) -> PipelineError {
    PipelineError::State {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The spool directory of a run.
pub(crate) struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn batches(&self) -> PathBuf {
        self.dir.join("batches.bin")
    }

    fn inputs(&self) -> PathBuf {
        self.dir.join("inputs.json")
    }

    /// Whether a complete spool is there.
    pub(crate) fn is_complete(&self) -> bool {
        self.inputs().exists() && self.batches().exists()
    }

    /// Starts a new spool, removing an incomplete one.
    pub(crate) fn create(&self) -> Result<SpoolWriter, PipelineError> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| error(&self.dir, e))?;
        }
        Ok(SpoolWriter {
            file: AtomicFile::create(&self.batches())?,
            inputs: self.inputs(),
        })
    }

    /// The inputs as the scan read them.
    pub(crate) fn read_inputs(&self) -> Result<Vec<InputSummary>, PipelineError> {
        let path = self.inputs();
        let text = std::fs::read_to_string(&path).map_err(|e| error(&path, e))?;
        serde_json::from_str(&text).map_err(|e| error(&path, e))
    }

    /// Size of the batches file.
    pub(crate) fn size(&self) -> u64 {
        std::fs::metadata(self.batches()).map_or(0, |m| m.len())
    }

    /// Sends the frames of shards `skip_shards..` (the reader thread of a pass over the spool),
    /// counting the bytes read in `consumed`; the inputs come from [`Spool::read_inputs`].
    pub(crate) fn send_frames(
        &self,
        skip_shards: usize,
        tx: &Sender<RawBatch>,
        consumed: &std::sync::atomic::AtomicU64,
        interrupt: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<(), PipelineError> {
        let path = self.batches();
        let mut reader =
            BufReader::with_capacity(1 << 20, File::open(&path).map_err(|e| error(&path, e))?);
        let mut header = [0u8; 17];
        loop {
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(error(&path, e)),
            }
            let shard = u64::from_le_bytes(header[..8].try_into().expect("8 bytes")) as usize;
            let len = u64::from_le_bytes(header[9..].try_into().expect("8 bytes")) as usize;
            let mut bytes = vec![0; len];
            reader
                .read_exact(&mut bytes)
                .map_err(|e| error(&path, format!("truncated spool: {e}")))?;
            consumed.fetch_add(17 + len as u64, std::sync::atomic::Ordering::Relaxed);
            if shard < skip_shards {
                continue;
            }
            let frame = RawBatch {
                shard,
                last_in_shard: header[8] == 1,
                payload: RawPayload::Spooled(bytes),
            };
            if crate::engine::is_set(interrupt) || tx.send(frame).is_err() {
                return Ok(());
            }
        }
    }

    /// Removes the spool.
    pub(crate) fn remove(&self) -> Result<(), PipelineError> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| error(&self.dir, e))?;
        }
        Ok(())
    }
}

/// zstd's fast level -3: the spool lives for one run, so speed beats size (about twice the
/// speed of level 1, for a third more bytes on text).
const SPOOL_LEVEL: i32 = -3;

/// Compresses one batch (in a worker).
pub(crate) fn encode(batch: &SpooledRef) -> Result<Vec<u8>, PipelineError> {
    let json = serde_json::to_vec(batch)
        .map_err(|e| PipelineError::Internal(format!("spooling a batch: {e}")))?;
    zstd::bulk::compress(&json, SPOOL_LEVEL)
        .map_err(|e| PipelineError::Internal(format!("spooling a batch: {e}")))
}

/// Decompresses one frame (in a worker).
pub(crate) fn decode(frame: &[u8]) -> Result<SpooledBatch, String> {
    let json = zstd::stream::decode_all(frame).map_err(|e| format!("a spooled batch: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("a spooled batch: {e}"))
}

/// Writes the spool, frame by frame, in corpus order.
pub(crate) struct SpoolWriter {
    file: AtomicFile,
    inputs: PathBuf,
}

impl SpoolWriter {
    pub(crate) fn append(
        &mut self,
        shard: usize,
        last_in_shard: bool,
        bytes: &[u8],
    ) -> Result<(), PipelineError> {
        let path = self.file.path().to_owned();
        let mut header = Vec::with_capacity(17);
        header.extend_from_slice(&(shard as u64).to_le_bytes());
        header.push(u8::from(last_in_shard));
        header.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.file
            .write_all(&header)
            .and_then(|()| self.file.write_all(bytes))
            .map_err(|e| error(&path, e))
    }

    /// Commits the batches, then the inputs: the spool is complete.
    pub(crate) fn finish(self, inputs: &[InputSummary]) -> Result<(), PipelineError> {
        self.file.commit()?;
        let json = serde_json::to_vec_pretty(inputs).expect("plain data");
        write_atomic(&self.inputs, &json)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use latam_core::Document;
    use serde_json::json;

    use super::*;
    use crate::engine::{ErrorRecord, Fate};

    #[test]
    fn a_batch_comes_back_exactly() {
        let mut doc = Document::new("a:1", "Texto con ñ, \u{1F600} y \"comillas\".\n");
        doc.metadata
            .insert("language_score".into(), json!(0.123_456_789_012_345_68));
        doc.metadata
            .insert("z_first".into(), json!({"b": 1, "a": [1.5, null]}));
        doc.extra.insert("url".into(), json!("https://example.org"));
        let slots = vec![
            Slot::Doc {
                doc,
                at: latam_core::position(3, 7),
                read_bytes: 42,
                fate: Fate::Rejected {
                    step: 2,
                    redacted: true,
                },
            },
            Slot::Error(ErrorRecord {
                file: "x.jsonl".into(),
                line: 9,
                error: "not JSON".into(),
            }),
        ];
        let stats = RunStats::new(&[("normalize".into(), "normalize".into())]);
        let frame = encode(&SpooledRef {
            slots: &slots,
            stats: &stats,
        })
        .unwrap();
        let back = decode(&frame).unwrap();
        assert_eq!(
            serde_json::to_string(&back.slots).unwrap(),
            serde_json::to_string(&slots).unwrap()
        );
        let Slot::Doc { doc, .. } = &back.slots[0] else {
            panic!("a document")
        };
        let mut line = Vec::new();
        doc.write_json_line(&mut line);
        assert!(
            String::from_utf8(line)
                .unwrap()
                .contains("\"z_first\":{\"b\":1,\"a\":[1.5,null]}")
        );
        assert_eq!(back.stats, stats);
    }
}
