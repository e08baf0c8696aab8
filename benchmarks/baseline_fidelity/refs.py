"""Independent re-implementations of the baselines' released reference procedures (numpy/sklearn),
written from the authors' code, used to measure how close the project's defaults come."""

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import kneighbors_graph


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def last_layer_grads(h, z, y):
    """Explicit per-sample last-layer gradients [bias (C), weight (C*d)] as DeepCore lays them out."""
    r = softmax(z)
    r[np.arange(len(y)), y] -= 1
    w = (r[:, :, None] * np.asarray(h, dtype=np.float64)[:, None, :]).reshape(len(y), -1)
    return np.concatenate([r, w], axis=1)


def jaccard(a, b):
    a, b = set(map(int, a)), set(map(int, b))
    return len(a & b) / len(a | b)


# ---- MoSo (hrtan/MoSo scoring.py MoSo_scoring_exact, retraining.py nopt2) ----
def moso_ref(ckpts, y, ratio):
    """ckpts: list of (h, z, lr)."""
    total = 0
    for h, z, lr in ckpts:
        G = last_layer_grads(h, z, y)
        N = len(G)
        og = G.mean(0)
        s = (2 * N - 3) / (N - 1) ** 2 * (og @ og) - 1 / (N - 1) ** 2 * (G * G).sum(1) + (2 * N - 4) / (N - 1) ** 2 * ((og - G / N) * G).sum(1)
        total = total + s * lr
    size = int(len(y) * ratio)
    K = y.max() + 1
    idx = []
    for i in range(K):
        temp = total * (y == i)
        idx += list(np.argsort(-temp, kind="stable")[: int(size / K)])
    return np.array(idx), total


# ---- D2 (adymaharana/d2pruning selection_mp.py 'class', sampling.py GraphDensitySampler sum/weighted) ----
def bin_allocate_uniform(num, bins):
    order = np.argsort(bins, kind="stable")
    sb = bins[order]
    rest = num
    budgets = []
    for i in range(len(bins)):
        if sb[i] == 0:
            budgets.append(0)
            continue
        rest_bins = np.count_nonzero(sb[i:])
        avg = rest // rest_bins
        cur = min(sb[i], avg)
        rest -= cur
        budgets.append(cur)
    budgets = np.array(budgets)
    if budgets.sum() < num:
        delta = num - budgets.sum()
        i = 1
        while delta and i <= len(bins):
            if budgets[-i] < sb[-i]:
                budgets[-i] += 1
                delta -= 1
            i += 1
    out = np.zeros(len(bins), dtype=int)
    out[order] = budgets
    return out


def graph_density_select(X, s, n_neighbor, gamma, N):
    eps = 1e-7
    dist = pairwise_distances(X, X)
    connect = kneighbors_graph(X, n_neighbor, p=2).toarray()
    rows, cols = connect.nonzero()
    for i, j in zip(rows, cols):
        d = dist[i, j]
        connect[i, j] = np.exp(-d) * max(s[j], eps)
        connect[j, i] = np.exp(-d) * max(s[i], eps)
    density = connect.sum(1) + s
    batch = set()
    while len(batch) < N:
        sel = int(np.argmax(density))
        nb = (connect[sel] > 0).nonzero()[0]
        density[nb] = density[nb] - np.exp(-dist[sel, nb] * gamma) * density[sel]
        batch.add(sel)
        density[list(batch)] = density.min() - 1
    return list(batch)


def d2_ref(features, forgetting, aum, y, ratio, mis_ratio, n_neighbor=5, gamma=0.1, equal=True):
    n = len(y)
    mis_num = int(mis_ratio * n)
    score_index = np.argsort(aum, kind="stable")[mis_num:]
    coreset_num = int(ratio * n)
    t = y[score_index]
    f = features[score_index]
    s = forgetting[score_index].astype(np.float64)
    hist = np.bincount(t, minlength=y.max() + 1)
    if equal:
        budgets = bin_allocate_uniform(coreset_num, hist)
    else:  # proportional to the classes after the cut, largest remainder
        exact = coreset_num * hist / hist.sum()
        budgets = np.floor(exact).astype(int)
        budgets[np.argsort(-(exact - budgets), kind="stable")[: coreset_num - budgets.sum()]] += 1
    chosen = []
    for c in range(len(hist)):
        idx = np.where(t == c)[0]
        if len(idx) <= n_neighbor:
            raise RuntimeError("tiny class")
        sel = graph_density_select(f[idx], s[idx], n_neighbor, gamma, budgets[c])
        chosen += list(idx[sel])
    return score_index[np.array(chosen)]


# ---- GraNd / EL2N (mansheej/data_diet) ----
def grand_ref(runs, y, ratio):
    """runs: list of (h, z) at the scored checkpoint."""
    norms = np.mean([np.linalg.norm(last_layer_grads(h, z, y), axis=1) for h, z in runs], axis=0)
    return np.argsort(-norms, kind="stable")[: round(ratio * len(y))]


def el2n_ref(logits_list, y, ratio):
    onehot = np.eye(y.max() + 1)[y]
    s = np.mean([np.linalg.norm(softmax(z) - onehot, axis=1) for z in logits_list], axis=0)
    return np.argsort(-s, kind="stable")[: round(ratio * len(y))]


# ---- CG-score (calc_cg_score, pruning) ----
def cg_ref(features, y, ratio, rep_num=1, unbalance_ratio=1, seed=0):
    rng = np.random.default_rng(seed)
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    vi = np.zeros(len(y))
    times = np.zeros(len(y))
    for _ in range(rep_num):
        for c in np.unique(y):
            cur = np.flatnonzero(y == c)
            cur = cur[rng.permutation(len(cur))]
            other = np.flatnonzero(y != c)
            m = min(int(len(cur) * unbalance_ratio), len(other))
            neg = other[rng.choice(len(other), m, replace=False)]
            a = x[np.concatenate([cur, neg])]
            yy = np.concatenate([np.ones(len(cur)), -np.ones(m)])
            inner = np.clip(a @ a.T, -1, 1)
            H = inner * (np.pi - np.arccos(inner)) / (2 * np.pi)
            np.fill_diagonal(H, 0.5)
            inv = np.linalg.inv(H)
            orig = yy @ inv @ yy
            for k in range(len(cur)):
                keep = np.r_[0:k, k + 1 : len(yy)]
                A = inv[np.ix_(keep, keep)]
                B = inv[k, keep][None]
                inv_mi = A - B.T @ B / inv[k, k]
                vi[cur[k]] += orig - yy[keep] @ inv_mi @ yy[keep]
            times[cur] += 1
    measure = vi / np.maximum(times, 1)
    kept = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank = np.argsort(-measure[idx], kind="stable")
        kept += list(idx[rank[: int(len(idx) * ratio)]])
    return np.array(kept), measure


# ---- Moderate-DS (tmllab selection.py) ----
def moderate_ref(features, y, ratio):
    prot = np.stack([np.median(features[y == c], axis=0) for c in range(y.max() + 1)])
    dist = np.linalg.norm(features - prot[y], axis=1)
    low, high = 0.5 - ratio / 2, 0.5 + ratio / 2
    order = dist.argsort(kind="stable")
    pruned = np.concatenate([order[: round(len(y) * low)], order[round(len(y) * high):]])
    return np.setdiff1d(np.arange(len(y)), pruned)


# ---- CCS (Coverage-centric-coreset-selection train.py 'stratified') ----
def ccs_ref(aum, score, ratio, mis_ratio, seed=0):
    rng = np.random.default_rng(seed)
    n = len(aum)
    mis_num = int(mis_ratio * n)
    easy = np.argsort(aum, kind="stable")[mis_num:]
    sc = score[easy]
    coreset_num = int(ratio * n)
    lo, hi = sc.min(), sc.max() * 1.0001
    step = (hi - lo) / 50
    counts = np.array([((sc >= lo + k * step) & (sc < lo + (k + 1) * step)).sum() for k in range(50)])
    order = np.argsort(counts, kind="stable")
    rest, budgets = coreset_num, np.zeros(50, dtype=int)
    for i, b in enumerate(order):
        avg = rest // (50 - i)
        budgets[b] = min(counts[b], avg)
        rest -= budgets[b]
    sel = []
    for k in range(50):
        pool = np.flatnonzero((sc >= lo + k * step) & (sc < lo + (k + 1) * step))
        sel += list(pool[rng.permutation(len(pool))][: budgets[k]])
    return easy[np.array(sel)], easy[:0], np.sort(np.argsort(aum, kind="stable")[:mis_num]), budgets


# ---- Glister (CORDS glisterstrategy.py, Naive greedy, linear_layer=True, Supervised) ----
def glister_ref(h, z, y, val_idx, train_idx, budget, eta):
    G = last_layer_grads(h[train_idx], z[train_idx], y[train_idx])
    C = z.shape[1]
    hv, zv, yv = np.asarray(h[val_idx], np.float64), np.asarray(z[val_idx], np.float64), y[val_idx]

    def val_grad(curr):
        out = zv.copy()
        if curr is not None:
            out = out - eta * curr[:C][None] - eta * hv @ curr[C:].reshape(C, -1).T
        return last_layer_grads(hv, out, yv).mean(0)

    gv = val_grad(None)
    remain = list(range(len(train_idx)))
    chosen = []
    curr = None
    for _ in range(budget):
        gains = G[remain] @ gv
        best = remain[int(np.argmax(gains))]
        chosen.append(best)
        remain.remove(best)
        curr = G[best].copy() if curr is None else curr + G[best]
        gv = val_grad(curr)
    return train_idx[np.array(chosen)]


# ---- Herding (Welling; correct argmin) and DeepCore's argmax ----
def herding_ref(x, budget, argmax=False):
    mu = x.mean(0)
    sel = np.zeros(len(x), bool)
    for i in range(budget):
        target = (i + 1) * mu - x[sel].sum(0)
        rem = np.flatnonzero(~sel)
        d = np.linalg.norm(x[rem] - target, axis=1)
        sel[rem[np.argmax(d) if argmax else np.argmin(d)]] = True
    return np.flatnonzero(sel)
