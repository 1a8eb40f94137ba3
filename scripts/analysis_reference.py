"""Reference values for src/analysis tests, computed independently with NumPy.

Run: .cache/venv/bin/python scripts/analysis_reference.py
The matrix is built from a closed formula (the same one the Rust test uses), so no data file
is needed. Pinned in src/analysis/subspace.rs (explained_variance_ratios_match_numpy).
"""
import numpy as np


def formula_data(n, d):
    x = np.arange(n, dtype=float)[:, None]
    y = np.arange(d, dtype=float)[None, :]
    return np.sin(0.37 * (x + 1) * (y + 1)) + 0.1 * np.cos(1.3 * x + 0.7 * y) + 0.05 * x * (y - 3) / n


a = formula_data(30, 8)
c = a - a.mean(axis=0)
s = np.linalg.svd(c, compute_uv=False)
ratios = s**2 / (c**2).sum()
print("explained variance ratios (first 3):", [repr(float(r)) for r in ratios[:3]])
