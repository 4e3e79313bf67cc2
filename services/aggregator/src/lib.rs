//! The aggregator: the read side. A durable JetStream consumer projects
//! domain events into a Tantivy search index and into newest-first feeds in
//! PostgreSQL, acknowledging a batch only after both have committed it.

pub mod audience;
pub mod events;
pub mod facets;
pub mod feeds;
pub mod grpc;
pub mod index;
pub mod pairs;
pub mod reindex;
pub mod remembered;
mod scan;
pub mod search;
mod statistics;
pub mod status;
pub mod upcoming;
pub mod usage;
pub mod words;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anp_bus::BusConfig;
use anp_kit::{ErrorKind, ServiceError, Shutdown};
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use axum::response::IntoResponse;
use futures::StreamExt;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::events::Delivered;
use crate::feeds::Feeds;
use crate::index::{IndexHandle, SearchIndex};
use crate::usage::Usage;

pub const SERVICE: &str = "aggregator";
const BATCH_MAX: usize = 4_096;
/// Batches in the projections at once: the index may work on the next
/// batches while the timelines finish one, and the other way round; the
/// index commits the batches waiting for it together. Enough for the
/// batches of the 100 ms between two index commits (`COMMITS_APART`, a
/// batch every `LINGER`) and of a slow commit, so the timelines never wait
/// for the index's pacing; `IN_FLIGHT_EVENTS` bounds the memory.
const IN_FLIGHT: usize = 32;
/// Events in the projections at once: four full batches, so that the
/// timelines never wait for the index's commit and the index commits several
/// batches at once (bounds memory and how long a fetched message waits for
/// its turn: a few seconds, under `ACK_WAIT`).
const IN_FLIGHT_EVENTS: usize = 4 * BATCH_MAX;
/// While batches keep coming, the index commits at least this often.
const COMMIT_AFTER: Duration = Duration::from_secs(1);
/// Index commits start at least this far apart. Each commit is a segment
/// with a fixed cost (a term dictionary a field, its files, merging it
/// later): at 1,000 writes/s a fast machine committed 45 segments of ~22
/// documents a second, a third of the projector's CPU (decision 0029).
const COMMITS_APART: Duration = Duration::from_millis(100);
/// How long a batch waits for more events to share its commit.
const LINGER: Duration = Duration::from_millis(20);
/// Allocations up to this size come from the heap and are reused (see
/// `anp_kit::reuse_allocations_up_to`); larger ones are mapped and returned.
const REUSED_ALLOCATION_BYTES: usize = 8 * 1024 * 1024;
/// How long a delivered, unacknowledged message waits before redelivery
/// (e.g. when it went to an instance that was killed). Messages the client
/// already holds wait behind the batches in flight, which may take several
/// seconds while the bus is replayed.
const ACK_WAIT: Duration = Duration::from_secs(15);

/// Errors of the aggregator.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    #[error("{0}")]
    Invalid(String),
    #[error("search index: {0}")]
    Index(String),
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("event store: {0}")]
    Store(#[from] anp_eventstore::StoreError),
    #[error("bus: {0}")]
    Bus(String),
    /// Something already running (a rebuild).
    #[error("{0}")]
    Busy(String),
    /// A cursor whose snapshot is gone.
    #[error("{0}")]
    Expired(String),
}

impl ServiceError for AggregatorError {
    fn kind(&self) -> ErrorKind {
        match self {
            AggregatorError::Invalid(_) => ErrorKind::InvalidArgument,
            AggregatorError::Expired(_) => ErrorKind::FailedPrecondition,
            AggregatorError::Busy(_) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}

/// Configuration, from `ANP_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: anp_kit::DatabaseConfig,
    pub bus: BusConfig,
    pub index_dir: PathBuf,
    /// Durable consumer name on the events stream.
    pub consumer: String,
    /// Where Prometheus reads `/metrics` (`ANP_AGGREGATOR_METRICS_LISTEN`;
    /// none: not served).
    pub metrics_listen: Option<String>,
    /// The sites service, asked who a searcher is (`ANP_SITES_URL`; empty:
    /// every search is public).
    pub sites_url: String,
    /// The event stores a rebuild reads, as (service, schema) in the same
    /// database (`ANP_EVENT_STORES`, `service:schema,…`).
    pub event_stores: Vec<(String, String)>,
    /// Verifies the sites service's grants (`ANP_SESSION_PUBLIC_KEY`; none:
    /// no rebuild can be asked for).
    pub session_public_key: Option<String>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Config {
            database: anp_kit::DatabaseConfig::from_env("ANP_AGGREGATOR_SCHEMA", "aggregator")?,
            bus: BusConfig::from_env(),
            index_dir: PathBuf::from(anp_kit::env_or("ANP_INDEX_DIR", ".anp/data/index")),
            consumer: anp_kit::env_or("ANP_AGGREGATOR_CONSUMER", "aggregator"),
            metrics_listen: Some(anp_kit::env_or("ANP_AGGREGATOR_METRICS_LISTEN", ""))
                .filter(|listen| !listen.is_empty()),
            sites_url: anp_kit::env_or("ANP_SITES_URL", "http://127.0.0.1:50051"),
            event_stores: parse_event_stores(&anp_kit::env_or(
                "ANP_EVENT_STORES",
                DEFAULT_EVENT_STORES,
            ))?,
            session_public_key: std::env::var("ANP_SESSION_PUBLIC_KEY")
                .ok()
                .filter(|key| !key.is_empty()),
        })
    }
}

/// The services whose stores hold the events the read side projects.
pub const DEFAULT_EVENT_STORES: &str = "sites:sites,content:content,events:events";

/// `service:schema,…` as pairs.
pub fn parse_event_stores(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (service, schema) = part.trim().split_once(':').ok_or_else(|| {
                anyhow::anyhow!("ANP_EVENT_STORES: {part:?} is not service:schema")
            })?;
            Ok((service.to_owned(), schema.to_owned()))
        })
        .collect()
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The projections the consumer writes and the gRPC API reads.
#[derive(Clone)]
pub struct ReadModel {
    pub index: IndexHandle,
    /// Held while a batch is applied; a rebuild holds it to catch up and
    /// swap without a batch in between.
    pub applying: Arc<tokio::sync::Mutex<()>>,
    /// Held by the one rebuild that may run at a time.
    pub rebuilding: Arc<tokio::sync::Mutex<()>>,
    /// The index was created anew for this version: the consumer replays
    /// the whole bus once (every projection is idempotent).
    pub replay: bool,
    pub feeds: Feeds,
    pub usage: Usage,
    pub status: status::Status,
    pub audiences: audience::Audiences,
    pub reindex: reindex::Settings,
}

impl ReadModel {
    pub async fn open(config: &Config) -> Result<Self, AggregatorError> {
        let pool = anp_eventstore::connect_pool(
            &config.database.url,
            &config.database.schema,
            config.database.pool_size,
        )
        .await?;
        anp_eventstore::run_migrations(
            &pool,
            "anp_aggregator_migrations",
            embedded::migrations::runner(),
        )
        .await?;
        let index_dir = config.index_dir.clone();
        let (index, replay) = tokio::task::spawn_blocking(move || SearchIndex::open(&index_dir))
            .await
            .map_err(|err| AggregatorError::Index(err.to_string()))??;
        Ok(ReadModel {
            index: IndexHandle::new(&config.index_dir, index),
            applying: Arc::default(),
            rebuilding: Arc::default(),
            replay,
            usage: Usage::new(pool.clone()),
            status: status::Status::new(
                pool.clone(),
                config.bus.clone(),
                config.consumer.clone(),
                config.index_dir.clone(),
            ),
            feeds: Feeds::new(pool),
            audiences: audience::Audiences::new(&config.sites_url)?,
            reindex: reindex::Settings {
                database_url: config.database.url.clone(),
                stores: config.event_stores.clone(),
                grants: match &config.session_public_key {
                    Some(key) => {
                        Some(anp_session::Verifier::from_public_key(key).map_err(|err| {
                            AggregatorError::Invalid(format!("ANP_SESSION_PUBLIC_KEY: {err}"))
                        })?)
                    }
                    None => None,
                },
            },
        })
    }

    /// Adds batches to the search index (which keeps its own checkpoint)
    /// and commits them: the first batch, then every batch already waiting
    /// when it is added, for up to `COMMIT_AFTER` — one commit for all, so
    /// an index that fell behind catches up in one commit instead of one a
    /// batch. Answers each batch when committed. A rebuild pauses this to
    /// catch up and swap.
    ///
    /// Batches that arrive before `not_before` (or within `COMMIT_AFTER`)
    /// share the commit. Returns when the commit started.
    async fn index_batches(
        &self,
        first: IndexWork,
        waiting: &mut tokio::sync::mpsc::Receiver<IndexWork>,
        not_before: std::time::Instant,
    ) -> std::time::Instant {
        let _applying = self.applying.lock().await;
        let index = self.index.current();
        let started = std::time::Instant::now();
        let mut answers = Vec::new();
        let mut pending = std::collections::HashMap::new();
        let mut last_seq = None;
        let mut events = 0;
        let mut next = Some(first);
        let mut result = {
            let index = index.clone();
            tokio::task::spawn_blocking(move || index.discard_uncommitted())
                .await
                .map_err(|err| AggregatorError::Index(err.to_string()))
                .and_then(|discarded| discarded)
        };
        if result.is_err() {
            next = None;
        }
        while let Some((batch, prepared, done)) = next.take() {
            answers.push(done);
            events += batch.len();
            let index = index.clone();
            let mut taken = std::mem::take(&mut pending);
            let added = tokio::task::spawn_blocking(move || {
                index
                    .add(&batch, prepared, &mut taken)
                    .map(|seq| (seq, taken))
            })
            .await
            .map_err(|err| AggregatorError::Index(err.to_string()))
            .and_then(|added| added);
            match added {
                Ok((seq, taken)) => {
                    pending = taken;
                    last_seq = last_seq.max(seq);
                }
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
            if started.elapsed() < COMMIT_AFTER {
                next = match waiting.try_recv() {
                    Ok(work) => Some(work),
                    Err(_) if std::time::Instant::now() < not_before => {
                        tokio::time::timeout_at(not_before.into(), waiting.recv())
                            .await
                            .ok()
                            .flatten()
                    }
                    Err(_) => None,
                };
            }
        }
        let added_ms = started.elapsed().as_millis() as u64;
        let commit_started = std::time::Instant::now();
        if let (Ok(()), Some(seq)) = (&result, last_seq) {
            let index = index.clone();
            result = tokio::task::spawn_blocking(move || index.commit_after(seq))
                .await
                .map_err(|err| AggregatorError::Index(err.to_string()))
                .and_then(|committed| committed);
        }
        debug!(
            batches = answers.len(),
            events,
            added_ms,
            index_ms = started.elapsed().as_millis() as u64,
            "batches indexed"
        );
        // What a failed group added is discarded before the next one: the
        // consumer restarts and the batches come again.
        let message = result.as_ref().err().map(|err| err.to_string());
        for done in answers {
            let _ = done.send(match &message {
                None => Ok(()),
                Some(message) => Err(AggregatorError::Index(message.clone())),
            });
        }
        commit_started
    }

    /// Applies a batch to the timelines and the usage meters (PostgreSQL,
    /// each with its checkpoint in its transaction).
    pub async fn apply_tables(&self, batch: Arc<Vec<Delivered>>) -> Result<(), AggregatorError> {
        let started = std::time::Instant::now();
        let ((feeds, feeds_took), (usage, usage_took)) = tokio::join!(
            async { (self.feeds.apply(&batch).await, started.elapsed()) },
            async { (self.usage.apply(&batch).await, started.elapsed()) },
        );
        debug!(
            events = batch.len(),
            feeds_ms = feeds_took.as_millis() as u64,
            usage_ms = usage_took.as_millis() as u64,
            "batch written to the timelines and usage"
        );
        feeds.and(usage)
    }
}

/// A batch handed to a projection worker, and where it answers.
type Work = (
    Arc<Vec<Delivered>>,
    tokio::sync::oneshot::Sender<Result<(), AggregatorError>>,
);

/// A batch for the index, with its documents built ahead.
type IndexWork = (
    Arc<Vec<Delivered>>,
    Option<index::Prepared>,
    tokio::sync::oneshot::Sender<Result<(), AggregatorError>>,
);

/// Indexes batches in order (see `ReadModel::index_batches`), in two
/// stages: one builds each batch's documents (cleaning HTML, pairs of
/// common words) while the other adds and commits the batches before it —
/// a commit waits for the writer, and nothing was built meanwhile.
fn spawn_index_worker(read_model: ReadModel) -> (tokio::sync::mpsc::Sender<Work>, AbortOnDrop) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Work>(IN_FLIGHT);
    let (built, mut ready) = tokio::sync::mpsc::channel::<IndexWork>(IN_FLIGHT);
    let builder = {
        let read_model = read_model.clone();
        tokio::spawn(async move {
            while let Some((batch, done)) = receiver.recv().await {
                let index = read_model.index.current();
                let documents = batch.clone();
                // A batch whose documents could not be built is built as it
                // is added.
                let prepared = tokio::task::spawn_blocking(move || index.prepare(&documents))
                    .await
                    .ok();
                if built.send((batch, prepared, done)).await.is_err() {
                    break;
                }
            }
        })
    };
    let indexer = tokio::spawn(async move {
        let mut not_before = std::time::Instant::now();
        while let Some(first) = ready.recv().await {
            let committed = read_model
                .index_batches(first, &mut ready, not_before)
                .await;
            not_before = committed + COMMITS_APART;
        }
    });
    (sender, AbortOnDrop(vec![builder, indexer]))
}

/// Applies batches in order with `apply`, answering each when committed.
fn spawn_worker<F, Fut>(apply: F) -> (tokio::sync::mpsc::Sender<Work>, AbortOnDrop)
where
    F: Fn(Arc<Vec<Delivered>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), AggregatorError>> + Send,
{
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Work>(IN_FLIGHT);
    let task = tokio::spawn(async move {
        while let Some((batch, done)) = receiver.recv().await {
            let _ = done.send(apply(batch).await);
        }
    });
    (sender, AbortOnDrop(vec![task]))
}

/// Stops a worker's tasks when the consumer that fed it ends.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What is acknowledged once a batch is in every projection.
struct Flight {
    messages: Vec<jetstream::Message>,
    offboarded: Vec<uuid::Uuid>,
    traces: Vec<String>,
    count: usize,
}

/// Starts the consumer and the gRPC API; runs until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    // Every commit makes a segment writer: a 4 MiB term hash table and
    // 1 MiB arena pages, reused from the heap rather than mapped afresh
    // (a third of the projector's CPU went to faulting them in).
    anp_kit::reuse_allocations_up_to(REUSED_ALLOCATION_BYTES);
    let read_model = ReadModel::open(&config).await?;
    let consumer_task = tokio::spawn(consume(
        config.clone(),
        read_model.clone(),
        shutdown.clone(),
    ));
    let metrics_task = match &config.metrics_listen {
        Some(listen) => {
            let listener = TcpListener::bind(listen).await?;
            info!(addr = %listener.local_addr()?, "metrics on /metrics");
            Some(tokio::spawn(serve_metrics(
                listener,
                read_model.clone(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let horizons_task = tokio::spawn(extend_horizons(read_model.clone(), shutdown.clone()));
    let tend_task = tokio::spawn(tend_index(read_model.clone(), shutdown.clone()));
    info!("aggregator ready");
    anp_kit::serve_grpc(
        listener,
        grpc::routes(read_model),
        &["anp.aggregator.v1.AggregatorService"],
        shutdown,
    )
    .await?;
    let _ = consumer_task.await;
    let _ = horizons_task.await;
    let _ = tend_task.await;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

/// Every few seconds the search index is tended: merged segments become
/// visible, and an index at rest merges down to a few segments (see
/// `SearchIndex::tend`).
async fn tend_index(read_model: ReadModel, shutdown: Shutdown) {
    const EVERY: Duration = Duration::from_secs(5);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let index = read_model.index.current();
        match tokio::task::spawn_blocking(move || index.tend()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => warn!(error = %err, "tending the search index failed"),
            Err(err) => warn!(error = %err, "tending the search index stopped"),
        }
    }
}

/// Every hour (and at start), events whose upcoming occurrences run short
/// are projected again (see `upcoming::extend_horizons`), a few hundred a
/// transaction; and the usage meters forget the ids of events counted more
/// than `usage::KEEP_DAYS` ago (`usage::prune`).
async fn extend_horizons(read_model: ReadModel, shutdown: Shutdown) {
    const EVERY: Duration = Duration::from_secs(3_600);
    const AT_ONCE: i64 = 200;
    loop {
        let extended = async {
            let mut client = read_model.feeds.pool().get().await?;
            let mut total = 0;
            loop {
                let extended =
                    upcoming::extend_horizons(&mut client, chrono::Utc::now(), AT_ONCE).await?;
                total += extended;
                if (extended as i64) < AT_ONCE {
                    break;
                }
            }
            // Then in search (also those a crash left due).
            loop {
                let (ids, events) = upcoming::due_for_index(&client, AT_ONCE).await?;
                if ids.is_empty() {
                    return Ok::<_, AggregatorError>(total);
                }
                read_model.roll_index(events).await?;
                upcoming::indexed(&client, &ids).await?;
            }
        };
        match extended.await {
            Ok(0) => {}
            Ok(events) => info!(events, "upcoming occurrences extended a year ahead"),
            Err(err) => {
                warn!(error = %err, "extending upcoming occurrences failed; next hour again")
            }
        }
        let before = chrono::Utc::now().date_naive() - chrono::Duration::days(usage::KEEP_DAYS);
        let pruned = async {
            let client = read_model.feeds.pool().get().await?;
            usage::prune(&**client, before).await
        };
        match pruned.await {
            Ok(0) => {}
            Ok(ids) => info!(ids, %before, "ids of counted events forgotten"),
            Err(err) => warn!(error = %err, "pruning usage ids failed; next hour again"),
        }
        let _ = tokio::task::spawn_blocking(anp_kit::give_back_free_memory).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

impl ReadModel {
    /// Puts events' occurrences in the search index again, a year ahead of
    /// now (between two groups of batches).
    async fn roll_index(
        &self,
        events: Vec<(anp_proto::events::v1::CalendarEventState, u64)>,
    ) -> Result<(), AggregatorError> {
        let _applying = self.applying.lock().await;
        let index = self.index.current();
        tokio::task::spawn_blocking(move || index.roll_events(&events, chrono::Utc::now()))
            .await
            .map_err(|err| AggregatorError::Index(err.to_string()))?
    }

    /// The projections' status now.
    pub async fn projection_status(
        &self,
    ) -> Result<anp_proto::aggregator::v1::ProjectionStatusResponse, AggregatorError> {
        let index = self.index.current();
        let index_segments = index.segments();
        let index_seq = tokio::task::spawn_blocking(move || index.checkpoint())
            .await
            .map_err(|err| AggregatorError::Index(err.to_string()))??;
        self.status.read(index_seq, index_segments).await
    }
}

/// Serves the status as Prometheus text on `/metrics`.
async fn serve_metrics(listener: TcpListener, read_model: ReadModel, shutdown: Shutdown) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let read_model = read_model.clone();
            async move {
                match read_model.projection_status().await {
                    Ok(status) => (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        status::prometheus_text(&status),
                    )
                        .into_response(),
                    Err(err) => {
                        warn!(error = %err, "metrics unavailable");
                        axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                    }
                }
            }
        }),
    );
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        warn!(error = %err, "metrics server stopped");
    }
}

/// Consumes the events stream until `shutdown`, reconnecting after failures.
pub async fn consume(config: Config, read_model: ReadModel, shutdown: Shutdown) {
    let mut backoff = Duration::from_millis(100);
    let mut replay = read_model.replay;
    while !shutdown.is_cancelled() {
        match consume_once(&config, &read_model, &shutdown, &mut replay).await {
            Ok(()) => break,
            Err(err) => {
                warn!(error = %err, "consumer failed, restarting");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    info!("consumer stopped");
}

async fn consume_once(
    config: &Config,
    read_model: &ReadModel,
    shutdown: &Shutdown,
    replay: &mut bool,
) -> Result<(), AggregatorError> {
    let bus_error = |err: &dyn std::fmt::Display| AggregatorError::Bus(err.to_string());
    let jetstream = anp_bus::connect(&config.bus)
        .await
        .map_err(|err| bus_error(&err))?;
    let stream = anp_bus::ensure_stream(&jetstream, &config.bus)
        .await
        .map_err(|err| bus_error(&err))?;
    if *replay {
        // A new consumer starts at the first event on the bus.
        match stream.delete_consumer(&config.consumer).await {
            Ok(_) => info!(consumer = %config.consumer, "replaying the bus into a new index"),
            // A first start: the new consumer starts at the beginning anyway.
            Err(err) if err.to_string().to_lowercase().contains("not found") => {
                debug!(error = %err, "no consumer to reset")
            }
            Err(err) => return Err(bus_error(&err)),
        }
        *replay = false;
    }
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            &config.consumer,
            pull::Config {
                durable_name: Some(config.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 40_000,
                filter_subject: config.bus.all_subjects(),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| bus_error(&err))?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(BATCH_MAX)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|err| bus_error(&err))?;
    let mut chunks = messages.ready_chunks(BATCH_MAX);
    // Two workers, each applying batches in order: the index, and the
    // PostgreSQL tables. A batch is acknowledged once both committed it.
    let (index_worker, _index_task) = spawn_index_worker(read_model.clone());
    let (tables_worker, _tables_task) = spawn_worker({
        let read_model = read_model.clone();
        move |batch| {
            let read_model = read_model.clone();
            async move { read_model.apply_tables(batch).await }
        }
    });
    let mut committed = futures::stream::FuturesOrdered::new();
    let mut flights: std::collections::VecDeque<Flight> = Default::default();
    // Batches still being applied tell the server so, or their messages
    // would be delivered again after ACK_WAIT (a big batch behind another
    // can take longer); a killed instance's are redelivered after ACK_WAIT.
    let mut in_progress = tokio::time::interval(ACK_WAIT / 3);
    in_progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = in_progress.tick(), if !flights.is_empty() => {
                for message in flights.iter().flat_map(|flight| &flight.messages) {
                    message
                        .ack_with(jetstream::AckKind::Progress)
                        .await
                        .map_err(|err| bus_error(&err))?;
                }
            }
            Some(result) = committed.next(), if !committed.is_empty() => {
                result?;
                let Some(flight) = flights.pop_front() else {
                    return Err(AggregatorError::Bus("a batch committed twice".into()));
                };
                acknowledge(config, &stream, flight).await?;
            }
            chunk = chunks.next(), if committed.len() < IN_FLIGHT
                && flights.iter().map(|flight| flight.count).sum::<usize>() < IN_FLIGHT_EVENTS => {
                let Some(mut chunk) = chunk else {
                    return Err(AggregatorError::Bus("message stream ended".into()));
                };
                // What else arrives within LINGER joins the batch (one commit
                // for all): the busier the bus, the bigger the batches.
                let lingering = tokio::time::Instant::now() + LINGER;
                while chunk.len() < BATCH_MAX {
                    match tokio::time::timeout_at(lingering, chunks.next()).await {
                        Ok(Some(more)) => chunk.extend(more),
                        _ => break,
                    }
                }
                let (batch, flight, parked) = decode_chunk(chunk)?;
                read_model.status.park(&parked).await?;
                let batch = Arc::new(batch);
                let (index_done, index_wait) = tokio::sync::oneshot::channel();
                let (tables_done, tables_wait) = tokio::sync::oneshot::channel();
                let stopped = |_| AggregatorError::Bus("a projection worker stopped".into());
                index_worker.send((batch.clone(), index_done)).await.map_err(stopped)?;
                tables_worker.send((batch, tables_done)).await.map_err(stopped)?;
                committed.push_back(async move {
                    let stopped = |_| AggregatorError::Bus("a projection worker stopped".into());
                    let indexed = index_wait.await.map_err(stopped)?;
                    let written = tables_wait.await.map_err(stopped)?;
                    indexed.and(written)
                });
                flights.push_back(flight);
            }
        }
    }
}

/// Decodes a chunk of messages into a batch; what cannot be decoded is
/// parked (and stands in the batch as ignored, keeping its sequence).
fn decode_chunk(
    chunk: Vec<Result<jetstream::Message, pull::MessagesError>>,
) -> Result<(Vec<Delivered>, Flight, Vec<status::Parked>), AggregatorError> {
    let bus_error = |err: &dyn std::fmt::Display| AggregatorError::Bus(err.to_string());
    let mut batch = Vec::with_capacity(chunk.len());
    let mut messages = Vec::with_capacity(chunk.len());
    let mut parked = Vec::new();
    for message in chunk {
        let message = message.map_err(|err| bus_error(&err))?;
        let seq = message
            .info()
            .map_err(|err| bus_error(&err))?
            .stream_sequence;
        let (event, meta, traceparent) = match events::decode(&message.payload) {
            Ok(decoded) => decoded,
            Err(err) => {
                // Parked with its error; the projections go on.
                parked.push(status::Parked {
                    seq,
                    subject: message.subject.to_string(),
                    error: err.to_string(),
                    payload: message.payload.to_vec(),
                });
                (events::Projected::Ignored, None, String::new())
            }
        };
        batch.push(Delivered {
            seq,
            event,
            meta,
            traceparent,
        });
        messages.push(message);
    }
    let flight = Flight {
        count: batch.len(),
        offboarded: batch
            .iter()
            .filter_map(|delivered| match delivered.event {
                events::Projected::NetworkOffboarded { network_id, .. } => Some(network_id),
                _ => None,
            })
            .collect(),
        traces: batch
            .iter()
            .map(|delivered| delivered.traceparent.clone())
            .filter(|traceparent| !traceparent.is_empty())
            .collect(),
        messages,
    };
    Ok((batch, flight, parked))
}

/// Acknowledges a batch every projection committed.
async fn acknowledge(
    config: &Config,
    stream: &jetstream::stream::Stream,
    flight: Flight,
) -> Result<(), AggregatorError> {
    let bus_error = |err: &dyn std::fmt::Display| AggregatorError::Bus(err.to_string());
    // Marks "visible in search and feeds" in each command's trace.
    for traceparent in &flight.traces {
        let _span =
            anp_kit::span_from_traceparent(traceparent, tracing::info_span!("event projected"));
    }
    // Each message is acknowledged on its own, after the commit: with
    // "ack all", acknowledging one would also acknowledge messages the
    // server had sent to a previous, killed instance.
    for message in flight.messages {
        message.ack().await.map_err(|err| bus_error(&err))?;
    }
    // An offboarded network's events leave the bus too (every one of them
    // came before its end, which was just projected).
    for network_id in flight.offboarded {
        let filter = format!("{}.*.{network_id}.>", config.bus.subject_prefix);
        match stream.purge().filter(filter).await {
            Ok(purged) => {
                info!(%network_id, purged = purged.purged, "offboarded network's events purged from the bus")
            }
            Err(err) => {
                warn!(%network_id, error = %err, "purging an offboarded network's events from the bus failed")
            }
        }
    }
    debug!(count = flight.count, "batch projected");
    Ok(())
}
