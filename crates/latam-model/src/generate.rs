//! One generation as a resumable state machine: chunked prefill (with the log-probabilities of
//! the prompt when asked), then one token per step, with stop strings and end-of-generation ids.
//! A server interleaves the steps of many generations; `Model::complete` runs one to the end.

use crate::llama::{KvCache, last_row, log_softmax, rows};
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::IncrementalDecoder;
use crate::{Model, ModelError};

/// Prompt tokens run per step: long prompts do not hold up the other sequences of a server.
const PREFILL_CHUNK: usize = 256;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    /// Token ids of the prompt (BOS included when the model wants it).
    pub prompt: Vec<u32>,
    /// Start of each prompt token in the prompt text (characters), for echoed logprobs.
    pub prompt_offsets: Vec<usize>,
    /// Most tokens to generate (0: only score the prompt).
    pub max_tokens: usize,
    /// How tokens are chosen.
    pub sampling: SamplingParams,
    /// Texts that end the completion (not included in it).
    pub stop: Vec<String>,
    /// Log-probabilities of the prompt's tokens with this many alternatives each.
    pub prompt_logprobs: Option<usize>,
    /// Log-probabilities of generated tokens with this many alternatives each.
    pub logprobs: Option<usize>,
    /// Keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
}

impl GenerationRequest {
    /// Greedy generation of up to `max_tokens` after `prompt`.
    pub fn new(prompt: Vec<u32>, max_tokens: usize) -> Self {
        Self {
            prompt,
            prompt_offsets: Vec::new(),
            max_tokens,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            prompt_logprobs: None,
            logprobs: None,
            ignore_eos: false,
        }
    }
}

/// Why a generation ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context length.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// One token with its log-probability and the most likely alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token id.
    pub id: u32,
    /// Its text.
    pub text: String,
    /// Its log-probability (`None` for the first prompt token, which nothing predicts).
    pub logprob: Option<f32>,
    /// The most likely tokens at this position, most likely first.
    pub top: Vec<(String, f32)>,
    /// For prompt tokens: the first character of the token in the prompt.
    pub offset: usize,
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The prompt's log-probabilities, once, after the prefill.
    PromptLogprobs(Vec<TokenLogprob>),
    /// A generated token: the text it completes (may be empty while a character or a possible
    /// stop string is incomplete) and its log-probability when asked.
    Token {
        /// New completion text.
        text: String,
        /// The token and its log-probability, when `logprobs` was asked.
        logprob: Option<TokenLogprob>,
    },
    /// The end, with any text held back until now.
    Done {
        /// Remaining text.
        text: String,
        /// Why it ended.
        reason: FinishReason,
    },
}

/// A generation in progress.
pub struct Generation {
    request: GenerationRequest,
    cache: KvCache,
    sampler: Sampler,
    decoder: IncrementalDecoder,
    /// Prompt tokens already run.
    prefilled: usize,
    prompt_logprobs: Vec<TokenLogprob>,
    /// Logits of the last position run.
    logits: Vec<f32>,
    /// The last sampled token, to run at the next step.
    pending: Option<u32>,
    /// Ids generated so far.
    generated: Vec<u32>,
    /// Completion text so far and how much of it was handed out.
    text: String,
    sent: usize,
    finished: bool,
}

impl Generation {
    /// Checks the request against the model and prepares the sequence.
    pub fn new(model: &Model, request: GenerationRequest) -> Result<Self, ModelError> {
        if request.prompt.is_empty() {
            return Err(ModelError::Input("the prompt has no tokens".into()));
        }
        let context = model.context_length();
        if request.prompt.len() + request.max_tokens > context {
            return Err(ModelError::Input(format!(
                "this model's maximum context length is {context} tokens, but {} were \
                 requested ({} in the prompt, {} for the completion)",
                request.prompt.len() + request.max_tokens,
                request.prompt.len(),
                request.max_tokens
            )));
        }
        request
            .sampling
            .validate()
            .map_err(|e| ModelError::Input(e.to_string()))?;
        Ok(Self {
            sampler: Sampler::new(request.sampling.clone(), &request.prompt),
            cache: model.new_cache(),
            decoder: IncrementalDecoder::default(),
            prefilled: 0,
            prompt_logprobs: Vec::new(),
            logits: Vec::new(),
            pending: None,
            generated: Vec::new(),
            text: String::new(),
            sent: 0,
            finished: false,
            request,
        })
    }

    /// Number of prompt tokens.
    pub fn prompt_tokens(&self) -> usize {
        self.request.prompt.len()
    }

    /// Number of tokens generated so far.
    pub fn completion_tokens(&self) -> usize {
        self.generated.len()
    }

    /// The prompt's token ids.
    pub fn prompt(&self) -> &[u32] {
        &self.request.prompt
    }

    /// True while a cache of earlier tokens could still stand in for part of the prefill.
    pub fn can_reuse(&self) -> bool {
        self.prefilled == 0
            && self.request.prompt_logprobs.is_none()
            && self.request.prompt.len() > 1
    }

    /// Starts from a cache that holds the keys and values of `tokens`, reusing their longest
    /// common prefix with the prompt (the last prompt token always runs, and nothing is reused
    /// when the prompt's log-probabilities are asked). Returns the number of tokens reused.
    pub fn reuse(&mut self, tokens: &[u32], mut cache: KvCache) -> usize {
        if !self.can_reuse() {
            return 0;
        }
        let common = tokens
            .iter()
            .zip(&self.request.prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(self.request.prompt.len() - 1)
            .min(cache.len());
        if common > 0 {
            cache.truncate(common);
            self.cache = cache;
            self.prefilled = common;
        }
        common
    }

    /// The tokens whose keys and values the cache holds, and the cache, for reuse.
    pub fn into_cache(self) -> (Vec<u32>, KvCache) {
        let mut tokens = self.request.prompt;
        tokens.truncate(self.prefilled);
        tokens.extend(&self.generated);
        tokens.truncate(self.cache.len());
        (tokens, self.cache)
    }

    /// True once `Event::Done` was returned.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Runs one unit of work (a prompt chunk or one token) and returns what it produced.
    pub fn step(&mut self, model: &Model) -> Result<Vec<Event>, ModelError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let prompt_len = self.request.prompt.len();
        if self.prefilled < prompt_len {
            self.prefill_chunk(model)?;
            if self.prefilled < prompt_len {
                return Ok(Vec::new());
            }
            let mut events = Vec::new();
            if self.request.prompt_logprobs.is_some() {
                events.push(Event::PromptLogprobs(std::mem::take(
                    &mut self.prompt_logprobs,
                )));
            }
            if self.request.max_tokens == 0 {
                events.push(self.finish(FinishReason::Length));
            }
            return Ok(events);
        }
        if let Some(token) = self.pending.take() {
            let logits = model.forward(&[token], &mut self.cache, false)?;
            self.logits = last_row(&logits)?;
        }
        self.decode(model)
    }

    /// The token to run at the next step, when that step is a decoding step (it can then be
    /// run in a batch with other generations: `Model::step_batch`).
    pub fn next_input(&self) -> Option<u32> {
        if self.finished { None } else { self.pending }
    }

    /// Samples, checks the ends and emits one token from `self.logits`.
    fn decode(&mut self, model: &Model) -> Result<Vec<Event>, ModelError> {
        let token = self.sampler.sample(&self.logits);
        let logprob = self
            .request
            .logprobs
            .map(|top| token_logprob(model, &log_softmax(&self.logits), token, top, 0));
        if !self.request.ignore_eos && model.eos_ids().contains(&token) {
            return Ok(vec![self.finish(FinishReason::Stop)]);
        }
        self.sampler.observe(token);
        self.generated.push(token);
        self.text
            .push_str(&self.decoder.push(model.tokenizer(), token)?);
        if let Some(at) = self.stop_at() {
            self.text.truncate(at);
            let mut events = Vec::new();
            if logprob.is_some() {
                events.push(Event::Token {
                    text: String::new(),
                    logprob,
                });
            }
            events.push(self.finish(FinishReason::Stop));
            return Ok(events);
        }
        let ready = self.text.len() - self.holdback();
        let text = self.text[self.sent.min(ready)..ready].to_owned();
        self.sent = self.sent.max(ready);
        let mut events = vec![Event::Token { text, logprob }];
        if self.generated.len() >= self.request.max_tokens
            || self.cache.len() + 1 >= model.context_length()
        {
            events.push(self.finish(FinishReason::Length));
        } else {
            self.pending = Some(token);
        }
        Ok(events)
    }

    fn prefill_chunk(&mut self, model: &Model) -> Result<(), ModelError> {
        let start = self.prefilled;
        let end = (start + PREFILL_CHUNK).min(self.request.prompt.len());
        let chunk = &self.request.prompt[start..end];
        let Some(top) = self.request.prompt_logprobs else {
            let logits = model.forward(chunk, &mut self.cache, false)?;
            self.logits = last_row(&logits)?;
            self.prefilled = end;
            return Ok(());
        };
        let offset = |i: usize| self.request.prompt_offsets.get(i).copied().unwrap_or(0);
        if start == 0 {
            let first = self.request.prompt[0];
            self.prompt_logprobs.push(TokenLogprob {
                id: first,
                text: model.tokenizer().token_text(first),
                logprob: None,
                top: Vec::new(),
                offset: offset(0),
            });
        }
        let logits = rows(&model.forward(chunk, &mut self.cache, true)?)?;
        for (i, row) in logits.iter().enumerate() {
            let next = start + i + 1;
            if let Some(&id) = self.request.prompt.get(next) {
                let lp = log_softmax(row);
                self.prompt_logprobs
                    .push(token_logprob(model, &lp, id, top, offset(next)));
            }
        }
        self.logits = logits.last().cloned().unwrap_or_default();
        self.prefilled = end;
        Ok(())
    }

    fn finish(&mut self, reason: FinishReason) -> Event {
        self.finished = true;
        let text = self.text.get(self.sent..).unwrap_or_default().to_owned();
        self.sent = self.text.len();
        Event::Done { text, reason }
    }

    /// Where the first stop string starts in the completion, if one is there.
    fn stop_at(&self) -> Option<usize> {
        let longest = self.request.stop.iter().map(String::len).max()?;
        let mut from = self.sent.saturating_sub(longest);
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        self.request
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i))
            .min()
    }

    /// Bytes at the end of the completion that may begin a stop string.
    fn holdback(&self) -> usize {
        self.request
            .stop
            .iter()
            .flat_map(|s| {
                s.char_indices()
                    .skip(1)
                    .map(|(i, _)| &s[..i])
                    .filter(|prefix| self.text.ends_with(prefix))
                    .map(str::len)
            })
            .max()
            .unwrap_or(0)
    }
}

fn token_logprob(
    model: &Model,
    logprobs: &[f32],
    id: u32,
    top: usize,
    offset: usize,
) -> TokenLogprob {
    let mut best: Vec<(usize, f32)> = Vec::new();
    if top > 0 {
        let mut all: Vec<(usize, f32)> = logprobs.iter().copied().enumerate().collect();
        let k = top.min(all.len());
        all.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        all.truncate(k);
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        best = all;
    }
    TokenLogprob {
        id,
        text: model.tokenizer().token_text(id),
        logprob: logprobs.get(id as usize).copied(),
        top: best
            .into_iter()
            .map(|(i, lp)| (model.tokenizer().token_text(i as u32), lp))
            .collect(),
        offset,
    }
}

impl Model {
    /// One decoding step of several generations whose `next_input` is set, with one forward
    /// pass for all of them; the events of each, in order.
    pub fn step_batch(
        &self,
        generations: &mut [&mut Generation],
    ) -> Result<Vec<Vec<Event>>, ModelError> {
        let tokens = generations
            .iter()
            .map(|g| g.next_input())
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| ModelError::Input("a generation is not at a decoding step".into()))?;
        let mut caches: Vec<&mut KvCache> = generations.iter_mut().map(|g| &mut g.cache).collect();
        let logits = self.forward_batch(&tokens, &mut caches)?;
        let rows = rows(&logits)?;
        generations
            .iter_mut()
            .zip(rows)
            .map(|(g, row)| {
                g.pending = None;
                g.logits = row;
                g.decode(self)
            })
            .collect()
    }

    /// Runs a generation to the end, calling `on_text` with each new piece of text, and
    /// returns the completion and why it ended.
    pub fn complete(
        &self,
        request: GenerationRequest,
        mut on_text: impl FnMut(&str),
    ) -> Result<(String, FinishReason), ModelError> {
        let mut generation = Generation::new(self, request)?;
        let mut out = String::new();
        loop {
            for event in generation.step(self)? {
                match event {
                    Event::Token { text, .. } => {
                        on_text(&text);
                        out.push_str(&text);
                    }
                    Event::Done { text, reason } => {
                        on_text(&text);
                        out.push_str(&text);
                        return Ok((out, reason));
                    }
                    Event::PromptLogprobs(_) => {}
                }
            }
        }
    }
}
