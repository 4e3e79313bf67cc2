//! The `posts` table: each post as its events leave it, written in the
//! same transaction as the events (and by an import), so listing a site's
//! posts and finding scheduled posts due never fold event streams.

use std::sync::LazyLock;

use anp_eventstore::{ExpectedVersion, NewEvent, RecordedEvent};
use anp_proto::events::v1::{PageState, PostState};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::ContentError;
use crate::posts::{fold, status_of, visibility_of};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Creates or updates the table; fills it from the events the first time
/// (posts written before the table existed).
pub async fn migrate(store: &anp_eventstore::EventStore) -> Result<(), ContentError> {
    anp_eventstore::run_migrations(
        store.pool(),
        "anp_content_migrations",
        embedded::migrations::runner(),
    )
    .await?;
    let client = store
        .pool()
        .get()
        .await
        .map_err(anp_eventstore::StoreError::from)?;
    let empty = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM posts)", &[])
        .await
        .map_err(anp_eventstore::StoreError::from)?
        .get::<_, bool>(0);
    if !empty {
        return Ok(());
    }
    let streams = client
        .query(
            "SELECT DISTINCT stream_id FROM events WHERE stream_id LIKE 'post-%'",
            &[],
        )
        .await
        .map_err(anp_eventstore::StoreError::from)?;
    for row in &streams {
        let stream: String = row.get(0);
        let events = anp_eventstore::load_stream_in(&**client, &stream).await?;
        if let Some(post) = fold(&events)? {
            write(&client, &post.state, post.version).await?;
        }
    }
    Ok(())
}

/// A post's row, as its state gives it.
struct PostRow<'a> {
    post_id: Uuid,
    network_id: Uuid,
    site_id: Uuid,
    status: &'a str,
    visibility: &'a str,
    sort_at: chrono::DateTime<chrono::Utc>,
    publish_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn corrupt(what: &str) -> ContentError {
    ContentError::Corrupt {
        event_id: Uuid::nil(),
        message: format!("post state: {what}"),
    }
}

impl<'a> PostRow<'a> {
    fn of(state: &'a PostState) -> Result<Self, ContentError> {
        let status = status_of(state);
        Ok(PostRow {
            post_id: state.post_id.parse().map_err(|_| corrupt("post_id"))?,
            network_id: state
                .network_id
                .parse()
                .map_err(|_| corrupt("network_id"))?,
            site_id: state.site_id.parse().map_err(|_| corrupt("site_id"))?,
            status,
            visibility: visibility_of(state),
            sort_at: if status == "published" {
                anp_kit::from_timestamp(state.published_at.as_ref())
            } else {
                anp_kit::from_timestamp(state.updated_at.as_ref())
            },
            publish_at: state
                .publish_at
                .as_ref()
                .map(|at| anp_kit::from_timestamp(Some(at))),
        })
    }
}

/// The upsert's end: a newer version replaces the row, an older one nothing.
const UPSERT_POST: &str = " ON CONFLICT (post_id) DO UPDATE SET status = EXCLUDED.status, \
       visibility = EXCLUDED.visibility, version = EXCLUDED.version, \
       sort_at = EXCLUDED.sort_at, publish_at = EXCLUDED.publish_at \
     WHERE posts.version < EXCLUDED.version";

static WRITE_POST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO posts (post_id, network_id, site_id, status, visibility, version, \
           sort_at, publish_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8){UPSERT_POST}"
    )
});

/// A new post's first event and its row, in one statement.
static APPEND_NEW_POST: LazyLock<String> = LazyLock::new(|| {
    anp_eventstore::append_one_with_sql(&format!(
        "INSERT INTO posts (post_id, network_id, site_id, status, visibility, version, \
           sort_at, publish_at) \
         SELECT $11::uuid, $12::uuid, $13::uuid, $14::text, $15::text, version, \
           $16::timestamptz, $17::timestamptz FROM appended{UPSERT_POST}"
    ))
});

/// Appends the first event of a new post without shares (`PublishPost`,
/// `DraftPost`, …) and writes its row, in one statement and one round trip
/// — what [`anp_eventstore::append_cached`] and [`write`] would do in a
/// transaction of five.
pub async fn append_new<S: anp_eventstore::Statements>(
    statements: &S,
    stream_id: &str,
    event: &NewEvent,
    state: &PostState,
) -> Result<RecordedEvent, ContentError> {
    let row = PostRow::of(state)?;
    Ok(anp_eventstore::append_one_with(
        statements,
        &APPEND_NEW_POST,
        stream_id,
        ExpectedVersion::NoStream,
        event,
        &[
            &row.post_id,
            &row.network_id,
            &row.site_id,
            &row.status,
            &row.visibility,
            &row.sort_at,
            &row.publish_at,
        ],
    )
    .await?)
}

/// Records a post's state at `version`; an older version changes nothing.
/// Every post write runs these statements: on a pooled connection they are
/// prepared once (`Statements`).
pub async fn write<S: anp_eventstore::Statements>(
    statements: &S,
    state: &PostState,
    version: u64,
) -> Result<(), ContentError> {
    let PostRow {
        post_id,
        network_id,
        site_id,
        status,
        visibility,
        sort_at,
        publish_at,
    } = PostRow::of(state)?;
    let store_error = anp_eventstore::StoreError::from;
    let client = statements.client();
    let upsert = statements
        .statement(&WRITE_POST)
        .await
        .map_err(store_error)?;
    let written = client
        .execute(
            &upsert,
            &[
                &post_id,
                &network_id,
                &site_id,
                &status,
                &visibility,
                &(version as i64),
                &sort_at,
                &publish_at,
            ],
        )
        .await
        .map_err(anp_eventstore::StoreError::from)?;
    if written == 0 {
        return Ok(()); // an older version
    }
    let unshare = statements
        .statement("DELETE FROM post_shares WHERE post_id = $1")
        .await
        .map_err(store_error)?;
    client
        .execute(&unshare, &[&post_id])
        .await
        .map_err(store_error)?;
    for share in &state.shares {
        let site_id: Uuid = share
            .site_id
            .parse()
            .map_err(|_| corrupt("share site_id"))?;
        let target_network: Option<Uuid> = share.network_id.parse().ok();
        client
            .execute(
                "INSERT INTO post_shares (post_id, network_id, site_id, status, target_network_id) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (post_id, site_id) DO UPDATE \
                 SET status = EXCLUDED.status",
                &[
                    &post_id,
                    &network_id,
                    &site_id,
                    &share.status,
                    &target_network,
                ],
            )
            .await
            .map_err(anp_eventstore::StoreError::from)?;
    }
    Ok(())
}

/// Records a page's state at `version`; an older version changes nothing.
/// Another page of the site with the slug is `ALREADY_EXISTS`.
pub async fn write_page<C: GenericClient>(
    client: &C,
    page: &PageState,
    version: u64,
) -> Result<(), ContentError> {
    let corrupt = |what: &str| ContentError::Corrupt {
        event_id: Uuid::nil(),
        message: format!("page state: {what}"),
    };
    let page_id: Uuid = page.page_id.parse().map_err(|_| corrupt("page_id"))?;
    let network_id: Uuid = page.network_id.parse().map_err(|_| corrupt("network_id"))?;
    let site_id: Uuid = page.site_id.parse().map_err(|_| corrupt("site_id"))?;
    client
        .execute(
            "INSERT INTO pages (page_id, network_id, site_id, slug, title, position, version, deleted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (page_id) DO UPDATE SET slug = EXCLUDED.slug, title = EXCLUDED.title, \
               position = EXCLUDED.position, version = EXCLUDED.version, deleted = EXCLUDED.deleted \
             WHERE pages.version < EXCLUDED.version",
            &[
                &page_id,
                &network_id,
                &site_id,
                &page.slug,
                &page.title,
                &page.position,
                &(version as i64),
                &page.deleted,
            ],
        )
        .await
        .map_err(|err| {
            if anp_eventstore::unique_violation(&err).is_some() {
                ContentError::Taken(format!("slug: {:?} is already taken in this site", page.slug))
            } else {
                ContentError::Store(anp_eventstore::StoreError::from(err))
            }
        })?;
    Ok(())
}

/// An imported feed item: recorded as seen, to show and not to take twice.
async fn write_feed_item(
    tx: &tokio_postgres::Transaction<'_>,
    event: &RecordedEvent,
) -> Result<(), ContentError> {
    use prost::Message;
    let item = anp_proto::events::v1::ExternalItemIngested::decode(event.payload.as_slice())
        .map_err(|err| ContentError::Corrupt {
            event_id: event.event_id,
            message: err.to_string(),
        })?;
    let corrupt = |what: &str| ContentError::Corrupt {
        event_id: event.event_id,
        message: what.to_owned(),
    };
    let feed_id: Uuid = item.feed_id.parse().map_err(|_| corrupt("feed_id"))?;
    let site_id: Uuid = item.site_id.parse().map_err(|_| corrupt("site_id"))?;
    tx.execute(
        "INSERT INTO feed_items (feed_id, item_key, site_id, network_id, feed_url, title, link, \
           summary_html, author, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (feed_id, item_key) DO NOTHING",
        &[
            &feed_id,
            &item.item_key,
            &site_id,
            &event.network_id,
            &item.feed_url,
            &item.title,
            &item.link,
            &item.summary_html,
            &item.author,
            &anp_kit::from_timestamp(item.published_at.as_ref()),
        ],
    )
    .await
    .map_err(anp_eventstore::StoreError::from)?;
    Ok(())
}

/// Posts of other networks shared into a network that leaves: the share is
/// withdrawn (`PostUnshared`), so they leave its timelines for good and a
/// later network with the same slug never shows them.
async fn withdraw_shares_into(
    tx: &tokio_postgres::Transaction<'_>,
    network_id: Uuid,
) -> Result<(), ContentError> {
    use prost::Message;
    let rows = tx
        .query(
            "SELECT post_id, site_id FROM post_shares WHERE target_network_id = $1 \
             AND network_id <> $1",
            &[&network_id],
        )
        .await
        .map_err(anp_eventstore::StoreError::from)?;
    for row in &rows {
        let (post_id, site_id): (Uuid, Uuid) = (row.get(0), row.get(1));
        let stream = crate::posts::stream_id(post_id);
        let events = anp_eventstore::load_stream_in(tx, &stream).await?;
        let Some(post) = fold(&events)? else { continue };
        let mut state = post.state.clone();
        state
            .shares
            .retain(|share| share.site_id != site_id.to_string());
        let event = anp_eventstore::NewEvent::new(
            "PostUnshared",
            state.network_id.parse().unwrap_or(Uuid::nil()),
            "offboarding",
            anp_proto::events::v1::PostUnshared {
                post: Some(state.clone()),
                site_id: site_id.to_string(),
            }
            .encode_to_vec(),
        );
        let recorded = anp_eventstore::append_in(
            tx,
            &stream,
            anp_eventstore::ExpectedVersion::Exact(post.version),
            &[event],
        )
        .await?;
        write(
            tx,
            &state,
            recorded.last().map_or(post.version + 1, |e| e.version),
        )
        .await?;
    }
    Ok(())
}

/// The table's side of importing and purging a network's events.
pub struct Tables;

#[tonic::async_trait]
impl anp_archive::service::StateTables for Tables {
    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), String> {
        if event.stream_id.starts_with("feed-") {
            return write_feed_item(tx, event)
                .await
                .map_err(|err| err.to_string());
        }
        if event.stream_id.starts_with("thread-") {
            return crate::discussions::write_tables(tx, event)
                .await
                .map_err(|err| err.to_string());
        }
        if event.stream_id.starts_with("page-") {
            let page = crate::pages::fold_page(std::slice::from_ref(event))
                .map_err(|err| err.to_string())?
                .ok_or("no page")?;
            return write_page(tx, &page.state, event.version)
                .await
                .map_err(|err| err.to_string());
        }
        if !event.stream_id.starts_with("post-") {
            return Ok(());
        }
        let post = fold(std::slice::from_ref(event))
            .map_err(|err| err.to_string())?
            .ok_or("no post")?;
        write(tx, &post.state, event.version)
            .await
            .map_err(|err| err.to_string())
    }

    async fn purge(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        network_id: Uuid,
    ) -> Result<(), String> {
        withdraw_shares_into(tx, network_id)
            .await
            .map_err(|err| err.to_string())?;
        for table in [
            "posts",
            "pages",
            "post_shares",
            "threads",
            "replies",
            "discussion_reports",
            "feed_items",
            "feed_sources",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE network_id = $1"),
                &[&network_id],
            )
            .await
            .map_err(|err| err.to_string())?;
        }
        Ok(())
    }
}
