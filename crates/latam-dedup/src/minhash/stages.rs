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

const PARAMS_VERSION: u32 = 1;

fn io_error(e: latam_io::IoError) -> io::Error {
    io::Error::other(e)
}

fn with_path(path: &Path, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn create(path: &Path) -> io::Result<AtomicFile> {
    AtomicFile::create(path).map_err(io_error)
}

fn open(path: &Path) -> io::Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|e| with_path(path, &e))
}

/// Reads the next `u64` (little-endian); `None` at a clean end of file.
fn read_u64(reader: &mut impl Read) -> io::Result<Option<u64>> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < 8 {
        match reader.read(&mut buf[filled..])? {
            0 if filled == 0 => return Ok(None),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated record",
                ));
            }
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
    /// Records the settings in `dir`, or checks that they equal those found there.
    pub fn create(dir: &Path, config: &DedupMinhashConfig, tasks: usize) -> io::Result<Self> {
        let params = Self {
            version: PARAMS_VERSION,
            tasks,
            config: config.clone(),
        };
        match Self::load(dir) {
            Ok(found) if found == params => Ok(found),
            Ok(found) => Err(io::Error::other(format!(
                "{} holds a run with other settings ({} tasks, {:?}); use another work directory",
                dir.join("params.json").display(),
                found.tasks,
                found.config
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let json = serde_json::to_vec_pretty(&params).expect("plain data");
                latam_io::write_atomic(&dir.join("params.json"), &json).map_err(io_error)?;
                Ok(params)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads `params.json` of `dir`.
    pub fn load(dir: &Path) -> io::Result<Self> {
        let path = dir.join("params.json");
        let bytes = std::fs::read(&path)?;
        let params: Self = serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        if params.version != PARAMS_VERSION {
            return Err(io::Error::other(format!(
                "{}: version {} (this tool reads {PARAMS_VERSION})",
                path.display(),
                params.version
            )));
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
    fn check_signatures(&self, dir: &Path) -> io::Result<()> {
        let missing: Vec<usize> = (0..self.tasks)
            .filter(|&t| !self.task_finished(dir, t))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
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
    pub fn new(dir: &Path, task: usize) -> io::Result<Self> {
        let params = Params::load(dir)?;
        if task >= params.tasks {
            return Err(io::Error::other(format!(
                "task {task} of a run of {} tasks",
                params.tasks
            )));
        }
        let hasher = params.config.hasher();
        let bands = (0..hasher.bands())
            .map(|band| {
                let path = unsorted(&Params::band_path(dir, band, task));
                std::fs::create_dir_all(path.parent().expect("in a band directory"))?;
                File::create(&path)
                    .map(|f| BufWriter::with_capacity(1 << 16, f))
                    .map_err(|e| with_path(&path, &e))
            })
            .collect::<io::Result<_>>()?;
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
    pub fn add(&mut self, at: Position, id: &str, sig: &[u64]) -> io::Result<()> {
        self.sigs.write_all(&at.to_le_bytes())?;
        for &v in sig {
            self.sigs.write_all(&(v as u16).to_le_bytes())?;
        }
        serde_json::to_writer(&mut self.ids, &(at, id))?;
        self.ids.write_all(b"\n")?;
        for (band, out) in self.bands.iter_mut().enumerate() {
            out.write_all(&self.hasher.band_key(sig, band).to_le_bytes())?;
            out.write_all(&at.to_le_bytes())?;
        }
        self.docs += 1;
        Ok(())
    }

    /// Sorts the band files and commits everything; returns the documents written. The ids file
    /// is committed last: it marks the task finished.
    pub fn finish(self) -> io::Result<u64> {
        for (band, out) in self.bands.into_iter().enumerate() {
            drop(out.into_inner().map_err(io::IntoInnerError::into_error)?);
            let path = Params::band_path(&self.dir, band, self.task);
            let tmp = unsorted(&path);
            let bytes = std::fs::read(&tmp).map_err(|e| with_path(&tmp, &e))?;
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
            for (key, at) in records {
                file.write_all(&key.to_le_bytes())?;
                file.write_all(&at.to_le_bytes())?;
            }
            file.commit().map_err(io_error)?;
            std::fs::remove_file(&tmp).map_err(|e| with_path(&tmp, &e))?;
        }
        self.sigs.commit().map_err(io_error)?;
        self.ids.commit().map_err(io_error)?;
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
    fn next(&mut self) -> io::Result<Option<(u64, u64)>> {
        let Some(key) = read_u64(&mut self.reader).map_err(|e| with_path(&self.path, &e))? else {
            return Ok(None);
        };
        let at = read_u64(&mut self.reader)
            .map_err(|e| with_path(&self.path, &e))?
            .ok_or_else(|| with_path(&self.path, &io::ErrorKind::UnexpectedEof.into()))?;
        Ok(Some((key, at)))
    }
}

/// The buckets stage for one band: merges the sorted band files of every signature task and
/// writes each bucket's pairs (its first document, each other one); returns the pairs.
pub fn buckets(dir: &Path, band: usize) -> io::Result<u64> {
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
        .collect::<io::Result<Vec<_>>>()?;
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some((key, at)) = r.next()? {
            heap.push(Reverse((key, at, i)));
        }
    }
    let path = Params::pairs_path(dir, band);
    let mut out = create(&path)?;
    let mut pairs = 0;
    let mut bucket: Option<(u64, u64)> = None;
    while let Some(Reverse((key, at, i))) = heap.pop() {
        match bucket {
            Some((k, first)) if k == key => {
                out.write_all(&first.to_le_bytes())?;
                out.write_all(&at.to_le_bytes())?;
                pairs += 1;
            }
            _ => bucket = Some((key, at)),
        }
        if let Some((key, at)) = readers[i].next()? {
            heap.push(Reverse((key, at, i)));
        }
    }
    out.commit().map_err(io_error)?;
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
) -> io::Result<FxHashMap<Position, Vec<u16>>> {
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
                Err(e) => return Err(with_path(&path, &e)),
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
) -> io::Result<FxHashMap<Position, String>> {
    let mut found = FxHashMap::default();
    for task in 0..params.tasks {
        let path = Params::ids_path(dir, task);
        for (n, line) in open(&path)?.lines().enumerate() {
            let line = line.map_err(|e| with_path(&path, &e))?;
            let (at, id): (Position, String) = serde_json::from_str(&line)
                .map_err(|e| io::Error::other(format!("{}:{}: {e}", path.display(), n + 1)))?;
            if wanted.contains(&at) {
                found.insert(at, id);
            }
        }
    }
    Ok(found)
}

/// The cluster stage: joins the candidate pairs of every band (verified when the settings ask)
/// into clusters, and writes `clusters.jsonl`, one [`Decision`] per document of a cluster, in
/// corpus order, and `clusters.json`, the counts.
pub fn cluster(dir: &Path) -> io::Result<ClusterSummary> {
    let params = Params::load(dir)?;
    params.check_signatures(dir)?;
    let config = &params.config;
    let mut summary = ClusterSummary::default();
    let mut pairs: FxHashSet<(Position, Position)> = FxHashSet::default();
    for band in 0..config.bands {
        let path = Params::pairs_path(dir, band);
        if !path.exists() {
            return Err(io::Error::other(format!(
                "{}: missing; run the buckets stage for band {band}",
                path.display()
            )));
        }
        let mut reader = open(&path)?;
        while let Some(a) = read_u64(&mut reader).map_err(|e| with_path(&path, &e))? {
            let b = read_u64(&mut reader)
                .map_err(|e| with_path(&path, &e))?
                .ok_or_else(|| with_path(&path, &io::ErrorKind::UnexpectedEof.into()))?;
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

    let mut out = create(&dir.join("clusters.jsonl"))?;
    for (&at, &root) in members.iter().zip(&roots) {
        let decision = Decision {
            at,
            kept: root,
            kept_id: ids.get(&root).cloned().unwrap_or_default(),
            size: sizes[&root],
            similarity: (similarity(sig(&at), sig(&root)) * 1000.0).round() / 1000.0,
        };
        serde_json::to_writer(&mut out, &decision)?;
        out.write_all(b"\n")?;
    }
    out.commit().map_err(io_error)?;
    let json = serde_json::to_vec_pretty(&summary).expect("plain data");
    latam_io::write_atomic(&dir.join("clusters.json"), &json).map_err(io_error)?;
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
    pub fn load(dir: &Path) -> io::Result<Self> {
        let path = dir.join("clusters.jsonl");
        let mut by_position = FxHashMap::default();
        for (n, line) in open(&path)?.lines().enumerate() {
            let line = line.map_err(|e| with_path(&path, &e))?;
            let decision: Decision = serde_json::from_str(&line)
                .map_err(|e| io::Error::other(format!("{}:{}: {e}", path.display(), n + 1)))?;
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
