//! Usage meters: events, posts and stored bytes per network and day, from the
//! event stream; requests served, from the gateway's reports.

use std::collections::{BTreeSet, HashMap};

use anp_proto::aggregator::v1::{RequestCount, UsageDay};
use anp_proto::events::v1::PostState;
use chrono::NaiveDate;
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::AggregatorError;
use crate::events::Delivered;

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
    /// (Stored bytes are metered with the timelines, from each post's
    /// `post_versions` row: see [`StoredChanges`].)
    pub async fn apply(&self, batch: &[Delivered]) -> Result<(), AggregatorError> {
        // One statement: atomic without a transaction block.
        let client = self.pool.get().await?;
        count_events(&client, batch).await
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

/// Counts events and posts per network and day.
async fn count_events(
    client: &deadpool_postgres::Client,
    batch: &[Delivered],
) -> Result<(), AggregatorError> {
    let mut counted: (Vec<Uuid>, Vec<Uuid>, Vec<NaiveDate>, Vec<i64>) = Default::default();
    for meta in batch.iter().filter_map(|delivered| delivered.meta.as_ref()) {
        if meta.network_id.is_nil() {
            continue; // an account's event (or a network's end) belongs to no network
        }
        counted.0.push(meta.event_id);
        counted.1.push(meta.network_id);
        counted.2.push(meta.occurred_at.date_naive());
        counted
            .3
            .push(i64::from(meta.event_type == "PostPublished"));
    }
    if counted.0.is_empty() {
        return Ok(());
    }
    let count = client
        .prepare_cached(
        "WITH input AS (SELECT DISTINCT ON (event_id) * FROM \
           unnest($1::uuid[], $2::uuid[], $3::date[], $4::bigint[]) \
           AS t(event_id, network_id, day, posts) \
           WHERE t.day >= COALESCE((SELECT before FROM usage_pruned), '-infinity'::date)), \
         seen AS (INSERT INTO usage_events (event_id, network_id, day) \
           SELECT event_id, network_id, day FROM input ON CONFLICT DO NOTHING \
           RETURNING event_id) \
         INSERT INTO usage_daily (network_id, day, events, posts) \
         SELECT i.network_id, i.day, count(*), sum(i.posts) FROM input i JOIN seen USING (event_id) \
         GROUP BY i.network_id, i.day \
         ON CONFLICT (network_id, day) DO UPDATE SET \
           events = usage_daily.events + EXCLUDED.events, \
           posts = usage_daily.posts + EXCLUDED.posts",
        )
        .await?;
    client
        .execute(&count, &[&counted.0, &counted.1, &counted.2, &counted.3])
        .await?;
    Ok(())
}

/// Days the ids of counted events are kept (and of gateway reports): far
/// longer than any redelivery (seconds) or republishing by a restarted relay
/// (minutes) takes to come.
pub const KEEP_DAYS: i64 = 35;

/// Forgets the ids of events counted before `before` (and of request
/// reports received before it), and from then on counts no event of an
/// earlier day — which only a replay of the bus or an imported archive
/// brings, and which was counted when it first came. The mark only moves
/// forward. Returns how many ids were forgotten.
pub async fn prune<C: tokio_postgres::GenericClient>(
    client: &C,
    before: NaiveDate,
) -> Result<u64, AggregatorError> {
    let before: NaiveDate = client
        .query_one(
            "INSERT INTO usage_pruned (one, before) VALUES (true, $1) \
             ON CONFLICT (one) DO UPDATE SET before = GREATEST(usage_pruned.before, EXCLUDED.before) \
             RETURNING before",
            &[&before],
        )
        .await?
        .get(0);
    let events = client
        .execute("DELETE FROM usage_events WHERE day < $1", &[&before])
        .await?;
    let reports = client
        .execute(
            "DELETE FROM usage_request_batches WHERE received_at < $1::date",
            &[&before],
        )
        .await?;
    Ok(events + reports)
}

/// What a post counts towards its network's stored bytes.
pub(crate) fn post_bytes(state: &PostState) -> i64 {
    (state.title.len() + state.body_markdown.len() + state.body_html.len()) as i64
}

/// Changes to networks' stored bytes, gathered by the timelines' projection
/// from each post's size before and after (kept on its `post_versions` row)
/// and written in its transaction: a post's size changes with its version,
/// so a redelivered event changes nothing.
#[derive(Default)]
pub(crate) struct StoredChanges {
    /// Network → change in bytes.
    delta: HashMap<Uuid, i64>,
    /// Each (network, day) a change happened on: it holds the network's
    /// total at the end of the batch.
    days: BTreeSet<(Uuid, NaiveDate)>,
}

impl StoredChanges {
    pub(crate) fn add(&mut self, network_id: Uuid, day: NaiveDate, delta: i64) {
        *self.delta.entry(network_id).or_default() += delta;
        self.days.insert((network_id, day));
    }

    /// Adds the changes to the networks' totals and records each day's.
    pub(crate) async fn write(
        self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<(), AggregatorError> {
        if self.delta.is_empty() {
            return Ok(());
        }
        let (networks, deltas): (Vec<Uuid>, Vec<i64>) = self.delta.into_iter().unzip();
        let (days_networks, days): (Vec<Uuid>, Vec<NaiveDate>) = self.days.into_iter().unzip();
        // The networks' new totals, recorded on each day that changed them:
        // one statement.
        let write = tx
            .prepare_cached(
                "WITH totals AS ( \
                   INSERT INTO usage_network_bytes (network_id, bytes) \
                   SELECT * FROM unnest($1::uuid[], $2::bigint[]) \
                   ON CONFLICT (network_id) DO UPDATE SET bytes = usage_network_bytes.bytes + EXCLUDED.bytes \
                   RETURNING network_id, bytes) \
                 INSERT INTO usage_stored (network_id, day, stored_bytes) \
                 SELECT d.network_id, d.day, t.bytes \
                 FROM unnest($3::uuid[], $4::date[]) AS d(network_id, day) JOIN totals t USING (network_id) \
                 ON CONFLICT (network_id, day) DO UPDATE SET stored_bytes = EXCLUDED.stored_bytes",
            )
            .await?;
        tx.execute(&write, &[&networks, &deltas, &days_networks, &days])
            .await?;
        Ok(())
    }
}

/// A network that ended stores nothing any more; its counts stay for
/// billing.
pub(crate) async fn network_ended(
    tx: &deadpool_postgres::Transaction<'_>,
    network_id: &Uuid,
    day: NaiveDate,
) -> Result<(), AggregatorError> {
    tx.execute(
        "DELETE FROM usage_network_bytes WHERE network_id = $1",
        &[network_id],
    )
    .await?;
    tx.execute(
        "INSERT INTO usage_stored (network_id, day, stored_bytes) VALUES ($1, $2, 0) \
         ON CONFLICT (network_id, day) DO UPDATE SET stored_bytes = 0",
        &[network_id, &day],
    )
    .await?;
    Ok(())
}
