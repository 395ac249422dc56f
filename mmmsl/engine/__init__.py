"""Training-loop pieces: hooks (atomic checkpoints, early named errors,
memory layout and reuse) and the authors' warm-up."""
from .hooks import *  # noqa: F401,F403
from .schedulers import *  # noqa: F401,F403
