//! Load generator for switchyard. Each scenario is one command; all traffic goes to the URLs
//! given (loopback), every loop is bounded in count and time, and it prints a report.
//!
//!   load login  --url http://127.0.0.1:8080 --concurrency 20 --seconds 10
//!   load idle   --url http://127.0.0.1:8080 --conns 5000 --pid <server pid>
//!   load fanout --url http://127.0.0.1:8080 [--sub-url http://127.0.0.1:8081] --subs 1000 --rate 1000 --seconds 10
//!   load sync   --url http://127.0.0.1:8080 --sessions 1 --clients 50 --seconds 10
//!   load completions --url http://127.0.0.1:8080 --concurrency 64 --seconds 10 [--upstream 127.0.0.1:9102 --model gw] [--stream]
//!   load stream --url http://127.0.0.1:8080 --streams 200   (see stream.rs for the server's env)
//!   load storm  --url http://127.0.0.1:8080 --conns 10000 [--users 10] [--since] [--pid <server pid>]
//!   load tools  --url http://127.0.0.1:8080 --sessions 10 [--mcp fast --tool add --args '{"a":2,"b":3}']

mod client;
mod completions;
mod fanout;
mod idle;
mod login;
mod soak;
mod soak_sample;
mod storm;
mod stream;
mod sync;
mod tools;
mod upstream;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Concurrent logins while probing /health: login latency and whether argon2 stalls the runtime.
    Login(login::Args),
    /// N authenticated idle sockets; server RSS per connection.
    Idle(idle::Args),
    /// One publisher, N subscribers on one session: deliveries/s and publish-to-receive latency.
    Fanout(fanout::Args),
    /// Concurrent session.push clients: committed mutations/s and push-to-ack latency.
    Sync(sync::Args),
    /// Chat completions against `echo` or (`--upstream`) a provider: completions/s, latency, added.
    Completions(completions::Args),
    /// Streaming through an OpenAI-compatible upstream: latency added per chunk.
    Stream(stream::Args),
    /// N sockets connecting and subscribing to one session at once: time to all caught up,
    /// failures, presence traffic, RSS per subscribed socket.
    Storm(storm::Args),
    /// Socket turns with one tool round each (client-side or MCP tool): per-call latency.
    Tools(tools::Args),
    /// A mixed workload for minutes (connects, pushes, publishes, presence, turns) with the
    /// server's RSS, fds and threads sampled as a table, and a verdict on drift.
    Soak(soak::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().scenario {
        Scenario::Login(a) => login::run(a).await,
        Scenario::Idle(a) => idle::run(a).await,
        Scenario::Fanout(a) => fanout::run(a).await,
        Scenario::Sync(a) => sync::run(a).await,
        Scenario::Completions(a) => completions::run(a).await,
        Scenario::Stream(a) => stream::run(a).await,
        Scenario::Storm(a) => storm::run(a).await,
        Scenario::Tools(a) => tools::run(a).await,
        Scenario::Soak(a) => soak::run(a).await,
    }
}
