"""rlselector: shrink a training set to the samples that matter.

>>> import rlselector
>>> dataset = rlselector.load_dataset("digits")
>>> selection = rlselector.select(dataset, method="random", ratio=0.3, seed=0, progress=False)
>>> len(selection.subset(dataset)) == selection.manifest["n_kept"]
True
"""

from .api import list_methods, select
from .data import from_hf, from_torch, load_dataset
from .loop import SelectionLoop
from .selection import Selection, load_selection
from .version import __version__

__all__ = ["Selection", "SelectionLoop", "__version__", "from_hf", "from_torch", "list_methods", "load_dataset", "load_selection", "select"]
