//! Decode throughput of the engine next to llama.cpp (npm `node-llama-cpp`), and with many
//! LoRA adapters in the mix. Prints figures; asserts nothing.
//!
//! ```text
//! cargo bench -p openledger-engine --bench throughput                 # full run
//! cargo bench -p openledger-engine --bench throughput -- --rounds 1 --no-llama
//! ```
//!
//! Options: `--tokens N` (generated per client, default 128), `--rounds N` (alternating
//! rounds, default 2), `--no-llama`, `--formats` (also compare weight formats),
//! `--format q4|q8_0|gguf|f32` (engine weights, default q4), `--micro` (ms per forward step
//! by format and batch size, and each int8 kernel alone next to candle's Q8_0 matmul),
//! `--kernels` (the whole run once per int8 kernel this CPU supports), `--kernels-alone` (only
//! the kernels next to candle's Q8_0 matmul).
//!
//! The int8 kernel is the best this CPU supports unless `OPENLEDGER_KERNEL` forces one
//! (`avx512vnni`, `avx2`, `portable`); the run prints which one ran.
//!
//! llama.cpp runs through `oracle/engine/bench/llama-bench.mjs`; `node-llama-cpp@3.22` is
//! installed on first use into `$OPENLEDGER_HOME/bench-node` (npm, prebuilt binaries).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusBuilder;
use openledger_adapter::testing::RandomAdapter;
use openledger_engine::metrics as metrics_names;
use openledger_engine::{
    Engine, EngineConfig, Event, GenerateRequest, Prompt, SamplingParams, WeightFormat,
};

const PROMPT: &str =
    "Write a long story about a lighthouse keeper who finds a message in a bottle.";

struct Args {
    tokens: usize,
    rounds: usize,
    llama: bool,
    formats: bool,
    micro: bool,
    kernels: bool,
    kernels_alone: bool,
    format: WeightFormat,
}

fn parse_args() -> Args {
    let mut a = Args {
        tokens: 128,
        rounds: 2,
        llama: true,
        formats: false,
        micro: false,
        kernels: false,
        kernels_alone: false,
        format: WeightFormat::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tokens" => a.tokens = it.next().and_then(|v| v.parse().ok()).expect("--tokens N"),
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--no-llama" => a.llama = false,
            "--formats" => a.formats = true,
            "--micro" => a.micro = true,
            "--kernels" => a.kernels = true,
            "--kernels-alone" => a.kernels_alone = true,
            "--format" => {
                a.format = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--format q4|q8_0|gguf|f32")
            }
            "--bench" => {} // passed by `cargo bench`
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

/// One measurement: aggregate tok/s over the wall time and mean per-client decode tok/s
/// (first to last token, i.e. without prefill).
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    aggregate: f64,
    per_client_decode: f64,
}

fn chat(i: usize) -> Prompt {
    Prompt::Chat(vec![openledger_engine::ChatMessage {
        role: "user".into(),
        content: format!("{PROMPT} (#{i})"),
    }])
}

/// Runs `clients` concurrent requests; `adapter_of(i)` names the adapter of request `i`.
fn run_ours(
    engine: &Engine,
    clients: usize,
    requests: usize,
    tokens: usize,
    adapter_of: &(dyn Fn(usize) -> Option<String> + Sync),
) -> Figures {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t0 = Instant::now();
    let results: Vec<(usize, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= requests {
                            break out;
                        }
                        let req = GenerateRequest {
                            prompt: chat(i),
                            adapter: adapter_of(i),
                            params: SamplingParams {
                                temperature: 0.0,
                                max_tokens: tokens,
                                ignore_eos: true,
                                ..Default::default()
                            },
                        };
                        let mut g = engine.generate(req).expect("request accepted");
                        let (mut first, mut last, mut n) = (None, Instant::now(), 0usize);
                        while let Some(ev) = g.events.blocking_recv() {
                            match ev {
                                Event::Token { .. } => {
                                    let now = Instant::now();
                                    first.get_or_insert(now);
                                    last = now;
                                    n += 1;
                                }
                                Event::Done { .. } => break,
                                Event::Error(e) => panic!("generation failed: {e}"),
                            }
                        }
                        let decode = first.map(|f| (last - f).as_secs_f64()).unwrap_or(0.0);
                        out.push((
                            n,
                            if decode > 0.0 {
                                (n - 1) as f64 / decode
                            } else {
                                0.0
                            },
                        ));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let total: usize = results.iter().map(|r| r.0).sum();
    Figures {
        aggregate: total as f64 / wall,
        per_client_decode: results.iter().map(|r| r.1).sum::<f64>() / results.len() as f64,
    }
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

fn node_dir() -> PathBuf {
    let home = std::env::var_os("OPENLEDGER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/openledger")
        });
    home.join("bench-node")
}

/// Installs node-llama-cpp (once) and copies the script next to it.
fn prepare_llama() -> Option<PathBuf> {
    let dir = node_dir();
    std::fs::create_dir_all(&dir).ok()?;
    for f in ["package.json", "llama-bench.mjs"] {
        std::fs::copy(bench_dir().join(f), dir.join(f)).ok()?;
    }
    if !dir.join("node_modules/node-llama-cpp").is_dir() {
        eprintln!("installing node-llama-cpp@3.22 into {}", dir.display());
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("npm install failed: skipping llama.cpp");
            return None;
        }
    }
    Some(dir.join("llama-bench.mjs"))
}

fn run_llama(script: &Path, model: &Path, clients: usize, tokens: usize) -> Option<Figures> {
    let out = Command::new("node")
        .arg(script)
        .args(["--model", &model.display().to_string()])
        .args([
            "--sequences",
            &clients.to_string(),
            "--tokens",
            &tokens.to_string(),
            "--threads",
            "2",
        ])
        .args(["--prompt", PROMPT])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "llama.cpp run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{'))?;
    let field = |k: &str| -> Option<f64> {
        let i = line.find(&format!("\"{k}\":"))? + k.len() + 3;
        line[i..].split([',', '}']).next()?.trim().parse().ok()
    };
    Some(Figures {
        aggregate: field("aggregate_tps")?,
        per_client_decode: field("per_sequence_decode_tps")?,
    })
}

/// Random adapters (the fixture's rank 8 on q and v of every layer, small values),
/// reproducible from their index.
fn make_adapters(dir: &Path, n: usize, cfg: &openledger_engine::LlamaConfig) {
    for k in 0..n {
        let bytes = RandomAdapter {
            scale: 0.01,
            ..RandomAdapter::new(0x5eed + k as u64)
        }
        .to_bytes(&cfg.adapter_shape());
        std::fs::write(dir.join(format!("bench-{k:02}.safetensors")), bytes)
            .expect("write adapter");
    }
}

/// Milliseconds per forward step by weight format and batch size (formats interleaved).
fn micro(model: &Path, formats: &[WeightFormat]) {
    use openledger_engine::Llama;
    use openledger_engine::model::StepRow;
    let models: Vec<Llama> = formats
        .iter()
        .map(|f| Llama::load(model, *f, &openledger_engine::Device::Cpu).expect("model"))
        .collect();
    let prompt: Vec<u32> = (0..32).map(|i| 1000 + i * 7).collect();
    println!("\n## Forward step, ms (decode: one token per sequence after a 32-token prompt)\n");
    println!(
        "| rows | {} |",
        formats
            .iter()
            .map(|f| format!("{f:?}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(formats.len()));
    for rows in [1usize, 2, 4, 8, 16] {
        let mut ms = vec![0f64; formats.len()];
        for round in 0..3 {
            for (fi, m) in models.iter().enumerate() {
                let mut states: Vec<_> = (0..rows).map(|_| m.new_state()).collect();
                {
                    let mut step: Vec<StepRow<'_>> = states
                        .iter_mut()
                        .map(|st| StepRow {
                            tokens: &prompt,
                            state: st,
                            adapter: None,
                        })
                        .collect();
                    m.forward(&mut step).expect("prefill");
                }
                let tok = [42u32];
                let t0 = Instant::now();
                let n = 8;
                for _ in 0..n {
                    let mut step: Vec<StepRow<'_>> = states
                        .iter_mut()
                        .map(|st| StepRow {
                            tokens: &tok,
                            state: st,
                            adapter: None,
                        })
                        .collect();
                    m.forward(&mut step).expect("decode");
                }
                if round > 0 {
                    ms[fi] += t0.elapsed().as_secs_f64() * 1000.0 / n as f64 / 2.0;
                }
            }
        }
        println!(
            "| {rows} | {} |",
            ms.iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    kernels_alone();
    for (fi, m) in models.iter().enumerate() {
        let long: Vec<u32> = (0..256).map(|i| 500 + i).collect();
        let mut st = m.new_state();
        let t0 = Instant::now();
        m.forward(&mut [StepRow {
            tokens: &long,
            state: &mut st,
            adapter: None,
        }])
        .expect("prefill");
        println!(
            "prefill 256 tokens, {:?}: {:.0} ms",
            formats[fi],
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// One matrix multiply: `(x, rows)` with `x` holding at least `rows` rows of the matrix's `k`.
type MatMul = Box<dyn Fn(&[f32], usize)>;

/// What one decode step multiplies: the seven layer matrices × 30, then the lm_head.
fn model_pass(layers: Vec<MatMul>, head: MatMul) -> MatMul {
    Box::new(move |x, rows| {
        for _ in 0..30 {
            for layer in &layers {
                layer(x, rows);
            }
        }
        head(x, rows);
    })
}

/// The kernels alone, and candle's Q8_0 matmul on the same weights: one SmolLM2 layer's
/// matmuls (q, k, v, o, gate, up, down) × 30 plus the lm_head, by batch size.
fn kernels_alone() {
    use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};
    use openledger_engine::int8::{Int8Matrix, Kernel};
    use openledger_engine::q4::Q4Matrix;
    use rayon::prelude::*;
    let shapes = [
        (576usize, 576usize),
        (192, 576),
        (192, 576),
        (576, 576),
        (1536, 576),
        (1536, 576),
        (576, 1536),
    ];
    let head_shape = (49152usize, 576usize);
    let weights = |n: usize, k: usize| -> Vec<f32> {
        (0..n * k)
            .map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0)
            .collect()
    };
    let macs: usize =
        30 * shapes.iter().map(|(n, k)| n * k).sum::<usize>() + head_shape.0 * head_shape.1;
    // Each kind of matrix, as a multiply over the same weights.
    let int8 = |kernel: Kernel| {
        move |(n, k): (usize, usize)| -> MatMul {
            let w = Int8Matrix::quantize_for(&weights(n, k), n, k, kernel).expect("matrix");
            Box::new(move |x, rows| {
                std::hint::black_box(w.matmul(&x[..rows * k]).expect("matmul"));
            })
        }
    };
    let q4 = |(n, k): (usize, usize)| -> MatMul {
        let t = Tensor::from_vec(weights(n, k), (n, k), &Device::Cpu).expect("tensor");
        let q = QTensor::quantize(&t, GgmlDType::Q4_1).expect("q4_1");
        let w = Q4Matrix::from_ggml(GgmlDType::Q4_1, &q.data().expect("data"), n, k)
            .expect("matrix")
            .expect("4-bit");
        Box::new(move |x, rows| {
            std::hint::black_box(w.matmul(&x[..rows * k]).expect("matmul"));
        })
    };
    // candle's matmul (what `--format gguf` runs for a Q8_0 file): its AVX2 dot product here.
    let candle = |(n, k): (usize, usize)| -> MatMul {
        let t = Tensor::from_vec(weights(n, k), (n, k), &Device::Cpu).expect("tensor");
        let w = QMatMul::from_qtensor(QTensor::quantize(&t, GgmlDType::Q8_0).expect("q8_0"))
            .expect("qmatmul");
        Box::new(move |x, rows| {
            let t = Tensor::from_slice(&x[..rows * k], (rows, k), &Device::Cpu).expect("x");
            std::hint::black_box(w.forward(&t).expect("matmul"));
        })
    };
    // candle's own scalar Q8_0 dot product (`vec_dot_unopt`): what its matmul runs on an x86
    // CPU without AVX2, i.e. on the CPUs where our portable loop is the one chosen. Parallel
    // over columns, as candle's matmul is.
    let blocks = |v: &[f32]| -> Vec<BlockQ8_0> {
        let mut b = vec![BlockQ8_0::zeros(); v.len() / 32];
        BlockQ8_0::from_float(v, &mut b);
        b
    };
    let candle_scalar = |(n, k): (usize, usize)| -> MatMul {
        let w = blocks(&weights(n, k));
        Box::new(move |x, rows| {
            let xb: Vec<Vec<BlockQ8_0>> =
                (0..rows).map(|r| blocks(&x[r * k..(r + 1) * k])).collect();
            let kb = k / 32;
            let y: Vec<f32> = (0..n)
                .into_par_iter()
                .flat_map_iter(|c| {
                    let wc = &w[c * kb..(c + 1) * kb];
                    xb.iter().map(move |xr| BlockQ8_0::vec_dot_unopt(k, wc, xr))
                })
                .collect();
            std::hint::black_box(y);
        })
    };
    let pass = |layer: &dyn Fn((usize, usize)) -> MatMul,
                head: &dyn Fn((usize, usize)) -> MatMul| {
        model_pass(shapes.iter().map(|&s| layer(s)).collect(), head(head_shape))
    };
    let mut columns: Vec<(String, MatMul)> = Vec::new();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        columns.push((format!("int8 {kernel}"), pass(&int8(kernel), &int8(kernel))));
    }
    if Q4Matrix::available().expect("OPENLEDGER_KERNEL") {
        // The lm_head of SmolLM2 is Q8_0 in the file: int8 under the q4 format too.
        columns.push((
            format!("q4 avx2 (lm_head int8 {})", Kernel::best()),
            pass(&q4, &int8(Kernel::best())),
        ));
    }
    columns.push(("candle Q8_0".into(), pass(&candle, &candle)));
    columns.push((
        "candle Q8_0 scalar".into(),
        pass(&candle_scalar, &candle_scalar),
    ));
    println!(
        "\n## Kernels alone: one SmolLM2 layer's matmuls (q,k,v,o,gate,up,down) x30 + lm_head, ms (GMAC/s), fastest of 7\n"
    );
    println!(
        "| rows | {} |",
        columns
            .iter()
            .map(|c| c.0.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(columns.len()));
    for rows in [1usize, 2, 4, 8, 16] {
        let x: Vec<f32> = (0..rows * 1536)
            .map(|i| ((i * 31) % 97) as f32 / 50.0 - 1.0)
            .collect();
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, mul)| {
                mul(&x, rows); // warm-up
                // The fastest of 7 passes: the figure least disturbed by other load.
                let secs = (0..7)
                    .map(|_| {
                        let t0 = Instant::now();
                        mul(&x, rows);
                        t0.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min);
                format!(
                    "{:.1} ({:.1})",
                    secs * 1000.0,
                    (macs * rows) as f64 / secs / 1e9
                )
            })
            .collect();
        println!("| {rows} | {} |", cells.join(" | "));
    }
}

/// Reruns this benchmark once per int8 kernel this CPU supports (`OPENLEDGER_KERNEL` set for
/// each child), passing the other arguments through.
fn run_each_kernel() {
    use openledger_engine::int8::{KERNEL_ENV, Kernel};
    let exe = std::env::current_exe().expect("benchmark path");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--kernels")
        .collect();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        println!("\n# int8 kernel: {kernel}\n");
        let ok = Command::new(&exe)
            .args(&args)
            .env(KERNEL_ENV, kernel.name())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "benchmark with {KERNEL_ENV}={kernel} failed");
    }
}

fn main() {
    let args = parse_args();
    if args.kernels {
        run_each_kernel();
        return;
    }
    let base = EngineConfig {
        model_path: openledger_engine::default_model_dir()
            .join(openledger_engine::DEFAULT_MODEL_FILE),
        weight_format: args.format,
        ..Default::default()
    };
    let model = base.model_path.clone();
    assert!(
        model.is_file(),
        "model {} missing: run scripts/fetch-model.sh",
        model.display()
    );
    println!("model: {}", model.display());
    println!(
        "machine: {} CPUs visible; {} generated tokens per request, greedy",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.tokens
    );
    let kernel = openledger_engine::int8::Kernel::selected().expect("OPENLEDGER_KERNEL");
    let q4 = openledger_engine::q4::Q4Matrix::available().expect("OPENLEDGER_KERNEL");
    println!(
        "weights: {:?}; int8 kernel: {kernel}; 4-bit kernel: {} (best int8 kernel on this CPU: {}; force one with {}=avx512vnni|avx2|portable, or run each with --kernels)",
        args.format,
        if q4 && args.format == WeightFormat::Q4 {
            "avx2 (the 4-bit tensors)"
        } else {
            "not used"
        },
        openledger_engine::int8::Kernel::best(),
        openledger_engine::int8::KERNEL_ENV
    );

    if args.kernels_alone {
        kernels_alone();
        return;
    }
    if args.micro {
        let formats: &[WeightFormat] = if args.formats {
            &[
                WeightFormat::Q4,
                WeightFormat::Q8_0,
                WeightFormat::Gguf,
                WeightFormat::F32,
            ]
        } else {
            &[args.format]
        };
        micro(&model, formats);
        return;
    }
    if args.formats {
        println!("\n## Weight formats (ours only)\n");
        println!("| format | single-stream decode tok/s | aggregate tok/s, 8 clients |");
        println!("|---|---|---|");
        for fmt in [
            WeightFormat::Q4,
            WeightFormat::Q8_0,
            WeightFormat::Gguf,
            WeightFormat::F32,
        ] {
            let e = Engine::start(EngineConfig {
                weight_format: fmt,
                ..base.clone()
            })
            .expect("engine");
            let _ = run_ours(&e, 1, 1, 16, &|_| None); // warm-up
            let one = run_ours(&e, 1, 1, args.tokens, &|_| None);
            let eight = run_ours(&e, 8, 8, args.tokens, &|_| None);
            println!(
                "| {fmt:?} | {:.1} | {:.1} |",
                one.per_client_decode, eight.aggregate
            );
        }
    }

    let engine = Engine::start(base.clone()).expect("engine");
    let _ = run_ours(&engine, 1, 1, 16, &|_| None); // warm-up
    let llama = if args.llama { prepare_llama() } else { None };

    let clients = [1usize, 4, 8];
    let mut ours: Vec<Vec<Figures>> = vec![Vec::new(); clients.len()];
    let mut theirs: Vec<Vec<Figures>> = vec![Vec::new(); clients.len()];
    for round in 0..args.rounds {
        for (ci, &c) in clients.iter().enumerate() {
            // Alternate which side goes first so drift in machine load hits both.
            let ours_first = (round + ci) % 2 == 0;
            let mut run_l = || {
                if let Some(s) = &llama
                    && let Some(f) = run_llama(s, &model, c, args.tokens)
                {
                    theirs[ci].push(f);
                }
            };
            if !ours_first {
                run_l();
            }
            ours[ci].push(run_ours(&engine, c, c, args.tokens, &|_| None));
            if ours_first {
                run_l();
            }
            eprintln!(
                "round {round} clients {c}: ours {:?} llama.cpp {:?}",
                ours[ci].last(),
                theirs[ci].last()
            );
        }
    }
    let mean = |v: &[Figures], f: fn(&Figures) -> f64| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().map(f).sum::<f64>() / v.len() as f64
        }
    };
    println!(
        "\n## Decode throughput vs llama.cpp (mean of {} alternating rounds)\n",
        args.rounds
    );
    println!(
        "| clients | ours aggregate tok/s | llama.cpp aggregate tok/s | ratio | ours per-client decode tok/s | llama.cpp per-sequence decode tok/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (ci, &c) in clients.iter().enumerate() {
        let (oa, la) = (
            mean(&ours[ci], |f| f.aggregate),
            mean(&theirs[ci], |f| f.aggregate),
        );
        let (od, ld) = (
            mean(&ours[ci], |f| f.per_client_decode),
            mean(&theirs[ci], |f| f.per_client_decode),
        );
        println!(
            "| {c} | {oa:.1} | {la:.1} | {:.2}x | {od:.1} | {ld:.1} | {:.2}x |",
            oa / la,
            od / ld
        );
    }

    // Many adapters: 8 clients, 48 requests of `tokens/2` tokens each.
    let dir =
        std::env::temp_dir().join(format!("openledger-bench-adapters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("adapter dir");
    make_adapters(&dir, 50, engine.model_config());
    // The engine records into a recorder of its own, read for the cache counters below.
    let recorder = PrometheusBuilder::new().build_recorder();
    let engine = metrics::with_local_recorder(&recorder, || {
        Engine::start(EngineConfig {
            adapter_dir: Some(dir.clone()),
            ..base
        })
    })
    .expect("engine");
    let _ = run_ours(&engine, 1, 1, 8, &|_| Some("bench-00".into())); // warm-up
    let (requests, tokens) = (50usize, (args.tokens / 2).max(8));
    let mut none = Vec::new();
    let mut one = Vec::new();
    let mut fifty = Vec::new();
    // Every adapter is loaded once before timing (loading is measured by the cache counters,
    // not here), and the three mixes take turns going first so drift in machine load hits
    // each of them alike.
    let _ = run_ours(&engine, 8, 50, 2, &|i| Some(format!("bench-{:02}", i % 50)));
    for round in 0..args.rounds {
        for mix in 0..3 {
            match (mix + round) % 3 {
                0 => none.push(run_ours(&engine, 8, requests, tokens, &|_| None)),
                1 => one.push(run_ours(&engine, 8, requests, tokens, &|_| {
                    Some("bench-00".into())
                })),
                _ => fifty.push(run_ours(&engine, 8, requests, tokens, &|i| {
                    Some(format!("bench-{:02}", i % 50))
                })),
            }
        }
    }
    let (n, o, f) = (
        mean(&none, |f| f.aggregate),
        mean(&one, |f| f.aggregate),
        mean(&fifty, |f| f.aggregate),
    );
    let recorded = recorder.handle().render();
    let counter = |name: &str| -> u64 {
        recorded
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    println!(
        "\n## Many LoRA adapters (rank 8 on q and v of all layers; 8 clients, {requests} requests x {tokens} tokens)\n"
    );
    println!("| mix | aggregate tok/s | vs one adapter |");
    println!("|---|---|---|");
    println!("| base, no adapter | {n:.1} | {:.2}x |", n / o);
    println!("| one adapter | {o:.1} | 1.00x |");
    println!("| 50 distinct adapters | {f:.1} | {:.2}x |", f / o);
    println!(
        "\nadapter cache: {} hits, {} misses, {} evictions",
        counter(metrics_names::ADAPTER_HITS),
        counter(metrics_names::ADAPTER_MISSES),
        counter(metrics_names::ADAPTER_EVICTIONS)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
