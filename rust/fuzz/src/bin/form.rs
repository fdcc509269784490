//! `cargo afl fuzz` target: see `pushstream_fuzz::form_body`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::form_body(data);
    });
}
