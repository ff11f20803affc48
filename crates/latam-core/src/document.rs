//! The document: `{"id": ..., "text": ..., "metadata": {...}}`, as Hugging Face datasets and
//! datatrove write it. Unknown top-level fields are kept in [`Document::extra`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which input fields hold the text and the id (`text` and `id` unless configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldNames {
    /// Field holding the document text.
    pub text: String,
    /// Field holding the document id; documents without one get `<input>:<line>`.
    pub id: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        Self {
            text: "text".into(),
            id: "id".into(),
        }
    }
}

/// A document of the corpus. Its serde form (all four fields) is the engine's own, exact
/// round trip; [`Document::write_json_line`] writes the JSONL form of the ecosystem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Document {
    /// Stable identifier (a string; numeric ids are written as their decimal form).
    pub id: String,
    /// The text, always valid UTF-8.
    pub text: String,
    /// Annotations: `language`, `country`, `quality_score`, `rejected`, ...
    pub metadata: Map<String, Value>,
    /// Every other top-level field of the input, kept as it came.
    pub extra: Map<String, Value>,
}

/// Why an input record is not a document.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The line is not JSON.
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The line is JSON but not an object.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// The text field is absent.
    #[error("no `{0}` field (set `text_field` in [input] if the text lives under another name)")]
    MissingText(String),
    /// The text field is not a string.
    #[error("`{field}` is {found}, expected a string")]
    TextNotString {
        /// The configured text field.
        field: String,
        /// JSON type found instead.
        found: &'static str,
    },
    /// `metadata` is present but not an object.
    #[error("`metadata` is {0}, expected an object")]
    MetadataNotObject(&'static str),
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Document {
    /// A document with empty metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            ..Self::default()
        }
    }

    /// Parses one JSONL line. A missing id is left empty for the reader to fill in.
    pub fn from_json_line(line: &str, fields: &FieldNames) -> Result<Self, DocumentError> {
        let value: Value = serde_json::from_str(line)?;
        Self::from_value(value, fields)
    }

    /// Builds a document from a JSON value (a JSONL line or a Parquet row).
    pub fn from_value(value: Value, fields: &FieldNames) -> Result<Self, DocumentError> {
        let Value::Object(mut map) = value else {
            return Err(DocumentError::NotAnObject(json_type(&value)));
        };
        let text = match map.remove(&fields.text) {
            Some(Value::String(text)) => text,
            Some(other) => {
                return Err(DocumentError::TextNotString {
                    field: fields.text.clone(),
                    found: json_type(&other),
                });
            }
            None => return Err(DocumentError::MissingText(fields.text.clone())),
        };
        let id = match map.remove(&fields.id) {
            Some(Value::String(id)) => id,
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        let metadata = match map.remove("metadata") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => Map::new(),
            // Parquet writers that cannot nest store metadata as a JSON string.
            Some(Value::String(s)) => match serde_json::from_str(&s) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(DocumentError::MetadataNotObject(
                        "a string that is no JSON object",
                    ));
                }
            },
            Some(other) => return Err(DocumentError::MetadataNotObject(json_type(&other))),
        };
        Ok(Self {
            id,
            text,
            metadata,
            extra: map,
        })
    }

    /// Appends the document as one JSON line (with `\n`): `id`, `text`, `metadata`, then the
    /// other top-level fields in input order.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        write_json(out, &self.id);
        out.extend_from_slice(b",\"text\":");
        write_json(out, &self.text);
        out.extend_from_slice(b",\"metadata\":");
        write_json(out, &self.metadata);
        for (key, value) in &self.extra {
            out.push(b',');
            write_json(out, key);
            out.push(b':');
            write_json(out, value);
        }
        out.extend_from_slice(b"}\n");
    }

    /// The document as a JSON object in its JSONL form: `id`, `text`, `metadata`, then the other
    /// top-level fields.
    pub fn into_record(self) -> Map<String, Value> {
        let mut record = Map::with_capacity(3 + self.extra.len());
        record.insert("id".into(), Value::String(self.id));
        record.insert("text".into(), Value::String(self.text));
        record.insert("metadata".into(), Value::Object(self.metadata));
        record.extend(self.extra);
        record
    }

    /// A metadata field as a string, if it is one.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing strings, maps and JSON values into a Vec cannot fail.
    serde_json::to_writer(out, value).expect("serializing JSON into memory");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Document, DocumentError> {
        Document::from_json_line(line, &FieldNames::default())
    }

    #[test]
    fn round_trip_keeps_unknown_fields() {
        let line =
            r#"{"id":"x","text":"Olá, mundo","metadata":{"country":"BR"},"url":"https://a","n":3}"#;
        let doc = parse(line).unwrap();
        assert_eq!(doc.meta_str("country"), Some("BR"));
        let mut out = Vec::new();
        doc.write_json_line(&mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), format!("{line}\n"));
    }

    #[test]
    fn schema_errors_say_what_is_wrong() {
        assert!(matches!(parse("{\"id\": 1"), Err(DocumentError::Json(_))));
        assert!(matches!(
            parse("[1, 2]"),
            Err(DocumentError::NotAnObject("an array"))
        ));
        assert!(matches!(
            parse(r#"{"id": "a"}"#),
            Err(DocumentError::MissingText(_))
        ));
        let err = parse(r#"{"text": 42}"#).unwrap_err();
        assert_eq!(err.to_string(), "`text` is a number, expected a string");
        assert!(matches!(
            parse(r#"{"text": "a", "metadata": [1]}"#),
            Err(DocumentError::MetadataNotObject("an array"))
        ));
    }

    #[test]
    fn numeric_ids_become_strings_and_custom_fields_work() {
        let fields = FieldNames {
            text: "content".into(),
            id: "doc_id".into(),
        };
        let doc =
            Document::from_json_line(r#"{"doc_id": 17, "content": "hola"}"#, &fields).unwrap();
        assert_eq!((doc.id.as_str(), doc.text.as_str()), ("17", "hola"));
    }

    #[test]
    fn metadata_stored_as_json_string_is_parsed() {
        let doc = parse(r#"{"text": "a", "metadata": "{\"country\": \"CL\"}"}"#).unwrap();
        assert_eq!(doc.meta_str("country"), Some("CL"));
    }
}
