"""Run grouping: repeats of one training (``vanilla/seed0``, ``vanilla/seed1``) form one group.

A group regex maps a run name to its group name:

- if the regex has a capturing group, the group name is the text of the first capturing group of the
  first match (a search, as ``re.search``);
- otherwise it is the run name with the first match removed.

A run that the regex does not match, or for which that gives an empty name, is a group of its own
(named like the run). Its key is ``Group(run, matched=False)``, so a run ``vanilla`` beside
``vanilla/seed0`` and ``vanilla/seed1`` (group ``Group("vanilla", True)``) stays out of their group.

The regex comes from the URL, so it runs on RE2 (google-re2), whose matching time is linear in the
run name: no pattern can hold a server thread with catastrophic backtracking (``(a*)*b``). RE2 has no
backreferences or lookarounds; such a pattern is refused with the engine's message.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import re2

# Bad patterns are the client's error, answered as a 400; RE2 would also print each one to stderr.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
Pattern = type(re2.compile(""))  # google-re2 exports its compiled-pattern type under no public name

# A trailing "/seedN", "_repN", "-runN", ... marks a repeat.
DEFAULT_GROUP_REGEX = r"[_/-](?:seed|rep|run)\d+$"
MAX_GROUP_REGEX = 1000  # characters; a longer one is no grouping rule but an attack


class Group(NamedTuple):
    """A group's key: its name, and whether the regex gave that name (False: a run of its own)."""

    name: str
    matched: bool


def compile_group_regex(text: str | None) -> Pattern:
    """The default regex for ``None`` or ``""``; raises ``ValueError`` naming the problem otherwise."""
    if not text:
        text = DEFAULT_GROUP_REGEX
    if len(text) > MAX_GROUP_REGEX:
        raise ValueError(f"group_regex is {len(text)} characters long; at most {MAX_GROUP_REGEX} are allowed")
    try:
        return re2.compile(text, _OPTIONS)
    except re2.error as e:  # also deep nesting and repeat counts beyond RE2's memory budget
        reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(
            f"group_regex {text!r} is not a valid regular expression for RE2 (no backreferences or "
            f"lookarounds): {reason}"
        ) from None


def group_key(run: str, pattern: Pattern) -> Group:
    """Group of ``run`` under ``pattern`` (see the module docstring)."""
    match = pattern.search(run)
    if match is None:
        return Group(run, False)
    if pattern.groups:
        name = match.group(1) or ""
    else:
        name = run[: match.start()] + run[match.end() :]
    return Group(name, True) if name else Group(run, False)


def group_runs(runs: Iterable[str], pattern: Pattern, keys: dict[str, Group] | None = None) -> dict[Group, list[str]]:
    """{group: sorted run names}, by name, a matched group before the unmatched run of the same name; ``keys``:
    the runs' group keys under ``pattern`` where known ({run: group_key(run, pattern)})."""
    keys = keys or {}
    groups: dict[Group, list[str]] = {}
    for run in sorted(runs):
        found = keys.get(run)
        groups.setdefault(found if found is not None else group_key(run, pattern), []).append(run)
    return dict(sorted(groups.items(), key=lambda item: (item[0].name, not item[0].matched)))


def group_members(groups: dict[Group, list[str]], name: str) -> list[str]:
    """The runs of group ``name`` in ``groups`` (see :func:`group_runs`): those the pattern maps to ``name``,
    else the unmatched run ``name``."""
    return groups.get(Group(name, True)) or groups.get(Group(name, False), [])
