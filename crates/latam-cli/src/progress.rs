//! Progress on stderr: an indicatif bar, JSON lines, or nothing.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use latam_pipeline::{NoProgress, Progress, ProgressUpdate};

/// How progress is shown.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// A bar with documents/s and MB/s.
    Bar,
    /// One JSON object per second: {"docs", "mb", "kept", "fraction", "elapsed_s", ...}.
    Json,
    /// Nothing.
    None,
}

pub(crate) fn make_progress(mode: Option<ProgressMode>) -> Box<dyn Progress> {
    let mode = mode.unwrap_or(if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::None
    });
    match mode {
        ProgressMode::Bar => Box::new(Bar::new()),
        ProgressMode::Json => Box::new(JsonLines {
            last: Mutex::new(None),
            pass: Mutex::new("writing".into()),
        }),
        ProgressMode::None => Box::new(NoProgress),
    }
}

fn rates(u: &ProgressUpdate) -> (f64, f64, f64) {
    let secs = u.elapsed.as_secs_f64().max(1e-9);
    let mb = u.text_bytes as f64 / 1e6;
    (mb, u.docs as f64 / secs, mb / secs)
}

fn fraction(u: &ProgressUpdate) -> f64 {
    if u.stored_total == 0 {
        0.0
    } else {
        (u.stored_bytes as f64 / u.stored_total as f64).min(1.0)
    }
}

struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {elapsed_precise} [{bar:30}] {percent:>3}% {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar }
    }
}

impl Progress for Bar {
    fn begin(&self, pass: &str) {
        self.bar.reset();
        self.bar.set_prefix(pass.to_owned());
    }

    fn update(&self, u: &ProgressUpdate) {
        let (mb, docs_s, mb_s) = rates(u);
        self.bar.set_position((fraction(u) * 1000.0) as u64);
        self.bar.set_message(format!(
            "{} docs, {mb:.1} MB · {docs_s:.0} docs/s · {mb_s:.1} MB/s · kept {}",
            u.docs, u.kept
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

struct JsonLines {
    last: Mutex<Option<Instant>>,
    pass: Mutex<String>,
}

impl Progress for JsonLines {
    fn begin(&self, pass: &str) {
        pass.clone_into(&mut self.pass.lock().expect("progress lock"));
        *self.last.lock().expect("progress lock") = None;
    }

    fn update(&self, u: &ProgressUpdate) {
        let mut last = self.last.lock().expect("progress lock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        let (mb, docs_s, mb_s) = rates(u);
        let pass = self.pass.lock().expect("progress lock").clone();
        let line = serde_json::json!({
            "pass": pass, "docs": u.docs, "mb": mb, "kept": u.kept, "fraction": fraction(u),
            "docs_per_s": docs_s, "mb_per_s": mb_s, "elapsed_s": u.elapsed.as_secs_f64(),
        });
        eprintln!("{line}");
    }
}
