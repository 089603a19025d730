//! Shared helpers: building indexes from token corpora.

use openledger_attribution::{
    ContentHash, Contribution, ContributionId, Index, Segment, SegmentBuilder,
};

/// The raw bytes standing for a token-only contribution: its token ids, little-endian.
pub fn content_of(tokens: &[u32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// Builds one segment from `(id, tokens)` documents, with content hashes of [`content_of`].
pub fn segment(docs: &[(ContributionId, Vec<u32>)]) -> Segment {
    let mut b = SegmentBuilder::new();
    for (id, tokens) in docs {
        let content = content_of(tokens);
        let c = Contribution {
            id: *id,
            content_hash: ContentHash::of(&content),
            content: &content,
        };
        b.add(&c, tokens).expect("valid contribution");
    }
    b.build().expect("segment builds")
}

/// An index with one segment holding `docs`.
pub fn index(docs: &[(ContributionId, Vec<u32>)]) -> Index {
    let mut index = Index::new();
    index.push(segment(docs)).expect("no duplicates");
    index
}

/// Tokens `a..b`.
pub fn run(a: u32, b: u32) -> Vec<u32> {
    (a..b).collect()
}
