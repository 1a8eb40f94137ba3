//! The Debian Administrator's Handbook (Hertzog & Mas), as installed by the Debian package
//! `debian-handbook`: one folder of XHTML pages per locale under
//! `/usr/share/doc/debian-handbook/html/<locale>/` (26 locales, `ar-MA` … `zh-TW`).
//!
//! Each chapter or section page is a document (id = file stem, e.g. `sect.apt-get`, the same in
//! every locale), so the split rule holds out the same pages in every language. The text is the
//! page's running prose: navigation bars, the table of contents, index anchors and `<pre>`
//! blocks (terminal sessions and configuration files, which are never translated) are dropped.
//!
//! Translations are incomplete: an untranslated paragraph is left in English in the localized
//! page (in ko-KR, el-GR, da-DK, hr-HR and ro-RO most of the book is). For a language-calibration
//! benchmark that would silently mix English into, say, the Korean calibration set, so in every
//! locale but `en-US` a paragraph is dropped when it occurs verbatim in the same `en-US` page
//! (catches short ones: captions, commands) or reads as English (catches untranslated prose
//! with a localized cross-reference spliced in; see `untranslated.rs`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::html::{html_to_paragraphs, StripRules};
use super::split_rule::SplitRule;
use super::text_file::read_utf8;
use super::untranslated::reads_as_english;
use super::{CorpusSplit, DataError, DataResult, Document, Language};

/// Where the Debian package installs the HTML.
pub const DEFAULT_HANDBOOK_ROOT: &str = "/usr/share/doc/debian-handbook/html";

/// The locale whose paragraphs mark untranslated text in the other locales.
const ENGLISH_LOCALE: &str = "en-US";

/// Publican/DocBook page furniture that is not running text.
const HANDBOOK_RULES: StripRules = StripRules {
    skip_elements: &["head", "script", "style", "noscript", "template", "nav", "pre"],
    skip_classes: &["docnav", "toc", "indexterm"],
    skip_ids: &["banner", "title"],
};

/// Whether the table gives the handbook a locale for this language.
pub(super) fn has_language(language: Language) -> bool {
    language.handbook_locale().is_some()
}

/// The languages the handbook is translated into.
pub(super) fn available_languages() -> Vec<Language> {
    Language::all().filter(|&l| has_language(l)).collect()
}

/// The documents of `language` that `rule` assigns to `split`, in file-name order.
pub(super) fn documents(root: &Path, language: Language, split: CorpusSplit, rule: &SplitRule) -> DataResult<Vec<Document>> {
    let locale = language.handbook_locale().ok_or_else(|| DataError::SourceLacksLanguage {
        source_name: "handbook".to_string(),
        language: language.to_string(),
        available: join(&available_languages()),
        hint: String::new(),
    })?;
    let folder = locale_folder(root, locale)?;
    let english = locale_folder(root, ENGLISH_LOCALE)?;
    let mut documents = Vec::new();
    for stem in page_stems(&folder)? {
        if rule.assign(&stem) != split {
            continue;
        }
        let page = page_paragraphs(&folder, &stem)?;
        let kept: Vec<String> = if locale == ENGLISH_LOCALE {
            page
        } else {
            let english_page = english_paragraphs(&english, &stem)?;
            page.into_iter().filter(|p| !english_page.contains(p) && !reads_as_english(p)).collect()
        };
        if !kept.is_empty() {
            documents.push(Document { id: stem, text: kept.join("\n\n") });
        }
    }
    Ok(documents)
}

fn locale_folder(root: &Path, locale: &str) -> DataResult<PathBuf> {
    let folder = root.join(locale);
    if folder.is_dir() {
        Ok(folder)
    } else {
        Err(DataError::SourceNotInstalled {
            what: format!("the Debian Administrator's Handbook ({locale})"),
            path: folder,
            fix: "install it with `make data` (which runs `apt-get install -y debian-handbook`)".to_string(),
        })
    }
}

/// File stems of the `.html` pages directly in `folder`, sorted.
fn page_stems(folder: &Path) -> DataResult<Vec<String>> {
    let entries = std::fs::read_dir(folder).map_err(|e| DataError::io(folder, e))?;
    let mut stems = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::io(folder, e))?.path();
        if let (Some(stem), Some("html")) = (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|e| e.to_str())) {
            stems.push(stem.to_string());
        }
    }
    stems.sort();
    Ok(stems)
}

fn page_paragraphs(folder: &Path, stem: &str) -> DataResult<Vec<String>> {
    let html = read_utf8(&folder.join(format!("{stem}.html")))?;
    Ok(html_to_paragraphs(&html, &HANDBOOK_RULES))
}

/// The English page's paragraphs; empty when the English page does not exist.
fn english_paragraphs(english: &Path, stem: &str) -> DataResult<HashSet<String>> {
    if !english.join(format!("{stem}.html")).is_file() {
        return Ok(HashSet::new());
    }
    Ok(page_paragraphs(english, stem)?.into_iter().collect())
}

fn join(languages: &[Language]) -> String {
    languages.iter().map(Language::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn installed_root() -> Option<PathBuf> {
        let root = PathBuf::from(DEFAULT_HANDBOOK_ROOT);
        if root.join(ENGLISH_LOCALE).is_dir() {
            Some(root)
        } else {
            crate::util::prerequisite_missing(&format!("debian-handbook is not installed at {DEFAULT_HANDBOOK_ROOT} (run `make data`)"))
        }
    }

    #[test]
    fn every_installed_locale_is_in_the_table_and_vice_versa() {
        let Some(root) = installed_root() else { return };
        let installed: BTreeSet<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let listed: BTreeSet<String> = available_languages().iter().filter_map(|l| l.handbook_locale()).map(String::from).collect();
        assert_eq!(installed, listed);
    }

    #[test]
    fn german_pages_become_clean_running_text() {
        let Some(root) = installed_root() else { return };
        let german = Language::parse("de").unwrap();
        let rule = SplitRule::default();
        let calibration = documents(&root, german, CorpusSplit::Calibration, &rule).unwrap();
        let page = calibration.iter().find(|d| d.id == "sect.apt-get").expect("sect.apt-get is a calibration page");
        // First paragraph of the page, checked by reading the HTML (inline <acronym>/<code> joined).
        assert!(page.text.starts_with("6.2. aptitude, apt-get und apt Befehle\n\nAPT ist ein gewaltiges Projekt"), "{}", &page.text[..200]);
        // This paragraph is left in English in de-DE; the English page has it verbatim.
        assert!(!page.text.contains("Both tools are built on top of the same library"));
        for document in &calibration {
            assert!(!document.text.contains("<div") && !document.text.contains("&gt;"), "{}", document.id);
            // The bottom navigation bar ("Zurück ... Weiter") is gone.
            assert!(!document.text.contains("ZurückKapitel"), "{}", document.id);
        }
    }

    #[test]
    fn german_splits_are_disjoint_and_match_the_python_reference() {
        let Some(root) = installed_root() else { return };
        let german = Language::parse("de").unwrap();
        let rule = SplitRule::default();
        let ids = |split| -> BTreeSet<String> { documents(&root, german, split, &rule).unwrap().into_iter().map(|d| d.id).collect() };
        let calibration = ids(CorpusSplit::Calibration);
        let evaluation = ids(CorpusSplit::Evaluation);
        assert!(calibration.is_disjoint(&evaluation));
        // scripts/data_split_reference.py: 24 of the 127 pages go to evaluation at share 0.2.
        let expected: BTreeSet<String> = [
            "advanced-administration",
            "case-study",
            "sect.after-first-boot",
            "sect.apt-frontends",
            "sect.aptosid",
            "sect.building-first-package",
            "sect.creating-accounts",
            "sect.dist-upgrade",
            "sect.ftp-file-server",
            "sect.http-ftp-proxy",
            "sect.ipv6",
            "sect.kali",
            "sect.other-derivatives",
            "sect.release-lifecycle",
            "sect.role-of-distributions",
            "sect.searching-packages",
            "sect.shell-environment",
            "sect.task-scheduling-cron-atd",
            "sect.ubuntu",
            "sect.virtual-private-network",
            "sect.why-gnu-linux",
            "sect.windows-emulation",
            "sect.windows-file-server-with-samba",
            "sect.x509-cert",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        // sect.kali is entirely untranslated in de-DE, so nothing of it is left.
        let kept_expected: BTreeSet<String> = expected.iter().filter(|s| *s != "sect.kali").cloned().collect();
        assert_eq!(evaluation, kept_expected);
        assert!(calibration.is_disjoint(&expected));
        let pages: BTreeSet<String> = page_stems(&root.join("de-DE")).unwrap().into_iter().collect();
        assert_eq!(pages.len(), 127);
        assert!(calibration.is_subset(&pages));
    }

    #[test]
    fn untranslated_english_is_dropped_from_korean() {
        let Some(root) = installed_root() else { return };
        let korean = Language::parse("ko").unwrap();
        let calibration = documents(&root, korean, CorpusSplit::Calibration, &SplitRule::default()).unwrap();
        let text: String = calibration.iter().map(|d| d.text.as_str()).collect();
        // An English paragraph of ko-KR/sect.apt-get.html with a Korean cross-reference in it.
        assert!(!text.contains("Be careful! Using apt --reinstall"));
        // The translated first sentence of ko-KR/the-debian-project.html survives.
        assert!(text.contains("세부적인 기술에 대해서 알아보기 전에, 데비안 프로젝트가 무엇인지"));
    }

    #[test]
    fn missing_install_and_missing_language_are_explained() {
        let rule = SplitRule::default();
        let swahili = Language::parse("sw").unwrap();
        let message = documents(Path::new("/nonexistent"), swahili, CorpusSplit::Calibration, &rule).unwrap_err().to_string();
        assert!(message.starts_with("source 'handbook' has no text for swh_Latn; available: eng_Latn, arb_Arab"), "{message}");
        let german = Language::parse("de").unwrap();
        let message = documents(Path::new("/nonexistent"), german, CorpusSplit::Calibration, &rule).unwrap_err().to_string();
        assert!(message.contains("not found at /nonexistent/de-DE; install it with `make data`"), "{message}");
    }
}
