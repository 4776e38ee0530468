use clap::{CommandFactory, error::ErrorKind};

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("sked").chain(args.iter().copied()))
}

fn submit(args: &[&str]) -> SubmitArgs {
    let mut all = vec!["job", "submit"];
    all.extend_from_slice(args);
    match parse(&all).unwrap().command {
        Command::Job(JobCommand::Submit(s)) => *s,
        other => panic!("not submit: {other:?}"),
    }
}

#[test]
fn command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn global_flags_default_and_go_anywhere() {
    let cli = parse(&[
        "job",
        "get",
        "a",
        "--json",
        "--api",
        "https://sked.example:9000/base/",
    ])
    .unwrap();
    assert!(cli.json);
    assert_eq!(cli.api.as_str(), "https://sked.example:9000/base/");
    assert_eq!(cli.timeout, Duration::from_secs(30));
    let cli = parse(&["--timeout", "2s", "job", "cancel", "b"]).unwrap();
    assert!(!cli.json);
    assert_eq!(cli.timeout, Duration::from_secs(2));
    assert!(matches!(cli.command, Command::Job(JobCommand::Cancel { id }) if id == "b"));
}

#[test]
fn bad_api_url_is_a_usage_error() {
    for url in ["not a url", "ftp://x", "mailto:ops@example.com"] {
        let err = parse(&["--api", url, "job", "get", "a"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{url}");
        assert_eq!(err.exit_code(), 2);
    }
}

#[test]
fn job_get_takes_one_id() {
    let cli = parse(&["job", "get", "order-1"]).unwrap();
    assert!(matches!(cli.command, Command::Job(JobCommand::Get { id }) if id == "order-1"));
    assert!(parse(&["job", "get"]).is_err());
    assert!(parse(&["job", "get", "a", "b"]).is_err());
}

#[test]
fn submit_from_flags() {
    let s = submit(&[
        "--app",
        "sms",
        "--cron",
        "0 9 * * MON-FRI",
        "--timezone",
        "Asia/Dhaka",
        "--id",
        "x",
        "--payload",
        r#"{"a": 1}"#,
        "--idempotency-key",
        "k",
    ]);
    assert_eq!(s.app.as_deref(), Some("sms"));
    assert_eq!(s.cron.as_deref(), Some("0 9 * * MON-FRI"));
    assert_eq!(s.timezone.as_deref(), Some("Asia/Dhaka"));
    assert_eq!(s.id.as_deref(), Some("x"));
    assert_eq!(s.payload.as_deref().map(RawValue::get), Some(r#"{"a": 1}"#));
    assert_eq!(s.idempotency_key.as_deref(), Some("k"));
    assert!(s.file.is_none() && s.input.is_none());
}

#[test]
fn submit_from_file_or_stdin() {
    let s = submit(&["--file", "req.json", "--idempotency-key", "k"]);
    assert_eq!(s.file.as_deref(), Some(std::path::Path::new("req.json")));
    assert_eq!(s.idempotency_key.as_deref(), Some("k"));
    let s = submit(&["-"]);
    assert_eq!(s.input.as_deref(), Some(std::path::Path::new("-")));
    let s = submit(&["-f", "-"]);
    assert_eq!(s.file.as_deref(), Some(std::path::Path::new("-")));
}

#[test]
fn submit_rejects_inconsistent_flags() {
    // No time, two times, no app, file with flags, invalid payload JSON.
    for args in [
        &["job", "submit", "--app", "sms"][..],
        &[
            "job", "submit", "--app", "sms", "--delay", "1m", "--every", "1h",
        ],
        &["job", "submit", "--delay", "1m"],
        &["job", "submit", "--file", "f.json", "--app", "sms"],
        &["job", "submit", "-", "--delay", "1m"],
        &["job", "submit", "-", "--file", "f.json"],
        &[
            "job",
            "submit",
            "--app",
            "sms",
            "--delay",
            "1m",
            "--payload",
            "{nope",
        ],
        &["job", "submit"],
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
    }
}

#[test]
fn topics_create_takes_config_flags() {
    let cli = parse(&[
        "topics",
        "create",
        "--config",
        "sked.toml",
        "--set",
        "kafka.brokers=b:9092",
        "--json",
    ])
    .unwrap();
    assert!(cli.json);
    let Command::Topics(TopicsCommand::Create { config }) = cli.command else {
        panic!("not topics create")
    };
    assert_eq!(
        config.config.as_deref(),
        Some(std::path::Path::new("sked.toml"))
    );
    assert_eq!(config.sets, ["kafka.brokers=b:9092"]);
    // Config flags belong to `topics create` only.
    assert!(parse(&["job", "get", "a", "--set", "x=y"]).is_err());
}

#[test]
fn help_documents_exit_codes_and_partition_warning() {
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("69  service unavailable"), "{help}");
    let mut cmd = Cli::command();
    let topics = cmd.find_subcommand_mut("topics").unwrap();
    let create = topics.find_subcommand_mut("create").unwrap();
    let help = create.render_long_help().to_string();
    assert!(help.contains("exits 0"), "{help}");
}
