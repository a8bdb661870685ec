//! The Prometheus text exposition format, in the subset a textfile
//! collector needs, turned into Census custom metric series. Pure: text in,
//! series and malformed lines out; `super` reads the directory.
//!
//! One sample per line; comments (`# HELP`, `# TYPE` included) and blank
//! lines are ignored:
//!
//! ```text
//! # TYPE queue_depth gauge
//! queue_depth 42
//! queue_depth{queue="mail",site="par"} 7 1718000000000
//! ```
//!
//! A metric name is `[a-zA-Z_:][a-zA-Z0-9_:]*`; label values are quoted,
//! with `\\`, `\"` and `\n` escapes; the value is a decimal or exponent
//! float; a trailing timestamp (integer milliseconds) is accepted and
//! ignored: the value counts as of the sample that read it.
//!
//! Naming, the contract shown to operators (docs/custom-metrics.md) and
//! checked by the collector: `name` becomes `custom.name`; a labelled sample
//! appends `.<value>` per label in label-name order, so
//! `queue_depth{site="par",queue="mail"}` becomes `custom.queue_depth.mail.par`
//! and an alert rule selects them all with `custom.queue_depth.*`. A label
//! with an empty value is skipped (as Prometheus treats it as absent); in a
//! value, every character outside `[a-zA-Z0-9_:./@-]` becomes `_`.
//!
//! Invariants:
//! - nothing panics, whatever the input (property-tested below);
//! - every series returned satisfies `is_valid_series_name`, has a finite
//!   value and a name no other series in the same `Gathered` has (the
//!   first line wins);
//! - a malformed line is skipped with its 1-based number and the reason;
//!   the other lines still count;
//! - a `Gathered` holds at most `MAX_SERIES` series; the rest are counted.

use std::collections::HashSet;

use serde::Serialize;

/// Every custom series name starts with this, so custom series never
/// collide with the collector's own metrics.
pub const SERIES_PREFIX: &str = "custom.";
/// Most series one health sample carries, all files together.
pub const MAX_SERIES: usize = 1_000;
/// Longest series name, bytes, prefix and label values included.
pub const MAX_NAME_BYTES: usize = 200;
/// Malformed lines listed per file; the others are only counted.
pub const MAX_LISTED_ERRORS: usize = 10;

/// One custom series and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomMetric {
    /// The series name, already mapped: `custom.queue_depth.mail`.
    pub name: String,
    pub value: f64,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The malformed lines of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileErrors {
    /// The first `MAX_LISTED_ERRORS`, in line order.
    pub listed: Vec<LineError>,
    /// How many more lines were malformed.
    pub unlisted: usize,
}

impl FileErrors {
    fn push(&mut self, line: usize, reason: String) {
        if self.listed.len() < MAX_LISTED_ERRORS {
            self.listed.push(LineError { line, reason });
        } else {
            self.unlisted += 1;
        }
    }
}

/// The series of one sample, gathered file after file within the bounds.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// In file order, then line order.
    pub metrics: Vec<CustomMetric>,
    /// Valid series left out because `MAX_SERIES` was reached.
    pub over_limit: usize,
    names: HashSet<String>,
}

impl Gathered {
    /// Parses one file's text and adds its series; returns its malformed
    /// lines, a repeated series name included.
    pub fn add_file(&mut self, text: &str) -> FileErrors {
        let mut errors = FileErrors::default();
        for (index, line) in text.lines().enumerate() {
            let problem = match parse_line(line) {
                Ok(None) => None,
                Ok(Some(metric)) => self.add(metric),
                Err(reason) => Some(reason),
            };
            if let Some(reason) = problem {
                errors.push(index + 1, reason);
            }
        }
        errors
    }

    /// Adds a series unless its name was already seen; the reason otherwise.
    fn add(&mut self, metric: CustomMetric) -> Option<String> {
        if self.names.contains(&metric.name) {
            return Some(format!("series {} was already read from an earlier line or file; this value is ignored", metric.name));
        }
        if self.metrics.len() >= MAX_SERIES {
            self.over_limit += 1;
            return None;
        }
        self.names.insert(metric.name.clone());
        self.metrics.push(metric);
        None
    }
}

/// The series of one text alone, and its malformed lines (at most
/// `MAX_LISTED_ERRORS` of them).
pub fn parse_textfile(text: &str) -> (Vec<CustomMetric>, Vec<LineError>) {
    let mut gathered = Gathered::default();
    let errors = gathered.add_file(text);
    (gathered.metrics, errors.listed)
}

/// One line: `Ok(None)` for a comment or a blank line, the series for a
/// sample, the reason it is malformed otherwise.
pub fn parse_line(line: &str) -> Result<Option<CustomMetric>, String> {
    let line = line.trim_matches(is_blank);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut cur = Cursor { rest: line };
    let name = cur.take_while(is_name_char);
    match name.chars().next() {
        None => return Err(format!("expected a metric name, found {}", describe_next(cur.rest))),
        Some(c) if !is_name_start(c) => return Err(format!("metric name {name:?} must start with a letter, '_' or ':'")),
        Some(_) => {}
    }
    let labels = if cur.eat('{') {
        parse_labels(&mut cur)?
    } else {
        if cur.rest.starts_with(|c| !is_blank(c)) {
            return Err(format!("unexpected {} after metric name {name:?}", describe_next(cur.rest)));
        }
        Vec::new()
    };
    let mut tokens = cur.rest.split(is_blank).filter(|t| !t.is_empty());
    let value = tokens.next().ok_or_else(|| format!("metric {name:?} has no value"))?;
    let value = parse_value(value)?;
    if let Some(timestamp) = tokens.next() {
        timestamp.parse::<i64>().map_err(|_| format!("timestamp {timestamp:?} is not an integer (milliseconds since the epoch)"))?;
    }
    if let Some(extra) = tokens.next() {
        return Err(format!("unexpected {extra:?} after the value and timestamp"));
    }
    Ok(Some(CustomMetric { name: series_name(name, labels)?, value }))
}

/// Whether `name` is a well-formed custom series name (what the collector
/// accepts).
pub fn is_valid_series_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(SERIES_PREFIX) else { return false };
    name.len() <= MAX_NAME_BYTES && rest.starts_with(is_name_start) && rest.chars().all(is_series_char)
}

/// `custom.<name>` then `.<value>` per non-empty label, in label-name order.
fn series_name(name: &str, mut labels: Vec<(&str, String)>) -> Result<String, String> {
    labels.sort_by(|a, b| a.0.cmp(b.0));
    let mut series = format!("{SERIES_PREFIX}{name}");
    for (_, value) in labels.iter().filter(|(_, v)| !v.is_empty()) {
        series.push('.');
        series.extend(value.chars().map(|c| if is_series_char(c) { c } else { '_' }));
    }
    if series.len() > MAX_NAME_BYTES {
        let start: String = series.chars().take(40).collect();
        return Err(format!("series name {start}... is {} bytes; the limit is {MAX_NAME_BYTES}", series.len()));
    }
    Ok(series)
}

/// The labels after `{`, up to and including `}`.
fn parse_labels<'a>(cur: &mut Cursor<'a>) -> Result<Vec<(&'a str, String)>, String> {
    let mut labels: Vec<(&str, String)> = Vec::new();
    loop {
        cur.skip_blanks();
        if cur.eat('}') {
            return Ok(labels);
        }
        let label = cur.take_while(is_label_char);
        match label.chars().next() {
            None => return Err(format!("expected a label name or '}}', found {}", describe_next(cur.rest))),
            Some(c) if c.is_ascii_digit() => return Err(format!("label name {label:?} must not start with a digit")),
            Some(_) => {}
        }
        cur.skip_blanks();
        if !cur.eat('=') {
            return Err(format!("expected '=' after label {label}"));
        }
        cur.skip_blanks();
        if !cur.eat('"') {
            return Err(format!("expected '\"' to open the value of label {label}"));
        }
        let value = cur.quoted(label)?;
        if labels.iter().any(|(l, _)| *l == label) {
            return Err(format!("label {label} is given twice"));
        }
        labels.push((label, value));
        cur.skip_blanks();
        if !cur.eat(',') && !cur.rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' after the value of label {label}"));
        }
    }
}

fn parse_value(token: &str) -> Result<f64, String> {
    let value: f64 = token.parse().map_err(|_| format!("value {token:?} is not a number"))?;
    if value.is_finite() { Ok(value) } else { Err(format!("value {token:?} is not a finite number (NaN and infinities are refused)")) }
}

/// The unread rest of a line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c| !keep(c)).unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches(is_blank);
    }

    /// A label value after its opening quote, through its closing quote.
    fn quoted(&mut self, label: &str) -> Result<String, String> {
        let mut value = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => return Err(format!("unknown escape \\{other} in the value of label {label}")),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(format!("the value of label {label} has no closing '\"'"))
    }
}

/// The next character for an error message: `'{'`, or "the end of the line".
fn describe_next(rest: &str) -> String {
    rest.chars().next().map_or_else(|| "the end of the line".to_string(), |c| format!("{c:?}"))
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters a series name may hold: metric name characters, and what
/// label values commonly need (`.` of addresses, `/` of paths, `-` of
/// device names, `@` of unit instances).
fn is_series_char(c: char) -> bool {
    is_name_char(c) || matches!(c, '.' | '/' | '@' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(metrics: &[CustomMetric]) -> Vec<(&str, f64)> {
        metrics.iter().map(|m| (m.name.as_str(), m.value)).collect()
    }

    #[test]
    fn plain_and_labelled_samples_with_comments_and_timestamps() {
        let text = "# HELP queue_depth Messages waiting.\n\
                    # TYPE queue_depth gauge\n\
                    \n\
                    queue_depth 42\n\
                    queue_depth{queue=\"mail\"} 7\n\
                    queue_depth{site=\"par\",queue=\"mail\"} 3 1718000000000\n\
                    backup:last_success_seconds\t-1.5e3\r\n\
                    \t  # an indented comment\n\
                    build_info{version=\"1.2.3\", commit=\"\",} 1\n";
        let (metrics, errors) = parse_textfile(text);
        assert_eq!(errors, []);
        assert_eq!(
            names(&metrics),
            [
                ("custom.queue_depth", 42.0),
                ("custom.queue_depth.mail", 7.0),
                // label-name order: queue before site, whatever the writing order
                ("custom.queue_depth.mail.par", 3.0),
                ("custom.backup:last_success_seconds", -1500.0),
                // an empty label value is no label; a trailing comma is allowed
                ("custom.build_info.1.2.3", 1.0),
            ]
        );
    }

    #[test]
    fn label_values_are_unescaped_then_made_name_safe() {
        let (metrics, errors) = parse_textfile(
            "svc_up{unit=\"getty@tty1.service\"} 1\n\
             disk_errors{path=\"/srv/data 2\",dev=\"dm-0\"} 0\n\
             odd{v=\"a\\\"b\\\\c\\nd é\"} 5\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            names(&metrics),
            [("custom.svc_up.getty@tty1.service", 1.0), ("custom.disk_errors.dm-0./srv/data_2", 0.0), ("custom.odd.a_b_c_d__", 5.0)]
        );
        assert!(metrics.iter().all(|m| is_valid_series_name(&m.name)));
    }

    #[test]
    fn malformed_lines_are_skipped_with_their_line_numbers() {
        let text = "good 1\n\
                    9lives 1\n\
                    no_value\n\
                    bad_value abc\n\
                    not_finite NaN\n\
                    inf +Inf\n\
                    labels{a=\"x\" 1\n\
                    labels{a=x} 1\n\
                    labels{a=\"x\",a=\"y\"} 1\n\
                    ts 1 yesterday\n\
                    extra 1 2 3\n\
                    dash-name 1\n\
                    also_good{l=\"v\"} 2\n\
                    escape{a=\"\\t\"} 1\n\
                    {a=\"b\"} 1\n";
        let (metrics, errors) = parse_textfile(text);
        assert_eq!(names(&metrics), [("custom.good", 1.0), ("custom.also_good.v", 2.0)]);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        // at most MAX_LISTED_ERRORS are listed
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for (i, expected) in [
            "line 2: metric name \"9lives\" must start with",
            "line 3: metric \"no_value\" has no value",
            "line 4: value \"abc\" is not a number",
            "line 5: value \"NaN\" is not a finite number",
            "line 6: value \"+Inf\" is not a finite number",
            "line 7: expected ',' or '}' after the value of label a",
            "line 8: expected '\"' to open the value of label a",
            "line 9: label a is given twice",
            "line 10: timestamp \"yesterday\" is not an integer",
            "line 11: unexpected \"3\" after the value and timestamp",
        ]
        .iter()
        .enumerate()
        {
            assert!(reasons[i].starts_with(expected), "{:?} should start with {expected:?}", reasons[i]);
        }

        let mut gathered = Gathered::default();
        let all = gathered.add_file(text);
        assert_eq!((all.listed.len(), all.unlisted), (MAX_LISTED_ERRORS, 3), "dash-name, escape and the missing name are counted");
    }

    #[test]
    fn repeated_series_keep_the_first_value_across_files() {
        let mut gathered = Gathered::default();
        assert_eq!(gathered.add_file("a 1\nb{x=\"1\"} 2\n"), FileErrors::default());
        let errors = gathered.add_file("c 3\na 9\nb{x=\"1\"} 9\n");
        assert_eq!(errors.listed.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
        assert!(errors.listed[0].reason.contains("series custom.a was already read"), "{errors:?}");
        assert_eq!(names(&gathered.metrics), [("custom.a", 1.0), ("custom.b.1", 2.0), ("custom.c", 3.0)]);
    }

    #[test]
    fn bounds_on_series_count_and_name_length() {
        let text: String = (0..MAX_SERIES + 5).map(|i| format!("m_{i} {i}\n")).collect();
        let mut gathered = Gathered::default();
        assert_eq!(gathered.add_file(&text), FileErrors::default());
        assert_eq!((gathered.metrics.len(), gathered.over_limit), (MAX_SERIES, 5));
        assert_eq!(gathered.metrics.last().map(|m| m.name.as_str()), Some("custom.m_999"));

        let longest = "n".repeat(MAX_NAME_BYTES - SERIES_PREFIX.len());
        let (metrics, errors) = parse_textfile(&format!("{longest} 1\n{longest}x 1\nshort{{l=\"{longest}\"}} 1\n"));
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0].name.len(), MAX_NAME_BYTES);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
        assert!(errors[0].reason.contains("is 201 bytes; the limit is 200"), "{errors:?}");
    }

    #[test]
    fn the_naming_examples_in_the_docs_hold() {
        let doc = include_str!("../../../../docs/custom-metrics.md");
        let rows: Vec<(&str, &str)> = doc
            .lines()
            .filter_map(|l| match l.strip_prefix("| `")?.strip_suffix("` |")?.split("` | `").collect::<Vec<_>>().as_slice() {
                [line, series] => Some((*line, *series)),
                _ => None,
            })
            .collect();
        assert_eq!(rows.len(), 5, "the table in docs/custom-metrics.md: {rows:?}");
        for (line, series) in rows {
            assert_eq!(parse_line(line).map(|m| m.map(|m| m.name)), Ok(Some(series.to_string())), "{line}");
        }
    }

    #[test]
    fn series_name_check() {
        for good in ["custom.a", "custom._x", "custom.:x", "custom.q.mail", "custom.fs./var/lib.x", "custom.u.getty@tty1", "custom.d.dm-0"]
        {
            assert!(is_valid_series_name(good), "{good}");
        }
        let too_long = format!("custom.{}", "a".repeat(MAX_NAME_BYTES));
        for bad in ["cpu", "custom.", "custom.9a", "custom..a", "custom.a b", "custom.a\0", "custom.a*", "Custom.a", too_long.as_str()] {
            assert!(!is_valid_series_name(bad), "{bad:?}");
        }
    }

    /// Prometheus escaping of a label value.
    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    }

    proptest! {
        /// Fuzz-style: any text, biased towards the format's own characters,
        /// parses without panicking into valid, finite, unique series, and
        /// errors name lines that exist.
        #[test]
        fn any_text_gives_valid_series_or_line_errors(
            text in prop_oneof![any::<String>(), "[a-z_:{}=\",#. \t\r\n\\\\0-9eEINaf+-]{0,300}"],
        ) {
            let mut gathered = Gathered::default();
            let errors = gathered.add_file(&text);
            let line_count = text.lines().count();
            prop_assert!(errors.listed.len() <= MAX_LISTED_ERRORS);
            prop_assert!(errors.listed.iter().all(|e| e.line >= 1 && e.line <= line_count));
            prop_assert!(errors.listed.windows(2).all(|w| w[0].line < w[1].line));
            let mut seen = HashSet::new();
            for m in &gathered.metrics {
                prop_assert!(is_valid_series_name(&m.name), "{:?}", m.name);
                prop_assert!(m.value.is_finite());
                prop_assert!(seen.insert(m.name.clone()), "{} twice", m.name);
            }
        }

        /// A sample written in the format comes back with the documented
        /// name and the exact value.
        #[test]
        fn written_samples_round_trip(
            name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,30}",
            labels in proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", ".{0,12}", 0..4),
            value in any::<f64>().prop_filter("finite", |v| v.is_finite()),
            timestamp in proptest::option::of(any::<i64>()),
        ) {
            let written: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let mut line = if written.is_empty() { name.clone() } else { format!("{name}{{{}}}", written.join(",")) };
            line.push_str(&format!(" {value}"));
            if let Some(t) = timestamp {
                line.push_str(&format!(" {t}"));
            }
            let (metrics, errors) = parse_textfile(&line);
            prop_assert_eq!(errors, vec![]);
            // btree_map iterates in label-name order: the documented order.
            let mut expected = format!("custom.{name}");
            for v in labels.values().filter(|v| !v.is_empty()) {
                expected.push('.');
                expected.extend(v.chars().map(|c| if is_series_char(c) { c } else { '_' }));
            }
            prop_assert_eq!(metrics, vec![CustomMetric { name: expected, value }]);
        }

        /// Malformed lines among good ones cost only themselves.
        #[test]
        fn malformed_lines_cost_only_themselves(lines in proptest::collection::vec(prop_oneof![
            (0u32..1000).prop_map(|i| (true, format!("ok_{i}{{n=\"{i}\"}} {i}"))),
            "[0-9][ -~]{0,20}".prop_map(|garbage| (false, garbage)),
        ], 0..40)) {
            let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
            let mut gathered = Gathered::default();
            let errors = gathered.add_file(&text);
            let mut expected_names = Vec::new();
            let mut expected_errors = Vec::new();
            for (i, (good, line)) in lines.iter().enumerate() {
                let name = line.split(' ').next().unwrap_or_default().replace("{n=\"", ".").replace("\"}", "");
                if *good && !expected_names.contains(&format!("custom.{name}")) {
                    expected_names.push(format!("custom.{name}"));
                } else {
                    expected_errors.push(i + 1);
                }
            }
            let got: Vec<&str> = gathered.metrics.iter().map(|m| m.name.as_str()).collect();
            prop_assert_eq!(got, expected_names.iter().map(String::as_str).collect::<Vec<_>>());
            let listed: Vec<usize> = errors.listed.iter().map(|e| e.line).collect();
            prop_assert_eq!(listed.as_slice(), &expected_errors[..expected_errors.len().min(MAX_LISTED_ERRORS)]);
            prop_assert_eq!(errors.unlisted, expected_errors.len().saturating_sub(MAX_LISTED_ERRORS));
        }
    }
}
