//! Hostile GGUF files: cuts on a grid and thousands of seeded random edits of a small model's
//! header (counts, string and array lengths, value types, tensor dimensions, types and offsets,
//! the alignment) give an error, or a model that runs a token; never a panic, and never an
//! allocation past a budget far below what an unchecked count asks for.

use std::alloc::System;
use std::io::Cursor;
use std::ops::Range;
use std::path::Path;

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use cap::Cap;
use latam_core::Rng;
use latam_core::hostile::{Outcomes, catch_panic, mutate, truncations, within};
use latam_model::synthetic::{random_weights, tiny_config, write_gguf};
use latam_model::{LoadOptions, Model, ModelError};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// The synthetic model as GGUF (Q8_0), rewritten with `extra` metadata.
fn model_bytes(dir: &Path, extra: &[(&str, gguf_file::Value)]) -> Vec<u8> {
    let config = tiny_config();
    let path = dir.join("tiny.gguf");
    write_gguf(&path, &config, &random_weights(&config, 3), GgmlDType::Q8_0).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut reader = Cursor::new(&bytes);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let tensors: Vec<(&str, QTensor)> = names
        .iter()
        .map(|n| {
            let t = content.tensor(&mut reader, n, &Device::Cpu).unwrap();
            (n.as_str(), t)
        })
        .collect();
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    metadata.extend(extra.iter().map(|(k, v)| (*k, v)));
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
    out.into_inner()
}

/// The header's fixed fields, the rest of the header, and the 40 bytes after each key and tensor name (a value's type
/// and length, or a tensor's dimensions, type and offset).
fn header_fields(bytes: &[u8], names: &[&str], header_end: usize) -> Vec<Range<usize>> {
    let mut fields = vec![0..24, 24..header_end];
    for name in names {
        let mut from = 0;
        while let Some(at) = find(&bytes[from..], name.as_bytes()) {
            let end = from + at + name.len();
            fields.push(end..(end + 40).min(bytes.len()));
            from = end;
        }
    }
    fields
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Loads the model and runs a token.
fn load_and_run(path: &Path) -> Result<(), ModelError> {
    let options = LoadOptions {
        threads: Some(1),
        ..LoadOptions::default()
    };
    let model = Model::load(path, &options)?;
    let mut cache = model.new_cache();
    model.forward(&[1, 2, 3], &mut cache, false).map(|_| ())
}

#[test]
fn hostile_headers_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = model_bytes(
        dir.path(),
        &[("general.alignment", gguf_file::Value::U32(32))],
    );
    let path = dir.path().join("case.gguf");
    std::fs::write(&path, &bytes).unwrap();
    load_and_run(&path).unwrap();
    let header_end = gguf_file::Content::read(&mut Cursor::new(&bytes))
        .unwrap()
        .tensor_data_offset as usize;
    let names = [
        "general.alignment",
        "general.architecture",
        "llama.embedding_length",
        "llama.block_count",
        "llama.context_length",
        "llama.attention.head_count",
        "llama.attention.key_length",
        "llama.feed_forward_length",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.chat_template",
        "token_embd.weight",
        "output_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_output.weight",
        "ffn_gate.weight",
        "ffn_down.weight",
        "attn_norm.weight",
    ];
    let fields = header_fields(&bytes, &names, header_end);
    let mut rng = Rng::new(14);
    let cuts = truncations(bytes.len(), 40, 100)
        .into_iter()
        .map(|n| (format!("cut at {n}"), bytes[..n].to_vec()));
    let edits = (0..1500).map(|i| {
        (
            format!("edit {i} (seed 14)"),
            mutate(&bytes, &fields, &mut rng),
        )
    });
    let mut outcomes = Outcomes::default();
    for (what, case) in cuts.chain(edits) {
        std::fs::write(&path, &case).unwrap();
        outcomes.record(
            &what,
            within(&ALLOC, 256 << 20, || catch_panic(|| load_and_run(&path))),
        );
    }
    let report = outcomes.report();
    assert!(outcomes.errors > 1000 && outcomes.ok > 100, "{report}");
    assert_eq!(outcomes.panics(), 0, "{report}");
}
