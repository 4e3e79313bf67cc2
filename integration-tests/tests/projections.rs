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
