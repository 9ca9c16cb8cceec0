//! What every text field shares: lengths counted in characters (Unicode
//! scalar values) of the text as the client sent it, no control characters
//! (Unicode `Cc`, [`char::is_control`]; a description may hold line breaks
//! and tabs), and blankness judged after trimming whitespace
//! ([`char::is_whitespace`]).
//!
//! The rules are stated this way so that a JSON Schema can state them
//! exactly (`maxLength` counts characters of the value as sent; a `pattern`
//! can forbid characters), and the API document and the server agree.

/// The message for a text holding a forbidden control character.
pub const CONTROL_MESSAGE: &str = "must not contain control characters";

/// The characters a description may hold although they are controls.
pub const DESCRIPTION_CONTROLS: [char; 3] = ['\t', '\n', '\r'];

/// Whether `text` holds a control character other than those in `allowed`.
pub fn has_control(text: &str, allowed: &[char]) -> bool {
    text.chars()
        .any(|c| c.is_control() && !allowed.contains(&c))
}

/// The length the limits count: characters of the raw text.
pub fn length(text: &str) -> usize {
    text.chars().count()
}

/// Why a text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("{}", CONTROL_MESSAGE)]
    Control,
    #[error("must not contain control characters other than tabs and line breaks")]
    ControlInBlock,
    #[error("must not be blank")]
    Blank,
}

/// A one-line text (a title, a name): at most `max` characters as sent, no
/// control characters, not blank; the trimmed text.
pub fn line(raw: &str, max: usize) -> Result<String, TextError> {
    if length(raw) > max {
        Err(TextError::TooLong(max))
    } else if has_control(raw, &[]) {
        Err(TextError::Control)
    } else if raw.trim().is_empty() {
        Err(TextError::Blank)
    } else {
        Ok(raw.trim().to_owned())
    }
}

/// A block of text (a description): at most `max` characters, no control
/// characters but tabs and line breaks; kept exactly as written (it may be
/// empty).
pub fn block(raw: String, max: usize) -> Result<String, TextError> {
    if length(&raw) > max {
        Err(TextError::TooLong(max))
    } else if has_control(&raw, &DESCRIPTION_CONTROLS) {
        Err(TextError::ControlInBlock)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_the_unicode_cc_category() {
        let controls: Vec<u32> = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| has_control(&c.to_string(), &[]))
            .map(u32::from)
            .collect();
        let expected: Vec<u32> = (0x00..=0x1F).chain(0x7F..=0x9F).collect();
        assert_eq!(controls, expected);
    }

    #[test]
    fn allowed_controls_pass() {
        assert!(!has_control("a\tb\nc\r", &DESCRIPTION_CONTROLS));
        assert!(has_control("a\u{0}b", &DESCRIPTION_CONTROLS));
        assert!(has_control("a\u{85}b", &DESCRIPTION_CONTROLS));
    }

    #[test]
    fn length_counts_characters() {
        assert_eq!(length("é🦀"), 2);
        assert_eq!(length("e\u{301}"), 2, "a combining mark is a character");
    }
}
