//! Durable local slices: append-only CSV files with eager group commit.
//!
//! Writers append whole rows to an in-memory buffer under a short lock. One sync
//! thread per slice writes the buffer out with a single `write` and, in `disk`
//! mode, one `fdatasync`. Group commit is eager: as soon as a writer waits and
//! no sync is in flight, a sync starts; writers that arrive while it runs share
//! the next one. The count / bytes / interval triggers only bound how long rows
//! of writers that do *not* wait may stay in memory.
//!
//! Waiters sleep on a futex word bumped after every sync, so one sync wakes all
//! of them at once without any lock hand-off between them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::csv;
use crate::error::WriterError;

/// Above this many buffered bytes an append waits for the sync, whatever the
/// settings say, so a slow disk slows writers down instead of growing memory.
const MAX_BUFFERED_BYTES: usize = 64 << 20;

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
    /// Number of write (+ sync) rounds so far: rows per round shows the group commit at work.
    pub syncs: u64,
    /// Receive time of the first / last row written since open (ns since epoch).
    pub first_record_ns: Option<i64>,
    pub last_record_ns: Option<i64>,
}

/// A ticket for appended rows: wait on it to know they are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// File offset just after the rows.
    end: u64,
    /// The sync round that takes the rows to disk.
    round: u64,
}

struct State {
    buffer: Vec<u8>,
    spare: Vec<u8>,
    buffer_rows: u64,
    /// Offset in the file just after the last appended byte.
    appended: u64,
    /// Highest offset a writer is waiting for.
    wanted: u64,
    oldest_unsynced: Option<Instant>,
    /// Sync rounds taken so far (the round in flight included).
    rounds_started: u64,
    sync_idle: bool,
    closed: bool,
    stats: WriterStats,
}

struct Shared {
    path: PathBuf,
    settings: SyncSettings,
    state: Mutex<State>,
    work: Condvar,
    /// Offset up to which the file is synced.
    synced: AtomicU64,
    /// Futex words, bumped when a round of that parity completes (both on
    /// failure). Waiters for the next round sleep on the other word, so a
    /// completing round wakes exactly the writers it synced.
    slots: [AtomicU32; 2],
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
}

/// An open slice file.
pub struct SliceWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
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
        let recovered =
            if existed { recover_file(&mut file).map_err(io)? } else { Recovered { rows: 0, bytes: 0, truncated: 0 } };
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
        let shared = Arc::new(Shared {
            path,
            settings,
            state: Mutex::new(State {
                buffer: Vec::with_capacity(64 << 10),
                spare: Vec::with_capacity(64 << 10),
                buffer_rows: 0,
                appended: recovered.bytes,
                wanted: 0,
                oldest_unsynced: None,
                rounds_started: 0,
                sync_idle: false,
                closed: false,
                stats,
            }),
            work: Condvar::new(),
            synced: AtomicU64::new(recovered.bytes),
            slots: [AtomicU32::new(0), AtomicU32::new(0)],
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        let worker = Arc::clone(&shared);
        let thread =
            std::thread::Builder::new().name("slice-sync".into()).spawn(move || worker.run(file)).map_err(io)?;
        Ok((SliceWriter { shared, thread: Mutex::new(Some(thread)) }, recovered))
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
        // The first append after a sync also wakes the thread, which then arms
        // the interval timer.
        let wake = state.sync_idle && (triggered || state.buffer.len() == data.len());
        drop(state);
        if wake {
            self.shared.work.notify_one();
        }
        Ok((ticket, must_wait))
    }

    /// Blocks until everything up to the ticket is synced (in `cache` mode:
    /// written to the OS).
    pub fn wait(&self, ticket: Ticket) -> Result<(), WriterError> {
        {
            // A ticket from `append` without `wait` may not be wanted yet.
            if self.shared.synced.load(Ordering::Acquire) < ticket.end {
                let mut state = self.shared.state.lock();
                if state.wanted < ticket.end {
                    state.wanted = ticket.end;
                    let idle = state.sync_idle;
                    drop(state);
                    if idle {
                        self.shared.work.notify_one();
                    }
                }
            }
        }
        let slot = &self.shared.slots[(ticket.round % 2) as usize];
        loop {
            let seen = slot.load(Ordering::Acquire);
            if self.shared.synced.load(Ordering::Acquire) >= ticket.end {
                return Ok(());
            }
            self.shared.check_failed()?;
            atomic_wait::wait(slot, seen);
        }
    }

    /// Syncs everything appended so far.
    pub fn flush(&self) -> Result<(), WriterError> {
        let ticket = {
            let state = self.shared.state.lock();
            // Rows still in the buffer go with the next round, others are in flight or done.
            let round = state.rounds_started + u64::from(!state.buffer.is_empty());
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
        {
            let mut state = self.shared.state.lock();
            state.closed = true;
        }
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
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
            let message = self.failure.lock().clone().unwrap_or_default();
            return Err(WriterError::Failed { path: self.path.display().to_string(), message });
        }
        Ok(())
    }

    fn run(&self, mut file: File) {
        let mut state = self.state.lock();
        loop {
            // Wait until there is something to sync and a reason to sync it.
            loop {
                if !state.buffer.is_empty() {
                    let due = state.closed
                        || state.wanted > self.synced.load(Ordering::Relaxed)
                        || state.buffer_rows >= self.settings.count_trigger
                        || state.buffer.len() as u64 >= self.settings.bytes_trigger
                        || state.oldest_unsynced.is_some_and(|t| t.elapsed() >= self.settings.interval_trigger);
                    if due {
                        break;
                    }
                } else if state.closed {
                    drop(state);
                    let result = if self.settings.mode == SyncMode::Disk { file.sync_all() } else { Ok(()) };
                    if let Err(e) = result {
                        self.fail(format!("final sync failed: {e}"));
                    }
                    return;
                }
                state.sync_idle = true;
                match state.oldest_unsynced.filter(|_| !state.buffer.is_empty()) {
                    Some(oldest) => {
                        let deadline = oldest + self.settings.interval_trigger;
                        self.work.wait_until(&mut state, deadline);
                    }
                    None => self.work.wait(&mut state),
                }
                state.sync_idle = false;
            }

            let spare = std::mem::take(&mut state.spare);
            let mut batch = std::mem::replace(&mut state.buffer, spare);
            let batch_rows = std::mem::take(&mut state.buffer_rows);
            let end = state.appended;
            state.oldest_unsynced = None;
            state.rounds_started += 1;
            let round = state.rounds_started;
            drop(state);

            let result = file.write_all(&batch).and_then(|()| {
                if self.settings.mode == SyncMode::Disk {
                    file.sync_data()
                } else {
                    Ok(())
                }
            });

            if let Err(e) = result {
                self.fail(format!("write failed: {e}"));
                // Rows behind this point may be torn; nothing more is accepted.
                self.state.lock().closed = true;
                return;
            }
            state = self.state.lock();
            state.stats.synced_rows += batch_rows;
            state.stats.synced_bytes += batch.len() as u64;
            state.stats.syncs += 1;
            batch.clear();
            if batch.capacity() <= 4 * MAX_BUFFERED_BYTES {
                state.spare = batch;
            }
            self.synced.store(end, Ordering::Release);
            // Wake the writers of this round without holding the lock they need next.
            drop(state);
            let slot = &self.slots[(round % 2) as usize];
            slot.fetch_add(1, Ordering::Release);
            atomic_wait::wake_all(slot);
            state = self.state.lock();
        }
    }

    fn fail(&self, message: String) {
        *self.failure.lock() = Some(message);
        self.failed.store(true, Ordering::Release);
        for slot in &self.slots {
            slot.fetch_add(1, Ordering::Release);
            atomic_wait::wake_all(slot);
        }
    }
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

/// Recovers a slice file in place (see [`SliceWriter::open`]) without opening it for writing.
pub fn recover_slice(path: impl AsRef<Path>) -> Result<Recovered, WriterError> {
    let path = path.as_ref();
    let io = |source| WriterError::Io { path: path.display().to_string(), source };
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    recover_file(&mut file).map_err(io)
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
