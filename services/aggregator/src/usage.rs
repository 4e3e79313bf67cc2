//! Usage meters: events, posts and stored bytes per network and day, from the
//! event stream; requests served, from the gateway's reports.

use std::collections::BTreeSet;

use anp_proto::aggregator::v1::{RequestCount, UsageDay};
use chrono::NaiveDate;
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::AggregatorError;
use crate::events::{Delivered, Projected};

/// Most (network, day) counts in one report.
pub const REPORT_MAX: usize = 10_000;

#[derive(Clone)]
pub struct Usage {
    pool: Pool,
}

impl Usage {
    pub fn new(pool: Pool) -> Self {
        Usage { pool }
    }

    /// Counts a batch in one transaction; an event seen before counts nothing.
    pub async fn apply(&self, batch: &[Delivered]) -> Result<(), AggregatorError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let count = tx
            .prepare(
                "WITH seen AS (INSERT INTO usage_events (event_id, network_id, day) \
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING network_id, day) \
                 INSERT INTO usage_daily (network_id, day, events, posts) \
                 SELECT network_id, day, 1, $4 FROM seen \
                 ON CONFLICT (network_id, day) DO UPDATE SET \
                   events = usage_daily.events + EXCLUDED.events, \
                   posts = usage_daily.posts + EXCLUDED.posts",
            )
            .await?;
        let size = tx
            .prepare(
                "INSERT INTO usage_post_bytes (post_id, network_id, bytes, version) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (post_id) DO UPDATE SET \
                   bytes = EXCLUDED.bytes, version = EXCLUDED.version \
                 WHERE usage_post_bytes.version < EXCLUDED.version",
            )
            .await?;
        let mut resized: BTreeSet<(Uuid, NaiveDate)> = BTreeSet::new();
        for delivered in batch {
            let Some(meta) = &delivered.meta else {
                continue;
            };
            let day = meta.occurred_at.date_naive();
            if let Projected::NetworkOffboarded { network_id, .. } = &delivered.event {
                // It stores nothing any more; its counts stay for billing.
                tx.execute(
                    "DELETE FROM usage_post_bytes WHERE network_id = $1",
                    &[network_id],
                )
                .await?;
                resized.insert((*network_id, day));
            }
            if meta.network_id.is_nil() {
                continue; // an account's event (or a network's end) belongs to no network
            }
            let posts: i64 = i64::from(meta.event_type == "PostPublished");
            tx.execute(&count, &[&meta.event_id, &meta.network_id, &day, &posts])
                .await?;
            if let Projected::Post { state, version } = &delivered.event {
                let bytes =
                    (state.title.len() + state.body_markdown.len() + state.body_html.len()) as i64;
                let post_id: Uuid = state
                    .post_id
                    .parse()
                    .map_err(|_| AggregatorError::Invalid("post_id: not a UUID".into()))?;
                tx.execute(
                    &size,
                    &[&post_id, &meta.network_id, &bytes, &(*version as i64)],
                )
                .await?;
                resized.insert((meta.network_id, day));
            }
        }
        for (network_id, day) in resized {
            tx.execute(
                "INSERT INTO usage_stored (network_id, day, stored_bytes) \
                 SELECT $1, $2, COALESCE(sum(bytes), 0) FROM usage_post_bytes WHERE network_id = $1 \
                 ON CONFLICT (network_id, day) DO UPDATE SET stored_bytes = EXCLUDED.stored_bytes",
                &[&network_id, &day],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a report of requests served; a batch already recorded
    /// changes nothing (`false`).
    pub async fn record_requests(
        &self,
        batch_id: &str,
        counts: &[RequestCount],
    ) -> Result<bool, AggregatorError> {
        let batch_id: Uuid = batch_id
            .parse()
            .map_err(|_| AggregatorError::Invalid("batch_id: not a UUID".into()))?;
        if counts.len() > REPORT_MAX {
            return Err(AggregatorError::Invalid(format!(
                "counts: at most {REPORT_MAX}"
            )));
        }
        let mut rows = Vec::with_capacity(counts.len());
        for count in counts {
            anp_kit::check_slug("counts.network_slug", &count.network_slug)
                .map_err(AggregatorError::Invalid)?;
            let day = NaiveDate::parse_from_str(&count.day, "%Y-%m-%d").map_err(|_| {
                AggregatorError::Invalid(format!("counts.day: {:?} is not YYYY-MM-DD", count.day))
            })?;
            rows.push((count.network_slug.clone(), day, count.requests as i64));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let fresh = tx
            .execute(
                "INSERT INTO usage_request_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&batch_id],
            )
            .await?;
        if fresh == 0 {
            return Ok(false);
        }
        for (slug, day, requests) in rows {
            tx.execute(
                "INSERT INTO usage_requests (network_slug, day, requests) VALUES ($1, $2, $3) \
                 ON CONFLICT (network_slug, day) DO UPDATE SET requests = usage_requests.requests + EXCLUDED.requests",
                &[&slug, &day, &requests],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every metered (network, day) between `from` and `to`, inclusive.
    /// Stored bytes are carried forward from the last day they changed.
    pub async fn days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageDay>, AggregatorError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "WITH days AS (SELECT d::date AS day FROM generate_series($1::date, $2::date, '1 day') d), \
                 networks AS (SELECT DISTINCT network_id FROM usage_daily \
                              UNION SELECT DISTINCT network_id FROM usage_stored) \
                 SELECT n.network_id, to_char(days.day, 'YYYY-MM-DD'), \
                   COALESCE(u.events, 0), COALESCE(u.posts, 0), \
                   COALESCE((SELECT stored_bytes FROM usage_stored s WHERE s.network_id = n.network_id \
                             AND s.day <= days.day ORDER BY s.day DESC LIMIT 1), 0) \
                 FROM networks n CROSS JOIN days \
                 LEFT JOIN usage_daily u ON u.network_id = n.network_id AND u.day = days.day \
                 ORDER BY n.network_id, days.day",
                &[&from, &to],
            )
            .await?;
        let mut days: Vec<UsageDay> = rows
            .iter()
            .map(|row| UsageDay {
                network_id: row.get::<_, Uuid>(0).to_string(),
                network_slug: String::new(),
                day: row.get(1),
                events: row.get::<_, i64>(2) as u64,
                posts: row.get::<_, i64>(3) as u64,
                stored_bytes: row.get::<_, i64>(4) as u64,
                requests: 0,
            })
            .collect();
        let requests = client
            .query(
                "SELECT network_slug, to_char(day, 'YYYY-MM-DD'), requests FROM usage_requests \
                 WHERE day BETWEEN $1 AND $2 ORDER BY network_slug, day",
                &[&from, &to],
            )
            .await?;
        days.extend(requests.iter().map(|row| UsageDay {
            network_id: String::new(),
            network_slug: row.get(0),
            day: row.get(1),
            requests: row.get::<_, i64>(2) as u64,
            ..Default::default()
        }));
        Ok(days)
    }
}
