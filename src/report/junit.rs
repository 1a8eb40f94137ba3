//! A regression check as a JUnit XML report, the format CI systems (GitLab, Jenkins, GitHub
//! test-report actions) display as test results: one test case per paired comparison, a
//! failure for each significantly worse one. Only the elements and attributes every consumer
//! reads are written (`testsuites`, `testsuite`, `testcase`, `failure`, `skipped`, `system-out`).
//! `polyprune gate` writes the same format, one test case per evaluation set.

use std::fmt::Write;

use crate::analysis::significance::{CheckRow, Verdict};
use crate::workflow::gate::{Decision, GateRecord};

/// The JUnit document for the rows of one `polyprune check` run.
pub fn check_report(rows: &[CheckRow], correction: &str, alpha: f64) -> String {
    let failures = rows.iter().filter(|r| r.verdict == Verdict::Worse).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let suite = format!("name=\"polyprune check\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\"", rows.len());
    let _ = writeln!(xml, "<testsuites {suite}>");
    let _ = writeln!(xml, "  <testsuite {suite}>");
    for r in rows {
        test_case(&mut xml, r, correction, alpha);
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn test_case(xml: &mut String, r: &CheckRow, correction: &str, alpha: f64) {
    let c = &r.comparison;
    let summary = format!(
        "{} candidate - baseline {:+.6} (95% CI [{:+.6}, {:+.6}], n {}), permutation p {:.4}, {correction}-adjusted p {:.4} at alpha {alpha}: {}",
        c.metric.as_str(),
        c.mean_difference,
        c.ci_lower,
        c.ci_upper,
        c.n,
        c.permutation_p,
        c.adjusted_p,
        match r.verdict {
            Verdict::Worse => "significantly worse",
            Verdict::Better => "significantly better",
            Verdict::Same => "no significant change beyond the tolerance",
        }
    );
    let _ = writeln!(xml, "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">", escape(&r.file), escape(&c.evaluation_set));
    if r.verdict == Verdict::Worse {
        let _ = writeln!(xml, "      <failure message=\"{}\" type=\"regression\">{}</failure>", escape(&summary), escape(&summary));
    } else {
        let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&summary));
    }
    xml.push_str("    </testcase>\n");
}

/// The JUnit document of one `polyprune gate` run: a test case per evaluation set, a failure
/// for a worse one, a skipped case for one the examples could not decide.
pub fn gate_report(record: &GateRecord) -> String {
    let count = |d: Decision| record.evaluations.iter().filter(|s| s.decision == d).count();
    let (failures, skipped) = (count(Decision::Worse), count(Decision::Undecided));
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let suite = format!(
        "name=\"polyprune gate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\"",
        record.evaluations.len()
    );
    let _ = writeln!(xml, "<testsuites {suite}>");
    let _ = writeln!(xml, "  <testsuite {suite}>");
    for s in &record.evaluations {
        let summary = format!(
            "{} difference (positive = candidate better) {:+.6}, {}-confidence sequence [{:+.6}, {:+.6}] after {} of {} examples, margin -{}: {}",
            s.metric,
            s.mean_difference,
            1.0 - record.alpha,
            s.interval.lower,
            s.interval.upper,
            s.examples,
            s.available,
            record.margin,
            s.decision.as_str()
        );
        let _ = writeln!(xml, "    <testcase classname=\"gate\" name=\"{}\" time=\"0\">", escape(&s.evaluation));
        match s.decision {
            Decision::Worse => {
                let _ = writeln!(xml, "      <failure message=\"{}\" type=\"regression\">{}</failure>", escape(&summary), escape(&summary));
            }
            Decision::Undecided => {
                let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(&summary));
            }
            Decision::NotWorse => {
                let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&summary));
            }
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Text for XML attribute values and element content. Characters XML 1.0 forbids (control
/// characters other than tab and line breaks) cannot be escaped at all, so they become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_characters_do_not_break_the_document() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}");
    }
}
