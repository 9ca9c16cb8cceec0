//! `taskflow users promote EMAIL [--yes]`: makes a registered user a
//! system admin, in the database at `DATABASE_URL`. In production it asks
//! for `--yes`, so a pasted command cannot hand out admin by accident.

use std::process::ExitCode;

use adapters_memory::{MemoryIdempotencyStore, MemorySessionStore};
use adapters_postgres::PgStore;

use crate::{Adapters, AppEnv, Config, connect_database, production_hasher, taskflow};

pub async fn run(args: &[&str], config: &Config) -> ExitCode {
    let outcome = match args {
        ["promote", email] => promote(email, false, config).await,
        ["promote", email, "--yes"] | ["promote", "--yes", email] => {
            promote(email, true, config).await
        }
        _ => Err("usage: taskflow users promote EMAIL [--yes]".to_owned()),
    };
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("taskflow users: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn promote(email: &str, yes: bool, config: &Config) -> Result<String, String> {
    if config.app_env == AppEnv::Production && !yes {
        return Err(format!(
            "refusing to promote {email} with APP_ENV=production without --yes"
        ));
    }
    let Some(url) = config.database_url.as_ref() else {
        return Err(
            "DATABASE_URL is not set (the in-memory server takes ADMIN_EMAILS instead)".to_owned(),
        );
    };
    let store: PgStore = connect_database(url.expose(), config)
        .await
        .map_err(|e| domain::error::describe(&e))?;
    let hasher = production_hasher(config).await.map_err(|e| e.to_string())?;
    let app = taskflow::<Adapters<PgStore, MemorySessionStore, MemoryIdempotencyStore>>(
        store,
        MemorySessionStore::default(),
        MemoryIdempotencyStore::default(),
        hasher,
        crate::Bus::default(),
        config,
    );
    match app.promote(email).await {
        Ok(user) => Ok(format!("{} is a system admin", user.email.as_str())),
        Err(domain::AdminError::NotFound) => Err(format!("no user has the address {email}")),
        Err(e) => Err(domain::error::describe(&e)),
    }
}
