//! Calibration windows from JSON lines (plain, gzip, zstd), Parquet (two row groups) and a glob
//! of three shards equal the windows from the same text through `file:`, with Gemma's
//! tokenizer and real German text (FLORES sentences from ../shared, three to a document).

mod common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, Mix};
use polyprune::data::{Language, TextRegistry};
use polyprune::model::ModelDir;

fn german_documents(shared: &Path) -> Vec<String> {
    let tsv = std::fs::read_to_string(shared.join("data/sib200/deu_Latn/train.tsv")).unwrap();
    let sentences: Vec<&str> = tsv.lines().skip(1).filter_map(|l| l.split('\t').nth(2)).map(str::trim).collect();
    sentences.chunks(3).map(|c| c.join(" ")).collect()
}

fn jsonl(texts: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        writeln!(out, "{}", serde_json::json!({"text": t, "timestamp": "2020-02-20T00:00:00Z", "url": format!("https://example.org/{i}")}))
            .unwrap();
    }
    out
}

fn write_parquet(path: &Path, groups: &[&[String]]) {
    let schema = Arc::new(parse_message_type("message document { REQUIRED BYTE_ARRAY text (UTF8); }").unwrap());
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, Arc::new(WriterProperties::builder().build())).unwrap();
    for group in groups {
        let mut row_group = writer.next_row_group().unwrap();
        let mut column = row_group.next_column().unwrap().unwrap();
        let values: Vec<ByteArray> = group.iter().map(|t| ByteArray::from(t.as_str())).collect();
        column.typed::<ByteArrayType>().write_batch(&values, None, None).unwrap();
        column.close().unwrap();
        row_group.close().unwrap();
    }
    writer.close().unwrap();
}

#[test]
fn record_sources_give_the_windows_of_the_same_text_through_file() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    let model = ModelDir::open(&model).unwrap();
    let tokenizer = model.tokenizer().unwrap();
    let texts = german_documents(&shared);
    assert!(texts.len() > 200, "{}", texts.len());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("same.txt"), texts.join("\n\n")).unwrap();
    let plain = jsonl(&texts);
    std::fs::write(d.join("de.jsonl"), &plain).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    std::fs::write(d.join("de.json.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(d.join("de.jsonl.zst"), zstd::stream::encode_all(&plain[..], 3).unwrap()).unwrap();
    let (first, second) = texts.split_at(texts.len() / 2);
    write_parquet(&d.join("de.parquet"), &[first, second]);
    let third = texts.len() / 3;
    for (k, part) in [&texts[..third], &texts[third..2 * third], &texts[2 * third..]].iter().enumerate() {
        std::fs::write(d.join(format!("shard-{k}.jsonl")), jsonl(part)).unwrap();
    }

    let registry = TextRegistry::for_project(&common::repo());
    let start = model.card.start_token().unwrap();
    let draw = |source: String| {
        // 64 windows of 128 tokens ask for about 260 KB, more than the split holds: every
        // document is read, as from the plain file.
        let spec = CalibrationSpec {
            languages: vec![Language::parse("de").unwrap()],
            mix: Mix::Even,
            samples: 64,
            seqlen: 128,
            seed: 5,
            source: Some(source),
        };
        CalibrationSet::draw(&spec, &registry, &tokenizer, start).unwrap()
    };
    let reference = draw(format!("file:{}", d.join("same.txt").display()));
    assert_eq!(reference.windows.len(), 64);
    for (spec, id_prefix) in [
        (format!("jsonl:{}", d.join("de.jsonl").display()), "de.jsonl:"),
        (format!("jsonl:{}", d.join("de.json.gz").display()), "de.json.gz:"),
        (format!("jsonl:{}", d.join("de.jsonl.zst").display()), "de.jsonl.zst:"),
        (format!("parquet:{}", d.join("de.parquet").display()), "de.parquet:row"),
        (format!("jsonl:{}/shard-*.jsonl", d.display()), "shard-"),
    ] {
        let set = draw(spec.clone());
        assert_eq!(set.windows, reference.windows, "{spec}");
        // Same chunks, so the same offsets; the ids name this source's file and line or row.
        let offsets = |s: &CalibrationSet| s.manifest.iter().map(|w| w.offset).collect::<Vec<_>>();
        assert_eq!(offsets(&set), offsets(&reference), "{spec}");
        assert!(set.manifest.iter().all(|w| w.first_document.starts_with(id_prefix) && w.last_document.starts_with(id_prefix)), "{spec}");
        let report = &set.text[0];
        assert_eq!(report.documents_read, report.documents_in_split, "{spec}");
        assert_eq!(report.documents_in_split, reference.text[0].documents_in_split, "{spec}");
    }
}
