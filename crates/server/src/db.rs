//! `taskflow db migrate | reset | seed`: database chores for operators and
//! developers, run against `DATABASE_URL`.

use std::process::ExitCode;

use adapters_memory::{MemoryIdempotencyStore, MemorySessionStore};
use adapters_postgres::PgStore;
use domain::{
    MemberRef, NewMember, NewProject, NewTask, Priority, ProjectRole, RegisterError, RegisterInput,
    Status,
};
use time::{Duration, OffsetDateTime};

use crate::{Adapters, Config, connect_database, production_hasher, taskflow};

/// The demo accounts `seed` creates: e-mail, password, name.
pub const DEMO_USERS: [(&str, &str, &str); 2] = [
    ("ada@example.com", "analytical-engine", "Ada Lovelace"),
    ("grace@example.com", "compiler-pioneer", "Grace Hopper"),
];

pub async fn run(command: &str, config: &Config) -> ExitCode {
    let Some(url) = config.database_url.as_ref() else {
        eprintln!("taskflow db {command}: DATABASE_URL is not set");
        return ExitCode::FAILURE;
    };
    let url = url.expose();
    let outcome = match command {
        "migrate" => adapters_postgres::run_migrations(url)
            .await
            .map(|applied| report("applied", &applied))
            .map_err(|e| domain::error::describe(&e)),
        "reset" if config.app_env == crate::AppEnv::Production => {
            Err("refusing to reset a database with APP_ENV=production".to_owned())
        }
        "reset" => adapters_postgres::reset(url)
            .await
            .map(|applied| report("reset; applied", &applied))
            .map_err(|e| e.to_string()),
        "seed" if config.app_env == crate::AppEnv::Production => {
            Err("refusing to add demo accounts with APP_ENV=production".to_owned())
        }
        "seed" => seed(config).await,
        other => Err(format!("unknown command {other:?}: migrate, reset or seed")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskflow db {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(what: &str, versions: &[String]) {
    if versions.is_empty() {
        println!("nothing to apply: the schema is up to date");
    } else {
        println!(
            "{what} {} migration(s): {}",
            versions.len(),
            versions.join(", ")
        );
    }
}

/// Demo users with a few tasks each, and a project they share, through the
/// real use cases.
async fn seed(config: &Config) -> Result<(), String> {
    let url = config
        .database_url
        .as_ref()
        .map(|u| u.expose())
        .unwrap_or_default();
    let store: PgStore = connect_database(url, config)
        .await
        .map_err(|e| e.to_string())?;
    let hasher = production_hasher(config).await.map_err(|e| e.to_string())?;
    let app = taskflow::<Adapters<PgStore, MemorySessionStore, MemoryIdempotencyStore>>(
        store,
        MemorySessionStore::default(),
        MemoryIdempotencyStore::default(),
        hasher,
        crate::Bus::default(),
        config,
    );
    let now = OffsetDateTime::now_utc();
    let mut principals = Vec::new();
    for (email, password, name) in DEMO_USERS {
        let registered = app
            .register(RegisterInput {
                email: email.to_owned(),
                password: password.to_owned(),
                name: name.to_owned(),
            })
            .await;
        match registered {
            Ok(_) => {}
            Err(RegisterError::EmailTaken) => {
                println!("{email} exists already; left as it is");
                continue;
            }
            Err(e) => return Err(e.to_string()),
        }
        let login = app
            .login(email, password.to_owned())
            .await
            .map_err(|e| e.to_string())?;
        let principal = app
            .authenticate(&login.access.token)
            .await
            .map_err(|e| e.to_string())?;
        let tasks = [
            (
                "Write the quarterly report",
                Status::InProgress,
                Priority::High,
                Some(3),
            ),
            (
                "Review pull requests",
                Status::Todo,
                Priority::Medium,
                Some(1),
            ),
            ("Book the team offsite", Status::Todo, Priority::Low, None),
            (
                "Fix the login timeout bug",
                Status::Done,
                Priority::Urgent,
                Some(-1),
            ),
        ];
        for (title, status, priority, due_in_days) in tasks {
            let task = NewTask {
                project_id: None,
                assignee_id: None,
                title: title.to_owned(),
                description: None,
                status: Some(status),
                priority: Some(priority),
                due_date: due_in_days.map(|d| now + Duration::days(d)),
            };
            app.create_task(principal, task)
                .await
                .map_err(|e| e.to_string())?;
        }
        println!("seeded {email} (password: {password}) with 4 tasks");
        principals.push(principal);
    }
    if let [ada, grace] = principals[..] {
        shared_project(&app, ada, grace).await?;
        println!("seeded the project \"Launch\": Ada owns it, Grace is a member");
    }
    Ok(())
}

/// A project Ada shares with Grace, with a task assigned to each.
async fn shared_project<P: domain::Ports>(
    app: &domain::TaskFlow<P>,
    ada: domain::Principal,
    grace: domain::Principal,
) -> Result<(), String> {
    let launch = app
        .create_project(
            ada,
            NewProject {
                name: "Launch".to_owned(),
                description: Some("Everything for the December release.".to_owned()),
            },
        )
        .await
        .map_err(|e| e.to_string())?
        .project;
    app.add_member(
        ada,
        launch.id,
        NewMember {
            user: MemberRef::Id(grace.user_id),
            role: ProjectRole::Member,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    for (title, assignee) in [
        ("Write the release notes", ada.user_id),
        ("Run the load test", grace.user_id),
    ] {
        let task = NewTask {
            project_id: Some(launch.id),
            assignee_id: Some(assignee),
            title: title.to_owned(),
            ..NewTask::default()
        };
        app.create_task(ada, task)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
