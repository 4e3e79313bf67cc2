//! Nothing lost: SIGKILL the aggregator, or the relay, in the middle of
//! 1,000 writes; after a restart every acknowledged post is in the feeds and
//! in the search index exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anp_proto::aggregator::v1::SearchRequest;
use anp_proto::content::v1::PublishPostRequest;
use tokio::sync::Mutex;

use crate::flow::{create_site, feed_ids, onboard};
use crate::harness::{Options, Process, Stack, eventually, process_env, with_token};

const POSTS: usize = 1000;
const WRITERS: usize = 8;

/// Publishes `POSTS` posts from `WRITERS` tasks; returns the acknowledged ids.
/// `acked` counts acknowledged posts as they come.
async fn write_posts(stack: &Stack, acked: Arc<AtomicUsize>) -> Vec<String> {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let token = stack.admin("crash");
    for writer in 0..WRITERS {
        let mut content = stack.content();
        let token = token.clone();
        let ids = ids.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for n in (writer..POSTS).step_by(WRITERS) {
                let post = content
                    .publish_post(with_token(
                        PublishPostRequest {
                            network_slug: "crash".into(),
                            site_slug: "site".into(),
                            title: format!("Zebra report {n}"),
                            body_markdown: "Nothing is lost.".into(),
                            lang: "en".into(),
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await
                    .expect("publish")
                    .into_inner();
                ids.lock().await.push(post.id);
                acked.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    ids.lock().await.clone()
}

async fn wait_for_count(acked: &AtomicUsize, count: usize) {
    eventually(
        Duration::from_secs(120),
        &format!("{count} acknowledged writes"),
        || async { (acked.load(Ordering::SeqCst) >= count).then_some(()) },
    )
    .await;
}

async fn assert_all_exactly_once(stack: &Stack, ids: &[String]) {
    let expected: HashSet<&String> = ids.iter().collect();
    assert_eq!(expected.len(), POSTS);
    for (network, site) in [("", ""), ("crash", ""), ("crash", "site")] {
        let feed = eventually(
            Duration::from_secs(120),
            &format!("all posts in feed {network}/{site}"),
            || async {
                let feed = feed_ids(stack, network, site).await;
                (feed.len() >= POSTS).then_some(feed)
            },
        )
        .await;
        assert_eq!(feed.len(), POSTS, "each post once in feed {network}/{site}");
        let unique: HashSet<&String> = feed.iter().collect();
        assert_eq!(
            unique, expected,
            "feed {network}/{site} holds exactly the acknowledged posts"
        );
    }
    let total = eventually(
        Duration::from_secs(120),
        "all posts in the index",
        || async {
            let response = stack
                .aggregator()
                .search(SearchRequest {
                    query: "zebra".into(),
                    network_slug: "crash".into(),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (response.total as usize >= POSTS).then_some(response.total)
        },
    )
    .await;
    assert_eq!(total as usize, POSTS, "each post once in the index");
}

/// The environment of an aggregator process serving the stack's address
/// with the stack's index.
fn aggregator_env(stack: &Stack) -> Vec<(&'static str, String)> {
    let mut env = process_env(&stack.infra);
    env.push((
        "ANP_INDEX_DIR",
        stack.index_dir.path().display().to_string(),
    ));
    env.push(("ANP_AGGREGATOR_LISTEN", stack.aggregator_addr.clone()));
    env.push(("ANP_SITES_URL", format!("http://{}", stack.sites_addr)));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aggregator_killed_mid_writes_loses_nothing() {
    let stack = Stack::start_with(Options {
        aggregator: false,
        content_relay: true,
    })
    .await;
    onboard(&stack, "crash", "Crash").await;
    create_site(&stack, "crash", "site", "Site").await;
    let env = aggregator_env(&stack);
    let mut aggregator = Process::spawn("anp-aggregator", &env);

    let acked = Arc::new(AtomicUsize::new(0));
    let writes = write_posts(&stack, acked.clone());
    let killer = async {
        wait_for_count(&acked, 300).await;
        aggregator.kill();
        wait_for_count(&acked, 600).await;
        aggregator = Process::spawn("anp-aggregator", &env);
        wait_for_count(&acked, 800).await;
        aggregator.kill();
        aggregator = Process::spawn("anp-aggregator", &env);
    };
    let (ids, ()) = tokio::join!(writes, killer);
    assert_all_exactly_once(&stack, &ids).await;
    drop(aggregator);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_killed_mid_writes_loses_nothing() {
    let stack = Stack::start_with(Options {
        aggregator: true,
        content_relay: false,
    })
    .await;
    onboard(&stack, "crash", "Crash").await;
    create_site(&stack, "crash", "site", "Site").await;
    let mut env = process_env(&stack.infra);
    env.push(("ANP_RELAY_SERVICE", "content".to_owned()));
    let mut relay = Process::spawn("anp-relay", &env);

    let acked = Arc::new(AtomicUsize::new(0));
    let writes = write_posts(&stack, acked.clone());
    let killer = async {
        wait_for_count(&acked, 250).await;
        relay.kill();
        wait_for_count(&acked, 500).await;
        relay = Process::spawn("anp-relay", &env);
        wait_for_count(&acked, 750).await;
        relay.kill();
        relay = Process::spawn("anp-relay", &env);
    };
    let (ids, ()) = tokio::join!(writes, killer);
    assert_all_exactly_once(&stack, &ids).await;
    drop(relay);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_index_of_another_version_is_rebuilt_from_the_bus() {
    let stack = Stack::start_with(Options {
        aggregator: false,
        content_relay: true,
    })
    .await;
    onboard(&stack, "rebuild", "Rebuild").await;
    create_site(&stack, "rebuild", "site", "Site").await;
    let env = aggregator_env(&stack);
    let mut aggregator = Process::spawn("anp-aggregator", &env);
    let mut ids = Vec::new();
    for title in ["Assembly", "Potluck", "Rally"] {
        ids.push(
            crate::flow::publish(&stack, "rebuild", "site", title, "rebuilt words", "en").await,
        );
    }
    let searched = |stack: &Stack| {
        let mut aggregator = stack.aggregator();
        async move {
            aggregator
                .search(SearchRequest {
                    query: "rebuilt".into(),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .ok()
                .map(|response| response.into_inner().total)
        }
    };
    eventually(
        Duration::from_secs(30),
        "three posts searchable",
        || async { (searched(&stack).await == Some(3)).then_some(()) },
    )
    .await;
    aggregator.kill();

    // An index written by another version (another schema) is left behind.
    let dir = stack.index_dir.path();
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let mut builder = tantivy::schema::Schema::builder();
    builder.add_text_field("title", tantivy::schema::TEXT);
    tantivy::Index::create_in_dir(dir, builder.build()).unwrap();

    let aggregator = Process::spawn("anp-aggregator", &env);
    eventually(
        Duration::from_secs(30),
        "the index rebuilt from the bus",
        || async { (searched(&stack).await == Some(3)).then_some(()) },
    )
    .await;
    // The feeds saw every event again and still hold each post once.
    let mut feed = feed_ids(&stack, "rebuild", "site").await;
    feed.sort();
    ids.sort();
    assert_eq!(feed, ids);
    drop(aggregator);
    stack.stop().await;
}
