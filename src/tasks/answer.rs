//! Reading numbers out of model output and gold answers, for MGSM's exact match.
//!
//! MGSM (Shi et al., 2022) counts an answer right when the last number in the output
//! equals the gold number. Numbers are written differently across languages, so before
//! comparing, each is reduced to a canonical decimal string:
//! * digits of any common script (Devanagari, Bengali, Telugu, Thai, Arabic-Indic,
//!   full-width, ...) become ASCII digits;
//! * group separators go: when both ',' and '.' occur, the one that comes last is the
//!   decimal mark; when only one kind occurs, it groups thousands if it occurs more than
//!   once or is followed by exactly three digits ("5.000" in German, "1,234" in English),
//!   and is a decimal mark otherwise ("2,5" -> 2.5, "0.75");
//! * leading zeros, trailing fractional zeros and a lone trailing mark go ("18.00" -> 18).
//!
//! The three-digit rule reads an English "1.250" as 1250; MGSM's golds are whole numbers,
//! so that reading is the one that matches how people write them in every MGSM language.

/// Zero code points of the decimal digit blocks recognised besides ASCII.
const DIGIT_ZEROS: [u32; 12] = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0E50, 0xFF10];

/// The value of a decimal digit in any recognised script.
fn digit_value(c: char) -> Option<u32> {
    if let Some(d) = c.to_digit(10) {
        return Some(d);
    }
    let code = c as u32;
    DIGIT_ZEROS.iter().find(|&&zero| (zero..zero + 10).contains(&code)).map(|zero| code - zero)
}

/// The text with every recognised digit turned into ASCII and full-width marks folded.
fn ascii_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '，' => ',',
            '．' => '.',
            '－' | '−' => '-',
            _ => digit_value(c).and_then(|d| char::from_digit(d, 10)).unwrap_or(c),
        })
        .collect()
}

/// The last number in `output`, canonicalised; `None` when there is no digit at all.
pub fn last_number(output: &str) -> Option<String> {
    let text = ascii_digits(output);
    let bytes = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            // A number runs over digits and single separators between digits.
            while i < bytes.len()
                && (bytes[i].is_ascii_digit() || (matches!(bytes[i], b',' | b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            let negative = start > 0 && bytes[start - 1] == b'-';
            last = Some((negative, &text[start..i]));
        } else {
            i += 1;
        }
    }
    last.and_then(|(negative, digits)| canonical(negative, digits))
}

/// Canonical form of a gold answer such as "114,200" or "5.5"; `None` if it is not a number.
pub fn normalize_number(text: &str) -> Option<String> {
    let text = ascii_digits(text.trim());
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let body = body.trim_end_matches(['.', ',']);
    let valid = body.starts_with(|c: char| c.is_ascii_digit()) && body.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.');
    if valid {
        canonical(negative, body)
    } else {
        None
    }
}

/// Digits with separators -> "[-]integer[.fraction]" with no redundant zeros.
fn canonical(negative: bool, digits: &str) -> Option<String> {
    let decimal_mark = decimal_mark(digits);
    let mut integer = String::new();
    let mut fraction = String::new();
    let mut in_fraction = false;
    for c in digits.chars() {
        match c {
            '0'..='9' if in_fraction => fraction.push(c),
            '0'..='9' => integer.push(c),
            _ if Some(c) == decimal_mark => in_fraction = true,
            _ => {}
        }
    }
    let integer = integer.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let integer = if integer.is_empty() { "0" } else { integer };
    let mut out = String::new();
    if negative && (integer != "0" || !fraction.is_empty()) {
        out.push('-');
    }
    out.push_str(integer);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Some(out)
}

/// Which separator (if any) is the decimal mark, by the rules in the module docs.
fn decimal_mark(digits: &str) -> Option<char> {
    let last_comma = digits.rfind(',');
    let last_period = digits.rfind('.');
    match (last_comma, last_period) {
        (Some(c), Some(p)) => Some(if c > p { ',' } else { '.' }),
        (None, None) => None,
        (Some(at), None) | (None, Some(at)) => {
            let mark = digits[at..].chars().next()?;
            let occurrences = digits.matches(mark).count();
            let digits_after = digits.len() - at - 1;
            let groups_thousands = occurrences > 1 || digits_after == 3;
            (!groups_thousands).then_some(mark)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_number_is_found_and_canonicalised() {
        let cases = [
            (" 18\n\nQuestion: next", Some("18")),
            ("She makes $18.00 every day, so 18.", Some("18")),
            ("It is 3 + 4 = 7", Some("7")),
            ("Die Antwort ist 5.000 Euro.", Some("5000")),
            ("The total is 1,234,567 dollars", Some("1234567")),
            ("Respuesta: 2,5 kg", Some("2.5")),
            ("1.234,5", Some("1234.5")),
            ("1,234.5", Some("1234.5")),
            ("temperature fell to -3 degrees", Some("-3")),
            ("答案：１８", Some("18")),
            ("উত্তর: ১২০", Some("120")),
            ("คำตอบ: ๔๒", Some("42")),
            ("సమాధానం: ౭౦౦౦౦", Some("70000")),
            ("0.75 of it", Some("0.75")),
            ("007", Some("7")),
            ("no digits here", None),
            ("", None),
        ];
        for (output, expected) in cases {
            assert_eq!(last_number(output).as_deref(), expected, "{output:?}");
        }
    }

    #[test]
    fn gold_answers_from_the_files_normalise() {
        assert_eq!(normalize_number("114,200").as_deref(), Some("114200"));
        assert_eq!(normalize_number("18").as_deref(), Some("18"));
        assert_eq!(normalize_number(" 5,600\n").as_deref(), Some("5600"));
        assert_eq!(normalize_number("-0").as_deref(), Some("0"));
        assert_eq!(normalize_number("eighteen"), None);
        assert_eq!(normalize_number("18 apples"), None);
    }
}
