//! `latam eval` against a fake OpenAI-compatible server on 127.0.0.1 that knows the answers of
//! real benchmark rows (tests/data/eval): scores are checked exactly.

mod util;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::openai::{FakeOpenAi, Knowledge, token_logprob, tokens};
use util::{Scratch, chromium, read_json};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval")
        .join(name)
}

/// (question, reference, country) of the CHOCLO sample.
fn choclo_rows() -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(data("choclo_release.csv")).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[6].to_owned(), r[7].to_owned(), r[2].to_owned())
        })
        .collect()
}

fn choclo_knowledge() -> Knowledge {
    Knowledge {
        open: choclo_rows().into_iter().map(|(q, a, _)| (q, a)).collect(),
        ..Knowledge::default()
    }
}

fn eval(s: &Scratch, endpoint: &str, args: &[&str]) -> util::Run {
    let mut all = vec!["eval", "run", "--endpoint", endpoint, "--progress", "none"];
    all.extend_from_slice(args);
    s.run(&all)
}

/// `latam eval run --task choclo` against `endpoint` on `file` with `model` into `output`, plus
/// `extra` arguments.
fn choclo(
    s: &Scratch,
    endpoint: &str,
    file: &Path,
    model: &str,
    output: &str,
    extra: &[&str],
) -> util::Run {
    let mut args = vec![
        "--task",
        "choclo",
        "--data",
        file.to_str().unwrap(),
        "--model",
        model,
        "--output",
        output,
    ];
    args.extend_from_slice(extra);
    eval(s, endpoint, &args)
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap_or(f64::NAN) - b).abs() < 1e-9
}

#[test]
fn choclo_with_the_judge_in_both_column_namings() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(choclo_knowledge());
    let rows = choclo_rows();
    let right = rows
        .iter()
        .filter(|(q, _, _)| q.chars().count() % 2 == 0)
        .count() as f64
        / rows.len() as f64;
    let release = data("choclo_release.csv");
    let hub = data("choclo_hub.csv");
    let judge = ["--judge-model", "judge-flaky"];
    choclo(
        &s,
        &fake.url,
        &release,
        "half",
        "release",
        &[&judge[..], &["--concurrency", "4"]].concat(),
    )
    .expect(0);
    let summary = read_json(&s.path("release/summary.json"));
    assert_eq!(summary["num_examples"], 24);
    let m = &summary["metrics"];
    assert!(close(&m["normalized_exact_match"], right), "{m}");
    // "No lo sé." shares a word with a few references: token F1 is a little above exact match.
    let f1 = m["token_f1"].as_f64().unwrap();
    assert!(
        f1 >= right && f1 < right + 0.05 && close(&m["answered"], 1.0),
        "{m}"
    );
    assert!(
        close(&m["judge_correct"], right) && close(&m["judge_overall"], right),
        "{m}"
    );
    assert!(close(&m["judge_not_attempted"], 1.0 - right), "{m}");
    // Every verdict came on the second attempt (the first reply is broken JSON).
    assert_eq!(summary["judge_usage"]["total_tokens"], 2 * 15 * 24);
    assert_eq!(fake.chats("judge-flaky"), 48);
    let countries = &summary["breakdowns"]["country"];
    assert_eq!(
        countries["Perú"]["count"],
        rows.iter().filter(|r| r.2 == "Perú").count()
    );
    assert!(
        summary["breakdowns"]["difficulty"]["FÁCIL"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    // The Hub naming gives the same scores and breakdowns, and asks nothing again (cache).
    let cache = s.path("release/cache.sqlite");
    let shared = ["--cache", cache.to_str().unwrap()];
    choclo(
        &s,
        &fake.url,
        &hub,
        "half",
        "hub",
        &[&judge[..], &shared[..]].concat(),
    )
    .expect(0);
    let again = read_json(&s.path("hub/summary.json"));
    assert_eq!(again["metrics"], summary["metrics"]);
    assert_eq!(
        again["breakdowns"]["country"],
        summary["breakdowns"]["country"]
    );
    assert_eq!(
        again["breakdowns"]["difficulty"],
        summary["breakdowns"]["difficulty"]
    );
    assert_eq!(fake.chats("half"), 24);
    let run = read_json(&s.path("release/run.json"));
    assert_eq!(run["model"], "half");
    assert_eq!(run["judge"]["model"], "judge-flaky");
    assert_eq!(run["data"][0]["rows"], 24);
    assert_eq!(run["data"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(run["prompts"]["system"]["sha256"].is_string());
    let rows_out = util::read_jsonl(&s.path("release/rows.jsonl"));
    assert_eq!(rows_out.len(), 24);
    assert!(
        rows_out
            .iter()
            .all(|r| r["judge"]["verdict"].is_string() && r["answer"].is_string())
    );
}

#[test]
fn the_report_compares_runs() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(choclo_knowledge());
    let release = data("choclo_release.csv");
    for model in ["half", "oracle"] {
        choclo(&s, &fake.url, &release, model, model, &[]).expect(0);
    }
    s.run(&["eval", "report", "half", "oracle", "--output", "report"])
        .expect(0);
    let md = std::fs::read_to_string(s.path("report/report.md")).unwrap();
    assert!(
        md.contains("half · choclo")
            && md.contains("oracle · choclo")
            && md.contains("## By country"),
        "{md}"
    );
    assert!(md.contains("| Perú |"), "{md}");
    let html = std::fs::read_to_string(s.path("report/report.html")).unwrap();
    assert!(html.contains("class=\"chart\"") && html.contains("By difficulty"));
    let run = s
        .run(&["eval", "report", "nowhere", "--output", "r2"])
        .expect(2);
    assert!(
        run.stderr()
            .contains("is this the --output of `latam eval run`?"),
        "{}",
        run.stderr()
    );
}

#[test]
fn trueque_topics_are_multi_label_and_429s_are_retried() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(choclo_knowledge());
    let mut file = String::from("question,reference_answer,country,topic\n");
    for (i, (q, a, c)) in choclo_rows().iter().enumerate().take(10) {
        let topic = if i % 2 == 0 {
            "historia, cultura"
        } else {
            "cultura"
        };
        let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
        writeln!(
            file,
            "{},{},{},{}",
            quote(q),
            quote(a),
            quote(c),
            quote(topic)
        )
        .unwrap();
    }
    let path = s.write("trueque.csv", file.as_bytes());
    eval(
        &s,
        &fake.url,
        &[
            "--task",
            "trueque",
            "--data",
            path.to_str().unwrap(),
            "--model",
            "flaky",
            "--output",
            "out",
        ],
    )
    .expect(0);
    let summary = read_json(&s.path("out/summary.json"));
    assert!(close(&summary["metrics"]["normalized_exact_match"], 1.0));
    assert_eq!(summary["breakdowns"]["topic"]["cultura"]["count"], 10);
    assert_eq!(summary["breakdowns"]["topic"]["historia"]["count"], 5);
    assert_eq!(
        fake.chats("flaky"),
        10,
        "each request answered once after its 429"
    );
}

/// Question text → right choice, for the three multiple-choice samples.
fn exam_knowledge() -> Knowledge {
    let mut choice = HashMap::new();
    let oab: Value =
        serde_json::from_str(&std::fs::read_to_string(data("oab.json")).unwrap()).unwrap();
    for q in oab.as_array().unwrap() {
        if let Some(i) = q["options"]
            .as_array()
            .unwrap()
            .iter()
            .position(|o| o["correct"] == json!(true))
        {
            choice.insert(q["enum"].as_str().unwrap().trim().to_owned(), i);
        }
    }
    for line in std::fs::read_to_string(data("enem_2024.jsonl"))
        .unwrap()
        .lines()
    {
        let q: Value = serde_json::from_str(line).unwrap();
        let i = q["label"].as_str().unwrap().chars().next().unwrap() as usize - 'A' as usize;
        choice.insert(q["question"].as_str().unwrap().trim().to_owned(), i);
    }
    let unmsm: Value =
        serde_json::from_str(&std::fs::read_to_string(data("unmsm.json")).unwrap()).unwrap();
    for q in unmsm.as_array().unwrap() {
        choice.insert(
            q["question"].as_str().unwrap().trim().to_owned(),
            q["answer"].as_u64().unwrap() as usize,
        );
    }
    Knowledge {
        choice,
        ..Knowledge::default()
    }
}

#[test]
fn multiple_choice_by_generation_and_log_likelihood_on_real_exams() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(exam_knowledge());
    let (oab, enem, unmsm) = (
        data("oab.json"),
        data("enem_2024.jsonl"),
        data("unmsm.json"),
    );
    let files = [
        "--data",
        oab.to_str().unwrap(),
        "--data",
        enem.to_str().unwrap(),
        "--data",
        unmsm.to_str().unwrap(),
    ];
    let mut args = vec![
        "--task",
        "mc",
        "--model",
        "oracle",
        "--mc-mode",
        "both",
        "--output",
        "both",
    ];
    args.extend_from_slice(&files);
    let run = eval(&s, &fake.url, &args).expect(0);
    assert!(
        run.stderr()
            .contains("1 rows of the data could not become examples"),
        "{}",
        run.stderr()
    );
    let summary = read_json(&s.path("both/summary.json"));
    assert_eq!(summary["num_examples"], 30);
    assert_eq!(summary["skipped"], 1, "the annulled OAB question");
    for m in [
        "accuracy",
        "accuracy_loglik",
        "accuracy_strict",
        "accuracy_flexible",
    ] {
        assert!(
            close(&summary["metrics"][m], 1.0),
            "{m}: {}",
            summary["metrics"]
        );
    }
    assert_eq!(summary["breakdowns"]["exam"]["oab"]["count"], 10);
    assert_eq!(summary["breakdowns"]["country"]["Perú"]["count"], 10);
    assert!(fake.completions.load(std::sync::atomic::Ordering::SeqCst) > 30);

    let mut args = vec!["--task", "mc", "--model", "chatty", "--output", "chatty"];
    args.extend_from_slice(&files);
    eval(&s, &fake.url, &args).expect(0);
    let summary = read_json(&s.path("chatty/summary.json"));
    assert!(close(&summary["metrics"]["accuracy_strict"], 0.0));
    assert!(close(&summary["metrics"]["accuracy_flexible"], 1.0));
    assert!(close(&summary["metrics"]["accuracy"], 1.0));
    let rows = util::read_jsonl(&s.path("chatty/rows.jsonl"));
    assert!(rows[0]["chosen"]["strict"].is_null() && rows[0]["chosen"]["flexible"].is_string());
}

#[test]
fn perplexity_and_bits_per_byte_are_exact() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(Knowledge::default());
    let texts = [
        (
            "La cordillera de los Andes recorre Chile de norte a sur.",
            "CL",
        ),
        ("O rio Amazonas atravessa o norte do Brasil.", "BR"),
        (
            "Tenochtitlan fue fundada en 1325 sobre un islote del lago de Texcoco.",
            "MX",
        ),
    ];
    let mut file = String::new();
    let (mut nll, mut count, mut bytes) = (0.0, 0usize, 0usize);
    for (text, country) in texts {
        file.push_str(&json!({ "text": text, "metadata": { "country": country } }).to_string());
        file.push('\n');
        let toks = tokens(text);
        for (_, token) in toks.iter().skip(1) {
            nll -= token_logprob("", token, &Knowledge::default());
            count += 1;
        }
        bytes += text.len();
    }
    let path = s.write("heldout.jsonl", file.as_bytes());
    eval(
        &s,
        &fake.url,
        &[
            "--task",
            "perplexity",
            "--data",
            path.to_str().unwrap(),
            "--model",
            "m",
            "--output",
            "ppl",
        ],
    )
    .expect(0);
    let summary = read_json(&s.path("ppl/summary.json"));
    let m = &summary["metrics"];
    assert!(
        close(
            &m["bits_per_byte"],
            nll / std::f64::consts::LN_2 / bytes as f64
        ),
        "{m}"
    );
    assert!(close(&m["perplexity"], (nll / count as f64).exp()), "{m}");
    assert_eq!(summary["breakdowns"]["country"]["MX"]["count"], 1);

    let run = eval(
        &s,
        &fake.url,
        &[
            "--task",
            "perplexity",
            "--data",
            path.to_str().unwrap(),
            "--model",
            "nologprobs",
            "--output",
            "none",
        ],
    );
    // A backend without prompt log-probabilities is no passing fault: a usage error.
    let run = run.expect(2);
    assert!(
        run.stderr().contains("gives no prompt log-probabilities")
            && run.stderr().contains("--mc-mode generate"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_batch_api_answers_and_judges_then_nothing_is_asked_twice() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(choclo_knowledge());
    let release = data("choclo_release.csv");
    let args = [
        "--task",
        "choclo",
        "--data",
        release.to_str().unwrap(),
        "--model",
        "oracle",
        "--judge-model",
        "judge",
        "--output",
        "batch",
        "--batch",
        "--poll-interval",
        "0.05",
    ];
    eval(&s, &fake.url, &args).expect(0);
    assert_eq!(fake.chats("batch:oracle"), 24);
    assert_eq!(fake.chats("batch:judge"), 24);
    assert_eq!(
        fake.chats("oracle") + fake.chats("judge"),
        0,
        "nothing asked one by one"
    );
    let summary = read_json(&s.path("batch/summary.json"));
    assert!(
        close(&summary["metrics"]["judge_correct"], 1.0)
            && close(&summary["metrics"]["normalized_exact_match"], 1.0)
    );
    let batches = read_json(&s.path("batch/batches.json"));
    assert_eq!(batches.as_object().unwrap().len(), 2);
    eval(&s, &fake.url, &args).expect(0);
    assert_eq!(
        fake.chats("batch:oracle"),
        24,
        "a rerun is served by the cache"
    );
}

#[test]
fn a_killed_run_continues_where_it_stopped() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(choclo_knowledge());
    let release = data("choclo_release.csv");
    let args = [
        "eval",
        "run",
        "--endpoint",
        &fake.url,
        "--progress",
        "none",
        "--task",
        "choclo",
        "--data",
        release.to_str().unwrap(),
        "--model",
        "slow",
        "--output",
        "out",
        "--concurrency",
        "1",
    ];
    let mut child = s
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fake.chats("slow") < 6 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = fake.chats("slow");
    assert!((6..24).contains(&first), "{first}");
    assert!(!s.path("out/summary.json").exists());
    s.run(&args).expect(0);
    let second = fake.chats("slow") - first;
    // Answers cached before the kill are not asked again (one in flight may be).
    assert!(second <= 24 - first + 1, "first {first}, second {second}");
    let summary = read_json(&s.path("out/summary.json"));
    assert_eq!(summary["num_examples"], 24);
    assert!(close(&summary["metrics"]["normalized_exact_match"], 1.0));
}

#[test]
fn bad_settings_say_what_to_do() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(Knowledge::default());
    let run = eval(
        &s,
        &fake.url,
        &[
            "--task", "quiz", "--data", "x.csv", "--model", "m", "--output", "o",
        ],
    )
    .expect(2);
    assert!(
        run.stderr().contains("unknown task `quiz`"),
        "{}",
        run.stderr()
    );
    let release = data("choclo_release.csv");
    let run = eval(
        &s,
        &fake.url,
        &[
            "--task",
            "mc",
            "--data",
            release.to_str().unwrap(),
            "--model",
            "m",
            "--output",
            "o",
        ],
    );
    let summary = read_json(&s.path("o/summary.json"));
    assert_eq!(summary["num_examples"], 0);
    assert_eq!(summary["skipped"], 24);
    assert!(run.stderr().contains("could not become examples"));
    let run = eval(
        &s,
        &fake.url,
        &[
            "--task",
            "choclo",
            "--data",
            "missing.csv",
            "--model",
            "m",
            "--output",
            "o2",
        ],
    )
    .expect(2);
    assert!(run.stderr().contains("missing.csv"), "{}", run.stderr());
    let spec = s.write("spec.toml", b"name = \"capitales\"\nkind = \"open\"\nprompt = \"Pregunta: {question}\"\n[columns]\nquestion = \"pregunta\"\nreference = \"respuesta\"\n");
    let file = s.write(
        "capitales.jsonl",
        "{\"pregunta\":\"¿Capital de Chile?\",\"respuesta\":\"Santiago\",\"pais\":\"CL\"}\n"
            .as_bytes(),
    );
    eval(
        &s,
        &fake.url,
        &[
            "--task",
            spec.to_str().unwrap(),
            "--data",
            file.to_str().unwrap(),
            "--model",
            "m",
            "--output",
            "spec",
        ],
    )
    .expect(0);
    let summary = read_json(&s.path("spec/summary.json"));
    assert_eq!(summary["task"], "capitales");
    assert_eq!(summary["breakdowns"]["pais"]["CL"]["count"], 1);
    assert!(close(&summary["metrics"]["answered"], 1.0));
}

/// `latam eval run --task choclo` on the bundled CHOCLO release against `endpoint`.
fn choclo_at(s: &Scratch, endpoint: &str, model: &str, output: &str, extra: &[&str]) -> util::Run {
    choclo(
        s,
        endpoint,
        &data("choclo_release.csv"),
        model,
        output,
        extra,
    )
}

/// A URL where nothing listens: a port bound, then let go.
fn nothing_listening() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[test]
fn nothing_listening_stops_the_run_before_the_first_row() {
    let s = Scratch::new();
    let dead = nothing_listening();
    let start = Instant::now();
    let run = choclo_at(&s, &dead, "m", "out", &[]).expect(3);
    let err = run.stderr();
    // Before the check, each of the 24 rows retried for 31 s and the run exited 1.
    assert!(start.elapsed() < Duration::from_secs(10), "{err}");
    assert!(err.contains(&format!("cannot reach {dead}:")), "{err}");
    assert!(
        err.lines().count() == 1 && !err.contains("retry"),
        "one message: {err}"
    );
    assert!(!s.path("out/summary.json").exists());
    // The judge's endpoint is checked as well, before any question is asked.
    let fake = FakeOpenAi::start(choclo_knowledge());
    let judge = ["--judge-model", "judge", "--judge-endpoint", &dead];
    let run = choclo_at(&s, &fake.url, "oracle", "judged", &judge).expect(3);
    assert!(
        run.stderr().contains(&format!("cannot reach {dead}:")),
        "{}",
        run.stderr()
    );
    assert_eq!(fake.chats("oracle"), 0);
}

/// A server that answers `GET /v1/models` and hangs up on every other request, like one that
/// crashes on each: its URL and the requests it hung up on.
fn hanging_up() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let hung_up = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&hung_up);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            while reader.read_line(&mut head).unwrap_or(0) > 2 {}
            if head.starts_with("GET /v1/models ") {
                let body = r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (url, hung_up)
}

#[test]
fn rows_that_cannot_reach_the_server_end_the_run_after_three() {
    let s = Scratch::new();
    let (url, hung_up) = hanging_up();
    let extra = ["--concurrency", "1", "--retries", "1"];
    let run = choclo_at(&s, &url, "m", "out", &extra).expect(3);
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "cannot reach {url}/chat/completions: 3 rows in a row failed"
        )),
        "{err}"
    );
    // Three rows, each asked twice (one retry), not all 24.
    let asked = hung_up.load(Ordering::SeqCst);
    assert!((3..=6).contains(&asked), "{asked} requests");
    assert!(!s.path("out/summary.json").exists());
}

#[test]
fn a_wrong_model_ends_the_run_with_the_servers_message() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(choclo_knowledge());
    let run = choclo_at(&s, &fake.url, "missing-model", "out", &[]).expect(2);
    let err = run.stderr();
    assert!(
        err.contains(
            "answered 404: The model `missing-model` does not exist; this server runs `oracle`."
        ) && err.contains("Retrying cannot fix this"),
        "{err}"
    );
    let refused = fake.refused.load(Ordering::SeqCst);
    assert!(
        refused <= 8,
        "only the rows in flight were asked: {refused}"
    );
    assert!(!s.path("out/summary.json").exists());

    // The judge's 404 ends the run too; the answers asked before it are cached, and the
    // corrected command continues from them.
    let judged = ["--judge-model", "missing-judge", "--concurrency", "1"];
    let run = choclo_at(&s, &fake.url, "oracle", "judged", &judged).expect(2);
    assert!(
        run.stderr()
            .contains("The model `missing-judge` does not exist"),
        "{}",
        run.stderr()
    );
    assert_eq!(fake.chats("oracle"), 1);
    choclo_at(
        &s,
        &fake.url,
        "oracle",
        "judged",
        &["--judge-model", "judge"],
    )
    .expect(0);
    assert_eq!(
        fake.chats("oracle"),
        24,
        "the first answer came from the cache"
    );
    let summary = read_json(&s.path("judged/summary.json"));
    assert!(
        close(&summary["metrics"]["judge_correct"], 1.0),
        "{summary}"
    );
}

/// The words after `flag` in a command of the README (continued lines joined).
fn flag_in(command: &str, flag: &str) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let i = words.iter().position(|w| *w == flag)?;
    words.get(i + 1).map(|w| (*w).to_owned())
}

/// README's commands, each with its continuation lines joined.
fn readme_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in readme.lines() {
        let line = line.split("  #").next().unwrap_or_default().trim_end();
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

#[test]
fn the_readme_evaluates_the_server_it_starts() {
    let commands = readme_commands();
    let serve = commands
        .iter()
        .find(|c| c.trim_start().starts_with("latam serve "))
        .expect("README starts `latam serve`");
    let eval = commands
        .iter()
        .find(|c| c.trim_start().starts_with("latam eval run "))
        .expect("README runs `latam eval run`");
    let help = Scratch::new().run(&["serve", "--help"]).expect(0).stdout();
    let default_port = help[help.find("--port <PORT>").unwrap()..]
        .split("[default: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .to_owned();
    let port = flag_in(serve, "--port").unwrap_or(default_port);
    let host = flag_in(serve, "--host").unwrap_or_else(|| "127.0.0.1".into());
    assert_eq!(
        flag_in(eval, "--endpoint").unwrap(),
        format!("http://{host}:{port}/v1"),
        "{serve}\n{eval}"
    );
    // `latam serve` answers to the name of the file it loaded (its /v1/models).
    let file = flag_in(serve, "--model").unwrap();
    let name = Path::new(&file).file_name().unwrap().to_str().unwrap();
    assert_eq!(flag_in(eval, "--model").unwrap(), name, "{serve}\n{eval}");
}

/// A page that shows `html` in a frame `width` CSS pixels wide (headless Chromium's window is at
/// least 500 wide; the frame's media queries see `width`) and, once it is laid out, writes the
/// frame's measures into the page as `<pre id="probe">{JSON}</pre>`.
fn framed(s: &Scratch, html: &str, width: u32) -> PathBuf {
    let doc = html.replace('&', "&amp;").replace('"', "&quot;");
    let page = format!(
        r#"<!DOCTYPE html><html style="overflow:hidden"><head><meta charset="utf-8"></head><body style="margin:0;background:#ddd">
<iframe id="f" style="width:{width}px;height:900px;border:0;display:block;background:#fff" srcdoc="{doc}"></iframe>
<script>
const f = document.getElementById('f');
f.onload = () => {{
  const doc = f.contentDocument, d = doc.documentElement;
  const box = doc.querySelector('.scroll') || doc.querySelector('table');
  f.style.height = d.scrollHeight + 'px';
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({{ inner: f.contentWindow.innerWidth, client: d.clientWidth,
    scroll: d.scrollWidth, box: box.clientWidth, table: box.scrollWidth }});
  document.body.append(out);
}};
</script></body></html>"#
    );
    s.write(&format!("framed-{width}.html"), page.as_bytes())
}

/// The frame's measures (see [`framed`]).
fn layout(s: &Scratch, page: &Path, width: u32) -> Value {
    let size = format!("--window-size={},900", width.max(500));
    let url = format!("file://{}", page.display());
    let dom = chromium(s, &[&size, "--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let json = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the probe ran: {dom}"));
    serde_json::from_str(json).unwrap()
}

#[test]
#[ignore = "needs Debian chromium; .ci/run installs it and runs this"]
fn the_report_fits_a_laptop_and_a_phone_in_chromium() {
    let s = Scratch::new();
    let fake = FakeOpenAi::start(Knowledge {
        open: choclo_knowledge().open,
        ..exam_knowledge()
    });
    let judge = ["--judge-model", "judge"];
    for model in ["half", "oracle"] {
        choclo_at(&s, &fake.url, model, model, &judge).expect(0);
    }
    let unmsm = data("unmsm.json");
    let args = [
        "--task",
        "mc",
        "--data",
        unmsm.to_str().unwrap(),
        "--model",
        "chatty",
        "--output",
        "mc",
    ];
    eval(&s, &fake.url, &args).expect(0);
    s.run(&[
        "eval", "report", "half", "oracle", "mc", "--output", "report",
    ])
    .expect(0);
    let html = std::fs::read_to_string(s.path("report/report.html")).unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eval-report");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("report.html"), &html).unwrap();
    for width in [1280, 390] {
        let page = framed(&s, &html, width);
        let m = layout(&s, &page, width);
        assert_eq!(m["inner"], width, "the frame is {width} px wide: {m}");
        assert!(
            m["scroll"].as_u64() <= m["client"].as_u64(),
            "nothing pushes the page wider than {width} px: {m}"
        );
        if width == 1280 {
            assert!(
                m["table"].as_u64() <= m["box"].as_u64(),
                "the overall table fits without scrolling: {m}"
            );
        }
        let png = shots.join(format!("report-{width}.png"));
        let url = format!("file://{}", page.display());
        chromium(
            &s,
            &[
                &format!("--window-size={},3200", width.max(500)),
                &format!("--screenshot={}", png.display()),
                &url,
            ],
        );
        let bytes = std::fs::read(&png).expect("chromium wrote a screenshot");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        println!("screenshot at {width} px: {}", png.display());
    }
}
