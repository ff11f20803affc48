//! Deduplication at corpus scale: near-duplicates (one process and staged tasks), repeated
//! lines, and the evaluation, on documents of the bundled sample and near-copies of them.

mod util;

use serde_json::Value;
use util::{Scratch, assert_invariant, read_json, read_parts, read_rejected, sample_lines};

/// Sample documents of 150 words or more.
fn long_docs() -> Vec<Value> {
    sample_lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|d| d["text"].as_str().unwrap().split_whitespace().count() >= 150)
        .collect()
}

/// A near-copy: one word in 150 replaced (exact Jaccard about 0.94), under a new id.
fn near_copy(doc: &Value, id: &str) -> Value {
    let words: Vec<&str> = doc["text"].as_str().unwrap().split(' ').collect();
    let text: Vec<&str> = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i % 150 == 149 { "palabra" } else { *w })
        .collect();
    let mut copy = doc.clone();
    copy["id"] = Value::from(id);
    copy["text"] = Value::from(text.join(" "));
    copy
}

fn jsonl(docs: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for d in docs {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// Three input files: 40 originals, and near-copies of originals 0..10 (in the second file)
/// and 10..15 (in the third, twice each).
fn corpus(s: &Scratch) {
    let docs = long_docs();
    assert!(docs.len() >= 40, "{} long documents", docs.len());
    let first: Vec<Value> = docs[..20].to_vec();
    let mut second: Vec<Value> = docs[20..40].to_vec();
    second.extend((0..10).map(|i| near_copy(&docs[i], &format!("copy-{i}"))));
    let third: Vec<Value> = (10..15)
        .flat_map(|i| {
            [
                near_copy(&docs[i], &format!("copy-{i}")),
                near_copy(&docs[i], &format!("copy-{i}-b")),
            ]
        })
        .collect();
    s.write("in/a.jsonl", &jsonl(&first));
    s.write("in/b.jsonl", &jsonl(&second));
    s.write("in/c.jsonl", &jsonl(&third));
    s.write("minhash.toml", b"[[steps]]\ntype = \"dedup_minhash\"\n");
}

/// `dedup_minhash` over the test corpus in one process.
fn one_process(s: &Scratch, output: &str) {
    s.run(&[
        "corpus",
        "run",
        "minhash.toml",
        "--input",
        "in/",
        "--output",
        output,
    ])
    .expect(0);
}

fn sorted(mut docs: Vec<Value>) -> Vec<String> {
    let mut lines: Vec<String> = docs.drain(..).map(|d| d.to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn near_duplicates_are_removed_naming_the_document_kept() {
    let s = Scratch::new();
    corpus(&s);
    one_process(&s, "out");
    let out = s.path("out");
    assert_invariant(&out);
    let docs = long_docs();
    let rejected = read_rejected(&out);
    assert_eq!(rejected.len(), 20, "10 + 2 × 5 near-copies");
    for r in &rejected {
        let id = r["id"].as_str().unwrap();
        let n: usize = id
            .trim_start_matches("copy-")
            .trim_end_matches("-b")
            .parse()
            .unwrap();
        assert_eq!(r["metadata"]["duplicate_of"], docs[n]["id"], "{id}");
        assert_eq!(r["metadata"]["rejected"]["reason"], "near_duplicate");
        let similarity = r["metadata"]["dup_similarity"].as_f64().unwrap();
        assert!((0.8..1.0).contains(&similarity), "{id}: {similarity}");
    }
    let kept = read_parts(&out.join("documents"));
    assert_eq!(kept.len(), 40);
    for (i, d) in kept.iter().enumerate() {
        let size = match i {
            0..10 => 2,
            10..15 => 3,
            _ => 1,
        };
        assert_eq!(d["metadata"]["dup_cluster_size"], size, "{}", d["id"]);
    }
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["seeds"]["dedup_minhash"], 1);
}

/// Runs stage `stage` of task `task` of 2 over the test corpus.
fn task(s: &Scratch, stage: &str, task: &str, extra: &[&str]) -> util::Run {
    let args = [
        "dedup",
        "minhash",
        stage,
        "minhash.toml",
        "--input",
        "in/",
        "--work",
        "w",
        "--task",
        task,
        "--tasks",
        "2",
    ];
    s.run(&[&args[..], extra].concat())
}

#[test]
fn staged_tasks_give_the_one_process_result() {
    let s = Scratch::new();
    corpus(&s);
    one_process(&s, "whole");
    task(&s, "signatures", "0", &[]).expect(0);
    task(&s, "signatures", "1", &[]).expect(0);
    let again = task(&s, "signatures", "1", &[]).expect(0);
    assert!(
        again.stderr().contains("already done"),
        "{}",
        again.stderr()
    );

    let early = task(&s, "filter", "0", &["--output", "x"]);
    assert_eq!(early.code(), 2);
    assert!(
        early.stderr().contains("has no clusters"),
        "{}",
        early.stderr()
    );
    let missing = s.run(&["dedup", "minhash", "cluster", "--work", "w"]);
    assert_eq!(
        missing.code(),
        2,
        "an earlier stage to run first: a usage error"
    );
    assert!(
        missing.stderr().contains("buckets stage"),
        "{}",
        missing.stderr()
    );

    // Bands split over two bucket tasks.
    let low: Vec<String> = (0..7).map(|b| b.to_string()).collect();
    let mut args = vec!["dedup", "minhash", "buckets", "--work", "w"];
    for b in &low {
        args.extend(["--band", b.as_str()]);
    }
    s.run(&args).expect(0);
    s.run(&["dedup", "minhash", "buckets", "--work", "w"])
        .expect(0);
    let clusters = s
        .run(&["dedup", "minhash", "cluster", "--work", "w"])
        .expect(0);
    let summary: Value = serde_json::from_str(&clusters.stdout()).unwrap();
    assert_eq!(summary["to_remove"], 20);

    task(&s, "filter", "0", &["--output", "staged/0"]).expect(0);
    task(&s, "filter", "1", &["--output", "staged/1"]).expect(0);
    let staged = |what: fn(&std::path::Path) -> Vec<Value>, sub: &str| {
        [
            what(&s.path(&format!("staged/0{sub}"))),
            what(&s.path(&format!("staged/1{sub}"))),
        ]
        .concat()
    };
    assert_eq!(
        read_parts(&s.path("whole/documents")),
        staged(read_parts, "/documents"),
        "kept documents, in order"
    );
    assert_eq!(
        sorted(read_rejected(&s.path("whole"))),
        sorted(staged(read_rejected, ""))
    );
}

/// Signature tasks `0..tasks` over `input`, all started at once on the work directory `work`.
fn signatures_at_once(s: &Scratch, input: &str, work: &str, tasks: usize) -> Vec<util::Run> {
    let n = tasks.to_string();
    let children: Vec<_> = (0..tasks)
        .map(|t| {
            let t = t.to_string();
            s.command(&[
                "dedup",
                "minhash",
                "signatures",
                "minhash.toml",
                "--input",
                input,
                "--work",
                work,
                "--task",
                &t,
                "--tasks",
                &n,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| util::Run(c.wait_with_output().unwrap()))
        .collect()
}

/// The clusters of a staged run whose signatures are in `work`.
fn clusters_of(s: &Scratch, work: &str) -> (Value, Vec<Value>) {
    s.run(&["dedup", "minhash", "buckets", "--work", work])
        .expect(0);
    let summary = s
        .run(&["dedup", "minhash", "cluster", "--work", work])
        .expect(0)
        .stdout();
    let members = util::read_jsonl(&s.path(&format!("{work}/clusters.jsonl")));
    (serde_json::from_str(&summary).unwrap(), members)
}

#[test]
fn tasks_started_together_on_a_new_work_directory_all_succeed_and_agree() {
    let s = Scratch::new();
    corpus(&s);
    for round in 0..3 {
        let work = format!("w{round}");
        for run in signatures_at_once(&s, "in/", &work, 4) {
            run.expect(0);
        }
        let names: Vec<std::path::PathBuf> = std::fs::read_dir(s.path(&work))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.extension().is_none_or(|e| e != "tmp")),
            "{names:?}"
        );
        let (summary, _) = clusters_of(&s, &work);
        assert_eq!(summary["to_remove"], 20, "round {round}");
    }
    // A task started with other settings on the same directory is refused, clearly.
    s.write(
        "other.toml",
        b"[[steps]]\ntype = \"dedup_minhash\"\nbands = 10\n",
    );
    let run = s.run(&[
        "dedup",
        "minhash",
        "signatures",
        "other.toml",
        "--input",
        "in/",
        "--work",
        "w0",
        "--task",
        "0",
        "--tasks",
        "4",
    ]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("other settings"), "{}", run.stderr());
}

#[test]
fn tasks_share_one_big_file_by_records() {
    let s = Scratch::new();
    corpus(&s);
    // One file holding the whole corpus: eight tasks each sign a part of it.
    let mut all = Vec::new();
    for name in ["a", "b", "c"] {
        all.extend(std::fs::read(s.path(&format!("in/{name}.jsonl"))).unwrap());
    }
    s.write("one/all.jsonl", &all);
    let runs = signatures_at_once(&s, "one/all.jsonl", "w8", 8);
    let mut signed = 0;
    for run in runs {
        let stderr = run.expect(0).stderr();
        let n: u64 = stderr
            .split(" signatures")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!((5..=12).contains(&n), "each task signs a part: {stderr}");
        signed += n;
    }
    assert_eq!(signed, 60, "every document once (20 + 30 + 10)");
    let (summary, _) = clusters_of(&s, "w8");
    assert_eq!(summary["to_remove"], 20);
}

#[test]
fn repeated_lines_are_removed_from_later_documents() {
    let s = Scratch::new();
    let boiler = "Este documento se distribuye bajo licencia Creative Commons.";
    let docs = long_docs();
    let text = |i: usize| docs[i]["text"].as_str().unwrap().to_owned();
    let input = [
        serde_json::json!({"id": "a", "text": format!("{}\n{boiler}", text(0))}),
        serde_json::json!({"id": "b", "text": format!("{boiler}\n{}", text(1))}),
        serde_json::json!({"id": "c", "text": format!("Nota breve.\n{boiler}")}),
    ];
    s.write("in.jsonl", &jsonl(&input));
    s.write("p.toml", b"[[steps]]\ntype = \"dedup_paragraph\"\n");
    s.run(&[
        "corpus", "run", "p.toml", "--input", "in.jsonl", "--output", "out",
    ])
    .expect(0);
    let kept = read_parts(&s.path("out/documents"));
    assert_eq!(kept[0]["text"], input[0]["text"]);
    assert_eq!(kept[1]["text"].as_str().unwrap(), text(1));
    assert_eq!(kept[1]["metadata"]["dup_lines_removed"], 1);
    let rejected = read_rejected(&s.path("out"));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["id"], "c");
    assert_eq!(
        rejected[0]["metadata"]["rejected"]["reason"],
        "too_short_after_dedup"
    );
    let plan = read_json(&s.path("out/.latam/steps/dedup_paragraph/paragraphs.json"));
    assert_eq!(plan["lines_removed"], 2);
}

#[test]
fn the_evaluation_meets_its_targets_on_the_sample() {
    let s = Scratch::new();
    let run = s
        .run(&["dedup", "eval", "--docs", "60", "--json", "eval.json"])
        .expect(0);
    assert!(run.stdout().contains("| 0.8 |"), "{}", run.stdout());
    let report = read_json(&s.path("eval.json"));
    let at = report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["jaccard_at_least"] == 0.8)
        .unwrap()
        .clone();
    assert!(at["true_pairs"].as_u64().unwrap() > 500, "{at}");
    assert!(at["recall"].as_f64().unwrap() >= 0.9, "{at}");
    assert!(at["removed_precision"].as_f64().unwrap() >= 0.9, "{at}");
}

#[test]
fn the_institutional_example_runs() {
    let s = Scratch::new();
    corpus(&s);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/institutional/pipeline.toml"
    );
    s.run(&[
        "corpus", "run", example, "--input", "in/", "--output", "out",
    ])
    .expect(0);
    assert_invariant(&s.path("out"));
    let stats = read_json(&s.path("out/stats.json"));
    let names: Vec<&str> = stats["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "normalize",
            "filter_length",
            "dedup_exact",
            "dedup_minhash",
            "dedup_paragraph"
        ]
    );
    // The two copies of each of originals 10..15 are the same text: dedup_exact takes one.
    assert_eq!(stats["steps"][2]["dropped"], 5);
    assert_eq!(stats["steps"][3]["dropped"], 15);
    assert!(
        stats["run"]["scan_time_s"]["dedup_paragraph"]
            .as_f64()
            .is_some()
    );
}
