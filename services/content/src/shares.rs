//! Publish once, appear everywhere: a public post appears in other sites
//! (of any network) with the consent of their editors. One source: the post
//! stays in its own stream and site; edits and retraction reach every place
//! it appears.

use anp_eventstore::ExpectedVersion;
use anp_kit::{Caller, check_slug};
use anp_proto::content::v1::{
    DecideShareRequest, ListPostsResponse, ListShareRequestsRequest, Post, SharePostRequest,
};
use anp_proto::events::v1::{
    PostShare, PostShareDecided, PostShareRequested, PostState, PostUnshared,
};
use anp_proto::sites::v1::{Access, Role, Scope};
use prost::Message;
use uuid::Uuid;

use crate::posts::{PostAggregate, parse_post_id, status_of, to_post, visibility_of};
use crate::{Content, ContentError};

fn role(access: &Access) -> Role {
    Role::try_from(access.role).unwrap_or(Role::Unspecified)
}

fn scope(network_slug: &str, site_slug: &str) -> Result<Scope, ContentError> {
    check_slug("network_slug", network_slug).map_err(ContentError::Invalid)?;
    check_slug("site_slug", site_slug).map_err(ContentError::Invalid)?;
    Ok(Scope {
        network_slug: network_slug.to_owned(),
        site_slug: site_slug.to_owned(),
        site_id: String::new(),
    })
}

fn denied(message: &str) -> ContentError {
    ContentError::Denied(format!("permission: {message}"))
}

/// Both sides of a share: the post's own site and the other one.
struct Sides {
    post: PostAggregate,
    source: Access,
    target: Access,
    target_site_id: String,
}

impl Content {
    async fn sides(
        &self,
        post_id: &str,
        network_slug: &str,
        site_slug: &str,
        token: &str,
    ) -> Result<Sides, ContentError> {
        let id = parse_post_id(post_id)?;
        let target_scope = scope(network_slug, site_slug)?;
        let post = self.load(id).await?;
        let source = self
            .access(
                Some(token),
                Scope {
                    site_id: post.state.site_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let target = self.access(Some(token), target_scope).await?;
        let target_site_id = target.site.clone().unwrap_or_default().id;
        if target_site_id == post.state.site_id {
            return Err(ContentError::Invalid(
                "site_slug: that is the post's own site".into(),
            ));
        }
        Ok(Sides {
            post,
            source,
            target,
            target_site_id,
        })
    }

    /// Saves the post with its shares changed, as `event_type`.
    async fn save_share(
        &self,
        event_type: &str,
        current: &PostAggregate,
        state: PostState,
        site_id: &str,
        accepted: bool,
        caller: &Caller,
    ) -> Result<Post, ContentError> {
        let post = Some(state.clone());
        let site_id = site_id.to_owned();
        let payload = match event_type {
            "PostShareRequested" => PostShareRequested { post, site_id }.encode_to_vec(),
            "PostUnshared" => PostUnshared { post, site_id }.encode_to_vec(),
            _ => PostShareDecided {
                post,
                site_id,
                accepted,
            }
            .encode_to_vec(),
        };
        let saved = self
            .save_encoded(
                event_type,
                payload,
                &state,
                ExpectedVersion::Exact(current.version),
                caller,
            )
            .await?;
        Ok(to_post(&saved))
    }

    /// Offers a post to a site (an editor of the post's site: the target's
    /// editors decide), or takes it in (an editor of the target: at once).
    pub async fn share_post(
        &self,
        request: &SharePostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let sides = self
            .sides(
                &request.post_id,
                &request.network_slug,
                &request.site_slug,
                token,
            )
            .await?;
        let state = &sides.post.state;
        if status_of(state) != "published" || visibility_of(state) != "public" {
            return Err(ContentError::Precondition(
                "post_id: only a public, published post can appear in other sites".into(),
            ));
        }
        let from_target = role(&sides.target) >= Role::Editor;
        if role(&sides.source) < Role::Editor && !from_target {
            return Err(denied(
                "sharing needs the editor role in the post's site or in the other site",
            ));
        }
        if !sides.source.writable || !sides.target.writable {
            return Err(ContentError::Precondition(
                "site_slug: a suspended network or an archived site takes no shares".into(),
            ));
        }
        let mut next = state.clone();
        let existing = next
            .shares
            .iter()
            .position(|share| share.site_id == sides.target_site_id);
        match existing {
            Some(at) if next.shares[at].status == "accepted" => {
                return Ok(to_post(&sides.post));
            }
            Some(_) if !from_target => {
                return Ok(to_post(&sides.post)); // offered already
            }
            Some(at) => {
                next.shares[at].status = "accepted".into();
                next.shares[at].decided_by = caller.actor.clone();
            }
            None => {
                let site = sides.target.site.clone().unwrap_or_default();
                next.shares.push(PostShare {
                    site_id: site.id.clone(),
                    network_id: site.network_id.clone(),
                    network_slug: site.network_slug.clone(),
                    site_slug: site.slug.clone(),
                    site_name: site.name.clone(),
                    status: if from_target { "accepted" } else { "pending" }.into(),
                    requested_by: caller.actor.clone(),
                    decided_by: if from_target {
                        caller.actor.clone()
                    } else {
                        String::new()
                    },
                });
            }
        }
        let accepted = next
            .shares
            .iter()
            .any(|share| share.site_id == sides.target_site_id && share.status == "accepted");
        let event_type = if accepted {
            "PostShareDecided"
        } else {
            "PostShareRequested"
        };
        self.save_share(
            event_type,
            &sides.post,
            next,
            &sides.target_site_id,
            accepted,
            &caller,
        )
        .await
    }

    /// The target's editors accept or decline an offer.
    pub async fn decide_share(
        &self,
        request: &DecideShareRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let sides = self
            .sides(
                &request.post_id,
                &request.network_slug,
                &request.site_slug,
                token,
            )
            .await?;
        if role(&sides.target) < Role::Editor {
            return Err(denied(
                "deciding needs the editor role in the site offered to",
            ));
        }
        let mut next = sides.post.state.clone();
        let Some(at) = next
            .shares
            .iter()
            .position(|share| share.site_id == sides.target_site_id && share.status == "pending")
        else {
            return Err(ContentError::Precondition(format!(
                "post_id: post {} is not offered to {}/{}",
                request.post_id, request.network_slug, request.site_slug
            )));
        };
        if request.accept {
            next.shares[at].status = "accepted".into();
            next.shares[at].decided_by = caller.actor.clone();
        } else {
            next.shares.remove(at);
        }
        self.save_share(
            "PostShareDecided",
            &sides.post,
            next,
            &sides.target_site_id,
            request.accept,
            &caller,
        )
        .await
    }

    /// The post leaves a site it was offered to or appears in.
    pub async fn unshare_post(
        &self,
        request: &SharePostRequest,
        caller: Caller,
        token: &str,
    ) -> Result<Post, ContentError> {
        let sides = self
            .sides(
                &request.post_id,
                &request.network_slug,
                &request.site_slug,
                token,
            )
            .await?;
        if role(&sides.source) < Role::Editor && role(&sides.target) < Role::Editor {
            return Err(denied(
                "withdrawing needs the editor role in the post's site or in the other site",
            ));
        }
        let mut next = sides.post.state.clone();
        let before = next.shares.len();
        next.shares
            .retain(|share| share.site_id != sides.target_site_id);
        if next.shares.len() == before {
            return Ok(to_post(&sides.post));
        }
        self.save_share(
            "PostUnshared",
            &sides.post,
            next,
            &sides.target_site_id,
            false,
            &caller,
        )
        .await
    }

    /// Posts offered to a site, for its editors to decide.
    pub async fn list_share_requests(
        &self,
        request: &ListShareRequestsRequest,
        token: &str,
    ) -> Result<ListPostsResponse, ContentError> {
        let access = self
            .access(
                Some(token),
                scope(&request.network_slug, &request.site_slug)?,
            )
            .await?;
        if role(&access) < Role::Editor {
            return Err(denied("offers are for the site's editors"));
        }
        let site_id: Uuid = access
            .site
            .unwrap_or_default()
            .id
            .parse()
            .map_err(|_| ContentError::Sites(tonic::Status::internal("bad site id")))?;
        let ids: Vec<Uuid> = {
            let client = self.pool().await?;
            client
                .query(
                    "SELECT post_id FROM post_shares WHERE site_id = $1 AND status = 'pending' \
                     ORDER BY post_id DESC LIMIT 100",
                    &[&site_id],
                )
                .await
                .map_err(anp_eventstore::StoreError::from)?
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        let mut posts = Vec::with_capacity(ids.len());
        for id in ids {
            posts.push(to_post(&self.load(id).await?));
        }
        Ok(ListPostsResponse {
            posts,
            next_cursor: String::new(),
        })
    }
}
