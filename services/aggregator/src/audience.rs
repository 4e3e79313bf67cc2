//! Who may read a search hit. Every document carries its audience tokens; a
//! search only matches documents whose tokens meet the caller's. The caller's
//! tokens come from the sites service, which owns memberships and roles.
//!
//! - `public`: everybody, signed in or not;
//! - `m:<network id>`: members of the network (any of its sites);
//! - `r:<network or site id>`: readers of members-only documents there — a
//!   network-wide membership, or a membership of the site or an ancestor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anp_proto::sites::v1::WhoAmIRequest;
use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
use tonic::Status;
use tonic::transport::Channel;

pub const PUBLIC: &str = "public";
/// How long a caller's audiences are reused: a member who leaves stops
/// seeing members-only hits at most this long after.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

/// The audience tokens of a document: `visibility` is `public` (or empty),
/// `network` (members of the network) or `site` (members of the site).
pub fn of_document(visibility: &str, network_id: &str, site_id: &str) -> Vec<String> {
    match visibility {
        "" | "public" => vec![PUBLIC.to_owned()],
        "network" => vec![format!("m:{network_id}")],
        _ => vec![format!("r:{network_id}"), format!("r:{site_id}")],
    }
}

/// A caller's tokens and when they were asked for.
type Cached = (Instant, Arc<Vec<String>>);

/// The callers' tokens, cached briefly per session token.
#[derive(Clone)]
pub struct Audiences {
    sites: Option<SitesServiceClient<Channel>>,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl Audiences {
    /// `sites_url` empty: nobody is recognised, every search is public.
    pub fn new(sites_url: &str) -> Result<Self, crate::AggregatorError> {
        let sites = if sites_url.is_empty() {
            None
        } else {
            let endpoint = Channel::from_shared(sites_url.to_owned()).map_err(|err| {
                crate::AggregatorError::Invalid(format!("ANP_SITES_URL: {sites_url:?}: {err}"))
            })?;
            Some(SitesServiceClient::new(endpoint.connect_lazy()))
        };
        Ok(Audiences {
            sites,
            cache: Arc::default(),
        })
    }

    /// The tokens of whoever presents `token` (none: the public). A token
    /// the sites service refuses is UNAUTHENTICATED.
    pub async fn of_caller(&self, token: Option<&str>) -> Result<Arc<Vec<String>>, Status> {
        let public = || Arc::new(vec![PUBLIC.to_owned()]);
        let (Some(token), Some(sites)) = (token.filter(|t| !t.is_empty()), &self.sites) else {
            return Ok(public());
        };
        if let Ok(cache) = self.cache.lock()
            && let Some((at, tokens)) = cache.get(token)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(tokens.clone());
        }
        let mut request = tonic::Request::new(WhoAmIRequest {});
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::unauthenticated("authorization: not a valid header value"))?;
        request.metadata_mut().insert("authorization", value);
        let who = sites
            .clone()
            .who_am_i(request)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => status,
                _ => Status::unavailable(format!("sites: {}", status.message())),
            })?
            .into_inner();
        let mut tokens = vec![PUBLIC.to_owned()];
        tokens.extend(who.member_network_ids.iter().map(|id| format!("m:{id}")));
        tokens.extend(who.reader_scope_ids.iter().map(|id| format!("r:{id}")));
        let tokens = Arc::new(tokens);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), (Instant::now(), tokens.clone()));
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_their_readers() {
        assert_eq!(of_document("", "n", "s"), vec!["public"]);
        assert_eq!(of_document("network", "n", "s"), vec!["m:n"]);
        assert_eq!(of_document("site", "n", "s"), vec!["r:n", "r:s"]);
    }
}
