//! Verification statistics over genuine (same person) and impostor scores: ROC, AUC, EER,
//! TAR at a FAR, and k-fold accuracy with the threshold chosen on the other folds.

/// How many of `scores` are at or above `t`.
pub fn count_at_or_above(sorted_asc: &[f32], t: f32) -> usize {
    sorted_asc.len() - sorted_asc.partition_point(|&s| s < t)
}

/// Fraction of `scores` at or above `t`.
pub fn rate_at_or_above(sorted_asc: &[f32], t: f32) -> f64 {
    if sorted_asc.is_empty() {
        return 0.0;
    }
    count_at_or_above(sorted_asc, t) as f64 / sorted_asc.len() as f64
}

/// The finite scores of `v`, ascending.
pub fn sorted(v: &[f32]) -> Vec<f32> {
    let mut v: Vec<f32> = v.iter().copied().filter(|s| s.is_finite()).collect();
    v.sort_by(f32::total_cmp);
    v
}

/// Area under the ROC curve: the probability that a genuine pair outscores an impostor pair
/// (ties count half), by the rank-sum formula.
pub fn auc(genuine: &[f32], impostor: &[f32]) -> f64 {
    let (g, im) = (sorted(genuine), sorted(impostor));
    if g.is_empty() || im.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0f64;
    for &s in &g {
        let lower = im.partition_point(|&x| x < s);
        let equal = im.partition_point(|&x| x <= s) - lower;
        wins += lower as f64 + 0.5 * equal as f64;
    }
    wins / (g.len() as f64 * im.len() as f64)
}

/// The smallest acceptance threshold whose false-accept rate is at most `far`.
/// Accept means `score >= threshold`.
pub fn threshold_at_far(impostor: &[f32], far: f64) -> f32 {
    let im = sorted(impostor);
    if im.is_empty() {
        return f32::NEG_INFINITY;
    }
    let allowed = (far * im.len() as f64).floor() as usize;
    if allowed >= im.len() {
        return f32::NEG_INFINITY;
    }
    // Reject the (allowed + 1)-th highest impostor and everything below it.
    next_up(im[im.len() - 1 - allowed])
}

/// True-accept rate at the threshold that keeps the false-accept rate at most `far`.
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], far: f64) -> f64 {
    rate_at_or_above(&sorted(genuine), threshold_at_far(impostor, far))
}

/// Equal error rate: where false accepts and false rejects balance (midpoint of the crossing).
pub fn eer(genuine: &[f32], impostor: &[f32]) -> f64 {
    let (g, im) = (sorted(genuine), sorted(impostor));
    if g.is_empty() || im.is_empty() {
        return f64::NAN;
    }
    let mut best = (f64::INFINITY, 0.0);
    for &t in g.iter().chain(&im) {
        let far = rate_at_or_above(&im, t);
        let frr = 1.0 - rate_at_or_above(&g, t);
        let gap = (far - frr).abs();
        if gap < best.0 {
            best = (gap, (far + frr) / 2.0);
        }
    }
    best.1
}

/// ROC points `(threshold, far, tar)` at each distinct score, highest threshold first.
pub fn roc(genuine: &[f32], impostor: &[f32]) -> Vec<(f32, f64, f64)> {
    let (g, im) = (sorted(genuine), sorted(impostor));
    let mut ts: Vec<f32> = g.iter().chain(&im).copied().collect();
    ts.sort_by(|a, b| b.total_cmp(a));
    ts.dedup();
    ts.into_iter().map(|t| (t, rate_at_or_above(&im, t), rate_at_or_above(&g, t))).collect()
}

/// Accuracy of `score >= t` as the same-person decision.
pub fn accuracy_at(pairs: &[(f32, bool)], t: f32) -> f64 {
    if pairs.is_empty() {
        return f64::NAN;
    }
    pairs.iter().filter(|&&(s, same)| (s >= t) == same).count() as f64 / pairs.len() as f64
}

/// The threshold maximising accuracy on `pairs` (midpoint between neighbouring scores).
pub fn best_threshold(pairs: &[(f32, bool)]) -> f32 {
    let mut sorted_pairs: Vec<(f32, bool)> = pairs.iter().copied().filter(|p| p.0.is_finite()).collect();
    sorted_pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    if sorted_pairs.is_empty() {
        return 0.0;
    }
    // Sweep: threshold below index i accepts pairs i.. ; correct = genuine above + impostors below.
    let total_genuine = sorted_pairs.iter().filter(|p| p.1).count();
    let (mut correct, mut best, mut best_t) = (total_genuine, total_genuine, sorted_pairs[0].0 - 1e-3);
    for i in 0..sorted_pairs.len() {
        correct = if sorted_pairs[i].1 { correct - 1 } else { correct + 1 };
        let next = sorted_pairs.get(i + 1).map(|p| p.0);
        if next == Some(sorted_pairs[i].0) {
            continue; // cannot split equal scores
        }
        if correct > best {
            best = correct;
            best_t = next.map_or(sorted_pairs[i].0 + 1e-3, |n| (sorted_pairs[i].0 + n) / 2.0);
        }
    }
    best_t
}

/// Result of a k-fold protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct KFold {
    pub accuracy: f64,
    pub accuracy_std: f64,
    pub fold_accuracy: Vec<f64>,
    pub thresholds: Vec<f32>,
}

/// For each fold, picks the best threshold on the other folds and measures accuracy on it.
/// `pairs` holds `(fold, score, same)`.
pub fn kfold_accuracy(pairs: &[(usize, f32, bool)]) -> KFold {
    let mut folds: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    folds.sort_unstable();
    folds.dedup();
    let (mut fold_accuracy, mut thresholds) = (Vec::new(), Vec::new());
    for &f in &folds {
        let train: Vec<(f32, bool)> = pairs.iter().filter(|p| p.0 != f).map(|p| (p.1, p.2)).collect();
        let test: Vec<(f32, bool)> = pairs.iter().filter(|p| p.0 == f).map(|p| (p.1, p.2)).collect();
        let t = if train.is_empty() { best_threshold(&test) } else { best_threshold(&train) };
        thresholds.push(t);
        fold_accuracy.push(accuracy_at(&test, t));
    }
    let n = fold_accuracy.len().max(1) as f64;
    let accuracy = fold_accuracy.iter().sum::<f64>() / n;
    let var = fold_accuracy.iter().map(|a| (a - accuracy).powi(2)).sum::<f64>() / n;
    KFold { accuracy, accuracy_std: var.sqrt(), fold_accuracy, thresholds }
}

/// The next representable float above `x`.
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_separated_scores() {
        let g = [0.8, 0.9, 0.7];
        let i = [0.1, 0.2, 0.3, -0.1];
        assert_eq!(auc(&g, &i), 1.0);
        assert_eq!(eer(&g, &i), 0.0);
        assert_eq!(tar_at_far(&g, &i, 0.0), 1.0);
        let t = best_threshold(&[(0.8, true), (0.3, false), (0.7, true), (0.2, false)]);
        assert!(t > 0.3 && t < 0.7, "{t}");
    }

    #[test]
    fn auc_counts_ties_half_and_inversions() {
        assert_eq!(auc(&[0.5], &[0.5]), 0.5);
        assert_eq!(auc(&[0.1, 0.9], &[0.5]), 0.5);
        assert_eq!(auc(&[0.1], &[0.5]), 0.0);
    }

    #[test]
    fn far_threshold_allows_exactly_the_budget() {
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let t = threshold_at_far(&impostor, 0.01);
        assert!((rate_at_or_above(&impostor, t) - 0.01).abs() < 1e-9, "{t}");
        assert!(t > 0.989 && t <= 0.9901);
        let genuine = [0.995, 0.5, 0.999, 0.2];
        assert_eq!(tar_at_far(&genuine, &impostor, 0.01), 0.5);
        assert_eq!(threshold_at_far(&impostor, 1.0), f32::NEG_INFINITY);
    }

    #[test]
    fn eer_of_overlapping_uniforms() {
        // genuine uniform on [0.4, 1.4], impostor on [0, 1]: crossing at 0.7, EER 0.3.
        let g: Vec<f32> = (0..1000).map(|i| 0.4 + i as f32 / 1000.0).collect();
        let im: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        assert!((eer(&g, &im) - 0.3).abs() < 0.002, "{}", eer(&g, &im));
    }

    #[test]
    fn kfold_uses_other_folds_for_the_threshold() {
        // Fold 1 is shifted: the threshold learnt on fold 0 misclassifies part of it.
        let mut pairs = Vec::new();
        for k in 0..10 {
            let x = k as f32 / 10.0;
            pairs.push((0usize, 0.6 + x * 0.1, true));
            pairs.push((0, 0.1 + x * 0.1, false));
            pairs.push((1, 0.35 + x * 0.1, true));
            pairs.push((1, 0.0 + x * 0.1, false));
        }
        let r = kfold_accuracy(&pairs);
        assert_eq!(r.fold_accuracy.len(), 2);
        // Fold 0 is judged with the threshold learnt on fold 1 (~0.22): all correct.
        assert_eq!(r.fold_accuracy[0], 1.0);
        // Fold 1 with fold 0's threshold (~0.395) rejects its five lowest genuine pairs.
        assert_eq!(r.fold_accuracy[1], 0.75);
        assert!((r.accuracy - 0.875).abs() < 1e-12 && (r.accuracy_std - 0.125).abs() < 1e-12);
        let roc = roc(&[0.9], &[0.1]);
        assert_eq!(roc.first().map(|p| p.0), Some(0.9));
    }
}
