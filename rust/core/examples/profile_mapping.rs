//! Profiles the mapping hot path without Python: `cargo run --release --example profile_mapping`.
use std::sync::Arc;
use std::time::Instant;

use pushstream_core::{Mapping, Record, RecordContext, RecordMeta};

fn main() {
    let body = br#"{"id":12345,"event":"page_view","user":{"id":42,"name":"Jan Novak"},"url":"https://example.com/products/12345?ref=campaign-7","items":[{"sku":"SKU-1","qty":2,"price":19.99},{"sku":"B-2","qty":1,"price":5.5}],"ts":"2026-11-22T10:00:00.123Z","ua":"Mozilla/5.0 (X11; Linux x86_64) Mozilla/5.0 (X11; Linux x86_64) Mozilla/5.0 (X11; Linux x86_64) Mozilla/5.0 (X11; Linux x86_64) Mozilla/5.0 (X11; Linux x86_64) Mo"}"#;
    let meta =
        Arc::new(RecordMeta::new(vec![("Content-Type".into(), "application/json".into())], "10.0.0.1".into(), 0));
    let records: Vec<Record> = (0..100_000).map(|_| Record::new(meta.clone(), body.to_vec())).collect();
    let configs = [
        (
            "6 columns",
            r#"[{"type":"uuid","name":"id"},{"type":"datetime","name":"d"},{"type":"ip","name":"ip"},{"type":"body","name":"b"},{"type":"path","name":"u","path":"user.name"},{"type":"path","name":"s","path":"items[0].sku","rawString":true}]"#,
        ),
        ("uuid only", r#"[{"type":"uuid","name":"id"}]"#),
        ("body only", r#"[{"type":"body","name":"b"}]"#),
        ("path only", r#"[{"type":"path","name":"u","path":"user.name"}]"#),
    ];
    for (name, cols) in configs {
        let mapping = Mapping::from_json(cols).unwrap();
        // Batches of 1000 records, as the receiver hands them over.
        let mut out = Vec::with_capacity(1000 * 700);
        let mut scratch = Vec::new();
        let start = Instant::now();
        for _ in 0..5 {
            for batch in records.chunks(1000) {
                out.clear();
                for r in batch {
                    mapping.encode_row(&RecordContext::new(r.view()), &mut out, &mut scratch).unwrap();
                }
            }
        }
        let per = start.elapsed() / (5 * records.len() as u32);
        println!("{name:>10}: {per:?}/row");
    }
}
