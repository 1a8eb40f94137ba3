//! "Did you mean" suggestions by Levenshtein edit distance.
//!
//! The distance counts the fewest single-character insertions, deletions and substitutions that
//! turn one string into the other (Levenshtein, 1966), computed with the usual two-row dynamic
//! programme in O(|a|·|b|) time. Comparison is case-insensitive because language codes are.

/// Levenshtein distance between `a` and `b`, over Unicode scalar values, ignoring case.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    // previous[j] = distance between a[..i] and b[..j] for the row above.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let deletion = previous[j + 1] + 1;
            let insertion = current[j] + 1;
            current[j + 1] = substitution.min(deletion).min(insertion);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `input`; the earliest one wins ties, so put preferred spellings
/// first. `None` only when there are no candidates.
pub(super) fn closest<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .enumerate()
        .min_by_key(|&(position, candidate)| (edit_distance(input, candidate), position))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_hand_counted_edits() {
        // Classic textbook pair: k->s, e->i, insert g.
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        // Case is ignored: only the missing 'a' counts.
        assert_eq!(edit_distance("DEU_LTN", "deu_Latn"), 1);
        // Non-ASCII letters count once each, not per UTF-8 byte.
        assert_eq!(edit_distance("bokmål", "bokmal"), 1);
    }

    #[test]
    fn distance_is_symmetric_on_samples() {
        for (a, b) in [("swh", "swa"), ("zho_Hans", "zh"), ("jp", "ja")] {
            assert_eq!(edit_distance(a, b), edit_distance(b, a));
        }
    }

    #[test]
    fn closest_prefers_smallest_distance_then_earliest() {
        assert_eq!(closest("dee", ["fra", "deu", "dan"]), Some("deu"));
        // "aa" is at distance 1 from both; the first listed wins.
        assert_eq!(closest("aa", ["ab", "ba"]), Some("ab"));
        assert_eq!(closest("x", std::iter::empty()), None);
    }
}
