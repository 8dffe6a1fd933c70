//! User-supplied text shown safely: in an error, a log line, a gRPC status or a terminal.
//! Everything a manifest or a request names goes through [`shown`] (a quoted value) or
//! [`bounded`] (a message that may quote values): control characters are escaped (no ANSI
//! escape or forged `error:` line reaches a terminal) and length is bounded (a 900 KB
//! parameter does not become a 900 KB status or log line).

use std::borrow::Cow;
use std::fmt::Write;

/// Characters of a quoted value kept by [`shown`].
const KEEP_VALUE: usize = 64;
/// A run of non-space characters longer than this is cut by [`bounded`] ...
const LONG_TOKEN: usize = 96;
/// ... to this many characters.
const KEEP_TOKEN: usize = 64;
/// Characters [`bounded`] keeps of a whole message.
const KEEP_MESSAGE: usize = 2048;

/// A user-supplied name or value as it may appear in a message: in single quotes, with
/// control characters escaped (`\n`, `\u{1b}`, `\0`) and cut after 64 characters.
pub fn shown(value: &str) -> String {
    match value.char_indices().nth(KEEP_VALUE) {
        None => format!("'{}'", value.escape_debug()),
        Some((cut, _)) => format!(
            "'{}'... ({} characters)",
            value[..cut].escape_debug(),
            value.chars().count()
        ),
    }
}

/// `text` with control characters escaped, every run of more than 96 non-space characters
/// cut to its first 64 (saying how long it was), and the whole cut after 2,048 characters.
/// Unchanged (borrowed) when it needs none of that, as our own messages do.
pub fn bounded(text: &str) -> Cow<'_, str> {
    let mut run = 0usize;
    let clean = text.chars().count() <= KEEP_MESSAGE
        && text.chars().all(|c| {
            run = if c == ' ' { 0 } else { run + 1 };
            !c.is_control() && run <= LONG_TOKEN
        });
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(KEEP_MESSAGE * 2));
    // Characters shown so far (an escape counts at its shown length: `\u{1b}` is 6).
    let mut kept = 0usize;
    'tokens: for (i, token) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
            kept += 1;
        }
        let n = token.chars().count();
        let cut = if n > LONG_TOKEN { KEEP_TOKEN } else { n };
        for c in token.chars().take(cut) {
            if kept >= KEEP_MESSAGE {
                let total = text.chars().count();
                let _ = write!(out, " ... (message cut: {total} characters)");
                break 'tokens;
            }
            if c.is_control() {
                let escaped = c.escape_debug().to_string();
                kept += escaped.len();
                out.push_str(&escaped);
            } else {
                kept += 1;
                out.push(c);
            }
        }
        if cut < n {
            let _ = write!(out, "...({n} characters)");
            kept += 16;
        }
    }
    Cow::Owned(out)
}

/// The candidate closest to `name` (case-insensitive edit distance), when close enough to be
/// the name meant: at most a third of its length, and at least 2, edits away. The one rule
/// behind every "did you mean" hint (node types, manifest fields, parameters).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *c != name && *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_suggests_near_names_only() {
        let names = ["threshold", "end_threshold", "min_speech_ms", "params"];
        assert_eq!(closest("treshold", names), Some("threshold"));
        assert_eq!(closest("Params", names), Some("params"));
        assert_eq!(closest("param", names), Some("params"));
        assert_eq!(closest("frobnicate", names), None);
        assert_eq!(
            closest("params", names),
            None,
            "an exact name needs no hint"
        );
    }

    #[test]
    fn shown_quotes_escapes_and_cuts() {
        assert_eq!(shown("VADNode"), "'VADNode'");
        assert_eq!(shown("a\u{1b}[31m\nb\0"), r"'a\u{1b}[31m\nb\0'");
        let long = "x".repeat(100_000);
        let s = shown(&long);
        assert!(s.starts_with(&format!("'{}'...", "x".repeat(64))), "{s}");
        assert!(s.ends_with("(100000 characters)"), "{s}");
        // Non-UTF-8 input arrives lossily decoded (U+FFFD), which is shown as it is.
        assert_eq!(shown(&String::from_utf8_lossy(b"a\xffb")), "'a\u{fffd}b'");
    }

    #[test]
    fn bounded_leaves_our_messages_alone() {
        let m = "params.threshold: got string \"x\"; expected a number in -120..=0 dBFS";
        assert!(matches!(bounded(m), Cow::Borrowed(_)));
    }

    #[test]
    fn bounded_cuts_long_runs_and_keeps_the_rest_of_the_message() {
        let m = format!(
            "params.threshold: got string \"{}\"; expected a number in -120..=0 dBFS",
            "x".repeat(900_000)
        );
        let b = bounded(&m);
        assert!(b.len() < 300, "{}", b.len());
        assert!(b.starts_with("params.threshold: got string \"xxxx"), "{b}");
        assert!(b.contains("xxxx...(900003 characters) expected"), "{b}");
        assert!(b.ends_with("expected a number in -120..=0 dBFS"), "{b}");
    }

    #[test]
    fn bounded_escapes_control_characters_and_caps_many_short_words() {
        assert_eq!(
            bounded("name\n\u{1b}[2Jerror: forged"),
            r"name\n\u{1b}[2Jerror: forged"
        );
        let many = "ab ".repeat(100_000);
        let b = bounded(&many);
        assert!(b.chars().count() < 2200, "{}", b.len());
        assert!(b.ends_with("(message cut: 300000 characters)"), "{b}");
        // Escapes count at their shown length.
        for text in ["\u{1b}".repeat(100_000), "a\n ".repeat(100_000)] {
            let n = bounded(&text).chars().count();
            assert!(n < 2300, "{n}");
        }
    }
}
