//! Feeds and search.

use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::aggregator::v1::{FeedScope, GetFeedRequest, SearchRequest};
use clap::Args;

use crate::{channel, grpc_error, time};

#[derive(Args)]
pub struct FeedArgs {
    /// `<network>` or `<network>/<site>`; the umbrella when left out.
    scope: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Cursor printed at the end of a previous page.
    #[arg(long)]
    cursor: Option<String>,
    /// Every network's public posts with this tag (instead of a scope).
    #[arg(long, conflicts_with_all = ["scope", "lang"])]
    tag: Option<String>,
    /// Every network's public posts in this language (ISO 639-1).
    #[arg(long, conflicts_with = "scope")]
    lang: Option<String>,
}

#[derive(Args)]
pub struct SearchArgs {
    query: String,
    #[arg(long)]
    network: Option<String>,
    /// post, page, thread, site or event
    #[arg(long)]
    kind: Option<String>,
    /// Dated (events: starting) on or after this day, YYYY-MM-DD (UTC).
    #[arg(long)]
    from: Option<chrono::NaiveDate>,
    /// …and on or before this day.
    #[arg(long)]
    to: Option<chrono::NaiveDate>,
    /// Newest first instead of best match.
    #[arg(long)]
    newest: bool,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// One site: `<network>/<site>` (instead of --network).
    #[arg(long, conflicts_with = "network")]
    site: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// ISO 639-1 language code.
    #[arg(long)]
    lang: Option<String>,
    /// Also count the hits per network, site, kind, tag and language.
    #[arg(long)]
    facets: bool,
    /// Cursor printed at the end of a previous page.
    #[arg(long)]
    cursor: Option<String>,
}

pub async fn feed(url: &str, args: FeedArgs) -> anyhow::Result<()> {
    let scope = match args.scope.as_deref() {
        None | Some("") => FeedScope {
            tag: args.tag.unwrap_or_default(),
            lang: args.lang.unwrap_or_default(),
            ..Default::default()
        },
        Some(path) => match path.split_once('/') {
            Some((network, site)) => FeedScope {
                network_slug: network.to_owned(),
                site_slug: site.to_owned(),
                ..Default::default()
            },
            None => FeedScope {
                network_slug: path.to_owned(),
                ..Default::default()
            },
        },
    };
    let mut aggregator = AggregatorServiceClient::new(channel(url).await?);
    let page = aggregator
        .get_feed(GetFeedRequest {
            scope: Some(scope),
            cursor: args.cursor.unwrap_or_default(),
            limit: args.limit,
        })
        .await
        .map_err(grpc_error)?
        .into_inner();
    for entry in &page.entries {
        println!(
            "{}\t{}/{}\t{}\t{}",
            time(entry.published_at.as_ref()),
            entry.network_slug,
            entry.site_slug,
            entry.lang,
            entry.title
        );
    }
    if !page.next_cursor.is_empty() {
        println!("next: --cursor {}", page.next_cursor);
    }
    Ok(())
}

/// The start (UTC) of `days` after `day`.
fn day_start(day: chrono::NaiveDate, days: i64) -> prost_types::Timestamp {
    anp_kit::timestamp(
        (day + chrono::Duration::days(days))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc(),
    )
}

/// Searches as the signed-in person, if any (members also find their
/// networks' and sites' members-only documents).
pub async fn search(url: &str, args: SearchArgs) -> anyhow::Result<()> {
    let (network_slug, site_slug) = match &args.site {
        Some(site) => crate::split_site(site)?,
        None => (args.network.unwrap_or_default(), String::new()),
    };
    let mut aggregator = AggregatorServiceClient::new(channel(url).await?);
    let response = aggregator
        .search(crate::auth::maybe_session(SearchRequest {
            query: args.query,
            network_slug,
            site_slug,
            limit: args.limit,
            kind: args.kind.unwrap_or_default(),
            from: args.from.map(|day| day_start(day, 0)),
            to: args.to.map(|day| day_start(day, 1)),
            sort: if args.newest { "date" } else { "" }.into(),
            tag: args.tag.unwrap_or_default(),
            lang: args.lang.unwrap_or_default(),
            facets: args.facets,
            cursor: args.cursor.unwrap_or_default(),
        })?)
        .await
        .map_err(grpc_error)?
        .into_inner();
    let more = if response.total_is_lower_bound {
        "+"
    } else {
        ""
    };
    println!("{}{more} hits", response.total);
    for hit in response.hits {
        let members = match hit.visibility.as_str() {
            "network" => "\t(network members)",
            "site" => "\t(site members)",
            _ => "",
        };
        println!(
            "{:.2}\t{}\t{}/{}\t{}{members}",
            hit.score, hit.kind, hit.network_slug, hit.site_slug, hit.title
        );
    }
    // Counts of very many hits are estimated from a sample.
    let about = if response.facets_are_estimates {
        "≈"
    } else {
        ""
    };
    for facet in response
        .facets
        .iter()
        .filter(|facet| !facet.values.is_empty())
    {
        let values: Vec<String> = facet
            .values
            .iter()
            .map(|value| format!("{} {about}{}", value.value, value.count))
            .collect();
        println!("{}: {}", facet.field, values.join(", "));
    }
    if !response.next_cursor.is_empty() {
        println!("next: --cursor {}", response.next_cursor);
    }
    Ok(())
}

#[derive(Args)]
pub struct SocialArgs {
    /// `<network>/<site>`
    site: String,
    /// How each linked feed fares instead of its items.
    #[arg(long)]
    status: bool,
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

/// The newest items of a site's linked social feeds, or how each feed fares.
pub async fn social(url: &str, args: SocialArgs) -> anyhow::Result<()> {
    use anp_proto::content::v1::ListFeedItemsRequest;
    use anp_proto::content::v1::content_service_client::ContentServiceClient;
    let (network_slug, site_slug) = crate::split_site(&args.site)?;
    let mut content = ContentServiceClient::new(channel(url).await?);
    let request = ListFeedItemsRequest {
        network_slug,
        site_slug,
        limit: args.limit,
    };
    if args.status {
        let feeds = content
            .list_site_feeds(request)
            .await
            .map_err(grpc_error)?
            .into_inner()
            .feeds;
        for feed in &feeds {
            let state = if feed.last_error.is_empty() {
                "ok".to_owned()
            } else {
                format!("failing ({}×): {}", feed.failures, feed.last_error)
            };
            println!(
                "{}	{} items	polled {}	{state}",
                feed.url,
                feed.items,
                time(feed.last_polled_at.as_ref())
            );
        }
        return Ok(());
    }
    let items = content
        .list_feed_items(request)
        .await
        .map_err(grpc_error)?
        .into_inner()
        .items;
    for item in &items {
        println!(
            "{}	{}	{}",
            time(item.published_at.as_ref()),
            item.title,
            item.link
        );
    }
    Ok(())
}

pub async fn projections(url: &str) -> anyhow::Result<()> {
    let mut aggregator = AggregatorServiceClient::new(channel(url).await?);
    let status = aggregator
        .projection_status(anp_proto::aggregator::v1::ProjectionStatusRequest {})
        .await
        .map_err(grpc_error)?
        .into_inner();
    println!(
        "bus\tlast event {}\nfeeds\tevent {}\nsearch\tevent {}, {} bytes, {} segments",
        status.stream_last_seq,
        status.feeds_seq,
        status.index_seq,
        status.index_bytes,
        status.index_segments
    );
    println!(
        "lag\t{} events, {:.3} s\nconsumer\t{} pending, {} unacknowledged",
        status.lag_events, status.lag_seconds, status.consumer_pending, status.consumer_ack_pending
    );
    println!("parked\t{}", status.parked_events);
    for parked in &status.recently_parked {
        println!(
            "  {}\t{}\t{}\t{}",
            parked.seq,
            crate::time(parked.parked_at.as_ref()),
            parked.subject,
            parked.error
        );
    }
    Ok(())
}
