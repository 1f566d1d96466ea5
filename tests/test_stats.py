"""The statistics of r1cli/stats.py: the pass@k estimator against brute force, the bootstrap's CIs."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from r1cli.stats import bootstrap_ci, paired_bootstrap_ci, pass_at_k, ratio


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_pass_at_k_equals_the_share_of_k_subsets_with_a_correct_sample(n):
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(samples, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_pass_at_k_rejects_impossible_counts():
    for n, c, k in ((4, 5, 1), (4, 1, 0), (4, 1, 5), (3, -1, 1)):
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def per_prompt(seed: int, n: int = 150) -> list[float]:
    rng = random.Random(seed)
    return [sum(rng.random() < 0.7 for _ in range(4)) / 4 for _ in range(n)]


def test_bootstrap_is_deterministic_and_holds_the_point_estimate():
    xs = per_prompt(0)
    lo, hi = bootstrap_ci(xs)
    assert bootstrap_ci(xs) == (lo, hi)  # the fixed seed: the same report every time
    assert bootstrap_ci(xs, seed=1) != (lo, hi)
    assert lo < statistics.fmean(xs) < hi and ratio(xs) == pytest.approx(statistics.fmean(xs))
    # about 1.96 standard errors each side
    se = statistics.stdev(xs) / len(xs) ** 0.5
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    # a wider level, a wider interval; more prompts, a narrower one
    lo99, hi99 = bootstrap_ci(xs, level=0.99)
    assert lo99 < lo and hi < hi99
    lo4, hi4 = bootstrap_ci(xs * 4)
    assert hi4 - lo4 < (hi - lo) * 0.7
    assert bootstrap_ci([]) is None and bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)


def test_ratio_statistic_is_the_rate_over_samples():
    # (consistent samples, samples with a verdict) per prompt: the rate is over samples, not prompts
    pairs = [(3, 4), (0, 1), (2, 2), (1, 3)]
    assert ratio(pairs) == pytest.approx(6 / 10)
    lo, hi = bootstrap_ci(pairs)
    assert lo <= 0.6 <= hi and bootstrap_ci([(0, 0)]) is None


def test_paired_bootstrap_of_identical_evals_is_zero_and_of_a_shift_holds_it():
    a = per_prompt(1)
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0)
    # b is a, better by a quarter on a third of the prompts: the difference is clearly positive
    b = [min(1.0, x + 0.25) if i % 3 == 0 else x for i, x in enumerate(a)]
    diff = statistics.fmean(b) - statistics.fmean(a)
    lo, hi = paired_bootstrap_ci(b, a)
    assert 0 < lo < diff < hi
    # pairing removes the prompts' own spread: the unpaired difference of the two CIs is far wider
    (alo, ahi), (blo, bhi) = bootstrap_ci(a), bootstrap_ci(b)
    assert hi - lo < ((ahi - alo) + (bhi - blo)) / 2
    # two unrelated evals of the same quality: the CI of the difference holds 0
    lo, hi = paired_bootstrap_ci(per_prompt(2), per_prompt(3))
    assert lo < 0 < hi
    with pytest.raises(ValueError, match="same prompts"):
        paired_bootstrap_ci(a, a[:-1])
