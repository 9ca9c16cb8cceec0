//! TaskFlow's credential adapters.
//!
//! - [`Argon2Hasher`] implements [`domain::PasswordHasher`]: argon2id with
//!   the OWASP parameters (m=19456 KiB, t=2, p=1), PHC strings, run on
//!   tokio's blocking pool.
//! - [`JwtTokens`] implements [`domain::AccessTokens`]: HS256 access tokens
//!   and random refresh tokens stored as their SHA-256 hash.

mod hasher;
mod tokens;

pub use hasher::{Argon2Hasher, HashLimits};
pub use tokens::JwtTokens;
