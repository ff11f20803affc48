//! From curated documents to training data with the binary: a BPE trained on the sample corpus,
//! its fertility by language, a mix by source, and the Megatron shards its blend names.

mod util;

use std::collections::BTreeMap;

use util::{Scratch, read_json};

/// The sample corpus as a file and a BPE of 3,000 tokens trained on it.
fn trained(s: &Scratch) -> (String, String) {
    let sample = s.write(
        "sample.jsonl",
        (util::sample_lines().join("\n") + "\n").as_bytes(),
    );
    let sample = sample.to_str().unwrap().to_owned();
    s.run(&[
        "tokenizer",
        "train",
        "--input",
        &sample,
        "--vocab-size",
        "3000",
        "--output",
        "bpe.json",
    ])
    .expect(0);
    (sample, s.path("bpe.json").to_str().unwrap().to_owned())
}

#[test]
fn a_bpe_trained_on_the_sample_and_its_fertility_by_language() {
    let s = Scratch::new();
    let (sample, bpe) = trained(&s);
    let (sample, bpe) = (sample.as_str(), bpe.as_str());
    let fertility = s
        .run(&[
            "tokenizer",
            "fertility",
            "--tokenizer",
            &format!("ours={bpe}"),
            "--input",
            sample,
            "--by",
            "language",
            "--json",
            "f.json",
        ])
        .expect(0);
    assert!(
        fertility.stdout().contains("tokens/word (ours)"),
        "{}",
        fertility.stdout()
    );
    let f = read_json(&s.path("f.json"));
    let es = &f["groups"]["language=es"];
    let pt = &f["groups"]["language=pt"];
    assert!(es["documents"].as_u64().unwrap() > 100 && pt["documents"].as_u64().unwrap() > 10);
    let per_word =
        |g: &serde_json::Value| g["tokens"][0].as_f64().unwrap() / g["words"].as_f64().unwrap();
    // A BPE trained mostly on Spanish costs Portuguese more tokens per word.
    assert!(per_word(es) < per_word(pt), "{f}");
}

#[test]
fn a_mix_by_source_and_the_shards_its_blend_names() {
    let s = Scratch::new();
    let (sample, bpe) = trained(&s);
    let (sample, bpe) = (sample.as_str(), bpe.as_str());
    // A mix by source at about half the tokens, no source repeated more than twice.
    s.write(
        "mix.toml",
        b"key = \"source\"\nbudget_tokens = 600_000\nmax_epochs = 2\ndata_prefix = \"data/s_\"\n",
    );
    let mix = s
        .run(&[
            "corpus",
            "mix",
            "mix.toml",
            "--input",
            sample,
            "--tokenizer",
            bpe,
            "--output",
            "mix",
        ])
        .expect(0);
    assert!(
        mix.stdout().contains("blend (Megatron-LM --data-path):"),
        "{}",
        mix.stdout()
    );
    let report = read_json(&s.path("mix/mix.json"));
    let groups = report["groups"].as_object().unwrap();
    let total: u64 = groups
        .values()
        .map(|g| g["mixed_tokens"].as_u64().unwrap())
        .sum();
    assert!((540_000..660_000).contains(&total), "{total}");
    for (name, g) in groups {
        assert!(g["epochs"].as_f64().unwrap() <= 2.0 + 1e-9, "{name}: {g}");
    }
    let first = std::fs::read(s.path("mix/documents/conha19.jsonl.zst")).unwrap();
    s.run(&[
        "corpus",
        "mix",
        "mix.toml",
        "--input",
        sample,
        "--tokenizer",
        bpe,
        "--output",
        "again",
    ])
    .expect(0);
    assert_eq!(
        first,
        std::fs::read(s.path("again/documents/conha19.jsonl.zst")).unwrap(),
        "deterministic"
    );

    // The blend names exactly the datasets `--per-file` writes.
    std::fs::create_dir_all(s.path("data")).unwrap();
    s.run(&[
        "tokenize",
        "--tokenizer",
        bpe,
        "--input",
        "mix/documents",
        "--per-file",
        "--output",
        "data/s_",
        "--progress",
        "none",
    ])
    .expect(0);
    let blend = report["blend"].as_str().unwrap();
    let parts: Vec<&str> = blend.split_whitespace().collect();
    let mut weights = BTreeMap::new();
    for pair in parts.chunks(2) {
        assert!(
            s.path(&format!("{}.bin", pair[1])).exists()
                && s.path(&format!("{}.idx", pair[1])).exists(),
            "{}",
            pair[1]
        );
        weights.insert(pair[1], pair[0].parse::<f64>().unwrap());
    }
    assert!((weights.values().sum::<f64>() - 1.0).abs() < 1e-3);
    let manifest = read_json(&s.path("data/s_conha19_text_document.manifest.json"));
    assert_eq!(manifest["documents"], groups["conha19"]["mixed_documents"]);
}
