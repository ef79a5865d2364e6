//! A real OpenID Connect provider on loopback (`tests/providers/oidc.mjs`:
//! npm's `oidc-provider`), and a browser's part in its flow: following the
//! provider's redirects with its cookies until it sends the browser back.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub const CLIENT_ID: &str = "ampere";
pub const CLIENT_SECRET: &str = "loopback-client-secret";

pub struct LoopbackProvider {
    child: Child,
    pub issuer: String,
}

impl LoopbackProvider {
    /// Starts the provider with one client, Ampere, whose redirect URIs are
    /// those of `providers` at `public_url`.
    pub fn start(public_url: &str, providers: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/providers/oidc.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .args([CLIENT_ID, CLIENT_SECRET])
            .args(
                providers
                    .iter()
                    .map(|p| format!("{public_url}/api/v1/auth/{p}/token")),
            )
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node, with npm's oidc-provider installed (scripts/test does)");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Whatever it says later is read (a closed pipe would end it).
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = line
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .trim()
            .to_string();
        LoopbackProvider { child, issuer }
    }

    /// The settings of provider `kind` pointing here.
    pub fn settings(&self, kind: server::oidc::Kind) -> server::oidc::ProviderSettings {
        server::oidc::ProviderSettings {
            kind,
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            issuer: self.issuer.clone(),
            api: self.issuer.clone(),
        }
    }

    /// Who signs in at the provider next.
    pub async fn sign_in_as(&self, subject: &str) {
        self.control("/_test/user", subject).await;
    }

    /// How the token endpoint lies: `honest`, `wrong-key`, `wrong-audience`.
    pub async fn lie(&self, mode: &str) {
        self.control("/_test/mode", mode).await;
    }

    async fn control(&self, path: &str, text: &str) {
        let (status, _, _) = request(
            hyper::Request::post(format!("{}{path}", self.issuer))
                .body(Full::new(Bytes::from(text.to_string())))
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
    }

    /// A browser at the provider: follows its redirects from `url` (with the
    /// cookies it sets) and answers where it finally sends the browser, as a
    /// path and query at Ampere.
    pub async fn browse(&self, url: &str) -> String {
        let mut cookies = BTreeMap::new();
        let mut url = url.to_string();
        for _ in 0..10 {
            if !url.starts_with(&self.issuer) {
                let rest = url.split_once("://").expect("an absolute URL").1;
                return rest[rest.find('/').unwrap_or(rest.len())..].to_string();
            }
            let cookie = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let (status, headers, body) = request(
                hyper::Request::get(&url)
                    .header("cookie", cookie)
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
            for set in headers.get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                cookies.insert(name.to_string(), value.to_string());
            }
            let location = headers
                .get("location")
                .unwrap_or_else(|| panic!("the provider answered {status} at {url}: {body}"))
                .to_str()
                .unwrap();
            url = if location.starts_with('/') {
                format!("{}{location}", self.issuer)
            } else {
                location.to_string()
            };
        }
        panic!("the provider kept redirecting");
    }
}

impl Drop for LoopbackProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn request(request: hyper::Request<Full<Bytes>>) -> (u16, hyper::HeaderMap, String) {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.expect("the provider answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).to_string())
}
