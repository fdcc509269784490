//! Durable local slices: append-only CSV files with eager group commit.
//!
//! Writers append whole rows to an in-memory buffer under a short lock. A
//! writer thread per slice moves the buffer to the file with one `write` per
//! round; in `disk` mode two flusher threads `fdatasync` what has been written.
//! Group commit is eager: as soon as a writer waits, the next round starts
//! (unless one written round is still waiting for a flusher, in which case the
//! rows simply join the next round); writers that arrive while a round is on
//! its way share the next one. Write and flush overlap, and two flushes may be
//! in flight, because on this kind of disk a flush costs about the same for
//! 100 KB as for 1 MB. The count / bytes / interval triggers only bound how long
//! rows of writers that do *not* wait may stay in memory.
//!
//! Next to each slice, `<slice>.idx` records where every append ends and the
//! receive time of its rows (see [`crate::slice_index`], which reads it). When
//! several nodes write parts of one slice, the coordinator interleaves the
//! parts' appends by receive time with it, so "last write wins" on a primary
//! key follows the order in which requests arrived, whichever node took them.
//! The index is written with the data but not fsync'd: after a power loss its
//! tail may be missing, and the rows it does not cover keep their part's order.
//!
//! Waiters sleep on a futex word chosen by their round, so a completing round
//! wakes exactly the writers it made durable, without any lock hand-off.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::csv;
use crate::error::WriterError;
use crate::slice_index;

/// Above this many buffered bytes an append waits for the sync, whatever the
/// settings say, so a slow disk slows writers down instead of growing memory.
const MAX_BUFFERED_BYTES: usize = 64 << 20;

/// Flushes (`fdatasync`) that may run at the same time for one slice. The
/// virtual disks measured here complete concurrent flushes faster than serial
/// ones (4 gave the best throughput, more did not help); flusher threads are
/// started on demand, so an idle slice has just one.
const MAX_FLUSHERS: usize = 4;

/// Futex words waiters are spread over (by round number). More than the rounds
/// that can be pending at once, so a round only wakes its own writers.
const SLOTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Write and `fdatasync`: an acknowledged row survives a power loss.
    Disk,
    /// Write to the OS only: an acknowledged row survives a crash of the process.
    Cache,
}

impl SyncMode {
    pub fn parse(text: &str) -> Result<SyncMode, String> {
        match text {
            "disk" => Ok(SyncMode::Disk),
            "cache" => Ok(SyncMode::Cache),
            other => Err(format!("unknown sync mode \"{other}\", expected \"disk\" or \"cache\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Disk => "disk",
            SyncMode::Cache => "cache",
        }
    }
}

/// `storage.level.local.encoding.sync.*` settings of one slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    pub mode: SyncMode,
    /// Whether a write returns only after its rows are synced.
    pub wait: bool,
    /// Accepted for compatibility; triggers are evaluated on every write and at
    /// the exact interval deadline, which is never later than a periodic check.
    pub check_interval: Duration,
    pub count_trigger: u64,
    pub bytes_trigger: u64,
    pub interval_trigger: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            mode: SyncMode::Disk,
            wait: true,
            check_interval: Duration::from_millis(5),
            count_trigger: 10_000,
            bytes_trigger: 1 << 20,
            interval_trigger: Duration::from_millis(50),
        }
    }
}

/// Counters of one slice since it was opened (including recovered rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub rows: u64,
    pub bytes: u64,
    pub synced_rows: u64,
    pub synced_bytes: u64,
    /// Rounds written so far: rows per round shows the group commit at work.
    pub syncs: u64,
    /// Receive time of the first / last row written since open (ns since epoch).
    pub first_record_ns: Option<i64>,
    pub last_record_ns: Option<i64>,
}

/// Upper bounds (seconds) of the buckets of [`ProcessTotals::fsync_buckets`]: the
/// latency of `fdatasync` runs from tens of microseconds (cache) to seconds (a
/// busy virtual disk).
pub const FSYNC_BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// Counters of every slice writer of this process since it started: read at
/// scrape time by the metrics (one snapshot, no crossing per event).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessTotals {
    /// Rows and bytes written to slice files (one `write` per round).
    pub rows: u64,
    pub bytes: u64,
    /// Group-commit rounds written.
    pub rounds: u64,
    /// `fdatasync` calls that completed, their total seconds, and how many took
    /// at most each bound of [`FSYNC_BUCKETS`] (not cumulative; the last entry
    /// counts the ones over the largest bound).
    pub fsyncs: u64,
    pub fsync_seconds: f64,
    pub fsync_buckets: Vec<u64>,
}

struct AtomicTotals {
    rows: AtomicU64,
    bytes: AtomicU64,
    rounds: AtomicU64,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS.len() + 1],
}

static TOTALS: AtomicTotals = AtomicTotals {
    rows: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    rounds: AtomicU64::new(0),
    fsyncs: AtomicU64::new(0),
    fsync_nanos: AtomicU64::new(0),
    fsync_buckets: [const { AtomicU64::new(0) }; FSYNC_BUCKETS.len() + 1],
};

impl AtomicTotals {
    fn note_round(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.rounds.fetch_add(1, Ordering::Relaxed);
    }

    fn note_fsync(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = FSYNC_BUCKETS.iter().position(|&bound| seconds <= bound).unwrap_or(FSYNC_BUCKETS.len());
        self.fsync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
}

/// The totals of every slice writer of this process so far (see [`ProcessTotals`]).
pub fn process_totals() -> ProcessTotals {
    ProcessTotals {
        rows: TOTALS.rows.load(Ordering::Relaxed),
        bytes: TOTALS.bytes.load(Ordering::Relaxed),
        rounds: TOTALS.rounds.load(Ordering::Relaxed),
        fsyncs: TOTALS.fsyncs.load(Ordering::Relaxed),
        fsync_seconds: TOTALS.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        fsync_buckets: TOTALS.fsync_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
    }
}

/// A ticket for appended rows: wait on it to know they are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// File offset just after the rows.
    end: u64,
    /// The round that writes the rows.
    round: u64,
}

struct State {
    buffer: Vec<u8>,
    spare: Vec<u8>,
    buffer_rows: u64,
    /// Index entries of the appends in `buffer`.
    index: Vec<u8>,
    /// Offset in the file just after the last appended byte.
    appended: u64,
    /// Highest offset a writer is waiting for.
    wanted: u64,
    oldest_unsynced: Option<Instant>,
    /// Rounds taken from the buffer so far.
    rounds_started: u64,
    /// End offset and round of the last completed `write`.
    written: u64,
    written_round: u64,
    /// Highest offset a flusher has started to `fdatasync`.
    claimed: u64,
    /// Written rounds not yet durable: (round, end offset, rows up to there).
    pending: VecDeque<(u64, u64, u64)>,
    rows_written: u64,
    writer_idle: bool,
    flushers: usize,
    flushers_busy: usize,
    closed: bool,
    /// The writer thread has written everything and left; flushers finish up.
    writer_done: bool,
    /// After a failure: the length the file was cut back to (the last synced
    /// offset), so that no row stays in it whose writer was not told it is stored.
    cut_to: Option<u64>,
    stats: WriterStats,
}

struct Shared {
    path: PathBuf,
    settings: SyncSettings,
    file: File,
    index_file: File,
    state: Mutex<State>,
    /// Wakes the writer thread.
    work: Condvar,
    /// Wakes the flushers.
    flush_work: Condvar,
    /// Offset up to which the file is durable (`cache` mode: written).
    synced: AtomicU64,
    rounds_done: AtomicU64,
    slots: [AtomicU32; SLOTS],
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// The failure was a full file system (or quota): see `WriterError::DiskFull`.
    disk_full: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// An open slice file.
pub struct SliceWriter {
    shared: Arc<Shared>,
}

/// Result of reopening a slice after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub rows: u64,
    pub bytes: u64,
    /// Bytes of a torn trailing row that were cut off.
    pub truncated: u64,
}

impl SliceWriter {
    /// Opens (creating when missing, with its directories) a slice for appending.
    /// An existing file is recovered first: a torn trailing row is cut off.
    pub fn open(path: impl AsRef<Path>, settings: SyncSettings) -> Result<(SliceWriter, Recovered), WriterError> {
        let path = path.as_ref().to_path_buf();
        let display = path.display().to_string();
        let io = |source| WriterError::Io { path: display.clone(), source };
        let existed = path.exists();
        if !existed {
            if let Some(parent) = path.parent() {
                create_dir_durable(parent).map_err(io)?;
            }
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).mode(0o644).open(&path).map_err(io)?;
        let index_path = index_path(&path);
        let mut index_file =
            OpenOptions::new().read(true).append(true).create(true).mode(0o644).open(&index_path).map_err(io)?;
        let recovered = if existed {
            let recovered = recover_file(&mut file).map_err(io)?;
            recover_index(&mut index_file, recovered.bytes).map_err(io)?;
            recovered
        } else {
            Recovered { rows: 0, bytes: 0, truncated: 0 }
        };
        if !existed {
            file.sync_all().map_err(io)?;
            if let Some(parent) = path.parent() {
                sync_dir(parent).map_err(io)?;
            }
        }
        let stats = WriterStats {
            rows: recovered.rows,
            bytes: recovered.bytes,
            synced_rows: recovered.rows,
            synced_bytes: recovered.bytes,
            ..Default::default()
        };
        let disk = settings.mode == SyncMode::Disk;
        let shared = Arc::new(Shared {
            path,
            settings,
            file,
            index_file,
            state: Mutex::new(State {
                buffer: Vec::with_capacity(64 << 10),
                spare: Vec::with_capacity(64 << 10),
                buffer_rows: 0,
                index: Vec::new(),
                appended: recovered.bytes,
                wanted: 0,
                oldest_unsynced: None,
                rounds_started: 0,
                written: recovered.bytes,
                written_round: 0,
                claimed: recovered.bytes,
                pending: VecDeque::new(),
                rows_written: recovered.rows,
                writer_idle: false,
                flushers: 0,
                flushers_busy: 0,
                closed: false,
                writer_done: false,
                cut_to: None,
                stats,
            }),
            work: Condvar::new(),
            flush_work: Condvar::new(),
            synced: AtomicU64::new(recovered.bytes),
            rounds_done: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            disk_full: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        Shared::spawn(&shared, "slice-writer", Shared::run_writer).map_err(io)?;
        if disk {
            shared.state.lock().flushers = 1;
            Shared::spawn(&shared, "slice-flusher", Shared::run_flusher).map_err(io)?;
        }
        Ok((SliceWriter { shared }, recovered))
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.shared.settings
    }

    /// Appends encoded rows (whole rows only) and, when the settings say so,
    /// waits until they are synced.
    pub fn write(&self, data: &[u8], rows: u64, record_time_ns: i64) -> Result<(), WriterError> {
        let (ticket, must_wait) = self.append(data, rows, record_time_ns)?;
        if self.shared.settings.wait || must_wait {
            self.wait(ticket)?;
        }
        Ok(())
    }

    /// Appends encoded rows without waiting. The second value is true when the
    /// caller must wait anyway because too much data is buffered.
    pub fn append(&self, data: &[u8], rows: u64, record_time_ns: i64) -> Result<(Ticket, bool), WriterError> {
        self.shared.check_failed()?;
        let settings = &self.shared.settings;
        let mut state = self.shared.state.lock();
        if state.closed {
            return Err(WriterError::Closed { path: self.shared.path.display().to_string() });
        }
        state.buffer.extend_from_slice(data);
        state.buffer_rows += rows;
        state.appended += data.len() as u64;
        if !data.is_empty() {
            // An append without rows has no place in the receive order: an entry
            // that does not move forward would end the part's indexed appends.
            let entry = slice_index::encode_entry(state.appended, record_time_ns);
            state.index.extend_from_slice(&entry);
        }
        let ticket = Ticket { end: state.appended, round: state.rounds_started + 1 };
        let stats = &mut state.stats;
        stats.rows += rows;
        stats.bytes += data.len() as u64;
        if rows > 0 {
            stats.first_record_ns.get_or_insert(record_time_ns);
            stats.last_record_ns = Some(stats.last_record_ns.map_or(record_time_ns, |t| t.max(record_time_ns)));
        }
        if state.oldest_unsynced.is_none() {
            state.oldest_unsynced = Some(Instant::now());
        }
        let must_wait = state.buffer.len() > MAX_BUFFERED_BYTES;
        let will_wait = settings.wait || must_wait;
        if will_wait {
            state.wanted = state.wanted.max(ticket.end);
        }
        let triggered = will_wait
            || state.buffer_rows >= settings.count_trigger
            || state.buffer.len() as u64 >= settings.bytes_trigger;
        // The first append after a round also wakes the thread, which then arms
        // the interval timer.
        let wake = state.writer_idle && (triggered || state.buffer.len() == data.len());
        drop(state);
        if wake {
            self.shared.work.notify_one();
        }
        Ok((ticket, must_wait))
    }

    /// Blocks until everything up to the ticket is synced (in `cache` mode:
    /// written to the OS).
    pub fn wait(&self, ticket: Ticket) -> Result<(), WriterError> {
        if self.shared.synced.load(Ordering::Acquire) < ticket.end {
            // A ticket from `append` without `wait` may not be wanted yet.
            let mut state = self.shared.state.lock();
            if state.wanted < ticket.end {
                state.wanted = ticket.end;
                let idle = state.writer_idle;
                drop(state);
                if idle {
                    self.shared.work.notify_one();
                }
            }
        }
        let slot = &self.shared.slots[(ticket.round % SLOTS as u64) as usize];
        loop {
            let seen = slot.load(Ordering::Acquire);
            if self.shared.synced.load(Ordering::Acquire) >= ticket.end {
                return Ok(());
            }
            self.shared.check_failed()?;
            atomic_wait::wait(slot, seen);
        }
    }

    /// Whether the rows of the ticket are synced (never blocks).
    pub fn is_synced(&self, ticket: Ticket) -> bool {
        self.shared.synced.load(Ordering::Acquire) >= ticket.end
    }

    /// Syncs everything appended so far.
    pub fn flush(&self) -> Result<(), WriterError> {
        let ticket = {
            let state = self.shared.state.lock();
            // Rows still in the buffer go with the next round; the rest is on its way.
            let round = if state.buffer.is_empty() { state.written_round } else { state.rounds_started + 1 };
            Ticket { end: state.appended, round }
        };
        self.wait(ticket)
    }

    pub fn stats(&self) -> WriterStats {
        self.shared.state.lock().stats
    }

    /// Syncs the remaining rows and closes the file. Later writes fail with
    /// `WriterError::Closed`. Closing twice is fine.
    pub fn close(&self) -> Result<WriterStats, WriterError> {
        self.shared.state.lock().closed = true;
        self.shared.work.notify_all();
        self.shared.flush_work.notify_all();
        // The writer thread may start flushers until it leaves: join until none are left.
        loop {
            let threads = std::mem::take(&mut *self.shared.threads.lock());
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
        self.shared.check_failed()?;
        Ok(self.stats())
    }

    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().closed
    }
}

impl Drop for SliceWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    fn check_failed(&self) -> Result<(), WriterError> {
        if self.failed.load(Ordering::Acquire) {
            let path = self.path.display().to_string();
            if self.disk_full.load(Ordering::Acquire) {
                return Err(WriterError::DiskFull { path });
            }
            let message = self.failure.lock().clone().unwrap_or_default();
            return Err(WriterError::Failed { path, message });
        }
        Ok(())
    }

    fn disk(&self) -> bool {
        self.settings.mode == SyncMode::Disk
    }

    fn spawn(shared: &Arc<Shared>, name: &str, body: fn(&Arc<Shared>)) -> std::io::Result<()> {
        let worker = Arc::clone(shared);
        let handle =
            std::thread::Builder::new().name(name.into()).stack_size(256 << 10).spawn(move || body(&worker))?;
        shared.threads.lock().push(handle);
        Ok(())
    }

    /// Takes rounds from the buffer and writes them to the file.
    fn run_writer(self: &Arc<Self>) {
        let mut state = self.state.lock();
        loop {
            // Wait until there is something to write, a reason to write it, and
            // (disk mode) no written round still waiting for a flusher: rows
            // that arrive meanwhile make the next round bigger instead.
            loop {
                if self.failed.load(Ordering::Acquire) {
                    return;
                }
                let flusher_behind = self.disk() && state.written > state.claimed;
                if !state.buffer.is_empty() && !flusher_behind {
                    let due = state.closed
                        || state.wanted > state.written
                        || state.buffer_rows >= self.settings.count_trigger
                        || state.buffer.len() as u64 >= self.settings.bytes_trigger
                        || state.oldest_unsynced.is_some_and(|t| t.elapsed() >= self.settings.interval_trigger);
                    if due {
                        break;
                    }
                } else if state.buffer.is_empty() && state.closed {
                    state.writer_done = true;
                    drop(state);
                    self.flush_work.notify_all();
                    return;
                }
                state.writer_idle = true;
                match state.oldest_unsynced.filter(|_| !state.buffer.is_empty() && !flusher_behind) {
                    Some(oldest) => {
                        let deadline = oldest + self.settings.interval_trigger;
                        self.work.wait_until(&mut state, deadline);
                    }
                    None => self.work.wait(&mut state),
                }
                state.writer_idle = false;
            }

            let spare = std::mem::take(&mut state.spare);
            let mut batch = std::mem::replace(&mut state.buffer, spare);
            let index = std::mem::take(&mut state.index);
            let round_rows = std::mem::take(&mut state.buffer_rows);
            state.rows_written += round_rows;
            let rows_written = state.rows_written;
            let end = state.appended;
            state.oldest_unsynced = None;
            state.rounds_started += 1;
            let round = state.rounds_started;
            drop(state);

            // The index follows its data: an entry never points past what was written.
            let result = (&self.file).write_all(&batch).and_then(|()| (&self.index_file).write_all(&index));

            state = self.state.lock();
            if let Err(e) = result {
                drop(state);
                self.fail(format!("write failed: {e}"), Some(&e));
                return;
            }
            if let Some(length) = state.cut_to {
                // A flusher failed while this round was being written: the round
                // landed after the cut and must not stay either.
                self.cut(length);
                return;
            }
            state.stats.syncs += 1;
            TOTALS.note_round(round_rows, batch.len() as u64);
            batch.clear();
            if batch.capacity() <= 4 * MAX_BUFFERED_BYTES {
                state.spare = batch;
            }
            state.written = end;
            state.written_round = round;
            state.pending.push_back((round, end, rows_written));
            if self.disk() {
                if state.flushers_busy == state.flushers && state.flushers < MAX_FLUSHERS {
                    state.flushers += 1;
                    if let Err(e) = Shared::spawn(self, "slice-flusher", Shared::run_flusher) {
                        state.flushers -= 1;
                        log_spawn_failure(&e);
                    }
                }
                self.flush_work.notify_one();
            } else {
                // Cache mode: written is all there is to do.
                state = self.complete(state, round, end);
            }
        }
    }

    /// Makes written rounds durable with `fdatasync`; a flush covers everything
    /// written before it starts.
    fn run_flusher(self: &Arc<Self>) {
        let mut state = self.state.lock();
        loop {
            if self.failed.load(Ordering::Acquire) {
                return;
            }
            if state.written > state.claimed {
                let (end, round) = (state.written, state.written_round);
                state.claimed = end;
                state.flushers_busy += 1;
                drop(state);
                // The writer may start the next round now that this one is claimed.
                self.work.notify_one();
                let started = Instant::now();
                let result = self.file.sync_data();
                if result.is_ok() {
                    TOTALS.note_fsync(started.elapsed());
                }
                state = self.state.lock();
                state.flushers_busy -= 1;
                if let Err(e) = result {
                    drop(state);
                    self.fail(format!("fdatasync failed: {e}"), Some(&e));
                    return;
                }
                state = self.complete(state, round, end);
                continue;
            }
            if state.writer_done {
                state.flushers -= 1;
                if state.flushers == 0 {
                    // The last flusher out also makes the file's metadata durable.
                    drop(state);
                    if let Err(e) = self.file.sync_all() {
                        self.fail(format!("final sync failed: {e}"), Some(&e));
                    }
                }
                return;
            }
            self.flush_work.wait(&mut state);
        }
    }

    /// Records that everything up to `end` (round `round`) is durable and wakes
    /// the writers of every round that completes with it.
    fn complete<'a>(&'a self, mut state: MutexGuard<'a, State>, round: u64, end: u64) -> MutexGuard<'a, State> {
        if state.cut_to.is_some() {
            // Failed meanwhile: the file was cut back, nothing more is acknowledged.
            return state;
        }
        while let Some(&(r, e, rows)) = state.pending.front() {
            if r > round {
                break;
            }
            state.pending.pop_front();
            state.stats.synced_rows = rows;
            state.stats.synced_bytes = e;
        }
        if self.synced.fetch_max(end, Ordering::AcqRel) >= end {
            return state; // an overlapping flush got there first
        }
        let previous = self.rounds_done.fetch_max(round, Ordering::AcqRel);
        drop(state);
        for r in previous + 1..=round {
            let slot = &self.slots[(r % SLOTS as u64) as usize];
            slot.fetch_add(1, Ordering::Release);
            atomic_wait::wake_all(slot);
        }
        self.state.lock()
    }

    /// Stops the writer after a failed write or sync. The file is cut back to the
    /// last synced offset: rows past it were not acknowledged (their writers get
    /// the error), and a new writer of the slice (after the disk has space again)
    /// must not find a torn row or rows that clients were told failed.
    fn fail(&self, message: String, error: Option<&std::io::Error>) {
        let mut state = self.state.lock();
        let first = state.cut_to.is_none();
        let length = *state.cut_to.get_or_insert_with(|| self.synced.load(Ordering::Acquire));
        self.cut(length);
        if first {
            let disk_full = error.is_some_and(is_disk_full);
            // Answers to clients name no path; the log does, once.
            eprintln!(
                "pushstream: slice {}: {message}; it accepts no more rows (cut back to {length} bytes){}",
                self.path.display(),
                if disk_full { ", the disk is full" } else { "" }
            );
            *self.failure.lock() = Some(message);
            self.disk_full.store(disk_full, Ordering::Release);
            self.failed.store(true, Ordering::Release);
        }
        // Nothing more is accepted.
        state.closed = true;
        drop(state);
        self.work.notify_all();
        self.flush_work.notify_all();
        for slot in &self.slots {
            slot.fetch_add(1, Ordering::Release);
            atomic_wait::wake_all(slot);
        }
    }
}

impl Shared {
    /// Cuts the slice and its index back to `length` bytes of data (under the state lock).
    fn cut(&self, length: u64) {
        let result = self.file.set_len(length).and_then(|()| {
            let mut index = Vec::new();
            let mut offset = 0u64;
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = self.index_file.read_at(&mut chunk, offset)?;
                if n == 0 {
                    break;
                }
                index.extend_from_slice(&chunk[..n]);
                offset += n as u64;
            }
            self.index_file.set_len(kept_index_bytes(&index, length))
        });
        if let Err(e) = result {
            eprintln!("pushstream: slice {}: cannot cut it back after a failure: {e}", self.path.display());
        }
    }
}

/// ENOSPC or EDQUOT: a condition that goes away when space is freed.
fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// Bytes of an index whose entries end at or before `data_len` (whole entries only).
fn kept_index_bytes(index: &[u8], data_len: u64) -> u64 {
    (slice_index::entries(index).take_while(|&(end, _)| end <= data_len).count() * slice_index::ENTRY_BYTES) as u64
}

/// Running with fewer flushers is slower but still correct.
fn log_spawn_failure(error: &std::io::Error) {
    eprintln!("pushstream: could not start another slice flusher thread: {error}");
}

/// Cuts a torn trailing row off a slice file. Returns what is left.
fn recover_file(file: &mut File) -> std::io::Result<Recovered> {
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let (valid, rows) = csv::complete_rows(&data);
    let truncated = (data.len() - valid) as u64;
    if truncated > 0 {
        file.set_len(valid as u64)?;
        file.sync_all()?;
    }
    Ok(Recovered { rows, bytes: valid as u64, truncated })
}

/// The index file of a slice: `slice-x.csv` → `slice-x.idx`.
pub fn index_path(path: &Path) -> PathBuf {
    path.with_extension("idx")
}

/// Drops index entries past the recovered data (and a torn trailing entry).
fn recover_index(file: &mut File, data_len: u64) -> std::io::Result<()> {
    let mut index = Vec::new();
    file.read_to_end(&mut index)?;
    let keep = kept_index_bytes(&index, data_len);
    if keep != index.len() as u64 {
        file.set_len(keep)?;
    }
    Ok(())
}

/// Recovers a slice file in place (see [`SliceWriter::open`]) without opening it for writing.
pub fn recover_slice(path: impl AsRef<Path>) -> Result<Recovered, WriterError> {
    let path = path.as_ref();
    let io = |source| WriterError::Io { path: path.display().to_string(), source };
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    let recovered = recover_file(&mut file).map_err(io)?;
    if let Ok(mut index) = OpenOptions::new().read(true).write(true).open(index_path(path)) {
        recover_index(&mut index, recovered.bytes).map_err(io)?;
    }
    Ok(recovered)
}

/// `mkdir -p` that fsyncs every parent whose entries change, so the new
/// directories survive a power loss.
pub fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// fsync of a directory: makes created, renamed or removed entries durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(wait: bool) -> SyncSettings {
        SyncSettings { wait, ..SyncSettings::default() }
    }

    #[test]
    fn writes_and_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/slice.csv");
        let (writer, recovered) = SliceWriter::open(&path, settings(true)).unwrap();
        assert_eq!(recovered.rows, 0);
        writer.write(b"\"1\"\n\"2\"\n", 2, 10).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"\"1\"\n\"2\"\n");
        writer.write(b"\"3\"\n", 1, 5).unwrap();
        let stats = writer.close().unwrap();
        assert_eq!(
            (stats.rows, stats.bytes, stats.synced_rows, stats.first_record_ns, stats.last_record_ns),
            (3, 12, 3, Some(10), Some(10))
        );
        assert!(matches!(writer.write(b"\"4\"\n", 1, 0), Err(WriterError::Closed { .. })));
    }

    #[test]
    fn process_totals_count_rounds_and_fsyncs() {
        // Other tests write in parallel: the totals only grow by at least this test's share.
        let before = process_totals();
        let dir = tempfile::tempdir().unwrap();
        let (writer, _) = SliceWriter::open(dir.path().join("slice.csv"), settings(true)).unwrap();
        writer.write(b"\"1\"\n\"2\"\n", 2, 0).unwrap();
        writer.write(b"\"3\"\n", 1, 0).unwrap();
        writer.close().unwrap();
        let after = process_totals();
        assert!(after.rows >= before.rows + 3);
        assert!(after.bytes >= before.bytes + 12);
        assert!(after.rounds >= before.rounds + 2);
        assert!(after.fsyncs >= before.fsyncs + 2);
        assert_eq!(after.fsync_buckets.len(), FSYNC_BUCKETS.len() + 1);
        assert!(after.fsync_buckets.iter().sum::<u64>() >= after.fsyncs);
    }

    #[test]
    fn non_waiting_rows_sync_on_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice.csv");
        let s = SyncSettings { wait: false, interval_trigger: Duration::from_millis(20), ..SyncSettings::default() };
        let (writer, _) = SliceWriter::open(&path, s).unwrap();
        writer.write(b"\"x\"\n", 1, 0).unwrap();
        let start = Instant::now();
        while writer.stats().synced_rows < 1 {
            assert!(start.elapsed() < Duration::from_secs(5), "interval trigger never fired");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"\"x\"\n");
    }

    #[test]
    fn non_waiting_rows_sync_on_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice.csv");
        let s = SyncSettings {
            wait: false,
            count_trigger: 3,
            interval_trigger: Duration::from_secs(3600),
            ..SyncSettings::default()
        };
        let (writer, _) = SliceWriter::open(&path, s).unwrap();
        writer.write(b"\"1\"\n\"2\"\n", 2, 0).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(writer.stats().synced_rows, 0);
        writer.write(b"\"3\"\n", 1, 0).unwrap();
        let start = Instant::now();
        while writer.stats().synced_rows < 3 {
            assert!(start.elapsed() < Duration::from_secs(5), "count trigger never fired");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn index_records_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice.csv");
        let (writer, _) = SliceWriter::open(&path, settings(true)).unwrap();
        writer.write(b"\"a\"\n\"b\"\n", 2, 100).unwrap();
        writer.write(b"", 0, 75).unwrap();
        writer.write(b"\"c\"\n", 1, 50).unwrap();
        writer.close().unwrap();
        let index = std::fs::read(index_path(&path)).unwrap();
        let entries: Vec<(u64, i64)> = slice_index::entries(&index).collect();
        assert_eq!(entries, vec![(8, 100), (12, 50)], "an append without rows leaves no entry");
        // A torn row is cut off; so are index entries past it.
        std::fs::write(&path, b"\"a\"\n\"b").unwrap();
        recover_slice(&path).unwrap();
        assert_eq!(std::fs::read(index_path(&path)).unwrap().len(), 0);
    }

    #[test]
    fn recovers_torn_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice.csv");
        std::fs::write(&path, b"\"a\",\"b\n\"\n\"c\",\"to").unwrap();
        let (writer, recovered) = SliceWriter::open(&path, settings(true)).unwrap();
        assert_eq!(recovered, Recovered { rows: 1, bytes: 9, truncated: 7 });
        writer.write(b"\"d\"\n", 1, 0).unwrap();
        writer.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"\"a\",\"b\n\"\n\"d\"\n");
    }

    #[test]
    fn many_threads_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice.csv");
        let (writer, _) = SliceWriter::open(&path, settings(true)).unwrap();
        let writer = Arc::new(writer);
        let threads: Vec<_> = (0..32)
            .map(|t| {
                let writer = Arc::clone(&writer);
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let row = format!("\"{t}\",\"{i}\"\n");
                        writer.write(row.as_bytes(), 1, 0).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        writer.close().unwrap();
        let rows = csv::parse_rows(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(rows.len(), 3200);
        for t in 0..32 {
            let mine: Vec<usize> =
                rows.iter().filter(|r| r[0] == t.to_string()).map(|r| r[1].parse().unwrap()).collect();
            assert_eq!(mine, (0..100).collect::<Vec<_>>(), "thread {t} rows out of order or missing");
        }
    }
}
