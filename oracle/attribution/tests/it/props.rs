//! Property tests against a brute-force reference of the rule, with a printed, reproducible
//! seed: `OPENLEDGER_TEST_SEED=<seed> cargo test -p openledger-attribution --test it props`.

use std::collections::BTreeMap;

use openledger_attribution::{
    Attribution, AttributionConfig, ContributionId, ContributionWeight, Index, PPM, Segment, Span,
    SpanSource,
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngSeed},
};

use crate::common::segment;

const DEFAULT_SEED: u64 = 20_261_124;

fn config(cases: u32) -> Config {
    let seed = std::env::var("OPENLEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("proptest seed {seed} (reproduce with OPENLEDGER_TEST_SEED={seed})");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A random corpus over a small alphabet (so that repeats and shared spans are frequent), and
/// an output mixing copied chunks of the corpus with random tokens.
#[derive(Debug, Clone)]
struct Case {
    docs: Vec<(ContributionId, Vec<u32>)>,
    output: Vec<u32>,
    config: AttributionConfig,
    /// Segment boundaries for the incremental index (indexes into `docs`).
    cuts: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    let doc = prop::collection::vec(0u32..5, 0..30);
    let docs = prop::collection::vec(doc, 1..8);
    (
        docs,
        any::<u64>(),
        1u32..5,
        1u64..6,
        prop::collection::vec(any::<u16>(), 0..4),
    )
        .prop_flat_map(|(docs, id_salt, min_span_len, max_occ, raw_cuts)| {
            let docs: Vec<(ContributionId, Vec<u32>)> = docs
                .into_iter()
                .enumerate()
                // Distinct, unordered ids.
                .map(|(i, d)| ((i as u64 * 7919) ^ ((id_salt % 1000) * 8), d))
                .collect();
            let n = docs.len();
            let mut cuts: Vec<usize> = raw_cuts.iter().map(|&c| c as usize % (n + 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let piece = prop_oneof![
                // A copied chunk of some document.
                (0..docs.len(), any::<u16>(), 1usize..12).prop_map({
                    let docs = docs.clone();
                    move |(d, at, len)| {
                        let doc = &docs[d].1;
                        if doc.is_empty() {
                            return vec![];
                        }
                        let at = at as usize % doc.len();
                        doc[at..(at + len).min(doc.len())].to_vec()
                    }
                }),
                // Random tokens, some outside the corpus alphabet.
                prop::collection::vec(0u32..7, 1..6),
            ];
            prop::collection::vec(piece, 0..6).prop_map(move |pieces| Case {
                docs: docs.clone(),
                output: pieces.concat(),
                config: AttributionConfig {
                    min_span_len,
                    max_span_occurrences: max_occ,
                },
                cuts: cuts.clone(),
            })
        })
}

/// The same cases, with token ids spread over the whole id range half of the time, so that
/// segments are built through libsais's integer-alphabet path as well as its 16-bit path.
fn any_case() -> impl Strategy<Value = Case> {
    (case(), any::<bool>()).prop_map(|(mut case, wide)| {
        if wide {
            let spread = |t: &mut u32| *t = *t * 2_000_003 + 1;
            case.docs
                .iter_mut()
                .for_each(|(_, d)| d.iter_mut().for_each(spread));
            case.output.iter_mut().for_each(spread);
        }
        case
    })
}

fn occurrences(doc: &[u32], pattern: &[u32]) -> Vec<usize> {
    if pattern.len() > doc.len() {
        return vec![];
    }
    (0..=doc.len() - pattern.len())
        .filter(|&p| &doc[p..p + pattern.len()] == pattern)
        .collect()
}

/// The rule of the crate docs, computed the slow and obvious way.
fn reference(
    docs: &[(ContributionId, Vec<u32>)],
    output: &[u32],
    cfg: &AttributionConfig,
) -> Attribution {
    let m = output.len();
    let lens: Vec<u32> = (0..m)
        .map(|i| {
            docs.iter()
                .flat_map(|(_, d)| (0..d.len()).map(move |p| (d, p)))
                .map(|(d, p)| {
                    d[p..]
                        .iter()
                        .zip(&output[i..])
                        .take_while(|(a, b)| a == b)
                        .count() as u32
                })
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut spans = Vec::new();
    for i in 0..m {
        let len = lens[i];
        if len < cfg.min_span_len.max(1) || (i > 0 && lens[i] < lens[i - 1]) {
            continue;
        }
        let pattern = &output[i..i + len as usize];
        let mut occ = 0u64;
        let mut sources = BTreeMap::new();
        for (id, d) in docs {
            let found = occurrences(d, pattern);
            occ += found.len() as u64;
            if let Some(&first) = found.first() {
                sources.insert(*id, first as u32);
            }
        }
        let common = occ > cfg.max_span_occurrences;
        spans.push(Span {
            output_start: i as u32,
            len,
            occurrences: occ,
            common,
            credited_tokens: 0,
            ppm: 0,
            sources: if common {
                vec![]
            } else {
                sources
                    .into_iter()
                    .map(|(contribution, offset)| SpanSource {
                        contribution,
                        offset,
                        ppm: 0,
                    })
                    .collect()
            },
        });
    }
    for t in 0..m as u32 {
        let mut best: Option<usize> = None;
        for (s, span) in spans.iter().enumerate() {
            let covers = span.output_start <= t && t < span.output_start + span.len;
            if covers && !span.common && best.is_none_or(|b| spans[b].len < span.len) {
                best = Some(s);
            }
        }
        if let Some(b) = best {
            spans[b].credited_tokens += 1;
        }
    }
    let mut weights = BTreeMap::<u64, u32>::new();
    for span in &mut spans {
        if span.credited_tokens == 0 || span.sources.is_empty() {
            continue;
        }
        span.ppm = (span.credited_tokens as u64 * PPM as u64 / m as u64) as u32;
        let k = span.sources.len() as u32;
        for (j, src) in span.sources.iter_mut().enumerate() {
            src.ppm = span.ppm / k + u32::from((j as u32) < span.ppm % k);
            if src.ppm > 0 {
                *weights.entry(src.contribution).or_default() += src.ppm;
            }
        }
    }
    let weights: Vec<_> = weights
        .into_iter()
        .map(|(contribution, ppm)| ContributionWeight { contribution, ppm })
        .collect();
    let total: u32 = weights.iter().map(|w| w.ppm).sum();
    Attribution {
        config: *cfg,
        output_len: m as u32,
        weights,
        unattributed_ppm: PPM - total,
        spans,
    }
}

fn incremental(case: &Case) -> Index {
    let mut index = Index::new();
    let mut start = 0;
    for &cut in case.cuts.iter().chain([&case.docs.len()]) {
        index.push(segment(&case.docs[start..cut])).unwrap();
        start = cut;
    }
    index
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn attribution_matches_the_brute_force_reference(case in any_case()) {
        let index = crate::common::index(&case.docs);
        let got = index.attribute(&case.output, &case.config);
        let expected = reference(&case.docs, &case.output, &case.config);
        // Every span occurs at the reported place, and no longer match was missed (the
        // reference computes L[i] by trying every position of every contribution).
        for span in &got.spans {
            let text = &case.output[span.output_start as usize..][..span.len as usize];
            for src in &span.sources {
                let doc = &case.docs.iter().find(|(id, _)| *id == src.contribution).unwrap().1;
                prop_assert_eq!(&doc[src.offset as usize..][..text.len()], text);
            }
        }
        prop_assert_eq!(&got, &expected);
        let sum: u32 = got.weights.iter().map(|w| w.ppm).sum();
        prop_assert!(sum <= PPM);
        prop_assert_eq!(sum + got.unattributed_ppm, PPM);
    }

    #[test]
    fn incremental_index_equals_full_rebuild(case in any_case()) {
        let full = crate::common::index(&case.docs);
        let incr = incremental(&case);
        prop_assert_eq!(incr.segments().len(), case.cuts.len() + 1);
        let expected = serde_json::to_vec(&full.attribute(&case.output, &case.config)).unwrap();
        let got = serde_json::to_vec(&incr.attribute(&case.output, &case.config)).unwrap();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(incr.longest_matches(&case.output), full.longest_matches(&case.output));
        // Merging the segments (compaction) changes nothing either.
        let merged = Index::from_segments([std::sync::Arc::new(incr.compact().unwrap())]).unwrap();
        let got = serde_json::to_vec(&merged.attribute(&case.output, &case.config)).unwrap();
        prop_assert_eq!(&got, &expected);
    }
}

proptest! {
    #![proptest_config(config(40))]

    #[test]
    fn saved_and_reopened_index_answers_the_same(case in any_case()) {
        let dir = tempfile::tempdir().unwrap();
        let incr = incremental(&case);
        incr.save(dir.path()).unwrap();
        let opened = Index::open(dir.path()).unwrap();
        prop_assert_eq!(
            opened.attribute(&case.output, &case.config),
            incr.attribute(&case.output, &case.config)
        );
        let checksums = |i: &Index| i.segments().iter().map(|s| s.checksum()).collect::<Vec<_>>();
        prop_assert_eq!(checksums(&opened), checksums(&incr));
        // A segment file re-read on its own has the same checksum as the one written.
        for s in opened.segments() {
            prop_assert_eq!(Segment::open(s.path().unwrap()).unwrap().checksum(), s.checksum());
        }
    }
}
