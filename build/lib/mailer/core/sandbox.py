"""Jinja's sandbox with limits: templates and segments are user code, and may be bombs.

Jinja's sandbox keeps templates from reaching Python internals, but not from
exhausting the machine: ``('a' * 10**9)|length`` asks for a gigabyte,
``(email * 100000000)|length`` for two, and two nested ``range(100000)`` loops
run for hours — in a send, or in the preview's request thread. Here:

* sizes: ``*`` on strings and lists, ``**``, ``%``-formatting widths (written
  out, or taken from the arguments: ``'%*d' % (10**9, 1)``, ``'{:{}}'.format``), string
  methods and filters that pad (``center``, ``ljust``, ``indent``, ``format``
  ...) may not produce more than ``MAX_ITEMS`` characters or items;
* time: a render or a segment test runs under a deadline (``limits``), checked
  at every attribute access, call, operator, printed value and — since
  ``render_limited`` consumes a template's output piece by piece — at every
  piece of output, so even a loop over plain text stops in time;
* output: a render may not print more than ``MAX_OUTPUT`` characters.

A limit hit raises ``SandboxLimit`` (a ``SecurityError``) whose message says
which limit and by how much; callers turn it into an error naming the
template part or the segment expression.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Deadlines are on this clock (a name of its own, so a test can make time pass).
_clock = time.monotonic

MAX_ITEMS = 1_000_000  # characters of a string, or items of a list, one operation may make
MAX_OUTPUT = 10_000_000  # characters one render may print
MAX_POWER_BITS = 4096  # ** results beyond this many bits are refused
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_BIG_WIDTH = re.compile(r"\d{7,}")  # a format width or precision of a million or more
# A width or precision taken from the arguments: '%*d' % (10**9, 1), '{:{}}'.format(1, 10**9).
_STAR_WIDTH = re.compile(r"%[#0 +-]*(?:\*|\d*\.\*)")
_NESTED_WIDTH = re.compile(r"\{[^{}]*:[^{}]*\{")


class SandboxLimit(SecurityError):
    """A template or segment went past one of the sandbox's limits."""


@dataclass
class _Budget:
    deadline: float
    seconds: float
    output_left: int


_budget: ContextVar[_Budget | None] = ContextVar("mailer_sandbox_budget", default=None)


@contextmanager
def limits(seconds: float, output: int = MAX_OUTPUT) -> Iterator[None]:
    """Run the code in this block under a deadline (and, for ``render_limited``, an output
    budget)."""
    token = _budget.set(_Budget(_clock() + seconds, seconds, output))
    try:
        yield
    finally:
        _budget.reset(token)


def check_time() -> None:
    """Raise ``SandboxLimit`` when the current block's deadline has passed."""
    budget = _budget.get()
    if budget is not None and _clock() > budget.deadline:
        raise SandboxLimit(f"it ran for more than {budget.seconds:g} s, the limit")


def count_output(value: Any) -> Any:
    """Jinja's ``finalize`` for every printed value: None prints '', and the deadline holds."""
    check_time()
    return "" if value is None else value


def render_limited(template: Any, context: dict[str, Any], seconds: float) -> str:
    """Render ``template`` within ``seconds`` and ``MAX_OUTPUT`` characters.

    The output is taken piece by piece from ``template.generate`` (literal text
    and printed values alike), so a loop that only repeats text is stopped too.
    """
    generate = getattr(template, "generate", None)
    if generate is None:  # a part with no Jinja in it (compile.ConstantTemplate)
        return str(template.render(context))
    with limits(seconds):
        budget = _budget.get()
        assert budget is not None
        pieces = []
        for piece in generate(context):
            budget.output_left -= len(piece)
            if budget.output_left < 0:
                raise SandboxLimit(f"it printed more than {MAX_OUTPUT:,} characters, the limit")
            if _clock() > budget.deadline:
                raise SandboxLimit(f"it ran for more than {seconds:g} s, the limit")
            pieces.append(piece)
        return "".join(pieces)


def _too_big(size: int) -> SandboxLimit:
    return SandboxLimit(
        f"it makes {size:,} characters or items, more than the {MAX_ITEMS:,} allowed"
    )


def _check_size(size: Any) -> None:
    if isinstance(size, int) and size > MAX_ITEMS:
        raise _too_big(size)


def check_format(template: str, values: Any) -> None:
    """Refuse a format string whose widths would make more than ``MAX_ITEMS`` characters.

    A width written out (``'%9999999d'``) is refused by its digits; a width taken
    from the arguments (``'%*d'``, ``'{:{}}'``) by the size of the numbers given.
    """
    if _BIG_WIDTH.search(template):
        raise SandboxLimit("a format width of a million characters or more")
    if not (_STAR_WIDTH.search(template) or _NESTED_WIDTH.search(template)):
        return
    if isinstance(values, dict):
        values = list(values.values())
    elif not isinstance(values, tuple | list):
        values = [values]
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ITEMS:
            raise SandboxLimit(
                f"a format width of {value:,} (given as an argument), more than the "
                f"{MAX_ITEMS:,} characters allowed"
            )


def _limited_filter(original: Callable[..., Any], *width_args: int) -> Callable[..., Any]:
    """A filter whose numeric arguments (widths) may not exceed ``MAX_ITEMS``."""

    def limited(*args: Any, **kwargs: Any) -> Any:
        for index in width_args:
            if index < len(args):
                _check_size(args[index])
        for value in kwargs.values():
            _check_size(value)
        return original(*args, **kwargs)

    limited.__name__ = getattr(original, "__name__", "filter")
    return limited


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size, time and output limits (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any):
        options.setdefault("finalize", count_output)
        super().__init__(**options)
        for name, width_args in (("center", (1,)), ("indent", (1,)), ("wordwrap", (1,))):
            if name in self.filters:
                self.filters[name] = _limited_filter(self.filters[name], *width_args)
        self.filters["format"] = _limited_format(self.filters["format"])

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        """``*``, ``**`` and ``%`` with their results' sizes checked first."""
        check_time()
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple | bytes) and isinstance(times, int):
                    _check_size(len(seq) * times)
            return operator.mul(left, right)
        if op == "**":
            ints = isinstance(left, int) and isinstance(right, int)
            if (
                ints
                and right > 0
                and abs(left) > 1
                and right * abs(left).bit_length() > MAX_POWER_BITS
            ):
                raise SandboxLimit(f"{left} ** {right} is too large a number")
            return operator.pow(left, right)
        if isinstance(left, str):
            check_format(left, right)
        return super().call_binop(context, op, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls, with the deadline checked and padding/format sizes limited."""
        check_time()
        padding = getattr(__obj, "__name__", "") in _PADDING_METHODS
        if padding and isinstance(getattr(__obj, "__self__", None), str):
            for value in (*args, *kwargs.values()):
                _check_size(value)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map``, with widths given as arguments limited too."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__

        def limited(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if value.__name__ == "format_map" and args else {}
            extra = list(mapping.values()) if isinstance(mapping, dict) else []
            check_format(template, [*args, *kwargs.values(), *extra])
            return wrapped(*args, **kwargs)

        return limited

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Attribute access, with the deadline checked (and no huge ``str.format`` widths)."""
        check_time()
        if (
            attribute in ("format", "format_map")
            and isinstance(obj, str)
            and _BIG_WIDTH.search(obj)
        ):
            raise SandboxLimit("a format width of a million characters or more")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Item access, with the deadline checked."""
        check_time()
        return super().getitem(obj, argument)


def _limited_format(original: Callable[..., Any]) -> Callable[..., Any]:
    def limited(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            check_format(value, [*args, *kwargs.values()])
        return original(value, *args, **kwargs)

    return limited
