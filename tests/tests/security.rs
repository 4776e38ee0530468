//! Security settings: librdkafka is built with TLS and SASL (PLAIN, SCRAM), `rediss://` speaks
//! TLS (checked against a TLS redis-server with a throwaway certificate), Redis AUTH with an ACL
//! user works, and no secret given in the configuration shows up in what the services print
//! (logs at debug level, `--dump-config`), whether given inline or as files (`_file` keys,
//! encryption key files).
//!
//! No TLS or SASL Kafka broker runs here (tansu, the test broker, speaks plaintext only), so
//! the Kafka side is checked at client creation: librdkafka rejects `SASL_SSL` and SCRAM there
//! when it was built without OpenSSL.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{consumer::BaseConsumer, producer::BaseProducer};
use sked_core::{
    config::{Config, Layers, RedisOptions, load},
    store::Store,
};
use sked_e2e::{binary, brokers, http, redis_url, unique};

const REDIS_PASSWORD: &str = "redis-pw-Zq81xLm";
const SASL_USERNAME: &str = "sasl-user-Pk20wQ";
const SASL_PASSWORD: &str = "sasl-pw-Vb93nTe";
const SSL_KEY_PASSWORD: &str = "key-pw-Hs47cRy";
const HOOK_PASSWORD: &str = "hook-pw-Jd65uAo";
const HOOK_TOKEN: &str = "hook-token-Ew12kGi";

/// Every secret the leak tests hand to the services.
const SECRETS: [&str; 6] = [
    REDIS_PASSWORD,
    SASL_USERNAME,
    SASL_PASSWORD,
    SSL_KEY_PASSWORD,
    HOOK_PASSWORD,
    HOOK_TOKEN,
];

const SERVICES: [&str; 4] = [
    "sked-ingest",
    "sked-scheduler",
    "sked-worker",
    "sked-replayer",
];

fn config(sets: &[String]) -> Config {
    load(&Layers {
        sets: sets.to_vec(),
        ..Default::default()
    })
    .unwrap()
}

fn redis_options(url: &str) -> RedisOptions {
    let mut options = config(&[]).redis;
    options.url = url.to_owned();
    options.key_prefix = format!("t:{}", unique("security"));
    options
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed certificate for `localhost` / 127.0.0.1 (its own CA): (cert.pem, key.pem).
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (Debian package `openssl`)");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

// ---------------------------------------------------------------------------------------------
// Kafka: TLS and SASL are compiled in.

fn kafka_sets(extra: &[&str]) -> Vec<String> {
    let mut sets = vec!["kafka.brokers=127.0.0.1:1".to_owned()];
    sets.extend(extra.iter().map(|s| (*s).to_owned()));
    sets
}

/// Builds a producer and a consumer from sked's own client configuration.
fn create_clients(sets: &[String]) -> Result<(), String> {
    let config = config(sets);
    sked_core::kafka::producer_config(
        &config.kafka,
        "security-test",
        sked_core::kafka::size::wanted(config.limits.max_request_bytes),
    )
    .create::<BaseProducer>()
    .map_err(|e| format!("producer: {e}"))?;
    sked_core::kafka::consumer_config(&config.kafka, "security-test", "security-test")
        .create::<BaseConsumer>()
        .map_err(|e| format!("consumer: {e}"))?;
    Ok(())
}

#[test]
fn librdkafka_accepts_sasl_ssl_with_scram_and_plain() {
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        for protocol in ["SASL_SSL", "SASL_PLAINTEXT"] {
            let sets = kafka_sets(&[
                &format!("kafka.rdkafka.security.protocol={protocol}"),
                &format!("kafka.rdkafka.sasl.mechanism={mechanism}"),
                "kafka.rdkafka.sasl.username=sked",
                "kafka.rdkafka.sasl.password=secret",
            ]);
            create_clients(&sets).unwrap_or_else(|e| {
                panic!("{protocol} with {mechanism} rejected at client creation: {e}")
            });
        }
    }
}

#[test]
fn librdkafka_loads_tls_files() {
    let dir = temp_dir("kafka-tls");
    let (cert, key) = self_signed_certificate(&dir);
    // CA bundle and a client certificate (mutual TLS) are read when the client is created.
    let sets = kafka_sets(&[
        "kafka.rdkafka.security.protocol=SSL",
        &format!("kafka.rdkafka.ssl.ca.location={}", cert.display()),
        &format!("kafka.rdkafka.ssl.certificate.location={}", cert.display()),
        &format!("kafka.rdkafka.ssl.key.location={}", key.display()),
        "kafka.rdkafka.ssl.endpoint.identification.algorithm=https",
    ]);
    create_clients(&sets).unwrap();

    // A CA file that does not exist fails at creation: the TLS context is really built.
    let missing = dir.join("missing.pem");
    let sets = kafka_sets(&[
        "kafka.rdkafka.security.protocol=SSL",
        &format!("kafka.rdkafka.ssl.ca.location={}", missing.display()),
    ]);
    let err = create_clients(&sets).unwrap_err();
    assert!(err.contains("ssl.ca.location"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Redis: TLS (rediss://) and AUTH.

/// A redis-server that accepts TLS connections only, with a password.
struct TlsRedis {
    port: u16,
    cert: PathBuf,
    dir: PathBuf,
    child: Child,
}

impl TlsRedis {
    fn start() -> Self {
        let dir = temp_dir("sked-redis-tls");
        let (cert, key) = self_signed_certificate(&dir);
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .args(["--tls-auth-clients", "no", "--requirepass", REDIS_PASSWORD])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (install it: scripts/dev-stack.sh up)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "TLS redis-server did not open port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            cert,
            dir,
            child,
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn rediss_url_connects_over_tls_and_verifies_the_certificate() {
    let server = TlsRedis::start();
    let port = server.port;

    // TLS + AUTH, certificate verification off (`#insecure`): a full round trip.
    let store = Store::connect(&redis_options(&format!(
        "rediss://:{REDIS_PASSWORD}@127.0.0.1:{port}/#insecure"
    )))
    .await
    .expect("rediss:// with #insecure connects");
    store.ping().await.unwrap();

    // Verification on (the default): the throwaway certificate is not trusted by the system
    // store, so the handshake fails, and says why without the password.
    let err = Store::connect(&redis_options(&format!(
        "rediss://:{REDIS_PASSWORD}@localhost:{port}"
    )))
    .await
    .map(|_| ())
    .expect_err("untrusted certificate is rejected");
    let text = format!("{err} / {err:?}");
    assert!(text.contains("certificate"), "{text}");
    assert!(!text.contains(REDIS_PASSWORD), "{text}");

    // A plaintext client gets nowhere on the TLS port.
    assert!(
        Store::connect(&redis_options(&format!(
            "redis://:{REDIS_PASSWORD}@127.0.0.1:{port}"
        )))
        .await
        .is_err()
    );
}

#[tokio::test]
async fn rediss_to_a_plaintext_port_fails_with_a_tls_error() {
    // A server that answers like plaintext Redis: the TLS handshake must fail on it (and the
    // URL must not be refused as "TLS feature not enabled").
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.write_all(b"-ERR plaintext only\r\n").await;
        }
    });
    let url = format!("rediss://sked:{REDIS_PASSWORD}@127.0.0.1:{port}");
    redis::Client::open(url.as_str()).expect("rediss:// URLs parse");
    let err = Store::connect(&redis_options(&url))
        .await
        .map(|_| ())
        .expect_err("TLS to a plaintext server fails");
    let text = format!("{err} / {err:?}");
    assert!(!text.contains("not enabled"), "{text}");
    assert!(
        ["SSL", "ssl", "TLS", "tls", "handshake"]
            .iter()
            .any(|w| text.contains(w)),
        "not a TLS error: {text}"
    );
    assert!(!text.contains(REDIS_PASSWORD), "{text}");
    server.abort();
}

/// The service trusts a private CA through `SSL_CERT_FILE` (OpenSSL's standard variable):
/// `sked-scheduler` reaches a TLS Redis with full certificate verification and AUTH.
#[tokio::test]
async fn service_connects_to_rediss_with_a_private_ca() {
    let server = TlsRedis::start();
    let admin = free_port();
    let ns = unique("sec-tls");
    let mut child = Command::new(binary("sked-scheduler"))
        .args([
            "--set",
            &format!(
                "redis.url=rediss://:{REDIS_PASSWORD}@localhost:{}",
                server.port
            ),
            "--set",
            &format!("redis.key_prefix=t:{ns}"),
            "--set",
            &format!("kafka.brokers={}", brokers()),
            "--set",
            &format!("topics.due={ns}.due"),
            "--set",
            &format!("admin.listen_addr=127.0.0.1:{admin}"),
        ])
        .env("SSL_CERT_FILE", &server.cert)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let client = http();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        if let Ok(resp) = client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
        {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            if body["checks"]["redis"] == serde_json::Value::Bool(true) {
                break;
            }
            last = body.to_string();
        }
        assert!(child.try_wait().unwrap().is_none(), "sked-scheduler exited");
        assert!(
            Instant::now() < deadline,
            "sked-scheduler never reached the TLS Redis: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn redis_acl_user_authenticates() {
    let admin_url = redis_url();
    let mut admin = sked_e2e::redis(&admin_url).await;
    let user = unique("sked-acl");
    let password = unique("acl-pw");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{password}"))
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query_async(&mut admin)
        .await
        .unwrap();
    let hostport = admin_url
        .split_once("://")
        .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h))
        .unwrap()
        .to_owned();

    let ok = Store::connect(&redis_options(&format!(
        "redis://{user}:{password}@{hostport}"
    )))
    .await;
    let wrong = Store::connect(&redis_options(&format!(
        "redis://{user}:wrong-{password}@{hostport}"
    )))
    .await;
    // The password from `redis.password_file` instead of the URL.
    let file = temp_dir("sked-acl-pw").join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let from_file = config(&[
        format!("redis.url=redis://{user}@{hostport}"),
        format!("redis.password_file={}", file.display()),
        format!("redis.key_prefix=t:{}", unique("security")),
    ])
    .redis;
    assert!(!format!("{from_file:?}").contains(&password));
    let by_file = Store::connect(&from_file).await;
    let pinged = match ok {
        Ok(store) => store.ping().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let pinged_by_file = match by_file {
        Ok(store) => store.ping().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    // Deleting the user also disconnects its clients: only after the ping.
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();

    pinged.expect("ACL user connects and pings");
    pinged_by_file.expect("ACL user connects with redis.password_file");
    let err = wrong.map(|_| ()).expect_err("wrong password is refused");
    let text = format!("{err} / {err:?}");
    assert!(!text.contains(&password), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Secrets never appear in logs or `--dump-config`.

/// Flags carrying every secret (except the SASL password, given through the environment):
/// Redis and Kafka unreachable, so the services log their connection errors.
fn secret_flags() -> Vec<String> {
    [
        format!("redis.url=redis://sked:{REDIS_PASSWORD}@127.0.0.1:1"),
        "kafka.brokers=127.0.0.1:1".to_owned(),
        "kafka.rdkafka.security.protocol=SASL_SSL".to_owned(),
        "kafka.rdkafka.sasl.mechanism=SCRAM-SHA-512".to_owned(),
        format!("kafka.rdkafka.sasl.username={SASL_USERNAME}"),
        format!("kafka.rdkafka.ssl.key.password={SSL_KEY_PASSWORD}"),
        "kafka.rdkafka.debug=security,broker,conf".to_owned(),
        "apps.hook.handler=http".to_owned(),
        format!("apps.hook.url=https://hook:{HOOK_PASSWORD}@hooks.example.invalid/run"),
        format!("apps.hook.headers.authorization=Bearer {HOOK_TOKEN}"),
        "admin.listen_addr=127.0.0.1:0".to_owned(),
        "http.listen_addr=127.0.0.1:0".to_owned(),
        "replayer.listen_addr=127.0.0.1:0".to_owned(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

#[test]
fn secrets_given_in_config_never_appear_in_logs() {
    let dir = temp_dir("sked-leak");
    let mut running = Vec::new();
    for name in SERVICES {
        let out = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
        let child = Command::new(binary(name))
            .args(secret_flags())
            .env("SKED_KAFKA__RDKAFKA__SASL_PASSWORD", SASL_PASSWORD)
            .env("RUST_LOG", "debug")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        running.push((name, child));
    }
    std::thread::sleep(Duration::from_secs(3));
    for (name, mut child) in running {
        let still_running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        let stdout = std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap();
        let stderr = std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap();
        assert!(still_running, "{name} exited early:\n{stdout}\n{stderr}");
        let all = format!("{stdout}\n{stderr}");
        // The run really logged its connection troubles, with the URL redacted.
        assert!(
            all.contains("redis://sked:<redacted>@127.0.0.1:1"),
            "{name} did not log the redacted Redis URL:\n{all}"
        );
        assert_no_secret(&format!("{name}'s output"), &all);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secrets_given_in_config_never_appear_in_dump_config() {
    for name in SERVICES {
        let out = Command::new(binary(name))
            .arg("--dump-config")
            .args(secret_flags())
            .env("SKED_KAFKA__RDKAFKA__SASL_PASSWORD", SASL_PASSWORD)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert_no_secret(
            &format!("{name} --dump-config"),
            &format!("{stdout}\n{stderr}"),
        );
        assert!(
            stdout.contains("redis://sked:<redacted>@127.0.0.1:1"),
            "{stdout}"
        );
        // Non-secret settings are shown as given.
        assert!(stdout.contains("SCRAM-SHA-512"), "{stdout}");
        // The dump is itself a valid configuration.
        let _: toml::Table = stdout.parse().expect("valid toml");
    }
}

#[test]
fn a_rejected_librdkafka_property_is_reported_without_its_value() {
    // A misspelled secret property: librdkafka's own error quotes the value.
    for (key, value) in [
        ("sasl.pasword", SASL_PASSWORD),
        ("security.protocol", SSL_KEY_PASSWORD),
    ] {
        let out = Command::new(binary("sked-worker"))
            .args(["--set", &format!("kafka.rdkafka.{key}={value}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{stderr}");
        assert!(
            stderr.contains(&format!("`kafka.rdkafka.{key}`")),
            "{stderr}"
        );
        assert_no_secret("a configuration error", &stderr);
        assert_no_secret(
            "a configuration error",
            &String::from_utf8_lossy(&out.stdout),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets given as files (`redis.password_file`, `kafka.rdkafka_files.*`,
// `apps.<name>.header_files.*`) and encryption keys never appear either.

const FILE_REDIS_PASSWORD: &str = "file-redis-pw-Tc38mWq";
const FILE_SASL_PASSWORD: &str = "file-sasl-pw-Ny72bKd";
const FILE_HOOK_TOKEN: &str = "file-hook-token-Lr59vXs";
/// An encryption key as hex; its base64 form is written to the key file of `k2`.
const KEY_HEX: &str = "6b65792d6279746573207468617420617265206e657665722073686f776e2121";

/// Every secret of [`file_flags`], in each form it could leak in.
fn file_secrets() -> Vec<String> {
    use base64::Engine as _;
    let key: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    vec![
        FILE_REDIS_PASSWORD.into(),
        FILE_SASL_PASSWORD.into(),
        FILE_HOOK_TOKEN.into(),
        KEY_HEX.into(),
        base64::engine::general_purpose::STANDARD.encode(&key),
        String::from_utf8(key).unwrap(), // the raw bytes happen to be text
    ]
}

/// Flags naming secret files (written into `dir`), Redis and Kafka unreachable.
fn file_flags(dir: &Path) -> Vec<String> {
    use base64::Engine as _;
    let write = |name: &str, body: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };
    let key: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let redis = write(
        "redis-password",
        format!("{FILE_REDIS_PASSWORD}\n").as_bytes(),
    );
    let sasl = write(
        "sasl-password",
        format!("{FILE_SASL_PASSWORD}\n").as_bytes(),
    );
    let hook = write(
        "hook-auth",
        format!("Bearer {FILE_HOOK_TOKEN}\n").as_bytes(),
    );
    let k1 = write("k1", format!("{KEY_HEX}\n").as_bytes());
    let k2 = write(
        "k2",
        base64::engine::general_purpose::STANDARD
            .encode(&key)
            .as_bytes(),
    );
    [
        "redis.url=redis://sked@127.0.0.1:1".to_owned(),
        format!("redis.password_file={redis}"),
        "kafka.brokers=127.0.0.1:1".to_owned(),
        "kafka.rdkafka.security.protocol=SASL_SSL".to_owned(),
        "kafka.rdkafka.sasl.mechanism=SCRAM-SHA-512".to_owned(),
        "kafka.rdkafka.sasl.username=sked".to_owned(),
        format!("kafka.rdkafka_files.sasl.password={sasl}"),
        "kafka.rdkafka.debug=security,broker,conf".to_owned(),
        "apps.hook.handler=http".to_owned(),
        "apps.hook.url=https://hooks.example.invalid/run".to_owned(),
        format!("apps.hook.header_files.Authorization={hook}"),
        "encryption.enabled=true".to_owned(),
        "encryption.current_key=k2".to_owned(),
        format!("encryption.keys.k1.file={k1}"),
        format!("encryption.keys.k2.file={k2}"),
        "admin.listen_addr=127.0.0.1:0".to_owned(),
        "http.listen_addr=127.0.0.1:0".to_owned(),
        "replayer.listen_addr=127.0.0.1:0".to_owned(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

fn assert_no_file_secret(what: &str, text: &str) {
    for secret in file_secrets() {
        assert!(
            !text.contains(&secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

#[test]
fn secrets_from_files_and_encryption_keys_never_appear_in_logs() {
    let dir = temp_dir("sked-leak-files");
    let flags = file_flags(&dir);
    let mut running = Vec::new();
    for name in SERVICES {
        let out = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
        let child = Command::new(binary(name))
            .args(&flags)
            .env("RUST_LOG", "debug")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        running.push((name, child));
    }
    std::thread::sleep(Duration::from_secs(3));
    for (name, mut child) in running {
        let still_running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        let stdout = std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap();
        let stderr = std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap();
        assert!(still_running, "{name} exited early:\n{stdout}\n{stderr}");
        let all = format!("{stdout}\n{stderr}");
        // The run really logged its connection troubles (the secrets were in use).
        assert!(
            all.contains("redis unreachable"),
            "{name} did not log its Redis troubles:\n{all}"
        );
        assert_no_file_secret(&format!("{name}'s output"), &all);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secrets_from_files_show_as_their_paths_in_dump_config() {
    let dir = temp_dir("sked-dump-files");
    let flags = file_flags(&dir);
    for name in SERVICES {
        let out = Command::new(binary(name))
            .arg("--dump-config")
            .args(&flags)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert_no_file_secret(
            &format!("{name} --dump-config"),
            &format!("{stdout}\n{stderr}"),
        );
        for file in ["redis-password", "sasl-password", "hook-auth", "k1", "k2"] {
            let path = dir.join(file).display().to_string();
            assert!(stdout.contains(&path), "{name}: {file} not shown: {stdout}");
        }
        let table: toml::Table = stdout.parse().expect("valid toml");
        assert!(table["redis"].get("password").is_none(), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_key_file_or_a_secret_given_twice_stops_the_service_naming_the_key() {
    let dir = temp_dir("sked-bad-files");
    let short = dir.join("short");
    std::fs::write(&short, "c2hvcnQ=\n").unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, format!("{FILE_REDIS_PASSWORD}\n")).unwrap();
    for name in SERVICES {
        let out = Command::new(binary(name))
            .args([
                "--set",
                "encryption.enabled=true",
                "--set",
                "encryption.current_key=k9",
                "--set",
                &format!("encryption.keys.k9.file={}", short.display()),
                "--set",
                "encryption.keys.k8.file=/nonexistent/sked-k8",
                "--set",
                &format!("redis.password={FILE_SASL_PASSWORD}"),
                "--set",
                &format!("redis.password_file={}", pw.display()),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {stderr}");
        for needle in [
            "`encryption.keys.k9.file`",
            "base64 of 5 bytes",
            "`encryption.keys.k8.file`: cannot read /nonexistent/sked-k8",
            "`redis.password` and `redis.password_file` are both given",
        ] {
            assert!(
                stderr.contains(needle),
                "{name}: {needle:?} not in {stderr}"
            );
        }
        assert_no_file_secret(&format!("{name}'s error"), &stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
