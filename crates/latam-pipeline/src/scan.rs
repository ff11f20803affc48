//! Corpus-wide steps: before the final pass, each one whose plan is not on disk scans the
//! corpus (the steps before it run over every document; nothing is written but the spool) and
//! plans. The first scan spools the batches as the steps before the first corpus-wide step left
//! them; the later scans and the final pass read the spool and start there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::{Sender, bounded};
use latam_core::{CorpusStep, Document, Position};

use crate::config::PipelineConfig;
use crate::engine::{
    Batch, Context, Fate, InputSummary, RawBatch, RunOptions, Slot, is_set, ordered_steps,
    read_inputs, step_ids, worker_pool,
};
use crate::spool::{self, Spool, SpoolWriter, SpooledRef};
use crate::steps::{Stage, build_stages};
use crate::{PipelineError, Progress, ProgressUpdate};

/// The indices of the corpus-wide steps.
pub(crate) fn corpus_steps(config: &PipelineConfig) -> Vec<usize> {
    (0..config.steps.len())
        .filter(|&i| config.steps[i].is_corpus_wide())
        .collect()
}

/// Where a pass reads its batches.
pub(crate) enum Source<'a> {
    /// The inputs; the pass starts at the first step.
    Inputs,
    /// The spool; the pass starts at the first corpus-wide step.
    Spool(&'a Spool),
}

impl Source<'_> {
    /// Stored bytes the pass reads, for progress.
    pub(crate) fn stored_total(&self, options: &RunOptions) -> u64 {
        match self {
            Self::Inputs => options.inputs.iter().map(|i| i.size).sum(),
            Self::Spool(spool) => spool.size(),
        }
    }

    /// The reader thread of a pass: sends the batches of shards `skip_shards..`; returns the
    /// inputs as read (for a spool, as its scan read them).
    pub(crate) fn feed(
        &self,
        config: &PipelineConfig,
        options: &RunOptions,
        skip_shards: usize,
        tx: Sender<RawBatch>,
        consumed: &AtomicU64,
    ) -> Result<Vec<InputSummary>, PipelineError> {
        let read = match self {
            Self::Inputs => Some(read_inputs(
                &options.inputs,
                &config.input.read_options(),
                config.output.shard_mb * 1_000_000,
                skip_shards,
                &tx,
                consumed,
                options.interrupt.as_deref(),
            )),
            Self::Spool(spool) => {
                spool.send_frames(skip_shards, &tx, consumed, options.interrupt.as_deref())?;
                None
            }
        };
        // The pass sees the end of its batches before the spool's inputs are read.
        drop(tx);
        match (read, self) {
            (Some(inputs), _) => Ok(inputs),
            (None, Self::Spool(spool)) => spool.read_inputs(),
            (None, Self::Inputs) => unreachable!("the inputs are always read"),
        }
    }
}

/// Opens a corpus-wide step on its work directory: whether its plan is there.
pub(crate) fn open_corpus_step(
    stage: &mut Stage,
    name: &str,
    dir: &Path,
) -> Result<bool, PipelineError> {
    let Stage::Corpus(step) = stage else {
        unreachable!("a corpus-wide step")
    };
    step.open(dir).map_err(|source| PipelineError::CorpusStep {
        step: name.to_owned(),
        source,
    })
}

/// Makes sure every corpus-wide step has its plan: each one whose work directory holds none
/// scans the corpus, over the steps before it. Returns the seconds of each scan.
pub(crate) fn plan_corpus_steps(
    context: &Context,
    config: &PipelineConfig,
    options: &RunOptions,
    step_dirs: &[PathBuf],
    spool: &Spool,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, f64>, PipelineError> {
    let names = context.names;
    let corpus = corpus_steps(config);
    let mut scans = BTreeMap::new();
    let Some(&first) = corpus.first() else {
        return Ok(scans);
    };
    for &step in &corpus {
        let mut stages = build_stages(config)?;
        stages.truncate(step + 1);
        let mut needs_scan = false;
        for &h in corpus.iter().take_while(|&&h| h <= step) {
            needs_scan = !open_corpus_step(&mut stages[h], &names[h], &step_dirs[h])?;
        }
        if !needs_scan {
            continue;
        }
        tracing::info!("scanning the corpus for `{}`", names[step]);
        let (before, last) = stages.split_at_mut(step);
        let Stage::Corpus(corpus_step) = &mut last[0] else {
            unreachable!("a corpus-wide step")
        };
        let t = Instant::now();
        let name = names[step].as_str();
        if spool.is_complete() {
            let pass = Pass {
                source: Source::Spool(spool),
                start: first,
                spool: None,
            };
            let target: (&str, &mut dyn CorpusStep) = (name, corpus_step.as_mut());
            scan(context, config, options, before, pass, target, progress)?;
        } else {
            let pass = Pass {
                source: Source::Inputs,
                start: 0,
                spool: (step == first).then(|| spool.create()).transpose()?,
            };
            let target: (&str, &mut dyn CorpusStep) = (name, corpus_step.as_mut());
            scan(context, config, options, before, pass, target, progress)?;
        }
        scans.insert(names[step].clone(), t.elapsed().as_secs_f64());
    }
    Ok(scans)
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
    let failed = |source| PipelineError::CorpusStep {
        step: name.to_owned(),
        source,
    };
    if step.open(dir).map_err(failed)? {
        return Ok(false);
    }
    let mut stages = build_stages(config)?;
    let names = config.step_names();
    for (stage, name) in stages.iter().zip(&names) {
        if matches!(stage, Stage::Corpus(_)) {
            return Err(PipelineError::Step {
                step: name.clone(),
                message: "a staged task runs no corpus-wide step before its own".into(),
            });
        }
    }
    let step_ids = step_ids(config);
    let pool = worker_pool(options.workers)?;
    let fields = config.input.read_options().fields;
    let context = Context::new(&pool, (&names, &step_ids), &fields, config, options);
    let pass = Pass {
        source: Source::Inputs,
        start: 0,
        spool: None,
    };
    scan(
        &context,
        config,
        options,
        &mut stages,
        pass,
        (name, step),
        progress,
    )?;
    Ok(true)
}

/// How a scan reads, and whether it spools.
struct Pass<'a> {
    source: Source<'a>,
    /// The first step to run (`0` from the inputs, the first corpus-wide step from the spool).
    start: usize,
    spool: Option<SpoolWriter>,
}

/// The scan of a corpus-wide step: the steps `before[pass.start..]` run over the whole corpus,
/// it sees a sketch of every document that reaches it, in corpus order, and then plans.
fn scan(
    context: &Context,
    config: &PipelineConfig,
    options: &RunOptions,
    before: &mut [Stage],
    mut pass: Pass,
    (name, corpus): (&str, &mut dyn CorpusStep),
    progress: &dyn Progress,
) -> Result<(), PipelineError> {
    progress.begin(&format!("scan for {name}"));
    let started = Instant::now();
    let workers = context.pool.current_num_threads();
    let (raw_tx, raw_rx) = bounded::<RawBatch>(workers * 4);
    let consumed = AtomicU64::new(0);
    let stored_total = pass.source.stored_total(options);
    let step = before.len();
    let failed = |source| PipelineError::CorpusStep {
        step: name.to_owned(),
        source,
    };
    let inputs = std::thread::scope(|scope| {
        let (source, consumed) = (&pass.source, &consumed);
        let reader = scope.spawn(move || source.feed(config, options, 0, raw_tx, consumed));
        let mut logs = vec![Vec::new(); ordered_steps(before).len()];
        let (mut docs, mut bytes) = (0u64, 0u64);
        let mut result = Ok(());
        while let Some(wave) = context.next_wave(&raw_rx) {
            let mut wave = match wave {
                Ok(wave) => wave,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let spooling = pass.spool.is_some();
            let shared: &dyn CorpusStep = corpus;
            let done = context.run_steps(
                &mut wave,
                before,
                pass.start..step,
                &mut logs,
                |batch, stages| finish_batch(context, batch, stages, spooling, shared),
            );
            for (batch, Scanned { frame, sketches }) in wave.iter().zip(done) {
                if let (Some(out), Some(frame)) = (pass.spool.as_mut(), frame) {
                    result =
                        result.and_then(|()| out.append(batch.shard, batch.last_in_shard, &frame?));
                }
                for ((doc, at), sketch) in live_docs(batch).zip(sketches) {
                    result =
                        result.and_then(|()| corpus.observe(at, &doc.id, sketch).map_err(failed));
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
        let inputs = reader
            .join()
            .map_err(|_| PipelineError::Internal("the reader thread panicked".into()))?;
        result?;
        inputs
    })?;
    progress.finish();
    // An interrupted scan saw part of the corpus: no spool, no plan.
    if is_set(context.interrupt) {
        return Err(PipelineError::Interrupted);
    }
    // The spool is complete before the plan exists: a plan on disk implies its spool.
    if let Some(out) = pass.spool {
        out.finish(&inputs)?;
    }
    corpus.plan().map_err(failed)?;
    tracing::info!(
        "`{name}` planned after a scan of {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A batch through the steps of a scan, in the worker that ran them: redacted, spooled (its
/// frame, when `spooling`) and sketched for the corpus-wide step.
fn finish_batch(
    context: &Context,
    batch: &mut Batch,
    stages: &[Stage],
    spooling: bool,
    step: &dyn CorpusStep,
) -> Scanned {
    context.redact_rejected(batch, stages);
    let frame = spooling.then(|| {
        spool::encode(&SpooledRef {
            slots: &batch.slots,
            stats: &batch.stats,
        })
    });
    let sketches = live_docs(batch).map(|(doc, _)| step.sketch(doc)).collect();
    Scanned { frame, sketches }
}

/// What a worker hands back of a scanned batch.
struct Scanned {
    /// The spool frame, when spooling.
    frame: Option<Result<Vec<u8>, PipelineError>>,
    /// A sketch per live document, in order.
    sketches: Vec<Vec<u64>>,
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
