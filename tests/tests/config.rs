//! Configuration errors and `--dump-config` of the service binaries.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

use sked_e2e::binary;

#[test]
fn unknown_key_and_bad_values_exit_64_naming_every_problem() {
    let out = Command::new(binary("sked-ingest"))
        .args([
            "--set",
            "kafka.brokrs=x",
            "--set",
            "ingest.batch_linger=soon",
        ])
        .env("SKED_REDIS__SHARDS", "many")
        .env("SKED_DEFAULT_TIMEZONE", "Mars/Olympus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "kafka.brokrs",
        "ingest.batch_linger",
        "redis.shards",
        "default_timezone",
    ] {
        assert!(
            err.contains(&format!("`{key}`")),
            "{key} not named in:\n{err}"
        );
    }
    assert!(err.contains("4 problem(s)"), "{err}");
}

#[test]
fn dump_config_prints_effective_toml_without_secrets() {
    let out = Command::new(binary("sked-ingest"))
        .args([
            "--dump-config",
            "--set",
            "redis.url=redis://app:hunter2@cache:6379",
        ])
        .env("SKED_KAFKA__BROKERS", "broker-1:9092")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#"brokers = "broker-1:9092""#), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let _: toml::Table = text.parse().expect("valid toml");
}
