//! Integration tests of the libtorch backend against models exported by PyTorch.
//!
//! **Needs** (the tests fail with these instructions when something is missing):
//! - libtorch 2.13.0 with Python's `torch`: `eval "$(scripts/setup-libtorch.sh --with-python)"`
//!   sets `LIBTORCH` (used to build), `LD_LIBRARY_PATH` (to run) and `PYTHONPATH`;
//! - `SmolLM2-135M-Instruct.Q4_1.gguf` in `$OPENLEDGER_MODEL_DIR` (default
//!   `~/.cache/openledger/models`) for the tokenizer: `scripts/fetch-model.sh`.
//!
//! `tests/fixtures/export_models.py` builds a tiny causal transformer (vocabulary 49,152)
//! with a fixed seed, exports it with `torch.jit.script` and `torch.jit.trace`, and writes
//! PyTorch's logits and greedy continuation for the prompt the tests give it. It runs once,
//! into a temp dir, with `python3` and the libtorch folder on `PYTHONPATH`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use openledger_engine_tch::{Error, FinishReason, SamplingParams, TchModel};
use openledger_tokenizer::Tokenizer;

const PROMPT: &str = "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n";
const STEPS: usize = 12;

fn tokenizer() -> Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = openledger_tokenizer::default_model_path();
        assert!(
            path.is_file(),
            "model file {} is missing: run scripts/fetch-model.sh (or scripts/setup.sh) first",
            path.display()
        );
        Tokenizer::from_gguf(&path).expect("tokenizer rebuilds from GGUF")
    })
    .clone()
}

use openledger_engine_tch::inference::stop_ids;

/// PyTorch's reference outputs (`reference.json`).
#[derive(Debug)]
struct Reference {
    prompt_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
}

struct Fixtures {
    dir: tempfile::TempDir,
    reference: Reference,
    /// PyTorch's logits `[1, T, V]` on the prompt, flattened.
    logits: Vec<f32>,
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Parses a flat JSON array of integers under `key` (the reference file is written by the
/// fixture, so a tiny reader is enough and keeps serde out of this crate).
fn json_ids(json: &str, key: &str) -> Vec<u32> {
    let start = json
        .find(&format!("\"{key}\""))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let open = start + json[start..].find('[').expect("array");
    let close = open + json[open..].find(']').expect("array end");
    json[open + 1..close]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("integer id"))
        .collect()
}

fn fixtures() -> &'static Fixtures {
    static FIX: OnceLock<Fixtures> = OnceLock::new();
    FIX.get_or_init(|| {
        let libtorch = std::env::var_os("LIBTORCH").map(PathBuf::from).expect(
            "LIBTORCH is not set: run `eval \"$(scripts/setup-libtorch.sh --with-python)\"` first",
        );
        // setup-libtorch.sh installs torch as a Python package: its parent folder is the
        // PYTHONPATH entry.
        let site = libtorch.parent().expect("LIBTORCH has a parent folder");
        let tok = tokenizer();
        let prompt_ids = tok.encode(PROMPT);
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export_models.py");
        let mut pythonpath = std::ffi::OsString::from(site);
        if let Some(old) = std::env::var_os("PYTHONPATH") {
            pythonpath.push(":");
            pythonpath.push(old);
        }
        let out = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .arg(join(&prompt_ids))
            .arg(STEPS.to_string())
            .arg(join(&stop_ids(&tok)))
            .env("PYTHONPATH", pythonpath)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "exporting the fixtures with PyTorch failed (is `import torch` available? run \
             `eval \"$(scripts/setup-libtorch.sh --with-python)\"`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json =
            std::fs::read_to_string(dir.path().join("reference.json")).expect("reference.json");
        let reference = Reference {
            prompt_ids: json_ids(&json, "prompt_ids"),
            greedy_ids: json_ids(&json, "greedy_ids"),
        };
        assert_eq!(
            reference.prompt_ids, prompt_ids,
            "the fixture saw the prompt ids we gave it"
        );
        let bytes = std::fs::read(dir.path().join("logits.bin")).expect("logits.bin");
        let logits = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        Fixtures {
            dir,
            reference,
            logits,
        }
    })
}

fn load(name: &str) -> TchModel {
    TchModel::load(fixtures().path(name), tokenizer())
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (i, diff) = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0.0f32),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        );
    assert!(
        diff <= 1e-5,
        "{what}: max |diff| {diff} at {i} ({} vs {})",
        got[i],
        want[i]
    );
}

#[test]
fn logits_equal_pytorch_for_scripted_and_traced_modules() {
    let fx = fixtures();
    let vocab = tokenizer().vocab_size();
    assert_eq!(fx.logits.len(), fx.reference.prompt_ids.len() * vocab);
    for name in ["scripted.pt", "traced.pt"] {
        let logits = load(name).forward(&fx.reference.prompt_ids).unwrap();
        assert_eq!(
            (logits.positions, logits.vocab),
            (fx.reference.prompt_ids.len(), vocab)
        );
        assert_close(&logits.data, &fx.logits, name);
    }
}

#[test]
fn greedy_generation_equals_pytorch_token_for_token() {
    let fx = fixtures();
    let model = load("scripted.pt");
    let out = model
        .generate(PROMPT, &SamplingParams::greedy(STEPS))
        .unwrap();
    assert_eq!(out.tokens, fx.reference.greedy_ids);
    // The traced module reruns with growing lengths too: its shapes were traced, not frozen.
    let traced = load("traced.pt")
        .generate(PROMPT, &SamplingParams::greedy(STEPS))
        .unwrap();
    assert_eq!(traced.tokens, fx.reference.greedy_ids);
}

#[test]
fn token_counts_are_the_tokenizers() {
    let tok = tokenizer();
    let model = load("scripted.pt");
    let out = model.generate(PROMPT, &SamplingParams::greedy(5)).unwrap();
    assert_eq!(out.usage.prompt_tokens, tok.count(PROMPT));
    assert_eq!(model.count_tokens(PROMPT), tok.count(PROMPT));
    assert_eq!(out.usage.completion_tokens, out.tokens.len());
    assert_eq!(
        out.text,
        tok.decode(&out.tokens),
        "no EOS here: the text is all the tokens"
    );
    if out.finish_reason == FinishReason::Length {
        assert_eq!(out.usage.completion_tokens, 5);
    }
}

#[test]
fn same_seed_gives_the_same_sample_and_another_seed_differs() {
    let model = load("scripted.pt");
    let params = |seed| SamplingParams {
        temperature: 1.0,
        top_p: 0.95,
        max_tokens: 10,
        seed,
        ..Default::default()
    };
    let a = model.generate(PROMPT, &params(42)).unwrap();
    let b = model.generate(PROMPT, &params(42)).unwrap();
    let c = model.generate(PROMPT, &params(43)).unwrap();
    assert_eq!(a, b);
    assert_ne!(
        a.tokens, c.tokens,
        "49,152-way samples from two seeds should differ"
    );
}

#[test]
fn generation_stops_at_eos_which_is_counted_but_not_in_the_text() {
    let tok = tokenizer();
    let eos = stop_ids(&tok)[0];
    // counter.pt: next id = last id + 1 until the sequence has 6 tokens, then EOS.
    let model = load("counter.pt");
    let out = model
        .generate_ids(&[100, 101, 102], &SamplingParams::greedy(50))
        .unwrap();
    assert_eq!(out.tokens, vec![103, 104, 105, eos]);
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(out.usage.prompt_tokens, 3);
    assert_eq!(out.usage.completion_tokens, 4);
    assert_eq!(out.text, tok.decode(&[103, 104, 105]));
    // max_tokens cuts it first.
    let out = model
        .generate_ids(&[100, 101, 102], &SamplingParams::greedy(2))
        .unwrap();
    assert_eq!(
        (out.tokens, out.finish_reason),
        (vec![103, 104], FinishReason::Length)
    );
}

#[test]
fn missing_or_malformed_models_give_clear_errors() {
    let fx = fixtures();
    let err = TchModel::load(fx.path("no-such-model.pt"), tokenizer()).unwrap_err();
    assert!(matches!(err, Error::ModelNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no-such-model.pt"), "{err}");

    let garbage = fx.path("garbage.pt");
    std::fs::write(&garbage, b"this is not a TorchScript archive").unwrap();
    let err = TchModel::load(&garbage, tokenizer()).unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    assert!(
        err.to_string().contains("garbage.pt") && !err.to_string().contains('\n'),
        "{err}"
    );

    // A real TorchScript module, but it returns [1, T] instead of [1, T, V].
    let err = TchModel::load(fx.path("wrong_shape.pt"), tokenizer()).unwrap_err();
    assert!(matches!(err, Error::BadModel { .. }), "{err}");
    assert!(err.to_string().contains("expected [1, 1, 49152]"), "{err}");
}

#[test]
fn bad_requests_are_refused_before_any_compute() {
    let model = load("scripted.pt");
    let err = model.generate("", &SamplingParams::greedy(4)).unwrap_err();
    assert!(matches!(err, Error::EmptyPrompt), "{err}");
    let err = model
        .generate(
            PROMPT,
            &SamplingParams {
                top_p: 0.0,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParams { .. }), "{err}");
}

#[test]
fn context_overflow_is_a_forward_error_not_a_crash() {
    // The fixture model has 128 learned positions.
    let model = load("scripted.pt");
    let err = model.forward(&vec![5; 200]).unwrap_err();
    assert!(matches!(err, Error::Forward { tokens: 200, .. }), "{err}");
}

mod backend {
    //! [`TchEngine`] through the inference interface: the same tokens as the model API,
    //! streamed; typed refusals; a dropped consumer ends its generation.

    use std::time::{Duration, Instant};

    use openledger_engine_tch::inference::{
        Backend, Error as InferenceError, Event, GenerateRequest, Prompt,
    };
    use openledger_engine_tch::{SamplingParams, TchEngine, TchEngineConfig};

    use super::{PROMPT, STEPS, fixtures, load};

    fn engine() -> TchEngine {
        TchEngine::new(
            load("scripted.pt"),
            TchEngineConfig {
                model_name: "tiny".into(),
                context_len: 128,
                ..TchEngineConfig::default()
            },
        )
        .unwrap()
    }

    fn request(max_tokens: usize) -> GenerateRequest {
        GenerateRequest {
            prompt: Prompt::Text(PROMPT.into()),
            adapter: None,
            params: SamplingParams::greedy(max_tokens),
        }
    }

    #[test]
    fn streams_pytorchs_greedy_tokens_with_usage() {
        let e = engine();
        let g = e.generate(request(STEPS)).unwrap();
        assert_eq!(g.prompt_tokens, fixtures().reference.prompt_ids.len());
        let done = g.collect_blocking().unwrap();
        assert_eq!(done.tokens, fixtures().reference.greedy_ids);
        assert_eq!(
            done.usage.prompt_tokens,
            fixtures().reference.prompt_ids.len()
        );
        assert_eq!(done.usage.completion_tokens, done.tokens.len());
        assert_eq!(e.kind(), "tch");
        assert!(e.adapters().is_empty());
    }

    #[test]
    fn refusals_are_typed_and_come_before_compute() {
        let e = engine();
        let mut r = request(4);
        r.adapter = Some("a".into());
        assert!(matches!(
            e.generate(r),
            Err(InferenceError::Unsupported { .. })
        ));
        let mut r = request(4);
        r.prompt = Prompt::Tokens(vec![1; 200]);
        assert!(matches!(
            e.generate(r),
            Err(InferenceError::ContextOverflow { .. })
        ));
        let mut r = request(4);
        r.params.top_p = 0.0;
        assert!(matches!(
            e.generate(r),
            Err(InferenceError::InvalidParam { param: "top_p", .. })
        ));
        assert!(matches!(
            e.generate(GenerateRequest {
                prompt: Prompt::Text(String::new()),
                ..request(4)
            }),
            Err(InferenceError::InvalidParam {
                param: "prompt",
                ..
            })
        ));
    }

    #[test]
    fn a_dropped_consumer_ends_its_generation() {
        let e = TchEngine::new(
            load("scripted.pt"),
            TchEngineConfig {
                context_len: 128,
                stream_buffer: 1,
                ..TchEngineConfig::default()
            },
        )
        .unwrap();
        let mut r = request(100);
        r.params.ignore_eos = true;
        let mut g = e.generate(r).unwrap();
        assert!(matches!(
            g.events.blocking_recv(),
            Some(Event::Token { .. })
        ));
        drop(g);
        let deadline = Instant::now() + Duration::from_secs(30);
        while e.load().active + e.load().queued > 0 {
            assert!(Instant::now() < deadline, "the generation did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
