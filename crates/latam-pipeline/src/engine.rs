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
//! whose marker exists and replays their ordered-step keys.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use latam_core::{CorpusStep, Document, FieldNames, Position, Verdict, position};
use latam_io::{
    InputFile, OutputFormat, ReadOptions, Record, RecordKind, RecordReader, encode_jsonl_block,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{OutputConfig, PipelineConfig};
use crate::state::{OutputDir, ShardWriter, Timing};
use crate::stats::RunStats;
use crate::steps::{Stage, build_stages};
use crate::{PipelineError, Progress, ProgressUpdate};

/// Largest batch: documents.
const BATCH_DOCS: usize = 256;
/// Largest batch: text bytes.
const BATCH_BYTES: usize = 4 << 20;

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
    /// SHA-256 of the stored bytes (absent for Parquet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
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
pub(crate) enum Fate {
    Alive,
    Rejected { step: usize },
}

impl Fate {
    /// The part it goes to: `None` for `documents/`, `Some(step)` for `rejected/<step>/`.
    pub(crate) fn target(&self) -> Option<usize> {
        match self {
            Self::Alive => None,
            Self::Rejected { step } => Some(*step),
        }
    }
}

/// One record after parsing.
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

struct RawBatch {
    shard: usize,
    records: Vec<(u32, Record)>,
    last_in_shard: bool,
}

struct Batch {
    shard: usize,
    slots: Vec<Slot>,
    keys: Vec<u128>,
    stats: RunStats,
    last_in_shard: bool,
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
    let context = Context {
        pool: &pool,
        names: &names,
        step_ids: &step_ids,
        inputs: &options.inputs,
        first_input: options.first_input,
        fields: &fields,
        output: &config.output,
    };
    let step_dirs: Vec<PathBuf> = names
        .iter()
        .map(|n| options.step_dirs.get(n).cloned().unwrap_or(out.step_dir(n)))
        .collect();

    let scans = plan_corpus_steps(&context, config, options, &step_dirs, progress)?;
    for h in corpus_steps(config) {
        if !open_corpus_step(&mut stages[h], &names[h], &step_dirs[h])? {
            let message = format!("step `{}` has no plan after its scan", names[h]);
            return Err(PipelineError::Internal(message));
        }
    }
    let finished = out.finished_shards(&step_ids);
    let ordered = ordered_steps(&stages);
    replay_finished(&out, &mut stages, &ordered, finished)?;

    let (raw_tx, raw_rx) = bounded::<RawBatch>(workers * 4);
    let (out_tx, out_rx) = bounded::<WriterMsg>(workers * 4);
    let consumed = Arc::new(AtomicU64::new(0));
    let stored_total: u64 = options.inputs.iter().map(|i| i.size).sum();
    let shard_bytes = config.output.shard_mb * 1_000_000;

    let result = std::thread::scope(|scope| {
        let reader = {
            let inputs = &options.inputs;
            let read_options = config.input.read_options();
            let consumed = Arc::clone(&consumed);
            scope.spawn(move || {
                read_inputs(
                    inputs,
                    &read_options,
                    shard_bytes,
                    finished,
                    &raw_tx,
                    &consumed,
                )
            })
        };
        let writer = {
            let writer = ShardWriter::new(&out, &config.output, &names);
            scope.spawn(move || writer.run(&out_rx))
        };
        let shards = context.process(&mut stages, &raw_rx, &out_tx, |docs, text_bytes, kept| {
            progress.update(&ProgressUpdate {
                docs,
                text_bytes,
                kept,
                stored_bytes: consumed.load(Ordering::Relaxed),
                stored_total,
                elapsed: started.elapsed(),
            });
        });
        drop(out_tx);
        drop(raw_rx);
        let written = writer
            .join()
            .map_err(|_| PipelineError::Internal("the writer thread panicked".into()))?;
        let inputs = reader
            .join()
            .map_err(|_| PipelineError::Internal("the reader thread panicked".into()))?;
        written?;
        Ok::<_, PipelineError>((shards?, inputs))
    });
    let (shards, inputs) = result?;
    progress.finish();
    let shards = shards.max(finished);
    let timing = Timing {
        elapsed: started.elapsed(),
        scans,
    };
    let stats = out.finalize(
        config, options, &step_ids, &inputs, shards, finished, &timing,
    )?;
    Ok(RunSummary {
        stats,
        shards,
        resumed_shards: finished,
        elapsed: started.elapsed(),
        scans: timing.scans,
        output: options.output.clone(),
    })
}

/// The indices of the corpus-wide steps.
fn corpus_steps(config: &PipelineConfig) -> Vec<usize> {
    (0..config.steps.len())
        .filter(|&i| config.steps[i].is_corpus_wide())
        .collect()
}

/// Names and types of the steps, as the stats list them.
fn step_ids(config: &PipelineConfig) -> Vec<(String, String)> {
    config
        .step_names()
        .into_iter()
        .zip(&config.steps)
        .map(|(n, s)| (n, s.type_name().to_owned()))
        .collect()
}

fn worker_pool(workers: usize) -> Result<rayon::ThreadPool, PipelineError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .thread_name(|i| format!("latam-worker-{i}"))
        .build()
        .map_err(|e| PipelineError::Internal(format!("cannot start worker threads: {e}")))
}

/// Makes sure every corpus-wide step has its plan: each one whose work directory holds none
/// scans the corpus, over the steps before it. Returns the seconds of each scan.
fn plan_corpus_steps(
    context: &Context,
    config: &PipelineConfig,
    options: &RunOptions,
    step_dirs: &[PathBuf],
    progress: &dyn Progress,
) -> Result<BTreeMap<String, f64>, PipelineError> {
    let names = context.names;
    let corpus = corpus_steps(config);
    let mut scans = BTreeMap::new();
    for &step in &corpus {
        let mut stages = build_stages(config)?;
        stages.truncate(step + 1);
        let mut needs_scan = false;
        for &h in corpus.iter().take_while(|&&h| h <= step) {
            needs_scan = !open_corpus_step(&mut stages[h], &names[h], &step_dirs[h])?;
        }
        if needs_scan {
            tracing::info!("scanning the corpus for `{}`", names[step]);
            let (before, last) = stages.split_at_mut(step);
            let Stage::Corpus(corpus) = &mut last[0] else {
                unreachable!("a corpus-wide step")
            };
            let t = Instant::now();
            scan(
                context,
                config,
                options,
                before,
                (names[step].as_str(), corpus.as_mut()),
                progress,
            )?;
            scans.insert(names[step].clone(), t.elapsed().as_secs_f64());
        }
    }
    Ok(scans)
}

/// Opens a corpus-wide step on its work directory: whether its plan is there.
fn open_corpus_step(stage: &mut Stage, name: &str, dir: &Path) -> Result<bool, PipelineError> {
    let Stage::Corpus(step) = stage else {
        unreachable!("a corpus-wide step")
    };
    step.open(dir).map_err(|e| PipelineError::Step {
        step: name.to_owned(),
        message: format!("{}: {e}", dir.display()),
    })
}

/// Runs the scan of a corpus-wide step that is not one of the pipeline's own (a staged task):
/// the documents pass through the pipeline's steps, then `step` sees them and plans. Returns
/// `false`, scanning nothing, when `step` finds its work already done in `dir`.
pub fn scan_step(
    config: &PipelineConfig,
    options: &RunOptions,
    (name, step): (&str, &mut dyn CorpusStep),
    dir: &Path,
    progress: &dyn Progress,
) -> Result<bool, PipelineError> {
    let failed = |e: std::io::Error| PipelineError::Step {
        step: name.to_owned(),
        message: format!("{}: {e}", dir.display()),
    };
    if step.open(dir).map_err(failed)? {
        return Ok(false);
    }
    let mut stages = build_stages(config)?;
    let names = config.step_names();
    let step_ids = step_ids(config);
    let pool = worker_pool(options.workers)?;
    let fields = config.input.read_options().fields;
    let context = Context {
        pool: &pool,
        names: &names,
        step_ids: &step_ids,
        inputs: &options.inputs,
        first_input: options.first_input,
        fields: &fields,
        output: &config.output,
    };
    for (stage, name) in stages.iter().zip(&names) {
        if matches!(stage, Stage::Corpus(_)) {
            return Err(PipelineError::Step {
                step: name.clone(),
                message: "a staged task runs no corpus-wide step before its own".into(),
            });
        }
    }
    scan(
        &context,
        config,
        options,
        &mut stages,
        (name, step),
        progress,
    )?;
    Ok(true)
}

/// The scan of a corpus-wide step: the steps `before` it run over the whole corpus (nothing is
/// written), it sees a sketch of every document that reaches it, in corpus order, and then
/// plans.
fn scan(
    context: &Context,
    config: &PipelineConfig,
    options: &RunOptions,
    before: &mut [Stage],
    (name, corpus): (&str, &mut dyn CorpusStep),
    progress: &dyn Progress,
) -> Result<(), PipelineError> {
    let started = Instant::now();
    let workers = context.pool.current_num_threads();
    let (raw_tx, raw_rx) = bounded::<RawBatch>(workers * 4);
    let consumed = AtomicU64::new(0);
    let stored_total: u64 = options.inputs.iter().map(|i| i.size).sum();
    let step = before.len();
    let failed = |e: std::io::Error| PipelineError::Step {
        step: name.to_owned(),
        message: e.to_string(),
    };
    let read_options = config.input.read_options();
    std::thread::scope(|scope| {
        let (read_options, consumed) = (&read_options, &consumed);
        let reader = scope.spawn(move || {
            read_inputs(
                &options.inputs,
                read_options,
                u64::MAX,
                0,
                &raw_tx,
                consumed,
            )
        });
        let mut logs = vec![Vec::new(); ordered_steps(before).len()];
        let mut stats = RunStats::new(context.step_ids);
        let (mut docs, mut bytes) = (0u64, 0u64);
        let mut result = Ok(());
        while let Some(mut wave) = context.next_wave(&raw_rx) {
            context.run_steps(&mut wave, before, step, &mut logs, &mut stats);
            let shared: &dyn CorpusStep = corpus;
            let sketches: Vec<Vec<Vec<u64>>> = context.pool.install(|| {
                wave.par_iter()
                    .map(|b| live_docs(b).map(|(doc, _)| shared.sketch(doc)).collect())
                    .collect()
            });
            for (batch, sketches) in wave.iter().zip(sketches) {
                for ((doc, at), sketch) in live_docs(batch).zip(sketches) {
                    result = result.and_then(|()| corpus.observe(at, &doc.id, sketch));
                }
                for slot in &batch.slots {
                    if let Slot::Doc { read_bytes, .. } = slot {
                        docs += 1;
                        bytes += read_bytes;
                    }
                }
            }
            for logs in &mut logs {
                logs.clear();
            }
            progress.update(&ProgressUpdate {
                docs,
                text_bytes: bytes,
                kept: docs,
                stored_bytes: consumed.load(Ordering::Relaxed),
                stored_total,
                elapsed: started.elapsed(),
            });
            if result.is_err() {
                break;
            }
        }
        drop(raw_rx);
        reader
            .join()
            .map_err(|_| PipelineError::Internal("the reader thread panicked".into()))?;
        result.map_err(failed)
    })?;
    progress.finish();
    corpus.plan().map_err(failed)?;
    tracing::info!(
        "`{name}` planned after a scan of {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The documents of a batch still alive, with their positions.
fn live_docs(batch: &Batch) -> impl Iterator<Item = (&Document, Position)> {
    batch.slots.iter().filter_map(|s| match s {
        Slot::Doc {
            doc,
            at,
            fate: Fate::Alive,
            ..
        } => Some((doc, *at)),
        _ => None,
    })
}

/// Indices of the ordered steps.
fn ordered_steps(stages: &[Stage]) -> Vec<usize> {
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
fn read_inputs(
    inputs: &[InputFile],
    options: &ReadOptions,
    shard_bytes: u64,
    skip_shards: usize,
    tx: &Sender<RawBatch>,
    consumed: &AtomicU64,
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
        });
    }
    if !batch.is_empty() || !out.sent_any {
        out.send(batch, shard, true);
    }
    summaries
}

/// Sends the batches of unfinished shards; those of finished ones are only counted.
struct BatchSender<'a> {
    tx: &'a Sender<RawBatch>,
    skip_shards: usize,
    open: bool,
    sent_any: bool,
}

impl BatchSender<'_> {
    fn send(&mut self, records: Vec<(u32, Record)>, shard: usize, last_in_shard: bool) {
        self.sent_any = true;
        if self.open && shard >= self.skip_shards {
            self.open = self
                .tx
                .send(RawBatch {
                    shard,
                    records,
                    last_in_shard,
                })
                .is_ok();
        }
    }
}

/// What the workers share.
struct Context<'a> {
    pool: &'a rayon::ThreadPool,
    names: &'a [String],
    step_ids: &'a [(String, String)],
    inputs: &'a [InputFile],
    first_input: u32,
    fields: &'a FieldNames,
    output: &'a OutputConfig,
}

impl Context<'_> {
    /// Parses the records of a batch (in a worker).
    fn parse(&self, raw: RawBatch) -> Batch {
        let mut slots = Vec::with_capacity(raw.records.len());
        let mut stats = RunStats::new(self.step_ids);
        for (index, record) in raw.records {
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
        Batch {
            shard: raw.shard,
            slots,
            keys: Vec::new(),
            stats,
            last_in_shard: raw.last_in_shard,
        }
    }

    /// Runs the map steps `range` over one batch (in a worker).
    fn run_map_steps(&self, batch: &mut Batch, stages: &[Stage], range: Range<usize>) {
        for step in range {
            let t = Instant::now();
            match &stages[step] {
                Stage::Map(stage) => {
                    decide_live(batch, step, &self.names[step], |doc, _| stage.process(doc));
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

    /// Runs ordered step `index`: keys in parallel, verdicts in corpus order. Appends the keys
    /// shown to the step to the shard's `log`; returns the seconds spent.
    fn run_ordered_step(
        &self,
        wave: &mut [Batch],
        stages: &mut [Stage],
        index: usize,
        log: &mut Vec<u128>,
    ) -> f64 {
        let t = Instant::now();
        let Stage::Ordered(step) = &stages[index] else {
            unreachable!("an ordered step")
        };
        self.pool.install(|| {
            wave.par_iter_mut().for_each(|b| {
                b.keys = b
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
            });
        });
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
    fn next_wave(&self, rx: &Receiver<RawBatch>) -> Option<Vec<Batch>> {
        let wave_size = self.pool.current_num_threads() * 2;
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

    /// Runs `stages[..end]` over a wave: map and corpus-wide steps in parallel, ordered steps
    /// in corpus order between them (their keys appended to `logs`, one list per ordered step).
    fn run_steps(
        &self,
        wave: &mut [Batch],
        stages: &mut [Stage],
        end: usize,
        logs: &mut [Vec<u128>],
        stats: &mut RunStats,
    ) {
        let ordered = ordered_steps(&stages[..end]);
        let mut start = 0;
        for (k, &boundary) in ordered.iter().chain(std::iter::once(&end)).enumerate() {
            let shared: &[Stage] = stages;
            self.pool.install(|| {
                wave.par_iter_mut()
                    .for_each(|b| self.run_map_steps(b, shared, start..boundary));
            });
            if boundary == end {
                break;
            }
            stats.steps[boundary].time_s +=
                self.run_ordered_step(wave, stages, boundary, &mut logs[k]);
            start = boundary + 1;
        }
    }

    /// The main loop: waves of batches through the steps, then to the writer. Returns the
    /// number of shards completed.
    fn process(
        &self,
        stages: &mut [Stage],
        rx: &Receiver<RawBatch>,
        tx: &Sender<WriterMsg>,
        report: impl Fn(u64, u64, u64),
    ) -> Result<usize, PipelineError> {
        let (mut docs, mut bytes, mut kept) = (0u64, 0u64, 0u64);
        let ordered = ordered_steps(stages).len();
        let mut shard_stats = RunStats::new(self.step_ids);
        let mut shard_keys: Vec<Vec<u128>> = vec![Vec::new(); ordered];
        let mut shards = 0;
        while let Some(mut wave) = self.next_wave(rx) {
            self.run_steps(
                &mut wave,
                stages,
                stages.len(),
                &mut shard_keys,
                &mut shard_stats,
            );
            for batch in &mut wave {
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
                shard_stats.merge(&batch.stats);
            }
            let encoded: Vec<_> = self
                .pool
                .install(|| wave.into_par_iter().map(|b| self.encode(b)).collect());
            for (shard, last_in_shard, message) in encoded {
                if tx.send(message?).is_err() {
                    return Ok(shards);
                }
                if last_in_shard {
                    let stats = Box::new(std::mem::replace(
                        &mut shard_stats,
                        RunStats::new(self.step_ids),
                    ));
                    let keys = std::mem::replace(&mut shard_keys, vec![Vec::new(); ordered]);
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

    /// Turns a processed batch into the writer's message (in a worker): JSONL documents are
    /// serialized and compressed here, one block per target part.
    fn encode(&self, batch: Batch) -> (usize, bool, Result<WriterMsg, PipelineError>) {
        let (shard, last) = (batch.shard, batch.last_in_shard);
        let mut errors = Vec::new();
        let mut docs = Vec::with_capacity(batch.slots.len());
        for slot in batch.slots {
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
            return (
                shard,
                last,
                Ok(WriterMsg::Batch {
                    shard,
                    payload: Payload::Docs(docs),
                    errors,
                }),
            );
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
        let message = blocks.map(|blocks| WriterMsg::Batch {
            shard,
            payload: Payload::Blocks(blocks),
            errors,
        });
        (shard, last, message)
    }
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
    *fate = Fate::Rejected { step };
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
