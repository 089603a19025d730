//! Token sampling: temperature, nucleus (top-p), seeded and deterministic.

use crate::{Error, Result};

/// Sampling parameters of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax). Range `0..=2`.
    pub temperature: f32,
    /// Nucleus sampling mass; `1` disables it. Range `(0, 1]`.
    pub top_p: f32,
    /// Maximum number of tokens to generate (at least 1).
    pub max_tokens: usize,
    /// Generation stops when the text ends with one of these (the stop text is not returned).
    pub stop: Vec<String>,
    /// RNG seed: the same seed, prompt and parameters give the same tokens.
    pub seed: u64,
    /// Keep going past end-of-sequence tokens until `max_tokens` (for benchmarks).
    pub ignore_eos: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: 16,
            stop: Vec::new(),
            seed: 0,
            ignore_eos: false,
        }
    }
}

impl SamplingParams {
    /// Checks the ranges; the message names the parameter.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidRequest { reason });
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad(format!(
                "temperature must be between 0 and 2, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if self.max_tokens == 0 {
            return bad("max_tokens must be at least 1".into());
        }
        if self.stop.len() > 4 || self.stop.iter().any(|s| s.is_empty()) {
            return bad("stop takes up to 4 non-empty strings".into());
        }
        Ok(())
    }
}

/// SplitMix64: tiny, fast, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks tokens from logits for one sequence.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: Rng,
}

impl Sampler {
    /// A sampler for the given parameters.
    pub fn new(p: &SamplingParams) -> Self {
        Self {
            temperature: p.temperature,
            top_p: p.top_p,
            rng: Rng(p.seed),
        }
    }

    /// Chooses the next token.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.temperature as f64;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let mut probs: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, ((l as f64 - max) * inv_t).exp()))
            .collect();
        let total: f64 = probs.iter().map(|p| p.1).sum();
        if self.top_p < 1.0 {
            // Highest first; ties by id so the order is total and reproducible.
            probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let cut = self.top_p as f64 * total;
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p.1;
                if acc >= cut {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let mass: f64 = probs.iter().map(|p| p.1).sum();
        let mut r = self.rng.next_f64() * mass;
        for &(id, p) in &probs {
            if r < p {
                return id;
            }
            r -= p;
        }
        probs.last().map(|p| p.0).unwrap_or(0)
    }
}

/// Index of the largest logit (the lowest index among equals).
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

    fn params(temperature: f32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            seed,
            ..Default::default()
        }
    }

    #[test]
    fn greedy_picks_argmax() {
        let mut s = Sampler::new(&params(0.0, 1.0, 1));
        assert_eq!(s.sample(&[0.1, 3.0, 2.0, 3.0]), 1);
    }

    #[test]
    fn same_seed_same_tokens_other_seed_differs() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let run = |seed| {
            let mut s = Sampler::new(&params(1.0, 1.0, seed));
            (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // Token 0 has ~0.88 of the mass: top_p 0.5 must always pick it.
        let logits = [5.0, 3.0, 0.0, 0.0];
        let mut s = Sampler::new(&params(1.0, 0.5, 3));
        assert!((0..200).all(|_| s.sample(&logits) == 0));
        // Without top-p, the other tokens do appear.
        let mut s = Sampler::new(&params(1.0, 1.0, 3));
        assert!((0..200).any(|_| s.sample(&logits) != 0));
    }

    #[test]
    fn validation_names_the_parameter() {
        let err = |p: SamplingParams| p.validate().unwrap_err().to_string();
        assert!(err(params(3.0, 1.0, 0)).contains("temperature"));
        assert!(err(params(1.0, 0.0, 0)).contains("top_p"));
        assert!(
            err(SamplingParams {
                max_tokens: 0,
                ..Default::default()
            })
            .contains("max_tokens")
        );
        assert!(params(0.7, 0.9, 0).validate().is_ok());
    }
}
