//! Counters of the server in the Prometheus text format (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::scheduler::Job;

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 11] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// The server's counters, shared by the handlers and the model thread.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    prompt_tokens: AtomicU64,
    cached_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    running: AtomicUsize,
    latency: Mutex<(Histogram, Histogram)>,
}

impl Metrics {
    /// Counts a request that ended with `outcome` (ok, invalid, rejected, cancelled, error).
    pub fn count(&self, endpoint: &'static str, outcome: &'static str) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((endpoint, outcome))
            .or_default() += 1;
    }

    /// Records a generation that left the model thread.
    pub fn finished(&self, endpoint: &'static str, outcome: &'static str, job: &Job) {
        self.count(endpoint, outcome);
        self.prompt_tokens
            .fetch_add(job.generation.prompt_tokens() as u64, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(job.generation.completion_tokens() as u64, Ordering::Relaxed);
        self.latency
            .lock()
            .expect("metrics lock")
            .1
            .observe(job.received.elapsed().as_secs_f64());
    }

    /// Counts prompt tokens taken from the prefix cache instead of being run.
    pub fn cached(&self, tokens: usize) {
        self.cached_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
    }

    /// Records the time from a request's arrival to its first generated token.
    pub fn first_token(&self, elapsed: Duration) {
        self.latency
            .lock()
            .expect("metrics lock")
            .0
            .observe(elapsed.as_secs_f64());
    }

    /// Sets how many generations the model thread is running.
    pub fn set_running(&self, n: usize) {
        self.running.store(n, Ordering::Relaxed);
    }

    /// The exposition text; `taken` is the number of places held (running and waiting).
    pub fn render(&self, model: &str, taken: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP latam_requests_total Requests by endpoint and outcome.\n\
             # TYPE latam_requests_total counter"
        );
        for ((endpoint, outcome), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "latam_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let running = self.running.load(Ordering::Relaxed);
        let gauges = [
            (
                "latam_prompt_tokens_total",
                "counter",
                "Prompt tokens processed.",
                self.prompt_tokens.load(Ordering::Relaxed),
            ),
            (
                "latam_prompt_tokens_cached_total",
                "counter",
                "Prompt tokens whose keys and values came from an earlier request.",
                self.cached_tokens.load(Ordering::Relaxed),
            ),
            (
                "latam_generation_tokens_total",
                "counter",
                "Tokens generated.",
                self.completion_tokens.load(Ordering::Relaxed),
            ),
            (
                "latam_requests_running",
                "gauge",
                "Generations the model is running.",
                running as u64,
            ),
            (
                "latam_requests_waiting",
                "gauge",
                "Generations waiting for the model.",
                taken.saturating_sub(running) as u64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let latency = self.latency.lock().expect("metrics lock");
        latency.0.render(
            &mut out,
            "latam_time_to_first_token_seconds",
            "From a request's arrival to its first token.",
        );
        latency.1.render(
            &mut out,
            "latam_request_duration_seconds",
            "From a request's arrival to its last token.",
        );
        let _ = writeln!(
            out,
            "# HELP latam_model_info The model served.\n# TYPE latam_model_info gauge\n\
             latam_model_info{{model=\"{}\"}} 1",
            model.replace('\\', "\\\\").replace('"', "\\\"")
        );
        out
    }
}
