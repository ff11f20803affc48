//! `latam serve`: an OpenAI-compatible HTTP server over a [`latam_model::Model`].
//!
//! `POST /v1/chat/completions` and `POST /v1/completions` (both streaming or not; completions
//! with `echo` and `logprobs`, i.e. the log-probabilities of the prompt), `GET /v1/models`,
//! `GET /v1/models/{id}`, `GET /health` and `GET /metrics` (Prometheus). One model thread runs
//! the admitted requests round-robin; requests beyond `max_running + max_waiting` get 429, and a
//! request whose client disconnects is dropped. If the model thread ends (a panic), `/health`
//! and every request answer 503.

mod api;
mod metrics;
mod scheduler;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, StreamExt};
use latam_model::{Event, FinishReason, Generation, Model, TokenLogprob};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

pub use api::ApiError;
use api::{Endpoint, Parsed, chat_logprobs, completion_logprobs};
use metrics::Metrics;
use scheduler::{Job, Place, Stopped, Update};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub host: String,
    /// Port (0: any free port).
    pub port: u16,
    /// Generations run at once, interleaved token by token.
    pub max_running: usize,
    /// Requests that may wait for a place; more get 429.
    pub max_waiting: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_running: 16,
            max_waiting: 64,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// host:port.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The runtime or the connection loop failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

struct AppState {
    model: Arc<Model>,
    queue: Mutex<Option<SyncSender<Job>>>,
    taken: Arc<AtomicUsize>,
    limit: usize,
    metrics: Arc<Metrics>,
    /// Set when the model thread has ended.
    stopped: Arc<Stopped>,
    created: u64,
    ids: AtomicU64,
}

/// Serves `model` until Ctrl-C; `ready` is called with the bound address once requests are
/// accepted.
pub fn serve(
    model: Model,
    config: &ServeConfig,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let model = Arc::new(model);
    let metrics = Arc::new(Metrics::default());
    let max_running = config.max_running.max(1);
    let stopped = Arc::new(Stopped::default());
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Job>(max_running + config.max_waiting);
    let worker = {
        let (model, metrics, stopped) = (
            Arc::clone(&model),
            Arc::clone(&metrics),
            Arc::clone(&stopped),
        );
        std::thread::Builder::new()
            .name("latam-model".into())
            .spawn(move || scheduler::run(&model, &receiver, max_running, &metrics, &stopped))?
    };
    let state = Arc::new(AppState {
        model,
        queue: Mutex::new(Some(sender)),
        taken: Arc::new(AtomicUsize::new(0)),
        limit: max_running + config.max_waiting,
        metrics,
        stopped,
        created: unix_now(),
        ids: AtomicU64::new(0),
    });
    let address = format!("{}:{}", config.host, config.port);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|source| ServeError::Bind {
                address: address.clone(),
                source,
            })?;
        ready(listener.local_addr()?);
        axum::serve(listener, router(Arc::clone(&state)))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok::<_, ServeError>(())
    })?;
    // Closing the queue ends the model thread once its running generations are dropped.
    state.queue.lock().expect("queue lock").take();
    drop(state);
    let _ = worker.join();
    Ok(())
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(model_by_id))
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(state)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(error.body())).into_response();
    if error.status == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn not_found() -> Response {
    error_response(&ApiError {
        status: 404,
        code: Some("not_found"),
        ..ApiError::invalid(
            None,
            "no such endpoint; this server has /v1/chat/completions, /v1/completions, \
             /v1/models, /health and /metrics",
        )
    })
}

/// 503 with why the model cannot answer.
fn unavailable(reason: &str) -> ApiError {
    ApiError {
        status: 503,
        kind: "server_error",
        code: Some("model_unavailable"),
        ..ApiError::invalid(
            None,
            format!("The model cannot answer: {reason}. Restart the server."),
        )
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.stopped.reason() {
        None => axum::Json(json!({"status": "ok"})).into_response(),
        Some(reason) => error_response(&unavailable(reason)),
    }
}

/// The model as `/v1/models` lists it.
fn model_object(state: &AppState) -> Value {
    json!({"id": state.model.name(), "object": "model", "created": state.created,
           "owned_by": "latam", "context_length": state.model.context_length()})
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({"object": "list", "data": [model_object(&state)]})).into_response()
}

/// `GET /v1/models/{id}`: the model under any name a request may use for it, else 404.
async fn model_by_id(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match api::check_model(&state.model, Some(&id)) {
        Ok(()) => axum::Json(model_object(&state)).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    let text = state
        .metrics
        .render(state.model.name(), state.taken.load(Ordering::SeqCst));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn chat(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle(&state, Endpoint::Chat, &body).await
}

async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle(&state, Endpoint::Completions, &body).await
}

async fn handle(state: &Arc<AppState>, endpoint: Endpoint, body: &[u8]) -> Response {
    let label = endpoint.label();
    if let Some(reason) = state.stopped.reason() {
        state.metrics.count(label, "error");
        return error_response(&unavailable(reason));
    }
    let parsed = match api::parse(&state.model, endpoint, body) {
        Ok(parsed) => parsed,
        Err(e) => {
            state.metrics.count(label, "invalid");
            return error_response(&e);
        }
    };
    let updates = match submit(state, &parsed) {
        Ok(updates) => updates,
        Err(e) => {
            state
                .metrics
                .count(label, if e.status == 429 { "rejected" } else { "error" });
            return error_response(&e);
        }
    };
    let id = format!(
        "{}-{}-{}",
        if endpoint == Endpoint::Chat {
            "chatcmpl"
        } else {
            "cmpl"
        },
        state.created,
        state.ids.fetch_add(1, Ordering::Relaxed)
    );
    let shape = Shape {
        id,
        model: state.model.name().to_owned(),
        created: unix_now(),
        endpoint,
        prompt_tokens: parsed.generation.prompt.len(),
        prompt_chars: parsed.prompt_chars,
        echo: parsed.echo.clone(),
    };
    if parsed.stream {
        stream_response(shape, updates, parsed.stream_usage)
    } else {
        whole_response(&shape, updates).await
    }
}

/// Takes a place and queues the generation.
fn submit(state: &AppState, parsed: &Parsed) -> Result<UnboundedReceiver<Update>, ApiError> {
    let busy = || ApiError {
        status: 429,
        kind: "rate_limit_exceeded",
        code: Some("rate_limit_exceeded"),
        ..ApiError::invalid(
            None,
            format!(
                "The server is busy ({} requests running or waiting); retry later.",
                state.limit
            ),
        )
    };
    let place = Place::take(&state.taken, state.limit).ok_or_else(busy)?;
    let generation = Generation::new(&state.model, parsed.generation.clone())
        .map_err(|e| ApiError::invalid(None, e.to_string()))?;
    let (tx, rx) = unbounded_channel();
    let job = Job {
        generation,
        updates: tx,
        endpoint: parsed.endpoint.label(),
        cache_prompt: parsed.cache_prompt,
        received: Instant::now(),
        _place: place,
    };
    let queue = state.queue.lock().expect("queue lock");
    let sender = queue.as_ref().ok_or_else(busy)?;
    match sender.try_send(job) {
        Ok(()) => Ok(rx),
        Err(TrySendError::Full(_)) => Err(busy()),
        Err(TrySendError::Disconnected(_)) => Err(unavailable(
            state
                .stopped
                .reason()
                .unwrap_or("the model thread has ended"),
        )),
    }
}

/// What every response of one request carries.
struct Shape {
    id: String,
    model: String,
    created: u64,
    endpoint: Endpoint,
    prompt_tokens: usize,
    prompt_chars: usize,
    echo: Option<String>,
}

impl Shape {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completions, _) => "text_completion",
        }
    }

    /// Where the completion starts in the returned text.
    fn echo_chars(&self) -> usize {
        if self.echo.is_some() {
            self.prompt_chars
        } else {
            0
        }
    }

    fn usage(&self, completion_tokens: usize) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
               "total_tokens": self.prompt_tokens + completion_tokens})
    }

    fn envelope(&self, chunk: bool, choices: &Value) -> Value {
        json!({"id": self.id, "object": self.object(chunk), "created": self.created,
               "model": self.model, "choices": choices})
    }
}

/// Everything a request produced, gathered from its updates.
#[derive(Default)]
struct Gathered {
    /// Character offset of the completion in the returned text (after an echoed prompt).
    base: usize,
    text: String,
    prompt_logprobs: Vec<TokenLogprob>,
    logprobs: Vec<TokenLogprob>,
    with_logprobs: bool,
    tokens: usize,
    finish: Option<FinishReason>,
}

impl Gathered {
    /// Adds an event; returns the new text.
    fn add(&mut self, event: Event) -> String {
        match event {
            Event::PromptLogprobs(list) => {
                self.with_logprobs = true;
                self.prompt_logprobs = list;
                String::new()
            }
            Event::Token { text, logprob } => {
                self.tokens += 1;
                if let Some(mut lp) = logprob {
                    self.with_logprobs = true;
                    lp.offset = self.base + self.text.chars().count();
                    self.logprobs.push(lp);
                }
                self.text.push_str(&text);
                text
            }
            Event::Done { text, reason } => {
                self.finish = Some(reason);
                self.text.push_str(&text);
                text
            }
        }
    }
}

/// What a request whose updates end without a finish is told: only the end of the model
/// thread drops a generation before its last update.
const CUT: &str = "the model stopped before this answer was complete (see /health)";

/// A 500: the generation failed.
fn server_error(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 500,
        kind: "server_error",
        ..ApiError::invalid(None, message)
    }
}

async fn whole_response(shape: &Shape, mut updates: UnboundedReceiver<Update>) -> Response {
    let mut all = Gathered {
        base: shape.echo_chars(),
        ..Gathered::default()
    };
    while let Some(update) = updates.recv().await {
        match update {
            Update::Model(event) => {
                all.add(event);
            }
            Update::Failed(message) => return error_response(&server_error(message)),
        }
        if all.finish.is_some() {
            break;
        }
    }
    if all.finish.is_none() {
        return error_response(&server_error(CUT));
    }
    let finish = all.finish.map_or(Value::Null, |f| json!(f.as_str()));
    let choice = match shape.endpoint {
        Endpoint::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": all.text},
            "logprobs": if all.with_logprobs {
                json!({"content": chat_logprobs(&all.logprobs)})
            } else { Value::Null },
            "finish_reason": finish,
        }),
        Endpoint::Completions => {
            let text = match &shape.echo {
                Some(prompt) => format!("{prompt}{}", all.text),
                None => all.text.clone(),
            };
            json!({"index": 0, "text": text, "finish_reason": finish,
                   "logprobs": completions_logprobs(&all)})
        }
    };
    let mut body = shape.envelope(false, &json!([choice]));
    body["usage"] = shape.usage(all.tokens);
    axum::Json(body).into_response()
}

/// Completions logprobs: the echoed prompt's, then the completion's.
fn completions_logprobs(all: &Gathered) -> Value {
    if !all.with_logprobs {
        return Value::Null;
    }
    let mut merged = completion_logprobs(&all.prompt_logprobs);
    let generated = completion_logprobs(&all.logprobs);
    for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
        let tail = generated[key].as_array().cloned().unwrap_or_default();
        if let Some(list) = merged[key].as_array_mut() {
            list.extend(tail);
        }
    }
    merged
}

fn stream_response(
    shape: Shape,
    updates: UnboundedReceiver<Update>,
    include_usage: bool,
) -> Response {
    struct Streaming {
        shape: Shape,
        updates: UnboundedReceiver<Update>,
        all: Gathered,
        started: bool,
        ended: bool,
        include_usage: bool,
    }
    let state = Streaming {
        all: Gathered {
            base: shape.echo_chars(),
            ..Gathered::default()
        },
        shape,
        updates,
        started: false,
        ended: false,
        include_usage,
    };
    let events = stream::unfold(state, |mut s| async move {
        if s.ended {
            return None;
        }
        let mut out: Vec<Value> = Vec::new();
        if !s.started {
            s.started = true;
            match (&s.shape.endpoint, &s.shape.echo) {
                (Endpoint::Chat, _) => out.push(s.shape.envelope(
                    true,
                    &json!([{"index": 0,
                    "delta": {"role": "assistant", "content": ""}, "logprobs": null,
                    "finish_reason": null}]),
                )),
                (Endpoint::Completions, Some(prompt)) => out.push(s.shape.envelope(
                    true,
                    &json!([{
                    "index": 0, "text": prompt, "logprobs": null, "finish_reason": null}]),
                )),
                (Endpoint::Completions, None) => {}
            }
        }
        let update = s
            .updates
            .recv()
            .await
            .unwrap_or_else(|| Update::Failed(CUT.into()));
        match update {
            Update::Failed(message) => {
                out.push(server_error(message).body());
                s.ended = true;
            }
            Update::Model(event) => {
                let tokens_before = s.all.logprobs.len();
                let prompt_event = matches!(event, Event::PromptLogprobs(_));
                let text = s.all.add(event);
                let new_logprobs = &s.all.logprobs[tokens_before..];
                let finish = s.all.finish.map_or(Value::Null, |f| json!(f.as_str()));
                let choice = match s.shape.endpoint {
                    Endpoint::Chat => json!({"index": 0, "delta": {"content": text},
                        "logprobs": if new_logprobs.is_empty() { Value::Null }
                            else { json!({"content": chat_logprobs(new_logprobs)}) },
                        "finish_reason": finish}),
                    Endpoint::Completions => {
                        let logprobs = if prompt_event {
                            completion_logprobs(&s.all.prompt_logprobs)
                        } else if new_logprobs.is_empty() {
                            Value::Null
                        } else {
                            completion_logprobs(new_logprobs)
                        };
                        json!({"index": 0, "text": text, "logprobs": logprobs,
                               "finish_reason": finish})
                    }
                };
                let worth_sending = !text.is_empty()
                    || prompt_event
                    || !new_logprobs.is_empty()
                    || s.all.finish.is_some();
                if worth_sending {
                    out.push(s.shape.envelope(true, &json!([choice])));
                }
                if s.all.finish.is_some() {
                    if s.include_usage {
                        let mut usage = s.shape.envelope(true, &json!([]));
                        usage["usage"] = s.shape.usage(s.all.tokens);
                        out.push(usage);
                    }
                    s.ended = true;
                }
            }
        }
        let ended = s.ended;
        Some((stream::iter(to_sse(out, ended)), s))
    })
    .flatten();
    Sse::new(events).into_response()
}

fn to_sse(values: Vec<Value>, done: bool) -> Vec<Result<SseEvent, Infallible>> {
    let mut events: Vec<Result<SseEvent, Infallible>> = values
        .into_iter()
        .map(|v| Ok(SseEvent::default().data(v.to_string())))
        .collect();
    if done {
        events.push(Ok(SseEvent::default().data("[DONE]")));
    }
    events
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use latam_model::synthetic::{random_weights, tiny_config, write_gguf};
    use latam_model::{GgmlDType, LoadOptions};

    use super::*;

    /// A server of a tiny random model whose model thread has died: its guard was dropped by
    /// a panic, and its queue's receiver is gone.
    fn server_with_a_dead_model_thread(dir: &std::path::Path) -> SocketAddr {
        let config = tiny_config();
        let path = dir.join("tiny.gguf");
        write_gguf(&path, &config, &random_weights(&config, 1), GgmlDType::Q8_0).unwrap();
        let model = Model::load(&path, &LoadOptions::default()).unwrap();
        let stopped = Arc::new(Stopped::default());
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Job>(4);
        let dying = Arc::clone(&stopped);
        let died = std::thread::spawn(move || {
            let _receiver = receiver;
            let _stop = dying.guard();
            panic!("a fault in the model thread");
        });
        assert!(died.join().is_err());
        let state = Arc::new(AppState {
            model: Arc::new(model),
            queue: Mutex::new(Some(sender)),
            taken: Arc::new(AtomicUsize::new(0)),
            limit: 4,
            metrics: Arc::new(Metrics::default()),
            stopped,
            created: 0,
            ids: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router(state)).await.unwrap();
            });
        });
        address
    }

    /// One HTTP/1.1 request; the status and the body.
    fn request(address: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
        (status, serde_json::from_str(body).unwrap())
    }

    #[test]
    fn a_dead_model_thread_makes_health_and_requests_503() {
        let dir = tempfile::tempdir().unwrap();
        let address = server_with_a_dead_model_thread(dir.path());
        let (status, health) = request(address, "GET", "/health", "");
        assert_eq!(status, 503, "{health}");
        assert_eq!(health["error"]["code"], "model_unavailable");
        assert!(
            health["error"]["message"]
                .as_str()
                .unwrap()
                .contains("panicked"),
            "{health}"
        );
        for (path, body) in [
            ("/v1/completions", r#"{"prompt": "Hola", "max_tokens": 2}"#),
            (
                "/v1/chat/completions",
                r#"{"messages": [{"role": "user", "content": "Hola"}], "max_tokens": 2}"#,
            ),
        ] {
            let (status, answer) = request(address, "POST", path, body);
            assert_eq!(status, 503, "{path}: {answer}");
            assert_eq!(answer["error"]["type"], "server_error", "{answer}");
        }
    }
}
