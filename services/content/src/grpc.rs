//! tonic adapter for [`crate::Content`].

use anp_kit::{Caller, ServiceError};
use anp_proto::content::v1::content_service_server::{ContentService, ContentServiceServer};
use anp_proto::content::v1::*;
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

    /// The token of a read, if the reader signed in (checked here first, so
    /// a bad token is UNAUTHENTICATED rather than "not found").
    fn reader<T>(&self, request: &Request<T>) -> Result<Option<String>, Status> {
        match anp_session::bearer(request) {
            None => Ok(None),
            Some(token) => {
                self.sessions.session_of(request)?;
                Ok(Some(token.to_owned()))
            }
        }
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

    async fn publish_draft(
        &self,
        request: Request<PublishDraftRequest>,
    ) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .publish_draft(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn retract_post(
        &self,
        request: Request<RetractPostRequest>,
    ) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .retract_post(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn get_post(&self, request: Request<GetPostRequest>) -> Result<Response<Post>, Status> {
        let token = self.reader(&request)?;
        let post = self
            .content
            .get_post(&request.get_ref().post_id, token.as_deref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn get_post_history(
        &self,
        request: Request<GetPostHistoryRequest>,
    ) -> Result<Response<PostHistory>, Status> {
        let (_, token) = self.caller(&request)?;
        let history = self
            .content
            .post_history(&request.get_ref().post_id, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(history))
    }

    async fn list_posts(
        &self,
        request: Request<ListPostsRequest>,
    ) -> Result<Response<ListPostsResponse>, Status> {
        let token = self.reader(&request)?;
        let posts = self
            .content
            .list_posts(request.get_ref(), token.as_deref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(posts))
    }

    async fn create_page(
        &self,
        request: Request<CreatePageRequest>,
    ) -> Result<Response<Page>, Status> {
        let (caller, token) = self.caller(&request)?;
        let page = self
            .content
            .create_page(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(page))
    }

    async fn edit_page(&self, request: Request<EditPageRequest>) -> Result<Response<Page>, Status> {
        let (caller, token) = self.caller(&request)?;
        let page = self
            .content
            .edit_page(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(page))
    }

    async fn delete_page(
        &self,
        request: Request<DeletePageRequest>,
    ) -> Result<Response<Page>, Status> {
        let (caller, token) = self.caller(&request)?;
        let page = self
            .content
            .delete_page(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(page))
    }

    async fn get_page(&self, request: Request<GetPageRequest>) -> Result<Response<Page>, Status> {
        let page = self
            .content
            .get_page(request.get_ref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(page))
    }

    async fn list_pages(
        &self,
        request: Request<ListPagesRequest>,
    ) -> Result<Response<ListPagesResponse>, Status> {
        let pages = self
            .content
            .list_pages(request.get_ref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(pages))
    }

    async fn reorder_pages(
        &self,
        request: Request<ReorderPagesRequest>,
    ) -> Result<Response<ListPagesResponse>, Status> {
        let (caller, token) = self.caller(&request)?;
        let pages = self
            .content
            .reorder_pages(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(pages))
    }

    async fn share_post(
        &self,
        request: Request<SharePostRequest>,
    ) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .share_post(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn decide_share(
        &self,
        request: Request<DecideShareRequest>,
    ) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .decide_share(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn unshare_post(
        &self,
        request: Request<SharePostRequest>,
    ) -> Result<Response<Post>, Status> {
        let (caller, token) = self.caller(&request)?;
        let post = self
            .content
            .unshare_post(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(post))
    }

    async fn list_share_requests(
        &self,
        request: Request<ListShareRequestsRequest>,
    ) -> Result<Response<ListPostsResponse>, Status> {
        let (_, token) = self.caller(&request)?;
        let posts = self
            .content
            .list_share_requests(request.get_ref(), &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(posts))
    }

    async fn start_thread(
        &self,
        request: Request<StartThreadRequest>,
    ) -> Result<Response<Thread>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .start_thread(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn reply(&self, request: Request<ReplyRequest>) -> Result<Response<ThreadReply>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .reply(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn edit_thread(
        &self,
        request: Request<EditThreadRequest>,
    ) -> Result<Response<Thread>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .edit_thread(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn edit_reply(
        &self,
        request: Request<EditReplyRequest>,
    ) -> Result<Response<ThreadReply>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .edit_reply(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn moderate_thread(
        &self,
        request: Request<ModerateThreadRequest>,
    ) -> Result<Response<Thread>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .moderate_thread(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn moderate_reply(
        &self,
        request: Request<ModerateReplyRequest>,
    ) -> Result<Response<ThreadReply>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .moderate_reply(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn report(
        &self,
        request: Request<ReportRequest>,
    ) -> Result<Response<ReportResponse>, Status> {
        let (caller, token) = self.caller(&request)?;
        let reply = self
            .content
            .report(request.get_ref(), caller, &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reply))
    }

    async fn list_reports(
        &self,
        request: Request<ListThreadsRequest>,
    ) -> Result<Response<ListReportsResponse>, Status> {
        let (_, token) = self.caller(&request)?;
        let reports = self
            .content
            .list_reports(request.get_ref(), &token)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(reports))
    }

    async fn list_threads(
        &self,
        request: Request<ListThreadsRequest>,
    ) -> Result<Response<ListThreadsResponse>, Status> {
        let token = self.reader(&request)?;
        let threads = self
            .content
            .list_threads(request.get_ref(), token.as_deref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(threads))
    }

    async fn get_thread(
        &self,
        request: Request<GetThreadRequest>,
    ) -> Result<Response<ThreadWithReplies>, Status> {
        let token = self.reader(&request)?;
        let thread = self
            .content
            .get_thread(request.get_ref(), token.as_deref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(thread))
    }

    async fn list_feed_items(
        &self,
        request: Request<ListFeedItemsRequest>,
    ) -> Result<Response<ListFeedItemsResponse>, Status> {
        let items = self
            .content
            .list_feed_items(request.get_ref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(items))
    }

    async fn list_site_feeds(
        &self,
        request: Request<ListFeedItemsRequest>,
    ) -> Result<Response<ListSiteFeedsResponse>, Status> {
        let feeds = self
            .content
            .list_site_feeds(request.get_ref())
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(feeds))
    }
}
