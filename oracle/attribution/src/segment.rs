//! Immutable index segments: token stream + suffix array + tables, in memory or memory-mapped.
//!
//! # File format (version 1, little-endian, every section 8-byte aligned)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `OLPOASEG` |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]) |
//! | 12 | 4 | header length (64) |
//! | 16 | 8 | `n_text`: stream length, tokens plus one boundary per contribution |
//! | 24 | 8 | `n_docs`: number of contributions |
//! | 32 | 8 | `n_buckets`: entries of the bucket table, `min(max symbol, 65,536) + 2` |
//! | 40 | 8 | reserved (0) |
//! | 48 | 8 | checksum: XXH3-64 of header bytes 0..48 followed by every byte after the header |
//! | 56 | 8 | reserved (0) |
//! | 64 | 4·n_text | stream: symbol `token + 1`, `0` after each contribution |
//! | … | 4·n_text | suffix array of the stream (`u32` positions) |
//! | … | 4·n_buckets | `bucket[s]` = number of stream symbols `< s`; the suffixes starting with a symbol above the table follow `bucket[n_buckets − 1]` |
//! | … | 8·n_docs | stream offset where each contribution starts |
//! | … | 8·n_docs | contribution ids |
//! | … | 32·n_docs | content hashes (keccak-256) |
//!
//! A file is refused unless its magic, version, exact length, checksum and table invariants
//! all hold. The checksum detects corruption and truncation, not deliberate tampering: index
//! files are local, derived data, and can always be rebuilt from the contributions.

use std::{
    cmp::Ordering,
    collections::HashSet,
    fs::File,
    io::Write,
    ops::Range,
    path::{Path, PathBuf},
};

use libsais::SuffixArrayConstruction;
use xxhash_rust::xxh3::Xxh3;

use crate::{ContentHash, ContributionId, Error, Result};

/// Version of the segment file format written and read by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Token ids must be below this (2^24). Covers every real vocabulary with room to spare, and
/// bounds the per-segment bucket table.
pub const TOKEN_ID_LIMIT: u32 = 1 << 24;

/// Largest stream (tokens plus one boundary per contribution) of one segment: positions are
/// stored as 32-bit integers and `libsais` builds 32-bit suffix arrays.
const MAX_STREAM: u64 = i32::MAX as u64;

/// Largest symbol with its own bucket-table entry: the table stays small (256 KiB at most)
/// whatever the id range; suffixes starting with larger symbols are found by binary search.
const DIRECT_SYMBOLS: u32 = 1 << 16;

const MAGIC: [u8; 8] = *b"OLPOASEG";
const HEADER_LEN: usize = 64;
const CHECKSUM_AT: usize = 48;

/// A contribution as accepted on chain: its id, registered content hash, and raw content.
#[derive(Debug, Clone, Copy)]
pub struct Contribution<'a> {
    /// The contribution id.
    pub id: ContributionId,
    /// The registered keccak-256 hash of `content`.
    pub content_hash: ContentHash,
    /// The raw content bytes.
    pub content: &'a [u8],
}

impl Contribution<'_> {
    /// Checks that `content` hashes to `content_hash`.
    pub fn verify(&self) -> Result<()> {
        let actual = ContentHash::of(self.content);
        if actual != self.content_hash {
            return Err(Error::ContentHashMismatch {
                contribution: self.id,
                expected: self.content_hash,
                actual,
            });
        }
        Ok(())
    }
}

/// Collects contributions for one [`Segment`].
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    stream: Vec<u32>,
    doc_starts: Vec<u64>,
    ids: Vec<ContributionId>,
    hashes: Vec<[u8; 32]>,
    seen: HashSet<ContributionId>,
    max_symbol: u32,
}

impl SegmentBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a contribution with its token ids (the content tokenized with the serving model's
    /// tokenizer). The content hash is checked first: a mismatch is refused with
    /// [`Error::ContentHashMismatch`] and nothing is added.
    pub fn add(&mut self, contribution: &Contribution<'_>, tokens: &[u32]) -> Result<()> {
        contribution.verify()?;
        self.add_verified(contribution.id, contribution.content_hash, tokens)
    }

    /// Adds a contribution whose content hash has already been checked.
    pub(crate) fn add_verified(
        &mut self,
        id: ContributionId,
        hash: ContentHash,
        tokens: &[u32],
    ) -> Result<()> {
        if self.seen.contains(&id) {
            return Err(Error::DuplicateContribution { contribution: id });
        }
        if let Some(&token) = tokens.iter().find(|&&t| t >= TOKEN_ID_LIMIT) {
            return Err(Error::TokenOutOfRange {
                contribution: id,
                token,
            });
        }
        let total = self.stream.len() as u64 + tokens.len() as u64 + 1;
        if total > MAX_STREAM {
            return Err(Error::SegmentTooLarge {
                tokens: total,
                max: MAX_STREAM,
            });
        }
        self.seen.insert(id);
        self.doc_starts.push(self.stream.len() as u64);
        self.ids.push(id);
        self.hashes.push(hash.0);
        self.stream.reserve(tokens.len() + 1);
        for &t in tokens {
            self.max_symbol = self.max_symbol.max(t + 1);
            self.stream.push(t + 1);
        }
        self.stream.push(0);
        Ok(())
    }

    /// Number of contributions added so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no contribution was added.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of content tokens added so far (boundaries not counted).
    pub fn tokens(&self) -> usize {
        self.stream.len() - self.ids.len()
    }

    /// Builds the segment: suffix array (libsais), bucket table and document table, laid out
    /// exactly as the file format so that [`Segment::save`] is a single write.
    pub fn build(self) -> Result<Segment> {
        let n_text = self.stream.len();
        let n_docs = self.ids.len();
        let n_buckets = self.max_symbol.min(DIRECT_SYMBOLS) as usize + 2;
        let layout = Layout::new(n_text, n_docs, n_buckets);
        let mut image = vec![0u64; layout.file_len / 8];
        {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut image);
            let (head, tail) = bytes.split_at_mut(layout.sa.start);
            let text: &mut [u32] = bytemuck::cast_slice_mut(&mut head[layout.text.clone()]);
            text.copy_from_slice(&self.stream);
            drop(self.stream);
            let sa_len = layout.sa.len();
            let sa: &mut [i32] = bytemuck::cast_slice_mut(&mut tail[..sa_len]);
            build_suffix_array(text, sa, self.max_symbol as usize)?;

            let tables = &mut tail[layout.buckets.start - layout.sa.start..];
            let (bucket_bytes, rest) = tables.split_at_mut(layout.buckets.len());
            let buckets: &mut [u32] = bytemuck::cast_slice_mut(bucket_bytes);
            for &s in text.iter().filter(|&&s| s <= DIRECT_SYMBOLS) {
                buckets[s as usize + 1] += 1;
            }
            for s in 1..n_buckets {
                buckets[s] += buckets[s - 1];
            }
            let rest = &mut rest[layout.doc_start.start - layout.buckets.end..];
            let (starts, rest) = rest.split_at_mut(layout.doc_start.len());
            bytemuck::cast_slice_mut::<u8, u64>(starts).copy_from_slice(&self.doc_starts);
            let (ids, hashes) = rest.split_at_mut(layout.doc_id.len());
            bytemuck::cast_slice_mut::<u8, u64>(ids).copy_from_slice(&self.ids);
            bytemuck::cast_slice_mut::<u8, [u8; 32]>(hashes).copy_from_slice(&self.hashes);

            head[..HEADER_LEN].copy_from_slice(&layout.header(0));
            let sum = checksum(bytes);
            bytes[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        }
        Segment::from_storage(Storage::Owned(image), None)
    }
}

fn build_suffix_array(text: &[u32], sa: &mut [i32], max_symbol: usize) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let err = |e: libsais::LibsaisError| Error::SuffixArray {
        reason: format!("{e:?}"),
    };
    let sort16 = |small: &[u16], sa: &mut [i32]| {
        SuffixArrayConstruction::for_text(small)
            .in_borrowed_buffer(sa)
            .single_threaded()
            .run()
            .map(drop)
            .map_err(err)
    };
    if max_symbol <= u16::MAX as usize {
        // Real vocabularies fit 16 bits: libsais's 16-bit alphabet path is much faster than
        // its integer-alphabet path and gives the same (unique) suffix array.
        let small: Vec<u16> = text.iter().map(|&s| s as u16).collect();
        return sort16(&small, sa);
    }
    // Larger ids: renumber the symbols densely, preserving their order (so the suffix array
    // is unchanged). libsais's memory and time grow with the alphabet size, not the id range.
    let mut distinct = text.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let rank = |s: &u32| distinct.binary_search(s).expect("symbol is in the text");
    if distinct.len() <= 1 << 16 {
        let small: Vec<u16> = text.iter().map(|s| rank(s) as u16).collect();
        return sort16(&small, sa);
    }
    let mut dense: Vec<i32> = text.iter().map(|s| rank(s) as i32).collect();
    drop(distinct);
    SuffixArrayConstruction::for_text_mut(&mut dense)
        .in_borrowed_buffer(sa)
        .single_threaded()
        .run()
        .map_err(err)?;
    Ok(())
}

fn checksum(file: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&file[..CHECKSUM_AT]);
    h.update(&file[HEADER_LEN..]);
    h.digest()
}

const fn pad8(x: usize) -> usize {
    (x + 7) & !7
}

/// Byte ranges of the sections of a segment file.
#[derive(Debug, Clone)]
struct Layout {
    n_text: usize,
    n_docs: usize,
    n_buckets: usize,
    text: Range<usize>,
    sa: Range<usize>,
    buckets: Range<usize>,
    doc_start: Range<usize>,
    doc_id: Range<usize>,
    doc_hash: Range<usize>,
    file_len: usize,
}

impl Layout {
    fn new(n_text: usize, n_docs: usize, n_buckets: usize) -> Self {
        let text = HEADER_LEN..HEADER_LEN + 4 * n_text;
        let sa_start = pad8(text.end);
        let sa = sa_start..sa_start + 4 * n_text;
        let b_start = pad8(sa.end);
        let buckets = b_start..b_start + 4 * n_buckets;
        let d_start = pad8(buckets.end);
        let doc_start = d_start..d_start + 8 * n_docs;
        let doc_id = doc_start.end..doc_start.end + 8 * n_docs;
        let doc_hash = doc_id.end..doc_id.end + 32 * n_docs;
        Self {
            n_text,
            n_docs,
            n_buckets,
            file_len: doc_hash.end,
            text,
            sa,
            buckets,
            doc_start,
            doc_id,
            doc_hash,
        }
    }

    fn header(&self, checksum: u64) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[16..24].copy_from_slice(&(self.n_text as u64).to_le_bytes());
        h[24..32].copy_from_slice(&(self.n_docs as u64).to_le_bytes());
        h[32..40].copy_from_slice(&(self.n_buckets as u64).to_le_bytes());
        h[48..56].copy_from_slice(&checksum.to_le_bytes());
        h
    }
}

enum Storage {
    Owned(Vec<u64>),
    Mapped(memmap2::Mmap),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => bytemuck::cast_slice(v),
            Storage::Mapped(m) => m,
        }
    }
}

/// An immutable, queryable set of contributions: token stream, suffix array and tables.
///
/// Built by [`SegmentBuilder::build`] or [`Segment::merge`], or memory-mapped from a file by
/// [`Segment::open`]. `Send + Sync`; share it with `Arc`.
pub struct Segment {
    storage: Storage,
    layout: Layout,
    checksum: u64,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("contributions", &self.layout.n_docs)
            .field("tokens", &self.tokens())
            .field("checksum", &format_args!("{:016x}", self.checksum))
            .field("path", &self.path)
            .finish()
    }
}

impl Segment {
    fn from_storage(storage: Storage, path: Option<PathBuf>) -> Result<Self> {
        let shown = path
            .as_ref()
            .map_or_else(|| "<memory>".to_string(), |p| p.display().to_string());
        let (layout, checksum) = validate(storage.bytes(), &shown)?;
        Ok(Self {
            storage,
            layout,
            checksum,
            path,
        })
    }

    /// Memory-maps and validates the segment file at `path`.
    ///
    /// The whole file is checksummed once (a few tens of milliseconds per 10 M tokens); a
    /// file that fails any check is refused with [`Error::Corrupt`] or
    /// [`Error::UnsupportedVersion`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let storage = if file.metadata().map_err(io)?.len() == 0 {
            // Zero-length files cannot be mapped; let validation report the truncation.
            Storage::Owned(Vec::new())
        } else {
            Storage::Mapped(map_file(&file).map_err(io)?)
        };
        Self::from_storage(storage, Some(path.to_path_buf()))
    }

    /// Writes the segment to `path` atomically (temporary file, fsync, rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tmp = path.with_extension("tmp");
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| Error::Io { path: p, source }
        };
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(self.storage.bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        Ok(())
    }

    /// Builds one segment holding every contribution of `segments`, in order (compaction).
    ///
    /// Queries against the result give exactly the answers of the inputs together. This is the
    /// "background merge": run it on any thread, then swap the new segment in.
    pub fn merge(segments: &[&Segment]) -> Result<Segment> {
        let mut builder = SegmentBuilder::new();
        let total: usize = segments.iter().map(|s| s.layout.n_text).sum();
        builder.stream.reserve_exact(total);
        let mut tokens = Vec::new();
        for seg in segments {
            let view = seg.view();
            for d in 0..view.doc_id.len() {
                tokens.clear();
                tokens.extend(view.doc_symbols(d).iter().map(|&s| s - 1));
                builder.add_verified(view.doc_id[d], ContentHash(view.doc_hash[d]), &tokens)?;
            }
        }
        builder.build()
    }

    /// Number of contributions.
    pub fn len(&self) -> usize {
        self.layout.n_docs
    }

    /// Whether the segment holds no contribution.
    pub fn is_empty(&self) -> bool {
        self.layout.n_docs == 0
    }

    /// Number of content tokens (boundaries not counted).
    pub fn tokens(&self) -> usize {
        self.layout.n_text - self.layout.n_docs
    }

    /// Size in bytes of the segment (in memory or on disk).
    pub fn size_bytes(&self) -> usize {
        self.layout.file_len
    }

    /// The checksum stored in (and verified against) the segment's bytes.
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// The file this segment was opened from, if it was.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Contribution ids, in the order they were added.
    pub fn contribution_ids(&self) -> &[ContributionId] {
        self.view().doc_id
    }

    /// The content hash and token ids of contribution `id`, if this segment holds it (a linear
    /// scan of the id table; meant for explaining results, not for the query path).
    pub fn contribution(&self, id: ContributionId) -> Option<(ContentHash, Vec<u32>)> {
        let view = self.view();
        let d = view.doc_id.iter().position(|&x| x == id)?;
        Some((
            ContentHash(view.doc_hash[d]),
            view.doc_symbols(d).iter().map(|&s| s - 1).collect(),
        ))
    }

    pub(crate) fn view(&self) -> View<'_> {
        let b = self.storage.bytes();
        let l = &self.layout;
        View {
            text: bytemuck::cast_slice(&b[l.text.clone()]),
            sa: bytemuck::cast_slice(&b[l.sa.clone()]),
            buckets: bytemuck::cast_slice(&b[l.buckets.clone()]),
            doc_start: bytemuck::cast_slice(&b[l.doc_start.clone()]),
            doc_id: bytemuck::cast_slice(&b[l.doc_id.clone()]),
            doc_hash: bytemuck::cast_slice(&b[l.doc_hash.clone()]),
        }
    }
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: segment files are immutable once written: they are created under a temporary
    // name and renamed into place, never modified in place (see `Segment::save`,
    // `Index::save`). Modifying a mapped file from outside would be a bug of the deployment,
    // which the checksum at open does not cover.
    unsafe { memmap2::Mmap::map(file) }
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks everything about a segment image; returns its layout and checksum.
fn validate(b: &[u8], path: &str) -> Result<(Layout, u64)> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_string(),
        reason,
    };
    if b.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header (truncated)",
            b.len()
        )));
    }
    if b[..8] != MAGIC {
        return Err(corrupt("bad magic: not an attribution segment file".into()));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let header_len = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
    let (n_text, n_docs, n_buckets) = (read_u64(b, 16), read_u64(b, 24), read_u64(b, 32));
    if header_len as usize != HEADER_LEN
        || n_text > MAX_STREAM
        || n_docs > n_text
        || !(2..=DIRECT_SYMBOLS as u64 + 2).contains(&n_buckets)
        || read_u64(b, 40) != 0
        || read_u64(b, 56) != 0
    {
        return Err(corrupt("inconsistent header".into()));
    }
    let layout = Layout::new(n_text as usize, n_docs as usize, n_buckets as usize);
    if b.len() != layout.file_len {
        return Err(corrupt(format!(
            "file is {} bytes but its header describes {} bytes (truncated or extended)",
            b.len(),
            layout.file_len
        )));
    }
    let stored = read_u64(b, CHECKSUM_AT);
    let actual = checksum(b);
    if stored != actual {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:016x}, computed {actual:016x})"
        )));
    }

    // Table invariants the query path relies on (cheap: O(contributions + buckets)).
    let text: &[u32] = bytemuck::cast_slice(&b[layout.text.clone()]);
    let buckets: &[u32] = bytemuck::cast_slice(&b[layout.buckets.clone()]);
    let starts: &[u64] = bytemuck::cast_slice(&b[layout.doc_start.clone()]);
    let ids: &[u64] = bytemuck::cast_slice(&b[layout.doc_id.clone()]);
    if buckets[0] != 0
        || buckets[1] as usize != layout.n_docs
        || *buckets.last().expect("n_buckets >= 2") as usize > layout.n_text
        || buckets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(corrupt("bucket table is inconsistent".into()));
    }
    let ends = starts.iter().skip(1).copied().chain([n_text]);
    let mut expected_start = 0;
    for (&start, end) in starts.iter().zip(ends) {
        if start != expected_start || end <= start || text[end as usize - 1] != 0 {
            return Err(corrupt("contribution table is inconsistent".into()));
        }
        expected_start = end;
    }
    if expected_start != n_text {
        return Err(corrupt(
            "contribution table does not cover the stream".into(),
        ));
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(corrupt("duplicate contribution id".into()));
    }
    Ok((layout, stored))
}

/// Comparison of a stream suffix with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    /// The suffix sorts before the query (and does not start with it).
    Less,
    /// The suffix starts with the whole query.
    Prefix,
    /// The suffix sorts after the query (and does not start with it).
    Greater,
}

/// Compares the suffix at `pos` with `q`, knowing they agree on the first `from` symbols.
/// Returns the length of their common prefix and the comparison. A boundary (0) or the end of
/// the stream sorts before any query symbol, so matches never cross a contribution boundary.
#[inline]
fn compare(text: &[u32], pos: usize, q: &[u32], from: usize) -> (usize, Cmp) {
    let suffix = &text[pos..];
    let mut k = from;
    loop {
        let Some(&b) = q.get(k) else {
            return (k, Cmp::Prefix);
        };
        let Some(&a) = suffix.get(k) else {
            return (k, Cmp::Less);
        };
        match a.cmp(&b) {
            Ordering::Equal => k += 1,
            Ordering::Less => return (k, Cmp::Less),
            Ordering::Greater => return (k, Cmp::Greater),
        }
    }
}

/// Borrowed slices of a segment, taken once per query.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    text: &'a [u32],
    sa: &'a [u32],
    buckets: &'a [u32],
    doc_start: &'a [u64],
    pub(crate) doc_id: &'a [u64],
    doc_hash: &'a [[u8; 32]],
}

impl<'a> View<'a> {
    /// Stream symbols of contribution `d` (without its boundary).
    fn doc_symbols(&self, d: usize) -> &'a [u32] {
        let start = self.doc_start[d] as usize;
        let end = self
            .doc_start
            .get(d + 1)
            .map_or(self.text.len(), |&e| e as usize);
        &self.text[start..end - 1]
    }

    /// Suffix-array range of the suffixes starting with symbol `s`.
    #[inline]
    fn bucket(&self, s: u32) -> Range<usize> {
        let last = self.buckets.len() - 1;
        if (s as usize) < last {
            return self.buckets[s as usize] as usize..self.buckets[s as usize + 1] as usize;
        }
        // Symbols above the table (token ids of 65,536 and more): binary search the tail.
        let tail_start = self.buckets[last] as usize;
        let tail = &self.sa[tail_start..];
        let first = |&p: &u32| self.text[p as usize];
        tail_start + tail.partition_point(|p| first(p) < s)
            ..tail_start + tail.partition_point(|p| first(p) <= s)
    }

    /// Length of the longest prefix of `q` that occurs in the segment (within one
    /// contribution). `q` holds query symbols (never 0).
    pub(crate) fn longest_prefix(&self, q: &[u32]) -> usize {
        let Some(&first) = q.first() else { return 0 };
        let range = self.bucket(first);
        if range.is_empty() {
            return 0;
        }
        // Binary search of q's insertion point among the suffixes that start with q[0]; the
        // longest match is with one of the two neighbours of that point. `llcp`/`rlcp` are
        // the common prefix lengths with the suffixes at l-1 and r (all share q[0]), and no
        // comparison re-reads the min(llcp, rlcp) symbols already known to agree.
        let (mut l, mut r) = (range.start, range.end);
        let (mut llcp, mut rlcp) = (1, 1);
        while l < r {
            let mid = l + (r - l) / 2;
            let (lcp, cmp) = compare(self.text, self.sa[mid] as usize, q, llcp.min(rlcp));
            match cmp {
                Cmp::Prefix => return q.len(),
                Cmp::Less => {
                    l = mid + 1;
                    llcp = lcp;
                }
                Cmp::Greater => {
                    r = mid;
                    rlcp = lcp;
                }
            }
        }
        llcp.max(rlcp)
    }

    /// Suffix-array range of the suffixes starting with `p` (query symbols, non-empty).
    pub(crate) fn prefix_range(&self, p: &[u32]) -> Range<usize> {
        let range = self.bucket(p[0]);
        if range.is_empty() || p.len() == 1 {
            return range;
        }
        let lower = self.partition(range.clone(), p, |c| c == Cmp::Less);
        let upper = self.partition(lower..range.end, p, |c| c != Cmp::Greater);
        lower..upper
    }

    /// First index of `range` whose suffix does not satisfy `before` (which must hold for a
    /// prefix of the range), comparing with `p`.
    fn partition(&self, range: Range<usize>, p: &[u32], before: impl Fn(Cmp) -> bool) -> usize {
        let (mut l, mut r) = (range.start, range.end);
        let (mut llcp, mut rlcp) = (1, 1);
        while l < r {
            let mid = l + (r - l) / 2;
            let (lcp, cmp) = compare(self.text, self.sa[mid] as usize, p, llcp.min(rlcp));
            if before(cmp) {
                l = mid + 1;
                llcp = lcp;
            } else {
                r = mid;
                rlcp = lcp;
            }
        }
        l
    }

    /// The contribution index and offset (in tokens) of the suffix at suffix-array index `i`.
    pub(crate) fn locate(&self, i: usize) -> (usize, u32) {
        let pos = self.sa[i] as u64;
        let d = self.doc_start.partition_point(|&s| s <= pos) - 1;
        (d, (pos - self.doc_start[d]) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(docs: &[&[u32]]) -> Segment {
        let mut b = SegmentBuilder::new();
        for (i, d) in docs.iter().enumerate() {
            b.add_verified(i as u64 + 1, ContentHash::default(), d)
                .unwrap();
        }
        b.build().unwrap()
    }

    fn sym(tokens: &[u32]) -> Vec<u32> {
        tokens.iter().map(|t| t + 1).collect()
    }

    #[test]
    fn suffix_array_is_sorted_and_buckets_match() {
        let s = seg(&[&[3, 1, 2, 3, 1], &[1, 2, 3], &[]]);
        let v = s.view();
        assert_eq!(v.text, &[4, 2, 3, 4, 2, 0, 2, 3, 4, 0, 0]);
        let mut sa: Vec<usize> = v.sa.iter().map(|&p| p as usize).collect();
        let expected = {
            let mut e: Vec<usize> = (0..v.text.len()).collect();
            e.sort_by(|&a, &b| v.text[a..].cmp(&v.text[b..]));
            e
        };
        // Suffixes compare like slices except that a shorter suffix ending at the stream end
        // sorts first; with 0 boundaries both orders agree here.
        assert_eq!(sa, expected);
        sa.sort_unstable();
        assert_eq!(sa, (0..v.text.len()).collect::<Vec<_>>());
        assert_eq!(v.bucket(0), 0..3);
        assert_eq!(v.bucket(2), 3..6);
        assert!(v.bucket(9).is_empty());
    }

    #[test]
    fn longest_prefix_and_ranges() {
        let s = seg(&[&[3, 1, 2, 3, 1], &[1, 2, 3]]);
        let v = s.view();
        assert_eq!(v.longest_prefix(&sym(&[1, 2, 3, 1, 7])), 4);
        assert_eq!(v.longest_prefix(&sym(&[1, 2, 3, 4])), 3);
        assert_eq!(v.longest_prefix(&sym(&[7, 1])), 0);
        // [3, 1, 2, 3, 1] then a boundary: no match continues into the next contribution.
        assert_eq!(v.longest_prefix(&sym(&[2, 3, 1, 1, 2])), 3);
        assert_eq!(v.prefix_range(&sym(&[1, 2, 3])).len(), 2);
        assert_eq!(v.prefix_range(&sym(&[3])).len(), 3);
        assert_eq!(v.prefix_range(&sym(&[3, 1])).len(), 2);
        assert_eq!(v.prefix_range(&sym(&[3, 2])).len(), 0);
        let mut found: Vec<_> = v.prefix_range(&sym(&[3, 1])).map(|i| v.locate(i)).collect();
        found.sort_unstable();
        assert_eq!(found, vec![(0, 0), (0, 3)]);
    }

    #[test]
    fn large_token_ids_are_renumbered() {
        let big = TOKEN_ID_LIMIT - 1;
        let s = seg(&[&[big, 5, big, 5, 70_000]]);
        let v = s.view();
        assert_eq!(v.longest_prefix(&sym(&[big, 5, 70_000])), 3);
        assert_eq!(v.longest_prefix(&sym(&[big, 5, 1])), 2);
        assert_eq!(v.longest_prefix(&sym(&[5, 70_000, 5])), 2);
        assert_eq!(v.prefix_range(&sym(&[big, 5])).len(), 2);
    }

    #[test]
    fn more_than_65536_distinct_tokens_use_the_integer_alphabet_path() {
        // 70,000 distinct ids, each twice, in two orders.
        let a: Vec<u32> = (0..70_000).map(|t| t * 97 % 70_000 * 200).collect();
        let b: Vec<u32> = a.iter().rev().copied().collect();
        let s = seg(&[&a, &b]);
        let v = s.view();
        for w in v.sa.windows(2) {
            let (x, y) = (&v.text[w[0] as usize..], &v.text[w[1] as usize..]);
            assert!(x < y, "suffix array not sorted");
        }
        assert_eq!(v.longest_prefix(&sym(&a[100..200])), 100);
        assert_eq!(v.prefix_range(&sym(&a[5..7])).len(), 1);
    }

    #[test]
    fn builder_refuses_bad_input() {
        let mut b = SegmentBuilder::new();
        b.add_verified(1, ContentHash::default(), &[1]).unwrap();
        assert!(matches!(
            b.add_verified(1, ContentHash::default(), &[2]),
            Err(Error::DuplicateContribution { contribution: 1 })
        ));
        assert!(matches!(
            b.add_verified(2, ContentHash::default(), &[TOKEN_ID_LIMIT]),
            Err(Error::TokenOutOfRange {
                contribution: 2,
                ..
            })
        ));
        let c = Contribution {
            id: 3,
            content_hash: ContentHash::of(b"accepted"),
            content: b"tampered",
        };
        assert!(matches!(
            b.add(&c, &[1, 2]),
            Err(Error::ContentHashMismatch {
                contribution: 3,
                ..
            })
        ));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn empty_segment_is_valid() {
        let s = SegmentBuilder::new().build().unwrap();
        assert!(s.is_empty());
        assert_eq!(s.view().longest_prefix(&[1, 2]), 0);
    }
}
