use anp_eventstore::StoreError;
use anp_kit::{ErrorKind, ServiceError};

/// Errors of the sites service. Every message names the field or the thing
/// it is about.
#[derive(Debug, thiserror::Error)]
pub enum SitesError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{field}: {value:?} is already taken")]
    Taken { field: &'static str, value: String },
    #[error("concurrent change, retry: {0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Denied(String),
    #[error("quota {quota}: the network's plan allows {limit}")]
    Quota { quota: &'static str, limit: i64 },
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Precondition(String),
    #[error("internal: {0}")]
    Internal(String),
    /// Another service's answer to a call made for an operator (export,
    /// import, offboarding), passed on.
    #[error("{service}: {}", status.message())]
    Peer {
        service: String,
        status: tonic::Status,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {}", db_message(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl SitesError {
    pub fn invalid(message: impl Into<String>) -> Self {
        SitesError::Invalid(message.into())
    }

    pub fn denied(message: impl Into<String>) -> Self {
        SitesError::Denied(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        SitesError::NotFound(message.into())
    }
}

impl ServiceError for SitesError {
    fn kind(&self) -> ErrorKind {
        match self {
            SitesError::Invalid(_) => ErrorKind::InvalidArgument,
            SitesError::NotFound(_) => ErrorKind::NotFound,
            SitesError::Taken { .. } => ErrorKind::AlreadyExists,
            SitesError::Conflict(_) => ErrorKind::Conflict,
            SitesError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            SitesError::Denied(_) => ErrorKind::PermissionDenied,
            SitesError::Quota { .. } | SitesError::RateLimited(_) => ErrorKind::ResourceExhausted,
            SitesError::Precondition(_) => ErrorKind::FailedPrecondition,
            SitesError::Peer { status, .. } => match ErrorKind::from_grpc(status.code()) {
                ErrorKind::Internal => ErrorKind::Unavailable,
                kind => kind,
            },
            SitesError::Store(StoreError::Conflict { .. }) => ErrorKind::Conflict,
            SitesError::Internal(_)
            | SitesError::Store(_)
            | SitesError::Db(_)
            | SitesError::Pool(_) => ErrorKind::Internal,
        }
    }
}

/// A unique violation becomes `Taken` for `field`, anything else a database error.
pub(crate) fn taken_or_db(
    err: tokio_postgres::Error,
    field: &'static str,
    value: &str,
) -> SitesError {
    if anp_eventstore::unique_violation(&err).is_some() {
        return SitesError::Taken {
            field,
            value: value.to_owned(),
        };
    }
    SitesError::Db(err)
}

/// A unique violation at commit means a concurrent writer won.
pub(crate) fn conflict_or_db(err: tokio_postgres::Error, field: &'static str) -> SitesError {
    if anp_eventstore::unique_violation(&err).is_some() {
        return SitesError::Conflict(format!("{field}: changed concurrently"));
    }
    SitesError::Db(err)
}

/// A database error with PostgreSQL's own message, for the logs.
pub fn db_message(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail()
                .map(|detail| format!(": {detail}"))
                .unwrap_or_default()
        ),
        None => err.to_string(),
    }
}
