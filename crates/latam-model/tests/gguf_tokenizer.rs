//! The tokenizer rebuilt from GGUF metadata equals Hugging Face's `tokenizer.json` on Llama 3's
//! vocabulary (the base of Latam-GPT): the file's vocabulary, merges and special tokens are
//! written as `llama.cpp`'s converter writes them into `tokenizer.ggml.*`.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use latam_model::Tokenizer;

const TEXTS: &[&str] = &[
    "La capital de Chile es Santiago; la de Perú, Lima. ¿Y la de Bolivia? ¡Sucre!",
    "O rio Amazonas atravessa o norte do Brasil em 1.234,56 km² — não é?",
    "Mba'éichapa reiko? Allillanchu, tayta. Kimeltuwün ñi mapudungun.",
    "<|start_header_id|>user<|end_header_id|>\n\nHola   mundo\n\n\n  12345 abc's<|eot_id|>",
    "Ayiti se yon peyi ki gen anpil mòn. Numbers: 3.14159, 2026-11-27, 0xFF.",
];

#[test]
#[ignore = "needs Llama 3's tokenizer.json (LATAM_LLAMA3_TOKENIZER); run by .ci/run"]
fn llama3_from_gguf_metadata_equals_tokenizer_json() {
    let path = std::env::var("LATAM_LLAMA3_TOKENIZER")
        .expect("set LATAM_LLAMA3_TOKENIZER to Llama 3's tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reference = Tokenizer::from_json(&text).unwrap();

    // tokenizer.ggml.*: every token by id, its type (3 = control), the merges.
    let mut tokens: Vec<(u64, String, i32)> = json["model"]["vocab"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, id)| (id.as_u64().unwrap(), t.clone(), 1))
        .collect();
    for added in json["added_tokens"].as_array().unwrap() {
        let kind = if added["special"] == true { 3 } else { 4 };
        let content = added["content"].as_str().unwrap().to_owned();
        tokens.push((added["id"].as_u64().unwrap(), content, kind));
    }
    tokens.sort();
    let merges = json["model"]["merges"].as_array().unwrap();
    let strings = |list: Vec<String>| Value::Array(list.into_iter().map(Value::String).collect());
    let metadata: HashMap<String, Value> = [
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("llama-bpe".into())),
        (
            "tokenizer.ggml.tokens",
            strings(tokens.iter().map(|t| t.1.clone()).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(tokens.iter().map(|t| Value::I32(t.2)).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            strings(
                merges
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned())
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(128_000)),
        ("tokenizer.ggml.eos_token_id", Value::U32(128_009)),
        // This tokenizer.json adds no BOS; neither does its GGUF twin.
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let content = Content {
        magic: VersionedMagic::GgufV3,
        metadata,
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    };
    let rebuilt = Tokenizer::from_gguf(&content).unwrap();
    for text in TEXTS {
        let ids = rebuilt.encode(text, true).unwrap();
        assert_eq!(ids, reference.encode(text, true).unwrap(), "{text}");
        assert_eq!(
            rebuilt.decode(&ids).unwrap(),
            reference.decode(&ids).unwrap()
        );
    }
    assert!(
        rebuilt.end_of_generation_ids().contains(&128_009),
        "<|eot_id|>"
    );
    assert!(
        rebuilt.end_of_generation_ids().contains(&128_001),
        "<|end_of_text|>"
    );
}
