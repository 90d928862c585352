//! Hygiene for strings that come from outside (AWS responses, events, scenario files) before
//! they reach a log line or a message (DESIGN §7).

/// Caps `raw` at `max_chars` characters and replaces control characters with spaces.
/// A capped string ends with `…` so a reader knows it was cut.
pub fn clean(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    for (count, c) in raw.chars().enumerate() {
        if count + 1 > max_chars {
            out.pop();
            out.push('…');
            return out;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// The cap for names (connections, pipelines) shown in titles.
pub const NAME_CAP: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(clean("a\nb\tc\u{7}", 50), "a b c ");
    }

    #[test]
    fn long_strings_are_capped_with_an_ellipsis() {
        let capped = clean(&"x".repeat(500), 10);
        assert_eq!(capped.chars().count(), 10);
        assert!(capped.ends_with('…'));
        assert_eq!(clean("short", 10), "short");
        assert_eq!(clean("exactly10!", 10), "exactly10!");
    }
}
