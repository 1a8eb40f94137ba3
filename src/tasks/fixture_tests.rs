//! Loaders for the formats users bring, run on the small files in
//! `tests/fixtures/tasks/` (written for these tests in the published layouts). Expected
//! prompts are worked out by hand from those files and the conventions in tasks.toml.

use std::path::{Path, PathBuf};

use super::example::{Example, TaskItems};
use super::load::{load, load_file, LoadOptions};
use super::spec::{TaskName, TaskSplit};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasks")
}

fn examples(task: TaskName, lang: &str, options: &LoadOptions) -> Vec<Example> {
    match load(task, lang, &fixtures(), options).unwrap().items {
        TaskItems::Choice(v) => v,
        TaskItems::Generation(_) => panic!("{task} gave generation items"),
    }
}

fn test_split() -> LoadOptions {
    LoadOptions { split: TaskSplit::Test, ..LoadOptions::default() }
}

fn continuations(e: &Example) -> Vec<&str> {
    e.choices.iter().map(|c| c.continuation()).collect()
}

#[test]
fn xnli_jsonl_with_numeric_and_word_labels() {
    let ex = examples(TaskName::Xnli, "deu_Latn", &test_split());
    assert_eq!(ex.len(), 3);
    assert_eq!(ex[0].choices[0].context(), "Der Hund schläft im Garten, richtig?");
    assert_eq!(
        continuations(&ex[0]),
        vec![" Ja, Ein Tier ruht draußen.", " Auch, Ein Tier ruht draußen.", " Nein, Ein Tier ruht draußen."]
    );
    assert_eq!(ex.iter().map(|e| e.gold).collect::<Vec<_>>(), vec![0, 1, 2]);
    // The blank line 3 is skipped but line numbers stay those of the file.
    assert_eq!(ex[2].id, "xnli/de/test/line4");
}

#[test]
fn xnli_original_tsv_keeps_only_the_asked_language() {
    let path = fixtures().join("xnli/xnli.test.tsv");
    let load_lang = |lang| match load_file(TaskName::Xnli, lang, &path, &test_split()).unwrap().items {
        TaskItems::Choice(v) => v,
        TaskItems::Generation(_) => unreachable!("xnli is a choice task"),
    };
    let en = load_lang("en");
    assert_eq!(en.iter().map(|e| (e.id.as_str(), e.gold)).collect::<Vec<_>>(), vec![("xnli/en/test/1", 0), ("xnli/en/test/3", 2)]);
    assert_eq!(en[1].choices[2].context(), "The window is open, right?");
    assert_eq!(en[1].choices[2].continuation(), " No, The window is closed.");
    let fr = load_lang("fr");
    assert_eq!(fr.len(), 1);
    assert_eq!(fr[0].choices[0].context(), "La fenêtre est ouverte, n'est-ce pas ?");
    assert_eq!(fr[0].choices[0].continuation(), " Oui, La fenêtre est fermée.");
}

#[test]
fn xstorycloze_tsv_with_shots_from_its_train_split() {
    let ex = examples(TaskName::Xstorycloze, "sw", &test_split());
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].id, "xstorycloze/sw/test/s1");
    assert_eq!(ex[0].choices[0].context(), "Amina aliamka mapema. Alioga haraka. Alivaa viatu vyake. Alikimbia kituoni.");
    assert_eq!(continuations(&ex[0]), vec![" Alikosa basi kwa dakika moja.", " Alilala tena kitandani."]);
    assert_eq!((ex[0].gold, ex[1].gold), (0, 1));
    // One shot from the one-story "train" file (the task's dev split).
    let shot = examples(TaskName::Xstorycloze, "swh_Latn", &LoadOptions { shots: 1, ..test_split() });
    assert_eq!(
        shot[1].choices[1].context(),
        "Sara alipika wali. Aliongeza chumvi. Aliweka mezani. Wageni walifika. Wote walikula kwa furaha.\n\n\
         Juma alipanda mti. Mvua ilianza kunyesha. Tawi liliteleza. Alishuka kwa uangalifu."
    );
}

#[test]
fn pawsx_tsv_keeps_quotes_and_orders_no_then_yes() {
    let ex = examples(TaskName::Pawsx, "fr", &test_split());
    assert_eq!(ex[0].choices[0].context(), "Le chat dort sur le \"canapé\", n'est-ce pas ?");
    assert_eq!(continuations(&ex[0]), vec![" Non, Sur le \"canapé\", le chat dort.", " Oui, Sur le \"canapé\", le chat dort."]);
    assert_eq!((ex[0].gold, ex[1].gold), (1, 0));
}

#[test]
fn belebele_jsonl_scores_letters() {
    let ex = examples(TaskName::Belebele, "sw", &test_split());
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].id, "belebele/swh_Latn/test/https://example.org/a#1");
    assert_eq!(
        ex[0].choices[0].context(),
        "P: Mto ulijaa baada ya mvua kubwa. Wakulima walihamisha mifugo yao kwenda milimani.\n\
         Q: Wakulima walipeleka mifugo wapi?\nA: Mtoni\nB: Milimani\nC: Sokoni\nD: Shuleni\nAnswer:"
    );
    assert_eq!(continuations(&ex[0]), vec![" A", " B", " C", " D"]);
    assert_eq!((ex[0].gold, ex[1].gold), (1, 3));
}

#[test]
fn translated_arc_reads_options_and_labelled_choices() {
    let ex = examples(TaskName::MArc, "de", &test_split());
    assert_eq!(ex[0].choices[0].context(), "Question: Welcher Stoff leitet Strom am besten?\nAnswer:");
    assert_eq!(continuations(&ex[0]), vec![" Holz", " Kupfer", " Glas", " Gummi"]);
    assert_eq!(ex[0].gold, 1);
    // HF-style choices object with digit labels: "1" is the first label.
    assert_eq!(continuations(&ex[1]), vec![" Licht", " Sand", " Lärm"]);
    assert_eq!(ex[1].gold, 0);
}

#[test]
fn translated_mmlu_puts_answers_in_the_prompt() {
    let ex = examples(TaskName::MMmlu, "spa_Latn", &test_split());
    assert_eq!(ex[0].choices[0].context(), "¿Cuánto es 7 por 8?\nA. 54\nB. 56\nC. 58\nD. 64\nAnswer:");
    assert_eq!(continuations(&ex[0]), vec![" A", " B", " C", " D"]);
    // A JSON integer is a 0-based index; a letter is a letter.
    assert_eq!((ex[0].gold, ex[1].gold), (1, 0));
    assert_eq!(ex[1].id, "m_mmlu/es/test/mmlu-2");
}

#[test]
fn translated_hellaswag_cleans_markup_and_joins_contexts() {
    let ex = examples(TaskName::MHellaswag, "fr", &test_split());
    assert_eq!(ex[0].choices[0].context(), "Cuisiner des crêpes: Une femme verse la pâte dans une poêle. Elle");
    assert_eq!(ex[0].choices[0].continuation(), " retourne la crêpe avec une spatule.");
    assert_eq!(ex[1].choices[1].context(), "Laver la voiture: Un homme remplit un seau d'eau savonneuse.");
    assert_eq!((ex[0].gold, ex[1].gold), (0, 1));
}

#[test]
fn user_formats_report_bad_records_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.en.jsonl");
    std::fs::write(&path, "{\"premise\": \"A.\", \"hypothesis\": \"B.\", \"label\": \"maybe\"}\n").unwrap();
    let err = load_file(TaskName::Xnli, "en", &path, &test_split()).unwrap_err().to_string();
    assert!(err.contains("test.en.jsonl, line 1: label must be 0/1/2 or entailment/neutral/contradiction, found \"maybe\""), "{err}");
}

/// A choices object whose lists are missing or hold other values is refused, not read as
/// fewer choices (the gold label could then point at another answer).
#[test]
fn a_choices_object_with_bad_lists_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (choices, expected) in [
        (r#"{"label": ["A", "B"]}"#, "'choices' has no 'text' list"),
        (r#"{"text": ["Licht", 7], "label": ["A", "B"]}"#, "'choices.text' holds a non-text item"),
        (r#"{"text": ["Licht", "Sand"], "label": "AB"}"#, "'choices.label' should be a list of texts"),
    ] {
        let path = dir.path().join("de_test.json");
        std::fs::write(&path, format!(r#"[{{"id": "q", "question": "Was?", "choices": {choices}, "answerKey": "A"}}]"#)).unwrap();
        let err = load_file(TaskName::MArc, "de", &path, &test_split()).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains("de_test.json"), "{err}");
    }
}
