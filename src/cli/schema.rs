//! `tickbridge schema check [DIR]` and `tickbridge schema q [DIR]`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::schema::{Catalog, CatalogError};

#[derive(clap::Subcommand, Debug)]
pub enum SchemaCommand {
    /// Validate every schema file in DIR; lists every problem, exits 1 if any.
    Check {
        #[arg(default_value = "schemas")]
        dir: PathBuf,
    },
    /// Print the q schema file for tick.q (one empty table per line).
    Q {
        #[arg(default_value = "schemas")]
        dir: PathBuf,
    },
}

pub fn run(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        SchemaCommand::Check { dir } => match Catalog::load(&dir) {
            Ok(c) => {
                for t in c.tables() {
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
                writeln!(
                    out,
                    "{}: {} tables, no problems",
                    dir.display(),
                    c.tables().len()
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                report(&mut out, &e)?;
                writeln!(out, "{}: {} problem(s)", dir.display(), e.issues.len())?;
                Ok(ExitCode::FAILURE)
            }
        },
        SchemaCommand::Q { dir } => match Catalog::load(&dir) {
            Ok(c) => {
                out.write_all(c.q_script().as_bytes())?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let mut err = std::io::stderr().lock();
                report(&mut err, &e)?;
                writeln!(
                    err,
                    "{}: fix these with `tickbridge schema check`",
                    dir.display()
                )?;
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

fn report(out: &mut impl Write, e: &CatalogError) -> std::io::Result<()> {
    for i in &e.issues {
        writeln!(out, "error: {i}")?;
    }
    Ok(())
}
