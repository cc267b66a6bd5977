"""Find template variables that some contacts lack, for all contacts at once, before sending.

Templates use ``StrictUndefined``, so a missing ``contact.city`` would only
fail when that recipient's turn comes. Instead the templates' syntax trees are
read once for ``contact.<field>`` references, and every recipient is checked
against that set. A reference is *guarded* (and not required) when it sits
under ``default(...)``, is tested with ``is defined``, or appears inside the
body of an ``if``/``and`` whose test proves it defined.

An empty cell is a second way to go wrong: ``{{ contact.city }}的朋友`` prints
"的朋友". ``printed_fields`` finds the fields printed as they are — not under
``default(..., true)`` (which also replaces empty values), not after ``or``,
not inside an ``if`` that tests the field — so an empty value there stops the
send like a missing one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jinja2 import Environment, nodes

from mailer.core.recipient import Recipient

_GUARD_FILTERS = {"default", "d"}
_GUARD_TESTS = {"defined", "undefined"}


@dataclass(frozen=True)
class MissingVariable:
    """A contact field that some recipients lack: which one, and who."""

    field: str
    parts: tuple[str, ...]
    recipients: tuple[str, ...]


def required_contact_fields(env: Environment, source: str) -> set[str]:
    """``contact.<field>`` names the template needs unguarded."""
    found: set[str] = set()
    _visit(env.parse(source), frozenset(), found)
    return found


def _contact_field(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.attr if node.node.name == "contact" else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "contact"
        and isinstance(node.arg, nodes.Const)
    ):
        return str(node.arg.value)
    return None


def _proved(test: nodes.Node) -> frozenset[str]:
    """Fields a test expression proves defined when it is true."""
    if isinstance(test, nodes.Test) and test.name == "defined":
        name = _contact_field(test.node)
        return frozenset({name}) if name else frozenset()
    if isinstance(test, nodes.And):
        return _proved(test.left) | _proved(test.right)
    return frozenset()


def _visit(node: nodes.Node, guarded: frozenset[str], found: set[str]) -> None:
    name = _contact_field(node)
    if name is not None:
        if name not in guarded:
            found.add(name)
        return
    if isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS:
        return
    if isinstance(node, nodes.Test) and node.name in _GUARD_TESTS:
        return
    if isinstance(node, nodes.And):
        _visit(node.left, guarded, found)
        _visit(node.right, guarded | _proved(node.left), found)
        return
    if isinstance(node, nodes.If | nodes.CondExpr):
        body_guard = guarded | _proved(node.test)
        _visit(node.test, guarded, found)
        for child in _children(node, ("body", "expr1")):
            _visit(child, body_guard, found)
        for child in _children(node, ("elif_", "else_", "expr2")):
            _visit(child, guarded, found)
        return
    for child in node.iter_child_nodes():
        _visit(child, guarded, found)


def _children(node: nodes.Node, names: Iterable[str]) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for name in names:
        value = getattr(node, name, None)
        if isinstance(value, list):
            out.extend(value)
        elif isinstance(value, nodes.Node):
            out.append(value)
    return out


def printed_contact_fields(env: Environment, source: str) -> set[str]:
    """``contact.<field>`` names printed as they are, where an empty value would show."""
    found: set[str] = set()
    _visit_printed(env.parse(source), frozenset(), found, printing=False)
    return found


def _mentioned(node: nodes.Node) -> frozenset[str]:
    """Every contact field an expression refers to (a test on it guards it for emptiness)."""
    names = {_contact_field(n) for n in node.find_all((nodes.Getattr, nodes.Getitem))}
    own = _contact_field(node)
    return frozenset(n for n in (*names, own) if n)


def _visit_printed(
    node: nodes.Node, guarded: frozenset[str], found: set[str], *, printing: bool
) -> None:
    name = _contact_field(node)
    if name is not None:
        if printing and name not in guarded:
            found.add(name)
        return
    if isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS:
        replaces_empty = len(node.args) > 1 or any(k.key == "boolean" for k in node.kwargs)
        if replaces_empty:
            return
    if isinstance(node, nodes.Test):
        return
    if isinstance(node, nodes.Output):
        for expression in node.nodes:
            _visit_printed(expression, guarded, found, printing=True)
        return
    if isinstance(node, nodes.Or):  # an empty left side falls through to the right
        _visit_printed(node.left, guarded, found, printing=False)
        _visit_printed(node.right, guarded, found, printing=printing)
        return
    if isinstance(node, nodes.If | nodes.CondExpr):
        tested = guarded | _mentioned(node.test)
        for child in _children(node, ("body", "expr1")):
            _visit_printed(child, tested, found, printing=printing)
        for child in _children(node, ("elif_", "else_", "expr2")):
            _visit_printed(child, guarded, found, printing=printing)
        return
    for child in node.iter_child_nodes():
        _visit_printed(child, guarded, found, printing=printing)


def needed_fields(env: Environment, sources: Mapping[str, str]) -> dict[str, list[str]]:
    """Each ``contact.*`` field some part needs unguarded, with the parts that need it.

    ``email`` and ``name`` are left out: every recipient has them.
    """
    needed: dict[str, list[str]] = {}
    for part, source in sources.items():
        for field in required_contact_fields(env, source):
            if field not in ("email", "name"):  # filled in for everyone by render.contact_view
                needed.setdefault(field, []).append(part)
    return needed


def printed_fields(env: Environment, sources: Mapping[str, str]) -> dict[str, list[str]]:
    """Each ``contact.*`` field some part prints as it is, with the parts that print it."""
    printed: dict[str, list[str]] = {}
    for part, source in sources.items():
        for field in printed_contact_fields(env, source):
            if field not in ("email", "name"):
                printed.setdefault(field, []).append(part)
    return printed


def find_missing(
    env: Environment, sources: Mapping[str, str], recipients: Iterable[Recipient]
) -> list[MissingVariable]:
    """Every required ``contact.*`` field that some recipients lack (None counts as missing)."""
    needed = needed_fields(env, sources)
    lacking: dict[str, list[str]] = {f: [] for f in needed}
    for recipient in recipients:
        for field, who in lacking.items():
            if recipient.fields.get(field) is None:
                who.append(recipient.source or recipient.email)
    return [
        MissingVariable(field, tuple(needed[field]), tuple(who))
        for field, who in sorted(lacking.items())
        if who
    ]
