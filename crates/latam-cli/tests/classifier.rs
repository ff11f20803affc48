//! `latam classifier`: train, predict and eval on the bundled sample (the source of each
//! document's first 400 characters: four classes, one of them Portuguese).

mod util;

use serde_json::Value;
use util::{Scratch, read_json, sample_lines};

/// Labelled examples of the sample: every fifth document is held out.
fn split(s: &Scratch) {
    let (mut train, mut held_out) = (String::new(), String::new());
    for (i, line) in sample_lines().iter().enumerate() {
        let doc: Value = serde_json::from_str(line).unwrap();
        let text: String = doc["text"].as_str().unwrap().chars().take(400).collect();
        let example = serde_json::json!({"text": text, "label": doc["metadata"]["source"]});
        let out = if i % 5 == 0 {
            &mut held_out
        } else {
            &mut train
        };
        out.push_str(&example.to_string());
        out.push('\n');
    }
    s.write("train.jsonl", train.as_bytes());
    s.write("test.jsonl", held_out.as_bytes());
}

/// Trains with the default settings, and `extra`.
fn train(s: &Scratch, output: &str, extra: &[&str]) -> util::Run {
    let args = [
        "classifier",
        "train",
        "--input",
        "train.jsonl",
        "--valid",
        "test.jsonl",
        "--output",
        output,
        "--card",
        "sources of the bundled sample",
    ];
    s.run(&[&args[..], extra].concat())
}

#[test]
fn trains_scores_and_labels_reproducibly() {
    let s = Scratch::new();
    split(&s);
    // The defaults learn a few hundred examples (they once predicted one label for all).
    let run = train(&s, "m.lcm", &[]).expect(0);
    assert!(
        run.stdout().contains("| machado-de-assis |"),
        "{}",
        run.stdout()
    );
    assert!(!run.stderr().contains("warning"), "{}", run.stderr());
    train(&s, "again.lcm", &[]).expect(0);
    let model = std::fs::read(s.path("m.lcm")).unwrap();
    assert_eq!(model, std::fs::read(s.path("again.lcm")).unwrap());
    assert_eq!(&model[..8], b"LTMCLASS");

    s.run(&[
        "classifier",
        "eval",
        "--model",
        "m.lcm",
        "--input",
        "test.jsonl",
        "--json",
        "scores.json",
    ])
    .expect(0);
    let scores = read_json(&s.path("scores.json"));
    assert_eq!(scores["examples"], 136);
    assert!(scores["accuracy"].as_f64().unwrap() >= 0.95, "{scores}");
    assert!(scores["macro_f1"].as_f64().unwrap() >= 0.95, "{scores}");
    assert_eq!(scores["labels"]["machado-de-assis"]["recall"], 1.0);

    let run = s
        .run(&[
            "classifier",
            "predict",
            "--model",
            "m.lcm",
            "--input",
            "test.jsonl",
            "--field",
            "source",
            "--k",
            "2",
        ])
        .expect(0);
    let docs = run.json_lines();
    assert_eq!(docs.len(), 136);
    let right = docs
        .iter()
        .filter(|d| d["metadata"]["source"] == d["label"])
        .count();
    assert!(right >= 130, "{right} of 136");
    let top = docs[0]["metadata"]["source_top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert!(top[0]["score"].as_f64() >= top[1]["score"].as_f64());
    assert_eq!(docs[0]["metadata"]["source"], top[0]["label"]);
}

#[test]
fn a_model_that_predicts_one_label_is_flagged() {
    let s = Scratch::new();
    split(&s);
    // Too few passes for 544 examples (the defaults before): every prediction `conha19`.
    let run = train(&s, "m.lcm", &["--epochs", "5", "--lr", "0.5"]).expect(0);
    let expected = "warning: on the validation set, accuracy 50.00% but macro-F1 0.1667: \
                    `conha19` takes 136 of the 136 predictions (50% of the gold labels are \
                    `conha19`); never predicted right: constitucion-chile, covid19mx, \
                    machado-de-assis.";
    assert!(run.stderr().contains(expected), "{}", run.stderr());
    for advice in ["--epochs", "--lr", "class balance"] {
        assert!(run.stderr().contains(advice), "{}", run.stderr());
    }
    let run = s
        .run(&[
            "classifier",
            "train",
            "--input",
            "train.jsonl",
            "--output",
            "m.lcm",
            "--epochs",
            "5",
            "--lr",
            "0.5",
        ])
        .expect(0);
    assert!(
        run.stderr()
            .contains("warning: on the training set, accuracy"),
        "{}",
        run.stderr()
    );
    let run = s
        .run(&[
            "classifier",
            "eval",
            "--model",
            "m.lcm",
            "--input",
            "test.jsonl",
        ])
        .expect(0);
    assert!(
        run.stderr()
            .contains("warning: on these examples, accuracy 50.00%"),
        "{}",
        run.stderr()
    );
}

#[test]
fn bad_data_and_bad_models_are_named() {
    let s = Scratch::new();
    s.write(
        "bad.jsonl",
        b"{\"text\": \"uno\", \"label\": \"a\"}\n{\"text\": \"dos\"}\n",
    );
    let run = s.run(&[
        "classifier",
        "train",
        "--input",
        "bad.jsonl",
        "--output",
        "m.lcm",
    ]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("bad.jsonl:2: no `label`"),
        "{}",
        run.stderr()
    );

    s.write("one.jsonl", b"{\"text\": \"uno\", \"label\": \"a\"}\n");
    let run = s.run(&[
        "classifier",
        "train",
        "--input",
        "one.jsonl",
        "--output",
        "m.lcm",
    ]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("two labels"), "{}", run.stderr());

    s.write("not-a-model.lcm", b"{\"text\": \"not a model\"}");
    let run = s.run(&[
        "classifier",
        "eval",
        "--model",
        "not-a-model.lcm",
        "--input",
        "one.jsonl",
    ]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("LTMCLASS"), "{}", run.stderr());
}
