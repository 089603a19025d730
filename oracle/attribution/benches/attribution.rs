//! Proof of Attribution benchmark: prints a table of figures (it asserts nothing).
//!
//! For synthetic and real-text Datanets of 1 M, 10 M and 100 M tokens it measures index build
//! throughput (content-hash check + suffix array + tables), peak RSS during the build, the
//! size on disk, load time (memory-map + full checksum verification), and attribution latency
//! p50/p99 for 256-token outputs made of half copied spans and half novel text.
//!
//! ```text
//! cargo bench -p openledger-attribution --bench attribution -- [--sizes 1m,10m,100m]
//!     [--kinds synthetic,real] [--queries 400] [--segments 1]
//! ```
//!
//! - *synthetic*: documents of 200–4,000 tokens drawn log-uniformly (roughly Zipf) from the
//!   49,152-token SmolLM2 vocabulary; novel text is fresh draws from the same distribution.
//! - *real*: Python source files found offline (`/usr/lib/python3*` then `/root/.pyenv`, sorted
//!   by path, up to 48 MB of text), tokenized with the real SmolLM2 tokenizer
//!   (needs the model file, see `scripts/fetch-model.sh`); every 16th file is held out as the
//!   source of novel text. Sizes above the tokenized base repeat the documents in shuffled
//!   order (repeats are distinct contributions, so copied spans have several sources).
//!
//! `--segments N` splits each Datanet evenly into N segments, as an index extended N − 1 times
//! without merging would be (queries then search every segment).
//!
//! Outputs: 8 chunks of 32 tokens, alternately copied from a random place of a random
//! document and novel. Default configuration (`min_span_len` 6, `max_span_occurrences` 1,000).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use openledger_attribution::{AttributionConfig, ContentHash, Contribution, Index, SegmentBuilder};
use openledger_tokenizer::Tokenizer;

const VOCAB: u32 = 49_152;
const OUTPUT_CHUNK: usize = 32;
const OUTPUT_CHUNKS: usize = 8;
const REAL_TEXT_BUDGET: u64 = 48 << 20;

/// SplitMix64: tiny deterministic PRNG (the benchmark must not depend on `rand`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Log-uniform token id in 0..VOCAB (frequency ∝ 1/rank, like Zipf).
    fn token(&mut self) -> u32 {
        (((VOCAB as f64).powf(self.unit()) as u32).max(1) - 1).min(VOCAB - 1)
    }
}

/// A corpus of documents held as one flat token vector.
struct Corpus {
    tokens: Vec<u32>,
    /// Document `i` is `tokens[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
}

impl Corpus {
    fn docs(&self) -> usize {
        self.starts.len() - 1
    }
    fn doc(&self, i: usize) -> &[u32] {
        &self.tokens[self.starts[i]..self.starts[i + 1]]
    }
}

fn synthetic(size: usize, rng: &mut Rng) -> Corpus {
    let mut tokens = Vec::with_capacity(size);
    let mut starts = vec![0];
    while tokens.len() < size {
        let len = (200 + rng.below(3_800)).min(size - tokens.len());
        tokens.extend((0..len).map(|_| rng.token()));
        starts.push(tokens.len());
    }
    Corpus { tokens, starts }
}

/// Real text base: tokenized documents and the held-out novel token pool.
struct RealBase {
    docs: Vec<Vec<u32>>,
    novel: Vec<u32>,
    files: usize,
    bytes: u64,
}

fn python_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_symlink() {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "py") {
                out.push(p);
            }
        }
    }
    let mut roots: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
                })
                .collect()
        })
        .unwrap_or_default();
    roots.sort();
    roots.push(PathBuf::from("/root/.pyenv"));
    let mut files = Vec::new();
    for r in roots {
        walk(&r, &mut files);
    }
    files
}

fn real_base(tok: &Tokenizer) -> RealBase {
    let mut texts = Vec::new();
    let mut bytes = 0u64;
    for path in python_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.len() < 200 {
            continue;
        }
        bytes += text.len() as u64;
        texts.push(text);
        if bytes >= REAL_TEXT_BUDGET {
            break;
        }
    }
    let files = texts.len();
    // Tokenize on two threads.
    let half = texts.len() / 2;
    let (a, b) = texts.split_at(half);
    let encode = |part: &[String]| part.iter().map(|t| tok.encode(t)).collect::<Vec<_>>();
    let (mut ta, tb) = std::thread::scope(|s| {
        let h = s.spawn(|| encode(b));
        (encode(a), h.join().expect("tokenizer thread"))
    });
    ta.extend(tb);
    let mut docs = Vec::new();
    let mut novel = Vec::new();
    for (i, d) in ta.into_iter().enumerate() {
        if i % 16 == 15 {
            novel.extend(d);
        } else {
            docs.push(d);
        }
    }
    RealBase {
        docs,
        novel,
        files,
        bytes,
    }
}

fn real(base: &RealBase, size: usize, rng: &mut Rng) -> Corpus {
    let mut tokens = Vec::with_capacity(size);
    let mut starts = vec![0];
    let mut order: Vec<usize> = (0..base.docs.len()).collect();
    while tokens.len() < size {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for &d in &order {
            let doc = &base.docs[d];
            let len = doc.len().min(size - tokens.len());
            tokens.extend_from_slice(&doc[..len]);
            starts.push(tokens.len());
            if tokens.len() >= size {
                break;
            }
        }
    }
    Corpus { tokens, starts }
}

fn content_of(tokens: &[u32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// Peak resident set size of this process since the last reset, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

struct Row {
    kind: &'static str,
    segments: usize,
    tokens: usize,
    docs: usize,
    hash_s: f64,
    sa_s: f64,
    peak_rss: Option<u64>,
    disk: u64,
    load: Duration,
    p50: Duration,
    p99: Duration,
    attributed: f64,
}

fn run(
    kind: &'static str,
    corpus: &Corpus,
    novel: &mut dyn FnMut(&mut Rng) -> u32,
    queries: usize,
    segments: usize,
    rng: &mut Rng,
    scratch: &Path,
) -> Row {
    // Build: content-hash check + add, then suffix array and tables; with `segments` > 1
    // the documents are split evenly, as an index extended incrementally would be.
    reset_peak_rss();
    let (mut hash_s, mut sa_s) = (0.0, 0.0);
    let mut built = Index::new();
    let per_segment = corpus.docs().div_ceil(segments);
    for chunk in (0..corpus.docs()).collect::<Vec<_>>().chunks(per_segment) {
        let t0 = Instant::now();
        let mut builder = SegmentBuilder::new();
        for &d in chunk {
            let tokens = corpus.doc(d);
            let content = content_of(tokens);
            let c = Contribution {
                id: d as u64,
                content_hash: ContentHash::of(&content),
                content: &content,
            };
            builder.add(&c, tokens).expect("valid contribution");
        }
        let t1 = Instant::now();
        let segment = builder.build().expect("segment builds");
        hash_s += (t1 - t0).as_secs_f64();
        sa_s += t1.elapsed().as_secs_f64();
        built.push(Arc::new(segment)).expect("no duplicates");
    }
    let peak = peak_rss();

    let dir = scratch.join(format!("{kind}-{}", corpus.tokens.len()));
    let _ = std::fs::remove_dir_all(&dir);
    let disk = built.segments().iter().map(|s| s.size_bytes() as u64).sum();
    built.save(&dir).expect("save");
    drop(built);
    // Load: memory-map and verify (page cache warm: the file was just written).
    let t3 = Instant::now();
    let index = Index::open(&dir).expect("open");
    let load = t3.elapsed();

    let outputs: Vec<Vec<u32>> = (0..queries + 20)
        .map(|_| {
            let mut out = Vec::with_capacity(OUTPUT_CHUNK * OUTPUT_CHUNKS);
            for chunk in 0..OUTPUT_CHUNKS {
                if chunk % 2 == 0 {
                    let doc = loop {
                        let d = corpus.doc(rng.below(corpus.docs()));
                        if d.len() >= OUTPUT_CHUNK {
                            break d;
                        }
                    };
                    let at = rng.below(doc.len() - OUTPUT_CHUNK + 1);
                    out.extend_from_slice(&doc[at..at + OUTPUT_CHUNK]);
                } else {
                    out.extend((0..OUTPUT_CHUNK).map(|_| novel(rng)));
                }
            }
            out
        })
        .collect();
    let config = AttributionConfig::default();
    let mut latencies = Vec::with_capacity(queries);
    let mut attributed = 0u64;
    for (i, out) in outputs.iter().enumerate() {
        let t = Instant::now();
        let a = std::hint::black_box(index.attribute(std::hint::black_box(out), &config));
        let dt = t.elapsed();
        if i >= 20 {
            latencies.push(dt);
            attributed += u64::from(a.attributed_ppm());
        }
    }
    latencies.sort_unstable();
    let _ = std::fs::remove_dir_all(&dir);
    let segments = index.segments().len();
    drop(index);
    Row {
        kind,
        segments,
        tokens: corpus.tokens.len(),
        docs: corpus.docs(),
        hash_s,
        sa_s,
        peak_rss: peak,
        disk,
        load,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        attributed: attributed as f64 / latencies.len() as f64 / 1e4,
    }
}

fn print_row(r: &Row) {
    let build = r.hash_s + r.sa_s;
    println!(
        "| {:9} | {:>4} | {:>5.0} M | {:>7} | {:>6.2} | {:>6.2} | {:>7.1} | {:>12} | {:>8.0} | {:>7.1} | {:>6.3} | {:>6.3} | {:>8.1} % |",
        r.kind,
        r.segments,
        r.tokens as f64 / 1e6,
        r.docs,
        r.hash_s,
        r.sa_s,
        r.tokens as f64 / build / 1e6,
        r.peak_rss
            .map_or("n/a".into(), |b| format!("{:.0}", mib(b))),
        mib(r.disk),
        r.load.as_secs_f64() * 1e3,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.attributed,
    );
}

fn parse_size(s: &str) -> usize {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.strip_suffix('m') {
        Some(n) => (n, 1_000_000),
        None => match s.strip_suffix('k') {
            Some(n) => (n, 1_000),
            None => (s.as_str(), 1),
        },
    };
    num.parse::<usize>().expect("size like 1m, 10m, 500k") * mult
}

fn model_path() -> PathBuf {
    openledger_tokenizer::default_model_path()
}

fn main() {
    let mut sizes = vec![1_000_000, 10_000_000, 100_000_000];
    let mut kinds = vec!["synthetic".to_string(), "real".to_string()];
    let mut queries = 400;
    let mut segments = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes LIST")
                    .split(',')
                    .map(parse_size)
                    .collect()
            }
            "--kinds" => {
                kinds = args
                    .next()
                    .expect("--kinds LIST")
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            "--queries" => queries = args.next().expect("--queries N").parse().expect("number"),
            "--segments" => {
                segments = args.next().expect("--segments N").parse().expect("number");
                assert!(segments >= 1, "--segments must be at least 1");
            }
            _ => {} // `cargo bench` passes `--bench`; ignore what we do not know.
        }
    }
    let scratch = std::env::temp_dir().join(format!(
        "openledger-attribution-bench-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    println!(
        "Proof of Attribution benchmark: {} queries of {} tokens per size, {} cores",
        queries,
        OUTPUT_CHUNK * OUTPUT_CHUNKS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "| datanet   | segs | tokens  | docs    | hash s | SA s   | M tok/s | peak RSS MiB | disk MiB | load ms | p50 ms | p99 ms | attributed |"
    );
    println!(
        "|-----------|------|---------|---------|--------|--------|---------|--------------|----------|---------|--------|--------|------------|"
    );
    let mut rng = Rng(20_261_124);
    for kind in &kinds {
        match kind.as_str() {
            "synthetic" => {
                for &size in &sizes {
                    let corpus = synthetic(size, &mut rng);
                    let row = run(
                        "synthetic",
                        &corpus,
                        &mut |r: &mut Rng| r.token(),
                        queries,
                        segments,
                        &mut rng,
                        &scratch,
                    );
                    print_row(&row);
                }
            }
            "real" => {
                let path = model_path();
                assert!(
                    path.is_file(),
                    "{} missing: run scripts/fetch-model.sh",
                    path.display()
                );
                let tok = Tokenizer::from_gguf(&path).expect("tokenizer");
                let t = Instant::now();
                let base = real_base(&tok);
                let base_tokens: usize = base.docs.iter().map(Vec::len).sum();
                eprintln!(
                    "real text: {} Python files, {:.1} MB, tokenized in {:.1} s: {:.2} M tokens of documents, {:.2} M held-out novel tokens",
                    base.files,
                    base.bytes as f64 / 1e6,
                    t.elapsed().as_secs_f64(),
                    base_tokens as f64 / 1e6,
                    base.novel.len() as f64 / 1e6
                );
                let novel = base.novel.clone();
                let (mut cursor, mut calls) = (0usize, 0usize);
                for &size in &sizes {
                    let corpus = real(&base, size, &mut rng);
                    // Each novel chunk is contiguous held-out text from a random place.
                    let mut next_novel = |r: &mut Rng| {
                        if calls.is_multiple_of(OUTPUT_CHUNK) {
                            cursor = r.below(novel.len());
                        }
                        calls += 1;
                        cursor += 1;
                        novel[(cursor - 1) % novel.len()]
                    };
                    let row = run(
                        "real",
                        &corpus,
                        &mut next_novel,
                        queries,
                        segments,
                        &mut rng,
                        &scratch,
                    );
                    print_row(&row);
                }
            }
            other => eprintln!("unknown kind {other:?} (synthetic, real)"),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!();
    println!("hash s = keccak-256 content check + adding tokens; SA s = suffix array + tables;");
    println!("M tok/s = tokens / (hash s + SA s); load = mmap + checksum of the whole file;");
    println!("attributed = mean share of the output attributed (copied half ≈ 50 %).");
}
