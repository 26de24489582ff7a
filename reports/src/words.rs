//! English for sentences built from numbers, shared by the summary and the
//! board PDF.

/// `1 risk`, `2 risks`.
pub(crate) fn count(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("{n} {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// `is` or `are` agreeing with `n`.
pub(crate) fn is_are(n: u64) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// Joins words as `a, b and c`.
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
