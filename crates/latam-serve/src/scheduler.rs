//! The model thread: admits generations from a queue and runs them in rounds, one step (a
//! prompt chunk or one token) each, so that every stream advances at the same pace and a long
//! prompt does not stall the others; the decoding steps of a round share one batched forward
//! pass (continuous batching). A generation whose client went away is dropped at its next
//! round.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, OnceLock};
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
    /// May start from the prefix cache.
    pub cache_prompt: bool,
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
    /// Set when the generation has ended: ok, cancelled or error.
    outcome: Option<&'static str>,
    /// The final update, held back until the metrics and the request's place account for the
    /// end, so that a client that reads `/metrics` after its answer sees its request gone.
    last: Option<Update>,
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

/// Why the model thread is gone, set once as it ends (`None` while it runs).
#[derive(Default)]
pub struct Stopped(OnceLock<&'static str>);

impl Stopped {
    /// Why the model thread ended, if it has.
    pub fn reason(&self) -> Option<&'static str> {
        self.0.get().copied()
    }

    /// A guard for the model thread to hold: dropped by its return or its panic, it records
    /// which.
    pub(crate) fn guard(&self) -> StopOnDrop<'_> {
        StopOnDrop(self)
    }
}

/// Marks the model thread stopped when dropped, by a return or a panic.
pub(crate) struct StopOnDrop<'a>(&'a Stopped);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.0.set(if std::thread::panicking() {
            "the model thread panicked (the server's log says where)"
        } else {
            "the model thread has ended"
        });
    }
}

/// Runs jobs until the queue's senders are gone and no job is left; `stopped` is set when it
/// ends, before the requests it held are dropped (so a request that sees its answer cut
/// finds the server unhealthy).
pub fn run(
    model: &Model,
    queue: &Receiver<Job>,
    max_running: usize,
    metrics: &Metrics,
    stopped: &Stopped,
) {
    let mut running: VecDeque<Running> = VecDeque::new();
    let mut prefixes = PrefixCache {
        entries: VecDeque::new(),
        max_entries: 2 * max_running,
        max_tokens: 4 * model.context_length(),
    };
    // Declared last, so dropped first.
    let _stop = stopped.guard();
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
        round(model, &mut running, metrics);
        // Finished generations leave; their caches serve later prompts.
        let mut ended = Vec::new();
        for entry in std::mem::take(&mut running) {
            match entry.outcome {
                None => running.push_back(entry),
                Some(outcome) => {
                    metrics.finished(entry.job.endpoint, outcome, &entry.job);
                    let Running { job, last, .. } = entry;
                    // The rest of the job, its place included, is dropped with this arm.
                    let Job {
                        generation,
                        updates,
                        ..
                    } = job;
                    if outcome != "error" {
                        let (tokens, cache) = generation.into_cache();
                        prefixes.put(tokens, cache);
                    }
                    ended.extend(last.map(|last| (updates, last)));
                }
            }
        }
        metrics.set_running(running.len());
        for (updates, last) in ended {
            let _ = updates.send(last);
        }
    }
}

/// One step of every running generation: those at a decoding step in one batched pass over
/// the weights, the others (prompt chunks, first tokens) one by one.
fn round(model: &Model, running: &mut VecDeque<Running>, metrics: &Metrics) {
    for entry in running.iter_mut() {
        if entry.job.updates.is_closed() {
            entry.outcome = Some("cancelled");
        }
    }
    let (mut decoding, others): (Vec<&mut Running>, Vec<&mut Running>) = running
        .iter_mut()
        .filter(|e| e.outcome.is_none())
        .partition(|e| e.job.generation.next_input().is_some());
    if decoding.len() > 1 {
        let mut generations: Vec<&mut Generation> =
            decoding.iter_mut().map(|e| &mut e.job.generation).collect();
        match model.step_batch(&mut generations) {
            Ok(all) => {
                for (entry, events) in decoding.into_iter().zip(all) {
                    deliver(entry, events, metrics);
                }
            }
            Err(e) => {
                for entry in decoding {
                    fail(entry, &e.to_string());
                }
            }
        }
    } else {
        for entry in decoding {
            step(model, entry, metrics);
        }
    }
    for entry in others {
        step(model, entry, metrics);
    }
}

fn step(model: &Model, entry: &mut Running, metrics: &Metrics) {
    match entry.job.generation.step(model) {
        Ok(events) => deliver(entry, events, metrics),
        Err(e) => fail(entry, &e.to_string()),
    }
}

/// Sends a step's events to the request (a closed channel is noticed at the next round).
fn deliver(entry: &mut Running, events: Vec<Event>, metrics: &Metrics) {
    for event in events {
        if matches!(event, Event::Token { .. }) && !entry.first_token {
            entry.first_token = true;
            metrics.first_token(entry.job.received.elapsed());
        }
        if matches!(event, Event::Done { .. }) {
            entry.outcome = Some("ok");
            entry.last = Some(Update::Model(event));
        } else {
            let _ = entry.job.updates.send(Update::Model(event));
        }
    }
}

fn fail(entry: &mut Running, message: &str) {
    entry.last = Some(Update::Failed(message.to_owned()));
    entry.outcome = Some("error");
}

/// Starts a job, on the cache of an earlier one when they share a prefix.
fn admit(mut job: Job, prefixes: &PrefixCache, metrics: &Metrics) -> Running {
    if job.cache_prompt
        && job.generation.can_reuse()
        && let Some((tokens, cache)) = prefixes.best(job.generation.prompt())
    {
        metrics.cached(job.generation.reuse(tokens, cache));
    }
    Running {
        job,
        first_token: false,
        outcome: None,
        last: None,
    }
}
