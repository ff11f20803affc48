//! Downloads from the Hugging Face Hub (`hf://owner/name`), shared by `latam tokenize` (a
//! model's `tokenizer.json`) and `latam eval` (benchmark datasets): one client built from the
//! environment — `HF_ENDPOINT` (a mirror), `HF_HOME` (the cache, where files fetched before are
//! found without the network), `HF_TOKEN` (gated repositories) — and one message that says,
//! when a download fails, why and what to do instead.

use std::path::PathBuf;

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};

/// The Hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how to reach the Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    /// The Hub or a mirror (`HF_ENDPOINT`).
    pub endpoint: String,
    /// The download cache (`HF_HOME`, by default `~/.cache/huggingface`).
    pub cache: PathBuf,
    /// A token for gated and private repositories (`HF_TOKEN`, else the cache's `token` file).
    pub token: Option<String>,
}

impl Hub {
    /// The settings of the environment.
    pub fn from_env() -> Self {
        let cache = hf_hub::Cache::from_env();
        Self {
            endpoint: std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.into()),
            token: std::env::var("HF_TOKEN").ok().or_else(|| cache.token()),
            cache: cache.path().clone(),
        }
    }

    /// Repository `id` (`owner/name`); `instead` is what the user can give in its place (say
    /// `--tokenizer FILE`), named when a download fails.
    pub fn repo(&self, kind: Kind, id: &str, instead: &str) -> Result<Repo, HubError> {
        let site = Site {
            hub: self.clone(),
            id: id.to_owned(),
            instead: instead.to_owned(),
        };
        let api = ApiBuilder::from_cache(hf_hub::Cache::new(self.cache.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(false)
            .build()
            .map_err(|e| site.error("start a client", &e))?;
        let api = match kind {
            Kind::Model => api.model(id.to_owned()),
            Kind::Dataset => api.dataset(id.to_owned()),
        };
        Ok(Repo { site, api })
    }
}

/// What a repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A model (`hf://meta-llama/Llama-3.1-8B`).
    Model,
    /// A dataset (`hf://latam-gpt/CHOCLO`).
    Dataset,
}

/// A repository of the Hub.
pub struct Repo {
    site: Site,
    api: ApiRepo,
}

impl Repo {
    /// The local path of `file`: from the cache, else downloaded into it.
    pub fn get(&self, file: &str) -> Result<PathBuf, HubError> {
        self.api
            .get(file)
            .map_err(|e| self.site.error(&format!("download {file}"), &e))
    }

    /// The names of the repository's files (this needs the network).
    pub fn files(&self) -> Result<Vec<String>, HubError> {
        let info = self
            .api
            .info()
            .map_err(|e| self.site.error("list the files", &e))?;
        Ok(info.siblings.into_iter().map(|s| s.rfilename).collect())
    }
}

/// A repository and what stands in for it, for the messages.
struct Site {
    hub: Hub,
    id: String,
    instead: String,
}

impl Site {
    fn error(&self, action: &str, e: &ApiError) -> HubError {
        let reason = Reason::of(e);
        let hub = &self.hub;
        let token = if hub.token.is_some() {
            "HF_TOKEN is set"
        } else {
            "HF_TOKEN is not set"
        };
        let why = match reason {
            Reason::Unreachable => "The Hub did not answer: no network, or a proxy in the way.",
            Reason::Denied => {
                "The Hub refused: the repository is gated (accept its licence on its page, \
                 logged in), private, or absent."
            }
            Reason::NotFound => "No such repository or file.",
            Reason::Other => "",
        };
        let message = format!(
            "hf://{id}: cannot {action} from {endpoint}: {cause}\n  {why}{space}Instead: \
             {instead}. Gated repositories (Llama) need HF_TOKEN, a token of an account with \
             access ({token}). HF_ENDPOINT names a mirror. Offline, files fetched before are \
             read from the Hub cache ({cache}).",
            id = self.id,
            endpoint = hub.endpoint,
            cause = cause(e),
            space = if why.is_empty() { "" } else { " " },
            instead = self.instead,
            cache = hub.cache.display(),
        );
        HubError {
            repo: self.id.clone(),
            reason,
            message,
        }
    }
}

/// Why a download failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer: no network, a wrong `HF_ENDPOINT`, a proxy.
    Unreachable,
    /// 401 or 403: gated, private, or (to a client without a token) absent.
    Denied,
    /// 404: no such file.
    NotFound,
    /// Anything else (a full disk, an answer hf-hub does not understand).
    Other,
}

impl Reason {
    fn of(e: &ApiError) -> Self {
        match e {
            ApiError::RequestError(e) => match e.as_ref() {
                ureq::Error::Status(401 | 403, _) => Self::Denied,
                ureq::Error::Status(404, _) => Self::NotFound,
                ureq::Error::Status(..) => Self::Other,
                ureq::Error::Transport(_) => Self::Unreachable,
            },
            ApiError::TooManyRetries(e) => Self::of(e),
            _ => Self::Other,
        }
    }
}

/// hf-hub's error, with the Hub's own explanation of a refusal (`X-Error-Message`) when it
/// gives one.
fn cause(e: &ApiError) -> String {
    if let ApiError::RequestError(inner) = e
        && let ureq::Error::Status(code, response) = inner.as_ref()
    {
        return match response.header("x-error-message") {
            Some(said) => format!("status {code}, {said}"),
            None => format!("status {code}"),
        };
    }
    e.to_string()
}

/// A download that failed: the repository, why, and a message that says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HubError {
    /// The repository (`owner/name`).
    pub repo: String,
    /// Why.
    pub reason: Reason,
    message: String,
}
