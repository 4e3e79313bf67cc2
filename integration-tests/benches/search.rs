//! Search and feeds at scale (issue 5), each figure beside a baseline
//! measured on the same machine in the same run, as a ratio.
//!
//! A generator with a fixed seed makes the corpus: 1,000 networks, 20,000
//! sites and 1,000,000 posts in English and Spanish (Zipf-distributed words,
//! real ones first, then made-up ones for the long tail). Then:
//! - indexing: the posts go onto NATS as the content service would publish
//!   them; the aggregator (its own release process) projects them into the
//!   index, the timelines and the usage meters; baseline: JetStream
//!   delivering and acknowledging the same messages to a consumer that does
//!   nothing else;
//! - search: a query mix (common word, rare word, two words, a phrase; by
//!   relevance and by date; with and without a network filter) through gRPC;
//!   baseline: PostgreSQL full-text search on the same corpus (tsvector, GIN,
//!   ts_rank), same queries, same filters;
//! - umbrella feed page: p99 at 20,000 sites; baseline: an installation of
//!   10 sites;
//! - projection lag: 1,000 writes/s through the content service for 20 s,
//!   acknowledgement → on the bus (the relay), visible in search and in the
//!   feed; baseline: the acknowledgement's own latency; then the same
//!   straight onto NATS (the projector alone). `ANP_BENCH_PG_STATEMENTS`
//!   (a conninfo of a database with `pg_stat_statements`) also prints
//!   PostgreSQL's statements a write;
//! - full rebuild from the event stores (`Reindex`, search); baseline: only
//!   reading the same events from PostgreSQL.
//!
//! `ANP_BENCH_POSTS` (default 1,000,000), `ANP_BENCH_SEARCH_NETWORKS` (1,000) and
//! `ANP_BENCH_QUERIES` (per class, 50) scale it down; `ANP_BENCH_STOP_AFTER`
//! (indexing, search, feed, lag) ends it early; `ANP_BENCH_SKIP` (a comma
//! list of search, feed, lag) leaves sections out. Run with `make bench`;
//! results in `docs/benchmarks.md`.

#[allow(dead_code)]
mod corpus;
#[allow(dead_code)]
#[path = "../tests/harness.rs"]
mod harness;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anp_proto::aggregator::v1::aggregator_service_client::AggregatorServiceClient;
use anp_proto::aggregator::v1::{
    FeedScope, GetFeedRequest, ProjectionStatusRequest, ReindexRequest, SearchRequest,
};
use anp_proto::events::v1::{Envelope, PostPublished, PostState};
use async_nats::jetstream;
use corpus::{Corpus, SEED, SITES_PER_NETWORK, VOCABULARY, network_slug, site_slug};
use futures::StreamExt;
use harness::{Infra, Process, free_addr, process_env, wait_healthy};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_lazy()
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}

/// Publishes envelopes with up to 4,096 acknowledgements in flight; returns
/// the last sequence.
async fn publish_all(
    jetstream: &jetstream::Context,
    infra: &Infra,
    envelopes: impl Iterator<Item = (String, Envelope)>,
) -> u64 {
    let mut in_flight = VecDeque::new();
    let mut last = 0;
    for (service, envelope) in envelopes {
        let subject = infra
            .bus
            .subject(&service, &envelope.network_id, &envelope.event_type);
        let ack = jetstream
            .publish(subject, envelope.encode_to_vec().into())
            .await
            .expect("publish");
        in_flight.push_back(ack);
        if in_flight.len() >= 4096 {
            last = in_flight.pop_front().unwrap().await.expect("ack").sequence;
        }
    }
    for ack in in_flight {
        last = ack.await.expect("ack").sequence;
    }
    last
}

/// Waits until both the index and the timelines hold `seq`.
async fn wait_projected(aggregator: &mut AggregatorServiceClient<Channel>, seq: u64) {
    loop {
        let status = aggregator
            .projection_status(ProjectionStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        if status.index_seq >= seq && status.feeds_seq >= seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A query of the mix.
#[derive(Clone)]
struct Query {
    class: &'static str,
    text: String,
    spanish: bool,
    by_date: bool,
    network: Option<String>,
}

fn query_mix(corpus: &Corpus, per_class: usize) -> Vec<Query> {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut mix = Vec::new();
    for by_date in [false, true] {
        for filtered in [false, true] {
            for class in ["common", "rare", "two words", "phrase"] {
                for _ in 0..per_class {
                    let spanish = rng.random_bool(0.4);
                    let vocabulary = if spanish { &corpus.es } else { &corpus.en };
                    // Real words of four letters or more (not stop words).
                    let pick = |rng: &mut StdRng, ranks: std::ops::Range<usize>| loop {
                        let word = &vocabulary[rng.random_range(ranks.clone())];
                        if word.chars().count() >= 4 {
                            return word.clone();
                        }
                    };
                    let text = match class {
                        "common" => pick(&mut rng, 20..60),
                        "rare" => pick(&mut rng, 5_000..VOCABULARY),
                        "two words" => {
                            format!(
                                "{} {}",
                                pick(&mut rng, 20..2_000),
                                pick(&mut rng, 20..2_000)
                            )
                        }
                        _ => {
                            // Two neighbouring words of a post.
                            let post = &corpus.posts[rng.random_range(0..corpus.posts.len())];
                            let words: Vec<&str> = post.body.split(' ').collect();
                            let at = rng.random_range(0..words.len() - 1);
                            format!("\"{} {}\"", words[at], words[at + 1])
                        }
                    };
                    let network =
                        filtered.then(|| network_slug(rng.random_range(0..corpus.networks)));
                    mix.push(Query {
                        class,
                        text,
                        spanish,
                        by_date,
                        network,
                    });
                }
            }
        }
    }
    mix
}

/// Each class's p50 and p99 beside the baseline's (named `them`), then the
/// same over every query (labelled `all`).
fn print_classes(
    ours: &HashMap<String, Vec<Duration>>,
    theirs: &HashMap<String, Vec<Duration>>,
    them: &str,
    all: &str,
) {
    println!(
        "  {:<36} {:>10} {:>10} {:>12} {:>12} {:>9}",
        "class",
        "ANP p50",
        "ANP p99",
        format!("{them} p50"),
        format!("{them} p99"),
        "p99 ratio"
    );
    let row = |label: &str, a: &[Duration], b: &[Duration]| {
        println!(
            "  {:<36} {:>10} {:>10} {:>12} {:>12} {:>8.1}×",
            label,
            ms(percentile(a, 0.5)),
            ms(percentile(a, 0.99)),
            ms(percentile(b, 0.5)),
            ms(percentile(b, 0.99)),
            percentile(b, 0.99).as_secs_f64() / percentile(a, 0.99).as_secs_f64()
        );
    };
    let mut classes: Vec<&String> = ours.keys().collect();
    classes.sort();
    for class in classes {
        row(class, &ours[class], &theirs[class]);
    }
    let all_ours: Vec<Duration> = ours.values().flatten().copied().collect();
    let all_theirs: Vec<Duration> = theirs.values().flatten().copied().collect();
    row(all, &all_ours, &all_theirs);
}

fn class_name(query: &Query) -> String {
    format!(
        "{} · {} · {}",
        query.class,
        if query.by_date { "date" } else { "relevance" },
        if query.network.is_some() {
            "network"
        } else {
            "all"
        }
    )
}

async fn search_grpc(aggregator: &mut AggregatorServiceClient<Channel>, query: &Query) -> usize {
    aggregator
        .search(SearchRequest {
            query: query.text.clone(),
            network_slug: query.network.clone().unwrap_or_default(),
            sort: if query.by_date { "date" } else { "" }.into(),
            limit: 20,
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner()
        .hits
        .len()
}

/// A search as the `/search` page asks it: with the counts of each facet.
/// The number of facet values counted.
/// The five slowest of `timed`.
fn print_slowest(timed: &mut [(Duration, &Query)]) {
    timed.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
    println!("  slowest ANP queries:");
    for (took, query) in timed.iter().take(5) {
        println!(
            "    {:>9}  {:<36} {}",
            ms(*took),
            class_name(query),
            query.text
        );
    }
}

async fn facets_grpc(aggregator: &mut AggregatorServiceClient<Channel>, query: &Query) -> usize {
    let page = aggregator
        .search(SearchRequest {
            query: query.text.clone(),
            network_slug: query.network.clone().unwrap_or_default(),
            limit: 20,
            facets: true,
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    page.facets.iter().map(|facet| facet.values.len()).sum()
}

/// The baseline's facet counts: the matches grouped by each facet's column
/// in one statement (the top 20 hits are `search_pg`'s).
async fn facets_pg(pg: &tokio_postgres::Client, query: &Query) -> usize {
    let config = if query.spanish { "spanish" } else { "english" };
    let filter = if query.network.is_some() {
        "AND f.network_slug = $2"
    } else {
        "AND $2 = $2"
    };
    let sql = format!(
        "SELECT network_slug, site_key, kind, tag, lang, count(*) \
         FROM bench.fts f, websearch_to_tsquery('{config}', $1) q WHERE f.tsv @@ q {filter} \
         GROUP BY GROUPING SETS ((network_slug), (site_key), (kind), (tag), (lang))"
    );
    pg.query(
        &sql,
        &[&query.text, &query.network.clone().unwrap_or_default()],
    )
    .await
    .expect("pg facets")
    .len()
}

async fn search_pg(pg: &tokio_postgres::Client, query: &Query) -> usize {
    let config = if query.spanish { "spanish" } else { "english" };
    let order = if query.by_date {
        "f.published_at DESC"
    } else {
        "ts_rank(f.tsv, q) DESC"
    };
    let filter = if query.network.is_some() {
        "AND f.network_slug = $2"
    } else {
        "AND $2 = $2"
    };
    let sql = format!(
        "SELECT f.id FROM bench.fts f, websearch_to_tsquery('{config}', $1) q \
         WHERE f.tsv @@ q {filter} ORDER BY {order} LIMIT 20"
    );
    pg.query(
        &sql,
        &[&query.text, &query.network.clone().unwrap_or_default()],
    )
    .await
    .expect("pg search")
    .len()
}

/// Loads the corpus into PostgreSQL for the full-text baseline.
async fn load_pg_baseline(pg: &tokio_postgres::Client, corpus: &Corpus) {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    pg.batch_execute(
        "CREATE SCHEMA bench; \
         CREATE TABLE bench.fts ( \
           id uuid PRIMARY KEY, network_slug text NOT NULL, site_key text NOT NULL, \
           kind text NOT NULL, tag text, lang text NOT NULL, published_at timestamptz NOT NULL, title text NOT NULL, body text NOT NULL, \
           tsv tsvector GENERATED ALWAYS AS (to_tsvector( \
             CASE lang WHEN 'es' THEN 'spanish'::regconfig ELSE 'english'::regconfig END, \
             title || ' ' || body)) STORED)",
    )
    .await
    .expect("baseline table");
    let sink = pg
        .copy_in(
            "COPY bench.fts (id, network_slug, site_key, kind, tag, lang, published_at, title, body) \
             FROM STDIN BINARY",
        )
        .await
        .expect("copy");
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::UUID,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TEXT,
        ],
    );
    futures::pin_mut!(writer);
    for post in &corpus.posts {
        let at = chrono::DateTime::from_timestamp_micros(post.micros).unwrap();
        let lang = if post.spanish { "es" } else { "en" };
        let site_key = format!("{}/{}", network_slug(post.network), site_slug(post.site));
        writer
            .as_mut()
            .write(&[
                &post.id,
                &network_slug(post.network),
                &site_key,
                &"post",
                &post.tags.first(),
                &lang,
                &at,
                &post.title,
                &post.body,
            ])
            .await
            .expect("copy row");
    }
    writer.finish().await.expect("copy finish");
    pg.batch_execute(
        "SET maintenance_work_mem = '1GB'; \
         CREATE INDEX fts_tsv ON bench.fts USING gin (tsv); \
         CREATE INDEX fts_date ON bench.fts (published_at DESC); \
         CREATE INDEX fts_network_date ON bench.fts (network_slug, published_at DESC); \
         ANALYZE bench.fts",
    )
    .await
    .expect("baseline indexes");
}

/// Copies the posts into the content service's event store (the sites'
/// into the sites one), as if they had been written there.
async fn load_event_stores(pg: &tokio_postgres::Client, corpus: &Corpus) -> u64 {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let types = [
        Type::UUID,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT4,
        Type::UUID,
        Type::UUID,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::BYTEA,
    ];
    let columns = "(event_id, stream_id, version, event_type, schema_version, network_id, \
                   site_id, actor, occurred_at, payload)";
    let mut count = 0u64;
    for (schema, envelopes) in [
        (
            "sites",
            (0..corpus.site_ids.len())
                .map(|site| corpus.site_created(site).1)
                .collect::<Vec<_>>(),
        ),
        (
            "content",
            corpus
                .posts
                .iter()
                .map(|post| corpus.post_published(post))
                .collect(),
        ),
    ] {
        let sink = pg
            .copy_in(&format!("COPY {schema}.events {columns} FROM STDIN BINARY"))
            .await
            .expect("copy events");
        let writer = BinaryCopyInWriter::new(sink, &types);
        futures::pin_mut!(writer);
        for envelope in &envelopes {
            let at = anp_kit::from_timestamp(envelope.occurred_at.as_ref());
            let event_id: Uuid = envelope.event_id.parse().unwrap();
            let network_id: Uuid = envelope.network_id.parse().unwrap();
            let site_id: Uuid = envelope.site_id.parse().unwrap();
            writer
                .as_mut()
                .write(&[
                    &event_id,
                    &envelope.stream_id,
                    &(envelope.version as i64),
                    &envelope.event_type,
                    &(envelope.schema_version as i32),
                    &network_id,
                    &site_id,
                    &envelope.actor,
                    &at,
                    &envelope.payload,
                ])
                .await
                .expect("copy event");
            count += 1;
        }
        writer.finish().await.expect("copy events finish");
        // As autovacuum would for a store that grew this much.
        pg.batch_execute(&format!("ANALYZE {schema}.events"))
            .await
            .expect("analyze");
    }
    count
}

/// `ANP_BENCH_SKIP=search,feed,lag` (any of them) leaves those sections
/// out: with all three, a run indexes and then rebuilds.
fn skipped(section: &str) -> bool {
    std::env::var("ANP_BENCH_SKIP")
        .is_ok_and(|value| value.split(',').any(|skip| skip.trim() == section))
}

/// `ANP_BENCH_STOP_AFTER=search` (or `indexing`, `feed`, `lag`) ends the
/// run after that section, for quicker rounds while tuning.
fn stop_after(section: &str) -> bool {
    std::env::var("ANP_BENCH_STOP_AFTER").is_ok_and(|value| value == section)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("search: benchmark");
        return;
    }
    let posts = env_usize("ANP_BENCH_POSTS", 1_000_000);
    let networks = env_usize("ANP_BENCH_SEARCH_NETWORKS", 1_000);
    let per_class = env_usize("ANP_BENCH_QUERIES", 50);
    println!(
        "# ANP search and feeds benchmark: {networks} networks, {} sites, {posts} posts (seed {SEED})\n",
        networks * SITES_PER_NETWORK
    );
    let generated = Instant::now();
    let corpus = Corpus::generate(networks, posts);
    let text_bytes = corpus.text_bytes();
    println!(
        "corpus generated in {:.1}s: {:.0} MB of text, {:.0} bytes a post",
        generated.elapsed().as_secs_f64(),
        text_bytes as f64 / 1e6,
        text_bytes as f64 / posts as f64
    );

    let infra = Infra::new().await;
    let index = tempfile::tempdir().expect("tempdir");
    let (sites_addr, content_addr, aggregator_addr) = (free_addr(), free_addr(), free_addr());
    let mut env = process_env(&infra);
    env.extend([
        ("ANP_SITES_LISTEN", sites_addr.clone()),
        ("ANP_CONTENT_LISTEN", content_addr.clone()),
        ("ANP_AGGREGATOR_LISTEN", aggregator_addr.clone()),
        ("ANP_SITES_URL", format!("http://{sites_addr}")),
        ("ANP_CONTENT_URL", format!("http://{content_addr}")),
        ("ANP_AGGREGATOR_URL", format!("http://{aggregator_addr}")),
        ("ANP_INDEX_DIR", index.path().display().to_string()),
        ("ANP_SIGN_IN_PER_MINUTE", "100000".to_owned()),
        ("ANP_DATABASE_POOL_SIZE", "16".to_owned()),
        (
            "RUST_LOG",
            std::env::var("ANP_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
    ]);
    let mut sites = Some(Process::spawn("anp-sites", &env));
    let mut content = Some(Process::spawn("anp-content", &env));
    let aggregator_process = Process::spawn("anp-aggregator", &env);
    for addr in [&sites_addr, &content_addr, &aggregator_addr] {
        wait_healthy(addr).await;
    }
    let mut aggregator = AggregatorServiceClient::new(channel(&aggregator_addr));
    let jetstream = infra.jetstream().await;

    // ## Indexing through NATS and the projector.
    let sites_seq = publish_all(
        &jetstream,
        &infra,
        (0..corpus.site_ids.len()).map(|site| corpus.site_created(site)),
    )
    .await;
    wait_projected(&mut aggregator, sites_seq).await;
    let indexing_cpu = CpuUse::start(vec![("anp-aggregator", aggregator_process.pid())]);
    let started = Instant::now();
    let last_seq = publish_all(
        &jetstream,
        &infra,
        corpus
            .posts
            .iter()
            .map(|post| ("content".to_owned(), corpus.post_published(post))),
    )
    .await;
    let published = started.elapsed();
    wait_projected(&mut aggregator, last_seq).await;
    let indexed = started.elapsed();
    let indexing_cpu = indexing_cpu.end();
    // Baseline: the same messages delivered and acknowledged, nothing else.
    let stream = jetstream
        .get_stream(&infra.bus.stream_name)
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: sites_seq + 1,
            },
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let delivered_started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(512)
        .messages()
        .await
        .expect("messages");
    let mut delivered = 0usize;
    while delivered < posts {
        let message = messages.next().await.expect("message").expect("message");
        message.ack().await.expect("ack");
        delivered += 1;
    }
    let delivery = delivered_started.elapsed();
    drop(messages);
    let mb = text_bytes as f64 / 1e6;
    println!("\n## Indexing {posts} posts ({mb:.0} MB of text) through NATS and the projector");
    println!("                                          MB/s   posts/s");
    println!(
        "  baseline: JetStream delivery + ack     {:6.1}  {:8.0}",
        mb / delivery.as_secs_f64(),
        posts as f64 / delivery.as_secs_f64()
    );
    println!(
        "  published → indexed, feeds, usage      {:6.1}  {:8.0}   ratio {:.2}  (publishing alone took {:.1}s)",
        mb / indexed.as_secs_f64(),
        posts as f64 / indexed.as_secs_f64(),
        delivery.as_secs_f64() / indexed.as_secs_f64(),
        published.as_secs_f64()
    );
    // Where the machine's time went (the benchmark's share is publishing).
    indexing_cpu.print(posts as u64, "post");

    if stop_after("indexing") {
        finish(&infra, [sites, content, Some(aggregator_process)]).await;
        return;
    }

    // ## Search: gRPC against PostgreSQL full-text search.
    // Tantivy merges segments for a while after a bulk load: measure after.
    let mut last_bytes = 0;
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(180) {
        let bytes = aggregator
            .projection_status(ProjectionStatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .index_bytes;
        if bytes == last_bytes {
            break;
        }
        last_bytes = bytes;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    print_index_shape(&mut aggregator, "settled after indexing").await;
    let pg = infra.pg().await;
    if !skipped("search") {
        let loaded = Instant::now();
        load_pg_baseline(&pg, &corpus).await;
        println!(
            "\n(PostgreSQL baseline loaded and indexed in {:.0}s)",
            loaded.elapsed().as_secs_f64()
        );
        // What the queries will visit (merges may have ended meanwhile).
        print_index_shape(&mut aggregator, "searched").await;
        let mix = query_mix(&corpus, per_class);
        // Warm both (page cache, plans) with the whole mix once.
        for query in &mix {
            search_grpc(&mut aggregator, query).await;
            search_pg(&pg, query).await;
        }
        let mut ours: HashMap<String, Vec<Duration>> = HashMap::new();
        let mut theirs: HashMap<String, Vec<Duration>> = HashMap::new();
        let mut empty = (0usize, 0usize);
        let mut slowest: Vec<(Duration, &Query)> = Vec::new();
        for query in &mix {
            let sent = Instant::now();
            let hits = search_grpc(&mut aggregator, query).await;
            let took = sent.elapsed();
            ours.entry(class_name(query)).or_default().push(took);
            slowest.push((took, query));
            let sent = Instant::now();
            let rows = search_pg(&pg, query).await;
            theirs
                .entry(class_name(query))
                .or_default()
                .push(sent.elapsed());
            empty.0 += usize::from(hits == 0);
            empty.1 += usize::from(rows == 0);
        }
        println!(
            "\n## Search at {posts} documents, {per_class} queries a class (limit 20; ANP through gRPC)"
        );
        print_classes(&ours, &theirs, "PG FTS", "whole mix");
        println!(
            "  (queries without hits: ANP {}, PostgreSQL {} of {})",
            empty.0,
            empty.1,
            mix.len()
        );

        print_slowest(&mut slowest);

        // ## The search page: the same queries by relevance, with facet counts
        // (every match is counted, not only the top 20).
        let by_relevance: Vec<&Query> = mix.iter().filter(|query| !query.by_date).collect();
        for query in &by_relevance {
            facets_grpc(&mut aggregator, query).await;
            facets_pg(&pg, query).await;
        }
        let mut ours: HashMap<String, Vec<Duration>> = HashMap::new();
        let mut theirs: HashMap<String, Vec<Duration>> = HashMap::new();
        let mut slowest: Vec<(Duration, &Query)> = Vec::new();
        for query in &by_relevance {
            let sent = Instant::now();
            facets_grpc(&mut aggregator, query).await;
            let took = sent.elapsed();
            ours.entry(class_name(query)).or_default().push(took);
            slowest.push((took, query));
            let sent = Instant::now();
            facets_pg(&pg, query).await;
            theirs
                .entry(class_name(query))
                .or_default()
                .push(sent.elapsed());
        }
        println!(
            "\n## Search with facet counts (network, site, kind, tag, language), as /search asks"
        );
        print_classes(&ours, &theirs, "PG", "all");
        print_slowest(&mut slowest);
    }

    if stop_after("search") {
        finish(&infra, [sites, content, Some(aggregator_process)]).await;
        return;
    }

    // ## Umbrella feed page: this installation against one of 10 sites,
    // read in turns so that both see the same machine.
    if !skipped("feed") {
        let small_infra = Infra::new().await;
        let small_index = tempfile::tempdir().expect("tempdir");
        let small_addr = free_addr();
        let mut small_env = process_env(&small_infra);
        small_env.extend([
            ("ANP_AGGREGATOR_LISTEN", small_addr.clone()),
            ("ANP_INDEX_DIR", small_index.path().display().to_string()),
            ("ANP_SITES_URL", String::new()),
            ("RUST_LOG", "warn".to_owned()),
        ]);
        let small_aggregator = Process::spawn("anp-aggregator", &small_env);
        wait_healthy(&small_addr).await;
        let small_jetstream = small_infra.jetstream().await;
        let small = Corpus::generate(1, 1_000);
        let small_sites = 10;
        let small_seq = publish_all(
            &small_jetstream,
            &small_infra,
            (0..small_sites).map(|site| small.site_created(site)).chain(
                small
                    .posts
                    .iter()
                    .filter(|post| post.site < small_sites)
                    .map(|post| ("content".to_owned(), small.post_published(post))),
            ),
        )
        .await;
        let mut small_client = AggregatorServiceClient::new(channel(&small_addr));
        wait_projected(&mut small_client, small_seq).await;
        let read_feed = |client: &mut AggregatorServiceClient<Channel>| {
            let mut client = client.clone();
            async move {
                let sent = Instant::now();
                let page = client
                    .get_feed(GetFeedRequest {
                        scope: Some(FeedScope::default()),
                        limit: 20,
                        cursor: String::new(),
                    })
                    .await
                    .expect("feed")
                    .into_inner();
                assert_eq!(page.entries.len(), 20);
                sent.elapsed()
            }
        };
        let mut big_client = aggregator.clone();
        let (mut big, mut small_times) = (Vec::with_capacity(2_000), Vec::with_capacity(2_000));
        for round in 0..2_200 {
            let (took_big, took_small) = if round % 2 == 0 {
                let took = read_feed(&mut big_client).await;
                (took, read_feed(&mut small_client).await)
            } else {
                let took = read_feed(&mut small_client).await;
                (read_feed(&mut big_client).await, took)
            };
            if round >= 200 {
                big.push(took_big);
                small_times.push(took_small);
            }
        }
        drop(small_aggregator);
        small_infra.cleanup().await;
        println!(
            "\n## Umbrella feed page (newest 20, GetFeed through gRPC, 2,000 reads each, in turns)"
        );
        println!("                                   p50        p99");
        println!(
            "  baseline: 10 sites           {:>9}  {:>9}",
            ms(percentile(&small_times, 0.5)),
            ms(percentile(&small_times, 0.99))
        );
        println!(
            "  {:>6} sites, {posts} posts {:>9}  {:>9}   p99 ratio {:.2}",
            networks * SITES_PER_NETWORK,
            ms(percentile(&big, 0.5)),
            ms(percentile(&big, 0.99)),
            percentile(&big, 0.99).as_secs_f64() / percentile(&small_times, 0.99).as_secs_f64()
        );
    }

    if stop_after("feed") {
        finish(&infra, [sites, content, Some(aggregator_process)]).await;
        return;
    }

    // ## Projection lag at 1,000 writes/s through the content service.
    let services = [
        ("anp-sites", sites.as_ref().map_or(0, Process::pid)),
        ("anp-content", content.as_ref().map_or(0, Process::pid)),
        ("anp-aggregator", aggregator_process.pid()),
    ];
    if !skipped("lag") {
        lag(
            &infra,
            &services,
            &jetstream,
            &sites_addr,
            &content_addr,
            &aggregator_addr,
        )
        .await;
    }

    if stop_after("lag") {
        finish(&infra, [sites, content, Some(aggregator_process)]).await;
        return;
    }

    // ## Full rebuild from the event stores.
    // The services whose relays would publish the copied events stop first.
    sites.take();
    content.take();
    let copied = load_event_stores(&pg, &corpus).await;
    let read_started = Instant::now();
    let mut read = 0u64;
    for schema in ["sites", "content"] {
        let store = anp_eventstore::EventStore::connect(&infra.database_url, schema)
            .await
            .expect("store");
        let mut at = anp_eventstore::Position::default();
        loop {
            let events = store.read_all_after(at, 5_000).await.expect("read");
            let Some(last) = events.last() else { break };
            at = last.global;
            read += events.len() as u64;
        }
    }
    let reading = read_started.elapsed();
    let grant = harness::signer()
        .sign_grant("bench", "reindex", Uuid::nil())
        .expect("grant");
    let rebuilt = aggregator
        .reindex(harness::with_token(
            ReindexRequest {
                scope: "search".into(),
            },
            &grant,
        ))
        .await
        .expect("reindex")
        .into_inner();
    println!("\n## Full rebuild of the search index from the event stores ({copied} events)");
    println!(
        "  baseline: reading them from PostgreSQL   {:>9.0} events/s",
        read as f64 / reading.as_secs_f64()
    );
    println!(
        "  Reindex (search), beside and swapped    {:>9.0} events/s   ratio {:.2}  ({} documents)",
        rebuilt.events as f64 / rebuilt.seconds,
        (rebuilt.events as f64 / rebuilt.seconds) / (read as f64 / reading.as_secs_f64()),
        rebuilt.search_documents
    );
    drop(pg);
    finish(&infra, [sites, content, Some(aggregator_process)]).await;
}

/// Stops the services, then drops the database and the stream: a service
/// still running would create the stream again, empty, and leave it behind.
async fn finish<const N: usize>(infra: &Infra, services: [Option<Process>; N]) {
    drop(services);
    infra.cleanup().await;
}

/// Prints the index's size and segments (a search visits each segment).
async fn print_index_shape(aggregator: &mut AggregatorServiceClient<Channel>, when: &str) {
    let status = aggregator
        .projection_status(ProjectionStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    println!(
        "(index {when}: {} segments, {:.0} MB)",
        status.index_segments,
        status.index_bytes as f64 / 1e6
    );
}

/// The writes sharing `word` (their hundred) visible now: in search (the
/// word is in the body), or in the feed (the word is their tag: the tag's
/// timeline is written with the site's, in one transaction). One page.
async fn visible_ids(
    aggregator: &mut AggregatorServiceClient<Channel>,
    feed: bool,
    word: &str,
) -> Vec<String> {
    if feed {
        aggregator
            .get_feed(GetFeedRequest {
                scope: Some(FeedScope {
                    tag: word.to_owned(),
                    ..Default::default()
                }),
                limit: BUCKET as u32,
                cursor: String::new(),
            })
            .await
            .map(|page| {
                page.into_inner()
                    .entries
                    .into_iter()
                    .map(|entry| entry.id)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        aggregator
            .search(SearchRequest {
                // In quotes: a word not found yet is not searched again with
                // typos forgiven (a fuzzy search of every term dictionary,
                // hundreds a second, which no reader would ask).
                query: format!("\"{word}\""),
                network_slug: "lag".into(),
                sort: "date".into(),
                limit: BUCKET as u32,
                ..Default::default()
            })
            .await
            .map(|page| {
                page.into_inner()
                    .hits
                    .into_iter()
                    .map(|hit| hit.id)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// PostgreSQL's statements during a phase, when `ANP_BENCH_PG_STATEMENTS`
/// names a database with the `pg_stat_statements` extension (a diagnosis:
/// which statements the write path costs; off by default).
struct StatementStats(tokio_postgres::Client);

impl StatementStats {
    async fn start() -> Option<Self> {
        let url = std::env::var("ANP_BENCH_PG_STATEMENTS").ok()?;
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("ANP_BENCH_PG_STATEMENTS: connect");
        tokio::spawn(connection);
        client
            .execute("SELECT pg_stat_statements_reset()", &[])
            .await
            .expect("pg_stat_statements_reset");
        Some(StatementStats(client))
    }

    async fn print(self, title: &str, writes: u64) {
        let rows = self
            .0
            .query(
                "SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
                 FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 30",
                &[],
            )
            .await
            .expect("pg_stat_statements");
        println!("\n## PostgreSQL's statements while writing, {title} ({writes} writes)");
        println!("   calls/write  exec ms/write      rows  statement");
        for row in rows {
            let (calls, total, count, query): (i64, f64, i64, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            println!(
                "  {:>11.2}  {:>13.4}  {:>8}  {query}",
                calls as f64 / writes as f64,
                total / writes as f64,
                count
            );
        }
    }
}

/// CPU time while a lag section writes, a write, by process: what the
/// write path costs whatever else the machine is doing (its rate and lag
/// move with the machine's speed; this moves less). Read from `/proc`
/// (ticks of 10 ms, Linux's `USER_HZ`); PostgreSQL and NATS are every process
/// of that name on the machine, the services are this run's.
struct CpuUse {
    services: Vec<(&'static str, u32)>,
    before: HashMap<u32, u64>,
    machine: u64,
}

impl CpuUse {
    const SHARED: [&'static str; 2] = ["postgres", "nats-server"];

    fn ticks(pid: u32) -> Option<(String, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ..." — comm may hold spaces; fields follow the last ')'.
        let (head, tail) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_owned();
        let fields: Vec<&str> = tail.split_whitespace().collect();
        let (utime, stime) = (
            fields.get(11)?.parse::<u64>().ok()?,
            fields.get(12)?.parse::<u64>().ok()?,
        );
        Some((comm, utime + stime))
    }

    /// Every process's ticks, by pid (the shared servers' and ours).
    fn sample(&self) -> HashMap<u32, (String, u64)> {
        let mut ticks = HashMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((comm, t)) = Self::ticks(pid) {
                ticks.insert(pid, (comm, t));
            }
        }
        ticks
    }

    fn machine_busy() -> u64 {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: all but idle, iowait.
        cpu.iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, t)| t)
            .sum()
    }

    fn start(services: Vec<(&'static str, u32)>) -> Self {
        let mut cpu = CpuUse {
            services,
            before: HashMap::new(),
            machine: Self::machine_busy(),
        };
        cpu.before = cpu
            .sample()
            .into_iter()
            .map(|(pid, (_, t))| (pid, t))
            .collect();
        cpu
    }

    /// The ticks used since `start`, to print later.
    fn end(self) -> CpuUsed {
        CpuUsed {
            after: self.sample(),
            machine: Self::machine_busy() - self.machine,
            start: self,
        }
    }
}

/// What `CpuUse::end` measured.
struct CpuUsed {
    start: CpuUse,
    after: HashMap<u32, (String, u64)>,
    machine: u64,
}

impl CpuUsed {
    /// Each process's CPU time over `count` of `what` (a write, a post).
    fn print(self, count: u64, what: &str) {
        let CpuUsed {
            start: this,
            after,
            machine,
        } = self;
        let used =
            |pid: u32, now: u64| now.saturating_sub(this.before.get(&pid).copied().unwrap_or(0));
        let mut rows: Vec<(String, u64)> = Vec::new();
        for name in CpuUse::SHARED {
            let ticks = after
                .iter()
                .filter(|(_, (comm, _))| comm == name)
                .map(|(pid, (_, t))| used(*pid, *t))
                .sum();
            rows.push((name.to_owned(), ticks));
        }
        for (name, pid) in &this.services {
            let ticks = after.get(pid).map(|(_, t)| used(*pid, *t)).unwrap_or(0);
            rows.push(((*name).to_owned(), ticks));
        }
        let me = std::process::id();
        rows.push((
            "benchmark".to_owned(),
            after.get(&me).map(|(_, t)| used(me, *t)).unwrap_or(0),
        ));
        let per = |ticks: u64| ticks as f64 * 10.0 / count as f64;
        println!("  CPU a {what} (ms; /proc, ticks of 10 ms):");
        println!("    {:<16} {:>6.3}", "whole machine", per(machine));
        for (name, ticks) in rows {
            println!("    {name:<16} {:>6.3}", per(ticks));
        }
        println!("  resident memory (MiB; /proc VmRSS now, VmHWM the peak so far):");
        for (name, pid) in &this.services {
            if let Some((now, peak)) = resident(*pid) {
                println!(
                    "    {name:<16} {:>6.0} {:>6.0}",
                    now as f64 / 1024.0,
                    peak as f64 / 1024.0
                );
            }
        }
    }
}

/// A process's resident set now and at its peak, in KiB.
fn resident(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Writes share a word and a tag with the hundred around them
/// (`<bucket><n / 100>`): a watcher finds a write with one page.
const BUCKET: u64 = 100;

/// Writes at `rate` for `run_for` with `write` (which returns the post's id
/// once acknowledged); prints acknowledgement → first seen in search and in
/// the site's feed, both polled every 5 ms.
async fn measure_lag<W, Fut>(
    title: &str,
    aggregator_addr: &str,
    bus: (&async_nats::Client, &str),
    bucket: &str,
    (rate, run_for): (u64, Duration),
    services: &[(&'static str, u32)],
    write: W,
) where
    W: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let aggregator = AggregatorServiceClient::new(channel(aggregator_addr));
    let acked: Arc<Mutex<HashMap<String, (Instant, Duration)>>> = Arc::default();
    let seen_search: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen_feed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen_bus: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watchers = Vec::new();
    // When each post is on the bus (what the relay adds to the lag): the
    // events' subject, read as a plain NATS subscriber.
    let mut published = bus.0.subscribe(bus.1.to_owned()).await.expect("subscribe");
    bus.0.flush().await.expect("flush");
    let bus_watcher = {
        let seen = seen_bus.clone();
        tokio::spawn(async move {
            while let Some(message) = published.next().await {
                let now = Instant::now();
                let Ok(envelope) = Envelope::decode(message.payload) else {
                    continue;
                };
                if let Some(post) = PostPublished::decode(envelope.payload.as_slice())
                    .ok()
                    .and_then(|event| event.post)
                {
                    seen.lock().unwrap().entry(post.post_id).or_insert(now);
                }
            }
        })
    };
    // Acknowledged writes not yet seen, by id, with their number.
    let unseen_search: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let unseen_feed: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    for feed in [false, true] {
        let (mut aggregator, stop) = (aggregator.clone(), stop.clone());
        let (seen, unseen) = if feed {
            (seen_feed.clone(), unseen_feed.clone())
        } else {
            (seen_search.clone(), unseen_search.clone())
        };
        let bucket = bucket.to_owned();
        watchers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // For every hundred with an acknowledged write not yet seen,
                // the word (and tag) they share: one page each.
                let buckets: BTreeSet<u64> = unseen
                    .lock()
                    .unwrap()
                    .values()
                    .map(|n| n / BUCKET)
                    .collect();
                let mut ids = Vec::new();
                for b in buckets {
                    ids.extend(visible_ids(&mut aggregator, feed, &format!("{bucket}{b}")).await);
                }
                let now = Instant::now();
                {
                    let (mut seen, mut unseen) = (seen.lock().unwrap(), unseen.lock().unwrap());
                    for id in ids {
                        unseen.remove(&id);
                        seen.entry(id).or_insert(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let statements = StatementStats::start().await;
    let cpu = CpuUse::start(services.to_vec());
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut writes = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < run_for {
        ticker.tick().await;
        n += 1;
        let acked = acked.clone();
        let sent = Instant::now();
        let written = write(n);
        let (seen_search, seen_feed, unseen_search, unseen_feed) = (
            seen_search.clone(),
            seen_feed.clone(),
            unseen_search.clone(),
            unseen_feed.clone(),
        );
        writes.push(tokio::spawn(async move {
            let id = written.await;
            acked
                .lock()
                .unwrap()
                .insert(id.clone(), (Instant::now(), sent.elapsed()));
            for (seen, unseen) in [(&seen_search, &unseen_search), (&seen_feed, &unseen_feed)] {
                let seen = seen.lock().unwrap();
                if !seen.contains_key(&id) {
                    unseen.lock().unwrap().insert(id.clone(), n);
                }
            }
        }));
    }
    for write in writes {
        write.await.expect("write");
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    if let Some(statements) = statements {
        statements.print(title, n).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let done = {
            let acked = acked.lock().unwrap();
            let (search, feed) = (seen_search.lock().unwrap(), seen_feed.lock().unwrap());
            acked
                .keys()
                .all(|id| search.contains_key(id) && feed.contains_key(id))
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let cpu_writes = n;
    for watcher in watchers {
        let _ = watcher.await;
    }
    bus_watcher.abort();
    let acked = acked.lock().unwrap();
    let lags = |seen: &HashMap<String, Instant>| -> (Vec<Duration>, usize) {
        let mut lags = Vec::new();
        let mut missed = 0;
        for (id, (at, _)) in acked.iter() {
            match seen.get(id) {
                Some(seen) => lags.push(seen.saturating_duration_since(*at)),
                None => missed += 1,
            }
        }
        (lags, missed)
    };
    let (search, search_missed) = lags(&seen_search.lock().unwrap());
    let (feed, feed_missed) = lags(&seen_feed.lock().unwrap());
    let (on_bus, bus_missed) = lags(&seen_bus.lock().unwrap());
    let ack: Vec<Duration> = acked.values().map(|(_, took)| *took).collect();
    println!(
        "\n## Projection lag: {} writes at {rate:.0}/s, {title} (seen by polling every 5 ms)",
        acked.len()
    );
    println!("                                          p50        p99");
    println!(
        "  baseline: the write acknowledged    {:>9}  {:>9}",
        ms(percentile(&ack, 0.5)),
        ms(percentile(&ack, 0.99))
    );
    for (what, lags, missed) in [
        ("on the bus (relay)", &on_bus, bus_missed),
        ("visible in search", &search, search_missed),
        ("visible in its feed (tag)", &feed, feed_missed),
    ] {
        println!(
            "  ack → {what:<29} {:>9}  {:>9}   p99 ratio {:.1}  (never seen: {missed})",
            ms(percentile(lags, 0.5)),
            ms(percentile(lags, 0.99)),
            percentile(lags, 0.99).as_secs_f64() / percentile(&ack, 0.99).as_secs_f64()
        );
    }
    cpu.end().print(cpu_writes, "write");
}

/// Projection lag at 1,000 writes/s: through PublishPost (the whole write
/// path), and straight onto NATS (the projector alone).
async fn lag(
    infra: &Infra,
    services: &[(&'static str, u32)],
    jetstream: &jetstream::Context,
    sites_addr: &str,
    content_addr: &str,
    aggregator_addr: &str,
) {
    use anp_proto::content::v1::PublishPostRequest;
    use anp_proto::content::v1::content_service_client::ContentServiceClient;
    use anp_proto::ops::v1::OnboardNetworkRequest;
    use anp_proto::ops::v1::ops_service_client::OpsServiceClient;
    use anp_proto::sites::v1::sites_service_client::SitesServiceClient;
    use anp_proto::sites::v1::{AcceptInvitationRequest, CreateSiteRequest, SignUpRequest};
    const RATE: u64 = 1_000;
    let run_for = Duration::from_secs(env_usize("ANP_BENCH_LAG_SECONDS", 20) as u64);
    let mut ops = OpsServiceClient::new(channel(sites_addr));
    let mut sites = SitesServiceClient::new(channel(sites_addr));
    let onboarded = ops
        .onboard_network(harness::authorized(OnboardNetworkRequest {
            slug: "lag".into(),
            name: "Lag".into(),
            idempotency_key: "bench-lag".into(),
            admin_email: "admin@lag.example.org".into(),
            plan: "large".into(),
            ..Default::default()
        }))
        .await
        .expect("onboard")
        .into_inner();
    let network_id = onboarded.network.clone().unwrap().id;
    let token = sites
        .sign_up(SignUpRequest {
            email: "admin@lag.example.org".into(),
            password: harness::PASSWORD.into(),
            display_name: "Admin".into(),
        })
        .await
        .expect("sign up")
        .into_inner()
        .token;
    sites
        .accept_invitation(harness::with_token(
            AcceptInvitationRequest {
                token: onboarded.admin_invitation.unwrap().token,
            },
            &token,
        ))
        .await
        .expect("accept");
    let site = sites
        .create_site(harness::with_token(
            CreateSiteRequest {
                network_slug: "lag".into(),
                slug: "site".into(),
                name: "Site".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("site")
        .into_inner();
    let content = ContentServiceClient::new(channel(content_addr));
    let publish = |n: u64| {
        let (mut content, token) = (content.clone(), token.clone());
        async move {
            content
                .publish_post(harness::with_token(
                    PublishPostRequest {
                        network_slug: "lag".into(),
                        site_slug: "site".into(),
                        title: format!("Write {n}"),
                        body_markdown: format!("lagmarker write number {n} lagwrite{}", n / BUCKET),
                        tags: vec![format!("lagwrite{}", n / BUCKET)],
                        lang: "en".into(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("publish")
                .into_inner()
                .id
        }
    };
    // Warm-up: the first write and its projection.
    publish(0).await;
    let subject = infra.bus.subject("content", &network_id, "PostPublished");
    let bus = (jetstream.client(), subject.as_str());
    measure_lag(
        "through PublishPost (session, role, event store, relay)",
        aggregator_addr,
        (&bus.0, bus.1),
        "lagwrite",
        (RATE, run_for),
        services,
        publish,
    )
    .await;
    let (jetstream, subject) = (
        jetstream.clone(),
        infra.bus.subject("content", &network_id, "PostPublished"),
    );
    let site_id = site.id.clone();
    let straight = |n: u64| {
        let (jetstream, subject) = (jetstream.clone(), subject.clone());
        let post_id = Uuid::now_v7().to_string();
        let at = anp_kit::timestamp(chrono::Utc::now());
        let state = PostState {
            post_id: post_id.clone(),
            network_id: network_id.clone(),
            network_slug: "lag".into(),
            site_id: site_id.clone(),
            site_slug: "site".into(),
            site_name: "Site".into(),
            title: format!("Straight {n}"),
            body_markdown: format!("lagmarker straight {n} lagstraight{}", n / BUCKET),
            body_html: format!("<p>lagmarker straight {n} lagstraight{}</p>", n / BUCKET),
            tags: vec![format!("lagstraight{}", n / BUCKET)],
            lang: "en".into(),
            published_at: Some(at),
            updated_at: Some(at),
            status: "published".into(),
            visibility: "public".into(),
            ..Default::default()
        };
        let envelope = Envelope {
            event_id: Uuid::now_v7().to_string(),
            stream_id: format!("post-{post_id}"),
            version: 1,
            event_type: "PostPublished".into(),
            schema_version: 1,
            service: "content".into(),
            network_id: network_id.clone(),
            site_id: site_id.clone(),
            actor: "bench".into(),
            occurred_at: Some(at),
            traceparent: String::new(),
            payload: PostPublished { post: Some(state) }.encode_to_vec(),
        };
        async move {
            jetstream
                .publish(subject, envelope.encode_to_vec().into())
                .await
                .expect("publish")
                .await
                .expect("ack");
            post_id
        }
    };
    measure_lag(
        "straight onto NATS (JetStream ack)",
        aggregator_addr,
        (&bus.0, bus.1),
        "lagstraight",
        (RATE, run_for),
        services,
        straight,
    )
    .await;
}
