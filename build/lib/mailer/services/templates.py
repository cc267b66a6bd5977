"""``mailer templates adopt``: a template from another tool, rewritten as mailer's Jinja."""

from __future__ import annotations

from pathlib import Path

from mailer.compose.adopt import Adopted, Untranslated, adopt_template
from mailer.core.errors import TemplateError

__all__ = ["Adopted", "Untranslated", "adopt_file", "save_adopted"]


def adopt_file(path: Path) -> Adopted:
    """Read ``path`` and rewrite its foreign merge tags (nothing is written)."""
    try:
        source = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TemplateError("template not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read the template: {exc}", where=str(path)) from None
    return adopt_template(source)


def save_adopted(adopted: Adopted, target: Path) -> None:
    """Write the rewritten template to ``target``; refused when it is not valid Jinja."""
    if adopted.error is not None:
        raise TemplateError(
            f"the rewritten template is not valid Jinja ({adopted.error}); nothing was written",
            where=str(target),
            hint="fix the tags listed as not translated in the source, then adopt it again",
        )
    try:
        target.write_text(adopted.text, encoding="utf-8")
    except OSError as exc:
        raise TemplateError(
            f"cannot write the template: {exc.strerror or exc}", where=str(target)
        ) from None
