//! Token sampling shared by every inference backend (the candle engine and the libtorch
//! backend), so the same request parameters pick the same tokens everywhere: greedy (argmax,
//! lowest id among equals, NaN never wins), or temperature + nucleus (top-p) with a SplitMix64
//! generator seeded by the request; the nucleus is cut at the first token whose cumulative
//! mass reaches `top_p`, ties broken by token id.
//!
//! Not for: stop sequences or end-of-sequence handling (`openledger-inference` applies
//! [`SamplingParams::stop`] and [`SamplingParams::ignore_eos`] for every backend).

/// Errors of sampling.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid sampling parameters: {reason}")]
    InvalidParams {
        /// The request field at fault (`temperature`, `top_p`, `max_tokens`, `stop`).
        param: &'static str,
        /// Why, with the allowed range.
        reason: String,
    },
    /// A row of logits was empty or held no finite value (a broken model).
    #[error("the model returned no finite logit in a row of {len}")]
    InvalidLogits {
        /// Length of the row.
        len: usize,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sampling parameters of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax). Range `0..=2`. Default `1`.
    pub temperature: f32,
    /// Nucleus sampling mass; `1` disables it. Range `(0, 1]`. Default `1`.
    pub top_p: f32,
    /// Maximum number of tokens to generate (at least 1). Default `16`.
    pub max_tokens: usize,
    /// Generation stops when the text ends with one of these (the stop text is not
    /// returned). Up to 4 non-empty strings.
    pub stop: Vec<String>,
    /// RNG seed: the same seed, prompt and parameters give the same tokens. Default `0`.
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
    /// Greedy decoding (temperature 0) of up to `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            max_tokens,
            ..Self::default()
        }
    }

    /// Checks the ranges; the error names the parameter.
    pub fn validate(&self) -> Result<()> {
        let bad = |param, reason: String| Err(Error::InvalidParams { param, reason });
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad(
                "temperature",
                format!(
                    "temperature must be between 0 and 2, got {}",
                    self.temperature
                ),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(
                "top_p",
                format!("top_p must be in (0, 1], got {}", self.top_p),
            );
        }
        if self.max_tokens == 0 {
            return bad("max_tokens", "max_tokens must be at least 1".into());
        }
        if self.stop.len() > 4 || self.stop.iter().any(|s| s.is_empty()) {
            return bad("stop", "stop takes up to 4 non-empty strings".into());
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
    /// A sampler for the given parameters (validate them first).
    pub fn new(p: &SamplingParams) -> Self {
        Self {
            temperature: p.temperature,
            top_p: p.top_p,
            rng: Rng(p.seed),
        }
    }

    /// Chooses the next token from one row of logits.
    ///
    /// Fails with [`Error::InvalidLogits`] when the row is empty or holds no finite value
    /// (a broken model), instead of silently returning token 0.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        let max = logits
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            return Err(Error::InvalidLogits { len: logits.len() });
        }
        if self.temperature <= 0.0 {
            return Ok(argmax(logits));
        }
        let inv_t = 1.0 / f64::from(self.temperature);
        let max = f64::from(max);
        // NaN and -inf get probability 0 (exp of NaN is NaN, so filter it explicitly).
        let mut probs: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                let p = if l.is_nan() {
                    0.0
                } else {
                    ((f64::from(l) - max) * inv_t).exp()
                };
                (i as u32, p)
            })
            .collect();
        if self.top_p < 1.0 {
            let total: f64 = probs.iter().map(|p| p.1).sum();
            // Highest first; ties by id so the order is total and reproducible.
            probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let cut = f64::from(self.top_p) * total;
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
                return Ok(id);
            }
            r -= p;
        }
        // Rounding left a sliver of mass: take the last token that had any.
        Ok(probs.iter().rev().find(|p| p.1 > 0.0).map_or(0, |p| p.0))
    }
}

/// Index of the largest logit (the lowest index among equals, as `torch.argmax`); NaN never
/// wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<usize> = None;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && best.is_none_or(|b| l > logits[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            max_tokens: 1,
            seed,
            ..Default::default()
        }
    }

    #[test]
    fn greedy_takes_the_first_largest_logit() {
        let mut s = Sampler::new(&SamplingParams::greedy(1));
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 3.0]).unwrap(), 1);
        assert_eq!(s.sample(&[f32::NAN, 0.5, 0.2]).unwrap(), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_different_seeds_differ() {
        let logits: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let draw = |seed| {
            let mut s = Sampler::new(&params(1.0, 1.0, seed));
            (0..32)
                .map(|_| s.sample(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // Probabilities about 0.64, 0.24, 0.09, 0.03: top_p 0.7 keeps the first two.
        let logits = [3.0, 2.0, 1.0, 0.0];
        let mut s = Sampler::new(&params(1.0, 0.7, 1));
        for _ in 0..500 {
            assert!(s.sample(&logits).unwrap() < 2);
        }
        // A tiny top_p is greedy.
        let mut s = Sampler::new(&params(1.0, 1e-6, 1));
        assert_eq!(s.sample(&logits).unwrap(), 0);
    }

    #[test]
    fn broken_logits_are_an_error_not_token_zero() {
        let mut s = Sampler::new(&params(0.8, 0.9, 0));
        assert!(matches!(
            s.sample(&[]),
            Err(Error::InvalidLogits { len: 0 })
        ));
        assert!(matches!(
            s.sample(&[f32::NAN, f32::NEG_INFINITY]),
            Err(Error::InvalidLogits { len: 2 })
        ));
    }

    #[test]
    fn validate_names_the_bad_parameter() {
        let err = |p: SamplingParams| p.validate().unwrap_err().to_string();
        assert!(err(params(2.5, 1.0, 0)).contains("temperature"));
        assert!(err(params(1.0, 0.0, 0)).contains("top_p"));
        assert!(
            err(SamplingParams {
                max_tokens: 0,
                ..Default::default()
            })
            .contains("max_tokens")
        );
        assert!(
            err(SamplingParams {
                stop: vec![String::new()],
                ..Default::default()
            })
            .contains("stop")
        );
        SamplingParams::default().validate().unwrap();
    }
}
