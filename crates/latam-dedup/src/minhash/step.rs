//! The near-duplicate steps as the pipeline engine runs them: [`SignatureTask`] (the first
//! stage, one task of a staged run) and [`DedupMinhash`] (every stage in one process, as the
//! `dedup_minhash` step of `latam corpus run`).

use std::path::{Path, PathBuf};

use latam_core::{CorpusStep, Document, Position, StepError, Verdict};
use serde_json::Value;

use super::stages::{Decisions, Params, SignatureWriter, buckets, cluster};
use super::{DedupMinhashConfig, MinHasher};
use crate::DedupError;
use crate::error::at;

/// Signature task `task` of `tasks`: a scan writes the signatures of its documents into the
/// work directory. A task whose files exist is finished, and is not run again.
pub struct SignatureTask {
    config: DedupMinhashConfig,
    hasher: MinHasher,
    task: usize,
    tasks: usize,
    writer: Option<SignatureWriter>,
    documents: u64,
}

impl SignatureTask {
    /// Task `task` of `tasks` with these settings.
    pub fn new(config: &DedupMinhashConfig, task: usize, tasks: usize) -> Self {
        Self {
            config: config.clone(),
            hasher: config.hasher(),
            task,
            tasks,
            writer: None,
            documents: 0,
        }
    }

    /// Documents signed.
    pub fn documents(&self) -> u64 {
        self.documents
    }
}

impl CorpusStep for SignatureTask {
    fn open(&mut self, dir: &Path) -> Result<bool, StepError> {
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        let params = Params::create(dir, &self.config, self.tasks)?;
        if params.task_finished(dir, self.task) {
            return Ok(true);
        }
        self.writer = Some(SignatureWriter::new(dir, self.task)?);
        Ok(false)
    }

    fn sketch(&self, doc: &Document) -> Vec<u64> {
        self.hasher.signature(&doc.text).unwrap_or_default()
    }

    fn observe(&mut self, pos: Position, id: &str, sketch: Vec<u64>) -> Result<(), StepError> {
        if sketch.is_empty() {
            return Ok(());
        }
        self.documents += 1;
        Ok(self
            .writer
            .as_mut()
            .expect("opened before the scan")
            .add(pos, id, &sketch)?)
    }

    fn plan(&mut self) -> Result<(), StepError> {
        self.writer
            .take()
            .expect("opened before the scan")
            .finish()?;
        Ok(())
    }

    fn apply(&self, _doc: &mut Document, _at: Position) -> Verdict {
        Verdict::Keep
    }
}

/// The `dedup_minhash` step: signatures, buckets and clusters in one process, in the step's
/// work directory; then each document of a cluster but the first is rejected.
pub struct DedupMinhash {
    signatures: SignatureTask,
    dir: PathBuf,
    decisions: Decisions,
}

impl DedupMinhash {
    pub(super) fn new(config: &DedupMinhashConfig) -> Self {
        Self {
            signatures: SignatureTask::new(config, 0, 1),
            dir: PathBuf::new(),
            decisions: Decisions::default(),
        }
    }
}

impl CorpusStep for DedupMinhash {
    fn open(&mut self, dir: &Path) -> Result<bool, StepError> {
        dir.clone_into(&mut self.dir);
        if Decisions::exist(dir) {
            let params = Params::load(dir)?;
            if params.config != self.signatures.config {
                return Err(Box::new(DedupError::OtherRun {
                    path: dir.join("params.json"),
                    message: format!(
                        "holds clusters made with other settings ({:?})",
                        params.config
                    ),
                }));
            }
            self.decisions = Decisions::load(dir)?;
            return Ok(true);
        }
        // What a killed run left is started over.
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(at(dir))?;
        }
        self.signatures.open(dir)
    }

    fn sketch(&self, doc: &Document) -> Vec<u64> {
        self.signatures.sketch(doc)
    }

    fn observe(&mut self, pos: Position, id: &str, sketch: Vec<u64>) -> Result<(), StepError> {
        self.signatures.observe(pos, id, sketch)
    }

    fn plan(&mut self) -> Result<(), StepError> {
        self.signatures.plan()?;
        for band in 0..self.signatures.config.bands {
            buckets(&self.dir, band)?;
        }
        let summary = cluster(&self.dir)?;
        tracing::info!(
            "dedup_minhash: {} candidate pairs, {} clusters, {} near-duplicates to remove",
            summary.distinct_pairs,
            summary.clusters,
            summary.to_remove
        );
        // The signatures served their purpose; the clusters stay for a resumed run.
        for done in ["sigs", "bands", "pairs"] {
            let path = self.dir.join(done);
            std::fs::remove_dir_all(&path).map_err(at(&path))?;
        }
        self.decisions = Decisions::load(&self.dir)?;
        Ok(())
    }

    fn apply(&self, doc: &mut Document, at: Position) -> Verdict {
        let Some(decision) = self.decisions.get(at) else {
            doc.metadata
                .insert("dup_cluster_size".into(), Value::from(1));
            return Verdict::Keep;
        };
        doc.metadata
            .insert("dup_cluster_size".into(), Value::from(decision.size));
        if decision.kept == at {
            return Verdict::Keep;
        }
        doc.metadata.insert(
            "duplicate_of".into(),
            Value::from(decision.kept_id.as_str()),
        );
        doc.metadata
            .insert("dup_similarity".into(), Value::from(decision.similarity));
        Verdict::reject("near_duplicate")
    }
}
