//! Newest-first timelines in PostgreSQL, per umbrella, network and site.

use std::collections::HashMap;

use anp_proto::aggregator::v1::FeedEntry;
use anp_proto::events::v1::PostState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::AggregatorError;
use crate::events::{Delivered, Projected};

const CHECKPOINT: &str = "feeds";
const SUMMARY_CHARS: usize = 280;

/// Writes a run of post events into the timelines: only a post's newer
/// version changes anything (even one that takes it out of them).
async fn write_posts(
    tx: &deadpool_postgres::Transaction<'_>,
    run: Vec<(&PostState, u64)>,
) -> Result<(), AggregatorError> {
    // The newest version of each post in the run.
    let mut newest: HashMap<Uuid, (&PostState, i64, Uuid, Uuid)> = HashMap::new();
    for (state, version) in run {
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
            .is_none_or(|(_, known, _, _)| *known < version)
        {
            newest.insert(post_id, (state, version, network_id, site_id));
        }
    }
    if newest.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = newest.keys().copied().collect();
    let versions: Vec<i64> = ids.iter().map(|id| newest[id].1).collect();
    let networks: Vec<Uuid> = ids.iter().map(|id| newest[id].2).collect();
    let rows = tx
        .query(
            "INSERT INTO post_versions (post_id, version, network_id) \
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[]) \
             ON CONFLICT (post_id) DO UPDATE SET version = EXCLUDED.version \
             WHERE post_versions.version < EXCLUDED.version \
             RETURNING post_id, (xmax = 0) AS inserted",
            &[&ids, &versions, &networks],
        )
        .await?;
    let mut posts = Posts::default();
    let mut entries = Entries::default();
    // Posts no longer in any timeline: their content goes too.
    let mut hidden: Vec<Uuid> = Vec::new();
    // Posts seen before: the timelines they are no longer in.
    let mut known_before: Vec<Uuid> = Vec::new();
    let mut kept: (Vec<Uuid>, Vec<String>) = (Vec::new(), Vec::new());
    for row in &rows {
        let post_id: Uuid = row.get(0);
        let inserted: bool = row.get(1);
        let (state, version, network_id, site_id) = newest[&post_id];
        let scopes = if crate::events::publicly_visible(state) {
            scopes_of(state, site_id)
        } else {
            Vec::new()
        };
        if !inserted {
            known_before.push(post_id);
            for scope in &scopes {
                kept.0.push(post_id);
                kept.1.push(scope.key());
            }
        }
        if scopes.is_empty() {
            hidden.push(post_id);
            continue;
        }
        posts.push(state, post_id, version, network_id, site_id);
        entries.push(state, post_id, network_id, site_id, &scopes);
    }
    if !known_before.is_empty() {
        tx.execute(
            "DELETE FROM feed_entries f WHERE f.post_id = ANY($1) AND NOT EXISTS \
               (SELECT 1 FROM unnest($2::uuid[], $3::text[]) AS k(post_id, scope) \
                WHERE k.post_id = f.post_id AND k.scope = f.scope)",
            &[&known_before, &kept.0, &kept.1],
        )
        .await?;
    }
    if !hidden.is_empty() {
        tx.execute("DELETE FROM feed_posts WHERE post_id = ANY($1)", &[&hidden])
            .await?;
    }
    if !posts.post_id.is_empty() {
        tx.execute(
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
             LEFT JOIN site_names n ON n.site_id = u.site_id \
             ON CONFLICT (post_id) DO UPDATE SET \
               version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, \
               title = EXCLUDED.title, summary_html = EXCLUDED.summary_html, \
               body_html = EXCLUDED.body_html, lang = EXCLUDED.lang, \
               site_slug = EXCLUDED.site_slug, site_name = EXCLUDED.site_name \
             WHERE feed_posts.version < EXCLUDED.version",
            &[
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
        )
        .await?;
    }
    if !entries.scope.is_empty() {
        // A post keeps its place in a timeline it was in already.
        tx.execute(
            "INSERT INTO feed_entries (scope, post_id, published_at, network_id, site_id) \
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::uuid[], \
               $5::uuid[]) \
             ON CONFLICT (scope, post_id) DO NOTHING",
            &[
                &entries.scope,
                &entries.post_id,
                &entries.published_at,
                &entries.network_id,
                &entries.site_id,
            ],
        )
        .await?;
    }
    Ok(())
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

/// Timeline rows as columns, for one `unnest` insert.
#[derive(Default)]
struct Entries {
    scope: Vec<String>,
    post_id: Vec<Uuid>,
    published_at: Vec<DateTime<Utc>>,
    network_id: Vec<Uuid>,
    site_id: Vec<Uuid>,
}

impl Entries {
    fn push(
        &mut self,
        state: &PostState,
        post_id: Uuid,
        network_id: Uuid,
        site_id: Uuid,
        scopes: &[Scope],
    ) {
        let published_at = anp_kit::from_timestamp(state.published_at.as_ref());
        for scope in scopes {
            self.scope.push(scope.key());
            self.post_id.push(post_id);
            self.published_at.push(published_at);
            self.network_id.push(network_id);
            self.site_id.push(site_id);
        }
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
    let text = ammonia::Builder::empty().clean(body_html).to_string();
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= SUMMARY_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(SUMMARY_CHARS).collect();
    // Do not end inside an entity such as `&amp;`.
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    format!("{}…", cut.trim_end())
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
        let mut run: Vec<(&PostState, u64)> = Vec::new();
        for delivered in batch {
            if let Projected::Post { state, version } = &delivered.event {
                run.push((state, *version));
                continue;
            }
            write_posts(&tx, std::mem::take(&mut run)).await?;
            if let Projected::NetworkOffboarded { network_id, slug } = &delivered.event {
                // Posts of other networks shared into this one's sites.
                tx.execute(
                    "DELETE FROM feed_entries WHERE scope IN \
                       (SELECT 's:' || site_id FROM site_names WHERE network_id = $1)",
                    &[network_id],
                )
                .await?;
                if !slug.is_empty() {
                    tx.execute(
                        "DELETE FROM feed_entries WHERE scope = $1",
                        &[&Scope::Network(slug.clone()).key()],
                    )
                    .await?;
                }
                for statement in [
                    "DELETE FROM feed_entries WHERE network_id = $1",
                    "DELETE FROM feed_posts WHERE network_id = $1",
                    "DELETE FROM site_names WHERE network_id = $1",
                    "DELETE FROM post_versions WHERE network_id = $1",
                    "DELETE FROM event_occurrences WHERE network_id = $1",
                    "DELETE FROM calendar_versions WHERE network_id = $1",
                ] {
                    tx.execute(statement, &[network_id]).await?;
                }
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
        tx.execute(
            "INSERT INTO projection_checkpoints (name, seq) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET seq = GREATEST(projection_checkpoints.seq, EXCLUDED.seq)",
            &[&CHECKPOINT, &(last_seq as i64)],
        )
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
                "SELECT e.site_id FROM feed_entries e JOIN feed_posts p USING (post_id) \
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
            None => client
                .query(
                    &format!(
                        "SELECT {columns} FROM feed_entries e JOIN feed_posts p USING (post_id) \
                             WHERE e.scope = $1 \
                             ORDER BY e.published_at DESC, e.post_id DESC LIMIT $2"
                    ),
                    &[&scope.key(), &fetch],
                )
                .await?,
            Some(cursor) => client
                .query(
                    &format!(
                        "SELECT {columns} FROM feed_entries e JOIN feed_posts p USING (post_id) \
                             WHERE e.scope = $1 AND (e.published_at, e.post_id) < ($2, $3) \
                             ORDER BY e.published_at DESC, e.post_id DESC LIMIT $4"
                    ),
                    &[&scope.key(), &cursor.published_at, &cursor.post_id, &fetch],
                )
                .await?,
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
