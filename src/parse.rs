//! Shared building blocks for the cgroup and /proc parsers.
//!
//! Everything here is a pure function over `&[u8]`: nothing allocates, only
//! `core` facilities are used, results borrow the input, and no input can make
//! these functions panic (slices are taken with `get`/`split_at_checked`,
//! numbers are accumulated with checked arithmetic and a bounded digit count).

use core::fmt;

/// Why a pseudo-file could not be parsed. Small and `Copy` so a collector can
/// keep the last one per metric and log it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The input (or the field that was needed) was empty.
    Empty,
    /// A number contained something other than ASCII digits (and a sign where allowed).
    InvalidNumber,
    /// A number does not fit the target type.
    Overflow,
    /// A line or row lacks a field the format requires.
    MissingField,
    /// An input or output exceeded a fixed bound (e.g. a destination buffer).
    TooLong,
    /// The input does not have the expected shape; the text says which part.
    Malformed(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty input"),
            ParseError::InvalidNumber => f.write_str("invalid number"),
            ParseError::Overflow => f.write_str("number out of range"),
            ParseError::MissingField => f.write_str("missing field"),
            ParseError::TooLong => f.write_str("input or output too long"),
            ParseError::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The widest decimal `u64` has 20 digits; anything longer is rejected before
/// accumulating (leading zeros included, which the kernel never prints).
const MAX_U64_DIGITS: usize = 20;

/// True for the bytes the kernel uses to separate fields and lines.
#[inline(always)]
pub fn is_space(b: u8) -> bool {
    // ' ' and \t \n \v \f \r (9 to 13).
    b == b' ' || b.wrapping_sub(b'\t') < 5
}

/// Strips leading and trailing ASCII whitespace.
#[inline]
pub fn trim_ascii(mut buf: &[u8]) -> &[u8] {
    while let Some((first, rest)) = buf.split_first() {
        if !is_space(*first) {
            break;
        }
        buf = rest;
    }
    while let Some((last, rest)) = buf.split_last() {
        if !is_space(*last) {
            break;
        }
        buf = rest;
    }
    buf
}

/// Parses an unsigned decimal: ASCII digits only, no sign, no whitespace
/// (callers trim or split first).
pub fn parse_u64(buf: &[u8]) -> Result<u64, ParseError> {
    if buf.is_empty() {
        return Err(ParseError::Empty);
    }
    if buf.len() < MAX_U64_DIGITS {
        // Up to 19 digits cannot overflow: one pass, no checked arithmetic.
        let mut value: u64 = 0;
        for &b in buf {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return Err(ParseError::InvalidNumber);
            }
            value = value * 10 + u64::from(digit);
        }
        return Ok(value);
    }
    if !buf.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::InvalidNumber);
    }
    if buf.len() > MAX_U64_DIGITS {
        return Err(ParseError::Overflow);
    }
    let mut value: u64 = 0;
    for &b in buf {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::Overflow)?;
    }
    Ok(value)
}

/// [`parse_u64`] narrowed to `u32` (PIDs, device numbers, hierarchy ids).
pub fn parse_u32(buf: &[u8]) -> Result<u32, ParseError> {
    u32::try_from(parse_u64(buf)?).map_err(|_| ParseError::Overflow)
}

/// Parses a signed decimal with an optional leading `-` (no `+`, no whitespace).
pub fn parse_i64(buf: &[u8]) -> Result<i64, ParseError> {
    let (negative, digits) = match buf.split_first() {
        None => return Err(ParseError::Empty),
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, buf),
    };
    let magnitude = parse_u64(digits)?;
    if negative {
        // i64::MIN has a magnitude one larger than i64::MAX.
        if magnitude == 1u64 << 63 {
            Ok(i64::MIN)
        } else {
            i64::try_from(magnitude)
                .map(|v| -v)
                .map_err(|_| ParseError::Overflow)
        }
    } else {
        i64::try_from(magnitude).map_err(|_| ParseError::Overflow)
    }
}

/// Parses hexadecimal digits (either case, no `0x` prefix), at most 16 of them.
pub fn parse_hex_u64(buf: &[u8]) -> Result<u64, ParseError> {
    if buf.is_empty() {
        return Err(ParseError::Empty);
    }
    if !buf.iter().all(u8::is_ascii_hexdigit) {
        return Err(ParseError::InvalidNumber);
    }
    if buf.len() > 16 {
        return Err(ParseError::Overflow);
    }
    let mut value: u64 = 0;
    for &b in buf {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b.wrapping_sub(b'A').wrapping_add(10),
        };
        value = (value << 4) | u64::from(digit);
    }
    Ok(value)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The next 8 bytes of `buf` from `at` as a little-endian word.
#[inline]
fn word_at(buf: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Index of the first `needle` in `buf`, eight bytes at a time (lines of
/// the kernel's files are found with this, so it is the parsers' inner loop).
#[inline]
pub fn find_byte(buf: &[u8], needle: u8) -> Option<usize> {
    let pattern = LO * u64::from(needle);
    let mut at = 0usize;
    while let Some(word) = word_at(buf, at) {
        let word = word ^ pattern;
        // The lowest flagged byte is the first zero byte of `word` (a borrow
        // can only flag bytes above a real zero).
        let zeros = word.wrapping_sub(LO) & !word & HI;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = buf.get(at..).unwrap_or(&[]);
    tail.iter().position(|&b| b == needle).map(|p| at + p)
}

/// Index of the last `needle` in `buf`, eight bytes at a time.
#[inline]
pub fn rfind_byte(buf: &[u8], needle: u8) -> Option<usize> {
    let pattern = LO * u64::from(needle);
    let mut end = buf.len();
    while end >= 8 {
        let at = end - 8;
        let word = word_at(buf, at)? ^ pattern;
        // Exactly the zero bytes of `word` get their high bit set (no borrows).
        let zeros = !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7);
        if zeros != 0 {
            return Some(at + 7 - (zeros.leading_zeros() / 8) as usize);
        }
        end = at;
    }
    buf.get(..end)?.iter().rposition(|&b| b == needle)
}

/// Splits at the first occurrence of `sep`, dropping the separator.
#[inline]
pub fn split_once_byte(buf: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = find_byte(buf, sep)?;
    let (head, tail) = buf.split_at_checked(at)?;
    Some((head, tail.get(1..)?))
}

/// Splits at the last occurrence of `sep`, dropping the separator.
#[inline]
pub fn rsplit_once_byte(buf: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = rfind_byte(buf, sep)?;
    let (head, tail) = buf.split_at_checked(at)?;
    Some((head, tail.get(1..)?))
}

/// Splits off the first whitespace-separated field; returns it and the rest
/// (rest starts at the separator, untrimmed).
#[inline(always)]
pub fn split_first_field(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    // Plain byte loops: fields and the blanks between them are short, so
    // this beats word-at-a-time scans.
    let mut at = 0;
    while buf.get(at).copied().is_some_and(is_space) {
        at += 1;
    }
    if at == buf.len() {
        return None;
    }
    let start = at;
    while buf.get(at).is_some_and(|&b| !is_space(b)) {
        at += 1;
    }
    Some((buf.get(start..at)?, buf.get(at..)?))
}

/// Iterator over whitespace-separated fields; runs of whitespace count as one
/// separator, so leading/trailing spaces (`usage_percpu`) yield no empty field.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

/// Splits `buf` into whitespace-separated fields.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { rest: buf }
}

impl<'a> Fields<'a> {
    /// What has not been consumed yet (starting at a separator or a field).
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match split_first_field(self.rest) {
            Some((field, rest)) => {
                self.rest = rest;
                Some(field)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Iterator over `\n`-terminated lines, without the terminator. A final line
/// without `\n` is yielded too; a trailing `\n` does not produce an empty line.
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

/// Splits `buf` into lines.
pub fn lines(buf: &[u8]) -> Lines<'_> {
    Lines { rest: buf }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match split_once_byte(self.rest, b'\n') {
            Some((line, rest)) => {
                self.rest = rest;
                Some(line)
            }
            None => {
                let line = self.rest;
                self.rest = &[];
                Some(line)
            }
        }
    }
}

/// Iterator over `key value` lines (the kernel's flat-keyed files): yields
/// the first field and the trimmed remainder of the line (possibly empty).
/// Blank lines are skipped.
#[derive(Clone, Debug)]
pub struct KeyValues<'a> {
    lines: Lines<'a>,
}

/// Splits `buf` into `(key, value)` pairs, one per non-blank line.
pub fn key_values(buf: &[u8]) -> KeyValues<'_> {
    KeyValues { lines: lines(buf) }
}

impl<'a> Iterator for KeyValues<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            if let Some((key, rest)) = split_first_field(line) {
                return Some((key, trim_ascii(rest)));
            }
        }
        None
    }
}

/// Any limit at or above 2^62 is "unlimited": the v1 sentinels
/// (`9223372036854771712` on 4 KiB pages, LLONG_MAX before ~3.11, other
/// page-rounded values on 64 KiB pages) all lie above it, and no real limit does.
pub const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// A resource limit as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `max` (v2), `-1` (`cfs_quota_us`) or a v1 sentinel ≥ 2^62.
    Unlimited,
    /// A finite limit in the file's unit (bytes, µs, pids).
    Bytes(u64),
}

impl Limit {
    /// The finite value, `None` when unlimited.
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Bytes(v) => Some(v),
        }
    }

    /// True for [`Limit::Unlimited`].
    pub fn is_unlimited(self) -> bool {
        matches!(self, Limit::Unlimited)
    }

    /// Classifies a raw number: values ≥ [`UNLIMITED_THRESHOLD`] are unlimited.
    pub fn from_raw(raw: u64) -> Limit {
        if raw >= UNLIMITED_THRESHOLD {
            Limit::Unlimited
        } else {
            Limit::Bytes(raw)
        }
    }
}

/// Parses a limit file (surrounding whitespace allowed): `max`, `-1`, or a
/// decimal, where values ≥ 2^62 count as unlimited. Other negatives are errors.
pub fn parse_limit(buf: &[u8]) -> Result<Limit, ParseError> {
    let value = trim_ascii(buf);
    match value {
        b"" => Err(ParseError::Empty),
        b"max" | b"-1" => Ok(Limit::Unlimited),
        _ => parse_u64(value).map(Limit::from_raw),
    }
}

/// Parses a file holding one unsigned decimal (surrounding whitespace allowed).
pub fn parse_single_u64(buf: &[u8]) -> Result<u64, ParseError> {
    parse_u64(trim_ascii(buf))
}

/// Declares a struct of `Option<u64>` fields filled from a flat-keyed file by
/// key, in any order, ignoring unknown keys; the last occurrence of a key wins.
macro_rules! keyed_u64_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident => $key:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<u64>, )*
        }

        impl $name {
            /// Stores `value` under `key` when the key is known; unknown keys are ignored.
            pub fn apply(&mut self, key: &[u8], value: &[u8]) -> Result<(), $crate::parse::ParseError> {
                match key {
                    $( $key => self.$field = Some($crate::parse::parse_u64(value)?), )*
                    _ => {}
                }
                Ok(())
            }

            /// Parses a whole `key value` file. Empty input is an error; a file
            /// with only unknown keys gives all fields `None`.
            pub fn parse(buf: &[u8]) -> Result<Self, $crate::parse::ParseError> {
                if $crate::parse::trim_ascii(buf).is_empty() {
                    return Err($crate::parse::ParseError::Empty);
                }
                let mut out = Self::default();
                for (key, value) in $crate::parse::key_values(buf) {
                    out.apply(key, value)?;
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use keyed_u64_struct;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Ok(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_u64(b"18446744073709551616"),
            Err(ParseError::Overflow)
        );
        assert_eq!(
            parse_u64(b"000000000000000000001"),
            Err(ParseError::Overflow)
        );
        assert_eq!(parse_u64(b""), Err(ParseError::Empty));
        assert_eq!(parse_u64(b"12a"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_u64(b" 1"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_u64(b"+1"), Err(ParseError::InvalidNumber));
        assert_eq!(
            parse_u64(b"9999999999999999999"),
            Ok(9_999_999_999_999_999_999)
        );
        assert_eq!(
            parse_u64(b"99999999999999999999"),
            Err(ParseError::Overflow)
        );
        assert_eq!(
            parse_u64(b"1844674407370955161x"),
            Err(ParseError::InvalidNumber)
        );
        assert_eq!(parse_u64(b"1/"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_u64(b"1:"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_i64(b"-1"), Ok(-1));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), Err(ParseError::Overflow));
        assert_eq!(
            parse_i64(b"-9223372036854775809"),
            Err(ParseError::Overflow)
        );
        assert_eq!(parse_i64(b"-"), Err(ParseError::Empty));
        assert_eq!(parse_i64(b"--1"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_hex_u64(b"0A"), Ok(10));
        assert_eq!(parse_hex_u64(b"ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(
            parse_hex_u64(b"1ffffffffffffffff"),
            Err(ParseError::Overflow)
        );
        assert_eq!(parse_hex_u64(b"0x1"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_u32(b"4294967296"), Err(ParseError::Overflow));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(b"max\n"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit(b"-1\n"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit(b"9223372036854771712\n"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit(b"9223372036854775807\n"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit(b"4611686018427387904"), Ok(Limit::Unlimited));
        assert_eq!(
            parse_limit(b"4611686018427387903"),
            Ok(Limit::Bytes(4_611_686_018_427_387_903))
        );
        assert_eq!(parse_limit(b"67108864\n"), Ok(Limit::Bytes(67_108_864)));
        assert_eq!(parse_limit(b"-2"), Err(ParseError::InvalidNumber));
        assert_eq!(parse_limit(b"\n"), Err(ParseError::Empty));
        assert_eq!(Limit::Bytes(5).value(), Some(5));
        assert!(Limit::Unlimited.is_unlimited());
    }

    #[test]
    fn splitting() {
        assert_eq!(trim_ascii(b" \t a b \n"), b"a b");
        assert_eq!(trim_ascii(b"   "), b"");
        let f: Vec<&[u8]> = fields(b" 1 2\t\t3 \n").collect();
        assert_eq!(f, [&b"1"[..], b"2", b"3"]);
        let l: Vec<&[u8]> = lines(b"a\n\nb\nc").collect();
        assert_eq!(l, [&b"a"[..], b"", b"b", b"c"]);
        assert_eq!(lines(b"a\n").count(), 1);
        assert_eq!(lines(b"").count(), 0);
        let kv: Vec<(&[u8], &[u8])> = key_values(b"cache 1\n\nrss  2 \nlonely\n").collect();
        assert_eq!(
            kv,
            [(&b"cache"[..], &b"1"[..]), (b"rss", b"2"), (b"lonely", b"")]
        );
        assert_eq!(
            split_once_byte(b"a:b:c", b':'),
            Some((&b"a"[..], &b"b:c"[..]))
        );
        assert_eq!(
            rsplit_once_byte(b"a)b)c", b')'),
            Some((&b"a)b"[..], &b"c"[..]))
        );
        assert_eq!(split_once_byte(b"abc", b':'), None);
    }

    #[test]
    fn find_byte_agrees_with_position() {
        // Every offset of the match, in and around the 8-byte words, with
        // bytes that differ from the needle by one bit (borrow neighbours).
        for len in 0..40usize {
            for at in 0..=len {
                let mut buf: Vec<u8> = (0..len).map(|i| [0x0b, 0x8a, 0x09, b'a'][i % 4]).collect();
                if at < len {
                    buf[at] = b'\n';
                    if at + 1 < len {
                        buf[at + 1] = b'\n';
                    }
                }
                let want = buf.iter().position(|&b| b == b'\n');
                assert_eq!(find_byte(&buf, b'\n'), want, "len {len} at {at}");
                let want = buf.iter().rposition(|&b| b == b'\n');
                assert_eq!(rfind_byte(&buf, b'\n'), want, "len {len} at {at}");
            }
        }
        assert_eq!(find_byte(&[0u8; 17], 0), Some(0));
        assert_eq!(rfind_byte(&[0u8; 17], 0), Some(16));
        assert_eq!(rfind_byte(&[0xffu8; 9], 0xff), Some(8));
        assert_eq!(rfind_byte(&[1u8; 17], 0), None);
        assert_eq!(find_byte(&[0xffu8; 17], 0xff), Some(0));
        assert_eq!(find_byte(&[1u8; 17], 0), None);
    }

    #[test]
    fn display() {
        assert_eq!(
            ParseError::Malformed("cpu.max").to_string(),
            "malformed cpu.max"
        );
        assert_eq!(ParseError::Overflow.to_string(), "number out of range");
    }
}
