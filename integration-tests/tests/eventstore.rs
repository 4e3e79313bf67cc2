//! The event store's guarantees: optimistic concurrency, and a global read
//! that never skips a late-committing transaction; the relay carries every
//! event to JetStream exactly once.

use std::collections::HashSet;
use std::time::Duration;

use anp_bus::Relay;
use anp_eventstore::{
    Checkpoint, EventStore, ExpectedVersion, NewEvent, Position, StoreError, append_in,
};
use futures::StreamExt;
use uuid::Uuid;

use crate::harness::{Infra, eventually};

fn event(network: Uuid, n: usize) -> NewEvent {
    NewEvent::new(
        "TestHappened",
        network,
        "test",
        format!("payload {n}").into_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_with_the_same_expected_version_one_wins() {
    let infra = Infra::new().await;
    let store = EventStore::connect(&infra.database_url, "store_test")
        .await
        .unwrap();
    let network = Uuid::now_v7();
    store
        .append("stream-a", ExpectedVersion::NoStream, &[event(network, 0)])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append("stream-a", ExpectedVersion::Exact(1), &[event(network, n)])
                .await
        }));
    }
    let mut won = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(recorded) => {
                assert_eq!(recorded[0].version, 2);
                won += 1;
            }
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((won, conflicts), (1, 49));
    assert_eq!(store.load_stream("stream-a").await.unwrap().len(), 2);
    // Several events at once, and "any version".
    let batch = store
        .append(
            "stream-a",
            ExpectedVersion::Exact(2),
            &[
                event(network, 100),
                event(network, 101),
                event(network, 102),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        batch.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let any = store
        .append("stream-a", ExpectedVersion::Any, &[event(network, 103)])
        .await
        .unwrap();
    assert_eq!(any[0].version, 6);
    let loaded = store.load_stream("stream-a").await.unwrap();
    assert_eq!(loaded.len(), 6);
    assert_eq!(loaded[3].payload, b"payload 101".to_vec());
    // A stale or future expected version is a conflict too.
    for expected in [
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(5),
        ExpectedVersion::NoStream,
    ] {
        let result = store
            .append("stream-a", expected, &[event(network, 99)])
            .await;
        assert!(
            matches!(result, Err(StoreError::Conflict { .. })),
            "{expected:?}: {result:?}"
        );
    }
    infra.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_commits_are_never_skipped_and_reach_jetstream_once() {
    let infra = Infra::new().await;
    let store = EventStore::connect(&infra.database_url, "late_test")
        .await
        .unwrap();
    let network = Uuid::now_v7();
    const WRITERS: usize = 16;
    const PER_WRITER: usize = 40;

    // A tailing reader runs while the writers commit out of order. It stops
    // when it has seen every event (or fails at the deadline).
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut seen = Vec::new();
            let mut at = Position::default();
            while seen.len() < WRITERS * PER_WRITER {
                assert!(
                    std::time::Instant::now() < deadline,
                    "reader saw only {}",
                    seen.len()
                );
                let batch = store.read_all_after(at, 100).await.unwrap();
                for event in &batch {
                    assert!(
                        event.global > at,
                        "read out of order: {:?} after {at:?}",
                        event.global
                    );
                    assert!(
                        !seen.contains(&event.event_id),
                        "read twice: {:?}",
                        event.global
                    );
                    at = event.global;
                    seen.push(event.event_id);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // Nothing more after the last one.
            let more = store.read_all_after(at, 100).await.unwrap();
            assert!(
                more.is_empty(),
                "more after {at:?}: {:?}",
                more.iter().map(|e| e.global).collect::<Vec<_>>()
            );
            seen
        })
    };

    // And one in commit order (the relay's read), in pages of 7.
    let commit_reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut seen = Vec::new();
            let mut checkpoint = Checkpoint::default();
            while seen.len() < WRITERS * PER_WRITER {
                assert!(
                    std::time::Instant::now() < deadline,
                    "commit reader saw only {}",
                    seen.len()
                );
                let read = store.read_committed_after(&checkpoint, 7).await.unwrap();
                for event in &read.events {
                    assert!(
                        !seen.contains(&event.event_id),
                        "read twice: {:?}",
                        event.global
                    );
                    seen.push(event.event_id);
                }
                checkpoint = read.next;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let more = store.read_committed_after(&checkpoint, 7).await.unwrap();
            assert!(more.events.is_empty(), "more after the last one");
            seen
        })
    };

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..PER_WRITER {
                let mut client = store.pool().get().await.unwrap();
                let tx = client.transaction().await.unwrap();
                let new = event(network, n);
                ids.push(new.event_id);
                append_in(
                    &*tx,
                    &format!("writer-{writer}-{n}"),
                    ExpectedVersion::NoStream,
                    &[new],
                )
                .await
                .unwrap();
                // Hold some transactions open so later positions commit first.
                let hold = ((writer * 7 + n * 13) % 5) as u64 * 3;
                tokio::time::sleep(Duration::from_millis(hold)).await;
                tx.commit().await.unwrap();
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    let seen = reader.await.unwrap();
    let seen_set: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(seen.len(), seen_set.len(), "no event read twice");
    assert_eq!(
        seen_set, written,
        "every committed event read, none skipped"
    );
    assert_eq!(seen.len(), WRITERS * PER_WRITER);
    let in_commit_order = commit_reader.await.unwrap();
    assert_eq!(
        in_commit_order.iter().copied().collect::<HashSet<_>>(),
        written,
        "every committed event read in commit order, none skipped"
    );
    assert_eq!(in_commit_order.len(), WRITERS * PER_WRITER, "none twice");

    // The relay publishes every one to JetStream, once.
    let jetstream = infra.jetstream().await;
    anp_bus::ensure_stream(&jetstream, &infra.bus)
        .await
        .unwrap();
    let relay = Relay::new("late", store.clone(), jetstream.clone(), infra.bus.clone());
    eventually(Duration::from_secs(30), "relay to catch up", || async {
        (relay.pump_once().await.unwrap() == 0).then_some(())
    })
    .await;
    // A relay that restarts from an older position (as after a crash before
    // its checkpoint) republishes, and JetStream drops the duplicates.
    store
        .save_checkpoint(
            &format!("relay:{}", infra.bus.stream_name),
            Position::default(),
        )
        .await
        .unwrap();
    let restarted = Relay::new("late", store.clone(), jetstream.clone(), infra.bus.clone());
    assert_eq!(restarted.pump_once().await.unwrap(), WRITERS * PER_WRITER);
    let mut stream = jetstream.get_stream(&infra.bus.stream_name).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.state.messages as usize,
        WRITERS * PER_WRITER,
        "deduplicated by Nats-Msg-Id"
    );
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: format!("{}.late.>", infra.bus.subject_prefix),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(WRITERS * PER_WRITER)
        .messages()
        .await
        .unwrap();
    let mut published = HashSet::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .unwrap()
            .as_str()
            .to_owned();
        let (event_id, _tx) = id.split_once(':').expect("event id:tx id");
        published.insert(event_id.parse::<Uuid>().unwrap());
    }
    assert_eq!(published, written);
    infra.cleanup().await;
}

/// Transaction ids compare as numbers: 9 before 10, whatever their text.
#[tokio::test]
async fn the_global_order_compares_transaction_ids_as_numbers() {
    let infra = Infra::new().await;
    let store = EventStore::connect(&infra.database_url, "order_test")
        .await
        .unwrap();
    let network = Uuid::now_v7();
    let client = store.pool().get().await.unwrap();
    // Old transactions (every cluster is past them), inserted newest first.
    for tx in [11i64, 10, 9, 8] {
        client
            .execute(
                "INSERT INTO events (tx_id, event_id, stream_id, version, event_type, \
                 schema_version, network_id, actor, payload) \
                 VALUES ($1::text::xid8, $2, $3, 1, 'TestHappened', 1, $4, 'test', '\\x00')",
                &[
                    &tx.to_string(),
                    &Uuid::now_v7(),
                    &format!("tx-{tx}"),
                    &network,
                ],
            )
            .await
            .unwrap();
    }
    let read: Vec<u64> = store
        .read_all_after(Position::default(), 100)
        .await
        .unwrap()
        .iter()
        .map(|event| event.global.tx_id)
        .collect();
    assert_eq!(read, [8, 9, 10, 11]);
    let after_nine: Vec<u64> = store
        .read_all_after(
            Position {
                tx_id: 9,
                position: i64::MAX,
            },
            100,
        )
        .await
        .unwrap()
        .iter()
        .map(|event| event.global.tx_id)
        .collect();
    assert_eq!(after_nine, [10, 11]);
    let exported: Vec<u64> =
        anp_eventstore::network_events_in(&**client, network, Position::default(), 100)
            .await
            .unwrap()
            .iter()
            .map(|event| event.global.tx_id)
            .collect();
    assert_eq!(exported, [8, 9, 10, 11]);
    let last = anp_eventstore::network_last_position_in(&**client, network)
        .await
        .unwrap()
        .expect("a last event");
    assert_eq!(last.tx_id, 11);
    drop(client);
    drop(store);
    infra.cleanup().await;
}

/// A transaction holding an id, on its own connection (any schema: the
/// oldest running transaction of the whole cluster is what
/// `read_all_after` waits for).
async fn open_transaction(infra: &Infra) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&infra.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("BEGIN; SELECT pg_current_xact_id()")
        .await
        .unwrap();
    client
}

/// Reading in commit order (the relay): an event is read as soon as its
/// transaction commits, whatever older transaction still runs — in this
/// store or anywhere else — and an older transaction's events come once it
/// commits, none skipped, none twice; a reader catching up pages through
/// finished transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_are_read_without_waiting_for_older_transactions() {
    let infra = Infra::new().await;
    let store = EventStore::connect(&infra.database_url, "commit_test")
        .await
        .unwrap();
    let network = Uuid::now_v7();
    let ids = |events: &[anp_eventstore::RecordedEvent]| -> Vec<Uuid> {
        events.iter().map(|event| event.event_id).collect()
    };
    // An unrelated transaction, and one of this store with an event, both
    // older than the next write and still running.
    let unrelated = open_transaction(&infra).await;
    let mut old_client = store.pool().get().await.unwrap();
    let old_tx = old_client.transaction().await.unwrap();
    let old_event = event(network, 0);
    let old_id = old_event.event_id;
    append_in(&*old_tx, "old", ExpectedVersion::NoStream, &[old_event])
        .await
        .unwrap();
    let new = store
        .append("new", ExpectedVersion::NoStream, &[event(network, 1)])
        .await
        .unwrap();
    assert!(
        store
            .read_all_after(Position::default(), 100)
            .await
            .unwrap()
            .is_empty(),
        "the global order waits for the oldest running transaction"
    );
    let read = store
        .read_committed_after(&Checkpoint::default(), 100)
        .await
        .unwrap();
    assert_eq!(ids(&read.events), vec![new[0].event_id], "read on commit");
    let after_new = read.next;
    assert!(
        store
            .read_committed_after(&after_new, 100)
            .await
            .unwrap()
            .events
            .is_empty(),
        "nothing twice"
    );
    // The relay publishes it while both transactions still run.
    let jetstream = infra.jetstream().await;
    anp_bus::ensure_stream(&jetstream, &infra.bus)
        .await
        .unwrap();
    let relay = Relay::new(
        "commit",
        store.clone(),
        jetstream.clone(),
        infra.bus.clone(),
    );
    assert_eq!(relay.pump_once().await.unwrap(), 1);
    assert_eq!(relay.pump_once().await.unwrap(), 0);
    // The older transaction commits: its event comes next, though it is
    // earlier in the global order.
    old_tx.commit().await.unwrap();
    let read = store.read_committed_after(&after_new, 100).await.unwrap();
    assert_eq!(
        ids(&read.events),
        vec![old_id],
        "a late commit is not skipped"
    );
    assert!(read.events[0].global < new[0].global);
    assert!(
        store
            .read_committed_after(&read.next, 100)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(relay.pump_once().await.unwrap(), 1);
    assert_eq!(relay.pump_once().await.unwrap(), 0);
    // The relay has read every event of the network (what purging checks).
    let client = store.pool().get().await.unwrap();
    let relay_name = anp_bus::relay_checkpoint(&infra.bus);
    assert!(
        anp_eventstore::network_read_in(&**client, &relay_name, network)
            .await
            .unwrap()
    );

    unrelated.batch_execute("COMMIT").await.unwrap();

    // Catching up: more waiting than a read takes. While a transaction older
    // than all of them runs, a read returns none (as the global order
    // would); once it ends, reads page through them in order (other tests'
    // transactions may make a read return fewer).
    let mut checkpoint = store
        .read_committed_after(&Checkpoint::default(), 100)
        .await
        .unwrap()
        .next;
    let pin = open_transaction(&infra).await;
    let mut written = Vec::new();
    for n in 0..5 {
        let recorded = store
            .append(
                &format!("backlog-{n}"),
                ExpectedVersion::NoStream,
                &[event(network, n)],
            )
            .await
            .unwrap();
        written.push(recorded[0].event_id);
    }
    assert!(
        !anp_eventstore::network_read_in(&**client, &relay_name, network)
            .await
            .unwrap(),
        "unread events of the network"
    );
    let stalled = store.read_committed_after(&checkpoint, 2).await.unwrap();
    assert!(stalled.events.is_empty());
    assert_eq!(stalled.next, checkpoint);
    pin.batch_execute("COMMIT").await.unwrap();
    let mut read_back = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read_back.len() < written.len() && std::time::Instant::now() < deadline {
        let read = store.read_committed_after(&checkpoint, 2).await.unwrap();
        assert!(read.events.len() <= 2);
        read_back.extend(ids(&read.events));
        checkpoint = read.next;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(read_back, written, "in order, none skipped, none twice");
    let rest = store.read_committed_after(&checkpoint, 2).await.unwrap();
    assert!(rest.events.is_empty(), "nothing after the last one");
    infra.cleanup().await;
}
