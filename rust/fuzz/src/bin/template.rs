//! `cargo afl fuzz` target: see `pushstream_fuzz::template_evaluation`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        pushstream_fuzz::template_evaluation(data);
    });
}
