//! The changes made to a template's source before it is prepared: check
//! points for the time budget (which trips on Jsonnet function calls).
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
//! are interrupted too. Functions that `std` calls natively
//! (`std.foldl(function(a, b) a + 1, ...)`) are not called through the
//! engine's call path, so every function body (`function(..)`, `local f(..) =`,
//! methods `f(..):`) starts with `assert <TICK>();`. The result is the same.

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
    let body_start = format!(" assert {TICK}();");
    // Per open bracket: whether a `for` was seen directly inside it.
    let mut seen_for: Vec<bool> = vec![false];
    let mut cuts: Vec<(usize, &str)> = Vec::new();
    let lexemes: Vec<_> = lex(source)
        .into_iter()
        .filter(|l| {
            !matches!(
                l.kind,
                SyntaxKind::WHITESPACE
                    | SyntaxKind::SINGLE_LINE_SLASH_COMMENT
                    | SyntaxKind::SINGLE_LINE_HASH_COMMENT
                    | SyntaxKind::MULTI_LINE_COMMENT
            )
        })
        .collect();
    // Per open parenthesis: the token before it (`function`, or the name of a
    // bound function or method), when that may make it a parameter list.
    let mut parens: Vec<Option<SyntaxKind>> = Vec::new();
    for (i, lexeme) in lexemes.iter().enumerate() {
        let kind_at = |j: usize| lexemes.get(j).map(|l| l.kind);
        match lexeme.kind {
            SyntaxKind::L_PAREN => {
                let before = i.checked_sub(1).and_then(kind_at);
                parens.push(before.filter(|k| matches!(k, SyntaxKind::FUNCTION_KW | SyntaxKind::IDENT)));
            }
            SyntaxKind::R_PAREN => match parens.pop().flatten() {
                Some(SyntaxKind::FUNCTION_KW) => cuts.push((lexeme.range.1 as usize, &body_start)),
                Some(_) => {
                    // `f(..) = body` binds a function, `f(..): body` (`::`, `:::`) is a method.
                    let mut next = i + 1;
                    if kind_at(next) == Some(SyntaxKind::ASSIGN) {
                        cuts.push((lexemes[next].range.1 as usize, &body_start));
                    } else if kind_at(next) == Some(SyntaxKind::COLON) {
                        while kind_at(next + 1) == Some(SyntaxKind::COLON) {
                            next += 1;
                        }
                        // A slice `a[f(x):]` has no expression after the colon.
                        if !matches!(kind_at(next + 1), Some(SyntaxKind::R_BRACK) | None) {
                            cuts.push((lexemes[next].range.1 as usize, &body_start));
                        }
                    }
                }
                None => {}
            },
            _ => {}
        }
        match lexeme.kind {
            SyntaxKind::L_BRACK | SyntaxKind::L_BRACE | SyntaxKind::L_PAREN => seen_for.push(false),
            SyntaxKind::R_BRACK | SyntaxKind::R_BRACE | SyntaxKind::R_PAREN if seen_for.len() > 1 => {
                let closes_comprehension = seen_for.pop() == Some(true) && lexeme.kind != SyntaxKind::R_PAREN;
                // The end of a comprehension: its innermost iterations tick too.
                if closes_comprehension {
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
    // Body starts are found after the token that precedes them: sort.
    cuts.sort_by_key(|(at, _)| *at);
    let mut out = String::with_capacity(source.len() + cuts.len() * body_start.len());
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
    fn ticks_at_the_start_of_function_bodies() {
        let r =
            rewrite("local f(x) = x + 1, g = function (a, b=2) a; {m(y):: y, n: f(1), s: [1,2][f(0):], t: 'f(x) = 1'}");
        assert_eq!(
            r.source,
            "local f(x) = assert __pushstream_tick(); x + 1, g = function (a, b=2) assert __pushstream_tick(); a; \
             {m(y):: assert __pushstream_tick(); y, n: f(1), s: [1,2][f(0):], t: 'f(x) = 1'}"
        );
        let r = rewrite("[1,2,3][std.length([]):std.length([1])]");
        assert_eq!(r.source, "[1,2,3][std.length([]): assert __pushstream_tick();std.length([1])]");
    }

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
