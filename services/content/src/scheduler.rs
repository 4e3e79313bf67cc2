//! Publishes scheduled posts when their time comes: one pass every
//! interval, each due post in its own transaction (`FOR UPDATE SKIP LOCKED`,
//! so several content processes share the work and never publish a post
//! twice). A post of a suspended network or an archived site waits until
//! it can be written again.

use std::time::Duration;

use anp_eventstore::{ExpectedVersion, NewEvent};
use anp_proto::events::v1::PostPublished;
use anp_proto::sites::v1::{GetSiteRequest, NetworkStatus};
use prost::Message;
use tracing::{info, warn};
use uuid::Uuid;

use crate::posts::{fold, status_of, stream_id};
use crate::{Content, ContentError, state};

/// Posts published in one pass at most.
const BATCH: i64 = 100;

impl Content {
    /// Runs until `shutdown`.
    pub async fn run_scheduler(self, every: Duration, shutdown: anp_kit::Shutdown) {
        loop {
            match self.publish_due().await {
                Ok(0) => {}
                Ok(published) => info!(published, "scheduled posts published"),
                Err(err) => warn!(error = %err, "publishing scheduled posts failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Publishes the posts whose time has come; returns how many.
    pub async fn publish_due(&self) -> Result<usize, ContentError> {
        let due: Vec<Uuid> = {
            let client = self.pool().await?;
            client
                .query(
                    "SELECT post_id FROM posts WHERE status = 'scheduled' AND publish_at <= now() \
                     ORDER BY publish_at LIMIT $1",
                    &[&BATCH],
                )
                .await
                .map_err(anp_eventstore::StoreError::from)?
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        let mut published = 0;
        for post_id in due {
            if self.publish_one(post_id).await? {
                published += 1;
            }
        }
        Ok(published)
    }

    async fn publish_one(&self, post_id: Uuid) -> Result<bool, ContentError> {
        let mut client = self.pool().await?;
        let tx = client
            .transaction()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        let locked = tx
            .query_opt(
                "SELECT 1 FROM posts WHERE post_id = $1 AND status = 'scheduled' \
                 AND publish_at <= now() FOR UPDATE SKIP LOCKED",
                &[&post_id],
            )
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        if locked.is_none() {
            return Ok(false); // another process has it, or it changed
        }
        let events = anp_eventstore::load_stream_in(&*tx, &stream_id(post_id)).await?;
        let Some(current) = fold(&events)? else {
            return Ok(false);
        };
        if status_of(&current.state) != "scheduled" {
            return Ok(false);
        }
        let site = self
            .sites
            .clone()
            .get_site(GetSiteRequest {
                site_id: current.state.site_id.clone(),
                ..Default::default()
            })
            .await
            .map_err(ContentError::Sites)?
            .into_inner();
        let network_status = self
            .sites
            .clone()
            .get_network(anp_proto::sites::v1::GetNetworkRequest {
                slug: site.network_slug.clone(),
            })
            .await
            .map_err(ContentError::Sites)?
            .into_inner()
            .status;
        if site.archived || network_status == NetworkStatus::Suspended as i32 {
            return Ok(false); // it waits until the site can be written again
        }
        let mut post = current.state.clone();
        post.status = "published".into();
        post.published_at = post.publish_at;
        post.updated_at = Some(anp_kit::timestamp(chrono::Utc::now()));
        post.site_slug = site.slug.clone();
        post.site_name = site.name.clone();
        let event = NewEvent::new(
            "PostPublished",
            post.network_id.parse().map_err(|_| ContentError::Corrupt {
                event_id: Uuid::nil(),
                message: "network_id".into(),
            })?,
            "scheduler",
            PostPublished {
                post: Some(post.clone()),
            }
            .encode_to_vec(),
        )
        .with_site(site.id.parse().map_err(|_| ContentError::Corrupt {
            event_id: Uuid::nil(),
            message: "site_id".into(),
        })?);
        let recorded = anp_eventstore::append_cached(
            &tx,
            &stream_id(post_id),
            ExpectedVersion::Exact(current.version),
            &[event],
        )
        .await?;
        let version = recorded.last().map_or(current.version + 1, |e| e.version);
        state::write(&tx, &post, version).await?;
        tx.commit()
            .await
            .map_err(anp_eventstore::StoreError::from)?;
        info!(%post_id, "scheduled post published");
        Ok(true)
    }
}
