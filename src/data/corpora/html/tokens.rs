//! A small, forgiving HTML tokenizer: start tags with attributes, end tags, and text.
//!
//! It is not a full HTML5 parser (no tree building, no implied end tags); it only needs to be
//! good enough to find running text in well-formed, generated documentation (the handbook is
//! XHTML from DocBook, the declarations are generated HTML). Comments, doctypes and processing
//! instructions are skipped; the bodies of `<script>` and `<style>` are returned as one raw text
//! token so that a `<` inside JavaScript cannot be mistaken for a tag.

/// One piece of an HTML document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token<'a> {
    /// A start tag such as `<div class="para">` or `<br/>`.
    Open(Tag),
    /// An end tag such as `</div>`; the name is lower-cased.
    Close(String),
    /// Text between tags, still with its character references undecoded.
    Text(&'a str),
}

/// A start tag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tag {
    /// Lower-cased element name.
    pub name: String,
    /// Attributes in document order, names lower-cased, values as written (undecoded).
    pub attributes: Vec<(String, String)>,
    /// Written as `<name/>`.
    pub self_closing: bool,
}

impl Tag {
    /// The value of an attribute, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
    }

    /// Whether the whitespace-separated `class` attribute contains `class`.
    pub fn has_class(&self, class: &str) -> bool {
        self.attribute("class").is_some_and(|classes| classes.split_ascii_whitespace().any(|c| c == class))
    }
}

/// Elements whose content is raw text, not markup.
const RAW_TEXT_ELEMENTS: [&str; 2] = ["script", "style"];

/// Iterator over the tokens of an HTML string.
pub(crate) struct Tokens<'a> {
    html: &'a str,
    position: usize,
    /// Set right after `<script>`/`<style>`: the element whose end tag closes the raw text.
    raw_text_of: Option<&'static str>,
}

impl<'a> Tokens<'a> {
    pub fn new(html: &'a str) -> Self {
        Tokens { html, position: 0, raw_text_of: None }
    }

    fn rest(&self) -> &'a str {
        &self.html[self.position..]
    }

    /// Moves past the next occurrence of `terminator`, or to the end if there is none.
    fn skip_past(&mut self, terminator: &str) {
        self.position = match self.rest().find(terminator) {
            Some(offset) => self.position + offset + terminator.len(),
            None => self.html.len(),
        };
    }

    /// Text up to (not including) `end`, advancing past it.
    fn take_text_until(&mut self, end: usize) -> &'a str {
        let text = &self.html[self.position..end];
        self.position = end;
        text
    }

    fn raw_text(&mut self, element: &str) -> &'a str {
        let closing = format!("</{element}");
        let end = find_ignore_ascii_case(self.rest(), &closing).map(|offset| self.position + offset).unwrap_or(self.html.len());
        self.take_text_until(end)
    }

    fn end_tag(&mut self) -> Token<'a> {
        let name_start = self.position + 2;
        let name_end = name_start + name_length(&self.html[name_start..]);
        let name = self.html[name_start..name_end].to_ascii_lowercase();
        self.position = name_end;
        self.skip_past(">");
        Token::Close(name)
    }

    fn start_tag(&mut self) -> Token<'a> {
        let bytes = self.html.as_bytes();
        let name_start = self.position + 1;
        let mut cursor = name_start + name_length(&self.html[name_start..]);
        let name = self.html[name_start..cursor].to_ascii_lowercase();
        let mut attributes = Vec::new();
        let mut self_closing = false;
        loop {
            cursor = skip_whitespace(bytes, cursor);
            match bytes.get(cursor) {
                None => break,
                Some(b'>') => {
                    cursor += 1;
                    break;
                }
                Some(b'/') if bytes.get(cursor + 1) == Some(&b'>') => {
                    self_closing = true;
                    cursor += 2;
                    break;
                }
                Some(b'/') => cursor += 1,
                Some(_) => {
                    let (attribute, next) = parse_attribute(self.html, cursor);
                    attributes.push(attribute);
                    cursor = next;
                }
            }
        }
        self.position = cursor;
        if !self_closing {
            self.raw_text_of = RAW_TEXT_ELEMENTS.iter().copied().find(|&e| e == name);
        }
        Token::Open(Tag { name, attributes, self_closing })
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            if self.position >= self.html.len() {
                return None;
            }
            if let Some(element) = self.raw_text_of.take() {
                let text = self.raw_text(element);
                if !text.is_empty() {
                    return Some(Token::Text(text));
                }
                continue;
            }
            let rest = self.rest();
            if !rest.starts_with('<') {
                let end = rest.find('<').map_or(self.html.len(), |o| self.position + o);
                return Some(Token::Text(self.take_text_until(end)));
            }
            let after = &rest.as_bytes()[1..];
            if rest.starts_with("<!--") {
                self.skip_past("-->");
            } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
                let length = cdata.find("]]>").unwrap_or(cdata.len());
                self.position += "<![CDATA[".len();
                let text = self.take_text_until(self.position + length);
                self.skip_past("]]>");
                return Some(Token::Text(text));
            } else if rest.starts_with("<!") || rest.starts_with("<?") {
                self.skip_past(">");
            } else if after.first() == Some(&b'/') && after.get(1).is_some_and(u8::is_ascii_alphabetic) {
                return Some(self.end_tag());
            } else if after.first().is_some_and(u8::is_ascii_alphabetic) {
                return Some(self.start_tag());
            } else {
                // A lone '<' in text (e.g. "a < b"): it is text.
                let end = rest[1..].find('<').map_or(self.html.len(), |o| self.position + 1 + o);
                return Some(Token::Text(self.take_text_until(end)));
            }
        }
    }
}

/// Length in bytes of the tag or attribute name at the start of `text`.
fn name_length(text: &str) -> usize {
    text.bytes().position(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>' | b'=')).unwrap_or(text.len())
}

fn skip_whitespace(bytes: &[u8], mut cursor: usize) -> usize {
    while bytes.get(cursor).is_some_and(u8::is_ascii_whitespace) {
        cursor += 1;
    }
    cursor
}

/// Parses `name`, `name=value`, `name="value"` or `name='value'` at `start`; returns the
/// attribute and the position after it.
fn parse_attribute(html: &str, start: usize) -> ((String, String), usize) {
    let bytes = html.as_bytes();
    // At least one byte, so that a stray '=' cannot stall the loop.
    let name_end = start + name_length(&html[start..]).max(1);
    let name = html[start..name_end].to_ascii_lowercase();
    let mut cursor = skip_whitespace(bytes, name_end);
    if bytes.get(cursor) != Some(&b'=') {
        return ((name, String::new()), name_end);
    }
    cursor = skip_whitespace(bytes, cursor + 1);
    let (value, next) = match bytes.get(cursor) {
        Some(&quote @ (b'"' | b'\'')) => {
            let value_start = cursor + 1;
            let value_end = html[value_start..].find(char::from(quote)).map_or(html.len(), |o| value_start + o);
            (&html[value_start..value_end], (value_end + 1).min(html.len()))
        }
        _ => {
            let value_end = html[cursor..].bytes().position(|b| b.is_ascii_whitespace() || b == b'>').map_or(html.len(), |o| cursor + o);
            (&html[cursor..value_end], value_end)
        }
    };
    ((name, value.to_string()), next)
}

/// Byte offset of the first case-insensitive occurrence of the ASCII `needle` in `haystack`.
fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack.as_bytes().windows(needle.len()).position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(name: &str, attributes: &[(&str, &str)], self_closing: bool) -> Token<'static> {
        Token::Open(Tag {
            name: name.to_string(),
            attributes: attributes.iter().map(|&(n, v)| (n.to_string(), v.to_string())).collect(),
            self_closing,
        })
    }

    #[test]
    fn splits_tags_attributes_and_text() {
        let html = r#"<DIV Class="para x" id=main data-flag>Hi &amp; bye<br/></div>"#;
        let tokens: Vec<Token> = Tokens::new(html).collect();
        assert_eq!(
            tokens,
            vec![
                open("div", &[("class", "para x"), ("id", "main"), ("data-flag", "")], false),
                Token::Text("Hi &amp; bye"),
                open("br", &[], true),
                Token::Close("div".to_string()),
            ]
        );
    }

    #[test]
    fn quoted_values_may_contain_angle_brackets() {
        let tokens: Vec<Token> = Tokens::new("<a title='x > y'>t</a>").collect();
        assert_eq!(tokens[0], open("a", &[("title", "x > y")], false));
        assert_eq!(tokens[1], Token::Text("t"));
    }

    #[test]
    fn skips_comments_doctype_and_processing_instructions() {
        let html = "<?xml version='1.0'?><!DOCTYPE html><!-- <p>hidden</p> -->text";
        let tokens: Vec<Token> = Tokens::new(html).collect();
        assert_eq!(tokens, vec![Token::Text("text")]);
    }

    #[test]
    fn script_body_is_one_raw_text_token() {
        let html = "<script>if (a < b) { x = '</p>'; }</SCRIPT>after";
        let tokens: Vec<Token> = Tokens::new(html).collect();
        assert_eq!(tokens[1], Token::Text("if (a < b) { x = '</p>'; }"));
        assert_eq!(tokens[2], Token::Close("script".to_string()));
        assert_eq!(tokens[3], Token::Text("after"));
    }

    #[test]
    fn lone_less_than_is_text_and_truncated_input_ends_cleanly() {
        let tokens: Vec<Token> = Tokens::new("a < b<p").collect();
        assert_eq!(tokens[0], Token::Text("a "));
        assert_eq!(tokens[1], Token::Text("< b"));
        assert_eq!(tokens[2], open("p", &[], false));
        assert_eq!(tokens.len(), 3);
    }

    #[test]
    fn class_lookup_splits_on_whitespace() {
        let Some(Token::Open(tag)) = Tokens::new(r#"<ul class="docnav top">"#).next() else {
            panic!("expected a start tag");
        };
        assert!(tag.has_class("docnav"));
        assert!(tag.has_class("top"));
        assert!(!tag.has_class("doc"));
    }
}
