"""The parameters of the plugin's requests, parsed and validated before any read: a bad or missing one is an
:class:`.responses.ApiError` (400) that names it and says what would be right."""
from __future__ import annotations

from tensorboard import plugin_util

from .grouping import Pattern, compile_group_regex
from .responses import ApiError
from .selection import Selector


def where(request) -> tuple:
    """(request context, experiment id) for the data provider."""
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def arg(request, name: str, required: bool = False) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, f"missing parameter {name!r}", name)
        return None
    return value


# Steps and indices are int64 in event files: a value beyond is no step of any run.
INT64 = (-2**63, 2**63 - 1)


def int_arg(request, name: str) -> int | None:
    value = arg(request, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"parameter {name!r} must be an integer; got {value!r}", name) from None
    if not INT64[0] <= number <= INT64[1]:
        raise ApiError(400, f"parameter {name!r} must be an integer from -2**63 to 2**63 - 1; got {value!r}", name)
    return number


def probe_arg(request) -> int:
    """The ``probe`` parameter: index of a probe sample among those logged (default 0, the first)."""
    probe = int_arg(request, "probe")
    if probe is None:
        return 0
    if probe < 0:
        raise ApiError(400, f"parameter 'probe' must be an index >= 0 of a logged probe sample; got {probe}", "probe")
    return probe


def pick_probe(count: int, probe: int, run: str) -> int:
    """``probe`` if ``run`` logged that many probe samples; else 400 naming the valid range."""
    if probe >= count:
        raise ApiError(400, f"parameter 'probe' is {probe}, but run {run!r} logged {count} probe "
                            f"sample{'s' if count != 1 else ''} (0..{count - 1})", "probe")
    return probe


def pattern(request) -> Pattern:
    try:
        return compile_group_regex(arg(request, "group_regex"))
    except ValueError as e:
        raise ApiError(400, str(e), "group_regex") from None


def selector(request) -> Selector:
    run, group = arg(request, "run"), arg(request, "group")
    if run is not None and group is not None:
        raise ApiError(400, "give run= or group=, not both", "group")
    if run is not None:
        return Selector(run=run)
    if group is None:
        raise ApiError(400, "missing parameter 'run' (or 'group')", "run")
    return Selector(group=group, pattern=pattern(request))


def loss_tags(request) -> tuple[str | None, str | None]:
    """The requested overlays ``loss_tag`` and ``loss_tag2`` (None: the default, and none)."""
    return arg(request, "loss_tag"), arg(request, "loss_tag2")
