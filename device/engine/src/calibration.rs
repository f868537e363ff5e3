//! Score calibration: score -> false-accept / false-reject rates measured on labelled pairs,
//! a threshold for a target FAR, and a logistic "same person" probability.
//!
//! Shipped beside the models, one table per embedding variant (`models/calibration-<variant>.toml`),
//! so a device can turn "FAR 1e-3" into a threshold without seeing any data itself.

use super::error::{EngineError, Result};
use super::metrics::{rate_at_or_above, sorted};
use serde::{Deserialize, Serialize};
use std::path::Path;

const GRID_LO: f32 = -0.3;
const GRID_HI: f32 = 1.0;
const GRID_STEP: f32 = 0.0025;

/// A single-pass score whose "same person" probability lies strictly inside this band is too
/// close to call: the probe gets a second look (embedded with its mirror image). The band holds
/// every decision threshold from FAR 1e-2 to 1e-5 (its cosines and its share of pairs per
/// variant are in docs/ACCURACY.md).
pub const SECOND_LOOK_BAND: (f64, f64) = (0.02, 0.98);

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
    /// Grid of scores with the FAR (impostors at or above) and FRR (genuine below) at each.
    pub scores: Vec<f32>,
    pub far: Vec<f64>,
    pub frr: Vec<f64>,
}

impl Calibration {
    pub fn fit(genuine: &[f32], impostor: &[f32], embedding_id: &str, source: &str) -> Calibration {
        let (g, im) = (sorted(genuine), sorted(impostor));
        let steps = ((GRID_HI - GRID_LO) / GRID_STEP).round() as usize;
        let scores: Vec<f32> = (0..=steps).map(|i| GRID_LO + i as f32 * GRID_STEP).collect();
        let far = scores.iter().map(|&t| rate_at_or_above(&im, t)).collect();
        let frr = scores.iter().map(|&t| 1.0 - rate_at_or_above(&g, t)).collect();
        let (logistic_a, logistic_b) = fit_logistic(&g, &im);
        Calibration {
            embedding_id: embedding_id.to_owned(),
            source: source.to_owned(),
            genuine_pairs: g.len(),
            impostor_pairs: im.len(),
            logistic_a,
            logistic_b,
            scores,
            far,
            frr,
        }
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

    /// The lowest grid score whose measured FAR is at most `far`. Below the resolution of the
    /// data (1 / impostor pairs) the answer is the first score no impostor reached.
    pub fn threshold_for_far(&self, far: f64) -> f32 {
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

    /// Whether `score` falls in [`SECOND_LOOK_BAND`].
    pub fn too_close_to_call(&self, score: f32) -> bool {
        let p = self.probability(score);
        p > SECOND_LOOK_BAND.0 && p < SECOND_LOOK_BAND.1
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
    fn second_look_band_surrounds_the_even_odds_score_only() {
        let (genuine, impostor, c) = synthetic(5);
        let even_odds = (-c.logistic_b / c.logistic_a) as f32;
        assert!(c.too_close_to_call(even_odds));
        // The FAR 1e-3 threshold is inside; clear impostors and clear genuine scores are not.
        assert!(c.too_close_to_call(c.threshold_for_far(1e-3)));
        assert!(!c.too_close_to_call(0.05) && !c.too_close_to_call(0.7) && !c.too_close_to_call(-1.0));
        let inside = |v: &[f32]| v.iter().filter(|&&s| c.too_close_to_call(s)).count() as f64 / v.len() as f64;
        assert!(inside(&impostor) < 0.1 && inside(&genuine) < 0.1, "{} {}", inside(&impostor), inside(&genuine));
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Calibration::fit(&[0.6, 0.7, 0.8], &[0.0, 0.1, 0.2, 0.65], "m", "s");
        let back: Calibration = toml::from_str(&c.to_toml()).expect("parse");
        assert_eq!(back, c);
        assert!(c.logistic_a > 0.0);
    }
}
