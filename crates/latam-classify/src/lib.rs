//! A fastText-style supervised text classifier, for language identification first, and for
//! quality, toxicity and topic after it: hashed character n-grams and word n-grams
//! ([`FeatureConfig`]), averaged embeddings, softmax or one-vs-all ([`Loss`]), SGD with a
//! decaying learning rate; deterministic for a seed; optional 8-bit rows; a small versioned
//! model file (`LTMCLASS`, version, JSON header, rows, output matrix).
//!
//! ```
//! use latam_classify::{Classifier, Example, TrainConfig};
//!
//! let data: Vec<Example> = [("spa", "el perro come"), ("por", "o cachorro come")]
//!     .iter()
//!     .map(|(l, t)| Example { text: t.to_string(), labels: vec![l.to_string()] })
//!     .collect();
//! let model = Classifier::train(&data, &TrainConfig { epochs: 20, ..Default::default() }, "")?;
//! assert_eq!(model.predict("o cachorro", 1)[0].0, "por");
//! # Ok::<(), latam_classify::ClassifyError>(())
//! ```

mod eval;
mod features;
mod model;

pub use eval::{LabelScores, Scores, score};
pub use features::FeatureConfig;
pub use model::{Classifier, Example, Header, Loss, TrainConfig};

/// What can go wrong with a model or its data.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// Training data that cannot train a model.
    #[error("{0}")]
    Data(String),
    /// A model file that cannot be read.
    #[error("not a valid model: {0}")]
    Format(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
