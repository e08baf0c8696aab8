"""rlselector: shrink a training set to the samples that matter.

>>> import rlselector
>>> dataset = rlselector.load_dataset("digits")
>>> selection = rlselector.select(dataset, method="random", ratio=0.3, seed=0, progress=False)
>>> len(selection.subset(dataset)) == selection.manifest["n_kept"]
True
"""

__version__ = "0.1.0"

from .data import load_dataset  # noqa: E402
from .selection import Selection, list_methods, load_selection, select  # noqa: E402

__all__ = ["Selection", "__version__", "list_methods", "load_dataset", "load_selection", "select"]
