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

#[test]
fn a_budget_larger_than_the_data_is_reported_not_hidden() {
    let s = Scratch::new();
    let (sample, bpe) = trained(&s);
    let mix = |toml: &str, out: &str| {
        s.write("mix.toml", toml.as_bytes());
        s.run(&[
            "corpus",
            "mix",
            "mix.toml",
            "--input",
            &sample,
            "--tokenizer",
            &bpe,
            "--output",
            out,
        ])
        .expect(0)
    };
    // Far more than the sample holds, even at two passes over every source.
    let run = mix(
        "key = \"source\"\nbudget_tokens = 100_000_000\nmax_epochs = 2\n",
        "big",
    );
    let report = read_json(&s.path("big/mix.json"));
    let groups = report["groups"].as_object().unwrap();
    let available: u64 = groups.values().map(|g| g["tokens"].as_u64().unwrap()).sum();
    let delivered = report["delivered_tokens"].as_u64().unwrap();
    assert_eq!(report["requested_tokens"], 100_000_000);
    assert_eq!(delivered, 2 * available, "{report}");
    assert_eq!(report["shortfall_tokens"], 100_000_000 - delivered);
    let warning = run.stderr();
    assert!(
        warning.contains(&format!(
            "warning: the mix holds {delivered} tokens of the 100000000 requested ({} short)",
            100_000_000 - delivered
        )) && warning.contains("max_epochs = 2"),
        "{warning}"
    );
    for (name, g) in groups {
        // An even share of the budget each, of which two passes give what the source holds.
        assert_eq!(g["share_tokens"], 25_000_000, "{name}");
        let mixed = g["mixed_tokens"].as_u64().unwrap();
        assert_eq!(g["shortfall_tokens"], 25_000_000 - mixed, "{name}");
        assert!(
            warning.contains(&format!("  {name}: {mixed} of its 25000000-token share")),
            "{name}: {warning}"
        );
    }

    // Weights naming a source the data lacks: its share goes to the others, and it is said.
    let run = mix(
        "key = \"source\"\nbudget_tokens = 10_000\n[weights]\nconha19 = 1\nwikipedia = 1\n",
        "weighted",
    );
    let report = read_json(&s.path("weighted/mix.json"));
    assert_eq!(report["shortfall_tokens"], 0);
    let missing = &report["groups"]["wikipedia"];
    assert_eq!(missing["documents"], 0);
    assert_eq!(missing["shortfall_tokens"], 5_000);
    assert_eq!(report["groups"]["conha19"]["target_tokens"], 10_000);
    assert!(
        run.stderr()
            .contains("wikipedia: no documents (share 5000)"),
        "{}",
        run.stderr()
    );

    // A budget the data can fill: no warning.
    let run = mix("key = \"source\"\nbudget_tokens = 10_000\n", "small");
    assert!(!run.stderr().contains("warning"), "{}", run.stderr());
    assert_eq!(read_json(&s.path("small/mix.json"))["shortfall_tokens"], 0);
}

/// The address of a port on 127.0.0.1 that nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn the_default_tokenizer_out_of_reach_is_named_with_what_to_give_instead() {
    // No --tokenizer: Llama 3.1's from the Hub, which here is a closed port (no network).
    let s = Scratch::new();
    s.write("docs.jsonl", b"{\"id\": \"a\", \"text\": \"hola\"}\n");
    s.write("mix.toml", b"key = \"language\"\nbudget_tokens = 1000\n");
    let hub = closed_port();
    let tokenize = ["tokenize", "--input", "docs.jsonl", "--output", "tok"];
    let mix = [
        "corpus",
        "mix",
        "mix.toml",
        "--input",
        "docs.jsonl",
        "--output",
        "mix",
    ];
    for args in [&tokenize[..], &mix[..]] {
        let output = s
            .command(args)
            .env("HF_ENDPOINT", &hub)
            .env("HF_HOME", s.path("hf-cache"))
            .env_remove("HF_TOKEN")
            .output()
            .unwrap();
        let run = util::Run(output);
        assert_eq!(run.code(), 2, "{}", run.stderr());
        let stderr = run.stderr();
        for part in [
            "no --tokenizer given: the default, hf://meta-llama/Llama-3.1-8B, could not be fetched",
            &format!("cannot download tokenizer.json from {hub}"),
            "Instead: --tokenizer FILE",
            "HF_TOKEN is not set",
            "HF_ENDPOINT",
        ] {
            assert!(stderr.contains(part), "{args:?}: {part:?} not in\n{stderr}");
        }
    }
}
