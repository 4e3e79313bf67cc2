//! Reading a store in commit order: what committed since a reader's
//! checkpoint, without waiting for older transactions still running.
//!
//! [`crate::EventStore::read_all_after`] returns only events of transactions
//! older than the oldest one still running anywhere in the PostgreSQL
//! cluster — any schema, any database — so one long transaction (a timeline
//! rebuild, a big import, an unrelated service's batch) holds back every
//! event committed after it started. A [`Checkpoint`] instead remembers the
//! snapshot of the last read: the next read returns the events of every
//! transaction that has committed since, whatever older transactions are
//! still running, and those transactions' events come in a later read once
//! they commit (decision 0025).

use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::{
    EVENT_COLUMNS, EventStore, Position, RecordedEvent, Statements, StoreError, position_at,
};

/// What a reader has read: every event at or before `at` in the global
/// order, and every event of a transaction that had committed when
/// `snapshot` (a `pg_snapshot`, in its text form) was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub at: Position,
    pub snapshot: Option<String>,
}

/// A snapshot in which no transaction is visible: a checkpoint without one
/// covers only the events up to its position.
const NOTHING: &str = "1:1:";

/// The events read by [`EventStore::read_committed_after`] and the
/// checkpoint after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub events: Vec<RecordedEvent>,
    pub next: Checkpoint,
}

/// Events not covered by the checkpoint `($1, $2)` + `$3` and committed now,
/// in the global order, at most `$4`; each row also carries the statement's
/// snapshot and its oldest running transaction (one row with no event when
/// there is none). Events not covered are those after the position whose
/// transaction started after the snapshot (`>= xmax`) or was running when
/// it was taken (in `xip`): two index scans, however old the oldest running
/// transaction is.
fn committed_sql() -> String {
    let columns = "tx_id, position, event_id, stream_id, version, event_type, schema_version, \
                   network_id, site_id, actor, occurred_at, traceparent, payload";
    let after = "(tx_id, position) > ($1::text::xid8, $2)";
    format!(
        "WITH since AS (SELECT $3::text::pg_snapshot AS s), \
         fresh AS ( \
           (SELECT {columns} FROM events WHERE {after} \
              AND tx_id >= (SELECT pg_snapshot_xmax(s) FROM since) \
            ORDER BY tx_id, position LIMIT $4) \
           UNION ALL \
           (SELECT {columns} FROM events WHERE {after} \
              AND tx_id IN (SELECT pg_snapshot_xip(s) FROM since) \
            ORDER BY tx_id, position LIMIT $4)) \
         SELECT pg_current_snapshot()::text, pg_snapshot_xmin(pg_current_snapshot())::text, e.* \
         FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
           SELECT {EVENT_COLUMNS} FROM fresh ORDER BY fresh.tx_id, fresh.position LIMIT $4 \
         ) AS e ON true"
    )
}

impl EventStore {
    /// [`read_committed_after_in`] on a pooled connection.
    pub async fn read_committed_after(
        &self,
        from: &Checkpoint,
        limit: i64,
    ) -> Result<Committed, StoreError> {
        read_committed_after_in(&self.pool.get().await?, from, limit).await
    }

    /// A reader's saved checkpoint, or the start.
    pub async fn load_commit_checkpoint(&self, name: &str) -> Result<Checkpoint, StoreError> {
        load_commit_checkpoint_in(&self.pool.get().await?, name).await
    }

    pub async fn save_commit_checkpoint(
        &self,
        name: &str,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        save_commit_checkpoint_in(&self.pool.get().await?, name, checkpoint).await
    }
}

/// Up to `limit` events committed since `from`, in the global order, and
/// the checkpoint after them. When more than `limit` are waiting (a reader
/// catching up), it returns the first `limit` of those whose transaction is
/// older than every running one; when all waiting events belong to newer
/// transactions it returns none until the oldest running transaction ends
/// (as [`EventStore::read_all_after`] would).
pub async fn read_committed_after_in<S: Statements>(
    client: &S,
    from: &Checkpoint,
    limit: i64,
) -> Result<Committed, StoreError> {
    let statement = client.statement(&committed_sql()).await?;
    let since = from.snapshot.as_deref().unwrap_or(NOTHING);
    let rows = client
        .client()
        .query(
            &statement,
            &[
                &from.at.tx_id.to_string(),
                &from.at.position,
                &since,
                &(limit.max(1) + 1),
            ],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Err(StoreError::Corrupt("no snapshot row".into()));
    };
    let snapshot: String = first.try_get(0)?;
    let xmin_text: String = first.try_get(1)?;
    let xmin: u64 = xmin_text
        .parse()
        .map_err(|err| StoreError::Corrupt(format!("xmin {xmin_text:?}: {err}")))?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<_, Option<Uuid>>(4)?.is_none() {
            continue; // no event: only the snapshot
        }
        events.push(crate::recorded_from_row_at(row, 2)?);
    }
    if events.len() as i64 <= limit {
        // All of them: the checkpoint moves to now.
        let oldest_running = Position {
            tx_id: xmin,
            position: 0,
        };
        return Ok(Committed {
            events,
            next: Checkpoint {
                at: from.at.max(oldest_running),
                snapshot: Some(snapshot),
            },
        });
    }
    // More than `limit`: the first ones of finished transactions; the
    // position alone says how far (the old snapshot still covers what it
    // covered).
    events.truncate(limit.max(1) as usize);
    events.retain(|event| event.global.tx_id < xmin);
    let at = events.last().map(|event| event.global).unwrap_or(from.at);
    Ok(Committed {
        events,
        next: Checkpoint {
            at,
            snapshot: from.snapshot.clone(),
        },
    })
}

/// A reader's saved checkpoint, or the start.
pub async fn load_commit_checkpoint_in<S: Statements>(
    client: &S,
    name: &str,
) -> Result<Checkpoint, StoreError> {
    let row = client
        .client()
        .query_opt(
            "SELECT tx_id::text, position, snapshot::text FROM event_checkpoints \
             WHERE name = $1",
            &[&name],
        )
        .await?;
    match row {
        Some(row) => Ok(Checkpoint {
            at: position_at(&row, 0, 1)?,
            snapshot: row.try_get(2)?,
        }),
        None => Ok(Checkpoint::default()),
    }
}

pub async fn save_commit_checkpoint_in<S: Statements>(
    client: &S,
    name: &str,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    let statement = client
        .statement(
            "INSERT INTO event_checkpoints (name, tx_id, position, snapshot) \
             VALUES ($1, $2::text::xid8, $3, $4::text::pg_snapshot) \
             ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, \
               position = EXCLUDED.position, snapshot = EXCLUDED.snapshot",
        )
        .await?;
    client
        .client()
        .execute(
            &statement,
            &[
                &name,
                &checkpoint.at.tx_id.to_string(),
                &checkpoint.at.position,
                &checkpoint.snapshot,
            ],
        )
        .await?;
    Ok(())
}

/// Whether the reader `name` (a relay) has read every event of one network.
pub async fn network_read_in<C: GenericClient>(
    client: &C,
    name: &str,
    network_id: Uuid,
) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "SELECT NOT EXISTS ( \
               SELECT 1 FROM events e LEFT JOIN event_checkpoints c ON c.name = $1 \
               WHERE e.network_id = $2 AND (c.name IS NULL OR ( \
                 (e.tx_id, e.position) > (c.tx_id, c.position) \
                 AND NOT pg_visible_in_snapshot(e.tx_id, \
                   COALESCE(c.snapshot, $3::text::pg_snapshot)))))",
            &[&name, &network_id, &NOTHING],
        )
        .await?;
    Ok(row.try_get(0)?)
}
