//! Benchmarks as examples: open questions (CHOCLO in both column namings, Trueque), multiple
//! choice (ENEM, OAB, UNMSM, the Chile/Colombia exams, or any file with a question, choices
//! and an answer), text for perplexity, and tasks declared in a TOML spec.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::BenchmarkError;
use crate::rows::{Row, text};

/// What is asked of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// A question with a reference answer.
    Open {
        /// The question.
        question: String,
        /// The reference answer.
        reference: String,
    },
    /// A question with choices, one right.
    Choice {
        /// The question.
        question: String,
        /// The choices, in order (A, B, ...).
        choices: Vec<String>,
        /// Index of the right choice.
        answer: usize,
    },
    /// Text whose log-likelihood is measured.
    Text {
        /// The text.
        text: String,
    },
}

/// One row of a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Id: the file's own id column, else `<file stem>:<row>`.
    pub id: String,
    /// The item.
    pub item: Item,
    /// Breakdown keys (country, category, difficulty, topic, ...).
    pub metadata: Map<String, Value>,
}

/// The built-in task kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// CHOCLO (Hugging Face or release columns).
    Choclo,
    /// Trueque.
    Trueque,
    /// Multiple choice.
    Mc,
    /// Perplexity / bits per byte of text.
    Perplexity,
}

/// A task declared in TOML: which columns hold what, the prompt, the metric, the breakdowns.
///
/// ```toml
/// name = "capitales"
/// kind = "open"                  # open | choice | text
/// prompt = "Pregunta: {question}\nRespuesta:"
/// metric = "token_f1"            # the headline metric of reports
/// breakdown = ["pais"]           # metadata columns (default: every other column)
/// [columns]
/// question = "pregunta"
/// reference = "respuesta"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Task name, used in reports.
    pub name: String,
    /// `open`, `choice` or `text`.
    pub kind: SpecKind,
    /// Column names.
    #[serde(default)]
    pub columns: Columns,
    /// User prompt template: `{question}`, `{choices}` (lettered lines), `{text}`.
    pub prompt: Option<String>,
    /// System prompt (open questions).
    pub system: Option<String>,
    /// Headline metric of reports.
    pub metric: Option<String>,
    /// Metadata columns kept for breakdowns (default: every column not used otherwise).
    pub breakdown: Option<Vec<String>>,
    /// Columns whose values are comma-separated lists of labels.
    #[serde(default)]
    pub multi_label: Vec<String>,
}

/// Kinds of a spec task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecKind {
    /// Open question and reference answer.
    Open,
    /// Multiple choice.
    Choice,
    /// Perplexity.
    Text,
}

/// Column names of a spec task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Columns {
    /// Row id.
    pub id: String,
    /// Question.
    pub question: String,
    /// Reference answer (open).
    pub reference: String,
    /// Choices (a list), for `choice`.
    pub choices: String,
    /// The right choice: a letter, a 0-based index or the choice's text.
    pub answer: String,
    /// Text (for `text`).
    pub text: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            question: "question".into(),
            reference: "reference_answer".into(),
            choices: "choices".into(),
            answer: "answer".into(),
            text: "text".into(),
        }
    }
}

impl TaskSpec {
    /// Reads a spec file.
    pub fn load(path: &Path) -> Result<Self, BenchmarkError> {
        let text = std::fs::read_to_string(path).map_err(|e| BenchmarkError {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| BenchmarkError {
            path: path.to_owned(),
            message: format!("not a task spec: {e}"),
        })
    }
}

/// Rows that could not become examples, with why (reported, never silently dropped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// `file:row: reason` lines.
    pub rows: Vec<String>,
}

/// Examples of a built-in task from the rows of one file.
pub fn examples(kind: TaskKind, file: &Path, rows: &[Row], skipped: &mut Skipped) -> Vec<Example> {
    let stem = stem(file);
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let id = ["qid", "id"]
            .iter()
            .map(|k| text(row, k))
            .find(|v| !v.is_empty())
            .unwrap_or_else(|| format!("{stem}:{}", i + 1));
        let made = match kind {
            TaskKind::Choclo => choclo(row),
            TaskKind::Trueque => Ok(open(
                row,
                "question",
                "reference_answer",
                &["country", "topic"],
            )),
            TaskKind::Mc => choice(row, &stem),
            TaskKind::Perplexity => perplexity(row),
        };
        match made {
            Ok((item, metadata)) => out.push(Example { id, item, metadata }),
            Err(reason) => skipped
                .rows
                .push(format!("{}:{}: {reason}", file.display(), i + 1)),
        }
    }
    out
}

/// Examples of a spec task.
pub fn spec_examples(
    spec: &TaskSpec,
    file: &Path,
    rows: &[Row],
    skipped: &mut Skipped,
) -> Vec<Example> {
    let stem = stem(file);
    let c = &spec.columns;
    let used = [
        &c.id,
        &c.question,
        &c.reference,
        &c.choices,
        &c.answer,
        &c.text,
    ];
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let id = Some(text(row, &c.id))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("{stem}:{}", i + 1));
        let metadata: Map<String, Value> = row
            .iter()
            .filter(|(k, _)| match &spec.breakdown {
                Some(keys) => keys.contains(k),
                None => !used.contains(k),
            })
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let item = match spec.kind {
            SpecKind::Open => Ok(Item::Open {
                question: text(row, &c.question),
                reference: text(row, &c.reference),
            }),
            SpecKind::Text => Ok(Item::Text {
                text: text(row, &c.text),
            }),
            SpecKind::Choice => choices_of(row, &c.choices).and_then(|choices| {
                answer_of(row.get(&c.answer), &choices).map(|answer| Item::Choice {
                    question: text(row, &c.question),
                    choices,
                    answer,
                })
            }),
        };
        match item {
            Ok(item) => out.push(Example { id, item, metadata }),
            Err(reason) => skipped
                .rows
                .push(format!("{}:{}: {reason}", file.display(), i + 1)),
        }
    }
    out
}

fn stem(file: &Path) -> String {
    file.file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.split('.').next().unwrap_or(n).to_owned())
        .unwrap_or_default()
}

type Made = Result<(Item, Map<String, Value>), String>;

fn open(row: &Row, question: &str, reference: &str, keys: &[&str]) -> (Item, Map<String, Value>) {
    let metadata = keys
        .iter()
        .map(|k| ((*k).to_owned(), Value::from(text(row, k))))
        .collect();
    (
        Item::Open {
            question: text(row, question),
            reference: text(row, reference),
        },
        metadata,
    )
}

/// CHOCLO: the Hugging Face columns (`Question`, `Answer`, ...) or the release's
/// (`question`, `reference_answer`, ...); the release's easy/medium/hard become the Hub's
/// FÁCIL/INTERMEDIA/DIFÍCIL so that both give the same breakdowns.
fn choclo(row: &Row) -> Made {
    if row.contains_key("Question") {
        return Ok(open(row, "Question", "Answer", &[])).map(|(item, _)| {
            (
                item,
                choclo_metadata(row, ["Entity", "Country", "Category", "Difficulty"]),
            )
        });
    }
    if row.contains_key("question") && row.contains_key("reference_answer") {
        let (item, _) = open(row, "question", "reference_answer", &[]);
        return Ok((
            item,
            choclo_metadata(row, ["entity", "country", "category", "difficulty"]),
        ));
    }
    Err("neither CHOCLO naming: expected Question/Answer (Hugging Face) or question/reference_answer (release)".into())
}

fn choclo_metadata(row: &Row, keys: [&str; 4]) -> Map<String, Value> {
    ["entity", "country", "category", "difficulty"]
        .iter()
        .zip(keys)
        .map(|(name, key)| {
            let mut value = text(row, key);
            if *name == "difficulty" {
                value = match value.to_lowercase().as_str() {
                    "easy" => "FÁCIL".into(),
                    "medium" => "INTERMEDIA".into(),
                    "hard" => "DIFÍCIL".into(),
                    _ => value,
                };
            }
            ((*name).to_owned(), Value::from(value))
        })
        .collect()
}

/// A multiple-choice row in any of the formats of `shared/data/benchmarks` or the generic one.
fn choice(row: &Row, stem: &str) -> Made {
    let question = ["question", "enum", "pregunta", "pergunta"]
        .iter()
        .map(|k| text(row, k))
        .find(|q| !q.is_empty())
        .ok_or("no question (`question`, `enum`, `pregunta`)")?;
    let key = ["choices", "alternatives", "options"]
        .into_iter()
        .find(|k| row.contains_key(*k));
    let (choices, answer) = if let Some(key) = key {
        let choices = choices_of(row, key)?;
        // OAB: options carry `correct`; otherwise an answer column.
        let marked = row[key].as_array().and_then(|options| {
            options
                .iter()
                .position(|o| o.get("correct").and_then(Value::as_bool) == Some(true))
        });
        let answer = match marked {
            Some(i) => i,
            None if row[key]
                .as_array()
                .is_some_and(|o| o.iter().any(Value::is_object)) =>
            {
                return Err("no option marked correct (an annulled question)".into());
            }
            None => answer_of(
                ["answer", "label", "correct", "respuesta", "resposta"]
                    .iter()
                    .filter_map(|k| row.get(*k))
                    .find(|v| !v.is_null() && v.as_str() != Some("")),
                &choices,
            )?,
        };
        (choices, answer)
    } else {
        let choices: Vec<String> = ["A", "B", "C", "D", "E"]
            .iter()
            .map(|k| text(row, k))
            .take_while(|c| !c.is_empty())
            .collect();
        if choices.len() < 2 {
            return Err(
                "no choices (`choices`, `alternatives`, `options`, or columns A, B, ...)".into(),
            );
        }
        let answer = answer_of(row.get("answer"), &choices)?;
        (choices, answer)
    };
    let mut metadata = exam_metadata(row);
    metadata.entry("exam").or_insert_with(|| Value::from(stem));
    Ok((
        Item::Choice {
            question,
            choices,
            answer,
        },
        metadata,
    ))
}

/// Breakdown keys of an exam row: its scalar fields (lists of strings joined) other than the
/// question, choices, answer and bulky or per-row fields.
fn exam_metadata(row: &Row) -> Map<String, Value> {
    const SKIP: [&str; 25] = [
        "id",
        "qid",
        "question",
        "enum",
        "pregunta",
        "pergunta",
        "choices",
        "alternatives",
        "options",
        "answer",
        "label",
        "correct",
        "respuesta",
        "resposta",
        "figures",
        "description",
        "A",
        "B",
        "C",
        "D",
        "E",
        "source",
        "license",
        "original_question_num",
        "number",
    ];
    row.iter()
        .filter(|(k, _)| !SKIP.contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::Array(items) if items.iter().all(Value::is_string) => Some((
                k.clone(),
                Value::from(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            )),
            Value::Array(_) | Value::Object(_) | Value::Null => None,
            other => Some((k.clone(), other.clone())),
        })
        .collect()
}

fn choices_of(row: &Row, key: &str) -> Result<Vec<String>, String> {
    let list = row
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("`{key}` is not a list"))?;
    let choices: Vec<String> = list
        .iter()
        .map(|c| match c {
            Value::String(s) => s.trim().to_owned(),
            Value::Object(o) => o
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned(),
            other => other.to_string(),
        })
        .collect();
    if choices.len() < 2 || choices.len() > 26 {
        return Err(format!("{} choices (2 to 26 expected)", choices.len()));
    }
    Ok(choices)
}

/// An answer given as a letter (`B`, `b`), a 0-based index, or the text of a choice.
fn answer_of(value: Option<&Value>, choices: &[String]) -> Result<usize, String> {
    let found = match value {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
        Some(Value::String(s)) => {
            let s = s.trim();
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => {
                    Some(c.to_ascii_uppercase() as usize - 'A' as usize)
                }
                _ => s
                    .parse::<usize>()
                    .ok()
                    .or_else(|| choices.iter().position(|c| c == s)),
            }
        }
        _ => None,
    };
    found
        .filter(|i| *i < choices.len())
        .ok_or_else(|| format!("no usable answer ({value:?}) for {} choices", choices.len()))
}

/// Perplexity rows: `text`, and everything else (or the `metadata` object) as breakdowns.
fn perplexity(row: &Row) -> Made {
    let text = match row.get("text") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => return Err("no `text`".into()),
    };
    let mut metadata = match row.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in row {
        if !matches!(k.as_str(), "text" | "id" | "metadata") && !v.is_object() && !v.is_array() {
            metadata.insert(k.clone(), v.clone());
        }
    }
    metadata.retain(|_, v| !v.is_object() && !v.is_array());
    Ok((Item::Text { text }, metadata))
}

/// Where a task's rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// Local files or directories.
    Local(Vec<PathBuf>),
    /// A Hugging Face dataset id, optionally with a file path inside it.
    Hub {
        /// `owner/name`.
        id: String,
        /// One file, or all data files of the split.
        file: Option<String>,
    },
}

impl DataSource {
    /// `hf://owner/name[/path/in/repo]` or a local path.
    pub fn parse(spec: &str) -> Self {
        match spec.strip_prefix("hf://") {
            Some(rest) => {
                let mut parts = rest.splitn(3, '/');
                let owner = parts.next().unwrap_or_default();
                let name = parts.next().unwrap_or_default();
                DataSource::Hub {
                    id: format!("{owner}/{name}"),
                    file: parts.next().map(str::to_owned),
                }
            }
            None => DataSource::Local(vec![PathBuf::from(spec)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn choclo_in_both_namings_gives_the_same_example() {
        let hub = row(
            r#"{"Entity":"20 lucas","Country":"Perú","Category":"dish","Difficulty":"FÁCIL","Question":"¿Qué es?","Answer":"un programa"}"#,
        );
        let release = row(
            r#"{"qid":"latam-1","region":"LATAM","country":"Perú","category":"dish","difficulty":"easy","entity":"20 lucas","question":"¿Qué es?","reference_answer":"un programa"}"#,
        );
        let mut skipped = Skipped::default();
        let a = examples(TaskKind::Choclo, Path::new("hub.csv"), &[hub], &mut skipped);
        let b = examples(
            TaskKind::Choclo,
            Path::new("release.csv"),
            &[release],
            &mut skipped,
        );
        assert_eq!(a[0].item, b[0].item);
        assert_eq!(a[0].metadata, b[0].metadata);
        assert_eq!(b[0].id, "latam-1");
        assert_eq!(a[0].id, "hub:1");
        let bad = examples(
            TaskKind::Choclo,
            Path::new("x.csv"),
            &[row(r#"{"q":"?"}"#)],
            &mut skipped,
        );
        assert!(bad.is_empty() && skipped.rows[0].contains("x.csv:1: neither CHOCLO naming"));
    }

    #[test]
    fn multiple_choice_answers_as_letters_indexes_text_and_marks() {
        let mut skipped = Skipped::default();
        let rows = [
            row(r#"{"question":"¿Capital?","choices":["Lima","Cusco"],"answer":"b"}"#),
            row(r#"{"question":"¿Capital?","options":["Lima","Cusco"],"answer":0}"#),
            row(
                r#"{"enum":"Capital?","options":[{"letter":"A","text":"Lima","correct":false},{"letter":"B","text":"Cusco","correct":true}],"areas":["ETHICS"]}"#,
            ),
            row(r#"{"question":"¿Capital?","A":"Lima","B":"Cusco","answer":"Cusco"}"#),
            row(
                r#"{"enum":"Anulada","options":[{"letter":"A","text":"x","correct":null},{"letter":"B","text":"y","correct":null}]}"#,
            ),
        ];
        let got = examples(TaskKind::Mc, Path::new("oab.json"), &rows, &mut skipped);
        let answers: Vec<usize> = got
            .iter()
            .map(|e| match &e.item {
                Item::Choice { answer, .. } => *answer,
                _ => 9,
            })
            .collect();
        assert_eq!(answers, [1, 0, 1, 1]);
        assert_eq!(got[2].metadata["areas"], "ETHICS");
        assert_eq!(got[0].metadata["exam"], "oab");
        assert!(skipped.rows[0].contains("oab.json:5: no option marked correct"));
    }

    #[test]
    fn hub_sources_parse() {
        assert_eq!(
            DataSource::parse("hf://latam-gpt/CHOCLO"),
            DataSource::Hub {
                id: "latam-gpt/CHOCLO".into(),
                file: None
            }
        );
        assert_eq!(
            DataSource::parse("hf://latam-gpt/CHOCLO/data/x.csv"),
            DataSource::Hub {
                id: "latam-gpt/CHOCLO".into(),
                file: Some("data/x.csv".into())
            }
        );
    }
}
