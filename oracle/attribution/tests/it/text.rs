//! The text layer with the real SmolLM2 tokenizer.
//!
//! **Needs the real model file** `SmolLM2-135M-Instruct.Q4_1.gguf` in `$OPENLEDGER_MODEL_DIR`
//! (default `~/.cache/openledger/models`); `scripts/fetch-model.sh` installs it. The tests fail
//! with that instruction when it is missing.

use std::sync::OnceLock;

use openledger_attribution::{
    AttributionConfig, ContentHash, Contribution, Error, Index, SegmentBuilder, text,
};
use openledger_tokenizer::Tokenizer;

fn tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = openledger_tokenizer::default_model_path();
        assert!(
            path.is_file(),
            "model file {} is missing: run scripts/fetch-model.sh (or scripts/setup.sh) first",
            path.display()
        );
        Tokenizer::from_gguf(&path).expect("tokenizer rebuilds from the GGUF metadata")
    })
}

const DOCS: [(u64, &str); 3] = [
    (
        11,
        "The Datanet collects field notes about coastal birds. Herring gulls nest on rooftops \
         in many harbour towns and defend their chicks noisily.",
    ),
    (
        12,
        "Suffix arrays list every suffix of a text in sorted order, so that any substring can \
         be found with a binary search over the array.",
    ),
    (
        13,
        "In 2026 the river rose 3.75 metres above its usual level and flooded the lower town.",
    ),
];

fn index() -> Index {
    let mut builder = SegmentBuilder::new();
    for (id, content) in DOCS {
        let c = Contribution {
            id,
            content_hash: ContentHash::of(content.as_bytes()),
            content: content.as_bytes(),
        };
        text::add(&mut builder, tokenizer(), &c).unwrap();
    }
    let mut index = Index::new();
    index.extend(builder).unwrap();
    index
}

#[test]
fn copied_sentence_is_credited_to_its_contribution() {
    let index = index();
    let output = "Here is what I know: suffix arrays list every suffix of a text in sorted order, \
                  which makes lookups fast.";
    let (tokens, a) = text::attribute(&index, tokenizer(), output, &AttributionConfig::default());
    assert_eq!(a.weights.len(), 1, "{a:#?}");
    assert_eq!(a.weights[0].contribution, 12);
    assert!(a.weights[0].ppm > 300_000, "{a:#?}");
    let span = &a.spans[0];
    let copied = text::span_text(tokenizer(), &tokens, span);
    assert!(
        copied.contains("every suffix of a text in sorted order"),
        "{copied:?}"
    );
    // The reported offset points at the same tokens inside the contribution.
    let (_, doc) = index.contribution(12).unwrap();
    let at = span.sources[0].offset as usize;
    assert_eq!(
        &doc[at..at + span.len as usize],
        &tokens[span.output_start as usize..][..span.len as usize]
    );
}

#[test]
fn unrelated_text_and_digits_are_not_credited() {
    let index = index();
    let (_, a) = text::attribute(
        &index,
        tokenizer(),
        "Quantum chromodynamics describes the strong interaction between quarks and gluons.",
        &AttributionConfig::default(),
    );
    assert!(a.weights.is_empty(), "{a:#?}");
    // Numbers are split into single digits by the tokenizer; a copied date and measure still
    // match as one span.
    let (_, a) = text::attribute(
        &index,
        tokenizer(),
        "Records say that in 2026 the river rose 3.75 metres above its usual level.",
        &AttributionConfig::default(),
    );
    assert_eq!(
        a.weights.iter().map(|w| w.contribution).collect::<Vec<_>>(),
        vec![13]
    );
}

#[test]
fn text_contributions_are_checked_before_tokenizing() {
    let mut builder = SegmentBuilder::new();
    let err = text::add(
        &mut builder,
        tokenizer(),
        &Contribution {
            id: 5,
            content_hash: ContentHash::of(b"x"),
            content: b"y",
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::ContentHashMismatch {
            contribution: 5,
            ..
        }
    ));
    let bytes = [0xff, 0xfe, 0x00];
    let err = text::add(
        &mut builder,
        tokenizer(),
        &Contribution {
            id: 6,
            content_hash: ContentHash::of(&bytes),
            content: &bytes,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotUtf8 { contribution: 6 }));
    assert!(builder.is_empty());
}
