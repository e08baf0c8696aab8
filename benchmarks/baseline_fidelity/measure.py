"""Jaccard of the project's default kept sets vs the reference re-implementations (refs.py), digits,
default proxy (seed 0; ten seeds for EL2N/GraNd), ratios 0.3 / 0.7."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # refs.py stands beside this file
import refs
from rlselector import load_dataset, select
from rlselector.selection.proxy import default_proxy_config, proxy_seed, run_proxy
from rlselector.selection.policies import cutoff_rate
from rlselector.methods.glister import carve_validation

only = set(sys.argv[1:])
data = load_dataset("digits", seed=0)
cfg = default_proxy_config(data)
records = [run_proxy(data, cfg, seed=proxy_seed(0, i), cache_dir="runs/baseline-fidelity-cache", progress=False)[0] for i in range(10)]
rec = records[0]
y = data.train.label_array
feat = np.asarray(rec.features_at(10), dtype=np.float64)
aum = rec.prob_margin.astype(np.float64).sum(0)
forget = ((rec.correct[:-1] & ~rec.correct[1:]).sum(0))
J = refs.jaccard


def ours(method, ratio, **kw):
    return select(data, method=method, ratio=ratio, seed=0, dynamics=rec, progress=False, **kw).indices


rows = []
for ratio in (0.3, 0.7):
    def want(name):
        return not only or name in only
    if want("moso"):
        ck = [(rec.features_at(e), rec.logits_at(e), rec.lr[e - 1]) for e in (2, 5, 10)]
        ref, _ = refs.moso_ref(ck, y, ratio)
        rows.append(("moso", ratio, J(ours("moso", ratio), ref)))
    if want("d2"):
        beta = cutoff_rate(ratio)
        ref = refs.d2_ref(feat, forget, aum, y, ratio, beta)
        refp = refs.d2_ref(feat, forget, aum, y, ratio, beta, equal=False)
        got = ours("d2", ratio)
        rows.append(("d2 (ref equal class budgets)", ratio, J(got, ref)))
        rows.append(("d2 (ref proportional budgets)", ratio, J(got, refp)))
    if want("grand"):
        ref = refs.grand_ref([(r.features_at(0), r.logits_at(0)) for r in records], y, ratio)
        got = select(data, method="grand", ratio=ratio, seed=0, proxy_config=cfg, cache_dir="runs/baseline-fidelity-cache", progress=False).indices
        rows.append(("grand", ratio, J(got, ref)))
    if want("el2n"):
        ref = refs.el2n_ref([r.logits_at(2) for r in records], y, ratio)
        got = select(data, method="el2n", ratio=ratio, seed=0, proxy_config=cfg, cache_dir="runs/baseline-fidelity-cache", progress=False).indices
        rows.append(("el2n", ratio, J(got, ref)))
    if want("cgscore"):
        ref, _ = refs.cg_ref(feat, y, ratio, seed=0)
        ref2, _ = refs.cg_ref(feat, y, ratio, seed=1)
        rows.append(("cgscore", ratio, J(ours("cgscore", ratio), ref)))
        rows.append(("cgscore ref seed0 vs seed1", ratio, J(ref, ref2)))
    if want("moderate"):
        rows.append(("moderate", ratio, J(ours("moderate", ratio), refs.moderate_ref(feat, y, ratio))))
    if want("ccs"):
        beta = cutoff_rate(ratio)
        ref, _, masked, _ = refs.ccs_ref(aum, aum, ratio, beta, seed=0)
        ref2, *_ = refs.ccs_ref(aum, aum, ratio, beta, seed=1)
        sel = select(data, method="ccs", ratio=ratio, seed=0, dynamics=rec, progress=False)
        ours_masked = np.flatnonzero(sel.scores < 0)
        rows.append(("ccs", ratio, J(sel.indices, ref)))
        rows.append(("ccs ref seed0 vs seed1", ratio, J(ref, ref2)))
        rows.append(("ccs mask", ratio, J(ours_masked, masked) if len(masked) else 1.0))
    if want("glister"):
        val = carve_validation(y, 0.1, np.random.default_rng([0, *b"glister-validation"]), 10)
        train_idx = np.setdiff1d(np.arange(len(y)), val)
        ref = refs.glister_ref(rec.features_at(10), rec.logits_at(10), y, val, train_idx, round(ratio * len(y)), 0.1)
        rows.append(("glister", ratio, J(ours("glister", ratio), ref)))
    if want("herding"):
        got = ours("herding", ratio)
        ref = np.concatenate([np.flatnonzero(y == c)[refs.herding_ref(feat[y == c], q)]
                              for c, q in enumerate(__import__("rlselector.selection.policies", fromlist=["x"]).class_quotas(y, round(ratio * len(y)), 10))])
        dc = np.concatenate([np.flatnonzero(y == c)[refs.herding_ref(feat[y == c], q, argmax=True)]
                             for c, q in enumerate(__import__("rlselector.selection.policies", fromlist=["x"]).class_quotas(y, round(ratio * len(y)), 10))])
        rows.append(("herding", ratio, J(got, ref)))
        rows.append(("herding vs DeepCore argmax", ratio, J(got, dc)))
for name, ratio, j in rows:
    print(f"{name:34s} {ratio:.1f} {j:.3f}", flush=True)
