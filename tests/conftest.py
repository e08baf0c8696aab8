import os

import pytest
import torch

# Two cores on CI: one torch thread per test process keeps runs deterministic and predictable.
torch.set_num_threads(int(os.environ.get("RLSELECTOR_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits():
    from rlselector import load_dataset

    return load_dataset("digits")
