//! Prompt construction pinned on real examples from the shared data folder.
//!
//! Expected strings come from `scripts/tasks_reference_prompts.py`, which rebuilds them
//! in Python from the raw files without using this module; they are compared exactly
//! (no tolerance: prompts are text, and one changed space changes the tokens). Each test
//! goes through `prerequisite_missing` when `../shared/data` is absent (a failure under CI).

use std::path::{Path, PathBuf};

use super::example::{Example, GenerationExample, TaskItems};
use super::load::{load, load_file, LoadOptions};
use super::spec::{TaskName, TaskSplit};
use super::TaskError;

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        crate::util::prerequisite_missing(&format!("{} is absent (CI and the workplace provide ../shared/data)", dir.display()))
    }
}

fn opts(split: TaskSplit) -> LoadOptions {
    LoadOptions { split, ..LoadOptions::default() }
}

fn choices(task: TaskName, lang: &str, split: TaskSplit, dir: &Path) -> Vec<Example> {
    match load(task, lang, dir, &opts(split)).unwrap().items {
        TaskItems::Choice(v) => v,
        TaskItems::Generation(_) => panic!("{task} gave generation items"),
    }
}

fn generations(task: TaskName, lang: &str, dir: &Path) -> Vec<GenerationExample> {
    match load(task, lang, dir, &opts(TaskSplit::Test)).unwrap().items {
        TaskItems::Generation(v) => v,
        TaskItems::Choice(_) => panic!("{task} gave choice items"),
    }
}

fn contexts(e: &Example) -> Vec<&str> {
    e.choices.iter().map(|c| c.context()).collect()
}

fn continuations(e: &Example) -> Vec<&str> {
    e.choices.iter().map(|c| c.continuation()).collect()
}

#[test]
fn xcopa_prompts_match_the_reference() {
    let Some(dir) = data_dir() else { return };
    let it = choices(TaskName::Xcopa, "ita_Latn", TaskSplit::Dev, &dir);
    assert_eq!(it.len(), 100);
    assert_eq!(it[0].id, "xcopa/it/dev/0");
    assert_eq!(contexts(&it[0]), vec!["L'uomo aprì il rubinetto quindi"; 2]);
    assert_eq!(continuations(&it[0]), vec![" il gabinetto si riempì d'acqua.", " dell'acqua fluì dal beccuccio."]);
    assert_eq!(it[0].gold, 1);

    let zh = choices(TaskName::Xcopa, "zh", TaskSplit::Test, &dir);
    assert_eq!(zh.len(), 500);
    assert_eq!(contexts(&zh[0]), vec!["该物品用气泡包装纸包着 因为"; 2]);
    assert_eq!(continuations(&zh[0]), vec![" 它很易碎。", " 它很小。"]);
    assert_eq!(zh[0].gold, 0);

    let sw = choices(TaskName::Xcopa, "sw", TaskSplit::Dev, &dir);
    assert_eq!(contexts(&sw[3])[0], "Nilitaka kuokoa nishati kwa hiyo");
    assert_eq!(continuations(&sw[3]), vec![" nilisafisha sakafu ya chumba kisichotumika.", " nilizima taa za chumba kisichotumika."]);
    assert_eq!(sw[3].gold, 1);

    let tr = choices(TaskName::Xcopa, "tur", TaskSplit::Test, &dir);
    assert_eq!(contexts(&tr[1])[0], "Ceplerimi boşalttım bu yüzden");
    assert_eq!(continuations(&tr[1]), vec![" bir bilet koçanı aldım.", " bir silah buldum."]);
}

#[test]
fn xwinograd_partial_prompts_match_the_reference() {
    let Some(dir) = data_dir() else { return };
    let en = choices(TaskName::Xwinograd, "en", TaskSplit::Test, &dir);
    assert_eq!(en.len(), 2325);
    assert_eq!(
        contexts(&en[0]),
        vec![
            "The city councilmen refused the demonstrators a permit because The city councilmen",
            "The city councilmen refused the demonstrators a permit because the demonstrators",
        ]
    );
    // Partial scoring: the same continuation under each context.
    assert_eq!(continuations(&en[0]), vec![" feared violence."; 2]);
    assert_eq!(en[0].gold, 0);
    let quoted = en.iter().find(|e| e.id == "xwinograd/en/test/line213").unwrap();
    assert_eq!(contexts(quoted)[1], "Dan took the rear seat while Bill claimed the front because Bill");
    assert_eq!(continuations(quoted)[0], " \"Dibs!\" was slow.");

    let jp = choices(TaskName::Xwinograd, "jpn_Jpan", TaskSplit::Test, &dir);
    assert_eq!(jp.len(), 959);
    assert_eq!(jp[0].id, "xwinograd/jp/test/line2409");
    assert_eq!(contexts(&jp[0]), vec!["狙撃兵はテロリストを撃った。狙撃兵", "狙撃兵はテロリストを撃った。テロリスト"]);
    assert_eq!(continuations(&jp[0])[0], " は悪漢だったからだ。");
    assert_eq!(jp[0].gold, 1);

    let fr = choices(TaskName::Xwinograd, "fr", TaskSplit::Test, &dir);
    assert_eq!(fr.len(), 83);
    assert_eq!(contexts(&fr[0])[1], "La coupe n'entre pas dans la valise marron, car la valise");
    assert_eq!(continuations(&fr[0])[0], " est trop grande.");

    let ru = choices(TaskName::Xwinograd, "ru", TaskSplit::Test, &dir);
    assert_eq!(ru.len(), 315);
    assert_eq!(continuations(&ru[0])[0], " опасались насилия.");
    assert_eq!(
        contexts(&ru[0])[1],
        "Члены городского совета отказали организаторам митинга в разрешении, потому что организаторам митинга"
    );

    // The full stop that the data puts inside this pronoun span ("его.") is scored.
    let stop = ru.iter().find(|e| e.id == "xwinograd/ru/test/line3497").unwrap();
    assert!(contexts(stop)[1].ends_with("поэтому он передумал и включил телевизор"));
    assert_eq!(continuations(stop), vec![" ."; 2]);
    assert_eq!(stop.gold, 0);

    let zh = choices(TaskName::Xwinograd, "zh", TaskSplit::Test, &dir);
    assert_eq!(zh.len(), 16);
    assert_eq!(contexts(&zh[0])[0], "市政府拒绝给示威者颁发游行许可证，因市政府");
    assert_eq!(continuations(&zh[0])[0], " 担心暴力事件。");

    let pt = choices(TaskName::Xwinograd, "pt", TaskSplit::Test, &dir);
    assert_eq!(pt.len(), 263);
}

#[test]
fn sib200_prompts_match_the_reference() {
    let Some(dir) = data_dir() else { return };
    let labels = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"];
    let eng = choices(TaskName::Sib200, "en", TaskSplit::Dev, &dir);
    assert_eq!(eng.len(), 99);
    assert_eq!(eng[0].id, "sib200/eng_Latn/dev/548");
    assert_eq!(
        contexts(&eng[0])[0],
        "Text: With the change from the quarter to the half mile run, speed becomes of much less importance and endurance becomes an absolute necessity.\nTopic:"
    );
    let expected: Vec<String> = labels.iter().map(|l| format!(" {l}")).collect();
    assert_eq!(continuations(&eng[0]), expected);
    assert_eq!(eng[0].gold, 3);

    let zho = choices(TaskName::Sib200, "zho_Hans", TaskSplit::Test, &dir);
    assert_eq!(zho.len(), 204);
    assert_eq!(contexts(&zho[0])[0], "Text: 突变会添加新的基因变异，而选择则会从表达的基因变异池中把变异移除。\nTopic:");
    assert_eq!(zho[0].gold, 0);
    // A row whose text is quoted in the file (pandas quoting) comes out unquoted.
    let train = choices(TaskName::Sib200, "eng_Latn", TaskSplit::Train, &dir);
    let quoted = train.iter().find(|e| e.id == "sib200/eng_Latn/train/1239").unwrap();
    assert!(contexts(quoted)[0].starts_with("Text: \"She’s very cute and sings quite well, too,\" he said"));
}

#[test]
fn mgsm_prompts_and_golds_match_the_reference() {
    let Some(dir) = data_dir() else { return };
    let en = generations(TaskName::Mgsm, "en", &dir);
    assert_eq!(en.len(), 250);
    assert_eq!(
        en[0].request.context,
        "Question: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?\nAnswer:"
    );
    assert_eq!(en[0].gold, "18");
    assert_eq!(en[0].request.until, vec!["\n\n".to_string(), "Question:".to_string()]);
    assert_eq!(en[0].request.max_new_tokens, 32);
    let de = generations(TaskName::Mgsm, "deu_Latn", &dir);
    assert!(de[0].request.context.starts_with("Frage: Janets Enten legen 16 Eier pro Tag."));
    assert!(de[0].request.context.ends_with("Wie viel Dollar nimmt sie täglich auf dem Bauernmarkt ein?\nAntwort:"));
    let zh = generations(TaskName::Mgsm, "zh", &dir);
    assert_eq!(
        zh[0].request.context,
        "问题：珍妮特的鸭子每天下 16 颗蛋。她每天早上早餐时吃 3 颗，每天用 4 颗为自己的朋友做松饼。剩下的鸭蛋她每天拿去农贸市场卖，每颗新鲜鸭蛋卖 2 美元。她每天在农贸市场赚多少钱？\n答案："
    );
    let te = generations(TaskName::Mgsm, "te", &dir);
    assert!(te[0].request.context.starts_with("ప్రశ్న: జనెత్ బాతులు"));
    assert!(te[0].request.context.ends_with("?\nసమాధానం:"));
    // Golds written with group commas ("114,200") are kept as plain numbers.
    assert!(en.iter().any(|e| e.gold == "114200"), "no 114,200 gold in mgsm_en");
    assert!(en.iter().all(|e| !e.gold.contains(',')));
}

#[test]
fn translation_choice_pairs_the_aligned_sentences() {
    let Some(dir) = data_dir() else { return };
    let deu = choices(TaskName::Tatoeba, "deu-eng", TaskSplit::Test, &dir);
    assert_eq!(deu.len(), 1000);
    let first = &deu[0];
    assert_eq!(contexts(first)[0], "German: Maria sagte, sie wisse nicht, wo Tom sei.\nEnglish:");
    assert_eq!(first.choices[first.gold].continuation(), " Mary said she didn't know where Tom was.");
    assert_eq!(first.choices.len(), 4);
    // The other direction shows the English line and scores German candidates.
    let back = choices(TaskName::Tatoeba, "en-de", TaskSplit::Test, &dir);
    assert_eq!(contexts(&back[0])[0], "English: Mary said she didn't know where Tom was.\nGerman:");
    assert_eq!(back[0].choices[back[0].gold].target(), "Maria sagte, sie wisse nicht, wo Tom sei.");
    let swh = choices(TaskName::Tatoeba, "swh-eng", TaskSplit::Test, &dir);
    assert_eq!(swh.len(), 390);
    assert_eq!(contexts(&swh[0])[0], "Swahili: Alinileta kahawa.\nEnglish:");
    assert_eq!(swh[0].choices[swh[0].gold].target(), "He brought me coffee.");

    let flores = choices(TaskName::Flores, "deu_Latn-fra_Latn", TaskSplit::Test, &dir);
    assert_eq!(flores.len(), 204);
    assert_eq!(flores[0].id, "flores/deu_Latn-fra_Latn/test/1523");
    assert_eq!(
        contexts(&flores[0])[0],
        "German: Mutation sorgt für neue genetische Variationen und Selektion entfernt diese aus dem Pool exprimierter Variationen.\nFrench:"
    );
    assert_eq!(
        flores[0].choices[flores[0].gold].target(),
        "La mutation ajoute une nouvelle variation génétique, et la sélection l'enlève de la réserve des variations exprimées."
    );
}

#[test]
fn translation_distractors_are_fixed_by_the_seed() {
    let Some(dir) = data_dir() else { return };
    let load_with = |seed| match load(TaskName::Tatoeba, "fra-eng", &dir, &LoadOptions { seed, ..opts(TaskSplit::Test) }).unwrap().items {
        TaskItems::Choice(v) => v,
        TaskItems::Generation(_) => unreachable!("tatoeba is a choice task"),
    };
    let a = load_with(5);
    assert_eq!(a, load_with(5));
    let b = load_with(6);
    let same = a.iter().zip(&b).filter(|(x, y)| x.choices == y.choices).count();
    // Re-drawing 3 of 999 distractors plus the gold slot almost never repeats by chance.
    assert!(same < 10, "{same} of {} examples kept their candidates under a new seed", a.len());
    // Gold targets are the aligned English lines whatever the seed.
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.choices[x.gold].target(), y.choices[y.gold].target());
    }
}

#[test]
fn k_shot_prompts_are_drawn_from_dev_and_reproducible() {
    let Some(dir) = data_dir() else { return };
    let three = LoadOptions { split: TaskSplit::Test, shots: 3, seed: 11 };
    let shot = |o: &LoadOptions| match load(TaskName::Xcopa, "it", &dir, o).unwrap().items {
        TaskItems::Choice(v) => v,
        TaskItems::Generation(_) => unreachable!("xcopa is a choice task"),
    };
    let a = shot(&three);
    assert_eq!(a, shot(&three));
    let dev_demos: Vec<String> = choices(TaskName::Xcopa, "it", TaskSplit::Dev, &dir).iter().map(Example::demonstration).collect();
    let plain = choices(TaskName::Xcopa, "it", TaskSplit::Test, &dir);
    for (with, without) in a.iter().zip(&plain) {
        let context = with.choices[0].context();
        let prefix = context.strip_suffix(without.choices[0].context()).unwrap();
        let demos: Vec<&str> = prefix.strip_suffix("\n\n").unwrap().split("\n\n").collect();
        assert_eq!(demos.len(), 3, "{prefix}");
        assert!(demos.iter().all(|d| dev_demos.iter().any(|v| v == d)), "{demos:?}");
        // All choices share the prefix; continuations are untouched.
        assert!(with.choices.iter().all(|c| c.context() == context));
        assert_eq!(continuations(with), continuations(without));
    }
    assert_ne!(a, shot(&LoadOptions { seed: 12, ..three }));
}

#[test]
fn k_shot_from_the_same_split_never_shows_the_example_itself() {
    let Some(dir) = data_dir() else { return };
    let o = LoadOptions { split: TaskSplit::Test, shots: 4, seed: 3 };
    let TaskItems::Generation(shot) = load(TaskName::Mgsm, "en", &dir, &o).unwrap().items else { panic!("mgsm is a generation task") };
    let plain = generations(TaskName::Mgsm, "en", &dir);
    for (with, without) in shot.iter().zip(&plain) {
        let prefix = with.request.context.strip_suffix(&without.request.context).unwrap();
        assert_eq!(prefix.matches("\nAnswer: ").count(), 4, "{prefix}");
        assert!(!prefix.contains(&without.demonstration()), "{} shows itself", with.id);
    }
    // Asking for more shots than the rest of the file holds is an error, not a panic.
    let err = load(TaskName::Mgsm, "en", &dir, &LoadOptions { shots: 250, ..o }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task 'mgsm': 250 few-shot examples asked for but only 249 are available in the 'test' split; ask for fewer shots"
    );
}

#[test]
fn missing_and_damaged_files_name_the_file_and_the_fix() {
    let Some(dir) = data_dir() else { return };
    let empty = tempfile::tempdir().unwrap();
    let err = load(TaskName::Xcopa, "it", empty.path(), &opts(TaskSplit::Test)).unwrap_err();
    assert!(matches!(err, TaskError::MissingFile { .. }));
    let text = err.to_string();
    assert!(text.contains("xcopa/test.it.jsonl"), "{text}");
    assert!(text.ends_with("run `polyprune data fetch xcopa` or copy the file there by hand"), "{text}");

    let damaged = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(dir.join("xcopa/val.it.jsonl")).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    lines[4] = lines[4].replace("\"label\": 0", "\"label\": 7").replace("\"label\": 1", "\"label\": 7");
    let path = damaged.path().join("val.it.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let err = load_file(TaskName::Xcopa, "it", &path, &opts(TaskSplit::Dev)).unwrap_err().to_string();
    assert!(err.contains("val.it.jsonl, line 5: the gold answer (index 7) is outside the 2 choices"), "{err}");
    assert!(err.contains("polyprune data fetch xcopa"), "{err}");
}

#[test]
fn wrong_language_and_split_are_explained() {
    let Some(dir) = data_dir() else { return };
    let err = load(TaskName::Mgsm, "it", &dir, &opts(TaskSplit::Test)).unwrap_err().to_string();
    assert!(err.starts_with("task 'mgsm' has no language 'it': it has bn (ben_Beng), de (deu_Latn)"), "{err}");
    let err = load(TaskName::Xwinograd, "en", &dir, &opts(TaskSplit::Dev)).unwrap_err().to_string();
    assert_eq!(err, "task 'xwinograd' has no 'dev' split: it has test; pick one of these");
}

#[test]
fn every_shipped_file_loads_with_sane_examples() {
    let Some(dir) = data_dir() else { return };
    let catalog = super::spec::Catalog::get();
    let check = |task: TaskName, lang: &str, split: TaskSplit| {
        let loaded = load(task, lang, &dir, &opts(split)).unwrap_or_else(|e| panic!("{task} {lang} {split}: {e}"));
        assert!(!loaded.items.is_empty(), "{task} {lang} {split} is empty");
        if let TaskItems::Choice(examples) = &loaded.items {
            // Ids are unique, so few-shot exclusion by id cannot drop the wrong example.
            let ids: std::collections::HashSet<&str> = examples.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids.len(), examples.len(), "{task} {lang} {split} repeats ids");
        }
    };
    let fetched = |path: String| dir.join(path).is_file();
    for task in [TaskName::Xcopa, TaskName::Xwinograd, TaskName::Sib200, TaskName::Mgsm] {
        let spec = catalog.spec(task);
        for split in spec.splits() {
            for language in spec.languages_in(&dir, split) {
                assert!(fetched(spec.file_for(split, &language.code).unwrap()));
                check(task, &language.code, split);
            }
        }
    }
    // SIB-200 takes its languages from the folder: all 27 of the shared copy.
    assert_eq!(catalog.spec(TaskName::Sib200).languages_in(&dir, TaskSplit::Test).len(), 27);
    for language in &catalog.spec(TaskName::Tatoeba).languages {
        check(TaskName::Tatoeba, &format!("{}-eng", language.code), TaskSplit::Test);
        check(TaskName::Tatoeba, &format!("eng-{}", language.code), TaskSplit::Test);
    }
    for pair in ["eng_Latn-swh_Latn", "yor_Latn-hau_Latn", "zho_Hans-jpn_Jpan", "amh_Ethi-arb_Arab"] {
        check(TaskName::Flores, pair, TaskSplit::Dev);
    }
}
