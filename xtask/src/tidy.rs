//! The layering ("tidy") rules, as plain functions over `cargo tree` output.
//!
//! `cargo tree -e normal --prefix none --format {p}` prints one package per
//! line, e.g. `tokio v1.54.1` or `domain v0.1.0 (/work/main/crates/domain)`,
//! repeated packages carrying a trailing `(*)`. The parser below also copes
//! with the default indented tree (`├── tokio v1.54.1`), so a change of flags
//! can't silently turn the check into a no-op.

/// Crates that must never appear in `domain`'s normal dependency tree: web
/// frameworks, databases, async runtimes, serialization formats and crypto
/// all belong in adapters.
pub const BANNED_IN_DOMAIN: &[&str] = &[
    "actix-web",
    "actix-http",
    "actix-rt",
    "actix-server",
    "diesel",
    "diesel-async",
    "redis",
    "bb8",
    "bb8-redis",
    "tokio",
    "argon2",
    "jsonwebtoken",
    "sqlx",
    "hyper",
    "axum",
    "reqwest",
    "serde_json",
    "ring",
    "aws-lc-rs",
    "rand",
    "sha2",
    "hmac",
    "password-hash",
];

/// Whole families banned from `domain`: anything whose name starts with one
/// of these (`actix-codec`, `diesel_migrations`, `tokio-util`, ...).
pub const BANNED_PREFIXES_IN_DOMAIN: &[&str] = &["actix", "diesel", "tokio"];

/// Adapter crates `api-http` must never depend on. Any other crate named
/// `adapters-*` (a future adapter) is refused too.
pub const ADAPTERS: &[&str] = &[
    "adapters-memory",
    "adapters-auth",
    "adapters-postgres",
    "adapters-redis",
];

/// One line of `cargo tree` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

impl Package<'_> {
    /// A package ID spec (`name@version`), unambiguous even when the lock
    /// file holds several versions of the crate, as `cargo tree -i` needs.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Every package named in `tree_output`, in order of first appearance,
/// without repeats. Lines that don't look like `name vX.Y.Z ...` are skipped.
pub fn packages(tree_output: &str) -> Vec<Package<'_>> {
    let mut found: Vec<Package<'_>> = Vec::new();
    for line in tree_output.lines() {
        // Drop tree-drawing prefixes (`│   ├── `) if there are any.
        let line = line.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(version) = version.strip_prefix('v') else {
            continue;
        };
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let package = Package { name, version };
        if !found.contains(&package) {
            found.push(package);
        }
    }
    found
}

/// Crate names are compared the way crates.io does: case-insensitively, with
/// `-` and `_` interchangeable.
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn listed(name: &str, list: &[&str]) -> bool {
    let name = normalize(name);
    list.iter().any(|entry| normalize(entry) == name)
}

fn prefixed(name: &str, prefixes: &[&str]) -> bool {
    let name = normalize(name);
    prefixes
        .iter()
        .any(|prefix| name.starts_with(&normalize(prefix)))
}

/// Is `name` forbidden anywhere in `domain`'s normal dependency tree?
pub fn is_banned_in_domain(name: &str) -> bool {
    listed(name, BANNED_IN_DOMAIN) || prefixed(name, BANNED_PREFIXES_IN_DOMAIN)
}

/// Is `name` an adapter crate?
pub fn is_adapter(name: &str) -> bool {
    listed(name, ADAPTERS) || prefixed(name, &["adapters-"])
}

/// The packages in `tree_output` that `forbidden` refuses, as
/// `name@version` specs, in order of first appearance, without repeats.
pub fn offenders(tree_output: &str, forbidden: fn(&str) -> bool) -> Vec<String> {
    packages(tree_output)
        .iter()
        .filter(|package| forbidden(package.name))
        .map(Package::spec)
        .collect()
}

/// The banned crates (as `name@version`) in `domain`'s dependency tree.
pub fn banned_in(tree_output: &str) -> Vec<String> {
    offenders(tree_output, is_banned_in_domain)
}

/// The adapter crates (as `name@version`) in `api-http`'s dependency tree.
pub fn adapters_in(tree_output: &str) -> Vec<String> {
    offenders(tree_output, is_adapter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of `cargo tree -p domain -e normal --prefix none --format {p}`.
    const CLEAN_DOMAIN: &str = "\
domain v0.1.0 (/work/main/crates/domain)
thiserror v2.0.21
thiserror-impl v2.0.21 (proc-macro)
proc-macro2 v1.0.107
unicode-ident v1.0.27
quote v1.0.47
proc-macro2 v1.0.107 (*)
syn v3.0.9
time v0.3.55
deranged v0.5.9
uuid v1.29.1
getrandom v0.4.3
cfg-if v1.0.5
libc v0.2.191
";

    #[test]
    fn clean_domain_tree_has_no_offenders() {
        assert_eq!(banned_in(CLEAN_DOMAIN), Vec::<String>::new());
    }

    #[test]
    fn catches_tokio() {
        assert_eq!(banned_in("tokio v1.0.0"), vec!["tokio@1.0.0".to_owned()]);
    }

    #[test]
    fn catches_a_banned_crate_deep_in_the_tree_once() {
        let tree = format!("{CLEAN_DOMAIN}tokio v1.54.1\nmio v1.2.4\ntokio v1.54.1 (*)\n");
        assert_eq!(banned_in(&tree), vec!["tokio@1.54.1".to_owned()]);
    }

    #[test]
    fn catches_every_listed_crate() {
        for name in BANNED_IN_DOMAIN {
            assert_eq!(
                banned_in(&format!("{name} v0.1.2")),
                vec![format!("{name}@0.1.2")],
                "{name} slipped through"
            );
        }
    }

    #[test]
    fn catches_whole_families_by_prefix() {
        let tree =
            "actix-codec v0.5.4\ntokio-util v0.7.1\ndiesel_migrations v2.0.0\nactix v0.13.0\n";
        assert_eq!(
            banned_in(tree),
            vec![
                "actix-codec@0.5.4".to_owned(),
                "tokio-util@0.7.1".to_owned(),
                "diesel_migrations@2.0.0".to_owned(),
                "actix@0.13.0".to_owned(),
            ]
        );
    }

    #[test]
    fn dashes_and_underscores_are_the_same_name() {
        assert_eq!(
            banned_in("serde-json v1.0.0"),
            vec!["serde-json@1.0.0".to_owned()]
        );
        assert_eq!(
            banned_in("aws_lc_rs v1.0.0"),
            vec!["aws_lc_rs@1.0.0".to_owned()]
        );
        assert_eq!(
            banned_in("Password_Hash v0.5.0"),
            vec!["Password_Hash@0.5.0".to_owned()]
        );
    }

    #[test]
    fn does_not_flag_lookalikes() {
        // Substrings and suffixes of banned names are fine; only exact names
        // and the three family prefixes are refused.
        let tree = "rand_core v0.9.0\nringbuf v0.4.0\nhyperlocal-ish v0.1.0\nserde v1.0.0\n\
                    my-tokio v0.1.0\nsha2-const v0.1.0\nredis-protocol-docs v0.1.0\n";
        assert_eq!(banned_in(tree), Vec::<String>::new());
    }

    #[test]
    fn reports_each_version_of_a_duplicated_crate() {
        let tree = "rand v0.8.5\nrand v0.9.1\nrand v0.8.5 (*)\n";
        assert_eq!(
            banned_in(tree),
            vec!["rand@0.8.5".to_owned(), "rand@0.9.1".to_owned()]
        );
    }

    #[test]
    fn parses_the_default_indented_tree_too() {
        let tree = "\
domain v0.1.0 (/work/main/crates/domain)
├── thiserror v2.0.21
│   └── thiserror-impl v2.0.21 (proc-macro)
└── uuid v1.29.1
    └── tokio v1.0.0
[dev-dependencies]
";
        assert_eq!(banned_in(tree), vec!["tokio@1.0.0".to_owned()]);
        assert_eq!(packages(tree).len(), 5);
    }

    #[test]
    fn skips_lines_that_are_not_packages() {
        let tree = "\nwarning: something\n  \n(*)\ntokio\n";
        assert_eq!(packages(tree), Vec::new());
    }

    #[test]
    fn first_package_is_the_root() {
        assert_eq!(
            packages(CLEAN_DOMAIN).first(),
            Some(&Package {
                name: "domain",
                version: "0.1.0"
            })
        );
    }

    #[test]
    fn api_http_must_not_reach_an_adapter() {
        let tree = "api-http v0.1.0 (/w/crates/api-http)\ndomain v0.1.0 (/w/crates/domain)\n\
                    actix-web v4.18.1\nadapters-memory v0.1.0 (/w/crates/adapters-memory)\n\
                    adapters-s3 v0.1.0 (/w/crates/adapters-s3)\n";
        assert_eq!(
            adapters_in(tree),
            vec![
                "adapters-memory@0.1.0".to_owned(),
                "adapters-s3@0.1.0".to_owned()
            ]
        );
        assert!(ADAPTERS.iter().all(|name| is_adapter(name)));
    }

    #[test]
    fn api_http_may_use_the_web_stack() {
        let tree = "api-http v0.1.0 (/w/crates/api-http)\ndomain v0.1.0 (/w/crates/domain)\n\
                    actix-web v4.18.1\ntokio v1.54.1\nserde_json v1.0.1\n";
        assert_eq!(adapters_in(tree), Vec::<String>::new());
    }
}
