//! Small text transformations the prompt builders share.
//!
//! They operate on characters, not bytes, so they are safe on every script; scripts
//! without case (Chinese, Thai, ...) pass through the case functions unchanged.

/// The text with its first character lower-cased ("Water flowed." -> "water flowed.").
/// XCOPA alternatives follow the connector mid-sentence, hence the lower case.
pub fn lowercase_first(text: &str) -> String {
    map_first(text, |c| c.to_lowercase().collect())
}

/// The text with its first character upper-cased.
pub fn uppercase_first(text: &str) -> String {
    map_first(text, |c| c.to_uppercase().collect())
}

fn map_first(text: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => f(first) + chars.as_str(),
        None => String::new(),
    }
}

/// The text trimmed and without one final punctuation mark ("He left." -> "He left"),
/// so a connector word can follow the premise of XCOPA.
pub fn strip_final_punctuation(text: &str) -> &str {
    let text = text.trim();
    match text.chars().last() {
        Some(last) if is_sentence_punctuation(last) => text[..text.len() - last.len_utf8()].trim_end(),
        _ => text,
    }
}

fn is_sentence_punctuation(c: char) -> bool {
    // ASCII marks plus the ideographic full stop, full-width marks, the Devanagari danda,
    // the Arabic question mark and the Ethiopic full stop.
    matches!(c, '.' | '!' | '?' | ';' | ':' | ',' | '。' | '！' | '？' | '．' | '।' | '؟' | '።')
}

/// HellaSwag's clean-up of WikiHow markup (Zellers et al., 2019, as evaluated in the
/// harness): " [title]" becomes ". ", any other "[...]" tag is dropped, double spaces
/// collapse, and the ends are trimmed.
pub fn clean_hellaswag(text: &str) -> String {
    let text = text.trim().replace(" [title]", ". ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('[') {
        match rest[open..].find(']') {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_changes_touch_only_the_first_character() {
        assert_eq!(lowercase_first("Il gabinetto si riempì."), "il gabinetto si riempì.");
        assert_eq!(lowercase_first("Çok yoruldu."), "çok yoruldu.");
        assert_eq!(lowercase_first("它很易碎。"), "它很易碎。");
        assert_eq!(uppercase_first("ébloui"), "Ébloui");
        assert_eq!(lowercase_first(""), "");
    }

    #[test]
    fn final_punctuation_goes_in_any_script() {
        assert_eq!(strip_final_punctuation("L'uomo aprì il rubinetto. "), "L'uomo aprì il rubinetto");
        assert_eq!(strip_final_punctuation("我掏空了口袋。"), "我掏空了口袋");
        assert_eq!(strip_final_punctuation("no mark"), "no mark");
        // Only one mark is removed, as the harness's [:-1] would.
        assert_eq!(strip_final_punctuation("Wait?!"), "Wait?");
    }

    #[test]
    fn hellaswag_markup_is_cleaned() {
        assert_eq!(clean_hellaswag(" Fold it [title] Press it [step] flat. "), "Fold it. Press it flat.");
        assert_eq!(clean_hellaswag("open [bracket"), "open [bracket");
    }
}
