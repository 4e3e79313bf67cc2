//! The `NetworkArchive` service of a store whose state is its events alone:
//! export, import, tally and purge one network's events. Every call needs a
//! grant for its action and network, signed by the sites service.

use std::time::Duration;

use anp_eventstore::{EventStore, Position, StoreError};
use anp_proto::archive::v1::network_archive_server::{NetworkArchive, NetworkArchiveServer};
use anp_proto::archive::v1::{
    ExportRequest, ImportItem, ImportReply, PurgeReply, PurgeRequest, ServiceTally, TallyRequest,
    import_item,
};
use anp_proto::events::v1::Envelope;
use anp_session::Verifier;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};
use uuid::Uuid;

use crate::convert::{from_envelope, to_envelope};

/// Events per page of an export.
const PAGE: i64 = 1000;
/// How long a purge waits for the relay to publish the network's last event.
const PURGE_WAIT: Duration = Duration::from_secs(30);

/// What a service keeps beside its events (state tables written in the
/// same transaction): an import applies each event written, a purge
/// removes the network's rows.
#[tonic::async_trait]
pub trait StateTables: Send + Sync + 'static {
    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &anp_eventstore::RecordedEvent,
    ) -> Result<(), String>;

    async fn purge(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        network_id: Uuid,
    ) -> Result<(), String>;
}

/// Serves one service's store.
#[derive(Clone)]
pub struct ArchiveService {
    service: &'static str,
    store: EventStore,
    grants: Verifier,
    relay_checkpoint: String,
    tables: Option<std::sync::Arc<dyn StateTables>>,
}

impl ArchiveService {
    /// `relay_checkpoint` is where the store's relay saves its position
    /// ([`anp_bus::relay_checkpoint`]).
    pub fn new(
        service: &'static str,
        store: EventStore,
        grants: Verifier,
        relay_checkpoint: String,
    ) -> Self {
        ArchiveService {
            service,
            store,
            grants,
            relay_checkpoint,
            tables: None,
        }
    }

    /// The service's state tables, kept in step on import and purge.
    pub fn with_tables(mut self, tables: std::sync::Arc<dyn StateTables>) -> Self {
        self.tables = Some(tables);
        self
    }

    pub fn into_server(self) -> NetworkArchiveServer<ArchiveService> {
        NetworkArchiveServer::new(self)
            .max_decoding_message_size(crate::convert::MAX_PAYLOAD_BYTES * 2)
    }
}

fn network_id(field: &str, value: &str) -> Result<Uuid, Status> {
    value
        .parse()
        .map_err(|_| Status::invalid_argument(format!("{field}: {value:?} is not a UUID")))
}

fn internal(err: impl std::fmt::Display) -> Status {
    tracing::error!(error = %err, "archive: internal error");
    Status::internal("internal error")
}

fn store_error(err: StoreError) -> Status {
    match err {
        StoreError::Conflict { stream_id, .. } => Status::already_exists(format!(
            "stream {stream_id}: another event is already at this version here"
        )),
        other => internal(other),
    }
}

#[tonic::async_trait]
impl NetworkArchive for ArchiveService {
    type ExportStream = ReceiverStream<Result<Envelope, Status>>;

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let network = network_id("network_id", &request.get_ref().network_id)?;
        let grant = self.grants.grant_of(&request, "export", Some(network))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let store = self.store.clone();
        let service = self.service;
        tokio::spawn(async move {
            let result = async {
                let mut client = store.pool().get().await.map_err(internal)?;
                // One snapshot for every page.
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(internal)?;
                let mut after = Position::default();
                let mut sent = 0u64;
                loop {
                    let page = anp_eventstore::network_events_in(&*tx, network, after, PAGE)
                        .await
                        .map_err(store_error)?;
                    let Some(last) = page.last().map(|event| event.global) else {
                        break;
                    };
                    for event in &page {
                        if sender.send(Ok(to_envelope(service, event))).await.is_err() {
                            return Ok(sent);
                        }
                        sent += 1;
                    }
                    after = last;
                }
                Ok::<u64, Status>(sent)
            }
            .await;
            match result {
                Ok(sent) => info!(%network, sent, by = %grant.subject, service, "network exported"),
                Err(status) => {
                    let _ = sender.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn import(
        &self,
        request: Request<Streaming<ImportItem>>,
    ) -> Result<Response<ImportReply>, Status> {
        let grant = self.grants.grant_of(&request, "import", None)?;
        let network = grant.network_id;
        let mut items = request.into_inner();
        let mut client = self.store.pool().get().await.map_err(internal)?;
        let tx = client.transaction().await.map_err(internal)?;
        let (mut received, mut imported) = (0u64, 0u64);
        loop {
            let Some(item) = items.message().await? else {
                // Ended without `done`: the sender gave up; nothing is kept.
                return Err(Status::aborted(
                    "import: the stream ended before it was done",
                ));
            };
            match item.item {
                Some(import_item::Item::Event(envelope)) => {
                    let event = from_envelope(received, &envelope)
                        .map_err(|err| Status::invalid_argument(err.to_string()))?;
                    if event.network_id != network {
                        return Err(Status::permission_denied(format!(
                            "event {received}: network_id: not the network of the grant"
                        )));
                    }
                    received += 1;
                    let written = anp_eventstore::import_in(&*tx, std::slice::from_ref(&event))
                        .await
                        .map_err(store_error)?;
                    if let Some(tables) = &self.tables {
                        for event in &written {
                            tables.apply(&tx, event).await.map_err(|message| {
                                Status::invalid_argument(format!(
                                    "event {}: {message}",
                                    received - 1
                                ))
                            })?;
                        }
                    }
                    imported += written.len() as u64;
                }
                Some(import_item::Item::Done(count)) => {
                    if count != received {
                        return Err(Status::invalid_argument(format!(
                            "done: {count} events announced, {received} received"
                        )));
                    }
                    break;
                }
                None => return Err(Status::invalid_argument("item: empty")),
            }
        }
        tx.commit().await.map_err(internal)?;
        info!(%network, imported, skipped = received - imported, by = %grant.subject, service = self.service, "network imported");
        Ok(Response::new(ImportReply {
            imported,
            skipped: received - imported,
        }))
    }

    async fn tally(
        &self,
        request: Request<TallyRequest>,
    ) -> Result<Response<ServiceTally>, Status> {
        let network = network_id("network_id", &request.get_ref().network_id)?;
        self.grants.grant_of(&request, "purge", Some(network))?;
        let client = self.store.pool().get().await.map_err(internal)?;
        let (events, last) = anp_eventstore::network_tally_in(&**client, network)
            .await
            .map_err(store_error)?;
        Ok(Response::new(ServiceTally {
            service: self.service.to_owned(),
            events,
            last_event_id: last.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn purge(&self, request: Request<PurgeRequest>) -> Result<Response<PurgeReply>, Status> {
        let network = network_id("network_id", &request.get_ref().network_id)?;
        let grant = self.grants.grant_of(&request, "purge", Some(network))?;
        let expected = request.get_ref().expected_last_event_id.clone();
        let deadline = tokio::time::Instant::now() + PURGE_WAIT;
        loop {
            let mut client = self.store.pool().get().await.map_err(internal)?;
            let tx = client.transaction().await.map_err(internal)?;
            let (_, last) = anp_eventstore::network_tally_in(&*tx, network)
                .await
                .map_err(store_error)?;
            let Some(last) = last.map(|id| id.to_string()) else {
                // No events (left) here: purged already, or never written;
                // the tables may still hold what others shared into it.
                if let Some(tables) = &self.tables {
                    tables.purge(&tx, network).await.map_err(internal)?;
                }
                tx.commit().await.map_err(internal)?;
                return Ok(Response::new(PurgeReply { deleted: 0 }));
            };
            if last != expected {
                return Err(Status::failed_precondition(format!(
                    "network changed since the export ({} now ends at event {last:?}, the \
                     archive at {expected:?}): export again",
                    self.service
                )));
            }
            // Every event must be on the bus before it goes: the projections
            // then see all of them before the network's end, never after.
            let published = anp_eventstore::network_read_in(&*tx, &self.relay_checkpoint, network)
                .await
                .map_err(store_error)?;
            if published {
                let deleted = anp_eventstore::delete_network_events_in(&*tx, network)
                    .await
                    .map_err(store_error)?;
                if let Some(tables) = &self.tables {
                    tables.purge(&tx, network).await.map_err(internal)?;
                }
                tx.commit().await.map_err(internal)?;
                info!(%network, deleted, by = %grant.subject, service = self.service, "network purged");
                return Ok(Response::new(PurgeReply { deleted }));
            }
            drop(tx);
            if tokio::time::Instant::now() >= deadline {
                warn!(%network, service = self.service, "purge: relay has not caught up");
                return Err(Status::unavailable(format!(
                    "{}: the relay has not yet published every event of the network; try again",
                    self.service
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
