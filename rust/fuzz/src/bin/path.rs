//! `cargo afl fuzz` target: see `pushstream_fuzz::path`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::path(data);
    });
}
