//! A confidence sequence for the mean of bounded observations, by betting, with or without
//! replacement (Waudby-Smith & Ramdas, "Estimating means of bounded random variables by
//! betting", JRSS-B 2024; "Confidence sequences for sampling without replacement",
//! NeurIPS 2020).
//!
//! **What it assumes.** Every observation lies in known bounds `[a, b]` (an accuracy difference
//! lies in [-1, 1]). Either the observations are independent draws with a common mean μ
//! (`population: None`), or they are the values of a fixed finite population of N units (a test
//! set of N examples) visited in a uniformly random order, and μ is the population's mean
//! (`population: Some(N)`). Nothing else: no variance, no shape, no minimum sample size. Under
//! that assumption the sequence of intervals covers μ at every sample size at once with
//! probability at least 1 - α, so the intervals may be looked at after every observation and
//! sampling may stop whenever the analyst likes.
//!
//! **How.** Rescaled to [0, 1], each candidate mean m on a grid gets two gamblers betting
//! against it: one that the next value lies above the mean of what is left, one below. For
//! sampling without replacement the mean of the not-yet-seen units, if the population mean
//! were m, is μₜ(m) = (N·m − Sₜ₋₁)/(N − t + 1) (Sₜ₋₁ the sum so far); with replacement
//! μₜ(m) = m. The wealth is
//!
//! K⁺ₜ(m) = Πᵢ (1 + λ⁺ᵢ (xᵢ − μᵢ(m))),   K⁻ₜ(m) = Πᵢ (1 − λ⁻ᵢ (xᵢ − μᵢ(m))),
//!
//! and the hedged wealth max(½K⁺, ½K⁻) is a nonnegative supermartingale when m is the truth;
//! by Ville's inequality it exceeds 1/α at any time with probability at most α, so
//! {m : max(½K⁺ₜ, ½K⁻ₜ) ≤ 1/α} is a (1 − α) confidence sequence. A candidate with μₜ(m)
//! outside [0, 1] is impossible (what is left could not average that) and drops out for good.
//!
//! The bets are the paper's predictable plug-in: λₜ = √(2 log(2/α) / (σ̂²ₜ₋₁ · t · log(1 + t)))
//! from the regularised running mean and variance of what came before (a prior of one
//! observation at ½ with variance ¼), capped at ½/μₜ(m) for K⁺ and ½/(1 − μₜ(m)) for K⁻ so that
//! every factor stays at least ½.
//!
//! The reported interval is the hull of the grid points kept, widened by one grid step each
//! way (a candidate between two grid points is not tested, so the step keeps it inside) and,
//! without replacement, intersected with what the data alone allow: the unseen N − t units lie
//! in [0, 1], so μ ∈ [Sₜ/N, (Sₜ + N − t)/N]. At t = N that is the exact population mean,
//! reported as a point.
//!
//! The construction follows the `confseq` package's `betting_cs` with its defaults (hedged,
//! θ = ½, c = ½, no running intersection). That package is not compared against in the tests:
//! its release builds C++ extensions that need Boost and ships no wheel for this Python.

use super::error::StatsError;
use super::interval::ConfidenceInterval;
use super::probability::{Alpha, ConfidenceLevel};

/// The bet cap as a share of the largest bet that keeps wealth nonnegative (the paper's c).
const TRUNCATION: f64 = 0.5;
/// The prior observation that regularises the running mean and variance of the bets.
const PRIOR_MEAN: f64 = 0.5;
const PRIOR_VARIANCE: f64 = 0.25;

/// One candidate mean on the [0, 1] scale and the log-wealth of its two gamblers.
#[derive(Clone, Debug)]
struct Candidate {
    mean: f64,
    log_wealth_above: f64,
    log_wealth_below: f64,
    /// μₜ(m) left [0, 1]: no population with this mean could have produced the data.
    impossible: bool,
}

/// A running betting confidence sequence for a bounded mean (see the module documentation).
#[derive(Clone, Debug)]
pub struct BettingConfidenceSequence {
    lower_bound: f64,
    upper_bound: f64,
    population: Option<usize>,
    alpha: Alpha,
    step: f64,
    candidates: Vec<Candidate>,
    /// Observations so far, their sum on the [0, 1] scale.
    seen: usize,
    sum: f64,
    /// The same sum on the observations' own scale, for the exact mean once all N are seen.
    raw_sum: f64,
    /// Regularised running mean and variance after the observations so far (the bets' inputs).
    running_mean: f64,
    squared_deviations: f64,
    running_variance: f64,
}

impl BettingConfidenceSequence {
    /// A sequence for observations in `[lower_bound, upper_bound]`; `population` is N for
    /// sampling without replacement from N units, `None` for independent draws; the grid has
    /// `grid_steps + 1` candidate means (1,000 resolves a mean to a thousandth of the range).
    pub fn new(lower_bound: f64, upper_bound: f64, population: Option<usize>, alpha: Alpha, grid_steps: usize) -> Result<Self, StatsError> {
        if !(lower_bound.is_finite() && upper_bound.is_finite() && lower_bound < upper_bound) {
            return Err(StatsError::OutOfRange {
                parameter: "observation bounds",
                value: upper_bound - lower_bound,
                allowed: "finite bounds with lower < upper (e.g. [-1, 1] for accuracy differences)",
            });
        }
        if population == Some(0) {
            return Err(StatsError::InvalidCount {
                parameter: "population",
                value: 0,
                requirement: "a finite population needs at least one unit",
            });
        }
        if grid_steps < 2 {
            return Err(StatsError::InvalidCount {
                parameter: "grid steps",
                value: grid_steps,
                requirement: "the grid of candidate means needs at least 2 steps (1,000 is typical)",
            });
        }
        let step = 1.0 / grid_steps as f64;
        let candidates = (0..=grid_steps)
            .map(|i| Candidate { mean: i as f64 * step, log_wealth_above: 0.0, log_wealth_below: 0.0, impossible: false })
            .collect();
        Ok(BettingConfidenceSequence {
            lower_bound,
            upper_bound,
            population,
            alpha,
            step,
            candidates,
            seen: 0,
            sum: 0.0,
            raw_sum: 0.0,
            running_mean: PRIOR_MEAN,
            squared_deviations: PRIOR_VARIANCE,
            running_variance: PRIOR_VARIANCE,
        })
    }

    /// How many observations the sequence has seen.
    pub fn observed(&self) -> usize {
        self.seen
    }

    /// The population size, for sampling without replacement.
    pub fn population(&self) -> Option<usize> {
        self.population
    }

    /// Takes the next observation. Errors (and changes nothing) for a value outside the bounds
    /// or past the end of a finite population.
    pub fn observe(&mut self, value: f64) -> Result<(), StatsError> {
        if !value.is_finite() {
            return Err(StatsError::NonFinite { input: "confidence sequence observation".into(), index: self.seen, value });
        }
        if value < self.lower_bound || value > self.upper_bound {
            return Err(StatsError::OutOfRange {
                parameter: "confidence sequence observation",
                value,
                allowed: "the bounds the sequence was built with",
            });
        }
        if let Some(n) = self.population {
            if self.seen >= n {
                return Err(StatsError::InvalidCount {
                    parameter: "observations",
                    value: self.seen + 1,
                    requirement: "sampling without replacement sees each of the population's units at most once",
                });
            }
        }
        let x = ((value - self.lower_bound) / (self.upper_bound - self.lower_bound)).clamp(0.0, 1.0);
        let t = (self.seen + 1) as f64;
        let level = (2.0 / self.alpha.value()).ln();
        let bet = (2.0 * level / (self.running_variance * t * (1.0 + t).ln())).sqrt();
        let remaining = self.population.map(|n| (n - self.seen) as f64);
        for c in self.candidates.iter_mut().filter(|c| !c.impossible) {
            let mu = match (self.population, remaining) {
                (Some(n), Some(left)) => (n as f64 * c.mean - self.sum) / left,
                _ => c.mean,
            };
            if !(0.0..=1.0).contains(&mu) {
                c.impossible = true;
                continue;
            }
            let above = bet.min(TRUNCATION / mu);
            let below = bet.min(TRUNCATION / (1.0 - mu));
            c.log_wealth_above += (1.0 + above * (x - mu)).ln();
            c.log_wealth_below += (1.0 - below * (x - mu)).ln();
        }
        self.seen += 1;
        self.sum += x;
        self.raw_sum += value;
        // The bets' running estimates, updated after the bet so that each bet is predictable.
        self.running_mean = ((PRIOR_MEAN + self.sum) / (t + 1.0)).min(1.0);
        self.squared_deviations += (x - self.running_mean).powi(2);
        self.running_variance = self.squared_deviations / (t + 1.0);
        Ok(())
    }

    /// Whether candidate `c` has been ruled out at the current time.
    fn rejected(&self, c: &Candidate) -> bool {
        if c.impossible {
            return true;
        }
        let threshold = (1.0 / self.alpha.value()).ln();
        0.5f64.ln() + c.log_wealth_above.max(c.log_wealth_below) > threshold
    }

    /// The interval at the current sample size, on the observations' scale (the whole range
    /// before the first observation).
    pub fn interval(&self) -> ConfidenceInterval {
        let level = ConfidenceLevel::new(1.0 - self.alpha.value()).expect("1 - alpha lies in (0, 1)");
        if let Some(n) = self.population.filter(|&n| n == self.seen) {
            let mean = self.raw_sum / n as f64;
            return ConfidenceInterval::from_endpoints(mean, mean, level);
        }
        let kept: Vec<f64> = self.candidates.iter().filter(|c| !self.rejected(c)).map(|c| c.mean).collect();
        let (mut lower, mut upper) = match (kept.first(), kept.last()) {
            (Some(&l), Some(&u)) => ((l - self.step).max(0.0), (u + self.step).min(1.0)),
            _ => (0.0, 1.0),
        };
        if let Some(n) = self.population {
            let n = n as f64;
            lower = lower.max(self.sum / n);
            upper = upper.min((self.sum + n - self.seen as f64) / n);
            if lower > upper {
                // Only rounding can do this: the data's own bounds always hold the truth.
                let exact = self.sum / n;
                (lower, upper) = (exact.min(lower), exact.max(upper));
            }
        }
        let scale = |y: f64| self.lower_bound + y * (self.upper_bound - self.lower_bound);
        ConfidenceInterval::from_endpoints(scale(lower), scale(upper), level)
    }
}

#[cfg(test)]
mod tests {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::stats::normal::normal_quantile;

    const ALPHA: f64 = 0.05;

    fn sequence(population: Option<usize>, grid: usize) -> BettingConfidenceSequence {
        BettingConfidenceSequence::new(-1.0, 1.0, population, Alpha::new(ALPHA).unwrap(), grid).unwrap()
    }

    /// A population of accuracy differences whose mean is exactly `-margin`: `up` examples the
    /// candidate gets right and the baseline wrong, `down` the other way, the rest ties.
    fn population_at(n: usize, up: usize, down: usize) -> Vec<f64> {
        let mut v = vec![0.0; n];
        v[..up].iter_mut().for_each(|x| *x = 1.0);
        v[up..up + down].iter_mut().for_each(|x| *x = -1.0);
        v
    }

    /// Whether the fixed-n normal interval mean ± z s/√t excludes `truth` at sample size t
    /// (what a test built for one sample size does when it is looked at every time).
    fn normal_interval_excludes(sum: f64, sum_sq: f64, t: usize, truth: f64) -> bool {
        if t < 2 {
            return false;
        }
        let n = t as f64;
        let mean = sum / n;
        let variance = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
        let half = normal_quantile(1.0 - ALPHA / 2.0) * (variance / n).sqrt();
        variance > 0.0 && (truth < mean - half || truth > mean + half)
    }

    /// The gate's situation at the worst point of the null: the population mean sits exactly on
    /// the margin (-0.05), examples come in a random order, and a decision ("below" or "above"
    /// the margin: either is wrong here) is taken after every single example. The sequence
    /// errs in at most alpha of 2,000 runs; a fixed-n normal interval peeked at the same way
    /// errs several times as often.
    #[test]
    fn deciding_after_every_example_keeps_the_error_rate_below_alpha() {
        let (n, margin) = (200, 0.05);
        // 55 ups and 65 downs: a mean of -10/200 = -0.05 exactly.
        let population = population_at(n, 55, 65);
        assert!((population.iter().sum::<f64>() / n as f64 + margin).abs() < 1e-12);
        let runs = 2000;
        let mut rng = ChaCha8Rng::seed_from_u64(28);
        let (mut sequence_errors, mut peeking_errors) = (0, 0);
        for _ in 0..runs {
            let mut order = population.clone();
            order.shuffle(&mut rng);
            let mut cs = sequence(Some(n), 200);
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            let (mut cs_erred, mut peek_erred) = (false, false);
            for (t, &x) in order.iter().enumerate() {
                cs.observe(x).unwrap();
                // At t = N the interval is the population mean itself, -0.05 up to rounding
                // (0.05 has no exact binary form): a 1e-12 slack keeps rounding from deciding.
                let i = cs.interval();
                cs_erred |= i.upper() < -margin - 1e-12 || i.lower() > -margin + 1e-12;
                sum += x;
                sum_sq += x * x;
                peek_erred |= normal_interval_excludes(sum, sum_sq, t + 1, -margin);
            }
            sequence_errors += usize::from(cs_erred);
            peeking_errors += usize::from(peek_erred);
        }
        let (cs_rate, peek_rate) = (sequence_errors as f64 / runs as f64, peeking_errors as f64 / runs as f64);
        assert!(cs_rate <= ALPHA, "confidence sequence error rate {cs_rate}");
        // Peeking at a fixed-n test inflates its error far beyond its nominal 5%.
        assert!(peek_rate > 2.0 * ALPHA, "peeked normal test error rate {peek_rate}");
    }

    /// Independent draws (no finite population): the sequence covers the mean at every one of
    /// 500 sample sizes at once in at least 1 - alpha of 1,000 runs, for a skewed three-point law.
    #[test]
    fn covers_the_mean_at_all_times_for_independent_draws() {
        let (runs, steps) = (1000, 500);
        // P(1) = 0.15, P(0) = 0.65, P(-1) = 0.20: mean -0.05.
        let truth = 0.15 - 0.20;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut misses = 0;
        for _ in 0..runs {
            let mut cs = sequence(None, 200);
            let mut missed = false;
            for _ in 0..steps {
                let u: f64 = rng.gen();
                cs.observe(if u < 0.15 {
                    1.0
                } else if u < 0.35 {
                    -1.0
                } else {
                    0.0
                })
                .unwrap();
                missed |= !cs.interval().contains(truth);
            }
            misses += usize::from(missed);
        }
        let rate = misses as f64 / runs as f64;
        assert!(rate <= ALPHA, "miscoverage at some time in {rate} of runs");
    }

    /// Without replacement the interval always holds the population mean and closes on it
    /// exactly once every unit is seen; it also shrinks: at half the population it is already
    /// narrower than the with-replacement sequence on the same data.
    #[test]
    fn without_replacement_collapses_to_the_population_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let values: Vec<f64> = (0..150).map(|_| rng.gen_range(-1.0..=1.0f64)).collect();
        let truth = values.iter().sum::<f64>() / values.len() as f64;
        let mut wor = sequence(Some(values.len()), 1000);
        let mut wr = sequence(None, 1000);
        for (t, &x) in values.iter().enumerate() {
            wor.observe(x).unwrap();
            wr.observe(x).unwrap();
            assert!(wor.interval().contains(truth), "t = {}: {:?} misses {truth}", t + 1, wor.interval());
            if t + 1 == values.len() / 2 {
                assert!(wor.interval().width() < wr.interval().width());
            }
        }
        let last = wor.interval();
        assert!((last.lower() - truth).abs() < 1e-12 && (last.upper() - truth).abs() < 1e-12, "{last:?} vs {truth}");
        let err = wor.observe(0.0).unwrap_err().to_string();
        assert!(err.contains("at most once"), "{err}");
    }

    #[test]
    fn bad_observations_and_settings_are_refused() {
        let mut cs = sequence(None, 100);
        assert!(cs.observe(1.5).unwrap_err().to_string().contains("bounds"));
        assert!(matches!(cs.observe(f64::NAN), Err(StatsError::NonFinite { .. })));
        assert_eq!(cs.observed(), 0);
        assert_eq!((cs.interval().lower(), cs.interval().upper()), (-1.0, 1.0));
        assert!(BettingConfidenceSequence::new(1.0, -1.0, None, Alpha::FIVE_PERCENT, 100).is_err());
        assert!(BettingConfidenceSequence::new(-1.0, 1.0, Some(0), Alpha::FIVE_PERCENT, 100).is_err());
        assert!(BettingConfidenceSequence::new(-1.0, 1.0, None, Alpha::FIVE_PERCENT, 1).is_err());
    }
}
