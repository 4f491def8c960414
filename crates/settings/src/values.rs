//! Typed setting values: durations, sizes, counts and the text forms
//! (scope, strategy, render mode) that read and print as words.
//!
//! Each checks its value where it is read, so a bad one is reported at its
//! place: `file:line:column`, a JSON pointer or the flag.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Durations as text: `500ms`, `30s`, `1m 30s` (humantime).
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// A duration above zero (a zero timeout fails every request).
    pub fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let value = deserialize(d)?;
        if value.is_zero() {
            return Err(serde::de::Error::custom(
                "must be more than zero (e.g. 30s)",
            ));
        }
        Ok(value)
    }

    /// `30s`, `500ms`, `2m`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim())
            .map_err(|e| format!("{text:?} is not a duration (e.g. 500ms, 30s, 2m): {e}"))
    }

    /// [`parse`] that refuses zero.
    pub fn parse_positive(text: &str) -> Result<Duration, String> {
        let d = parse(text)?;
        if d.is_zero() {
            return Err("must be more than zero (e.g. 30s)".to_string());
        }
        Ok(d)
    }
}

/// `Option<Duration>` as text.
pub mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}

/// A size in bytes: `1048576`, `512KiB`, `10MiB`, `1GB`, `64k` (K/M/G
/// alone are binary, like `ls -h`; kB/MB/GB decimal; KiB/MiB/GiB binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let v = value.trim();
        let split = v
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(v.len());
        let (number, unit) = v.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("{value:?} is not a size (e.g. 10MiB, 512KiB, 1048576)"))?;
        let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "k" | "kib" => 1024.0,
            "m" | "mib" => 1024.0 * 1024.0,
            "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} (B, kB, MB, GB, KiB, MiB, GiB)"
                ));
            }
        };
        let bytes = number * factor;
        if !(1.0..=u64::MAX as f64).contains(&bytes) {
            return Err(format!("{value:?} must be at least 1 byte"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl Display for ByteSize {
    /// The largest binary unit that divides the size: `10MiB`, `512KiB`,
    /// `1000`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (factor, unit) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size: bytes or text such as \"10MiB\"")
        })? {
            Raw::Number(0) => Err("must be at least 1 byte".to_string()),
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse(),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

/// A count that must be at least 1 (`concurrency = 0` would crawl
/// nothing, forever).
pub fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

/// A count that must be at least 1 (`u32`).
pub fn at_least_one_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

/// A share between 0 and 1.
pub fn share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let x = f64::deserialize(d)?;
    if !(0.0..=1.0).contains(&x) {
        return Err(serde::de::Error::custom(format!(
            "{x} is not a share between 0 and 1"
        )));
    }
    Ok(x)
}

/// A near-duplicate distance: 0 to 7 bits.
pub fn near_distance<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n > 7 {
        return Err(serde::de::Error::custom(format!(
            "{n} bits: the near-duplicate distance is 0 to 7"
        )));
    }
    Ok(n)
}

/// The command-line form of [`at_least_one`].
pub fn parse_at_least_one(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A value read from and printed as its word (`FromStr` / `Display`):
/// scope, proxy strategy.
pub mod word {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Regular expressions, compiled once to check them.
pub fn regexes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for re in &list {
        regex::Regex::new(re)
            .map_err(|e| serde::de::Error::custom(format!("invalid regex {re:?}: {e}")))?;
    }
    Ok(list)
}

/// Proxy URLs (`http://`, `https://`, `socks5://`, `socks5h://`, or
/// `host:port[:user:pass]`), each checked.
pub fn proxies<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for p in &list {
        trawl_fetch::proxy::ProxySpec::parse(p).map_err(serde::de::Error::custom)?;
    }
    Ok(list)
}

/// Header names and values, each checked as `Name: value`.
pub fn headers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<indexmap::IndexMap<String, String>, D::Error> {
    let map = indexmap::IndexMap::<String, String>::deserialize(d)?;
    for (k, v) in &map {
        trawl_fetch::identity::parse_header_line(&format!("{k}: {v}"))
            .map_err(serde::de::Error::custom)?;
    }
    Ok(map)
}

/// Host patterns (`host`, `host:port`, `*.domain`, `*`) to pool names.
pub fn host_pools<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<indexmap::IndexMap<String, String>, D::Error> {
    let map = indexmap::IndexMap::<String, String>::deserialize(d)?;
    for pattern in map.keys() {
        pattern
            .parse::<trawl_fetch::proxy::HostPattern>()
            .map_err(serde::de::Error::custom)?;
    }
    Ok(map)
}

/// Host patterns, as a pool's `hosts`.
pub fn host_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for pattern in &list {
        pattern
            .parse::<trawl_fetch::proxy::HostPattern>()
            .map_err(serde::de::Error::custom)?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        assert_eq!("10MiB".parse::<ByteSize>(), Ok(ByteSize(10 << 20)));
        assert_eq!("64k".parse::<ByteSize>(), Ok(ByteSize(64 << 10)));
        assert_eq!("1GB".parse::<ByteSize>(), Ok(ByteSize(1_000_000_000)));
        assert_eq!(ByteSize(10 << 20).to_string(), "10MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        assert!("0".parse::<ByteSize>().is_err());
        assert!(
            "12 parsecs"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("unit")
        );
    }
}
