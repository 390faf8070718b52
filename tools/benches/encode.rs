//! `cargo bench --bench encode`: the `.u.upd` of a 10,000-row trade table
//! by our fast path, our general encoder, and the `kdbplus` crate (0.3.9,
//! its IPC serializer from its own K tree), side by side. All three must
//! write the same bytes before anything is timed.

use std::hint::black_box;
use std::process::ExitCode;

use futures_util::FutureExt;
use kdbplus::ipc::{qmsg_type, Query, K as PK};
use kdbplus::qattribute;
use tickbridge::kdb::{Column, Vector};
use tickbridge_tools::bench::encode::{best_time, measure, report, Args, Line, TradeTable};

/// The same update as a kdbplus value.
fn kdbplus_tree(t: &TradeTable) -> PK {
    let cols = t
        .columns
        .iter()
        .map(|c| match c {
            Column::Simple(Vector::Timespan(v)) => PK::new_timespan_list(
                v.iter()
                    .map(|ns| chrono::Duration::nanoseconds(*ns))
                    .collect(),
                qattribute::NONE,
            ),
            Column::Symbols(ids) => PK::new_symbol_list(
                ids.iter().map(|id| t.syms.get(*id).to_string()).collect(),
                qattribute::NONE,
            ),
            Column::Simple(Vector::Float(v)) => PK::new_float_list(v.clone(), qattribute::NONE),
            Column::Simple(Vector::Long(v)) => PK::new_long_list(v.clone(), qattribute::NONE),
            Column::Simple(Vector::Char(v)) => PK::new_string(
                String::from_utf8(v.clone()).expect("ASCII sides"),
                qattribute::NONE,
            ),
            other => panic!("not a trade column: {other:?}"),
        })
        .collect();
    PK::new_compound_list(vec![
        PK::new_symbol(".u.upd".into()),
        PK::new_symbol("trade".into()),
        PK::new_compound_list(cols),
    ])
}

/// kdbplus serializes through an async trait method that never waits when
/// the peer is local (no compression), so it completes on first poll.
fn kdbplus_encode(k: &PK) -> Vec<u8> {
    k.serialize(qmsg_type::asynchronous, true)
        .now_or_never()
        .expect("kdbplus serializes without waiting")
}

fn main() -> ExitCode {
    let args = Args::default();
    let (mut figures, table) = match measure(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("encode bench failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let tree = kdbplus_tree(&table);
    let mut ours = Vec::new();
    table.encode_fast(&mut ours);
    if kdbplus_encode(&tree) != ours {
        eprintln!("kdbplus writes different bytes for the same table; not comparable");
        return ExitCode::FAILURE;
    }
    let per_message = best_time(args.rounds, args.repeat, || {
        black_box(kdbplus_encode(black_box(&tree)));
    });
    figures.lines.push(Line {
        name: "kdbplus 0.3.9 (its K tree)".into(),
        per_message,
    });
    print!("{}", report(&figures));
    ExitCode::SUCCESS
}
