//! What the operator does with the binary besides serving (`ampere
//! oauth-client ...`), against the database the server uses: with
//! PostgreSQL, a running server hears of a removed client at once (the bus);
//! on either database its tokens stop at their next request.

use std::io::Write;

use crate::config::{Command, Config, OAuthClientCommand};
use crate::StartError;

/// Runs `command`, printing its answer on stdout.
pub async fn run(config: &Config, command: &Command) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let settings = config.engine_settings();
    let db = engine::Database::open(&config.database_url(), settings.storage).await?;
    let bus = engine::events::Bus::start(&db).await?;
    let clients = engine::oauth::OAuth::new(db, bus);
    let mut out = std::io::stdout().lock();
    match command {
        Command::OAuthClient(OAuthClientCommand::Add {
            name,
            redirect_urls,
            scopes,
        }) => {
            let (client, secret) = clients.add_client(name, redirect_urls, scopes).await?;
            writeln!(out, "client_id={}", client.id)?;
            writeln!(out, "client_secret={secret}")?;
        }
        Command::OAuthClient(OAuthClientCommand::List) => {
            for client in clients.clients().await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    client.id,
                    client.name,
                    engine::oauth::scope_text(&client.scopes),
                    client.redirect_urls.join(" ")
                )?;
            }
        }
        Command::OAuthClient(OAuthClientCommand::Remove { id }) => {
            clients.remove_client(id).await?;
            writeln!(out, "removed {id}")?;
        }
    }
    Ok(())
}
