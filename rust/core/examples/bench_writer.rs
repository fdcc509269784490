//! Writer benchmark in the setup of Keboola's published writer benchmark:
//! N concurrent writers each appending 1 KB rows and waiting until each row is
//! durable before writing the next (`mode=disk`, `wait=true`). Prints one JSON
//! line of results.
//!
//! Two ways to run the writers:
//! - `tasks`: N logical writers multiplexed on a few OS threads, the way Go
//!   runs goroutines (Keboola's benchmark is Go): each worker thread appends
//!   the next row of every writer whose previous row is durable, then blocks on
//!   the oldest outstanding row.
//! - `threads`: one OS thread per writer (context switches dominate on 2 cores).
//!
//! `cargo run --release --example bench_writer -- [writers] [row_bytes] [seconds] [disk|cache] [tasks|threads] [dir]`
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushstream_core::writer::{SliceWriter, SyncMode, SyncSettings, Ticket};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let writers: usize = args.get(1).map_or(1000, |a| a.parse().unwrap());
    let row_bytes: usize = args.get(2).map_or(1024, |a| a.parse().unwrap());
    let seconds: f64 = args.get(3).map_or(5.0, |a| a.parse().unwrap());
    let mode = SyncMode::parse(args.get(4).map_or("disk", String::as_str)).unwrap();
    let style = args.get(5).map_or("tasks", String::as_str).to_owned();
    let dir = args.get(6).map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("bench-writer-{}.csv", std::process::id()));

    let settings = SyncSettings { mode, wait: true, ..SyncSettings::default() };
    let (writer, _) = SliceWriter::open(&path, settings).unwrap();
    let writer = Arc::new(writer);
    // A row of `row_bytes` bytes: one quoted field of filler and the newline.
    let row: Arc<Vec<u8>> = Arc::new({
        let mut r = vec![b'"'];
        r.extend(std::iter::repeat_n(b'x', row_bytes - 3));
        r.extend_from_slice(b"\"\n");
        r
    });
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let os_threads = if style == "threads" { writers } else { writers.min(4) };
    let start = Instant::now();
    let handles: Vec<_> = (0..os_threads)
        .map(|t| {
            let (writer, stop, total, row, latencies) =
                (writer.clone(), stop.clone(), total.clone(), row.clone(), latencies.clone());
            // Writers of this thread: every `os_threads`-th of all writers.
            let mine = (t..writers).step_by(os_threads).count();
            std::thread::Builder::new()
                .stack_size(128 << 10)
                .spawn(move || {
                    let mut in_flight: std::collections::VecDeque<(Ticket, Instant)> = Default::default();
                    let mut ready = mine;
                    let mut done = 0u64;
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..ready {
                            let (ticket, _) = writer.append(&row, 1, 0).unwrap();
                            in_flight.push_back((ticket, Instant::now()));
                        }
                        ready = 0;
                        let (oldest, _) = *in_flight.front().unwrap();
                        writer.wait(oldest).unwrap();
                        while let Some((ticket, at)) = in_flight.front().copied() {
                            if !writer.is_synced(ticket) {
                                break;
                            }
                            in_flight.pop_front();
                            if done % 64 == 0 {
                                samples.push(at.elapsed());
                            }
                            done += 1;
                            ready += 1;
                        }
                    }
                    // Rows still in flight are durable once the writer closes; count them too.
                    total.fetch_add(done + in_flight.len() as u64, Ordering::Relaxed);
                    latencies.lock().extend(samples);
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let stats = writer.close().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let rows = total.load(Ordering::Relaxed);
    assert_eq!(stats.synced_rows, rows);
    let mut lat = latencies.lock().clone();
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "{{\"writers\": {writers}, \"style\": \"{style}\", \"os_threads\": {os_threads}, \"row_bytes\": {row_bytes}, \"mode\": \"{}\", \"seconds\": {elapsed:.2}, \"rows\": {rows}, \"rows_per_s\": {:.0}, \"mb_per_s\": {:.1}, \"syncs\": {}, \"rows_per_sync\": {:.1}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}}}",
        mode.as_str(),
        rows as f64 / elapsed,
        rows as f64 * row_bytes as f64 / elapsed / 1e6,
        stats.syncs,
        rows as f64 / stats.syncs.max(1) as f64,
        pct(0.5),
        pct(0.99),
    );
    std::fs::remove_file(&path).ok();
}
