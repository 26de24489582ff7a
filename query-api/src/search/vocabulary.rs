//! What an officer types, in the catalogue's words: stop words that never have
//! to match, synonyms and acronyms (shipped in `data/search/`, plus each
//! organization's own additions), British and American spellings, possessives,
//! and control ids in every common spelling.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

const SYNONYMS: &str = include_str!("../../../data/search/synonyms.txt");
const STOPWORDS: &str = include_str!("../../../data/search/stopwords.txt");

/// Longest alternative, in typed words, that a synonym line may hold.
pub const MAX_SPAN: usize = 6;

/// The words of `text` as the synonym list compares them: lowercased runs of
/// letters and digits, possessives dropped (`Datadog's` is `datadog`).
pub fn words(text: &str) -> Vec<String> {
    let text = strip_possessive(text);
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How the list compares word sequences: each word's English stem, so that
/// `rotating keys` meets `rotate key` and `backups` meets `backup`.
pub fn key(text: &str) -> String {
    thread_local! {
        static STEMMER: frostem::Stemmer = frostem::Stemmer::new(frostem::Algorithm::English);
    }
    STEMMER.with(|s| {
        words(text)
            .iter()
            .map(|w| s.stem(w).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// `Datadog's` → `Datadog`, `vendors'` → `vendors`; anything else unchanged.
pub fn strip_possessive(word: &str) -> &str {
    for suffix in ["'s", "’s", "'S", "’S"] {
        if let Some(stem) = word.strip_suffix(suffix)
            && stem.chars().last().is_some_and(char::is_alphanumeric)
        {
            return stem;
        }
    }
    match word.strip_suffix(['\'', '’']) {
        Some(stem) if stem.ends_with(['s', 'S']) => stem,
        _ => word,
    }
}

/// One line of the list: its alternatives (each a space-joined word sequence);
/// the first `triggers` of them expand to all the others.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    alternatives: Vec<String>,
    triggers: usize,
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabularyError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for VocabularyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Synonym groups and stop words.
#[derive(Debug, Default)]
pub struct Vocabulary {
    /// 0 for the shipped list; else a hash of the organization's lines (part
    /// of response cache keys and cursors: a page never mixes two vocabularies).
    pub version: u64,
    groups: Vec<Group>,
    /// A triggering alternative → the groups it expands through.
    triggers: HashMap<String, Vec<usize>>,
    stop: HashSet<String>,
}

/// A run of the query's words that means one thing: the words as typed, what
/// else they may be written as, and whether they are a stop word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concept {
    /// The typed words (each as the parser gave it).
    pub typed: Vec<String>,
    /// Other ways to write it (space-joined words), never the typed one.
    pub alternatives: Vec<String>,
    pub stop: bool,
}

impl Vocabulary {
    /// The list shipped with Certscope.
    pub fn builtin() -> Arc<Vocabulary> {
        static BUILTIN: OnceLock<Arc<Vocabulary>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let mut v = Vocabulary::default();
                // the shipped files are checked by a test; a bad line here is a
                // build defect, and searching without synonyms beats failing
                let _ = v.add_lines(SYNONYMS);
                v.stop = STOPWORDS
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .flat_map(str::split_whitespace)
                    .map(str::to_lowercase)
                    .collect();
                Arc::new(v)
            })
            .clone()
    }

    /// The shipped list plus an organization's own lines (same syntax).
    pub fn with_additions(lines: &[String]) -> Result<Vocabulary, VocabularyError> {
        let base = Self::builtin();
        let mut v = Vocabulary {
            version: 0,
            groups: base.groups.clone(),
            triggers: base.triggers.clone(),
            stop: base.stop.clone(),
        };
        for (i, line) in lines.iter().enumerate() {
            v.add_line(line).map_err(|message| VocabularyError {
                line: i + 1,
                message,
            })?;
        }
        Ok(v)
    }

    fn add_lines(&mut self, text: &str) -> Result<(), VocabularyError> {
        for (i, line) in text.lines().enumerate() {
            self.add_line(line).map_err(|message| VocabularyError {
                line: i + 1,
                message,
            })?;
        }
        Ok(())
    }

    /// Checks one line of synonym syntax; `Ok(false)` for a blank or comment.
    pub fn check_line(line: &str) -> Result<bool, String> {
        Vocabulary::default().add_line(line)
    }

    fn add_line(&mut self, line: &str) -> Result<bool, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(false);
        }
        let (left, right) = match line.split_once("=>") {
            Some((l, r)) => (l, Some(r)),
            None => (line, None),
        };
        let side = |s: &str| -> Result<Vec<String>, String> {
            let alts: Vec<String> = s
                .split(',')
                .map(|a| words(a).join(" "))
                .filter(|a| !a.is_empty())
                .collect();
            if let Some(long) = alts.iter().find(|a| a.split(' ').count() > MAX_SPAN) {
                return Err(format!(
                    "`{long}` is longer than {MAX_SPAN} words; shorten it"
                ));
            }
            Ok(alts)
        };
        let mut alternatives = side(left)?;
        let triggers = alternatives.len();
        match right {
            Some(r) => {
                let targets = side(r)?;
                if targets.is_empty() {
                    return Err("nothing after `=>`".into());
                }
                alternatives.extend(targets);
            }
            None if alternatives.len() < 2 => {
                return Err(
                    "a line needs two or more alternatives separated by `,` (or `a => b`)".into(),
                );
            }
            None => {}
        }
        if triggers == 0 {
            return Err("nothing before `=>`".into());
        }
        let at = self.groups.len();
        for t in &alternatives[..triggers] {
            let groups = self.triggers.entry(key(t)).or_default();
            if !groups.contains(&at) {
                groups.push(at);
            }
        }
        self.groups.push(Group {
            alternatives,
            triggers,
        });
        Ok(true)
    }

    pub fn is_stop(&self, word: &str) -> bool {
        let w = words(word);
        !w.is_empty() && w.iter().all(|w| self.stop.contains(w))
    }

    /// The query's plain words grouped into concepts: the longest run of typed
    /// words that a synonym line names becomes one concept with the line's
    /// other alternatives; a lone stop word is marked.
    pub fn concepts(&self, typed: &[String]) -> Vec<Concept> {
        let keys: Vec<String> = typed.iter().map(|t| key(t)).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < typed.len() {
            let mut matched = None;
            for len in (1..=MAX_SPAN.min(typed.len() - i)).rev() {
                let span = keys[i..i + len]
                    .iter()
                    .filter(|k| !k.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                if let Some(groups) = self.triggers.get(&span) {
                    matched = Some((len, span, groups));
                    break;
                }
            }
            match matched {
                Some((len, span, groups)) => {
                    out.push(Concept {
                        typed: typed[i..i + len].to_vec(),
                        alternatives: self.alternatives_of(&span, groups),
                        stop: false,
                    });
                    i += len;
                }
                None => {
                    out.push(Concept {
                        typed: vec![typed[i].clone()],
                        alternatives: self.split_alternatives(&typed[i]),
                        stop: self.is_stop(&typed[i]),
                    });
                    i += 1;
                }
            }
        }
        out
    }

    /// The other alternatives of the groups a span triggers.
    fn alternatives_of(&self, span: &str, groups: &[usize]) -> Vec<String> {
        let mut alternatives: Vec<String> = Vec::new();
        let mut seen = vec![span.to_owned()];
        for g in groups {
            for a in &self.groups[*g].alternatives {
                let k = key(a);
                if !seen.contains(&k) {
                    seen.push(k);
                    alternatives.push(a.clone());
                }
            }
        }
        alternatives
    }

    /// `IDS/IPS`, `BCP/DR`: either part, and what each stands for.
    fn split_alternatives(&self, typed: &str) -> Vec<String> {
        if typed.contains("://") || !typed.contains('/') {
            return vec![];
        }
        let mut out: Vec<String> = Vec::new();
        for part in typed.split('/').filter(|p| !p.is_empty()) {
            let k = key(part);
            if k.is_empty() || out.contains(&k) {
                continue;
            }
            out.push(words(part).join(" "));
            if let Some(groups) = self.triggers.get(&k) {
                for a in self.alternatives_of(&k, groups) {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
        }
        if out.len() < 2 { vec![] } else { out }
    }
}

/// British ↔ American spellings of a word (`authorisation` ↔ `authorization`,
/// `behaviour` ↔ `behavior`, `catalogue` ↔ `catalog`, `licence` ↔ `license`,
/// `cancelled` ↔ `canceled`, `programme` ↔ `program`). Candidates only: the
/// caller keeps those the index knows.
pub fn spelling_variants(word: &str) -> Vec<String> {
    let w = word.to_lowercase();
    if w.len() < 5 || !w.chars().all(|c| c.is_ascii_alphabetic()) {
        return vec![];
    }
    const SWAPS: &[(&str, &str)] = &[
        ("isation", "ization"),
        ("isations", "izations"),
        ("ise", "ize"),
        ("ised", "ized"),
        ("ises", "izes"),
        ("ising", "izing"),
        ("iser", "izer"),
        ("isers", "izers"),
        ("yse", "yze"),
        ("ysed", "yzed"),
        ("ysing", "yzing"),
        ("our", "or"),
        ("ours", "ors"),
        ("oured", "ored"),
        ("ouring", "oring"),
        ("ence", "ense"),
        ("ences", "enses"),
        ("tre", "ter"),
        ("tres", "ters"),
        ("ogue", "og"),
        ("ogues", "ogs"),
        ("lled", "led"),
        ("lling", "ling"),
        ("amme", "am"),
        ("ammes", "ams"),
    ];
    let mut out = Vec::new();
    for (gb, us) in SWAPS {
        for (from, to) in [(gb, us), (us, gb)] {
            if let Some(stem) = w.strip_suffix(from)
                && stem.len() >= 3
            {
                let v = format!("{stem}{to}");
                if v != w && !out.contains(&v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// Two-letter prefixes of the NIST SP 800-53 families.
const FAMILIES: &[&str] = &[
    "ac", "at", "au", "ca", "cm", "cp", "ia", "ir", "ma", "mp", "pe", "pl", "pm", "ps", "pt", "ra",
    "sa", "sc", "si", "sr",
];

/// A control id in any common spelling, as the catalogue displays it:
/// `ac-02`, `AC2`, `ac-2.1`, `AC-2 (1)`, `ia2(1)` → `AC-2`, `AC-2(1)`.
/// `None` when `s` (trimmed) is not one control id.
pub fn control_id(s: &str) -> Option<String> {
    let (id, used) = scan_control_id(s.trim().as_bytes(), true)?;
    (used == s.trim().len()).then_some(id)
}

/// Rewrites every control id written with spaces, leading zeros or without
/// its hyphen (`AC 2 (1)`, `ac-02`, `AC2`) into its catalogue spelling, so the
/// parser sees one word. Ids written with spaces are only recognised in capitals
/// (`AT 2`, not "at 2 sites").
pub fn canonical_control_ids(q: &str) -> String {
    let b = q.as_bytes();
    let mut out = String::with_capacity(q.len());
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-');
        if boundary
            && b[i].is_ascii_alphabetic()
            && let Some((id, used)) = scan_control_id(&b[i..], false)
        {
            out.push_str(&id);
            i += used;
            continue;
        }
        // copy one character (whole UTF-8 sequence)
        let len = q[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&q[i..i + len]);
        i += len;
    }
    out
}

/// Reads a control id at the start of `b`: its catalogue spelling and the bytes
/// it used. `whole`: `b` is all of the id (spaces allowed in any case).
fn scan_control_id(b: &[u8], whole: bool) -> Option<(String, usize)> {
    if b.len() < 3 || !b[0].is_ascii_alphabetic() || !b[1].is_ascii_alphabetic() {
        return None;
    }
    let family = [b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase()];
    let family = std::str::from_utf8(&family).ok()?;
    if !FAMILIES.contains(&family) {
        return None;
    }
    let capitals = b[0].is_ascii_uppercase() && b[1].is_ascii_uppercase();
    let mut i = 2;
    let spaces = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i] == b' ' {
            *i += 1;
        }
        *i > start
    };
    let spaced = spaces(&mut i);
    if spaced && !(capitals || whole) {
        return None;
    }
    if !spaced && i < b.len() && b[i] == b'-' {
        i += 1;
    }
    let number = |i: &mut usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start || *i - start > 3 {
            return None;
        }
        std::str::from_utf8(&b[start..*i]).ok()?.parse().ok()
    };
    let control = number(&mut i)?;
    if control == 0 {
        return None;
    }
    // an enhancement: `(1)`, ` (1)`, `.1`
    let mut enhancement = None;
    let mut j = i;
    let gap = spaces(&mut j);
    if j < b.len() && b[j] == b'(' {
        let mut k = j + 1;
        spaces(&mut k);
        if let Some(n) = number(&mut k) {
            spaces(&mut k);
            if k < b.len() && b[k] == b')' && n > 0 {
                enhancement = Some(n);
                i = k + 1;
            }
        }
    } else if !gap && j < b.len() && b[j] == b'.' {
        let mut k = j + 1;
        if let Some(n) = number(&mut k)
            && n > 0
        {
            enhancement = Some(n);
            i = k;
        }
    }
    // the id must end at a word boundary
    // (a full stop ending the text ends a sentence, not the id)
    if i < b.len()
        && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b'_' | b'.' | b'('))
        && !(b[i] == b'.' && i + 1 == b.len())
    {
        return None;
    }
    let family = family.to_uppercase();
    Some((
        match enhancement {
            Some(e) => format!("{family}-{control}({e})"),
            None => format!("{family}-{control}"),
        },
        i,
    ))
}

/// Natural order of control ids: `AC-2`, `AC-2(1)`, `AC-2(2)`, `AC-2(12)`, `AC-3`.
pub fn natural_key(id: &str) -> (String, u32, u32, String) {
    let lower = id.to_lowercase();
    let (family, rest) = lower.split_once('-').unwrap_or((lower.as_str(), ""));
    let digits = |s: &str| -> (u32, usize) {
        let n = s.chars().take_while(char::is_ascii_digit).count();
        (s[..n].parse().unwrap_or(0), n)
    };
    let (control, used) = digits(rest);
    let tail = &rest[used..];
    let tail = tail.trim_start_matches(['(', '.']);
    let (enhancement, used) = digits(tail);
    (
        family.to_owned(),
        control,
        enhancement,
        tail[used..].to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_lists_parse() {
        let mut v = Vocabulary::default();
        v.add_lines(SYNONYMS).expect("synonyms.txt");
        assert!(v.groups.len() > 80, "{}", v.groups.len());
        let b = Vocabulary::builtin();
        assert!(b.is_stop("what") && b.is_stop("We") && !b.is_stop("access"));
    }

    #[test]
    fn control_ids_in_every_spelling() {
        for (typed, id) in [
            ("ac-02", "AC-2"),
            ("AC2", "AC-2"),
            ("ac-2", "AC-2"),
            ("AC 2 (1)", "AC-2(1)"),
            ("ac-2.1", "AC-2(1)"),
            ("ac-2(01)", "AC-2(1)"),
            ("ia2(12)", "IA-2(12)"),
            ("SI 4", "SI-4"),
            ("cm-07", "CM-7"),
        ] {
            assert_eq!(control_id(typed).as_deref(), Some(id), "{typed}");
        }
        for not in ["soc2", "Q3", "at", "2026", "ac-", "ac-0", "xx-2", "account"] {
            assert_eq!(control_id(not), None, "{not}");
        }
        assert_eq!(
            canonical_control_ids("review AC 2 (1) and ac-02, at 2 sites; SOC 2 Q3 2026: x"),
            "review AC-2(1) and AC-2, at 2 sites; SOC 2 Q3 2026: x"
        );
        assert_eq!(
            canonical_control_ids("(ac2 OR ia-2.1)"),
            "(AC-2 OR IA-2(1))"
        );
        assert_eq!(canonical_control_ids("ac-2(1) ac-2*"), "AC-2(1) AC-2*");
        assert_eq!(canonical_control_ids("AC-2."), "AC-2.");
    }

    #[test]
    fn natural_order_of_enhancements() {
        let mut ids = vec!["AC-2(12)", "AC-2(1)", "AC-10", "AC-2", "AC-2(2)", "AC-3"];
        ids.sort_by_key(|i| natural_key(i));
        assert_eq!(
            ids,
            ["AC-2", "AC-2(1)", "AC-2(2)", "AC-2(12)", "AC-3", "AC-10"]
        );
    }

    #[test]
    fn concepts_take_the_longest_synonym_and_mark_stop_words() {
        let v = Vocabulary::builtin();
        let typed: Vec<String> = "what is our Two-Factor authentication for SOC 2"
            .split(' ')
            .map(String::from)
            .collect();
        let c = v.concepts(&typed);
        let shape: Vec<(String, bool, bool)> = c
            .iter()
            .map(|c| (c.typed.join(" "), c.stop, c.alternatives.is_empty()))
            .collect();
        assert_eq!(
            shape,
            [
                ("what".into(), true, true),
                ("is".into(), true, true),
                ("our".into(), true, true),
                ("Two-Factor authentication".into(), false, false),
                ("for".into(), true, true),
                ("SOC 2".into(), false, false),
            ]
        );
        assert!(
            c[3].alternatives
                .contains(&"multi factor authentication".into()),
            "{c:?}"
        );
        assert!(c[5].alternatives.contains(&"soc2".into()));
        // one way: a broad catalogue term does not expand back
        let c = v.concepts(&["password".into()]);
        assert!(
            c[0].alternatives
                .contains(&"authenticator management".into())
        );
        let c = v.concepts(&["authenticator".into(), "management".into()]);
        assert!(c.iter().all(|c| c.alternatives.is_empty()), "{c:?}");
        // stems: "rotating keys" is "rotate keys"
        let c = v.concepts(&["rotating".into(), "keys".into()]);
        assert_eq!(c.len(), 1, "{c:?}");
        // either side of a slash
        let c = v.concepts(&["IDS/IPS".into()]);
        assert!(c[0].alternatives.contains(&"ids".into()), "{c:?}");
        assert!(
            c[0].alternatives.contains(&"system monitoring".into()),
            "{c:?}"
        );
        // possessives
        assert_eq!(words("Datadog's"), ["datadog"]);
        assert_eq!(words("vendors'"), ["vendors"]);
    }

    #[test]
    fn organization_lines_are_checked() {
        let v = Vocabulary::with_additions(&["okta, identity provider".into()]).unwrap();
        assert!(!v.concepts(&["Okta".into()])[0].alternatives.is_empty());
        let e = Vocabulary::with_additions(&["ok".into(), "lonely".into()]).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Vocabulary::check_line("a =>").is_err());
        assert_eq!(Vocabulary::check_line("# note"), Ok(false));
    }

    #[test]
    fn british_and_american_spellings() {
        assert!(spelling_variants("authorisation").contains(&"authorization".into()));
        assert!(spelling_variants("behaviour").contains(&"behavior".into()));
        assert!(spelling_variants("catalog").contains(&"catalogue".into()));
        assert!(spelling_variants("licence").contains(&"license".into()));
        assert!(spelling_variants("cancelled").contains(&"canceled".into()));
        assert!(spelling_variants("programme").contains(&"program".into()));
        assert!(spelling_variants("ac-2").is_empty());
    }
}
