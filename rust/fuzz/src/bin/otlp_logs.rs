//! `cargo afl fuzz` target: see `pushstream_fuzz::otlp_logs`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::otlp_logs(data);
    });
}
