//! Single sign-on against a real OpenID Connect provider: the certified
//! `oidc-provider` package run by Node (query-api/tests/oidc), issuing RS256,
//! ES256 and EdDSA access tokens that Certscope verifies against the provider's
//! JWKS and maps onto scopes; forged and foreign tokens refused; keys rotated
//! at the provider while Certscope runs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use certscope_query_api::Role;
use certscope_query_api::sso::ProviderConfig;
use certscope_query_api::testing::{Params, TestApp, total};
use certscope_query_api::webdriver::Browser;
use serde_json::{Value, json};

const SECRET: &str = "client-secret-0123456789";

/// The provider process and its side signer.
struct Idp {
    child: Child,
    issuer: String,
    signer: String,
    config: Value,
    http: reqwest::Client,
    /// The clients' claims last set, kept across a key rotation.
    claims: std::sync::Mutex<Option<Value>>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    fn start(keys: &[(&str, &str)], clients: Value) -> Idp {
        // no port: the provider listens where the kernel puts it and says where
        let config = json!({
            "keys": keys.iter().map(|(kid, alg)| json!({"kid": kid, "alg": alg})).collect::<Vec<_>>(),
            "rogue_keys": [{"kid": "rogue", "alg": "RS256"}],
            "clients": clients,
            "audience": "certscope-api",
        });
        Self::spawn(config)
    }

    fn spawn(mut config: Value) -> Idp {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        certscope_query_api::testing::npm_ci("oidc", &["oidc-provider", "jose"]);
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("OIDC_TEST_CONFIG", config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): `apt-get install -y nodejs npm`"));
        // stderr is drained all along (a full pipe would stall the provider)
        // and shown if it does not start
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some((issuer, signer)) = line
            .strip_prefix("ready ")
            .and_then(|rest| rest.trim().split_once(' '))
        else {
            let _ = child.kill();
            let _ = child.wait();
            let errors = errors.join().unwrap_or_default();
            panic!("the provider did not start: {line:?}\n{errors}");
        };
        // a rotation restarts it on the same port, so the issuer stays the same
        config["port"] = json!(
            issuer
                .rsplit(':')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        );
        Idp {
            child,
            issuer: issuer.to_owned(),
            signer: signer.to_owned(),
            config,
            http: reqwest::Client::new(),
            claims: std::sync::Mutex::new(None),
        }
    }

    /// The same provider (issuer, clients, claims) restarted with other keys.
    async fn rotate(mut self, keys: &[(&str, &str)]) -> Idp {
        let mut config = self.config.clone();
        config["keys"] = json!(
            keys.iter()
                .map(|(kid, alg)| json!({"kid": kid, "alg": alg}))
                .collect::<Vec<_>>()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        let claims = self.claims.lock().unwrap().take();
        let idp = Self::spawn(config);
        if let Some(claims) = claims {
            idp.set_claims(&claims).await;
        }
        idp
    }

    fn provider(&self, name: &str, extra: Value) -> ProviderConfig {
        let mut c = json!({
            "name": name,
            "issuer": self.issuer,
            "audience": "certscope-api",
            "min_refetch_secs": 30,
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        serde_json::from_value(c).unwrap()
    }

    /// A real access token from the provider (client credentials grant).
    async fn token(&self, client: &str, alg: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", SECRET),
                ("resource", &format!("https://certscope.test/api/{alg}")),
                ("scope", "api"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {r}"))
            .to_owned()
    }

    /// A token for another resource server (another audience).
    async fn token_for_other_api(&self, client: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", SECRET),
                ("resource", "https://other.test/api"),
                ("scope", "api"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    }

    /// Claims signed with key `kid` (published or rogue), header overrides allowed.
    async fn forge(&self, kid: &str, claims: Value, header: Value) -> String {
        self.http
            .post(format!("{}/sign", self.signer))
            .body(json!({"kid": kid, "claims": claims, "header": header}).to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Adds accounts (login → claims) people sign in with in the browser.
    async fn set_accounts(&self, accounts: Value) {
        let r = self
            .http
            .post(format!("{}/accounts", self.signer))
            .body(accounts.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    /// Replaces the claims the provider puts in its clients' tokens.
    async fn set_claims(&self, clients: &Value) {
        let by_id: serde_json::Map<String, Value> = clients
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["client_id"].as_str().unwrap().to_owned(),
                    c["claims"].clone(),
                )
            })
            .collect();
        let r = self
            .http
            .post(format!("{}/claims", self.signer))
            .body(Value::Object(by_id).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        *self.claims.lock().unwrap() = Some(clients.clone());
    }

    async fn pem(&self, kid: &str) -> String {
        self.http
            .get(format!("{}/pem?kid={kid}", self.signer))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn claims(&self, extra: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut c =
            json!({"iss": self.issuer, "aud": "certscope-api", "iat": now, "exp": now + 600});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    }
}

async fn email_of(s: &TestApp, slug: &str, role: Role) -> String {
    sqlx::query_scalar(
        "SELECT u.email FROM users u JOIN organizations o ON o.id = u.organization_id \
         WHERE o.slug = $1 AND u.role = $2 ORDER BY u.id LIMIT 1",
    )
    .bind(slug)
    .bind(role.as_str())
    .fetch_one(&s.pool)
    .await
    .unwrap()
}

async fn status(s: &TestApp, token: &str) -> (u16, String) {
    let r = s.search_response(token, &Params::q("access")).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A service trusting one provider whose clients carry `claims(slug, officer
/// email, auditor email)` of the first seeded organization.
async fn setup(
    clients: impl Fn(&str, &str, &str) -> Value,
    keys: &[(&str, &str)],
    extra: Value,
) -> (TestApp, Idp, String) {
    // the provider must exist before the service that trusts it; its clients'
    // claims are set once the seeded names are known
    let ids = clients("-", "-", "-");
    let idp = Idp::start(keys, ids);
    let config = idp.provider("test-idp", extra);
    let s = TestApp::start_with(move |c| c.providers = vec![config]).await;
    let (a, _) = s.orgs().await;
    let officer = email_of(&s, &a, Role::Officer).await;
    let auditor = email_of(&s, &a, Role::Auditor).await;
    idp.set_claims(&clients(&a, &officer, &auditor)).await;
    (s, idp, a)
}

fn officer_client(slug: &str, officer: &str, _auditor: &str) -> Value {
    json!([{"client_id": "dashboard", "client_secret": SECRET,
            "claims": {"org": slug, "email": officer, "certscope_role": "officer"}}])
}

#[tokio::test]
async fn provider_tokens_signed_rs256_es256_and_eddsa_search_like_the_same_officers_own_token() {
    let (s, idp, a) = setup(
        officer_client,
        &[("rsa-1", "RS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA")],
        json!({}),
    )
    .await;
    let own = s.officer(&a).await;
    let expected = total(&s.search(&own, &Params::q("access")).await);
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = idp.token("dashboard", alg).await;
        let v = s.search(&token, &Params::q("access")).await;
        assert_eq!(total(&v), expected, "{alg}");
    }
    // HS256 tokens of `certscope token` keep working beside them
    assert_eq!(status(&s, &own).await.0, 200);
}

#[tokio::test]
async fn forged_foreign_and_expired_tokens_are_refused_with_401() {
    let (s, idp, _) = setup(
        officer_client,
        &[("rsa-1", "RS256"), ("ec-1", "ES256")],
        json!({}),
    )
    .await;
    let good = idp.token("dashboard", "RS256").await;
    assert_eq!(status(&s, &good).await.0, 200);
    let payload = |t: &str| t.split('.').nth(1).unwrap().to_owned();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload(&good))
            .unwrap(),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 600);
    expired["iat"] = json!(now - 1200);

    let mut refused = vec![
        (
            "another audience",
            "audience",
            idp.token_for_other_api("dashboard").await,
        ),
        (
            "expired",
            "expired",
            idp.forge("rsa-1", expired, json!({})).await,
        ),
        (
            "alg none",
            "malformed",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                payload(&good)
            ),
        ),
        (
            "an unknown key",
            "not among",
            idp.forge("rogue", claims.clone(), json!({})).await,
        ),
        (
            "a key the provider did not publish, under a published kid",
            "signature",
            idp.forge("rogue", claims.clone(), json!({"kid": "rsa-1"}))
                .await,
        ),
        ("garbage", "malformed", "not.a.token".to_owned()),
        ("empty", "Bearer", String::new()),
    ];
    // HS256 signed with the provider's public key (the HS/RS confusion)
    let pem = idp.pem("rsa-1").await;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )
    .unwrap();
    refused.push(("HS256 with the public key", "signature", forged));
    // an ES256 signature presented as RS256 under the EC key's kid
    let es = idp.token("dashboard", "ES256").await;
    let mut parts: Vec<String> = es.split('.').map(str::to_owned).collect();
    parts[0] = b64(&json!({"alg": "RS256", "kid": "ec-1", "typ": "at+jwt"}));
    refused.push((
        "an algorithm that is not the key's",
        "algorithm",
        parts.join("."),
    ));
    // another issuer, not configured
    let stranger = Idp::start(&[("rsa-1", "RS256")], officer_client("x", "y", "z"));
    refused.push((
        "another issuer",
        "not trusted",
        stranger.token("dashboard", "RS256").await,
    ));
    for (what, why, token) in refused {
        let (code, body) = status(&s, &token).await;
        assert_eq!(code, 401, "{what}: {body}");
        assert!(body.contains("\"unauthorized\""), "{what}: {body}");
        assert!(body.contains(why), "{what}: expected {why:?} in {body}");
    }
}

#[tokio::test]
async fn keys_rotate_without_restart_and_made_up_kids_fetch_at_most_once_per_interval() {
    let (s, idp, _) = setup(
        officer_client,
        &[("rsa-1", "RS256")],
        json!({"min_refetch_secs": 3}),
    )
    .await;
    let old = idp.token("dashboard", "RS256").await;
    assert_eq!(status(&s, &old).await.0, 200);
    let fetches = || {
        s.state
            .api
            .providers
            .iter()
            .map(|p| p.keys.fetches.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>()
    };
    // the provider rotates to a new key, same issuer, same port
    let idp = idp.rotate(&[("rsa-2", "RS256")]).await;
    // wait out the refetch interval since the last fetch, then the new key works
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = idp.token("dashboard", "RS256").await;
    loop {
        let (code, body) = status(&s, &new).await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated key was never picked up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // a burst of tokens with made-up key ids: refused, and at most one fetch
    let before = fetches();
    let claims = idp.claims(json!({"org": "x", "email": "y", "certscope_role": "officer"}));
    for i in 0..40 {
        let t = idp
            .forge(
                "rogue",
                claims.clone(),
                json!({"kid": format!("made-up-{i}")}),
            )
            .await;
        assert_eq!(status(&s, &t).await.0, 401);
    }
    assert!(
        fetches() - before <= 1,
        "{} fetches for 40 unknown kids",
        fetches() - before
    );
}

#[tokio::test]
async fn claims_map_groups_to_roles_and_an_auditors_certifications_limit_it_like_its_own_token() {
    let clients = |slug: &str, officer: &str, auditor: &str| {
        json!([
            {"client_id": "grc", "client_secret": SECRET,
             "claims": {"org": slug, "email": officer, "groups": ["staff", "grc-officers"]}},
            {"client_id": "no-org", "client_secret": SECRET,
             "claims": {"email": officer, "groups": ["grc-officers"]}},
            {"client_id": "no-role", "client_secret": SECRET,
             "claims": {"org": slug, "email": officer, "groups": ["staff"]}},
            {"client_id": "unknown-org", "client_secret": SECRET,
             "claims": {"org": "nobody-inc", "email": officer, "groups": ["grc-officers"]}},
            {"client_id": "auditor", "client_secret": SECRET,
             "claims": {"org": slug, "email": auditor, "groups": ["external-audit"]}},
        ])
    };
    let mapping = json!({"claims": {
        "groups_claim": "groups",
        "groups": {"grc-officers": "officer", "external-audit": "auditor"}
    }});
    let (s, idp, a) = setup(clients, &[("rsa-1", "RS256")], mapping).await;
    let officer = idp.token("grc", "RS256").await;
    let (code, body) = status(&s, &officer).await;
    assert_eq!(code, 200, "{body}");
    for (client, needle) in [
        ("no-org", "`org`"),
        ("no-role", "`groups`"),
        ("unknown-org", "nobody-inc"),
    ] {
        let t = idp.token(client, "RS256").await;
        let (code, body) = status(&s, &t).await;
        assert_eq!(code, 403, "{client}: {body}");
        assert!(body.contains(needle), "{client}: {body}");
    }
    // the auditor's certifications come from its assignments, exactly as for
    // its own HS256 token
    let auditor = idp.token("auditor", "RS256").await;
    let email = email_of(&s, &a, Role::Auditor).await;
    let assigned: Vec<i64> = sqlx::query_scalar(
        "SELECT a.certification_id FROM auditor_assignments a JOIN users u ON u.id = a.user_id \
         WHERE u.email = $1 ORDER BY 1",
    )
    .bind(&email)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let own = s.token(&a, Role::Auditor, Some(assigned.clone())).await;
    for params in [
        Params::q("access"),
        Params::new().with("kind", "requirement"),
    ] {
        assert_eq!(
            total(&s.search(&auditor, &params).await),
            total(&s.search(&own, &params).await)
        );
    }
    let posture = s
        .metric(
            &auditor,
            certscope_reports::section::Section::Posture,
            &Params::new(),
        )
        .await;
    let covered: Vec<i64> = posture["meta"]["certifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(covered, assigned);
    // an unassigned certification's room is refused on the event stream
    let other: i64 = sqlx::query_scalar(
        "SELECT c.id FROM certifications c JOIN organizations o ON o.id = c.organization_id \
         WHERE o.slug = $1 AND NOT (c.id = ANY($2)) LIMIT 1",
    )
    .bind(&a)
    .bind(&assigned)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let r = s
        .get(
            &auditor,
            &format!("/v1/events/stream?rooms=certification:{other}"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    use futures_util::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("forbidden"), "{text}");
}

#[tokio::test]
async fn a_provider_that_is_down_degrades_readiness_and_cached_keys_keep_working() {
    let (s, idp, _) = setup(
        officer_client,
        &[("rsa-1", "RS256")],
        json!({"min_refetch_secs": 1}),
    )
    .await;
    let token = idp.token("dashboard", "RS256").await;
    assert_eq!(status(&s, &token).await.0, 200);
    let claims = idp.claims(json!({"org": "x", "email": "y", "certscope_role": "officer"}));
    let unknown = idp.forge("rogue", claims, json!({"kid": "new-key"})).await;
    drop(idp);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // an unknown kid makes Certscope try the provider, which is gone
    let started = Instant::now();
    assert_ne!(status(&s, &unknown).await.0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "no bound on the provider's silence"
    );
    let ready: Value = s
        .http
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    let idp_check = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "identity_provider")
        .cloned()
        .unwrap();
    assert!(
        idp_check["reason"]
            .as_str()
            .unwrap()
            .contains("cached keys"),
        "{idp_check}"
    );
    // the token whose key is cached still works
    assert_eq!(status(&s, &token).await.0, 200);
}

/// Signs in at the provider's login page (its development interactions take
/// any password) and confirms the consent page when it asks.
async fn provider_login(b: &Browser, base: &str, login: &str) {
    let input = b.find("input[name=login]").await;
    b.send_keys(&input, login).await;
    let password = b.find("input[name=password]").await;
    b.send_keys(&password, "any password").await;
    b.click(&b.find("button[type=submit]").await).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if b.url().await.starts_with(base) {
            return;
        }
        // the consent page: its "Continue" button
        b.execute(
            "const c = Array.from(document.querySelectorAll('button')).find(x => x.textContent.trim() === 'Continue'); if (c) c.click();",
            vec![],
        )
        .await;
        if Instant::now() > deadline {
            panic!(
                "the provider never sent the browser back: at {} showing {:?}",
                b.url().await,
                page_text(b).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn page_text(b: &Browser) -> String {
    b.execute("return document.body.innerText", vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn people_sign_in_at_the_provider_in_a_browser_and_bad_callbacks_are_refused() {
    // the service's address is in the provider's redirect URIs, so it is
    // bound first and held until the service serves on it
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = Idp::start(
        &[("rsa-1", "RS256")],
        json!([{"client_id": "certscope-web", "client_secret": SECRET,
                "redirect_uris": [format!("{base}/signin/sso/test-idp/callback")],
                "post_logout_redirect_uris": [format!("{base}/signin")]}]),
    );
    let config = idp.provider(
        "test-idp",
        json!({"client_id": "certscope-web", "client_secret": SECRET}),
    );
    let s = TestApp::start_on(listener, move |c| c.providers = vec![config]).await;
    let (a, _) = s.orgs().await;
    let officer = email_of(&s, &a, Role::Officer).await;
    idp.set_accounts(json!({
        "officer": {"email": officer, "org": a, "certscope_role": "officer"},
        "stranger": {"email": officer, "certscope_role": "officer"},
    }))
    .await;

    // sign in from a page that needs it, and land back on that page
    let b = Browser::start(1280, 900).await;
    b.goto(&format!("{base}/dashboard")).await;
    let button = b.find("a.button[href^='/signin/sso/test-idp']").await;
    b.click(&button).await;
    provider_login(&b, &base, "officer").await;
    b.find("header.top .who").await;
    assert_eq!(
        b.url().await,
        format!("{base}/dashboard"),
        "back where it started"
    );
    let who = b.text(&b.find("header.top .who").await).await;
    assert!(who.contains("Compliance officer"), "{who}");
    let method: String =
        sqlx::query_scalar("SELECT method FROM web_sessions ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(method, "test-idp");

    // sign-out ends the session here and goes to the provider's end-session page
    let signout = b.find("form[action='/signout'] button").await;
    b.click(&signout).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.url().await.starts_with(&idp.issuer) {
        assert!(
            Instant::now() < deadline,
            "sign-out did not reach the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended: bool = sqlx::query_scalar("SELECT ended_at IS NOT NULL FROM web_sessions WHERE method = 'test-idp' ORDER BY created_at DESC LIMIT 1")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert!(ended, "the local session ended");
    b.goto(&format!("{base}/")).await;
    assert!(page_text(&b).await.contains("Sign in to Certscope"));

    // no organization claim: refused saying which claim; the callback replayed
    // (same code, same state) is refused too
    let b = Browser::start(1280, 900).await;
    b.goto(&format!("{base}/signin/sso/test-idp")).await;
    provider_login(&b, &base, "stranger").await;
    b.find("main h1").await;
    let text = page_text(&b).await;
    assert!(text.contains("claim `org` is missing"), "{text}");
    let callback = b.url().await;
    assert!(
        callback.contains("/callback?") && callback.contains("code="),
        "{callback}"
    );
    b.goto(&callback).await;
    let text = page_text(&b).await;
    assert!(text.contains("already used"), "a replayed callback: {text}");

    // a state that is not this browser's
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/signin/sso/test-idp/callback?code=abc&state=theirs"
        ))
        .header("cookie", "certscope_oidc=mine")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not started in this browser")
    );

    // a nonce that is not this sign-in's
    let b = Browser::start(1280, 900).await;
    b.goto(&format!("{base}/signin/sso/test-idp")).await;
    b.find("input[name=login]").await;
    sqlx::query("UPDATE web_oidc_logins SET nonce = 'tampered' WHERE used_at IS NULL")
        .execute(&s.pool)
        .await
        .unwrap();
    provider_login(&b, &base, "officer").await;
    b.find("main h1").await;
    let text = page_text(&b).await;
    assert!(text.contains("nonce"), "{text}");
    assert_eq!(b.dialog().await, None);

    // an expired ID token (the provider never issues one: signed with its
    // published key by the side signer) is refused; the same token unexpired passes
    let provider = &s.state.api.providers;
    let provider = provider.by_name("test-idp").unwrap();
    let now = chrono::Utc::now().timestamp();
    let id_token = |exp: i64| {
        json!({"iss": idp.issuer, "aud": "certscope-web", "sub": "officer", "nonce": "n-1",
               "iat": exp - 3600, "exp": exp, "email": officer, "org": a, "certscope_role": "officer"})
    };
    let fresh = idp.forge("rsa-1", id_token(now + 600), json!({})).await;
    assert!(provider.verify_id_token(&fresh, "n-1").await.is_ok());
    let expired = idp.forge("rsa-1", id_token(now - 600), json!({})).await;
    let err = provider.verify_id_token(&expired, "n-1").await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let err = provider.verify_id_token(&fresh, "n-2").await.unwrap_err();
    assert!(err.to_string().contains("nonce"), "{err}");
}
