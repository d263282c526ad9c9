//! Finds where a field path (such as `faults[1].at`) stands in a RON source text.
//!
//! RON's deserializer reports positions for syntax errors only; errors found after parsing
//! (a fault naming an unknown node, a duplicate id) carry a field path instead. This module
//! walks the text along that path so every error can name a line and column.
//!
//! ```
//! use conclave_sim::locate::{locate, Seg};
//! let src = "Scenario(\n  faults: [\n    (at: \"1s\"),\n    (at: \"-5s\"),\n  ],\n)";
//! let pos = locate(src, &[Seg::Field("faults".into()), Seg::Index(1), Seg::Field("at".into())]);
//! assert_eq!(pos, Some((4, 10)));
//! ```

/// One step of a path into a RON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A named field of a struct, or of a struct-like enum variant.
    Field(String),
    /// An element of a list, or a position in a tuple or tuple-like variant.
    Index(usize),
}

/// Renders a path the way users write it: `faults[1].fault`.
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Open(char),
    Close,
    Colon,
    Comma,
    Atom,
}

struct Token<'a> {
    tok: Tok<'a>,
    line: usize,
    col: usize,
}

fn tokenize(src: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // Advances over chars[i], keeping line and column right.
    macro_rules! bump {
        () => {{
            if chars[i].1 == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            i += 1;
        }};
    }
    while i < chars.len() {
        let c = chars[i].1;
        let (tl, tc) = (line, col);
        let next = chars.get(i + 1).map(|x| x.1);
        if c.is_whitespace() {
            bump!();
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i].1 != '\n' {
                bump!();
            }
        } else if c == '/' && next == Some('*') {
            bump!();
            bump!();
            while i < chars.len()
                && !(chars[i].1 == '*' && chars.get(i + 1).map(|x| x.1) == Some('/'))
            {
                bump!();
            }
            if i < chars.len() {
                bump!();
                bump!();
            }
        } else if c == '"' {
            bump!();
            while i < chars.len() && chars[i].1 != '"' {
                if chars[i].1 == '\\' {
                    bump!();
                }
                if i < chars.len() {
                    bump!();
                }
            }
            if i < chars.len() {
                bump!();
            }
            out.push(Token {
                tok: Tok::Atom,
                line: tl,
                col: tc,
            });
        } else if "([{".contains(c) {
            bump!();
            out.push(Token {
                tok: Tok::Open(c),
                line: tl,
                col: tc,
            });
        } else if ")]}".contains(c) {
            bump!();
            out.push(Token {
                tok: Tok::Close,
                line: tl,
                col: tc,
            });
        } else if c == ':' {
            bump!();
            out.push(Token {
                tok: Tok::Colon,
                line: tl,
                col: tc,
            });
        } else if c == ',' {
            bump!();
            out.push(Token {
                tok: Tok::Comma,
                line: tl,
                col: tc,
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = chars[i].0;
            while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_') {
                bump!();
            }
            let end = chars.get(i).map_or(src.len(), |x| x.0);
            out.push(Token {
                tok: Tok::Ident(&src[start..end]),
                line: tl,
                col: tc,
            });
        } else {
            while i < chars.len() {
                let d = chars[i].1;
                if d.is_whitespace() || "()[]{}:,\"".contains(d) {
                    break;
                }
                bump!();
            }
            out.push(Token {
                tok: Tok::Atom,
                line: tl,
                col: tc,
            });
        }
    }
    out
}

/// The index of the token just after the value starting at `at` (a balanced group).
fn skip_value(toks: &[Token<'_>], mut at: usize) -> usize {
    if matches!(toks.get(at).map(|t| t.tok), Some(Tok::Ident(_)))
        && matches!(toks.get(at + 1).map(|t| t.tok), Some(Tok::Open(_)))
    {
        at += 1;
    }
    match toks.get(at).map(|t| t.tok) {
        Some(Tok::Open(_)) => {
            let mut depth = 0usize;
            while at < toks.len() {
                match toks[at].tok {
                    Tok::Open(_) => depth += 1,
                    Tok::Close => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            at
        }
        _ => at + 1,
    }
}

/// The index of the first token inside the group the value at `at` opens, if it opens one.
fn enter(toks: &[Token<'_>], mut at: usize) -> Option<usize> {
    if matches!(toks.get(at)?.tok, Tok::Ident(_)) {
        at += 1;
    }
    match toks.get(at)?.tok {
        Tok::Open(_) => Some(at + 1),
        _ => None,
    }
}

/// Line and column (1-based) of the value at `path`, or of the deepest part of the path found.
pub fn locate(src: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let toks = tokenize(src);
    let mut at = 0usize;
    toks.get(at)?;
    for seg in path {
        let inner = match enter(&toks, at) {
            Some(i) => i,
            None => break,
        };
        let found = match seg {
            Seg::Field(name) => {
                let mut i = inner;
                let mut hit = None;
                while i < toks.len() && toks[i].tok != Tok::Close {
                    if toks[i].tok == Tok::Ident(name)
                        && toks.get(i + 1).map(|t| t.tok) == Some(Tok::Colon)
                    {
                        hit = Some(i + 2);
                        break;
                    }
                    i = skip_value(&toks, i);
                }
                hit
            }
            Seg::Index(n) => {
                let mut i = inner;
                let mut k = 0;
                let mut hit = None;
                while i < toks.len() && toks[i].tok != Tok::Close {
                    if toks[i].tok == Tok::Comma {
                        i += 1;
                        continue;
                    }
                    if k == *n {
                        hit = Some(i);
                        break;
                    }
                    k += 1;
                    i = skip_value(&toks, i);
                }
                hit
            }
        };
        match found {
            Some(i) if i < toks.len() => at = i,
            _ => break,
        }
    }
    toks.get(at).map(|t| (t.line, t.col))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Seg {
        Seg::Field(s.into())
    }

    #[test]
    fn finds_fields_indices_and_variant_contents() {
        let src = r#"// a comment
Scenario(
    name: "x", /* block ( comment */
    nodes: [(name: "a", id: 1), (name: "b", id: 2)],
    faults: [
        (at: "1s", fault: Crash("a")),
        (at: "2s", fault: Partition([["a"], ["b", "a"]])),
    ],
)"#;
        assert_eq!(
            locate(src, &[f("nodes"), Seg::Index(1), f("id")]),
            Some((4, 49))
        );
        assert_eq!(
            locate(src, &[f("faults"), Seg::Index(0), f("fault")]),
            Some((6, 27))
        );
        let deep = [
            f("faults"),
            Seg::Index(1),
            f("fault"),
            Seg::Index(0),
            Seg::Index(1),
            Seg::Index(1),
        ];
        assert_eq!(locate(src, &deep), Some((7, 51)));
        assert_eq!(
            display_path(&[f("faults"), Seg::Index(1), f("at")]),
            "faults[1].at"
        );
    }

    #[test]
    fn missing_parts_stop_at_the_deepest_found() {
        let src = "Scenario(nodes: [])";
        assert_eq!(locate(src, &[f("nodes"), Seg::Index(3)]), Some((1, 17)));
        assert_eq!(locate(src, &[f("faults")]), Some((1, 1)));
        assert_eq!(locate("", &[f("x")]), None);
    }
}
