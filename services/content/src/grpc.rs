//! tonic adapter for [`crate::Content`].

use anp_kit::{Caller, ServiceError};
use anp_proto::content::v1::content_service_server::{ContentService, ContentServiceServer};
use anp_proto::content::v1::{EditPostRequest, GetPostRequest, Post, PublishPostRequest};
use anp_session::Verifier;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::Content;

/// Largest request accepted on the wire; fields have their own, smaller limits.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub fn routes(content: Content, sessions: Verifier) -> Routes {
    Routes::new(
        ContentServiceServer::new(Api { content, sessions })
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
}

#[derive(Clone)]
struct Api {
    content: Content,
    sessions: Verifier,
}

impl Api {
    /// The signed-in caller (the session's account is the actor) and the
    /// token to ask the sites service with.
    fn caller<T>(&self, request: &Request<T>) -> Result<(Caller, String), Status> {
        let session = self.sessions.session_of(request)?;
        let token = anp_session::bearer(request).unwrap_or_default().to_owned();
        Ok((Caller::of(request, &session.account_id.to_string()), token))
    }
}

#[tonic::async_trait]
impl ContentService for Api {
    async fn publish_post(
        &self,
        request: Request<PublishPostRequest>,
    ) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .publish_post(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn edit_post(&self, request: Request<EditPostRequest>) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .edit_post(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn get_post(&self, request: Request<GetPostRequest>) -> Result<Response<Post>, Status> {
        let post = self
            .content
            .get_post(&request.into_inner().post_id)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }
}
