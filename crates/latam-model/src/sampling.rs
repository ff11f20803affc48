//! Choosing the next token: penalties, temperature, top-k, top-p, min-p, seeded sampling.

use latam_core::Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// How the next token is chosen. The defaults are greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 picks the most likely token; higher values flatten the distribution.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (1: all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0: none).
    pub min_p: f32,
    /// Divides positive logits (multiplies negative ones) of tokens already seen, prompt
    /// included, as in `transformers` (1: off).
    pub repetition_penalty: f32,
    /// OpenAI's penalty per earlier occurrence in the completion.
    pub frequency_penalty: f32,
    /// OpenAI's penalty for any earlier occurrence in the completion.
    pub presence_penalty: f32,
    /// Seed of the sampler; the same seed and prompt give the same completion.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 0,
        }
    }
}

/// A sampling parameter out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` must be {range}")]
pub struct InvalidSampling {
    /// The parameter's name, as in the OpenAI API (`top_p`).
    pub name: &'static str,
    /// The values it may take, in words.
    pub range: &'static str,
}

impl SamplingParams {
    /// The first parameter out of range, if any.
    pub fn validate(&self) -> Result<(), InvalidSampling> {
        let checks = [
            (
                "temperature",
                self.temperature.is_finite() && (0.0..=100.0).contains(&self.temperature),
                "between 0 and 100",
            ),
            (
                "top_p",
                self.top_p > 0.0 && self.top_p <= 1.0,
                "greater than 0 and at most 1",
            ),
            (
                "min_p",
                (0.0..=1.0).contains(&self.min_p),
                "between 0 and 1",
            ),
            (
                "repetition_penalty",
                self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite(),
                "greater than 0",
            ),
            (
                "frequency_penalty",
                (-2.0..=2.0).contains(&self.frequency_penalty),
                "between -2 and 2",
            ),
            (
                "presence_penalty",
                (-2.0..=2.0).contains(&self.presence_penalty),
                "between -2 and 2",
            ),
        ];
        match checks.iter().find(|(_, ok, _)| !ok) {
            Some(&(name, _, range)) => Err(InvalidSampling { name, range }),
            None => Ok(()),
        }
    }
}

/// A seeded sampler for one sequence.
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    /// Occurrences of each token in the completion so far.
    counts: FxHashMap<u32, u32>,
    /// Tokens of the prompt, for the repetition penalty.
    seen: FxHashSet<u32>,
}

impl Sampler {
    /// A sampler for a sequence that starts with `prompt`.
    pub fn new(params: SamplingParams, prompt: &[u32]) -> Self {
        Self {
            rng: Rng::new(params.seed),
            seen: prompt.iter().copied().collect(),
            counts: FxHashMap::default(),
            params,
        }
    }

    /// Records a token of the completion.
    pub fn observe(&mut self, token: u32) {
        *self.counts.entry(token).or_default() += 1;
        self.seen.insert(token);
    }

    /// Chooses the next token from the logits of the last position.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let mut logits = logits.to_vec();
        self.penalize(&mut logits);
        let p = &self.params;
        if p.temperature <= 0.0 {
            return argmax(&logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, ((l - max) / p.temperature).exp()))
            .collect();
        if p.top_k > 0 && p.top_k < probs.len() {
            probs.select_nth_unstable_by(p.top_k - 1, |a, b| b.1.total_cmp(&a.1));
            probs.truncate(p.top_k);
        }
        if p.min_p > 0.0 {
            // The largest weight is exp(0) = 1 before normalization.
            probs.retain(|&(_, w)| w >= p.min_p);
        }
        if p.top_p < 1.0 {
            probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
            let total: f32 = probs.iter().map(|x| x.1).sum();
            let mut cumulative = 0.0;
            let keep = probs
                .iter()
                .position(|&(_, w)| {
                    cumulative += w / total;
                    cumulative >= p.top_p
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
        }
        let total: f64 = probs.iter().map(|x| f64::from(x.1)).sum();
        let mut target = f64::from(self.rng.unit_f32()) * total;
        for &(id, w) in &probs {
            target -= f64::from(w);
            if target <= 0.0 {
                return id;
            }
        }
        probs.last().map_or_else(|| argmax(&logits), |x| x.0)
    }

    fn penalize(&self, logits: &mut [f32]) {
        let p = &self.params;
        if (p.repetition_penalty - 1.0).abs() > f32::EPSILON {
            for &token in &self.seen {
                if let Some(l) = logits.get_mut(token as usize) {
                    *l = if *l > 0.0 {
                        *l / p.repetition_penalty
                    } else {
                        *l * p.repetition_penalty
                    };
                }
            }
        }
        if p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
            for (&token, &count) in &self.counts {
                if let Some(l) = logits.get_mut(token as usize) {
                    *l -= p.frequency_penalty * count as f32 + p.presence_penalty;
                }
            }
        }
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
        let mut p = SamplingParams::default();
        f(&mut p);
        p
    }

    #[test]
    fn greedy_takes_the_largest() {
        let mut s = Sampler::new(SamplingParams::default(), &[]);
        assert_eq!(s.sample(&[0.1, 2.0, 1.9]), 1);
    }

    #[test]
    fn repetition_penalty_demotes_seen_tokens() {
        let mut s = Sampler::new(params(|p| p.repetition_penalty = 1.5), &[1]);
        assert_eq!(s.sample(&[0.1, 2.0, 1.9]), 2);
    }

    #[test]
    fn top_k_and_min_p_restrict_the_choice() {
        let logits = [3.0, 2.9, 2.8, -10.0];
        let mut k1 = Sampler::new(
            params(|p| {
                p.temperature = 1.0;
                p.top_k = 1;
            }),
            &[],
        );
        assert!((0..50).all(|_| k1.sample(&logits) == 0));
        let mut min_p = Sampler::new(
            params(|p| {
                p.temperature = 1.0;
                p.min_p = 0.5;
                p.seed = 7;
            }),
            &[],
        );
        let picks: Vec<u32> = (0..200).map(|_| min_p.sample(&logits)).collect();
        assert!(picks.iter().all(|&t| t < 3));
        assert!(
            (0..3).all(|t| picks.contains(&t)),
            "all three likely tokens appear"
        );
    }

    #[test]
    fn top_p_keeps_the_nucleus_and_seeds_repeat() {
        let logits = [2.0, 1.0, 0.0, -1.0];
        let draw = |seed| {
            let mut s = Sampler::new(
                params(|p| {
                    p.temperature = 1.0;
                    p.top_p = 0.8;
                    p.seed = seed;
                }),
                &[],
            );
            (0..300).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        let a = draw(3);
        assert_eq!(a, draw(3));
        assert_ne!(a, draw(4));
        // p = [0.64, 0.24, 0.09, 0.03]: the nucleus of 0.8 is the first two.
        assert!(a.iter().all(|&t| t < 2));
        let zeros = a.iter().filter(|&&t| t == 0).count() as f64 / 300.0;
        assert!((zeros - 0.64 / 0.88).abs() < 0.08, "{zeros}");
    }

    #[test]
    fn out_of_range_parameters_are_named() {
        let err = params(|p| p.top_p = 0.0).validate().unwrap_err();
        assert_eq!(err.name, "top_p");
        assert_eq!(
            err.to_string(),
            "`top_p` must be greater than 0 and at most 1"
        );
        let err = params(|p| p.temperature = f32::NAN).validate().unwrap_err();
        assert_eq!(err.name, "temperature");
        assert!(SamplingParams::default().validate().is_ok());
    }
}
