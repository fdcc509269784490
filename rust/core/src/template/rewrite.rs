//! The one change made to a template's source before it is prepared.
//!
//! A comprehension with several `for` clauses makes the engine reserve room
//! for the product of the array lengths up front: two body arrays of 100,000
//! elements ask for 240 GB, and a failed allocation aborts the process. Its
//! inner iterations also call no Jsonnet function, so the time budget (which
//! trips on calls) could not stop them. Every `for` clause after the first of
//! a comprehension is therefore preceded by `if <TICK>()`: an `if` clause
//! resets the reservation to the length of one array, and the call lets the
//! budget interrupt each outer iteration. For the same reason the last clause
//! of every comprehension is followed by `if <TICK>()`, so that its innermost
//! iterations (`[s[i] for i in std.range(0, 999999)]`, which calls no function)
//! are interrupted too. The result is the same.

use jrsonnet_lexer::{lex, SyntaxKind};

/// The global called by inserted clauses; always `true`.
pub(super) const TICK: &str = "__pushstream_tick";

/// A template source as prepared, with the positions of inserted text.
pub(super) struct Rewritten {
    pub(super) source: String,
    /// (offset in the rewritten source, length) of each insertion, in order.
    insertions: Vec<(usize, usize)>,
}

impl Rewritten {
    /// Maps an offset in the rewritten source back to the original source.
    pub(super) fn original_offset(&self, offset: usize) -> usize {
        let mut shift = 0;
        for &(at, length) in &self.insertions {
            if at >= offset {
                break;
            }
            shift += length.min(offset - at);
        }
        offset - shift
    }
}

/// Byte offset of the first `import`, `importstr` or `importbin` in `source`:
/// imports are disabled, so a template using one is rejected up front.
pub(super) fn first_import(source: &str) -> Option<usize> {
    lex(source)
        .iter()
        .find(|l| matches!(l.kind, SyntaxKind::IMPORT_KW | SyntaxKind::IMPORTSTR_KW | SyntaxKind::IMPORTBIN_KW))
        .map(|l| l.range.0 as usize)
}

pub(super) fn rewrite(source: &str) -> Rewritten {
    let between = format!("if {TICK}() ");
    let last_clause = format!(" if {TICK}()");
    // Per open bracket: whether a `for` was seen directly inside it.
    let mut seen_for: Vec<bool> = vec![false];
    let mut cuts: Vec<(usize, &str)> = Vec::new();
    for lexeme in lex(source) {
        match lexeme.kind {
            SyntaxKind::L_BRACK | SyntaxKind::L_BRACE | SyntaxKind::L_PAREN => seen_for.push(false),
            SyntaxKind::R_BRACK | SyntaxKind::R_BRACE | SyntaxKind::R_PAREN if seen_for.len() > 1 => {
                // The end of a comprehension: its innermost iterations tick too.
                if seen_for.pop() == Some(true) && lexeme.kind != SyntaxKind::R_PAREN {
                    cuts.push((lexeme.range.0 as usize, &last_clause));
                }
            }
            SyntaxKind::FOR_KW => {
                let seen = seen_for.last_mut().expect("never empty");
                if *seen {
                    cuts.push((lexeme.range.0 as usize, &between));
                }
                *seen = true;
            }
            _ => {}
        }
    }
    let mut out = String::with_capacity(source.len() + cuts.len() * between.len());
    let mut insertions = Vec::with_capacity(cuts.len());
    let mut last = 0;
    for (cut, clause) in cuts {
        out.push_str(&source[last..cut]);
        insertions.push((out.len(), clause.len()));
        out.push_str(clause);
        last = cut;
    }
    out.push_str(&source[last..]);
    Rewritten { source: out, insertions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_between_for_clauses() {
        let r = rewrite("[[x, y] for x in a for y in b if y > 1 for z in [w for w in c]] // for");
        assert_eq!(
            r.source,
            "[[x, y] for x in a if __pushstream_tick() for y in b if y > 1 if __pushstream_tick() for z in [w for w in c if __pushstream_tick()] if __pushstream_tick()] // for"
        );
        let at = r.source.find("for y").unwrap();
        assert_eq!(r.original_offset(at), "[[x, y] for x in a ".len());
        assert_eq!(r.original_offset(3), 3);
        let r = rewrite("{[k]: 1 for k in a for j in b} + {s: 'for x in y for z'} + [1 for a in b]");
        assert_eq!(
            r.source,
            "{[k]: 1 for k in a if __pushstream_tick() for j in b if __pushstream_tick()} + {s: 'for x in y for z'} + [1 for a in b if __pushstream_tick()]"
        );
    }
}
