//! Moving one network between installations.
//!
//! * [`format`]: the archive an export writes and an import reads — a tar
//!   of `manifest.json`, `accounts/keys.ndjson` and one
//!   `events/<service>.ndjson` per service (see `docs/export-and-offboarding.md`).
//! * [`convert`]: events as they travel ([`Envelope`]) and as they are
//!   stored, checked field by field on the way in.
//! * [`service`]: the `NetworkArchive` gRPC service of a store whose state
//!   is its events alone (content), called by the sites service with a grant.
//!
//! [`Envelope`]: anp_proto::events::v1::Envelope

pub mod client;
pub mod convert;
pub mod format;
pub mod service;

/// Errors of reading, writing or checking an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive or an event in it is not what it should be; names the
    /// file or field.
    #[error("{0}")]
    Invalid(String),
    #[error("archive file: {0}")]
    Io(#[from] std::io::Error),
    #[error("archive json: {0}")]
    Json(#[from] serde_json::Error),
    /// What the ops API answered.
    #[error("{}", .0.message())]
    Grpc(#[from] tonic::Status),
}
