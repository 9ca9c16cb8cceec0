//! `cargo xtask bench realtime`: WebSocket fan-out on one instance and
//! across two (see the help in `bench/mod.rs`). Each run gets fresh
//! instances, so that memory is measured from a clean start.

use super::{Bench, Instance};

/// One run of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    label: &'static str,
    instances: usize,
    subscribers: usize,
    rate: f64,
    duration_s: u64,
    ramp: usize,
    client_threads: usize,
    /// The issue's targets for this run.
    target_p99_ms: f64,
    target_kib_per_connection: f64,
}

/// The runs without flags: the issue's two targets.
fn defaults() -> Vec<Run> {
    let single = Run {
        label: "single",
        instances: 1,
        subscribers: 10_000,
        rate: 50.0,
        duration_s: 30,
        ramp: 500,
        client_threads: 1,
        target_p99_ms: 100.0,
        target_kib_per_connection: 20.0,
    };
    let cross = Run {
        label: "cross",
        instances: 2,
        subscribers: 1_000,
        target_p99_ms: 20.0,
        ..single.clone()
    };
    vec![single, cross]
}

/// The runs `flags` ask for.
pub fn runs(flags: &[&str]) -> Result<Vec<Run>, String> {
    let mut runs = defaults();
    let mut pairs = flags.iter();
    while let Some(&flag) = pairs.next() {
        let value = *pairs
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |min: f64| -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= min)
                .ok_or_else(|| format!("{flag}: {value:?} is not a number from {min}"))
        };
        match flag {
            "--instances" => {
                let instances = match value {
                    "1" => 1,
                    "2" => 2,
                    _ => return Err(format!("--instances: {value:?} is not 1 or 2")),
                };
                runs.retain(|run| run.instances == instances);
            }
            "--subscribers" => {
                let n = number(1.0)? as usize;
                runs.iter_mut().for_each(|run| run.subscribers = n);
            }
            "--rate" => {
                let rate = number(0.1)?;
                runs.iter_mut().for_each(|run| run.rate = rate);
            }
            "--duration" => {
                let seconds = number(1.0)? as u64;
                runs.iter_mut().for_each(|run| run.duration_s = seconds);
            }
            "--ramp" => {
                let ramp = number(1.0)? as usize;
                runs.iter_mut().for_each(|run| run.ramp = ramp);
            }
            "--client-threads" => {
                let threads = number(1.0)? as usize;
                runs.iter_mut().for_each(|run| run.client_threads = threads);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(runs)
}

/// Runs each in turn (all, even after one fails), then the report.
pub fn run(bench: &Bench, runs: &[Run]) -> Result<(), String> {
    let dir = bench.out_dir()?;
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for run in runs {
        eprintln!(
            "\n==> realtime {}: {} subscribers, {} instance(s), {} changes/s for {} s",
            run.label, run.subscribers, run.instances, run.rate, run.duration_s
        );
        let out = dir.join(format!("realtime-{}.json", run.label));
        // A result of an earlier invocation must not pass for this one's.
        let _ = std::fs::remove_file(&out);
        match one(bench, run, &out) {
            Ok(()) => results.push(out.display().to_string()),
            Err(e) => {
                eprintln!("xtask: realtime {}: {e}", run.label);
                failed.push(run.label);
            }
        }
    }
    if !results.is_empty() {
        let mut args = vec![
            "report".to_owned(),
            "--out".to_owned(),
            dir.join("realtime.json").display().to_string(),
        ];
        args.extend(results);
        println!();
        bench.loadgen(&args, 1024)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("runs failed: {}", failed.join(", ")))
    }
}

fn one(bench: &Bench, run: &Run, out: &std::path::Path) -> Result<(), String> {
    let dir = bench.out_dir()?;
    let database = bench.database()?;
    let prefix = format!("{}:", database.name.replace('_', "-"));
    let open_files = run.subscribers + 4096;
    let env = [
        (
            "LIVE_MAX_CONNECTIONS_PER_USER".to_owned(),
            (run.subscribers + 100).min(100_000).to_string(),
        ),
        // Logins and registrations: a handful per run.
        ("PASSWORD_HASH_CONCURRENCY".to_owned(), "2".to_owned()),
    ];
    let mut instances: Vec<Instance> = Vec::new();
    for (index, name) in ["a", "b"].iter().enumerate().take(run.instances) {
        let log = dir.join(format!("{}-{name}.log", run.label));
        instances.push(bench.start_instance(&database, &prefix, &env, &log, open_files)?);
        if index == 0 {
            // The first applies the migrations; the second starts on them.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    let mut args = vec!["realtime".to_owned()];
    for instance in &instances {
        args.extend(["--instance".to_owned(), instance.address()]);
    }
    let subscribe_to = if run.instances > 1 { "1" } else { "0" };
    args.extend(
        [
            ("--label", run.label.to_owned()),
            ("--write-to", "0".to_owned()),
            ("--subscribe-to", subscribe_to.to_owned()),
            ("--subscribers", run.subscribers.to_string()),
            ("--rate", run.rate.to_string()),
            ("--duration", run.duration_s.to_string()),
            ("--ramp", run.ramp.to_string()),
            ("--client-threads", run.client_threads.to_string()),
            ("--target-p99-ms", run.target_p99_ms.to_string()),
            (
                "--target-kib-per-connection",
                run.target_kib_per_connection.to_string(),
            ),
            ("--out", out.display().to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value]),
    );
    let outcome = bench.loadgen(&args, open_files);
    // A server that died explains a failure better than the client does.
    for instance in &mut instances {
        instance.check()?;
    }
    outcome
    // The instances stop here, then the database is dropped.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_flags_the_issues_two_runs() {
        let runs = runs(&[]).expect("defaults");
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].subscribers, runs[0].instances), (10_000, 1));
        assert_eq!((runs[1].subscribers, runs[1].instances), (1_000, 2));
        assert!(
            runs.iter()
                .all(|run| run.rate == 50.0 && run.duration_s == 30)
        );
    }

    #[test]
    fn flags_pick_and_override() {
        let runs = runs(&["--instances", "2", "--subscribers", "300", "--rate", "10"])
            .expect("valid flags");
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].instances, runs[0].subscribers, runs[0].rate),
            (2, 300, 10.0)
        );
        assert!(super::runs(&["--instances", "3"]).is_err());
        assert!(super::runs(&["--rate"]).is_err());
        assert!(super::runs(&["--bogus", "1"]).is_err());
    }
}
