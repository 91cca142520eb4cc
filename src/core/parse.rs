// SPDX-License-Identifier: GPL-2.0

//! Strict parsing of sysfs knob writes.
//!
//! A knob accepts exactly one value: decimal digits, or one of a fixed set of
//! names, optionally followed by the single `\n` that `echo` adds. Anything
//! else (empty input, signs, spaces, hex, trailing garbage, an embedded NUL,
//! overflow, a value out of range) is [`Invalid`], which the sysfs layer
//! turns into `-EINVAL` without touching the knob.

/// A write that does not parse or is out of range.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

/// `buf` without the one trailing newline `echo` adds.
fn strip_newline(buf: &[u8]) -> &[u8] {
    buf.strip_suffix(b"\n").unwrap_or(buf)
}

/// Parses a decimal number in `min..=max`.
pub fn parse_u64(buf: &[u8], min: u64, max: u64) -> Result<u64, Invalid> {
    let digits = strip_newline(buf);
    if digits.is_empty() || digits.len() > 20 {
        return Err(Invalid);
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(Invalid);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(Invalid)?;
    }
    if v < min || v > max {
        return Err(Invalid);
    }
    Ok(v)
}

/// Parses one of `names`, returning its index.
pub fn parse_name(buf: &[u8], names: &[&str]) -> Result<usize, Invalid> {
    let word = strip_newline(buf);
    names
        .iter()
        .position(|n| n.as_bytes() == word)
        .ok_or(Invalid)
}
