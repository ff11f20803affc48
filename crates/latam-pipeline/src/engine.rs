//! The engine: a reader thread cuts the inputs into batches and shards, the workers run the
//! steps over waves of batches in parallel (ordered steps decide in corpus order between
//! them), and a writer thread writes each shard's parts and, last, its completion marker.
//!
//! ```text
//! reader ──batches──► workers (rayon: parse, steps; ordered steps in order) ──► writer
//!                                                                  parts + .latam/shards/*
//! ```
//!
//! Batches and shards are cut from the input alone (document counts and text bytes), so the
//! output does not depend on the number of workers, and a rerun after a crash skips the shards
//! whose marker exists and replays their ordered-step keys. Corpus-wide steps get their scans
//! first ([`crate::scan`]); the final pass then reads the spool instead of the inputs and starts
//! at the first corpus-wide step.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use latam_core::{Document, FieldNames, Position, Verdict, position};
use latam_io::{
    InputFile, OutputFormat, ReadOptions, Record, RecordKind, RecordReader, encode_jsonl_block,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{OutputConfig, PipelineConfig};
use crate::scan::{Source, corpus_steps, open_corpus_step, plan_corpus_steps};
use crate::spool::{self, Spool};
use crate::state::{OutputDir, ShardWriter, Timing};
use crate::stats::RunStats;
use crate::steps::{Stage, build_stages};
use crate::{PipelineError, Progress, ProgressUpdate};

/// Largest batch: documents.
const BATCH_DOCS: usize = 256;
/// Largest batch: text bytes.
const BATCH_BYTES: usize = 4 << 20;
/// Batches of a wave, per worker: the workers wait for each other once or twice a wave, so
/// larger waves leave them idle less often.
const WAVE_BATCHES_PER_WORKER: usize = 4;

/// What to run the pipeline over, and how.
pub struct RunOptions {
    /// The input files, in order.
    pub inputs: Vec<InputFile>,
    /// The output directory.
    pub output: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// Replace an output directory that holds another run.
    pub overwrite: bool,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    /// The index of the first input in the whole corpus: a staged task that reads a slice of
    /// the inputs gives its first one's index, so positions are those of the whole corpus.
    pub first_input: u32,
    /// Work directories of corpus-wide steps, by step name, instead of
    /// `OUT/.latam/steps/<name>/` (a staged filter task points at the clusters of its run).
    pub step_dirs: BTreeMap<String, PathBuf>,
    /// When this flag is set (by a Ctrl-C handler), the run stops reading, drops the shard it
    /// was writing (no temp file is left) and ends with [`PipelineError::Interrupted`]; the
    /// same command resumes it.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl RunOptions {
    /// Options for a run of `inputs` into `output`: one worker, no overwrite.
    pub fn new(inputs: Vec<InputFile>, output: impl Into<PathBuf>) -> Self {
        Self {
            inputs,
            output: output.into(),
            workers: 1,
            overwrite: false,
            command: Vec::new(),
            first_input: 0,
            step_dirs: BTreeMap::new(),
            interrupt: None,
        }
    }
}

/// An unreadable record: `errors.jsonl` holds one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The input file.
    pub file: String,
    /// Its line (row, for Parquet); 0 when the file could not be opened.
    pub line: u64,
    /// What went wrong.
    pub error: String,
}

/// One input as read: for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSummary {
    /// The path as found.
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
    /// SHA-256 of the stored bytes (absent for Parquet and for part of a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The lines read, when a task read part of the file (`1..5000`, `5000..`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<String>,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    /// The merged statistics.
    pub stats: RunStats,
    /// Shards of the run.
    pub shards: usize,
    /// Shards found finished and skipped.
    pub resumed_shards: usize,
    /// Wall time of this invocation.
    pub elapsed: Duration,
    /// Wall seconds of the scans of corpus-wide steps run by this invocation, by step name.
    pub scans: BTreeMap<String, f64>,
    /// The output directory.
    pub output: PathBuf,
}

/// Where a document stands.
#[derive(Serialize, Deserialize)]
pub(crate) enum Fate {
    Alive,
    /// Rejected by `step`; `redacted` once the pipeline's anonymizer has run over it (see
    /// [`Context::redact_rejected`]).
    Rejected {
        step: usize,
        redacted: bool,
    },
}

impl Fate {
    /// The part it goes to: `None` for `documents/`, `Some(step)` for `rejected/<step>/`.
    pub(crate) fn target(&self) -> Option<usize> {
        match self {
            Self::Alive => None,
            Self::Rejected { step, .. } => Some(*step),
        }
    }
}

/// One record after parsing.
#[derive(Serialize, Deserialize)]
pub(crate) enum Slot {
    Doc {
        doc: Document,
        /// Its position in the corpus.
        at: Position,
        read_bytes: u64,
        fate: Fate,
    },
    Error(ErrorRecord),
}

/// A batch as the reader thread cuts it.
pub(crate) struct RawBatch {
    pub shard: usize,
    pub payload: RawPayload,
    pub last_in_shard: bool,
}

/// Records read from the inputs (with their input's index), or a batch of the spool.
pub(crate) enum RawPayload {
    Records(Vec<(u32, Record)>),
    Spooled(Vec<u8>),
}

pub(crate) struct Batch {
    pub shard: usize,
    pub slots: Vec<Slot>,
    keys: Vec<u128>,
    pub stats: RunStats,
    pub last_in_shard: bool,
}

/// Documents of a batch bound for one part, encoded by a worker: `target` is `None` for
/// `documents/`, `Some(step)` for `rejected/<step>/`.
pub(crate) struct Block {
    pub target: Option<usize>,
    pub docs: u64,
    pub bytes: Vec<u8>,
}

/// What a batch hands the writer: encoded JSONL blocks, or the documents themselves for
/// Parquet, which the writer buffers into row groups.
pub(crate) enum Payload {
    Blocks(Vec<Block>),
    Docs(Vec<Slot>),
}

/// Messages to the writer thread.
pub(crate) enum WriterMsg {
    Batch {
        shard: usize,
        payload: Payload,
        errors: Vec<ErrorRecord>,
    },
    EndShard {
        shard: usize,
        stats: Box<RunStats>,
        keys: Vec<Vec<u128>>,
    },
}

/// Runs a pipeline.
pub fn run(
    config: &PipelineConfig,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunSummary, PipelineError> {
    let started = Instant::now();
    let names = config.step_names();
    let step_ids = step_ids(config);
    // Every step's settings are checked before anything is written.
    let mut stages = build_stages(config)?;
    let out = OutputDir::prepare(&options.output, config, &options.inputs, options.overwrite)?;
    let workers = options.workers.max(1);
    let pool = worker_pool(workers)?;
    let fields = config.input.read_options().fields;
    let context = Context::new(&pool, (&names, &step_ids), &fields, config, options);
    let step_dirs: Vec<PathBuf> = names
        .iter()
        .map(|n| options.step_dirs.get(n).cloned().unwrap_or(out.step_dir(n)))
        .collect();

    let spool = Spool::new(out.spool_dir());
    let scans = plan_corpus_steps(&context, config, options, &step_dirs, &spool, progress)?;
    let corpus = corpus_steps(config);
    for &h in &corpus {
        if !open_corpus_step(&mut stages[h], &names[h], &step_dirs[h])? {
            let message = format!("step `{}` has no plan after its scan", names[h]);
            return Err(PipelineError::Internal(message));
        }
    }
    let (source, start) = match corpus.first() {
        Some(&first) if spool.is_complete() => (Source::Spool(&spool), first),
        _ => (Source::Inputs, 0),
    };
    let finished = out.finished_shards(&step_ids);
    let ordered = ordered_steps(&stages);
    replay_finished(&out, &mut stages, &ordered, finished)?;

    progress.begin("writing");
    let pass_started = Instant::now();
    let (raw_tx, raw_rx) = bounded::<RawBatch>(workers * 4);
    let (out_tx, out_rx) = bounded::<WriterMsg>(workers * 4);
    let consumed = AtomicU64::new(0);
    let stored_total = source.stored_total(options);

    let result = std::thread::scope(|scope| {
        let reader = {
            let (source, consumed) = (&source, &consumed);
            scope.spawn(move || source.feed(config, options, finished, raw_tx, consumed))
        };
        let writer = {
            let writer = ShardWriter::new(&out, &config.output, &names);
            scope.spawn(move || writer.run(&out_rx))
        };
        let report = |docs, text_bytes, kept| {
            progress.update(&ProgressUpdate {
                docs,
                text_bytes,
                kept,
                stored_bytes: consumed.load(Ordering::Relaxed),
                stored_total,
                elapsed: pass_started.elapsed(),
            });
        };
        let shards = context.process(&mut stages, start, &raw_rx, &out_tx, report);
        drop(out_tx);
        drop(raw_rx);
        let written = writer
            .join()
            .map_err(|_| PipelineError::Internal("the writer thread panicked".into()))?;
        let inputs = reader
            .join()
            .map_err(|_| PipelineError::Internal("the reader thread panicked".into()))?;
        written?;
        Ok::<_, PipelineError>((shards?, inputs?))
    });
    let (shards, inputs) = result?;
    progress.finish();
    if is_set(context.interrupt) {
        return Err(PipelineError::Interrupted);
    }
    let shards = shards.max(finished);
    let timing = Timing {
        elapsed: started.elapsed(),
        scans,
    };
    let stats = out.finalize(
        config, options, &step_ids, &inputs, shards, finished, &timing,
    )?;
    spool.remove()?;
    Ok(RunSummary {
        stats,
        shards,
        resumed_shards: finished,
        elapsed: started.elapsed(),
        scans: timing.scans,
        output: options.output.clone(),
    })
}

/// Names and types of the steps, as the stats list them.
pub(crate) fn step_ids(config: &PipelineConfig) -> Vec<(String, String)> {
    config
        .step_names()
        .into_iter()
        .zip(&config.steps)
        .map(|(n, s)| (n, s.type_name().to_owned()))
        .collect()
}

pub(crate) fn worker_pool(workers: usize) -> Result<rayon::ThreadPool, PipelineError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .thread_name(|i| format!("latam-worker-{i}"))
        .build()
        .map_err(|e| PipelineError::Internal(format!("cannot start worker threads: {e}")))
}

/// Indices of the ordered steps.
pub(crate) fn ordered_steps(stages: &[Stage]) -> Vec<usize> {
    (0..stages.len())
        .filter(|&i| matches!(stages[i], Stage::Ordered(_)))
        .collect()
}

/// Resuming: the ordered steps see again the keys of the shards a previous run finished.
fn replay_finished(
    out: &OutputDir,
    stages: &mut [Stage],
    ordered: &[usize],
    finished: usize,
) -> Result<(), PipelineError> {
    for shard in 0..finished {
        let keys = out.read_keys(shard, ordered.len())?;
        for (&stage, keys) in ordered.iter().zip(keys) {
            let Stage::Ordered(step) = &mut stages[stage] else {
                unreachable!("an ordered step")
            };
            for key in keys {
                step.admit(key);
            }
        }
    }
    if finished > 0 {
        tracing::info!("resuming: {finished} shard(s) already finished are skipped");
    }
    Ok(())
}

/// The reader thread: cuts the inputs into batches and shards; returns what the manifest says
/// of each input.
pub(crate) fn read_inputs(
    inputs: &[InputFile],
    options: &ReadOptions,
    shard_bytes: u64,
    skip_shards: usize,
    tx: &Sender<RawBatch>,
    consumed: &AtomicU64,
    interrupt: Option<&AtomicBool>,
) -> Vec<InputSummary> {
    let mut summaries = Vec::with_capacity(inputs.len());
    let mut shard = 0;
    let mut shard_fill = 0u64;
    let mut batch: Vec<(u32, Record)> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut out = BatchSender {
        tx,
        skip_shards,
        open: true,
        sent_any: false,
        interrupt,
    };
    for (index, input) in inputs.iter().enumerate() {
        let mut reader = RecordReader::open(input, options);
        let mut last_total = 0;
        while out.open
            && let Some(record) = reader.next()
        {
            let bytes = match &record.kind {
                RecordKind::Json(line) => line.len(),
                RecordKind::Doc(doc) => doc.text.len(),
                RecordKind::Error(_) => 0,
            };
            batch.push((index as u32, record));
            batch_bytes += bytes;
            shard_fill += bytes as u64;
            if batch.len() >= BATCH_DOCS || batch_bytes >= BATCH_BYTES {
                let last = shard_fill >= shard_bytes;
                out.send(std::mem::take(&mut batch), shard, last);
                batch_bytes = 0;
                if last {
                    shard += 1;
                    shard_fill = 0;
                }
            }
            let total = reader.stored_bytes_read();
            consumed.fetch_add(total - last_total, Ordering::Relaxed);
            last_total = total;
        }
        if input.format == latam_io::Format::Parquet {
            consumed.fetch_add(input.size, Ordering::Relaxed);
        }
        summaries.push(InputSummary {
            name: input.name.clone(),
            size: input.size,
            sha256: reader.sha256(),
            lines: input.lines.as_ref().map(latam_io::describe_lines),
        });
    }
    if !batch.is_empty() || !out.sent_any {
        out.send(batch, shard, true);
    }
    summaries
}

/// Sends the batches of unfinished shards; those of finished ones are only counted. Once
/// interrupted, it sends nothing more, so the shard under way is never completed.
struct BatchSender<'a> {
    tx: &'a Sender<RawBatch>,
    skip_shards: usize,
    open: bool,
    sent_any: bool,
    interrupt: Option<&'a AtomicBool>,
}

impl BatchSender<'_> {
    fn send(&mut self, records: Vec<(u32, Record)>, shard: usize, last_in_shard: bool) {
        self.sent_any = true;
        self.open &= !is_set(self.interrupt);
        if self.open && shard >= self.skip_shards {
            self.open = self
                .tx
                .send(RawBatch {
                    shard,
                    payload: RawPayload::Records(records),
                    last_in_shard,
                })
                .is_ok();
        }
    }
}

/// Whether an interrupt flag is set.
pub(crate) fn is_set(flag: Option<&AtomicBool>) -> bool {
    flag.is_some_and(|f| f.load(Ordering::Relaxed))
}

/// What the workers share.
pub(crate) struct Context<'a> {
    pub pool: &'a rayon::ThreadPool,
    pub names: &'a [String],
    pub step_ids: &'a [(String, String)],
    pub inputs: &'a [InputFile],
    pub first_input: u32,
    pub fields: &'a FieldNames,
    pub output: &'a OutputConfig,
    /// The first `anonymize` step: documents rejected before it are redacted by it too.
    pub anonymizer: Option<usize>,
    /// Set by Ctrl-C: the reader stops and the run ends without finishing its shard.
    pub interrupt: Option<&'a AtomicBool>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        pool: &'a rayon::ThreadPool,
        (names, step_ids): (&'a [String], &'a [(String, String)]),
        fields: &'a FieldNames,
        config: &'a PipelineConfig,
        options: &'a RunOptions,
    ) -> Self {
        Self {
            pool,
            names,
            step_ids,
            inputs: &options.inputs,
            first_input: options.first_input,
            fields,
            output: &config.output,
            anonymizer: config
                .steps
                .iter()
                .position(|s| matches!(s, crate::config::StepConfig::Anonymize(_))),
            interrupt: options.interrupt.as_deref(),
        }
    }

    /// Runs the anonymizer over the documents of a batch rejected before it reached them, so
    /// that `rejected/` holds no more personal data than `documents/` (and nor does the spool).
    /// Counts what it finds as the anonymizer's `findings_in_rejected`. Only `stages` that are
    /// present are used: a scan that stops before the anonymizer leaves the work to a later
    /// pass.
    pub(crate) fn redact_rejected(&self, batch: &mut Batch, stages: &[Stage]) {
        let Some(a) = self.anonymizer.filter(|_| self.output.write_rejected) else {
            return;
        };
        let Some(Stage::Map(anonymizer)) = stages.get(a) else {
            return;
        };
        let mut tally = std::mem::take(&mut batch.stats.steps[a].findings_in_rejected);
        for slot in &mut batch.slots {
            if let Slot::Doc {
                doc,
                fate: Fate::Rejected { step, redacted },
                ..
            } = slot
                && *step < a
                && !*redacted
            {
                anonymizer.process_tallied(doc, &mut tally);
                *redacted = true;
            }
        }
        batch.stats.steps[a].findings_in_rejected = tally;
    }

    /// Parses the records of a batch, or decodes a spooled one (in a worker).
    fn parse(&self, raw: RawBatch) -> Result<Batch, PipelineError> {
        let (slots, stats) = match raw.payload {
            RawPayload::Records(records) => self.parse_records(records),
            RawPayload::Spooled(bytes) => {
                let batch = spool::decode(&bytes).map_err(PipelineError::Internal)?;
                (batch.slots, batch.stats)
            }
        };
        Ok(Batch {
            shard: raw.shard,
            slots,
            keys: Vec::new(),
            stats,
            last_in_shard: raw.last_in_shard,
        })
    }

    fn parse_records(&self, records: Vec<(u32, Record)>) -> (Vec<Slot>, RunStats) {
        let mut slots = Vec::with_capacity(records.len());
        let mut stats = RunStats::new(self.step_ids);
        for (index, record) in records {
            let input = &self.inputs[index as usize];
            let doc = match record.kind {
                RecordKind::Json(line) => {
                    Document::from_json_line(&line, self.fields).map_err(|e| e.to_string())
                }
                RecordKind::Doc(doc) => Ok(doc),
                RecordKind::Error(message) => Err(message),
            };
            match doc {
                Ok(mut doc) => {
                    if doc.id.is_empty() {
                        doc.id = format!("{}:{}", input.text_id, record.line);
                    }
                    let read_bytes = doc.text.len() as u64;
                    stats.count_read(&doc);
                    slots.push(Slot::Doc {
                        doc,
                        at: position(self.first_input + index, record.line),
                        read_bytes,
                        fate: Fate::Alive,
                    });
                }
                Err(error) => {
                    stats.documents.errors += 1;
                    slots.push(Slot::Error(ErrorRecord {
                        file: input.name.clone(),
                        line: record.line,
                        error,
                    }));
                }
            }
        }
        (slots, stats)
    }

    /// Runs the map steps `range` over one batch (in a worker).
    fn run_map_steps(&self, batch: &mut Batch, stages: &[Stage], range: Range<usize>) {
        for step in range {
            let t = Instant::now();
            match &stages[step] {
                Stage::Map(stage) => {
                    let mut tally = std::mem::take(&mut batch.stats.steps[step].findings);
                    decide_live(batch, step, &self.names[step], |doc, _| {
                        stage.process_tallied(doc, &mut tally)
                    });
                    batch.stats.steps[step].findings = tally;
                }
                Stage::Corpus(stage) => {
                    decide_live(batch, step, &self.names[step], |doc, at| {
                        stage.apply(doc, at)
                    });
                }
                Stage::Ordered(_) => unreachable!("a map range holds no ordered step"),
            }
            batch.stats.steps[step].time_s += t.elapsed().as_secs_f64();
        }
    }

    /// Gives the verdicts of ordered step `index` in corpus order, from the keys its workers
    /// computed. Appends the keys shown to the step to the shard's `log`; returns the seconds
    /// spent.
    fn admit_keys(
        &self,
        wave: &mut [Batch],
        stages: &mut [Stage],
        index: usize,
        log: &mut Vec<u128>,
    ) -> f64 {
        let t = Instant::now();
        let Stage::Ordered(step) = &mut stages[index] else {
            unreachable!("an ordered step")
        };
        for b in wave {
            let mut keys = std::mem::take(&mut b.keys).into_iter();
            decide_live(b, index, &self.names[index], |_, _| {
                let key = keys.next().expect("one key per live document");
                log.push(key);
                step.admit(key)
            });
        }
        t.elapsed().as_secs_f64()
    }

    /// Receives the next wave of batches (never spanning two shards) and parses it.
    pub(crate) fn next_wave(
        &self,
        rx: &Receiver<RawBatch>,
    ) -> Option<Result<Vec<Batch>, PipelineError>> {
        let wave_size = self.pool.current_num_threads() * WAVE_BATCHES_PER_WORKER;
        let mut raw = vec![rx.recv().ok()?];
        while raw.len() < wave_size && !raw.last().is_some_and(|b| b.last_in_shard) {
            match rx.recv() {
                Ok(b) => raw.push(b),
                Err(_) => break,
            }
        }
        Some(
            self.pool
                .install(|| raw.into_par_iter().map(|b| self.parse(b)).collect()),
        )
    }

    /// Runs `stages[range]` over a wave: map and corpus-wide steps in parallel, each batch
    /// going on to the keys of the next ordered step; the ordered steps' verdicts in corpus
    /// order between them (their keys appended to `logs`, one list per ordered step of the
    /// whole pipeline). `finish` runs on each batch, in the same parallel pass, once it is
    /// through `range`.
    pub(crate) fn run_steps<T: Send>(
        &self,
        wave: &mut [Batch],
        stages: &mut [Stage],
        range: Range<usize>,
        logs: &mut [Vec<u128>],
        finish: impl Fn(&mut Batch, &[Stage]) -> T + Sync,
    ) -> Vec<T> {
        let ordered = ordered_steps(stages);
        let mut start = range.start;
        let boundaries = ordered
            .iter()
            .enumerate()
            .filter(|(_, o)| range.contains(o))
            .map(|(k, &o)| (Some(k), o))
            .chain(std::iter::once((None, range.end)));
        for (k, boundary) in boundaries {
            let shared: &[Stage] = stages;
            let Some(k) = k else {
                return self.pool.install(|| {
                    wave.par_iter_mut()
                        .map(|b| {
                            self.run_map_steps(b, shared, start..boundary);
                            finish(b, shared)
                        })
                        .collect()
                });
            };
            self.pool.install(|| {
                wave.par_iter_mut().for_each(|b| {
                    self.run_map_steps(b, shared, start..boundary);
                    compute_keys(b, shared, boundary);
                });
            });
            let t = self.admit_keys(wave, stages, boundary, &mut logs[k]);
            if let Some(first) = wave.first_mut() {
                first.stats.steps[boundary].time_s += t;
            }
            start = boundary + 1;
        }
        unreachable!("the range's end is the last boundary")
    }

    /// The main loop: waves of batches through `stages[start..]`, then to the writer. Returns
    /// the number of shards completed.
    fn process(
        &self,
        stages: &mut [Stage],
        start: usize,
        rx: &Receiver<RawBatch>,
        tx: &Sender<WriterMsg>,
        report: impl Fn(u64, u64, u64),
    ) -> Result<usize, PipelineError> {
        let (mut docs, mut bytes, mut kept) = (0u64, 0u64, 0u64);
        let ordered = ordered_steps(stages).len();
        let mut shard_stats = RunStats::new(self.step_ids);
        let mut shard_keys: Vec<Vec<u128>> = vec![Vec::new(); ordered];
        let mut shards = 0;
        while let Some(wave) = self.next_wave(rx) {
            let mut wave = wave?;
            let end = stages.len();
            // Each batch, once through the steps, is redacted, counted and encoded by the
            // worker that ran them.
            let encoded = self.run_steps(
                &mut wave,
                stages,
                start..end,
                &mut shard_keys,
                |batch, stages| {
                    self.redact_rejected(batch, stages);
                    let counts = count_documents(batch);
                    (counts, self.encode(batch))
                },
            );
            for (batch, (counts, message)) in wave.iter().zip(encoded) {
                shard_stats.merge(&batch.stats);
                docs += counts.0;
                bytes += counts.1;
                kept += counts.2;
                if tx.send(message?).is_err() {
                    return Ok(shards);
                }
                if batch.last_in_shard {
                    let stats = Box::new(std::mem::replace(
                        &mut shard_stats,
                        RunStats::new(self.step_ids),
                    ));
                    let keys = std::mem::replace(&mut shard_keys, vec![Vec::new(); ordered]);
                    let shard = batch.shard;
                    if tx.send(WriterMsg::EndShard { shard, stats, keys }).is_err() {
                        return Ok(shards);
                    }
                    shards = shard + 1;
                }
            }
            report(docs, bytes, kept);
        }
        Ok(shards)
    }

    /// Turns a processed batch into the writer's message (in a worker), taking its slots:
    /// JSONL documents are serialized and compressed here, one block per target part.
    fn encode(&self, batch: &mut Batch) -> Result<WriterMsg, PipelineError> {
        let shard = batch.shard;
        let mut errors = Vec::new();
        let mut docs = Vec::with_capacity(batch.slots.len());
        for slot in std::mem::take(&mut batch.slots) {
            match slot {
                Slot::Error(e) => errors.push(e),
                Slot::Doc {
                    fate: Fate::Rejected { .. },
                    ..
                } if !self.output.write_rejected => {}
                doc @ Slot::Doc { .. } => docs.push(doc),
            }
        }
        if self.output.format == OutputFormat::Parquet {
            return Ok(WriterMsg::Batch {
                shard,
                payload: Payload::Docs(docs),
                errors,
            });
        }
        let mut targets: BTreeMap<Option<usize>, Vec<&Document>> = BTreeMap::new();
        for slot in &docs {
            if let Slot::Doc { doc, fate, .. } = slot {
                targets.entry(fate.target()).or_default().push(doc);
            }
        }
        let blocks = targets
            .into_iter()
            .map(|(target, list)| {
                let bytes = encode_jsonl_block(list.iter().copied(), self.output.compression)
                    .map_err(|e| PipelineError::Internal(format!("encoding a batch: {e}")))?;
                Ok(Block {
                    target,
                    docs: list.len() as u64,
                    bytes,
                })
            })
            .collect::<Result<Vec<_>, PipelineError>>();
        blocks.map(|blocks| WriterMsg::Batch {
            shard,
            payload: Payload::Blocks(blocks),
            errors,
        })
    }
}

/// The keys of ordered step `index` for the live documents of a batch (in a worker), timed
/// as the step's worker time.
fn compute_keys(batch: &mut Batch, stages: &[Stage], index: usize) {
    let t = Instant::now();
    let Stage::Ordered(step) = &stages[index] else {
        unreachable!("an ordered step")
    };
    batch.keys = batch
        .slots
        .iter()
        .filter_map(|s| match s {
            Slot::Doc {
                doc,
                fate: Fate::Alive,
                ..
            } => Some(step.key(doc)),
            _ => None,
        })
        .collect();
    batch.stats.steps[index].time_s += t.elapsed().as_secs_f64();
}

/// Counts the documents of a processed batch in its statistics; returns (documents, bytes
/// read, documents kept).
fn count_documents(batch: &mut Batch) -> (u64, u64, u64) {
    let (mut docs, mut bytes, mut kept) = (0u64, 0u64, 0u64);
    for slot in &batch.slots {
        if let Slot::Doc {
            doc,
            read_bytes,
            fate,
            ..
        } = slot
        {
            let is_kept = matches!(fate, Fate::Alive);
            batch.stats.count_document(doc, *read_bytes, is_kept);
            docs += 1;
            bytes += read_bytes;
            kept += u64::from(is_kept);
        }
    }
    (docs, bytes, kept)
}

/// Gives every live document of a batch, in order, the verdict of step `step`: counts it and
/// marks rejected documents with `metadata.rejected = {step, reason}`.
fn decide_live(
    batch: &mut Batch,
    step: usize,
    name: &str,
    mut decide: impl FnMut(&mut Document, Position) -> Verdict,
) {
    for slot in &mut batch.slots {
        let Slot::Doc {
            doc,
            at,
            fate: fate @ Fate::Alive,
            ..
        } = slot
        else {
            continue;
        };
        let verdict = decide(doc, *at);
        record_verdict(&mut batch.stats, step, &verdict);
        if let Verdict::Reject(reason) = &verdict {
            reject(doc, fate, step, name, reason);
        }
    }
}

fn reject(doc: &mut Document, fate: &mut Fate, step: usize, name: &str, reason: &str) {
    let mut rejected = Map::new();
    rejected.insert("step".into(), Value::from(name));
    rejected.insert("reason".into(), Value::from(reason));
    doc.metadata
        .insert("rejected".into(), Value::Object(rejected));
    *fate = Fate::Rejected {
        step,
        redacted: false,
    };
}

fn record_verdict(stats: &mut RunStats, step: usize, verdict: &Verdict) {
    let s = &mut stats.steps[step];
    s.input += 1;
    match verdict {
        Verdict::Keep => s.out += 1,
        Verdict::Reject(reason) => {
            s.dropped += 1;
            *s.dropped_by_reason.entry(reason.to_string()).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use latam_io::{Compression, Format};

    use super::*;

    #[test]
    fn documents_are_counted_as_read_before_any_step() {
        let config = PipelineConfig::from_toml("[[steps]]\ntype = \"normalize\"\n", "test")
            .expect("a valid pipeline");
        let input = InputFile::in_memory(
            "in.jsonl",
            Format::Jsonl(Compression::None),
            b"{\"text\": \"uno\"}\nnot json\n{\"text\": \"dos\"}\n{\"id\": \"no text\"}\n",
        );
        let options = RunOptions::new(vec![input.clone()], "unused");
        let pool = worker_pool(1).unwrap();
        let (names, ids) = (config.step_names(), step_ids(&config));
        let fields = FieldNames::default();
        let context = Context::new(&pool, (&names, &ids), &fields, &config, &options);
        let records = RecordReader::open(&input, &ReadOptions::default())
            .map(|r| (0, r))
            .collect();
        let (slots, stats) = context.parse_records(records);
        assert_eq!(slots.len(), 4);
        assert_eq!(
            stats.documents.read, 2,
            "two documents, two unreadable records"
        );
        assert_eq!(stats.documents.errors, 2);
        assert_eq!(stats.bytes.read, 6);
        assert_eq!(stats.steps[0].input, 0, "no step has run yet");
    }
}
