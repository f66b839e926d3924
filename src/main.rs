//! The `tarn` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tarn::server::{ServerConfig, serve};
use tarn::storage::FlushPolicy;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tarn", version, about = "Tarn: a PostgreSQL-compatible analytical database (DataFusion over Lance)")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the server: speak the PostgreSQL protocol on --listen, keep data in --data-dir.
    ///
    /// Connect with any PostgreSQL client, e.g. `psql -h 127.0.0.1 -p 5433 -U tarn tarn`.
    /// Logging follows RUST_LOG (default `info`).
    Serve {
        /// Directory for the catalog, WAL and Lance tables (created if missing).
        #[arg(long, env = "TARN_DATA_DIR", default_value = "./tarn-data")]
        data_dir: PathBuf,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, env = "TARN_LISTEN", default_value = "127.0.0.1:5433")]
        listen: SocketAddr,
        /// Fold a table's in-memory delta into Lance once it holds this many rows.
        #[arg(long, default_value_t = 100_000)]
        flush_rows: usize,
        /// ... or once its oldest row is this many seconds old.
        #[arg(long, default_value_t = 30)]
        flush_secs: u64,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lance=warn,datafusion=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tarn: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Commands::Serve { data_dir, listen, flush_rows, flush_secs } => {
                let flush = FlushPolicy { max_rows: flush_rows, max_age: Duration::from_secs(flush_secs), ..Default::default() };
                serve(ServerConfig { data_dir, listen, flush }).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarn: {}", e.message);
            std::process::ExitCode::FAILURE
        }
    }
}
