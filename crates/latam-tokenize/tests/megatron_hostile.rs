//! Hostile Megatron datasets: every cut of a real shard's `.idx` and `.bin` on a grid, and
//! thousands of seeded random edits of the index's counts, lengths, offsets and document
//! boundaries, give an error or a dataset whose every sequence reads; never a panic, and never
//! an allocation past a budget far below what an unchecked count asks for.

use std::alloc::System;
use std::path::{Path, PathBuf};

use cap::Cap;
use latam_core::Rng;
use latam_core::hostile::{Outcomes, catch_panic, mutate, truncations, within};
use latam_tokenize::{
    Engine, MegatronReader, MegatronWriter, TokenType, TokenizeError, Tokenizer, TrainBpeConfig,
    train_bpe, with_suffix,
};
use serde_json::Value;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Real text: the first documents of the bundled sample corpus.
fn sample_texts(n: usize) -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/latam-sample.jsonl.zst");
    let text =
        String::from_utf8(zstd::decode_all(std::fs::read(path).unwrap().as_slice()).unwrap())
            .unwrap();
    text.lines()
        .take(n)
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Writes the documents' ids as a shard at `prefix`; returns the tokens written.
fn write_shard(prefix: &Path, dtype: TokenType, documents: &[Vec<u32>]) -> usize {
    let mut writer = MegatronWriter::create(prefix, dtype).unwrap();
    for ids in documents {
        writer.push(ids).unwrap();
    }
    writer.finish().unwrap();
    documents.iter().map(Vec::len).sum()
}

/// Opens the dataset and reads every sequence: the tokens read.
fn read_all(prefix: &Path) -> Result<usize, TokenizeError> {
    let reader = MegatronReader::open(prefix)?;
    let mut tokens = 0;
    for i in 0..reader.len() {
        tokens += reader.get(i)?.len();
    }
    assert!(
        reader
            .documents()
            .iter()
            .all(|&d| d >= 0 && d as usize <= reader.len())
    );
    Ok(tokens)
}

/// The byte ranges of the index's header fields and of its three arrays.
fn index_fields(sequences: usize) -> Vec<std::ops::Range<usize>> {
    let lengths = 34 + sequences * 4;
    let pointers = lengths + sequences * 8;
    vec![
        9..34,
        34..lengths,
        lengths..pointers,
        pointers..pointers + (sequences + 1) * 8,
    ]
}

/// Loads the shard at `prefix` with each `(what, idx, bin)` in its place.
fn run(prefix: &Path, cases: impl Iterator<Item = (String, Vec<u8>, Vec<u8>)>) -> Outcomes {
    let mut outcomes = Outcomes::default();
    let mut written = None;
    for (what, idx, bin) in cases {
        std::fs::write(with_suffix(prefix, "idx"), &idx).unwrap();
        if written.as_ref() != Some(&bin) {
            std::fs::write(with_suffix(prefix, "bin"), &bin).unwrap();
            written = Some(bin);
        }
        outcomes.record(
            &what,
            within(&ALLOC, 16 << 20, || catch_panic(|| read_all(prefix))),
        );
    }
    outcomes
}

#[test]
fn hostile_indexes_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let texts = sample_texts(40);
    let tokenizer_path = dir.path().join("tokenizer.json");
    let config = TrainBpeConfig {
        vocab_size: 400,
        ..TrainBpeConfig::default()
    };
    train_bpe(texts.clone().into_iter(), &config, &tokenizer_path).unwrap();
    let tokenizer = Tokenizer::load(&tokenizer_path, Engine::Auto).unwrap();
    let documents: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t)).collect();
    let mut panics = String::new();
    let mut rng = Rng::new(14);
    for dtype in [TokenType::Uint16, TokenType::Int32] {
        let real: PathBuf = dir.path().join(format!("real_{}", dtype.code()));
        let tokens = write_shard(&real, dtype, &documents);
        assert_eq!(read_all(&real).unwrap(), tokens);
        let idx = std::fs::read(with_suffix(&real, "idx")).unwrap();
        let bin = std::fs::read(with_suffix(&real, "bin")).unwrap();
        let fields = index_fields(documents.len());
        let prefix = dir.path().join("case");
        let cut_idx = truncations(idx.len(), 40, 100).into_iter().map(|n| {
            (
                format!("{dtype:?} .idx cut at {n}"),
                idx[..n].to_vec(),
                bin.clone(),
            )
        });
        let cut_bin = truncations(bin.len(), 8, 60).into_iter().map(|n| {
            (
                format!("{dtype:?} .bin cut at {n}"),
                idx.clone(),
                bin[..n].to_vec(),
            )
        });
        let edits = (0..1500).map(|i| {
            (
                format!("{dtype:?} edit {i} (seed 14)"),
                mutate(&idx, &fields, &mut rng),
                bin.clone(),
            )
        });
        let outcomes = run(&prefix, cut_idx.chain(cut_bin).chain(edits));
        // Most edits break the dataset, some leave a readable one (a token count changed).
        let report = outcomes.report();
        assert!(outcomes.errors > 1000 && outcomes.ok > 50, "{report}");
        if outcomes.panics() > 0 {
            panics.push_str(&report);
        }
    }
    assert!(panics.is_empty(), "{panics}");
}
