//! A real SMTP server for the tests: Python's `aiosmtpd` (from the test venv)
//! on a free loopback port, keeping what it receives in a Maildir; messages are
//! read back with Python's own `email` parser, not ours.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct SmtpSink {
    child: std::process::Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// A received message, as Python's `email` package reads it.
#[derive(Debug, serde::Deserialize)]
pub struct Received {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub body: String,
}

fn venv_python() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_string()
}

impl SmtpSink {
    /// Starts the server and waits until it accepts connections.
    // The child is killed and waited for when the sink drops.
    #[allow(clippy::zombie_processes)]
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(venv_python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the test venv (.venv, made by scripts/test) with aiosmtpd");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return SmtpSink { child, dir, port };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn delivered(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("maildir/new"))
            .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    /// How many messages arrived so far.
    pub fn count(&self) -> usize {
        self.delivered().len()
    }

    /// Waits (up to 10 s) until `n` messages arrived in all; answers the
    /// newest.
    pub async fn wait_for(&self, n: usize) -> Received {
        for _ in 0..100 {
            let files = self.delivered();
            if files.len() >= n {
                assert_eq!(files.len(), n, "more messages than expected");
                let newest = files.iter().max_by_key(|f| modified(f)).unwrap();
                return read_message(newest).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("message {n} never arrived");
    }
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap()
}

/// Reads a message file (RFC 5322) with Python's `email` package.
pub async fn read_message(path: &Path) -> Received {
    let script = "import email, json, sys\n\
        from email import policy\n\
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)\n\
        print(json.dumps({'to': str(m['To']), 'from': str(m['From']), \
        'subject': str(m['Subject']), 'body': m.get_body(('plain',)).get_content()}))";
    let (python, path) = (venv_python(), path.to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server whose mail goes to `smtp` (or, without it, to `outbox`), with
/// links to `https://wallet.example`.
pub async fn server_with_mail(
    url: &str,
    smtp: Option<&SmtpSink>,
    outbox: Option<&std::path::Path>,
) -> super::Server {
    use engine::throttle::{ClientLimits, Rule};
    let hour = std::time::Duration::from_secs(3600);
    let settings = engine::Settings {
        mail: engine::mail::MailConfig {
            smtp_url: smtp.map(|s| s.url()),
            from: "Ampere <wallet@example.com>".into(),
            outbox: outbox.map(|o| o.to_path_buf()),
            public_url: "https://wallet.example/".into(),
        },
        sign_up: ClientLimits {
            per_client: Rule::new(1000, hour),
            overall: Rule::new(1000, hour),
        },
        ..Default::default()
    };
    super::Server::open_with_settings(url, settings, server::Site::for_tests(false)).await
}
