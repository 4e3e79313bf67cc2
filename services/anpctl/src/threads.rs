//! Discussions: threads of a site or of a network's board, replies,
//! moderation and reports.

use anp_proto::content::v1::content_service_client::ContentServiceClient;
use anp_proto::content::v1::*;
use clap::Subcommand;

use crate::{auth, channel, grpc_error, read_body, time};

#[derive(Subcommand)]
pub enum ThreadCommand {
    /// Start a thread in a site (`<network>/<site>`) or a network's board
    /// (`<network>`); members-only unless --public.
    Start {
        place: String,
        #[arg(long)]
        title: String,
        /// Markdown; `-` reads it from standard input.
        #[arg(long)]
        body: String,
        #[arg(long)]
        public: bool,
    },
    /// Reply to a thread.
    Reply {
        thread_id: String,
        #[arg(long)]
        body: String,
    },
    /// Threads of a site or a board, most recently active first.
    List { place: String },
    /// A thread with its replies.
    Get { thread_id: String },
    /// Moderators: hide, unhide, lock or unlock a thread.
    Moderate {
        thread_id: String,
        /// hide, unhide, lock or unlock
        action: String,
    },
    /// Moderators: hide or unhide a reply.
    ModerateReply {
        reply_id: String,
        /// hide or unhide
        action: String,
    },
    /// Ask the moderators to look at a thread (or one of its replies).
    Report {
        thread_id: String,
        #[arg(long, default_value = "")]
        reply: String,
        #[arg(long)]
        reason: String,
    },
    /// Moderators: the reports of a site or a board.
    Reports { place: String },
}

/// `<network>` (its board) or `<network>/<site>`.
fn place(place: &str) -> (String, String) {
    match place.split_once('/') {
        Some((network, site)) => (network.to_owned(), site.to_owned()),
        None => (place.to_owned(), String::new()),
    }
}

fn print_thread(thread: &Thread) {
    let flags = [(thread.locked, " locked"), (thread.hidden, " hidden")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, flag)| *flag)
        .collect::<String>();
    println!(
        "{}\t{}\t{} replies\t{}{flags}\t{}",
        thread.id,
        time(thread.updated_at.as_ref()),
        thread.replies,
        thread.visibility,
        thread.title
    );
}

pub async fn thread(url: &str, command: ThreadCommand) -> anyhow::Result<()> {
    let mut content = ContentServiceClient::new(channel(url).await?);
    match command {
        ThreadCommand::Start {
            place: at,
            title,
            body,
            public,
        } => {
            let (network_slug, site_slug) = place(&at);
            let thread = content
                .start_thread(auth::session(StartThreadRequest {
                    network_slug,
                    site_slug,
                    title,
                    body_markdown: read_body(body)?,
                    visibility: if public { "public" } else { "members" }.into(),
                    lang: String::new(),
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_thread(&thread);
        }
        ThreadCommand::Reply { thread_id, body } => {
            let reply = content
                .reply(auth::session(ReplyRequest {
                    thread_id,
                    body_markdown: read_body(body)?,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("{}\t{}", reply.id, time(reply.created_at.as_ref()));
        }
        ThreadCommand::List { place: at } => {
            let (network_slug, site_slug) = place(&at);
            let threads = content
                .list_threads(auth::maybe_session(ListThreadsRequest {
                    network_slug,
                    site_slug,
                    ..Default::default()
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            for thread in &threads.threads {
                print_thread(thread);
            }
        }
        ThreadCommand::Get { thread_id } => {
            let found = content
                .get_thread(auth::maybe_session(GetThreadRequest {
                    thread_id,
                    ..Default::default()
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            let thread = found.thread.unwrap_or_default();
            print_thread(&thread);
            println!("\n{}\n", thread.body_markdown);
            for reply in &found.replies {
                let body = if reply.hidden && reply.body_markdown.is_empty() {
                    "(hidden by the moderators)"
                } else {
                    reply.body_markdown.as_str()
                };
                println!(
                    "— {} {}\n{body}\n",
                    reply.id,
                    time(reply.created_at.as_ref())
                );
            }
        }
        ThreadCommand::Moderate { thread_id, action } => {
            let thread = content
                .moderate_thread(auth::session(ModerateThreadRequest { thread_id, action })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            print_thread(&thread);
        }
        ThreadCommand::ModerateReply { reply_id, action } => {
            let reply = content
                .moderate_reply(auth::session(ModerateReplyRequest { reply_id, action })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("{}\thidden: {}", reply.id, reply.hidden);
        }
        ThreadCommand::Report {
            thread_id,
            reply,
            reason,
        } => {
            let report = content
                .report(auth::session(ReportRequest {
                    thread_id,
                    reply_id: reply,
                    reason,
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            println!("reported: {}", report.report_id);
        }
        ThreadCommand::Reports { place: at } => {
            let (network_slug, site_slug) = place(&at);
            let reports = content
                .list_reports(auth::session(ListThreadsRequest {
                    network_slug,
                    site_slug,
                    ..Default::default()
                })?)
                .await
                .map_err(grpc_error)?
                .into_inner();
            for report in &reports.reports {
                println!(
                    "{}\t{}\tthread {}\t{}\t{}",
                    report.id,
                    time(report.at.as_ref()),
                    report.thread_id,
                    if report.reply_id.is_empty() {
                        "-"
                    } else {
                        &report.reply_id
                    },
                    report.reason
                );
            }
        }
    }
    Ok(())
}
