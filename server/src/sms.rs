//! Text messages the server sends (phone verification codes): `POST`ed as
//! JSON `{"to": "+<digits>", "text": "..."}` to the operator's gateway
//! (`--sms-gateway-url`, which adapts them to its provider), or else written
//! to `outbox/sms/` in the data directory, one file a message, readable by
//! the server's user only. Sent in the background; a failure is logged
//! without the message (it carries a code).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use http_body_util::Full;
use hyper::body::Bytes;

use crate::outbound::HttpClient;

/// How long the gateway may take to take a message.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Sms(Arc<Transport>);

enum Transport {
    Gateway {
        url: hyper::Uri,
        client: Box<HttpClient<Full<Bytes>>>,
    },
    Outbox(PathBuf),
    Nowhere,
}

impl Sms {
    /// Messages go to `gateway` when given (an http or https URL), else into
    /// `outbox` when given, else nowhere (said in the log).
    pub fn new(gateway: Option<&str>, outbox: Option<PathBuf>) -> Result<Self, engine::Error> {
        let transport = match (gateway, outbox) {
            (Some(url), _) => Transport::Gateway {
                url: url
                    .parse()
                    .ok()
                    .filter(|u: &hyper::Uri| matches!(u.scheme_str(), Some("http" | "https")))
                    // Never the URL in the message: it may carry a key.
                    .ok_or_else(|| {
                        engine::Error::invalid(
                            "sms_gateway_url",
                            "the SMS gateway URL does not read",
                        )
                    })?,
                client: Box::new(crate::outbound::client()?),
            },
            (None, Some(folder)) => Transport::Outbox(folder),
            (None, None) => Transport::Nowhere,
        };
        Ok(Sms(Arc::new(transport)))
    }

    /// Sends `text` to `to` in the background.
    pub fn send(&self, to: String, text: String) {
        let sms = self.clone();
        tokio::spawn(async move {
            if let Err(err) = sms.deliver(&to, &text).await {
                tracing::warn!(error = %err, "a text message was not sent");
            }
        });
    }

    async fn deliver(&self, to: &str, text: &str) -> Result<(), String> {
        match &*self.0 {
            Transport::Gateway { url, client } => {
                let body = serde_json::json!({ "to": to, "text": text }).to_string();
                let request = hyper::Request::post(url.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::USER_AGENT, "ampere")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| format!("request: {e}"))?;
                let response = tokio::time::timeout(GATEWAY_TIMEOUT, client.request(request))
                    .await
                    .map_err(|_| "the SMS gateway did not answer in time".to_string())?
                    .map_err(|e| format!("the SMS gateway is unreachable: {e}"))?;
                match response.status().is_success() {
                    true => Ok(()),
                    false => Err(format!("the SMS gateway answered {}", response.status())),
                }
            }
            Transport::Outbox(folder) => {
                let (folder, message) = (folder.clone(), format!("To: {to}\n\n{text}\n"));
                tokio::task::spawn_blocking(move || write_private(&folder, &message))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("SMS outbox: {e}"))
            }
            Transport::Nowhere => {
                tracing::warn!("no SMS gateway and no outbox: a text message was dropped");
                Ok(())
            }
        }
    }
}

fn write_private(folder: &std::path::Path, message: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    dir.mode(0o700);
    dir.create(folder)?;
    let name = format!("{}-{}.txt", engine::now_ms(), engine::random_hex(4));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(folder.join(name))?;
    file.write_all(message.as_bytes())?;
    file.sync_all()
}
