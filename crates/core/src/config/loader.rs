//! The layered loader: embedded defaults → optional TOML file → `SKED_*` environment →
//! `--set key=value` flags. Every problem is collected and reported at once.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use toml::{Table, Value};

use super::Config;

const DEFAULTS: &str = include_str!("default.toml");
const ENV_PREFIX: &str = "SKED_";
/// The `[kafka]` tables whose keys are librdkafka property names (dots kept).
const RDKAFKA_TABLES: [&str; 2] = ["rdkafka", "rdkafka_files"];

/// True for a path into `kafka.rdkafka` or `kafka.rdkafka_files`.
fn is_rdkafka_table(parts: &[impl AsRef<str>]) -> bool {
    parts.len() >= 2 && parts[0].as_ref() == "kafka" && RDKAFKA_TABLES.contains(&parts[1].as_ref())
}
/// `SKED_*` variables that are not configuration keys: the CLI's and the scripts' own.
const NOT_CONFIG: [&str; 4] = [
    "SKED_CONFIG_FILE",
    "SKED_API_URL",
    "SKED_REPLAYER_URL",
    "SKED_TOKEN",
];
/// Prefixes of `SKED_*` variables the dev and test scripts use.
const NOT_CONFIG_PREFIXES: [&str; 3] = ["SKED_TEST_", "SKED_DEV_", "SKED_TOOLS_"];

fn is_config_var(name: &str) -> bool {
    name.starts_with(ENV_PREFIX)
        && !NOT_CONFIG.contains(&name)
        && !NOT_CONFIG_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The inputs of one load. Tests build this by hand; they never touch the process environment.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// Optional TOML file.
    pub file: Option<PathBuf>,
    /// Environment variables; only those starting with `SKED_` are read.
    pub env: Vec<(String, String)>,
    /// `key.path=value` overrides from the command line.
    pub sets: Vec<String>,
}

impl Layers {
    /// The file and flags given, with the process environment.
    pub fn from_process(file: Option<PathBuf>, sets: Vec<String>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
            sets,
        }
    }
}

/// Where a value came from, named in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The embedded defaults.
    Default,
    /// The TOML file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A `--set` flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("defaults"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag => f.write_str("--set"),
        }
    }
}

/// Every problem found in one load.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Error {
    /// One line per problem, each naming the key.
    pub problems: Vec<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration ({} problem(s))",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Loads, merges, deserializes and validates the configuration.
pub fn load(layers: &Layers) -> Result<Config, Error> {
    let defaults: Table = toml::from_str(DEFAULTS).expect("embedded default.toml is valid TOML");
    let mut merged = defaults.clone();
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    let mut problems = Vec::new();

    if let Some(path) = &layers.file {
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<Table>(&text) {
                Ok(table) => merge(
                    &mut merged,
                    table,
                    &mut Vec::new(),
                    &Source::File(path.clone()),
                    &mut sources,
                ),
                Err(e) => problems.push(format!(
                    "file {}: not valid TOML: {}",
                    path.display(),
                    e.message()
                )),
            },
            Err(e) => problems.push(format!("file {}: cannot read: {e}", path.display())),
        }
    }

    let mut env: Vec<_> = layers
        .env
        .iter()
        .filter(|(k, _)| is_config_var(k))
        .collect();
    env.sort();
    for (name, raw) in env {
        let path = env_path(&name[ENV_PREFIX.len()..]);
        set_value(
            &mut merged,
            &defaults,
            &path,
            raw,
            Source::Env(name.clone()),
            &mut sources,
            &mut problems,
        );
    }

    for set in &layers.sets {
        let Some((key, raw)) = set.split_once('=') else {
            problems.push(format!("--set {set}: expected key=value"));
            continue;
        };
        let path = flag_path(key.trim());
        set_value(
            &mut merged,
            &defaults,
            &path,
            raw,
            Source::Flag,
            &mut sources,
            &mut problems,
        );
    }

    let mut config = deserialize_collecting(merged, &defaults, &sources, &mut problems);
    if let Some(config) = &mut config {
        problems.extend(super::secret::load_files(config));
        problems.extend(config.validate());
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(Error { problems }),
    }
}

/// `KAFKA__RDKAFKA__SESSION_TIMEOUT_MS` → `kafka.rdkafka."session.timeout.ms"` (and alike
/// for `KAFKA__RDKAFKA_FILES__…`); otherwise each
/// `__`-separated part is one lowercase level.
fn env_path(rest: &str) -> Vec<String> {
    let mut parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if parts.len() == 3 && is_rdkafka_table(&parts) {
        parts[2] = parts[2].replace('_', ".");
    }
    parts
}

/// `kafka.rdkafka.session.timeout.ms` → the rdkafka property keeps its dots.
fn flag_path(key: &str) -> Vec<String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() > 2 && is_rdkafka_table(&parts) {
        vec![parts[0].into(), parts[1].into(), parts[2..].join(".")]
    } else {
        parts.into_iter().map(str::to_owned).collect()
    }
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Sets one value given as text, typed after the default at the same path.
fn set_value(
    merged: &mut Table,
    defaults: &Table,
    path: &[String],
    raw: &str,
    source: Source,
    sources: &mut BTreeMap<String, Source>,
    problems: &mut Vec<String>,
) {
    if path.iter().any(String::is_empty) {
        problems.push(format!("{source}: `{}` is not a valid key", dotted(path)));
        return;
    }
    let value = match coerce(defaults, path, raw) {
        Ok(v) => v,
        Err(why) => {
            problems.push(format!("`{}` (from {source}): {why}", dotted(path)));
            return;
        }
    };
    let mut table = merged;
    for part in &path[..path.len() - 1] {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        match entry {
            Value::Table(t) => table = t,
            _ => {
                problems.push(format!(
                    "`{}` (from {source}): `{part}` is not a table",
                    dotted(path)
                ));
                return;
            }
        }
    }
    table.insert(path[path.len() - 1].clone(), value);
    sources.insert(dotted(path), source);
}

fn coerce(defaults: &Table, path: &[String], raw: &str) -> Result<Value, String> {
    if path.len() == 3 && is_rdkafka_table(path) {
        return Ok(Value::String(raw.to_owned()));
    }
    match lookup(defaults, path) {
        Some(Value::String(_)) => Ok(Value::String(raw.to_owned())),
        Some(Value::Integer(_)) => raw
            .trim()
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("`{raw}` is not an integer")),
        Some(Value::Boolean(_)) => raw
            .trim()
            .parse()
            .map(Value::Boolean)
            .map_err(|_| format!("`{raw}` is not true or false")),
        Some(Value::Float(_)) => raw
            .trim()
            .parse()
            .map(Value::Float)
            .map_err(|_| format!("`{raw}` is not a number")),
        // Keys without a default (apps.<name>.*): TOML syntax if it parses, else a string.
        _ => Ok(toml::from_str::<Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.to_owned()))),
    }
}

fn lookup<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut t = table;
    for p in parents {
        t = t.get(p)?.as_table()?;
    }
    t.get(last)
}

fn remove(table: &mut Table, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        match t.get_mut(p).and_then(Value::as_table_mut) {
            Some(next) => t = next,
            None => return,
        }
    }
    t.remove(last);
}

fn merge(
    into: &mut Table,
    from: Table,
    path: &mut Vec<String>,
    source: &Source,
    sources: &mut BTreeMap<String, Source>,
) {
    for (key, value) in from {
        path.push(key.clone());
        match (into.get_mut(&key), value) {
            (Some(Value::Table(existing)), Value::Table(incoming)) => {
                merge(existing, incoming, path, source, sources)
            }
            (_, value) => {
                sources.insert(dotted(path), source.clone());
                into.insert(key, value);
            }
        }
        path.pop();
    }
}

/// Deserializes the merged tree. Serde stops at the first error, so after each one the
/// offending key is put back to its default (or removed) and deserialization runs again,
/// until it succeeds: every problem is reported, not just the first.
fn deserialize_collecting(
    mut merged: Table,
    defaults: &Table,
    sources: &BTreeMap<String, Source>,
    problems: &mut Vec<String>,
) -> Option<Config> {
    for _ in 0..64 {
        let de = Value::Table(merged.clone());
        match serde_path_to_error::deserialize::<_, Config>(de) {
            Ok(config) => return Some(config),
            Err(err) => {
                let mut path: Vec<String> = err
                    .path()
                    .iter()
                    .filter_map(|seg| match seg {
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                        _ => None,
                    })
                    .collect();
                // A bad array element (`calendars.x.dates.0`) is reported with its index, and
                // the whole array is put back or removed: `remove` walks tables only.
                let keys_only = err
                    .path()
                    .iter()
                    .take_while(|seg| matches!(seg, serde_path_to_error::Segment::Map { .. }))
                    .count();
                let in_array = err
                    .path()
                    .iter()
                    .any(|seg| matches!(seg, serde_path_to_error::Segment::Seq { .. }));
                let message = err.inner().to_string();
                let message = message.lines().next().unwrap_or_default().to_owned();
                if let Some(field) = unknown_field(&message) {
                    if path.last() != Some(&field) {
                        path.push(field);
                    }
                    let source = source_of(sources, &path);
                    problems.push(format!("`{}` (from {source}): unknown key", dotted(&path)));
                } else {
                    let source = source_of(sources, &path);
                    problems.push(format!("`{}` (from {source}): {message}", dotted(&path)));
                }
                if in_array {
                    path.truncate(keys_only);
                }
                if path.is_empty() {
                    return None;
                }
                match lookup(defaults, &path) {
                    Some(default) => {
                        let default = default.clone();
                        set_raw(&mut merged, &path, default);
                    }
                    None => remove(&mut merged, &path),
                }
            }
        }
    }
    None
}

fn set_raw(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        match t.get_mut(p).and_then(Value::as_table_mut) {
            Some(next) => t = next,
            None => return,
        }
    }
    t.insert(last.clone(), value);
}

fn source_of(sources: &BTreeMap<String, Source>, path: &[String]) -> Source {
    let mut probe = path.to_vec();
    while !probe.is_empty() {
        if let Some(s) = sources.get(&dotted(&probe)) {
            return s.clone();
        }
        probe.pop();
    }
    // A key set below an unknown one (`--set foo.bar=1` reported at `foo`).
    let prefix = format!("{}.", dotted(path));
    sources
        .iter()
        .find(|(k, _)| k.starts_with(&prefix))
        .map_or(Source::Default, |(_, s)| s.clone())
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let config = load(&Layers::default()).unwrap();
        assert_eq!(config.topics.ingest, "sked.ingest");
        assert_eq!(config.redis.shards, 16);
        assert_eq!(config.default_timezone, chrono_tz::UTC);
    }

    #[test]
    fn env_overrides_with_nesting_and_types() {
        let layers = Layers {
            env: env(&[
                ("SKED_KAFKA__BROKERS", "broker:9092"),
                ("SKED_REDIS__SHARDS", "32"),
                ("SKED_REDIS__KEY_PREFIX", "123"),
                ("SKED_KAFKA__RDKAFKA__SESSION_TIMEOUT_MS", "6000"),
                ("SKED_DEFAULT_TIMEZONE", "Asia/Dhaka"),
                ("HOME", "/root"),
                ("SKED_API_URL", "http://x"),
                ("SKED_TOKEN", "not-a-key"),
                ("SKED_TEST_KAFKA", "127.0.0.1:1"),
            ]),
            ..Default::default()
        };
        let config = load(&layers).unwrap();
        assert_eq!(config.kafka.brokers, "broker:9092");
        assert_eq!(config.redis.shards, 32);
        assert_eq!(config.redis.key_prefix, "123");
        assert_eq!(config.kafka.rdkafka["session.timeout.ms"], "6000");
        assert_eq!(config.default_timezone, chrono_tz::Asia::Dhaka);
    }

    #[test]
    fn flags_override_env() {
        let layers = Layers {
            env: env(&[("SKED_TOPICS__DUE", "from.env")]),
            sets: vec![
                "topics.due=from.flag".into(),
                "kafka.rdkafka.socket.timeout.ms=100".into(),
            ],
            ..Default::default()
        };
        let config = load(&layers).unwrap();
        assert_eq!(config.topics.due, "from.flag");
        assert_eq!(config.kafka.rdkafka["socket.timeout.ms"], "100");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let layers = Layers {
            env: env(&[
                ("SKED_KAFKA__BROKRS", "x"),
                ("SKED_REDIS__SHARDS", "many"),
                ("SKED_DEFAULT_TIMEZONE", "Mars/Olympus"),
                ("SKED_HTTP__LISTEN_ADDR", "nowhere"),
                ("SKED_INGEST__BATCH_LINGER", "soon"),
                ("SKED_TOPICS__DLQ", "bad topic"),
            ]),
            ..Default::default()
        };
        let err = load(&layers).unwrap_err();
        let text = err.to_string();
        for needle in [
            "`kafka.brokrs` (from env SKED_KAFKA__BROKRS): unknown key",
            "`redis.shards` (from env SKED_REDIS__SHARDS): `many` is not an integer",
            "`default_timezone`",
            "`http.listen_addr`",
            "`ingest.batch_linger`",
            "`topics.dlq`",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(err.problems.len(), 6, "{text}");
    }

    #[test]
    fn a_nul_byte_in_an_rdkafka_property_is_a_problem_naming_the_key() {
        // Found by tests/fuzz_config.rs: it loaded, and the first Kafka client failed.
        let err = load(&Layers {
            sets: vec!["kafka.rdkafka.socket.timeout.ms=6\u{0}0".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.problems,
            ["`kafka.rdkafka.socket.timeout.ms`: the property name or value contains a NUL byte"]
        );
    }

    #[test]
    fn calendars_load_and_their_problems_name_the_key() {
        let sets = |list: &[&str]| Layers {
            sets: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let config = load(&sets(&[
            r#"calendars.holidays.dates=["2026-12-25"]"#,
            r#"calendars.holidays.ranges=[{from = "2026-12-30", to = "2027-01-02"}]"#,
            "calendars.holidays.timezone=Europe/Berlin",
            r#"calendars.weekends.weekdays=["sat", "sun"]"#,
        ]))
        .unwrap();
        let set = config.calendar_set();
        assert_eq!(set.len(), 2);
        let holidays = set.get("holidays").unwrap();
        assert_eq!(holidays.timezone, chrono_tz::Europe::Berlin);
        assert!(config.dump().contains("[calendars.holidays]"));

        let err = load(&sets(&[
            r#"calendars.a.dates=["2026-02-30"]"#,
            r#"calendars.b.weekday=["sat"]"#,
            "calendars.c.timezone=UTC",
            r#"calendars.d.ranges=[{from = "2026-12-31", to = "2026-12-01"}]"#,
        ]))
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "`calendars.a.dates.0`",
            "`calendars.b.weekday`",
            "`calendars.c`: excludes nothing",
            "`calendars.d`: `ranges[0]`",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    fn redis_problems(sets: &[&str]) -> Vec<String> {
        let layers = Layers {
            sets: sets.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        match load(&layers) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn redis_cluster_seed_lists_are_checked() {
        let seeds = "redis.url=redis://:p,w@a:7000, redis://:p,w@b:7000";
        assert_eq!(
            redis_problems(&["redis.cluster=true", seeds]),
            Vec::<String>::new()
        );
        let config = load(&Layers {
            sets: vec!["redis.cluster=true".into(), seeds.into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            config.redis.urls(),
            ["redis://:p,w@a:7000", "redis://:p,w@b:7000"],
            "a comma inside a password does not split the list"
        );
        let one = redis_problems(&[seeds]);
        assert!(
            one[0].contains("`redis.url`: names several servers"),
            "{one:?}"
        );
        let mixed = redis_problems(&[
            "redis.cluster=true",
            "redis.url=redis://a:7000,rediss://b:7000",
        ]);
        assert!(
            mixed[0].contains("mixes redis:// and rediss://"),
            "{mixed:?}"
        );
        let db = redis_problems(&["redis.cluster=true", "redis.url=redis://:s3cret@a:7000/2"]);
        assert!(db[0].contains("database other than 0"), "{db:?}");
        let empty = redis_problems(&["redis.url= "]);
        assert!(empty[0].contains("must name a Redis server"), "{empty:?}");
        let bad = redis_problems(&["redis.url=redis://:s3cret@a:port"]);
        assert!(bad[0].contains("is not a Redis URL"), "{bad:?}");
        assert!(!bad[0].contains("s3cret"), "{bad:?}");
        // A single server may still use another database.
        assert!(redis_problems(&["redis.url=redis://a:6379/2"]).is_empty());
    }

    #[test]
    fn file_layer_and_unknown_app_keys() {
        let dir = std::env::temp_dir().join(format!("sked-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sked.toml");
        std::fs::write(
            &file,
            "[apps.sms]\nhandler = \"http\"\nurl = \"http://sms\"\ntimeout = \"5s\"\n[apps.bad]\nhandler = \"kafka\"\nurl_typo = 1\n",
        )
        .unwrap();
        let err = load(&Layers {
            file: Some(file.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0].contains("`apps.bad.url_typo`"), "{err}");
        assert!(err.problems[0].contains("sked.toml"), "{err}");
    }
}

#[cfg(test)]
mod secret_file_tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sked-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn with(sets: &[String]) -> Result<Config, Error> {
        load(&Layers {
            sets: sets.to_vec(),
            ..Default::default()
        })
    }

    #[test]
    fn every_secret_file_variant_loads_and_never_prints() {
        let d = dir("secret-files");
        let write = |name: &str, body: &str| {
            let p = d.join(name);
            std::fs::write(&p, body).unwrap();
            p.display().to_string()
        };
        let redis = write("redis", "r3dis-pw\n");
        let sasl = write("sasl", "s4sl-pw\n");
        let auth = write("auth", "Bearer h00k-tok\n");
        let key = write("k1", &format!("{}\n", "ab".repeat(32)));
        let oidc = write("oidc", "0idc-s3cret\n");
        let layers = Layers {
            env: vec![(
                "SKED_KAFKA__RDKAFKA_FILES__SASL_PASSWORD".into(),
                sasl.clone(),
            )],
            sets: vec![
                format!("redis.password_file={redis}"),
                "apps.hook.url=http://hook/run".into(),
                format!("apps.hook.header_files.Authorization={auth}"),
                "encryption.enabled=true".into(),
                "encryption.current_key=k1".into(),
                format!("encryption.keys.k1.file={key}"),
                "console.oidc.issuer=https://idp.example".into(),
                "console.oidc.client_id=sked".into(),
                "console.oidc.redirect_url=https://ops.example/oidc/callback".into(),
                format!("console.oidc.client_secret_file={oidc}"),
            ],
            ..Default::default()
        };
        let config = load(&layers).unwrap();
        let oidc_secret = config.console.oidc.as_ref().unwrap().client_secret.as_ref();
        assert_eq!(oidc_secret.unwrap().expose(), "0idc-s3cret");
        assert_eq!(config.redis.password.as_ref().unwrap().expose(), "r3dis-pw");
        assert_eq!(
            config.kafka.rdkafka_secrets["sasl.password"].expose(),
            "s4sl-pw"
        );
        let props: Vec<_> = config.kafka.properties().collect();
        assert!(props.contains(&("sasl.password", "s4sl-pw")), "{props:?}");
        let hook = &config.apps["hook"];
        assert_eq!(
            hook.header_secrets["Authorization"].expose(),
            "Bearer h00k-tok"
        );
        let k1 = config.encryption.keys["k1"].material.as_ref().unwrap();
        assert_eq!(k1.expose(), &[0xab; 32]);
        // Neither Debug nor the dump shows a value; the dump shows the files and loads again.
        let debug = format!("{config:?}");
        let dump = config.dump();
        for secret in [
            "r3dis-pw",
            "s4sl-pw",
            "h00k-tok",
            "0idc-s3cret",
            &"ab".repeat(32),
            "171, 171",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
            assert!(!dump.contains(secret), "{secret} in {dump}");
        }
        assert!(
            dump.contains(&redis) && dump.contains(&sasl) && dump.contains(&auth),
            "{dump}"
        );
        let file = write("dump.toml", &dump);
        let again = load(&Layers {
            file: Some(file.into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(again.redis.password, config.redis.password);
        let secret = |c: &Config| c.console.oidc.as_ref().unwrap().client_secret.clone();
        assert_eq!(secret(&again), secret(&config));
    }

    #[test]
    fn console_oidc_errors_name_the_key() {
        let base = |extra: &[&str]| {
            let mut sets: Vec<String> = [
                "console.path_prefix=/sked",
                "console.oidc.issuer=https://idp.example",
                "console.oidc.client_id=sked",
                "console.oidc.redirect_url=https://ops.example/sked/oidc/callback",
            ]
            .map(String::from)
            .to_vec();
            sets.extend(extra.iter().map(|s| s.to_string()));
            with(&sets)
        };
        let ok = base(&[]).unwrap();
        let oidc = ok.console.oidc.unwrap();
        assert_eq!(oidc.scopes, ["openid"]);
        assert_eq!(oidc.token, super::super::OidcToken::AccessToken);
        for (set, needle) in [
            (
                "console.oidc.redirect_url=https://ops.example/oidc/callback",
                "`console.oidc.redirect_url`: must be the console's callback",
            ),
            (
                r#"console.oidc.scopes=["profile"]"#,
                "`console.oidc.scopes`: must include `openid`",
            ),
            (
                r#"console.oidc.scopes=["openid", "a b"]"#,
                "`console.oidc.scopes`: every scope must be printable ASCII",
            ),
            ("console.oidc.issuer=idp.example", "`console.oidc.issuer`"),
            ("console.oidc.client_id= ", "`console.oidc.client_id`"),
            ("console.oidc.token=refresh_token", "console.oidc.token"),
        ] {
            let err = base(&[set]).unwrap_err().to_string();
            assert!(err.contains(needle), "{set}: {err}");
        }
    }

    #[test]
    fn a_secret_given_twice_or_unreadable_is_an_error_naming_the_key() {
        let d = dir("secret-twice");
        let pw = d.join("pw");
        std::fs::write(&pw, "x\n").unwrap();
        let pw = pw.display().to_string();
        let err = with(&[
            "redis.password=inline".into(),
            format!("redis.password_file={pw}"),
            "kafka.rdkafka.sasl.password=inline".into(),
            format!("kafka.rdkafka_files.sasl.password={pw}"),
            "apps.hook.url=http://hook/run".into(),
            "apps.hook.headers.authorization=inline".into(),
            format!("apps.hook.header_files.Authorization={pw}"),
            "console.oidc.issuer=https://idp.example".into(),
            "console.oidc.client_id=sked".into(),
            "console.oidc.redirect_url=https://ops.example/oidc/callback".into(),
            "console.oidc.client_secret=inline".into(),
            format!("console.oidc.client_secret_file={pw}"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "`redis.password` and `redis.password_file` are both given",
            "`kafka.rdkafka.sasl.password` and `kafka.rdkafka_files.sasl.password` are both given",
            "`apps.hook.headers.Authorization` and `apps.hook.header_files.Authorization` are both given",
            "`console.oidc.client_secret` and `console.oidc.client_secret_file` are both given",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(!text.contains("inline"), "{text}");
        let err = with(&[
            "redis.password_file=/nonexistent/sked-pw".into(),
            "kafka.rdkafka_files.sasl.password=/nonexistent/sasl".into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`redis.password_file`: cannot read /nonexistent/sked-pw"),
            "{err}"
        );
        assert!(
            err.contains("`kafka.rdkafka_files.sasl.password`: cannot read"),
            "{err}"
        );
        let url_too = with(&[
            "redis.password=p".into(),
            "redis.url=redis://:other@127.0.0.1:6379".into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            url_too.contains("`redis.password`: is given, and `redis.url` carries a password too"),
            "{url_too}"
        );
        assert!(!url_too.contains("other"), "{url_too}");
    }

    #[test]
    fn encryption_keys_are_checked_at_load_naming_the_key() {
        let d = dir("enc-keys");
        let short = d.join("short");
        std::fs::write(&short, "dG9vIHNob3J0\n").unwrap();
        let good = d.join("good");
        std::fs::write(&good, [9u8; 32]).unwrap();
        let (short, good) = (short.display().to_string(), good.display().to_string());
        let err = with(&[
            "encryption.enabled=true".into(),
            "encryption.current_key=k3".into(),
            format!("encryption.keys.k1.file={short}"),
            "encryption.keys.k2.file=/nonexistent/k2".into(),
            format!("encryption.keys.bad!id.file={good}"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "`encryption.keys.k1.file`: ",
            "holds base64 of 9 bytes; a key is 32 bytes",
            "`encryption.keys.k2.file`: cannot read /nonexistent/k2",
            "`encryption.keys.bad!id`: a key id is 1-64 of [A-Za-z0-9_.-]",
            "`encryption.current_key`: names `k3`, which is not in `encryption.keys`",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        let none = with(&["encryption.enabled=true".into()])
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("`encryption.current_key`: is required"),
            "{none}"
        );
        // Off with keys listed: new records in clear, sealed ones still readable.
        let off = with(&[format!("encryption.keys.k1.file={good}")]).unwrap();
        assert!(!off.encryption.enabled);
        assert!(off.encryption.keys["k1"].material.is_some());
    }
}

#[cfg(test)]
mod docs_tests {
    use toml::{Table, Value};

    fn keys(table: &Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Table(t) if !t.is_empty() => keys(t, &key, out),
                _ => out.push(key),
            }
        }
    }

    #[test]
    fn every_default_key_is_documented_in_configuration_md() {
        let docs = include_str!("../../../../docs/configuration.md");
        let defaults: Table = toml::from_str(super::DEFAULTS).unwrap();
        let mut all = Vec::new();
        keys(&defaults, "", &mut all);
        let missing: Vec<_> = all
            .iter()
            .filter(|k| !docs.contains(&format!("`{k}`")))
            .collect();
        assert!(missing.is_empty(), "undocumented keys: {missing:?}");
    }
}
