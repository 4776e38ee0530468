//! `sked cron preview` and `sked cron explain`, run as the real binary with no service and no
//! configuration around: output, `--json`, calendars from a file, and exit 4 with one line on
//! stderr for bad input.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::{Command, Output};

fn sked(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sked"))
        .args(args)
        // Nothing listens here: the commands must not need a service.
        .env("SKED_API_URL", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn cron_explain_prints_one_plain_english_line() {
    let out = sked(&[
        "cron",
        "explain",
        "0 30 2 * * *",
        "--tz",
        "America/New_York",
    ]);
    assert_eq!(stdout(&out), "at 02:30, every day, America/New_York\n");
    let out = sked(&["cron", "explain", "0 9 * * 1-5"]);
    assert_eq!(stdout(&out), "at 09:00, Monday through Friday, UTC\n");
}

#[test]
fn cron_preview_annotates_the_spring_forward_gap() {
    let out = sked(&[
        "cron",
        "preview",
        "0 30 2 * * *",
        "--tz",
        "America/New_York",
        "-n",
        "3",
        "--from",
        "2026-03-07T00:00:00Z",
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "at 02:30, every day, America/New_York",
            "2026-03-07T07:30:00Z  2026-03-07 02:30:00 -05:00",
            "2026-03-08T07:00:00Z  2026-03-08 03:00:00 -04:00  gap_shifted (02:30:00 does not exist)",
            "2026-03-09T06:30:00Z  2026-03-09 02:30:00 -04:00",
        ]
    );
    let out = sked(&[
        "cron",
        "preview",
        "0 30 2 * * *",
        "--tz",
        "America/New_York",
        "--dst-gap",
        "skip",
        "--from",
        "2026-03-08T00:00:00Z",
        "--to",
        "2026-03-08T23:59:59Z",
    ]);
    assert!(stdout(&out).contains("skipped (02:30:00 does not exist)"));
}

#[test]
fn cron_preview_json_has_the_rest_shape_and_calendar_exclusions() {
    let dir = std::env::temp_dir().join(format!("sked-cron-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("calendars.toml");
    std::fs::write(
        &file,
        "[holidays]\ntimezone = \"Europe/Berlin\"\ndates = [\"2026-12-25\"]\n",
    )
    .unwrap();
    let out = sked(&[
        "--json",
        "cron",
        "preview",
        "0 9 * * *",
        "--tz",
        "Europe/Berlin",
        "-n",
        "2",
        "--from",
        "2026-12-24T12:00:00Z",
        "--calendar-file",
        file.to_str().unwrap(),
    ]);
    let body: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(body["description"], "at 09:00, every day, Europe/Berlin");
    let slots = body["slots"].as_array().unwrap();
    assert_eq!(
        slots.len(),
        3,
        "two fire times plus the excluded one: {body}"
    );
    assert_eq!(slots[0]["at"], "2026-12-25T08:00:00Z");
    assert_eq!(slots[0]["annotations"], serde_json::json!(["excluded"]));
    assert_eq!(slots[0]["calendar"], "holidays");
    assert_eq!(slots[1]["local"], "2026-12-26T09:00:00");
    assert_eq!(slots[1]["offset"], "+01:00");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_4_with_one_line_naming_the_field() {
    for (args, names) in [
        (&["cron", "preview", "0 30 25 * * *"][..], "hour"),
        (&["cron", "explain", "0 0 * * MON#6"][..], "day-of-week"),
        (
            &["cron", "preview", "* * * * *", "--tz", "Mars/Base"][..],
            "Mars/Base",
        ),
        (
            &["cron", "preview", "* * * * *", "-n", "10001"][..],
            "count",
        ),
        (&["cron", "preview", "--every", "0s"][..], "every"),
    ] {
        let out = sked(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("sked: ") && err.contains(names),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    // A bad policy name is a usage error (clap), exit 2.
    let out = sked(&["cron", "preview", "* * * * *", "--dst-gap", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
}
