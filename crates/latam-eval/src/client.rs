//! A client of OpenAI-compatible APIs (OpenAI, vLLM, llama.cpp, Ollama, `latam serve`):
//! chat completions, completions with prompt log-probabilities, files and batches; timeouts,
//! and retries with exponential backoff on 408, 429 and 5xx that honour `Retry-After`; other
//! 4xx are final.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::EvalError;

/// How to reach an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    /// Base URL: `http://127.0.0.1:8080/v1` (a missing `/v1` is added).
    pub url: String,
    /// Bearer token (from `OPENAI_API_KEY` or `--api-key-env`); never written to outputs.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Seconds a request may take.
    pub timeout_s: u64,
    /// Retries after a 408, a 429, a 5xx or a broken connection.
    pub max_retries: u32,
    /// First backoff in seconds, doubled at each retry (a `Retry-After` header wins).
    pub backoff_s: f64,
}

impl EndpointConfig {
    /// The base URL requests go to: `url` with `/v1` added when missing.
    pub fn base_url(&self) -> String {
        let trimmed = self.url.trim_end_matches('/');
        if trimmed.ends_with("/v1") {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/v1")
        }
    }

    /// An endpoint with the default timeout (120 s) and retries (5, from 1 s).
    pub fn new(url: &str, api_key: Option<String>) -> Self {
        Self {
            url: url.to_owned(),
            api_key,
            timeout_s: 120,
            max_retries: 5,
            backoff_s: 1.0,
        }
    }
}

/// A connection to one endpoint.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    config: EndpointConfig,
    stop: Arc<AtomicBool>,
}

/// Token counts of a response.
pub type Usage = std::collections::BTreeMap<String, u64>;

/// A chat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAnswer {
    /// The assistant's text.
    pub text: String,
    /// `prompt_tokens`, `completion_tokens`, ...
    pub usage: Usage,
}

impl Client {
    /// A client of `config`.
    pub fn new(config: &EndpointConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(config.timeout_s))
            .build();
        Self {
            agent,
            base: config.base_url(),
            config: config.clone(),
            stop: Arc::default(),
        }
    }

    /// The client, giving up its retries once `stop` is set (the run is ending).
    #[must_use]
    pub fn stopped_by(self, stop: Arc<AtomicBool>) -> Self {
        Self { stop, ..self }
    }

    /// Waits `seconds` unless the client is stopped meanwhile; whether it was not.
    fn pause(&self, seconds: f64) -> bool {
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        while !self.stop.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        false
    }

    /// The base URL requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// POSTs JSON to `path` (under the base URL), retrying as configured.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, EvalError> {
        let text = self.send("POST", path, |request| {
            request.send_json(body.clone()).map_err(Box::new)
        })?;
        self.parse(path, &text)
    }

    /// GETs `path` as text.
    pub fn get_text(&self, path: &str) -> Result<String, EvalError> {
        self.send_get(path)
    }

    /// GETs `path` as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, EvalError> {
        let text = self.send_get(path)?;
        self.parse(path, &text)
    }

    /// Uploads `content` as a file for the Batch API (`purpose=batch`); its id.
    pub fn upload_batch_file(&self, name: &str, content: &[u8]) -> Result<String, EvalError> {
        let boundary = "latam-eval-boundary-7d1f0c9a";
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/jsonl\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let text = self.send("POST", "files", |request| {
            request
                .set("Content-Type", &content_type)
                .send_bytes(&body)
                .map_err(Box::new)
        })?;
        let value = self.parse("files", &text)?;
        value["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.protocol("files", "no `id` in the upload's answer"))
    }

    /// A chat completion.
    pub fn chat(&self, body: &Value) -> Result<ChatAnswer, EvalError> {
        let value = self.post_json("chat/completions", body)?;
        chat_answer(&value)
            .ok_or_else(|| self.protocol("chat/completions", "no `choices[0].message.content`"))
    }

    /// Log-probabilities of every token of `prompt` after the first, with each token's start
    /// (a character offset into `prompt`), from `/v1/completions` with `echo` and `logprobs`.
    pub fn prompt_logprobs(
        &self,
        model: &str,
        prompt: &str,
    ) -> Result<Vec<(usize, f64)>, EvalError> {
        // One generated token, ignored: `max_tokens: 0` means "no limit" to some servers
        // (llama-cpp-python) and is refused by others.
        let body = json!({
            "model": model, "prompt": prompt, "max_tokens": 1, "echo": true,
            "logprobs": 1, "temperature": 0.0,
        });
        let value = self.post_json("completions", &body)?;
        parse_prompt_logprobs(&value, prompt.chars().count()).ok_or_else(|| EvalError::NoLogprobs {
            endpoint: self.base.clone(),
        })
    }

    /// POSTs JSON to `path` and passes the `data` of each server-sent event, parsed, to `each`
    /// until `[DONE]` (`"stream": true` answers); not retried, so that no work is done twice.
    pub fn post_stream<E: From<EvalError>>(
        &self,
        path: &str,
        body: &Value,
        mut each: impl FnMut(Value) -> Result<(), E>,
    ) -> Result<(), E> {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let transport = |message: String| EvalError::Transport {
            url: url.clone(),
            message,
        };
        let mut request = self.agent.post(&url);
        if let Some(key) = &self.config.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = request.send_json(body.clone()).map_err(|e| match e {
            ureq::Error::Status(status, response) => EvalError::Status {
                url: url.clone(),
                status,
                message: server_message(&response.into_string().unwrap_or_default()),
            },
            other @ ureq::Error::Transport(_) => transport(other.to_string()),
        })?;
        for line in BufReader::new(response.into_reader()).lines() {
            let line = line.map_err(|e| transport(e.to_string()))?;
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                continue;
            };
            if data == "[DONE]" {
                break;
            }
            each(self.parse(path, data)?)?;
        }
        Ok(())
    }

    fn protocol(&self, path: &str, message: &str) -> EvalError {
        EvalError::Protocol {
            url: format!("{}/{path}", self.base),
            message: message.to_owned(),
        }
    }

    fn parse(&self, path: &str, text: &str) -> Result<Value, EvalError> {
        serde_json::from_str(text)
            .map_err(|e| self.protocol(path, &format!("malformed JSON ({e})")))
    }

    fn send_get(&self, path: &str) -> Result<String, EvalError> {
        self.send("GET", path, |request| request.call().map_err(Box::new))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        call: impl Fn(ureq::Request) -> Result<ureq::Response, Box<ureq::Error>>,
    ) -> Result<String, EvalError> {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut attempt = 0u32;
        loop {
            let (error, wait) = match self.attempt(method, &url, &call) {
                Ok(text) => return Ok(text),
                Err(failed) => failed,
            };
            let retryable = match &error {
                EvalError::Status { status, .. } => retryable(*status),
                _ => true,
            };
            if !retryable || attempt >= self.config.max_retries {
                return Err(error);
            }
            let backoff = self.config.backoff_s * f64::from(1u32 << attempt.min(16));
            let seconds = wait.unwrap_or(backoff).clamp(0.0, 600.0);
            tracing::warn!(
                "{error}; retry {} of {} in {seconds:.1}s",
                attempt + 1,
                self.config.max_retries
            );
            if !self.pause(seconds) {
                return Err(error);
            }
            attempt += 1;
        }
    }

    /// One request, no retry: the body, or the error (a `Status` or a `Transport`) with the
    /// server's `Retry-After` in seconds.
    fn attempt(
        &self,
        method: &str,
        url: &str,
        call: impl Fn(ureq::Request) -> Result<ureq::Response, Box<ureq::Error>>,
    ) -> Result<String, (EvalError, Option<f64>)> {
        let mut request = self.agent.request(method, url);
        if let Some(key) = &self.config.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let transport = |message: String| EvalError::Transport {
            url: url.to_owned(),
            message,
        };
        match call(request).map_err(|e| *e) {
            Ok(response) => {
                let mut text = String::new();
                match response
                    .into_reader()
                    .take(1 << 30)
                    .read_to_string(&mut text)
                {
                    Ok(_) => Ok(text),
                    Err(e) => Err((transport(e.to_string()), None)),
                }
            }
            Err(ureq::Error::Status(status, response)) => {
                let retry_after = response
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<f64>().ok());
                let body = response.into_string().unwrap_or_default();
                let error = EvalError::Status {
                    url: url.to_owned(),
                    status,
                    message: server_message(&body),
                };
                Err((error, retry_after))
            }
            Err(other) => {
                // ureq's message starts with the URL, which the error names already.
                let message = other.to_string();
                let message = message
                    .strip_prefix(&format!("{url}: "))
                    .unwrap_or(&message);
                Err((transport(message.to_owned()), None))
            }
        }
    }

    /// Checks once, before a run, that the endpoint answers: `GET /models`. Any answer will do
    /// (not every server has `/models`) but a refused API key (401, 403); no answer at all is
    /// [`EvalError::Unreachable`].
    pub fn check(&self) -> Result<(), EvalError> {
        let url = format!("{}/models", self.base);
        match self.attempt("GET", &url, |request| request.call().map_err(Box::new)) {
            Err((EvalError::Transport { message, .. }, _)) => Err(EvalError::Unreachable {
                url: self.base.clone(),
                message,
            }),
            Err((
                error @ EvalError::Status {
                    status: 401 | 403, ..
                },
                _,
            )) => Err(error),
            // An answer, even an error status.
            _ => Ok(()),
        }
    }
}

/// Statuses worth asking again: 408 (timeout), 429 (rate limit) and 5xx.
pub(crate) fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// What an error body says: OpenAI's `error.message` (also vLLM's `message`, FastAPI's
/// `detail`), else the body's first 500 characters.
fn server_message(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_default();
    [
        &value["error"]["message"],
        &value["error"],
        &value["message"],
        &value["detail"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map_or_else(|| body.trim().chars().take(500).collect(), str::to_owned)
}

/// The text and usage of a chat completion's JSON.
pub fn chat_answer(value: &Value) -> Option<ChatAnswer> {
    let text = value["choices"][0]["message"]["content"]
        .as_str()?
        .to_owned();
    Some(ChatAnswer {
        text,
        usage: usage(value),
    })
}

/// The token counts of a response.
pub fn usage(value: &Value) -> Usage {
    value["usage"]
        .as_object()
        .map(|u| {
            u.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `(start, logprob)` of every prompt token whose log-probability is known (the first has
/// none), from an echoed completion; `None` when the answer carries no log-probabilities.
fn parse_prompt_logprobs(value: &Value, prompt_chars: usize) -> Option<Vec<(usize, f64)>> {
    let logprobs = &value["choices"][0]["logprobs"];
    let values = logprobs["token_logprobs"].as_array()?;
    let offsets = logprobs["text_offset"].as_array()?;
    if values.len() != offsets.len() {
        return None;
    }
    let out: Vec<(usize, f64)> = offsets
        .iter()
        .zip(values)
        .filter_map(|(o, v)| Some((o.as_u64()? as usize, v.as_f64()?)))
        .filter(|(o, _)| *o < prompt_chars)
        .collect();
    (!out.is_empty() || values.len() <= 1).then_some(out)
}
