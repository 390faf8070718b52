//! `cargo bench --bench decode`: JSON trade records → `.u.upd` bytes.

fn main() -> anyhow::Result<()> {
    let f = tickbridge_tools::bench::decode::measure(
        &tickbridge_tools::bench::decode::Args::default(),
    )?;
    print!("{}", tickbridge_tools::bench::decode::report(&f));
    Ok(())
}
