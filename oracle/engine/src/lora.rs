//! LoRA adapters: the safetensors format, the per-row delta, and a content-addressed store
//! with an LRU cache and pinning (OpenLoRA).
//!
//! # File format
//! One safetensors file per adapter. For each adapted projection of layer `i`:
//! - `blk.{i}.{proj}.lora_a`: shape `(rank, in)`,
//! - `blk.{i}.{proj}.lora_b`: shape `(out, rank)`,
//!
//! where `proj` is one of `attn_q`, `attn_k`, `attn_v`, `attn_output`, `ffn_gate`, `ffn_up`,
//! `ffn_down` (the GGUF tensor names). PEFT names
//! (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`, ...) are accepted too.
//! The safetensors metadata carries `alpha` (default: the rank). The delta added to
//! `y = x·Wᵀ` is `(alpha / rank) · B·(A·x)`; the base weights are never modified.
//!
//! # Identity
//! An adapter's id is the lowercase hex **SHA-256 of its file bytes**; a request may name an
//! adapter by its file stem or by that id.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use crate::metrics::AdapterCacheStats;
use crate::model::LlamaConfig;
use crate::{Error, Result};

/// A projection inside a transformer block that an adapter can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Attention query projection (`attn_q`).
    Q,
    /// Attention key projection (`attn_k`).
    K,
    /// Attention value projection (`attn_v`).
    V,
    /// Attention output projection (`attn_output`).
    O,
    /// MLP gate projection (`ffn_gate`).
    Gate,
    /// MLP up projection (`ffn_up`).
    Up,
    /// MLP down projection (`ffn_down`).
    Down,
}

impl Target {
    /// All targets, in layer order.
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The GGUF name of the projection (`attn_q`, ...).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        }
    }

    fn peft_name(self) -> &'static str {
        match self {
            Target::Q => "self_attn.q_proj",
            Target::K => "self_attn.k_proj",
            Target::V => "self_attn.v_proj",
            Target::O => "self_attn.o_proj",
            Target::Gate => "mlp.gate_proj",
            Target::Up => "mlp.up_proj",
            Target::Down => "mlp.down_proj",
        }
    }

    /// Parses a tensor name into (layer, target, is_b).
    fn parse_tensor_name(name: &str) -> Option<(usize, Target, bool)> {
        if let Some(rest) = name.strip_prefix("blk.") {
            let (layer, rest) = rest.split_once('.')?;
            let (proj, ab) = rest.rsplit_once('.')?;
            let is_b = match ab {
                "lora_a" => false,
                "lora_b" => true,
                _ => return None,
            };
            let t = Target::ALL.into_iter().find(|t| t.gguf_name() == proj)?;
            return Some((layer.parse().ok()?, t, is_b));
        }
        let rest = name.strip_prefix("base_model.model.model.layers.")?;
        let (layer, rest) = rest.split_once('.')?;
        let rest = rest.strip_suffix(".weight").unwrap_or(rest);
        let (proj, ab) = rest.rsplit_once('.')?;
        let is_b = match ab {
            "lora_A" => false,
            "lora_B" => true,
            _ => return None,
        };
        let t = Target::ALL.into_iter().find(|t| t.peft_name() == proj)?;
        Some((layer.parse().ok()?, t, is_b))
    }
}

/// The low-rank pair of one adapted projection.
#[derive(Debug, Clone)]
pub struct LoraWeight {
    /// `A`, row-major `(rank, d_in)`.
    a: Vec<f32>,
    /// `B`, row-major `(d_out, rank)`.
    b: Vec<f32>,
    rank: usize,
    d_in: usize,
    scale: f32,
}

impl LoraWeight {
    /// Adds `scale · B·(A·x)` to `y` for one row. `h` is scratch space.
    pub(crate) fn add_delta(&self, x: &[f32], y: &mut [f32], h: &mut Vec<f32>) {
        h.clear();
        h.extend(
            self.a
                .chunks_exact(self.d_in)
                .map(|a_row| dot(a_row, x) * self.scale),
        );
        for (yo, b_row) in y.iter_mut().zip(self.b.chunks_exact(self.rank)) {
            *yo += dot(b_row, h);
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums: vectorizes well and gives the same result for the same inputs.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for i in chunks..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// A loaded LoRA adapter.
#[derive(Debug)]
pub struct LoraAdapter {
    id: String,
    name: String,
    rank: usize,
    alpha: f32,
    weights: HashMap<(usize, Target), LoraWeight>,
    bytes: usize,
}

impl LoraAdapter {
    /// Content id: lowercase hex SHA-256 of the adapter file.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Human name (the file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// LoRA rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// LoRA alpha (the delta is scaled by `alpha / rank`).
    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// Approximate resident size in bytes.
    pub fn resident_bytes(&self) -> usize {
        self.bytes
    }

    /// The (layer, target) pairs this adapter changes.
    pub fn targets(&self) -> impl Iterator<Item = (usize, Target)> + '_ {
        self.weights.keys().copied()
    }

    pub(crate) fn get(&self, layer: usize, target: Target) -> Option<&LoraWeight> {
        self.weights.get(&(layer, target))
    }

    /// Parses an adapter from the bytes of its safetensors file and checks it against the
    /// model's shapes.
    pub fn from_bytes(name: &str, bytes: &[u8], model: &LlamaConfig) -> Result<Self> {
        let bad = |reason: String| Error::AdapterFormat {
            adapter: name.to_string(),
            reason,
        };
        let id = sha256_hex(bytes);
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let alpha_meta = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("alpha"))
            .map(|s| {
                s.parse::<f32>()
                    .map_err(|e| bad(format!("metadata alpha {s:?}: {e}")))
            })
            .transpose()?;
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| bad(format!("reading tensors: {e}")))?;
        let mut pairs: HashMap<(usize, Target), (Option<Tensor>, Option<Tensor>)> = HashMap::new();
        for (tname, t) in tensors {
            let (layer, target, is_b) = Target::parse_tensor_name(&tname)
                .ok_or_else(|| bad(format!("unexpected tensor name {tname:?}")))?;
            if layer >= model.n_layer {
                return Err(bad(format!(
                    "{tname}: layer {layer} but the model has {}",
                    model.n_layer
                )));
            }
            let e = pairs.entry((layer, target)).or_default();
            if is_b { e.1 = Some(t) } else { e.0 = Some(t) }
        }
        if pairs.is_empty() {
            return Err(bad("no LoRA tensors in the file".into()));
        }
        let mut rank = None;
        let mut weights = HashMap::new();
        let mut nbytes = 0;
        for ((layer, target), (a, b)) in pairs {
            let (Some(a), Some(b)) = (a, b) else {
                return Err(bad(format!(
                    "layer {layer} {}: needs both A and B",
                    target.gguf_name()
                )));
            };
            let (r, d_in) = a.dims2().map_err(|e| bad(e.to_string()))?;
            let (d_out, r_b) = b.dims2().map_err(|e| bad(e.to_string()))?;
            if r != r_b || d_in != model.in_dim(target) || d_out != model.out_dim(target) {
                return Err(bad(format!(
                    "layer {layer} {}: A is {r}x{d_in}, B is {d_out}x{r_b}; the model needs A rank x {} and B {} x rank",
                    target.gguf_name(),
                    model.in_dim(target),
                    model.out_dim(target)
                )));
            }
            if *rank.get_or_insert(r) != r || r == 0 {
                return Err(bad("all A/B pairs must share one non-zero rank".into()));
            }
            let to_vec = |t: Tensor| -> Result<Vec<f32>> {
                t.to_dtype(DType::F32)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| bad(e.to_string()))
            };
            let (a, b) = (to_vec(a)?, to_vec(b)?);
            nbytes += (a.len() + b.len()) * 4;
            weights.insert(
                (layer, target),
                LoraWeight {
                    a,
                    b,
                    rank: r,
                    d_in,
                    scale: 0.0,
                },
            );
        }
        let rank = rank.unwrap_or(1);
        let alpha = alpha_meta.unwrap_or(rank as f32);
        let scale = alpha / rank as f32;
        for w in weights.values_mut() {
            w.scale = scale;
        }
        Ok(Self {
            id,
            name: name.to_string(),
            rank,
            alpha,
            weights,
            bytes: nbytes,
        })
    }
}

/// The weights of one adapted projection, for [`write_adapter`].
#[derive(Debug, Clone)]
pub struct AdapterTensor {
    /// Layer index.
    pub layer: usize,
    /// Which projection.
    pub target: Target,
    /// `A`, row-major `(rank, in)`.
    pub a: Vec<f32>,
    /// `B`, row-major `(out, rank)`.
    pub b: Vec<f32>,
    /// `(rank, in, out)`.
    pub shape: (usize, usize, usize),
}

/// Serializes an adapter in this crate's safetensors format; returns the file bytes.
pub fn write_adapter(alpha: f32, tensors: &[AdapterTensor]) -> Result<Vec<u8>> {
    let mut named = Vec::new();
    for t in tensors {
        let (r, d_in, d_out) = t.shape;
        let p = format!("blk.{}.{}", t.layer, t.target.gguf_name());
        named.push((
            format!("{p}.lora_a"),
            Tensor::from_vec(t.a.clone(), (r, d_in), &Device::Cpu)?,
        ));
        named.push((
            format!("{p}.lora_b"),
            Tensor::from_vec(t.b.clone(), (d_out, r), &Device::Cpu)?,
        ));
    }
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = named
        .iter()
        .map(|(n, t)| -> Result<_> {
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            Ok((
                n.clone(),
                v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                t.dims().to_vec(),
            ))
        })
        .collect::<Result<_>>()?;
    let views = bytes
        .iter()
        .map(|(n, b, s)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::AdapterFormat {
            adapter: "<new>".into(),
            reason: e.to_string(),
        })?;
    let meta = HashMap::from([("alpha".to_string(), alpha.to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::AdapterFormat {
        adapter: "<new>".into(),
        reason: e.to_string(),
    })
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the store knows about an adapter file without loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterEntry {
    /// File stem.
    pub name: String,
    /// Lowercase hex SHA-256 of the file.
    pub id: String,
    /// Path of the file.
    pub path: PathBuf,
}

#[derive(Debug, Default)]
struct Lru {
    /// id → (adapter, last-use tick)
    loaded: HashMap<String, (Arc<LoraAdapter>, u64)>,
    tick: u64,
}

/// Adapters on disk, addressed by content hash, with a bounded in-memory LRU cache.
///
/// Pinned adapters are loaded at once and never evicted. An evicted adapter stays alive
/// for the sequences still decoding with it (they hold an `Arc`).
#[derive(Debug)]
pub struct AdapterStore {
    model: LlamaConfig,
    entries: Mutex<Vec<AdapterEntry>>,
    capacity: usize,
    pinned: Mutex<HashSet<String>>,
    lru: Mutex<Lru>,
    stats: Arc<AdapterCacheStats>,
}

impl AdapterStore {
    /// A store over the `*.safetensors` files in `dir` (none when `dir` is `None`), keeping at
    /// most `capacity` unpinned adapters in memory.
    pub fn open(dir: Option<&Path>, capacity: usize, model: LlamaConfig) -> Result<Self> {
        let store = Self {
            model,
            entries: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            pinned: Mutex::new(HashSet::new()),
            lru: Mutex::new(Lru::default()),
            stats: Arc::new(AdapterCacheStats::default()),
        };
        if let Some(dir) = dir {
            store.scan(dir)?;
        }
        Ok(store)
    }

    /// Indexes every `*.safetensors` file in `dir` (hashing each file).
    pub fn scan(&self, dir: &Path) -> Result<()> {
        let io = |source| Error::AdapterFile {
            path: dir.to_path_buf(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "safetensors") {
                found.push(path);
            }
        }
        found.sort();
        for path in found {
            self.add_file(&path)?;
        }
        Ok(())
    }

    /// Registers one adapter file; returns its entry.
    pub fn add_file(&self, path: &Path) -> Result<AdapterEntry> {
        let bytes = std::fs::read(path).map_err(|source| Error::AdapterFile {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = AdapterEntry {
            name,
            id: sha256_hex(&bytes),
            path: path.to_path_buf(),
        };
        let mut entries = self.entries.lock().expect("adapter index lock");
        entries.retain(|e| e.name != entry.name);
        entries.push(entry.clone());
        Ok(entry)
    }

    /// All known adapters.
    pub fn list(&self) -> Vec<AdapterEntry> {
        self.entries.lock().expect("adapter index lock").clone()
    }

    /// Finds an adapter by name or by content id.
    pub fn resolve(&self, key: &str) -> Option<AdapterEntry> {
        let entries = self.entries.lock().expect("adapter index lock");
        entries
            .iter()
            .find(|e| e.name == key || e.id == key)
            .cloned()
    }

    /// Cache counters.
    pub fn stats(&self) -> Arc<AdapterCacheStats> {
        self.stats.clone()
    }

    /// Loads (if needed) and pins an adapter so it is never evicted.
    pub fn pin(&self, key: &str) -> Result<Arc<LoraAdapter>> {
        let a = self.get(key)?;
        self.pinned
            .lock()
            .expect("pin lock")
            .insert(a.id().to_string());
        Ok(a)
    }

    /// Unpins an adapter (it becomes evictable).
    pub fn unpin(&self, key: &str) {
        if let Some(e) = self.resolve(key) {
            self.pinned.lock().expect("pin lock").remove(&e.id);
        }
    }

    /// Number of adapters resident in memory.
    pub fn resident(&self) -> usize {
        self.lru.lock().expect("lru lock").loaded.len()
    }

    /// Returns the adapter, loading it from disk on a cache miss and evicting the least
    /// recently used unpinned adapters beyond the capacity.
    pub fn get(&self, key: &str) -> Result<Arc<LoraAdapter>> {
        let entry = self.resolve(key).ok_or_else(|| Error::UnknownAdapter {
            adapter: key.to_string(),
        })?;
        {
            let mut lru = self.lru.lock().expect("lru lock");
            lru.tick += 1;
            let tick = lru.tick;
            if let Some((a, t)) = lru.loaded.get_mut(&entry.id) {
                *t = tick;
                self.stats.hit();
                return Ok(a.clone());
            }
        }
        self.stats.miss();
        let bytes = std::fs::read(&entry.path).map_err(|source| Error::AdapterFile {
            path: entry.path.clone(),
            source,
        })?;
        let adapter = Arc::new(LoraAdapter::from_bytes(&entry.name, &bytes, &self.model)?);
        if adapter.id() != entry.id {
            return Err(Error::AdapterFormat {
                adapter: entry.name,
                reason:
                    "file changed since it was indexed (hash differs); rescan the adapter directory"
                        .into(),
            });
        }
        let pinned = self.pinned.lock().expect("pin lock").clone();
        let mut lru = self.lru.lock().expect("lru lock");
        lru.tick += 1;
        let tick = lru.tick;
        lru.loaded
            .insert(adapter.id().to_string(), (adapter.clone(), tick));
        loop {
            let unpinned: Vec<(&String, u64)> = lru
                .loaded
                .iter()
                .filter(|(id, _)| !pinned.contains(*id))
                .map(|(id, (_, t))| (id, *t))
                .collect();
            if unpinned.len() <= self.capacity {
                break;
            }
            let Some(oldest) = unpinned
                .iter()
                .min_by_key(|(_, t)| *t)
                .map(|(id, _)| (*id).clone())
            else {
                break;
            };
            lru.loaded.remove(&oldest);
            self.stats.evict();
        }
        Ok(adapter)
    }
}
