#!/usr/bin/env python3
"""Reference values for the Rust `stats` module tests (src/stats/).

Run with the project venv (numpy, scipy, statsmodels):
    /work/main/.cache/venv/bin/python scripts/stats_reference.py
Every number printed here is pinned in a `#[cfg(test)]` block of src/stats/*.rs.
The data sets are small literals so both languages see the same float64 values.
Where SciPy's own method is a float computation of an exact quantity (exact
permutation / Wilcoxon enumerations) the script also derives the exact rational
by brute force, checks SciPy agrees, and prints numerator/denominator.
"""
import itertools
import math
from fractions import Fraction

import numpy as np
from scipy import stats, special
from statsmodels.stats.multitest import multipletests

np.set_printoptions(precision=17)


def plain(value):
    """Python floats/tuples/lists instead of numpy scalars, for readable output."""
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def show(name, value):
    print(f"{name} = {plain(value)!r}")


def section(title):
    print(f"\n# --- {title} ---")


# ---------------------------------------------------------------- normal
section("normal distribution: scipy.special.erfc")
for x in (0.0, 0.1, 0.5, 1.0, 1.4999, 1.5, 1.9999, 2.0, 2.5, 3.0, 5.0, 10.0, 20.0, -0.7):
    show(f"erfc({x})", special.erfc(x))
show("ndtri(0.975)", special.ndtri(0.975))  # also q_0.05 for k = 2 (Nemenyi)

# ---------------------------------------------------------------- descriptives
section("descriptives: t interval")
seeds_accuracy = [0.712, 0.698, 0.705, 0.721, 0.690]
seeds_bpb = [3.41, 3.38, 3.45]
for name, xs in [("accuracy", seeds_accuracy), ("bpb", seeds_bpb)]:
    x = np.array(xs)
    m = x.mean()
    sd = x.std(ddof=1)
    se = stats.sem(x)
    show(f"{name}.mean", m)
    show(f"{name}.sd", sd)
    show(f"{name}.se", se)
    for level in (0.95, 0.90):
        lo, hi = stats.t.interval(level, len(x) - 1, loc=m, scale=se)
        show(f"{name}.t_interval[{level}]", (lo, hi))

# ------------------------------------------------------------- paired data sets
# Differences a - b are given directly (b = 0) so no subtraction rounding enters.
P1 = [0.61, -0.23, 1.42, 0.88, -0.07, 0.35, 1.10, 0.52, -0.41, 0.95]  # no ties, no zeros
P2 = [0.5, -0.5, 1.0, 0.0, 1.5, 2.0, -1.0, 0.5, 2.5, 0.0, 3.0, 1.5]  # zeros and ties, n=12
P3 = [0.3, -0.1, 0.4, 0.2, 0.0, 0.5, -0.2, 0.3, 0.1, 0.6, -0.3, 0.2, 0.4, 0.1, -0.1,
      0.7, 0.2, 0.0, 0.3, -0.4, 0.5, 0.1, 0.2, -0.2, 0.6, 0.3, 0.8, -0.1, 0.4, 0.2]  # n=30 ties
P4 = [round(0.37 * ((i * 17) % 29) - 4.1 + 0.013 * i, 3) for i in range(25)]  # n=25 distinct |d|
P5 = [round(math.sin(1.3 * i) * 2.0 + 0.35, 4) for i in range(60)]  # n=60 distinct |d|
P6 = [round(math.cos(0.7 * i + 0.2) * 1.5 + 0.45, 3) for i in range(22)]  # n=22, MC permutation
for name, d in [("P4", P4), ("P5", P5), ("P6", P6)]:
    absd = [abs(v) for v in d]
    assert len(set(absd)) == len(absd) and 0.0 not in absd, name
    show(name, d)


# --------------------------------------------------------- permutation (sign flip)
def exact_sign_flip_count(d):
    """Number of sign vectors s with |sum s_i d_i| >= |sum d_i| (relative tol 1e-12)."""
    obs = abs(math.fsum(d))
    tol = 1e-12 * math.fsum(abs(v) for v in d)
    count = 0
    for signs in itertools.product((1.0, -1.0), repeat=len(d)):
        if abs(math.fsum(s * v for s, v in zip(signs, d))) >= obs - tol:
            count += 1
    return count


def mean_stat(x, axis=-1):
    return np.mean(x, axis=axis)


section("sign-flip permutation test (exact)")
for name, d in [("P1", P1), ("P2", P2)]:
    count = exact_sign_flip_count(d)
    n = len(d)
    sp = stats.permutation_test((np.array(d),), mean_stat, permutation_type="samples",
                                alternative="two-sided", n_resamples=np.inf).pvalue
    assert Fraction(sp).limit_denominator(2 ** n) == Fraction(count, 2 ** n), (name, sp, count)
    show(f"{name}.perm_exact_count_over_2^{n}", count)
    show(f"{name}.perm_scipy", sp)

section("sign-flip permutation test (n=22, exact p for the Monte-Carlo check)")
d6 = np.array(P6)
obs6 = abs(d6.sum())
tol6 = 1e-12 * np.abs(d6).sum()
count6 = 0
signs_low = np.array(list(itertools.product((1.0, -1.0), repeat=11)))
low = signs_low @ d6[:11]
high = signs_low @ d6[11:]
for h in high:
    count6 += int(np.count_nonzero(np.abs(low + h) >= obs6 - tol6))
show("P6.perm_exact_count_over_2^22", count6)
show("P6.perm_exact_p", count6 / 2 ** 22)


# ---------------------------------------------------------------- Wilcoxon
def wilcoxon_exact_fraction(d):
    """Two-sided exact p as a Fraction: 2*min(P(W+>=w), P(W+<=w)), no ties/zeros."""
    n = len(d)
    ranks = stats.rankdata(np.abs(d))
    w = sum(r for r, v in zip(ranks, d) if v > 0)
    counts = [1]  # polynomial prod (1 + x^r)
    for r in range(1, n + 1):
        new = counts + [0] * r
        for s, c in enumerate(counts):
            new[s + r] += c
        counts = new
    total = 2 ** n
    w = int(round(w))
    upper = sum(counts[w:])
    lower = sum(counts[: w + 1])
    return min(Fraction(1), 2 * Fraction(min(upper, lower), total)), w


def wilcoxon_conditional_fraction(d):
    """Exact conditional p by enumerating signs of the nonzero |d| average ranks."""
    nz = [v for v in d if v != 0.0]
    ranks2 = [int(round(2 * r)) for r in stats.rankdata(np.abs(nz))]
    w2 = sum(r for r, v in zip(ranks2, nz) if v > 0)
    ge = le = 0
    for signs in itertools.product((0, 1), repeat=len(nz)):
        s = sum(r for r, take in zip(ranks2, signs) if take)
        ge += s >= w2
        le += s <= w2
    total = 2 ** len(nz)
    return min(Fraction(1), 2 * Fraction(min(ge, le), total)), Fraction(w2, 2)


section("Wilcoxon signed-rank")
for name, d in [("P1", P1), ("P4", P4)]:
    res = stats.wilcoxon(d)
    frac, w = wilcoxon_exact_fraction(d)
    assert Fraction(float(res.pvalue)) == frac, (name, res.pvalue, frac)
    n = len(d)
    show(f"{name}.wilcoxon_statistic", res.statistic)
    show(f"{name}.wilcoxon_w_plus", w)
    show(f"{name}.wilcoxon_p_exact", (frac.numerator, frac.denominator, float(frac)))
    show(f"{name}.rank_biserial", (2 * w - n * (n + 1) / 2) / (n * (n + 1) / 2))

d = P2
res = stats.wilcoxon(d)
frac, w = wilcoxon_conditional_fraction(d)
assert abs(float(res.pvalue) - float(frac)) < 1e-15, (res.pvalue, frac)
show("P2.wilcoxon_statistic", res.statistic)
show("P2.wilcoxon_w_plus", float(w))
show("P2.wilcoxon_p_conditional", (frac.numerator, frac.denominator, float(frac)))
nz = [v for v in d if v != 0.0]
m = len(nz)
show("P2.rank_biserial", (2 * float(w) - m * (m + 1) / 2) / (m * (m + 1) / 2))

for name, d in [("P3", P3), ("P5", P5)]:
    for corr in (False, True):
        res = stats.wilcoxon(d, correction=corr, method="auto")
        show(f"{name}.wilcoxon[correction={corr}]", (res.statistic, res.pvalue))
    res = stats.wilcoxon(d, method="asymptotic")
    show(f"{name}.wilcoxon_z", res.zstatistic)

# ---------------------------------------------------------------- effect sizes
section("effect sizes")
for name, d in [("P1", P1), ("P3", P3)]:
    x = np.array(d)
    dz = x.mean() / x.std(ddof=1)
    df = len(x) - 1
    j = special.gamma(df / 2) / (math.sqrt(df / 2) * special.gamma((df - 1) / 2))
    show(f"{name}.cohens_dz", dz)
    show(f"{name}.hedges_j", j)
    show(f"{name}.hedges_gz", j * dz)
    show(f"{name}.t_interval[0.95]", stats.t.interval(0.95, df, loc=x.mean(), scale=stats.sem(x)))

# ---------------------------------------------------------------- bootstrap BCa
section("bootstrap BCa from a fixed replicate distribution (data P1)")
B = 200
reps = []
for i in range(B):
    u = (((i * 37) % B) + 0.5) / B
    reps.append(0.5 + 0.3 * (u - 0.5) + 0.2 * u * u * u)
reps = np.array(reps)


class Prior:
    bootstrap_distribution = reps


for level in (0.95, 0.90):
    for method in ("BCa", "percentile"):
        ci = stats.bootstrap((np.array(P1),), mean_stat, n_resamples=0, method=method,
                             confidence_level=level, bootstrap_result=Prior()).confidence_interval
        show(f"P1.bootstrap_{method}[{level}]", (ci.low, ci.high))
x = np.array(P1)
show("P1.bca_acceleration", np.sum((x - x.mean()) ** 3) / (6 * np.sum((x - x.mean()) ** 2) ** 1.5))

# ---------------------------------------------------------------- Friedman
section("Friedman")
F1 = [  # 6 blocks (evaluation sets) x 4 treatments (calibration languages), with ties
    [3.1, 2.9, 3.4, 3.0],
    [2.5, 2.5, 2.8, 2.6],
    [4.0, 3.7, 4.1, 3.7],
    [1.9, 1.8, 2.2, 2.0],
    [3.3, 3.2, 3.3, 3.5],
    [2.7, 2.4, 3.0, 2.6],
]
F2 = [  # 10 blocks x 5 treatments, no ties
    [0.61, 0.58, 0.66, 0.60, 0.55],
    [0.72, 0.70, 0.75, 0.69, 0.66],
    [0.55, 0.57, 0.59, 0.54, 0.50],
    [0.81, 0.77, 0.84, 0.78, 0.76],
    [0.47, 0.49, 0.52, 0.46, 0.44],
    [0.66, 0.63, 0.68, 0.65, 0.61],
    [0.59, 0.60, 0.64, 0.56, 0.57],
    [0.70, 0.68, 0.71, 0.67, 0.62],
    [0.52, 0.50, 0.58, 0.53, 0.49],
    [0.77, 0.74, 0.79, 0.75, 0.72],
]
for name, rows in [("F1", F1), ("F2", F2)]:
    arr = np.array(rows)
    res = stats.friedmanchisquare(*arr.T)
    ranks = np.apply_along_axis(stats.rankdata, 1, arr)  # rank 1 = lowest value
    show(f"{name}.friedman", (res.statistic, res.pvalue))
    show(f"{name}.average_ranks_lower_is_better", tuple(ranks.mean(axis=0)))
    k = arr.shape[1]
    N = arr.shape[0]
    for alpha in (0.05, 0.10):
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
        show(f"{name}.nemenyi_cd[{alpha}]", q * math.sqrt(k * (k + 1) / (6 * N)))

# ---------------------------------------------------------------- studentized range
section("studentized range, infinite df: q_alpha = ppf(1-alpha, k, inf)/sqrt(2)")
for alpha in (0.05, 0.10):
    table = [stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2) for k in range(2, 21)]
    show(f"nemenyi_q[{alpha}] k=2..20", table)
for k, q in [(3, 3.0), (5, 4.2), (10, 2.5), (20, 5.0)]:
    show(f"ptukey_cdf(q={q}, k={k}, inf)", stats.studentized_range.cdf(q, k, np.inf))

# ---------------------------------------------------------------- multiple comparisons
section("Holm and Benjamini-Hochberg (statsmodels.multipletests)")
pv = [0.01, 0.04, 0.03, 0.005, 0.20, 0.04, 0.5]
for method in ("holm", "fdr_bh"):
    reject, adj, _, _ = multipletests(pv, alpha=0.05, method=method)
    show(f"{method}.adjusted", tuple(adj))
    show(f"{method}.reject", tuple(bool(r) for r in reject))
