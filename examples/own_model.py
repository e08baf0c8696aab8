"""Your own model through rlselector's training loop: the same SelectionLoop is its hook.

    python examples/own_model.py --out runs/own-model [--method el2n] [--epochs 10] [--limit 1437]

The data is an rlselector dataset, so the selection carries its content fingerprint and
``selection.subset(data)`` hands back the kept training set.
"""

import rlselector
from common import SmallCNN, method_params, parse_args
from rlselector.train import TrainConfig, train


def main() -> None:
    args = parse_args(__doc__, method="el2n", out="runs/own-model")
    data = rlselector.load_dataset("digits", limit=args.limit, seed=args.seed)
    model = SmallCNN(in_channels=data.in_channels, num_classes=data.num_classes)
    loop = rlselector.SelectionLoop(data, ratio=args.ratio, method=args.method, seed=args.seed, progress=False, **method_params(args))
    result = train(model, data, TrainConfig(epochs=args.epochs, batch_size=64, lr=0.05, seed=args.seed), hooks=[loop], progress=False)
    selection = loop.finish(out=args.out, overwrite=True)
    subset = selection.subset(data)
    print(f"{args.method}: kept {len(subset)} of {len(data)} (model test top-1 {result.top1:.1f} %) -> {args.out}")


if __name__ == "__main__":
    main()
