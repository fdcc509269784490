//! `cargo afl fuzz` target: see `pushstream_fuzz::csv_encoding`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::csv_encoding(data);
    });
}
