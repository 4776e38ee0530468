//! Runs one parsed command line: calls the API or Kafka and returns what goes to stdout.

use std::ffi::OsString;

use clap::Parser;
use sked_core::kafka::topics;

use crate::{
    api::Client,
    args::{Cli, Command, JobCommand, TopicsCommand},
    cron, dlq,
    error::{Error, exit},
    manage, ops, render, request,
};

/// Parses `args` (the first item is the program name) and runs the command.
///
/// `Ok` holds stdout, including `--help` and `--version` text; a usage error is an
/// [`Error`] with code [`exit::USAGE`] whose message is clap's, without the usage lines.
pub async fn run<I, T>(args: I) -> Result<String, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => execute(cli).await,
        Err(e) if e.exit_code() == 0 => Ok(e.render().to_string()),
        Err(e) => Err(Error::new(
            exit::USAGE,
            usage_message(&e.render().to_string()),
        )),
    }
}

/// Clap's error text up to its `Usage:` section, on one line.
fn usage_message(text: &str) -> String {
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect();
    let message = message.join(" ");
    match message.strip_prefix("error: ") {
        Some(rest) => rest.to_owned(),
        None if message.is_empty() => "invalid arguments".to_owned(),
        None => message,
    }
}

/// Runs a parsed command line. `Ok` holds stdout, ending in a newline.
///
/// `sked job submit -` reads the process's stdin.
pub async fn execute(cli: Cli) -> Result<String, Error> {
    match cli.command {
        Command::Job(JobCommand::Publish(args)) => publish(&args).await,
        Command::Job(
            command @ (JobCommand::Submit(_) | JobCommand::Get { .. } | JobCommand::Cancel { .. }),
        ) => {
            let client = Client::new(cli.api, cli.timeout, cli.token.as_deref())?;
            job(&client, command, cli.json).await
        }
        Command::Job(command) => {
            let client = Client::new(cli.api, cli.timeout, cli.token.as_deref())?;
            manage::job(&client, command, cli.json).await
        }
        Command::App(command) => {
            let client = Client::new(cli.api, cli.timeout, cli.token.as_deref())?;
            manage::scope(&client, "apps", command, cli.json).await
        }
        Command::Tenant(command) => {
            let client = Client::new(cli.api, cli.timeout, cli.token.as_deref())?;
            manage::scope(&client, "tenants", command, cli.json).await
        }
        Command::Pauses => {
            manage::pauses(
                &Client::new(cli.api, cli.timeout, cli.token.as_deref())?,
                cli.json,
            )
            .await
        }
        Command::Stats => {
            manage::stats(
                &Client::new(cli.api, cli.timeout, cli.token.as_deref())?,
                cli.json,
            )
            .await
        }
        Command::Ops(command) => {
            ops::run(
                &Client::new(cli.api, cli.timeout, cli.token.as_deref())?,
                command,
                cli.json,
            )
            .await
        }
        Command::Topics(TopicsCommand::Create { config }) => topics_create(&config, cli.json).await,
        Command::Dlq(command) => {
            let client = Client::new(cli.replayer, cli.timeout, cli.token.as_deref())?;
            dlq::run(&client, command, cli.json).await
        }
        Command::Cron(command) => cron::run(command, cli.json),
        Command::Auth(command) => crate::auth::run(command, std::io::stdin().lock()),
    }
}

/// Turns a 2xx answer body into human output.
type Render = fn(&str) -> Result<String, Error>;

async fn job(client: &Client, command: JobCommand, json: bool) -> Result<String, Error> {
    let (answer, human): (_, Render) = match command {
        JobCommand::Submit(args) => {
            let body = request::body(&args, std::io::stdin().lock())?;
            (
                client.submit(body, args.idempotency_key.as_deref()).await?,
                render::submitted,
            )
        }
        JobCommand::Get { id } => (client.get(&id).await?, render::job),
        JobCommand::Cancel { id } => (client.cancel(&id).await?, render::cancelled),
        other => return manage::job(client, other, json).await,
    };
    if json {
        let mut out = answer.body;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        return Ok(out);
    }
    human(&answer.body)
}

fn load_config(args: &sked_core::config::Args) -> Result<sked_core::config::Config, Error> {
    args.load().map_err(|e| {
        Error::new(
            exit::CONFIG,
            format!("invalid configuration: {}", e.problems.join("; ")),
        )
    })
}

async fn publish(args: &crate::args::PublishArgs) -> Result<String, Error> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let config = load_config(&args.config)?;
    let body = request::body(&args.request, std::io::stdin().lock())?;
    let producer: FutureProducer = sked_core::kafka::producer_config(
        &config.kafka,
        "cli",
        sked_core::kafka::size::wanted(config.limits.max_request_bytes),
    )
    .create()
    .map_err(|e| Error::new(exit::CONFIG, format!("invalid kafka settings: {e}")))?;
    let key = args.key.clone().or_else(|| args.request.id.clone());
    let topic = &config.topics.ingest;
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(&body);
    if let Some(key) = &key {
        record = record.key(key.as_str());
    }
    let delivery = producer
        .send(record, std::time::Duration::from_secs(30))
        .await
        .map_err(|(e, _)| {
            Error::new(
                exit::UNAVAILABLE,
                format!("cannot publish to {topic} at {}: {e}", config.kafka.brokers),
            )
        })?;
    Ok(format!(
        "published to {topic} partition {} offset {}\n",
        delivery.partition, delivery.offset
    ))
}

async fn topics_create(args: &sked_core::config::Args, json: bool) -> Result<String, Error> {
    let config = load_config(args)?;
    if args.dump_config {
        return Ok(config.dump());
    }
    let needed = topics::needed(&config);
    let outcomes = topics::ensure(
        &config.kafka,
        &needed,
        config.topics.partitions,
        config.topics.replication_factor,
    )
    .await
    .map_err(|e| topics_error(&config.kafka.brokers, e))?;
    if json {
        render::topics_json(&outcomes)
    } else {
        Ok(render::topics(&outcomes))
    }
}

fn topics_error(brokers: &str, err: topics::Error) -> Error {
    use rdkafka::error::KafkaError;
    match err {
        topics::Error::Kafka(KafkaError::ClientCreation(why)) => {
            Error::new(exit::CONFIG, format!("invalid kafka settings: {why}"))
        }
        topics::Error::Kafka(e) => Error::new(
            exit::UNAVAILABLE,
            format!("cannot reach kafka at {brokers}: {e}"),
        ),
        e @ topics::Error::Create { .. } => Error::new(exit::FAILURE, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_keep_clap_message_on_one_line() {
        let text = "error: the following required arguments were not provided:\n  <--run-at <TIME>|--delay <DURATION>>\n\nUsage: sked job submit\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_message(text),
            "the following required arguments were not provided: <--run-at <TIME>|--delay <DURATION>>"
        );
        assert_eq!(usage_message(""), "invalid arguments");
    }
}
