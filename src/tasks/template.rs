//! Prompt templates kept in the task data: literal text with `{name}` placeholders.
//!
//! Templates are parsed once when the catalogue loads and checked against the names a
//! task supplies, so a typo in the data fails at start-up, not halfway through a run.

use std::fmt;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Slot(String),
}

/// A parsed prompt template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// Why a template string is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// Parses `source`; every `{` must open a placeholder made of `[a-z_]` closed by `}`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| TemplateError(format!("template {source:?}: '{{' without a closing '}}'")))?;
            let name = &after[..close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(TemplateError(format!("template {source:?}: placeholder {{{name}}} must be lower-case letters and '_'")));
            }
            pieces.push(Piece::Slot(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Ok(Self { source: source.to_string(), pieces })
    }

    /// Fails when the template uses a placeholder outside `allowed`.
    pub fn check_names(&self, allowed: &[&str]) -> Result<(), TemplateError> {
        match self.slots().find(|s| !allowed.contains(s)) {
            Some(unknown) => Err(TemplateError(format!(
                "template {:?} uses {{{unknown}}}; this task offers {}",
                self.source,
                allowed.iter().map(|a| format!("{{{a}}}")).collect::<Vec<_>>().join(" ")
            ))),
            None => Ok(()),
        }
    }

    /// Fills the placeholders. Names were checked at load, so a missing value is a bug in
    /// the calling loader, not in user data.
    pub fn render(&self, values: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Slot(name) => {
                    let value = values
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| *v)
                        .unwrap_or_else(|| panic!("loader supplied no value for checked placeholder {{{name}}}"));
                    out.push_str(value);
                }
            }
        }
        out
    }

    fn slots(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Slot(name) => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_slots_in_place() {
        let t = Template::parse("Text: {text}\nTopic:").unwrap();
        assert_eq!(t.render(&[("text", "Hello.")]), "Text: Hello.\nTopic:");
    }

    #[test]
    fn rejects_unclosed_and_unknown_placeholders() {
        assert!(Template::parse("Text: {text").is_err());
        assert!(Template::parse("Text: {Text}").is_err());
        let t = Template::parse("{question} {answr}").unwrap();
        let err = t.check_names(&["question", "answer"]).unwrap_err();
        assert!(err.0.contains("{answr}"), "{}", err.0);
    }
}
