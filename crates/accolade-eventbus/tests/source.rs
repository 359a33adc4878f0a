//! The `EventSource` seam: an in-memory source drives a transport-independent consumer loop.

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use accolade_eventbus::{
    decode_entry, full_topic, DecodeError, EventSource, Fields, SchemaRegistry,
};

/// Stands in for the Redis source: messages are (entry id, fields).
struct MemorySource {
    topic: String,
    pending: VecDeque<(String, Fields)>,
    acked: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("never happens")]
struct NoError;

impl EventSource for MemorySource {
    type Message = (String, Fields);
    type Error = NoError;

    fn topic(&self) -> &str {
        &self.topic
    }

    async fn fetch(&mut self, max: usize) -> Result<Vec<Self::Message>, NoError> {
        let n = max.min(self.pending.len());
        Ok(self.pending.drain(..n).collect())
    }

    fn decode(
        &self,
        registry: &SchemaRegistry,
        message: &Self::Message,
    ) -> Result<serde_json::Value, DecodeError> {
        decode_entry(registry, &message.1)
    }

    async fn ack(&mut self, messages: &[Self::Message]) -> Result<(), NoError> {
        self.acked.extend(messages.iter().map(|(id, _)| id.clone()));
        Ok(())
    }
}

/// Runs a future whose every await is immediately ready.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// The loop the server runs, written only against the trait.
async fn consume<S: EventSource>(
    source: &mut S,
    registry: &SchemaRegistry,
) -> Result<(Vec<serde_json::Value>, Vec<&'static str>), S::Error> {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    loop {
        let batch = source.fetch(2).await?;
        if batch.is_empty() {
            return Ok((events, rejected));
        }
        for message in &batch {
            match source.decode(registry, message) {
                Ok(event) => events.push(event),
                Err(e) => rejected.push(e.code()),
            }
        }
        source.ack(&batch).await?;
    }
}

#[test]
fn a_source_feeds_the_consumer_loop() {
    let registry = SchemaRegistry::builtin();
    let mut entries: VecDeque<(String, Fields)> = common::all_wire_samples()
        .iter()
        .enumerate()
        .map(|(i, (_, s))| (format!("1700000000000-{i}"), common::entry_fields(s)))
        .collect();
    let mut unknown = common::passing_status_fields();
    unknown[0].1 = b"org.openedx.content_authoring.xblock.published.v1".to_vec();
    entries.push_back(("1700000000001-0".into(), unknown));

    let mut source = MemorySource {
        topic: full_topic(Some("dev"), "learning-badges-lifecycle"),
        pending: entries,
        acked: Vec::new(),
    };
    assert_eq!(source.topic(), "dev-learning-badges-lifecycle");
    let (events, rejected) = block_on(consume(&mut source, &registry)).unwrap();
    assert_eq!(events.len(), 15);
    assert_eq!(rejected, ["unknown_event_type"]);
    assert_eq!(source.acked.len(), 16);
}

#[test]
fn topic_prefix() {
    assert_eq!(
        full_topic(Some("k3f"), "learning-badges-lifecycle"),
        "k3f-learning-badges-lifecycle"
    );
    assert_eq!(
        full_topic(Some(""), "learning-badges-lifecycle"),
        "learning-badges-lifecycle"
    );
    assert_eq!(
        full_topic(None, "learning-badges-lifecycle"),
        "learning-badges-lifecycle"
    );
}
