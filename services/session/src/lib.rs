//! Session tokens.
//!
//! The sites service signs a short-lived token (a JWT, EdDSA/Ed25519) when an
//! account signs in; every other service verifies it with the public key
//! alone, so no service but sites can mint one. A token names the account and
//! the session; roles are never in it — each service asks the owner of the
//! data (see `docs/decisions/0006-accounts-sessions-roles.md`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

const ISSUER: &str = "anp-sites";
const AUDIENCE: &str = "anp";
/// Grants are for service-to-service calls only: a session token is never a
/// grant, nor a grant a session.
const GRANT_AUDIENCE: &str = "anp-internal";
/// How long a grant lives: one operation.
pub const GRANT_TTL_SECONDS: i64 = 300;
/// Longest token accepted before any parsing.
pub const MAX_TOKEN_BYTES: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("session key: {0}")]
    Key(String),
    #[error("session token: {0}")]
    Invalid(String),
    #[error("session token: expired")]
    Expired,
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub account_id: Uuid,
    pub session_id: Uuid,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// What an operator's action allows another service to do for one network,
/// e.g. `export` the content of network N. Signed by sites after it has
/// checked the operator's ops token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who asked (the ops token's name), for the other service's logs.
    pub subject: String,
    pub network_id: Uuid,
    pub action: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct GrantClaims {
    sub: String,
    net: String,
    act: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// Verifies tokens with the public key.
///
/// A session token's signature is checked once: the claims of tokens seen
/// lately are kept (`VERIFIED_CAPACITY`, shared by the clones), so the next
/// request with the same bytes only checks their expiry. What a token says
/// never changes; whether its session still holds is the sites service's
/// question, asked every time.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    grant_validation: Validation,
    verified: std::sync::Arc<quick_cache::sync::Cache<String, Session>>,
}

/// How many verified session tokens a verifier remembers (under 1 KB each).
const VERIFIED_CAPACITY: usize = 4096;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier")
    }
}

impl Verifier {
    /// From the base64 of the 32-byte Ed25519 public key
    /// (`ANP_SESSION_PUBLIC_KEY`).
    pub fn from_public_key(base64_key: &str) -> Result<Self, SessionError> {
        let bytes = STANDARD
            .decode(base64_key.trim())
            .map_err(|err| SessionError::Key(format!("public key is not base64: {err}")))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SessionError::Key("public key must be 32 bytes".into()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|err| SessionError::Key(format!("public key: {err}")))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        let mut grant_validation = validation.clone();
        grant_validation.set_audience(&[GRANT_AUDIENCE]);
        Ok(Verifier {
            key: DecodingKey::from_ed_der(&bytes),
            validation,
            grant_validation,
            verified: std::sync::Arc::new(quick_cache::sync::Cache::new(VERIFIED_CAPACITY)),
        })
    }

    /// A grant for `action` on `network_id`; any other action or network is
    /// refused.
    pub fn verify_grant(
        &self,
        token: &str,
        action: &str,
        network_id: Uuid,
    ) -> Result<Grant, SessionError> {
        let grant = self.verify_grant_for(token, action)?;
        if grant.network_id != network_id {
            return Err(SessionError::Invalid("grant is for another network".into()));
        }
        Ok(grant)
    }

    /// A grant for `action` on whichever network it names.
    pub fn verify_grant_for(&self, token: &str, action: &str) -> Result<Grant, SessionError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(SessionError::Invalid("too long".into()));
        }
        let data = jsonwebtoken::decode::<GrantClaims>(token, &self.key, &self.grant_validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => SessionError::Expired,
                _ => SessionError::Invalid(err.to_string()),
            })?;
        let claims = data.claims;
        if claims.act != action {
            return Err(SessionError::Invalid(format!(
                "grant is for {:?}, not {action:?}",
                claims.act
            )));
        }
        let network_id = claims
            .net
            .parse()
            .map_err(|_| SessionError::Invalid("grant names no network".into()))?;
        Ok(Grant {
            subject: claims.sub,
            network_id,
            action: claims.act,
            expires_at: claims.exp,
        })
    }

    /// The grant of a gRPC request's bearer token, or `UNAUTHENTICATED` /
    /// `PERMISSION_DENIED`.
    /// When `network_id` is `None`, the grant's own network is returned.
    pub fn grant_of<T>(
        &self,
        request: &tonic::Request<T>,
        action: &str,
        network_id: Option<Uuid>,
    ) -> Result<Grant, tonic::Status> {
        let token = bearer(request).ok_or_else(|| {
            tonic::Status::unauthenticated(
                "authorization: a grant from the sites service is needed",
            )
        })?;
        match network_id {
            Some(network_id) => self.verify_grant(token, action, network_id),
            None => self.verify_grant_for(token, action),
        }
        .map_err(|err| tonic::Status::permission_denied(format!("authorization: {err}")))
    }

    pub fn verify(&self, token: &str) -> Result<Session, SessionError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(SessionError::Invalid("too long".into()));
        }
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] with the clock of a token seen before at `now`.
    fn verify_at(&self, token: &str, now: i64) -> Result<Session, SessionError> {
        if let Some(session) = self.verified.get(token) {
            // The signature held; only time may have ended it (with the
            // leeway the full check allows).
            if session.expires_at + i64::try_from(self.validation.leeway).unwrap_or(0) < now {
                self.verified.remove(token);
                return Err(SessionError::Expired);
            }
            return Ok(session);
        }
        let session = self.verify_signed(token)?;
        self.verified.insert(token.to_owned(), session);
        Ok(session)
    }

    fn verify_signed(&self, token: &str) -> Result<Session, SessionError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|err| {
                match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => SessionError::Expired,
                    _ => SessionError::Invalid(err.to_string()),
                }
            })?;
        let parse = |value: &str, what: &str| {
            value
                .parse::<Uuid>()
                .map_err(|_| SessionError::Invalid(format!("{what} is not a UUID")))
        };
        Ok(Session {
            account_id: parse(&data.claims.sub, "sub")?,
            session_id: parse(&data.claims.sid, "sid")?,
            expires_at: data.claims.exp,
        })
    }

    /// The session of a gRPC request's `authorization: Bearer <token>`, or
    /// `UNAUTHENTICATED`.
    pub fn session_of<T>(&self, request: &tonic::Request<T>) -> Result<Session, tonic::Status> {
        let token = bearer(request)
            .ok_or_else(|| tonic::Status::unauthenticated("authorization: sign in first"))?;
        self.verify(token)
            .map_err(|err| tonic::Status::unauthenticated(format!("authorization: {err}")))
    }
}

/// A gRPC request carrying `token` as `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Result<tonic::Request<T>, SessionError> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| SessionError::Invalid("not valid in a header".into()))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// The bearer token of a gRPC request, if any.
pub fn bearer<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Signs tokens; only the sites service holds one.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    seed: [u8; 32],
    public_key: String,
    verifier: Verifier,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public_key)
    }
}

impl Signer {
    /// From the base64 of a 32-byte secret seed (`ANP_SESSION_SIGNING_KEY`).
    pub fn from_seed(base64_seed: &str) -> Result<Self, SessionError> {
        let bytes = STANDARD
            .decode(base64_seed.trim())
            .map_err(|err| SessionError::Key(format!("signing key is not base64: {err}")))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SessionError::Key("signing key must be 32 bytes".into()))?;
        Self::from_seed_bytes(seed)
    }

    /// A new random key; returns it with the base64 of its seed.
    pub fn generate() -> Result<(Self, String), SessionError> {
        let seed: [u8; 32] = rand::random();
        Ok((Self::from_seed_bytes(seed)?, STANDARD.encode(seed)))
    }

    fn from_seed_bytes(seed: [u8; 32]) -> Result<Self, SessionError> {
        let signing = SigningKey::from_bytes(&seed);
        let der = signing
            .to_pkcs8_der()
            .map_err(|err| SessionError::Key(err.to_string()))?;
        let public_key = STANDARD.encode(signing.verifying_key().to_bytes());
        Ok(Signer {
            key: EncodingKey::from_ed_der(der.as_bytes()),
            seed,
            verifier: Verifier::from_public_key(&public_key)?,
            public_key,
        })
    }

    /// Base64 of the public key, for `ANP_SESSION_PUBLIC_KEY`.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// A token for `account_id`'s session `session_id`, valid until
    /// `expires_at` (Unix seconds).
    pub fn sign(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        expires_at: i64,
    ) -> Result<String, SessionError> {
        let claims = Claims {
            sub: account_id.to_string(),
            sid: session_id.to_string(),
            iat: chrono::Utc::now().timestamp(),
            exp: expires_at,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|err| SessionError::Key(err.to_string()))
    }

    /// A grant for `action` on `network_id`, valid for [`GRANT_TTL_SECONDS`].
    pub fn sign_grant(
        &self,
        subject: &str,
        action: &str,
        network_id: Uuid,
    ) -> Result<String, SessionError> {
        let now = chrono::Utc::now().timestamp();
        let claims = GrantClaims {
            sub: subject.to_owned(),
            net: network_id.to_string(),
            act: action.to_owned(),
            iat: now,
            exp: now + GRANT_TTL_SECONDS,
            iss: ISSUER.into(),
            aud: GRANT_AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|err| SessionError::Key(err.to_string()))
    }

    /// A secret for another purpose (e.g. invitation tokens), derived from the
    /// signing key with HMAC-SHA256 so that one secret is enough to configure.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.seed)
            .expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_token_verifies_and_names_the_account() {
        let (signer, seed) = Signer::generate().unwrap();
        let again = Signer::from_seed(&seed).unwrap();
        assert_eq!(signer.public_key(), again.public_key());
        let (account, session) = (Uuid::now_v7(), Uuid::now_v7());
        let exp = chrono::Utc::now().timestamp() + 60;
        let token = signer.sign(account, session, exp).unwrap();
        let verifier = Verifier::from_public_key(signer.public_key()).unwrap();
        let verified = verifier.verify(&token).unwrap();
        assert_eq!(verified.account_id, account);
        assert_eq!(verified.session_id, session);
        assert_eq!(verified.expires_at, exp);
    }

    #[test]
    fn a_token_seen_before_still_expires_and_only_its_own_bytes_match() {
        let (signer, _) = Signer::generate().unwrap();
        let verifier = signer.verifier().clone();
        let now = chrono::Utc::now().timestamp();
        let (account, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = signer.sign(account, session, now + 60).unwrap();
        let first = verifier.verify(&token).unwrap();
        // Remembered: the same answer, shared by a clone.
        assert_eq!(verifier.clone().verify(&token).unwrap(), first);
        assert_eq!(verifier.verify_at(&token, now + 64).unwrap(), first);
        // Past its expiry and the leeway, the remembered token is refused.
        assert_eq!(
            verifier.verify_at(&token, now + 66),
            Err(SessionError::Expired)
        );
        // A token differing in its signature is checked, not remembered.
        let mut forged = token.clone().into_bytes();
        let at = forged.len() - 10; // inside the signature
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(verifier.verify(&forged).is_err());
        assert_eq!(verifier.verify(&token).unwrap(), first);
    }

    #[test]
    fn rejects_other_keys_expiry_and_tampering() {
        let (signer, _) = Signer::generate().unwrap();
        let (other, _) = Signer::generate().unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = other
            .sign(Uuid::now_v7(), Uuid::now_v7(), now + 60)
            .unwrap();
        assert!(matches!(
            signer.verifier().verify(&token),
            Err(SessionError::Invalid(_))
        ));
        let expired = signer
            .sign(Uuid::now_v7(), Uuid::now_v7(), now - 60)
            .unwrap();
        assert_eq!(
            signer.verifier().verify(&expired),
            Err(SessionError::Expired)
        );
        let good = signer
            .sign(Uuid::now_v7(), Uuid::now_v7(), now + 60)
            .unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = signer
            .sign(Uuid::now_v7(), Uuid::now_v7(), now + 60)
            .unwrap();
        let forged_claims = forged.split('.').nth(1).unwrap().to_owned();
        parts[1] = &forged_claims;
        assert!(signer.verifier().verify(&parts.join(".")).is_err());
        assert!(signer.verifier().verify("garbage").is_err());
        assert!(signer.verifier().verify(&"a".repeat(5000)).is_err());
        assert!(Verifier::from_public_key("not base64!").is_err());
        assert!(Signer::from_seed("c2hvcnQ=").is_err());
    }

    #[test]
    fn grants_are_bound_to_action_and_network_and_are_not_sessions() {
        let (signer, _) = Signer::generate().unwrap();
        let (other, _) = Signer::generate().unwrap();
        let network = Uuid::now_v7();
        let grant = signer.sign_grant("ops:alice", "export", network).unwrap();
        let verified = signer
            .verifier()
            .verify_grant(&grant, "export", network)
            .unwrap();
        assert_eq!(verified.subject, "ops:alice");
        assert!(
            signer
                .verifier()
                .verify_grant(&grant, "purge", network)
                .is_err()
        );
        assert!(
            signer
                .verifier()
                .verify_grant(&grant, "export", Uuid::now_v7())
                .is_err()
        );
        assert!(
            other
                .verifier()
                .verify_grant(&grant, "export", network)
                .is_err()
        );
        // A grant is no session, and a session no grant.
        assert!(signer.verifier().verify(&grant).is_err());
        let session = signer
            .sign(
                Uuid::now_v7(),
                Uuid::now_v7(),
                chrono::Utc::now().timestamp() + 60,
            )
            .unwrap();
        assert!(
            signer
                .verifier()
                .verify_grant(&session, "export", network)
                .is_err()
        );
    }

    #[test]
    fn derived_secrets_differ_by_purpose() {
        let (signer, _) = Signer::generate().unwrap();
        assert_ne!(signer.derive_secret("a"), signer.derive_secret("b"));
        assert_eq!(signer.derive_secret("a"), signer.derive_secret("a"));
    }
}
