"""PyTorch Lightning: the selection is made inside ``Trainer.fit`` by a callback.

    pip install 'rlselector[lightning]'
    python examples/lightning_fit.py --out runs/lightning [--method forgetting] [--epochs 10] [--limit 1797]
"""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import rlselector
from common import SmallCNN, digits_tensors, method_params, parse_args
from rlselector.lightning import SelectionCallback


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
    args = parse_args(__doc__, method="rl-selector", out="runs/lightning")
    pl.seed_everything(args.seed, verbose=False)
    images, labels = digits_tensors(args.limit)
    loader = DataLoader(TensorDataset(images, labels, torch.arange(len(labels))), batch_size=64, shuffle=True)
    loop = rlselector.SelectionLoop(labels, ratio=args.ratio, method=args.method, seed=args.seed, progress=False, **method_params(args))
    callback = SelectionCallback(loop, out=args.out, overwrite=True)
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(DigitsModule(args.epochs), loader)
    print(f"{args.method}: kept {callback.selection.manifest['n_kept']} of {len(labels)} -> {args.out}")


if __name__ == "__main__":
    main()
