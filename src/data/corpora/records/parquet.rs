//! Parquet files (the Hugging Face datasets format) with the text in one string column, read
//! one row group at a time and only that column, through the crate's record API.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::Type as PhysicalType;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;

use super::index::Entry;
use super::{non_blank, Record, RecordText};
use crate::data::{DataError, DataResult};

fn bad_parquet(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> DataError + '_ {
    move |e| DataError::BadParquet { path: path.to_path_buf(), problem: e.to_string() }
}

/// The file's reader and a schema holding only the text column.
fn open(path: &Path, field: &str) -> DataResult<(SerializedFileReader<File>, Type)> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(bad_parquet(path))?;
    let root = reader.metadata().file_metadata().schema_descr().root_schema_ptr();
    let columns = root.get_fields();
    let Some(column) = columns.iter().find(|c| c.name() == field) else {
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        return Err(DataError::MissingColumn { path: path.to_path_buf(), field: field.to_string(), columns: names.join(", ") });
    };
    let physical = if column.is_group() { "nested (group)".to_string() } else { column.get_physical_type().to_string() };
    if column.is_group() || column.get_physical_type() != PhysicalType::BYTE_ARRAY {
        return Err(DataError::NotATextColumn { path: path.to_path_buf(), field: field.to_string(), physical });
    }
    let projection = Type::group_type_builder(root.name()).with_fields(vec![Arc::clone(column)]).build().map_err(bad_parquet(path))?;
    Ok((reader, projection))
}

/// Calls `visit` with every row of `path` in order until it returns `false`; with `wanted`
/// (ascending rows), row groups without a wanted row are not decoded.
pub(super) fn scan(path: &Path, field: &str, wanted: Option<&[Entry]>, visit: &mut dyn FnMut(Record) -> bool) -> DataResult<()> {
    let (reader, projection) = open(path, field)?;
    let mut first_row = 0u64;
    for group in 0..reader.num_row_groups() {
        let rows = u64::try_from(reader.metadata().row_group(group).num_rows()).unwrap_or(0);
        let range = first_row..first_row + rows;
        let needed = wanted.is_none_or(|w| w.iter().any(|e| range.contains(&e.ordinal)));
        if needed {
            let group_reader = reader.get_row_group(group).map_err(bad_parquet(path))?;
            let iter = group_reader.get_row_iter(Some(projection.clone())).map_err(bad_parquet(path))?;
            for (i, row) in iter.enumerate() {
                let row = row.map_err(bad_parquet(path))?;
                let text = row.get_column_iter().next().map(|(_, value)| value);
                if !visit(Record { ordinal: first_row + i as u64, offset: 0, text: value_text(text, field) }) {
                    return Ok(());
                }
            }
        }
        first_row = range.end;
        if wanted.is_some_and(|w| w.last().is_none_or(|last| last.ordinal < first_row)) {
            return Ok(());
        }
    }
    Ok(())
}

/// The texts of `wanted` (ascending rows of `path`, all known to hold a text).
pub(super) fn read_entries(path: &Path, field: &str, wanted: &[Entry]) -> DataResult<Vec<String>> {
    let mut texts = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    let mut changed = None;
    scan(path, field, Some(wanted), &mut |record| {
        if next.peek().is_some_and(|e| e.ordinal == record.ordinal) {
            next.next();
            match record.text {
                Ok(Some(text)) => texts.push(text),
                _ => changed = Some(record.ordinal),
            }
        }
        changed.is_none() && next.peek().is_some()
    })?;
    match changed {
        Some(row) => Err(DataError::MalformedFile { path: path.to_path_buf(), problem: format!("row {row} changed since it was indexed") }),
        None => Ok(texts),
    }
}

fn value_text(value: Option<&Field>, field: &str) -> RecordText {
    match value {
        Some(Field::Str(text)) => Ok(non_blank(text.clone())),
        // A BYTE_ARRAY column without the UTF8/STRING annotation: text if it decodes.
        Some(Field::Bytes(bytes)) => match std::str::from_utf8(bytes.data()) {
            Ok(text) => Ok(non_blank(text.to_string())),
            Err(_) => Err(format!("column '{field}' holds bytes that are not UTF-8 text")),
        },
        Some(Field::Null) | None => Err(format!("column '{field}' is null, not a string")),
        Some(other) => Err(format!("column '{field}' holds {other}, not a string")),
    }
}
