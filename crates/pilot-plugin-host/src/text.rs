//! Plugin-provided strings made safe to print: control characters escaped, length capped.
//!
//! A plugin's `id()`, the message of a failure it reports and the names in a trap's backtrace
//! are arbitrary strings from untrusted code. Before the host keeps one (and so before anything
//! prints or logs it) it goes through [`sanitize`]: newlines, carriage returns, ANSI escapes
//! and every other control or bidirectional-formatting character become visible `\u{..}`
//! escapes, and the text is cut at a character limit with a note of how much was dropped.

/// Longest embedder id kept, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// Longest failure message (from `create`, `embed`, `select`, …) kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// Longest trap description (reason and backtrace) kept, in characters.
pub const MAX_TRAP_CHARS: usize = 2048;

/// Whether `c` must not reach a terminal as is: C0/C1 controls (newline, CR, ESC, …) and the
/// invisible formatting characters that reorder or hide text (bidi overrides, zero-width ones).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// `s` with every unsafe character escaped (`\n`, `\r`, `\t`, otherwise `\u{hex}`) and at
/// most `max_chars` characters of it kept; a cut is marked `… [N more bytes]`. Backslashes are
/// kept as they are, so the result is for reading, not for parsing back.
pub fn sanitize(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(4)) + 24);
    for (kept, (at, c)) in s.char_indices().enumerate() {
        if kept >= max_chars {
            out.push_str(&format!("… [{} more bytes]", s.len() - at));
            return out;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Whether `s` would come out of [`sanitize`] unchanged at `max_chars`.
pub fn is_clean(s: &str, max_chars: usize) -> bool {
    s.chars().count() <= max_chars && !s.chars().any(is_unsafe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_length_capped() {
        let evil = "ok\nFAKE every check passed\r\x1b[8mhidden\x1b[0m\u{202E}txt";
        let safe = sanitize(evil, 100);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe}");
        assert_eq!(
            safe,
            "ok\\nFAKE every check passed\\r\\u{1b}[8mhidden\\u{1b}[0m\\u{202e}txt"
        );
        assert_eq!(sanitize("héllo wörld", 5), "héllo… [7 more bytes]");
        assert_eq!(sanitize("plain", 5), "plain");
        assert!(is_clean("hash-v1:d=64", MAX_ID_CHARS));
        assert!(!is_clean("a\nb", MAX_ID_CHARS) && !is_clean("abcdef", 5));
        let long = "x".repeat(10 << 20);
        let cut = sanitize(&long, MAX_MESSAGE_CHARS);
        assert!(cut.len() < 1100, "{}", cut.len());
        assert!(cut.ends_with(&format!("[{} more bytes]", (10 << 20) - 1024)));
    }
}
