//! An append-only event store on PostgreSQL, one schema per service.
//!
//! * [`EventStore::append`] writes events to a stream with an expected
//!   version in one transaction; a concurrent writer loses with
//!   [`StoreError::Conflict`], never a silent overwrite.
//! * [`EventStore::read_all_after`] reads every stream in one global order
//!   without ever skipping an event whose transaction commits after a
//!   later-numbered one: rows are ordered by `(tx_id, position)` and only rows
//!   of transactions older than the oldest one still running are returned.
//!   No global lock serializes the writers.
//! * [`EventStore::read_committed_after`] reads what committed since a
//!   reader's [`Checkpoint`], without waiting for older transactions still
//!   running (the relay).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};
use uuid::Uuid;

mod commits;
mod statements;
pub use commits::{
    Checkpoint, Committed, load_commit_checkpoint_in, network_read_in, read_committed_after_in,
    save_commit_checkpoint_in,
};
pub use statements::Statements;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Errors of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream_id} is at version {actual}, not the expected {expected}")]
    Conflict {
        stream_id: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid schema name {0:?}: use lowercase letters, digits and underscores")]
    InvalidSchema(String),
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database pool setup: {0}")]
    PoolBuild(#[from] deadpool_postgres::BuildError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("corrupt event row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The unique constraint a statement violated, if that is why it failed.
    pub fn unique_violation(&self) -> Option<&str> {
        unique_violation(self)
    }
}

/// The constraint name of a unique violation (`23505`), if that is the error.
pub fn unique_violation<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a str> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(db) = err
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
            && db.code() == &SqlState::UNIQUE_VIOLATION
        {
            return Some(db.constraint().unwrap_or(""));
        }
        current = err.source();
    }
    None
}

/// What the writer believes the stream's version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be exactly at this version.
    Exact(u64),
    /// Append at whatever the current version is.
    Any,
}

impl ExpectedVersion {
    fn number(self) -> Option<u64> {
        match self {
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(version) => Some(version),
            ExpectedVersion::Any => None,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub network_id: Uuid,
    pub site_id: Option<Uuid>,
    pub actor: String,
    pub traceparent: Option<String>,
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// A new event with a fresh UUIDv7 id and schema version 1.
    pub fn new(event_type: &str, network_id: Uuid, actor: &str, payload: Vec<u8>) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            network_id,
            site_id: None,
            actor: actor.to_owned(),
            traceparent: None,
            payload,
        }
    }

    pub fn with_site(mut self, site_id: Uuid) -> Self {
        self.site_id = Some(site_id);
        self
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }
}

/// A place in the global order of one store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub tx_id: u64,
    pub position: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub global: Position,
    pub event_id: Uuid,
    pub stream_id: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub network_id: Uuid,
    pub site_id: Option<Uuid>,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
    pub traceparent: Option<String>,
    pub payload: Vec<u8>,
}

/// The first column is named `tx_id` too: an `ORDER BY` after it names
/// `events.tx_id`, or it would sort the text (`"10"` before `"9"`, and no
/// index).
const EVENT_COLUMNS: &str = "tx_id::text, position, event_id, stream_id, version, event_type, \
     schema_version, network_id, site_id, actor, occurred_at, traceparent, payload";

/// A global position from a row's `tx_id::text` and `position` columns.
fn position_at(
    row: &Row,
    tx_column: usize,
    position_column: usize,
) -> Result<Position, StoreError> {
    let tx_text: String = row.try_get(tx_column)?;
    Ok(Position {
        tx_id: tx_text
            .parse()
            .map_err(|err| StoreError::Corrupt(format!("tx_id {tx_text:?}: {err}")))?,
        position: row.try_get(position_column)?,
    })
}

fn recorded_from_row(row: &Row) -> Result<RecordedEvent, StoreError> {
    recorded_from_row_at(row, 0)
}

/// An event from [`EVENT_COLUMNS`] starting at column `at`.
pub(crate) fn recorded_from_row_at(row: &Row, at: usize) -> Result<RecordedEvent, StoreError> {
    let version: i64 = row.try_get(at + 4)?;
    let schema_version: i32 = row.try_get(at + 6)?;
    Ok(RecordedEvent {
        global: position_at(row, at, at + 1)?,
        event_id: row.try_get(at + 2)?,
        stream_id: row.try_get(at + 3)?,
        version: u64::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("version {version}")))?,
        event_type: row.try_get(at + 5)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| StoreError::Corrupt(format!("schema_version {schema_version}")))?,
        network_id: row.try_get(at + 7)?,
        site_id: row.try_get(at + 8)?,
        actor: row.try_get(at + 9)?,
        occurred_at: row.try_get(at + 10)?,
        traceparent: row.try_get(at + 11)?,
        payload: row.try_get(at + 12)?,
    })
}

fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 48
        && schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidSchema(schema.to_owned()))
    }
}

/// Opens a pool whose connections use `schema`, creating the schema if it
/// is missing. Used by services for their own tables too.
pub async fn connect_pool(
    database_url: &str,
    schema: &str,
    max_size: usize,
) -> Result<Pool, StoreError> {
    validate_schema(schema)?;
    let mut config = tokio_postgres::Config::from_str(database_url)
        .map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
    config.options(format!("-c search_path={schema}"));
    let (client, connection) = config.connect(NoTls).await?;
    let connection_task = tokio::spawn(connection);
    // Several processes of one service may start at once.
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock(hashtext('anp-schema-{schema}')); \
             CREATE SCHEMA IF NOT EXISTS {schema}; \
             SELECT pg_advisory_unlock(hashtext('anp-schema-{schema}'));"
        ))
        .await?;
    drop(client);
    let _ = connection_task.await;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager).max_size(max_size).build()?)
}

/// Runs refinery migrations embedded by a crate in the pool's schema, under
/// an advisory lock so concurrent starts do not race.
pub async fn run_migrations(
    pool: &Pool,
    table: &str,
    mut runner: refinery::Runner,
) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let lock_key = format!("anp-migrations-{table}");
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock_key])
        .await?;
    let pg_client: &mut tokio_postgres::Client = &mut client;
    let result = runner
        .set_migration_table_name(table)
        .run_async(pg_client)
        .await;
    client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_key])
        .await?;
    result?;
    Ok(())
}

/// One service's event store.
#[derive(Clone)]
pub struct EventStore {
    pool: Pool,
}

impl EventStore {
    /// Connects to the database, using (and creating) `schema`, and migrates it.
    pub async fn connect(database_url: &str, schema: &str) -> Result<Self, StoreError> {
        let pool = connect_pool(database_url, schema, 16).await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (whose connections already use the schema).
    pub async fn from_pool(pool: Pool) -> Result<Self, StoreError> {
        run_migrations(
            &pool,
            "anp_eventstore_migrations",
            embedded::migrations::runner(),
        )
        .await?;
        Ok(EventStore { pool })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Appends `events` to `stream_id` in one transaction.
    pub async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        append_cached(&client, stream_id, expected, events).await
    }

    /// Every event of a stream, oldest first.
    pub async fn load_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        load_stream_in(&**client, stream_id).await
    }

    /// Up to `limit` events after `after`, in the global order. Never returns
    /// an event while an older transaction that might still add one before
    /// it is running.
    pub async fn read_all_after(
        &self,
        after: Position,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_in_order(
            after,
            limit,
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())",
        )
        .await
    }

    /// Up to `limit` events after `after` in the global order, of every
    /// transaction committed now — also those younger than a transaction
    /// still running, which [`EventStore::read_all_after`] holds back. Paging
    /// with it may miss an event whose transaction commits later behind the
    /// position: for a last read whose readers get later commits elsewhere
    /// (a rebuild's final read, the bus carrying the rest).
    pub async fn read_visible_after(
        &self,
        after: Position,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_in_order(after, limit, "").await
    }

    async fn read_in_order(
        &self,
        after: Position,
        limit: i64,
        condition: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE (tx_id, position) > ($1::text::xid8, $2) {condition} \
             ORDER BY events.tx_id, events.position LIMIT $3"
        );
        let rows = client
            .query(&sql, &[&after.tx_id.to_string(), &after.position, &limit])
            .await?;
        rows.iter().map(recorded_from_row).collect()
    }

    /// The saved position of a reader, or the start.
    pub async fn load_checkpoint(&self, name: &str) -> Result<Position, StoreError> {
        let client = self.pool.get().await?;
        load_checkpoint_in(&**client, name).await
    }

    /// Saves a reader's position; a snapshot saved with it before (see
    /// [`Checkpoint`]) is forgotten.
    pub async fn save_checkpoint(&self, name: &str, at: Position) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO event_checkpoints (name, tx_id, position) \
                 VALUES ($1, $2::text::xid8, $3) \
                 ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, \
                   position = EXCLUDED.position, snapshot = NULL",
                &[&name, &at.tx_id.to_string(), &at.position],
            )
            .await?;
        Ok(())
    }
}

fn map_conflict(
    err: tokio_postgres::Error,
    stream_id: &str,
    expected: ExpectedVersion,
) -> StoreError {
    let store_error = StoreError::Db(err);
    if store_error.unique_violation() == Some("events_stream_version") {
        let expected = expected.number().unwrap_or(0);
        return StoreError::Conflict {
            stream_id: stream_id.to_owned(),
            expected,
            actual: expected + 1,
        };
    }
    store_error
}

/// The saved position of a reader, or the start, through any client.
pub async fn load_checkpoint_in<C: GenericClient>(
    client: &C,
    name: &str,
) -> Result<Position, StoreError> {
    let row = client
        .query_opt(
            "SELECT tx_id::text, position FROM event_checkpoints WHERE name = $1",
            &[&name],
        )
        .await?;
    match row {
        Some(row) => position_at(&row, 0, 1),
        None => Ok(Position::default()),
    }
}

/// The current version of a stream (0 when it has no events).
pub async fn stream_version<C: GenericClient>(
    client: &C,
    stream_id: &str,
) -> Result<u64, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1",
            &[&stream_id],
        )
        .await?;
    let version: i64 = row.try_get(0)?;
    u64::try_from(version).map_err(|_| StoreError::Corrupt(format!("version {version}")))
}

/// Every event of a stream, oldest first, through any client or transaction.
pub async fn load_stream_in<C: GenericClient>(
    client: &C,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version");
    let rows = client.query(&sql, &[&stream_id]).await?;
    rows.iter().map(recorded_from_row).collect()
}

/// One statement checks the expected version and inserts every event, so an
/// append outside a transaction is a single round trip. `$2` is the expected
/// version, or -1 for "any".
const APPEND_SQL: &str = "WITH current AS ( \
       SELECT COALESCE(MAX(version), 0) AS version FROM events WHERE stream_id = $1) \
     INSERT INTO events (event_id, stream_id, version, event_type, schema_version, \
       network_id, site_id, actor, traceparent, payload) \
     SELECT e.event_id, $1, current.version + e.ord, e.event_type, e.schema_version, \
       e.network_id, e.site_id, e.actor, e.traceparent, e.payload \
     FROM current, unnest($3::uuid[], $4::text[], $5::int4[], $6::uuid[], $7::uuid[], \
       $8::text[], $9::text[], $10::bytea[]) WITH ORDINALITY \
       AS e(event_id, event_type, schema_version, network_id, site_id, actor, traceparent, payload, ord) \
     WHERE $2::int8 < 0 OR current.version = $2::int8 \
     RETURNING event_id, version, tx_id::text, position, occurred_at";

/// The common case, one event at a known version, without arrays: version 1
/// needs nothing else (the unique key refuses a second one); a later version
/// needs its predecessor to exist (and the unique key refuses a duplicate).
const APPEND_ONE_SQL: &str = "INSERT INTO events (event_id, stream_id, version, event_type, \
       schema_version, network_id, site_id, actor, traceparent, payload) \
     SELECT $1::uuid, $2::text, $3::int8, $4::text, $5::int4, $6::uuid, $7::uuid, $8::text, \
       $9::text, $10::bytea \
     WHERE $3::int8 = 1 OR EXISTS ( \
       SELECT 1 FROM events WHERE stream_id = $2::text AND version = $3::int8 - 1) \
     RETURNING event_id, version, tx_id::text, position, occurred_at";

/// Appends through any client: a pooled connection (its own transaction) or
/// a caller's transaction, so a service can write its own rows (a unique
/// slug, an idempotency key) atomically with the events.
pub async fn append_in<C: GenericClient>(
    client: &C,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<Vec<RecordedEvent>, StoreError> {
    append_with(
        client,
        statement_for(expected, events),
        stream_id,
        expected,
        events,
        &[],
    )
    .await
}

/// [`append_in`] through `client`'s prepared statements: on a pooled
/// connection, one round trip and no parsing a call.
pub async fn append_cached<S: Statements>(
    client: &S,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let statement = client.statement(statement_for(expected, events)).await?;
    append_with(
        client.client(),
        &statement,
        stream_id,
        expected,
        events,
        &[],
    )
    .await
}

/// One event appended as [`append_cached`] would, and the service's own rows
/// written by `own` in the same statement — so in one round trip and one
/// commit, without a transaction block. `own` is a data-modifying statement
/// that may read the CTE `appended` (`event_id`, `version`, `tx_id`,
/// `position`, `occurred_at`; no row when the append did not happen) and
/// numbers its parameters from `$11`. Prepare it once with [`append_one_with`].
pub fn append_one_with_sql(own: &str) -> String {
    format!("WITH appended AS ({APPEND_ONE_SQL}), own AS ({own}) SELECT * FROM appended")
}

/// Appends `event` at `expected` (a known version, not `Any`) and runs the
/// `own` statement of `sql` ([`append_one_with_sql`]) with `own_params`,
/// atomically.
pub async fn append_one_with<S: Statements>(
    client: &S,
    sql: &str,
    stream_id: &str,
    expected: ExpectedVersion,
    event: &NewEvent,
    own_params: &[&(dyn ToSql + Sync)],
) -> Result<RecordedEvent, StoreError> {
    if expected == ExpectedVersion::Any {
        return Err(StoreError::Corrupt(
            "append_one_with: the expected version must be known".into(),
        ));
    }
    let statement = client.statement(sql).await?;
    let mut recorded = append_with(
        client.client(),
        &statement,
        stream_id,
        expected,
        std::slice::from_ref(event),
        own_params,
    )
    .await?;
    recorded
        .pop()
        .ok_or_else(|| StoreError::Corrupt("append_one_with: nothing appended".into()))
}

fn statement_for(expected: ExpectedVersion, events: &[NewEvent]) -> &'static str {
    if events.len() == 1 && expected != ExpectedVersion::Any {
        APPEND_ONE_SQL
    } else {
        APPEND_SQL
    }
}

async fn append_with<C: GenericClient, S: tokio_postgres::ToStatement + Sync + Send + ?Sized>(
    client: &C,
    statement: &S,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    own_params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<RecordedEvent>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let expected_number: i64 = match expected.number() {
        Some(number) => i64::try_from(number)
            .map_err(|_| StoreError::Corrupt(format!("expected version {number}")))?,
        None => -1,
    };
    let mut schema_versions = Vec::with_capacity(events.len());
    for event in events {
        schema_versions.push(
            i32::try_from(event.schema_version)
                .map_err(|_| StoreError::Corrupt("schema_version overflow".into()))?,
        );
    }
    let rows = if let ([event], Some(expected)) = (events, expected.number()) {
        let version = i64::try_from(expected + 1)
            .map_err(|_| StoreError::Corrupt("version overflow".into()))?;
        let params: [&(dyn ToSql + Sync); 10] = [
            &event.event_id,
            &stream_id,
            &version,
            &event.event_type,
            &schema_versions[0],
            &event.network_id,
            &event.site_id,
            &event.actor,
            &event.traceparent,
            &event.payload,
        ];
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().chain(own_params).copied().collect();
        client.query(statement, &params).await
    } else {
        let event_ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
        let event_types: Vec<&str> = events
            .iter()
            .map(|event| event.event_type.as_str())
            .collect();
        let network_ids: Vec<Uuid> = events.iter().map(|event| event.network_id).collect();
        let site_ids: Vec<Option<Uuid>> = events.iter().map(|event| event.site_id).collect();
        let actors: Vec<&str> = events.iter().map(|event| event.actor.as_str()).collect();
        let traceparents: Vec<Option<&str>> = events
            .iter()
            .map(|event| event.traceparent.as_deref())
            .collect();
        let payloads: Vec<&[u8]> = events
            .iter()
            .map(|event| event.payload.as_slice())
            .collect();
        client
            .query(
                statement,
                &[
                    &stream_id,
                    &expected_number,
                    &event_ids,
                    &event_types,
                    &schema_versions,
                    &network_ids,
                    &site_ids,
                    &actors,
                    &traceparents,
                    &payloads,
                ],
            )
            .await
    }
    .map_err(|err| map_conflict(err, stream_id, expected))?;
    if rows.is_empty() {
        let actual = stream_version(client, stream_id).await?;
        return Err(StoreError::Conflict {
            stream_id: stream_id.to_owned(),
            expected: expected.number().unwrap_or(0),
            actual,
        });
    }
    let mut recorded = Vec::with_capacity(rows.len());
    for row in &rows {
        let event_id: Uuid = row.try_get(0)?;
        let version: i64 = row.try_get(1)?;
        let event = events
            .iter()
            .find(|event| event.event_id == event_id)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown event {event_id} returned")))?;
        recorded.push(RecordedEvent {
            global: position_at(row, 2, 3)?,
            event_id,
            stream_id: stream_id.to_owned(),
            version: u64::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("version {version}")))?,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            network_id: event.network_id,
            site_id: event.site_id,
            actor: event.actor.clone(),
            occurred_at: row.try_get(4)?,
            traceparent: event.traceparent.clone(),
            payload: event.payload.clone(),
        });
    }
    recorded.sort_by_key(|event| event.version);
    Ok(recorded)
}

/// Up to `limit` events of one network after `after`, in the global order.
/// Run it in a `REPEATABLE READ` transaction to page through one snapshot
/// (an export).
pub async fn network_events_in<C: GenericClient>(
    client: &C,
    network_id: Uuid,
    after: Position,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE network_id = $1 AND (tx_id, position) > ($2::text::xid8, $3) \
         ORDER BY events.tx_id, events.position LIMIT $4"
    );
    let rows = client
        .query(
            &sql,
            &[
                &network_id,
                &after.tx_id.to_string(),
                &after.position,
                &limit,
            ],
        )
        .await?;
    rows.iter().map(recorded_from_row).collect()
}

/// How many events one network has, and the id of its last one in the
/// global order: what an export covered, to check nothing was written since.
pub async fn network_tally_in<C: GenericClient>(
    client: &C,
    network_id: Uuid,
) -> Result<(u64, Option<Uuid>), StoreError> {
    let row = client
        .query_one(
            "SELECT count(*), (SELECT event_id FROM events WHERE network_id = $1 \
               ORDER BY tx_id DESC, position DESC LIMIT 1) \
             FROM events WHERE network_id = $1",
            &[&network_id],
        )
        .await?;
    let count: i64 = row.try_get(0)?;
    Ok((
        u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("count {count}")))?,
        row.try_get(1)?,
    ))
}

/// The global position of one network's last event, if it has any.
pub async fn network_last_position_in<C: GenericClient>(
    client: &C,
    network_id: Uuid,
) -> Result<Option<Position>, StoreError> {
    let row = client
        .query_opt(
            "SELECT tx_id::text, position FROM events WHERE network_id = $1 \
             ORDER BY events.tx_id DESC, events.position DESC LIMIT 1",
            &[&network_id],
        )
        .await?;
    row.map(|row| position_at(&row, 0, 1)).transpose()
}

/// Deletes every event of one network (offboarding); returns how many.
pub async fn delete_network_events_in<C: GenericClient>(
    client: &C,
    network_id: Uuid,
) -> Result<u64, StoreError> {
    Ok(client
        .execute("DELETE FROM events WHERE network_id = $1", &[&network_id])
        .await?)
}

/// Writes events exported from another installation as they were: same ids,
/// streams, versions and times. An event whose id is already here is
/// skipped (an import can be run again); another event at the same stream
/// version is a [`StoreError::Conflict`]. Returns the events written, with
/// their new global positions, in the order given.
pub async fn import_in<C: GenericClient>(
    client: &C,
    events: &[RecordedEvent],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut imported = Vec::with_capacity(events.len());
    for event in events {
        let version = i64::try_from(event.version)
            .map_err(|_| StoreError::Corrupt(format!("version {}", event.version)))?;
        let schema_version = i32::try_from(event.schema_version)
            .map_err(|_| StoreError::Corrupt("schema_version overflow".into()))?;
        let row = client
            .query_opt(
                "INSERT INTO events (event_id, stream_id, version, event_type, schema_version, \
                   network_id, site_id, actor, occurred_at, traceparent, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (event_id) DO NOTHING \
                 RETURNING tx_id::text, position",
                &[
                    &event.event_id,
                    &event.stream_id,
                    &version,
                    &event.event_type,
                    &schema_version,
                    &event.network_id,
                    &event.site_id,
                    &event.actor,
                    &event.occurred_at,
                    &event.traceparent,
                    &event.payload,
                ],
            )
            .await
            .map_err(|err| {
                map_conflict(
                    err,
                    &event.stream_id,
                    ExpectedVersion::Exact(event.version.saturating_sub(1)),
                )
            })?;
        let Some(row) = row else { continue };
        imported.push(RecordedEvent {
            global: position_at(&row, 0, 1)?,
            ..event.clone()
        });
    }
    Ok(imported)
}
