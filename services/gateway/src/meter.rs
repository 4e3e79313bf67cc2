//! Counts requests served per network and day and reports them to the
//! aggregator's usage meters.
//!
//! Counts wait in memory for at most one flush interval (a crash loses at
//! most that much). A report keeps its batch id until the aggregator has
//! taken it, so a retried report is counted once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::aggregator::v1::{RecordRequestsRequest, RequestCount};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tonic::transport::Channel;
use uuid::Uuid;

/// Most distinct (network, day) keys held between flushes.
const KEYS_MAX: usize = 100_000;

#[derive(Clone, Default)]
pub struct Meter {
    counts: Arc<Mutex<HashMap<(String, String), u64>>>,
    pending: Arc<tokio::sync::Mutex<Option<RecordRequestsRequest>>>,
}

/// The network a path is about: `/n/<network>/…`.
fn network_of(path: &str) -> Option<&str> {
    let slug = path.strip_prefix("/n/")?.split('/').next()?;
    anp_kit::check_slug("network", slug).ok().map(|()| slug)
}

impl Meter {
    fn count(&self, network: &str) {
        let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if counts.len() < KEYS_MAX || counts.contains_key(&(network.to_owned(), day.clone())) {
            *counts.entry((network.to_owned(), day)).or_default() += 1;
        }
    }

    /// Sends what has been counted; on failure the same batch is tried again
    /// next time.
    pub async fn flush(&self, aggregator: &mut AggregatorServiceClient<Channel>) {
        let mut pending = self.pending.lock().await;
        if pending.is_none() {
            let taken = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
            if taken.is_empty() {
                return;
            }
            *pending = Some(RecordRequestsRequest {
                batch_id: Uuid::now_v7().to_string(),
                counts: taken
                    .into_iter()
                    .map(|((network_slug, day), requests)| RequestCount {
                        network_slug,
                        day,
                        requests,
                    })
                    .collect(),
            });
        }
        let Some(batch) = pending.clone() else {
            return;
        };
        match aggregator.record_requests(batch).await {
            Ok(_) => *pending = None,
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "usage report not taken; will retry")
            }
        }
    }

    /// Flushes every `every` until `shutdown`, and once more then.
    pub async fn run(
        self,
        mut aggregator: AggregatorServiceClient<Channel>,
        every: Duration,
        shutdown: anp_kit::Shutdown,
    ) {
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.flush(&mut aggregator).await,
            }
        }
        self.flush(&mut aggregator).await;
    }
}

/// Middleware: counts each successful response under its network.
pub async fn count(State(meter): State<Meter>, request: Request, next: Next) -> Response {
    let network = network_of(request.uri().path()).map(str::to_owned);
    let response = next.run(request).await;
    if let Some(network) = network
        && (response.status().is_success() || response.status().is_redirection())
    {
        meter.count(&network);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_network_paths() {
        assert_eq!(network_of("/n/climate/boston/feed.atom"), Some("climate"));
        assert_eq!(network_of("/n/climate"), Some("climate"));
        assert_eq!(network_of("/search"), None);
        assert_eq!(network_of("/n/Bad Slug/x"), None);
    }
}
