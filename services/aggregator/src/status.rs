//! Whether the projections can be trusted right now: how far behind the
//! bus they are (events and seconds), the consumer's backlog, the index's
//! size, and the events parked because they could not be read. Served over
//! gRPC and, for Prometheus, as text on `/metrics`.

use std::path::{Path, PathBuf};

use anp_bus::BusConfig;
use anp_proto::aggregator::v1::{ParkedEvent, ProjectionStatusResponse};
use deadpool_postgres::Pool;

use crate::AggregatorError;

/// An event that could not be read, on its way to `parked_events`.
#[derive(Debug, Clone)]
pub struct Parked {
    pub seq: u64,
    pub subject: String,
    pub error: String,
    pub payload: Vec<u8>,
}

/// Where the status is read from.
#[derive(Clone)]
pub struct Status {
    pool: Pool,
    bus: BusConfig,
    consumer: String,
    index_dir: PathBuf,
    /// One connection for every read of the status (made at the first;
    /// the client reconnects by itself), not one a scrape.
    jetstream: std::sync::Arc<tokio::sync::OnceCell<async_nats::jetstream::Context>>,
}

/// Bytes of the files under `dir` (every generation of the index: a
/// rebuild's new one counts while it is written).
fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let meta = entry.metadata().ok()?;
                    Some(if meta.is_dir() {
                        directory_bytes(&entry.path())
                    } else {
                        meta.len()
                    })
                })
                .sum()
        })
        .unwrap_or(0)
}

impl Status {
    pub fn new(pool: Pool, bus: BusConfig, consumer: String, index_dir: PathBuf) -> Self {
        Status {
            pool,
            bus,
            consumer,
            index_dir,
            jetstream: Default::default(),
        }
    }

    /// Parks events, once each (a redelivered batch parks nothing twice).
    pub async fn park(&self, parked: &[Parked]) -> Result<(), AggregatorError> {
        if parked.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        for event in parked {
            tracing::error!(seq = event.seq, subject = %event.subject, error = %event.error, "event parked");
            client
                .execute(
                    "INSERT INTO parked_events (seq, subject, error, payload) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (seq) DO NOTHING",
                    &[
                        &(event.seq as i64),
                        &event.subject,
                        &event.error,
                        &event.payload,
                    ],
                )
                .await?;
        }
        Ok(())
    }

    /// The status now; `index_seq` is the search index's committed sequence,
    /// `index_segments` the segments a search visits.
    pub async fn read(
        &self,
        index_seq: u64,
        index_segments: u64,
    ) -> Result<ProjectionStatusResponse, AggregatorError> {
        let bus_error = |err: &dyn std::fmt::Display| AggregatorError::Bus(err.to_string());
        let client = self.pool.get().await?;
        let feeds_seq: i64 = client
            .query_opt(
                "SELECT seq FROM projection_checkpoints WHERE name = 'feeds'",
                &[],
            )
            .await?
            .map_or(0, |row| row.get(0));
        let parked: i64 = client
            .query_one("SELECT count(*) FROM parked_events", &[])
            .await?
            .get(0);
        let recently_parked = client
            .query(
                "SELECT seq, subject, error, parked_at FROM parked_events \
                 ORDER BY seq DESC LIMIT 20",
                &[],
            )
            .await?
            .iter()
            .map(|row| ParkedEvent {
                seq: row.get::<_, i64>(0) as u64,
                subject: row.get(1),
                error: row.get(2),
                parked_at: Some(anp_kit::timestamp(row.get(3))),
            })
            .collect();
        drop(client);
        let jetstream = self
            .jetstream
            .get_or_try_init(|| anp_bus::connect(&self.bus))
            .await
            .map_err(|err| bus_error(&err))?;
        let mut stream = jetstream
            .get_stream(&self.bus.stream_name)
            .await
            .map_err(|err| bus_error(&err))?;
        let stream_last_seq = stream
            .info()
            .await
            .map_err(|err| bus_error(&err))?
            .state
            .last_sequence;
        let (consumer_pending, consumer_ack_pending) = match stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&self.consumer)
            .await
        {
            Ok(mut consumer) => {
                let info = consumer.info().await.map_err(|err| bus_error(&err))?;
                (info.num_pending, info.num_ack_pending as u64)
            }
            Err(_) => (stream_last_seq, 0),
        };
        let projected = (feeds_seq as u64).min(index_seq);
        let lag_events = stream_last_seq.saturating_sub(projected);
        // The age of the first event not yet in both projections.
        let lag_seconds = if lag_events == 0 {
            0.0
        } else {
            match stream.get_raw_message(projected + 1).await {
                Ok(message) => {
                    let published = chrono::DateTime::from_timestamp(
                        message.time.unix_timestamp(),
                        message.time.nanosecond(),
                    )
                    .unwrap_or_default();
                    (chrono::Utc::now() - published).num_milliseconds().max(0) as f64 / 1000.0
                }
                // Purged (an offboarded network): nothing old is waiting.
                Err(_) => 0.0,
            }
        };
        let index_dir = self.index_dir.clone();
        let index_bytes = tokio::task::spawn_blocking(move || directory_bytes(&index_dir))
            .await
            .unwrap_or(0);
        Ok(ProjectionStatusResponse {
            stream_last_seq,
            feeds_seq: feeds_seq as u64,
            index_seq,
            lag_events,
            lag_seconds,
            consumer_pending,
            consumer_ack_pending,
            index_bytes,
            parked_events: parked as u64,
            recently_parked,
            index_segments,
        })
    }
}

/// The status in Prometheus' text format.
pub fn prometheus_text(status: &ProjectionStatusResponse) -> String {
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    };
    gauge(
        "anp_projection_lag_events",
        "Events on the bus not yet in every projection.",
        status.lag_events as f64,
    );
    gauge(
        "anp_projection_lag_seconds",
        "Age of the oldest event not yet in every projection.",
        status.lag_seconds,
    );
    gauge(
        "anp_consumer_pending",
        "Events not yet delivered to the aggregator's consumer.",
        status.consumer_pending as f64,
    );
    gauge(
        "anp_consumer_ack_pending",
        "Events delivered to the aggregator and not yet acknowledged.",
        status.consumer_ack_pending as f64,
    );
    gauge(
        "anp_search_index_bytes",
        "Size of the search index on disk.",
        status.index_bytes as f64,
    );
    gauge(
        "anp_search_index_segments",
        "Segments of the search index a search visits.",
        status.index_segments as f64,
    );
    gauge(
        "anp_parked_events",
        "Events parked because they could not be read.",
        status.parked_events as f64,
    );
    gauge(
        "anp_stream_last_seq",
        "Sequence of the newest event on the bus.",
        status.stream_last_seq as f64,
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_gauge() {
        let text = prometheus_text(&ProjectionStatusResponse {
            lag_events: 3,
            lag_seconds: 0.25,
            index_bytes: 1024,
            index_segments: 7,
            ..Default::default()
        });
        for line in [
            "anp_projection_lag_events 3",
            "anp_projection_lag_seconds 0.25",
            "anp_search_index_bytes 1024",
            "anp_search_index_segments 7",
            "# TYPE anp_parked_events gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
