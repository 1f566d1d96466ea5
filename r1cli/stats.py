"""The statistics behind `r1 eval` and `r1 report`: the unbiased pass@k estimator and bootstrap
confidence intervals over prompts.

    pass_at_k(n=4, c=1, k=2)                      # 0.5: 1 - C(3, 2) / C(4, 2)
    bootstrap_ci(per_prompt)                      # (low, high): 95% percentile CI of the mean over prompts
    paired_bootstrap_ci(per_prompt_a, per_prompt_b)   # the same for mean(a) - mean(b), prompts paired

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1): given n
samples of a prompt of which c are correct, the chance that at least one of k samples drawn
without replacement is correct, 1 - C(n-c, k) / C(n, k), averaged over prompts. Unlike 1 - (1 - c/n)^k
it is unbiased for every k <= n.

The bootstrap resamples prompts with replacement (the prompt is the unit: samples of one prompt are
not independent), `resamples` times with a fixed seed, so a report is the same on every run; the
interval is the 2.5th and 97.5th percentiles of the resampled statistic. A statistic is a ratio of
per-prompt sums, sum(numerators) / sum(denominators), so that a rate over samples (numerator: the
prompt's consistent samples, denominator: its samples) and a mean over prompts (denominator 1) are
both exactly the point estimate on the full set. numpy, not scipy.stats.bootstrap: scipy is not a
dependency, and the ratio statistic with a paired resample is a few lines here.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al.'s unbiased pass@k of one prompt: n samples, c correct, k <= n drawn.

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 2), pass_at_k(4, 0, 4), pass_at_k(4, 3, 2)
    (0.25, 0.5, 0.0, 1.0)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


Pairs = Sequence[tuple[float, float]]  # per prompt: (numerator, denominator)


def _ratio(pairs: Pairs) -> float | None:
    den = sum(d for _, d in pairs)
    return sum(x for x, _ in pairs) / den if den else None


def _resampled(pairs_list: list[Pairs], resamples: int, seed: int):
    """Each statistic (ratio of sums) over the same `resamples` resamples of the prompts: shape (len(pairs_list), resamples)."""
    import numpy as np

    n = len(pairs_list[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    out = []
    for pairs in pairs_list:
        arr = np.asarray(pairs, dtype=float).reshape(n, 2)
        num, den = arr[idx, 0].sum(axis=1), arr[idx, 1].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(num / den)
    return np.stack(out)


def _percentiles(values, level: float) -> tuple[float, float]:
    import numpy as np

    values = values[np.isfinite(values)]
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_ci(pairs: Pairs, *, resamples: int = RESAMPLES, seed: int = SEED,
                 level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile CI of sum(numerators) / sum(denominators) over prompts resampled with replacement;
    a bare list of per-prompt values is a mean over prompts. None when there is no prompt."""
    pairs = _as_pairs(pairs)
    if not pairs or _ratio(pairs) is None:
        return None
    return _percentiles(_resampled([pairs], resamples, seed)[0], level)


def paired_bootstrap_ci(a: Pairs, b: Pairs, *, resamples: int = RESAMPLES, seed: int = SEED,
                        level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile CI of stat(a) - stat(b), where a[i] and b[i] are the same prompt (resampled together,
    which removes the prompts' shared difficulty from the spread). None when there is no prompt."""
    a, b = _as_pairs(a), _as_pairs(b)
    if len(a) != len(b):
        raise ValueError(f"a paired bootstrap needs the same prompts on both sides, got {len(a)} and {len(b)}")
    if not a or _ratio(a) is None or _ratio(b) is None:
        return None
    sa, sb = _resampled([a, b], resamples, seed)
    return _percentiles(sa - sb, level)


def ratio(pairs: Pairs) -> float | None:
    """The point estimate: sum(numerators) / sum(denominators) (a plain mean for bare values)."""
    return _ratio(_as_pairs(pairs))


def _as_pairs(values) -> list[tuple[float, float]]:
    return [tuple(v) if isinstance(v, (tuple, list)) else (float(v), 1.0) for v in values]
