//! Benchmarks of the write and read path, each printed beside a baseline
//! measured on the same machine in the same run, as a ratio.
//!
//! Run with `make bench` (PostgreSQL and NATS as for `make test`). Results
//! and how to read them: `docs/benchmarks.md`.

#[allow(dead_code)]
#[path = "../tests/harness.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anp_bus::Relay;
use anp_eventstore::{EventStore, ExpectedVersion, NewEvent};
use anp_proto::aggregator::v1::SearchRequest;
use anp_proto::content::v1::PublishPostRequest;
use anp_proto::sites::v1::CreateSiteRequest;
use async_nats::jetstream::message::PublishMessage;
use harness::{Infra, Stack, with_token};
use prost::Message;
use uuid::Uuid;

const RUN_FOR: Duration = Duration::from_secs(3);
/// Rounds per figure: plain and append alternate and the median is printed,
/// so a passing hiccup of the disk does not decide a ratio.
const ROUNDS: usize = 3;

fn event(network: Uuid) -> NewEvent {
    NewEvent::new("BenchHappened", network, "bench", vec![7u8; 200])
}

/// Runs `writers` tasks for `RUN_FOR`, each calling `op` in a loop; returns ops/s.
async fn throughput<F, Fut>(writers: usize, op: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (op, stop, count) = (op.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                op().await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(RUN_FOR).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn bench_appends(infra: &Infra) {
    println!(
        "## Event append throughput (one event per transaction, fsync on; median of {ROUNDS} alternating {RUN_FOR:?} rounds)"
    );
    println!(
        "{:>8}  {:>14}  {:>14}  {:>6}",
        "writers", "plain INSERT/s", "append/s", "ratio"
    );
    let store = EventStore::connect(&infra.database_url, "bench_append")
        .await
        .expect("store");
    let client = infra.pg().await;
    client
        // The same shape: columns, defaults, keys and indexes of `events`.
        .batch_execute(
            "CREATE TABLE bench_append.plain_events (LIKE bench_append.events INCLUDING ALL)",
        )
        .await
        .expect("plain table");
    let network = Uuid::now_v7();
    for writers in [1usize, 4, 16] {
        let mut plain_runs = Vec::new();
        let mut append_runs = Vec::new();
        for _ in 0..ROUNDS {
            plain_runs.push(plain_inserts(writers, store.pool().clone(), network).await);
            append_runs.push(appends(writers, store.clone(), network).await);
        }
        let (plain, append) = (median(plain_runs), median(append_runs));
        println!(
            "{writers:>8}  {plain:>14.0}  {append:>14.0}  {:>6.2}",
            append / plain
        );
    }
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// Plain single-row `INSERT`s into the same-shaped table; returns tx/s.
async fn plain_inserts(writers: usize, pool: deadpool_postgres::Pool, network: Uuid) -> f64 {
    throughput(writers, move || {
        let pool = pool.clone();
        async move {
            let client = pool.get().await.expect("connection");
            let statement = client
                .prepare_cached(
                    "INSERT INTO plain_events (event_id, stream_id, version, event_type, \
                     schema_version, network_id, site_id, actor, traceparent, payload) \
                     VALUES ($1, $2, 1, $3, 1, $4, NULL, $5, NULL, $6)",
                )
                .await
                .expect("prepare");
            let new = event(network);
            client
                .execute(
                    &statement,
                    &[
                        &new.event_id,
                        &format!("stream-{}", new.event_id),
                        &new.event_type,
                        &new.network_id,
                        &new.actor,
                        &new.payload,
                    ],
                )
                .await
                .expect("plain insert");
        }
    })
    .await
}

/// `EventStore::append` of one event to a new stream; returns tx/s.
async fn appends(writers: usize, store: EventStore, network: Uuid) -> f64 {
    throughput(writers, move || {
        let store = store.clone();
        async move {
            let new = event(network);
            store
                .append(
                    &format!("stream-{}", new.event_id),
                    ExpectedVersion::NoStream,
                    &[new],
                )
                .await
                .expect("append");
        }
    })
    .await
}

async fn bench_relay(infra: &Infra) {
    const EVENTS: usize = 30_000;
    println!("\n## Relay: PostgreSQL → JetStream ({EVENTS} events)");
    let store = EventStore::connect(&infra.database_url, "bench_relay")
        .await
        .expect("store");
    let network = Uuid::now_v7();
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (writer..EVENTS).step_by(16) {
                let new = event(network);
                store
                    .append(
                        &format!("s-{}", new.event_id),
                        ExpectedVersion::NoStream,
                        &[new],
                    )
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let jetstream = infra.jetstream().await;

    // Baseline: the same events, published one at a time, each ack awaited.
    let mut baseline_bus = infra.bus.clone();
    baseline_bus.stream_name = format!("{}_BASE", infra.bus.stream_name);
    baseline_bus.subject_prefix = format!("base{}", infra.bus.subject_prefix);
    anp_bus::ensure_stream(&jetstream, &baseline_bus)
        .await
        .expect("stream");
    let events = store
        .read_all_after(Default::default(), EVENTS as i64)
        .await
        .expect("read");
    assert_eq!(events.len(), EVENTS);
    let started = Instant::now();
    for recorded in &events {
        let envelope = anp_bus::envelope("bench", recorded);
        let subject = baseline_bus.subject("bench", &envelope.network_id, &envelope.event_type);
        let publish = PublishMessage::build()
            .message_id(anp_bus::message_id(recorded))
            .payload(envelope.encode_to_vec().into());
        jetstream
            .send_publish(subject, publish)
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let one_at_a_time = EVENTS as f64 / started.elapsed().as_secs_f64();

    anp_bus::ensure_stream(&jetstream, &infra.bus)
        .await
        .expect("stream");
    let relay = Relay::new("bench", store.clone(), jetstream.clone(), infra.bus.clone());
    let started = Instant::now();
    let mut published = 0;
    loop {
        let batch = relay.pump_once().await.expect("pump");
        if batch == 0 {
            break;
        }
        published += batch;
    }
    let relayed = published as f64 / started.elapsed().as_secs_f64();
    assert_eq!(published, EVENTS);
    println!("{:>28}  {:>10}", "", "events/s");
    println!(
        "{:>28}  {one_at_a_time:>10.0}",
        "baseline: one ack at a time"
    );
    println!(
        "{:>28}  {relayed:>10.0}  ratio {:.2}",
        "relay (4096 acks in flight)",
        relayed / one_at_a_time
    );
    let _ = jetstream.delete_stream(&baseline_bus.stream_name).await;
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

async fn bench_visibility() {
    const POSTS: usize = 200;
    println!("\n## Acknowledged write → visible in search ({POSTS} posts, one at a time)");
    let stack = Stack::start().await;
    stack.onboard("bench", "Bench").await;
    let token = stack.admin("bench");
    stack
        .sites()
        .create_site(with_token(
            CreateSiteRequest {
                network_slug: "bench".into(),
                slug: "site".into(),
                name: "Site".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("site");
    let mut content = stack.content();
    let mut aggregator = stack.aggregator();
    let mut acks = Vec::with_capacity(POSTS);
    let mut visible = Vec::with_capacity(POSTS);
    for number in 0..POSTS {
        let word = format!("benchword{number}x");
        let sent = Instant::now();
        content
            .publish_post(with_token(
                PublishPostRequest {
                    network_slug: "bench".into(),
                    site_slug: "site".into(),
                    title: format!("Post {word}"),
                    body_markdown: "Measuring how fast a post is found.".into(),
                    lang: "en".into(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("publish");
        let acked = Instant::now();
        acks.push(acked - sent);
        loop {
            let found = aggregator
                .search(SearchRequest {
                    query: word.clone(),
                    network_slug: String::new(),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .expect("search")
                .into_inner()
                .total;
            if found == 1 {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(30),
                "post never became visible"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        visible.push(acked.elapsed());
    }
    acks.sort();
    visible.sort();
    println!("{:>36}  {:>9}  {:>9}", "", "p50", "p99");
    println!(
        "{:>36}  {:>9.1?}  {:>9.1?}",
        "baseline: PublishPost acknowledged",
        percentile(&acks, 0.5),
        percentile(&acks, 0.99)
    );
    println!(
        "{:>36}  {:>9.1?}  {:>9.1?}  ratio p50 {:.1}",
        "ack → found by search",
        percentile(&visible, 0.5),
        percentile(&visible, 0.99),
        percentile(&visible, 0.5).as_secs_f64() / percentile(&acks, 0.5).as_secs_f64()
    );
    stack.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("pipeline: benchmark");
        return;
    }
    let infra = Infra::new().await;
    println!(
        "# ANP pipeline benchmark ({} cores)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    bench_appends(&infra).await;
    bench_relay(&infra).await;
    infra.cleanup().await;
    bench_visibility().await;
}
