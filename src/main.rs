//! The `switchyard` binary: parse the command line, load config, hand over to `App`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use switchyard::{app, config::Config, domain::Role, telemetry};

#[derive(Parser)]
#[command(
    version,
    about = "WebSocket-first realtime backend for an AI coding assistant"
)]
struct Cli {
    /// TOML config file (also SWITCHYARD_CONFIG). Environment variables override it.
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600) for `auth.key_files`.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password comes from SWITCHYARD_USER_PASSWORD or standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        admin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    telemetry::init_tracing(&config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.server.bind).await?;
            app::App::build(config, listener)
                .await?
                .run(switchyard::shutdown::signal())
                .await
        }
        Command::Migrate => {
            let store = app::open_store(&config).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Keygen { out } => {
            let kid = switchyard::auth::jwt::write_new_key(&out)?;
            println!("wrote {} (kid {kid})", out.display());
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { email, admin },
        } => {
            let password = match std::env::var("SWITCHYARD_USER_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password (read from standard input):");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let store = app::open_store(&config).await?;
            let keys = std::sync::Arc::new(switchyard::auth::jwt::KeySet::load(
                &config.auth.key_files,
                &config.server.data_dir,
                &config.auth.issuer,
                &config.auth.audience,
                config.auth.leeway_secs,
            )?);
            // No sockets to tell about revocations here: an in-process bus with nobody on it.
            let hub = switchyard::hub::Hub::new(tokio::sync::mpsc::channel(1).0);
            let (inbox, rx) = switchyard::bus::Inbox::new();
            let bus = std::sync::Arc::new(switchyard::bus::local::LocalBus::new(
                std::sync::Arc::new(hub),
                inbox,
            ));
            let auth = switchyard::auth::AuthService::new(
                store,
                keys,
                bus,
                rx.refused,
                config.auth.clone(),
            )?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = auth
                .create_user(&email, &password, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {} ({}, {})", user.email, user.id, role.as_str());
            Ok(())
        }
    }
}
