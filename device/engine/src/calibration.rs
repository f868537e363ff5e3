//! Score calibration: score -> false-accept / false-reject rates measured on labelled pairs,
//! a threshold for a target FAR, and a logistic "same person" probability.
//!
//! Shipped beside the models, one table per embedding variant (`models/calibration-<variant>.toml`),
//! so a device can turn "FAR 1e-3" into a threshold without seeing any data itself.
//!
//! The FAR column is a promise, so it is built to hold on faces it was not fitted on: at each
//! score it takes, over several photo sources, the highest one-sided 95% upper confidence bound
//! on the share of impostor pairs at or above it, and multiplies by a margin chosen by leaving
//! each source out in turn (`facegate eval calibrate`, docs/FIELD.md).

use super::error::{EngineError, Result};
use super::metrics::{count_at_or_above, rate_at_or_above, sorted};
use serde::{Deserialize, Serialize};
use std::path::Path;

const GRID_LO: f32 = -0.3;
const GRID_HI: f32 = 1.0;
const GRID_STEP: f32 = 0.0025;

/// A single-pass score whose "same person" probability lies strictly inside this band is too
/// close to call: the probe gets a second look (embedded with its mirror image). Used by tables
/// that do not store their band (`second_look`).
pub const SECOND_LOOK_BAND: (f64, f64) = (0.02, 0.98);
/// The stored band reaches this far below the FAR 1e-2 threshold (a one-pass score there can
/// still cross it with the mirror's pass; the logistic band of an LFW-only table did the same)...
pub const BAND_BELOW: f32 = 0.2;
/// ...and this far above the FAR 1e-5 threshold.
pub const BAND_ABOVE: f32 = 0.02;

/// Most impostor scores the logistic fit reads.
const LOGISTIC_SAMPLE: usize = 500_000;

/// Confidence of the upper bound on each source's impostor rate.
pub const CONFIDENCE: f64 = 0.95;

/// One source's scores: every same-person pair and (a sample of) the different-person pairs.
#[derive(Debug, Clone, Default)]
pub struct SourceScores {
    pub name: String,
    pub genuine: Vec<f32>,
    pub impostor: Vec<f32>,
}

/// What a calibration was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Embedding space the scores come from.
    pub embedding_id: String,
    /// Where the pairs came from.
    pub source: String,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// `P(same | s) = 1 / (1 + exp(-(a s + b)))`, fitted with equal class priors.
    pub logistic_a: f64,
    pub logistic_b: f64,
    /// The factor the upper bounds were multiplied by.
    #[serde(default = "one")]
    pub far_margin: f64,
    /// Scores strictly inside are too close to call on one pass (see [`SECOND_LOOK_BAND`]);
    /// absent in tables from before it was stored, which use the logistic band alone.
    #[serde(default)]
    pub second_look: Option<[f32; 2]>,
    #[serde(default)]
    pub sources: Vec<SourceSummary>,
    /// Grid of scores with the promised FAR (impostors at or above) and the FRR (genuine
    /// below, mean over sources) at each.
    pub scores: Vec<f32>,
    pub far: Vec<f64>,
    pub frr: Vec<f64>,
}

/// A threshold and the per-comparison FAR it stands for ([`Calibration::promise`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Promise {
    pub cosine: f32,
    pub far: f64,
    /// False when the rate asked for is below [`Calibration::floor`].
    pub vouched: bool,
}

fn one() -> f64 {
    1.0
}

/// Upper `CONFIDENCE` bound on a rate seen `k` times in `n` trials (Poisson, as the rates that
/// matter are small): the rate whose Poisson count exceeds `k` with probability `CONFIDENCE`.
pub fn upper_bound(k: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let alpha = 1.0 - CONFIDENCE;
    let lambda = if k > 400 {
        // Normal approximation is exact enough this far from zero.
        let z = 1.6448536269514722;
        let k1 = k as f64 + 1.0;
        k1 + z * k1.sqrt()
    } else {
        // P(Poisson(l) <= k), summed term by term; decreasing in l, so bisect for alpha.
        let cdf = |l: f64| {
            let mut term = (-l).exp();
            let mut sum = term;
            for i in 1..=k {
                term *= l / i as f64;
                sum += term;
            }
            sum
        };
        let (mut lo, mut hi) = (0.0f64, k as f64 + 10.0 * (k as f64 + 1.0).sqrt() + 10.0);
        for _ in 0..100 {
            let mid = (lo + hi) / 2.0;
            if cdf(mid) > alpha {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    };
    (lambda / n as f64).min(1.0)
}

/// The per-comparison rate that keeps a stranger's chance of matching any of `templates`
/// templates at `fpir`: `1 - (1 - fpir)^(1/N)`, about `fpir / N`. It treats the comparisons as
/// independent; the frames of one visit are not, so a consensus over frames is not divided in.
pub fn per_comparison_far(fpir: f64, templates: usize) -> f64 {
    -((-fpir).ln_1p() / templates.max(1) as f64).exp_m1()
}

/// The inverse: a stranger's chance of matching any of `templates` at per-comparison `far`.
pub fn fpir(far: f64, templates: usize) -> f64 {
    -(templates.max(1) as f64 * (-far).ln_1p()).exp_m1()
}

fn grid() -> Vec<f32> {
    let steps = ((GRID_HI - GRID_LO) / GRID_STEP).round() as usize;
    (0..=steps).map(|i| GRID_LO + i as f32 * GRID_STEP).collect()
}

impl Calibration {
    /// One source, no margin.
    pub fn fit(genuine: &[f32], impostor: &[f32], embedding_id: &str, source: &str) -> Calibration {
        let one = SourceScores { name: source.to_owned(), genuine: genuine.to_vec(), impostor: impostor.to_vec() };
        Calibration::fit_sources(&[one], 1.0, embedding_id, source)
    }

    /// The FAR promised at each score: `margin` times the highest upper bound among the sources
    /// with an impostor pair at or above it, and never below the bound on all sources pooled
    /// (which is where the data stops vouching: no impostor of any source scores that high).
    pub fn fit_sources(sources: &[SourceScores], margin: f64, embedding_id: &str, description: &str) -> Calibration {
        let sets: Vec<(Vec<f32>, Vec<f32>)> =
            sources.iter().map(|s| (sorted(&s.genuine), sorted(&s.impostor))).collect();
        let scores = grid();
        let pooled_n: usize = sets.iter().map(|(_, im)| im.len()).sum();
        let far = scores
            .iter()
            .map(|&t| {
                let mut worst = 0.0f64;
                let mut pooled_k = 0;
                for (_, im) in &sets {
                    let k = count_at_or_above(im, t);
                    pooled_k += k;
                    if k > 0 {
                        worst = worst.max(upper_bound(k, im.len()));
                    }
                }
                (margin * worst.max(upper_bound(pooled_k, pooled_n))).min(1.0)
            })
            .collect();
        let with_genuine: Vec<&Vec<f32>> = sets.iter().map(|(g, _)| g).filter(|g| !g.is_empty()).collect();
        let frr = scores
            .iter()
            .map(|&t| {
                let n = with_genuine.len().max(1) as f64;
                with_genuine.iter().map(|g| 1.0 - rate_at_or_above(g, t)).sum::<f64>() / n
            })
            .collect();
        let genuine: Vec<f32> = sets.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        let impostor: Vec<f32> = sets.iter().flat_map(|(_, im)| im.iter().copied()).collect();
        // Each class carries half the weight whatever its size, so an even sample of the
        // impostors fits the same curve in a fraction of the time.
        let stride = impostor.len().div_ceil(LOGISTIC_SAMPLE).max(1);
        let sample: Vec<f32> = impostor.iter().step_by(stride).copied().collect();
        let (logistic_a, logistic_b) = fit_logistic(&sorted(&genuine), &sorted(&sample));
        let mut c = Calibration {
            embedding_id: embedding_id.to_owned(),
            source: description.to_owned(),
            genuine_pairs: genuine.len(),
            impostor_pairs: impostor.len(),
            logistic_a,
            logistic_b,
            far_margin: margin,
            second_look: None,
            sources: sources
                .iter()
                .map(|s| SourceSummary {
                    name: s.name.clone(),
                    genuine_pairs: s.genuine.len(),
                    impostor_pairs: s.impostor.len(),
                })
                .collect(),
            scores,
            far,
            frr,
        };
        c.second_look = Some(c.band());
        c
    }

    /// From [`BAND_BELOW`] under the FAR 1e-2 threshold to [`BAND_ABOVE`] over the 1e-5 one:
    /// every decision threshold a door is set to, with room on both sides.
    fn band(&self) -> [f32; 2] {
        [self.threshold_for_far(1e-2) - BAND_BELOW, self.threshold_for_far(1e-5) + BAND_ABOVE]
    }

    /// The threshold for a per-comparison `far`, and whether the table vouches for that rate
    /// (when it does not, the threshold and rate are those of its floor).
    pub fn promise(&self, far: f64) -> Promise {
        let floor = self.floor();
        Promise { cosine: self.threshold_for_far(far), far: far.max(floor), vouched: far >= floor }
    }

    /// The smallest FAR this table vouches for: below it no source has data.
    pub fn floor(&self) -> f64 {
        self.far.iter().copied().fold(1.0, f64::min)
    }

    pub fn load(path: &Path) -> Result<Calibration> {
        let err = |reason: String| EngineError::Manifest { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let c: Calibration = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        if c.scores.is_empty() || c.scores.len() != c.far.len() || c.scores.len() != c.frr.len() {
            return Err(err("calibration table columns differ in length".into()));
        }
        Ok(c)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The lowest grid score whose promised FAR is at most `far`. Below [`Calibration::floor`]
    /// the answer is the first score at the floor (the caller says it cannot promise more).
    pub fn threshold_for_far(&self, far: f64) -> f32 {
        let far = far.max(self.floor());
        self.scores.iter().zip(&self.far).find(|(_, &f)| f <= far).map(|(&s, _)| s).unwrap_or(GRID_HI)
    }

    /// Measured FAR at `score` (step function, conservative between grid points).
    pub fn far_at(&self, score: f32) -> f64 {
        let i = self.scores.partition_point(|&s| s <= score);
        if i == 0 {
            1.0
        } else {
            self.far[i - 1]
        }
    }

    /// Measured FRR at `score`.
    pub fn frr_at(&self, score: f32) -> f64 {
        let i = self.scores.partition_point(|&s| s < score);
        self.frr.get(i).copied().unwrap_or(1.0)
    }

    /// Whether `score` falls in the second-look band.
    pub fn too_close_to_call(&self, score: f32) -> bool {
        match self.second_look {
            Some([lo, hi]) => score > lo && score < hi,
            None => {
                let p = self.probability(score);
                p > SECOND_LOOK_BAND.0 && p < SECOND_LOOK_BAND.1
            }
        }
    }

    /// Calibrated probability that the two faces are the same person (equal priors).
    pub fn probability(&self, score: f32) -> f64 {
        1.0 / (1.0 + (-(self.logistic_a * score as f64 + self.logistic_b)).exp())
    }
}

/// Logistic regression of label on score, each class weighted to half the total, by Newton's
/// method with step halving (two parameters, so the Hessian is 2x2).
fn fit_logistic(genuine: &[f32], impostor: &[f32]) -> (f64, f64) {
    if genuine.is_empty() || impostor.is_empty() {
        return (0.0, 0.0);
    }
    let wg = 0.5 / genuine.len() as f64;
    let wi = 0.5 / impostor.len() as f64;
    let samples =
        || genuine.iter().map(move |&s| (s as f64, 1.0, wg)).chain(impostor.iter().map(move |&s| (s as f64, 0.0, wi)));
    // Weighted log loss; softplus keeps it finite for large margins.
    let loss = |a: f64, b: f64| -> f64 {
        samples()
            .map(|(s, y, w)| {
                let z = a * s + b;
                let softplus = |t: f64| if t > 30.0 { t } else { t.exp().ln_1p() };
                w * if y > 0.5 { softplus(-z) } else { softplus(z) }
            })
            .sum()
    };
    let (mut a, mut b) = (0.0f64, 0.0f64);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (s, y, w) in samples() {
            let p = 1.0 / (1.0 + (-(a * s + b)).exp());
            let h = w * p * (1.0 - p);
            ga += w * (p - y) * s;
            gb += w * (p - y);
            haa += h * s * s;
            hab += h * s;
            hbb += h;
        }
        // A small ridge keeps the step finite when the classes separate perfectly.
        let (haa, hbb) = (haa + 1e-6, hbb + 1e-6);
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        let mut step = 1.0;
        while step > 1e-4 && loss(a - step * da, b - step * db) > current {
            step /= 2.0;
        }
        let (na, nb) = (a - step * da, b - step * db);
        let next = loss(na, nb);
        let converged = (current - next).abs() < 1e-12;
        (a, b, current) = (na, nb, next);
        // Separable data has no finite optimum: stop once the slope is already decisive.
        if converged || a.abs() > 500.0 {
            break;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn gaussian(rng: &mut impl Rng, mean: f32, sd: f32, n: usize) -> Vec<f32> {
        (0..n).map(|_| mean + sd * ((0..12).map(|_| rng.gen::<f32>()).sum::<f32>() - 6.0)).collect()
    }

    /// Face-like score distributions: (genuine, impostor, their calibration).
    fn synthetic(seed: u64) -> (Vec<f32>, Vec<f32>, Calibration) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let genuine = gaussian(&mut rng, 0.7, 0.1, 5000);
        let impostor = gaussian(&mut rng, 0.05, 0.08, 20000);
        let c = Calibration::fit(&genuine, &impostor, "test", "synthetic");
        (genuine, impostor, c)
    }

    #[test]
    fn threshold_meets_the_far_target_and_probability_is_monotone() {
        let (_, impostor, c) = synthetic(3);
        for target in [1e-2, 1e-3] {
            let t = c.threshold_for_far(target);
            let measured = impostor.iter().filter(|&&s| s >= t).count() as f64 / impostor.len() as f64;
            assert!(measured <= target, "FAR {measured} > {target} at {t}");
            assert!(c.far_at(t) <= target);
        }
        assert!(c.threshold_for_far(1e-3) > c.threshold_for_far(1e-2));
        // The even-odds score lies between the class means, in the region where they overlap.
        assert!(c.probability(0.05) < 0.01 && c.probability(0.7) > 0.99);
        let even_odds = -c.logistic_b / c.logistic_a;
        assert!(even_odds > 0.2 && even_odds < 0.5, "{even_odds}");
        assert!(c.probability(0.3) < c.probability(0.31));
        assert!(c.frr_at(0.7) > 0.4 && c.frr_at(0.7) < 0.6);
    }

    #[test]
    fn second_look_band_holds_every_decision_threshold_only() {
        let (genuine, _, c) = synthetic(5);
        for far in [1e-2, 1e-3, 1e-4, 1e-5] {
            assert!(c.too_close_to_call(c.threshold_for_far(far)), "FAR {far}");
        }
        // Clear impostors and clear genuine scores are not too close to call.
        let below = c.threshold_for_far(1e-2) - BAND_BELOW - 0.01;
        assert!(!c.too_close_to_call(below) && !c.too_close_to_call(0.9) && !c.too_close_to_call(-1.0));
        let inside = genuine.iter().filter(|&&s| c.too_close_to_call(s)).count() as f64 / genuine.len() as f64;
        assert!(inside < 0.05, "{inside}");
    }

    #[test]
    fn fpir_and_per_comparison_rates_invert() {
        assert!((per_comparison_far(1e-2, 1) - 1e-2).abs() < 1e-15);
        let f = per_comparison_far(1e-2, 1000);
        assert!((f - 1.005e-5).abs() < 1e-8, "{f}");
        assert!((fpir(f, 1000) - 1e-2).abs() < 1e-12);
        // The arithmetic: 249 templates at FAR 1e-3 let in about 22% of strangers.
        assert!((fpir(1e-3, 249) - 0.2205).abs() < 1e-3);
    }

    #[test]
    fn upper_bound_is_the_poisson_bound() {
        // Zero events: -ln(0.05) / n.
        assert!((upper_bound(0, 1000) - 2.995_732e-3).abs() < 1e-8);
        // One event: 4.7439 / n; ten events: 16.9622 / n (chi-square 0.95 quantiles / 2).
        assert!((upper_bound(1, 1000) - 4.743_865e-3).abs() < 1e-7);
        assert!((upper_bound(10, 1000) - 16.962_2e-3).abs() < 1e-6);
        // Many events: close to the rate, above it.
        let big = upper_bound(10_000, 1_000_000);
        assert!(big > 0.01 && big < 0.0102, "{big}");
    }

    #[test]
    fn several_sources_promise_their_worst_tail() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let calm = SourceScores {
            name: "calm".into(),
            genuine: gaussian(&mut rng, 0.7, 0.1, 5000),
            impostor: gaussian(&mut rng, 0.0, 0.08, 200_000),
        };
        let wild = SourceScores {
            name: "wild".into(),
            genuine: gaussian(&mut rng, 0.6, 0.12, 5000),
            impostor: gaussian(&mut rng, 0.05, 0.1, 200_000),
        };
        let both = Calibration::fit_sources(&[calm.clone(), wild.clone()], 1.0, "m", "two");
        let only_calm = Calibration::fit_sources(&[calm], 1.0, "m", "calm");
        let measured = |t: f32| wild.impostor.iter().filter(|&&s| s >= t).count() as f64 / wild.impostor.len() as f64;
        for target in [1e-2, 1e-3, 1e-4] {
            // Fitted on the calm source alone, the promise breaks on the wild one...
            assert!(measured(only_calm.threshold_for_far(target)) > target, "{target}");
            // ...fitted on both, it holds on each.
            assert!(measured(both.threshold_for_far(target)) <= target, "{target}");
        }
        // A margin raises every threshold; the floor is where no data vouches any more.
        let wary = Calibration::fit_sources(std::slice::from_ref(&wild), 3.0, "m", "wild");
        let plain = Calibration::fit_sources(&[wild], 1.0, "m", "wild");
        assert!(wary.threshold_for_far(1e-3) > plain.threshold_for_far(1e-3));
        assert!((plain.floor() - upper_bound(0, 200_000)).abs() < 1e-12);
        assert_eq!(plain.threshold_for_far(1e-9), plain.threshold_for_far(plain.floor()));
        // The second-look band holds the thresholds from 1e-2 to 1e-5.
        let [lo, hi] = both.second_look.expect("band");
        assert!(lo < both.threshold_for_far(1e-2) && hi > both.threshold_for_far(1e-5));
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Calibration::fit(&[0.6, 0.7, 0.8], &[0.0, 0.1, 0.2, 0.65], "m", "s");
        let back: Calibration = toml::from_str(&c.to_toml()).expect("parse");
        assert_eq!(back, c);
        assert!(c.logistic_a > 0.0);
    }
}
