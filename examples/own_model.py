"""Your own model through rlselector's training loop: the same SelectionLoop is its hook.

    python examples/own_model.py --out runs/own-model [--method el2n] [--epochs 10] [--limit 1437]

The data is an rlselector dataset, so the selection carries its content fingerprint and
``selection.subset(data)`` hands back the kept training set.
"""

import argparse

import rlselector
from rlselector.train import TrainConfig, train
from small_cnn import SmallCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="el2n")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="a class-stratified subset of N digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/own-model")
    args = parser.parse_args()

    data = rlselector.load_dataset("digits", limit=args.limit, seed=args.seed)
    model = SmallCNN(in_channels=data.in_channels, num_classes=data.num_classes)
    extra = {"epochs": args.epochs} if args.method == "rl-selector" else {}
    loop = rlselector.SelectionLoop(data, ratio=args.ratio, method=args.method, seed=args.seed, progress=False, **extra)
    result = train(model, data, TrainConfig(epochs=args.epochs, batch_size=64, lr=0.05, seed=args.seed), hooks=[loop], progress=False)
    selection = loop.finish(out=args.out, overwrite=True)
    subset = selection.subset(data)
    print(f"{args.method}: kept {len(subset)} of {len(data)} (model test top-1 {result.top1:.1f} %) -> {args.out}")


if __name__ == "__main__":
    main()
