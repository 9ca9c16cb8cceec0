//! Runs' results as a table on the terminal and one JSON document.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::procfs;
use crate::realtime::RunResult;

/// The JSON document of a benchmark: where and when it ran, and each run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    scenario: &'a str,
    generated_at: String,
    machine: Machine,
    note: &'a str,
    runs: &'a [RunResult],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Machine {
    cpus: usize,
    kernel: String,
}

const NOTE: &str = "Everything co-located: the instances, PostgreSQL, Redis and the load \
generator share the machine's cores. Latency is receipt time minus the event's `at` (taken \
in the change's transaction, before its commit): an upper bound of commit-to-receipt.";

/// Reads the runs' result files, prints the table, writes the report.
pub fn report(inputs: &[&Path], out: &Path) -> Result<(), String> {
    let mut runs = Vec::new();
    for input in inputs {
        let text =
            std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
        let run: RunResult =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", input.display()))?;
        runs.push(run);
    }
    print!("{}", table(&runs));
    let report = Report {
        scenario: "realtime",
        generated_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        machine: Machine {
            cpus: procfs::cpus(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        },
        note: NOTE,
        runs: &runs,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, json + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
    println!("\nsaved: {}", out.display());
    Ok(())
}

/// The runs as a text table, then each target met or missed.
pub fn table(runs: &[RunResult]) -> String {
    let header = [
        "run",
        "inst",
        "subs",
        "rate/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "last p99",
        "changes/s",
        "deliv/s",
        "KiB/conn",
        "peak RSS",
        "CPU srv/gen/db/other",
        "errors",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                run.label.clone(),
                if run.cross_instance {
                    format!("{} (x)", run.instances)
                } else {
                    run.instances.to_string()
                },
                run.connected.to_string(),
                format!("{}", run.rate),
                format!("{:.1}", run.fanout_ms.p50),
                format!("{:.1}", run.fanout_ms.p99),
                format!("{:.1}", run.fanout_ms.max),
                format!("{:.1}", run.last_subscriber_ms.p99),
                format!("{:.1}", run.changes.per_second),
                format!("{:.0}", run.deliveries.per_second),
                format!("{:.1}", run.memory.kib_per_idle_connection),
                format!("{} MiB", run.memory.peak_rss_kib / 1024),
                format!(
                    "{:.0}/{:.0}/{:.0}/{:.0}%",
                    run.cpu.server_pct,
                    run.cpu.loadgen_pct,
                    run.cpu.services_pct,
                    run.cpu.other_pct
                ),
                run.errors.total().to_string(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let line = |text: &mut String, cells: &[&str]| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        let _ = writeln!(text, "{}", cells.join("  ").trim_end());
    };
    line(&mut text, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut text, &cells);
    }
    let _ = writeln!(
        text,
        "\nfan-out: commit to receipt per delivery; last p99: per event, commit to the last \
         subscriber having it; (x): subscribers on another instance than the writes; \
         CPU while writing, 100% = one core of {}: the instances, the load generator, \
         PostgreSQL + Redis, the rest (kernel network work, other processes)",
        runs.first().map_or(0, |run| run.cpu.cpus)
    );
    for run in runs {
        for target in &run.targets {
            let _ = writeln!(
                text,
                "{}: {} < {}: {} ({})",
                run.label,
                target.what,
                target.limit,
                if target.met { "met" } else { "MISSED" },
                target.value
            );
        }
        let asked = run.rate * run.duration_s;
        if run.changes.failed > 0 || run.changes.skipped > 0 {
            let _ = writeln!(
                text,
                "{}: the writer fell short: {} of {asked} changes made ({} failed, {} skipped \
                 with 64 in flight), write p99 {} ms",
                run.label,
                run.changes.ok,
                run.changes.failed,
                run.changes.skipped,
                run.write_ms.p99
            );
        }
        if run.errors.total() > 0 || !run.deliveries.complete {
            let _ = writeln!(
                text,
                "{}: errors: {} connects failed, {} missing, {} duplicates, {} out of order, \
                 {} closed (codes {:?}); every event to everyone: {}",
                run.label,
                run.errors.connect_failed,
                run.errors.missing,
                run.errors.duplicates,
                run.errors.out_of_order,
                run.errors.closed,
                run.errors.close_codes,
                run.deliveries.complete
            );
        }
    }
    text
}
