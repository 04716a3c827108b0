//! Retry delays: exponential backoff (base × 2^(attempt-1), capped) plus random jitter, so
//! jobs that failed together (a mail server that was down) do not all come back at once.
//! Pure arithmetic with the random source passed in; it must never sleep or read a clock.

use rand::Rng;

use super::JobsError;

/// How long a failed job waits before its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base_ms: u64,
    /// No delay (before jitter) exceeds this.
    pub cap_ms: u64,
    /// Up to this share of the delay is added at random (0..=100).
    pub jitter_percent: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 2_000,
            cap_ms: 3_600_000,
            jitter_percent: 25,
        }
    }
}

impl Backoff {
    pub fn validate(&self) -> Result<(), JobsError> {
        if self.base_ms == 0 || self.base_ms > self.cap_ms || self.cap_ms > 7 * 86_400_000 {
            return Err(JobsError::Invalid(format!(
                "backoff: need 0 < base_ms ({}) <= cap_ms ({}) <= 7 days",
                self.base_ms, self.cap_ms
            )));
        }
        if self.jitter_percent > 100 {
            return Err(JobsError::Invalid(format!(
                "backoff: jitter_percent is {}; use 0 to 100",
                self.jitter_percent
            )));
        }
        Ok(())
    }

    /// The delay before jitter after failed attempt number `attempt` (1-based).
    pub fn base_delay_ms(&self, attempt: i32) -> u64 {
        let doublings = u32::try_from(attempt.max(1) - 1).unwrap_or(0).min(63);
        self.base_ms.saturating_mul(1u64 << doublings).min(self.cap_ms)
    }

    /// The largest jitter added to `delay_ms`.
    pub fn max_jitter_ms(&self, delay_ms: u64) -> u64 {
        delay_ms.saturating_mul(u64::from(self.jitter_percent.min(100))) / 100
    }

    /// The delay after failed attempt `attempt`: the base delay plus up to `jitter_percent` of it.
    pub fn delay_ms(&self, attempt: i32, rng: &mut impl Rng) -> u64 {
        let delay = self.base_delay_ms(attempt);
        let jitter = match self.max_jitter_ms(delay) {
            0 => 0,
            max => rng.gen_range(0..=max),
        };
        delay.saturating_add(jitter)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::Backoff;

    #[test]
    fn doubles_from_the_base_until_the_cap() {
        let b = Backoff {
            base_ms: 1_000,
            cap_ms: 10_000,
            jitter_percent: 0,
        };
        let delays: Vec<u64> = (1..=6).map(|a| b.base_delay_ms(a)).collect();
        assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(
            b.base_delay_ms(1_000),
            10_000,
            "huge attempt numbers do not overflow"
        );
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = Backoff {
            jitter_percent: 150,
            ..Backoff::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("jitter_percent"));
        assert!(Backoff::default().validate().is_ok());
    }

    proptest! {
        #[test]
        fn delay_is_within_jitter_bounds_and_grows(
            base_ms in 1u64..100_000,
            cap_factor in 1u64..10_000,
            jitter_percent in 0u32..=100,
            attempt in 1i32..100,
            seed in any::<u64>(),
        ) {
            let b = Backoff { base_ms, cap_ms: base_ms * cap_factor, jitter_percent };
            let mut rng = StdRng::seed_from_u64(seed);
            let base = b.base_delay_ms(attempt);
            let d = b.delay_ms(attempt, &mut rng);
            prop_assert!(d >= base && d <= base + base * u64::from(jitter_percent) / 100);
            prop_assert!(base <= b.cap_ms);
            prop_assert!(b.base_delay_ms(attempt + 1) >= base);
        }
    }
}
