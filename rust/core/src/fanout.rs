//! Fan-out of a batch of records to the sinks of a source: every record is
//! parsed at most once, mapped by every sink, and each sink's rows are appended
//! to its slice as one block. A sink gets all rows of the batch or none.

use std::sync::Arc;

use crate::body::BodyFormat;
use crate::error::{MappingError, MappingErrorKind, WriterError};
use crate::limits::{format_size, RequestLimits, DEFAULT_MAX_ROW_BYTES};
use crate::mapping::Mapping;
use crate::record::{RecordContext, RecordMeta, RecordRef};
use crate::request::{self, BatchError, BatchKind};
use crate::writer::{SliceWriter, Ticket};

/// One enabled sink ready to take rows: its compiled mapping and the writer of
/// its open slice. (Not a target database: that is where slices go later.)
#[derive(Clone)]
pub struct OpenSink {
    pub mapping: Arc<Mapping>,
    pub writer: Arc<SliceWriter>,
}

/// Why a sink did not take the batch.
#[derive(Debug)]
pub enum SinkFailure {
    /// Record `index` of the batch could not be mapped.
    Mapping {
        index: usize,
        error: MappingError,
    },
    Writer(WriterError),
}

/// What happened to the batch in one sink.
#[derive(Debug)]
pub enum SinkOutcome {
    /// Rows were written; `synced` tells whether the call waited for the sync.
    Written {
        rows: u64,
        synced: bool,
    },
    Failed(SinkFailure),
}

/// Every kind of [`SinkOutcome`] by its stable name (see [`SinkOutcome::kind`]):
/// written and synced, written without waiting, a mapping error kind, a writer error kind.
pub const SINK_OUTCOMES: [&str; 11] = [
    "processed",
    "accepted",
    "malformed_body",
    "unsupported_content_type",
    "missing_value",
    "template",
    "row_too_large",
    "invalid_value",
    "writer_closed",
    "disk_full",
    "writer_failed",
];

impl SinkOutcome {
    /// The stable name of the outcome, one of [`SINK_OUTCOMES`]: `processed`
    /// (written and synced), `accepted` (written, the sync not waited for), the
    /// [`MappingErrorKind`] of a record that could not be mapped, or the
    /// [`WriterError::kind`] of a failed write.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkOutcome::Written { synced: true, .. } => "processed",
            SinkOutcome::Written { synced: false, .. } => "accepted",
            SinkOutcome::Failed(SinkFailure::Mapping { error, .. }) => error.kind.as_str(),
            SinkOutcome::Failed(SinkFailure::Writer(error)) => error.kind(),
        }
    }
}

/// One request into all sinks of a source: splits the body into records
/// (NDJSON / CSV batches), checks that every record of a batch is valid JSON
/// (a malformed line rejects the whole request, nothing is written), then maps
/// and writes like [`write_batch`]. Returns the records count and the outcomes.
/// A batch whose records exceed `limits.max_record_bytes` is rejected whole; a
/// row over `limits.max_row_bytes` fails its sink (for the whole batch).
pub fn write_request(
    meta: &RecordMeta,
    kind: BatchKind,
    body: &[u8],
    sinks: &[OpenSink],
    limits: RequestLimits,
) -> Result<(usize, Vec<SinkOutcome>), BatchError> {
    let (bodies, format) = request::split(kind, meta.format(), body, limits.max_record_bytes)?;
    let mut encoder = Encoder::new(sinks, bodies.len(), body.len(), limits.max_row_bytes);
    // One record at a time: its parsed body is dropped before the next is parsed,
    // so a large batch is mapped in memory that stays in the cache. Nothing is
    // appended before every record has been checked.
    for (index, (line, body)) in bodies.iter().enumerate() {
        let ctx = RecordContext::new(RecordRef { meta, body, format });
        if kind != BatchKind::Single {
            if let Err(e) = ctx.parsed_body() {
                // The line is already named; "at line 1 column N" of a one-line document only adds noise.
                let message = e.reason.replacen("malformed JSON body", "malformed JSON", 1).replacen(
                    " at line 1 column ",
                    " at column ",
                    1,
                );
                return Err(BatchError::new(line, message));
            }
        }
        encoder.encode(index, &ctx);
    }
    Ok((bodies.len(), encoder.write(meta.received_at_ns())))
}

/// The flat JSON records of an OTLP request (see [`crate::otlp`]) into all
/// sinks of a source, like the records of an NDJSON batch: mapped by every
/// sink, appended as one block per sink, then waited for (the group commit).
pub fn write_records(
    meta: &RecordMeta,
    records: &crate::otlp::Flattened,
    sinks: &[OpenSink],
    max_row_bytes: usize,
) -> Vec<SinkOutcome> {
    let mut encoder = Encoder::new(sinks, records.len(), records.bytes(), max_row_bytes);
    for (index, body) in records.iter().enumerate() {
        encoder.encode(index, &RecordContext::new(RecordRef { meta, body, format: BodyFormat::Json }));
    }
    encoder.write(meta.received_at_ns())
}

/// Maps `records` into every sink and appends each sink's rows to its slice,
/// then waits for the syncs (all sinks' syncs run in parallel).
pub fn write_batch(records: &[RecordRef<'_>], sinks: &[OpenSink], record_time_ns: i64) -> Vec<SinkOutcome> {
    let bytes = records.iter().map(|r| r.body.len()).sum();
    let mut encoder = Encoder::new(sinks, records.len(), bytes, DEFAULT_MAX_ROW_BYTES);
    for (index, record) in records.iter().enumerate() {
        encoder.encode(index, &RecordContext::new(*record));
    }
    encoder.write(record_time_ns)
}

/// The rows of one batch for every sink, built record by record.
struct Encoder<'s> {
    sinks: &'s [OpenSink],
    /// Per sink: its rows so far, or why it cannot take the batch.
    buffers: Vec<Result<Vec<u8>, SinkFailure>>,
    scratch: Vec<u8>,
    rows: u64,
    max_row_bytes: usize,
}

impl<'s> Encoder<'s> {
    fn new(sinks: &'s [OpenSink], records: usize, body_bytes: usize, max_row_bytes: usize) -> Self {
        // Room for the rows without growing (and copying) the buffer on the way in
        // the common shapes: a body column plus a few short ones. Unused capacity
        // costs no memory: its pages are never touched.
        let capacity = body_bytes + body_bytes / 4 + records * 128;
        let buffers = sinks.iter().map(|_| Ok(Vec::with_capacity(capacity))).collect();
        Encoder { sinks, buffers, scratch: Vec::new(), rows: 0, max_row_bytes }
    }

    fn encode(&mut self, index: usize, ctx: &RecordContext<'_>) {
        for (sink, buffer) in self.sinks.iter().zip(self.buffers.iter_mut()) {
            let Ok(out) = buffer else { continue };
            let start = out.len();
            if let Err(error) = sink.mapping.encode_row(ctx, out, &mut self.scratch) {
                *buffer = Err(SinkFailure::Mapping { index, error });
            } else if out.len() - start > self.max_row_bytes {
                let reason = format!(
                    "the row has {} bytes, more than the row limit of {}",
                    out.len() - start,
                    format_size(self.max_row_bytes)
                );
                let error = MappingError::body(MappingErrorKind::RowTooLarge, reason);
                *buffer = Err(SinkFailure::Mapping { index, error });
            }
        }
        self.rows += 1;
    }

    /// Appends every sink's rows to its slice, then waits for the syncs.
    fn write(self, record_time_ns: i64) -> Vec<SinkOutcome> {
        let Encoder { sinks, buffers, rows, .. } = self;
        let appended: Vec<Result<(Ticket, bool), SinkFailure>> = sinks
            .iter()
            .zip(buffers)
            .map(|(sink, buffer)| {
                let data = buffer?;
                let (ticket, must_wait) =
                    sink.writer.append(&data, rows, record_time_ns).map_err(SinkFailure::Writer)?;
                Ok((ticket, must_wait || sink.writer.settings().wait))
            })
            .collect();
        sinks
            .iter()
            .zip(appended)
            .map(|(sink, appended)| match appended {
                Err(failure) => SinkOutcome::Failed(failure),
                Ok((ticket, true)) => match sink.writer.wait(ticket) {
                    Ok(()) => SinkOutcome::Written { rows, synced: true },
                    Err(e) => SinkOutcome::Failed(SinkFailure::Writer(e)),
                },
                Ok((_, false)) => SinkOutcome::Written { rows, synced: false },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Record, RecordMeta};
    use crate::writer::SyncSettings;

    /// One outcome of every kind the core returns.
    fn every_outcome() -> Vec<SinkOutcome> {
        let path = || "slice.csv".to_owned();
        let writer_errors = vec![
            WriterError::Closed { path: path() },
            WriterError::DiskFull { path: path() },
            WriterError::Io { path: path(), source: std::io::Error::other("x") },
            WriterError::Failed { path: path(), message: "x".into() },
        ];
        for error in &writer_errors {
            // Fails to compile when a writer error is added without a place above.
            match error {
                WriterError::Closed { .. }
                | WriterError::Io { .. }
                | WriterError::Failed { .. }
                | WriterError::DiskFull { .. } => {}
            }
        }
        let mut outcomes =
            vec![SinkOutcome::Written { rows: 1, synced: true }, SinkOutcome::Written { rows: 1, synced: false }];
        outcomes.extend(
            MappingErrorKind::ALL.into_iter().map(|kind| {
                SinkOutcome::Failed(SinkFailure::Mapping { index: 0, error: MappingError::body(kind, "x") })
            }),
        );
        outcomes.extend(writer_errors.into_iter().map(|e| SinkOutcome::Failed(SinkFailure::Writer(e))));
        outcomes
    }

    #[test]
    fn sink_outcomes_lists_every_kind_once() {
        let mut kinds: Vec<&str> = every_outcome().iter().map(SinkOutcome::kind).collect();
        kinds.dedup();
        assert_eq!(kinds, SINK_OUTCOMES);
    }

    #[test]
    fn fans_out_all_or_nothing_per_sink() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, columns: &str| OpenSink {
            mapping: Arc::new(Mapping::from_json(columns).unwrap()),
            writer: Arc::new(SliceWriter::open(dir.path().join(name), SyncSettings::default()).unwrap().0),
        };
        let sinks = vec![
            open("a.csv", r#"[{"type":"path","name":"a","path":"a"}]"#),
            open("b.csv", r#"[{"type":"path","name":"b","path":"b","rawString":true}]"#),
        ];
        let meta = Arc::new(RecordMeta::new(vec![("Content-Type".into(), "application/json".into())], "::1".into(), 0));
        let records =
            [Record::new(meta.clone(), br#"{"a":1,"b":"x"}"#.to_vec()), Record::new(meta, br#"{"a":2}"#.to_vec())];
        let refs: Vec<RecordRef> = records.iter().map(Record::view).collect();
        let outcomes = write_batch(&refs, &sinks, 0);
        assert!(matches!(outcomes[0], SinkOutcome::Written { rows: 2, synced: true }));
        match &outcomes[1] {
            SinkOutcome::Failed(SinkFailure::Mapping { index: 1, error }) => {
                assert_eq!(error.to_string(), "column \"b\": path \"b\" not found in the body")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(std::fs::read(dir.path().join("a.csv")).unwrap(), b"\"1\"\n\"2\"\n");
        assert_eq!(std::fs::read(dir.path().join("b.csv")).unwrap(), b"");
    }
}
