//! kdb+ type codes, null and infinity sentinels, and epoch arithmetic.
//!
//! kdb+ counts every temporal type from 2000.01.01; the constants here are the
//! offsets from the Unix epoch that conversions need.

pub const MIXED: i8 = 0;
pub const BOOL: i8 = 1;
pub const GUID: i8 = 2;
pub const BYTE: i8 = 4;
pub const SHORT: i8 = 5;
pub const INT: i8 = 6;
pub const LONG: i8 = 7;
pub const REAL: i8 = 8;
pub const FLOAT: i8 = 9;
pub const CHAR: i8 = 10;
pub const SYMBOL: i8 = 11;
pub const TIMESTAMP: i8 = 12;
pub const MONTH: i8 = 13;
pub const DATE: i8 = 14;
pub const DATETIME: i8 = 15;
pub const TIMESPAN: i8 = 16;
pub const MINUTE: i8 = 17;
pub const SECOND: i8 = 18;
pub const TIME: i8 = 19;
pub const TABLE: i8 = 98;
pub const DICT: i8 = 99;
pub const LAMBDA: i8 = 100;
pub const UNARY_PRIMITIVE: i8 = 101;
pub const PROJECTION: i8 = 104;
pub const COMPOSITION: i8 = 105;
pub const SORTED_DICT: i8 = 127;
pub const ERROR: i8 = -128;

pub const NULL_SHORT: i16 = i16::MIN;
pub const NULL_INT: i32 = i32::MIN;
pub const NULL_LONG: i64 = i64::MIN;
pub const INF_SHORT: i16 = i16::MAX;
pub const INF_INT: i32 = i32::MAX;
pub const INF_LONG: i64 = i64::MAX;
/// The bits kdb+ writes for `0n` (and `0Nz`): the positive quiet NaN, as
/// captured from real kdb+ (`kdb-vectors/expressions.txt`: `0n` is
/// `F7 000000000000F87F`) and as PyKX serializes `FloatAtom.null`. Not
/// `0xfff8…`, which x86's `0.0/0.0` gives and q only shows as `0n` too.
pub const NULL_FLOAT_BITS: u64 = 0x7ff8_0000_0000_0000;
/// The bits kdb+ writes for `0Ne` (PyKX's `RealAtom.null` is `F8 0000C07F`).
pub const NULL_REAL_BITS: u32 = 0x7fc0_0000;

/// Bytes of an IPC message header: architecture, message type, compressed
/// flag, reserved, then the whole message's length as a u32.
pub const HEADER_LEN: usize = 8;

pub fn null_float() -> f64 {
    f64::from_bits(NULL_FLOAT_BITS)
}

pub fn null_real() -> f32 {
    f32::from_bits(NULL_REAL_BITS)
}

/// Days from 1970.01.01 to 2000.01.01.
pub const KDB_EPOCH_DAYS: i64 = 10_957;
pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;
/// Nanoseconds from the Unix epoch to the kdb+ epoch.
pub const KDB_EPOCH_NANOS: i64 = KDB_EPOCH_DAYS * NANOS_PER_DAY;

/// Bytes one element of a simple vector of type `t` takes on the wire, or
/// `None` for types whose elements vary in size (symbols) or are not simple.
pub fn fixed_width(t: i8) -> Option<usize> {
    match t {
        BOOL | BYTE | CHAR => Some(1),
        GUID => Some(16),
        SHORT => Some(2),
        INT | MONTH | DATE | MINUTE | SECOND | TIME | REAL => Some(4),
        LONG | FLOAT | TIMESTAMP | DATETIME | TIMESPAN => Some(8),
        _ => None,
    }
}

/// The q name of a simple type, as `tickbridge schema` and error messages use it.
pub fn type_name(t: i8) -> &'static str {
    match t.unsigned_abs() as i8 {
        0 => "mixed",
        BOOL => "boolean",
        GUID => "guid",
        BYTE => "byte",
        SHORT => "short",
        INT => "int",
        LONG => "long",
        REAL => "real",
        FLOAT => "float",
        CHAR => "char",
        SYMBOL => "symbol",
        TIMESTAMP => "timestamp",
        MONTH => "month",
        DATE => "date",
        DATETIME => "datetime",
        TIMESPAN => "timespan",
        MINUTE => "minute",
        SECOND => "second",
        TIME => "time",
        TABLE => "table",
        DICT => "dict",
        _ => "other",
    }
}

/// The q type letter (`"j"` for long), used by `schema q` and rendering.
pub fn type_char(t: i8) -> char {
    match t.unsigned_abs() as i8 {
        BOOL => 'b',
        GUID => 'g',
        BYTE => 'x',
        SHORT => 'h',
        INT => 'i',
        LONG => 'j',
        REAL => 'e',
        FLOAT => 'f',
        CHAR => 'c',
        SYMBOL => 's',
        TIMESTAMP => 'p',
        MONTH => 'm',
        DATE => 'd',
        DATETIME => 'z',
        TIMESPAN => 'n',
        MINUTE => 'u',
        SECOND => 'v',
        TIME => 't',
        _ => ' ',
    }
}
