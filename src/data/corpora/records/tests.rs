//! Record sources against the same text through `file:`, on small files the tests write.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::basic::Compression;
use ::parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::parser::parse_message_type;

use super::super::{file, FileFormat};
use super::*;

/// Sixty documents of varied length, some of several lines (no blank line inside, no trailing
/// white space, so the paragraphs of a `file:` copy are exactly these texts).
fn texts() -> Vec<String> {
    (0..60)
        .map(|i| {
            let sentences: Vec<String> = (0..1 + i % 4).map(|j| format!("Dokument {i}, Satz {j}: Größe {} – ü.", i * 7 + j)).collect();
            sentences.join(if i % 3 == 0 { "\n" } else { " " })
        })
        .collect()
}

fn jsonl_bytes(texts: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let line = serde_json::json!({"text": t, "timestamp": "2019-04-21T12:00:00Z", "url": format!("https://example.org/{i}")});
        writeln!(out, "{line}").unwrap();
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A Parquet file with one row group per slice: a UTF-8 column `column` (optional, `None` is a
/// null) and an INT64 column `id`, Snappy-compressed as the datasets library writes it.
fn write_parquet(path: &Path, column: &str, groups: &[Vec<Option<String>>]) {
    let message = format!("message document {{ OPTIONAL BYTE_ARRAY {column} (UTF8); REQUIRED INT64 id; }}");
    let schema = Arc::new(parse_message_type(&message).unwrap());
    let properties = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, properties).unwrap();
    for group in groups {
        let mut row_group = writer.next_row_group().unwrap();
        let mut text_column = row_group.next_column().unwrap().unwrap();
        let values: Vec<ByteArray> = group.iter().flatten().map(|t| ByteArray::from(t.as_str())).collect();
        let levels: Vec<i16> = group.iter().map(|t| i16::from(t.is_some())).collect();
        text_column.typed::<ByteArrayType>().write_batch(&values, Some(&levels), None).unwrap();
        text_column.close().unwrap();
        let mut id_column = row_group.next_column().unwrap().unwrap();
        let ids: Vec<i64> = (0..group.len() as i64).collect();
        id_column.typed::<Int64Type>().write_batch(&ids, None, None).unwrap();
        id_column.close().unwrap();
        row_group.close().unwrap();
    }
    writer.close().unwrap();
}

fn source(spec: &str) -> RecordSource {
    let (name, pattern) = spec.split_once(':').unwrap();
    RecordSource::parse(name, PathBuf::from(pattern)).unwrap()
}

fn read(spec: &str, split: CorpusSplit, take: Take) -> DataResult<SourceText> {
    source(spec).read(split, &SplitRule::default(), take)
}

fn texts_of(documents: &[Document]) -> Vec<&str> {
    documents.iter().map(|d| d.text.as_str()).collect()
}

/// The documents of the same texts written as a `file:` source, per split.
fn file_documents(dir: &Path, texts: &[String], split: CorpusSplit) -> Vec<Document> {
    let path = write(dir, "same.txt", texts.join("\n\n").as_bytes());
    file::documents(&path, &FileFormat::Paragraphs, split, &SplitRule::default()).unwrap()
}

const SPLITS: [CorpusSplit; 2] = [CorpusSplit::Calibration, CorpusSplit::Evaluation];

#[test]
fn jsonl_plain_gzip_and_zstd_give_the_documents_of_the_same_text_as_file() {
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    let plain = jsonl_bytes(&texts);
    let files = [
        write(dir.path(), "c4-de.jsonl", &plain),
        write(dir.path(), "c4-de.json.gz", &gzip(&plain)),
        write(dir.path(), "c4-de.jsonl.zst", &zstd(&plain)),
    ];
    for split in SPLITS {
        let expected = file_documents(dir.path(), &texts, split);
        assert!(expected.len() >= 5, "{split}: {}", expected.len());
        for path in &files {
            let spec = format!("jsonl:{}", path.display());
            for take in [Take::All, Take::Sample { bytes: 1 << 20, seed: 3 }] {
                let read = read(&spec, split, take).unwrap();
                assert_eq!(texts_of(&read.documents), texts_of(&expected), "{spec} {split} {take:?}");
                // Line numbers: document k of the file is on line k + 1.
                let name = path.file_name().unwrap().to_string_lossy();
                for d in &read.documents {
                    let line: usize = d.id.strip_prefix(&format!("{name}:")).unwrap().parse().unwrap();
                    assert_eq!(d.text, texts[line - 1]);
                }
                assert_eq!(read.report.documents_in_split, expected.len());
                assert_eq!(read.report.skipped_bad_records, 0);
            }
        }
    }
    // The second read came from the cached index beside each file.
    assert!(files.iter().all(|f| index_file(f).is_file()));
}

fn index_file(shard: &Path) -> PathBuf {
    PathBuf::from(format!("{}.polyprune-index", shard.display()))
}

#[test]
fn parquet_with_two_row_groups_gives_the_documents_of_the_same_text_as_file() {
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    let path = dir.path().join("train-00000-of-00001.parquet");
    let (first, second) = texts.split_at(25);
    let group = |t: &[String]| t.iter().cloned().map(Some).collect::<Vec<_>>();
    write_parquet(&path, "text", &[group(first), group(second)]);
    for split in SPLITS {
        let expected = file_documents(dir.path(), &texts, split);
        let read = read(&format!("parquet:{}", path.display()), split, Take::All).unwrap();
        assert_eq!(texts_of(&read.documents), texts_of(&expected), "{split}");
        for d in &read.documents {
            let row: usize = d.id.strip_prefix("train-00000-of-00001.parquet:row").unwrap().parse().unwrap();
            assert_eq!(d.text, texts[row]);
        }
        // Both row groups contribute.
        let rows: Vec<usize> = read.documents.iter().map(|d| d.id.rsplit("row").next().unwrap().parse().unwrap()).collect();
        assert!(rows.iter().any(|&r| r < 25) && rows.iter().any(|&r| r >= 25), "{rows:?}");
    }
    // Reading only rows of the second group (First takes the split's first documents, so take
    // a sample of one document per seed until one lands there) returns the right text.
    let chosen = (0..40)
        .map(|seed| read(&format!("parquet:{}", path.display()), CorpusSplit::Calibration, Take::Sample { bytes: 1, seed }).unwrap())
        .find(|r| r.documents[0].id.rsplit("row").next().unwrap().parse::<usize>().unwrap() >= 25)
        .expect("one of 40 single-document samples lies in the second group");
    let row: usize = chosen.documents[0].id.rsplit("row").next().unwrap().parse().unwrap();
    assert_eq!(chosen.documents[0].text, texts[row]);
}

#[test]
fn glob_of_three_shards_reads_them_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    // Written out of order; the last one compressed, as shards of one language may be mixed.
    write(dir.path(), "c4-de.00002.jsonl", &jsonl_bytes(&texts[40..]));
    write(dir.path(), "c4-de.00000.jsonl", &jsonl_bytes(&texts[..15]));
    write(dir.path(), "c4-de.00001.jsonl", &jsonl_bytes(&texts[15..40]));
    write(dir.path(), "other.jsonl", &jsonl_bytes(&texts[..3]));
    let spec = format!("jsonl:{}/c4-de.*.jsonl", dir.path().display());
    for split in SPLITS {
        let expected = file_documents(dir.path(), &texts, split);
        let read = read(&spec, split, Take::All).unwrap();
        assert_eq!(texts_of(&read.documents), texts_of(&expected), "{split}");
        let shards: Vec<&str> = read.report.files.iter().map(|f| f.rsplit('/').next().unwrap()).collect();
        assert_eq!(shards, ["c4-de.00000.jsonl", "c4-de.00001.jsonl", "c4-de.00002.jsonl"]);
    }
    // The index files written beside the shards are not shards themselves.
    let again = read(&format!("jsonl:{}/c4-de.*", dir.path().display()), CorpusSplit::Calibration, Take::All).unwrap();
    assert_eq!(again.report.files.len(), 3);
    let message = read(&format!("jsonl:{}/c5-*.jsonl", dir.path().display()), CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
    assert!(message.starts_with("no file matches '") && message.contains("c5-*.jsonl'; check the path"), "{message}");
}

#[test]
fn sample_is_uniform_over_documents_seeded_and_inside_its_split() {
    let dir = tempfile::tempdir().unwrap();
    // Documents of very different lengths: a length-weighted draw would favour the long ones.
    let texts: Vec<String> = (0..400).map(|i| format!("doc {i} {}", "x".repeat(if i % 2 == 0 { 10 } else { 500 }))).collect();
    let path = write(dir.path(), "big.json.gz", &gzip(&jsonl_bytes(&texts)));
    let spec = format!("jsonl:{}", path.display());
    let all = read(&spec, CorpusSplit::Calibration, Take::All).unwrap().documents;
    let evaluation: HashSet<String> =
        read(&spec, CorpusSplit::Evaluation, Take::All).unwrap().documents.into_iter().map(|d| d.id).collect();
    assert_eq!(all.len() + evaluation.len(), 400);
    let total: u64 = all.iter().map(|d| d.text.len() as u64).sum();
    let budget = total / 5;
    // K = ⌈budget · M / bytes⌉, computed independently of `choose`.
    let k = (budget as f64 * all.len() as f64 / total as f64).ceil() as usize;
    let position: std::collections::HashMap<&str, usize> = all.iter().enumerate().map(|(i, d)| (d.id.as_str(), i)).collect();
    let mut counts = vec![0usize; all.len()];
    let seeds = 300;
    for seed in 0..seeds {
        let sample = read(&spec, CorpusSplit::Calibration, Take::Sample { bytes: budget, seed }).unwrap().documents;
        assert_eq!(sample.len(), k);
        let positions: Vec<usize> = sample.iter().map(|d| position[d.id.as_str()]).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "file order, no repeats");
        assert!(sample.iter().all(|d| !evaluation.contains(&d.id)));
        for p in positions {
            counts[p] += 1;
        }
    }
    let again = read(&spec, CorpusSplit::Calibration, Take::Sample { bytes: budget, seed: 7 }).unwrap().documents;
    assert_eq!(again, read(&spec, CorpusSplit::Calibration, Take::Sample { bytes: budget, seed: 7 }).unwrap().documents);
    assert_ne!(again, read(&spec, CorpusSplit::Calibration, Take::Sample { bytes: budget, seed: 8 }).unwrap().documents);
    // Each document is in a sample with probability p = K/M. Short and long documents alike:
    // their mean counts over 300 seeds differ by far less than a length-weighted draw would
    // give (50x longer documents), within 5 standard errors of the binomial mean.
    let p = k as f64 / all.len() as f64;
    let mean_of = |long: bool| {
        let chosen: Vec<usize> = (0..all.len()).filter(|&i| (all[i].text.len() > 100) == long).map(|i| counts[i]).collect();
        (chosen.iter().sum::<usize>() as f64 / chosen.len() as f64, chosen.len())
    };
    for long in [false, true] {
        let (mean, n) = mean_of(long);
        let expected = seeds as f64 * p;
        let standard_error = (seeds as f64 * p * (1.0 - p) / n as f64).sqrt();
        assert!((mean - expected).abs() < 5.0 * standard_error, "long={long}: mean {mean}, expected {expected} ± {standard_error}");
    }
}

#[test]
fn bad_lines_are_errors_naming_file_line_and_field_or_counted_when_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = |t: &str| format!("{{\"text\": \"{t}\"}}\n");
    let cases = [
        ("notjson.jsonl", "{\"text\": oops}\n", "notjson.jsonl line 3: is not valid JSON (syntax error at column 10)"),
        ("nofield.jsonl", "{\"content\": \"x\", \"url\": \"u\"}\n", "nofield.jsonl line 3: has no field 'text' (fields: content, url)"),
        ("number.jsonl", "{\"text\": 42}\n", "number.jsonl line 3: field 'text' holds a number, not a string"),
    ];
    for (name, bad, needle) in cases {
        let content = format!("{}{}{bad}{}", good("Erster Satz."), good("Zweiter Satz."), good("Dritter Satz."));
        let path = write(dir.path(), name, content.as_bytes());
        let message = read(&format!("jsonl:{}", path.display()), CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
        assert!(message.contains(needle), "{message}");
        let fix =
            if name == "notjson.jsonl" { "check that the file is JSON lines" } else { "name the text field with --text-field <field>" };
        assert!(message.contains(fix), "{message}");
        assert!(message.contains("or pass --skip-bad-lines to skip and count such lines"), "{message}");
        // Skipped: the three good lines remain, one record counted.
        let skipping = format!("jsonl+skip-bad-lines:{}", path.display());
        let read_both: Vec<SourceText> = SPLITS.iter().map(|&s| read(&skipping, s, Take::All)).filter_map(Result::ok).collect();
        assert_eq!(read_both.iter().map(|r| r.documents.len()).sum::<usize>(), 3, "{name}");
        assert!(read_both.iter().all(|r| r.report.skipped_bad_records == 1), "{name}");
    }
    // A field named on the command line is the one asked for (and reported as missing).
    let path = dir.path().join("nofield.jsonl");
    let content = with_record_options(&format!("jsonl:{}", path.display()), Some("content"), false).unwrap();
    let message = read(&content, CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
    assert!(message.contains("nofield.jsonl line 1: has no field 'content' (fields: text)"), "{message}");
}

#[test]
fn truncated_gzip_and_zstd_streams_are_errors_naming_the_file_and_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let plain = jsonl_bytes(&texts());
    for (name, compressed, codec) in [("cut.json.gz", gzip(&plain), "gzip"), ("cut.jsonl.zst", zstd(&plain), "zstd")] {
        let path = write(dir.path(), name, &compressed[..compressed.len() * 2 / 3]);
        for spec in [format!("jsonl:{}", path.display()), format!("jsonl+skip-bad-lines:{}", path.display())] {
            let message = read(&spec, CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
            assert!(message.contains(&format!("{name}: the {codec} stream breaks off after line ")), "{message}");
            assert!(message.contains("the file is truncated or damaged: download it again"), "{message}");
        }
    }
}

#[test]
fn parquet_without_the_column_or_with_nulls_is_an_error_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wiki.parquet");
    let rows = |t: &[Option<&str>]| t.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
    write_parquet(&path, "content", &[rows(&[Some("Erster Absatz."), None]), rows(&[Some("Zweiter Absatz."), Some("Dritter.")])]);
    let message = read(&format!("parquet:{}", path.display()), CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
    assert!(
        message.contains("wiki.parquet has no column 'text' (columns: content, id); name the text column with --text-field <column>"),
        "{message}"
    );
    let message = read(&format!("parquet.id:{}", path.display()), CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
    assert!(message.contains("wiki.parquet: column 'id' holds INT64 values, not strings"), "{message}");
    let message = read(&format!("parquet.content:{}", path.display()), CorpusSplit::Calibration, Take::All).unwrap_err().to_string();
    assert!(message.contains("wiki.parquet row 1: column 'content' is null, not a string"), "{message}");
    assert!(message.contains("skip and count such rows"), "{message}");
    let skipping = format!("parquet.content+skip-bad-lines:{}", path.display());
    let read_both: Vec<SourceText> = SPLITS.iter().filter_map(|&s| read(&skipping, s, Take::All).ok()).collect();
    let mut ids: Vec<String> = read_both.iter().flat_map(|r| r.documents.iter().map(|d| d.id.clone())).collect();
    ids.sort();
    assert_eq!(ids, ["wiki.parquet:row0", "wiki.parquet:row2", "wiki.parquet:row3"]);
    assert!(read_both.iter().all(|r| r.report.skipped_bad_records == 1));
}

#[test]
fn a_changed_shard_is_indexed_again() {
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    let path = write(dir.path(), "s.jsonl", &jsonl_bytes(&texts[..30]));
    let spec = format!("jsonl:{}", path.display());
    let count = |spec: &str| SPLITS.iter().map(|&s| read(spec, s, Take::All).map_or(0, |r| r.documents.len())).sum::<usize>();
    assert_eq!(count(&spec), 30);
    write(dir.path(), "s.jsonl", &jsonl_bytes(&texts));
    assert_eq!(count(&spec), 60);
    // Another field is another index: the urls, then an error rather than the cached documents.
    let urls = format!("jsonl.url:{}", path.display());
    let url_documents: Vec<String> =
        SPLITS.iter().filter_map(|&s| read(&urls, s, Take::All).ok()).flat_map(|r| r.documents).map(|d| d.text).collect();
    assert_eq!(url_documents.len(), 60);
    assert!(url_documents.iter().all(|u| u.starts_with("https://example.org/")));
    assert!(read(&format!("jsonl.missing:{}", path.display()), CorpusSplit::Calibration, Take::All).is_err());
}
