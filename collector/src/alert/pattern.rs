//! Glob patterns for rule selectors and silence matchers: `*` matches any
//! run of characters (including none), `?` exactly one, everything else
//! itself, case-sensitively. Chosen over regular expressions so an operator
//! cannot write a pattern that is slow or surprising, and so one pattern
//! language serves package names, metric names, change kinds and labels.
//!
//! Invariant: matching is linear in pattern × text and never panics.

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob { pattern: pattern.chars().collect() }
    }

    pub fn as_string(&self) -> String {
        self.pattern.iter().collect()
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let p = &self.pattern;
        // Classic two-pointer wildcard match with backtracking to the last
        // star only: O(|p| · |t|) in the worst case, no recursion.
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < text.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(c) if *c == '?' || *c == text[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }

    /// The text matched by the first `*`, when the pattern has exactly one
    /// star and no `?` (`fs.*.used_percent` on `fs./var.used_percent` gives
    /// `/var`). Used to name the instance a metric series belongs to.
    pub fn capture<'t>(&self, text: &'t str) -> Option<&'t str> {
        let s: String = self.as_string();
        if s.contains('?') {
            return None;
        }
        let (prefix, suffix) = s.split_once('*')?;
        if suffix.contains('*') {
            return None;
        }
        let rest = text.strip_prefix(prefix)?;
        rest.strip_suffix(suffix)
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Glob, D::Error> {
        String::deserialize(d).map(|s| Glob::new(&s))
    }
}

impl serde::Serialize for Glob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("openssl*", "openssl", true),
            ("openssl*", "libssl3", false),
            ("lib*ssl*", "libssl3", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.used_percent", "fs./.used_percent", true),
            ("fs.*.used_percent", "fs./var.inodes_used_percent", false),
            ("exact", "exact", true),
            ("exact", "Exact", false),
            ("**a", "bba", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(Glob::new(p).matches(t), want, "{p:?} on {t:?}");
        }
    }

    #[test]
    fn capture_names_the_star() {
        let g = Glob::new("fs.*.used_percent");
        assert_eq!(g.capture("fs./var/lib.used_percent"), Some("/var/lib"));
        assert_eq!(g.capture("cpu"), None);
        assert_eq!(Glob::new("cpu").capture("cpu"), None);
    }
}
