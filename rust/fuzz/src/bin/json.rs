//! `cargo afl fuzz` target: see `pushstream_fuzz::json_body`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::json_body(data);
    });
}
