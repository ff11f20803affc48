//! A small fake of an OpenAI-compatible API on 127.0.0.1 that speaks the real protocol (chat
//! completions, completions with `echo` + `logprobs`, files, batches, 429 with Retry-After)
//! and knows the answers, so that scores can be checked exactly.
//!
//! Models: `oracle` answers every open question with its reference and multiple choice with
//! "Respuesta: X"; `half` answers right when the question has an even number of characters,
//! else "No lo sé"; `chatty` writes "Creo que la correcta es la X, sin duda." (flexible only);
//! `flaky` is `oracle` behind a 429 (Retry-After: 0) on the first try of every request; `slow`
//! is `oracle` after 150 ms; `judge` grades (correct when the answer equals the reference,
//! `not_attempted` for "No lo sé", else incorrect) and replies with broken JSON the first time
//! it sees a question mentioning `MALFORMED` or any question when `judge-flaky`;
//! `nologprobs` has no log-probabilities; a model whose name starts with `missing` is refused
//! with 404 and `latam serve`'s message.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::{Header, Response, Server};

/// What the fake knows and counts.
#[derive(Default)]
pub struct Knowledge {
    /// Question → reference answer (open questions).
    pub open: HashMap<String, String>,
    /// Question → index of the right choice.
    pub choice: HashMap<String, usize>,
}

#[derive(Default)]
struct State {
    seen: HashSet<String>,
    files: HashMap<String, Vec<u8>>,
    batches: HashMap<String, (String, usize)>,
}

/// The running fake.
pub struct FakeOpenAi {
    /// `http://127.0.0.1:PORT/v1`.
    pub url: String,
    /// Chat requests answered with 200, per model.
    pub chats: Arc<Mutex<HashMap<String, usize>>>,
    /// Completion requests received.
    pub completions: Arc<AtomicUsize>,
    /// Requests refused with 404 for a `missing…` model.
    pub refused: Arc<AtomicUsize>,
    server: Arc<Server>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl FakeOpenAi {
    /// Starts the fake on a free port.
    pub fn start(knowledge: Knowledge) -> Self {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let url = format!(
            "http://{}/v1",
            server.server_addr().to_ip().expect("an IP address")
        );
        let chats = Arc::new(Mutex::new(HashMap::new()));
        let completions = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let knowledge = Arc::new(knowledge);
        let state = Arc::new(Mutex::new(State::default()));
        for _ in 0..8 {
            let (server, knowledge, state, chats, completions, refused) = (
                server.clone(),
                knowledge.clone(),
                state.clone(),
                chats.clone(),
                completions.clone(),
                refused.clone(),
            );
            thread::spawn(move || {
                while let Ok(mut request) = server.recv() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let url = request.url().to_owned();
                    let (status, value, retry) =
                        handle(&url, &body, &knowledge, &state, &chats, &completions);
                    if status == 404 && value.to_string().contains("does not exist") {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    let mut response = Response::from_string(match &value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .with_status_code(status)
                    .with_header(Header::from_bytes("Content-Type", "application/json").unwrap());
                    if retry {
                        response.add_header(Header::from_bytes("Retry-After", "0").unwrap());
                    }
                    let _ = request.respond(response);
                }
            });
        }
        Self {
            url,
            chats,
            completions,
            refused,
            server,
        }
    }

    /// Chat requests answered with 200 for `model`.
    pub fn chats(&self, model: &str) -> usize {
        self.chats.lock().unwrap().get(model).copied().unwrap_or(0)
    }
}

fn letter(i: usize) -> char {
    char::from(b'A' + i as u8)
}

/// The question a prompt is about: the longest known question it contains.
fn find<'a, T>(map: &'a HashMap<String, T>, text: &str) -> Option<(&'a String, &'a T)> {
    map.iter()
        .filter(|(q, _)| text.contains(q.as_str()))
        .max_by_key(|(q, _)| q.len())
}

fn normalize(text: &str) -> String {
    text.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A chat reply of `model` to `messages`.
fn chat_reply(
    model: &str,
    messages: &[Value],
    knowledge: &Knowledge,
    state: &Mutex<State>,
) -> String {
    let user = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    if model.starts_with("judge") {
        let payload: Value = serde_json::from_str(user).unwrap_or_default();
        let question = payload["question"].as_str().unwrap_or_default();
        let first = state
            .lock()
            .unwrap()
            .seen
            .insert(format!("judge:{question}"));
        if first && (question.contains("MALFORMED") || model == "judge-flaky") {
            return "Claro, aquí va mi evaluación: {\"correctness_score\": 1,".into();
        }
        let answer = payload["model_answer"].as_str().unwrap_or_default();
        let reference = payload["reference_answer"].as_str().unwrap_or_default();
        let (score, verdict) = if normalize(answer) == normalize(reference) {
            (1.0, "correct")
        } else if answer.contains("No lo sé") {
            (0.0, "not_attempted")
        } else {
            (0.0, "incorrect")
        };
        return format!(
            "```json\n{{\"correctness_score\": {score}, \"completeness_score\": {score}, \"uncertainty_handling_score\": 1.0, \"overall_score\": {score}, \"verdict\": \"{verdict}\", \"justification\": \"checked\"}}\n```"
        );
    }
    if let Some((_, right)) = find(&knowledge.choice, user) {
        return if model == "chatty" {
            format!("Creo que la correcta es la {}, sin duda.", letter(*right))
        } else {
            format!("Respuesta: {}", letter(*right))
        };
    }
    match find(&knowledge.open, user) {
        Some((question, reference)) if model != "half" || question.chars().count() % 2 == 0 => {
            reference.clone()
        }
        _ => "No lo sé.".into(),
    }
}

/// Whitespace-led tokens of `text` with their character offsets.
pub fn tokens(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.chars().enumerate() {
        if c.is_whitespace() && in_word {
            out.push((start, std::mem::take(&mut current)));
            start = i;
            in_word = false;
        }
        if !c.is_whitespace() {
            in_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

/// The log-probability the fake gives a token: the right letter after a known question is
/// likely, a wrong one unlikely; any other token −0.25 per character.
pub fn token_logprob(prefix: &str, token: &str, knowledge: &Knowledge) -> f64 {
    let trimmed = token.trim();
    if trimmed.len() == 1
        && prefix.trim_end().ends_with("Respuesta:")
        && let Some((_, right)) = find(&knowledge.choice, prefix)
    {
        return if trimmed.starts_with(letter(*right)) {
            -0.1
        } else {
            -5.0
        };
    }
    -0.25 * token.chars().count() as f64
}

fn handle(
    url: &str,
    body: &[u8],
    knowledge: &Knowledge,
    state: &Mutex<State>,
    chats: &Mutex<HashMap<String, usize>>,
    completions: &AtomicUsize,
) -> (u16, Value, bool) {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    if model.starts_with("missing") {
        let message = format!("The model `{model}` does not exist; this server runs `oracle`.");
        return (
            404,
            json!({ "error": { "message": message, "type": "invalid_request_error", "param": "model", "code": "model_not_found" } }),
            false,
        );
    }
    match url {
        "/v1/chat/completions" => {
            if model == "flaky" && state.lock().unwrap().seen.insert(format!("429:{request}")) {
                return (429, json!({ "error": { "message": "rate limited" } }), true);
            }
            if model == "slow" {
                thread::sleep(Duration::from_millis(150));
            }
            let messages = request["messages"].as_array().cloned().unwrap_or_default();
            let text = chat_reply(&model, &messages, knowledge, state);
            *chats.lock().unwrap().entry(model.clone()).or_default() += 1;
            (200, chat_json(&model, &text), false)
        }
        "/v1/completions" => {
            completions.fetch_add(1, Ordering::SeqCst);
            completion(&model, &request, knowledge)
        }
        "/v1/files" => {
            // multipart/form-data: the part after the file's headers, up to the closing boundary.
            let text = String::from_utf8_lossy(body);
            let start = text
                .find("Content-Type: application/jsonl\r\n\r\n")
                .map_or(0, |i| i + 35);
            let end = text.rfind("\r\n--").unwrap_or(text.len());
            let mut s = state.lock().unwrap();
            let id = format!("file-{}", s.files.len() + 1);
            s.files
                .insert(id.clone(), text[start..end].as_bytes().to_vec());
            (
                200,
                json!({ "id": id, "object": "file", "purpose": "batch" }),
                false,
            )
        }
        "/v1/batches" => {
            let input = request["input_file_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut s = state.lock().unwrap();
            let id = format!("batch-{}", s.batches.len() + 1);
            s.batches.insert(id.clone(), (input, 0));
            (
                200,
                json!({ "id": id, "object": "batch", "status": "validating" }),
                false,
            )
        }
        path if path.starts_with("/v1/batches/") => batch_status(
            path.trim_start_matches("/v1/batches/"),
            knowledge,
            state,
            chats,
        ),
        path if path.starts_with("/v1/files/") && path.ends_with("/content") => {
            let id = path
                .trim_start_matches("/v1/files/")
                .trim_end_matches("/content");
            let s = state.lock().unwrap();
            match s.files.get(id) {
                Some(bytes) => (
                    200,
                    Value::String(String::from_utf8_lossy(bytes).into()),
                    false,
                ),
                None => (
                    404,
                    json!({ "error": { "message": "no such file" } }),
                    false,
                ),
            }
        }
        _ => (
            404,
            json!({ "error": { "message": format!("unknown path {url}") } }),
            false,
        ),
    }
}

fn chat_json(model: &str, text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15 },
    })
}

/// A batch's status; on the second poll it is done, its output computed like chat replies.
fn batch_status(
    id: &str,
    knowledge: &Knowledge,
    state: &Mutex<State>,
    chats: &Mutex<HashMap<String, usize>>,
) -> (u16, Value, bool) {
    let id = id.to_owned();
    let mut s = state.lock().unwrap();
    let Some((input, polls)) = s.batches.get_mut(&id) else {
        return (
            404,
            json!({ "error": { "message": "no such batch" } }),
            false,
        );
    };
    *polls += 1;
    if *polls < 2 {
        return (
            200,
            json!({ "id": id, "status": "in_progress", "request_counts": { "completed": 0 } }),
            false,
        );
    }
    let input = input.clone();
    let lines = String::from_utf8_lossy(&s.files[&input]).to_string();
    drop(s);
    let mut output = String::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let item: Value = serde_json::from_str(line).unwrap();
        let model = item["body"]["model"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let messages = item["body"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let text = chat_reply(&model, &messages, knowledge, state);
        *chats
            .lock()
            .unwrap()
            .entry(format!("batch:{model}"))
            .or_default() += 1;
        output.push_str(
            &json!({
                "id": "r", "custom_id": item["custom_id"],
                "response": { "status_code": 200, "body": chat_json(&model, &text) },
            })
            .to_string(),
        );
        output.push('\n');
    }
    let mut s = state.lock().unwrap();
    let out_id = format!("file-out-{id}");
    s.files.insert(out_id.clone(), output.into_bytes());
    (
        200,
        json!({ "id": id, "status": "completed", "output_file_id": out_id }),
        false,
    )
}

/// An echoed completion with the log-probability of every prompt token; `error-mid-stream`
/// streams a first chunk, then an error chunk (as a server whose model fails mid-generation).
fn completion(model: &str, request: &Value, knowledge: &Knowledge) -> (u16, Value, bool) {
    if model == "error-mid-stream" && request["stream"] == json!(true) {
        let chunk = json!({"object": "text_completion", "model": model,
                           "choices": [{"index": 0, "text": "Hola", "finish_reason": null}]});
        let error = json!({"error": {"message": "the model failed mid-generation",
                                      "type": "server_error", "param": null, "code": null}});
        return (
            200,
            Value::String(format!("data: {chunk}\n\ndata: {error}\n\n")),
            false,
        );
    }
    let prompt = request["prompt"].as_str().unwrap_or_default();
    if model == "nologprobs" || request["echo"] != json!(true) {
        return (
            200,
            json!({ "choices": [{ "text": "", "index": 0, "logprobs": null }] }),
            false,
        );
    }
    let pieces = tokens(prompt);
    let mut logprobs = vec![Value::Null];
    let chars: Vec<char> = prompt.chars().collect();
    for (offset, token) in pieces.iter().skip(1) {
        let prefix: String = chars[..*offset].iter().collect();
        logprobs.push(json!(token_logprob(&prefix, token, knowledge)));
    }
    (
        200,
        json!({
            "id": "cmpl-1", "object": "text_completion", "model": model,
            "choices": [{ "index": 0, "text": prompt, "logprobs": {
                "tokens": pieces.iter().map(|t| &t.1).collect::<Vec<_>>(),
                "token_logprobs": logprobs,
                "text_offset": pieces.iter().map(|t| t.0).collect::<Vec<_>>(),
            }, "finish_reason": "length" }],
            "usage": { "prompt_tokens": pieces.len(), "completion_tokens": 0, "total_tokens": pieces.len() },
        }),
        false,
    )
}
