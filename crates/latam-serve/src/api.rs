//! The OpenAI request and response shapes of `/v1/completions` and `/v1/chat/completions`,
//! and the translation of a request into a generation.

use latam_model::{ChatMessage, GenerationRequest, Model, SamplingParams, TokenLogprob};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// A request error in OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What went wrong and what to do.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, …).
    pub kind: &'static str,
    /// The offending parameter.
    pub param: Option<&'static str>,
    /// A machine-readable code (`context_length_exceeded`, `model_not_found`, …).
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A 400 about `param`.
    pub fn invalid(param: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param,
                         "code": self.code}})
    }
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// A completions `prompt`: text or token ids, alone or in a list of one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// A chat message's `content`: text or a list of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The members of a request body, read one at a time so that a wrong value is reported with
/// its parameter's name and what it should be (not the JSON parser's message).
struct Fields(Map<String, Value>);

/// A type a parameter may have, described for a person.
trait Param: DeserializeOwned {
    /// What a value must be, as in "expected {EXPECTED}".
    const EXPECTED: &'static str;
}

macro_rules! param {
    ($($t:ty => $expected:literal),* $(,)?) => {
        $(impl Param for $t { const EXPECTED: &'static str = $expected; })*
    };
}

param! {
    usize => "an integer of at least 0",
    u64 => "an integer of at least 0",
    f32 => "a number",
    bool => "true or false",
    String => "a string",
    Stop => "a string or a list of strings",
    Prompt => "a string, or a list of token ids (a list of one of either)",
    Vec<Message> => "a list of messages, objects with a `role` and a `content` (a string or a \
        list of text parts)",
    StreamOptions => "an object such as {\"include_usage\": true}",
}

impl Fields {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::invalid(
                None,
                "The request body must be a JSON object.",
            )),
            Err(e) => Err(ApiError::invalid(
                None,
                format!("The request body is not valid JSON ({e})."),
            )),
        }
    }

    /// `name`'s value; absent and `null` are `None`.
    fn get<T: Param>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|_| {
                let mut shown = value.to_string();
                if shown.len() > 60 {
                    shown = format!("{}…", shown.chars().take(60).collect::<String>());
                }
                ApiError::invalid(
                    Some(name),
                    format!("Invalid `{name}`: expected {}, got {shown}.", T::EXPECTED),
                )
            }),
        }
    }

    fn required<T: Param>(&self, name: &'static str) -> Result<T, ApiError> {
        self.get(name)?.ok_or_else(|| {
            ApiError::invalid(Some(name), format!("Missing required parameter `{name}`."))
        })
    }
}

/// The parameters both endpoints share.
#[derive(Debug)]
struct Common {
    model: Option<String>,
    max_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    presence_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<Stop>,
    n: Option<usize>,
    stream: bool,
    /// vLLM's and llama.cpp's extension: generate `max_tokens` whatever the model says.
    ignore_eos: bool,
    /// llama.cpp's extension: `false` runs the whole prompt even when a recent request began
    /// alike (results then do not depend on what ran before: batch shapes change rounding).
    cache_prompt: Option<bool>,
    stream_options: Option<StreamOptions>,
}

impl Common {
    fn read(f: &Fields) -> Result<Self, ApiError> {
        Ok(Self {
            model: f.get("model")?,
            max_tokens: f.get("max_tokens")?,
            temperature: f.get("temperature")?,
            top_p: f.get("top_p")?,
            top_k: f.get("top_k")?,
            min_p: f.get("min_p")?,
            repetition_penalty: f.get("repetition_penalty")?,
            frequency_penalty: f.get("frequency_penalty")?,
            presence_penalty: f.get("presence_penalty")?,
            seed: f.get("seed")?,
            stop: f.get("stop")?,
            n: f.get("n")?,
            stream: f.get("stream")?.unwrap_or(false),
            ignore_eos: f.get("ignore_eos")?.unwrap_or(false),
            cache_prompt: f.get("cache_prompt")?,
            stream_options: f.get("stream_options")?,
        })
    }
}

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`.
    Completions,
    /// `/v1/chat/completions`.
    Chat,
}

impl Endpoint {
    /// The label of the endpoint in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Completions => "completions",
            Self::Chat => "chat",
        }
    }
}

/// A request, checked and tokenized.
pub struct Parsed {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// What to generate.
    pub generation: GenerationRequest,
    /// Send chunks as server-sent events.
    pub stream: bool,
    /// Add a usage chunk at the end of a stream.
    pub stream_usage: bool,
    /// Completions: the prompt text to put before the completion.
    pub echo: Option<String>,
    /// Length of the prompt text in characters (offsets of generated tokens start there).
    pub prompt_chars: usize,
    /// May start from the cache of an earlier request.
    pub cache_prompt: bool,
}

/// What the two endpoints' bodies come to before the shared checks.
struct Input {
    common: Common,
    prompt: Vec<u32>,
    offsets: Vec<usize>,
    text: String,
    echo: bool,
    logprobs: Option<usize>,
    prompt_logprobs: Option<usize>,
    max_tokens: usize,
}

fn completion_input(model: &Model, body: &[u8]) -> Result<Input, ApiError> {
    let f = Fields::parse(body)?;
    let logprobs: Option<usize> = f.get("logprobs")?;
    if logprobs.is_some_and(|n| n > 5) {
        return Err(ApiError::invalid(
            Some("logprobs"),
            "`logprobs` must be at most 5",
        ));
    }
    let echo = f.get("echo")?.unwrap_or(false);
    let common = Common::read(&f)?;
    let (prompt, offsets, text) = completion_prompt(model, f.required("prompt")?)?;
    Ok(Input {
        max_tokens: common.max_tokens.unwrap_or(16),
        prompt_logprobs: if echo { logprobs } else { None },
        logprobs,
        echo,
        common,
        prompt,
        offsets,
        text,
    })
}

fn chat_input(model: &Model, body: &[u8]) -> Result<Input, ApiError> {
    let f = Fields::parse(body)?;
    let top_logprobs: Option<usize> = f.get("top_logprobs")?;
    if top_logprobs.is_some_and(|n| n > 20) {
        return Err(ApiError::invalid(
            Some("top_logprobs"),
            "`top_logprobs` must be at most 20",
        ));
    }
    let logprobs = f.get("logprobs")?.unwrap_or(false);
    let max_completion_tokens: Option<usize> = f.get("max_completion_tokens")?;
    let common = Common::read(&f)?;
    let messages = chat_messages(f.required("messages")?)?;
    let prompt = model
        .encode_chat(&messages)
        .map_err(|e| ApiError::invalid(Some("messages"), e.to_string()))?;
    Ok(Input {
        max_tokens: max_completion_tokens
            .or(common.max_tokens)
            .unwrap_or_else(|| model.context_length().saturating_sub(prompt.len())),
        logprobs: logprobs.then(|| top_logprobs.unwrap_or(0)),
        prompt_logprobs: None,
        echo: false,
        common,
        prompt,
        offsets: Vec::new(),
        text: String::new(),
    })
}

/// Parses and checks a request body for `endpoint`.
pub fn parse(model: &Model, endpoint: Endpoint, body: &[u8]) -> Result<Parsed, ApiError> {
    let Input {
        common,
        prompt,
        offsets,
        text: prompt_text,
        echo,
        logprobs,
        prompt_logprobs,
        max_tokens,
    } = match endpoint {
        Endpoint::Completions => completion_input(model, body)?,
        Endpoint::Chat => chat_input(model, body)?,
    };
    let echo = echo.then(|| prompt_text.clone());
    check_model(model, common.model.as_deref())?;
    if common.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(Some("n"), "only `n: 1` is supported"));
    }
    let context = model.context_length();
    if prompt.len() + max_tokens > context {
        return Err(ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::invalid(
                Some(if endpoint == Endpoint::Chat {
                    "messages"
                } else {
                    "prompt"
                }),
                format!(
                    "This model's maximum context length is {context} tokens. However, you \
                     requested {} tokens ({} in the prompt, {max_tokens} for the completion). \
                     Please reduce the prompt or the completion length.",
                    prompt.len() + max_tokens,
                    prompt.len()
                ),
            )
        });
    }
    let sampling = SamplingParams {
        temperature: common.temperature.unwrap_or(1.0),
        top_k: common.top_k.unwrap_or(0),
        top_p: common.top_p.unwrap_or(1.0),
        min_p: common.min_p.unwrap_or(0.0),
        repetition_penalty: common.repetition_penalty.unwrap_or(1.0),
        frequency_penalty: common.frequency_penalty.unwrap_or(0.0),
        presence_penalty: common.presence_penalty.unwrap_or(0.0),
        seed: common.seed.unwrap_or_else(clock_seed),
    };
    sampling
        .validate()
        .map_err(|e| ApiError::invalid(Some(e.name), e.to_string()))?;
    let stop = match common.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(list)) => list,
    };
    if stop.len() > 4 {
        return Err(ApiError::invalid(Some("stop"), "at most 4 stop sequences"));
    }
    Ok(Parsed {
        endpoint,
        generation: GenerationRequest {
            prompt,
            prompt_offsets: offsets,
            max_tokens,
            sampling,
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            prompt_logprobs,
            logprobs,
            ignore_eos: common.ignore_eos,
        },
        stream: common.stream,
        stream_usage: common.stream_options.is_some_and(|o| o.include_usage),
        prompt_chars: prompt_text.chars().count(),
        cache_prompt: common.cache_prompt.unwrap_or(true),
        echo,
    })
}

/// Requests may name the model by its file name or its stem (or not at all).
pub(crate) fn check_model(model: &Model, asked: Option<&str>) -> Result<(), ApiError> {
    let name = model.name();
    let stem = std::path::Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name);
    match asked {
        None => Ok(()),
        Some(asked) if asked.is_empty() || asked == name || asked == stem => Ok(()),
        Some(asked) => Err(ApiError {
            status: 404,
            code: Some("model_not_found"),
            ..ApiError::invalid(
                Some("model"),
                format!("The model `{asked}` does not exist; this server runs `{name}`."),
            )
        }),
    }
}

/// Prompt ids, each token's first character, and the prompt text.
fn completion_prompt(
    model: &Model,
    prompt: Prompt,
) -> Result<(Vec<u32>, Vec<usize>, String), ApiError> {
    let text = match prompt {
        Prompt::Text(text) => text,
        Prompt::Texts(list) => only(list)?,
        Prompt::Tokens(ids) => return token_prompt(model, ids),
        Prompt::TokenLists(lists) => return token_prompt(model, only(lists)?),
    };
    let (ids, offsets) = model
        .tokenizer()
        .encode_with_offsets(&text, true)
        .map_err(|e| ApiError::invalid(Some("prompt"), e.to_string()))?;
    if ids.is_empty() {
        return Err(ApiError::invalid(Some("prompt"), "the prompt is empty"));
    }
    Ok((ids, offsets, text))
}

/// The one prompt of a list.
fn only<T>(mut list: Vec<T>) -> Result<T, ApiError> {
    match list.pop() {
        Some(one) if list.is_empty() => Ok(one),
        _ => Err(ApiError::invalid(
            Some("prompt"),
            "send one prompt per request (a list of several is not supported)",
        )),
    }
}

fn token_prompt(model: &Model, ids: Vec<u32>) -> Result<(Vec<u32>, Vec<usize>, String), ApiError> {
    let vocab = model.config().vocab_size;
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(ApiError::invalid(
            Some("prompt"),
            format!("token id {bad} is outside the vocabulary of {vocab}"),
        ));
    }
    if ids.is_empty() {
        return Err(ApiError::invalid(Some("prompt"), "the prompt is empty"));
    }
    let mut offsets = Vec::with_capacity(ids.len());
    let mut chars = 0;
    for &id in &ids {
        offsets.push(chars);
        chars += model.tokenizer().token_text(id).chars().count();
    }
    let text = model.tokenizer().decode(&ids).unwrap_or_default();
    Ok((ids, offsets, text))
}

fn chat_messages(messages: Vec<Message>) -> Result<Vec<ChatMessage>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(Some("messages"), "`messages` is empty"));
    }
    messages
        .into_iter()
        .map(|m| {
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => parts
                    .iter()
                    .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                        (Some("text"), Some(text)) => Ok(text),
                        _ => Err(ApiError::invalid(
                            Some("messages"),
                            "only text content parts are supported",
                        )),
                    })
                    .collect::<Result<String, _>>()?,
            };
            Ok(ChatMessage {
                role: m.role,
                content,
            })
        })
        .collect()
}

/// A seed for requests that name none.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Completions `logprobs` of a list of tokens: `tokens`, `token_logprobs`, `top_logprobs`,
/// `text_offset` (characters into the returned text).
pub fn completion_logprobs(tokens: &[TokenLogprob]) -> Value {
    json!({
        "tokens": tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": tokens.iter().map(|t| {
            if t.logprob.is_none() {
                Value::Null
            } else {
                t.top.iter().map(|(text, lp)| (text.clone(), json!(lp))).collect::<serde_json::Map<_, _>>().into()
            }
        }).collect::<Vec<_>>(),
        "text_offset": tokens.iter().map(|t| t.offset).collect::<Vec<_>>(),
    })
}

/// Chat `logprobs.content` entries of generated tokens.
pub fn chat_logprobs(tokens: &[TokenLogprob]) -> Value {
    let entry =
        |text: &str, lp: f32| json!({"token": text, "logprob": lp, "bytes": text.as_bytes()});
    Value::Array(
        tokens
            .iter()
            .map(|t| {
                let mut e = entry(&t.text, t.logprob.unwrap_or(f32::NEG_INFINITY));
                e["top_logprobs"] = t.top.iter().map(|(text, lp)| entry(text, *lp)).collect();
                e
            })
            .collect(),
    )
}
