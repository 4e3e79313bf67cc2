//! Accounts and sessions: sign-up, sign-in (rate limited), sign-out.
//!
//! Personal data (email, display name, password hash) is sealed in the
//! `AccountRegistered` event with a key of the account's own; forgetting the
//! account deletes the key (see decision 0006).

use std::num::NonZeroU32;
use std::sync::Arc;

use anp_eventstore::{ExpectedVersion, NewEvent};
use anp_proto::events::v1 as ev;
use anp_proto::sites::v1::Account;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prost::Message;
use sha2::{Digest, Sha256};
use tracing::info;
use uuid::Uuid;

use crate::error::SitesError;
use crate::{Sites, state};

pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 256;
pub const DISPLAY_NAME_MAX: usize = 80;
const NONCE_BYTES: usize = 24;

/// Stream of an account's events; they belong to no network.
pub fn account_stream(account_id: Uuid) -> String {
    format!("account-{account_id}")
}

/// Trimmed and lowercased; a plausible address of at most 254 characters.
pub fn normalize_email(email: &str) -> Result<String, SitesError> {
    let email = email.trim().to_lowercase();
    let plausible = email.len() <= EMAIL_MAX
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(SitesError::invalid(
            "email: not an email address such as ana@example.org",
        ));
    }
    Ok(email)
}

/// SHA-256 of a normalized email: binds an invitation to an address without
/// storing the address.
pub fn email_hash(email: &str) -> Vec<u8> {
    Sha256::digest(email.as_bytes()).to_vec()
}

fn check_password(password: &str) -> Result<(), SitesError> {
    let count = password.chars().count();
    if count < PASSWORD_MIN {
        return Err(SitesError::invalid(format!(
            "password: at least {PASSWORD_MIN} characters"
        )));
    }
    if password.len() > PASSWORD_MAX {
        return Err(SitesError::invalid(format!(
            "password: at most {PASSWORD_MAX} bytes"
        )));
    }
    Ok(())
}

/// Argon2id runs on a few threads of its own: each hash takes ~19 MiB, and
/// memory freed on a thread stays with that thread's allocator arena, so a
/// fixed pool keeps the service's memory bounded however many people sign up.
struct Hashers {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
}

fn hashers() -> &'static Hashers {
    static HASHERS: std::sync::OnceLock<Hashers> = std::sync::OnceLock::new();
    HASHERS.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(256);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        for n in 0..threads {
            let queue = queue.clone();
            let _ = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
        }
        Hashers { jobs }
    })
}

/// Runs `work` on a hashing thread.
async fn on_hasher<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SitesError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let jobs = hashers().jobs.clone();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = reply.send(work());
    });
    tokio::task::spawn_blocking(move || jobs.send(job))
        .await
        .map_err(|err| SitesError::Internal(err.to_string()))?
        .map_err(|_| SitesError::Internal("password hashing threads are gone".into()))?;
    answer
        .await
        .map_err(|_| SitesError::Internal("password hashing failed".into()))
}

async fn hash_password(password: String) -> Result<String, SitesError> {
    on_hasher(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| SitesError::Internal(format!("password hashing: {err}")))
    })
    .await?
}

/// Checks `password` against `hash`; with no hash, spends the same time and
/// fails, so a wrong email and a wrong password look alike.
async fn verify_password(password: String, hash: Option<String>) -> bool {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    on_hasher(move || {
        let decoy = DECOY.get_or_init(|| {
            Argon2::default()
                .hash_password(b"decoy password, never valid")
                .map(|hash| hash.to_string())
                .unwrap_or_default()
        });
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| decoy.clone());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        ok && real
    })
    .await
    .unwrap_or(false)
}

pub fn seal_personal(key: &[u8], personal: &ev::AccountPersonal) -> Result<Vec<u8>, SitesError> {
    let cipher = XChaCha20Poly1305::new_from_slice(key)
        .map_err(|_| SitesError::Internal("account key must be 32 bytes".into()))?;
    let nonce: [u8; NONCE_BYTES] = rand::random();
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            personal.encode_to_vec().as_slice(),
        )
        .map_err(|_| SitesError::Internal("sealing personal data failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

pub fn unseal_personal(key: &[u8], sealed: &[u8]) -> Result<ev::AccountPersonal, SitesError> {
    if sealed.len() < NONCE_BYTES {
        return Err(SitesError::Internal(
            "sealed personal data too short".into(),
        ));
    }
    let cipher = XChaCha20Poly1305::new_from_slice(key)
        .map_err(|_| SitesError::Internal("account key must be 32 bytes".into()))?;
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let plain = cipher
        .decrypt(XNonce::from_slice(nonce), ciphertext)
        .map_err(|_| SitesError::Internal("personal data does not unseal with its key".into()))?;
    ev::AccountPersonal::decode(plain.as_slice())
        .map_err(|err| SitesError::Internal(format!("personal data: {err}")))
}

/// Limits sign-in attempts per email and per client address, in memory.
pub struct SignInLimiter {
    by_email: DefaultKeyedRateLimiter<String>,
    by_peer: DefaultKeyedRateLimiter<String>,
}

impl SignInLimiter {
    /// `per_email` attempts a minute for one address (a burst of as many),
    /// ten times that from one client.
    pub fn new(per_email: u32) -> Arc<Self> {
        let per_email = NonZeroU32::new(per_email.max(1)).unwrap_or(NonZeroU32::MIN);
        let per_peer = per_email.saturating_mul(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        Arc::new(SignInLimiter {
            by_email: RateLimiter::keyed(Quota::per_minute(per_email)),
            by_peer: RateLimiter::keyed(Quota::per_minute(per_peer)),
        })
    }

    fn check(&self, email: &str, peer: &str) -> Result<(), SitesError> {
        let denied = |_| {
            SitesError::RateLimited(
                "sign-in: too many attempts; wait a minute and try again".into(),
            )
        };
        self.by_peer.check_key(&peer.to_owned()).map_err(denied)?;
        self.by_email.check_key(&email.to_owned()).map_err(denied)?;
        Ok(())
    }

    /// Forgets keys whose limits have refilled (call now and then).
    pub fn shrink(&self) {
        self.by_email.retain_recent();
        self.by_peer.retain_recent();
    }
}

fn account_from_row(row: &tokio_postgres::Row) -> Result<Account, tokio_postgres::Error> {
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    Ok(Account {
        id: row.try_get::<_, Uuid>("id")?.to_string(),
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        created_at: Some(anp_kit::timestamp(created_at)),
    })
}

async fn account_in<C: tokio_postgres::GenericClient>(
    client: &C,
    account_id: Uuid,
) -> Result<Account, SitesError> {
    let row = client
        .query_opt(
            "SELECT id, email, display_name, created_at FROM accounts WHERE id = $1",
            &[&account_id],
        )
        .await?
        .ok_or_else(|| SitesError::Unauthenticated("authorization: no such account".into()))?;
    Ok(account_from_row(&row)?)
}

/// A signed-in caller.
#[derive(Debug, Clone, Copy)]
pub struct Principal {
    pub account_id: Uuid,
    pub session_id: Uuid,
}

/// A session token and what it is for.
pub struct Grant {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub account: Account,
}

impl Sites {
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        traceparent: Option<String>,
    ) -> Result<Grant, SitesError> {
        let email = normalize_email(email)?;
        check_password(password)?;
        let display_name = display_name.trim();
        anp_kit::check_text("display_name", display_name, DISPLAY_NAME_MAX)
            .map_err(SitesError::Invalid)?;
        let password_hash = hash_password(password.to_owned()).await?;
        let account_id = Uuid::now_v7();
        let key: [u8; 32] = rand::random();
        let sealed = seal_personal(
            &key,
            &ev::AccountPersonal {
                email: email.clone(),
                display_name: display_name.to_owned(),
                password_hash,
            },
        )?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO account_keys (account_id, key) VALUES ($1, $2)",
            &[&account_id, &key.as_slice()],
        )
        .await?;
        let event = NewEvent::new(
            "AccountRegistered",
            Uuid::nil(),
            &account_id.to_string(),
            ev::AccountRegistered {
                account_id: account_id.to_string(),
                sealed_personal: sealed,
            }
            .encode_to_vec(),
        )
        .with_traceparent(traceparent);
        state::commit(
            &*tx,
            &account_stream(account_id),
            ExpectedVersion::NoStream,
            vec![event],
        )
        .await?;
        tx.commit()
            .await
            .map_err(|err| crate::error::taken_or_db(err, "email", &email))?;
        info!(%account_id, "account registered");
        drop(client);
        self.open_session(account_id).await
    }

    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        peer: &str,
    ) -> Result<Grant, SitesError> {
        // Rate limited before anything else, so guessing costs the guesser.
        let key = email.trim().to_lowercase();
        self.limiter.check(&key, peer)?;
        let email = normalize_email(email)?;
        if password.len() > PASSWORD_MAX {
            return Err(SitesError::invalid(format!(
                "password: at most {PASSWORD_MAX} bytes"
            )));
        }
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id, password_hash FROM accounts WHERE email = $1",
                &[&email],
            )
            .await?;
        let (account_id, hash) = match row {
            Some(row) => (Some(row.get::<_, Uuid>(0)), Some(row.get::<_, String>(1))),
            None => (None, None),
        };
        drop(client);
        let ok = verify_password(password.to_owned(), hash).await;
        match (ok, account_id) {
            (true, Some(account_id)) => self.open_session(account_id).await,
            _ => Err(SitesError::Unauthenticated(
                "email or password: no account with that email and password".into(),
            )),
        }
    }

    async fn open_session(&self, account_id: Uuid) -> Result<Grant, SitesError> {
        let session_id = Uuid::now_v7();
        let expires_at = Utc::now() + self.session_ttl;
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO sessions (id, account_id, expires_at) VALUES ($1, $2, $3)",
                &[&session_id, &account_id, &expires_at],
            )
            .await?;
        let token = self
            .signer
            .sign(account_id, session_id, expires_at.timestamp())
            .map_err(|err| SitesError::Internal(err.to_string()))?;
        let account = account_in(&**client, account_id).await?;
        Ok(Grant {
            token,
            expires_at,
            account,
        })
    }

    pub async fn account(&self, account_id: Uuid) -> Result<Account, SitesError> {
        let client = self.pool.get().await?;
        account_in(&**client, account_id).await
    }

    /// The caller of a token: signature, expiry, and that the session was
    /// not signed out or the account forgotten.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal, SitesError> {
        let token = token
            .ok_or_else(|| SitesError::Unauthenticated("authorization: sign in first".into()))?;
        let session = self.verify_token(token)?;
        let client = self.pool.get().await?;
        let live = client
            .query_opt(
                &client
                    .prepare_cached(
                        "SELECT 1 FROM sessions WHERE id = $1 AND account_id = $2 \
                         AND revoked_at IS NULL AND expires_at > now()",
                    )
                    .await?,
                &[&session.session_id, &session.account_id],
            )
            .await?;
        if live.is_none() {
            return Err(SitesError::Unauthenticated(
                "authorization: the session has ended; sign in again".into(),
            ));
        }
        Ok(Principal {
            account_id: session.account_id,
            session_id: session.session_id,
        })
    }

    /// What a session token says, if its signature holds and it has not
    /// expired (whether its session still holds is a query).
    pub fn verify_token(&self, token: &str) -> Result<anp_session::Session, SitesError> {
        self.signer
            .verifier()
            .verify(token)
            .map_err(|err| SitesError::Unauthenticated(format!("authorization: {err}")))
    }

    pub async fn sign_out(&self, principal: Principal) -> Result<(), SitesError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                &[&principal.session_id],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ana@Example.ORG ").unwrap(),
            "ana@example.org"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "a b@example.org",
            "a@b@c.org",
        ] {
            let err = normalize_email(bad).unwrap_err().to_string();
            assert!(err.starts_with("email:"), "{bad}: {err}");
        }
        assert!(normalize_email(&format!("{}@example.org", "a".repeat(300))).is_err());
    }

    #[test]
    fn sealed_personal_data_needs_its_key() {
        let key: [u8; 32] = rand::random();
        let personal = ev::AccountPersonal {
            email: "ana@example.org".into(),
            display_name: "Ana".into(),
            password_hash: "$argon2id$...".into(),
        };
        let sealed = seal_personal(&key, &personal).unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"ana@e"));
        assert_eq!(unseal_personal(&key, &sealed).unwrap(), personal);
        let other: [u8; 32] = rand::random();
        assert!(unseal_personal(&other, &sealed).is_err());
        assert!(unseal_personal(&key, &sealed[..10]).is_err());
    }

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        assert!(!verify_password("correct horse battery".into(), None).await);
    }

    #[test]
    fn sign_in_attempts_are_limited_per_email() {
        let limiter = SignInLimiter::new(3);
        for _ in 0..3 {
            limiter.check("ana@example.org", "peer").unwrap();
        }
        assert!(matches!(
            limiter.check("ana@example.org", "peer"),
            Err(SitesError::RateLimited(_))
        ));
        limiter.check("bo@example.org", "peer").unwrap();
    }
}
