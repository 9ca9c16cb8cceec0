//! `loadgen`: the client side of `cargo xtask bench`. xtask builds and
//! starts the servers; this drives them and measures.
//!
//! ```text
//! loadgen realtime --instance http://127.0.0.1:PORT[@PID]... --write-to I
//!     --subscribe-to I[,I...] --subscribers N --rate R --duration S
//!     [--ramp N] [--drain S] [--client-threads N] [--tasks N] [--label L]
//!     [--target-p99-ms X] [--target-kib-per-connection X] --out FILE.json
//! loadgen report --out FILE.json RUN.json...
//! ```

mod api;
mod histogram;
mod procfs;
mod realtime;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: loadgen realtime --instance URL[@PID]... --write-to I --subscribe-to I[,I...]
           --subscribers N --rate R --duration SECONDS [--ramp N] [--drain SECONDS]
           [--client-threads N] [--tasks N] [--label NAME] [--target-p99-ms X]
           [--target-kib-per-connection X] --out FILE.json
       loadgen report --out FILE.json RUN.json...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("realtime") => realtime_options(&args[1..]).and_then(|options| {
            let result = realtime::run(&options)?;
            eprintln!(
                "loadgen: {}: fan-out p50 {} ms, p99 {} ms, max {} ms; {} errors; saved {}",
                result.label,
                result.fanout_ms.p50,
                result.fanout_ms.p99,
                result.fanout_ms.max,
                result.errors.total(),
                options.out.display()
            );
            Ok(())
        }),
        Some("report") => report_args(&args[1..]).and_then(|(out, inputs)| {
            let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
            report::report(&inputs, &out)
        }),
        _ => Err(USAGE.to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid value\n{USAGE}"))
}

fn realtime_options(args: &[String]) -> Result<realtime::Options, String> {
    let mut options = realtime::Options {
        label: "realtime".to_owned(),
        instances: Vec::new(),
        write_to: 0,
        subscribe_to: vec![0],
        subscribers: 1000,
        rate: 50.0,
        duration: Duration::from_secs(30),
        ramp: 500,
        drain: Duration::from_secs(10),
        client_threads: 1,
        tasks: 16,
        target_p99_ms: None,
        target_kib_per_connection: None,
        out: PathBuf::from("realtime-run.json"),
    };
    let mut pairs = args.iter();
    while let Some(flag) = pairs.next() {
        let value = pairs
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--instance" => {
                let (url, pid) = match value.rsplit_once('@') {
                    Some((url, pid)) => (url.to_owned(), Some(parse(flag, pid)?)),
                    None => (value.clone(), None),
                };
                options
                    .instances
                    .push((url.trim_end_matches('/').to_owned(), pid));
            }
            "--write-to" => options.write_to = parse(flag, value)?,
            "--subscribe-to" => {
                options.subscribe_to = value
                    .split(',')
                    .map(|i| parse(flag, i))
                    .collect::<Result<_, _>>()?;
            }
            "--subscribers" => options.subscribers = parse(flag, value)?,
            "--rate" => options.rate = parse(flag, value)?,
            "--duration" => options.duration = Duration::from_secs_f64(parse(flag, value)?),
            "--ramp" => options.ramp = parse(flag, value)?,
            "--drain" => options.drain = Duration::from_secs_f64(parse(flag, value)?),
            "--client-threads" => options.client_threads = parse(flag, value)?,
            "--tasks" => options.tasks = parse(flag, value)?,
            "--label" => options.label = value.clone(),
            "--target-p99-ms" => options.target_p99_ms = Some(parse(flag, value)?),
            "--target-kib-per-connection" => {
                options.target_kib_per_connection = Some(parse(flag, value)?);
            }
            "--out" => options.out = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if options.instances.is_empty() {
        return Err(format!("at least one --instance is needed\n{USAGE}"));
    }
    if options.rate.is_nan() || options.rate <= 0.0 || options.subscribe_to.is_empty() {
        return Err(format!(
            "--rate must be above 0 and --subscribe-to name an instance\n{USAGE}"
        ));
    }
    Ok(options)
}

fn report_args(args: &[String]) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let mut out = None;
    let mut inputs = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--out" {
            out = args.next().map(PathBuf::from);
        } else {
            inputs.push(PathBuf::from(arg));
        }
    }
    match out {
        Some(out) if !inputs.is_empty() => Ok((out, inputs)),
        _ => Err(USAGE.to_owned()),
    }
}
