"""Self-supervised prototypes: distance to the nearest k-means centroid of self-supervised embeddings.

Sorscher, Geirhos, Shekhar, Ganguli & Morcos, "Beyond neural scaling laws: beating power law scaling
via data pruning", NeurIPS 2022, §5.

Embed every training image with a self-supervised encoder, run k-means over the whole training set
(k ≈ the number of classes; labels are never used), and score each sample by its cosine distance to
the nearest centroid: near = easy/prototypical, far = hard. The paper's theory says which end to
keep depends on how much data there is: keep the *hard* samples when data is plentiful and the
*easy* ones when it is scarce. ``policy=auto`` keeps the hardest when ``ratio ≥ hard_threshold`` (0.5
by default: the paper gives no number, its crossover depends on the dataset) and the easiest below.

Embeddings: the user's ``--features`` if given (e.g. from a real self-supervised model); else a small
SimCLR-style encoder trained on the dataset itself (``rlselector.selection.ssl``: ResNet-18 of width
``ssl_width`` for ``ssl_epochs`` epochs on at most ``ssl_samples`` images — about 5 minutes on one CPU
core by default, trained through the one training loop so ``--resume`` continues it — cached per
dataset/recipe/seed in the cache directory), or the
supervised proxy's features with ``embedding=proxy``. The paper used SwAV on ImageNet; the small
encoder is a CPU-sized stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method

METRICS = ("cosine", "euclidean")
EMBEDDINGS = ("ssl", "proxy")


def prototype_distances(
    features: np.ndarray,
    clusters: int,
    *,
    metric: str = "cosine",
    seed: int = 0,
    n_init: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means on ``features``; ``(distance of each row to its nearest centroid, centroids)``.

    ``cosine``: rows are normalised to unit norm, k-means runs on the sphere, and the distance is
    ``1 − cos(x, nearest centroid)``; ``euclidean``: plain k-means and Euclidean distance.
    """
    x = np.asarray(features, dtype=np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    clusters = max(1, min(int(clusters), len(np.unique(x, axis=0))))
    kmeans = KMeans(n_clusters=clusters, n_init=n_init, random_state=seed).fit(x)
    centroids = kmeans.cluster_centers_
    if metric == "cosine":
        unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        distance = 1.0 - (x @ unit.T).max(axis=1)
    else:
        sq = (x**2).sum(1)[:, None] + (centroids**2).sum(1)[None, :] - 2.0 * x @ centroids.T
        distance = np.sqrt(np.maximum(sq.min(axis=1), 0.0))
    return np.maximum(distance, 0.0), centroids


@register_method
class SelfSupervisedPrototypes(ScoreMethod):
    name = "prototypes"
    summary = "self-supervised prototypes: distance to the nearest k-means centroid; hard if data is plentiful, easy if scarce"
    inputs = ("features", "self-supervised")
    reference = "Sorscher et al., Beyond neural scaling laws: beating power law scaling via data pruning, NeurIPS 2022"
    raw_score_name = "distance to nearest prototype"

    @dataclass
    class Params:
        clusters: int = param(0, "k of k-means (over the whole set, or per class with per_class); 0 = number of classes (whole set) or 1 (per class)", ge=0)
        per_class: bool = param(False, "run k-means inside each class instead of over the whole set (uses labels)")
        metric: str = param("cosine", "cosine (unit-norm embeddings, 1 - cos to the nearest centroid, the paper) or euclidean", choices=METRICS)
        policy: str = policy_param("auto", auto="keep-highest (hard) when ratio >= hard_threshold, else keep-lowest (easy)")
        hard_threshold: float = param(0.5, "with policy=auto: ratios at or above this keep the hardest samples, below it the easiest", ge=0, le=1)
        n_init: int = param(3, "k-means restarts (seeded; the best inertia wins)", ge=1)
        embedding: str = param("ssl", "without --features: 'ssl' trains a small self-supervised encoder on the data, 'proxy' uses the proxy model's features", choices=EMBEDDINGS)
        ssl_epochs: int = param(3, "epochs of the self-supervised encoder (two views per image)", ge=1)
        ssl_samples: int = param(10_000, "images the encoder trains on (seeded subset; 0 = all); every image is embedded", ge=0)
        ssl_width: int = param(8, "base width of its ResNet-18 (64 = full size)", ge=1)
        ssl_batch_size: int = param(256, "its batch size (NT-Xent contrasts within a batch)", ge=1)

    def policy_name(self, ctx: SelectionContext) -> str:
        if self.params.policy == "auto":
            return "keep-highest" if ctx.ratio >= self.params.hard_threshold else "keep-lowest"
        return self.params.policy

    def validate(self, ctx: SelectionContext) -> None:
        if self.params.embedding == "proxy":
            ctx.check_embeddings(self.name)

    def embeddings(self, ctx: SelectionContext) -> np.ndarray:
        if ctx.features is not None:
            return ctx.features
        if self.params.embedding == "proxy":
            return ctx.embeddings()
        from ..selection.ssl import SSLConfig, ssl_embeddings

        config = SSLConfig(
            epochs=self.params.ssl_epochs,
            width=self.params.ssl_width,
            batch_size=self.params.ssl_batch_size,
            max_samples=self.params.ssl_samples,
        )
        features, seconds, cached = ssl_embeddings(
            ctx.dataset, config, seed=ctx.seed, progress=ctx.progress, cache_dir=ctx.cache_dir, workdir=ctx.workdir, resume=ctx.resume,
            runtime=ctx.runtime,
        )
        if cached:
            ctx.cost.reused_s = seconds
        else:
            ctx.cost.ssl_s = seconds  # a cached encoder is still charged to the cost
        self.details["ssl_cached"] = cached
        return features

    def score(self, ctx: SelectionContext) -> np.ndarray:
        p = self.params
        self.details.update(embedding="user" if ctx.features is not None else p.embedding, metric=p.metric)
        features = np.asarray(self.embeddings(ctx), dtype=np.float32)
        if not p.per_class:
            k = p.clusters or ctx.dataset.num_classes
            return prototype_distances(features, k, metric=p.metric, seed=ctx.seed, n_init=p.n_init)[0]
        labels = ctx.labels
        out = np.zeros(len(labels))
        for cls in range(ctx.dataset.num_classes):
            members = np.flatnonzero(labels == cls)
            if len(members):
                out[members] = prototype_distances(features[members], p.clusters or 1, metric=p.metric, seed=ctx.seed, n_init=p.n_init)[0]
        return out
