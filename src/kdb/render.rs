//! Readable q-like text for values: what `tickbridge kdb` prints.
//!
//! Atoms use q literal syntax (`1i`, `2.5e`, `` `sym ``, `2000.01.01`);
//! vectors, lists and dictionaries render on one line as q shows them;
//! top-level tables, keyed tables and dictionaries render console style.
//! Long vectors and tables are cut so a huge reply stays readable.

use super::decode::decode;
use super::types::*;
use super::value::{Attr, Table, Vector, K};

/// Rows of a table printed before the rest is summarised.
pub const MAX_ROWS: usize = 20;
/// Items of a vector or list printed before the rest is elided.
pub const MAX_ITEMS: usize = 1000;

/// Significant digits of floats, as q's console shows them by default
/// (`\P 7`).
pub const DEFAULT_PRECISION: usize = 7;

thread_local! {
    /// The precision of the render in progress on this thread (see
    /// [`render_with`]); a thread-local so the many small text functions
    /// below need not pass it along.
    static PRECISION: std::cell::Cell<usize> = const { std::cell::Cell::new(DEFAULT_PRECISION) };
}

/// Renders `v`: tables and dictionaries on several lines, all else on one.
pub fn render(v: &K) -> String {
    render_rows(v, MAX_ROWS)
}

/// [`render_rows`] with floats to `precision` significant digits, as q's
/// `\P precision` shows them (0: as many as reading the number back
/// needs, q's `\P 0`). See [`float_text`] for the rule.
pub fn render_with(v: &K, max_rows: usize, precision: usize) -> String {
    let before = PRECISION.with(|p| p.replace(precision));
    let text = render_rows(v, max_rows);
    PRECISION.with(|p| p.set(before));
    text
}

/// [`render`] showing up to `max_rows` rows of a table or dictionary.
pub fn render_rows(v: &K, max_rows: usize) -> String {
    match v {
        K::Table(t) => table_text(&[], t, max_rows),
        K::Dict { keys, values, .. } => match (keys.as_ref(), values.as_ref()) {
            (K::Table(k), K::Table(v)) => table_text(&[k], v, max_rows),
            (K::Vector(..) | K::List(..), K::Vector(..) | K::List(..))
                if keys.count() == values.count() && keys.count() > 0 =>
            {
                dict_text(keys, values, max_rows)
            }
            _ => inline(v),
        },
        _ => inline(v),
    }
}

/// Renders `v` on one line.
pub fn inline(v: &K) -> String {
    match v {
        K::Vector(attr, vec) => format!("{}{}", attr.prefix(), vector_text(vec)),
        K::List(attr, items) => format!("{}{}", attr.prefix(), list_text(items)),
        K::Dict { keys, values, .. } => {
            let k = inline(keys);
            let k = if k.starts_with(',') || matches!(**keys, K::Dict { .. }) {
                format!("({k})")
            } else {
                k
            };
            format!("{k}!{}", inline(values))
        }
        K::Table(t) => {
            let names = K::vector(Vector::Symbol(t.names.clone()));
            let cols = K::List(Attr::None, t.columns.clone());
            format!("{}+{}!{}", t.attr.prefix(), inline(&names), inline(&cols))
        }
        K::Identity => "::".into(),
        K::Error(e) => format!("'{e}"),
        K::Function { type_code, body } => function_text(*type_code, body),
        atom => atom_text(atom, true),
    }
}

fn function_text(type_code: i8, body: &[u8]) -> String {
    if type_code == LAMBDA {
        // The body is the context symbol then the source as a char vector.
        let source = body
            .iter()
            .position(|&b| b == 0)
            .and_then(|nul| body.get(nul + 1..))
            .and_then(|rest| decode(rest).ok());
        if let Some(K::Vector(_, Vector::Char(text))) = source {
            return String::from_utf8_lossy(&text).into_owned();
        }
    }
    format!("<function type {type_code}>")
}

fn list_text(items: &[K]) -> String {
    match items {
        [] => "()".into(),
        [one] => format!(",{}", inline(one)),
        _ => {
            let mut parts: Vec<String> = items.iter().take(MAX_ITEMS).map(inline).collect();
            if items.len() > MAX_ITEMS {
                parts.push("…".into());
            }
            format!("({})", parts.join(";"))
        }
    }
}

fn vector_text(v: &Vector) -> String {
    let n = v.len();
    if n == 0 {
        return match v {
            Vector::Char(_) => "\"\"".into(),
            _ => format!("`{}$()", type_name(v.type_code())),
        };
    }
    let shown = n.min(MAX_ITEMS);
    let more = if n > shown { " …" } else { "" };
    let single = if n == 1 { "," } else { "" };
    let elems = |sep: &str| -> String {
        (0..shown)
            .filter_map(|i| v.get(i))
            .map(|a| atom_text(&a, false))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let body = match v {
        Vector::Char(c) => quoted(c),
        Vector::Symbol(_) => (0..shown)
            .filter_map(|i| v.get(i))
            .map(|a| atom_text(&a, true))
            .collect(),
        Vector::Bool(b) => {
            let bits: String = b
                .iter()
                .take(shown)
                .map(|&x| if x { '1' } else { '0' })
                .collect();
            format!("{bits}b")
        }
        Vector::Byte(b) => format!("0x{}", hex::encode(&b[..shown])),
        Vector::Short(_) => format!("{}h", elems(" ")),
        Vector::Int(_) => format!("{}i", elems(" ")),
        Vector::Real(_) => format!("{}e", elems(" ")),
        Vector::Float(_) => {
            // `1 2f` needs its suffix to stay float; `0n 0n`, `1.5 2` and
            // `1e+10 2` do not.
            let texts: Vec<String> = (0..shown)
                .filter_map(|i| v.get(i))
                .map(|a| atom_text(&a, false))
                .collect();
            let numbers = texts
                .iter()
                .filter(|t| !matches!(t.as_str(), "0n" | "0w" | "-0w"));
            let whole =
                numbers.clone().next().is_some() && numbers.clone().all(|t| reads_as_integer(t));
            format!("{}{}", texts.join(" "), if whole { "f" } else { "" })
        }
        Vector::Month(_) => format!("{}m", elems(" ")),
        Vector::Timestamp(_)
        | Vector::Date(_)
        | Vector::Datetime(_)
        | Vector::Timespan(_)
        | Vector::Minute(_)
        | Vector::Second(_)
        | Vector::Time(_) => {
            let text = elems(" ");
            // All nulls or infinities would read as longs without a suffix.
            let all_special = (0..shown)
                .filter_map(|i| v.get(i))
                .all(|a| special(&a).is_some());
            if all_special {
                format!("{text}{}", temporal_suffix(v.type_code()))
            } else {
                text
            }
        }
        Vector::Guid(_) | Vector::Long(_) => elems(" "),
    };
    format!("{single}{body}{more}")
}

fn temporal_suffix(t: i8) -> char {
    match t {
        TIMESTAMP => 'p',
        MONTH => 'm',
        DATE => 'd',
        DATETIME => 'z',
        TIMESPAN => 'n',
        MINUTE => 'u',
        SECOND => 'v',
        TIME => 't',
        _ => 'j',
    }
}

/// `0N`, `0W` or `-0W` for an integral-based null or infinity, else `None`.
fn special(a: &K) -> Option<&'static str> {
    let int = |x: i64, null: i64, inf: i64| match x {
        _ if x == null => Some("0N"),
        _ if x == inf => Some("0W"),
        _ if x == -inf => Some("-0W"),
        _ => None,
    };
    let i32s = |x: i32| int(x as i64, NULL_INT as i64, INF_INT as i64);
    let i64s = |x: i64| int(x, NULL_LONG, INF_LONG);
    match a {
        K::Short(x) => int(*x as i64, NULL_SHORT as i64, INF_SHORT as i64),
        K::Int(x) | K::Month(x) | K::Date(x) | K::Minute(x) | K::Second(x) | K::Time(x) => i32s(*x),
        K::Long(x) | K::Timestamp(x) | K::Timespan(x) => i64s(*x),
        K::Real(x) => float_special(*x as f64, x.is_nan()).map(upper_null),
        K::Datetime(x) => float_special(*x, x.is_nan()).map(upper_null),
        _ => None,
    }
}

fn float_special(x: f64, nan: bool) -> Option<&'static str> {
    if nan {
        Some("0n")
    } else if x == f64::INFINITY {
        Some("0w")
    } else if x == f64::NEG_INFINITY {
        Some("-0w")
    } else {
        None
    }
}

fn upper_null(s: &'static str) -> &'static str {
    match s {
        "0n" => "0N",
        "0w" => "0W",
        _ => "-0W",
    }
}

/// One atom. `literal` adds the type suffix q needs to read it back;
/// without it the text is a vector element or table cell.
fn atom_text(a: &K, literal: bool) -> String {
    let suffix = |s: &str| {
        if literal {
            s.to_string()
        } else {
            String::new()
        }
    };
    if let Some(sp) = special(a) {
        let t = match a {
            K::Short(_) => "h",
            K::Int(_) => "i",
            K::Long(_) => "",
            K::Real(_) => "e",
            other => match temporal_suffix(-other.type_code()) {
                'p' => "p",
                'm' => "m",
                'd' => "d",
                'z' => "z",
                'n' => "n",
                'u' => "u",
                'v' => "v",
                't' => "t",
                _ => "",
            },
        };
        return format!("{sp}{}", suffix(t));
    }
    match a {
        K::Bool(b) => format!("{}{}", u8::from(*b), suffix("b")),
        K::Guid(g) => guid_text(g),
        K::Byte(b) => format!("0x{b:02x}"),
        K::Short(x) => format!("{x}{}", suffix("h")),
        K::Int(x) => format!("{x}{}", suffix("i")),
        K::Long(x) => x.to_string(),
        K::Real(x) => format!("{}{}", float_digits(*x as f64, Some(*x)), suffix("e")),
        K::Float(x) => match float_special(*x, x.is_nan()) {
            Some(s) => s.into(),
            None => {
                let text = float_digits(*x, None);
                let f = if reads_as_integer(&text) { "f" } else { "" };
                format!("{text}{}", suffix(f))
            }
        },
        K::Char(c) if literal => quoted(&[*c]),
        K::Char(c) => escape_bytes(&[*c]),
        K::Symbol(s) if literal => format!("`{s}"),
        K::Symbol(s) => s.clone(),
        K::Timestamp(ns) => {
            let (days, rem) = (ns.div_euclid(NANOS_PER_DAY), ns.rem_euclid(NANOS_PER_DAY));
            format!("{}D{}", date_text(days), clock_ns(rem))
        }
        K::Month(m) => {
            let (y, mo) = (2000 + m.div_euclid(12) as i64, m.rem_euclid(12) + 1);
            format!("{y:04}.{mo:02}{}", suffix("m"))
        }
        K::Date(d) => date_text(*d as i64),
        K::Datetime(d) => {
            let ms = (d * 86_400_000.0).round() as i64;
            let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
            format!("{}T{}", date_text(days), clock_ms(rem))
        }
        K::Timespan(ns) => {
            let sign = if *ns < 0 { "-" } else { "" };
            let abs = ns.unsigned_abs();
            let day = NANOS_PER_DAY as u64;
            format!("{sign}{}D{}", abs / day, clock_ns((abs % day) as i64))
        }
        K::Minute(m) => {
            let sign = if *m < 0 { "-" } else { "" };
            let a = m.unsigned_abs();
            format!("{sign}{:02}:{:02}", a / 60, a % 60)
        }
        K::Second(s) => {
            let sign = if *s < 0 { "-" } else { "" };
            let a = s.unsigned_abs();
            format!("{sign}{:02}:{:02}:{:02}", a / 3600, a / 60 % 60, a % 60)
        }
        K::Time(t) => {
            let sign = if *t < 0 { "-" } else { "" };
            format!("{sign}{}", clock_ms(t.unsigned_abs() as i64))
        }
        other => inline(other),
    }
}

/// A float as this thread's render precision asks (see [`float_text`]);
/// `real` is the f32 a real was, for precision 0.
fn float_digits(x: f64, real: Option<f32>) -> String {
    let precision = PRECISION.with(|p| p.get());
    match (real, precision) {
        // q's `\P 0` is 17 digits, which for a real only shows the f32's
        // binary expansion (`0.10000000149011612e`): the shortest text that
        // reads back to the same f32 says what was stored.
        // Its digits are those of the f32's shortest round-trip text (the
        // nearest of the shortest), laid out by the same %g rule.
        (Some(r), 0) => {
            let shortest = format!("{r:e}");
            let mantissa = shortest.split('e').next().unwrap_or("");
            let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
            float_text(x, digits.max(1))
        }
        _ => float_text(x, precision),
    }
}

/// A finite float as q's console prints it under `\P precision`: C's
/// `%.{precision}g` (precision 0 meaning 17, q's maximum). That is:
/// round to `precision` significant digits; if the decimal exponent of the
/// rounded value is below -4 or not below `precision`, write
/// `d.ddde±XX` (at least two exponent digits), else plain decimals; in
/// both, trailing zeros after the point and a bare point are dropped. So
/// `153.42000000000002` is `153.42`, `1%3` is `0.3333333`, `1e10` is
/// `1e+10`, `0.00001` is `1e-05`, `12345678` is `1.234568e+07`.
pub fn float_text(x: f64, precision: usize) -> String {
    let p = if precision == 0 {
        17
    } else {
        precision.min(17)
    };
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:.N e}` rounds to N+1 significant digits: its exponent is
    // that of the rounded value, which is what %g decides on.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Float text that q would read as an integer (so it needs its `f`).
fn reads_as_integer(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

fn guid_text(g: &[u8; 16]) -> String {
    let h = hex::encode(g);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `yyyy.mm.dd` for days since 2000.01.01 (proleptic Gregorian).
fn date_text(days_since_2000: i64) -> String {
    let (y, m, d) = civil(days_since_2000 + KDB_EPOCH_DAYS);
    format!("{y:04}.{m:02}.{d:02}")
}

/// Year, month, day from days since 1970-01-01.
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn clock_ns(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ns % 1_000_000_000
    )
}

fn clock_ms(ms: i64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape_bytes(bytes).replace('"', "\\\""))
}

/// q string escapes; valid UTF-8 stays readable, other high bytes are octal.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let push_byte = |out: &mut String, b: u8| match b {
        b'\n' => out.push_str("\\n"),
        b'\t' => out.push_str("\\t"),
        b'\r' => out.push_str("\\r"),
        b'\\' => out.push_str("\\\\"),
        0x20..=0x7e => out.push(b as char),
        _ => out.push_str(&format!("\\{b:03o}")),
    };
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            for c in s.chars() {
                if c.is_ascii() {
                    push_byte(&mut out, c as u8);
                } else {
                    out.push(c);
                }
            }
        }
        Err(_) => {
            for &b in bytes {
                push_byte(&mut out, b);
            }
        }
    }
    out
}

/// One cell of a table or dictionary key: bare, as the q console shows it.
fn cell(col: &K, i: usize) -> String {
    match col {
        K::Vector(_, Vector::Byte(b)) => b.get(i).map_or(String::new(), |b| format!("0x{b:02x}")),
        K::Vector(_, v) => v.get(i).map_or(String::new(), |a| atom_text(&a, false)),
        K::List(_, items) => match items.get(i) {
            Some(K::Vector(_, Vector::Char(s))) => escape_bytes(s),
            Some(a) if a.is_atom() => atom_text(a, false),
            Some(other) => inline(other),
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// A block of columns: header cells, then rows of cells, padded to widths.
struct Block {
    widths: Vec<usize>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Block {
    fn of(t: &Table, rows: usize) -> Block {
        let header = t.names.clone();
        let rows: Vec<Vec<String>> = (0..rows)
            .map(|r| t.columns.iter().map(|c| cell(c, r)).collect())
            .collect();
        let widths = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .chain(std::iter::once(h.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        Block {
            widths,
            header,
            rows,
        }
    }

    /// Cells padded to their column widths, one space apart.
    fn line(&self, cells: &[String]) -> String {
        cells
            .iter()
            .zip(&self.widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn width(&self) -> usize {
        self.widths.iter().sum::<usize>() + self.widths.len().saturating_sub(1)
    }
}

/// Console-style table; `keys` holds the key table of a keyed table.
fn table_text(keys: &[&Table], values: &Table, max_rows: usize) -> String {
    let total = values.row_count();
    let shown = total.min(max_rows);
    let key = keys.first().map(|k| Block::of(k, shown));
    let val = Block::of(values, shown);
    let join = |k: Option<String>, v: String| match k {
        Some(k) => format!("{k}| {v}"),
        None => v,
    };
    let key_line = |f: &dyn Fn(&Block) -> String| key.as_ref().map(f);
    let mut lines = vec![
        join(key_line(&|b| b.line(&b.header)), val.line(&val.header)),
        join(
            key_line(&|b| "-".repeat(b.width())),
            "-".repeat(val.width()),
        ),
    ];
    for (r, row) in val.rows.iter().enumerate() {
        let k = key
            .as_ref()
            .map(|b| b.line(b.rows.get(r).map_or(&[][..], |x| x.as_slice())));
        lines.push(join(k, val.line(row)));
    }
    if total > shown {
        lines.push(format!("…{} more rows", total - shown));
    }
    lines
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key| value` lines, keys padded to one width.
fn dict_text(keys: &K, values: &K, max_rows: usize) -> String {
    let n = keys.count();
    let shown = n.min(max_rows);
    let key_cells: Vec<String> = (0..shown).map(|i| cell(keys, i)).collect();
    let width = key_cells
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<String> = key_cells
        .iter()
        .enumerate()
        .map(|(i, k)| {
            // Simple values print bare as in a table; mixed ones as literals.
            let v = match values {
                K::Vector(..) => cell(values, i),
                _ => item(values, i).map_or(String::new(), |v| inline(&v)),
            };
            format!("{k:<width$}| {v}")
        })
        .collect();
    if n > shown {
        lines.push(format!("…{} more entries", n - shown));
    }
    lines.join("\n")
}

fn item(v: &K, i: usize) -> Option<K> {
    match v {
        K::Vector(_, vec) => vec.get(i),
        K::List(_, items) => items.get(i).cloned(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdb::encode::encode;

    fn v(x: Vector) -> K {
        K::vector(x)
    }

    #[test]
    fn atoms() {
        assert_eq!(render(&K::Bool(true)), "1b");
        assert_eq!(render(&K::Byte(0xff)), "0xff");
        assert_eq!(render(&K::Short(-234)), "-234h");
        assert_eq!(render(&K::Int(1)), "1i");
        assert_eq!(render(&K::Long(42)), "42");
        assert_eq!(render(&K::Real(5.5)), "5.5e");
        assert_eq!(render(&K::Float(3.234)), "3.234");
        assert_eq!(render(&K::Float(1.0)), "1f");
        assert_eq!(render(&K::Char(b'c')), "\"c\"");
        assert_eq!(render(&K::Char(b'"')), "\"\\\"\"");
        assert_eq!(render(&K::sym("abc")), "`abc");
        assert_eq!(render(&K::sym("")), "`");
        assert_eq!(render(&K::Identity), "::");
        assert_eq!(render(&K::Error("type".into())), "'type");
    }

    /// What q's console prints for these floats (q 4.x, `\\P 7` unless
    /// said): C's `%g` at the precision, `f` only when the text would
    /// otherwise read as an integer.
    #[test]
    fn floats_as_q_prints_them() {
        let f = |x: f64| render(&K::Float(x));
        assert_eq!(f(153.42000000000002), "153.42");
        assert_eq!(f(0.1 + 0.2), "0.3");
        assert_eq!(f(1.0 / 3.0), "0.3333333");
        assert_eq!(f(2.0 / 3.0), "0.6666667");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(100.0), "100f");
        assert_eq!(f(1234567.8), "1234568f");
        assert_eq!(f(12345678.9), "1.234568e+07");
        assert_eq!(f(1e10), "1e+10");
        assert_eq!(f(1e-5), "1e-05");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(1.5e-300), "1.5e-300");
        assert_eq!(f(0.0), "0f");
        assert_eq!(f(f64::INFINITY), "0w");
        assert_eq!(f(f64::NEG_INFINITY), "-0w");
        assert_eq!(f(f64::NAN), "0n");
        assert_eq!(render(&K::Real(0.1)), "0.1e");
        let fv = |x: Vec<f64>| render(&K::vector(Vector::Float(x)));
        assert_eq!(fv(vec![1.0, 2.0, 3.0]), "1 2 3f");
        assert_eq!(fv(vec![1.5, 2.0, 153.42000000000002]), "1.5 2 153.42");
        assert_eq!(fv(vec![1e10, 2.0]), "1e+10 2");
        assert_eq!(fv(vec![f64::NAN, 1.0]), "0n 1f");
        // `\\P 0`: 17 digits, q's maximum (its own example: 1%3).
        let p0 = |x: K| render_with(&x, MAX_ROWS, 0);
        assert_eq!(p0(K::Float(1.0 / 3.0)), "0.33333333333333331");
        assert_eq!(p0(K::Float(153.42000000000002)), "153.42000000000002");
        assert_eq!(p0(K::Float(0.1)), "0.10000000000000001");
        assert_eq!(p0(K::Float(1e10)), "10000000000f");
        // A real keeps what the f32 stored, not its binary expansion.
        assert_eq!(p0(K::Real(0.1)), "0.1e");
        assert_eq!(render_with(&K::Float(1.0 / 3.0), MAX_ROWS, 3), "0.333");
        // The precision is the render's only: the next one is back to 7.
        assert_eq!(f(1.0 / 3.0), "0.3333333");
    }

    #[test]
    fn nulls_and_infinities() {
        assert_eq!(render(&K::Short(NULL_SHORT)), "0Nh");
        assert_eq!(render(&K::Int(NULL_INT)), "0Ni");
        assert_eq!(render(&K::Int(-INF_INT)), "-0Wi");
        assert_eq!(render(&K::Long(NULL_LONG)), "0N");
        assert_eq!(render(&K::Long(INF_LONG)), "0W");
        assert_eq!(render(&K::Float(null_float())), "0n");
        assert_eq!(render(&K::Float(f64::NEG_INFINITY)), "-0w");
        assert_eq!(render(&K::Real(null_real())), "0Ne");
        assert_eq!(render(&K::Date(NULL_INT)), "0Nd");
        assert_eq!(render(&K::Timestamp(NULL_LONG)), "0Np");
        assert_eq!(render(&K::Timespan(INF_LONG)), "0Wn");
        assert_eq!(render(&K::Month(NULL_INT)), "0Nm");
        assert_eq!(render(&K::Datetime(null_float())), "0Nz");
        assert_eq!(render(&K::Minute(NULL_INT)), "0Nu");
        assert_eq!(render(&K::Second(NULL_INT)), "0Nv");
        assert_eq!(render(&K::Time(NULL_INT)), "0Nt");
    }

    #[test]
    fn temporals() {
        assert_eq!(render(&K::Date(0)), "2000.01.01");
        assert_eq!(render(&K::Date(121)), "2000.05.01");
        assert_eq!(render(&K::Date(-1)), "1999.12.31");
        assert_eq!(render(&K::Date(366 + 365 + 365 + 365 + 59)), "2004.02.29");
        assert_eq!(render(&K::Month(12)), "2001.01m");
        assert_eq!(render(&K::Month(-1)), "1999.12m");
        assert_eq!(render(&K::Timestamp(0)), "2000.01.01D00:00:00.000000000");
        assert_eq!(
            render(&K::Timestamp(3 * NANOS_PER_DAY + 20_217_600_000_000)),
            "2000.01.04D05:36:57.600000000"
        );
        assert_eq!(render(&K::Timestamp(-1)), "1999.12.31D23:59:59.999999999");
        assert_eq!(render(&K::Timespan(0)), "0D00:00:00.000000000");
        assert_eq!(
            render(&K::Timespan(-1_000_000_000)),
            "-0D00:00:01.000000000"
        );
        assert_eq!(
            render(&K::Timespan(NANOS_PER_DAY + 1)),
            "1D00:00:00.000000001"
        );
        assert_eq!(render(&K::Time(43_499_123)), "12:04:59.123");
        assert_eq!(render(&K::Minute(721)), "12:01");
        assert_eq!(render(&K::Second(43_500)), "12:05:00");
        assert_eq!(render(&K::Datetime(3.234)), "2000.01.04T05:36:57.600");
    }

    #[test]
    fn guids() {
        let g = [
            0x8c, 0x68, 0x0a, 0x01, 0x5a, 0x49, 0x5a, 0xab, 0x5a, 0x65, 0xd4, 0xbf, 0xdd, 0xb6,
            0xa6, 0x61,
        ];
        assert_eq!(render(&K::Guid(g)), "8c680a01-5a49-5aab-5a65-d4bfddb6a661");
        assert_eq!(
            render(&v(Vector::Guid(vec![g]))),
            ",8c680a01-5a49-5aab-5a65-d4bfddb6a661"
        );
    }

    #[test]
    fn vectors() {
        assert_eq!(render(&v(Vector::Long(vec![1, 2, 3]))), "1 2 3");
        assert_eq!(render(&v(Vector::Long(vec![1, NULL_LONG, 3]))), "1 0N 3");
        assert_eq!(render(&v(Vector::Long(vec![7]))), ",7");
        assert_eq!(render(&v(Vector::Long(vec![]))), "`long$()");
        assert_eq!(render(&v(Vector::Int(vec![1, 2]))), "1 2i");
        assert_eq!(render(&v(Vector::Short(vec![1, NULL_SHORT]))), "1 0Nh");
        assert_eq!(render(&v(Vector::Real(vec![5.5, 8.5]))), "5.5 8.5e");
        assert_eq!(render(&v(Vector::Float(vec![3.23, 6.46]))), "3.23 6.46");
        assert_eq!(render(&v(Vector::Float(vec![1.0, 2.0]))), "1 2f");
        assert_eq!(
            render(&v(Vector::Float(vec![3.23, null_float()]))),
            "3.23 0n"
        );
        assert_eq!(render(&v(Vector::Bool(vec![false, true, false]))), "010b");
        assert_eq!(render(&v(Vector::Byte(vec![1, 2, 0xff]))), "0x0102ff");
        assert_eq!(render(&K::string("abc")), "\"abc\"");
        assert_eq!(render(&K::string("")), "\"\"");
        assert_eq!(render(&K::string("a\nb")), "\"a\\nb\"");
        assert_eq!(
            render(&v(Vector::Symbol(vec!["a".into(), "b".into()]))),
            "`a`b"
        );
        assert_eq!(render(&v(Vector::Symbol(vec!["".into(), "".into()]))), "``");
        assert_eq!(
            render(&K::Vector(Attr::Sorted, Vector::Long(vec![1, 2]))),
            "`s#1 2"
        );
        assert_eq!(
            render(&v(Vector::Date(vec![366, 121, NULL_INT]))),
            "2001.01.01 2000.05.01 0N"
        );
        assert_eq!(render(&v(Vector::Date(vec![NULL_INT, NULL_INT]))), "0N 0Nd");
        assert_eq!(render(&v(Vector::Month(vec![12, NULL_INT]))), "2001.01 0Nm");
        assert_eq!(render(&v(Vector::Minute(vec![721, NULL_INT]))), "12:01 0N");
    }

    #[test]
    fn long_vectors_are_cut() {
        let text = render(&v(Vector::Long((0..5000).collect())));
        assert!(text.ends_with(" …"));
        assert_eq!(text.split(' ').count(), MAX_ITEMS + 1);
    }

    #[test]
    fn lists_and_dicts() {
        let l = K::list(vec![
            K::Long(1),
            K::sym("bcd"),
            K::string("0bc"),
            K::Real(5.5),
        ]);
        assert_eq!(render(&l), "(1;`bcd;\"0bc\";5.5e)");
        assert_eq!(render(&K::list(vec![])), "()");
        assert_eq!(render(&K::list(vec![K::Long(1)])), ",1");
        let d = K::dict(
            v(Vector::Symbol(vec!["a".into(), "bb".into()])),
            v(Vector::Long(vec![1, 2])),
        );
        assert_eq!(render(&d), "a | 1\nbb| 2");
        let syms = K::dict(
            v(Vector::Long(vec![1, 2])),
            v(Vector::Symbol(vec!["abc".into(), "d".into()])),
        );
        assert_eq!(render(&syms), "1| abc\n2| d");
        let mixed = K::dict(
            v(Vector::Symbol(vec!["a".into(), "b".into()])),
            K::list(vec![K::sym("x"), K::string("st")]),
        );
        assert_eq!(render(&mixed), "a| `x\nb| \"st\"");
        assert_eq!(inline(&d), "`a`bb!1 2");
        let single = K::dict(
            v(Vector::Symbol(vec!["a".into()])),
            v(Vector::Long(vec![1])),
        );
        assert_eq!(inline(&single), "(,`a)!,1");
        assert_eq!(
            render(&K::list(vec![d.clone(), K::Identity])),
            "(`a`bb!1 2;::)"
        );
    }

    fn people() -> Table {
        Table::new(
            vec!["name".into(), "iq".into()],
            vec![
                v(Vector::Symbol(vec![
                    "Dent".into(),
                    "Beeblebrox".into(),
                    "Prefect".into(),
                ])),
                v(Vector::Long(vec![98, 42, 126])),
            ],
        )
    }

    #[test]
    fn tables() {
        let text = render(&K::Table(people()));
        assert_eq!(
            text,
            "name       iq\n--------------\nDent       98\nBeeblebrox 42\nPrefect    126"
        );
        assert_eq!(
            inline(&K::Table(people())),
            "+`name`iq!(`Dent`Beeblebrox`Prefect;98 42 126)"
        );
    }

    #[test]
    fn table_with_string_and_nested_columns() {
        let t = Table::new(
            vec!["s".into(), "n".into()],
            vec![
                K::list(vec![K::string("Arthur Dent"), K::string("Ford")]),
                K::list(vec![v(Vector::Long(vec![1, 2])), v(Vector::Long(vec![3]))]),
            ],
        );
        let text = render(&K::Table(t));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "s           n");
        assert_eq!(lines[2], "Arthur Dent 1 2");
        assert_eq!(lines[3], "Ford        ,3");
    }

    #[test]
    fn keyed_tables() {
        let k = Table::new(vec!["eid".into()], vec![v(Vector::Long(vec![1001, 1002]))]);
        let val = Table::new(
            vec!["pos".into()],
            vec![v(Vector::Symbol(vec!["d1".into(), "d2".into()]))],
        );
        let text = render(&K::dict(K::Table(k), K::Table(val)));
        assert_eq!(text, "eid | pos\n----| ---\n1001| d1\n1002| d2");
    }

    #[test]
    fn long_tables_are_cut() {
        let t = Table::new(vec!["x".into()], vec![v(Vector::Long((0..25).collect()))]);
        let text = render(&K::Table(t));
        assert_eq!(text.lines().count(), 2 + MAX_ROWS + 1);
        assert!(text.ends_with("…5 more rows"));
    }

    #[test]
    fn functions() {
        let mut body = b"\0".to_vec();
        body.extend(encode(&K::string("{x+y}")));
        assert_eq!(
            render(&K::Function {
                type_code: LAMBDA,
                body
            }),
            "{x+y}"
        );
        assert_eq!(
            render(&K::Function {
                type_code: PROJECTION,
                body: vec![1, 2]
            }),
            "<function type 104>"
        );
        assert_eq!(
            render(&K::Function {
                type_code: LAMBDA,
                body: vec![0xff]
            }),
            "<function type 100>"
        );
    }
}
