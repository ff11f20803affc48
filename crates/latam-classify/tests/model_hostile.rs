//! Hostile classifier model files: cuts on a grid and thousands of seeded random edits of a
//! small trained model and of the langid model the toolkit ships (the header's lengths, the
//! JSON header's sizes and switches, the row count, the rows' buckets) give an error or a model
//! that predicts; never a panic, and never an allocation past a budget.

use std::alloc::System;
use std::ops::Range;
use std::path::Path;

use cap::Cap;
use latam_classify::{Classifier, Example, FeatureConfig, Loss, TrainConfig};
use latam_core::Rng;
use latam_core::hostile::{Outcomes, catch_panic, mutate, truncations, within};
use serde_json::{Value, json};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

fn examples() -> Vec<Example> {
    let texts = [
        ("spa", "el perro come carne en la casa"),
        ("spa", "la niña lee un libro de historia"),
        ("spa", "los estudiantes viajan a la ciudad"),
        ("por", "o cachorro come carne em casa"),
        ("por", "a menina lê um livro de história"),
        ("por", "os estudantes viajam para a cidade"),
        ("grn", "ko'ã mitã oho mbo'ehaópe"),
        ("grn", "che ajapo tembi'u ko'ãga"),
    ];
    texts
        .iter()
        .map(|(l, t)| Example {
            text: (*t).to_owned(),
            labels: vec![(*l).to_owned()],
        })
        .collect()
}

fn small(quantize: bool, loss: Loss) -> Vec<u8> {
    let config = TrainConfig {
        features: FeatureConfig {
            buckets: 1 << 12,
            ..FeatureConfig::default()
        },
        epochs: 20,
        quantize,
        loss,
        ..TrainConfig::default()
    };
    Classifier::train(&examples(), &config, "hostile-input test")
        .unwrap()
        .to_bytes()
}

/// Where the header's JSON, the row count and the rows start.
fn layout(model: &[u8]) -> (usize, usize) {
    let json = u32::from_le_bytes(model[12..16].try_into().unwrap()) as usize;
    (16 + json, 20 + json)
}

/// The byte ranges of the fixed header, the row count and the first rows.
fn fields(model: &[u8]) -> Vec<Range<usize>> {
    let (count, rows) = layout(model);
    vec![8..16, count..rows, rows..(rows + 400).min(model.len())]
}

/// The model with its JSON header rewritten by `edit`.
fn with_header(model: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (count, _) = layout(model);
    let mut header: Value = serde_json::from_slice(&model[16..count]).unwrap();
    edit(&mut header);
    let text = header.to_string();
    let mut out = model[..12].to_vec();
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&model[count..]);
    out
}

/// A header edit: a size or a switch set to a value that a reader must survive.
fn edit_header(model: &[u8], rng: &mut Rng) -> Vec<u8> {
    let sizes = [
        0u64,
        1,
        2,
        3,
        255,
        65_535,
        1 << 24,
        (1 << 24) + 1,
        1 << 31,
        u64::from(u32::MAX),
        u64::MAX,
    ];
    let size = json!(rng.pick(&sizes));
    let choice = rng.below(9);
    with_header(model, |h| match choice {
        0 => h["config"]["features"]["buckets"] = size,
        1 => h["config"]["dim"] = size,
        2 => h["config"]["features"]["max_char_ngram"] = size,
        3 => h["config"]["features"]["min_char_ngram"] = size,
        4 => h["config"]["features"]["word_ngrams"] = size,
        5 => h["config"]["quantize"] = json!(!h["config"]["quantize"].as_bool().unwrap()),
        6 => h["config"]["loss"] = json!("one_vs_all"),
        7 => {
            let labels = h["labels"].as_array_mut().unwrap();
            labels.truncate(rng.below(labels.len()));
        }
        _ => h["labels"]
            .as_array_mut()
            .unwrap()
            .extend((0..rng.below(2000)).map(|i| json!(format!("x{i}")))),
    })
}

/// Reads the model and, when it reads, predicts.
fn load(bytes: &[u8]) -> Result<usize, latam_classify::ClassifyError> {
    let model = Classifier::from_bytes(bytes)?;
    let text = "los estudiantes leen o livro ko'ãga 123 ¿qué?";
    let _ = model.probabilities(text);
    Ok(model.predict(text, 3).len())
}

/// Loads every case under `budget`.
fn run(cases: impl Iterator<Item = (String, Vec<u8>)>, budget: usize) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for (what, bytes) in cases {
        outcomes.record(
            &what,
            within(&ALLOC, budget, || catch_panic(|| load(&bytes))),
        );
    }
    outcomes
}

/// Cuts, random edits and header edits of `model`.
fn cases(
    name: &'static str,
    model: Vec<u8>,
    (cuts, edits, header_edits): (usize, usize, usize),
    seed: u64,
) -> impl Iterator<Item = (String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let fields = fields(&model);
    let cut = truncations(model.len(), 64, cuts)
        .into_iter()
        .map(move |n| (n, name));
    let cut_model = model.clone();
    let cut = cut.map(move |(n, name)| (format!("{name} cut at {n}"), cut_model[..n].to_vec()));
    let edit = (0..edits + header_edits).map(move |i| {
        let bytes = if i < edits {
            mutate(&model, &fields, &mut rng)
        } else {
            edit_header(&model, &mut rng)
        };
        (format!("{name} edit {i} (seed {seed})"), bytes)
    });
    cut.chain(edit)
}

#[test]
fn hostile_model_files_give_errors_not_panics() {
    let mut panics = String::new();
    let mut check = |name: &str, outcomes: Outcomes, least_ok: usize| {
        let report = outcomes.report();
        assert!(
            outcomes.errors > 60 && outcomes.ok >= least_ok,
            "{name}: {report}"
        );
        if outcomes.panics() > 0 {
            panics.push_str(&["\n", name, ": ", &report].concat());
        }
    };
    let small_models = [
        ("quantized softmax", small(true, Loss::Softmax)),
        ("f32 one-vs-all", small(false, Loss::OneVsAll)),
    ];
    for (i, (name, model)) in small_models.into_iter().enumerate() {
        assert_eq!(load(&model).unwrap(), 3);
        // The index may take 64 MiB (16,777,216 buckets, the most a model may have).
        check(
            name,
            run(cases(name, model, (200, 1200, 300), i as u64), 128 << 20),
            100,
        );
    }
    let langid = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../latam-langid/model/langid.lcm"),
    )
    .unwrap();
    assert_eq!(load(&langid).unwrap(), 3);
    check(
        "langid.lcm",
        run(cases("langid.lcm", langid, (60, 60, 60), 7), 256 << 20),
        10,
    );
    assert!(panics.is_empty(), "{panics}");
}

/// The error of reading `model`, allowed 64 MiB.
fn refusal(model: &[u8]) -> String {
    within(&ALLOC, 64 << 20, || Classifier::from_bytes(model))
        .unwrap_err()
        .to_string()
}

/// The header's sizes that the reader used to trust: its JSON's length was allocated before
/// reading (4 GiB for `u32::MAX`), `buckets` sized the index (16 GiB), and `dim` times the
/// rows or the labels overflowed ("capacity overflow", "attempt to multiply with overflow").
#[test]
fn sizes_in_the_header_are_checked_before_allocating() {
    let model = small(true, Loss::Softmax);
    let mut long = model.clone();
    long[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(refusal(&long).contains("truncated"));
    let buckets = with_header(&model, |h| {
        h["config"]["features"]["buckets"] = json!(u32::MAX);
    });
    assert!(refusal(&buckets).contains("at most 16777216"));
    for dim in [1u64 << 40, u64::MAX / 2, u64::MAX] {
        let wide = with_header(&model, |h| h["config"]["dim"] = json!(dim));
        assert!(refusal(&wide).contains("truncated"), "{dim}");
    }
    let labels = with_header(&model, |h| {
        h["labels"] = json!((0..5000).map(|i| format!("x{i}")).collect::<Vec<_>>());
    });
    assert!(refusal(&labels).contains("truncated"));
    let mut extra = model.clone();
    extra.push(0);
    assert!(refusal(&extra).contains("after the end"));
}

/// A bucket listed twice, or past the buckets, is refused rather than silently overwritten.
#[test]
fn rows_must_name_distinct_buckets_within_the_index() {
    let model = small(false, Loss::Softmax);
    let (_, rows) = layout(&model);
    let dim = 16;
    let second = rows + 4 + dim * 4;
    let mut twice = model.clone();
    twice.copy_within(rows..rows + 4, second);
    assert!(refusal(&twice).contains("two rows"));
    let mut outside = model.clone();
    outside[rows..rows + 4].copy_from_slice(&(1u32 << 12).to_le_bytes());
    assert!(refusal(&outside).contains("outside the buckets"));
}

/// `word_ngrams` from the file bounded a loop over n-gram lengths: 2^64 - 1 never returned.
#[test]
fn a_model_asking_for_endless_word_ngrams_still_predicts() {
    let model = small(true, Loss::Softmax);
    let endless = with_header(&model, |h| {
        h["config"]["features"]["word_ngrams"] = json!(u64::MAX);
    });
    assert_eq!(load(&endless).unwrap(), 3);
}
