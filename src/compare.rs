//! `conclave compare`: each scenario's algorithm on clusters of N nodes under five fault
//! cases, over several seeds: election messages per election and time to a stable leader,
//! as a table, one JSON object, or a report (Markdown and SVG plots). The runs are
//! `conclave_sim::compare`'s, the rendering `conclave_reports::compare`'s.

use crate::{print_scenario_error, BAD_INPUT, HELD};
use conclave_reports::compare::{markdown, plot_files, svg, text, Report};
use conclave_sim::compare::{compare, scale, Case};
use conclave_sim::scenario::{Scenario, MAX_NODES};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The Markdown file a report writes, and the folder beside it that holds its plots.
const REPORT_FILE: &str = "message_counts.md";
const PLOTS_DIR: &str = "message_counts";

#[derive(clap::Args)]
pub struct Args {
    /// Scenario files: each one's algorithm and parameters, network and services are
    /// compared (its nodes, faults and expectations are not used).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Cluster sizes, comma-separated.
    #[arg(long, value_name = "N,...", default_value = "4,8,16,32,64", value_parser = parse_sizes)]
    nodes: Sizes,
    /// Seeds per case and size (seeds 0 to K-1).
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Also write DIR/message_counts.md (the tables) and DIR/message_counts/*.svg (plots).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// The cluster sizes of `--nodes`.
#[derive(Clone, Debug)]
pub struct Sizes(Vec<usize>);

/// `4,8,16`: sizes of at least one node, each once, in increasing order.
fn parse_sizes(s: &str) -> Result<Sizes, String> {
    if s.trim().is_empty() {
        return Err("give at least one cluster size, e.g. 4,8,16".into());
    }
    let mut out: Vec<usize> = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let n: usize = part.parse().map_err(|_| {
            format!("{part:?} is not a number of nodes (give sizes such as 4,8,16)")
        })?;
        if n == 0 {
            return Err("0 nodes: a cluster needs at least one node".into());
        }
        if n > MAX_NODES {
            return Err(format!("{n} nodes: at most {MAX_NODES} are supported"));
        }
        if out.contains(&n) {
            return Err(format!("{n} is given twice"));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(Sizes(out))
}

pub fn cmd_compare(args: &Args) -> u8 {
    let sizes = &args.nodes.0;
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let mut scenarios = Vec::new();
    for file in &args.files {
        match Scenario::load(file) {
            Ok(s) => scenarios.push((file.to_string_lossy().into_owned(), s)),
            Err(e) => {
                print_scenario_error(&e);
                return BAD_INPUT;
            }
        }
    }
    // Every scenario at every size before anything runs: a refusal comes at once.
    for (file, s) in &scenarios {
        for &n in sizes {
            if let Err(why) = scale(s, n) {
                let e = conclave_sim::compare::CannotScale {
                    file: file.clone(),
                    nodes: n,
                    why,
                };
                eprintln!("error: {e}");
                return BAD_INPUT;
            }
        }
    }
    let progress = std::io::stderr().is_terminal();
    let mut comparisons = Vec::new();
    for (file, s) in &scenarios {
        let started = Instant::now();
        match compare(s, file, sizes, &seeds, &Case::ALL) {
            Ok(c) => comparisons.push(c),
            Err(e) => {
                eprintln!("error: {e}");
                return BAD_INPUT;
            }
        }
        if progress {
            eprintln!(
                "compare: {file} ({}) done in {:.1}s",
                s.algorithm.name(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let files: Vec<&str> = scenarios.iter().map(|(f, _)| f.as_str()).collect();
    let report = Report {
        comparisons: &comparisons,
        sizes,
        seeds: &seeds,
        cases: &Case::ALL,
        command: format!(
            "conclave compare {} --nodes {} --seeds {}",
            files.join(" "),
            sizes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(","),
            args.seeds
        ),
    };
    if args.json {
        println!("{}", conclave_reports::compare::json(&report));
    } else {
        print!("{}", text(&report));
    }
    if let Some(dir) = &args.report {
        if let Err(e) = write_report(dir, &report) {
            eprintln!("error: --report {}: {e}", dir.display());
            return BAD_INPUT;
        }
        if !args.json {
            println!();
            println!(
                "report: {} and {} plots in {}",
                dir.join(REPORT_FILE).display(),
                plot_files(&report).len(),
                dir.join(PLOTS_DIR).display()
            );
        }
    }
    HELD
}

fn write_report(dir: &Path, report: &Report) -> std::io::Result<()> {
    let plots = dir.join(PLOTS_DIR);
    std::fs::create_dir_all(&plots)?;
    std::fs::write(dir.join(REPORT_FILE), markdown(report, PLOTS_DIR))?;
    for (file, metric, case) in plot_files(report) {
        std::fs::write(plots.join(file), svg(report, metric, case))?;
    }
    Ok(())
}
