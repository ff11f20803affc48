//! `latam bench ...`: throughput and memory, measured on this machine.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use latam_core::{CorpusStep, Document};
use latam_dedup::{DedupMinhashConfig, DedupParagraphConfig};
use latam_langid::{DetectLanguageConfig, Engine};
use latam_pipeline::{NoProgress, RunOptions};
use rayon::prelude::*;

use crate::Failure;
use crate::corpus::{default_workers, inputs_for, load_pipeline, read_documents};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Run a pipeline (default: the built-in one) into a temporary directory and report MB/s
    /// and documents/s, in all and per worker, CPU time, peak memory and time per step.
    ///
    /// Example: latam bench corpus --input ../shared/data/corpus/latam-open.jsonl.zst --workers 2
    Corpus(BenchArgs),
    /// Deduplication kernels over documents held in memory, on 1 and N threads: MinHash
    /// signatures (shingling included) and repeated-line detection (hashing and the set).
    ///
    /// Example: latam bench dedup --input ../shared/data/corpus/ --workers 2
    Dedup(DedupBenchArgs),
    /// Predictions of a classifier model over documents held in memory, on 1 and N threads.
    ///
    /// Example: latam bench classifier --model lang.lcm --input ../shared/data/corpus/latam-open.jsonl.zst
    Classifier(ClassifierBenchArgs),
    /// Language identification over documents held in memory, on 1 and N threads: latam's
    /// embedded identifier and whatlang, side by side on the same texts (`--max-chars`, as the
    /// `detect_language` step reads them; MB/s count the characters read).
    ///
    /// Example: latam bench langid --input ../shared/data/corpus/latam-open.jsonl.zst --workers 2
    Langid(LangidBenchArgs),
    /// Tokenization over documents held in memory, on 1 and N threads: latam's fast byte-level
    /// BPE and the `tokenizers` library side by side, after checking that they give the same
    /// ids on every document.
    ///
    /// Example: latam bench tokenize --tokenizer llama3.tokenizer.json --input ../shared/data/corpus/latam-open.jsonl.zst
    Tokenize(TokenizeBenchArgs),
    /// Prefill and decode speed of a model on this CPU (tokens/s) and its time to first token,
    /// as llama.cpp's `llama-bench` reports them.
    ///
    /// Example: latam bench generate --model SmolLM2-135M-Instruct.Q4_1.gguf --threads 1
    Generate(Box<crate::bench_model::GenerateBenchArgs>),
    /// Throughput of an OpenAI-compatible server (`latam serve`, llama.cpp's, vLLM…) under 1, 4
    /// and 16 concurrent streamed completions: tokens/s in all, time to first token, tokens/s
    /// per stream.
    ///
    /// Example: latam bench serve --endpoint http://127.0.0.1:8080/v1 --concurrency 1,4,16
    Serve(crate::bench_model::ServeBenchArgs),
}

#[derive(Args)]
pub(crate) struct TokenizeBenchArgs {
    /// A tokenizer.json (or hf://owner/name).
    #[arg(long)]
    tokenizer: String,
    #[command(flatten)]
    measure: Measure,
}

#[derive(Args)]
pub(crate) struct LangidBenchArgs {
    /// Characters read from the start of each document (0: all of it).
    #[arg(long, default_value_t = 0)]
    max_chars: usize,
    #[command(flatten)]
    measure: Measure,
}

#[derive(Args)]
pub(crate) struct ClassifierBenchArgs {
    /// The model file.
    #[arg(short, long)]
    model: PathBuf,
    #[command(flatten)]
    measure: Measure,
}

/// What every benchmark reads, on how many threads, and how it reports.
#[derive(Args)]
pub(crate) struct Measure {
    /// Input file, directory or glob (repeatable); default: the bundled sample corpus.
    #[arg(short, long = "input", value_name = "PATH")]
    inputs: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(short, long)]
    workers: Option<usize>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct DedupBenchArgs {
    #[command(flatten)]
    measure: Measure,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Pipeline file (TOML); default: the built-in pipeline.
    pipeline: Option<PathBuf>,
    #[command(flatten)]
    measure: Measure,
}

pub(crate) fn run(command: BenchCommand) -> Result<u8, Failure> {
    match command {
        BenchCommand::Corpus(args) => corpus(&args),
        BenchCommand::Dedup(args) => dedup(&args),
        BenchCommand::Classifier(args) => classifier(&args),
        BenchCommand::Langid(args) => langid(&args),
        BenchCommand::Tokenize(args) => tokenize(&args),
        BenchCommand::Generate(args) => crate::bench_model::generate(&args),
        BenchCommand::Serve(args) => crate::bench_model::serve(&args),
    }
}

fn tokenize(args: &TokenizeBenchArgs) -> Result<u8, Failure> {
    let tokenizer =
        crate::tokenize::load_tokenizer(Some(&args.tokenizer), latam_tokenize::Engine::Auto)?;
    if tokenizer.engine() != latam_tokenize::Engine::Fast {
        return Err(Failure::usage(anyhow::anyhow!(
            "this tokenizer runs on `tokenizers` only (not a byte-level BPE): nothing to compare"
        )));
    }
    let docs = read_documents(&args.measure.inputs, |_| true, usize::MAX)?;
    let mb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
    // One pass: each document's ids from both encoders, compared and counted.
    let (differing, tokens) = docs
        .par_iter()
        .map(|d| {
            let ids = tokenizer.encode(&d.text);
            (usize::from(ids != tokenizer.encode_hf(&d.text)), ids.len())
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let workers = args.measure.workers.unwrap_or_else(default_workers);
    let mut figures = serde_json::json!({
        "documents": docs.len(), "text_mb": mb, "tokens": tokens,
        "documents_with_different_ids": differing,
    });
    per_threads(&mut figures, "latam_fast_bpe", &docs, workers, |d| {
        std::hint::black_box(tokenizer.encode(&d.text));
    })?;
    per_threads(&mut figures, "hf_tokenizers", &docs, workers, |d| {
        std::hint::black_box(tokenizer.encode_hf(&d.text));
    })?;
    print_figures(&figures, args.measure.json, docs.len(), mb);
    if !args.measure.json {
        println!("tokens {tokens}; documents whose ids differ: {differing}");
    }
    Ok(u8::from(differing > 0))
}

fn langid(args: &LangidBenchArgs) -> Result<u8, Failure> {
    let mut docs = read_documents(&args.measure.inputs, |_| true, usize::MAX)?;
    if args.max_chars > 0 {
        for d in &mut docs {
            if let Some((end, _)) = d.text.char_indices().nth(args.max_chars) {
                d.text.truncate(end);
            }
        }
    }
    let mb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
    let workers = args.measure.workers.unwrap_or_else(default_workers);
    let mut figures = serde_json::json!({ "documents": docs.len(), "text_mb": mb });
    for (name, engine) in [("latam", Engine::Latam), ("whatlang", Engine::Whatlang)] {
        let detector = DetectLanguageConfig {
            engine,
            max_chars: 0,
            ..DetectLanguageConfig::default()
        }
        .build()
        .map_err(Failure::usage)?;
        per_threads(&mut figures, name, &docs, workers, |d| {
            std::hint::black_box(detector.detect(&d.text));
        })?;
    }
    print_figures(&figures, args.measure.json, docs.len(), mb);
    Ok(0)
}

fn classifier(args: &ClassifierBenchArgs) -> Result<u8, Failure> {
    let model = crate::classifier::load_model(&args.model)?;
    let docs = read_documents(&args.measure.inputs, |_| true, usize::MAX)?;
    let mb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
    let workers = args.measure.workers.unwrap_or_else(default_workers);
    let mut figures = serde_json::json!({ "documents": docs.len(), "text_mb": mb });
    per_threads(&mut figures, "predict", &docs, workers, |d| {
        std::hint::black_box(model.predict(&d.text, 1));
    })?;
    print_figures(&figures, args.measure.json, docs.len(), mb);
    Ok(0)
}

/// Prints a benchmark's figures: one JSON object, or a line per rate.
fn print_figures(figures: &serde_json::Value, json: bool, docs: usize, mb: f64) {
    if json {
        println!("{figures}");
    } else {
        println!("documents {docs}, {mb:.1} MB of text");
        for (key, value) in figures.as_object().expect("an object") {
            if let Some(v) = value.as_f64().filter(|_| key.contains("per_s")) {
                println!("{key:<42} {v:>8.1}");
            }
        }
    }
}

/// Runs `f` over every document on 1 and on `workers` threads, and records MB/s of each as
/// `<name>_mb_per_s_<threads>_threads`.
fn per_threads(
    figures: &mut serde_json::Value,
    name: &str,
    docs: &[Document],
    workers: usize,
    f: impl Fn(&Document) + Sync,
) -> Result<(), Failure> {
    let mb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
    for threads in [1, workers] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let secs = best_of_three(|| pool.install(|| docs.par_iter().for_each(&f)));
        figures[format!("{name}_mb_per_s_{threads}_threads")] = serde_json::json!(mb / secs);
    }
    Ok(())
}

/// Best of three wall times of `f`, in seconds.
fn best_of_three(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn dedup(args: &DedupBenchArgs) -> Result<u8, Failure> {
    let docs = read_documents(&args.measure.inputs, |_| true, usize::MAX)?;
    let mb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
    let workers = args.measure.workers.unwrap_or_else(default_workers);
    let hasher = DedupMinhashConfig::default().hasher();
    let mut figures = serde_json::json!({ "documents": docs.len(), "text_mb": mb });
    per_threads(&mut figures, "minhash_signatures", &docs, workers, |d| {
        std::hint::black_box(hasher.signature(&d.text));
    })?;
    let secs = best_of_three(|| {
        let mut step = DedupParagraphConfig::default()
            .build()
            .expect("default settings");
        for (i, d) in docs.iter().enumerate() {
            let sketch = step.sketch(d);
            step.observe(i as u64, &d.id, sketch).expect("in memory");
        }
        std::hint::black_box(step.summary());
    });
    figures["paragraph_dedup_mb_per_s_1_thread"] = serde_json::json!(mb / secs);
    print_figures(&figures, args.measure.json, docs.len(), mb);
    Ok(0)
}

fn corpus(args: &BenchArgs) -> Result<u8, Failure> {
    let config = load_pipeline(args.pipeline.as_ref())?;
    let inputs = inputs_for(&args.measure.inputs, &config)?;
    let workers = args.measure.workers.unwrap_or_else(default_workers);
    let dir = tempfile::tempdir()?;
    let options = RunOptions {
        workers,
        command: std::env::args().collect(),
        ..RunOptions::new(inputs, dir.path().join("out"))
    };
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let summary = latam_pipeline::run(&config, &options, &NoProgress)?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let s = &summary.stats;
    let mb = s.bytes.read as f64 / 1e6;
    let figures = serde_json::json!({
        "documents": s.documents.read,
        "text_mb": mb,
        "workers": workers,
        "wall_s": wall,
        "cpu_s": cpu,
        "mb_per_s": mb / wall,
        "mb_per_s_per_worker": mb / wall / workers as f64,
        "docs_per_s": s.documents.read as f64 / wall,
        "docs_per_s_per_worker": s.documents.read as f64 / wall / workers as f64,
        "mb_per_cpu_s": cpu.map(|c| mb / c),
        "peak_rss_mb": peak_rss_mb(),
        "scan_s": summary.scans,
        "steps": s.steps.iter().map(|st| serde_json::json!({
            "name": st.name, "in": st.input, "time_s": st.time_s,
            "mb_per_s": if st.time_s > 0.0 { Some(mb / st.time_s) } else { None },
        })).collect::<Vec<_>>(),
    });
    if args.measure.json {
        println!("{figures}");
        return Ok(0);
    }
    println!("documents        {}", s.documents.read);
    println!("text             {mb:.1} MB");
    println!("workers          {workers}");
    println!("wall time        {wall:.2} s");
    if let Some(cpu) = cpu {
        println!(
            "cpu time         {cpu:.2} s  ({:.1} MB per cpu-second)",
            mb / cpu
        );
    }
    println!(
        "throughput       {:.1} MB/s, {:.0} docs/s",
        mb / wall,
        s.documents.read as f64 / wall
    );
    println!(
        "per worker       {:.1} MB/s, {:.0} docs/s",
        mb / wall / workers as f64,
        s.documents.read as f64 / wall / workers as f64
    );
    if let Some(rss) = peak_rss_mb() {
        println!("peak memory      {rss:.0} MB");
    }
    for (step, secs) in &summary.scans {
        println!("scan for {step:<10} {secs:.2} s wall (the steps before it, and its sketches)");
    }
    println!("\nworker time per step (MB of input text per worker-second):");
    for st in &s.steps {
        println!(
            "  {:<18} {:>7.2} s  {:>8.1} MB/s",
            st.name,
            st.time_s,
            if st.time_s > 0.0 {
                mb / st.time_s
            } else {
                f64::INFINITY
            }
        );
    }
    Ok(0)
}

/// User + system CPU seconds of this process (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident memory of this process in MB (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
