use std::process::ExitCode;

use server::{Application, Config, telemetry};
use tokio::signal::unix::{Signal, SignalKind, signal};

const USAGE: &str = "\
usage: taskflow [serve]            run the API server (the default)
       taskflow db migrate         apply pending migrations to DATABASE_URL
       taskflow db reset           revert every migration and apply them again (not in production)
       taskflow db seed            add demo users and tasks, print their credentials
       taskflow users promote EMAIL [--yes]
                                   make a registered user a system admin (--yes in production)

Configuration comes from the environment: see README.md.";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("taskflow: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.as_slice() {
        [] | ["serve"] => serve(config).await,
        ["db", command] => server::db::run(command, &config).await,
        ["users", rest @ ..] => server::users::run(rest, &config).await,
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    if let Err(e) = telemetry::init(&config.log_level, config.log_format, std::io::stdout) {
        eprintln!("taskflow: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    // Registered before anything announces the server, so a signal that
    // arrives right after "listening" still stops it gracefully.
    let signals = match ShutdownSignals::register() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("taskflow: cannot handle shutdown signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match Application::build(&config).await {
        Ok(app) => app,
        Err(e) => {
            let line = domain::error::describe(&e);
            tracing::error!("{line}");
            eprintln!("taskflow: {line}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        addr = %app.addr(),
        env = ?config.app_env,
        "TaskFlow listening on http://{} (Swagger UI at /docs)",
        app.addr()
    );
    let handle = app.handle();
    let streams = app.live_streams();
    let server = tokio::spawn(app.run_until_stopped());
    let signal = signals.recv().await;
    tracing::info!(
        signal,
        timeout_secs = config.shutdown_timeout.as_secs(),
        "shutting down: no new connections, finishing requests in flight"
    );
    streams.close_all();
    handle.stop(true).await;
    match server.await {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            tracing::error!("server failed: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("server task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, listened for from the moment of registration.
struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    fn register() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either and names the one that came.
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
