//! Usage meters: events, posts and stored bytes per network and day, from the
//! event stream; requests served, from the gateway's reports.

use std::collections::{BTreeSet, HashMap};

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
    /// Events are counted a run at a time; a network's end ends the run.
    pub async fn apply(&self, batch: &[Delivered]) -> Result<(), AggregatorError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut run: Vec<&Delivered> = Vec::new();
        for delivered in batch {
            if let (Projected::NetworkOffboarded { network_id, .. }, Some(meta)) =
                (&delivered.event, &delivered.meta)
            {
                count_run(&tx, std::mem::take(&mut run)).await?;
                // It stores nothing any more; its counts stay for billing.
                tx.execute(
                    "DELETE FROM usage_post_bytes WHERE network_id = $1",
                    &[network_id],
                )
                .await?;
                tx.execute(
                    "DELETE FROM usage_network_bytes WHERE network_id = $1",
                    &[network_id],
                )
                .await?;
                tx.execute(
                    "INSERT INTO usage_stored (network_id, day, stored_bytes) VALUES ($1, $2, 0) \
                     ON CONFLICT (network_id, day) DO UPDATE SET stored_bytes = 0",
                    &[network_id, &meta.occurred_at.date_naive()],
                )
                .await?;
            }
            run.push(delivered);
        }
        count_run(&tx, run).await?;
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

/// Counts a run of events: events and posts per network and day, and the
/// bytes the network stores (a running total, changed by each post's new
/// size).
async fn count_run(
    tx: &deadpool_postgres::Transaction<'_>,
    run: Vec<&Delivered>,
) -> Result<(), AggregatorError> {
    let mut counted: (Vec<Uuid>, Vec<Uuid>, Vec<NaiveDate>, Vec<i64>) = Default::default();
    // The newest version of each post: (network, bytes, version, day).
    let mut sizes: HashMap<Uuid, (Uuid, i64, i64, NaiveDate)> = HashMap::new();
    for delivered in run {
        let Some(meta) = &delivered.meta else {
            continue;
        };
        if meta.network_id.is_nil() {
            continue; // an account's event (or a network's end) belongs to no network
        }
        let day = meta.occurred_at.date_naive();
        counted.0.push(meta.event_id);
        counted.1.push(meta.network_id);
        counted.2.push(day);
        counted
            .3
            .push(i64::from(meta.event_type == "PostPublished"));
        if let Projected::Post { state, version } = &delivered.event {
            let bytes =
                (state.title.len() + state.body_markdown.len() + state.body_html.len()) as i64;
            let post_id: Uuid = state
                .post_id
                .parse()
                .map_err(|_| AggregatorError::Invalid("post_id: not a UUID".into()))?;
            let version = *version as i64;
            if sizes.get(&post_id).is_none_or(|known| known.2 < version) {
                sizes.insert(post_id, (meta.network_id, bytes, version, day));
            }
        }
    }
    if counted.0.is_empty() {
        return Ok(());
    }
    tx.execute(
        "WITH input AS (SELECT DISTINCT ON (event_id) * FROM \
           unnest($1::uuid[], $2::uuid[], $3::date[], $4::bigint[]) \
           AS t(event_id, network_id, day, posts)), \
         seen AS (INSERT INTO usage_events (event_id, network_id, day) \
           SELECT event_id, network_id, day FROM input ON CONFLICT DO NOTHING \
           RETURNING event_id) \
         INSERT INTO usage_daily (network_id, day, events, posts) \
         SELECT i.network_id, i.day, count(*), sum(i.posts) FROM input i JOIN seen USING (event_id) \
         GROUP BY i.network_id, i.day \
         ON CONFLICT (network_id, day) DO UPDATE SET \
           events = usage_daily.events + EXCLUDED.events, \
           posts = usage_daily.posts + EXCLUDED.posts",
        &[&counted.0, &counted.1, &counted.2, &counted.3],
    )
    .await?;
    if sizes.is_empty() {
        return Ok(());
    }
    let post_ids: Vec<Uuid> = sizes.keys().copied().collect();
    let networks: Vec<Uuid> = post_ids.iter().map(|id| sizes[id].0).collect();
    let bytes: Vec<i64> = post_ids.iter().map(|id| sizes[id].1).collect();
    let versions: Vec<i64> = post_ids.iter().map(|id| sizes[id].2).collect();
    // Every CTE reads the table as it was before the statement: `old` holds
    // the sizes the upsert replaces.
    let totals = tx
        .query(
            "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[]) \
               AS t(post_id, network_id, bytes, version)), \
             old AS (SELECT b.post_id, b.bytes FROM usage_post_bytes b JOIN input USING (post_id)), \
             up AS (INSERT INTO usage_post_bytes (post_id, network_id, bytes, version) \
               SELECT post_id, network_id, bytes, version FROM input \
               ON CONFLICT (post_id) DO UPDATE SET bytes = EXCLUDED.bytes, version = EXCLUDED.version \
               WHERE usage_post_bytes.version < EXCLUDED.version \
               RETURNING post_id, network_id, bytes) \
             INSERT INTO usage_network_bytes (network_id, bytes) \
             SELECT up.network_id, sum(up.bytes - COALESCE(old.bytes, 0)) \
             FROM up LEFT JOIN old USING (post_id) GROUP BY up.network_id \
             ON CONFLICT (network_id) DO UPDATE SET bytes = usage_network_bytes.bytes + EXCLUDED.bytes \
             RETURNING network_id, bytes",
            &[&post_ids, &networks, &bytes, &versions],
        )
        .await?;
    let total: HashMap<Uuid, i64> = totals.iter().map(|row| (row.get(0), row.get(1))).collect();
    // Each day the run touched holds the network's total at its end.
    let mut days: BTreeSet<(Uuid, NaiveDate)> = BTreeSet::new();
    for (network_id, _, _, day) in sizes.values() {
        if total.contains_key(network_id) {
            days.insert((*network_id, *day));
        }
    }
    let (stored_networks, stored_days, stored_bytes): (Vec<Uuid>, Vec<NaiveDate>, Vec<i64>) = days
        .iter()
        .map(|(network_id, day)| (*network_id, *day, total[network_id]))
        .fold(Default::default(), |mut acc, (n, d, b)| {
            acc.0.push(n);
            acc.1.push(d);
            acc.2.push(b);
            acc
        });
    tx.execute(
        "INSERT INTO usage_stored (network_id, day, stored_bytes) \
         SELECT * FROM unnest($1::uuid[], $2::date[], $3::bigint[]) \
         ON CONFLICT (network_id, day) DO UPDATE SET stored_bytes = EXCLUDED.stored_bytes",
        &[&stored_networks, &stored_days, &stored_bytes],
    )
    .await?;
    Ok(())
}
