//! LoRA adapters in the engine: the per-row delta, and a content-addressed store with an LRU
//! cache and pinning (OpenLoRA).
//!
//! The file format (tensor names, alpha, validation) is `openledger-adapter`'s; see
//! [`openledger_adapter`] for the layout. The delta added to `y = x·Wᵀ` is
//! `(alpha / rank) · B·(A·x)`; the base weights are never modified.
//!
//! # Identity
//! An adapter's id is the lowercase hex **SHA-256 of its file bytes**
//! ([`openledger_adapter::content_id`]); a request may name an adapter by its file stem or by
//! that id.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use openledger_adapter::{AdapterTensor, Target, write_adapter};
use openledger_adapter::{AdapterWeights, BaseShape, content_id, is_adapter_file, name_from_path};

use crate::metrics::AdapterCacheStats;
use crate::model::LlamaConfig;
use crate::{Error, Result};

impl LlamaConfig {
    /// The sizes an adapter must fit.
    pub fn adapter_shape(&self) -> BaseShape {
        BaseShape {
            n_layer: self.n_layer,
            hidden: self.hidden,
            ffn: self.ffn,
            kv_dim: self.n_kv_head * self.head_dim(),
        }
    }
}

/// The low-rank pair of one adapted projection, ready for the per-row delta.
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
        let bad = |source| Error::AdapterFormat {
            adapter: name.to_string(),
            source,
        };
        let file = AdapterWeights::read(bytes).map_err(bad)?;
        file.check_fits(&model.adapter_shape()).map_err(bad)?;
        let (rank, alpha, scale) = (file.rank(), file.alpha(), file.scale());
        let mut nbytes = 0;
        let weights = file
            .into_tensors()
            .into_iter()
            .map(|t| {
                nbytes += (t.a.len() + t.b.len()) * size_of::<f32>();
                let w = LoraWeight {
                    a: t.a,
                    b: t.b,
                    rank,
                    d_in: t.shape.1,
                    scale,
                };
                ((t.layer, t.target), w)
            })
            .collect();
        Ok(Self {
            id: content_id(bytes),
            name: name.to_string(),
            rank,
            alpha,
            weights,
            bytes: nbytes,
        })
    }
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
    stats: AdapterCacheStats,
}

impl AdapterStore {
    /// A store over the `*.safetensors` files in `dir` (none when `dir` is `None`), keeping at
    /// most `capacity` unpinned adapters in memory. Its cache metrics are registered with the
    /// current recorder (see [`crate::metrics`]).
    pub fn open(dir: Option<&Path>, capacity: usize, model: LlamaConfig) -> Result<Self> {
        let store = Self {
            model,
            entries: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            pinned: Mutex::new(HashSet::new()),
            lru: Mutex::new(Lru::default()),
            stats: AdapterCacheStats::register(),
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
            if is_adapter_file(&path) {
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
        let name = name_from_path(path).map_err(|source| Error::AdapterFormat {
            adapter: path.display().to_string(),
            source,
        })?;
        let entry = AdapterEntry {
            name: name.to_string(),
            id: content_id(&bytes),
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
            return Err(Error::AdapterChanged {
                adapter: entry.name,
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
        self.stats.set_resident(lru.loaded.len());
        Ok(adapter)
    }
}
