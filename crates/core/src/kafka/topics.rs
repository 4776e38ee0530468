//! Topic bootstrap: creates the topics of ARCHITECTURE.md that do not exist yet and reports
//! those that do. It never changes the partition count of an existing topic: doing so would
//! move keys to other partitions and break per-key order.

use std::time::Duration;

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
};

use crate::config::{Config, KafkaOptions};

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Created with the configured partitions.
    Created {
        /// Partitions.
        partitions: i32,
    },
    /// Already there with the configured partitions.
    Exists {
        /// Partitions.
        partitions: i32,
    },
    /// Already there with another partition count; left unchanged.
    ExistsWithOtherPartitions {
        /// Partitions the topic has.
        partitions: i32,
        /// Partitions the configuration asks for.
        configured: i32,
    },
}

/// A bootstrap failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker refused or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// One topic could not be created.
    #[error("cannot create topic {topic}: {code}")]
    Create {
        /// Topic.
        topic: String,
        /// Broker error.
        code: RDKafkaErrorCode,
    },
}

/// The topics an installation needs: ingest, due, retry, dlq, audit and every app's own due
/// topic.
pub fn needed(config: &Config) -> Vec<String> {
    let mut topics = vec![
        config.topics.ingest.clone(),
        config.topics.due.clone(),
        config.topics.retry.clone(),
        config.topics.dlq.clone(),
        config.topics.audit.clone(),
    ];
    topics.extend(config.apps.values().filter_map(|a| a.topic.clone()));
    topics.sort();
    topics.dedup();
    topics
}

/// Creates the missing ones among `topics`.
pub async fn ensure(
    kafka: &KafkaOptions,
    topics: &[String],
    partitions: i32,
    replication: i32,
) -> Result<Vec<(String, Outcome)>, Error> {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (k, v) in kafka.properties() {
        config.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let existing = partition_counts(&admin, topics)?;
    let mut out = Vec::new();
    let missing: Vec<&String> = topics
        .iter()
        .filter(|t| !existing.iter().any(|(n, _)| n == *t))
        .collect();
    if !missing.is_empty() {
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&new, &opts).await? {
            match result {
                Ok(topic) => out.push((topic, Outcome::Created { partitions })),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    out.push((topic, Outcome::Exists { partitions }))
                }
                Err((topic, code)) => return Err(Error::Create { topic, code }),
            }
        }
    }
    for (topic, n) in existing {
        out.push((
            topic,
            if n == partitions {
                Outcome::Exists { partitions: n }
            } else {
                Outcome::ExistsWithOtherPartitions {
                    partitions: n,
                    configured: partitions,
                }
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[String],
) -> Result<Vec<(String, i32)>, Error> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| {
            topics.iter().any(|n| n == t.name())
                && t.error().is_none()
                && !t.partitions().is_empty()
        })
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect())
}
