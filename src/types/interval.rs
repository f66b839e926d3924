//! `interval` text and binary forms, as PostgreSQL's `interval_out` (with
//! IntervalStyle `postgres`), `interval_in` and `interval_send` handle them.
//!
//! An interval is months, days and microseconds, kept apart as PostgreSQL
//! keeps them (a month is not 30 days until you compare). In memory it is
//! Arrow's `Interval(MonthDayNano)`; Lance has no interval type, so storage
//! writes it to Lance as a struct of the three fields (`storage::lance_types`).
//! Pure functions.

use crate::error::{Result, TarnError, sqlstate};

/// An interval: months, days, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// `interval_out`: `1 year 2 mons 3 days 04:05:06.5`, `-00:01:30`, `00:00:00`.
pub fn write_text(out: &mut Vec<u8>, iv: Interval) {
    use std::io::Write;
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut Vec<u8>, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let sep = if is_zero { "" } else { " " };
        let plus = if is_before && value > 0 { "+" } else { "" };
        let plural = if value != 1 { "s" } else { "" };
        let _ = write!(out, "{sep}{plus}{value} {unit}{plural}");
        is_before = value < 0;
        is_zero = false;
    };
    part(out, i64::from(iv.months / 12), "year");
    part(out, i64::from(iv.months % 12), "mon");
    part(out, i64::from(iv.days), "day");
    if iv.micros != 0 || is_zero {
        let minus = iv.micros < 0;
        let abs = iv.micros.unsigned_abs();
        let (secs, frac) = (abs / 1_000_000, abs % 1_000_000);
        let sep = if is_zero { "" } else { " " };
        let sign = if minus { "-" } else if is_before { "+" } else { "" };
        let _ = write!(out, "{sep}{sign}{:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
        if frac != 0 {
            let f = format!("{frac:06}");
            out.push(b'.');
            out.extend_from_slice(f.trim_end_matches('0').as_bytes());
        }
    }
}

/// `interval_send`: microseconds, days, months, big-endian.
pub fn write_binary(out: &mut Vec<u8>, iv: Interval) {
    out.extend_from_slice(&iv.micros.to_be_bytes());
    out.extend_from_slice(&iv.days.to_be_bytes());
    out.extend_from_slice(&iv.months.to_be_bytes());
}

/// `interval_recv`.
pub fn parse_binary(bytes: &[u8]) -> Option<Interval> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(Interval {
        micros: i64::from_be_bytes(b[0..8].try_into().ok()?),
        days: i32::from_be_bytes(b[8..12].try_into().ok()?),
        months: i32::from_be_bytes(b[12..16].try_into().ok()?),
    })
}

fn bad(text: &str) -> TarnError {
    TarnError::new(sqlstate::INVALID_DATETIME_FORMAT, format!("invalid input syntax for type interval: \"{text}\""))
}

fn overflow() -> TarnError {
    TarnError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

/// Adds fractional amounts the way `interval_in` does: a fraction of a
/// year becomes months, of a month days (30), of a day time (24 h).
#[derive(Default)]
struct Acc {
    months: f64,
    days: f64,
    micros: f64,
}

impl Acc {
    fn add(&mut self, value: f64, unit: &str) -> Option<()> {
        let (months, days, micros) = match unit {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => (0.0, 0.0, value),
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => (0.0, 0.0, value * 1e3),
            "second" | "seconds" | "s" | "sec" | "secs" => (0.0, 0.0, value * 1e6),
            "minute" | "minutes" | "m" | "min" | "mins" => (0.0, 0.0, value * 6e7),
            "hour" | "hours" | "h" | "hr" | "hrs" => (0.0, 0.0, value * 3.6e9),
            "day" | "days" | "d" => (0.0, value, 0.0),
            "week" | "weeks" | "w" => (0.0, value * 7.0, 0.0),
            "month" | "months" | "mon" | "mons" => (value, 0.0, 0.0),
            "year" | "years" | "y" | "yr" | "yrs" => (value * 12.0, 0.0, 0.0),
            "decade" | "decades" => (value * 120.0, 0.0, 0.0),
            "century" | "centuries" => (value * 1200.0, 0.0, 0.0),
            "millennium" | "millennia" | "millenniums" => (value * 12000.0, 0.0, 0.0),
            _ => return None,
        };
        self.months += months;
        self.days += days;
        self.micros += micros;
        Some(())
    }

    fn finish(self, negate: bool) -> Result<Interval> {
        let sign = if negate { -1.0 } else { 1.0 };
        let months = self.months.trunc();
        let days_total = self.days + (self.months - months) * 30.0;
        let days = days_total.trunc();
        let micros = (self.micros + (days_total - days) * MICROS_PER_DAY).round();
        let fits = |v: f64, max: f64| v.abs() <= max;
        if !fits(months, i32::MAX as f64) || !fits(days, i32::MAX as f64) || !fits(micros, i64::MAX as f64) {
            return Err(overflow());
        }
        Ok(Interval { months: (sign * months) as i32, days: (sign * days) as i32, micros: (sign * micros) as i64 })
    }
}

/// `interval_in` for PostgreSQL's own forms (`1 day 03:04:05`, `3 mons`,
/// `-1.5 hours`, `@ 1 day ago`, `00:01:30`) and ISO 8601 (`P1Y2M3DT4H5M6.5S`).
pub fn parse_text(text: &str) -> Result<Interval> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(iso) = t.strip_prefix('p') {
        return parse_iso(iso).ok_or_else(|| bad(text));
    }
    let mut acc = Acc::default();
    let mut tokens: Vec<&str> = t.split_whitespace().collect();
    if tokens.first() == Some(&"@") {
        tokens.remove(0);
    }
    let ago = tokens.last() == Some(&"ago");
    if ago {
        tokens.pop();
    }
    if tokens.is_empty() {
        return Err(bad(text));
    }
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        if tok.contains(':') {
            acc.micros += parse_clock(tok).ok_or_else(|| bad(text))?;
            i += 1;
            continue;
        }
        // `1day`, `1 day`, `+1 day`, and a bare number (seconds, as in PostgreSQL).
        let split = tok.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(tok.len());
        let (num, unit) = tok.split_at(split);
        let value: f64 = num.parse().map_err(|_| bad(text))?;
        let unit = if !unit.is_empty() {
            unit
        } else if let Some(next) = tokens.get(i + 1).filter(|n| n.starts_with(|c: char| c.is_ascii_alphabetic())) {
            i += 1;
            next
        } else {
            "second"
        };
        acc.add(value, unit).ok_or_else(|| bad(text))?;
        i += 1;
    }
    acc.finish(ago)
}

/// `[-]h:mm[:ss[.ffffff]]` → microseconds.
fn parse_clock(tok: &str) -> Option<f64> {
    let (neg, body) = match tok.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let h: f64 = parts[0].parse().ok()?;
    let m: f64 = parts[1].parse().ok()?;
    let s: f64 = parts.get(2).map(|s| s.parse()).transpose().ok()?.unwrap_or(0.0);
    if m >= 60.0 || s >= 60.0 || parts[0].contains('.') || parts[1].contains('.') {
        return None;
    }
    let micros = (h * 3600.0 + m * 60.0 + s) * 1e6;
    Some(if neg { -micros } else { micros })
}

fn parse_iso(body: &str) -> Option<Interval> {
    let mut acc = Acc::default();
    let mut in_time = false;
    let mut num = String::new();
    for c in body.chars() {
        match c {
            't' => in_time = true,
            '0'..='9' | '.' | '-' | '+' => num.push(c),
            unit => {
                let v: f64 = num.parse().ok()?;
                num.clear();
                let name = match (unit, in_time) {
                    ('y', false) => "year",
                    ('m', false) => "month",
                    ('w', false) => "week",
                    ('d', false) => "day",
                    ('h', true) => "hour",
                    ('m', true) => "minute",
                    ('s', true) => "second",
                    _ => return None,
                };
                acc.add(v, name)?;
            }
        }
    }
    if !num.is_empty() {
        return None;
    }
    acc.finish(false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(iv: Interval) -> String {
        let mut out = vec![];
        write_text(&mut out, iv);
        String::from_utf8(out).unwrap()
    }

    fn iv(months: i32, days: i32, micros: i64) -> Interval {
        Interval { months, days, micros }
    }

    #[test]
    fn prints_like_interval_out() {
        // SELECT '…'::interval on PostgreSQL 15, IntervalStyle postgres
        assert_eq!(text(iv(0, 0, 0)), "00:00:00");
        assert_eq!(text(iv(0, 1, 3_000_005)), "1 day 00:00:03.000005");
        assert_eq!(text(iv(0, 0, -90_000_000)), "-00:01:30");
        assert_eq!(text(iv(14, 3, 14_706_500_000)), "1 year 2 mons 3 days 04:05:06.5");
        assert_eq!(text(iv(-1, 2, 0)), "-1 mons +2 days");
        assert_eq!(text(iv(0, -1, 3_600_000_000)), "-1 days +01:00:00");
        assert_eq!(text(iv(0, 0, 100 * 3_600_000_000)), "100:00:00");
        assert_eq!(text(iv(12, 0, 0)), "1 year");
    }

    #[test]
    fn parses_what_clients_send() {
        assert_eq!(parse_text("1 day 00:00:03.000005").unwrap(), iv(0, 1, 3_000_005));
        // psycopg's timedelta dump
        assert_eq!(parse_text("1 days 3.000005 seconds").unwrap(), iv(0, 1, 3_000_005));
        assert_eq!(parse_text("-90 seconds").unwrap(), iv(0, 0, -90_000_000));
        assert_eq!(parse_text("-00:01:30").unwrap(), iv(0, 0, -90_000_000));
        assert_eq!(parse_text("1 year 2 mons 3 days 04:05:06.5").unwrap(), iv(14, 3, 14_706_500_000));
        assert_eq!(parse_text("@ 2 hours ago").unwrap(), iv(0, 0, -7_200_000_000));
        assert_eq!(parse_text("1.5 months").unwrap(), iv(1, 15, 0));
        assert_eq!(parse_text("P1Y2M3DT4H5M6.5S").unwrap(), iv(14, 3, 14_706_500_000));
        assert_eq!(parse_text("0").unwrap(), iv(0, 0, 0));
        assert_eq!(parse_text("2 weeks").unwrap(), iv(0, 14, 0));
        for bad in ["", "soon", "1 fortnight", "1:99", "P1X"] {
            assert!(parse_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_round_trips() {
        let v = iv(-3, 7, 123_456_789);
        let mut out = vec![];
        write_binary(&mut out, v);
        assert_eq!(out.len(), 16);
        assert_eq!(parse_binary(&out), Some(v));
        assert_eq!(parse_binary(&out[..15]), None);
    }
}
