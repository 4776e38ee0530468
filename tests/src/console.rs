//! The console started in-process, and a real headless Chromium driven through chromedriver
//! (W3C WebDriver) for the browser tests. Both are Debian's packages (`chromium`,
//! `chromium-driver`), installed by scripts/browser-deps.sh, which scripts/test.sh runs.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use sked_core::config::Config;
use tokio_util::sync::CancellationToken;

/// A running in-process console.
pub struct Console {
    /// Where it listens.
    pub addr: SocketAddr,
    run: crate::InProcess,
}

impl Console {
    /// Starts one with `config`.
    pub async fn start(config: Config) -> Self {
        let cancel = CancellationToken::new();
        let running = sked_console::start(config, cancel.clone())
            .await
            .expect("start console");
        let addr = running.addr;
        let run = crate::InProcess::spawn("console", cancel.clone(), running.wait());
        Self { addr, run }
    }

    /// Cancels and waits for the drain.
    pub async fn stop(self) {
        self.run.stop().await;
    }

    /// The URL of `path` (which includes the path prefix, if any).
    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium session; chromedriver is killed on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with an empty
    /// profile, 1280 × 900. Panics (never skips) when either is missing.
    pub async fn start() -> Self {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run scripts/browser-deps.sh (scripts/test.sh does)"
            );
        }
        let port = crate::replayer::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = std::env::temp_dir().join(crate::unique("chromium-profile"));
        // The flags keep Chromium off the network (this machine's is closed) and quiet.
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let caps = caps.as_object().cloned().unwrap_or_default();
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        client,
                        driver,
                        profile,
                    };
                }
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session from chromedriver: {last:?}");
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The element matching `css`, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("no element `{css}` on {}: {e}", self.path().await),
        }
    }

    /// Whether an element matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    /// The text of the element matching `css`. Found again when the page's live refresh
    /// replaced it in between (a stale element).
    pub async fn text(&self, css: &str) -> String {
        let mut last = None;
        for _ in 0..5 {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(e) => last = Some(e),
            }
        }
        panic!("text of `{css}`: {last:?}")
    }

    /// Types `value` into the field matching `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(value).await.expect("type");
    }

    /// Chooses `value` in the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("select option");
    }

    /// Clicks the element matching `css`, confirming any `data-confirm` prompt.
    pub async fn click(&self, css: &str) {
        self.client
            .execute(
                "document.body && document.body.setAttribute('data-no-confirm', '')",
                vec![],
            )
            .await
            .expect("turn prompts off");
        let mut last = None;
        for _ in 0..5 {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
        }
        panic!("click `{css}`: {last:?}")
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| {
                let q = u.query().map(|q| format!("?{q}")).unwrap_or_default();
                format!("{}{q}", u.path())
            })
            .unwrap_or_default()
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Reloads until `css`'s text satisfies `ok` (the page's own live refresh may get there
    /// first), up to `timeout`.
    pub async fn until_text(
        &self,
        css: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&text) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "`{css}` on {} never got there; last text: {text:?}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(700)).await;
            self.client.refresh().await.expect("reload");
        }
    }

    /// Saves a PNG of the viewport as `name`.png under `target/console-screenshots/`, and
    /// under docs/console/ too when `SKED_UPDATE_SCREENSHOTS=1` (how the committed ones are
    /// made).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![root.join("target/console-screenshots")];
        if std::env::var("SKED_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            dirs.push(root.join("docs/console"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
        }
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
