"""Which modules of a model NAS is measured on, and how their outputs are laid out."""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from torch import nn

from . import torch_internals as internals

# Module types whose output is a pre-activation with the D filters along a known dimension.
_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Conv1d, "conv1d"),
    (nn.Conv2d, "conv2d"),
    (nn.Conv3d, "conv3d"),
    (nn.Linear, "linear"),
)


def layer_kind(module: nn.Module) -> str | None:
    """``conv1d``/``conv2d``/``conv3d``/``linear`` for a supported module, else None."""
    for cls, kind in _KINDS:
        if isinstance(module, cls):
            return kind
    return None


def filter_dim(kind: str) -> int:
    """Dimension of a layer's output that holds the D filters: channels for conv, last for linear."""
    return -1 if kind == "linear" else 1


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind ``torch.compile``, DataParallel and DistributedDataParallel wrappers."""
    while True:
        inner = internals.compiled_inner(model)
        if inner is not None:
            model = inner
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def is_sharded(model: nn.Module) -> bool:
    """Whether FSDP2 (``fully_shard``) shards ``model`` (unwrapped): then every forward is a collective
    of all ranks, and so is the monitor's probe pass.

    ValueError for the parallel wrappings NAS is not measured under, rather than a hang or statistics of
    a shard: FSDP1 ``FullyShardedDataParallel`` and tensor parallelism (``parallelize_module``, DTensor
    parameters outside ``fully_shard``), under which a layer's output may hold a slice of its filters.
    """
    modules = list(model.modules())
    fsdp1 = internals.loaded("torch.distributed.fsdp", "FullyShardedDataParallel")
    if fsdp1 is not None and any(isinstance(m, fsdp1) for m in modules):
        raise ValueError(
            f"{type(model).__name__} is or holds an FSDP1 FullyShardedDataParallel, under which nas_logger "
            "does not measure NAS; shard the model with torch.distributed.fsdp.fully_shard (FSDP2) instead"
        )
    parallel = [name or type(model).__name__ for name, m in model.named_modules() if internals.is_tensor_parallel(m)]
    if parallel:
        raise ValueError(
            f"modules {parallel[:3]} of {type(model).__name__} are tensor parallel (parallelize_module / "
            "distribute_module): a layer's output may hold a slice of its filters, so NAS is not measured "
            "under tensor parallelism; shard with torch.distributed.fsdp.fully_shard alone"
        )
    fsdp2 = tuple(cls for cls in (internals.loaded(*path) for path in internals.FSDP_MODULE_PATHS) if cls is not None)
    sharded = bool(fsdp2) and any(isinstance(m, fsdp2) for m in modules)
    dtensor = internals.loaded("torch.distributed.tensor", "DTensor")
    if not sharded and dtensor is not None and any(isinstance(p, dtensor) for p in model.parameters()):
        raise ValueError(
            f"{type(model).__name__} has DTensor parameters but no fully_shard module: only FSDP2 sharding "
            "(torch.distributed.fsdp.fully_shard) is supported, not tensor parallelism"
        )
    return sharded


def _never_called(model: nn.Module) -> dict[str, str]:
    """Supported modules that their parent applies through their weight without calling them, so that no
    hook ever sees their output, by qualified name, with why."""
    return {
        f"{name}.out_proj" if name else "out_proj":
            "nn.MultiheadAttention applies its weight with F.linear (multi_head_attention_forward) and never "
            "calls out_proj, so no hook sees its output"
        for name, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)
    }


def select_layers(
    model: nn.Module, layers: Iterable[str | nn.Module] | str | None = None, allow_empty: bool = False
) -> dict[str, nn.Module]:
    """Supported layers of ``model`` by qualified name, in registration order.

    ``layers``: None for every Conv1d/2d/3d and Linear; otherwise module names, glob patterns
    (``"layer4.*"``) or the module objects themselves. Raises ValueError for a model without
    supported layers, an empty selection (unless ``allow_empty``: an empty exclusion list) or an item
    that matches nothing. A model that is itself a Conv/Linear layer is named by its class,
    ``type(model).__name__`` (e.g. ``"Linear"``), since its qualified name is the empty string, which no
    tag or URL can carry. Layers that never run as modules (``nn.MultiheadAttention.out_proj``) are not
    listed; asking for one alone raises ValueError saying why.
    """
    silent = _never_called(model)
    supported = {name or type(model).__name__: m for name, m in model.named_modules()
                 if layer_kind(m) is not None and name not in silent}
    if not supported:
        raise ValueError(
            f"{type(model).__name__} has no Conv1d/Conv2d/Conv3d/Linear layer to measure NAS on"
        )
    if layers is None:
        return supported
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    layers = list(layers)
    if not layers and not allow_empty:
        raise ValueError(
            f"layers is an empty selection; pass None for every Conv/Linear layer of {type(model).__name__} "
            f"or choose from {sorted(supported)}"
        )
    by_module = {id(m): name for name, m in supported.items()}
    chosen: set[str] = set()
    for item in layers:
        if isinstance(item, nn.Module):
            if id(item) not in by_module:
                _refuse_never_called(model, item, silent)
                raise ValueError(
                    f"layer {type(item).__name__} is not a Conv/Linear module of {type(model).__name__}"
                )
            chosen.add(by_module[id(item)])
            continue
        matches = [name for name in supported if fnmatch.fnmatchcase(name, item)]
        if not matches:
            _refuse_never_called(model, item, silent)
            raise ValueError(
                f"layer {item!r} matches no Conv/Linear layer of {type(model).__name__}; "
                f"choose from {sorted(supported)}"
            )
        chosen.update(matches)
    return {name: m for name, m in supported.items() if name in chosen}


def _refuse_never_called(model: nn.Module, item: str | nn.Module, never_called: dict[str, str]) -> None:
    """ValueError saying why, when ``item`` (which selects no measurable layer) names one that never runs."""
    for name, module in model.named_modules():
        if name in never_called and (module is item if isinstance(item, nn.Module) else fnmatch.fnmatchcase(name, item)):
            raise ValueError(f"layer {name!r} is never called as a module: {never_called[name]}; its NAS cannot be measured")


# Normalisation layers: a layer that feeds one has its NAS measured before it, where the method's reading of a
# climb does not hold (the paper's NormNet keeps NAS flat, its ResNet50 with batch norm is chaotic).
NORMALISATIONS: tuple[type[nn.Module], ...] = tuple(
    cls for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm,
                    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, getattr(nn, "RMSNorm", None))
    if cls is not None
)


def normalised_layers(model: nn.Module, layers: Iterable[str]) -> dict[str, str]:
    """The ``layers`` (qualified names) that feed a normalisation layer, with its class name.

    A layer feeds the first leaf module registered after it that has parameters or is a normalisation
    (activations, dropout, pooling and ``nn.Identity`` are passed over): ``conv -> BatchNorm2d`` and
    ``conv -> ReLU -> BatchNorm2d`` count, ``conv -> ReLU -> conv`` does not. Registration order stands in for
    the order of the forward, which is the same in nn.Sequential stacks, torchvision's ResNets and VGGs and
    the usual ``self.conv1, self.bn1`` definitions; a normalisation applied functionally is not seen.
    """
    wanted = set(layers)
    leaves = [(name or type(model).__name__, m) for name, m in model.named_modules() if not any(m.children())]
    fed = {}
    for i, (name, _) in enumerate(leaves):
        if name not in wanted:
            continue
        following = (m for _, m in leaves[i + 1:] if isinstance(m, NORMALISATIONS)
                     or next(m.parameters(recurse=False), None) is not None)
        nxt = next(following, None)
        if isinstance(nxt, NORMALISATIONS):
            fed[name] = type(nxt).__name__
    return fed
