//! OpenLoRA on the real model: zero adapter, mixed adapter batches, LRU cache with pinning.

use std::path::Path;

use openledger_adapter::testing::RandomAdapter;
use openledger_engine::metrics::{
    ADAPTER_EVICTIONS, ADAPTER_HITS, ADAPTER_MISSES, ADAPTER_RESIDENT,
};
use openledger_engine::model::{StepRow, WeightFormat};
use openledger_engine::{Engine, EngineConfig, Llama, LlamaConfig, LoraAdapter};

use crate::recorder::Captured;
use crate::{greedy, model_path, run_together};

/// The fixture's rank-8 adapter on q and v of every layer; `zero` makes B all zeros.
fn adapter_bytes(cfg: &LlamaConfig, seed: u64, zero: bool) -> Vec<u8> {
    RandomAdapter {
        zero_b: zero,
        ..RandomAdapter::new(seed)
    }
    .to_bytes(&cfg.adapter_shape())
}

/// An engine over the zero adapter and three others in `dir`, and what it records.
fn engine_with_adapters(dir: &Path, cache: usize, pinned: Vec<String>) -> (Engine, Captured) {
    let model = Llama::load(&model_path(), WeightFormat::Gguf, &candle_core::Device::Cpu).unwrap();
    let cfg = model.config().clone();
    drop(model);
    std::fs::write(dir.join("zero.safetensors"), adapter_bytes(&cfg, 1, true)).unwrap();
    for k in 0..3 {
        std::fs::write(
            dir.join(format!("style{k}.safetensors")),
            adapter_bytes(&cfg, 100 + k, false),
        )
        .unwrap();
    }
    let recorded = Captured::default();
    let engine = recorded
        .scope(|| {
            Engine::start(EngineConfig {
                model_path: model_path(),
                adapter_dir: Some(dir.to_path_buf()),
                adapter_cache: cache,
                pinned_adapters: pinned,
                ..Default::default()
            })
        })
        .unwrap();
    (engine, recorded)
}

#[test]
fn zero_adapter_gives_exactly_the_base_logits_and_tokens() {
    let model = Llama::load(&model_path(), WeightFormat::F32, &candle_core::Device::Cpu).unwrap();
    let bytes = adapter_bytes(model.config(), 1, true);
    let zero = LoraAdapter::from_bytes("zero", &bytes, model.config()).unwrap();
    let prompt = model_tokens();
    let logits = |adapter: Option<&LoraAdapter>| {
        let mut st = model.new_state();
        model
            .forward(&mut [StepRow {
                tokens: &prompt,
                state: &mut st,
                adapter,
            }])
            .unwrap()
            .remove(0)
    };
    assert_eq!(logits(None), logits(Some(&zero)));

    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine_with_adapters(dir.path(), 4, vec![]);
    let base = e
        .generate_blocking(greedy("The capital of France is", 5))
        .unwrap();
    let mut req = greedy("The capital of France is", 5);
    req.adapter = Some("zero".into());
    assert_eq!(e.generate_blocking(req).unwrap(), base);
}

fn model_tokens() -> Vec<u32> {
    vec![504, 3575, 282, 4649, 314]
}

/// Requests for different adapters (and none) decoded in one batch each return exactly
/// what they return alone; a non-zero adapter changes the output.
#[test]
fn mixed_adapter_batch_matches_solo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine_with_adapters(dir.path(), 8, vec![]);
    let ids = e.adapters().list();
    let by_id = ids.iter().find(|a| a.name == "style1").unwrap().id.clone();
    assert_eq!(by_id.len(), 64, "sha256 hex id");
    let reqs: Vec<_> = [
        None,
        Some("style0".to_string()),
        Some(by_id),
        Some("style2".into()),
        Some("style0".into()),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, adapter)| {
        let mut r = greedy(
            [
                "Tell me about the moon.",
                "Say hello.",
                "The capital of France is",
            ][i % 3],
            6,
        );
        r.adapter = adapter;
        r
    })
    .collect();
    let solo: Vec<_> = reqs
        .iter()
        .map(|r| e.generate_blocking(r.clone()).unwrap())
        .collect();
    let together = run_together(&e, &reqs);
    assert_eq!(together, solo);
    let mut plain = reqs[1].clone();
    plain.adapter = None;
    assert_ne!(
        e.generate_blocking(plain).unwrap().tokens,
        solo[1].tokens,
        "the adapter changes the output"
    );
}

#[test]
fn lru_evicts_unpinned_adapters_and_keeps_pinned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (e, recorded) = engine_with_adapters(dir.path(), 1, vec!["zero".into()]);
    let store = e.adapters();
    assert_eq!(store.resident(), 1, "the pinned adapter is loaded at start");
    for name in ["style0", "style1", "style0", "style2"] {
        store.get(name).unwrap();
    }
    let stats = recorded.values();
    assert_eq!(
        stats.counter(ADAPTER_MISSES),
        1 + 4,
        "pin + four cold loads (style0 was evicted by style1)"
    );
    assert_eq!(stats.counter(ADAPTER_EVICTIONS), 3);
    assert_eq!(store.resident(), 2, "pinned + one");
    assert_eq!(stats.gauges[ADAPTER_RESIDENT], 2.0, "the gauge agrees");
    store.get("zero").unwrap();
    assert_eq!(
        recorded.values().counter(ADAPTER_HITS),
        1,
        "the pinned adapter stayed resident"
    );
}
