//! Newest-first timelines in PostgreSQL, per umbrella, network and site.

use std::collections::HashMap;

use anp_proto::aggregator::v1::FeedEntry;
use anp_proto::events::v1::PostState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::AggregatorError;
use crate::events::{Delivered, Projected};
use crate::usage::{StoredChanges, post_bytes};

const CHECKPOINT: &str = "feeds";
const SUMMARY_CHARS: usize = 280;

/// Writes a run of post events into the timelines: only a post's newer
/// version changes anything (even one that takes it out of them). A post
/// keeps its place (date) in a timeline it was in already; its places are
/// kept on its `post_versions` row, so its timeline rows are found by key.
/// So is its size, which its network's stored bytes change by (`day`: when
/// the version was written).
async fn write_posts(
    tx: &deadpool_postgres::Transaction<'_>,
    run: Vec<(&PostState, u64, NaiveDate)>,
) -> Result<(), AggregatorError> {
    // The newest version of each post in the run.
    let mut newest: HashMap<Uuid, (&PostState, i64, Uuid, Uuid, NaiveDate)> = HashMap::new();
    for (state, version, day) in run {
        let (Ok(post_id), Ok(network_id), Ok(site_id)) = (
            state.post_id.parse::<Uuid>(),
            state.network_id.parse::<Uuid>(),
            state.site_id.parse::<Uuid>(),
        ) else {
            tracing::warn!(post_id = %state.post_id, "post event with a bad id skipped");
            continue;
        };
        let version = version as i64;
        if newest
            .get(&post_id)
            .is_none_or(|(_, known, ..)| *known < version)
        {
            newest.insert(post_id, (state, version, network_id, site_id, day));
        }
    }
    if newest.is_empty() {
        return Ok(());
    }
    // What the timelines know of these posts (batches are applied one at a
    // time, so nothing changes it meanwhile).
    let ids: Vec<Uuid> = newest.keys().copied().collect();
    let lookup = tx
        .prepare_cached(
            "SELECT post_id, version, scopes, placed, bytes FROM post_versions \
             WHERE post_id = ANY($1)",
        )
        .await?;
    let known: HashMap<Uuid, (i64, Place, i64)> = tx
        .query(&lookup, &[&ids])
        .await?
        .iter()
        .map(|row| {
            let place = Place {
                scopes: row.get(2),
                placed: row.get(3),
            };
            (row.get(0), (row.get(1), place, row.get(4)))
        })
        .collect();
    // Posts the timelines never saw (the usual case) and newer versions of
    // posts they know, written apart: see `Conflicts`.
    let mut fresh = Rows::default();
    let mut known_rows = Rows::default();
    let mut removed = Places::default();
    // Posts no longer in any timeline: their content goes too.
    let mut hidden: Vec<Uuid> = Vec::new();
    let mut stored = StoredChanges::default();
    for (post_id, (state, version, network_id, site_id, day)) in newest {
        let before = known.get(&post_id);
        if before.is_some_and(|(known, ..)| *known >= version) {
            continue;
        }
        let bytes = post_bytes(state);
        stored.add(
            network_id,
            day,
            bytes - before.map_or(0, |(_, _, bytes)| *bytes),
        );
        let scopes = if crate::events::publicly_visible(state) {
            scopes_of(state, site_id)
        } else {
            Vec::new()
        };
        let published_at = anp_kit::from_timestamp(state.published_at.as_ref());
        let mut place = Place::default();
        for scope in scopes.iter().map(Scope::key) {
            let kept = before.and_then(|(_, old, _)| {
                old.scopes
                    .iter()
                    .position(|known| *known == scope)
                    .and_then(|at| old.placed.get(at).copied())
            });
            match kept {
                Some(at) => place.push(scope, at),
                None => {
                    // A row its places did not hold: new to the timeline.
                    fresh.added.push(scope.clone(), published_at, post_id);
                    place.push(scope, published_at);
                }
            }
        }
        if let Some((_, old, _)) = before {
            for (scope, at) in old.scopes.iter().zip(&old.placed) {
                if !place.scopes.contains(scope) {
                    removed.push(scope.clone(), *at, post_id);
                }
            }
        }
        let rows = if before.is_some() {
            &mut known_rows
        } else {
            &mut fresh
        };
        rows.versions
            .push(post_id, version, network_id, bytes, place);
        if scopes.is_empty() {
            if before.is_some() {
                hidden.push(post_id);
            }
            continue;
        }
        rows.posts
            .push(state, post_id, version, network_id, site_id);
    }
    if fresh.versions.post_id.is_empty() && known_rows.versions.post_id.is_empty() {
        return Ok(());
    }
    stored.write(tx).await?;
    if !removed.scope.is_empty() {
        let delete = tx
            .prepare_cached(
                "DELETE FROM feed_timelines f USING \
                   unnest($1::text[], $2::timestamptz[], $3::uuid[]) AS r(scope, published_at, post_id) \
                 WHERE f.scope = r.scope AND f.published_at = r.published_at AND f.post_id = r.post_id",
            )
            .await?;
        tx.execute(
            &delete,
            &[&removed.scope, &removed.published_at, &removed.post_id],
        )
        .await?;
    }
    if !hidden.is_empty() {
        let delete = tx
            .prepare_cached("DELETE FROM feed_posts WHERE post_id = ANY($1)")
            .await?;
        tx.execute(&delete, &[&hidden]).await?;
    }
    known_rows.write(tx, Conflicts::Expected).await?;
    // What is new is inserted as new; should a row be there after all (the
    // projection's own tables disagreeing), the same rows are written again
    // with upserts instead of stopping the projection.
    if fresh.versions.post_id.is_empty() && fresh.added.scope.is_empty() {
        return Ok(());
    }
    // The savepoint, the rows and its release go in one round trip.
    let statements = fresh.statements(tx, Conflicts::Unexpected).await?;
    let (saved, written, released) = futures::join!(
        tx.batch_execute("SAVEPOINT fresh_rows"),
        pipelined(tx, &statements),
        tx.batch_execute("RELEASE SAVEPOINT fresh_rows"),
    );
    saved?;
    match written {
        Ok(()) => released?,
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            tracing::warn!(error = %err, "a new timeline row was there already: written again as an upsert");
            tx.batch_execute("ROLLBACK TO SAVEPOINT fresh_rows").await?;
            fresh.write(tx, Conflicts::Expected).await?;
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// Whether rows being written may be there already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conflicts {
    /// A newer version of a known post: its rows are updated.
    Expected,
    /// Rows the post's places did not hold, of posts never seen: plain
    /// inserts. An upsert's check for a conflicting row costs as much as
    /// the insert (1.8× a plain insert into `feed_timelines`, measured), and
    /// these are nearly all of the rows.
    Unexpected,
}

/// A run's rows for the versions, the posts' content and the timelines.
#[derive(Default)]
struct Rows {
    versions: Versions,
    posts: Posts,
    /// Timeline rows to add (for `Conflicts::Unexpected` only).
    added: Places,
}

/// A statement prepared once a connection, with its parameters.
type Bound<'a> = (
    tokio_postgres::Statement,
    Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)>,
);

/// Runs `statements` in one round trip (tokio-postgres pipelines what is
/// sent before its answers are read; PostgreSQL runs them in order). The
/// first error is the one returned: those after it failed only because the
/// transaction had.
async fn pipelined(
    tx: &deadpool_postgres::Transaction<'_>,
    statements: &[Bound<'_>],
) -> Result<(), tokio_postgres::Error> {
    futures::future::join_all(
        statements
            .iter()
            .map(|(statement, params)| tx.execute(statement, params)),
    )
    .await
    .into_iter()
    .find_map(Result::err)
    .map_or(Ok(()), Err)
}

impl Rows {
    async fn write(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        conflicts: Conflicts,
    ) -> Result<(), tokio_postgres::Error> {
        let statements = self.statements(tx, conflicts).await?;
        pipelined(tx, &statements).await
    }

    /// The statements that write the rows, prepared (one after the other,
    /// so that they can then be sent together), with their parameters.
    async fn statements<'a>(
        &'a self,
        tx: &deadpool_postgres::Transaction<'_>,
        conflicts: Conflicts,
    ) -> Result<Vec<Bound<'a>>, tokio_postgres::Error> {
        let upsert = conflicts == Conflicts::Expected;
        let mut statements: Vec<Bound<'a>> = Vec::with_capacity(3);
        let versions = &self.versions;
        if !versions.post_id.is_empty() {
            let on_conflict = if upsert {
                " ON CONFLICT (post_id) DO UPDATE SET version = EXCLUDED.version, \
                   bytes = EXCLUDED.bytes, scopes = EXCLUDED.scopes, placed = EXCLUDED.placed \
                 WHERE post_versions.version < EXCLUDED.version"
            } else {
                ""
            };
            let statement = tx
                .prepare_cached(&format!(
                    "INSERT INTO post_versions (post_id, version, network_id, bytes, scopes, placed) \
                     SELECT u.post_id, u.version, u.network_id, u.bytes, \
                       COALESCE(p.scopes, '{{}}'), COALESCE(p.placed, '{{}}') \
                     FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $7::bigint[]) \
                       AS u(post_id, version, network_id, bytes) \
                     LEFT JOIN (SELECT post_id, array_agg(scope ORDER BY n) AS scopes, \
                                  array_agg(at ORDER BY n) AS placed \
                                FROM unnest($4::uuid[], $5::text[], $6::timestamptz[]) \
                                  WITH ORDINALITY AS x(post_id, scope, at, n) \
                                GROUP BY post_id) p USING (post_id){on_conflict}"
                ))
                .await?;
            statements.push((
                statement,
                vec![
                    &versions.post_id,
                    &versions.version,
                    &versions.network_id,
                    &versions.places.post_id,
                    &versions.places.scope,
                    &versions.places.published_at,
                    &versions.bytes,
                ],
            ));
        }
        let posts = &self.posts;
        if !posts.post_id.is_empty() {
            let on_conflict = if upsert {
                " ON CONFLICT (post_id) DO UPDATE SET \
                   version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, \
                   title = EXCLUDED.title, summary_html = EXCLUDED.summary_html, \
                   body_html = EXCLUDED.body_html, lang = EXCLUDED.lang, \
                   site_slug = EXCLUDED.site_slug, site_name = EXCLUDED.site_name \
                 WHERE feed_posts.version < EXCLUDED.version"
            } else {
                ""
            };
            let statement = tx
                .prepare_cached(&format!(
                    "INSERT INTO feed_posts (post_id, network_id, site_id, version, updated_at, \
                       network_slug, site_slug, site_name, title, summary_html, body_html, lang, author) \
                     SELECT u.post_id, u.network_id, u.site_id, u.version, u.updated_at, u.network_slug, \
                       COALESCE(n.slug, u.site_slug), COALESCE(n.name, u.site_name), u.title, \
                       u.summary_html, u.body_html, u.lang, u.author \
                     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::timestamptz[], \
                       $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                       $12::text[], $13::text[]) \
                       AS u(post_id, network_id, site_id, version, updated_at, network_slug, site_slug, \
                            site_name, title, summary_html, body_html, lang, author) \
                     LEFT JOIN site_names n ON n.site_id = u.site_id{on_conflict}"
                ))
                .await?;
            statements.push((
                statement,
                vec![
                    &posts.post_id,
                    &posts.network_id,
                    &posts.site_id,
                    &posts.version,
                    &posts.updated_at,
                    &posts.network_slug,
                    &posts.site_slug,
                    &posts.site_name,
                    &posts.title,
                    &posts.summary_html,
                    &posts.body_html,
                    &posts.lang,
                    &posts.author,
                ],
            ));
        }
        let added = &self.added;
        if !added.scope.is_empty() {
            let on_conflict = if upsert {
                " ON CONFLICT DO NOTHING"
            } else {
                ""
            };
            let statement = tx
                .prepare_cached(&format!(
                    "INSERT INTO feed_timelines (scope, published_at, post_id) \
                     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::uuid[]){on_conflict}"
                ))
                .await?;
            statements.push((
                statement,
                vec![&added.scope, &added.published_at, &added.post_id],
            ));
        }
        Ok(statements)
    }
}

/// Where a post is placed: its timelines and its date in each.
#[derive(Default)]
struct Place {
    scopes: Vec<String>,
    placed: Vec<DateTime<Utc>>,
}

impl Place {
    fn push(&mut self, scope: String, at: DateTime<Utc>) {
        self.scopes.push(scope);
        self.placed.push(at);
    }
}

/// Posts' versions and places as columns, for one `unnest` upsert.
#[derive(Default)]
struct Versions {
    post_id: Vec<Uuid>,
    version: Vec<i64>,
    network_id: Vec<Uuid>,
    bytes: Vec<i64>,
    /// Every post's places, in order.
    places: Places,
}

impl Versions {
    fn push(&mut self, post_id: Uuid, version: i64, network_id: Uuid, bytes: i64, place: Place) {
        self.post_id.push(post_id);
        self.version.push(version);
        self.network_id.push(network_id);
        self.bytes.push(bytes);
        for (scope, at) in place.scopes.into_iter().zip(place.placed) {
            self.places.push(scope, at, post_id);
        }
    }
}

/// Posts' content as columns, for one `unnest` insert.
#[derive(Default)]
struct Posts {
    post_id: Vec<Uuid>,
    network_id: Vec<Uuid>,
    site_id: Vec<Uuid>,
    version: Vec<i64>,
    updated_at: Vec<DateTime<Utc>>,
    network_slug: Vec<String>,
    site_slug: Vec<String>,
    site_name: Vec<String>,
    title: Vec<String>,
    summary_html: Vec<String>,
    body_html: Vec<String>,
    lang: Vec<String>,
    author: Vec<String>,
}

impl Posts {
    fn push(
        &mut self,
        state: &PostState,
        post_id: Uuid,
        version: i64,
        network_id: Uuid,
        site_id: Uuid,
    ) {
        self.post_id.push(post_id);
        self.network_id.push(network_id);
        self.site_id.push(site_id);
        self.version.push(version);
        self.updated_at
            .push(anp_kit::from_timestamp(state.updated_at.as_ref()));
        self.network_slug.push(state.network_slug.clone());
        self.site_slug.push(state.site_slug.clone());
        self.site_name.push(state.site_name.clone());
        self.title.push(state.title.clone());
        self.summary_html.push(summarize(&state.body_html));
        self.body_html.push(state.body_html.clone());
        self.lang.push(state.lang.clone());
        self.author.push(state.author.clone());
    }
}

/// Timeline rows as columns, for one `unnest` statement.
#[derive(Default)]
struct Places {
    scope: Vec<String>,
    published_at: Vec<DateTime<Utc>>,
    post_id: Vec<Uuid>,
}

impl Places {
    fn push(&mut self, scope: String, published_at: DateTime<Utc>, post_id: Uuid) {
        self.scope.push(scope);
        self.published_at.push(published_at);
        self.post_id.push(post_id);
    }
}

/// Which timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Umbrella,
    Network(String),
    /// By the site's id: a rename keeps the timeline.
    Site(Uuid),
    /// Every public post with this tag, across networks.
    Tag(String),
    /// Every public post in this language, across networks.
    Lang(String),
}

impl Scope {
    pub fn key(&self) -> String {
        match self {
            Scope::Umbrella => "umbrella".into(),
            Scope::Network(network) => format!("n:{network}"),
            Scope::Site(site_id) => format!("s:{site_id}"),
            Scope::Tag(tag) => format!("t:{tag}"),
            Scope::Lang(lang) => format!("l:{lang}"),
        }
    }
}

/// A position in a timeline: entries strictly older than it come next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub published_at: DateTime<Utc>,
    pub post_id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.published_at.timestamp_micros(),
            self.post_id
        ))
    }

    pub fn decode(text: &str) -> Result<Cursor, AggregatorError> {
        let invalid = || AggregatorError::Invalid("cursor: malformed".into());
        if text.len() > 128 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, post_id) = decoded.split_once(':').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Cursor {
            published_at: DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?,
            post_id: post_id.parse().map_err(|_| invalid())?,
        })
    }
}

/// Plain-text summary of sanitized HTML, escaped for HTML again.
pub fn summarize(body_html: &str) -> String {
    anp_markdown::html_summary(body_html, SUMMARY_CHARS)
}

#[derive(Clone)]
pub struct Feeds {
    pool: Pool,
}

impl Feeds {
    pub fn new(pool: Pool) -> Self {
        Feeds { pool }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Applies a batch in one transaction. Every write is guarded by the
    /// post's version, so a redelivered or reordered event changes nothing;
    /// the highest sequence seen is kept as the projection's checkpoint.
    pub async fn apply(&self, batch: &[Delivered]) -> Result<(), AggregatorError> {
        let Some(last_seq) = batch.iter().map(|delivered| delivered.seq).max() else {
            return Ok(());
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Posts are written a run at a time (a few statements for hundreds
        // of posts); any other event ends the run, so order is kept.
        let mut run: Vec<(&PostState, u64, NaiveDate)> = Vec::new();
        for delivered in batch {
            let day = delivered
                .meta
                .as_ref()
                .map_or_else(Utc::now, |meta| meta.occurred_at)
                .date_naive();
            if let Projected::Post { state, version } = &delivered.event {
                run.push((state, *version, day));
                continue;
            }
            write_posts(&tx, std::mem::take(&mut run)).await?;
            if let Projected::NetworkOffboarded { network_id, slug } = &delivered.event {
                // Posts of other networks shared into this one's sites.
                tx.execute(
                    "DELETE FROM feed_timelines WHERE scope IN \
                       (SELECT 's:' || site_id FROM site_names WHERE network_id = $1)",
                    &[network_id],
                )
                .await?;
                if !slug.is_empty() {
                    tx.execute(
                        "DELETE FROM feed_timelines WHERE scope = $1",
                        &[&Scope::Network(slug.clone()).key()],
                    )
                    .await?;
                }
                // Its posts wherever they are placed (umbrella, tags,
                // languages, sites they were shared into).
                tx.execute(
                    "DELETE FROM feed_timelines f USING \
                       (SELECT post_id, unnest(scopes) AS scope, unnest(placed) AS published_at \
                        FROM post_versions WHERE network_id = $1) p \
                     WHERE f.scope = p.scope AND f.published_at = p.published_at \
                       AND f.post_id = p.post_id",
                    &[network_id],
                )
                .await?;
                for statement in [
                    "DELETE FROM feed_posts WHERE network_id = $1",
                    "DELETE FROM site_names WHERE network_id = $1",
                    "DELETE FROM post_versions WHERE network_id = $1",
                    "DELETE FROM event_occurrences WHERE network_id = $1",
                    "DELETE FROM calendar_versions WHERE network_id = $1",
                ] {
                    tx.execute(statement, &[network_id]).await?;
                }
                crate::usage::network_ended(&tx, network_id, day).await?;
                continue;
            }
            if let Projected::Site(site) = &delivered.event {
                if let (Ok(site_id), Ok(network_id)) = (
                    site.site_id.parse::<Uuid>(),
                    site.network_id.parse::<Uuid>(),
                ) {
                    tx.execute(
                        "INSERT INTO site_names (site_id, network_id, slug, name, network_slug) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site_id) DO NOTHING",
                        &[
                            &site_id,
                            &network_id,
                            &site.slug,
                            &site.name,
                            &site.network_slug,
                        ],
                    )
                    .await?;
                }
                continue;
            }
            if let Projected::SiteRenamed {
                site_id,
                slug,
                name,
            } = &delivered.event
            {
                // Only what is shown changes: the timeline is keyed by id.
                for (table, slug_column, name_column) in [
                    ("site_names", "slug", "name"),
                    ("feed_posts", "site_slug", "site_name"),
                ] {
                    tx.execute(
                        &format!(
                            "UPDATE {table} SET \
                               {slug_column} = CASE WHEN $2 = '' THEN {slug_column} ELSE $2 END, \
                               {name_column} = CASE WHEN $3 = '' THEN {name_column} ELSE $3 END \
                             WHERE site_id = $1"
                        ),
                        &[site_id, slug, name],
                    )
                    .await?;
                }
                continue;
            }
            if let Projected::CalendarEvent { state, version } = &delivered.event {
                crate::upcoming::apply(&*tx, state, *version, Utc::now()).await?;
                continue;
            }
        }
        write_posts(&tx, run).await?;
        let checkpoint = tx
            .prepare_cached(
                "INSERT INTO projection_checkpoints (name, seq) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET seq = GREATEST(projection_checkpoints.seq, EXCLUDED.seq)",
            )
            .await?;
        tx.execute(&checkpoint, &[&CHECKPOINT, &(last_seq as i64)])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The id of a site by its slugs, as the timelines know it (none: the
    /// site has no posts yet, so its timeline is empty anyway).
    pub async fn site_id(
        &self,
        network_slug: &str,
        site_slug: &str,
    ) -> Result<Option<Uuid>, AggregatorError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT site_id FROM site_names WHERE network_slug = $1 AND slug = $2 LIMIT 1",
                &[&network_slug, &site_slug],
            )
            .await?;
        if let Some(row) = row {
            return Ok(Some(row.get(0)));
        }
        // Sites seen before their names were kept by network slug.
        let row = client
            .query_opt(
                "SELECT p.site_id FROM feed_timelines e JOIN feed_posts p USING (post_id) \
                 WHERE e.scope = $1 AND p.site_slug = $2 LIMIT 1",
                &[&format!("n:{network_slug}"), &site_slug],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// One page of a timeline, newest first.
    pub async fn page(
        &self,
        scope: &Scope,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<FeedEntry>, Option<Cursor>), AggregatorError> {
        let client = self.pool.get().await?;
        let fetch = i64::from(limit) + 1;
        let columns = "e.post_id, p.title, p.summary_html, p.body_html, p.network_slug, \
                       p.site_slug, p.site_name, p.lang, p.author, e.published_at, p.updated_at";
        let rows = match cursor {
            None => {
                let first = client
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM feed_timelines e JOIN feed_posts p USING (post_id) \
                             WHERE e.scope = $1 \
                             ORDER BY e.published_at DESC, e.post_id DESC LIMIT $2"
                    ))
                    .await?;
                client.query(&first, &[&scope.key(), &fetch]).await?
            }
            Some(cursor) => {
                let next = client
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM feed_timelines e JOIN feed_posts p USING (post_id) \
                             WHERE e.scope = $1 AND (e.published_at, e.post_id) < ($2, $3) \
                             ORDER BY e.published_at DESC, e.post_id DESC LIMIT $4"
                    ))
                    .await?;
                client
                    .query(
                        &next,
                        &[&scope.key(), &cursor.published_at, &cursor.post_id, &fetch],
                    )
                    .await?
            }
        };
        let mut entries = Vec::with_capacity(rows.len());
        let mut last_cursor = None;
        for row in rows.iter().take(limit as usize) {
            let post_id: Uuid = row.get(0);
            let published_at: DateTime<Utc> = row.get(9);
            let updated_at: DateTime<Utc> = row.get(10);
            last_cursor = Some(Cursor {
                published_at,
                post_id,
            });
            entries.push(FeedEntry {
                id: post_id.to_string(),
                title: row.get(1),
                summary_html: row.get(2),
                body_html: row.get(3),
                network_slug: row.get(4),
                site_slug: row.get(5),
                site_name: row.get(6),
                lang: row.get(7),
                author: row.get(8),
                published_at: Some(anp_kit::timestamp(published_at)),
                updated_at: Some(anp_kit::timestamp(updated_at)),
            });
        }
        let next = if rows.len() > limit as usize {
            last_cursor
        } else {
            None
        };
        Ok((entries, next))
    }
}

/// Every timeline a post is in: the umbrella, its network and site, its
/// language and tags, and each site it is shared into (with that site's
/// network).
fn scopes_of(state: &PostState, site_id: Uuid) -> Vec<Scope> {
    let mut scopes = vec![
        Scope::Umbrella,
        Scope::Network(state.network_slug.clone()),
        Scope::Site(site_id),
        Scope::Lang(if state.lang.is_empty() {
            "en".to_owned()
        } else {
            state.lang.clone()
        }),
    ];
    for tag in &state.tags {
        let scope = Scope::Tag(tag.clone());
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    for share in state
        .shares
        .iter()
        .filter(|share| share.status == "accepted")
    {
        let Ok(shared_site) = share.site_id.parse::<Uuid>() else {
            continue;
        };
        for scope in [
            Scope::Network(share.network_slug.clone()),
            Scope::Site(shared_site),
        ] {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            published_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            post_id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for garbage in [
            "",
            "!!",
            "abc",
            &"A".repeat(500),
            &URL_SAFE_NO_PAD.encode("x:y"),
        ] {
            let error = Cursor::decode(garbage).unwrap_err().to_string();
            assert!(error.starts_with("cursor:"), "{error}");
        }
    }

    #[test]
    fn summaries_are_plain_short_and_escaped() {
        assert_eq!(summarize("<p>Hello <b>world</b></p>"), "Hello world");
        assert_eq!(summarize("<p>a &lt;script&gt;</p>"), "a &lt;script&gt;");
        let long = format!("<p>{}</p>", "word ".repeat(100));
        let summary = summarize(&long);
        assert!(summary.ends_with('…'));
        assert!(summary.chars().count() <= SUMMARY_CHARS + 1);
    }
}
