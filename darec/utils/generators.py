"""Pickling support for objects that hold a :class:`torch.Generator`."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["GeneratorPickling"]


class GeneratorPickling:
    """Mixin: pickles the ``generator`` attribute as the bytes of its state.

    A :class:`torch.Generator` cannot be pickled, and its state tensor does not survive
    torch.multiprocessing's pickler (``ddp_spawn``), so the state travels as plain bytes and a new
    generator is rebuilt from them on the other side; copies continue the same random sequence.

    Example:
        >>> import copy
        >>> class Sampler(GeneratorPickling):
        ...     def __init__(self):
        ...         self.generator = torch.Generator().manual_seed(0)
        >>> a = Sampler()
        >>> b = copy.deepcopy(a)  # goes through __getstate__/__setstate__, as pickling does
        >>> torch.equal(torch.rand(3, generator=a.generator), torch.rand(3, generator=b.generator))
        True
    """

    generator: torch.Generator

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["generator"] = bytes(self.generator.get_state().tolist())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator = torch.Generator()
        generator.set_state(torch.tensor(list(state["generator"]), dtype=torch.uint8))
        self.__dict__.update({**state, "generator": generator})
