"""Reference values for the SparseGPT unit test in src/prune/sparsegpt.rs.

A direct NumPy transliteration of Algorithm 1 of Frantar & Alistarh (2023) as the authors'
reference implementation performs it (Hessian 2 X^T X / n, dead inputs, 1% dampening,
Cholesky -> inverse -> upper Cholesky, blocks with lazy updates, adaptive masks), with the
two documented choices of the Rust module: the unstructured block prunes exactly
floor(sparsity * elements), and ties go to the lower row-major index (stable argsort).

The inputs are built from integer formulas so the Rust test can rebuild them exactly:
  X[t, j] = ((7 t + 3 j^2 + t j + (t^2 mod 5) j) mod 17 - 8) / 4  for t < 64, j < 16, except X[:, 5] = 0 (dead)
  W[i, j] = ((5 i + 3 j + i j^2) mod 13 - 6) / 8   for i < 4,  j < 16
All values are multiples of 1/8 and exact in float32; X has rank 15 (one dead channel).

Run: /work/main/.cache/venv/bin/python scripts/prune_sparsegpt_reference.py
and paste the printed arrays into the test.
"""
import numpy as np

TOKENS, WIDTH, ROWS = 64, 16, 4


def inputs():
    t = np.arange(TOKENS)[:, None]
    j = np.arange(WIDTH)[None, :]
    x = ((7 * t + 3 * j * j + t * j + (t * t % 5) * j) % 17 - 8) / 4.0
    x[:, 5] = 0.0
    return x


def weights():
    i = np.arange(ROWS)[:, None]
    j = np.arange(WIDTH)[None, :]
    return ((5 * i + 3 * j + i * j * j) % 13 - 6) / 8.0


def sparsegpt(w, x, sparsity, prune_n, prune_m, block_size, percdamp=0.01):
    w = w.copy()
    rows, cols = w.shape
    h = 2.0 * x.T @ x / x.shape[0]
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.arange(cols), np.arange(cols)] += percdamp * np.mean(np.diag(h))
    hinv_full = np.linalg.inv(h)
    hinv = np.linalg.cholesky(hinv_full).T  # upper: hinv.T @ hinv == H^-1
    mask = np.zeros_like(w, dtype=bool)  # True = pruned
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        count = i2 - i1
        w1 = w[:, i1:i2].copy()
        q1 = np.zeros_like(w1)
        err1 = np.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        d1 = np.diag(hinv1)
        mask1 = np.zeros_like(w1, dtype=bool)
        if prune_n == 0:
            scores = (w1 ** 2 / d1[None, :] ** 2).flatten()
            k = int(np.floor(sparsity * scores.size))
            mask1.flat[np.argsort(scores, kind="stable")[:k]] = True
        for i in range(count):
            wcol = w1[:, i]
            d = hinv1[i, i]
            if prune_n != 0 and i % prune_m == 0:
                tmp = w1[:, i:i + prune_m] ** 2 / d1[i:i + prune_m][None, :] ** 2
                for r in range(rows):
                    mask1[r, i + np.argsort(tmp[r], kind="stable")[:prune_n]] = True
            q = wcol.copy()
            q[mask1[:, i]] = 0.0
            q1[:, i] = q
            err = (wcol - q) / d
            w1[:, i:] -= np.outer(err, hinv1[i, i:])
            err1[:, i] = err
        w[:, i1:i2] = q1
        mask[:, i1:i2] = mask1
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return w, mask


def show(name, w, mask):
    print(f"// {name}: weights row-major (float64 repr)")
    print("[" + ", ".join(repr(float(v)) for v in w.flatten()) + "]")
    print(f"// {name}: pruned flags row-major")
    print('"' + "".join("1" if m else "0" for m in mask.flatten()) + '"')


def main():
    x, w = inputs(), weights()
    print("// rank of X:", np.linalg.matrix_rank(x))
    show("unstructured 0.5, block 8", *sparsegpt(w, x, 0.5, 0, 0, 8))
    show("2:4, block 8", *sparsegpt(w, x, 0.5, 2, 4, 8))


if __name__ == "__main__":
    main()
