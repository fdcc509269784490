//! The limits that keep hostile input from taking the receiver down, in one place.
//!
//! Everything in the core that recurses on the shape of input (JSON and form
//! bodies, values read by `path` columns, values handed to templates, CSV
//! encoding) is bounded by [`MAX_NESTING_DEPTH`]; template evaluation has its
//! own stack, time and size bounds (see `template`).

/// Deepest nesting of arrays and objects accepted in a body (JSON, form keys
/// such as `a[b][c]`, every line of an NDJSON batch).
///
/// Go's `encoding/json` (Keboola's parser) stops at 10,000 levels; events are
/// nowhere near either number. The recursive walks over a parsed body (parse,
/// output, drop) take at most ~400 bytes of stack per level in a release build
/// (measured: JSON output 320), so 1,000 levels fit in a quarter of the
/// smallest stack the core runs on (2 MiB: Rust's default for spawned threads
/// and granian's blocking threads; Python threads get 8 MiB), and
/// `json::tests::deep_values_fit_a_small_stack` checks it on a 512 KiB thread.
/// Templates run on a stack of their own (see `template`).
pub const MAX_NESTING_DEPTH: usize = 1000;

/// Default largest CSV row one record may map to in one sink, in bytes. Rows
/// are checked before the request is acknowledged, so a row that the importer
/// could not read is never stored.
pub const DEFAULT_MAX_ROW_BYTES: usize = 8 << 20;

/// Default largest record (one body, one NDJSON line, one CSV row as JSON), in
/// bytes: Keboola's default.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Largest record limit a server may be configured with, in bytes.
pub const MAX_RECORD_BYTES_LIMIT: usize = 4 << 20;

/// Default largest body of a batch request (NDJSON, CSV; see
/// [`crate::request::BatchKind::is_batch`]), in bytes. A single record's request
/// is bounded by the record limit instead.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 16 << 20;

/// The size limits of one request, applied before anything is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest record of a batch: an NDJSON line, a CSV row (as its JSON object).
    pub max_record_bytes: usize,
    /// Largest CSV row a record may map to in one sink.
    pub max_row_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits { max_record_bytes: DEFAULT_MAX_RECORD_BYTES, max_row_bytes: DEFAULT_MAX_ROW_BYTES }
    }
}

/// `1048576` → `1MB`, `1536` → `1.5KB`: a limit as the command line takes it.
pub fn format_size(bytes: usize) -> String {
    for (unit, factor) in [("MB", 1usize << 20), ("KB", 1 << 10)] {
        if bytes >= factor && bytes % factor == 0 {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

/// Runs `f` on a thread with a small stack: 512 KiB, a quarter of a request
/// thread's, in release builds (what runs); debug builds take up to 50 KiB of
/// stack per level (unoptimised SIMD parsing) and get 64 MiB.
#[cfg(test)]
pub(crate) fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let size = if cfg!(debug_assertions) { 64 << 20 } else { 512 << 10 };
    std::thread::Builder::new().stack_size(size).spawn(f).expect("thread").join().expect("no panic")
}
