//! Writer benchmark in the setup of Keboola's published writer benchmark:
//! N concurrent writers each appending 1 KB rows and waiting until they are
//! durable (`mode=disk`, `wait=true`). Prints one JSON line of results.
//!
//! `cargo run --release --example bench_writer -- [writers] [row_bytes] [seconds] [disk|cache] [dir]`
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushstream_core::writer::{SliceWriter, SyncMode, SyncSettings};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let writers: usize = args.get(1).map_or(1000, |a| a.parse().unwrap());
    let row_bytes: usize = args.get(2).map_or(1024, |a| a.parse().unwrap());
    let seconds: f64 = args.get(3).map_or(5.0, |a| a.parse().unwrap());
    let mode = SyncMode::parse(args.get(4).map_or("disk", String::as_str)).unwrap();
    let dir = args.get(5).map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("bench-writer-{}.csv", std::process::id()));

    let settings = SyncSettings { mode, wait: true, ..SyncSettings::default() };
    let (writer, _) = SliceWriter::open(&path, settings).unwrap();
    let writer = Arc::new(writer);
    // A row of `row_bytes` bytes: one quoted field of filler and the newline.
    let row: Vec<u8> = {
        let mut r = vec![b'"'];
        r.extend(std::iter::repeat_n(b'x', row_bytes - 3));
        r.extend_from_slice(b"\"\n");
        r
    };
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let latency_samples = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|i| {
            let (writer, stop, total, row, samples) =
                (writer.clone(), stop.clone(), total.clone(), row.clone(), latency_samples.clone());
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    let mut n = 0u64;
                    let mut local = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        writer.write(&row, 1, 0).unwrap();
                        if i % 10 == 0 && n % 16 == 0 {
                            local.push(t.elapsed());
                        }
                        n += 1;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                    samples.lock().extend(local);
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = writer.close().unwrap();
    let rows = total.load(Ordering::Relaxed);
    assert_eq!(stats.synced_rows, rows);
    let mut lat = latency_samples.lock().clone();
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "{{\"writers\": {writers}, \"row_bytes\": {row_bytes}, \"mode\": \"{}\", \"seconds\": {elapsed:.2}, \"rows\": {rows}, \"rows_per_s\": {:.0}, \"mb_per_s\": {:.1}, \"syncs\": {}, \"rows_per_sync\": {:.1}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}}}",
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
