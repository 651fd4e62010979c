//! Rate-limit headers (`ratelimit-limit`, `ratelimit-remaining`, `docker-ratelimit-source`) and
//! `Retry-After`.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// What a registry said about its rate limit on one answer.
///
/// Docker Hub sends `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`: the
/// number before `;` is kept, the window in seconds too. Numbers are read from headers, never
/// assumed; counts too large for a `u64` saturate and windows are capped at
/// [`MAX_WINDOW_SECONDS`], so no header value can overflow arithmetic on them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    /// Requests allowed in the window.
    pub limit: Option<u64>,
    /// Requests left in the window.
    pub remaining: Option<u64>,
    /// The window length in seconds (`w=`), when given; at most [`MAX_WINDOW_SECONDS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// `docker-ratelimit-source` (the IP or account counted), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RateLimit {
    /// Read the rate-limit headers; `None` when neither limit nor remaining was sent.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (limit, w1) = get("ratelimit-limit").map(parse_quota).unwrap_or_default();
        let (remaining, w2) = get("ratelimit-remaining")
            .map(parse_quota)
            .unwrap_or_default();
        if limit.is_none() && remaining.is_none() {
            return None;
        }
        Some(RateLimit {
            limit,
            remaining,
            window_seconds: w1.or(w2),
            source: get("docker-ratelimit-source").map(str::to_string),
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        write!(
            f,
            "ratelimit remaining {} of {}",
            n(self.remaining),
            n(self.limit)
        )?;
        if let Some(w) = self.window_seconds {
            write!(f, " per {w}s")?;
        }
        Ok(())
    }
}

/// The longest rate-limit window believed (31 days); a longer `w=` is taken as this, so code
/// that adds a window to a clock reading never overflows.
pub const MAX_WINDOW_SECONDS: u64 = 31 * 86_400;

/// `100;w=21600` → (Some(100), Some(21600)). Counts too large for a `u64` saturate; windows are
/// capped at [`MAX_WINDOW_SECONDS`].
fn parse_quota(v: &str) -> (Option<u64>, Option<u64>) {
    let mut parts = v.split(';').map(str::trim);
    let n = parts.next().and_then(parse_count);
    let w = parts
        .filter_map(|p| p.strip_prefix("w="))
        .find_map(parse_count)
        .map(|w| w.min(MAX_WINDOW_SECONDS));
    (n, w)
}

/// A decimal count; digits beyond what a `u64` holds saturate instead of being dropped.
fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Parse `Retry-After`: delay seconds or an HTTP date (relative to `now`). A number of seconds
/// too large for a `u64` saturates (the server asked for "very long", not for "retry now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Some(secs) = parse_count(value) {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reads_docker_hub_headers() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        h.insert(
            "ratelimit-remaining",
            HeaderValue::from_static("76;w=21600"),
        );
        h.insert(
            "docker-ratelimit-source",
            HeaderValue::from_static("192.0.2.1"),
        );
        let r = RateLimit::from_headers(&h).unwrap();
        assert_eq!(r.limit, Some(100));
        assert_eq!(r.remaining, Some(76));
        assert_eq!(r.window_seconds, Some(21600));
        assert_eq!(r.to_string(), "ratelimit remaining 76 of 100 per 21600s");
        assert!(RateLimit::from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn overflowing_numbers_saturate_and_windows_are_capped() {
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit-limit",
            HeaderValue::from_static("99999999999999999999999;w=99999999999999999999999"),
        );
        h.insert("ratelimit-remaining", HeaderValue::from_static("-1;w=-5"));
        let r = RateLimit::from_headers(&h).unwrap();
        assert_eq!(r.limit, Some(u64::MAX));
        assert_eq!(r.remaining, None);
        assert_eq!(r.window_seconds, Some(MAX_WINDOW_SECONDS));
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-3", now), None);
    }

    proptest! {
        #[test]
        fn quota_parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_quota(&s);
            let _ = parse_retry_after(&s, SystemTime::now());
        }

        #[test]
        fn quota_counts_of_any_length_saturate_and_windows_stay_capped(
            n in "[0-9]{1,45}",
            w in "[0-9]{1,45}",
        ) {
            let (count, window) = parse_quota(&format!("{n};w={w}"));
            let expect = |d: &str| d.parse::<u64>().unwrap_or(u64::MAX);
            prop_assert_eq!(count, Some(expect(&n)));
            prop_assert_eq!(window, Some(expect(&w).min(MAX_WINDOW_SECONDS)));
        }

        #[test]
        fn retry_after_seconds_of_any_length_give_that_delay_saturated(n in "[0-9]{1,45}") {
            let got = parse_retry_after(&n, SystemTime::now()).unwrap();
            prop_assert_eq!(got.as_secs(), n.parse::<u64>().unwrap_or(u64::MAX));
        }

        #[test]
        fn retry_after_dates_give_the_time_left_and_never_a_negative_one(
            base in 0u64..4_000_000_000,
            offset in -1_000_000_000i64..200_000_000_000,
        ) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(base);
            let Some(at) = base.checked_add_signed(offset) else { return Ok(()) };
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
            // httpdate renders years 1970..=9999 only.
            prop_assume!(at < 253_402_300_800);
            let got = parse_retry_after(&httpdate::fmt_http_date(when), now).unwrap();
            prop_assert_eq!(got.as_secs(), at.saturating_sub(base));
        }
    }
}
