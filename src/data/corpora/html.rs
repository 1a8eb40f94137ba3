//! Plain running text out of HTML: drop markup, scripts, styles and navigation, decode
//! character references, keep paragraph breaks.
//!
//! Block-level elements (`p`, `div`, `li`, headings, ...) end a paragraph; inline elements
//! (`code`, `em`, `a`) do not, so "the <code>apt</code> tool" stays one sentence. Inside a
//! paragraph every run of whitespace becomes one space, because source indentation is not
//! text; `<br>` keeps a line break and `<pre>` keeps its lines. Elements a [`StripRules`] names
//! (by element, class or id) are dropped with everything inside them.

mod entities;
mod tokens;

pub(crate) use self::entities::decode_entities;
pub(crate) use self::tokens::{Tag, Token, Tokens};

/// Which elements to drop entirely, with their content.
#[derive(Debug, Clone, Copy)]
pub struct StripRules {
    /// Element names, lower case (e.g. `"script"`).
    pub skip_elements: &'static [&'static str],
    /// Values of the `class` attribute (e.g. `"docnav"`).
    pub skip_classes: &'static [&'static str],
    /// Values of the `id` attribute (e.g. `"banner"`).
    pub skip_ids: &'static [&'static str],
}

impl StripRules {
    /// Drops only what is never running text: the document head, scripts, styles, templates,
    /// `<nav>` blocks.
    pub const BASIC: StripRules =
        StripRules { skip_elements: &["head", "script", "style", "noscript", "template", "nav"], skip_classes: &[], skip_ids: &[] };

    fn skips(&self, tag: &Tag) -> bool {
        self.skip_elements.contains(&tag.name.as_str())
            || self.skip_classes.iter().any(|class| tag.has_class(class))
            || tag.attribute("id").is_some_and(|id| self.skip_ids.contains(&id))
    }
}

/// Elements that never have content or an end tag.
const VOID_ELEMENTS: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];

/// Elements whose start and end both separate paragraphs.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "title",
    "tr",
    "ul",
];

/// Elements that separate words but not paragraphs (table cells).
const CELL_ELEMENTS: &[&str] = &["td", "th"];

/// Stands for a `<br>` inside a paragraph until the paragraph is tidied. NUL never survives
/// decoding (it is removed from text), so it cannot collide with content.
const LINE_BREAK: char = '\0';

/// The plain text of `html` as a list of non-empty paragraphs.
pub fn html_to_paragraphs(html: &str, rules: &StripRules) -> Vec<String> {
    let mut extractor = TextExtractor::new(rules);
    for token in Tokens::new(html) {
        extractor.feed(&token);
    }
    extractor.finish()
}

/// The plain text of `html`, paragraphs separated by a blank line.
pub fn html_to_text(html: &str, rules: &StripRules) -> String {
    html_to_paragraphs(html, rules).join("\n\n")
}

/// Turns a token stream into paragraphs; fed token by token so that callers can cut a document
/// into parts (the declaration's articles) and extract each part separately.
pub(crate) struct TextExtractor<'r> {
    rules: &'r StripRules,
    /// The element being dropped and how many of its kind are open inside the drop.
    skipping: Option<(String, usize)>,
    preformatted_depth: usize,
    current: String,
    paragraphs: Vec<String>,
}

impl<'r> TextExtractor<'r> {
    pub fn new(rules: &'r StripRules) -> Self {
        TextExtractor { rules, skipping: None, preformatted_depth: 0, current: String::new(), paragraphs: Vec::new() }
    }

    pub fn feed(&mut self, token: &Token) {
        if let Some((element, depth)) = &mut self.skipping {
            match token {
                Token::Open(tag) if tag.name == *element && !is_empty_element(tag) => *depth += 1,
                Token::Close(name) if name == element => *depth -= 1,
                _ => {}
            }
            if *depth == 0 {
                self.skipping = None;
            }
            return;
        }
        match token {
            Token::Open(tag) => self.open(tag),
            Token::Close(name) => self.close(name),
            Token::Text(text) => self.text(text),
        }
    }

    pub fn finish(mut self) -> Vec<String> {
        self.flush();
        self.paragraphs
    }

    fn open(&mut self, tag: &Tag) {
        let name = tag.name.as_str();
        if self.rules.skips(tag) {
            if BLOCK_ELEMENTS.contains(&name) {
                self.flush();
            }
            if !is_empty_element(tag) {
                self.skipping = Some((tag.name.clone(), 1));
            }
        } else if name == "br" {
            self.current.push(LINE_BREAK);
        } else if BLOCK_ELEMENTS.contains(&name) {
            self.flush();
            if name == "pre" && !tag.self_closing {
                self.preformatted_depth += 1;
            }
        } else if CELL_ELEMENTS.contains(&name) {
            self.current.push(' ');
        }
    }

    fn close(&mut self, name: &str) {
        if BLOCK_ELEMENTS.contains(&name) {
            self.flush();
            if name == "pre" {
                self.preformatted_depth = self.preformatted_depth.saturating_sub(1);
            }
        } else if CELL_ELEMENTS.contains(&name) {
            self.current.push(' ');
        }
    }

    fn text(&mut self, raw: &str) {
        let decoded = decode_entities(raw);
        self.current.extend(decoded.chars().filter(|&c| c != LINE_BREAK));
    }

    fn flush(&mut self) {
        let raw = std::mem::take(&mut self.current);
        let paragraph = if self.preformatted_depth > 0 { tidy_preformatted(&raw) } else { tidy_flowing(&raw) };
        if !paragraph.is_empty() {
            self.paragraphs.push(paragraph);
        }
    }
}

fn is_empty_element(tag: &Tag) -> bool {
    tag.self_closing || VOID_ELEMENTS.contains(&tag.name.as_str())
}

/// Collapses whitespace within each `<br>`-separated line and drops empty lines.
fn tidy_flowing(raw: &str) -> String {
    raw.split(LINE_BREAK)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Keeps lines and indentation; drops trailing spaces and blank lines at either end.
fn tidy_preformatted(raw: &str) -> String {
    let unified = raw.replace(LINE_BREAK, "\n").replace("\r\n", "\n");
    let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html><head><title>Ignored title</title>
<style>p { color: red; }</style>
<script type="text/javascript">var s = "<p>not text</p>"; if (a < b) {}</script>
</head>
<body>
  <ul class="docnav top"><li><a href="prev.html">Previous</a></li><li>Next</li></ul>
  <h2 class="title">1.2. Caf&eacute; &amp; cr&#232;me</h2>
  <div class="para">
      Use <code>apt-get</code>   to install
      &lt;packages&gt;&nbsp;now.
  </div>
  <!-- a comment <p>hidden</p> -->
  <p>Line one<br/>line&#x20;two</p>
  <pre class="screen">$ ls
  a  b   </pre>
  <p>&laquo;Fin&raquo;<span class="indexterm">index entry</span>.</p>
  <div id="banner"><div>Banner <b>inside</b></div> still banner</div>
  <table><tr><td>cell</td><td>next</td></tr></table>
</body></html>"#;

    #[test]
    fn strips_markup_and_keeps_paragraphs() {
        let rules =
            StripRules { skip_elements: StripRules::BASIC.skip_elements, skip_classes: &["docnav", "indexterm"], skip_ids: &["banner"] };
        let paragraphs = html_to_paragraphs(SAMPLE, &rules);
        // "&eacute;" is not in the decoder's table, so it stays as written.
        assert_eq!(
            paragraphs,
            vec![
                "1.2. Caf&eacute; & crème",
                "Use apt-get to install <packages> now.",
                "Line one\nline two",
                "$ ls\n  a  b",
                "«Fin».",
                "cell next",
            ]
        );
    }

    #[test]
    fn basic_rules_keep_navigation_lists_but_drop_head_and_scripts() {
        let text = html_to_text(SAMPLE, &StripRules::BASIC);
        assert!(text.starts_with("Previous\n\nNext\n\n1.2."), "{text}");
        assert!(!text.contains("Ignored title"));
        assert!(!text.contains("not text"));
        assert!(!text.contains("color"));
        assert!(!text.contains("hidden"));
        assert!(text.contains("Banner inside\n\nstill banner"), "{text}");
        assert!(text.contains("index entry"));
    }

    #[test]
    fn inline_elements_do_not_split_words_or_sentences() {
        let text = html_to_text("<p>ab<em>cd</em>ef <a href='x'>link</a>.</p>", &StripRules::BASIC);
        assert_eq!(text, "abcdef link.");
    }

    #[test]
    fn nested_skipped_elements_are_dropped_to_their_matching_end() {
        let rules = StripRules { skip_elements: &[], skip_classes: &["toc"], skip_ids: &[] };
        let html = "<div class='toc'><div>a<div>b</div></div>c</div><div>kept</div>";
        assert_eq!(html_to_paragraphs(html, &rules), vec!["kept"]);
    }
}
