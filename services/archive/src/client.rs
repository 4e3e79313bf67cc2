//! The operator's side: write an export to a file, stream a file to an
//! import (used by `anpctl network export|import|offboard`).

use std::path::{Path, PathBuf};

use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
use anp_proto::ops::v1::{ArchiveItem, ExportNetworkRequest, ImportNetworkResponse};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::ArchiveError;
use crate::format::{self, ArchiveWriter, Manifest};

fn authorized<T>(message: T, ops_token: &str) -> Result<tonic::Request<T>, ArchiveError> {
    anp_session::with_bearer(message, ops_token)
        .map_err(|err| ArchiveError::Invalid(format!("ops token: {err}")))
}

const STOPPED: &str = "the server stopped reading";

fn blocking_failed(err: tokio::task::JoinError) -> ArchiveError {
    ArchiveError::Io(std::io::Error::other(err))
}

/// Exports network `slug` to the archive `out`; returns its manifest.
pub async fn export(
    ops: &mut OpsServiceClient<Channel>,
    ops_token: &str,
    slug: &str,
    out: &Path,
) -> Result<Manifest, ArchiveError> {
    let mut stream = ops
        .export_network(authorized(
            ExportNetworkRequest {
                slug: slug.to_owned(),
            },
            ops_token,
        )?)
        .await?
        .into_inner();
    let mut writer = ArchiveWriter::new()?;
    let mut manifest = None;
    while let Some(item) = stream.message().await? {
        // Local files only; small writes, buffered.
        if let Some(found) = writer.push(item)? {
            manifest = Some(found);
        }
    }
    let manifest = manifest.ok_or_else(|| {
        ArchiveError::Invalid("export ended without its manifest: it did not finish".into())
    })?;
    let out: PathBuf = out.to_owned();
    tokio::task::spawn_blocking(move || writer.finish(&manifest, &out))
        .await
        .map_err(blocking_failed)?
}

/// Checks the archive at `path` and imports it.
pub async fn import(
    ops: &mut OpsServiceClient<Channel>,
    ops_token: &str,
    path: &Path,
) -> Result<ImportNetworkResponse, ArchiveError> {
    let owned = path.to_owned();
    let manifest = tokio::task::spawn_blocking(move || format::open(&owned))
        .await
        .map_err(blocking_failed)??;
    let (sender, receiver) = tokio::sync::mpsc::channel::<ArchiveItem>(64);
    let owned = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        format::for_each_item(&owned, &manifest, |item| {
            sender
                .blocking_send(item)
                .map_err(|_| ArchiveError::Invalid(format!("import: {STOPPED}")))
        })
    });
    // A reader that fails sends fewer items than the manifest announces, so
    // the server keeps nothing.
    let reply = ops
        .import_network(authorized(ReceiverStream::new(receiver), ops_token)?)
        .await;
    let read = reader.await.map_err(blocking_failed)?;
    match (read, reply) {
        // The archive could not be read: that is the cause, not what the
        // server says of the missing rest.
        (Err(err), _) if !err.to_string().contains(STOPPED) => Err(err),
        (_, Err(status)) => Err(status.into()),
        (Err(err), Ok(_)) => Err(err),
        (Ok(()), Ok(reply)) => Ok(reply.into_inner()),
    }
}
