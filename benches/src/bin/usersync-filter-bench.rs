//! usersync's side of the filter peer comparison (`benches/filter_peers.py`), measured the
//! way the peer scripts in `benches/peers/` measure: warm up, then three rounds of at least a
//! second each, best round reported, one JSON object per line.
//!
//! Usage: `usersync-filter-bench <workload|accept|parse|eval> <dir>`, or
//! `usersync-filter-bench latency <file>`: the native side of the browser benchmark
//! (`wasm/bench/run.mjs`), nanoseconds per `Filter::parse` of each filter in `file`.

use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use usersync_benches::{EVAL_FILTERS, filter_corpus, typical_filters, users};
use usersync_core::scim::filter::Filter;
use usersync_core::scim::schema::SchemaRegistry;

const PEER: &str = "usersync";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!(
            "usage: usersync-filter-bench <workload|accept|parse|eval> <dir> | latency <file>"
        );
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let result = match mode.as_str() {
        "workload" => write_workload(dir),
        "accept" => accept(dir),
        "parse" => parse(dir),
        "eval" => eval(dir),
        "latency" => latency(dir),
        other => Err(format!("unknown mode `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, value: &Value) -> Result<(), String> {
    std::fs::write(path, value.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Writes `parse.json`, `corpus.json` and `eval.json` for every participant.
fn write_workload(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    write(&dir.join("parse.json"), &json!(typical_filters()))?;
    write(&dir.join("corpus.json"), &filter_corpus())?;
    write(
        &dir.join("eval.json"),
        &json!({"filters": EVAL_FILTERS, "users": users(1000)}),
    )
}

fn accept(dir: &Path) -> Result<(), String> {
    let filters = strings(&read(&dir.join("parse.json"))?);
    let accepted: Vec<usize> = (0..filters.len())
        .filter(|&i| Filter::parse(&filters[i]).is_ok())
        .collect();
    let corpus = read(&dir.join("corpus.json"))?;
    let cases = |key: &str| -> Vec<String> {
        corpus[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["strict"] != true)
            .filter_map(|c| c["filter"].as_str().map(str::to_owned))
            .collect()
    };
    let (valid, invalid) = (cases("valid"), cases("invalid"));
    println!(
        "{}",
        json!({
            "peer": PEER,
            "accepted": accepted,
            "valid_accepted": valid.iter().filter(|f| Filter::parse(f).is_ok()).count(),
            "valid_total": valid.len(),
            "invalid_rejected": invalid.iter().filter(|f| Filter::parse(f).is_err()).count(),
            "invalid_total": invalid.len(),
        })
    );
    Ok(())
}

/// Runs `round` (which does `work` units) in rounds of at least a second and returns the
/// best rate in units per second.
fn best_rate(work: usize, mut round: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        round();
    }
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut reps = 0usize;
            while start.elapsed() < Duration::from_secs(1) {
                round();
                reps += 1;
            }
            (reps * work) as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn parse(dir: &Path) -> Result<(), String> {
    let filters = strings(&read(&dir.join("common.json"))?);
    let bytes: usize = filters.iter().map(String::len).sum();
    let rate = best_rate(filters.len(), || {
        for f in &filters {
            black_box(Filter::parse(black_box(f)).ok());
        }
    });
    println!(
        "{}",
        json!({
            "peer": PEER, "task": "parse", "filters": filters.len(), "bytes": bytes,
            "filters_per_s": rate, "mb_per_s": rate * bytes as f64 / filters.len() as f64 / 1e6,
        })
    );
    Ok(())
}

/// Per filter of the JSON array in `file`: the best of three rounds of about 2 ms each, in
/// nanoseconds per parse (valid or not: the browser validates both kinds as people type).
fn latency(file: &Path) -> Result<(), String> {
    let filters = strings(&read(file)?);
    let per_filter: Vec<f64> = filters
        .iter()
        .map(|f| {
            let round = || {
                let start = Instant::now();
                let mut n = 0u32;
                while start.elapsed() < Duration::from_millis(2) {
                    black_box(Filter::parse(black_box(f)).is_ok());
                    n += 1;
                }
                start.elapsed().as_nanos() as f64 / f64::from(n)
            };
            round();
            (0..3).map(|_| round()).fold(f64::INFINITY, f64::min)
        })
        .collect();
    println!(
        "{}",
        json!({"peer": PEER, "task": "latency", "ns": per_filter})
    );
    Ok(())
}

fn eval(dir: &Path) -> Result<(), String> {
    let workload = read(&dir.join("eval.json"))?;
    let users = workload["users"].as_array().cloned().unwrap_or_default();
    let registry = SchemaRegistry::core();
    let user_type = registry
        .resource_type("User")
        .ok_or("no User resource type")?;
    for text in strings(&workload["filters"]) {
        let compiled = match Filter::parse(&text).and_then(|f| f.compile(user_type)) {
            Ok(c) => c,
            Err(e) => {
                println!(
                    "{}",
                    json!({"peer": PEER, "task": "eval", "filter": text, "error": e.to_string()})
                );
                continue;
            }
        };
        let matches = users.iter().filter(|u| compiled.matches(u)).count();
        let rate = best_rate(users.len(), || {
            for u in &users {
                black_box(compiled.matches(black_box(u)));
            }
        });
        println!(
            "{}",
            json!({
                "peer": PEER, "task": "eval", "filter": text, "users": users.len(),
                "evaluations_per_s": rate, "matches": matches,
            })
        );
    }
    Ok(())
}
