//! Mail the server sends (password reset links): through the operator's SMTP
//! server (`--smtp-url`), or, without one, into the outbox folder of the data
//! directory, one `.eml` file per message, readable by the operator alone.
//! Sending happens in the background: whoever asked is answered at once, in
//! the same time whether a message went or not.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{Error, Result};

/// Where mail goes.
#[derive(Debug, Clone, Default)]
pub struct MailConfig {
    /// `smtp://[user:password@]host[:port]` (add `?tls=required` for
    /// STARTTLS) or `smtps://...` (TLS from the start); `None`: the outbox.
    pub smtp_url: Option<String>,
    /// The sender, e.g. `Ampere <wallet@example.com>`.
    pub from: String,
    /// The folder messages are written to without SMTP; `None` drops them
    /// (said in the log).
    pub outbox: Option<PathBuf>,
    /// The server's public URL, which links in messages point to.
    pub public_url: String,
}

/// Longest an SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Mail(Arc<Inner>);

struct Inner {
    from: Mailbox,
    transport: Transport,
    public_url: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
    Nowhere,
}

impl Mail {
    /// Checks the settings (a malformed URL or sender stops the start).
    pub fn new(config: &MailConfig) -> Result<Self> {
        let from = if config.from.trim().is_empty() {
            "Ampere <ampere@localhost>"
        } else {
            config.from.trim()
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e| Error::Internal(format!("the mail sender {from:?}: {e}")))?;
        let transport = match (&config.smtp_url, &config.outbox) {
            (Some(url), _) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // Never the URL itself in the message: it may hold a password.
                    .map_err(|e| Error::Internal(format!("the SMTP URL does not read: {e}")))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            (None, Some(folder)) => Transport::Outbox(folder.clone()),
            (None, None) => Transport::Nowhere,
        };
        Ok(Mail(Arc::new(Inner {
            from,
            transport,
            public_url: config.public_url.trim_end_matches('/').to_string(),
        })))
    }

    /// A link to `path` (with its query) on this server.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.0.public_url)
    }

    /// Sends a plain-text message to `to` in the background; a failure is
    /// logged (without the message: it may carry a secret link).
    pub fn send(&self, to: &str, subject: &str, text: String) {
        let message = match self.message(to, subject, text) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(error = %err, "a message could not be made");
                return;
            }
        };
        let mail = self.clone();
        tokio::spawn(async move {
            if let Err(err) = mail.deliver(message).await {
                tracing::warn!(error = %err, "a message was not sent");
            }
        });
    }

    fn message(&self, to: &str, subject: &str, text: String) -> Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| Error::Internal(format!("recipient: {e}")))?;
        Message::builder()
            .from(self.0.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| Error::Internal(format!("message: {e}")))
    }

    async fn deliver(&self, message: Message) -> Result<()> {
        match &self.0.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| Error::Internal(format!("SMTP: {e}"))),
            Transport::Outbox(folder) => write_to_outbox(folder, &message.formatted()).await,
            Transport::Nowhere => {
                tracing::warn!("no SMTP server and no outbox: a message was dropped");
                Ok(())
            }
        }
    }
}

/// Writes one message as `<unix ms>-<random>.eml`, the folder and the file
/// readable by the server's user only (a message may carry a reset link).
async fn write_to_outbox(folder: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let name = format!("{}-{}.eml", crate::now_ms(), crate::random_hex(4));
    let (folder, bytes) = (folder.to_path_buf(), bytes.to_vec());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        dir.mode(0o700);
        dir.create(&folder)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(folder.join(name))?;
        file.write_all(&bytes)?;
        file.sync_all()
    })
    .await
    .map_err(|e| Error::Internal(format!("outbox: {e}")))?
    .map_err(|e| Error::Internal(format!("outbox: {e}")))
}
