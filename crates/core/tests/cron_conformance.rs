//! Runs the OCPS cron conformance vectors (`tests/data/ocps/`, CC BY-SA 4.0, see the README
//! there) against [`CronExpr`].
//!
//! Every vector must pass except the ones in [`DEVIATIONS`], where sked keeps its documented
//! behaviour; those are checked to still behave as sked documents, so a change is noticed.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use sked_core::schedule::CronExpr;

const VECTORS: &str = include_str!("data/ocps/conformance-tests.json");

/// Vector id, why sked differs, and whether sked accepts the pattern.
const DEVIATIONS: &[(&str, &str, bool)] = &[
    (
        "ocps-1.1-nicknames-are-case-sensitive",
        "sked has always accepted macros in any case and stored jobs keep their text",
        true,
    ),
    (
        "ocps-1.1-reboot-parse-and-runtime-handling",
        "sked has no start-up event; `@reboot` is rejected when the request is parsed",
        false,
    ),
];

fn datetime(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|err| panic!("bad vector datetime {s}: {err}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Runs one vector; `Err` says what went wrong.
fn run(test: &Value) -> Result<(), String> {
    let pattern = test["pattern"].as_str().ok_or("no pattern")?;
    let kind = test["type"].as_str().ok_or("no type")?;
    let expect = &test["expectations"];
    let parsed = CronExpr::parse(pattern);
    match kind {
        "datetime-match" => {
            let expr = parsed.map_err(|err| format!("rejected: {err}"))?;
            for at in strings(&expect["mustMatch"]) {
                if !expr.includes_local(datetime(at)) {
                    return Err(format!("does not match {at}"));
                }
            }
            for at in strings(&expect["mustNotMatch"]) {
                if expr.includes_local(datetime(at)) {
                    return Err(format!("matches {at}"));
                }
            }
            Ok(())
        }
        "parse-accept" => parsed.map(|_| ()).map_err(|err| format!("rejected: {err}")),
        "parse-reject" | "portability" => match parsed {
            Ok(_) => Err("accepted".to_owned()),
            Err(_) => Ok(()),
        },
        "equivalence" => {
            let a = parsed.map_err(|err| format!("rejected: {err}"))?;
            let other = expect["equivalentTo"].as_str().ok_or("no equivalentTo")?;
            let b = CronExpr::parse(other).map_err(|err| format!("{other} rejected: {err}"))?;
            let mut t = DateTime::<Utc>::from_timestamp(1_735_689_600, 0).ok_or("time")?;
            for _ in 0..500 {
                let (na, nb) = (a.next_after(t, Tz::UTC), b.next_after(t, Tz::UTC));
                if na != nb {
                    return Err(format!("differ after {t}: {na:?} vs {nb:?}"));
                }
                t = na.ok_or("no fire")?;
            }
            Ok(())
        }
        "runtime-capability" => match parsed {
            Ok(_) => Ok(()),
            Err(err) => Err(format!("rejected: {err}")),
        },
        other => Err(format!("unknown vector type {other}")),
    }
}

#[test]
fn ocps_conformance_vectors_pass() {
    let doc: Value = serde_json::from_str(VECTORS).expect("vectors are JSON");
    let versions = doc["versions"].as_object().expect("versions");
    let (mut passed, mut deviated, mut failures) = (0, 0, Vec::new());
    for (version, body) in versions {
        for test in body["tests"].as_array().expect("tests") {
            let id = test["id"].as_str().unwrap_or("?");
            let result = run(test);
            match DEVIATIONS.iter().find(|(d, _, _)| *d == id) {
                Some((_, why, accepts)) => {
                    let pattern = test["pattern"].as_str().unwrap_or("");
                    assert_eq!(
                        CronExpr::parse(pattern).is_ok(),
                        *accepts,
                        "{id}: documented deviation ({why}) no longer holds"
                    );
                    deviated += 1;
                }
                None => match result {
                    Ok(()) => passed += 1,
                    Err(err) => failures.push(format!("{version} {id}: {err}")),
                },
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing vectors:\n{}",
        failures.join("\n")
    );
    assert_eq!(deviated, DEVIATIONS.len());
    assert!(passed >= 35, "only {passed} vectors ran");
}
