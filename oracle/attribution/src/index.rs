//! A Datanet's index: segments, persistence as a directory, and the query entry points.

use std::{
    collections::HashSet,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    Attribution, AttributionConfig, ContentHash, ContributionId, Error, Result, Segment,
    SegmentBuilder, attribute, segment::View,
};

const MANIFEST: &str = "MANIFEST";
const MANIFEST_HEADER: &str = "openledger-attribution-index 1";
const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".olseg";

/// A Datanet's attribution index: an ordered list of immutable [`Segment`]s.
///
/// Answers never depend on how contributions are split into segments: adding contributions as
/// a new segment ([`Index::push`], [`Index::extend`]) gives exactly the results of a full
/// rebuild. Merging ([`Index::compact`], [`Segment::merge`]) only saves query time. Cloning is
/// cheap (segments are shared); `Index` is `Send + Sync`.
#[derive(Clone, Default)]
pub struct Index {
    segments: Vec<Arc<Segment>>,
    ids: HashSet<ContributionId>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("contributions", &self.len())
            .field("tokens", &self.tokens())
            .field("segments", &self.segments)
            .finish()
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of the given segments, refusing a contribution present in two of them.
    pub fn from_segments(segments: impl IntoIterator<Item = Arc<Segment>>) -> Result<Self> {
        let mut index = Self::new();
        for s in segments {
            index.push(s)?;
        }
        Ok(index)
    }

    /// Adds a segment (e.g. the contributions accepted since the last build). Refused with
    /// [`Error::DuplicateContribution`], leaving the index unchanged, if it holds a
    /// contribution the index already has.
    pub fn push(&mut self, segment: impl Into<Arc<Segment>>) -> Result<()> {
        let segment = segment.into();
        let ids = segment.contribution_ids();
        if let Some(&dup) = ids.iter().find(|id| self.ids.contains(id)) {
            return Err(Error::DuplicateContribution { contribution: dup });
        }
        self.ids.extend(ids.iter().copied());
        self.segments.push(segment);
        Ok(())
    }

    /// Builds a segment from `builder` and adds it; returns the new segment.
    pub fn extend(&mut self, builder: SegmentBuilder) -> Result<Arc<Segment>> {
        let segment = Arc::new(builder.build()?);
        self.push(segment.clone())?;
        Ok(segment)
    }

    /// Builds one segment holding every contribution (see [`Segment::merge`]). Run it off the
    /// query path, then replace the index with `Index::from_segments([merged])`.
    pub fn compact(&self) -> Result<Segment> {
        let segments: Vec<&Segment> = self.segments.iter().map(|s| &**s).collect();
        Segment::merge(&segments)
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Arc<Segment>] {
        &self.segments
    }

    /// Whether contribution `id` is indexed.
    pub fn contains(&self, id: ContributionId) -> bool {
        self.ids.contains(&id)
    }

    /// Number of contributions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no contribution.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of content tokens.
    pub fn tokens(&self) -> usize {
        self.segments.iter().map(|s| s.tokens()).sum()
    }

    /// The content hash and token ids of contribution `id` (for explaining spans).
    pub fn contribution(&self, id: ContributionId) -> Option<(ContentHash, Vec<u32>)> {
        if !self.contains(id) {
            return None;
        }
        self.segments.iter().find_map(|s| s.contribution(id))
    }

    fn views(&self) -> Vec<View<'_>> {
        self.segments.iter().map(|s| s.view()).collect()
    }

    /// For each output position, the length of the longest run of output tokens starting there
    /// that occurs inside one contribution (step 1 of the rule).
    pub fn longest_matches(&self, output: &[u32]) -> Vec<u32> {
        attribute::longest_matches(&self.views(), output)
    }

    /// Attributes `output` (token ids) to the contributions, by the rule in the crate docs.
    /// Pure and deterministic: the same index contents, output and config give the same value.
    pub fn attribute(&self, output: &[u32], config: &AttributionConfig) -> Attribution {
        attribute::attribute(&self.views(), output, config)
    }

    /// Saves the index into directory `dir` (created if needed).
    ///
    /// Segment files are named by their checksum, so saving after [`Index::push`] writes only
    /// the new segment. The `MANIFEST` listing them is replaced atomically, then segment files
    /// no longer listed (e.g. merged away) are deleted. One writer per directory at a time;
    /// readers that already opened the index keep their (memory-mapped) segments.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| Error::Io { path: p, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut names = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let name = segment_file_name(segment.checksum());
            let path = dir.join(&name);
            // An existing file of that name is kept only if it is intact.
            let intact = path.exists()
                && Segment::open(&path).is_ok_and(|s| s.checksum() == segment.checksum());
            if !intact {
                segment.save(&path)?;
            }
            names.push(name);
        }
        let mut manifest = format!("{MANIFEST_HEADER}\n");
        for name in &names {
            manifest.push_str(name);
            manifest.push('\n');
        }
        manifest.push_str(&format!("end {}\n", names.len()));
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(manifest.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        let path = dir.join(MANIFEST);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // Make the rename durable where the platform allows syncing a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }

        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(SEGMENT_PREFIX)
                && name.ends_with(SEGMENT_SUFFIX)
                && !names.contains(&name)
            {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        Ok(())
    }

    /// Opens an index directory written by [`Index::save`]: reads the manifest and
    /// memory-maps and validates every segment. A missing, truncated or altered manifest or
    /// segment is refused ([`Error::Corrupt`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let corrupt = |reason: &str| Error::Corrupt {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(MANIFEST_HEADER) {
            return Err(corrupt("missing or unknown manifest header"));
        }
        let mut files: Vec<(PathBuf, u64)> = Vec::new();
        let mut ended = false;
        for line in lines {
            if ended {
                return Err(corrupt("lines after the end marker"));
            }
            if let Some(count) = line.strip_prefix("end ") {
                if count.parse::<usize>().ok() != Some(files.len()) {
                    return Err(corrupt("segment count does not match the end marker"));
                }
                ended = true;
                continue;
            }
            let checksum = line
                .strip_prefix(SEGMENT_PREFIX)
                .and_then(|l| l.strip_suffix(SEGMENT_SUFFIX))
                .filter(|hex| hex.len() == 16)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .ok_or_else(|| corrupt(&format!("bad segment entry {line:?}")))?;
            files.push((dir.join(line), checksum));
        }
        if !ended {
            return Err(corrupt("no end marker (truncated)"));
        }
        let mut index = Self::new();
        for (file, checksum) in files {
            let segment = Segment::open(&file)?;
            if segment.checksum() != checksum {
                return Err(Error::Corrupt {
                    path: file.display().to_string(),
                    reason: "segment checksum does not match its manifest entry".into(),
                });
            }
            index.push(segment)?;
        }
        Ok(index)
    }
}

fn segment_file_name(checksum: u64) -> String {
    format!("{SEGMENT_PREFIX}{checksum:016x}{SEGMENT_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn index_and_segments_are_thread_safe() {
        assert_send_sync::<Index>();
        assert_send_sync::<Segment>();
    }

    #[test]
    fn duplicate_contributions_across_segments_are_refused() {
        let mut a = SegmentBuilder::new();
        a.add_verified(7, ContentHash::default(), &[1, 2, 3])
            .unwrap();
        let mut b = SegmentBuilder::new();
        b.add_verified(7, ContentHash::default(), &[4, 5]).unwrap();
        let mut index = Index::new();
        index.extend(a).unwrap();
        assert!(matches!(
            index.extend(b),
            Err(Error::DuplicateContribution { contribution: 7 })
        ));
        assert_eq!(index.segments().len(), 1);
        assert_eq!(index.contribution(7).unwrap().1, vec![1, 2, 3]);
    }
}
