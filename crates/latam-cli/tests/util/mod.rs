//! The test kit: a scratch directory to run `latam` in, and readers of what it writes.
//! Shared by several test binaries, each of which uses a part of it.
#![allow(dead_code)]

pub mod openai;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The bundled sample corpus, as the binary carries it.
pub const SAMPLE: &[u8] = include_bytes!("../../../../data/sample/latam-sample.jsonl.zst");

/// A scratch directory in which `latam` runs.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A `latam` command running in the scratch directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latam"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("LATAM_LOG", "warn");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("latam runs"))
    }
}

/// A finished command.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("exited")
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    /// Standard output as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Asserts the exit status, showing stderr when it differs.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code(), code, "stderr:\n{}", self.stderr());
        self
    }
}

/// The sample's JSON lines.
pub fn sample_lines() -> Vec<String> {
    let text = zstd::decode_all(SAMPLE).unwrap();
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Reads every document of a JSONL file, compressed or not.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let raw = std::fs::read(path).unwrap();
    let mut text = String::new();
    match path.extension().and_then(|e| e.to_str()) {
        Some("zst") => text = String::from_utf8(zstd::decode_all(raw.as_slice()).unwrap()).unwrap(),
        Some("gz") => {
            flate2::read::MultiGzDecoder::new(raw.as_slice())
                .read_to_string(&mut text)
                .unwrap();
        }
        _ => text = String::from_utf8(raw).unwrap(),
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every document under `dir` (all parts, in name order).
pub fn read_parts(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().flat_map(|f| read_jsonl(f)).collect()
}

/// Documents under `out/rejected/*/`.
pub fn read_rejected(out: &Path) -> Vec<Value> {
    let dir = out.join("rejected");
    if !dir.exists() {
        return Vec::new();
    }
    let mut steps: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    steps.sort();
    steps.iter().flat_map(|s| read_parts(s)).collect()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The bytes of every file of a run that depends on its inputs and pipeline alone (all but
/// `stats.json`, which also times the run, and the state under `.latam/`), by relative path.
pub fn data_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walk(out) {
        let rel = entry
            .strip_prefix(out)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if !rel.starts_with(".latam/") && rel != "stats.json" {
            files.insert(rel, std::fs::read(&entry).unwrap());
        }
    }
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts the invariant of a run: documents read = kept + rejected, in stats.json and in the
/// files.
pub fn assert_invariant(out: &Path) {
    let stats = read_json(&out.join("stats.json"));
    let d = &stats["documents"];
    let (read, kept, rejected) = (
        d["read"].as_u64().unwrap(),
        d["kept"].as_u64().unwrap(),
        d["rejected"].as_u64().unwrap(),
    );
    assert_eq!(read, kept + rejected, "stats: {d}");
    assert_eq!(read_parts(&out.join("documents")).len() as u64, kept);
    assert_eq!(read_rejected(out).len() as u64, rejected);
    let errors = std::fs::read_to_string(out.join("errors.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    assert_eq!(errors, d["errors"].as_u64().unwrap());
}

/// Headless Chromium (Debian `chromium`, or `LATAM_CHROMIUM`) run offline with a profile in the
/// scratch directory.
pub fn chromium(s: &Scratch, args: &[&str]) -> Output {
    let browser = std::env::var("LATAM_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = s.path("chromium-profile");
    Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--blink-settings=imagesEnabled=true",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start {browser} ({e}); install Debian's chromium or set LATAM_CHROMIUM")
        })
}
