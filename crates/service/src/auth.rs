//! Accounts: argon2id password hashes, opaque session tokens stored hashed,
//! log-in throttling, and the [`Caller`] every authenticated handler takes.

use crate::AppState;
use crate::db::Query;
use crate::error::ApiError;
use crate::snapshot::CompanySnapshot;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Argon2, Block, Params};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use earshot_policy::{AppContext, CompanyId, Role, User, UserId, Viewer};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use std::sync::Arc;

/// Failed log-ins in a row before an account locks.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long an account stays locked, in seconds.
pub const LOCK_SECONDS: i64 = 60;

/// The argon2id hash of `password`, as a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
    let argon2 = Argon2::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes =
        salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("decoding a salt: {e}"))?;
    let output = compute(&argon2, password, salt_bytes, Params::DEFAULT_OUTPUT_LEN)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::default().ident(),
        version: Some(argon2::Version::default().into()),
        params: argon2::password_hash::ParamsString::try_from(argon2.params())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (argon2id, or the
/// argon2 variant and parameters the string names).
#[must_use]
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else { return false };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else { return false };
    let version = match parsed.version.map(argon2::Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let argon2 = Argon2::new(algorithm, version, params);
    // `Output`'s equality takes the same time wherever the bytes differ.
    compute(&argon2, password, salt, expected.len()).is_ok_and(|computed| computed == expected)
}

/// `password` hashed with `salt` into `len` bytes, in pooled memory.
fn compute(
    argon2: &Argon2<'_>,
    password: &str,
    salt: &[u8],
    len: usize,
) -> argon2::password_hash::Result<Output> {
    Output::init_with(len, |out| {
        with_memory(argon2, |memory| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
        })
        .map_err(|_| argon2::password_hash::Error::Crypto)
    })
}

/// Runs `work` with argon2's working memory (19 MiB with the default
/// parameters) taken from a pool and put back after, rather than allocated
/// for each hash: freed, those blocks stayed in the allocator's arenas of
/// whichever thread had run the check, so a burst of log-ins left the
/// service hundreds of MB larger for good (the soak measured 374 MB after
/// 110 log-ins). The pool keeps at most one block per core, of our own
/// parameters' size at most.
fn with_memory<T>(argon2: &Argon2<'_>, work: impl FnOnce(&mut [Block]) -> T) -> T {
    static POOL: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());
    let count = argon2.params().block_count();
    let taken = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
    let mut memory = taken.unwrap_or_default();
    memory.resize(count, Block::default());
    let result = work(&mut memory[..count]);
    // Kept for the next check: as many as log-in runs at once (one per
    // core), each no larger than our own parameters need (a hash made
    // with a larger memory cost is checked with memory of its own).
    static MOST: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if memory.len() <= Params::default().block_count() && pool.len() < *MOST {
        pool.push(memory);
    }
    drop(pool);
    result
}

/// A hash to verify against when the e-mail is unknown, so that answer takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

/// A new session token (shown once, to the client) and the hash stored for it.
#[must_use]
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token: SHA-256, hex.
#[must_use]
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The user making a request, with their company as the rules see it.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// Their company, at the version this request sees.
    pub snapshot: Arc<CompanySnapshot>,
    /// The hash of the token they came with.
    pub token_hash: String,
}

impl Caller {
    /// The caller's company.
    #[must_use]
    pub const fn company(&self) -> CompanyId {
        self.user.company
    }

    /// The caller's id.
    #[must_use]
    pub const fn id(&self) -> UserId {
        self.user.id
    }

    /// The caller as a viewer in `app`, with the company's current settings and routing.
    #[must_use]
    pub fn viewer(&self, app: AppContext) -> Viewer {
        let company = &self.snapshot.company;
        Viewer::new(&self.user, company.settings(), company.routing(), app)
    }

    /// Fails unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("Only an admin of the company may do this."))
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::unauthenticated("Log in first: this request has no bearer token."))?;
        let token_hash = hash_token(token);
        let mut query = Query::new(
            "SELECT s.user_id, s.expires_at, u.company_id, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ",
        );
        query.bind(token_hash.clone());
        let row =
            state.db.fetch_optional(state.db.pool(), &query).await?.ok_or_else(|| {
                ApiError::unauthenticated("Your session is not valid. Please log in again.")
            })?;
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= crate::now_millis() {
            return Err(ApiError::unauthenticated("Your session has expired. Please log in again."));
        }
        if row.try_get::<i64, _>("disabled")? != 0 {
            return Err(ApiError::unauthenticated("Your account has been disabled. Ask an admin."));
        }
        let company = CompanyId(row.try_get("company_id")?);
        let user_id = UserId(row.try_get("user_id")?);
        let snapshot = state.snapshots.get(&state.db, company).await?;
        let user =
            snapshot.company.user(user_id).cloned().ok_or_else(|| {
                ApiError::unauthenticated("Your session is not valid. Please log in again.")
            })?;
        Ok(Self { user, snapshot, token_hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    /// Hashing and checking with pooled memory agree with the argon2 crate's
    /// own hasher and verifier both ways (databases hold hashes it made),
    /// and with other parameters than ours (a stronger or an argon2i hash).
    #[test]
    fn pooled_hashes_agree_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_password("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let stronger = Params::new(32 * 1024, 3, 1, None).unwrap();
        for argon2 in [
            Argon2::default(),
            Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, stronger),
            Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x10, Params::default()),
        ] {
            let theirs = argon2.hash_password(b"correct horse", &salt).unwrap().to_string();
            assert!(verify_password("correct horse", &theirs), "{theirs}");
            assert!(!verify_password("correct hors", &theirs), "{theirs}");
        }
        // Checks in parallel, each with its own memory from the pool.
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let hash = ours.clone();
                std::thread::spawn(move || {
                    verify_password("correct horse", &hash) && !verify_password(&format!("{i}"), &hash)
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (token, hash) = new_token();
        let (other, _) = new_token();
        assert_ne!(token, other);
        assert_eq!(token.len(), 43);
        assert_eq!(hash, hash_token(&token));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token));
    }
}
