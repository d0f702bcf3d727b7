import pickle

import torch

from darec.callbacks import LocalStructureAlignment
from darec.utils import GeneratorPickling


class _Holder(GeneratorPickling):
    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.payload = [1, 2, 3]


def test_pickled_copy_continues_the_same_random_sequence():
    holder = _Holder(7)
    torch.rand(5, generator=holder.generator)  # advance: the copy must carry the current state
    clone = pickle.loads(pickle.dumps(holder))
    assert clone.payload == [1, 2, 3]
    assert torch.equal(torch.rand(4, generator=holder.generator), torch.rand(4, generator=clone.generator))


def test_state_travels_as_plain_bytes():
    state = _Holder(0).__getstate__()
    assert isinstance(state["generator"], bytes)


def test_local_structure_alignment_callback_pickles():
    callback = LocalStructureAlignment(num_clusters=3, seed=5)
    clone = pickle.loads(pickle.dumps(callback))
    assert clone.num_clusters == 3
    assert torch.equal(torch.rand(3, generator=callback.generator), torch.rand(3, generator=clone.generator))
