//! One evaluation run: load the task's rows, select (shuffle, shard, cap), ask the model (and
//! the judge) with a bounded number of requests in flight, score, and write `rows.jsonl`,
//! `summary.json` and `run.json` into the output directory. Every request is cached, so a run
//! that stops continues where it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::EvalError;
use crate::cache::Cache;
use crate::client::{ChatAnswer, Client, EndpointConfig, Usage, chat_answer};
use crate::judge::{self, Verdict, VerdictError};
use crate::metrics::{self, Group};
use latam_benchmarks::{
    self as tasks, DataSource, Example, Item, Skipped, TaskKind, TaskSpec, read_rows,
};

/// The default system prompt of open questions (latamgpt-benchmark's instructions).
pub const DEFAULT_SYSTEM_PROMPT: &str = "Answer in Spanish with a focus on factual accuracy. If you do not know the answer, say so explicitly and do not invent details. Keep the answer brief and useful.";

/// The default prompt of multiple-choice questions answered by generation.
pub const DEFAULT_MC_INSTRUCTION: &str = "Responde solo con la letra de la opción correcta. / Responda apenas com a letra da alternativa correta.";

/// The task of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    /// choclo, trueque, mc, perplexity.
    Builtin(TaskKind),
    /// A task declared in TOML.
    Spec(Box<TaskSpec>),
}

/// How multiple-choice questions are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McMode {
    /// The model writes an answer; the letter is extracted strictly and flexibly.
    Generate,
    /// The log-likelihood of each choice's letter after the question (`/v1/completions` with
    /// `echo` and `logprobs`).
    Loglik,
    /// Both.
    Both,
}

/// The judge of open answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeConfig {
    /// Its endpoint.
    pub endpoint: EndpointConfig,
    /// Its model.
    pub model: String,
    /// Its instructions.
    pub prompt: String,
    /// Attempts when its reply cannot be parsed.
    pub attempts: u32,
}

/// The Batch API: answers (and verdicts) are submitted as batches, polled and collected into
/// the cache before the run scores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Seconds between status checks.
    pub poll_s: f64,
    /// `completion_window` of the batches.
    pub completion_window: String,
}

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The task.
    pub task: Task,
    /// Files, directories or `hf://owner/name[/file]`.
    pub data: Vec<String>,
    /// Split of a Hub dataset (data files whose path names it).
    pub split: String,
    /// The model's name at the endpoint.
    pub model: String,
    /// The endpoint.
    pub endpoint: EndpointConfig,
    /// The judge, for open questions.
    pub judge: Option<JudgeConfig>,
    /// Output directory.
    pub output: PathBuf,
    /// The SQLite cache (default: `<output>/cache.sqlite`).
    pub cache: Option<PathBuf>,
    /// At most this many examples (after shuffling and sharding).
    pub max_samples: Option<usize>,
    /// Shuffle the examples with `seed` first.
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Contiguous shards of the examples, and which one this run takes.
    pub num_shards: usize,
    /// 0-based.
    pub shard_index: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// `max_tokens` of answers.
    pub max_tokens: u32,
    /// `temperature` of answers.
    pub temperature: f64,
    /// System prompt of open questions.
    pub system_prompt: String,
    /// User prompt template (`{question}`, `{choices}`, `{text}`); default per task.
    pub prompt_template: Option<String>,
    /// Multiple choice by generation, log-likelihood or both.
    pub mc_mode: McMode,
    /// Longest piece of text sent in one perplexity request (characters).
    pub perplexity_chars: usize,
    /// Use the Batch API for chat requests.
    pub batch: Option<BatchConfig>,
}

impl RunConfig {
    /// A run with the defaults of `latam eval run`.
    pub fn new(
        task: Task,
        data: Vec<String>,
        model: &str,
        endpoint: EndpointConfig,
        output: PathBuf,
    ) -> Self {
        Self {
            task,
            data,
            split: "train".into(),
            model: model.to_owned(),
            endpoint,
            judge: None,
            output,
            cache: None,
            max_samples: None,
            shuffle: false,
            seed: 7,
            num_shards: 1,
            shard_index: 0,
            concurrency: 8,
            max_tokens: 256,
            temperature: 0.0,
            system_prompt: DEFAULT_SYSTEM_PROMPT.into(),
            prompt_template: None,
            mc_mode: McMode::Generate,
            perplexity_chars: 4000,
            batch: None,
        }
    }

    /// The task's name in outputs.
    pub fn task_name(&self) -> String {
        match &self.task {
            Task::Builtin(kind) => serde_json::to_value(kind)
                .expect("a name")
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Task::Spec(spec) => spec.name.clone(),
        }
    }

    fn multi_label(&self) -> Vec<&str> {
        match &self.task {
            Task::Builtin(TaskKind::Trueque) => vec!["topic"],
            Task::Builtin(_) => Vec::new(),
            Task::Spec(spec) => spec.multi_label.iter().map(String::as_str).collect(),
        }
    }
}

/// One scored row, as written to `rows.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowResult {
    /// The example's id.
    pub id: String,
    /// Breakdown keys.
    pub metadata: Map<String, Value>,
    /// What was asked.
    pub item: Item,
    /// The model's answer (open and generated multiple choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Letters chosen: `loglik`, `strict`, `flexible` (multiple choice).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub chosen: BTreeMap<String, Option<String>>,
    /// The judge's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<Verdict>,
    /// Scores.
    pub metrics: BTreeMap<String, f64>,
    /// Tokens of the answers.
    pub usage: Usage,
    /// Tokens of the judge.
    pub judge_usage: Usage,
    /// What failed (the row then has no metrics and is retried by the next run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Task name.
    pub task: String,
    /// Model name.
    pub model: String,
    /// Rows scored (errors excluded).
    pub num_examples: usize,
    /// Summary of every metric.
    pub metrics: BTreeMap<String, f64>,
    /// Answer tokens.
    pub usage: Usage,
    /// Judge tokens.
    pub judge_usage: Usage,
    /// By every metadata key, then value.
    pub breakdowns: BTreeMap<String, BTreeMap<String, Group>>,
    /// Rows whose requests failed.
    pub errors: usize,
    /// Rows of the files that could not become examples.
    pub skipped: usize,
}

/// Progress callback: rows done, rows in all.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Runs the evaluation and writes its outputs.
pub fn run(config: &RunConfig, progress: Progress<'_>) -> Result<Summary, EvalError> {
    let started = SystemTime::now();
    std::fs::create_dir_all(&config.output).map_err(|e| EvalError::Output {
        path: config.output.clone(),
        message: e.to_string(),
    })?;
    let (examples, files, skipped) = load(config)?;
    let examples = select(examples, config)?;
    let cache = Cache::open(
        &config
            .cache
            .clone()
            .unwrap_or_else(|| config.output.join("cache.sqlite")),
    )?;
    let breaker = Breaker::default();
    let client = |endpoint| Client::new(endpoint).stopped_by(Arc::clone(&breaker.tripped));
    let ctx = Context {
        config,
        client: client(&config.endpoint),
        judge: config.judge.as_ref().map(|j| (client(&j.endpoint), j)),
        cache,
    };
    // A server that is not there is found once, not by every row after its retries.
    if !examples.is_empty() {
        ctx.client.check()?;
        if let Some((judge, _)) = ctx
            .judge
            .as_ref()
            .filter(|(j, _)| j.base() != ctx.client.base())
        {
            judge.check()?;
        }
    }
    // An endpoint without prompt log-probabilities is found before the first row, not per row.
    let needs_logprobs = examples.iter().any(|e| match e.item {
        Item::Text { .. } => true,
        Item::Choice { .. } => config.mc_mode != McMode::Generate,
        Item::Open { .. } => false,
    });
    if needs_logprobs {
        ctx.client.prompt_logprobs(&config.model, "Hola, mundo.")?;
    }
    if let Some(batch) = &config.batch {
        crate::batch::prefill(&ctx, &examples, batch)?;
    }
    let results: Vec<Mutex<Option<RowResult>>> =
        examples.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..config.concurrency.clamp(1, 256).min(examples.len().max(1)) {
            scope.spawn(|| {
                while !breaker.tripped.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(example) = examples.get(i) else {
                        break;
                    };
                    let (row, error) = ctx.evaluate(example);
                    breaker.count(error);
                    *results[i].lock().expect("row lock") = Some(row);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, examples.len());
                }
            });
        }
    });
    // What was asked is in the cache: a corrected rerun continues from there.
    if let Some(error) = breaker.into_error() {
        return Err(error);
    }
    let rows: Vec<RowResult> = results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("row lock")
                .expect("every row evaluated")
        })
        .collect();
    let summary = summarize(config, &rows, skipped.rows.len());
    write_outputs(config, &rows, &summary, &files, &skipped, started)?;
    Ok(summary)
}

/// Rows in a row that could not reach a server before a run stops.
const UNREACHABLE_ROWS: usize = 3;

/// Stops a run at the first error that retrying cannot fix, or when [`UNREACHABLE_ROWS`] rows in
/// a row could not reach a server (each after its retries): no row starts after, and the
/// clients give up the retries of the rows in flight.
#[derive(Default)]
struct Breaker {
    unreachable_in_a_row: AtomicUsize,
    tripped: Arc<AtomicBool>,
    error: Mutex<Option<EvalError>>,
}

impl Breaker {
    /// Counts a row that succeeded (`None`) or failed.
    fn count(&self, error: Option<EvalError>) {
        let stop = match error {
            Some(EvalError::Transport { url, message }) => {
                let n = self.unreachable_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
                (n >= UNREACHABLE_ROWS).then(|| EvalError::Unreachable {
                    url,
                    message: format!("{n} rows in a row failed ({message})"),
                })
            }
            Some(error) if error.is_permanent() => Some(error),
            _ => {
                self.unreachable_in_a_row.store(0, Ordering::SeqCst);
                None
            }
        };
        if let Some(stop) = stop {
            self.error.lock().expect("breaker lock").get_or_insert(stop);
            self.tripped.store(true, Ordering::SeqCst);
        }
    }

    fn into_error(self) -> Option<EvalError> {
        self.error.into_inner().expect("breaker lock")
    }
}

/// A data file read for the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Where it was read.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Rows read.
    pub rows: usize,
}

fn load(config: &RunConfig) -> Result<(Vec<Example>, Vec<DataFile>, Skipped), EvalError> {
    let mut paths = Vec::new();
    for spec in &config.data {
        match DataSource::parse(spec) {
            DataSource::Local(list) => paths.extend(latam_benchmarks::data_files(&list)?),
            DataSource::Hub { id, file } => {
                paths.extend(crate::hub::files(&id, file.as_deref(), &config.split)?);
            }
        }
    }
    if paths.is_empty() {
        return Err(EvalError::Usage(
            "no data files: give --data FILE, a directory or hf://owner/name".into(),
        ));
    }
    let mut examples = Vec::new();
    let mut files = Vec::new();
    let mut skipped = Skipped::default();
    for path in paths {
        let rows = read_rows(&path)?;
        let sha256 = latam_io::sha256_file(&path).map_err(|e| EvalError::Data {
            path: path.clone(),
            message: e.to_string(),
        })?;
        examples.extend(match &config.task {
            Task::Builtin(kind) => tasks::examples(*kind, &path, &rows, &mut skipped),
            Task::Spec(spec) => tasks::spec_examples(spec, &path, &rows, &mut skipped),
        });
        files.push(DataFile {
            path,
            sha256,
            rows: rows.len(),
        });
    }
    Ok((examples, files, skipped))
}

/// Shuffle (seeded Fisher-Yates), contiguous shard, then the first `max_samples`.
fn select(mut examples: Vec<Example>, config: &RunConfig) -> Result<Vec<Example>, EvalError> {
    if config.num_shards == 0 || config.shard_index >= config.num_shards {
        return Err(EvalError::Usage(format!(
            "shard {} of {} does not exist: --shard-index must be below --num-shards",
            config.shard_index, config.num_shards
        )));
    }
    if config.shuffle {
        let mut rng = latam_core::Rng::new(config.seed);
        for i in (1..examples.len()).rev() {
            let j = rng.below(i + 1);
            examples.swap(i, j);
        }
    }
    let (n, k, i) = (examples.len(), config.num_shards, config.shard_index);
    let start = (n / k) * i + i.min(n % k);
    let end = start + n / k + usize::from(i < n % k);
    let mut examples: Vec<Example> = examples.drain(start..end).collect();
    if let Some(max) = config.max_samples {
        examples.truncate(max);
    }
    Ok(examples)
}

/// What every worker shares.
pub(crate) struct Context<'a> {
    pub(crate) config: &'a RunConfig,
    pub(crate) client: Client,
    pub(crate) judge: Option<(Client, &'a JudgeConfig)>,
    pub(crate) cache: Cache,
}

/// Letters of choices.
fn letter(i: usize) -> String {
    char::from(b'A' + i as u8).to_string()
}

fn fill(template: &str, question: &str, choices: &str, text: &str) -> String {
    template
        .replace("{question}", question)
        .replace("{choices}", choices)
        .replace("{text}", text)
}

impl Context<'_> {
    /// The chat request of an example (open, or multiple choice by generation).
    pub(crate) fn answer_request(&self, example: &Example) -> Option<Value> {
        let c = self.config;
        let (system, user) = match &example.item {
            Item::Open { question, .. } => {
                let user = c
                    .prompt_template
                    .as_deref()
                    .map_or_else(|| question.clone(), |t| fill(t, question, "", ""));
                (Some(c.system_prompt.as_str()), user)
            }
            Item::Choice {
                question, choices, ..
            } if c.mc_mode != McMode::Loglik => {
                let listed = choice_lines(choices);
                let user = c.prompt_template.as_deref().map_or_else(
                    || format!("{DEFAULT_MC_INSTRUCTION}\n\n{question}\n\n{listed}\n\nRespuesta:"),
                    |t| fill(t, question, &listed, ""),
                );
                (None, user)
            }
            _ => return None,
        };
        let mut messages = Vec::new();
        if let Some(system) = system.filter(|s| !s.is_empty()) {
            messages.push(json!({ "role": "system", "content": system }));
        }
        messages.push(json!({ "role": "user", "content": user }));
        Some(json!({
            "model": c.model, "messages": messages,
            "max_tokens": c.max_tokens, "temperature": c.temperature,
        }))
    }

    /// The judge's request for an open answer (`attempt` keys the cache of retries).
    pub(crate) fn judge_request(&self, example: &Example, answer: &str) -> Option<Value> {
        let (_, judge) = self.judge.as_ref()?;
        let Item::Open {
            question,
            reference,
        } = &example.item
        else {
            return None;
        };
        Some(json!({
            "model": judge.model,
            "messages": judge::messages(&judge.prompt, question, reference, answer),
            "max_tokens": 512, "temperature": 0.0,
        }))
    }

    /// A chat request through the cache.
    pub(crate) fn chat_cached(
        &self,
        client: &Client,
        kind: &str,
        body: &Value,
    ) -> Result<ChatAnswer, EvalError> {
        let key = Cache::key(kind, body);
        if let Some(value) = self.cache.get(&key)?
            && let Some(answer) = chat_answer(&value)
        {
            return Ok(answer);
        }
        let answer = client.chat(body)?;
        self.cache.put(
            &key,
            kind,
            &json!({
                "choices": [{ "message": { "role": "assistant", "content": answer.text } }],
                "usage": answer.usage,
            }),
        )?;
        Ok(answer)
    }

    fn logprobs_cached(&self, prompt: &str) -> Result<Vec<(usize, f64)>, EvalError> {
        let request = json!({ "model": self.config.model, "prompt": prompt });
        let key = Cache::key("logprobs", &request);
        if let Some(value) = self.cache.get(&key)?
            && let Ok(list) = serde_json::from_value(value)
        {
            return Ok(list);
        }
        let list = self.client.prompt_logprobs(&self.config.model, prompt)?;
        self.cache.put(
            &key,
            "logprobs",
            &serde_json::to_value(&list).expect("JSON"),
        )?;
        Ok(list)
    }

    /// The row of an example, and what failed.
    fn evaluate(&self, example: &Example) -> (RowResult, Option<EvalError>) {
        let mut row = RowResult {
            id: example.id.clone(),
            metadata: example.metadata.clone(),
            item: example.item.clone(),
            answer: None,
            chosen: BTreeMap::new(),
            judge: None,
            metrics: BTreeMap::new(),
            usage: Usage::new(),
            judge_usage: Usage::new(),
            error: None,
        };
        let error = self.score(example, &mut row).err();
        if let Some(e) = &error {
            row.metrics.clear();
            row.error = Some(e.to_string());
        }
        (row, error)
    }

    fn score(&self, example: &Example, row: &mut RowResult) -> Result<(), EvalError> {
        match &example.item {
            Item::Open { reference, .. } => self.score_open(example, reference, row),
            Item::Choice {
                question,
                choices,
                answer,
            } => self.score_choice(example, question, choices, *answer, row),
            Item::Text { text } => self.score_text(text, row),
        }
    }

    fn score_open(
        &self,
        example: &Example,
        reference: &str,
        row: &mut RowResult,
    ) -> Result<(), EvalError> {
        let request = self
            .answer_request(example)
            .expect("open questions are asked");
        let answer = self.chat_cached(&self.client, "answer", &request)?;
        row.metrics = metrics::open_answer_scores(reference, &answer.text);
        add(&mut row.usage, &answer.usage);
        if let (Some((client, judge)), Some(request)) =
            (&self.judge, self.judge_request(example, &answer.text))
        {
            let mut last = VerdictError::NoJson;
            for attempt in 0..judge.attempts.max(1) {
                let reply = self.chat_cached(client, &format!("judge#{attempt}"), &request)?;
                add(&mut row.judge_usage, &reply.usage);
                match judge::parse(&reply.text) {
                    Ok(verdict) => {
                        row.metrics.extend(verdict.metrics());
                        row.judge = Some(verdict);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if row.judge.is_none() {
                return Err(EvalError::Judge {
                    reason: last,
                    attempts: judge.attempts.max(1),
                });
            }
        }
        row.answer = Some(answer.text);
        Ok(())
    }

    fn score_choice(
        &self,
        example: &Example,
        question: &str,
        choices: &[String],
        answer: usize,
        row: &mut RowResult,
    ) -> Result<(), EvalError> {
        if self.config.mc_mode != McMode::Generate {
            let listed = choice_lines(choices);
            let context = self.config.prompt_template.as_deref().map_or_else(
                || format!("{question}\n\n{listed}\n\nRespuesta:"),
                |t| fill(t, question, &listed, ""),
            );
            let start = context.chars().count();
            let mut best = (f64::NEG_INFINITY, 0usize);
            for i in 0..choices.len() {
                let full = format!("{context} {}", letter(i));
                let score: f64 = self
                    .logprobs_cached(&full)?
                    .iter()
                    .filter(|(o, _)| *o >= start)
                    .map(|(_, l)| l)
                    .sum();
                if score > best.0 {
                    best = (score, i);
                }
            }
            row.chosen.insert("loglik".into(), Some(letter(best.1)));
            row.metrics.insert(
                "accuracy_loglik".into(),
                f64::from(u8::from(best.1 == answer)),
            );
        }
        if self.config.mc_mode != McMode::Loglik {
            let request = self.answer_request(example).expect("generation asked");
            let reply = self.chat_cached(&self.client, "answer", &request)?;
            add(&mut row.usage, &reply.usage);
            let strict = metrics::strict_letter(&reply.text, choices.len());
            let flexible = metrics::flexible_letter(&reply.text, choices);
            row.chosen.insert("strict".into(), strict.map(letter));
            row.chosen.insert("flexible".into(), flexible.map(letter));
            row.metrics.insert(
                "accuracy_strict".into(),
                f64::from(u8::from(strict == Some(answer))),
            );
            row.metrics.insert(
                "accuracy_flexible".into(),
                f64::from(u8::from(flexible == Some(answer))),
            );
            row.answer = Some(reply.text);
        }
        let headline = if self.config.mc_mode == McMode::Generate {
            "accuracy_flexible"
        } else {
            "accuracy_loglik"
        };
        row.metrics.insert("accuracy".into(), row.metrics[headline]);
        Ok(())
    }

    fn score_text(&self, text: &str, row: &mut RowResult) -> Result<(), EvalError> {
        let (mut nll, mut tokens) = (0.0f64, 0usize);
        for piece in pieces(text, self.config.perplexity_chars) {
            let logprobs = self.logprobs_cached(piece)?;
            nll -= logprobs.iter().map(|(_, l)| l).sum::<f64>();
            tokens += logprobs.len();
        }
        let bytes = text.len() as f64;
        row.metrics.insert("nll_nats".into(), nll);
        row.metrics.insert("tokens".into(), tokens as f64);
        row.metrics.insert("bytes".into(), bytes);
        row.metrics
            .insert("bits_per_byte".into(), nll / std::f64::consts::LN_2 / bytes);
        row.metrics.insert(
            "perplexity".into(),
            if tokens > 0 {
                (nll / tokens as f64).exp()
            } else {
                f64::NAN
            },
        );
        Ok(())
    }
}

fn choice_lines(choices: &[String]) -> String {
    choices
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}) {c}", letter(i)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pieces of at most `max` characters, cut at whitespace when one is near the end.
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max.max(1) {
        let end = rest
            .char_indices()
            .nth(max.max(1))
            .map_or(rest.len(), |(i, _)| i);
        let cut = rest[..end]
            .rfind(char::is_whitespace)
            .filter(|c| *c > end / 2)
            .unwrap_or(end);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn add(total: &mut Usage, more: &Usage) {
    for (k, v) in more {
        *total.entry(k.clone()).or_default() += v;
    }
}

fn summarize(config: &RunConfig, rows: &[RowResult], skipped: usize) -> Summary {
    let ok: Vec<&RowResult> = rows.iter().filter(|r| r.error.is_none()).collect();
    let mut usage = Usage::new();
    let mut judge_usage = Usage::new();
    for r in &ok {
        add(&mut usage, &r.usage);
        add(&mut judge_usage, &r.judge_usage);
    }
    let pairs: Vec<metrics::Scored<'_>> = ok.iter().map(|r| (&r.metadata, &r.metrics)).collect();
    Summary {
        task: config.task_name(),
        model: config.model.clone(),
        num_examples: ok.len(),
        metrics: metrics::summarize(ok.iter().map(|r| &r.metrics)),
        usage,
        judge_usage,
        breakdowns: metrics::breakdowns(&pairs, &config.multi_label()),
        errors: rows.len() - ok.len(),
        skipped,
    }
}

fn sha256_hex(text: &str) -> String {
    latam_io::hex(&Sha256::digest(text.as_bytes()))
}

fn write_outputs(
    config: &RunConfig,
    rows: &[RowResult],
    summary: &Summary,
    files: &[DataFile],
    skipped: &Skipped,
    started: SystemTime,
) -> Result<(), EvalError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = config.output.join(name);
        latam_io::write_atomic(&path, bytes).map_err(|e| EvalError::Output {
            path,
            message: e.to_string(),
        })
    };
    let mut lines = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut lines, row).expect("rows serialize");
        lines.push(b'\n');
    }
    write("rows.jsonl", &lines)?;
    write(
        "summary.json",
        &serde_json::to_vec_pretty(summary).expect("JSON"),
    )?;
    let prompts = json!({
        "system": { "text": config.system_prompt, "sha256": sha256_hex(&config.system_prompt) },
        "template": config.prompt_template.as_ref().map(|t| json!({ "text": t, "sha256": sha256_hex(t) })),
        "multiple_choice_instruction": { "text": DEFAULT_MC_INSTRUCTION, "sha256": sha256_hex(DEFAULT_MC_INSTRUCTION) },
    });
    let run = json!({
        "tool": { "name": "latam", "version": env!("CARGO_PKG_VERSION") },
        "task": config.task_name(),
        "task_config": config.task,
        "model": config.model,
        "endpoint": config.endpoint.base_url(),
        "parameters": {
            "max_tokens": config.max_tokens, "temperature": config.temperature,
            "mc_mode": config.mc_mode, "max_samples": config.max_samples, "shuffle": config.shuffle,
            "seed": config.seed, "num_shards": config.num_shards, "shard_index": config.shard_index,
            "concurrency": config.concurrency, "perplexity_chars": config.perplexity_chars,
            "split": config.split, "batch": config.batch,
        },
        "prompts": prompts,
        "judge": config.judge.as_ref().map(|j| json!({
            "model": j.model, "endpoint": j.endpoint.base_url(),
            "prompt_sha256": sha256_hex(&j.prompt), "attempts": j.attempts,
        })),
        "data": files,
        "skipped_rows": skipped.rows,
        "started": humantime::format_rfc3339_seconds(started).to_string(),
        "finished": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    });
    write("run.json", &serde_json::to_vec_pretty(&run).expect("JSON"))?;
    Ok(())
}

/// The outputs of a finished run directory.
pub fn read_summary(dir: &Path) -> Result<Summary, EvalError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| EvalError::Data {
        path: path.clone(),
        message: format!("{e} (is this the --output of `latam eval run`?)"),
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::Data {
        path,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cut_at_spaces_and_cover_the_text() {
        let text = "uno dos tres cuatro cinco seis siete ocho nueve diez";
        let p = pieces(text, 12);
        assert_eq!(p.concat(), text);
        assert!(p.iter().all(|x| x.chars().count() <= 12));
        assert_eq!(pieces("corto", 100), ["corto"]);
    }
}
