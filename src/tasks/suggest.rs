//! "Did you mean ...?" for mistyped task names: the nearest name by Levenshtein edit distance
//! (the `strsim` crate), offered only when it is close enough to be a plausible typo.

/// The candidate closest to `given`, if it is close enough to be a plausible typo:
/// at most 2 edits, or a third of the candidate's length for long names.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&given, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_picks_the_typo_and_rejects_strangers() {
        let names = ["xcopa", "xwinograd", "mgsm"];
        assert_eq!(closest("xcpa", names), Some("xcopa"));
        assert_eq!(closest("XWINOGRAND", names), Some("xwinograd"));
        assert_eq!(closest("belebele", names), None);
    }
}
