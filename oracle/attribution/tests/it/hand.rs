//! Hand-checkable corpora: each expected number is worked out in the comments.

use openledger_attribution::{
    AttributionConfig, ContentHash, Contribution, ContributionWeight, Error, SegmentBuilder,
};

use crate::common::{index, run};

fn cfg(min_span_len: u32) -> AttributionConfig {
    AttributionConfig {
        min_span_len,
        max_span_occurrences: 1_000,
    }
}

fn w(contribution: u64, ppm: u32) -> ContributionWeight {
    ContributionWeight { contribution, ppm }
}

#[test]
fn verbatim_recall_of_one_contribution_gets_all_the_weight() {
    let index = index(&[(1, run(10, 30)), (2, run(100, 120)), (3, run(200, 240))]);
    let a = index.attribute(&run(100, 120), &cfg(4));
    // One span covering all 20 tokens, found only in contribution 2 at offset 0.
    assert_eq!(a.weights, vec![w(2, 1_000_000)]);
    assert_eq!(a.unattributed_ppm, 0);
    assert_eq!(a.spans.len(), 1);
    let s = &a.spans[0];
    assert_eq!(
        (s.output_start, s.len, s.occurrences, s.credited_tokens),
        (0, 20, 1, 20)
    );
    assert_eq!(s.sources.len(), 1);
    assert_eq!((s.sources[0].contribution, s.sources[0].offset), (2, 0));
}

#[test]
fn recall_of_part_of_a_contribution_inside_novel_text() {
    let index = index(&[(1, run(10, 30)), (2, run(100, 120))]);
    // 5 novel tokens, then tokens 15..25 of contribution 1 (offset 5), then 5 novel tokens:
    // 10 of 20 output tokens copied -> 500,000 ppm.
    let output: Vec<u32> = [run(900, 905), run(15, 25), run(905, 910)].concat();
    let a = index.attribute(&output, &cfg(4));
    assert_eq!(a.weights, vec![w(1, 500_000)]);
    assert_eq!(a.unattributed_ppm, 500_000);
    assert_eq!(a.spans.len(), 1);
    assert_eq!((a.spans[0].output_start, a.spans[0].len), (5, 10));
    assert_eq!(a.spans[0].sources[0].offset, 5);
}

#[test]
fn text_in_two_contributions_is_split_equally() {
    // The 8-token run 1..9 occurs in contribution 4 (offset 0) and 9 (offset 2).
    let index = index(&[
        (9, [vec![50, 51], run(1, 9), vec![52]].concat()),
        (4, run(1, 9)),
        (5, run(60, 70)),
    ]);
    let a = index.attribute(&run(1, 9), &cfg(4));
    assert_eq!(a.weights, vec![w(4, 500_000), w(9, 500_000)]);
    let s = &a.spans[0];
    assert_eq!(s.occurrences, 2);
    let sources: Vec<_> = s
        .sources
        .iter()
        .map(|s| (s.contribution, s.offset, s.ppm))
        .collect();
    assert_eq!(sources, vec![(4, 0, 500_000), (9, 2, 500_000)]);
}

#[test]
fn uneven_splits_give_the_remainder_to_the_smallest_ids() {
    // Three contributions hold the same 6 tokens: 1,000,000 / 3 = 333,333 rest 1, and the
    // extra ppm goes to the smallest id.
    let index = index(&[(30, run(1, 7)), (10, run(1, 7)), (20, run(1, 7))]);
    let a = index.attribute(&run(1, 7), &cfg(3));
    assert_eq!(
        a.weights,
        vec![w(10, 333_334), w(20, 333_333), w(30, 333_333)]
    );
    assert_eq!(a.unattributed_ppm, 0);
}

#[test]
fn text_in_no_contribution_gives_zero_weights() {
    let index = index(&[(1, run(10, 30)), (2, run(100, 120))]);
    for output in [run(500, 600), vec![], vec![u32::MAX, 1 << 30, 7]] {
        let a = index.attribute(&output, &cfg(1));
        assert!(a.weights.is_empty());
        assert!(a.spans.is_empty());
        assert_eq!(a.unattributed_ppm, 1_000_000);
    }
}

#[test]
fn spans_shorter_than_the_minimum_are_ignored() {
    let index = index(&[(1, run(10, 30))]);
    // A 3-token copy (11, 12, 13) among novel tokens.
    let output = [vec![900], run(11, 14), vec![901, 902]].concat();
    assert_eq!(index.longest_matches(&output), vec![0, 3, 2, 1, 0, 0]);
    let a = index.attribute(&output, &cfg(4));
    assert!(a.spans.is_empty() && a.weights.is_empty());
    // With a minimum of 3 the span counts: 3 of 6 tokens.
    let a = index.attribute(&output, &cfg(3));
    assert_eq!(a.weights, vec![w(1, 500_000)]);
}

#[test]
fn boundaries_never_create_a_span_across_two_contributions() {
    // Contributions 1 and 2 are adjacent in the token stream; the output is their
    // concatenation. No 4-token span exists, since a match cannot run from one into the other.
    let index = index(&[(1, run(1, 4)), (2, run(4, 7))]);
    let output = run(1, 7);
    assert_eq!(index.longest_matches(&output), vec![3, 2, 1, 3, 2, 1]);
    assert!(index.attribute(&output, &cfg(4)).spans.is_empty());
    // With a minimum of 3: two spans of 3 tokens, one per contribution.
    let a = index.attribute(&output, &cfg(3));
    assert_eq!(a.weights, vec![w(1, 500_000), w(2, 500_000)]);
    assert_eq!(a.spans.len(), 2);
}

#[test]
fn overlapping_spans_pay_each_token_once_to_the_longer_span() {
    // Contribution 1 = 1..=10, contribution 2 = 8..=13. Output 1..=13: span A = output 0..10
    // (10 tokens, contribution 1), span B = output 7..13 (6 tokens, contribution 2). Tokens
    // 7, 8, 9 are covered by both and go to the longer A: A 10 tokens, B 3 tokens.
    // ppm: floor(10e6 / 13) = 769,230 and floor(3e6 / 13) = 230,769; 1 ppm unattributed.
    let index = index(&[(1, run(1, 11)), (2, run(8, 14))]);
    let a = index.attribute(&run(1, 14), &cfg(4));
    let spans: Vec<_> = a
        .spans
        .iter()
        .map(|s| (s.output_start, s.len, s.credited_tokens, s.ppm))
        .collect();
    assert_eq!(spans, vec![(0, 10, 10, 769_230), (7, 6, 3, 230_769)]);
    assert_eq!(a.weights, vec![w(1, 769_230), w(2, 230_769)]);
    assert_eq!(a.unattributed_ppm, 1);
}

#[test]
fn common_spans_are_reported_but_credit_nobody() {
    let index = index(&[(1, run(1, 9)), (2, run(1, 9)), (3, run(20, 30))]);
    let config = AttributionConfig {
        min_span_len: 4,
        max_span_occurrences: 1,
    };
    let output = [run(1, 9), run(20, 28)].concat();
    let a = index.attribute(&output, &config);
    // The span 1..9 occurs twice (> 1): common. The span 20..28 is unique: 8 of 16 tokens.
    assert_eq!(a.spans.len(), 2);
    assert!(a.spans[0].common && a.spans[0].sources.is_empty());
    assert_eq!(a.spans[0].occurrences, 2);
    assert_eq!(a.weights, vec![w(3, 500_000)]);
}

#[test]
fn content_hash_mismatch_is_refused_with_a_clear_error() {
    let mut b = SegmentBuilder::new();
    let err = b
        .add(
            &Contribution {
                id: 42,
                content_hash: ContentHash::of(b"what was accepted on chain"),
                content: b"something else",
            },
            &[1, 2, 3],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ContentHashMismatch {
            contribution: 42,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("contribution 42") && msg.contains("0x"),
        "{msg}"
    );
    assert!(b.is_empty());
}

#[test]
fn same_input_gives_the_same_bytes_from_every_thread() {
    let index = index(&[(1, run(1, 40)), (2, run(30, 60)), (3, run(5, 25))]);
    let output = [run(3, 20), vec![999], run(35, 55)].concat();
    let expected = serde_json::to_vec(&index.attribute(&output, &cfg(3))).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| serde_json::to_vec(&index.attribute(&output, &cfg(3))).unwrap()))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), expected);
        }
    });
}
