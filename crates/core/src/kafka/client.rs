//! librdkafka configuration from [`KafkaOptions`]. sked's settings come first; the
//! `kafka.rdkafka` pass-through table (and the values read from `kafka.rdkafka_files`) is
//! applied last, so an operator can override anything.

use rdkafka::ClientConfig;

use crate::config::KafkaOptions;

fn base(options: &KafkaOptions, service: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set("client.id", format!("{}-{service}", options.client_id));
    config
}

fn pass_through(config: &mut ClientConfig, options: &KafkaOptions) {
    for (key, value) in options.properties() {
        config.set(key, value);
    }
}

/// A consumer in `group` that never commits by itself: sked commits an offset only after the
/// record's effect is durable.
pub fn consumer_config(options: &KafkaOptions, service: &str, group: &str) -> ClientConfig {
    let mut config = base(options, service);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A scheduler's consumers wait on time, not on volume: a fetch that waits 500 ms (the
        // librdkafka default) for data adds that much latency to every quiet moment. 5 ms
        // costs about 200 fetch requests a second per broker connection when idle.
        .set("fetch.wait.max.ms", "5");
    pass_through(&mut config, options);
    config
}

/// An idempotent producer that waits for all in-sync replicas and sends records of up to
/// `max_message_bytes` (`message.max.bytes`; [`super::size::wanted`] of
/// `limits.max_request_bytes`, so a dead letter of a largest request fits), unless
/// `kafka.rdkafka` says otherwise.
pub fn producer_config(
    options: &KafkaOptions,
    service: &str,
    max_message_bytes: usize,
) -> ClientConfig {
    let mut config = base(options, service);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "30000")
        .set(
            super::size::MESSAGE_MAX_BYTES,
            max_message_bytes.to_string(),
        );
    pass_through(&mut config, options);
    config
}
