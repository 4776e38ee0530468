//! Property tests ("fuzzing") of the configuration loader, `sked_core::config::load`, with
//! arbitrary layers: TOML files built from the known keys (and unknown ones) with values of any
//! type, damaged or arbitrary text as the file, `SKED_*` environment variables and `--set`
//! flags with arbitrary names and values.
//!
//! Properties: `load` never panics; it either gives a configuration or an error with at least
//! one problem, and every problem names the key it is about (`` `redis.shards` (from env
//! SKED_REDIS__SHARDS): `many` is not an integer ``) and what is wrong with it; the only
//! problems without a key are those of the file as a whole (not readable, not TOML) and a
//! `--set` without `=`.
//!
//! Cases per property: `PROPTEST_CASES`, else a few hundred (`scripts/fuzz.sh` runs millions).

use std::collections::BTreeSet;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sked_core::config::{Layers, load};
use toml::{Table, Value};

#[path = "support/fuzz_runner.rs"]
mod runner;

use runner::Outcome;

fn check<S>(name: &str, default_cases: u32, strategy: S, property: impl Fn(S::Value) -> Outcome)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    runner::check(file!(), name, default_cases, strategy, property);
}

const DEFAULTS: &str = include_str!("../src/config/default.toml");

/// Every key path of the defaults, and the keys below the open tables that docs name.
fn known_paths() -> Vec<Vec<String>> {
    fn walk(table: &Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (k, v) in table {
            prefix.push(k.clone());
            out.push(prefix.clone());
            if let Value::Table(t) = v {
                walk(t, prefix, out);
            }
            prefix.pop();
        }
    }
    let defaults: Table = toml::from_str(DEFAULTS).expect("defaults are TOML");
    let mut out = Vec::new();
    walk(&defaults, &mut Vec::new(), &mut out);
    for extra in [
        "apps.sms.handler",
        "apps.sms.url",
        "apps.sms.timeout",
        "apps.sms.topic",
        "apps.sms.headers.authorization",
        "apps.sms.retry.max_attempts",
        "apps.sms.concurrency",
        "calendars.holidays.dates",
        "calendars.holidays.ranges",
        "calendars.holidays.weekdays",
        "calendars.holidays.timezone",
        "encryption.keys.k1.file",
        "ingest.tenants.sked.ingest",
        "redis.password",
        "auth.tokens.ops.hash",
        "auth.tokens.ops.scopes",
        "quotas.tenants.acme.max_pending",
        "kafka.rdkafka.socket.timeout.ms",
        "kafka.rdkafka.security.protocol",
        "kafka.rdkafka.sasl.pasword",
        "kafka.brokrs",
        "nonsense",
    ] {
        out.push(extra.split('.').map(str::to_owned).collect());
    }
    out
}

/// Strings that mean something to some key, valid or nearly so. No path that a `*_file` key
/// could read forever (a device): only files that do not exist or are small.
const TOKENS: &[&str] = &[
    "",
    " ",
    "0s",
    "30s",
    "1h30m",
    "soon",
    "18446744073709551615s",
    "UTC",
    "Asia/Dhaka",
    "Mars/Olympus",
    "redis://127.0.0.1:6379",
    "rediss://a:7000,redis://b:7000",
    "redis://:p,w@a:7000, redis://:p,w@b:7000",
    "redis://a:port",
    "127.0.0.1:9092",
    "sked.ingest",
    "bad topic",
    "{x}",
    "http",
    "kafka",
    "http://sms/run",
    "0.0.0.0:8080",
    "nowhere",
    "/nonexistent/sked-secret",
    "info",
    "json",
    "true",
    "-1",
    "4097",
    "[\"sat\", \"sun\"]",
    "[{from = \"2026-12-30\", to = \"2027-01-02\"}]",
    "2026-02-30",
    "\u{0}",
    "6\u{0}0",
    "é",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TOKENS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn toml_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        token().prop_map(Value::String),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![Just(0i64), Just(1), Just(16), Just(4096), Just(-1)].prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        Just(Value::Datetime(
            "2026-06-10T10:00:00Z".parse().expect("a TOML datetime")
        )),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((token(), inner), 0..4)
                .prop_map(|kv| Value::Table(kv.into_iter().collect())),
        ]
    })
}

fn path(known: &[Vec<String>]) -> impl Strategy<Value = Vec<String>> + use<> {
    prop_oneof![
        6 => proptest::sample::select(known.to_vec()),
        1 => proptest::collection::vec("[a-z_]{0,12}", 1..4),
        1 => proptest::collection::vec(any::<String>(), 1..3),
    ]
}

/// Puts `value` at `path`, making tables on the way; a non-table in the way is replaced.
fn put(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        t = match entry {
            Value::Table(next) => next,
            _ => return,
        };
    }
    t.insert(last.clone(), value);
}

/// A file's text: a document of known keys, the same damaged, or anything.
fn document(known: &[Vec<String>]) -> impl Strategy<Value = String> + use<> {
    let doc = proptest::collection::vec((path(known), toml_value()), 0..8)
        .prop_map(|entries| {
            let mut table = Table::new();
            for (path, value) in entries {
                put(&mut table, &path, value);
            }
            toml::to_string(&table).unwrap_or_default()
        })
        .boxed();
    prop_oneof![
        6 => doc.clone(),
        2 => (doc, proptest::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..4))
            .prop_map(|(text, edits)| {
                let mut chars: Vec<char> = text.chars().collect();
                for (at, c, op) in edits {
                    if chars.is_empty() {
                        chars.push(c);
                        continue;
                    }
                    let i = at.index(chars.len());
                    match op {
                        0 => chars[i] = c,
                        1 => chars.insert(i, c),
                        _ => {
                            chars.remove(i);
                        }
                    }
                }
                chars.into_iter().collect()
            }),
        1 => any::<String>(),
    ]
}

/// `SKED_` variables: known keys in env form, odd names, and names that are not config.
fn env(known: &[Vec<String>]) -> impl Strategy<Value = Vec<(String, String)>> + use<> {
    let name = prop_oneof![
        6 => path(known).prop_map(|p| format!("SKED_{}", p.join("__").to_uppercase())),
        1 => "SKED_[A-Z_]{0,20}",
        1 => any::<String>().prop_map(|s| format!("SKED_{s}")),
        1 => proptest::sample::select(
            &["SKED_CONFIG_FILE", "SKED_TOKEN", "SKED_TEST_KAFKA", "HOME", "SKED_"][..]
        )
        .prop_map(str::to_owned),
    ];
    proptest::collection::vec((name, token()), 0..6)
}

/// `--set` flags: `path=value`, and some without `=`.
fn sets(known: &[Vec<String>]) -> impl Strategy<Value = Vec<String>> + use<> {
    let set = prop_oneof![
        8 => (path(known), token()).prop_map(|(p, v)| format!("{}={v}", p.join("."))),
        1 => any::<String>(),
    ];
    proptest::collection::vec(set, 0..6)
}

#[derive(Debug, Clone)]
struct Input {
    file: Option<String>,
    env: Vec<(String, String)>,
    sets: Vec<String>,
}

fn input() -> impl Strategy<Value = Input> {
    let known = known_paths();
    (
        proptest::option::weighted(0.7, document(&known)),
        env(&known),
        sets(&known),
    )
        .prop_map(|(file, env, sets)| Input { file, env, sets })
}

/// The keys a problem may be about, dotted, with every prefix: the defaults' and every
/// layer's.
fn input_keys(input: &Input, file: &Table) -> BTreeSet<String> {
    fn walk(table: &Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if let Value::Table(t) = v {
                walk(t, &key, out);
            }
            out.insert(key);
        }
    }
    fn prefixes(parts: &[String], out: &mut BTreeSet<String>) {
        for n in 1..=parts.len() {
            out.insert(parts[..n].join("."));
        }
    }
    let defaults: Table = toml::from_str(DEFAULTS).expect("defaults are TOML");
    let mut keys = BTreeSet::new();
    walk(&defaults, "", &mut keys);
    walk(file, "", &mut keys);
    for (name, _) in &input.env {
        if let Some(rest) = name.strip_prefix("SKED_") {
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            prefixes(&parts, &mut keys);
        }
    }
    for set in &input.sets {
        if let Some((key, _)) = set.split_once('=') {
            let parts: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
            prefixes(&parts, &mut keys);
        }
    }
    keys
}

/// What kind of problem a line is, for the tally: its first words after the key (and after a
/// quoted value), e.g. `is not an integer`, `unknown key`, `cannot read`.
fn kind(problem: &str) -> String {
    let rest = problem
        .split_once("): ")
        .or_else(|| problem.split_once("`: "))
        .map_or(problem, |(_, rest)| rest);
    let rest = match rest.strip_prefix('`') {
        Some(quoted) => quoted.split_once('`').map_or("", |(_, after)| after),
        None => rest,
    };
    let words: Vec<&str> = rest
        .split(' ')
        .filter(|w| !w.is_empty())
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .take(4)
        .collect();
    if words.is_empty() {
        "other".into()
    } else {
        words.join("_")
    }
}

fn problem_names_its_key(
    problem: &str,
    file: &Option<PathBuf>,
    keys: &BTreeSet<String>,
) -> Result<String, TestCaseError> {
    if let Some(path) = file {
        let prefix = format!("file {}: ", path.display());
        if let Some(rest) = problem.strip_prefix(&prefix) {
            prop_assert!(
                rest.starts_with("not valid TOML: ") || rest.starts_with("cannot read: "),
                "file problem without a cause: {problem}"
            );
            prop_assert!(rest.len() > "not valid TOML: ".len(), "{problem}");
            return Ok("file_not_valid_toml".into());
        }
    }
    if problem.starts_with("--set ") && problem.ends_with(": expected key=value") {
        return Ok("set_without_equals".into());
    }
    // The three forms: `key` (from source): what | `key`: what | source: `key` is not a
    // valid key. Keys are quoted as given, so one may hold a backtick itself.
    if let Some(quoted) = problem.strip_suffix("` is not a valid key") {
        // An env variable or flag whose key is empty or has an empty part (`SKED_`,
        // `--set =1`, `a..b`).
        prop_assert!(
            quoted.starts_with("env SKED_") || quoted.starts_with("--set: `"),
            "{problem}"
        );
        return Ok("not_a_valid_key".into());
    }
    let Some(rest) = problem.strip_prefix('`') else {
        return Err(TestCaseError::fail(format!("names no key: {problem}")));
    };
    let Some((key, what)) = rest
        .split_once("` (from ")
        .and_then(|(key, rest)| Some((key, rest.split_once("): ")?.1)))
        .or_else(|| rest.split_once("`: "))
    else {
        return Err(TestCaseError::fail(format!("names no key: {problem}")));
    };
    // A file may have a key that is the empty string (`"" = 1`): it is unknown, quoted as ``.
    prop_assert!(
        !key.is_empty() || what == "unknown key",
        "empty key: {problem}"
    );
    prop_assert!(
        keys.contains(key) || keys.iter().any(|k| key.starts_with(&format!("{k}."))),
        "`{key}` is not a key of any layer: {problem}"
    );
    prop_assert!(
        !what.trim().is_empty(),
        "says nothing about `{key}`: {problem}"
    );
    Ok(kind(problem))
}

/// A configuration that loads has librdkafka properties that librdkafka takes: a bad one is a
/// load problem (exit 64), not a failure when the first client is made.
fn kafka_properties_are_usable(config: &sked_core::config::Config) -> Result<(), TestCaseError> {
    let mut probe = rdkafka::ClientConfig::new();
    for (key, value) in config.kafka.properties() {
        probe.set(key, value);
    }
    if let Err(err) = probe.create_native_config() {
        return Err(TestCaseError::fail(format!(
            "loaded, but librdkafka refuses the properties: {err}"
        )));
    }
    Ok(())
}

#[test]
fn any_layers_load_or_fail_naming_each_key() {
    let dir = std::env::temp_dir().join(format!("sked-fuzz-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("sked.toml");
    check("config/layers", 300, input(), |input| {
        let file = match &input.file {
            Some(text) => {
                std::fs::write(&path, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                Some(path.clone())
            }
            None => None,
        };
        let layers = Layers {
            file: file.clone(),
            env: input.env.clone(),
            sets: input.sets.clone(),
        };
        match load(&layers) {
            Ok(config) => {
                kafka_properties_are_usable(&config)?;
                // What --dump-config prints loads again.
                let dump = config.dump();
                prop_assert!(toml::from_str::<Table>(&dump).is_ok(), "dump is not TOML");
                Ok("ok".into())
            }
            Err(err) => {
                prop_assert!(!err.problems.is_empty(), "an error without problems");
                let table: Table = input
                    .file
                    .as_deref()
                    .and_then(|t| toml::from_str(t).ok())
                    .unwrap_or_default();
                let keys = input_keys(&input, &table);
                let mut first = None;
                for p in &err.problems {
                    let k = problem_names_its_key(p, &file, &keys)?;
                    first.get_or_insert(k);
                }
                Ok(first.unwrap_or_default())
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn env_and_flag_values_of_any_text_load_or_fail_naming_the_key() {
    // One known key at a time, without a file: every value reaches coerce and validate.
    let known = known_paths();
    let one = (proptest::sample::select(known), token(), any::<bool>());
    check("config/one_value", 300, one, |(path, value, as_env)| {
        let input = if as_env {
            Input {
                file: None,
                env: vec![(format!("SKED_{}", path.join("__").to_uppercase()), value)],
                sets: Vec::new(),
            }
        } else {
            Input {
                file: None,
                env: Vec::new(),
                sets: vec![format!("{}={value}", path.join("."))],
            }
        };
        let layers = Layers {
            file: None,
            env: input.env.clone(),
            sets: input.sets.clone(),
        };
        match load(&layers) {
            Ok(config) => {
                kafka_properties_are_usable(&config)?;
                Ok("ok".into())
            }
            Err(err) => {
                prop_assert!(!err.problems.is_empty());
                let keys = input_keys(&input, &Table::new());
                let mut first = None;
                for p in &err.problems {
                    let k = problem_names_its_key(p, &None, &keys)?;
                    first.get_or_insert(k);
                }
                Ok(first.unwrap_or_default())
            }
        }
    });
}
