//! The output directory: preparing it (fresh, resumed or refused), writing shards with their
//! completion markers, and the final files (`errors.jsonl`, `stats.json`, `manifest.json`,
//! `report.html`), which are always rebuilt from the markers.
//!
//! ```text
//! OUT/.latam/run.json                 fingerprint of config + inputs + version
//! OUT/.latam/shards/shard-00000.json  a finished shard: stats, errors, outputs with hashes
//! OUT/.latam/shards/shard-00000.keys  keys shown to ordered steps (replayed on resume)
//! OUT/.latam/steps/<step>/            plans of corpus-wide steps (reused on resume)
//! OUT/.latam/spool/                   batches as the first corpus-wide step sees them (until the end)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crossbeam_channel::Receiver;
use latam_io::{InputFile, IoError, PartWriter, hex, sha256_file, write_atomic};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::PipelineError;
use crate::config::{OutputConfig, PipelineConfig};
use crate::engine::{ErrorRecord, InputSummary, Payload, RunOptions, Slot, WriterMsg};
use crate::stats::RunStats;

const STATE_DIR: &str = ".latam";
const KEYS_MAGIC: &[u8; 8] = b"LTMKEYS\0";
const KEYS_VERSION: u32 = 1;
/// Files of a run at the top of the output directory.
const FINAL_FILES: [&str; 4] = ["errors.jsonl", "stats.json", "manifest.json", "report.html"];

/// One output part, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutputRecord {
    /// Path relative to the output directory.
    pub path: String,
    /// Documents in it.
    pub documents: u64,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// The marker of a finished shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardMarker {
    shard: usize,
    stats: RunStats,
    errors: Vec<ErrorRecord>,
    outputs: Vec<OutputRecord>,
}

fn os_error(path: &Path, source: std::io::Error) -> PipelineError {
    PipelineError::Io(IoError::Os {
        path: path.into(),
        source,
    })
}

fn state_error(path: &Path, message: impl std::fmt::Display) -> PipelineError {
    PipelineError::State {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Wall times of an invocation: the whole, and the scans of corpus-wide steps by step name.
pub(crate) struct Timing {
    pub elapsed: Duration,
    pub scans: BTreeMap<String, f64>,
}

/// The seeds of the steps that draw random numbers, by step name.
fn seeds(config: &PipelineConfig) -> Value {
    let mut seeds = serde_json::Map::new();
    for (name, step) in config.step_names().into_iter().zip(&config.steps) {
        if let crate::config::StepConfig::DedupMinhash(c) = step {
            seeds.insert(name, json!(c.seed));
        }
    }
    Value::Object(seeds)
}

/// The output directory of a run.
pub(crate) struct OutputDir {
    root: PathBuf,
}

impl OutputDir {
    /// Makes `root` ready: new, resumed (same fingerprint), or replaced with `overwrite`.
    pub(crate) fn prepare(
        root: &Path,
        config: &PipelineConfig,
        inputs: &[InputFile],
        overwrite: bool,
    ) -> Result<Self, PipelineError> {
        let dir = Self {
            root: root.to_owned(),
        };
        let fingerprint = fingerprint(config, inputs);
        let run_file = dir.state_dir().join("run.json");
        if root.exists() {
            let previous = std::fs::read_to_string(&run_file).ok().and_then(|text| {
                serde_json::from_str::<Value>(&text)
                    .ok()?
                    .get("fingerprint")?
                    .as_str()
                    .map(str::to_owned)
            });
            let reason = match previous {
                Some(p) if p == fingerprint => None,
                Some(_) => {
                    Some("holds a run of another pipeline, other inputs or another latam version")
                }
                None if dir_is_empty(root)? => None,
                None => Some("is not empty and holds no latam run"),
            };
            if let Some(reason) = reason {
                if !overwrite {
                    return Err(PipelineError::OutputInUse {
                        path: root.display().to_string(),
                        reason: reason.into(),
                    });
                }
                dir.clear()?;
            }
        }
        for sub in ["documents", ".latam/shards"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| os_error(&root.join(sub), e))?;
        }
        write_atomic(
            &run_file,
            json!({ "fingerprint": fingerprint }).to_string().as_bytes(),
        )?;
        remove_temp_files(root)?;
        Ok(dir)
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// The spool of the run's scans.
    pub(crate) fn spool_dir(&self) -> PathBuf {
        self.state_dir().join("spool")
    }

    /// The work directory of corpus-wide step `name`.
    pub(crate) fn step_dir(&self, name: &str) -> PathBuf {
        self.state_dir().join("steps").join(name)
    }

    fn marker_path(&self, shard: usize, ext: &str) -> PathBuf {
        self.state_dir()
            .join("shards")
            .join(format!("shard-{shard:05}.{ext}"))
    }

    /// Removes what a run writes (and nothing else).
    fn clear(&self) -> Result<(), PipelineError> {
        for sub in ["documents", "rejected", STATE_DIR] {
            let path = self.root.join(sub);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|e| os_error(&path, e))?;
            }
        }
        for file in FINAL_FILES {
            let path = self.root.join(file);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| os_error(&path, e))?;
            }
        }
        Ok(())
    }

    fn read_marker(&self, shard: usize) -> Option<ShardMarker> {
        let text = std::fs::read_to_string(self.marker_path(shard, "json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Shards 0..n whose markers exist and whose outputs are all in place.
    pub(crate) fn finished_shards(&self, steps: &[(String, String)]) -> usize {
        let mut n = 0;
        while let Some(marker) = self.read_marker(n) {
            let same_steps = marker.stats.steps.len() == steps.len()
                && marker
                    .stats
                    .steps
                    .iter()
                    .zip(steps)
                    .all(|(s, (name, _))| s.name == *name);
            let outputs_ok = marker.outputs.iter().all(|o| {
                std::fs::metadata(self.root.join(&o.path)).is_ok_and(|m| m.len() == o.size)
            });
            if marker.shard != n
                || !same_steps
                || !outputs_ok
                || !self.marker_path(n, "keys").exists()
            {
                break;
            }
            n += 1;
        }
        n
    }

    /// The keys shown to each ordered step in a finished shard.
    pub(crate) fn read_keys(
        &self,
        shard: usize,
        steps: usize,
    ) -> Result<Vec<Vec<u128>>, PipelineError> {
        let path = self.marker_path(shard, "keys");
        let bytes = std::fs::read(&path).map_err(|e| os_error(&path, e))?;
        let corrupt = |what: &str| {
            state_error(
                &path,
                format!("{what}; delete the output directory to start over"),
            )
        };
        let header = KEYS_MAGIC.len() + 8;
        if bytes.len() < header || &bytes[..8] != KEYS_MAGIC {
            return Err(corrupt("not a latam keys file"));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        if word(8) != KEYS_VERSION || word(12) as usize != steps {
            return Err(corrupt("keys file of another version or pipeline"));
        }
        let mut at = header;
        let mut out = Vec::with_capacity(steps);
        for _ in 0..steps {
            let count = bytes.get(at..at + 8).ok_or_else(|| corrupt("truncated"))?;
            let count = u64::from_le_bytes(count.try_into().expect("8 bytes")) as usize;
            at += 8;
            let body = bytes
                .get(at..at + count * 16)
                .ok_or_else(|| corrupt("truncated"))?;
            out.push(
                body.chunks_exact(16)
                    .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes")))
                    .collect(),
            );
            at += count * 16;
        }
        Ok(out)
    }

    fn write_keys(&self, shard: usize, keys: &[Vec<u128>]) -> Result<(), PipelineError> {
        let mut bytes =
            Vec::with_capacity(16 + keys.iter().map(|k| 8 + k.len() * 16).sum::<usize>());
        bytes.extend_from_slice(KEYS_MAGIC);
        bytes.extend_from_slice(&KEYS_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(keys.len() as u32).to_le_bytes());
        for list in keys {
            bytes.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for key in list {
                bytes.extend_from_slice(&key.to_le_bytes());
            }
        }
        Ok(write_atomic(&self.marker_path(shard, "keys"), &bytes)?)
    }

    /// Writes the final files from the markers of shards `0..shards`; returns the merged stats.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finalize(
        &self,
        config: &PipelineConfig,
        options: &RunOptions,
        steps: &[(String, String)],
        inputs: &[InputSummary],
        shards: usize,
        resumed: usize,
        timing: &Timing,
    ) -> Result<RunStats, PipelineError> {
        let mut stats = RunStats::new(steps);
        let mut errors = Vec::new();
        let mut outputs = Vec::new();
        for shard in 0..shards {
            let marker = self.read_marker(shard).ok_or_else(|| {
                state_error(
                    &self.marker_path(shard, "json"),
                    "missing or unreadable shard marker",
                )
            })?;
            stats.merge(&marker.stats);
            errors.extend(marker.errors);
            outputs.extend(marker.outputs);
        }
        // Nothing lost: every document the readers produced was kept or rejected.
        let d = &stats.documents;
        if d.read != d.kept + d.rejected {
            return Err(PipelineError::Internal(format!(
                "{} documents read, but {} kept and {} rejected",
                d.read, d.kept, d.rejected
            )));
        }
        let mut lines = Vec::new();
        for error in &errors {
            serde_json::to_writer(&mut lines, error).expect("JSON into memory");
            lines.push(b'\n');
        }
        write_atomic(&self.root.join("errors.jsonl"), &lines)?;

        // What depends on this invocation (time, command, workers) lives here only, so every
        // other file of the output is a function of the inputs and the pipeline alone.
        let mut stats_file = serde_json::to_value(&stats).expect("stats serialize");
        stats_file["shards"] = json!(shards);
        stats_file["run"] = json!({
            "finished": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "command": options.command,
            "workers": options.workers,
            "resumed_shards": resumed,
            "wall_time_s": (timing.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "scan_time_s": timing.scans,
        });
        write_atomic(
            &self.root.join("stats.json"),
            pretty(&stats_file).as_bytes(),
        )?;

        let config_value = serde_json::to_value(config).expect("config serializes");
        let manifest = json!({
            "tool": "latam",
            "version": env!("CARGO_PKG_VERSION"),
            "config": config_value,
            "config_sha256": hex(&Sha256::digest(config_value.to_string().as_bytes())),
            "seeds": seeds(config),
            "inputs": inputs,
            "outputs": outputs,
            "shards": shards,
        });
        write_atomic(
            &self.root.join("manifest.json"),
            pretty(&manifest).as_bytes(),
        )?;
        let html = crate::report::render(&stats, &manifest, errors.len());
        write_atomic(&self.root.join("report.html"), html.as_bytes())?;
        Ok(stats)
    }
}

/// Temp files of a killed run are never part of the output.
fn remove_temp_files(dir: &Path) -> Result<(), PipelineError> {
    let entries = std::fs::read_dir(dir).map_err(|e| os_error(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| os_error(dir, e))?.path();
        if path.is_dir() {
            remove_temp_files(&path)?;
        } else if path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(&path).map_err(|e| os_error(&path, e))?;
        }
    }
    Ok(())
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serializes");
    text.push('\n');
    text
}

fn dir_is_empty(path: &Path) -> Result<bool, PipelineError> {
    if !path.is_dir() {
        return Err(PipelineError::OutputInUse {
            path: path.display().to_string(),
            reason: "is a file, not a directory".into(),
        });
    }
    Ok(std::fs::read_dir(path)
        .map_err(|e| os_error(path, e))?
        .next()
        .is_none())
}

/// What makes two runs the same run: the pipeline, the inputs (path, size, time) and the
/// version. A run with the same fingerprint resumes; another one is refused.
fn fingerprint(config: &PipelineConfig, inputs: &[InputFile]) -> String {
    let inputs: Vec<Value> = inputs
        .iter()
        .map(|i| match &i.lines {
            None => json!([i.name, i.size, i.modified]),
            Some(lines) => json!([i.name, i.size, i.modified, [lines.start, lines.end]]),
        })
        .collect();
    let value = json!({ "version": env!("CARGO_PKG_VERSION"), "config": config, "inputs": inputs });
    hex(&Sha256::digest(value.to_string().as_bytes()))
}

struct OpenShard {
    shard: usize,
    kept: PartWriter,
    rejected: BTreeMap<usize, PartWriter>,
    errors: Vec<ErrorRecord>,
}

/// The writer thread's side: parts of the current shard, then its marker.
pub(crate) struct ShardWriter<'a> {
    dir: &'a OutputDir,
    output: &'a OutputConfig,
    names: &'a [String],
}

impl<'a> ShardWriter<'a> {
    pub(crate) fn new(dir: &'a OutputDir, output: &'a OutputConfig, names: &'a [String]) -> Self {
        Self { dir, output, names }
    }

    fn part_path(&self, sub: &str, shard: usize) -> PathBuf {
        let name = PartWriter::file_name(shard, self.output.format, self.output.compression);
        self.dir.root.join(sub).join(name)
    }

    fn open(&self, shard: usize) -> Result<OpenShard, PipelineError> {
        let kept = PartWriter::create(
            &self.part_path("documents", shard),
            self.output.format,
            self.output.compression,
        )?;
        Ok(OpenShard {
            shard,
            kept,
            rejected: BTreeMap::new(),
            errors: Vec::new(),
        })
    }

    /// Consumes the engine's messages until the channel closes.
    pub(crate) fn run(self, rx: &Receiver<WriterMsg>) -> Result<(), PipelineError> {
        let mut current: Option<OpenShard> = None;
        for msg in rx {
            match msg {
                WriterMsg::Batch {
                    shard,
                    payload,
                    errors,
                } => {
                    if current.as_ref().is_none_or(|c| c.shard != shard) {
                        current = Some(self.open(shard)?);
                    }
                    let open = current.as_mut().expect("opened above");
                    open.errors.extend(errors);
                    match payload {
                        Payload::Blocks(blocks) => {
                            for block in blocks {
                                self.part(open, block.target)?
                                    .write_block(&block.bytes, block.docs)?;
                            }
                        }
                        Payload::Docs(slots) => {
                            for slot in slots {
                                if let Slot::Doc { doc, fate, .. } = slot {
                                    self.part(open, fate.target())?.write(&doc)?;
                                }
                            }
                        }
                    }
                }
                WriterMsg::EndShard { shard, stats, keys } => {
                    let open = match current.take() {
                        Some(open) if open.shard == shard => open,
                        _ => self.open(shard)?,
                    };
                    self.close(open, *stats, &keys)?;
                }
            }
        }
        Ok(())
    }

    /// The part of the open shard for `documents/` (`None`) or a step's `rejected/` (created on
    /// first use).
    fn part<'s>(
        &self,
        open: &'s mut OpenShard,
        target: Option<usize>,
    ) -> Result<&'s mut PartWriter, PipelineError> {
        let Some(step) = target else {
            return Ok(&mut open.kept);
        };
        Ok(match open.rejected.entry(step) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let path = self.part_path(&format!("rejected/{}", self.names[step]), open.shard);
                e.insert(PartWriter::create(
                    &path,
                    self.output.format,
                    self.output.compression,
                )?)
            }
        })
    }

    /// Finishes the parts of a shard, then writes its keys and, last, its marker.
    fn close(
        &self,
        open: OpenShard,
        stats: RunStats,
        keys: &[Vec<u128>],
    ) -> Result<(), PipelineError> {
        let shard = open.shard;
        let mut parts = vec![("documents".to_owned(), open.kept)];
        parts.extend(
            open.rejected
                .into_iter()
                .map(|(step, w)| (format!("rejected/{}", self.names[step]), w)),
        );
        let mut outputs = Vec::with_capacity(parts.len());
        for (sub, writer) in parts {
            let documents = writer.docs();
            writer.finish()?;
            let path = self.part_path(&sub, shard);
            let size = std::fs::metadata(&path)
                .map_err(|e| os_error(&path, e))?
                .len();
            let relative = format!(
                "{sub}/{}",
                path.file_name()
                    .expect("a part has a name")
                    .to_string_lossy()
            );
            outputs.push(OutputRecord {
                path: relative,
                documents,
                size,
                sha256: sha256_file(&path)?,
            });
        }
        self.dir.write_keys(shard, keys)?;
        let marker = ShardMarker {
            shard,
            stats,
            errors: open.errors,
            outputs,
        };
        let text = serde_json::to_string(&marker).expect("marker serializes");
        Ok(write_atomic(
            &self.dir.marker_path(shard, "json"),
            text.as_bytes(),
        )?)
    }
}
