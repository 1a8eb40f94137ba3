//! Decoding of HTML character references (`&amp;`, `&#233;`, `&#x26;`).
//!
//! Numeric references cover any character. Of the ~2,200 named references of HTML5 only the
//! ones documentation actually uses are listed; an unknown name is left as written rather than
//! guessed, so no text is silently lost.

/// Named references this decoder knows, with their characters.
const NAMED: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("shy", '\u{ad}'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("hellip", '…'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("bull", '•'),
    ("middot", '·'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("deg", '°'),
    ("times", '×'),
    ("euro", '€'),
];

/// Longest reference body worth scanning for; bounds the work on a stray `&`.
const MAX_REFERENCE_LEN: usize = 32;

/// Replaces every character reference in `text` by its character.
pub(crate) fn decode_entities(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(ampersand) = rest.find('&') {
        decoded.push_str(&rest[..ampersand]);
        let after = &rest[ampersand + 1..];
        match decode_one(after) {
            Some((character, consumed)) => {
                decoded.push(character);
                rest = &after[consumed..];
            }
            None => {
                decoded.push('&');
                rest = after;
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

/// Decodes the reference right after an `&`: its character and how many bytes (including the
/// `;`) it spans.
fn decode_one(after_ampersand: &str) -> Option<(char, usize)> {
    let window = &after_ampersand[..floor_char_boundary(after_ampersand, MAX_REFERENCE_LEN)];
    let semicolon = window.find(';')?;
    let body = &window[..semicolon];
    let character = match body.strip_prefix('#') {
        Some(number) => numeric_reference(number)?,
        None => NAMED.iter().find(|(name, _)| *name == body)?.1,
    };
    Some((character, semicolon + 1))
}

/// `#233` or `#xE9`; code points that are not characters become U+FFFD, as browsers do.
fn numeric_reference(number: &str) -> Option<char> {
    let value = match number.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => number.parse::<u32>().ok()?,
    };
    Some(match value {
        0 => '\u{fffd}',
        _ => char::from_u32(value).unwrap_or('\u{fffd}'),
    })
}

/// The largest index ≤ `limit` that lies on a character boundary of `text`.
fn floor_char_boundary(text: &str, limit: usize) -> usize {
    if limit >= text.len() {
        return text.len();
    }
    (0..=limit).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_named_and_numeric_references() {
        assert_eq!(decode_entities("a &lt;b&gt; &amp; c"), "a <b> & c");
        assert_eq!(decode_entities("caf&#233; caf&#xE9; caf&#XE9;"), "café café café");
        assert_eq!(decode_entities("&laquo;oui&raquo;"), "«oui»");
        assert_eq!(decode_entities("&#x1F600;"), "\u{1F600}");
    }

    #[test]
    fn leaves_unknown_or_broken_references_alone() {
        assert_eq!(decode_entities("AT&T and &unknown; &#xZZ; &"), "AT&T and &unknown; &#xZZ; &");
        assert_eq!(decode_entities("fish & chips; done"), "fish & chips; done");
    }

    #[test]
    fn invalid_code_points_become_replacement_character() {
        // U+D800 is a surrogate, 0x110000 is beyond Unicode, 0 is forbidden in HTML.
        assert_eq!(decode_entities("&#xD800;&#1114112;&#0;"), "\u{fffd}\u{fffd}\u{fffd}");
    }

    #[test]
    fn multibyte_text_near_ampersand_does_not_split_characters() {
        let text = format!("&{}", "é".repeat(40));
        assert_eq!(decode_entities(&text), text);
    }
}
