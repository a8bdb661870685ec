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

    /// The text before the first wildcard: every match starts with it
    /// (so a sorted index can be searched from it).
    pub fn literal_prefix(&self) -> String {
        self.pattern.iter().take_while(|c| **c != '*' && **c != '?').collect()
    }

    /// Whether the pattern has no wildcard: it matches itself only.
    pub fn is_literal(&self) -> bool {
        !self.pattern.iter().any(|c| *c == '*' || *c == '?')
    }

    /// Whether the whole of `text` matches. Allocates nothing: the host
    /// filter matches globs over every host of the fleet.
    pub fn matches(&self, text: &str) -> bool {
        let p = &self.pattern;
        // Classic two-pointer wildcard match with backtracking to the last
        // star only: O(|p| · |t|) in the worst case, no recursion. The text
        // position is a `Chars` iterator, cloned to remember a position.
        let mut pi = 0usize;
        let mut rest = text.chars();
        let mut star: Option<(usize, std::str::Chars<'_>)> = None;
        loop {
            let mut after = rest.clone();
            let Some(c) = after.next() else { break };
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, rest.clone()));
                    pi += 1;
                }
                Some(q) if *q == '?' || *q == c => {
                    pi += 1;
                    rest = after;
                }
                _ => match &mut star {
                    Some((sp, from)) => {
                        // The star swallows one more character.
                        from.next();
                        pi = *sp + 1;
                        rest = from.clone();
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

    /// The definition, recursively: what `matches` must agree with.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some((c, rest)) => t.split_first().is_some_and(|(tc, tr)| (*c == '?' || c == tc) && reference(rest, tr)),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, failure_persistence: None, ..Default::default() })]

        #[test]
        fn agrees_with_the_definition(pattern in "[ab*?é]{0,7}", text in "[abé]{0,9}") {
            let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
            proptest::prop_assert_eq!(Glob::new(&pattern).matches(&text), reference(&p, &t), "{:?} on {:?}", pattern, text);
        }
    }

    #[test]
    fn literal_prefix_starts_every_match() {
        assert_eq!(Glob::new("telnet*d").literal_prefix(), "telnet");
        assert_eq!(Glob::new("lib?ssl*").literal_prefix(), "lib");
        assert_eq!(Glob::new("*ssl").literal_prefix(), "");
        assert_eq!(Glob::new("openssl").literal_prefix(), "openssl");
        assert!(Glob::new("openssl").is_literal());
        assert!(!Glob::new("openssl*").is_literal() && !Glob::new("a?").is_literal());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, failure_persistence: None, ..Default::default() })]

        #[test]
        fn every_match_starts_with_the_literal_prefix(pattern in "[ab*?]{0,6}", text in "[ab]{0,8}") {
            let glob = Glob::new(&pattern);
            if glob.matches(&text) {
                proptest::prop_assert!(text.starts_with(&glob.literal_prefix()));
            }
            if glob.is_literal() {
                proptest::prop_assert_eq!(glob.matches(&text), text == pattern);
            }
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
