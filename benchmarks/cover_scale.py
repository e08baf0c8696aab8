"""The ε-sample cover at ImageNet scale: feature bank precision, the faiss back end, and the time and
memory of a whole 1.28 M-sample refresh (issue: run where users train, on data larger than memory).

Each sub-command prints a Markdown table and the machine; BENCHMARKS.md ("Cover at scale") records
them with the command. One torch and one faiss thread (OMP_NUM_THREADS=1).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py bank
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py threshold --sizes 5000 10000 20000 50000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py imagenet --dim 512
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py imagenet --dim 2048 --projection 256
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py large --samples 1000000 --queries 2000 --subsample 60000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py large --samples 1000000 --queries 2000 --subsample 0 --nprobes 16 32 64
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cover_scale.py large --samples 200000 --queries 0 --subsample 0 --full

``bank``: agreement of float16 and projected banks with the exact float32 cover (ε recomputed by the
same rule on each): Spearman of the degree and recall of the ε-neighbour pairs, on digits through a
random ReLU layer and on synthetic ReLU features with 20 % near-duplicates. ``threshold``: one class
of n_k synthetic samples, exact against faiss (time, agreement): where the approximate path pays.
``imagenet``: 1,281,167 samples in 1,000 classes written into a FeatureBank, then ε and the cover of
every class (the chosen defaults: exact below the threshold). ``large``: one class through the
approximate path. A full cover of a 1 M class is hours on one thread (Σ neighbours ≈ p̂ · n_k²
pairs are enumerated), so ``--queries`` times the range search of a seeded query sample on the full
index (the library's own index builder) against exact counts of those queries, and ``--subsample``
compares the whole approximate cover with the exact one on a subsample; ``--full`` runs the whole
public ``cover()``.
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import time

import torch
from scipy.stats import spearmanr

from rlselector.bank import FeatureBank
from rlselector.cover import APPROXIMATE_ABOVE, IVFSettings, _faiss, _ivf_build, _ivf_range_block, cover, epsilon

IMAGENET_SAMPLES, IMAGENET_CLASSES = 1_281_167, 1_000
LATENT, MODES = 32, 8


def machine() -> str:
    return f"{platform.machine()} ({platform.processor() or 'CPU'}), {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KB on Linux


class Penultimate:
    """Synthetic penultimate features: per-class latent modes through one shared random ReLU layer,
    with a share of near-duplicates (a row copied from an earlier row of its class, plus 1 % noise)."""

    def __init__(self, classes: int, d: int, seed: int, duplicates: float = 0.2) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.modes = torch.randn(classes, MODES, LATENT, generator=self.generator)
        self.weight = torch.randn(LATENT, d, generator=self.generator) / math.sqrt(LATENT)
        self.bias = 0.1 * torch.randn(d, generator=self.generator)
        self.duplicates = duplicates

    def rows(self, labels: torch.Tensor) -> torch.Tensor:
        n = len(labels)
        mode = torch.randint(0, MODES, (n,), generator=self.generator)
        latent = self.modes[labels, mode] + 0.5 * torch.randn(n, LATENT, generator=self.generator)
        x = torch.relu(latent @ self.weight + self.bias) + 0.05 * torch.randn(n, self.weight.shape[1], generator=self.generator)
        # Near-duplicates: a row becomes a noisy copy of the previous row of its class in this batch.
        order = torch.argsort(labels, stable=True)
        same = labels[order[1:]] == labels[order[:-1]]
        copy = same & (torch.rand(n - 1, generator=self.generator) < self.duplicates)
        target, source = order[1:][copy], order[:-1][copy]
        x[target] = x[source] + 0.01 * torch.randn(len(target), x.shape[1], generator=self.generator)
        return x


def digits_relu(d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    layer = torch.nn.Linear(64, d)
    torch.manual_seed(seed)
    torch.nn.init.kaiming_normal_(layer.weight)
    with torch.no_grad():
        return torch.relu(layer(pixels)), torch.tensor(digits.target)


def neighbour_recall(reference: torch.Tensor, eps_r: dict, variant: torch.Tensor, eps_v: dict, labels: torch.Tensor) -> float:
    """|N_variant(i) ∩ N_reference(i)| summed over i, over Σ|N_reference(i)|, by row blocks per class."""
    shared = total = 0
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().squeeze(1)
        r, v = reference[members].double(), variant[members].double()
        for start in range(0, len(members), 512):
            rows = slice(start, start + 512)
            within_r = torch.cdist(r[rows], r) <= eps_r[label]
            within_v = torch.cdist(v[rows], v) <= eps_v[label]
            diagonal = torch.arange(start, min(start + 512, len(members)))
            within_r[diagonal - start, diagonal] = within_v[diagonal - start, diagonal] = False
            shared += int((within_r & within_v).sum())
            total += int(within_r.sum())
    return shared / total


def bank_agreement(args) -> None:
    print(f"\nFeature bank vs the exact float32 cover (ε = 1 % quantile recomputed on each bank); {machine()}\n")
    print("| features | n | d | bank | bytes / row | Spearman (degree) | ε-neighbour recall |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for d in args.dims:
        sets = {"digits → random ReLU layer": digits_relu(d, args.seed)}
        labels = torch.arange(args.classes).repeat_interleave(args.per_class)
        sets["synthetic ReLU, 20 % near-duplicates"] = (Penultimate(args.classes, d, args.seed).rows(labels), labels)
        for name, (features, labels) in sets.items():
            eps = epsilon(features, labels, backend="exact")
            exact = cover(features, labels, eps, backend="exact")
            for dtype, projection in [("float16", None), ("float32", 256), ("float32", 128), ("float16", 256)]:
                if projection is not None and projection >= d:
                    continue
                bank = FeatureBank(len(labels), d, dtype=dtype, projection_dim=projection, seed=args.seed)
                bank.update(torch.arange(len(labels)), features)
                eps_b = epsilon(bank, labels, backend="exact")
                result = cover(bank, labels, eps_b, backend="exact")
                rho = spearmanr(exact.degree, result.degree)[0]
                recall = neighbour_recall(features, eps, bank.all(), eps_b, labels)
                kind = dtype + (f", projected to {projection}" if projection else "")
                per_row = bank.stored.element_size() * bank.dim
                print(f"| {name} | {len(labels):,} | {d} | {kind} | {per_row:,} | {rho:.4f} | {recall:.4f} |")


def count_recall(approximate: torch.Tensor, exact: torch.Tensor) -> float:
    return float(torch.minimum(approximate, exact).sum() / exact.sum())


def threshold(args) -> None:
    print(f"\nOne class, synthetic ReLU features (20 % near-duplicates), d = {args.dim}, ε = 1 % quantile; {machine()}\n")
    print("Both covers use the exact ε, so the agreement is the back end's alone; the sampled ε's own error is its column.\n")
    print("| n_k | exact ε + cover CPU s | sampled ε + faiss cover CPU s | speed-up | sampled ε / exact ε − 1 | nprobe / nlist | "
          "Spearman (degree) | recall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        labels = torch.zeros(n, dtype=torch.long)
        features = Penultimate(1, args.dim, args.seed).rows(labels)
        cpu = time.process_time()
        eps = epsilon(features, labels, backend="exact")
        exact = cover(features, labels, eps, backend="exact")
        exact_s = time.process_time() - cpu
        cpu = time.process_time()
        sampled = epsilon(features, labels, approximate_above=1)
        approximate = cover(features, labels, eps, backend="faiss", approximate_above=1)
        approximate_s = time.process_time() - cpu
        index, _ = _ivf_build(_faiss(), features - features.mean(0), eps[0], IVFSettings())  # the nprobe cover() chose
        rho = spearmanr(exact.degree, approximate.degree)[0]
        print(f"| {n:,} | {exact_s:.1f} | {approximate_s:.1f} | {exact_s / approximate_s:.1f} | {sampled[0] / eps[0] - 1:+.4f} | "
              f"{index.nprobe} / {index.nlist} | {rho:.4f} | {count_recall(approximate.degree, exact.degree):.4f} |")


def imagenet(args) -> None:
    n, classes = IMAGENET_SAMPLES, IMAGENET_CLASSES
    labels = torch.arange(n) % classes
    bank = FeatureBank(n, args.dim, dtype=args.dtype, projection_dim=args.projection, seed=args.seed)
    source = Penultimate(classes, args.dim, args.seed)
    start = time.perf_counter()
    for first in range(0, n, 50_000):
        rows = torch.arange(first, min(n, first + 50_000))
        bank.update(rows, source.rows(labels[rows]))
    fill_s, rss_filled = time.perf_counter() - start, peak_rss_gb()
    wall, cpu = time.perf_counter(), time.process_time()
    eps = epsilon(bank, labels)
    eps_cpu = time.process_time() - cpu
    result = cover(bank, labels, eps)
    cpu_s, wall_s = time.process_time() - cpu, time.perf_counter() - wall
    kind = args.dtype + (f", projected {args.dim} → {args.projection}" if args.projection else "")
    print(f"\n{n:,} samples, {classes:,} classes, synthetic ReLU features, d = {args.dim}, bank {kind}; {machine()}\n")
    print("| d | bank | bank GB | fill s | ε CPU s | ε + cover CPU s | wall s | peak RSS GB (after fill) | mean degree |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.dim} | {kind} | {bank.nbytes / 1e9:.2f} | {fill_s:.0f} | {eps_cpu:.0f} | {cpu_s:.0f} | {wall_s:.0f} | "
          f"{peak_rss_gb():.2f} ({rss_filled:.2f}) | {float(result.degree.mean()):.4f} |")


def bank_bytes(args) -> None:
    print(f"\nBank bytes at ImageNet's {IMAGENET_SAMPLES:,} samples (rows + projection matrix)\n")
    print("| d | float32 | float16 | float16, projected to 256 | float16, projected to 128 |")
    print("|---:|---:|---:|---:|---:|")
    for d in (512, 2048):
        banks = [FeatureBank(IMAGENET_SAMPLES, d, dtype="float32"), FeatureBank(IMAGENET_SAMPLES, d),
                 FeatureBank(IMAGENET_SAMPLES, d, projection_dim=256), FeatureBank(IMAGENET_SAMPLES, d, projection_dim=128)]
        print(f"| {d} | " + " | ".join(f"{bank.nbytes / 1e9:.2f} GB" for bank in banks) + " |")


def large(args) -> None:
    n, faiss = args.samples, _faiss()
    labels = torch.zeros(n, dtype=torch.long)
    bank = FeatureBank(n, args.dim, seed=args.seed)
    source = Penultimate(1, args.dim, args.seed)
    for first in range(0, n, 50_000):
        rows = torch.arange(first, min(n, first + 50_000))
        bank.update(rows, source.rows(labels[rows]))
    print(f"\nOne class of {n:,} samples, d = {args.dim}, float16 bank ({bank.nbytes / 1e9:.2f} GB), approximate path; {machine()}\n")
    cpu = time.process_time()
    eps = epsilon(bank, labels)[0]
    print(f"- ε (1 % quantile from {1_000_000:,} sampled pairs): {eps:.4f}, {time.process_time() - cpu:.1f} CPU s")
    generator = torch.Generator().manual_seed(args.seed + 1)
    if args.full:
        cpu = time.process_time()
        result = cover(bank, labels, {0: eps})
        print(f"- whole cover(): {time.process_time() - cpu:.0f} CPU s, peak RSS {peak_rss_gb():.2f} GB, "
              f"mean degree {float(result.degree.mean()):.4f}")
    if args.queries:
        features = bank.all()
        features -= features.double().mean(0).float()
        cpu = time.process_time()
        index, share = _ivf_build(faiss, features, eps, IVFSettings(seed=args.seed))
        build_s = time.process_time() - cpu
        queries = torch.randperm(n, generator=generator)[: args.queries]
        exact = torch.zeros(len(queries), dtype=torch.float64)
        chosen = features[queries].double()
        for first in range(0, n, 20_000):
            exact += (torch.cdist(chosen, features[first : first + 20_000].double()) <= eps).sum(1)
        exact -= 1  # each query itself
        print(f"- index: nlist {index.nlist}, calibrated nprobe {index.nprobe} (p̂ = {share:.4f}), build and calibration "
              f"{build_s:.0f} CPU s, peak RSS {peak_rss_gb():.2f} GB; mean exact degree {float(exact.mean()) / (n - 1):.4f}\n")
        print(f"| nprobe | range search of {len(queries):,} seeded queries, CPU s | all {n:,} on one thread, h (extrapolated) | "
              "Spearman (degree) | recall |")
        print("|---:|---:|---:|---:|---:|")
        for nprobe in sorted({index.nprobe, *args.nprobes}):
            index.nprobe = nprobe
            cpu = time.process_time()
            counts, _, _ = _ivf_range_block(index, features[queries], queries, eps)
            query_s = time.process_time() - cpu
            print(f"| {nprobe} | {query_s:.1f} | {query_s / len(queries) * n / 3600:.2f} | {spearmanr(exact, counts)[0]:.4f} | "
                  f"{count_recall(counts, exact):.4f} |")
        print()
        del features, index
    if args.subsample:
        rows = torch.randperm(n, generator=generator)[: args.subsample]
        sub, sub_labels = bank.rows(rows), labels[rows]
        cpu = time.process_time()
        sub_eps = epsilon(sub, sub_labels, backend="exact")
        exact = cover(sub, sub_labels, sub_eps, backend="exact")
        exact_s = time.process_time() - cpu
        cpu = time.process_time()
        approximate = cover(sub, sub_labels, sub_eps, backend="faiss", approximate_above=1)
        approximate_s = time.process_time() - cpu
        print(f"- {args.subsample:,}-sample subsample, same exact ε ({sub_eps[0]:.4f}): exact ε + cover {exact_s:.0f} CPU s, "
              f"faiss cover {approximate_s:.0f} CPU s; Spearman {spearmanr(exact.degree, approximate.degree)[0]:.4f}, "
              f"recall {count_recall(approximate.degree, exact.degree):.4f}")
    print(f"- peak RSS of the run: {peak_rss_gb():.2f} GB (approximate_above default {APPROXIMATE_ABOVE:,})")


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("bank")
    p.add_argument("--dims", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=2000)
    p.set_defaults(run=bank_agreement)
    p = commands.add_parser("threshold")
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 50000])
    p.add_argument("--dim", type=int, default=512)
    p.set_defaults(run=threshold)
    p = commands.add_parser("bytes")
    p.set_defaults(run=bank_bytes)
    p = commands.add_parser("imagenet")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--projection", type=int, default=None)
    p.set_defaults(run=imagenet)
    p = commands.add_parser("large")
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--subsample", type=int, default=60_000)
    p.add_argument("--full", action="store_true")
    p.add_argument("--nprobes", type=int, nargs="*", default=[], help="more nprobe values to time on the query sample")
    p.set_defaults(run=large)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
