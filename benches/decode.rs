//! `cargo bench --bench decode`: JSON trade records → `.u.upd` bytes.

fn main() -> anyhow::Result<()> {
    let f = tickbridge::bench::decode::measure(&tickbridge::bench::decode::Args::default())?;
    print!("{}", tickbridge::bench::decode::report(&f));
    Ok(())
}
