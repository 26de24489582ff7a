//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), with the few commands the web tests and the web
//! benchmark use. The protocol is plain HTTP and JSON, spoken here with
//! reqwest. Failures panic with what went wrong: it is test tooling.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// One browser session (its own chromedriver and profile); closed on drop.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Ends chromedriver and every Chromium process it started: they share
    /// the process group chromedriver leads (killing the driver alone leaves
    /// the browser running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` × `height`.
    /// Fails (never skips) with the install command when either is missing.
    pub async fn start(width: u32, height: u32) -> Self {
        for bin in [CHROMIUM, DRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the web tests drive a real Chromium; install it with `{INSTALL}`"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("port").port()
        };
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            // its own process group, which Chromium joins: dropped as one
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {DRIVER} ({e}); install it with `{INSTALL}`"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start on port {port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // dialogs stay open, so a test can tell that one fired
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                ]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("new session answer");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {r}"))
            .to_owned();
        Self {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let r: Value = req
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver answer");
        r["value"].clone()
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let v = self.call(method, path, body).await;
        if let Some(e) = v.get("error") {
            panic!("webdriver {path}: {e}: {}", v["message"]);
        }
        v
    }

    pub async fn goto(&self, url: &str) {
        self.ok(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.ok(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn back(&self) {
        self.ok(reqwest::Method::POST, "/back", None).await;
    }

    pub async fn title(&self) -> String {
        self.ok(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .ok(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_owned())))
            .collect()
    }

    /// The first element matching `css`, waiting up to 5 s for it.
    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(css, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no element matches `{css}` within 5 s"))
    }

    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Option<Element> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return Some(e);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, e: &Element) {
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            None,
        )
        .await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.ok(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.ok(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/{name}", e.0),
            None,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    pub async fn send_keys(&self, e: &Element, text: &str) {
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.ok(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Runs `script` whose last argument is a callback, and returns what it passes.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.ok(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The text of an open dialog (`alert`, `confirm`, `prompt`), if one is open.
    pub async fn dialog(&self) -> Option<String> {
        let v = self.call(reqwest::Method::GET, "/alert/text", None).await;
        if v.get("error").is_some() {
            None
        } else {
            Some(v.as_str().unwrap_or_default().to_owned())
        }
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.ok(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Shows pages as at `percent` browser zoom in a `width` × `height`
    /// window: CSS pixels become `percent / 100` device pixels, so the layout
    /// viewport narrows exactly as zooming narrows it (Chromium's DevTools
    /// `Emulation.setDeviceMetricsOverride`; `None` ends the emulation).
    pub async fn zoom(&self, zoom: Option<(u32, u32, u32)>) {
        let (cmd, params) = match zoom {
            Some((percent, width, height)) => {
                let scale = f64::from(percent) / 100.0;
                (
                    "Emulation.setDeviceMetricsOverride",
                    json!({
                        "width": (f64::from(width) / scale).round() as u32,
                        "height": (f64::from(height) / scale).round() as u32,
                        "deviceScaleFactor": scale,
                        "mobile": false,
                    }),
                )
            }
            None => ("Emulation.clearDeviceMetricsOverride", json!({})),
        };
        self.ok(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `path` (directories created).
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.ok(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// The session cookie's value, to make HTTP requests as this browser.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        let v = self
            .call(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await;
        v.get("value").and_then(Value::as_str).map(str::to_owned)
    }
}
