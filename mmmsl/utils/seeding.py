"""Random sources that follow mmengine's ``randomness`` config."""
import os
from typing import Optional

import numpy as np
from mmengine.dist import get_rank


class ProcessRNG:
    """A ``np.random.Generator`` per process, seeded from numpy's global RNG.

    mmengine seeds numpy's global RNG in the main process
    (``randomness=dict(seed=...)``) and again in every dataloader worker
    (from the seed, the rank and the worker id), so a generator drawn from it
    on first use in each process is reproducible and differs across workers
    and ranks; the rank is mixed in as well, for ``num_workers=0`` runs whose
    ranks share one seed. A fork is noticed by the process id and gets a
    fresh generator.

    Args:
        seed (int, optional): A fixed seed instead (then the same stream in
            every process).
    """

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self._pid = None
        self._rng = None

    def __call__(self) -> np.random.Generator:
        pid = os.getpid()
        if self._pid != pid:
            if self.seed is None:
                entropy = [int(np.random.randint(2**31)), get_rank()]
            else:
                entropy = self.seed
            self._rng = np.random.default_rng(entropy)
            self._pid = pid
        return self._rng
