//! Topic bootstrap: creates what is missing, never changes an existing topic.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use rdkafka::{ClientConfig, consumer::BaseConsumer, consumer::Consumer};
use sked_core::kafka::topics::{self, Outcome};
use sked_e2e::{brokers, test_config, unique};

fn partitions(topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_missing_topics_and_never_changes_partition_counts() {
    let ns = unique("topics");
    let config = test_config(&ns, &[]);
    let needed = topics::needed(&config);
    assert_eq!(
        needed.len(),
        5,
        "ingest, due, retry, dlq, audit: {needed:?}"
    );
    assert!(needed.contains(&config.topics.audit));

    // The DLQ exists already, with 2 partitions.
    topics::ensure(
        &config.kafka,
        std::slice::from_ref(&config.topics.dlq),
        2,
        1,
    )
    .await
    .unwrap();
    let out = topics::ensure(&config.kafka, &needed, 5, 1).await.unwrap();
    for (topic, outcome) in &out {
        if *topic == config.topics.dlq {
            assert_eq!(
                *outcome,
                Outcome::ExistsWithOtherPartitions {
                    partitions: 2,
                    configured: 5
                }
            );
        } else {
            assert_eq!(*outcome, Outcome::Created { partitions: 5 }, "{topic}");
        }
    }
    assert_eq!(
        partitions(&config.topics.dlq),
        2,
        "existing topic left unchanged"
    );
    assert_eq!(partitions(&config.topics.ingest), 5);

    // Running it again changes nothing.
    let again = topics::ensure(&config.kafka, &needed, 5, 1).await.unwrap();
    assert!(
        again
            .iter()
            .all(|(_, o)| !matches!(o, Outcome::Created { .. })),
        "{again:?}"
    );

    // The CLI says so, and exits 0.
    let sets: Vec<String> = sked_e2e::test_sets(&ns)
        .into_iter()
        .flat_map(|s| ["--set".to_owned(), s])
        .collect();
    let mut argv = vec!["sked".to_owned(), "topics".to_owned(), "create".to_owned()];
    argv.extend(sets);
    let text = sked_cli::run(argv).await.unwrap();
    assert!(text.contains(&config.topics.dlq), "{text}");
    assert!(text.contains("left unchanged"), "{text}");
}
