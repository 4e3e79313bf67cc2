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

    /// A write: the signed-in caller and their token go to `call`.
    async fn write<T, R, Fut>(
        &self,
        request: Request<T>,
        call: impl FnOnce(Content, T, Caller, String) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: std::future::Future<Output = Result<R, crate::ContentError>>,
    {
        let (caller, token) = self.caller(&request)?;
        call(self.content.clone(), request.into_inner(), caller, token)
            .await
            .map(Response::new)
            .map_err(|err| err.to_status())
    }

    /// A read: the reader's token, if they signed in, goes to `call`.
    async fn read<T, R, Fut>(
        &self,
        request: Request<T>,
        call: impl FnOnce(Content, T, Option<String>) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: std::future::Future<Output = Result<R, crate::ContentError>>,
    {
        let token = self.reader(&request)?;
        call(self.content.clone(), request.into_inner(), token)
            .await
            .map(Response::new)
            .map_err(|err| err.to_status())
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
        self.write(request, |content, r, caller, token| async move {
            content.publish_post(&r, caller, &token).await
        })
        .await
    }

    async fn edit_post(&self, request: Request<EditPostRequest>) -> Result<Response<Post>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.edit_post(&r, caller, &token).await
        })
        .await
    }

    async fn publish_draft(
        &self,
        request: Request<PublishDraftRequest>,
    ) -> Result<Response<Post>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.publish_draft(&r, caller, &token).await
        })
        .await
    }

    async fn retract_post(
        &self,
        request: Request<RetractPostRequest>,
    ) -> Result<Response<Post>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.retract_post(&r, caller, &token).await
        })
        .await
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
        self.read(request, |content, r, token| async move {
            content.list_posts(&r, token.as_deref()).await
        })
        .await
    }

    async fn create_page(
        &self,
        request: Request<CreatePageRequest>,
    ) -> Result<Response<Page>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.create_page(&r, caller, &token).await
        })
        .await
    }

    async fn edit_page(&self, request: Request<EditPageRequest>) -> Result<Response<Page>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.edit_page(&r, caller, &token).await
        })
        .await
    }

    async fn delete_page(
        &self,
        request: Request<DeletePageRequest>,
    ) -> Result<Response<Page>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.delete_page(&r, caller, &token).await
        })
        .await
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
        self.write(request, |content, r, caller, token| async move {
            content.reorder_pages(&r, caller, &token).await
        })
        .await
    }

    async fn share_post(
        &self,
        request: Request<SharePostRequest>,
    ) -> Result<Response<Post>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.share_post(&r, caller, &token).await
        })
        .await
    }

    async fn decide_share(
        &self,
        request: Request<DecideShareRequest>,
    ) -> Result<Response<Post>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.decide_share(&r, caller, &token).await
        })
        .await
    }

    async fn unshare_post(
        &self,
        request: Request<SharePostRequest>,
    ) -> Result<Response<Post>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.unshare_post(&r, caller, &token).await
        })
        .await
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
        self.write(request, |content, r, caller, token| async move {
            content.start_thread(&r, caller, &token).await
        })
        .await
    }

    async fn reply(&self, request: Request<ReplyRequest>) -> Result<Response<ThreadReply>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.reply(&r, caller, &token).await
        })
        .await
    }

    async fn edit_thread(
        &self,
        request: Request<EditThreadRequest>,
    ) -> Result<Response<Thread>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.edit_thread(&r, caller, &token).await
        })
        .await
    }

    async fn edit_reply(
        &self,
        request: Request<EditReplyRequest>,
    ) -> Result<Response<ThreadReply>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.edit_reply(&r, caller, &token).await
        })
        .await
    }

    async fn moderate_thread(
        &self,
        request: Request<ModerateThreadRequest>,
    ) -> Result<Response<Thread>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.moderate_thread(&r, caller, &token).await
        })
        .await
    }

    async fn moderate_reply(
        &self,
        request: Request<ModerateReplyRequest>,
    ) -> Result<Response<ThreadReply>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.moderate_reply(&r, caller, &token).await
        })
        .await
    }

    async fn report(
        &self,
        request: Request<ReportRequest>,
    ) -> Result<Response<ReportResponse>, Status> {
        self.write(request, |content, r, caller, token| async move {
            content.report(&r, caller, &token).await
        })
        .await
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
        self.read(request, |content, r, token| async move {
            content.list_threads(&r, token.as_deref()).await
        })
        .await
    }

    async fn get_thread(
        &self,
        request: Request<GetThreadRequest>,
    ) -> Result<Response<ThreadWithReplies>, Status> {
        self.read(request, |content, r, token| async move {
            content.get_thread(&r, token.as_deref()).await
        })
        .await
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
