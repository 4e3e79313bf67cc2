//! Rebuilding projections from the services' PostgreSQL event stores (the
//! source of truth) while the old ones keep serving.
//!
//! The search index is built in a new generation beside the current one.
//! When the stores are read to their end, the consumer is paused (no batch
//! in between), the stores are read again to their new end, the new index
//! takes the current one's bus checkpoint, and the two are swapped. Every
//! event the consumer applied before the pause had been committed to a store
//! before the relay published it, so the second read holds it — it reads
//! every committed event, not only those older than the oldest transaction
//! still running, as the relay publishes an event once its own transaction
//! commits (decision 0025); events after the checkpoint come from the bus
//! into the new index (a transaction that commits after the pause is
//! published after it), and those it holds already change nothing
//! (versions).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use anp_eventstore::{EventStore, Position, RecordedEvent};
use tracing::info;

use crate::events::{Delivered, decode_envelope};
use crate::index::SearchIndex;
use crate::{AggregatorError, ReadModel};

/// Events read from a store at a time, and applied at a time.
const READ_BATCH: i64 = 5_000;

/// What a rebuild covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Search,
    Feeds,
    All,
}

impl Scope {
    pub fn parse(text: &str) -> Result<Self, AggregatorError> {
        match text {
            "search" => Ok(Scope::Search),
            "feeds" => Ok(Scope::Feeds),
            "" | "all" => Ok(Scope::All),
            other => Err(AggregatorError::Invalid(format!(
                "scope: {other:?} is not search, feeds or all"
            ))),
        }
    }
}

/// Where a rebuild reads and who may ask for one.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    /// (service, schema) of each event store.
    pub stores: Vec<(String, String)>,
    /// Verifies `reindex` grants; none: rebuilds cannot be asked for.
    pub grants: Option<anp_session::Verifier>,
}

impl Settings {
    /// A connection to each store, for one rebuild.
    pub async fn sources(&self) -> Result<Vec<Source>, AggregatorError> {
        let mut sources = Vec::with_capacity(self.stores.len());
        for (service, schema) in &self.stores {
            let pool = anp_eventstore::connect_pool(&self.database_url, schema, 2).await?;
            sources.push(Source {
                service: service.clone(),
                store: EventStore::from_pool(pool).await?,
            });
        }
        Ok(sources)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub events: u64,
    pub seconds: f64,
    pub search_documents: u64,
}

/// One service's event store, read in its global order.
pub struct Source {
    pub service: String,
    pub store: EventStore,
}

/// Reads every store from its position to its end, merged by when the
/// events occurred, and hands them on in batches.
struct Merger<'a> {
    sources: &'a [Source],
    positions: Vec<Position>,
    buffers: Vec<VecDeque<RecordedEvent>>,
    /// The consumer is paused: read every committed event.
    paused: bool,
}

impl<'a> Merger<'a> {
    fn new(sources: &'a [Source]) -> Self {
        Merger {
            sources,
            positions: vec![Position::default(); sources.len()],
            buffers: sources.iter().map(|_| VecDeque::new()).collect(),
            paused: false,
        }
    }

    /// The next batch, oldest first; empty at the stores' end (for now).
    async fn next_batch(&mut self) -> Result<Vec<Delivered>, AggregatorError> {
        let mut batch = Vec::with_capacity(READ_BATCH as usize);
        // A store read to its end is not asked again within this batch.
        let mut at_end = vec![false; self.sources.len()];
        while batch.len() < READ_BATCH as usize {
            for (i, source) in self.sources.iter().enumerate() {
                if self.buffers[i].is_empty() && !at_end[i] {
                    let events = if self.paused {
                        source
                            .store
                            .read_visible_after(self.positions[i], READ_BATCH)
                            .await?
                    } else {
                        source
                            .store
                            .read_all_after(self.positions[i], READ_BATCH)
                            .await?
                    };
                    if let Some(last) = events.last() {
                        self.positions[i] = last.global;
                    }
                    at_end[i] = (events.len() as i64) < READ_BATCH;
                    self.buffers[i].extend(events);
                }
            }
            // The oldest head of all stores (a store read to its end waits).
            let Some(i) = (0..self.buffers.len())
                .filter(|i| !self.buffers[*i].is_empty())
                .min_by_key(|i| self.buffers[*i].front().map(|event| event.occurred_at))
            else {
                break;
            };
            let Some(event) = self.buffers[i].pop_front() else {
                break;
            };
            let envelope = anp_bus::envelope(&self.sources[i].service, &event);
            // An event that cannot be decoded was parked when it came by the
            // bus; a rebuild skips it the same way.
            if let Ok((projected, meta, traceparent)) = decode_envelope(envelope) {
                batch.push(Delivered {
                    seq: 0,
                    event: projected,
                    meta,
                    traceparent,
                });
            }
        }
        Ok(batch)
    }
}

fn joined(err: tokio::task::JoinError) -> AggregatorError {
    AggregatorError::Index(err.to_string())
}

impl ReadModel {
    /// Rebuilds `scope` from `sources`. One rebuild at a time.
    pub async fn rebuild(
        &self,
        sources: &[Source],
        scope: Scope,
    ) -> Result<Report, AggregatorError> {
        let _one = self.rebuilding.try_lock().map_err(|_| {
            AggregatorError::Busy("a reindex is running; wait for it to finish".into())
        })?;
        let started = Instant::now();
        info!(?scope, "rebuilding projections from the event stores");
        let mut report = Report::default();
        let search = matches!(scope, Scope::Search | Scope::All);
        let feeds = matches!(scope, Scope::Feeds | Scope::All);
        let next = if search {
            let root = self.index.root().to_path_buf();
            let current = self.index.current();
            Some(
                tokio::task::spawn_blocking(move || {
                    SearchIndex::create_next(&root, Some(&current))
                })
                .await
                .map_err(joined)??,
            )
        } else {
            None
        };
        let prepared = started.elapsed();
        let mut merger = Merger::new(sources);
        let mut versions: HashMap<String, u64> = HashMap::new();
        // Read to the end while the consumer goes on; then once more with it
        // paused.
        let mut paused = None;
        let mut batch = merger.next_batch().await?;
        loop {
            if batch.is_empty() {
                if paused.is_some() {
                    break;
                }
                paused = Some(self.applying.lock().await);
                merger.paused = true;
                batch = merger.next_batch().await?;
                continue;
            }
            report.events += batch.len() as u64;
            let applied = Arc::new(std::mem::take(&mut batch));
            // The next batch is read while this one is applied.
            let apply = async {
                if feeds {
                    self.feeds.apply(&applied).await?;
                }
                if let Some((index, _)) = &next {
                    let index = index.clone();
                    let batch = applied.clone();
                    let mut taken = std::mem::take(&mut versions);
                    versions = tokio::task::spawn_blocking(move || {
                        index.add_fresh(&batch, &mut taken).map(|()| taken)
                    })
                    .await
                    .map_err(joined)??;
                }
                Ok::<_, AggregatorError>(())
            };
            let (done, read) = tokio::join!(apply, merger.next_batch());
            done?;
            batch = read?;
        }
        let applied = started.elapsed();
        if let Some((index, generation)) = next {
            let current = self.index.current();
            let handle = self.index.clone();
            report.search_documents = tokio::task::spawn_blocking(move || {
                let checkpoint = current.checkpoint()?;
                index.commit_at(checkpoint)?;
                index.end_bulk()?;
                let documents = index.documents();
                handle.swap(index, generation)?;
                Ok::<_, AggregatorError>(documents)
            })
            .await
            .map_err(joined)??;
        }
        drop(paused);
        // The rebuild's writer buffers are free now: back to the system.
        let _ = tokio::task::spawn_blocking(anp_kit::give_back_free_memory).await;
        report.seconds = started.elapsed().as_secs_f64();
        info!(
            events = report.events,
            seconds = report.seconds,
            documents = report.search_documents,
            ?scope,
            // The new index made (its common words learned from the old),
            // every event read and applied, and then committed and swapped.
            prepared_seconds = prepared.as_secs_f64(),
            applied_seconds = applied.as_secs_f64(),
            "projections rebuilt from the event stores"
        );
        Ok(report)
    }
}
