//! HS256 access tokens and random refresh tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{
    AccessClaims, IssuedAccessToken, PortError, RefreshToken, Role, SessionId, TokenHash, UserId,
};
use jsonwebtoken::crypto::{CryptoProvider, rust_crypto};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

const WHAT: &str = "access tokens";

/// Random bytes in a refresh token (256 bits: 43 base64url characters).
const REFRESH_TOKEN_BYTES: usize = 32;

/// [`domain::AccessTokens`] with HS256 JWTs.
///
/// Access tokens carry `sub` (user id), `sid` (session id), `role`
/// (`"user"`/`"admin"`), `iat`, `exp` (unix seconds) and `iss`. Verification
/// accepts HS256 only (never `none` or another algorithm), requires `exp`,
/// `iss` and `sub`, checks the issuer, the expiry and (when present) `nbf`
/// with no leeway, and answers `None` for anything invalid.
///
/// Refresh tokens are 32 bytes from the OS RNG, base64url without padding;
/// their [`TokenHash`] is the lower-case hex SHA-256 of the token string.
///
/// Cloning is cheap: the keys are shared behind an [`Arc`]. `Debug` never
/// shows the secret.
#[derive(Clone)]
pub struct JwtTokens {
    inner: Arc<Inner>,
}

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    header: Header,
    validation: Validation,
    issuer: String,
    access_ttl: Duration,
}

/// The claims of an access token on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    role: String,
    iat: i64,
    exp: i64,
    iss: String,
}

impl JwtTokens {
    /// Access tokens signed with `secret` (HMAC-SHA256), issued by `issuer`
    /// (e.g. `"taskflow"`) and valid for `access_ttl` (whole seconds).
    ///
    /// Also installs jsonwebtoken's RustCrypto provider as its process-wide
    /// default if no provider was installed yet, so signing never depends on
    /// which of jsonwebtoken's crypto features the build happens to unify.
    pub fn new(secret: &[u8], issuer: impl Into<String>, access_ttl: Duration) -> Self {
        // Fails when a provider is already installed (by an earlier call or
        // by the application): that one is kept.
        let _ = CryptoProvider::install_default(&rust_crypto::DEFAULT_PROVIDER);
        let issuer = issuer.into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[issuer.as_str()]);
        validation.leeway = 0;
        validation.validate_exp = true;
        // We never set `nbf`, but a token that carries one is honoured.
        validation.validate_nbf = true;
        Self {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                header: Header::new(Algorithm::HS256),
                validation,
                issuer,
                access_ttl,
            }),
        }
    }
}

impl fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtTokens")
            .field("algorithm", &"HS256")
            .field("secret", &"<redacted>")
            .field("issuer", &self.inner.issuer)
            .field("access_ttl", &self.inner.access_ttl)
            .finish()
    }
}

fn hash_token(token: &str) -> TokenHash {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    TokenHash(hex)
}

impl domain::AccessTokens for JwtTokens {
    fn issue(
        &self,
        claims: AccessClaims,
        now: OffsetDateTime,
    ) -> Result<IssuedAccessToken, PortError> {
        let ttl = self.inner.access_ttl.as_secs();
        let iat = now.unix_timestamp();
        let exp = i64::try_from(ttl)
            .ok()
            .and_then(|ttl| iat.checked_add(ttl))
            .ok_or_else(|| PortError::unexpected(WHAT, "access token expiry out of range"))?;
        let wire = Claims {
            sub: claims.user_id.0.to_string(),
            sid: claims.session_id.0.to_string(),
            role: claims.role.as_str().to_owned(),
            iat,
            exp,
            iss: self.inner.issuer.clone(),
        };
        let token = jsonwebtoken::encode(&self.inner.header, &wire, &self.inner.encoding)
            .map_err(|e| PortError::unexpected(WHAT, e))?;
        Ok(IssuedAccessToken {
            token,
            expires_in: ttl,
        })
    }

    fn verify(&self, token: &str) -> Option<AccessClaims> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
                .ok()?;
        if data.header.alg != Algorithm::HS256 {
            return None;
        }
        let claims = data.claims;
        Some(AccessClaims {
            user_id: UserId(Uuid::parse_str(&claims.sub).ok()?),
            session_id: SessionId(Uuid::parse_str(&claims.sid).ok()?),
            role: Role::parse(&claims.role)?,
        })
    }

    fn new_refresh_token(&self) -> Result<(RefreshToken, TokenHash), PortError> {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| PortError::unexpected(WHAT, e))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_token(&token);
        Ok((RefreshToken::new(token), hash))
    }

    fn hash_refresh_token(&self, token: &RefreshToken) -> TokenHash {
        hash_token(token.expose())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use domain::AccessTokens as _;
    use time::Duration as TimeDuration;

    use super::*;

    const SECRET: &[u8] = b"a test secret that is at least 32 bytes long";
    const TTL: Duration = Duration::from_secs(900);

    fn tokens() -> JwtTokens {
        JwtTokens::new(SECRET, "taskflow", TTL)
    }

    fn claims(role: Role) -> AccessClaims {
        AccessClaims {
            user_id: UserId::generate(),
            session_id: SessionId::generate(),
            role,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Signs arbitrary claims with `SECRET` and `alg`.
    fn sign<T: Serialize>(alg: Algorithm, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(SECRET))
            .expect("encode")
    }

    fn wire(sub: &str, sid: &str, role: &str, iss: &str) -> Claims {
        let iat = now().unix_timestamp();
        Claims {
            sub: sub.to_owned(),
            sid: sid.to_owned(),
            role: role.to_owned(),
            iat,
            exp: iat + 600,
            iss: iss.to_owned(),
        }
    }

    #[test]
    fn round_trip() {
        let tokens = tokens();
        for role in Role::ALL {
            let claims = claims(role);
            let issued = tokens.issue(claims, now()).expect("issue");
            assert_eq!(issued.expires_in, 900);
            assert_eq!(tokens.verify(&issued.token), Some(claims));
        }
    }

    #[test]
    fn claims_on_the_wire() {
        let claims = claims(Role::Admin);
        let now = OffsetDateTime::from_unix_timestamp(4_000_000_000).expect("valid time");
        let issued = tokens().issue(claims, now).expect("issue");
        let wire: Claims =
            jsonwebtoken::dangerous::insecure_decode_claims(&issued.token).expect("claims");
        assert_eq!(wire.sub, claims.user_id.0.to_string());
        assert_eq!(wire.sid, claims.session_id.0.to_string());
        assert_eq!(wire.role, "admin");
        assert_eq!(wire.iat, 4_000_000_000);
        assert_eq!(wire.exp, 4_000_000_900);
        assert_eq!(wire.iss, "taskflow");
        let header = jsonwebtoken::decode_header(&issued.token).expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
    }

    #[test]
    fn expired_token_is_rejected() {
        let tokens = tokens();
        let issued = tokens
            .issue(claims(Role::User), now() - TimeDuration::hours(1))
            .expect("issue");
        assert_eq!(tokens.verify(&issued.token), None);
        let issued = tokens
            .issue(claims(Role::User), OffsetDateTime::UNIX_EPOCH)
            .expect("issue");
        assert_eq!(tokens.verify(&issued.token), None);
    }

    #[test]
    fn tampered_token_is_rejected() {
        let tokens = tokens();
        let a = tokens
            .issue(claims(Role::User), now())
            .expect("issue")
            .token;
        let b = tokens
            .issue(claims(Role::Admin), now())
            .expect("issue")
            .token;
        let a_parts: Vec<&str> = a.split('.').collect();
        let b_parts: Vec<&str> = b.split('.').collect();
        // b's claims under a's signature.
        let swapped = format!("{}.{}.{}", a_parts[0], b_parts[1], a_parts[2]);
        assert_eq!(tokens.verify(&swapped), None);
        // A changed signature.
        let mut sig = a_parts[2].to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        let resigned = format!("{}.{}.{}", a_parts[0], a_parts[1], sig);
        assert_eq!(tokens.verify(&resigned), None);
        // Garbage.
        for junk in ["", ".", "..", "a.b.c", "not a token"] {
            assert_eq!(tokens.verify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn token_signed_with_another_secret_is_rejected() {
        let other = JwtTokens::new(b"another secret, also long enough!!", "taskflow", TTL);
        let issued = other.issue(claims(Role::User), now()).expect("issue");
        assert_eq!(tokens().verify(&issued.token), None);
    }

    #[test]
    fn other_algorithms_are_rejected() {
        let tokens = tokens();
        let claims = wire(
            &Uuid::now_v7().to_string(),
            &Uuid::now_v7().to_string(),
            "user",
            "taskflow",
        );
        // The control: the same claims with HS256 pass.
        assert!(tokens.verify(&sign(Algorithm::HS256, &claims)).is_some());
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            assert_eq!(tokens.verify(&sign(alg, &claims)), None, "{alg:?}");
        }
        // alg "none", with and without a signature.
        let valid = sign(Algorithm::HS256, &claims);
        let mut parts = valid.split('.');
        let (_, payload, signature) = (
            parts.next(),
            parts.next().expect("payload"),
            parts.next().expect("sig"),
        );
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let header = URL_SAFE_NO_PAD.encode(header);
            for sig in ["", signature] {
                let token = format!("{header}.{payload}.{sig}");
                assert_eq!(tokens.verify(&token), None, "{token}");
            }
        }
    }

    #[test]
    fn a_token_not_yet_valid_is_rejected() {
        #[derive(Serialize)]
        struct WithNbf {
            #[serde(flatten)]
            claims: Claims,
            nbf: i64,
        }
        let tokens = tokens();
        let id = Uuid::now_v7().to_string();
        let at = |nbf: i64| WithNbf {
            claims: wire(&id, &id, "user", "taskflow"),
            nbf,
        };
        let now = now().unix_timestamp();
        let future = sign(Algorithm::HS256, &at(now + 300));
        assert_eq!(tokens.verify(&future), None, "nbf in five minutes");
        let past = sign(Algorithm::HS256, &at(now - 300));
        assert!(tokens.verify(&past).is_some(), "nbf five minutes ago");
    }

    #[test]
    fn wrong_issuer_is_rejected() {
        let other = JwtTokens::new(SECRET, "someone-else", TTL);
        let issued = other.issue(claims(Role::User), now()).expect("issue");
        assert_eq!(tokens().verify(&issued.token), None);
    }

    #[test]
    fn bad_claims_are_rejected() {
        let tokens = tokens();
        let id = Uuid::now_v7().to_string();
        for bad in [
            wire("not-a-uuid", &id, "user", "taskflow"),
            wire(&id, "not-a-uuid", "user", "taskflow"),
            wire(&id, &id, "root", "taskflow"),
            wire(&id, &id, "User", "taskflow"),
        ] {
            assert_eq!(
                tokens.verify(&sign(Algorithm::HS256, &bad)),
                None,
                "{bad:?}"
            );
        }

        #[derive(Serialize)]
        struct NoSid<'a> {
            sub: &'a str,
            role: &'a str,
            exp: i64,
            iss: &'a str,
        }
        let exp = now().unix_timestamp() + 600;
        let no_sid = NoSid {
            sub: &id,
            role: "user",
            exp,
            iss: "taskflow",
        };
        assert_eq!(tokens.verify(&sign(Algorithm::HS256, &no_sid)), None);

        #[derive(Serialize)]
        struct NoExp<'a> {
            sub: &'a str,
            sid: &'a str,
            role: &'a str,
            iat: i64,
            iss: &'a str,
        }
        let no_exp = NoExp {
            sub: &id,
            sid: &id,
            role: "user",
            iat: exp - 600,
            iss: "taskflow",
        };
        assert_eq!(tokens.verify(&sign(Algorithm::HS256, &no_exp)), None);
    }

    #[test]
    fn refresh_tokens_are_unique_long_and_hashed() {
        let tokens = tokens();
        let mut seen = HashSet::new();
        for _ in 0..100 {
            let (token, hash) = tokens.new_refresh_token().expect("refresh token");
            assert!(token.expose().len() >= 43, "{}", token.expose().len());
            assert!(
                token
                    .expose()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(tokens.hash_refresh_token(&token), hash);
            assert_ne!(hash.0, token.expose());
            assert_eq!(hash.0.len(), 64);
            assert!(seen.insert(token.expose().to_owned()));
        }
    }

    #[test]
    fn refresh_token_hash_is_sha256_hex() {
        let hash = tokens().hash_refresh_token(&RefreshToken::new("abc".to_owned()));
        assert_eq!(
            hash.0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", tokens());
        assert!(!shown.contains("test secret"), "{shown}");
        assert!(shown.contains("taskflow"), "{shown}");
    }
}
