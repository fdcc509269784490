//! Every target over its seed corpus and over inputs mutated from it (a fixed
//! pseudo-random sequence): the same checks as the fuzzer, without it, so that
//! `cargo test` catches a regression on the inputs the corpus holds.

use std::path::Path;

fn mutate(seed: &mut u64, input: &[u8]) -> Vec<u8> {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let mut out = input.to_vec();
    for _ in 0..1 + next() % 4 {
        let at = if out.is_empty() { 0 } else { (next() % out.len() as u64) as usize };
        match next() % 4 {
            0 if !out.is_empty() => out[at] = next() as u8,
            1 => out.insert(at, b"[{\"]}\\,\n:0e.-"[(next() % 14) as usize]),
            2 if !out.is_empty() => {
                out.remove(at);
            }
            _ => {
                let end = (at + (next() % 16) as usize).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
        }
    }
    out
}

#[test]
fn targets_hold_on_seeds_and_mutations() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (name, target) in pushstream_fuzz::TARGETS {
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        for entry in std::fs::read_dir(seeds.join(name)).unwrap() {
            corpus.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(!corpus.is_empty(), "no seeds for {name}");
        let rounds = if *name == "template" { 200 } else { 5000 };
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for input in &corpus {
            target(input);
        }
        for i in 0..rounds {
            let input = mutate(&mut state, &corpus[i % corpus.len()]);
            target(&input);
        }
    }
    pushstream_fuzz::json_body(&pushstream_fuzz::deep_json(100_000));
}
