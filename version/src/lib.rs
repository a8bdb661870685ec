//! `census-version`: package version ordering, in each package manager's own rules,
//! shared by the agent (which available version is an update) and the
//! collector (software index, version rules).
//!
//! Pure functions only: no I/O, no clock, no panics on any input. Every ecosystem's [`compare`] is a *total
//! preorder* on all strings (reflexive, antisymmetric as an `Ordering`,
//! transitive), so it can sort and deduplicate; two different strings may
//! still compare `Equal` ("1.0" and "1.00" are the same Debian version).
//! Where a package manager's own comparison is not a total order (rpm and
//! pacman ignore a release missing on one side), its module offers that
//! comparison separately and documents how [`compare`] departs from it.
//!
//! * [`dpkg`]: Debian and Ubuntu (`dpkg --compare-versions`), plus a validator.
//! * [`rpm`]: Red Hat, Fedora, SUSE (`rpmvercmp`, `rpmverCmp`).
//! * [`pacman`]: Arch (`vercmp`), an older rpmvercmp with its own end rules.
//! * [`apk`]: Alpine (apk-tools), Gentoo-style suffixes and `-rN`.
//! * [`generic`]: numeric-aware fallback for snap, flatpak, Windows, macOS.
//!
//! Each module's tests compare it with the real tool when the machine has it.

use std::cmp::Ordering;

pub mod apk;
pub mod dpkg;
pub mod generic;
pub mod pacman;
pub mod rpm;

#[cfg(test)]
mod oracle;

/// Which rules order the versions of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    Dpkg,
    Rpm,
    Apk,
    Pacman,
    Generic,
}

impl Ecosystem {
    /// Every ecosystem, for tests and for code that reports per ecosystem.
    pub const ALL: [Ecosystem; 5] = [Ecosystem::Dpkg, Ecosystem::Rpm, Ecosystem::Apk, Ecosystem::Pacman, Ecosystem::Generic];

    /// The ecosystem of a package source as the agent names it. Sources
    /// without ordering rules of their own (snap, flatpak, windows_registry,
    /// mac_app, mac_pkg_receipt) and unknown ones get [`Ecosystem::Generic`].
    pub fn for_source(source: &str) -> Ecosystem {
        match source {
            "dpkg" => Ecosystem::Dpkg,
            "rpm" => Ecosystem::Rpm,
            "apk" => Ecosystem::Apk,
            "pacman" => Ecosystem::Pacman,
            _ => Ecosystem::Generic,
        }
    }

    /// Orders two versions by this ecosystem's rules; see [`compare`].
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Ecosystem::Dpkg => dpkg::compare(a, b),
            Ecosystem::Rpm => rpm::compare_evr(a, b),
            Ecosystem::Apk => apk::compare(a, b),
            Ecosystem::Pacman => pacman::compare(a, b),
            Ecosystem::Generic => generic::compare(a, b),
        }
    }
}

/// Orders two version strings by `ecosystem`'s rules. Total and panic-free
/// for any input: strings dpkg refuses sort before all valid Debian versions;
/// rpm, pacman, apk and generic give every string a place by their own rules.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Ordering {
    ecosystem.compare(a, b)
}

/// A version string that its ecosystem's tools would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid Debian version {version:?}: {reason}")]
    Dpkg { version: String, reason: &'static str },
    #[error("invalid Alpine version {version:?}: {reason}")]
    Apk { version: String, reason: &'static str },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sources_map_to_ecosystems() {
        let cases = [
            ("dpkg", Ecosystem::Dpkg),
            ("rpm", Ecosystem::Rpm),
            ("apk", Ecosystem::Apk),
            ("pacman", Ecosystem::Pacman),
            ("snap", Ecosystem::Generic),
            ("flatpak", Ecosystem::Generic),
            ("windows_registry", Ecosystem::Generic),
            ("mac_app", Ecosystem::Generic),
            ("mac_pkg_receipt", Ecosystem::Generic),
            ("something_new", Ecosystem::Generic),
        ];
        for (source, ecosystem) in cases {
            assert_eq!(Ecosystem::for_source(source), ecosystem, "{source}");
        }
    }

    #[test]
    fn each_ecosystem_applies_its_own_rules() {
        use Ordering::{Greater, Less};
        assert_eq!(compare(Ecosystem::Dpkg, "1.0~rc1", "1.0"), Less);
        assert_eq!(compare(Ecosystem::Rpm, "1.0^git1", "1.0"), Greater);
        assert_eq!(compare(Ecosystem::Pacman, "1.0rc1", "1.0"), Less);
        assert_eq!(compare(Ecosystem::Rpm, "1.0rc1", "1.0"), Greater);
        assert_eq!(compare(Ecosystem::Apk, "1.0_rc1", "1.0"), Less);
        assert_eq!(compare(Ecosystem::Generic, "10.0.22621", "10.0.19041"), Greater);
    }

    /// Versions made of the characters the ecosystems treat specially, so
    /// that random strings often share prefixes and hit the edge rules.
    fn version() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[0-9a-cA._+~^:-]{0,10}",
            1 => "[0-9.]{0,6}(~|\\^|_rc|_p|-r)[0-9a]{0,3}",
            1 => any::<String>(),
        ]
    }

    /// Three versions with a common prefix: random triples that are all far
    /// apart would rarely test transitivity at the interesting places.
    fn related_triple() -> impl Strategy<Value = (String, String, String)> {
        ("[0-9][0-9a-c._+~^:-]{0,5}", "[0-9a-cA._+~^:-]{0,5}", "[0-9a-cA._+~^:-]{0,5}", "[0-9a-cA._+~^:-]{0,5}")
            .prop_map(|(p, x, y, z)| (format!("{p}{x}"), format!("{p}{y}"), format!("{p}{z}")))
    }

    fn ecosystem() -> impl Strategy<Value = Ecosystem> {
        proptest::sample::select(Ecosystem::ALL.to_vec())
    }

    proptest! {
        // No failure file: a shrunk failure is printed, and a regression
        // file would land outside this module's directory.
        #![proptest_config(ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn reflexive(eco in ecosystem(), a in version()) {
            prop_assert_eq!(compare(eco, &a, &a), Ordering::Equal);
        }

        #[test]
        fn antisymmetric(eco in ecosystem(), a in version(), b in version()) {
            prop_assert_eq!(compare(eco, &a, &b), compare(eco, &b, &a).reverse());
        }

        #[test]
        fn transitive(eco in ecosystem(), (a, b, c) in related_triple()) {
            let (ab, bc, ac) = (compare(eco, &a, &b), compare(eco, &b, &c), compare(eco, &a, &c));
            if ab != Ordering::Greater && bc != Ordering::Greater {
                prop_assert_ne!(ac, Ordering::Greater, "{:?} <= {:?} <= {:?}", a, b, c);
            }
            if ab == Ordering::Equal && bc == Ordering::Equal {
                prop_assert_eq!(ac, Ordering::Equal);
            }
        }

        /// Sorting checks every pair against every other: a non-total order
        /// shows up as an unsorted result (or as the standard sort's panic).
        #[test]
        fn sorts_consistently(eco in ecosystem(), mut versions in proptest::collection::vec(version(), 0..12)) {
            versions.sort_by(|a, b| compare(eco, a, b));
            for (i, a) in versions.iter().enumerate() {
                for b in &versions[i + 1..] {
                    prop_assert_ne!(compare(eco, a, b), Ordering::Greater, "{:?} sorted before {:?}", a, b);
                }
            }
        }
    }
}
