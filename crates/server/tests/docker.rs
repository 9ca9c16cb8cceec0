//! docker/Dockerfile and docker/compose.yaml against the code: every variable
//! they set is one the server reads (`server::config::VARIABLES`), compose
//! sets everything production requires, and the image is healthchecked,
//! non-root and exposes the port it listens on.
//!
//! No Docker engine is needed, and no YAML crate: a small line-based reader
//! takes just what is checked. It refuses what it does not understand rather
//! than skipping it, so a check cannot pass by not seeing a line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use server::config::VARIABLES;

/// What production refuses to start without; compose must set each one.
const REQUIRED_IN_PRODUCTION: &[&str] = &["APP_ENV", "DATABASE_URL", "REDIS_URL", "JWT_SECRET"];

fn repo_file(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn compose_api_sets_only_variables_the_server_reads_and_all_it_requires() {
    let compose = repo_file("docker/compose.yaml");
    let dockerfile = repo_file("docker/Dockerfile");
    let image = Dockerfile::parse(&dockerfile).expect("docker/Dockerfile");
    let problems = compose_problems(&compose, &image);
    assert!(
        problems.is_empty(),
        "docker/compose.yaml:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn dockerfile_is_healthchecked_non_root_and_exposes_its_port() {
    let dockerfile = repo_file("docker/Dockerfile");
    let problems = dockerfile_problems(&dockerfile);
    assert!(
        problems.is_empty(),
        "docker/Dockerfile:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// The checks.

fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| !VARIABLES.contains(&name.as_str()))
        .map(|name| {
            format!(
                "sets {name}, which the server does not read \
                 (a typo? the server reads: {})",
                VARIABLES.join(", ")
            )
        })
        .collect()
}

/// Problems with `compose` (the text of a compose file), given the image its
/// `api` service runs.
fn compose_problems(compose: &str, image: &Dockerfile) -> Vec<String> {
    let api = match ComposeService::parse(compose, "api") {
        Ok(api) => api,
        Err(e) => return vec![e],
    };
    let mut problems = unknown_variables(api.environment.keys());
    for required in REQUIRED_IN_PRODUCTION {
        match api.environment.get(*required) {
            None => problems.push(format!(
                "api does not set {required}, which production requires"
            )),
            Some(None) => problems.push(format!(
                "api passes {required} through from the host without a value; \
                 give it one (or `${{{required}:?message}}` to require it)"
            )),
            Some(Some(_)) => {}
        }
    }
    let value = |name: &str| api.environment.get(name).cloned().flatten();
    if let Some(app_env) = value("APP_ENV")
        && app_env != "production"
    {
        problems.push(format!("api sets APP_ENV={app_env}, not production"));
    }
    if let Some(secret) = value("JWT_SECRET")
        && !secret.starts_with("${JWT_SECRET:?")
    {
        problems.push(
            "api must take JWT_SECRET from the host and refuse to start without it: \
             JWT_SECRET: ${JWT_SECRET:?message}"
                .to_owned(),
        );
    }
    // The effective values inside the container: compose over the image.
    let effective = |name: &str| value(name).or_else(|| image.env.get(name).cloned());
    match effective("BIND_ADDR").as_deref() {
        Some("0.0.0.0" | "::") => {}
        other => problems.push(format!(
            "the api container must listen on all interfaces (BIND_ADDR=0.0.0.0), \
             not {other:?}: port mappings never reach 127.0.0.1"
        )),
    }
    let port = effective("PORT").unwrap_or_else(|| "3000".to_owned());
    if api.ports.is_empty() {
        problems.push("api publishes no port".to_owned());
    }
    for mapping in &api.ports {
        // "3000", "127.0.0.1::3000", "8080:3000", "3000/tcp".
        let mapping = mapping.split('/').next().unwrap_or_default();
        let mut parts: Vec<&str> = mapping.rsplitn(2, ':').collect();
        let container = parts.remove(0);
        if container != port {
            problems.push(format!(
                "api publishes container port {container}, but the server listens on PORT={port}"
            ));
        }
        if let Some(host) = parts.first() {
            let host_port = host.rsplit(':').next().unwrap_or_default();
            if !host_port.is_empty() {
                problems.push(format!(
                    "api maps fixed host port {host_port}: `--scale api=N` would collide; \
                     publish \"{port}\" (an ephemeral host port) instead"
                ));
            }
        }
    }
    if api.has_container_name {
        problems.push("api has a container_name: `--scale api=N` would collide".to_owned());
    }
    problems
}

/// Problems with `dockerfile` (the text of a Dockerfile): its final stage.
fn dockerfile_problems(dockerfile: &str) -> Vec<String> {
    let image = match Dockerfile::parse(dockerfile) {
        Ok(image) => image,
        Err(e) => return vec![e],
    };
    let mut problems = unknown_variables(image.env.keys());
    match image.env.get("PORT") {
        None => problems.push("sets no PORT".to_owned()),
        Some(port) if !image.expose.contains(port) => {
            problems.push(format!("sets PORT={port} but EXPOSEs {:?}", image.expose))
        }
        Some(_) => {}
    }
    match &image.user {
        None => problems.push("has no USER: the server would run as root".to_owned()),
        Some(user) => {
            let name = user.split(':').next().unwrap_or_default();
            if name.is_empty() || name == "root" || name == "0" {
                problems.push(format!("runs as root (USER {user})"));
            }
        }
    }
    match &image.healthcheck {
        None => problems.push("has no HEALTHCHECK".to_owned()),
        Some(check) if !check.contains("/health") || check.trim() == "NONE" => {
            problems.push(format!("HEALTHCHECK does not probe /health: {check}"));
        }
        Some(check) => {
            let on_port = image
                .env
                .get("PORT")
                .is_some_and(|port| check.contains(&format!(":{port}/health")));
            if !on_port && !check.contains(":${PORT}/health") && !check.contains(":$PORT/health") {
                problems.push(format!(
                    "HEALTHCHECK does not probe the PORT the server listens on: {check}"
                ));
            }
        }
    }
    if image.env.contains_key("JWT_SECRET") {
        problems.push("bakes a JWT_SECRET into the image".to_owned());
    }
    problems
}

// ---------------------------------------------------------------------------
// Just enough of a compose file.

/// One service of a compose file: its environment (`None` for a variable
/// passed through from the host with no value), its `ports`, and whether it
/// has a fixed `container_name`.
#[derive(Debug, Default)]
struct ComposeService {
    environment: BTreeMap<String, Option<String>>,
    ports: Vec<String>,
    has_container_name: bool,
}

/// A meaningful line: its indentation and its text without the indentation
/// (blank lines and comment lines are not kept).
fn yaml_lines(text: &str) -> Vec<(usize, usize, &str)> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let content = line.trim_start_matches(' ');
            let content = content.trim_end();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            Some((
                index + 1,
                line.len() - line.trim_start_matches(' ').len(),
                content,
            ))
        })
        .collect()
}

/// A scalar as YAML reads it: quotes removed, an unquoted `# comment` dropped.
fn yaml_scalar(raw: &str) -> String {
    let raw = raw.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)) {
            return inner.to_owned();
        }
    }
    match raw.find(" #") {
        Some(at) => raw[..at].trim_end().to_owned(),
        None => raw.to_owned(),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The lines nested under the line at `at` (all lines after it indented more).
fn block<'a>(lines: &'a [(usize, usize, &'a str)], at: usize) -> &'a [(usize, usize, &'a str)] {
    let indent = lines[at].1;
    let end = lines[at + 1..]
        .iter()
        .position(|&(_, i, _)| i <= indent)
        .map_or(lines.len(), |n| at + 1 + n);
    &lines[at + 1..end]
}

/// The keys of a block's direct children: (index into `lines`, key, rest).
fn children<'a>(
    lines: &'a [(usize, usize, &'a str)],
) -> Result<Vec<(usize, &'a str, &'a str)>, String> {
    let Some(&(_, indent, _)) = lines.first() else {
        return Ok(Vec::new());
    };
    let mut keys = Vec::new();
    for (index, &(number, i, text)) in lines.iter().enumerate() {
        if i < indent {
            return Err(format!("line {number}: unexpected indentation"));
        }
        if i == indent
            && let Some((key, rest)) = text.split_once(':')
            && !key.starts_with('-')
        {
            keys.push((index, key.trim(), rest.trim()));
        }
    }
    Ok(keys)
}

impl ComposeService {
    fn parse(compose: &str, service: &str) -> Result<ComposeService, String> {
        let lines = yaml_lines(compose);
        let top = children(&lines)?;
        let Some(&(services_at, _, rest)) = top.iter().find(|(_, key, _)| *key == "services")
        else {
            return Err("no top-level `services:`".to_owned());
        };
        if !rest.is_empty() {
            return Err("`services:` must be a block mapping".to_owned());
        }
        let services = block(&lines, services_at);
        let Some(&(service_at, _, rest)) = children(services)?
            .iter()
            .find(|(_, key, _)| *key == service)
        else {
            return Err(format!("no service `{service}`"));
        };
        if !rest.is_empty() {
            return Err(format!("service `{service}` must be a block mapping"));
        }
        let body = block(services, service_at);
        let mut parsed = ComposeService::default();
        for (at, key, rest) in children(body)? {
            match key {
                "env_file" => {
                    return Err(format!(
                        "service `{service}` uses env_file, whose variables cannot be \
                         checked here: list them under `environment:`"
                    ));
                }
                "container_name" => parsed.has_container_name = true,
                "environment" => {
                    if !rest.is_empty() {
                        return Err(format!(
                            "`{service}.environment` must be a block (one variable a line), \
                             not `{rest}`"
                        ));
                    }
                    parsed.environment = Self::environment(block(body, at))?;
                }
                "ports" => {
                    if !rest.is_empty() {
                        return Err(format!(
                            "`{service}.ports` must be a block list, not `{rest}`"
                        ));
                    }
                    for &(number, _, text) in block(body, at) {
                        let Some(item) = text.strip_prefix("- ") else {
                            return Err(format!(
                                "line {number}: expected `- \"PORT\"` under ports, got `{text}`"
                            ));
                        };
                        if item.contains(':') && !item.starts_with(['"', '\'']) {
                            return Err(format!(
                                "line {number}: quote port mappings with a colon \
                                 (YAML may read them as numbers): `{text}`"
                            ));
                        }
                        if item
                            .trim_start()
                            .starts_with(|c: char| c.is_ascii_lowercase())
                        {
                            return Err(format!(
                                "line {number}: the long port syntax is not understood here: \
                                 `{text}`"
                            ));
                        }
                        parsed.ports.push(yaml_scalar(item));
                    }
                }
                _ => {}
            }
        }
        Ok(parsed)
    }

    /// An `environment:` block: `KEY: value` lines, or `- KEY=value` (and
    /// `- KEY`) lines; anything else is an error.
    fn environment(
        lines: &[(usize, usize, &str)],
    ) -> Result<BTreeMap<String, Option<String>>, String> {
        let indent = lines.first().map_or(0, |line| line.1);
        let mut environment = BTreeMap::new();
        for &(number, i, text) in lines {
            if i != indent {
                return Err(format!(
                    "line {number}: nested value in environment: `{text}`"
                ));
            }
            let (name, value) = if let Some(item) = text.strip_prefix("- ") {
                let item = yaml_scalar(item);
                match item.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                    None => (item, None),
                }
            } else if let Some((name, value)) = text.split_once(':') {
                let value = yaml_scalar(value);
                let value = (!value.is_empty() && value != "null" && value != "~").then_some(value);
                (name.trim().to_owned(), value)
            } else {
                return Err(format!(
                    "line {number}: expected `KEY: value` or `- KEY=value`, got `{text}`"
                ));
            };
            if !is_variable_name(&name) {
                return Err(format!(
                    "line {number}: `{name}` is not an environment variable name"
                ));
            }
            if environment.insert(name.clone(), value).is_some() {
                return Err(format!("line {number}: {name} is set twice"));
            }
        }
        Ok(environment)
    }
}

// ---------------------------------------------------------------------------
// Just enough of a Dockerfile: its final stage.

#[derive(Debug, Default)]
struct Dockerfile {
    env: BTreeMap<String, String>,
    expose: Vec<String>,
    user: Option<String>,
    healthcheck: Option<String>,
}

impl Dockerfile {
    fn parse(text: &str) -> Result<Dockerfile, String> {
        // Instructions, with `\` continuations joined and comments dropped.
        let mut instructions: Vec<(usize, String)> = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            // Docker skips blank and comment lines, inside continuations too.
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (number, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    joined.push_str(head);
                    joined.push(' ');
                    pending = Some((number, joined));
                }
                None => {
                    joined.push_str(trimmed);
                    instructions.push((number, joined));
                }
            }
        }
        if let Some((number, _)) = pending {
            return Err(format!("line {number}: a continuation runs off the end"));
        }

        let mut image = None;
        for (number, instruction) in instructions {
            let (keyword, args) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((instruction.as_str(), ""));
            let args = args.trim();
            match keyword.to_ascii_uppercase().as_str() {
                // A new stage: only the last one is the image that runs.
                "FROM" => image = Some(Dockerfile::default()),
                "ENV" | "EXPOSE" | "USER" | "HEALTHCHECK" => {
                    let Some(image) = image.as_mut() else {
                        return Err(format!("line {number}: {keyword} before FROM"));
                    };
                    match keyword.to_ascii_uppercase().as_str() {
                        "ENV" => {
                            for (name, value) in
                                Self::env_pairs(args).map_err(|e| format!("line {number}: {e}"))?
                            {
                                if !is_variable_name(&name) {
                                    return Err(format!(
                                        "line {number}: `{name}` is not an environment \
                                         variable name"
                                    ));
                                }
                                image.env.insert(name, value);
                            }
                        }
                        "EXPOSE" => image.expose.extend(
                            args.split_whitespace()
                                .map(|port| port.trim_end_matches("/tcp").to_owned()),
                        ),
                        "USER" => image.user = Some(args.to_owned()),
                        _ => image.healthcheck = Some(args.to_owned()),
                    }
                }
                _ => {}
            }
        }
        image.ok_or_else(|| "no FROM".to_owned())
    }

    /// `ENV A=1 B="two"`, or the legacy `ENV A 1`.
    fn env_pairs(args: &str) -> Result<Vec<(String, String)>, String> {
        let words: Vec<&str> = args.split_whitespace().collect();
        match words.first() {
            None => Err("ENV without a variable".to_owned()),
            Some(first) if !first.contains('=') => {
                let value = args[first.len()..].trim();
                Ok(vec![((*first).to_owned(), yaml_scalar(value))])
            }
            Some(_) => words
                .iter()
                .map(|word| {
                    word.split_once('=')
                        .map(|(name, value)| (name.to_owned(), yaml_scalar(value)))
                        .ok_or_else(|| format!("`{word}` is not NAME=value (values with spaces are not understood here)"))
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// The checks catch what they are meant to catch.

const GOOD_DOCKERFILE: &str = "\
FROM rust:1-slim-bookworm AS builder
ENV CARGO_TERM_COLOR=always
RUN cargo build --release
FROM debian:bookworm-slim
ENV APP_ENV=production \\
    BIND_ADDR=0.0.0.0
ENV PORT 3000
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=10s \\
    CMD curl -fsS http://127.0.0.1:3000/health || exit 1
";

const GOOD_COMPOSE_MAP: &str = "\
services:
  api:
    build:
      context: ..
    ports:
      - \"3000\"
    environment:
      APP_ENV: production
      # A comment.
      JWT_SECRET: ${JWT_SECRET:?set it}
      DATABASE_URL: postgres://u:p@postgres:5432/db
      REDIS_URL: \"redis://redis:6379\"  
  postgres:
    environment:
      POSTGRES_PASSWORD: not-checked
";

fn good_image() -> Dockerfile {
    Dockerfile::parse(GOOD_DOCKERFILE).expect("parses")
}

#[test]
fn parser_reads_both_environment_forms() {
    let map = ComposeService::parse(GOOD_COMPOSE_MAP, "api").expect("map form");
    assert_eq!(
        map.environment.keys().collect::<Vec<_>>(),
        ["APP_ENV", "DATABASE_URL", "JWT_SECRET", "REDIS_URL"]
    );
    assert_eq!(
        map.environment["REDIS_URL"].as_deref(),
        Some("redis://redis:6379")
    );
    assert_eq!(map.ports, ["3000"]);
    assert!(compose_problems(GOOD_COMPOSE_MAP, &good_image()).is_empty());

    let list = "\
services:
  api:
    environment:
      - APP_ENV=production
      - LOG_LEVEL
    ports: [\"3000\"]
";
    let err = ComposeService::parse(list, "api").expect_err("flow-style ports");
    assert!(err.contains("ports"), "{err}");
    let list = list.replace("    ports: [\"3000\"]\n", "");
    let api = ComposeService::parse(&list, "api").expect("list form");
    assert_eq!(api.environment["APP_ENV"].as_deref(), Some("production"));
    assert_eq!(api.environment["LOG_LEVEL"], None);
}

#[test]
fn a_misspelt_variable_fails_in_either_form() {
    let typo = GOOD_COMPOSE_MAP.replace("DATABASE_URL:", "DATABSE_URL:");
    let problems = compose_problems(&typo, &good_image());
    assert!(
        problems.iter().any(|p| p.contains("sets DATABSE_URL")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("does not set DATABASE_URL")),
        "{problems:?}"
    );

    let list = "\
services:
  api:
    ports:
      - \"3000\"
    environment:
      - APP_ENV=production
      - JWT_SECRET=${JWT_SECRET:?set it}
      - DATABASE_URL=postgres://postgres/db
      - REDIS_URL=redis://redis
      - LOG_LEVLE=debug
";
    let problems = compose_problems(list, &good_image());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("sets LOG_LEVLE"), "{problems:?}");

    let typo = GOOD_DOCKERFILE.replace("BIND_ADDR", "BIND_ADRESS");
    let problems = dockerfile_problems(&typo);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("sets BIND_ADRESS"), "{problems:?}");
}

#[test]
fn compose_checks_catch_what_breaks_production_or_scaling() {
    let image = good_image();
    let cases = [
        (
            "    environment:\n",
            "    container_name: taskflow\n    environment:\n",
            "container_name",
        ),
        ("- \"3000\"", "- \"3000:3000\"", "fixed host port 3000"),
        ("- \"3000\"", "- \"8080\"", "container port 8080"),
        (
            "APP_ENV: production",
            "APP_ENV: development",
            "not production",
        ),
        (
            "JWT_SECRET: ${JWT_SECRET:?set it}",
            "JWT_SECRET: hard-coded",
            "JWT_SECRET",
        ),
        (
            "      REDIS_URL: \"redis://redis:6379\"  \n",
            "",
            "does not set REDIS_URL",
        ),
        (
            "    build:\n",
            "    env_file: .env\n    build:\n",
            "env_file",
        ),
        (
            "    environment:\n",
            "    environment: {}\n    x:\n",
            "block",
        ),
    ];
    for (from, to, expected) in cases {
        let compose = GOOD_COMPOSE_MAP.replace(from, to);
        assert_ne!(compose, GOOD_COMPOSE_MAP, "{from:?} is in the snippet");
        let problems = compose_problems(&compose, &image);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{to:?}: expected a problem mentioning {expected:?}, got {problems:?}"
        );
    }
    // Listening on loopback inside a container is unreachable.
    let loopback = GOOD_DOCKERFILE.replace("BIND_ADDR=0.0.0.0", "BIND_ADDR=127.0.0.1");
    let problems = compose_problems(
        GOOD_COMPOSE_MAP,
        &Dockerfile::parse(&loopback).expect("parses"),
    );
    assert!(
        problems.iter().any(|p| p.contains("all interfaces")),
        "{problems:?}"
    );
}

#[test]
fn dockerfile_checks_catch_root_unhealthchecked_and_unexposed_images() {
    assert!(dockerfile_problems(GOOD_DOCKERFILE).is_empty());
    let cases = [
        ("USER 10001:10001\n", "", "no USER"),
        ("USER 10001:10001", "USER root", "runs as root"),
        ("USER 10001:10001", "USER 0:0", "runs as root"),
        ("EXPOSE 3000", "EXPOSE 8080", "EXPOSEs"),
        ("/health", "/ready", "/health"),
        (":3000/health", ":8080/health", "PORT"),
        (
            "HEALTHCHECK --interval=10s \\\n    CMD curl -fsS http://127.0.0.1:3000/health || exit 1\n",
            "",
            "no HEALTHCHECK",
        ),
    ];
    for (from, to, expected) in cases {
        let dockerfile = GOOD_DOCKERFILE.replace(from, to);
        assert_ne!(dockerfile, GOOD_DOCKERFILE, "{from:?} is in the snippet");
        let problems = dockerfile_problems(&dockerfile);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{to:?}: expected a problem mentioning {expected:?}, got {problems:?}"
        );
    }
    // Only the final stage counts: the builder's ENV is not the server's.
    assert!(!good_image().env.contains_key("CARGO_TERM_COLOR"));
}
