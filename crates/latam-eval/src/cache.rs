//! Answers cached in SQLite by a hash of the model, the request and its parameters: an
//! interrupted run continues where it stopped, and a rerun asks nothing twice.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::EvalError;

/// The cache.
pub struct Cache {
    connection: Mutex<Connection>,
}

impl Cache {
    /// Opens (creating) the cache at `path`.
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let connection = Connection::open(path).map_err(|e| EvalError::Cache(e.to_string()))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS answers (
                     key TEXT PRIMARY KEY, kind TEXT NOT NULL, response TEXT NOT NULL,
                     created TEXT NOT NULL DEFAULT (datetime('now')));",
            )
            .map_err(|e| EvalError::Cache(e.to_string()))?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// The key of a request: SHA-256 of its kind and JSON (model, messages or prompt, parameters).
    pub fn key(kind: &str, request: &Value) -> String {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        hasher.update(request.to_string().as_bytes());
        latam_io::hex(&hasher.finalize())
    }

    /// A cached response.
    pub fn get(&self, key: &str) -> Result<Option<Value>, EvalError> {
        let connection = self.connection.lock().expect("cache lock");
        let text: Option<String> = connection
            .query_row(
                "SELECT response FROM answers WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| EvalError::Cache(e.to_string()))?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| EvalError::Cache(e.to_string())))
            .transpose()
    }

    /// Stores a response.
    pub fn put(&self, key: &str, kind: &str, response: &Value) -> Result<(), EvalError> {
        let connection = self.connection.lock().expect("cache lock");
        connection
            .execute(
                "INSERT OR REPLACE INTO answers (key, kind, response) VALUES (?1, ?2, ?3)",
                params![key, kind, response.to_string()],
            )
            .map_err(|e| EvalError::Cache(e.to_string()))?;
        Ok(())
    }
}
