//! Saving and loading: round trips, incremental saves, corrupt and truncated files refused.

use std::{fs, sync::Arc};

use openledger_attribution::{AttributionConfig, Error, FORMAT_VERSION, Index, Segment};

use crate::common::{run, segment};

fn sample_segment() -> Segment {
    segment(&[
        (1, run(1, 20)),
        (2, [run(5, 15), run(40, 45)].concat()),
        (3, vec![]),
    ])
}

fn is_refusal(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. } | Error::UnsupportedVersion { .. })
}

#[test]
fn segment_round_trips_through_a_memory_mapped_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.olseg");
    let built = sample_segment();
    built.save(&path).unwrap();
    let opened = Segment::open(&path).unwrap();
    assert_eq!(opened.checksum(), built.checksum());
    assert_eq!(opened.contribution_ids(), &[1, 2, 3]);
    assert_eq!(opened.tokens(), 19 + 15);
    assert_eq!(
        opened.contribution(2).unwrap().1,
        [run(5, 15), run(40, 45)].concat()
    );
    assert_eq!(fs::read(&path).unwrap().len(), built.size_bytes());
    let output = [run(3, 12), run(40, 44)].concat();
    let cfg = AttributionConfig {
        min_span_len: 2,
        ..Default::default()
    };
    let a = Index::from_segments([Arc::new(built)])
        .unwrap()
        .attribute(&output, &cfg);
    let b = Index::from_segments([Arc::new(opened)])
        .unwrap()
        .attribute(&output, &cfg);
    assert_eq!(a, b);
    assert!(!a.weights.is_empty());
}

#[test]
fn every_truncation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.olseg");
    sample_segment().save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    for len in 0..bytes.len() {
        fs::write(&path, &bytes[..len]).unwrap();
        let err = Segment::open(&path).expect_err("truncated file must be refused");
        assert!(matches!(err, Error::Corrupt { .. }), "length {len}: {err}");
    }
    // Trailing garbage is refused too.
    fs::write(&path, [bytes.as_slice(), &[0u8; 8]].concat()).unwrap();
    assert!(matches!(Segment::open(&path), Err(Error::Corrupt { .. })));
}

#[test]
fn every_single_byte_corruption_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.olseg");
    sample_segment().save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            fs::write(&path, &bad).unwrap();
            let err = Segment::open(&path).expect_err("corrupt file must be refused");
            assert!(is_refusal(&err), "byte {at}: {err}");
        }
    }
}

#[test]
fn other_format_versions_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.olseg");
    sample_segment().save(&path).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let err = Segment::open(&path).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { found, .. } if found == FORMAT_VERSION + 1));
    assert!(err.to_string().contains("rebuild the index"));
    fs::write(
        &path,
        b"not an index at all, just some text padding it out to 64 bytes......",
    )
    .unwrap();
    assert!(matches!(Segment::open(&path), Err(Error::Corrupt { .. })));
}

#[test]
fn index_directory_saves_incrementally_and_cleans_up_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let segment_files = || {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".olseg"))
            .collect();
        names.sort();
        names
    };
    let mut index = Index::new();
    index.push(segment(&[(1, run(1, 10))])).unwrap();
    index.save(dir.path()).unwrap();
    let first = segment_files();
    assert_eq!(first.len(), 1);
    let first_modified = fs::metadata(dir.path().join(&first[0]))
        .unwrap()
        .modified()
        .unwrap();

    index.push(segment(&[(2, run(10, 20))])).unwrap();
    index.save(dir.path()).unwrap();
    assert_eq!(segment_files().len(), 2);
    // The first segment file was kept as it was, not rewritten.
    assert_eq!(
        fs::metadata(dir.path().join(&first[0]))
            .unwrap()
            .modified()
            .unwrap(),
        first_modified
    );
    let reopened = Index::open(dir.path()).unwrap();
    assert_eq!(reopened.len(), 2);
    assert!(reopened.contains(1) && reopened.contains(2));

    let compacted = Index::from_segments([Arc::new(index.compact().unwrap())]).unwrap();
    compacted.save(dir.path()).unwrap();
    assert_eq!(segment_files().len(), 1);
    let reopened = Index::open(dir.path()).unwrap();
    let cfg = AttributionConfig {
        min_span_len: 3,
        ..Default::default()
    };
    assert_eq!(
        reopened.attribute(&run(5, 15), &cfg),
        index.attribute(&run(5, 15), &cfg)
    );
}

#[test]
fn damaged_index_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::new();
    index.push(segment(&[(1, run(1, 10))])).unwrap();
    index.push(segment(&[(2, run(10, 20))])).unwrap();
    index.save(dir.path()).unwrap();
    let manifest = dir.path().join("MANIFEST");
    let text = fs::read_to_string(&manifest).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // A manifest cut short (its end marker lost) is refused rather than read as fewer segments.
    fs::write(&manifest, lines[..lines.len() - 1].join("\n")).unwrap();
    assert!(matches!(
        Index::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));
    fs::write(&manifest, [lines[0], lines[1], "end 2"].join("\n")).unwrap();
    assert!(matches!(
        Index::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));

    // A segment file replaced by another valid segment does not match its manifest entry.
    fs::write(&manifest, &text).unwrap();
    let seg1 = dir.path().join(lines[1]);
    let seg2 = dir.path().join(lines[2]);
    let original = fs::read(&seg1).unwrap();
    fs::copy(&seg2, &seg1).unwrap();
    assert!(matches!(
        Index::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));

    // A corrupt segment file is refused; a missing one is an I/O error naming it.
    let mut bad = original.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    fs::write(&seg1, &bad).unwrap();
    assert!(matches!(
        Index::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));
    fs::remove_file(&seg1).unwrap();
    let err = Index::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, Error::Io { ref path, .. } if path.contains(lines[1])),
        "{err}"
    );

    // Restored, it opens again.
    fs::write(&seg1, &original).unwrap();
    assert_eq!(Index::open(dir.path()).unwrap().len(), 2);
}

#[test]
fn segments_merge_in_the_background_while_queries_run() {
    // Given an index extended three times, serving queries from a shared handle,
    let mut index = Index::new();
    for (id, start) in [(1, 1), (2, 30), (3, 60)] {
        index
            .push(segment(&[(id, run(start, start + 20))]))
            .unwrap();
    }
    let serving = std::sync::RwLock::new(Arc::new(index));
    let cfg = AttributionConfig {
        min_span_len: 4,
        ..Default::default()
    };
    let output = [run(5, 15), run(62, 70)].concat();
    let expected = serving.read().unwrap().attribute(&output, &cfg);

    // when a background thread compacts it and swaps the result in,
    std::thread::scope(|s| {
        s.spawn(|| {
            let current = serving.read().unwrap().clone();
            let merged = Index::from_segments([Arc::new(current.compact().unwrap())]).unwrap();
            *serving.write().unwrap() = Arc::new(merged);
        });
        for _ in 0..50 {
            let index = serving.read().unwrap().clone();
            assert_eq!(index.attribute(&output, &cfg), expected);
        }
    });

    // then queries get the same answers from the single merged segment.
    let index = serving.read().unwrap().clone();
    assert_eq!(index.segments().len(), 1);
    assert_eq!(index.attribute(&output, &cfg), expected);
}
