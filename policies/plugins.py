"""Policies from outside the package: ``module:Class[:json-args]`` and the ``dunning.policies``
entry-point group, plus the splitting of a ``--policies`` list.

A researcher's policy is a class (or any callable returning a policy) implementing the
contract of :class:`simulations.policy.Policy` (``docs/policies.md``):

- ``mypkg.policies:EmailThenCall`` imports ``mypkg.policies`` (from ``sys.path``, e.g.
  ``PYTHONPATH``) and calls ``EmailThenCall()``;
- ``mypkg.policies:EmailThenCall:{"call_day": 20}`` calls ``EmailThenCall(call_day=20)``
  (a JSON object gives keyword arguments, a JSON array positional ones, any other JSON
  value one positional argument);
- an installed package can name its policies in its ``pyproject.toml``::

      [project.entry-points."dunning.policies"]
      email-then-call = "mypkg.policies:EmailThenCall"

  and ``email-then-call`` or ``email-then-call:{"call_day": 20}`` then works in every
  ``--policies`` / ``--policy`` option.

An object that is not a :class:`Policy` subclass but has ``act(observations, masks)`` is
wrapped so that the optional hooks have their defaults.
"""

from __future__ import annotations

import importlib
import json
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import numpy as np

from engine.errors import InputError
from simulations.policy import Policy

ENTRY_POINT_GROUP = "dunning.policies"
_OPEN, _CLOSE = "([{", ")]}"


def split_policy_specs(text: str) -> list[str]:
    """Split a ``--policies`` value at the commas that separate policies.

    Commas inside brackets, braces or quotes belong to one spec, so
    ``never,fixed[14:email;30:letter],mymod:Cls:{"a": 1, "b": 2}`` gives three specs.

    Raises:
        InputError: on unbalanced brackets or quotes, naming the position.
    """
    specs, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                raise InputError(f"--policies {text!r}: unmatched {ch!r} at position {i + 1}")
        elif ch == "," and depth == 0:
            specs.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise InputError(f"--policies {text!r}: unclosed {quote or 'bracket'}")
    specs.append(text[start:])
    return [s.strip() for s in specs if s.strip()]


def policy_entry_points() -> dict[str, EntryPoint]:
    """Installed policies: entry-point name -> entry point (group ``dunning.policies``)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def is_plugin_spec(spec: str) -> bool:
    """Whether ``spec`` names an installed policy or has the ``module:Attr`` form."""
    head, sep, rest = spec.strip().partition(":")
    if head in policy_entry_points():
        return True
    attr = rest.partition(":")[0]
    return bool(sep and attr and all(p.isidentifier() for p in head.split("."))
                and all(p.isidentifier() for p in attr.split(".")))


def load_plugin_policy(spec: str) -> tuple[str, Policy]:
    """``(display name, policy)`` of a plugin spec (see the module docstring).

    Raises:
        InputError: the module cannot be imported, has no such attribute, the JSON
            arguments do not parse, the constructor refuses them, or the result has no
            ``act``. The message names the spec and what to do.
    """
    spec = spec.strip()
    head, _, rest = spec.partition(":")
    installed = policy_entry_points()
    if head in installed:
        target, args_text = installed[head].value, rest
        try:
            factory = installed[head].load()
        except Exception as exc:  # noqa: BLE001 - any import failure of a plugin
            raise InputError(f"policy {spec!r}: the installed entry point {head!r} = "
                             f"{target!r} does not load ({type(exc).__name__}: {exc})") from None
    else:
        attr, _, args_text = rest.partition(":")
        factory = _import_attr(spec, head, attr)
    args = _parse_args(spec, args_text)
    try:
        if isinstance(args, dict):
            policy = factory(**args)
        elif isinstance(args, list):
            policy = factory(*args)
        else:
            policy = factory() if args_text == "" else factory(args)
    except Exception as exc:  # noqa: BLE001 - a plugin's constructor may raise anything
        raise InputError(f"policy {spec!r}: constructing it failed "
                         f"({type(exc).__name__}: {exc})") from None
    if not callable(getattr(policy, "act", None)):
        raise InputError(f"policy {spec!r}: {type(policy).__name__} has no act(observations, "
                         "masks) method (see docs/policies.md for the Policy contract)")
    if not isinstance(policy, Policy):
        policy = DuckTypedPolicy(policy)
    return spec, policy


def _import_attr(spec: str, module_name: str, attr: str) -> Any:
    if not module_name or not attr:
        raise InputError(f"policy {spec!r}: expected module:Class[:json-args], e.g. "
                         "mypkg.policies:EmailThenCall")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"policy {spec!r}: cannot import module {module_name!r} ({exc}); "
                         "is its directory on PYTHONPATH or the package installed?") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            own = sorted(n for n, v in vars(module).items() if not n.startswith("_")
                         and callable(v) and getattr(v, "__module__", "") == module_name)
            raise InputError(f"policy {spec!r}: module {module_name!r} has no {attr!r} "
                             f"(its classes and functions: {', '.join(own[:20]) or 'none'})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"policy {spec!r}: {attr!r} is not a class or function")
    return obj


def _parse_args(spec: str, text: str) -> Any:
    if text == "":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"policy {spec!r}: arguments {text!r} are not JSON ({exc.msg} at "
                         f"column {exc.colno}); e.g. {{\"call_day\": 20}}") from None


class DuckTypedPolicy(Policy):
    """A plugin object with ``act`` but not derived from :class:`Policy`: forwards ``act``
    (and the optional hooks, when it has them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", type(inner).__name__))

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return self.inner.act(observations, masks)

    def bind_simulator(self, sim: Any) -> None:
        hook = getattr(self.inner, "bind_simulator", None)
        if callable(hook):
            hook(sim)
