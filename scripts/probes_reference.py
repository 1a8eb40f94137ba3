"""scikit-learn reference for the probes (src/analysis/probes.rs), on arrays a Rust test wrote.

Run by tests/probes_reference.rs as: .cache/venv/bin/python scripts/probes_reference.py DIR
DIR holds (CSV, no header):
  states.csv          n x d sentence states
  train.csv, test.csv row indices of the probe's training and test rows
  labels.csv          class index of every row (the language)
  k.txt               number of k-means clusters
  ari_pairs.csv       label vectors of any lengths, one a line, in pairs (a, b, a, b, ...)
It writes DIR/reference.json with the scikit-learn results.

The probe is the same model as the Rust one: channels standardised on the training rows
(StandardScaler, population variance), then multinomial logistic regression with the L2
penalty 1/2 ||W||^2 and C = 1 (linfa-logistic's alpha = 1 on a summed log-loss), intercept
unpenalised. k-means and PCA run on the states standardised over all rows.
"""
import json
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

out = sys.argv[1]
def load(name, ndmin=1, **kw):
    return np.loadtxt(f"{out}/{name}", delimiter=",", ndmin=ndmin, **kw)


x = load("states.csv", ndmin=2)
train = load("train.csv", dtype=int)
test = load("test.csv", dtype=int)
labels = load("labels.csv", dtype=int)
k = int(open(f"{out}/k.txt").read())

scaler = StandardScaler().fit(x[train])
probe = LogisticRegression(C=1.0, solver="lbfgs", tol=1e-10, max_iter=10000)
probe.fit(scaler.transform(x[train]), labels[train])
predicted = probe.predict(scaler.transform(x[test]))

z = StandardScaler().fit_transform(x)
clusters = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(z)
projection = PCA(n_components=2, svd_solver="full").fit_transform(z)

pairs = [np.array(line.split(","), dtype=int) for line in open(f"{out}/ari_pairs.csv").read().split()]
ari = [adjusted_rand_score(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]

json.dump(
    {
        "predicted": predicted.tolist(),
        "accuracy": float((predicted == labels[test]).mean()),
        "clusters": clusters.tolist(),
        "cluster_ari": float(adjusted_rand_score(labels, clusters)),
        "pca": projection.tolist(),
        "ari": ari,
    },
    open(f"{out}/reference.json", "w"),
)
