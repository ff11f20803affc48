//! The model thread: admits generations from a queue and runs them round-robin, one step
//! (a prompt chunk or one token) each, so that every stream advances at the same pace and a
//! long prompt does not stall the others. A generation whose client went away is dropped at
//! its next turn.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use latam_model::{Event, Generation, KvCache, Model};
use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::Metrics;

/// What the model thread tells a request.
#[derive(Debug)]
pub enum Update {
    /// Output of a step.
    Model(Event),
    /// The generation failed.
    Failed(String),
}

/// A request holding one of the server's places (running or waiting); the place is freed when
/// the job is dropped.
pub struct Job {
    pub generation: Generation,
    pub updates: UnboundedSender<Update>,
    pub endpoint: &'static str,
    pub received: Instant,
    /// Held for its `Drop`, which frees the place.
    pub _place: Place,
}

/// One of the `max_running + max_waiting` places of the server.
pub struct Place(Arc<AtomicUsize>);

impl Place {
    /// Takes a place when fewer than `limit` are taken.
    pub fn take(taken: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(taken)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Running {
    job: Job,
    first_token: bool,
}

/// Key/value caches of finished generations, most recent first: a request that starts with the
/// same tokens (a system prompt, few-shot examples, the earlier turns of a chat) skips them.
struct PrefixCache {
    entries: VecDeque<(Vec<u32>, KvCache)>,
    max_entries: usize,
    max_tokens: usize,
}

impl PrefixCache {
    /// A copy of the entry sharing the longest prefix with `prompt`, if any shares one (the
    /// entry stays for the next request with the same start).
    fn best(&self, prompt: &[u32]) -> Option<(&[u32], KvCache)> {
        let common = |tokens: &[u32]| {
            tokens
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let (best, shared) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (tokens, _))| (i, common(tokens)))
            .max_by_key(|&(_, n)| n)?;
        if shared == 0 {
            return None;
        }
        let (tokens, cache) = &self.entries[best];
        Some((tokens, cache.try_clone().ok()?))
    }

    fn put(&mut self, tokens: Vec<u32>, cache: KvCache) {
        if tokens.is_empty() {
            return;
        }
        // An entry whose tokens begin the new one's adds nothing.
        self.entries.retain(|(old, _)| !tokens.starts_with(old));
        self.entries.push_front((tokens, cache));
        while self.entries.len() > self.max_entries
            || self.entries.iter().map(|e| e.1.len()).sum::<usize>() > self.max_tokens
        {
            self.entries.pop_back();
        }
    }
}

/// Runs jobs until the queue's senders are gone and no job is left.
pub fn run(model: &Model, queue: &Receiver<Job>, max_running: usize, metrics: &Metrics) {
    let mut running: VecDeque<Running> = VecDeque::new();
    let mut prefixes = PrefixCache {
        entries: VecDeque::new(),
        max_entries: 2 * max_running,
        max_tokens: 4 * model.context_length(),
    };
    loop {
        if running.is_empty() {
            match queue.recv() {
                Ok(job) => running.push_back(admit(job, &prefixes, metrics)),
                Err(_) => return,
            }
        }
        while running.len() < max_running {
            match queue.try_recv() {
                Ok(job) => running.push_back(admit(job, &prefixes, metrics)),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        metrics.set_running(running.len());
        for _ in 0..running.len() {
            let Some(mut entry) = running.pop_front() else {
                break;
            };
            if entry.job.updates.is_closed() {
                metrics.finished(entry.job.endpoint, "cancelled", &entry.job);
                let (tokens, cache) = entry.job.generation.into_cache();
                prefixes.put(tokens, cache);
                continue;
            }
            match entry.job.generation.step(model) {
                Ok(events) => {
                    let mut done = false;
                    for event in events {
                        if matches!(event, Event::Token { .. }) && !entry.first_token {
                            entry.first_token = true;
                            metrics.first_token(entry.job.received.elapsed());
                        }
                        done |= matches!(event, Event::Done { .. });
                        // A closed channel is noticed at the next turn.
                        let _ = entry.job.updates.send(Update::Model(event));
                    }
                    if done {
                        metrics.finished(entry.job.endpoint, "ok", &entry.job);
                        let (tokens, cache) = entry.job.generation.into_cache();
                        prefixes.put(tokens, cache);
                    } else {
                        running.push_back(entry);
                    }
                }
                Err(e) => {
                    let _ = entry.job.updates.send(Update::Failed(e.to_string()));
                    metrics.finished(entry.job.endpoint, "error", &entry.job);
                }
            }
        }
    }
}

/// Starts a job, on the cache of an earlier one when they share a prefix.
fn admit(mut job: Job, prefixes: &PrefixCache, metrics: &Metrics) -> Running {
    if job.generation.can_reuse()
        && let Some((tokens, cache)) = prefixes.best(job.generation.prompt())
    {
        metrics.cached(job.generation.reuse(tokens, cache));
    }
    Running {
        job,
        first_token: false,
    }
}
