//! Reading the index of a slice (`<slice>.idx`, written by [`SliceWriter`]) and
//! merging the parts of a slice that several nodes wrote, in receive order.
//!
//! The index holds one 16-byte entry per append: the offset in the slice just
//! after the append's rows, then their receive time (nanoseconds since the
//! epoch), both little-endian. It is written with the data but not synced, so
//! after a power loss its tail may be missing or torn; rows the index does not
//! cover keep their place after the part's last indexed append.
//!
//! [`SliceWriter`]: crate::writer::SliceWriter

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::writer::index_path;

/// Bytes of one index entry: end offset (`u64`), receive time (`i64`).
pub const ENTRY_BYTES: usize = 16;

/// One index entry as the writer appends it.
pub fn encode_entry(end: u64, record_time_ns: i64) -> [u8; ENTRY_BYTES] {
    let mut entry = [0u8; ENTRY_BYTES];
    entry[..8].copy_from_slice(&end.to_le_bytes());
    entry[8..].copy_from_slice(&record_time_ns.to_le_bytes());
    entry
}

/// The whole entries of an index, `(end offset, receive time)`; a torn trailing entry is ignored.
pub fn entries(index: &[u8]) -> impl Iterator<Item = (u64, i64)> + '_ {
    index.chunks_exact(ENTRY_BYTES).map(|entry| {
        let (end, time) = entry.split_at(8);
        (u64::from_le_bytes(end.try_into().expect("8 bytes")), i64::from_le_bytes(time.try_into().expect("8 bytes")))
    })
}

/// One append of a part: the byte range of its rows and their receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append {
    pub time_ns: i64,
    pub start: u64,
    pub end: u64,
}

/// The appends of a part of `length` bytes, from its index.
///
/// The entries are taken in order up to the first that does not fit: one that
/// ends past `length` (rows cut off after a crash) or does not move forward.
/// The bytes after the last append taken form one more append, with the time
/// of the entry that stopped the walk (or of the last entry, or 0 without one).
pub fn appends(index: &[u8], length: u64) -> Vec<Append> {
    let mut appends = Vec::with_capacity(index.len() / ENTRY_BYTES + 1);
    let mut start = 0u64;
    let mut time_ns = 0i64;
    for (end, time) in entries(index) {
        time_ns = time;
        if end > length || end <= start {
            break;
        }
        appends.push(Append { time_ns, start, end });
        start = end;
    }
    if start < length {
        appends.push(Append { time_ns, start, end: length });
    }
    appends
}

/// A byte range of one part (by its position in the list given to [`interleave`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRange {
    pub part: usize,
    pub start: u64,
    pub end: u64,
}

/// The appends of several parts in receive order: by time, then by part (the
/// order given), then by position within the part, so the rows of one part keep
/// their order. Consecutive appends of one part that follow each other in the
/// file are merged into one range.
pub fn interleave(parts: &[Vec<Append>]) -> Vec<PartRange> {
    let mut all: Vec<(i64, usize, u64, u64)> = parts
        .iter()
        .enumerate()
        .flat_map(|(part, appends)| appends.iter().map(move |a| (a.time_ns, part, a.start, a.end)))
        .collect();
    // The starts of one part's appends are distinct: the keys are unique.
    all.sort_unstable_by_key(|&(time_ns, part, start, _)| (time_ns, part, start));
    let mut ranges: Vec<PartRange> = Vec::new();
    for (_, part, start, end) in all {
        match ranges.last_mut() {
            Some(last) if last.part == part && last.end == start => last.end = end,
            _ => ranges.push(PartRange { part, start, end }),
        }
    }
    ranges
}

/// Reads the index of the slice at `slice` (none on disk reads as empty).
pub fn read_index(slice: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(index_path(slice)) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// The byte ranges of the node parts of a slice, `(path, length)` each, in
/// receive order (see [`interleave`]), reading each part's index. An error names
/// the index that could not be read.
pub fn interleave_parts(parts: &[(PathBuf, u64)]) -> std::io::Result<Vec<PartRange>> {
    let appends = parts
        .iter()
        .map(|(path, length)| {
            let index = read_index(path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("slice index {}: {e}", index_path(path).display()))
            })?;
            Ok(appends(&index, *length))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(interleave(&appends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{SliceWriter, SyncSettings};

    fn index(entries: &[(u64, i64)]) -> Vec<u8> {
        entries.iter().flat_map(|&(end, time)| encode_entry(end, time)).collect()
    }

    fn append(time_ns: i64, start: u64, end: u64) -> Append {
        Append { time_ns, start, end }
    }

    fn range(part: usize, start: u64, end: u64) -> PartRange {
        PartRange { part, start, end }
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice-a.csv");
        let (writer, _) = SliceWriter::open(&path, SyncSettings::default()).unwrap();
        writer.write(b"\"a\"\n\"b\"\n", 2, 100).unwrap();
        writer.write(b"\"c\"\n", 1, -5).unwrap();
        writer.close().unwrap();
        let raw = read_index(&path).unwrap();
        assert_eq!(entries(&raw).collect::<Vec<_>>(), vec![(8, 100), (12, -5)]);
        assert_eq!(appends(&raw, 12), vec![append(100, 0, 8), append(-5, 8, 12)]);
    }

    #[test]
    fn empty_or_missing_index() {
        assert_eq!(appends(b"", 0), vec![]);
        assert_eq!(appends(b"", 7), vec![append(0, 0, 7)]);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_index(&dir.path().join("slice-x.csv")).unwrap(), b"");
    }

    #[test]
    fn torn_tail_is_ignored() {
        let mut raw = index(&[(4, 10), (9, 20)]);
        raw.extend_from_slice(&encode_entry(12, 30)[..11]);
        assert_eq!(appends(&raw, 12), vec![append(10, 0, 4), append(20, 4, 9), append(20, 9, 12)]);
    }

    #[test]
    fn index_longer_than_the_part() {
        // The last rows were cut off after a crash: the entry past the end stops
        // the walk, and the rows it no longer covers form the last append.
        let raw = index(&[(4, 10), (9, 20), (15, 30)]);
        assert_eq!(appends(&raw, 9), vec![append(10, 0, 4), append(20, 4, 9)]);
        assert_eq!(appends(&raw, 6), vec![append(10, 0, 4), append(20, 4, 6)]);
        assert_eq!(appends(&raw, 0), vec![]);
    }

    #[test]
    fn entries_that_do_not_move_forward_stop_the_walk() {
        let raw = index(&[(4, 10), (4, 15), (9, 20)]);
        assert_eq!(appends(&raw, 9), vec![append(10, 0, 4), append(15, 4, 9)]);
        let raw = index(&[(0, 10), (9, 20)]);
        assert_eq!(appends(&raw, 9), vec![append(10, 0, 9)]);
    }

    #[test]
    fn parts_interleave_by_receive_time() {
        let a = vec![append(200, 0, 4), append(400, 4, 8)];
        let b = vec![append(100, 0, 3), append(300, 3, 6), append(301, 6, 9)];
        assert_eq!(
            interleave(&[a, b]),
            vec![range(1, 0, 3), range(0, 0, 4), range(1, 3, 9), range(0, 4, 8)],
            "b's appends at 300 and 301 follow each other: one range"
        );
    }

    #[test]
    fn stable_within_a_part_and_by_part_on_equal_times() {
        // Equal times: part order first, then the order within the part.
        let a = vec![append(5, 0, 2), append(5, 2, 4)];
        let b = vec![append(5, 0, 1), append(1, 1, 3)];
        assert_eq!(interleave(&[a, b]), vec![range(1, 1, 3), range(0, 0, 4), range(1, 0, 1)]);
        assert_eq!(interleave(&[]), vec![]);
        assert_eq!(interleave(&[vec![], vec![append(0, 0, 5)]]), vec![range(1, 0, 5)]);
    }

    #[test]
    fn interleaves_parts_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| SliceWriter::open(dir.path().join(name), SyncSettings::default()).unwrap().0;
        let (a, b) = (open("slice-a.csv"), open("slice-b.csv"));
        b.write(b"\"1\"\n", 1, 100).unwrap();
        a.write(b"\"2\"\n", 1, 200).unwrap();
        b.write(b"\"3\"\n", 1, 300).unwrap();
        a.close().unwrap();
        b.close().unwrap();
        let parts = [(dir.path().join("slice-a.csv"), 4), (dir.path().join("slice-b.csv"), 8)];
        assert_eq!(interleave_parts(&parts).unwrap(), vec![range(1, 0, 4), range(0, 0, 4), range(1, 4, 8)]);
    }
}
