//! Rate limits on sign-in, sign-up and password reset, per client IP and per account (email).
//! Fixed windows counted in memory, per process: cheap enough to sit in front of argon2, and
//! bounded (at most `max_tracked_keys` counters; when full, expired windows are dropped and, if
//! that is not enough, the request is refused — a flood cannot grow memory or open the gate).
//! Several api processes each count on their own, so the effective limit is per process; the
//! lockout counter in `users` is the cross-process backstop per account. Keys are hashed so
//! no email or IP sits in this map in the clear.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off only for benchmarks (`ringledger-bench auth`); never in production.
    pub enabled: bool,
    pub signin_per_ip_per_minute: u32,
    pub signin_per_account_per_minute: u32,
    pub signup_per_ip_per_hour: u32,
    /// Sign-ups naming one email (each sends that address a mail).
    pub signup_per_account_per_hour: u32,
    pub reset_per_ip_per_hour: u32,
    pub reset_per_account_per_hour: u32,
    pub max_tracked_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            signin_per_ip_per_minute: 30,
            signin_per_account_per_minute: 10,
            signup_per_ip_per_hour: 20,
            signup_per_account_per_hour: 5,
            reset_per_ip_per_hour: 20,
            reset_per_account_per_hour: 5,
            max_tracked_keys: 100_000,
        }
    }
}

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    SignInIp,
    SignInAccount,
    SignUpIp,
    SignUpAccount,
    ResetIp,
    ResetAccount,
}

struct Window {
    started: Instant,
    count: u32,
    length: Duration,
}

pub struct RateLimiter {
    config: RateLimitConfig,
    windows: Mutex<HashMap<(Action, [u8; 32]), Window>>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> RateLimiter {
        RateLimiter {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, action: Action) -> (u32, Duration) {
        let c = &self.config;
        let minute = Duration::from_secs(60);
        let hour = Duration::from_secs(3_600);
        match action {
            Action::SignInIp => (c.signin_per_ip_per_minute, minute),
            Action::SignInAccount => (c.signin_per_account_per_minute, minute),
            Action::SignUpIp => (c.signup_per_ip_per_hour, hour),
            Action::SignUpAccount => (c.signup_per_account_per_hour, hour),
            Action::ResetIp => (c.reset_per_ip_per_hour, hour),
            Action::ResetAccount => (c.reset_per_account_per_hour, hour),
        }
    }

    /// Counts one attempt; false when `key` is over its limit for `action`.
    pub fn allow(&self, action: Action, key: &str) -> bool {
        if !self.config.enabled {
            return true;
        }
        let (max, length) = self.limit(action);
        let digest: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(key.as_bytes()).into()
        };
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() >= self.config.max_tracked_keys && !windows.contains_key(&(action, digest)) {
            windows.retain(|_, w| now.duration_since(w.started) < w.length);
            if windows.len() >= self.config.max_tracked_keys {
                return false;
            }
        }
        let window = windows.entry((action, digest)).or_insert(Window {
            started: now,
            count: 0,
            length,
        });
        if now.duration_since(window.started) >= window.length {
            window.started = now;
            window.count = 0;
        }
        window.count = window.count.saturating_add(1);
        window.count <= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_stays_bounded() {
        let limiter = RateLimiter::new(RateLimitConfig {
            signin_per_ip_per_minute: 2,
            max_tracked_keys: 3,
            ..RateLimitConfig::default()
        });
        assert!(limiter.allow(Action::SignInIp, "1.2.3.4"));
        assert!(limiter.allow(Action::SignInIp, "1.2.3.4"));
        assert!(!limiter.allow(Action::SignInIp, "1.2.3.4"));
        assert!(limiter.allow(Action::SignInIp, "5.6.7.8"));
        assert!(limiter.allow(Action::SignInIp, "9.9.9.9"));
        // Full, nothing expired: a new key is refused rather than growing the map.
        assert!(!limiter.allow(Action::SignInIp, "10.0.0.1"));
        let off = RateLimiter::new(RateLimitConfig {
            enabled: false,
            signin_per_ip_per_minute: 0,
            ..RateLimitConfig::default()
        });
        assert!(off.allow(Action::SignInIp, "1.2.3.4"));
    }
}
