//! "Did you mean ...?" for mistyped names, by Levenshtein edit distance
//! (insertions, deletions and substitutions each cost 1; Levenshtein, 1966).

/// The candidate closest to `given`, if it is close enough to be a plausible typo:
/// at most 2 edits, or a third of the candidate's length for long names.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&given, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between two strings, counted in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // One row of the dynamic-programming table is enough: row[j] holds the distance
    // between the first i characters of a and the first j of b.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_matches_hand_counts() {
        // kitten -> sitten -> sittin -> sitting: the textbook 3.
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("xcpa", "xcopa"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("mgsm", "mgsm"), 0);
    }

    #[test]
    fn closest_picks_the_typo_and_rejects_strangers() {
        let names = ["xcopa", "xwinograd", "mgsm"];
        assert_eq!(closest("xcpa", names), Some("xcopa"));
        assert_eq!(closest("XWINOGRAND", names), Some("xwinograd"));
        assert_eq!(closest("belebele", names), None);
    }
}
