//! The search syntax, parsed into a small tree before anything touches the index.
//!
//! ```text
//! query    := or
//! or       := and ("OR" and)*
//! and      := unary+                    (words side by side must all match)
//! unary    := ("-" | "NOT ") primary | primary
//! primary  := "(" or ")" | field ":" value | value
//! value    := "\"" phrase "\"" | word | word "*"
//! ```
//! A word keeps parentheses it opens itself, so `AC-2(1)` is one word, while
//! `(AC-2 OR AC-3)` is a group. `AND` is accepted and means nothing extra.
//! `name:value` is a field only when `name` is one of [`QUERY_FIELDS`]: any other
//! colon is text (a pasted title, a time, a URL).

use std::fmt;

/// Fields a query may name as `field:value`.
pub const QUERY_FIELDS: &[&str] = &[
    "title",
    "body",
    "control",
    "family",
    "framework",
    "status",
    "owner",
    "kind",
    "sha256",
    "category",
    "treatment",
    "risk_level",
    "media_type",
];

/// Parentheses nest at most this deep.
pub const MAX_DEPTH: usize = 8;
/// The deepest tree a query can parse into: each level of parentheses (and the
/// top level) may hold an `OR` of `AND`s of a negation, and a leaf may be a
/// field over a word. Found by fuzzing: an earlier test assumed `MAX_DEPTH + 2`.
pub const MAX_TREE_DEPTH: usize = 3 * (MAX_DEPTH + 1) + 2;
pub const MAX_CLAUSES: usize = 32;
pub const MIN_PREFIX: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A word; `prefix` when it ended in `*`.
    Word {
        text: String,
        prefix: bool,
    },
    Phrase(String),
    Field {
        field: &'static str,
        value: Box<Node>,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

impl Node {
    /// Levels of nesting below and including this node.
    pub fn depth(&self) -> usize {
        match self {
            Node::And(v) | Node::Or(v) => 1 + v.iter().map(Node::depth).max().unwrap_or(0),
            Node::Not(n) => 1 + n.depth(),
            Node::Field { value, .. } => 1 + value.depth(),
            _ => 1,
        }
    }

    /// Word and phrase leaves: what the compiled query's clauses grow with.
    pub fn leaves(&self) -> usize {
        match self {
            Node::And(v) | Node::Or(v) => v.iter().map(Node::leaves).sum(),
            Node::Not(n) | Node::Field { value: n, .. } => n.leaves(),
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Character offset in the query.
    pub at: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Minus,
    Or,
    Not,
    Phrase(String),
    /// A word, possibly `field:` prefixed (split later).
    Word(String),
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        match c {
            '(' => {
                out.push((Tok::LParen, i));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, i));
                i += 1;
            }
            '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or_else(|| ParseError {
                        message: "unterminated phrase: a `\"` has no closing `\"`".into(),
                        at: start,
                    })?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                out.push((Tok::Phrase(text), start));
                i += end + 2;
            }
            '-' if i + 1 < chars.len() && !chars[i + 1].is_whitespace() => {
                out.push((Tok::Minus, i));
                i += 1;
            }
            _ => {
                let mut depth = 0usize;
                let mut word = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c.is_whitespace() || c == '"' && !word.ends_with(':') {
                        break;
                    }
                    if c == '"' {
                        // field:"a phrase"
                        let end =
                            chars[i + 1..]
                                .iter()
                                .position(|&c| c == '"')
                                .ok_or_else(|| ParseError {
                                    message: "unterminated phrase: a `\"` has no closing `\"`"
                                        .into(),
                                    at: i,
                                })?;
                        word.push('"');
                        word.extend(&chars[i + 1..i + 1 + end]);
                        word.push('"');
                        i += end + 2;
                        break;
                    }
                    if c == '(' {
                        depth += 1;
                    } else if c == ')' {
                        if depth == 0 {
                            break;
                        }
                        depth -= 1;
                    }
                    word.push(c);
                    i += 1;
                }
                let tok = match word.as_str() {
                    "OR" | "||" => Tok::Or,
                    "NOT" => Tok::Not,
                    "AND" | "&&" => continue,
                    _ => Tok::Word(word),
                };
                out.push((tok, start));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    clauses: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, a)| *a)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.into(),
            at: self.at(),
        })
    }

    fn or(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            if matches!(self.peek(), None | Some(Tok::RParen | Tok::Or)) {
                return self.err("`OR` must be followed by a term");
            }
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Node::And(vec![]))
        } else {
            Node::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut parts = Vec::new();
        while let Some(t) = self.peek() {
            if matches!(t, Tok::Or | Tok::RParen) {
                break;
            }
            parts.push(self.unary(depth)?);
        }
        if parts.is_empty() {
            return self.err("expected a term");
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Node::And(vec![]))
        } else {
            Node::And(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Node, ParseError> {
        if matches!(self.peek(), Some(Tok::Minus | Tok::Not)) {
            self.pos += 1;
            if matches!(self.peek(), Some(Tok::Minus | Tok::Not)) {
                return self.err("a double negation is not allowed");
            }
            if matches!(self.peek(), None | Some(Tok::Or | Tok::RParen)) {
                return self.err("`-` must be followed by a term");
            }
            return Ok(Node::Not(Box::new(self.primary(depth)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let at = self.at();
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return self.err("expected a term");
        };
        self.pos += 1;
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(ParseError {
                message: format!("too many terms: at most {MAX_CLAUSES}"),
                at,
            });
        }
        match tok {
            Tok::LParen => {
                if depth + 1 > MAX_DEPTH {
                    return Err(ParseError {
                        message: format!("parentheses nested deeper than {MAX_DEPTH}"),
                        at,
                    });
                }
                if self.peek() == Some(&Tok::RParen) {
                    return self.err("empty parentheses");
                }
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(ParseError {
                        message: "unbalanced parentheses: `(` is never closed".into(),
                        at,
                    });
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::RParen => Err(ParseError {
                message: "unbalanced parentheses: `)` without `(`".into(),
                at,
            }),
            Tok::Phrase(p) => phrase(p, at),
            Tok::Word(w) => word(&w, at),
            Tok::Minus | Tok::Or | Tok::Not => Err(ParseError {
                message: "expected a term".into(),
                at,
            }),
        }
    }
}

fn phrase(p: String, at: usize) -> Result<Node, ParseError> {
    if p.trim().is_empty() {
        return Err(ParseError {
            message: "empty phrase".into(),
            at,
        });
    }
    Ok(Node::Phrase(p))
}

fn word(w: &str, at: usize) -> Result<Node, ParseError> {
    if let Some((name, value)) = w.split_once(':')
        && let Some(field) = QUERY_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name))
    {
        if value.is_empty() {
            return Err(ParseError {
                message: format!("`{name}:` needs a value"),
                at,
            });
        }
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(p) => phrase(p.to_owned(), at)?,
            None => plain_word(value, at)?,
        };
        return Ok(Node::Field {
            field,
            value: Box::new(value),
        });
    }
    // anything else with a colon is text: a pasted title ("Q3 2026: Patient
    // Portal"), a time (02:00), a URL
    match w.strip_suffix(':') {
        Some(text) if !text.is_empty() => plain_word(text, at),
        _ => plain_word(w, at),
    }
}

fn plain_word(w: &str, at: usize) -> Result<Node, ParseError> {
    let (text, prefix) = match w.strip_suffix('*') {
        Some(t) => (t, true),
        None => (w, false),
    };
    if text.contains('*') {
        return Err(ParseError {
            message: "`*` is only allowed at the end of a word (prefix search)".into(),
            at,
        });
    }
    if prefix && text.chars().count() < MIN_PREFIX {
        return Err(ParseError {
            message: format!("a prefix needs at least {MIN_PREFIX} characters before `*`"),
            at,
        });
    }
    if text.is_empty() {
        return Err(ParseError {
            message: "expected a word".into(),
            at,
        });
    }
    Ok(Node::Word {
        text: text.to_owned(),
        prefix,
    })
}

/// Parses a query. An empty or blank query is `None` (match everything).
pub fn parse(input: &str) -> Result<Option<Node>, ParseError> {
    // `AC 2 (1)`, `ac-02`, `AC2`: one word, as the catalogue writes it
    let input = &super::vocabulary::canonical_control_ids(input);
    let toks = lex(input)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.chars().count(),
        clauses: 0,
    };
    let node = p.or(0)?;
    if p.pos < p.toks.len() {
        return p.err(match p.peek() {
            Some(Tok::RParen) => "unbalanced parentheses: `)` without `(`",
            _ => "unexpected input",
        });
    }
    Ok(Some(node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn w(s: &str) -> Node {
        Node::Word {
            text: s.into(),
            prefix: false,
        }
    }

    #[test]
    fn parses_the_documented_syntax() {
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(
            parse("access control").unwrap(),
            Some(Node::And(vec![w("access"), w("control")]))
        );
        assert_eq!(parse("AC-2(1)").unwrap(), Some(w("AC-2(1)")));
        assert_eq!(
            parse("(AC-2(1) OR ac-3) -audit").unwrap(),
            Some(Node::And(vec![
                Node::Or(vec![w("AC-2(1)"), w("AC-3")]),
                Node::Not(Box::new(w("audit")))
            ]))
        );
        assert_eq!(
            parse("\"least privilege\" auth*").unwrap(),
            Some(Node::And(vec![
                Node::Phrase("least privilege".into()),
                Node::Word {
                    text: "auth".into(),
                    prefix: true
                }
            ]))
        );
        assert_eq!(
            parse("status:accepted owner:\"Yuki Tanaka\"").unwrap(),
            Some(Node::And(vec![
                Node::Field {
                    field: "status",
                    value: Box::new(w("accepted"))
                },
                Node::Field {
                    field: "owner",
                    value: Box::new(Node::Phrase("Yuki Tanaka".into()))
                }
            ]))
        );
        assert_eq!(
            parse("NOT audit").unwrap(),
            Some(Node::Not(Box::new(w("audit"))))
        );
        assert_eq!(parse("a AND b").unwrap(), parse("a b").unwrap());
        assert_eq!(parse("multi-factor").unwrap(), Some(w("multi-factor")));
    }

    #[test]
    fn colons_that_name_no_field_are_text() {
        assert_eq!(
            parse("Access review Q3 2026: Patient Portal").unwrap(),
            Some(Node::And(
                ["Access", "review", "Q3", "2026", "Patient", "Portal"]
                    .map(w)
                    .to_vec()
            ))
        );
        assert_eq!(
            parse("backup 02:00").unwrap(),
            Some(Node::And(vec![w("backup"), w("02:00")]))
        );
        assert_eq!(
            parse("https://example.com/x").unwrap(),
            Some(w("https://example.com/x"))
        );
        assert_eq!(
            parse("STATUS:failed").unwrap(),
            Some(Node::Field {
                field: "status",
                value: Box::new(w("failed"))
            })
        );
        // control ids in people's spellings become the catalogue's
        assert_eq!(parse("AC 2 (1)").unwrap(), Some(w("AC-2(1)")));
        assert_eq!(
            parse("(ac2 OR ia-02)").unwrap(),
            Some(Node::Or(vec![w("AC-2"), w("IA-2")]))
        );
    }

    #[test]
    fn refuses_malformed_queries_with_a_position() {
        for (q, needle) in [
            ("\"open", "unterminated"),
            ("(a b", "never closed"),
            ("a b)", "without `(`"),
            ("status:", "needs a value"),
            ("a*b", "only allowed at the end"),
            ("a*", "at least 2"),
            ("a OR", "followed by a term"),
            ("()", "empty parentheses"),
            ("\"\"", "empty phrase"),
            ("--a", "double negation"),
            (&"(".repeat(20), "nested deeper"),
            (&"w ".repeat(40), "too many terms"),
        ] {
            let err = parse(q).expect_err(q);
            assert!(err.message.contains(needle), "{q:?}: {err}");
        }
    }

    /// Property: any input parses or fails with a message; never a panic, and
    /// the tree respects the depth and clause bounds.
    #[test]
    fn random_inputs_never_panic() {
        let alphabet: Vec<char> = "ab AC-2(1)\"*:-()ORNT status:kind:é漢 \t".chars().collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            match parse(&s) {
                Ok(Some(node)) => assert!(node.depth() <= MAX_TREE_DEPTH, "{s:?}"),
                Ok(None) => {
                    assert!(s.trim().is_empty() || s.split_whitespace().all(|t| t == "AND"))
                }
                Err(e) => assert!(!e.message.is_empty()),
            }
        }
    }
}
