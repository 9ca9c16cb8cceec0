//! Lost-update protection: a change may name the versions of the entity it
//! was made against (`If-Match`); if the entity has moved on, nothing
//! changes and the caller learns the current version.

/// The versions a change may apply to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IfMatch {
    /// Whatever the version (no precondition).
    #[default]
    Any,
    /// Only these (none: never).
    Versions(Vec<i64>),
}

impl IfMatch {
    pub fn allows(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_precondition_allows_only_its_versions() {
        assert!(IfMatch::Any.allows(7));
        assert!(IfMatch::Versions(vec![3, 7]).allows(7));
        assert!(!IfMatch::Versions(vec![3]).allows(7));
        assert!(!IfMatch::Versions(Vec::new()).allows(1));
    }
}
