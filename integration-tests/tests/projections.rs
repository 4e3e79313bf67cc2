//! Projections you can trust: an event that cannot be read is parked with
//! its error while the projections go on; the status says how far behind
//! they are.

use std::time::Duration;

use anp_proto::aggregator::v1::ProjectionStatusRequest;
use anp_proto::events::v1::Envelope;
use prost::Message;

use crate::flow::{create_site, feed_ids, publish};
use crate::harness::{Stack, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_events_are_parked_and_the_projections_go_on() {
    let stack = Stack::start().await;
    let onboarded = stack.onboard("poison", "Poison").await;
    let network_id = onboarded.network.unwrap().id;
    create_site(&stack, "poison", "site", "Site").await;
    let wait = Duration::from_secs(15);
    let before = publish(&stack, "poison", "site", "Before", "first", "en").await;
    let expected = vec![before.clone()];
    eventually(wait, "the first post", || async {
        (feed_ids(&stack, "poison", "site").await == expected).then_some(())
    })
    .await;

    // Two poisoned messages: bytes that are no envelope, and an envelope
    // whose payload is no post.
    let jetstream = stack.infra.jetstream().await;
    let subject = format!(
        "{}.content.{network_id}.PostPublished",
        stack.infra.bus.subject_prefix
    );
    let bad_payload = Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: "PostPublished".into(),
        network_id: network_id.clone(),
        payload: vec![0xff, 0xff, 0xff, 0xff],
        ..Default::default()
    }
    .encode_to_vec();
    for payload in [vec![0xff_u8, 0x01, 0x02], bad_payload] {
        jetstream
            .publish(subject.clone(), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // What comes after them is projected.
    let after = publish(&stack, "poison", "site", "After", "second", "en").await;
    let expected = vec![after.clone(), before.clone()];
    eventually(wait, "the post after the poison", || async {
        (feed_ids(&stack, "poison", "site").await == expected).then_some(())
    })
    .await;
    let status = eventually(wait, "parked and caught up", || async {
        let status = stack
            .aggregator()
            .projection_status(ProjectionStatusRequest {})
            .await
            .ok()?
            .into_inner();
        (status.parked_events == 2 && status.lag_events == 0).then_some(status)
    })
    .await;
    let errors: Vec<&str> = status
        .recently_parked
        .iter()
        .map(|parked| parked.error.as_str())
        .collect();
    assert!(errors.iter().any(|e| e.contains("envelope")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("PostPublished")),
        "{errors:?}"
    );
    assert!(status.recently_parked.iter().all(|p| p.subject == subject));
    assert_eq!(status.lag_seconds, 0.0);
    assert!(status.index_bytes > 0);
    assert_eq!(status.feeds_seq, status.stream_last_seq);
    assert_eq!(status.index_seq, status.stream_last_seq);
    assert_eq!(status.consumer_pending, 0);
    stack.stop().await;
}

/// Every id once among all hits of `words` (pages of 100).
async fn all_hit_ids(stack: &Stack, words: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let response = stack
            .aggregator()
            .search(anp_proto::aggregator::v1::SearchRequest {
                query: words.into(),
                limit: 100,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.extend(response.hits.into_iter().map(|hit| hit.id));
        if response.next_cursor.is_empty() {
            return ids;
        }
        cursor = response.next_cursor;
    }
}

fn generations(stack: &Stack) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(stack.index_dir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reindex_rebuilds_from_the_event_stores_under_load_and_swaps() {
    use anp_proto::aggregator::v1::ReindexRequest;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    use tonic::Code;

    let stack = Stack::start().await;
    stack.onboard("rebuilt", "Rebuilt").await;
    create_site(&stack, "rebuilt", "site", "Site").await;
    let wait = Duration::from_secs(30);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    for n in 0..30 {
        let id = publish(
            &stack,
            "rebuilt",
            "site",
            &format!("Before {n}"),
            "rebuilt words",
            "en",
        )
        .await;
        acked.lock().unwrap().insert(id);
    }
    eventually(wait, "the first posts searchable", || async {
        (all_hit_ids(&stack, "rebuilt").await.len() == 30).then_some(())
    })
    .await;
    let before = generations(&stack);
    assert_eq!(before.len(), 1, "{before:?}");

    // Only an operator with projections:rebuild, only through the ops API.
    crate::harness::expect_error(
        stack.ops().reindex(ReindexRequest::default()).await,
        Code::Unauthenticated,
        "authorization",
    );
    crate::harness::expect_error(
        stack.aggregator().reindex(ReindexRequest::default()).await,
        Code::Unauthenticated,
        "authorization",
    );
    crate::harness::expect_error(
        stack
            .ops()
            .reindex(crate::harness::authorized(ReindexRequest {
                scope: "everything".into(),
            }))
            .await,
        Code::InvalidArgument,
        "scope",
    );

    // Writes and searches go on while the rebuild runs.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stack, acked, done) = (&stack, acked.clone(), done.clone());
        async move {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) && n < 60 {
                let id = publish(
                    stack,
                    "rebuilt",
                    "site",
                    &format!("During {n}"),
                    "rebuilt words",
                    "en",
                )
                .await;
                acked.lock().unwrap().insert(id);
                n += 1;
            }
        }
    };
    let reader = {
        let (stack, done) = (&stack, done.clone());
        async move {
            let mut searches = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                // The old index serves all along: never fewer hits than before.
                let found = all_hit_ids(stack, "rebuilt").await.len();
                assert!(found >= 30, "search went short during the rebuild: {found}");
                searches += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            searches
        }
    };
    let rebuild = {
        let (stack, done) = (&stack, done.clone());
        async move {
            // Let some writes land first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let report = stack
                .ops()
                .reindex(crate::harness::authorized(ReindexRequest {
                    scope: "all".into(),
                }))
                .await
                .unwrap()
                .into_inner();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            report
        }
    };
    let ((), searches, report) = tokio::join!(writer, reader, rebuild);
    assert!(searches > 0);
    assert!(report.events >= 30, "{report:?}");

    // Exactly once, everything acknowledged: in search and in the feed.
    let expected = acked.lock().unwrap().clone();
    let found = eventually(wait, "every acknowledged post once", || async {
        let ids = all_hit_ids(&stack, "rebuilt").await;
        (ids.len() == expected.len()).then_some(ids)
    })
    .await;
    assert_eq!(found.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let feed = crate::flow::paged_feed_ids(&stack, "rebuilt", "site", 50).await;
    assert_eq!(feed.len(), expected.len());
    assert_eq!(feed.into_iter().collect::<BTreeSet<_>>(), expected);
    // A new generation took the old one's place.
    let after = generations(&stack);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
    let current = std::fs::read_to_string(stack.index_dir.path().join("CURRENT")).unwrap();
    assert_eq!(current.trim(), after[0]);
    // The new index goes on taking writes from the bus.
    let later = publish(&stack, "rebuilt", "site", "After", "rebuilt words", "en").await;
    eventually(wait, "a post after the swap", || async {
        all_hit_ids(&stack, "rebuilt")
            .await
            .contains(&later)
            .then_some(())
    })
    .await;

    // An operator whose call goes away (a timeout, a dropped connection)
    // still gets the whole rebuild, swapped in, and its audit line.
    let mut ops = stack.ops();
    let call = ops.reindex(crate::harness::authorized(ReindexRequest {
        scope: "search".into(),
    }));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), call)
            .await
            .is_err(),
        "the rebuild answered before the call was dropped"
    );
    let swapped = eventually(wait, "the dropped call's rebuild swapped in", || async {
        let now = generations(&stack);
        (now.len() == 1 && now != after).then_some(now)
    })
    .await;
    assert_ne!(swapped, before);
    eventually(wait, "the dropped call's rebuild audited", || async {
        let audit = stack
            .ops()
            .list_audit(crate::harness::authorized(
                anp_proto::ops::v1::ListAuditRequest::default(),
            ))
            .await
            .unwrap()
            .into_inner();
        audit
            .entries
            .iter()
            .any(|entry| {
                entry.action == "Reindex"
                    && entry.outcome == "ok"
                    && entry.detail.starts_with("scope=search")
            })
            .then_some(())
    })
    .await;
    let mut everything = expected.clone();
    everything.insert(later);
    let ids = all_hit_ids(&stack, "rebuilt").await;
    assert_eq!(ids.len(), everything.len());
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), everything);
    stack.stop().await;
}

/// The relay publishes an event as soon as its transaction commits, even
/// while an older transaction still runs (decision 0025); a rebuild that
/// swaps in behind the consumer's checkpoint must hold such an event too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reindex_keeps_what_was_published_while_an_older_transaction_runs() {
    use anp_proto::aggregator::v1::ReindexRequest;

    let stack = Stack::start().await;
    stack.onboard("pinned", "Pinned").await;
    create_site(&stack, "pinned", "site", "Site").await;
    // A transaction holding an id, older than the post, open throughout.
    let (pin, connection) =
        tokio_postgres::connect(&stack.infra.database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    pin.batch_execute("BEGIN; SELECT pg_current_xact_id()")
        .await
        .unwrap();
    let id = publish(&stack, "pinned", "site", "Pinned", "pinned words", "en").await;
    let wait = Duration::from_secs(30);
    eventually(
        wait,
        "the post searchable while the older transaction runs",
        || async { (all_hit_ids(&stack, "pinned").await == vec![id.clone()]).then_some(()) },
    )
    .await;
    stack
        .ops()
        .reindex(crate::harness::authorized(ReindexRequest {
            scope: "search".into(),
        }))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the post in the rebuilt index",
        || async { (all_hit_ids(&stack, "pinned").await == vec![id.clone()]).then_some(()) },
    )
    .await;
    pin.batch_execute("COMMIT").await.unwrap();
    stack.stop().await;
}
