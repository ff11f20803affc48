//! The stages of near-duplicate detection and their files, under one work directory:
//!
//! ```text
//! WORK/params.json                      settings and task count; every stage checks them
//! WORK/sigs/task-TTTTT.sig              per document: position (u64), then the low 16 bits of
//!                                       its bands × rows hashes (u16), all little-endian
//! WORK/sigs/task-TTTTT.ids              per document: [position, "id"] (JSON lines)
//! WORK/bands/band-BBB/task-TTTTT.bin    (band key, position) pairs of u64, sorted
//! WORK/pairs/band-BBB.bin               candidate pairs (first of the bucket, other), u64
//! WORK/clusters.jsonl                   every document of a cluster of 2+: who is kept
//! WORK/clusters.json                    the clustering's counts
//! ```
//!
//! Every file is written under a temporary name and renamed when complete, so a stage whose
//! output exists is done, and a killed task is simply run again.
//!
//! Memory, per task: `signatures` holds one band of its documents while sorting (16 bytes a
//! document); `buckets` a read buffer per signature task; `cluster` the union-find over the
//! documents that have a candidate (about 40 bytes each), the 16-bit signatures of those
//! documents (2 bytes × bands × rows: 224 bytes by default; a chance match of 16 bits adds
//! 1/65,536 to an estimated similarity) and the ids of the documents kept; `filter` the
//! decisions on every document of a cluster (about 100 bytes each).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use latam_core::Position;
use latam_io::AtomicFile;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::{DedupMinhashConfig, MinHasher, similarity};
use crate::DedupError;
use crate::error::{at, corrupt};

const PARAMS_VERSION: u32 = 1;

fn create(path: &Path) -> Result<AtomicFile, DedupError> {
    Ok(AtomicFile::create(path)?)
}

fn open(path: &Path) -> Result<BufReader<File>, DedupError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(at(path))
}

/// Reads the next `u64` (little-endian); `None` at a clean end of file.
fn read_u64(reader: &mut impl Read, path: &Path) -> Result<Option<u64>, DedupError> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < 8 {
        match reader.read(&mut buf[filled..]).map_err(at(path))? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(corrupt(path, "truncated record")),
            n => filled += n,
        }
    }
    Ok(Some(u64::from_le_bytes(buf)))
}

/// Settings of a staged run, as `params.json` records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Format version of the work directory.
    pub version: u32,
    /// Signature tasks.
    pub tasks: usize,
    /// The settings.
    pub config: DedupMinhashConfig,
}

impl Params {
    /// Records the settings in `dir`, or checks that they equal those found there. Tasks that
    /// start together on a new work directory all call this: the first to finish writing
    /// creates `params.json`, the others read it back and compare.
    pub fn create(
        dir: &Path,
        config: &DedupMinhashConfig,
        tasks: usize,
    ) -> Result<Self, DedupError> {
        let params = Self {
            version: PARAMS_VERSION,
            tasks,
            config: config.clone(),
        };
        let json = serde_json::to_vec_pretty(&params).expect("plain data");
        latam_io::create_new(&dir.join("params.json"), &json)?;
        let found = Self::load(dir)?;
        if found == params {
            Ok(found)
        } else {
            Err(DedupError::OtherRun {
                path: dir.join("params.json"),
                message: format!(
                    "holds a run with other settings ({} tasks, {:?}); use another work \
                     directory",
                    found.tasks, found.config
                ),
            })
        }
    }

    /// Reads `params.json` of `dir`.
    pub fn load(dir: &Path) -> Result<Self, DedupError> {
        let path = dir.join("params.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DedupError::EarlierStage(format!(
                    "{} has no params.json: run `latam dedup minhash signatures` first",
                    dir.display()
                )));
            }
            Err(e) => return Err(at(&path)(e)),
        };
        let params: Self = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
        if params.version != PARAMS_VERSION {
            return Err(DedupError::OtherRun {
                path,
                message: format!(
                    "version {} (this tool reads {PARAMS_VERSION})",
                    params.version
                ),
            });
        }
        Ok(params)
    }

    fn sig_path(dir: &Path, task: usize) -> PathBuf {
        dir.join(format!("sigs/task-{task:05}.sig"))
    }

    fn ids_path(dir: &Path, task: usize) -> PathBuf {
        dir.join(format!("sigs/task-{task:05}.ids"))
    }

    fn band_path(dir: &Path, band: usize, task: usize) -> PathBuf {
        dir.join(format!("bands/band-{band:03}/task-{task:05}.bin"))
    }

    fn pairs_path(dir: &Path, band: usize) -> PathBuf {
        dir.join(format!("pairs/band-{band:03}.bin"))
    }

    /// Whether signature task `task` has finished (its ids file, committed last, exists).
    pub fn task_finished(&self, dir: &Path, task: usize) -> bool {
        Self::ids_path(dir, task).exists()
    }

    /// Fails, naming the missing files, unless every signature task has finished.
    fn check_signatures(&self, dir: &Path) -> Result<(), DedupError> {
        let missing: Vec<usize> = (0..self.tasks)
            .filter(|&t| !self.task_finished(dir, t))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DedupError::EarlierStage(format!(
                "signature task(s) {missing:?} of {} have not finished in {}",
                self.tasks,
                dir.display()
            )))
        }
    }
}

/// Writes the signatures of one task.
pub struct SignatureWriter {
    dir: PathBuf,
    task: usize,
    hasher: MinHasher,
    sigs: AtomicFile,
    ids: AtomicFile,
    bands: Vec<BufWriter<File>>,
    docs: u64,
}

impl SignatureWriter {
    /// Starts task `task` of the run whose settings `dir/params.json` holds.
    pub fn new(dir: &Path, task: usize) -> Result<Self, DedupError> {
        let params = Params::load(dir)?;
        if task >= params.tasks {
            return Err(DedupError::Config(format!(
                "task {task} of a run of {} tasks",
                params.tasks
            )));
        }
        let hasher = params.config.hasher();
        let bands = (0..hasher.bands())
            .map(|band| {
                let path = unsorted(&Params::band_path(dir, band, task));
                let parent = path.parent().expect("in a band directory");
                std::fs::create_dir_all(parent).map_err(at(parent))?;
                File::create(&path)
                    .map(|f| BufWriter::with_capacity(1 << 16, f))
                    .map_err(at(&path))
            })
            .collect::<Result<_, DedupError>>()?;
        Ok(Self {
            dir: dir.to_owned(),
            task,
            sigs: create(&Params::sig_path(dir, task))?,
            ids: create(&Params::ids_path(dir, task))?,
            hasher,
            bands,
            docs: 0,
        })
    }

    /// The hasher of the run's settings.
    pub fn hasher(&self) -> &MinHasher {
        &self.hasher
    }

    /// Adds the next document (positions must increase).
    pub fn add(&mut self, pos: Position, id: &str, sig: &[u64]) -> Result<(), DedupError> {
        let sig_path = Params::sig_path(&self.dir, self.task);
        self.sigs
            .write_all(&pos.to_le_bytes())
            .map_err(at(&sig_path))?;
        for &v in sig {
            self.sigs
                .write_all(&(v as u16).to_le_bytes())
                .map_err(at(&sig_path))?;
        }
        let ids_path = Params::ids_path(&self.dir, self.task);
        serde_json::to_writer(&mut self.ids, &(pos, id)).map_err(|e| at(&ids_path)(e.into()))?;
        self.ids.write_all(b"\n").map_err(at(&ids_path))?;
        for (band, out) in self.bands.iter_mut().enumerate() {
            let mut record = [0u8; 16];
            record[..8].copy_from_slice(&self.hasher.band_key(sig, band).to_le_bytes());
            record[8..].copy_from_slice(&pos.to_le_bytes());
            out.write_all(&record)
                .map_err(at(&unsorted(&Params::band_path(
                    &self.dir, band, self.task,
                ))))?;
        }
        self.docs += 1;
        Ok(())
    }

    /// Sorts the band files and commits everything; returns the documents written. The ids file
    /// is committed last: it marks the task finished.
    pub fn finish(self) -> Result<u64, DedupError> {
        for (band, out) in self.bands.into_iter().enumerate() {
            let path = Params::band_path(&self.dir, band, self.task);
            let tmp = unsorted(&path);
            drop(out.into_inner().map_err(|e| at(&tmp)(e.into_error()))?);
            let bytes = std::fs::read(&tmp).map_err(at(&tmp))?;
            let mut records: Vec<(u64, u64)> = bytes
                .chunks_exact(16)
                .map(|c| {
                    (
                        u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                        u64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
                    )
                })
                .collect();
            drop(bytes);
            records.sort_unstable();
            let mut file = create(&path)?;
            for (key, pos) in records {
                file.write_all(&key.to_le_bytes()).map_err(at(&path))?;
                file.write_all(&pos.to_le_bytes()).map_err(at(&path))?;
            }
            file.commit()?;
            std::fs::remove_file(&tmp).map_err(at(&tmp))?;
        }
        self.sigs.commit()?;
        self.ids.commit()?;
        Ok(self.docs)
    }
}

fn unsorted(path: &Path) -> PathBuf {
    path.with_extension("unsorted")
}

/// One sorted band file being merged.
struct BandReader {
    reader: BufReader<File>,
    path: PathBuf,
}

impl BandReader {
    fn next(&mut self) -> Result<Option<(u64, u64)>, DedupError> {
        let Some(key) = read_u64(&mut self.reader, &self.path)? else {
            return Ok(None);
        };
        let pos = read_u64(&mut self.reader, &self.path)?
            .ok_or_else(|| corrupt(&self.path, "truncated record"))?;
        Ok(Some((key, pos)))
    }
}

/// The buckets stage for one band: merges the sorted band files of every signature task and
/// writes each bucket's pairs (its first document, each other one); returns the pairs.
pub fn buckets(dir: &Path, band: usize) -> Result<u64, DedupError> {
    let params = Params::load(dir)?;
    params.check_signatures(dir)?;
    let mut readers = (0..params.tasks)
        .map(|task| {
            let path = Params::band_path(dir, band, task);
            Ok(BandReader {
                reader: open(&path)?,
                path,
            })
        })
        .collect::<Result<Vec<_>, DedupError>>()?;
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some((key, pos)) = r.next()? {
            heap.push(Reverse((key, pos, i)));
        }
    }
    let path = Params::pairs_path(dir, band);
    let mut out = create(&path)?;
    let mut pairs = 0;
    let mut bucket: Option<(u64, u64)> = None;
    while let Some(Reverse((key, pos, i))) = heap.pop() {
        match bucket {
            Some((k, first)) if k == key => {
                out.write_all(&first.to_le_bytes()).map_err(at(&path))?;
                out.write_all(&pos.to_le_bytes()).map_err(at(&path))?;
                pairs += 1;
            }
            _ => bucket = Some((key, pos)),
        }
        if let Some((key, pos)) = readers[i].next()? {
            heap.push(Reverse((key, pos, i)));
        }
    }
    out.commit()?;
    Ok(pairs)
}

/// What the cluster stage found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Candidate pairs over all bands (a pair found in several bands counts once per band).
    pub candidate_pairs: u64,
    /// Distinct candidate pairs.
    pub distinct_pairs: u64,
    /// Pairs that joined clusters (all of them without `verify`).
    pub accepted_pairs: u64,
    /// Clusters of two documents or more.
    pub clusters: u64,
    /// Documents in them.
    pub documents_in_clusters: u64,
    /// Documents to remove (all but one per cluster).
    pub to_remove: u64,
}

/// A cluster's verdict on one of its documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The document's position.
    pub at: Position,
    /// The position of the document kept.
    pub kept: Position,
    /// Its id.
    pub kept_id: String,
    /// Documents in the cluster.
    pub size: u64,
    /// Estimated Jaccard similarity with the document kept.
    pub similarity: f64,
}

/// Union-find whose root is the cluster's first document in corpus order.
#[derive(Default)]
struct Clusters {
    parent: FxHashMap<Position, Position>,
}

impl Clusters {
    fn find(&mut self, x: Position) -> Position {
        let mut root = x;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        // Path compression.
        let mut node = x;
        while node != root {
            let next = self.parent.insert(node, root).unwrap_or(root);
            node = next;
        }
        self.parent.entry(root).or_insert(root);
        root
    }

    fn union(&mut self, a: Position, b: Position) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(child, root);
        }
    }
}

/// Reads the signatures of the documents in `wanted` from every task's signature file.
fn load_signatures(
    dir: &Path,
    params: &Params,
    wanted: &FxHashSet<Position>,
) -> Result<FxHashMap<Position, Vec<u16>>, DedupError> {
    let k = params.config.bands * params.config.rows;
    let mut found = FxHashMap::default();
    let mut record = vec![0u8; 8 + 2 * k];
    for task in 0..params.tasks {
        let path = Params::sig_path(dir, task);
        let mut reader = open(&path)?;
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(at(&path)(e)),
            }
            let at = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
            if wanted.contains(&at) {
                let values = record[8..]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]));
                found.insert(at, values.collect());
            }
        }
    }
    Ok(found)
}

/// Reads the ids of the documents in `wanted`.
fn load_ids(
    dir: &Path,
    params: &Params,
    wanted: &FxHashSet<Position>,
) -> Result<FxHashMap<Position, String>, DedupError> {
    let mut found = FxHashMap::default();
    for task in 0..params.tasks {
        let path = Params::ids_path(dir, task);
        for (n, line) in open(&path)?.lines().enumerate() {
            let line = line.map_err(at(&path))?;
            let (pos, id): (Position, String) = serde_json::from_str(&line)
                .map_err(|e| corrupt(&path, format!("line {}: {e}", n + 1)))?;
            if wanted.contains(&pos) {
                found.insert(pos, id);
            }
        }
    }
    Ok(found)
}

/// The cluster stage: joins the candidate pairs of every band (verified when the settings ask)
/// into clusters, and writes `clusters.jsonl`, one [`Decision`] per document of a cluster, in
/// corpus order, and `clusters.json`, the counts.
pub fn cluster(dir: &Path) -> Result<ClusterSummary, DedupError> {
    let params = Params::load(dir)?;
    params.check_signatures(dir)?;
    let config = &params.config;
    let mut summary = ClusterSummary::default();
    let mut pairs: FxHashSet<(Position, Position)> = FxHashSet::default();
    for band in 0..config.bands {
        let path = Params::pairs_path(dir, band);
        if !path.exists() {
            return Err(DedupError::EarlierStage(format!(
                "{}: missing; run the buckets stage for band {band}",
                path.display()
            )));
        }
        let mut reader = open(&path)?;
        while let Some(a) = read_u64(&mut reader, &path)? {
            let b =
                read_u64(&mut reader, &path)?.ok_or_else(|| corrupt(&path, "truncated record"))?;
            summary.candidate_pairs += 1;
            pairs.insert((a.min(b), a.max(b)));
        }
    }
    summary.distinct_pairs = pairs.len() as u64;
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_unstable();
    let involved: FxHashSet<Position> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    let sigs = load_signatures(dir, &params, &involved)?;
    let sig = |at: &Position| sigs.get(at).map_or(&[][..], Vec::as_slice);

    let mut clusters = Clusters::default();
    for &(a, b) in &pairs {
        if !config.verify || similarity(sig(&a), sig(&b)) >= config.threshold {
            clusters.union(a, b);
            summary.accepted_pairs += 1;
        }
    }
    let mut members: Vec<Position> = clusters.parent.keys().copied().collect();
    members.sort_unstable();
    let roots: Vec<Position> = members.iter().map(|&m| clusters.find(m)).collect();
    let mut sizes: FxHashMap<Position, u64> = FxHashMap::default();
    for &r in &roots {
        *sizes.entry(r).or_default() += 1;
    }
    let kept: FxHashSet<Position> = sizes.keys().copied().collect();
    let ids = load_ids(dir, &params, &kept)?;
    summary.clusters = sizes.len() as u64;
    summary.documents_in_clusters = members.len() as u64;
    summary.to_remove = summary.documents_in_clusters - summary.clusters;

    let path = dir.join("clusters.jsonl");
    let mut out = create(&path)?;
    for (&pos, &root) in members.iter().zip(&roots) {
        let decision = Decision {
            at: pos,
            kept: root,
            kept_id: ids.get(&root).cloned().unwrap_or_default(),
            size: sizes[&root],
            similarity: (similarity(sig(&pos), sig(&root)) * 1000.0).round() / 1000.0,
        };
        serde_json::to_writer(&mut out, &decision).map_err(|e| at(&path)(e.into()))?;
        out.write_all(b"\n").map_err(at(&path))?;
    }
    out.commit()?;
    let json = serde_json::to_vec_pretty(&summary).expect("plain data");
    latam_io::write_atomic(&dir.join("clusters.json"), &json)?;
    Ok(summary)
}

/// The cluster stage's decisions, by position.
#[derive(Debug, Default)]
pub struct Decisions {
    by_position: FxHashMap<Position, Decision>,
}

impl Decisions {
    /// Whether `dir` holds finished clusters.
    pub fn exist(dir: &Path) -> bool {
        dir.join("clusters.jsonl").exists()
    }

    /// Loads every decision of `clusters.jsonl`.
    pub fn load(dir: &Path) -> Result<Self, DedupError> {
        let path = dir.join("clusters.jsonl");
        let mut by_position = FxHashMap::default();
        for (n, line) in open(&path)?.lines().enumerate() {
            let line = line.map_err(at(&path))?;
            let decision: Decision = serde_json::from_str(&line)
                .map_err(|e| corrupt(&path, format!("line {}: {e}", n + 1)))?;
            by_position.insert(decision.at, decision);
        }
        Ok(Self { by_position })
    }

    /// The decision on the document at `at`; `None` when it is in no cluster.
    pub fn get(&self, at: Position) -> Option<&Decision> {
        self.by_position.get(&at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_root_at_the_first_document() {
        let mut c = Clusters::default();
        c.union(9, 5);
        c.union(7, 3);
        c.union(5, 7);
        for x in [3, 5, 7, 9] {
            assert_eq!(c.find(x), 3);
        }
        c.union(20, 21);
        assert_eq!(c.find(21), 20);
    }
}
