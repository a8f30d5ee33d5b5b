"""Every private torch API nas_logger uses, in one place: each is looked up once, at import, and a public
path stands in where a torch build lacks it (``available`` says which were found).

=====================================================  ==========================================  =================================
private API                                            used for                                    without it
=====================================================  ==========================================  =================================
``torch.utils._pytree.tree_leaves``, ``tree_map_only``  walking a captured forward call's nested    a recursion over tuples, lists
                                                       arguments (probe capture, FSDP sharing)     and dicts (namedtuples kept)
``torch._lazy_clone``                                  a copy-on-write save of a layer output for  ``Tensor.clone()``: a copy at
                                                       the penalty's backward                      once
``OptimizedModule._orig_mod``                          the module behind ``torch.compile``         (none: an attribute lookup)
``Module._distribute_module_applied``                  refusing tensor-parallel modules            the DTensor-parameter check alone
``torch.distributed._composable.fsdp.FSDPModule``      FSDP2 on torch builds before its public     ``torch.distributed.fsdp``'s
                                                       ``torch.distributed.fsdp.FSDPModule``       ``FSDPModule``
=====================================================  ==========================================  =================================
"""
from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

try:
    from torch.utils import _pytree as _torch_pytree
except ImportError:
    _torch_pytree = None

_TREE_LEAVES: Callable[[Any], list] | None = getattr(_torch_pytree, "tree_leaves", None)
_TREE_MAP_ONLY: Callable[..., Any] | None = getattr(_torch_pytree, "tree_map_only", None)
_LAZY_CLONE: Callable[[torch.Tensor], torch.Tensor] | None = getattr(torch, "_lazy_clone", None)

# Where FSDP2's module class lives: the public module first, the private one of older torch builds after.
FSDP_MODULE_PATHS = (("torch.distributed.fsdp", "FSDPModule"), ("torch.distributed._composable.fsdp", "FSDPModule"))

available = {
    "torch.utils._pytree": _TREE_LEAVES is not None and _TREE_MAP_ONLY is not None,
    "torch._lazy_clone": _LAZY_CLONE is not None,
}


def _leaves(tree: Any) -> list:
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for item in tree.values() for leaf in _leaves(item)]
    return [tree]


def _map_only(cls: type, fn: Callable[[Any], Any], tree: Any) -> Any:
    if isinstance(tree, cls):
        return fn(tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple keeps its type
        return type(tree)(*(_map_only(cls, fn, item) for item in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_map_only(cls, fn, item) for item in tree)
    if isinstance(tree, dict):
        mapped = {key: _map_only(cls, fn, value) for key, value in tree.items()}
        return OrderedDict(mapped) if isinstance(tree, OrderedDict) else mapped
    return tree


def tree_leaves(tree: Any) -> list:
    """The leaves of nested tuples, lists and dicts, in order (dict values in insertion order)."""
    return _TREE_LEAVES(tree) if _TREE_LEAVES is not None else _leaves(tree)


def tree_map_only(cls: type, fn: Callable[[Any], Any], tree: Any) -> Any:
    """``tree`` with every leaf of type ``cls`` replaced by ``fn(leaf)``, the containers rebuilt."""
    return _TREE_MAP_ONLY(cls, fn, tree) if _TREE_MAP_ONLY is not None else _map_only(cls, fn, tree)


def lazy_clone(a: torch.Tensor) -> torch.Tensor:
    """A copy-on-write clone of ``a`` where torch has one (no copy unless ``a`` is written to later),
    else a plain clone; traced code (torch.compile) copies at once as well."""
    if _LAZY_CLONE is None or torch.compiler.is_compiling():
        return a.clone()
    return _LAZY_CLONE(a)


def compiled_inner(module: torch.nn.Module) -> torch.nn.Module | None:
    """The module a ``torch.compile`` wrapper runs, or None when ``module`` is no such wrapper."""
    return getattr(module, "_orig_mod", None)


def is_tensor_parallel(module: torch.nn.Module) -> bool:
    """Whether ``distribute_module`` / ``parallelize_module`` turned ``module`` tensor parallel."""
    return bool(getattr(module, "_distribute_module_applied", False))


def loaded(module: str, name: str) -> type | None:
    """``module.name`` if the user's program imported ``module`` (no model can be wrapped by it otherwise:
    importing FSDP here would cost every user seconds), else None."""
    return getattr(sys.modules.get(module), name, None)
