"""PyTorch Lightning: the selection is made inside ``Trainer.fit`` by a callback.

    pip install 'rlselector[lightning]'
    python examples/lightning_fit.py --out runs/lightning [--method forgetting] [--epochs 10] [--limit 1797]
"""

import argparse

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import rlselector
from rlselector.lightning import SelectionCallback
from small_cnn import SmallCNN


class DigitsModule(pl.LightningModule):
    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.model, self.epochs = SmallCNN(), epochs

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        features = self.model.features(x)
        logits = self.model.classifier(features)
        # the loss to minimise, and what the selection reads: positions, features, logits, labels
        return {"loss": F.cross_entropy(logits, y), "indices": index, "features": features, "logits": logits, "labels": y}

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="rl-selector")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=1797, help="first N digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/lightning")
    args = parser.parse_args()

    pl.seed_everything(args.seed, verbose=False)
    digits = load_digits()
    images = torch.tensor(digits.images[: args.limit, None], dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target[: args.limit])
    loader = DataLoader(TensorDataset(images, labels, torch.arange(len(labels))), batch_size=64, shuffle=True)
    extra = {"epochs": args.epochs} if args.method == "rl-selector" else {}
    loop = rlselector.SelectionLoop(labels, ratio=args.ratio, method=args.method, seed=args.seed, progress=False, **extra)
    callback = SelectionCallback(loop, out=args.out, overwrite=True)
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(DigitsModule(args.epochs), loader)
    print(f"{args.method}: kept {callback.selection.manifest['n_kept']} of {len(labels)} -> {args.out}")


if __name__ == "__main__":
    main()
