//! tonic adapter for [`crate::Content`].

use anp_kit::{Caller, SecretToken, ServiceError, require_bearer};
use anp_proto::content::v1::content_service_server::{ContentService, ContentServiceServer};
use anp_proto::content::v1::{EditPostRequest, GetPostRequest, Post, PublishPostRequest};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::Content;

/// Largest request accepted on the wire; fields have their own, smaller limits.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub fn routes(content: Content, ops_token: SecretToken) -> Routes {
    Routes::new(
        ContentServiceServer::new(Api { content, ops_token })
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
}

#[derive(Clone)]
struct Api {
    content: Content,
    ops_token: SecretToken,
}

const EDITOR: &str = "operator";

#[tonic::async_trait]
impl ContentService for Api {
    async fn publish_post(
        &self,
        request: Request<PublishPostRequest>,
    ) -> Result<Response<Post>, Status> {
        require_bearer(&request, &self.ops_token)?;
        let caller = Caller::of(&request, EDITOR);
        let post = self
            .content
            .publish_post(request.get_ref(), caller)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn edit_post(&self, request: Request<EditPostRequest>) -> Result<Response<Post>, Status> {
        require_bearer(&request, &self.ops_token)?;
        let caller = Caller::of(&request, EDITOR);
        let post = self
            .content
            .edit_post(request.get_ref(), caller)
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
