"""Your own loop, your own model, your own data: RL-Selector acts while a plain PyTorch loop trains.

    python examples/own_loop.py --out runs/own-loop [--method el2n] [--epochs 10] [--limit 1797]

The data here is scikit-learn's digits as plain tensors (no rlselector dataset): the loop API needs
only the labels and, per minibatch, the samples' positions in the training set.
"""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import rlselector
from common import SmallCNN, digits_tensors, method_params, parse_args


def main() -> None:
    args = parse_args(__doc__, method="rl-selector", out="runs/own-loop")
    torch.manual_seed(args.seed)
    images, labels = digits_tensors(args.limit)
    positions = torch.arange(len(labels))  # each sample's index in the training set
    loader = DataLoader(TensorDataset(images, labels, positions), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(args.seed))
    model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    loop = rlselector.SelectionLoop(labels, ratio=args.ratio, method=args.method, seed=args.seed, progress=False, **method_params(args))
    for epoch in range(args.epochs):
        model.train()
        for x, y, index in loader:
            features = model.features(x)
            logits = model.classifier(features)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loop.observe(index, features=features, logits=logits, labels=y)  # 1: every minibatch
        loop.end_epoch(lr=optimizer.param_groups[0]["lr"])                  # 2: every epoch
        schedule.step()
    selection = loop.finish(out=args.out, overwrite=True)                    # 3: the selection directory
    print(f"{args.method}: kept {selection.manifest['n_kept']} of {selection.manifest['n']} -> {args.out}")


if __name__ == "__main__":
    main()
