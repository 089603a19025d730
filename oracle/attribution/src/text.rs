//! Convenience layer for text: contributions and outputs tokenized with the serving model's
//! tokenizer ([`openledger_tokenizer::Tokenizer`]).
//!
//! ```no_run
//! # fn main() -> openledger_attribution::Result<()> {
//! use openledger_attribution::{AttributionConfig, ContentHash, Contribution, Index, SegmentBuilder, text};
//! let tok = openledger_tokenizer::Tokenizer::from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
//!     .expect("model file");
//! let content = b"Rust's ownership rules make memory safety a compile-time property.";
//! let mut builder = SegmentBuilder::new();
//! text::add(&mut builder, &tok, &Contribution {
//!     id: 1,
//!     content_hash: ContentHash::of(content),
//!     content,
//! })?;
//! let mut index = Index::new();
//! index.extend(builder)?;
//! let (tokens, attribution) = text::attribute(&index, &tok,
//!     "As they say, ownership rules make memory safety a compile-time property.",
//!     &AttributionConfig::default());
//! for span in &attribution.spans {
//!     println!("{:?}: {}", span.sources, text::span_text(&tok, &tokens, span));
//! }
//! # Ok(()) }
//! ```

use openledger_tokenizer::Tokenizer;

use crate::{
    Attribution, AttributionConfig, Contribution, Error, Index, Result, SegmentBuilder, Span,
};

/// Checks the contribution's content hash, then tokenizes its content (UTF-8 text) and adds
/// it to `builder`. A hash mismatch is refused before any tokenization.
pub fn add(
    builder: &mut SegmentBuilder,
    tokenizer: &Tokenizer,
    contribution: &Contribution<'_>,
) -> Result<()> {
    contribution.verify()?;
    let text = std::str::from_utf8(contribution.content).map_err(|_| Error::NotUtf8 {
        contribution: contribution.id,
    })?;
    let tokens = tokenizer.encode(text);
    builder.add_verified(contribution.id, contribution.content_hash, &tokens)
}

/// Tokenizes `output` and attributes it; returns the output tokens (which span offsets refer
/// to) and the attribution. The oracle, which already has the generated token ids, should call
/// [`Index::attribute`] on them directly.
pub fn attribute(
    index: &Index,
    tokenizer: &Tokenizer,
    output: &str,
    config: &AttributionConfig,
) -> (Vec<u32>, Attribution) {
    let tokens = tokenizer.encode(output);
    let attribution = index.attribute(&tokens, config);
    (tokens, attribution)
}

/// The text of `span` in the output it was found in.
pub fn span_text(tokenizer: &Tokenizer, output_tokens: &[u32], span: &Span) -> String {
    let start = span.output_start as usize;
    tokenizer.decode(&output_tokens[start..start + span.len as usize])
}
