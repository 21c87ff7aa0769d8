"""Training on several processes: one model, data sharded across ranks, gradients averaged.

``torchrun --nproc_per_node=K -m mlff train config.yaml`` (or ``mlff train config.yaml --nproc
K``) starts K processes (ranks) that find each other through the environment torchrun sets
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Every rank reads
all the data, computes the same statistics and builds the same model from the same seed; each
epoch, every rank trains on its own disjoint part of the shuffled order
(:func:`mlff.train.dataset.shard`), and ``DistributedDataParallel`` averages the gradients, so
the parameters stay identical on every rank. Validation is sharded too and its sums reduced;
decisions that depend on time (``training.max_minutes``) are taken by rank 0 and broadcast.
Only rank 0 prints and writes files.

The process group uses gloo on CPU and NCCL on CUDA, where rank ``LOCAL_RANK`` takes
``cuda:LOCAL_RANK``. Without torchrun's environment (or with ``WORLD_SIZE=1``) every function
here is a no-op and training runs in one process, exactly as before.
"""

import dataclasses
import datetime
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist

#: Waiting for rank 0 (checkpoints, the final evaluation of the test set) may take long.
TIMEOUT = datetime.timedelta(hours=2)


@dataclasses.dataclass(frozen=True)
class Context:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def from_environment() -> Context:
    """The rank and number of processes torchrun put in the environment (1 process without)."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them): {error}") from error
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} does not fit WORLD_SIZE={world_size}")
    return Context(rank=rank, world_size=world_size, local_rank=local_rank)


def setup(device: str) -> Tuple[Context, torch.device]:
    """Join the process group (when started by torchrun); returns the context and this rank's device.

    ``device`` is the config's: ``cpu`` (gloo), ``cuda`` or ``cuda:N`` (NCCL; with several
    processes each takes ``cuda:LOCAL_RANK`` instead).
    """
    context = from_environment()
    if not context.distributed:
        return context, torch.device(device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device is cuda but CUDA is not available")
        if context.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {context.local_rank} has no GPU ({torch.cuda.device_count()} visible): "
                "start at most that many processes per node"
            )
        chosen = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(chosen)
        backend = "nccl"
    else:
        chosen = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return context, chosen


def shutdown(context: Context) -> None:
    """Leave the process group (after every rank got there)."""
    if context.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, context: Context, device: torch.device) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when there are several processes, else itself.

    ``module`` should return the loss: DDP looks for the parameters that get no gradient (the
    loss does not reach them) from its outputs. Buffers (E0, scale) never change in training,
    so they are not broadcast every step.
    """
    if not context.distributed:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=device_ids, broadcast_buffers=False, find_unused_parameters=True
    )


def sum_over_ranks(context: Context, values: Sequence[float], device: torch.device) -> List[float]:
    """Element-wise sums of ``values`` over all ranks (float64)."""
    if not context.distributed:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def from_main(context: Context, value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not context.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_arrays(context: Context, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every rank's arrays, concatenated per key in rank order, on every rank."""
    if not context.distributed:
        return arrays
    gathered: List[Dict[str, np.ndarray]] = [{} for _ in range(context.world_size)]
    dist.all_gather_object(gathered, arrays)
    keys = [key for part in gathered for key in part]
    return {key: np.concatenate([part[key] for part in gathered if key in part]) for key in dict.fromkeys(keys)}
