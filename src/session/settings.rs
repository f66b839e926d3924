//! Session settings (GUCs): the values `SHOW` prints, `SET` changes, and the
//! ones PostgreSQL reports to clients in ParameterStatus messages.

use std::collections::BTreeMap;

use crate::error::{Result, TarnError, sqlstate};

/// The PostgreSQL version Tarn speaks for. Clients parse the leading
/// `major.minor`; the suffix says what they are really talking to.
pub const SERVER_VERSION: &str = concat!("15.10 (Tarn ", env!("CARGO_PKG_VERSION"), ")");

/// (name as clients spell it, default, reported in ParameterStatus)
const KNOWN: &[(&str, &str, bool)] = &[
    ("application_name", "", true),
    ("client_encoding", "UTF8", true),
    ("DateStyle", "ISO, MDY", true),
    ("default_transaction_isolation", "read committed", false),
    ("default_transaction_read_only", "off", true),
    ("extra_float_digits", "1", false),
    ("in_hot_standby", "off", true),
    ("integer_datetimes", "on", true),
    ("IntervalStyle", "postgres", true),
    ("is_superuser", "on", true),
    // Tarn has no JIT; asyncpg turns PostgreSQL's off on connect.
    ("jit", "off", false),
    ("max_identifier_length", "63", false),
    ("search_path", "\"$user\", public", false),
    ("server_encoding", "UTF8", true),
    ("server_version", SERVER_VERSION, true),
    ("server_version_num", "150010", false),
    ("session_authorization", "", true),
    ("standard_conforming_strings", "on", true),
    ("statement_timeout", "0", false),
    ("TimeZone", "UTC", true),
    ("transaction_isolation", "read committed", false),
    ("transaction_read_only", "off", false),
];

/// Settings a client may not change.
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "max_identifier_length",
    "in_hot_standby",
    "is_superuser",
];

#[derive(Debug, Clone)]
pub struct Settings {
    /// Keyed by lower-case name; value keeps the client's spelling of the name.
    values: BTreeMap<String, (&'static str, String)>,
    /// The values at connection (what RESET ALL returns to).
    initial: BTreeMap<String, (&'static str, String)>,
    pub user: String,
    pub database: String,
    /// Changes with every change of a value, and never repeats in this
    /// process (taken from [`NEXT_VERSION`]): what is worked out from the
    /// settings (the current schema) is kept until it moves.
    version: u64,
}

static NEXT_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn canonical(name: &str) -> Option<(&'static str, &'static str, bool)> {
    // Compared in place: this runs for every setting a statement reads
    // (search_path, statement_timeout …), and lower-casing each candidate
    // allocated a string per known setting.
    let aliases = [("time zone", "timezone"), ("time_zone", "timezone"), ("names", "client_encoding"), ("transaction isolation level", "transaction_isolation")];
    let name = aliases.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map_or(name, |(_, setting)| setting);
    KNOWN.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).copied()
}

impl Settings {
    pub fn new(user: &str, database: &str, application_name: &str) -> Settings {
        let mut values = BTreeMap::new();
        for (name, default, _) in KNOWN {
            values.insert(name.to_ascii_lowercase(), (*name, default.to_string()));
        }
        values.insert("application_name".into(), ("application_name", application_name.to_string()));
        values.insert("session_authorization".into(), ("session_authorization", user.to_string()));
        Settings { initial: values.clone(), values, user: user.to_string(), database: database.to_string(), version: next_version() }
    }

    /// `RESET ALL` / `DISCARD ALL`: every setting back to its value at connection.
    pub fn reset_all(&mut self) {
        self.values = self.initial.clone();
        self.version = next_version();
    }

    /// See [`Settings::version`]'s field: equal versions mean equal values.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value of a setting, as SHOW prints it.
    pub fn get(&self, name: &str) -> Result<String> {
        let (n, _, _) = canonical(name).ok_or_else(|| unrecognized(name))?;
        Ok(self.values[&n.to_ascii_lowercase()].1.clone())
    }

    /// `SET name = value` (`None` resets to the default). Returns the
    /// (name, value) to report in ParameterStatus, if PostgreSQL reports it.
    pub fn set(&mut self, name: &str, value: Option<String>) -> Result<Option<(String, String)>> {
        let (n, default, reported) = canonical(name).ok_or_else(|| unrecognized(name))?;
        if READ_ONLY.contains(&n) {
            return Err(TarnError::new("55P02", format!("parameter \"{n}\" cannot be changed")));
        }
        let value = match value {
            None => default.to_string(),
            Some(v) => validate(n, v)?,
        };
        self.values.insert(n.to_ascii_lowercase(), (n, value.clone()));
        self.version = next_version();
        Ok(reported.then(|| (n.to_string(), value)))
    }

    /// Every setting with its value (`SHOW ALL`).
    pub fn all(&self) -> Vec<(String, String)> {
        self.values.values().map(|(n, v)| (n.to_string(), v.clone())).collect()
    }

    /// Settings reported to the client at startup.
    pub fn reported(&self) -> Vec<(String, String)> {
        KNOWN
            .iter()
            .filter(|(_, _, r)| *r)
            .map(|(n, _, _)| (n.to_string(), self.values[&n.to_ascii_lowercase()].1.clone()))
            .collect()
    }

    /// The isolation level a new transaction block starts with.
    pub fn default_isolation(&self) -> crate::storage::txn::Isolation {
        match self.values["default_transaction_isolation"].1.as_str() {
            "repeatable read" => crate::storage::txn::Isolation::RepeatableRead,
            _ => crate::storage::txn::Isolation::ReadCommitted,
        }
    }

    /// `statement_timeout`, if set: a statement running longer is stopped
    /// with 57014.
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        let value = &self.values["statement_timeout"].1;
        if value == "0" {
            // The default, asked at every statement: skip the parse.
            return None;
        }
        let ms = parse_millis(value)?;
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }

    /// The session TimeZone as an offset from UTC, in seconds, when it is a fixed one.
    pub fn utc_offset_secs(&self) -> i32 {
        parse_fixed_zone(&self.values["timezone"].1).unwrap_or(0)
    }

    /// The session TimeZone when it is a named zone (not a fixed offset).
    pub fn named_zone(&self) -> Option<chrono_tz::Tz> {
        let zone = &self.values["timezone"].1;
        if parse_fixed_zone(zone).is_some() { None } else { named_zone(zone) }
    }
}

fn unrecognized(name: &str) -> TarnError {
    TarnError::new(sqlstate::UNDEFINED_OBJECT, format!("unrecognized configuration parameter \"{name}\""))
}

fn invalid(name: &str, value: &str) -> TarnError {
    TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("invalid value for parameter \"{name}\": \"{value}\""))
}

fn validate(name: &str, value: String) -> Result<String> {
    match name {
        "client_encoding" => {
            let v = value.to_ascii_uppercase().replace(['-', '_'], "");
            if v == "UTF8" || v == "UNICODE" { Ok("UTF8".into()) } else { Err(invalid(name, &value)) }
        }
        "TimeZone" => {
            if parse_fixed_zone(&value).is_some() {
                return Ok(value);
            }
            // IANA names, case-insensitively, shown as the database spells them.
            named_zone(&value).map(|tz| tz.name().to_string()).ok_or_else(|| {
                invalid(name, &value).with_hint("Use an IANA zone name such as 'Europe/Oslo', UTC, or a fixed offset such as '+05:30'.")
            })
        }
        "extra_float_digits" => match value.parse::<i32>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(value),
            _ => Err(invalid(name, &value)),
        },
        "standard_conforming_strings" => match value.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => Ok("on".into()),
            _ => Err(invalid(name, &value).with_hint("Tarn supports only standard_conforming_strings = on")),
        },
        "default_transaction_isolation" | "transaction_isolation" => match value.to_ascii_lowercase().as_str() {
            "read committed" | "read uncommitted" => Ok("read committed".into()),
            "repeatable read" | "serializable" => Ok("repeatable read".into()),
            _ => Err(invalid(name, &value)),
        },
        "statement_timeout" => parse_millis(&value).map(format_millis).ok_or_else(|| invalid(name, &value)),
        "DateStyle" => {
            if value.to_ascii_uppercase().contains("ISO") {
                Ok("ISO, MDY".into())
            } else {
                Err(invalid(name, &value).with_hint("Tarn prints dates in ISO style only"))
            }
        }
        "IntervalStyle" => {
            if value.eq_ignore_ascii_case("postgres") { Ok(value) } else { Err(invalid(name, &value)) }
        }
        _ => Ok(value),
    }
}

/// A time setting in PostgreSQL's units (`250`, `250ms`, `5s`, `2min`,
/// `1h`, `1d`; a bare number is milliseconds) → milliseconds.
pub fn parse_millis(value: &str) -> Option<u64> {
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = (number * scale).round();
    (ms >= 0.0 && ms <= i32::MAX as f64).then_some(ms as u64)
}

/// Milliseconds as `SHOW` prints them: in the largest unit that divides
/// them (`5s`, `1min`, `250ms`, `0`).
pub fn format_millis(ms: u64) -> String {
    if ms == 0 {
        return "0".into();
    }
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// `UTC`, `GMT`, `Z`, `+05:30`, `-3`, `UTC+2` → seconds east of UTC.
/// (POSIX-style `UTC+2` means two hours *west*, as in PostgreSQL.)
/// An IANA zone by name, case-insensitively.
pub fn named_zone(zone: &str) -> Option<chrono_tz::Tz> {
    // (chrono-tz's own case-insensitive parse is behind a feature that would
    // rebuild arrow; a scan of the ~600 names is cheap at SET time.)
    let zone = zone.trim();
    zone.parse::<chrono_tz::Tz>().ok().or_else(|| chrono_tz::TZ_VARIANTS.iter().copied().find(|tz| tz.name().eq_ignore_ascii_case(zone)))
}

pub fn parse_fixed_zone(zone: &str) -> Option<i32> {
    let z = zone.trim();
    let upper = z.to_ascii_uppercase();
    if ["UTC", "GMT", "Z", "ETC/UTC", "ZULU", "UCT"].contains(&upper.as_str()) {
        return Some(0);
    }
    let (posix, rest) = match upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")) {
        Some(r) => (true, r.to_string()),
        None => (false, upper.clone()),
    };
    let (sign, digits) = match rest.chars().next()? {
        '+' => (1, &rest[1..]),
        '-' => (-1, &rest[1..]),
        _ => return None,
    };
    let mut parts = digits.split(':');
    let h: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
    if !(0..=15).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    let secs = sign * (h * 3600 + m * 60);
    Some(if posix { -secs } else { secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_and_report() {
        let mut s = Settings::new("tarn", "tarn", "psql");
        assert_eq!(s.get("server_version").unwrap(), SERVER_VERSION);
        assert_eq!(s.get("APPLICATION_NAME").unwrap(), "psql");
        assert_eq!(s.set("application_name", Some("x".into())).unwrap(), Some(("application_name".into(), "x".into())));
        assert_eq!(s.set("extra_float_digits", Some("3".into())).unwrap(), None);
        assert_eq!(s.get("extra_float_digits").unwrap(), "3");
        s.set("extra_float_digits", None).unwrap();
        assert_eq!(s.get("extra_float_digits").unwrap(), "1");
        assert_eq!(s.set("nope", Some("1".into())).unwrap_err().code, sqlstate::UNDEFINED_OBJECT);
        assert_eq!(s.set("server_version", Some("1".into())).unwrap_err().code, "55P02");
    }

    #[test]
    fn statement_timeout_takes_postgres_units() {
        let mut s = Settings::new("u", "d", "");
        assert_eq!(s.statement_timeout(), None);
        for (set, shown, ms) in [("250", "250ms", 250), ("5s", "5s", 5000), ("60s", "1min", 60_000), ("1.5s", "1500ms", 1500)] {
            s.set("statement_timeout", Some(set.into())).unwrap();
            assert_eq!(s.get("statement_timeout").unwrap(), shown);
            assert_eq!(s.statement_timeout(), Some(std::time::Duration::from_millis(ms)));
        }
        s.set("statement_timeout", Some("0".into())).unwrap();
        assert_eq!(s.statement_timeout(), None);
        assert_eq!(s.set("statement_timeout", Some("soon".into())).unwrap_err().code, sqlstate::INVALID_PARAMETER_VALUE);
    }

    #[test]
    fn time_zones() {
        assert_eq!(parse_fixed_zone("UTC"), Some(0));
        assert_eq!(parse_fixed_zone("+05:30"), Some(19800));
        assert_eq!(parse_fixed_zone("-3"), Some(-10800));
        assert_eq!(parse_fixed_zone("UTC+2"), Some(-7200));
        assert_eq!(parse_fixed_zone("Europe/Oslo"), None);
        let mut s = Settings::new("u", "d", "");
        s.set("TimeZone", Some("+02".into())).unwrap();
        assert_eq!(s.utc_offset_secs(), 7200);
        assert!(s.set("timezone", Some("Mars/Base".into())).is_err());
    }
}
