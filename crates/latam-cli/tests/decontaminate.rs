//! The `decontaminate` step on the sample corpus with leaked benchmark questions added:
//! every leak found (through case and punctuation changes), no real document touched.

mod util;

use std::path::Path;

use serde_json::{Value, json};
use util::{Scratch, read_json, read_parts, read_rejected, sample_lines};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn leaked_questions_and_answers_are_removed_and_nothing_else() {
    let s = Scratch::new();
    let pipeline = format!(
        "[[steps]]\ntype = \"decontaminate\"\n\
         [[steps.benchmarks]]\nname = \"choclo\"\ntask = \"choclo\"\npaths = [{:?}]\n\
         [[steps.benchmarks]]\nname = \"oab\"\ntask = \"mc\"\npaths = [{:?}]\n\
         [[steps.benchmarks]]\nname = \"enem\"\ntask = \"mc\"\npaths = [{:?}]\n",
        data("choclo_release.csv"),
        data("oab.json"),
        data("enem_2024.jsonl"),
    );
    s.write("p.toml", pipeline.as_bytes());
    let oab: Value =
        serde_json::from_str(&std::fs::read_to_string(data("oab.json")).unwrap()).unwrap();
    let oab_question = oab[0]["enum"]
        .as_str()
        .unwrap()
        .to_uppercase()
        .replace(',', " ;");
    let leaks = [
        // A forum post quoting a CHOCLO question (19 words) between other sentences.
        (
            "leak-choclo",
            "Hola a todos, tengo una duda para la tarea de biología: ¿Cuál es la importancia del manatí en el Refugio de Vida Silvestre Cuero y Salado y qué amenazas enfrenta esta especie? Gracias de antemano por cualquier ayuda que me puedan dar.",
        ),
        // A study guide with an OAB question in capitals and other punctuation.
        (
            "leak-oab",
            &*format!(
                "Guia de estudos para a prova da ordem. Questão comentada: {oab_question} Resposta comentada na próxima página."
            ),
        ),
    ];
    let mut input = sample_lines().join("\n");
    input.push('\n');
    for (id, text) in leaks {
        input.push_str(&json!({ "id": id, "text": text }).to_string());
        input.push('\n');
    }
    s.write("in.jsonl", input.as_bytes());
    s.run(&[
        "corpus",
        "run",
        "p.toml",
        "--input",
        "in.jsonl",
        "--output",
        "out",
        "--progress",
        "none",
    ])
    .expect(0);
    let rejected = read_rejected(&s.path("out"));
    let mut found: Vec<(String, String)> = rejected
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["metadata"]["rejected"]["reason"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    let oab_id = "contaminated:oab:oab:1".to_owned();
    assert_eq!(
        found,
        [
            (
                "leak-choclo".to_owned(),
                "contaminated:choclo:latam-021781".to_owned()
            ),
            ("leak-oab".to_owned(), oab_id),
        ]
    );
    let choclo = rejected.iter().find(|d| d["id"] == "leak-choclo").unwrap();
    assert_eq!(choclo["metadata"]["contamination"]["field"], "question");
    assert_eq!(
        read_parts(&s.path("out/documents")).len(),
        sample_lines().len()
    );
    let stats = read_json(&s.path("out/stats.json"));
    assert_eq!(stats["steps"][0]["dropped"], 2);
}

#[test]
fn a_benchmark_that_cannot_be_read_is_named() {
    let s = Scratch::new();
    s.write(
        "p.toml",
        b"[[steps]]\ntype = \"decontaminate\"\n[[steps.benchmarks]]\nname = \"x\"\ntask = \"mc\"\npaths = [\"missing.json\"]\n",
    );
    let run = s
        .run(&["corpus", "run", "p.toml", "--output", "out"])
        .expect(2);
    assert!(
        run.stderr().contains("missing.json: no such file"),
        "{}",
        run.stderr()
    );
}
