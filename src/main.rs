//! The `switchyard` binary: parse the command line, load config, hand over to `App`.

use clap::{Parser, Subcommand};

/// jemalloc rather than the system allocator: glibc's per-thread arenas kept freed memory of a
/// long run (a 30-minute soak grew 6 MiB a minute with flat live data; with two arenas, half
/// that), where jemalloc returns it and reports what is live (`heap_*` in /metrics).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: a background thread returns freed pages to the OS
/// within a second of going unused, instead of whenever the arena that holds them next
/// allocates (a socket's buffers are freed on one worker thread and rarely reused there).
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";
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
    /// Put every instance into maintenance (503 with a reason and Retry-After; sockets told,
    /// then closed with 1012), or take it out. Stored: applies on every instance within
    /// `server.maintenance_poll_ms` and survives restarts.
    KillSwitch {
        #[command(subcommand)]
        command: KillSwitchCommand,
    },
}

#[derive(Subcommand)]
enum KillSwitchCommand {
    /// Turn maintenance on.
    Enable {
        /// Shown to every client (1 to 500 characters).
        #[arg(long)]
        reason: String,
        /// What Retry-After says, in seconds (1 to 86400).
        #[arg(long, default_value_t = 60)]
        retry_after: u64,
    },
    /// Turn maintenance off.
    Disable,
    /// Print whether maintenance is on, and why.
    Status,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password comes from SWITCHYARD_USER_PASSWORD, else it is asked
    /// for (not echoed) or read from standard input. Password policy: 10 to 128 characters
    /// (`auth.password_min_len`), not containing the e-mail's name, not a common password, not
    /// one character repeated.
    Create {
        /// The account's e-mail address (its sign-in name).
        #[arg(long)]
        email: String,
        /// Make it an admin (can list users, read the audit log, use the kill switch).
        #[arg(long)]
        admin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    let command = cli.command.unwrap_or(Command::Serve);
    telemetry::init_tracing(&config.log, !matches!(command, Command::Serve));
    match command {
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
                Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    rpassword::prompt_password("password (not echoed): ")?
                }
                Err(_) => {
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
        Command::KillSwitch { command } => kill_switch(&config, command).await,
    }
}

async fn kill_switch(config: &Config, command: KillSwitchCommand) -> anyhow::Result<()> {
    let store = app::open_store(config).await?;
    // No sockets here: the instances follow the stored state.
    let hub = switchyard::hub::Hub::new(tokio::sync::mpsc::channel(1).0);
    let k = switchyard::maintenance::KillSwitch::new(
        store.clone(),
        std::sync::Arc::new(hub),
        std::time::Duration::from_millis(config.server.maintenance_poll_ms),
        std::time::Duration::ZERO,
    );
    let fail = |e: switchyard::error::AppError| anyhow::anyhow!("{e}");
    match command {
        KillSwitchCommand::Enable {
            reason,
            retry_after,
        } => {
            k.enable("cli".into(), &reason, retry_after, None)
                .await
                .map_err(fail)?;
            println!(
                "maintenance on (every instance within {} ms): {reason}",
                config.server.maintenance_poll_ms
            );
        }
        KillSwitchCommand::Disable => {
            k.disable("cli", None).await.map_err(fail)?;
            println!("maintenance off");
        }
        KillSwitchCommand::Status => match store.maintenance().await? {
            Some(m) => println!(
                "maintenance on since {} by {}: {} (Retry-After {} s)",
                m.enabled_at, m.enabled_by, m.reason, m.retry_after_secs
            ),
            None => println!("maintenance off"),
        },
    }
    Ok(())
}
