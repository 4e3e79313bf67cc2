//! NATS JetStream plumbing shared by the services: the `ANP_EVENTS` stream,
//! subject names, the event envelope, and the outbox relay that publishes
//! committed events from a service's event store.

use std::time::Duration;

use anp_eventstore::{Checkpoint, EventStore, RecordedEvent, StoreError};
use anp_proto::events::v1::Envelope;
use async_nats::jetstream::{self, message::PublishMessage};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats connect: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("jetstream stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("jetstream publish: {0}")]
    Publish(String),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
}

/// Where events travel. Tests give each run its own stream and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    pub nats_url: String,
    /// JetStream stream name, `ANP_EVENTS` by default.
    pub stream_name: String,
    /// Subject prefix, `anp.events` by default; subjects are
    /// `<prefix>.<service>.<network_id>.<event_type>`.
    pub subject_prefix: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            nats_url: "nats://127.0.0.1:4222".into(),
            stream_name: "ANP_EVENTS".into(),
            subject_prefix: "anp.events".into(),
        }
    }
}

impl BusConfig {
    /// Reads `ANP_NATS_URL`, `ANP_NATS_STREAM` and `ANP_NATS_SUBJECT_PREFIX`.
    pub fn from_env() -> Self {
        let defaults = BusConfig::default();
        BusConfig {
            nats_url: std::env::var("ANP_NATS_URL").unwrap_or(defaults.nats_url),
            stream_name: std::env::var("ANP_NATS_STREAM").unwrap_or(defaults.stream_name),
            subject_prefix: std::env::var("ANP_NATS_SUBJECT_PREFIX")
                .unwrap_or(defaults.subject_prefix),
        }
    }

    /// The subject of one event.
    pub fn subject(&self, service: &str, network_id: &str, event_type: &str) -> String {
        format!(
            "{}.{service}.{network_id}.{event_type}",
            self.subject_prefix
        )
    }

    /// Subjects of every event.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }
}

/// Connects to NATS and returns a JetStream context.
pub async fn connect(config: &BusConfig) -> Result<jetstream::Context, BusError> {
    let client = async_nats::ConnectOptions::new()
        .name("anp")
        .retry_on_initial_connect()
        .connect(&config.nats_url)
        .await?;
    Ok(jetstream::new(client))
}

/// Creates the events stream if it is missing.
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &BusConfig,
) -> Result<jetstream::stream::Stream, BusError> {
    jetstream
        .get_or_create_stream(jetstream::stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![config.all_subjects()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|err| BusError::Stream {
            stream: config.stream_name.clone(),
            message: err.to_string(),
        })
}

/// Starts a store's relay inside the service's own process (the default;
/// `ANP_EMBEDDED_RELAY=false` leaves it to a separate `anp-relay`), or
/// nothing when `embedded` is false.
pub async fn spawn_relay(
    embedded: bool,
    service: &str,
    store: EventStore,
    config: &BusConfig,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, BusError> {
    if !embedded {
        return Ok(None);
    }
    let jetstream = connect(config).await?;
    ensure_stream(&jetstream, config).await?;
    let relay = Relay::new(service, store, jetstream, config.clone());
    Ok(Some(tokio::spawn(relay.run(shutdown))))
}

/// The envelope of a stored event as it travels on NATS.
pub fn envelope(service: &str, event: &RecordedEvent) -> Envelope {
    let occurred = std::time::SystemTime::from(event.occurred_at);
    Envelope {
        event_id: event.event_id.to_string(),
        stream_id: event.stream_id.clone(),
        version: event.version,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        service: service.to_owned(),
        network_id: event.network_id.to_string(),
        site_id: event.site_id.map(|id| id.to_string()).unwrap_or_default(),
        actor: event.actor.clone(),
        occurred_at: Some(prost_types::Timestamp::from(occurred)),
        traceparent: event.traceparent.clone().unwrap_or_default(),
        payload: event.payload.clone(),
    }
}

/// `Nats-Msg-Id` of a stored event: its id and the transaction that stored
/// it. A publish retried by a relay (or by two relays at once) carries the
/// same id and is dropped by JetStream; the same event stored again — a
/// network imported back into the installation it left — is new on the bus.
pub fn message_id(event: &RecordedEvent) -> String {
    format!("{}:{}", event.event_id, event.global.tx_id)
}

/// The name under which a store's relay saves how far it has published to
/// the stream: a service can tell whether an event is on the bus yet.
pub fn relay_checkpoint(config: &BusConfig) -> String {
    format!("relay:{}", config.stream_name)
}

/// The first wait after the relay finds nothing new, and the wait after a
/// batch.
const IDLE_MIN: Duration = Duration::from_millis(5);
/// How often a busy relay saves its checkpoint (each save is a commit);
/// one that falls idle saves at once. A crash republishes at most this much,
/// and JetStream drops the duplicates.
const SAVE_EVERY: Duration = Duration::from_millis(100);

/// Where a relay stands.
#[derive(Default)]
struct Reading {
    /// Read from the store once, then moved on by every read.
    checkpoint: Option<Checkpoint>,
    /// Published past the saved checkpoint.
    unsaved: bool,
    saved_at: Option<std::time::Instant>,
}

/// Publishes committed events of one service's store to JetStream as they
/// commit (each batch in the store's global order; one stream's events
/// always in order), with `Nats-Msg-Id` = [`message_id`]. Its checkpoint is
/// saved once JetStream has acknowledged a batch — at most every
/// [`SAVE_EVERY`] while busy, at once when idle or stopping; after a crash it
/// starts again from there and JetStream drops the republished duplicates.
/// It never waits for an older transaction still running elsewhere
/// (decision 0025).
pub struct Relay {
    service: String,
    store: EventStore,
    jetstream: jetstream::Context,
    config: BusConfig,
    batch_size: i64,
    idle_wait: Duration,
    /// The checkpoint, once read, and moved on by every read: a running
    /// relay need not re-read it.
    checkpoint: tokio::sync::Mutex<Reading>,
}

impl Relay {
    pub fn new(
        service: &str,
        store: EventStore,
        jetstream: jetstream::Context,
        config: BusConfig,
    ) -> Self {
        Relay {
            service: service.to_owned(),
            store,
            jetstream,
            config,
            batch_size: 4096,
            idle_wait: Duration::from_millis(50),
            checkpoint: tokio::sync::Mutex::new(Reading::default()),
        }
    }

    fn checkpoint_name(&self) -> String {
        relay_checkpoint(&self.config)
    }

    /// Waits until this relay is the only one publishing this store to this
    /// stream (a session advisory lock), so replicas of a service do not all
    /// publish the same events. Returns the connection that holds the lock.
    async fn become_leader(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<deadpool_postgres::Object> {
        let key = format!("anp-relay-{}-{}", self.service, self.config.stream_name);
        loop {
            let attempt = async {
                let client = self.store.pool().get().await.ok()?;
                let row = client
                    .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
                    .await
                    .ok()?;
                row.get::<_, bool>(0).then_some(client)
            };
            if let Some(client) = attempt.await {
                return Some(client);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Runs until `shutdown` is cancelled, retrying after failures. It reads
    /// and saves on the connection that holds its lock, never waiting for
    /// one behind the service's requests; a broken connection is given up
    /// and the lock taken again.
    pub async fn run(self, shutdown: CancellationToken) {
        while let Some(leader) = self.become_leader(&shutdown).await {
            info!(service = %self.service, stream = %self.config.stream_name, "relay started");
            self.lead(&leader, &shutdown).await;
            if leader.is_closed() {
                warn!(service = %self.service, "relay connection lost, taking the lock again");
                continue;
            }
            // Save what was published, then release the lock: the
            // connection goes back to the pool.
            let reading = self.checkpoint.lock().await;
            if let (true, Some(checkpoint)) = (reading.unsaved, &reading.checkpoint) {
                let name = self.checkpoint_name();
                if let Err(err) =
                    anp_eventstore::save_commit_checkpoint_in(&leader, &name, checkpoint).await
                {
                    warn!(error = %err, service = %self.service, "relay checkpoint not saved");
                }
            }
            let _ = leader.execute("SELECT pg_advisory_unlock_all()", &[]).await;
            break;
        }
        info!(service = %self.service, "relay stopped");
    }

    /// Publishes while `leader` holds the lock: until shutdown, or until the
    /// connection breaks.
    async fn lead(&self, leader: &deadpool_postgres::Client, shutdown: &CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        // Poll quickly while events flow, and back off to `idle_wait` when
        // nothing happens, so an idle installation costs almost nothing.
        let mut idle = IDLE_MIN;
        while !shutdown.is_cancelled() && !leader.is_closed() {
            match self.pump_on(leader).await {
                Ok(0) => {
                    backoff = Duration::from_millis(50);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(idle) => {}
                    }
                    idle = (idle * 2).min(self.idle_wait);
                }
                Ok(published) => {
                    backoff = Duration::from_millis(50);
                    idle = IDLE_MIN;
                    debug!(published, "relay published batch");
                    // Let a few more commit: fewer, larger batches.
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(IDLE_MIN) => {}
                    }
                }
                Err(err) => {
                    warn!(error = %err, service = %self.service, "relay batch failed, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Publishes one batch (at most 4,096 events, all acks in flight at
    /// once) through a pooled connection; returns how many events it
    /// published.
    pub async fn pump_once(&self) -> Result<usize, BusError> {
        let client = self.store.pool().get().await.map_err(StoreError::from)?;
        self.pump_on(&client).await
    }

    async fn pump_on(&self, client: &deadpool_postgres::Client) -> Result<usize, BusError> {
        let name = self.checkpoint_name();
        let mut reading = self.checkpoint.lock().await;
        let from = match &reading.checkpoint {
            Some(known) => known.clone(),
            None => anp_eventstore::load_commit_checkpoint_in(client, &name).await?,
        };
        let read = anp_eventstore::read_committed_after_in(client, &from, self.batch_size).await?;
        let events = read.events;
        if events.is_empty() {
            // Nothing committed since: later reads start from this snapshot,
            // and what was published is saved now.
            if reading.unsaved {
                anp_eventstore::save_commit_checkpoint_in(client, &name, &read.next).await?;
                reading.unsaved = false;
                reading.saved_at = Some(std::time::Instant::now());
            }
            reading.checkpoint = Some(read.next);
            return Ok(0);
        }
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let envelope = envelope(&self.service, event);
            let subject =
                self.config
                    .subject(&self.service, &envelope.network_id, &envelope.event_type);
            let mut headers = async_nats::HeaderMap::new();
            if !envelope.traceparent.is_empty() {
                headers.insert("traceparent", envelope.traceparent.as_str());
                // Marks the hand-over to the bus in the command's trace.
                let _span = anp_kit::span_from_traceparent(
                    &envelope.traceparent,
                    tracing::info_span!("event relayed", event_type = %envelope.event_type, event_id = %envelope.event_id),
                );
            }
            headers.insert("anp-event-type", envelope.event_type.as_str());
            // `headers` replaces the whole header map, so it comes before
            // `message_id`, which adds `Nats-Msg-Id` to it.
            let publish = PublishMessage::build()
                .headers(headers)
                .message_id(message_id(event))
                .payload(envelope.encode_to_vec().into());
            let ack = self
                .jetstream
                .send_publish(subject, publish)
                .await
                .map_err(|err| BusError::Publish(err.to_string()))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|err| BusError::Publish(err.to_string()))?;
        }
        if reading
            .saved_at
            .is_none_or(|saved| saved.elapsed() >= SAVE_EVERY)
        {
            anp_eventstore::save_commit_checkpoint_in(client, &name, &read.next).await?;
            reading.unsaved = false;
            reading.saved_at = Some(std::time::Instant::now());
        } else {
            reading.unsaved = true;
        }
        reading.checkpoint = Some(read.next);
        Ok(events.len())
    }
}
