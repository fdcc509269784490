//! `cargo afl fuzz` target: see `pushstream_fuzz::batch`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::batch(data);
    });
}
