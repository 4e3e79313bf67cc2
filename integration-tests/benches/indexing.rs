//! The search index alone: how fast the aggregator's Tantivy index takes
//! posts, in process (no NATS, no PostgreSQL), beside Tantivy with its
//! default analysis (one text field, positions, stored) on the same posts in
//! the same run — the cost of our analysis (languages, stemming, folding,
//! phrase pairs, filters and facets) as a ratio.
//!
//! Two figures: a rebuild (the rebuild's writer: two threads, no merging,
//! one commit; common words learned from an index of the first 20,000
//! posts) and as the projector applies batches from the bus (one writer
//! thread, a commit a batch of 5,000, common words learned as it grows).
//! The baseline uses two threads, 1 GiB and no merging.
//! `ANP_BENCH_POSTS` (default 200,000) sets the corpus size.

#[allow(dead_code)]
mod corpus;

use std::time::Instant;

use anp_aggregator::events::{Delivered, decode_envelope};
use anp_aggregator::index::SearchIndex;
use corpus::Corpus;
use tantivy::schema::{STORED, Schema, TEXT};
use tantivy::{Index, TantivyDocument};

const BATCH: usize = 5_000;

fn main() {
    let posts: usize = std::env::var("ANP_BENCH_POSTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200_000);
    let corpus = Corpus::generate((posts / 1_000).max(1), posts);
    let megabytes = corpus.text_bytes() as f64 / 1e6;
    println!(
        "# Search index alone: {posts} posts ({megabytes:.0} MB of text), in process, 2 indexing threads\n"
    );

    // Baseline: Tantivy's default analysis of the same text.
    let started = Instant::now();
    {
        let mut builder = Schema::builder();
        let text = builder.add_text_field("text", TEXT | STORED);
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::create_in_dir(dir.path(), builder.build()).expect("index");
        let mut writer = index
            .writer_with_num_threads(2, 1024 * 1024 * 1024)
            .expect("writer");
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        for post in &corpus.posts {
            let mut document = TantivyDocument::default();
            document.add_text(text, &post.title);
            document.add_text(text, &post.body);
            writer.add_document(document).expect("add");
        }
        writer.commit().expect("commit");
    }
    let baseline = started.elapsed().as_secs_f64();

    // The aggregator's index, from the events the content service publishes.
    let deliveries: Vec<Delivered> = corpus
        .posts
        .iter()
        .enumerate()
        .map(|(n, post)| {
            let (event, meta, traceparent) =
                decode_envelope(corpus.post_published(post)).expect("decodes");
            Delivered {
                seq: n as u64 + 1,
                event,
                meta,
                traceparent,
            }
        })
        .collect();
    // A rebuild: its common words learned from the index it replaces
    // (here one of the first 20,000 posts).
    let root = tempfile::tempdir().expect("tempdir");
    let (previous, _) = SearchIndex::open(root.path()).expect("index");
    for batch in deliveries[..deliveries.len().min(20_000)].chunks(BATCH) {
        previous.apply(batch).expect("apply");
    }
    let started = Instant::now();
    let (index, _) = SearchIndex::create_next(root.path(), Some(&previous)).expect("index");
    let mut versions = std::collections::HashMap::new();
    for batch in deliveries.chunks(BATCH) {
        index.add_fresh(batch, &mut versions).expect("add");
    }
    index.commit_at(posts as u64).expect("commit");
    let rebuild = started.elapsed().as_secs_f64();
    assert_eq!(index.documents(), posts as u64);
    let common = index.common_words();
    drop(index);
    drop(previous);

    // As the projector applies what comes from the bus: one writer thread,
    // a commit each batch, common words learned as the index grows.
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let (index, _) = SearchIndex::open(dir.path()).expect("index");
    for batch in deliveries.chunks(BATCH) {
        index.apply(batch).expect("apply");
    }
    let live = started.elapsed().as_secs_f64();
    assert_eq!(index.documents(), posts as u64);
    println!(
        "(common words: {} English, {} Spanish; as applied, learned {} times)\n",
        common.languages[0].len(),
        common.languages[1].len(),
        index.common_words().version
    );

    println!("                                          MB/s   posts/s   µs a post");
    for (label, seconds) in [
        ("baseline: Tantivy, default analysis", baseline),
        ("rebuild (2 threads, one commit)", rebuild),
        ("as applied (1 thread, commit a batch)", live),
    ] {
        print!(
            "  {label:<38} {:>6.1} {:>9.0} {:>10.1}",
            megabytes / seconds,
            posts as f64 / seconds,
            seconds * 1e6 / posts as f64
        );
        if seconds != baseline {
            print!("   ratio {:.2}", baseline / seconds);
        }
        println!();
    }
}
