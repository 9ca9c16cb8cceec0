use std::process::ExitCode;

use server::{Application, Config, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("taskflow: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = telemetry::init(&config.log_level, config.log_format, std::io::stdout) {
        eprintln!("taskflow: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    let app = match Application::build(&config) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("taskflow: {e}");
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
    let server = tokio::spawn(app.run_until_stopped());
    let signal = shutdown_signal().await;
    tracing::info!(
        signal,
        timeout_secs = config.shutdown_timeout.as_secs(),
        "shutting down: no new connections, finishing requests in flight"
    );
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

/// Waits for SIGINT or SIGTERM and names the one that came.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
