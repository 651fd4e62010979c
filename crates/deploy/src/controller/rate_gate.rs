//! Remembers registries whose rate limit is nearly spent, across passes, so a pass stops asking
//! them until their window ends (Docker Hub's pull quota).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Error, Result};

/// What a registry last said: requests remaining, when, and its window.
type Observed = (u64, std::time::Instant, Duration);

/// Remembers registries whose rate limit is nearly spent, across passes.
#[derive(Debug, Clone, Default)]
pub struct RateGate {
    floor: Option<u64>,
    seen: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Observed>>>,
}

impl RateGate {
    /// A gate that closes a registry when fewer than `floor` requests remain (`None`: never).
    pub fn new(floor: Option<u64>) -> Self {
        RateGate {
            floor,
            seen: Default::default(),
        }
    }

    /// [`Error::RateGated`] while `registry` is below the floor and its window has not passed.
    pub fn check(&self, registry: &str) -> Result<()> {
        let Some(floor) = self.floor else {
            return Ok(());
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((remaining, at, window)) = seen.get(registry).copied() {
            if at.elapsed() >= window {
                seen.remove(registry);
            } else if remaining < floor {
                return Err(Error::RateGated {
                    registry: registry.to_string(),
                    remaining,
                    floor,
                    wait: window.saturating_sub(at.elapsed()),
                });
            }
        }
        Ok(())
    }

    /// Record what a registry said.
    pub fn observe(&self, registry: &str, rate: Option<&ferry_registry::RateLimit>) {
        let Some(r) = rate else { return };
        let Some(remaining) = r.remaining else { return };
        let window = Duration::from_secs(r.window_seconds.unwrap_or(3600));
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(
            registry.to_string(),
            (remaining, std::time::Instant::now(), window),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(remaining: u64, window: u64) -> ferry_registry::RateLimit {
        ferry_registry::RateLimit {
            limit: Some(100),
            remaining: Some(remaining),
            window_seconds: Some(window),
            source: None,
        }
    }

    #[test]
    fn the_rate_gate_closes_below_the_floor_until_the_window_passes() {
        let gate = RateGate::new(Some(10));
        assert!(gate.check("docker.io").is_ok());
        gate.observe("docker.io", Some(&rate(50, 3600)));
        assert!(gate.check("docker.io").is_ok());
        gate.observe("docker.io", Some(&rate(9, 3600)));
        let why = gate.check("docker.io").unwrap_err().to_string();
        assert!(why.contains("below the floor of 10"), "{why}");
        assert!(
            gate.check("ghcr.io").is_ok(),
            "other registries are not affected"
        );
        gate.observe("quay.io", Some(&rate(0, 0)));
        assert!(
            gate.check("quay.io").is_ok(),
            "a window of 0 s has already passed"
        );
        let open = RateGate::new(None);
        open.observe("docker.io", Some(&rate(0, 3600)));
        assert!(open.check("docker.io").is_ok());
    }
}
