import numpy as np
import pytest

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.forgetting import forgetting_score
from rlselector.selection import scores
from rlselector.selection.dynamics import ProxyRecord

# epochs × samples: s0 always right, s1 flips twice, s2 never learned, s3 learned then forgotten once
CORRECT = np.array(
    [
        [1, 1, 0, 0],
        [1, 0, 0, 1],
        [1, 1, 0, 1],
        [1, 0, 0, 0],
        [1, 1, 0, 0],
    ],
    dtype=bool,
)


class TestForgetting(MethodContract):
    method = "forgetting"
    select_kwargs = {"proxy_config": TINY_PROXY}


def test_forgetting_counts_by_hand():
    np.testing.assert_array_equal(scores.forgetting_counts(CORRECT), [0, 2, 0, 1])
    np.testing.assert_array_equal(scores.never_learned(CORRECT), [False, False, True, False])
    # never learned → E = 5, above any possible count
    np.testing.assert_array_equal(scores.forgetting_events(CORRECT), [0, 2, 5, 1])


def test_ties_broken_by_mean_loss():
    correct = np.ones((3, 3), dtype=bool)  # nobody forgets: all counts 0
    loss = np.array([[0.1, 0.5, 0.3]] * 3)
    # ranks of mean loss 0.1, 0.5, 0.3 → 0, 2, 1, scaled by 1/3
    np.testing.assert_allclose(forgetting_score(correct, loss), [0.0, 2 / 3, 1 / 3])
    np.testing.assert_array_equal(forgetting_score(correct), [0, 0, 0])


def test_select_keeps_most_forgotten_from_given_dynamics():
    data = toy_dataset([0, 0, 1, 1])
    record = ProxyRecord(loss=np.zeros((5, 4)), correct=CORRECT, source="hand-made")
    sel = select(data, method="forgetting", ratio=0.5, seed=0, dynamics=record, tie_break="none", progress=False)
    np.testing.assert_array_equal(sel.raw_scores, [0, 2, 5, 1])
    np.testing.assert_array_equal(sel.indices, [1, 2])
    assert sel.manifest["never_learned"] == 1 and sel.manifest["unforgettable"] == 1


def test_one_epoch_of_dynamics_refused():
    data = toy_dataset([0, 1])
    record = ProxyRecord(loss=np.zeros((1, 2)), correct=np.ones((1, 2), dtype=bool), source="one-epoch.npz")
    with pytest.raises(InputError, match="at least 2 epochs"):
        select(data, method="forgetting", ratio=0.5, dynamics=record, progress=False)
