//! What a chaos run starts and breaks: a private tansu broker (so that pausing it hurts no
//! other test), and sked's services as real processes on fixed admin ports, so that a
//! restarted process can be polled for readiness.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

/// A free TCP port on loopback.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A free loopback port for a process that is restarted on it (a service's admin port,
/// Redis): below the OS's ephemeral range (`ip_local_port_range`, 32768-60999 on Linux), so
/// that while the process is down no other test's bind to port 0 can take it. Random, so that
/// concurrent runs do not pick the same one.
pub fn stable_port() -> anyhow::Result<u16> {
    use std::hash::{BuildHasher, RandomState};
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (from, span) = if low > 12000 {
        (10000, low - 10000)
    } else {
        (low, 1000)
    };
    let hasher = RandomState::new();
    for i in 0u32..200 {
        let port = from + (hasher.hash_one(i) % u64::from(span)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port between {from} and {}", from + span)
}

fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not open port {port}")
}

fn signal(child: &Child, sig: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{sig} {} failed: {status}", child.id());
    }
    Ok(())
}

/// The tansu binary `scripts/dev-stack.sh` installs (with its in-memory storage engine).
fn tansu_binary() -> anyhow::Result<PathBuf> {
    let root = match std::env::var_os("SKED_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/sked")
        }
    };
    let bin = root.join("tansu-0.6.0-dynostore/bin/tansu");
    if !bin.exists() {
        bail!(
            "{} is missing: run scripts/dev-stack.sh up, which installs it",
            bin.display()
        );
    }
    Ok(bin)
}

/// A private tansu broker (memory storage) on a free port; killed on drop.
pub struct Broker {
    /// Its port.
    pub port: u16,
    child: Child,
    paused: bool,
}

impl Broker {
    /// Starts one, logging to `dir/tansu.log`.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log = File::create(dir.join("tansu.log"))?;
        let child = Command::new(tansu_binary()?)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn tansu")?;
        let broker = Self {
            port,
            child,
            paused: false,
        };
        wait_port(port, "tansu")?;
        Ok(broker)
    }

    /// Its bootstrap address.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGSTOP: the broker keeps its sockets open and answers nothing.
    pub fn pause(&mut self) -> anyhow::Result<()> {
        signal(&self.child, "STOP")?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        signal(&self.child, "CONT")?;
        self.paused = false;
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.paused {
            let _ = signal(&self.child, "CONT");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One service process of the run: its binary, flags and fixed admin port survive restarts.
pub struct Service {
    /// `ingest`, `scheduler-1`, ...
    pub name: String,
    /// `sked-ingest`, ...
    pub binary: &'static str,
    /// Its admin port (`/readyz`).
    pub admin: u16,
    sets: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// A service not started yet; `sets` are its `--set` flags, to which the admin port is
    /// added last (a later `--set` wins).
    pub fn new(
        name: &str,
        binary: &'static str,
        mut sets: Vec<String>,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let admin = stable_port()?;
        sets.push(format!("admin.listen_addr=127.0.0.1:{admin}"));
        Ok(Self {
            name: name.to_owned(),
            binary,
            admin,
            sets,
            log: dir.join(format!("{name}.log")),
            child: None,
        })
    }

    /// Whether it consumes in a Kafka consumer group (the scheduler does not).
    pub fn in_group(&self) -> bool {
        self.binary != "sked-scheduler"
    }

    /// Starts the process (stderr appended to `<dir>/<name>.log`, `RUST_LOG=warn`).
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(crate::binary(self.binary));
        for s in &self.sets {
            cmd.arg("--set").arg(s);
        }
        // The configuration is all in the flags: a `SKED_*` variable of the caller's
        // environment (`SKED_CHAOS_KEEP`, `SKED_TOOLS_DIR`) would be read as a config key.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SKED_") {
                cmd.env_remove(name);
            }
        }
        let child = cmd
            .env(
                "RUST_LOG",
                std::env::var("SKED_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", self.binary))?;
        self.child = Some(child);
        Ok(())
    }

    /// kill -9, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit status, if the process ended by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self, http: &reqwest::Client) -> bool {
        http.get(format!("http://127.0.0.1:{}/readyz", self.admin))
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}
