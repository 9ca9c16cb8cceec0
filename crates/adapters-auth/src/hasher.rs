//! argon2id password hashing on tokio's blocking pool.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{self, phc};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use domain::{PasswordHash, PlainPassword, PortError};

const WHAT: &str = "password hasher";

/// The password the dummy hash is made of; never matches anything, since
/// its result is thrown away.
const DUMMY_PASSWORD: &[u8] = b"taskflow dummy password for unknown users";
/// A fixed salt for the dummy hash: it needs no secrecy nor uniqueness, and
/// a fixed one keeps the constructor free of RNG failures.
const DUMMY_SALT: &[u8] = b"taskflow-dummy-salt";

/// [`domain::PasswordHasher`] with argon2id (v0x13), producing PHC strings
/// such as `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` with a random
/// 16-byte salt.
///
/// Hashing and verification run on [`tokio::task::spawn_blocking`], never on
/// the async worker threads. Verification reads the parameters from the
/// stored hash, so hashes made with other parameters keep working.
///
/// Cloning is cheap: the state is shared behind an [`Arc`].
#[derive(Clone)]
pub struct Argon2Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    /// A hash made with the same parameters, verified against when there
    /// is no user, so unknown-user logins cost as much as wrong passwords.
    dummy: phc::PasswordHash,
}

impl Argon2Hasher {
    /// OWASP's recommended argon2id memory cost, in KiB (19 MiB).
    pub const OWASP_M_KIB: u32 = 19_456;
    /// OWASP's recommended argon2id number of passes.
    pub const OWASP_T: u32 = 2;
    /// OWASP's recommended argon2id parallelism.
    pub const OWASP_P: u32 = 1;

    /// The production hasher: argon2id with the OWASP parameters
    /// (m=19456 KiB, t=2, p=1).
    ///
    /// Computes the dummy hash, so it blocks for one hash (tens of
    /// milliseconds): call it once at start-up.
    pub fn new() -> Self {
        Self::with_params(Self::OWASP_M_KIB, Self::OWASP_T, Self::OWASP_P).expect(
            "the OWASP argon2id parameters are valid and hashing with a fixed salt cannot fail",
        )
    }

    /// A hasher with custom argon2id parameters: memory cost `m_kib` in KiB,
    /// `t` passes, `p` lanes. Meant for tests that want cheap hashing
    /// (e.g. `with_params(8, 1, 1)`); production uses [`Argon2Hasher::new`].
    ///
    /// Fails with [`PortError::Unexpected`] when argon2 rejects the
    /// parameters (e.g. `m_kib < 8 * p`, `t == 0`, `p == 0`).
    pub fn with_params(m_kib: u32, t: u32, p: u32) -> Result<Self, PortError> {
        let params = Params::new(m_kib, t, p, None).map_err(|e| PortError::unexpected(WHAT, e))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = argon2
            .hash_password_with_salt(DUMMY_PASSWORD, DUMMY_SALT)
            .map_err(|e| PortError::unexpected(WHAT, e))?;
        Ok(Self {
            inner: Arc::new(Inner { argon2, dummy }),
        })
    }

    /// Runs `work` on the blocking pool; a panic or cancellation of the
    /// blocking task becomes [`PortError::Unexpected`].
    async fn off_thread<T, F>(&self, work: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, PortError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| PortError::unexpected(WHAT, e))?
    }
}

impl Default for Argon2Hasher {
    /// Same as [`Argon2Hasher::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = self.inner.argon2.params();
        f.debug_struct("Argon2Hasher")
            .field("algorithm", &"argon2id")
            .field("m_kib", &params.m_cost())
            .field("t", &params.t_cost())
            .field("p", &params.p_cost())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn hash(&self, password: &[u8]) -> Result<PasswordHash, PortError> {
        let hash = self
            .argon2
            .hash_password(password)
            .map_err(|e| PortError::unexpected(WHAT, e))?;
        Ok(PasswordHash::new(hash.to_string()))
    }

    fn verify(&self, password: &[u8], stored: Option<&PasswordHash>) -> Result<bool, PortError> {
        let Some(stored) = stored else {
            // Same work as a real check; the answer does not matter.
            let outcome = self.argon2.verify_password(password, &self.dummy);
            std::hint::black_box(outcome).ok();
            return Ok(false);
        };
        let parsed =
            phc::PasswordHash::new(stored.as_str()).map_err(|e| PortError::unexpected(WHAT, e))?;
        match self.argon2.verify_password(password, &parsed) {
            Ok(()) => Ok(true),
            Err(password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(PortError::unexpected(WHAT, e)),
        }
    }
}

impl domain::PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: PlainPassword) -> Result<PasswordHash, PortError> {
        self.off_thread(move |inner| inner.hash(password.expose().as_bytes()))
            .await
    }

    async fn verify(
        &self,
        password: PlainPassword,
        hash: Option<PasswordHash>,
    ) -> Result<bool, PortError> {
        self.off_thread(move |inner| inner.verify(password.expose().as_bytes(), hash.as_ref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use domain::PasswordHasher as _;

    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::with_params(8, 1, 1).expect("valid test params")
    }

    fn pw(raw: &str) -> PlainPassword {
        PlainPassword::presented(raw.to_owned())
    }

    #[tokio::test]
    async fn hash_then_verify_is_true() {
        let hasher = cheap();
        let hash = hasher.hash(pw("correct horse")).await.expect("hash");
        assert!(hash.as_str().starts_with("$argon2id$v=19$"));
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn wrong_password_is_false() {
        let hasher = cheap();
        let hash = hasher.hash(pw("correct horse")).await.expect("hash");
        assert!(
            !hasher
                .verify(pw("battery staple"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn no_hash_is_false() {
        let hasher = cheap();
        assert!(!hasher.verify(pw("anything"), None).await.expect("verify"));
        // Not even the dummy password itself.
        let dummy = String::from_utf8(DUMMY_PASSWORD.to_vec()).expect("utf-8");
        assert!(!hasher.verify(pw(&dummy), None).await.expect("verify"));
    }

    #[tokio::test]
    async fn hashes_are_salted() {
        let hasher = cheap();
        let a = hasher.hash(pw("same password")).await.expect("hash");
        let b = hasher.hash(pw("same password")).await.expect("hash");
        assert_ne!(a, b);
        assert!(
            hasher
                .verify(pw("same password"), Some(a))
                .await
                .expect("verify")
        );
        assert!(
            hasher
                .verify(pw("same password"), Some(b))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn default_params_are_owasp() {
        let hasher = Argon2Hasher::new();
        let hash = hasher.hash(pw("correct horse")).await.expect("hash");
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn verify_uses_the_params_of_the_stored_hash() {
        let stored = cheap().hash(pw("correct horse")).await.expect("hash");
        let other = Argon2Hasher::with_params(16, 2, 1).expect("valid params");
        assert!(
            other
                .verify(pw("correct horse"), Some(stored))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn unparsable_stored_hash_is_an_error() {
        let hasher = cheap();
        for bad in [
            "",
            "not a phc string",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$!!",
            // Well-formed PHC, but not an argon2 hash.
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            let err = hasher
                .verify(pw("whatever"), Some(PasswordHash::new(bad.to_owned())))
                .await
                .expect_err(bad);
            assert!(
                matches!(err, PortError::Unexpected { what: WHAT, .. }),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn invalid_params_are_rejected() {
        assert!(Argon2Hasher::with_params(8, 0, 1).is_err());
        assert!(Argon2Hasher::with_params(8, 1, 0).is_err());
        assert!(Argon2Hasher::with_params(1, 1, 1).is_err());
    }

    #[test]
    fn debug_shows_params() {
        let shown = format!("{:?}", cheap());
        assert!(shown.contains("m_kib: 8"), "{shown}");
    }
}
