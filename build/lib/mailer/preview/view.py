"""What the preview page shows, as data: inbox rows, recipient labels, headers, errors.

Pure helpers of the preview session (``mailer.preview.session``): no files
watched, no threads, no HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import replace
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from mailer.campaign.prepared import PreparedCampaign
from mailer.checks.findings import display_width
from mailer.compose.dkim import signer_from_settings
from mailer.compose.locales import locale_key
from mailer.compose.outgoing import Outgoing
from mailer.compose.render import variant_label
from mailer.core.campaign import check_address
from mailer.core.errors import ConfigError, MailerError, TemplateError
from mailer.core.recipient import Recipient
from mailer.core.settings import SETTINGS_FILE, Settings

SAMPLE_LIMIT = 20  # contacts offered in the recipient picker
SCAN_LIMIT = 5000  # how far to look for a contact with blank optional fields
# A phone's mail list (375 px wide) shows about 38 columns per line: one line of
# subject, two lines of preheader. CJK characters take two columns each.
FROM_COLUMNS = 30
SUBJECT_COLUMNS = 38
PREHEADER_COLUMNS = 76


def truncate_columns(text: str, columns: int) -> str:
    """``text`` cut to ``columns`` display columns with an ellipsis, as a phone list cuts it."""
    if display_width(text) <= columns:
        return text
    kept, width = [], 0
    for char in text:
        width += display_width(char)
        if width > columns - 1:  # keep one column for the ellipsis
            break
        kept.append(char)
    return "".join(kept).rstrip() + "…"


def missing_fields(recipient: Recipient) -> list[str]:
    """The contact's fields that are blank (so templates fall back to defaults)."""
    return sorted(k for k, v in recipient.fields.items() if k != "name" and v in (None, ""))


def pick_samples(
    recipients: Iterable[Recipient],
    limit: int = SAMPLE_LIMIT,
    language_of: Callable[[Recipient], str] = lambda person: "",
    languages: Iterable[str] = ("",),
) -> list[Recipient]:
    """The first ``limit`` contacts, plus (looking a little further) the first one with
    blank fields and the first reader of each language version, if none is among them."""
    people = iter(recipients)
    samples = list(itertools.islice(people, limit))
    wanted = set(languages) - {language_of(p) for p in samples}
    want_blank = not any(missing_fields(p) for p in samples)
    for person in itertools.islice(people, SCAN_LIMIT):
        if not (wanted or want_blank):
            break
        language, blank = language_of(person), bool(missing_fields(person))
        if language in wanted or (want_blank and blank):
            samples.append(person)
            wanted.discard(language)
            want_blank = want_blank and not blank
    return samples


def version_key(prepared: PreparedCampaign | None, person: Recipient) -> str:
    """The language version ``person`` reads: a ``[locales]`` key, or "" for the top level."""
    if prepared is None:
        return ""
    return locale_key(prepared.compiled.locales, person.fields) or ""


def languages(prepared: PreparedCampaign) -> list[dict[str, str]]:
    """The campaign's language versions for the picker: key ("" = top level) and label."""
    top = prepared.campaign.locale
    found = [{"key": "", "label": f"{top} (top level)" if top else "top level"}]
    found += [
        {"key": key, "label": v.campaign.locale or key}
        for key, v in prepared.compiled.locales.items()
    ]
    return found


def reading_in(prepared: PreparedCampaign, person: Recipient, language: str) -> Recipient:
    """``person`` as a reader of version ``language``: themselves when it is theirs, else
    a stand-in with their data and that version's locale (so the preview can show a
    version none of the sample contacts reads)."""
    versions = prepared.compiled.locales
    if language and language not in versions:
        known = ", ".join(["(top level)", *versions])
        raise ConfigError(f"the campaign has no {language!r} version", hint=f"versions: {known}")
    if version_key(prepared, person) == language:
        return person
    # The top level is what a contact without a locale gets.
    locale = versions[language].campaign.locale if language else None
    return replace(person, fields={**person.fields, "locale": locale})


def recipient_info(recipient: Recipient) -> dict[str, Any]:
    """How the picker shows a contact: name, address and which fields are blank."""
    missing = missing_fields(recipient)
    label = f"{recipient.name} <{recipient.email}>" if recipient.name else recipient.email
    if missing:
        label += " · missing " + ", ".join(missing)
    return {"email": recipient.email, "name": recipient.name, "label": label, "missing": missing}


def error_info(error: MailerError) -> dict[str, Any]:
    """A ``MailerError`` as data for the page."""
    return {
        "kind": type(error).__name__,
        "message": error.message,
        "where": error.where,
        "hint": error.hint,
        "text": str(error),
    }


def parse_headers(data: bytes) -> tuple[list[list[str]], str]:
    """Decoded header (name, value) pairs and the raw header block of a message."""
    message = BytesParser(policy=default_policy).parsebytes(data, headersonly=True)
    decoded = [[name, str(value)] for name, value in message.items()]
    raw = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n")
    return decoded, raw


def unexpected_error(exc: Exception, prepared: PreparedCampaign | None, where: str) -> MailerError:
    """A readable error for an exception rendering raised outside Jinja's own (e.g. ``1/0``)."""
    template = str(prepared.campaign.template) if prepared is not None else where
    return TemplateError(
        f"rendering failed: {type(exc).__name__}: {exc}",
        where=template,
        hint="fix the expression in the template and save; this page updates by itself",
    )


def inbox_row(prepared: PreparedCampaign, recipient: Recipient, variant: int) -> dict[str, Any]:
    """One line of a phone's mail list for ``recipient`` receiving ``variant``."""
    rendered = prepared.render(recipient, variant=variant)
    sender = prepared.campaign.sender.name or prepared.campaign.sender.email
    return {
        "variant": variant,
        "label": variant_label(variant),
        "from": sender,
        "subject": rendered.subject,
        "preheader": rendered.preheader,
        "from_cut": truncate_columns(sender, FROM_COLUMNS),
        "subject_cut": truncate_columns(rendered.subject, SUBJECT_COLUMNS),
        "preheader_cut": truncate_columns(rendered.preheader, PREHEADER_COLUMNS),
        "subject_columns": display_width(rendered.subject),
    }


def configured_test_address(settings: Settings) -> str:
    """The configured test address, checked: a page can never choose where a test goes."""
    where = str(settings.root / SETTINGS_FILE)
    address = settings.test_address
    if not address:
        raise ConfigError(
            "no test address is set",
            where=where,
            hint='add test_address = "you@example.org" to mailer.toml or set MAILER_TEST_ADDRESS',
        )
    if not isinstance(address, str):
        raise ConfigError(
            f"test_address must be a string, not {address!r}",
            where=where,
            hint='write it in quotes: test_address = "you@example.org"',
        )
    return check_address(address, where, "test_address")


def signed(out: Outgoing, settings: Settings, now: float) -> tuple[Outgoing, str | None]:
    """``out`` DKIM-signed as ``send`` signs it (when configured), and a note saying so."""
    signer = signer_from_settings(settings)
    if signer is None:
        return out, None
    envelope = replace(out.envelope, data=signer.sign(out.envelope.data, timestamp=int(now)))
    selectors = ", ".join(key.selector for key in signer.keys)
    return replace(out, envelope=envelope), f"DKIM-signed: d={signer.domain} s={selectors}"


def watched_files(prepared: PreparedCampaign) -> tuple[Path, ...]:
    """Files whose change means the preview must prepare the campaign again."""
    campaign = prepared.campaign
    files = [campaign.path, campaign.template, campaign.template.with_suffix(".txt")]
    if campaign.audience.csv is not None:
        files.append(campaign.audience.csv)
    files.append(prepared.settings.root / SETTINGS_FILE)
    return tuple(dict.fromkeys(files))
