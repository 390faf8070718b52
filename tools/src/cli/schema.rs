//! `tickbridge schema check [DIR]`, `tickbridge schema q [DIR]` and
//! `tickbridge schema diff HOST:PORT`. Without DIR they read the embedded
//! schemas, as every other command does, so they work from any directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use tickbridge::kdb::client::Connection;
use tickbridge::preflight;
use tickbridge::schema::{model, tick_q_issues, Catalog, CatalogError, Issue, Schema, Target};

#[derive(clap::Subcommand, Debug)]
pub enum SchemaCommand {
    /// Validate every schema file in DIR; lists every problem, exits 1 if any.
    /// tick.q's own rules (time and sym first, time a timespan, sym a
    /// symbol, no keyed tables) are errors with --target tick (the default)
    /// and warnings with --target other.
    Check {
        /// Schema directory (default: the embedded examples, as the bridge).
        dir: Option<PathBuf>,
        /// What will load these tables: tick (kdb+tick's tick.q) or other.
        #[arg(long, value_enum, default_value_t = TargetArg::Tick)]
        target: TargetArg,
    },
    /// Print the q schema file for tick.q (one empty table per line).
    Q {
        /// Schema directory (default: the embedded examples, as the bridge).
        dir: Option<PathBuf>,
    },
    /// Compare the schemas with a running tickerplant (tables[], meta, the
    /// update function): one line per difference, or "matches: N tables".
    /// Exits 0 when they match, 1 on a difference, 2 when it cannot tell.
    Diff(DiffArgs),
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// host:port, tcp://host:port, tls://host:port or unix:///path.
    pub tp: String,
    /// Schema directory (default: the embedded examples, as the bridge).
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// The update function the bridge calls.
    #[arg(long, default_value = ".u.upd")]
    pub upd_func: String,
    #[command(flatten)]
    pub conn: super::ConnArgs,
}

/// Exit status of `schema diff` when it could not compare.
const CANNOT_TELL: u8 = 2;

pub fn run(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SchemaCommand::Check { dir, target } => check(dir.as_deref(), target.into()),
        SchemaCommand::Q { dir } => q(dir.as_deref()),
        SchemaCommand::Diff(args) => match diff(&args) {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("schema diff: {e:#}");
                Ok(ExitCode::from(CANNOT_TELL))
            }
        },
    }
}

/// tick.q's rules for every schema file that parses, with its path.
fn tick_issues(dir: &Path) -> Vec<Issue> {
    let Ok(files) = model::schema_files(dir) else {
        return Vec::new();
    };
    files
        .iter()
        .filter_map(|p| model::load_file(p).ok().map(|s| (p, s)))
        .flat_map(|(p, s)| tick_q_issues(&s, Some(p.display().to_string())))
        .collect()
}

/// The schemas a command reads: its name for messages, tick.q's issues
/// with them, and the catalog (or why it does not load).
struct Loaded {
    name: String,
    tick: Vec<Issue>,
    catalog: Result<Catalog, CatalogError>,
}

fn load(dir: Option<&Path>) -> anyhow::Result<Loaded> {
    Ok(match dir {
        Some(dir) => Loaded {
            name: dir.display().to_string(),
            tick: tick_issues(dir),
            catalog: Catalog::load(dir),
        },
        None => {
            let schemas = tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?;
            Loaded {
                name: "embedded schemas".to_string(),
                tick: schemas
                    .iter()
                    .flat_map(|s| tick_q_issues(s, None))
                    .collect(),
                catalog: Catalog::from_schemas(schemas),
            }
        }
    })
}

fn check(dir: Option<&Path>, target: Target) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let Loaded {
        name,
        tick,
        catalog,
    } = load(dir)?;
    let (label, tick_errors) = match target {
        Target::Tick => ("error", tick.len()),
        Target::Other => ("warning", 0),
    };
    match catalog {
        Ok(c) => {
            for t in c.tables() {
                if tick_errors > 0 && tick.iter().any(|i| i.table.as_deref() == Some(t.name())) {
                    continue;
                }
                writeln!(
                    out,
                    "ok: table {} ({} columns{})",
                    t.name(),
                    t.schema().columns.len(),
                    if t.tickerplant_stamps_time() {
                        ", time stamped by the tickerplant"
                    } else {
                        ""
                    }
                )?;
            }
            for i in &tick {
                writeln!(out, "{label}: {i}")?;
            }
            if tick_errors > 0 {
                writeln!(
                    out,
                    "{name}: {tick_errors} problem(s) (target tick: tick.q would refuse these; --target other makes them warnings)"
                )?;
                return Ok(ExitCode::FAILURE);
            }
            let warned = if tick.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} warning(s) (tick.q would refuse these; fine for target other)",
                    tick.len()
                )
            };
            writeln!(
                out,
                "{name}: {} tables, no problems{warned}",
                c.tables().len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report(&mut out, &e)?;
            for i in &tick {
                writeln!(out, "{label}: {i}")?;
            }
            writeln!(out, "{name}: {} problem(s)", e.issues.len() + tick_errors)?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn q(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let Loaded { name, catalog, .. } = load(dir)?;
    match catalog {
        Ok(c) => {
            out.write_all(c.q_script().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let mut err = std::io::stderr().lock();
            report(&mut err, &e)?;
            writeln!(
                err,
                "{name}: fix these (`tickbridge schema check {name}` lists them with tick.q's rules)"
            )?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn report(out: &mut impl Write, e: &CatalogError) -> std::io::Result<()> {
    for i in &e.issues {
        writeln!(out, "error: {i}")?;
    }
    Ok(())
}

fn diff(a: &DiffArgs) -> anyhow::Result<ExitCode> {
    let schemas: Vec<Schema> = match &a.schemas {
        Some(dir) => {
            let c = Catalog::load(dir)
                .map_err(|e| anyhow::anyhow!("{}: schemas do not load:\n{e}", dir.display()))?;
            c.tables().iter().map(|t| t.schema().clone()).collect()
        }
        None => tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?,
    };
    let config = a.conn.client_config(&a.tp)?;
    let names: Vec<&str> = schemas.iter().map(|s| s.table.as_str()).collect();
    let shape = super::runtime()?.block_on(async {
        let mut conn = Connection::connect(&config)
            .await
            .with_context(|| format!("cannot reach {}", config.target))?;
        let shape = preflight::fetch(&mut conn, &names, &a.upd_func).await;
        conn.close().await;
        anyhow::Ok(shape?)
    })?;
    let findings = preflight::compare(&schemas, &shape, &a.upd_func);
    let mut out = std::io::stdout().lock();
    if findings.is_empty() {
        writeln!(out, "matches: {} tables", schemas.len())?;
        return Ok(ExitCode::SUCCESS);
    }
    for f in &findings {
        writeln!(out, "{f}")?;
    }
    Ok(ExitCode::FAILURE)
}

/// `--target` as clap spells it; the library's `Target` knows no CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    /// kdb+tick's tick.q: its rules are errors.
    Tick,
    /// Another q process: tick.q's rules are only warnings.
    Other,
}

impl From<TargetArg> for Target {
    fn from(t: TargetArg) -> Target {
        match t {
            TargetArg::Tick => Target::Tick,
            TargetArg::Other => Target::Other,
        }
    }
}
