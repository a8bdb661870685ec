//! Summary and description templates: literal text with `{{host}}`,
//! `{{value}}`, `{{threshold}}`, `{{rule}}`, `{{severity}}` and
//! `{{labels.NAME}}` placeholders (spaces inside the braces allowed).
//!
//! Invariants: a template is checked when the rules are loaded, so an
//! unknown placeholder or an unclosed `{{` is a rule error, never a surprise
//! at notification time; rendering only substitutes strings (no expressions,
//! no recursion: a value containing `{{x}}` is printed as is) and a label
//! the alert does not carry renders as the empty string.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Host,
    Value,
    Threshold,
    Rule,
    Severity,
    Label(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template is rendered with.
pub struct Context<'a> {
    pub host: &'a str,
    pub value: &'a str,
    pub threshold: &'a str,
    pub rule: &'a str,
    pub severity: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl Template {
    /// Parses `text`; the error says what is wrong with which placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| format!("unclosed '{{{{' at {:?}", truncate(&rest[open..])))?;
            let name = after[..close].trim();
            parts.push(match name {
                "host" => Part::Host,
                "value" => Part::Value,
                "threshold" => Part::Threshold,
                "rule" => Part::Rule,
                "severity" => Part::Severity,
                _ => match name.strip_prefix("labels.") {
                    Some(label) if super::rules::is_label_name(label) => Part::Label(label.to_string()),
                    _ => {
                        return Err(format!(
                            "unknown placeholder {{{{{name}}}}}: use host, value, threshold, rule, severity or labels.NAME"
                        ));
                    }
                },
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub fn render(&self, cx: &Context<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            out.push_str(match part {
                Part::Text(t) => t,
                Part::Host => cx.host,
                Part::Value => cx.value,
                Part::Threshold => cx.threshold,
                Part::Rule => cx.rule,
                Part::Severity => cx.severity,
                Part::Label(l) => cx.labels.get(l).map(String::as_str).unwrap_or(""),
            });
        }
        out
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str) -> String {
        let labels = BTreeMap::from([("mount".to_string(), "/var".to_string())]);
        let cx = Context { host: "web-1", value: "93.5", threshold: "90", rule: "disk", severity: "warning", labels: &labels };
        Template::parse(t).expect("valid template").render(&cx)
    }

    #[test]
    fn substitutes_every_placeholder() {
        assert_eq!(
            render("{{host}}: {{ labels.mount }} at {{value}}% > {{threshold}}% ({{rule}}, {{severity}})"),
            "web-1: /var at 93.5% > 90% (disk, warning)"
        );
        assert_eq!(render("no placeholders"), "no placeholders");
        assert_eq!(render(""), "");
        assert_eq!(render("{{labels.absent}}!"), "!");
    }

    #[test]
    fn values_are_not_templates_themselves() {
        let labels = BTreeMap::new();
        let cx = Context { host: "{{value}}", value: "x", threshold: "", rule: "", severity: "", labels: &labels };
        assert_eq!(Template::parse("{{host}}").expect("valid").render(&cx), "{{value}}");
    }

    #[test]
    fn refuses_unknown_and_unclosed_placeholders() {
        assert!(Template::parse("{{hostname}}").unwrap_err().contains("unknown placeholder {{hostname}}"));
        assert!(Template::parse("{{labels.}}").is_err());
        assert!(Template::parse("{{labels.a-b}}").is_err());
        assert!(Template::parse("disk {{host").unwrap_err().contains("unclosed"));
        assert!(Template::parse("{{eval(1)}}").is_err());
    }
}
