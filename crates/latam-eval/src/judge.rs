//! The LLM judge: any OpenAI-compatible model grades an answer against the reference with the
//! verdict JSON of latamgpt-benchmark (correctness, completeness, uncertainty handling, overall,
//! verdict), plus SimpleQA's `not_attempted` for answers that decline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The default instructions of the judge (overridable with `--judge-prompt FILE`).
pub const DEFAULT_JUDGE_PROMPT: &str = r#"You grade answers to questions about Latin America and the Caribbean, strictly.
You receive a JSON object with the question, the reference answer and the model's answer.

Give scores between 0.0 and 1.0:
- correctness_score: how far the model's answer agrees with the facts of the reference answer
- completeness_score: how much of what matters in the reference answer it covers
- uncertainty_handling_score: whether it admits uncertainty where it should, instead of inventing
- overall_score: your overall grade

And a verdict, one of "correct", "partially_correct", "incorrect", "not_attempted"
("not_attempted": the answer declines or says it does not know, without a wrong claim),
with a one-sentence justification in English.

Reply with JSON only, in this form:
{"correctness_score": 0.0, "completeness_score": 0.0, "uncertainty_handling_score": 0.0, "overall_score": 0.0, "verdict": "incorrect", "justification": "..."}"#;

/// A parsed verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Agreement with the reference.
    pub correctness_score: f64,
    /// Coverage of the reference.
    pub completeness_score: f64,
    /// Honesty about uncertainty.
    pub uncertainty_handling_score: f64,
    /// Overall grade.
    pub overall_score: f64,
    /// correct / partially_correct / incorrect / not_attempted.
    pub verdict: String,
    /// Why.
    pub justification: String,
}

impl Verdict {
    /// The judge's metrics of a row.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let is = |v: &str| f64::from(u8::from(self.verdict == v));
        BTreeMap::from([
            ("judge_correctness".into(), self.correctness_score),
            ("judge_completeness".into(), self.completeness_score),
            (
                "judge_uncertainty_handling".into(),
                self.uncertainty_handling_score,
            ),
            ("judge_overall".into(), self.overall_score),
            ("judge_correct".into(), is("correct")),
            ("judge_not_attempted".into(), is("not_attempted")),
        ])
    }
}

/// The chat messages that ask the judge.
pub fn messages(instructions: &str, question: &str, reference: &str, answer: &str) -> Value {
    let payload =
        json!({ "question": question, "reference_answer": reference, "model_answer": answer });
    json!([
        { "role": "system", "content": instructions },
        { "role": "user", "content": serde_json::to_string_pretty(&payload).expect("JSON") },
    ])
}

/// Why a judge's reply is not a verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerdictError {
    /// No `{...}` in the reply.
    #[error("no JSON object in the judge's reply")]
    NoJson,
    /// A `{...}` that is not JSON, even without trailing commas.
    #[error("malformed JSON from the judge: {0}")]
    Malformed(String),
    /// A score missing or not a number.
    #[error("the judge's JSON has no number `{0}`")]
    NoScore(&'static str),
    /// No `verdict` string.
    #[error("the judge's JSON has no `verdict`")]
    NoVerdict,
    /// A verdict outside correct, partially_correct, incorrect, not_attempted.
    #[error("unknown verdict `{0}`")]
    UnknownVerdict(String),
}

/// The verdict in a judge's reply: the outermost `{...}` parsed, scores clamped to 0..=1.
pub fn parse(reply: &str) -> Result<Verdict, VerdictError> {
    let start = reply.find('{').ok_or(VerdictError::NoJson)?;
    let end = reply
        .rfind('}')
        .filter(|e| *e > start)
        .ok_or(VerdictError::NoJson)?;
    let object = &reply[start..=end];
    // Small judges often leave a comma before the closing brace: accepted.
    let value: Value = serde_json::from_str(object)
        .or_else(|_| serde_json::from_str(&without_trailing_commas(object)))
        .map_err(|e| VerdictError::Malformed(e.to_string()))?;
    let score = |key: &'static str| {
        value[key]
            .as_f64()
            .or_else(|| value[key].as_str().and_then(|s| s.trim().parse().ok()))
            .map(|v: f64| v.clamp(0.0, 1.0))
            .ok_or(VerdictError::NoScore(key))
    };
    let verdict = value["verdict"]
        .as_str()
        .map(|v| v.trim().to_lowercase().replace([' ', '-'], "_"))
        .ok_or(VerdictError::NoVerdict)?;
    if !["correct", "partially_correct", "incorrect", "not_attempted"].contains(&verdict.as_str()) {
        return Err(VerdictError::UnknownVerdict(verdict));
    }
    Ok(Verdict {
        correctness_score: score("correctness_score")?,
        completeness_score: score("completeness_score")?,
        uncertainty_handling_score: score("uncertainty_handling_score")?,
        overall_score: score("overall_score")?,
        verdict,
        justification: value["justification"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    })
}

/// `text` without commas that only whitespace separates from a closing `}` or `]`.
fn without_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            let rest: String = chars.clone().take_while(|c| c.is_whitespace()).collect();
            let after = chars.clone().nth(rest.chars().count());
            if matches!(after, Some('}' | ']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn parses_fenced_and_refuses_broken_replies() {
        let reply = "```json\n{\"correctness_score\": 1, \"completeness_score\": \"0.5\", \"uncertainty_handling_score\": 1.0, \"overall_score\": 0.9, \"verdict\": \"Correct\", \"justification\": \"ok\"}\n```";
        let v = parse(reply).unwrap();
        assert_eq!(v.verdict, "correct");
        let spaced = reply.replace("\"Correct\"", "\"Partially correct\"");
        assert_eq!(parse(&spaced).unwrap().verdict, "partially_correct");
        assert_eq!(v.metrics()["judge_completeness"], 0.5);
        assert_eq!(v.metrics()["judge_correct"], 1.0);
        assert_eq!(
            parse("I think it is right").unwrap_err(),
            VerdictError::NoJson
        );
        assert_eq!(
            parse("{\"verdict\": \"correct\"}").unwrap_err(),
            VerdictError::NoScore("correctness_score")
        );
        let unknown = parse("{\"correctness_score\": 1, \"completeness_score\": 1, \"uncertainty_handling_score\": 1, \"overall_score\": 1, \"verdict\": \"maybe\"}").unwrap_err();
        assert_eq!(unknown, VerdictError::UnknownVerdict("maybe".into()));
        assert_eq!(unknown.to_string(), "unknown verdict `maybe`");
        assert!(matches!(
            parse("{\"a\": }"),
            Err(VerdictError::Malformed(_))
        ));
    }
}
