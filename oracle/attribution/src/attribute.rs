//! The attribution query (see the crate docs for the exact rule).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ContributionId, PPM, TOKEN_ID_LIMIT, segment::View};

/// Parameters of the attribution rule. Both numbers are part of what a payout depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionConfig {
    /// Spans shorter than this many tokens are ignored. Default 6 (about four English words
    /// with the SmolLM2 tokenizer: shorter runs are mostly chance).
    pub min_span_len: u32,
    /// Spans occurring more often than this in the Datanet are common text and credit nobody.
    /// Default 1,000. Also bounds the work per span.
    pub max_span_occurrences: u64,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        Self {
            min_span_len: 6,
            max_span_occurrences: 1_000,
        }
    }
}

/// The result of attributing one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// The configuration the rule ran with.
    pub config: AttributionConfig,
    /// Number of output tokens.
    pub output_len: u32,
    /// Weight per contribution, ascending by contribution id; only non-zero weights.
    pub weights: Vec<ContributionWeight>,
    /// `1,000,000 − Σ weights`: the Datanet's unattributed share.
    pub unattributed_ppm: u32,
    /// Every maximal span of at least `min_span_len` tokens, by output position.
    pub spans: Vec<Span>,
}

impl Attribution {
    /// The weight of `contribution`, in ppm (0 if it got nothing).
    pub fn weight(&self, contribution: ContributionId) -> u32 {
        self.weights
            .binary_search_by_key(&contribution, |w| w.contribution)
            .map_or(0, |i| self.weights[i].ppm)
    }

    /// Sum of the weights, in ppm (at most 1,000,000).
    pub fn attributed_ppm(&self) -> u32 {
        PPM - self.unattributed_ppm
    }
}

/// One contribution's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionWeight {
    /// The contribution.
    pub contribution: ContributionId,
    /// Its weight in parts per million of the data share.
    pub ppm: u32,
}

/// A maximal run of output tokens found verbatim in the Datanet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Offset of the span's first token in the output.
    pub output_start: u32,
    /// Length in tokens.
    pub len: u32,
    /// How many times the span occurs in the whole Datanet.
    pub occurrences: u64,
    /// Whether the span is common text (`occurrences > max_span_occurrences`); a common span
    /// lists no sources and credits nobody.
    pub common: bool,
    /// Output tokens credited to this span (those it covers where it is the longest span).
    pub credited_tokens: u32,
    /// The span's share, `floor(credited_tokens × 1,000,000 / output_len)` ppm.
    pub ppm: u32,
    /// The contributions containing the span, ascending by id.
    pub sources: Vec<SpanSource>,
}

/// Where a span occurs in one contribution, and what that contribution got for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanSource {
    /// The contribution.
    pub contribution: ContributionId,
    /// Token offset of the span's first occurrence in the contribution.
    pub offset: u32,
    /// The part of the span's share this contribution got, in ppm.
    pub ppm: u32,
}

/// Query symbol of an output token: `token + 1`, or a symbol no index holds.
fn symbol(token: u32) -> u32 {
    if token < TOKEN_ID_LIMIT {
        token + 1
    } else {
        u32::MAX
    }
}

/// `L[i]` of the rule: longest match starting at each output position, over all segments.
pub(crate) fn longest_matches(views: &[View<'_>], output: &[u32]) -> Vec<u32> {
    let q: Vec<u32> = output.iter().map(|&t| symbol(t)).collect();
    longest_matches_sym(views, &q)
}

fn longest_matches_sym(views: &[View<'_>], q: &[u32]) -> Vec<u32> {
    (0..q.len())
        .map(|i| {
            views
                .iter()
                .map(|v| v.longest_prefix(&q[i..]))
                .max()
                .unwrap_or(0) as u32
        })
        .collect()
}

pub(crate) fn attribute(
    views: &[View<'_>],
    output: &[u32],
    config: &AttributionConfig,
) -> Attribution {
    let m = output.len();
    let q: Vec<u32> = output.iter().map(|&t| symbol(t)).collect();
    let lens = longest_matches_sym(views, &q);
    let min_len = config.min_span_len.max(1);

    // 2-3: maximal spans, their occurrences and sources.
    let mut spans = Vec::new();
    for i in 0..m {
        let len = lens[i];
        if len < min_len || (i > 0 && len < lens[i - 1]) {
            continue;
        }
        let pattern = &q[i..i + len as usize];
        let ranges: Vec<_> = views.iter().map(|v| v.prefix_range(pattern)).collect();
        let occurrences: u64 = ranges.iter().map(|r| r.len() as u64).sum();
        let common = occurrences > config.max_span_occurrences;
        let mut sources = Vec::new();
        if !common {
            let mut first: BTreeMap<ContributionId, u32> = BTreeMap::new();
            for (v, range) in views.iter().zip(ranges) {
                for sa_index in range {
                    let (d, offset) = v.locate(sa_index);
                    first
                        .entry(v.doc_id[d])
                        .and_modify(|o| *o = (*o).min(offset))
                        .or_insert(offset);
                }
            }
            sources = first
                .into_iter()
                .map(|(contribution, offset)| SpanSource {
                    contribution,
                    offset,
                    ppm: 0,
                })
                .collect();
        }
        spans.push(Span {
            output_start: i as u32,
            len,
            occurrences,
            common,
            credited_tokens: 0,
            ppm: 0,
            sources,
        });
    }

    // 4: each output token goes to the longest non-common span covering it (first on ties).
    // Span starts and ends both increase strictly, so the spans covering token t form a
    // window [lo, hi) of the span list that only moves forward.
    let (mut lo, mut hi) = (0, 0);
    for t in 0..m as u32 {
        while hi < spans.len() && spans[hi].output_start <= t {
            hi += 1;
        }
        while lo < hi && spans[lo].output_start + spans[lo].len <= t {
            lo += 1;
        }
        let best = (lo..hi)
            .filter(|&s| !spans[s].common)
            .fold(None, |best: Option<usize>, s| match best {
                Some(b) if spans[b].len >= spans[s].len => Some(b),
                _ => Some(s),
            });
        if let Some(b) = best {
            spans[b].credited_tokens += 1;
        }
    }

    // 5: ppm per span, split between its sources.
    let mut weights: BTreeMap<ContributionId, u32> = BTreeMap::new();
    for span in &mut spans {
        if span.credited_tokens == 0 || span.sources.is_empty() {
            continue;
        }
        span.ppm = (u64::from(span.credited_tokens) * u64::from(PPM) / m as u64) as u32;
        let k = span.sources.len() as u32;
        let (base, extra) = (span.ppm / k, span.ppm % k);
        for (j, source) in span.sources.iter_mut().enumerate() {
            source.ppm = base + u32::from((j as u32) < extra);
            if source.ppm > 0 {
                *weights.entry(source.contribution).or_default() += source.ppm;
            }
        }
    }
    let weights: Vec<ContributionWeight> = weights
        .into_iter()
        .map(|(contribution, ppm)| ContributionWeight { contribution, ppm })
        .collect();
    let total: u32 = weights.iter().map(|w| w.ppm).sum();
    debug_assert!(total <= PPM);
    Attribution {
        config: *config,
        output_len: m as u32,
        weights,
        unattributed_ppm: PPM - total,
        spans,
    }
}
