//! The body of `sked job submit`: a request file or stdin sent as-is, or a native schedule
//! request built from flags with the payload kept raw (numbers and strings byte for byte).

use std::{io::Read, path::Path};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::{
    args::SubmitArgs,
    error::{Error, exit, io_reason},
};

/// The native request fields the flags can set, in the order ARCHITECTURE.md writes them.
#[derive(Debug, Serialize)]
struct Native<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    app: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    every: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
    /// Serialized verbatim: `RawValue` is copied, never re-encoded.
    payload: &'a RawValue,
}

/// The request body `args` describe: the file (or stdin for `-`) as-is, else built from
/// flags. `stdin` is read only for `-`.
pub fn body(args: &SubmitArgs, stdin: impl Read) -> Result<Vec<u8>, Error> {
    match args.file.as_deref().or(args.input.as_deref()) {
        Some(path) => read_input(path, stdin),
        None => from_flags(args),
    }
}

/// A native request JSON built from the flags of `args`.
pub fn from_flags(args: &SubmitArgs) -> Result<Vec<u8>, Error> {
    let null = RawValue::NULL;
    let app = args
        .app
        .as_deref()
        .ok_or_else(|| Error::new(exit::USAGE, "--app is required without --file"))?;
    let request = Native {
        id: args.id.as_deref(),
        app,
        run_at: args.run_at.as_deref(),
        delay: args.delay.as_deref(),
        cron: args.cron.as_deref(),
        every: args.every.as_deref(),
        timezone: args.timezone.as_deref(),
        payload: args.payload.as_deref().unwrap_or(null),
    };
    serde_json::to_vec(&request)
        .map_err(|e| Error::new(exit::FAILURE, format!("cannot encode the request: {e}")))
}

/// The bytes of `path` (`-`: `stdin`), refused when empty.
pub fn read_input(path: &Path, mut stdin: impl Read) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    if path == Path::new("-") {
        stdin.read_to_end(&mut body).map_err(|e| {
            Error::new(
                exit::FAILURE,
                format!("cannot read stdin: {}", io_reason(&e)),
            )
        })?;
    } else {
        body = std::fs::read(path).map_err(|e| {
            Error::new(
                exit::FAILURE,
                format!("cannot read {}: {}", path.display(), io_reason(&e)),
            )
        })?;
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        let from = if path == Path::new("-") {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        return Err(Error::new(
            exit::USAGE,
            format!("{from} is empty: expected a schedule request JSON"),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command, JobCommand};

    const PAYLOAD: &str = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}"#;

    fn submit_args(args: &[&str]) -> SubmitArgs {
        let argv = ["sked", "job", "submit"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Job(JobCommand::Submit(s)) => *s,
            other => panic!("not submit: {other:?}"),
        }
    }

    fn built(args: &[&str]) -> String {
        String::from_utf8(body(&submit_args(args), std::io::empty()).unwrap()).unwrap()
    }

    #[test]
    fn payload_stays_byte_identical() {
        let json = built(&["--app", "sms", "--delay", "15m", "--payload", PAYLOAD]);
        assert_eq!(
            json,
            format!(r#"{{"app":"sms","delay":"15m","payload":{PAYLOAD}}}"#)
        );
        assert!(json.contains("12345678901234567890") && json.contains("héllo ✓"));
    }

    #[test]
    fn payload_defaults_to_null() {
        let json = built(&["--app", "sms", "--run-at", "2026-11-23T10:00:00Z"]);
        assert_eq!(
            json,
            r#"{"app":"sms","run_at":"2026-11-23T10:00:00Z","payload":null}"#
        );
    }

    #[test]
    fn every_flag_lands_in_its_field() {
        let json = built(&[
            "--app",
            "report",
            "--cron",
            "0 9 * * MON-FRI",
            "--timezone",
            "Asia/Dhaka",
            "--id",
            "daily \"report\"",
            "--payload",
            "[1, 2.50, -0]",
            "--idempotency-key",
            "not-in-body",
        ]);
        assert_eq!(
            json,
            r#"{"id":"daily \"report\"","app":"report","cron":"0 9 * * MON-FRI","timezone":"Asia/Dhaka","payload":[1, 2.50, -0]}"#
        );
        let json = built(&["--app", "a", "--every", "1h"]);
        assert_eq!(json, r#"{"app":"a","every":"1h","payload":null}"#);
        // The server parses what is sent; the result is valid JSON either way.
        let _: serde_json::Value = serde_json::from_str(&json).unwrap();
    }

    #[test]
    fn stdin_is_sent_as_is() {
        let raw = format!("{{\"appName\": \"sms\", \"jobData\": {PAYLOAD}}}\n");
        let out = body(&submit_args(&["-"]), raw.as_bytes()).unwrap();
        assert_eq!(out, raw.as_bytes());
        let out = body(&submit_args(&["--file", "-"]), raw.as_bytes()).unwrap();
        assert_eq!(out, raw.as_bytes());
    }

    #[test]
    fn file_is_sent_as_is() {
        let path =
            std::env::temp_dir().join(format!("sked-cli-request-{}.json", std::process::id()));
        std::fs::write(&path, PAYLOAD).unwrap();
        let out = body(
            &submit_args(&["--file", path.to_str().unwrap()]),
            std::io::empty(),
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(out.unwrap(), PAYLOAD.as_bytes());
    }

    #[test]
    fn missing_or_empty_input_is_one_readable_line() {
        let err = body(
            &submit_args(&["--file", "/nonexistent/req.json"]),
            std::io::empty(),
        )
        .unwrap_err();
        assert_eq!(err.code, exit::FAILURE);
        assert_eq!(
            err.message,
            "cannot read /nonexistent/req.json: no such file or directory"
        );
        let err = body(&submit_args(&["-"]), &b" \n"[..]).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                exit::USAGE,
                "stdin is empty: expected a schedule request JSON"
            )
        );
    }
}
