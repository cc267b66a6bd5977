"""Thin wrappers around the libraries that decide SPF and DMARC: checkdmarc and pyspf.

Both look names up through the doctor's ``Resolver`` (its per-run cache, its
loopback server in tests, its told-apart DNS outcomes). checkdmarc keeps a
process-wide answer cache keyed by name only; it is emptied before each call,
so a run never reads answers another run got from another server — the
doctor's own cache already keeps each question to one query per run.
"""

from __future__ import annotations

import warnings
from typing import Any

from mailer.doctor.resolver import LibraryResolver, Resolver, spf_lookup


def _checkdmarc() -> tuple[Any, Any, Any]:
    # Imported on first use: checkdmarc pulls in httpx, pyleri and more, which
    # the rest of mailer never needs. Its dnspython import warns about DSA.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import checkdmarc.dmarc as dmarc
        import checkdmarc.spf as spf
        import checkdmarc.utils as utils
    return spf, dmarc, utils


def _library(resolver: Resolver) -> dict[str, Any]:
    _spf, _dmarc, utils = _checkdmarc()
    utils.DNS_CACHE.clear()
    return {"resolver": LibraryResolver(resolver), "timeout": resolver.timeout, "retries": 0}


def spf_module() -> Any:
    """checkdmarc's SPF module (its exception classes name the defects)."""
    return _checkdmarc()[0]


def dmarc_module() -> Any:
    """checkdmarc's DMARC module (its exception classes name the defects)."""
    return _checkdmarc()[1]


def query_spf(resolver: Resolver, domain: str) -> dict[str, Any]:
    """checkdmarc: the one SPF record of ``domain`` (``record``, ``warnings``); raises SPFError."""
    result: dict[str, Any] = spf_module().query_spf_record(domain, **_library(resolver))
    return result


def parse_spf(resolver: Resolver, record: str, domain: str) -> dict[str, Any]:
    """checkdmarc: the record's tree parsed and its lookups counted; raises SPFError."""
    result: dict[str, Any] = spf_module().parse_spf_record(record, domain, **_library(resolver))
    return result


def query_dmarc(resolver: Resolver, domain: str) -> dict[str, Any]:
    """checkdmarc: the DMARC record that applies to ``domain`` (``record``, ``location``)."""
    result: dict[str, Any] = dmarc_module().query_dmarc_record(domain, **_library(resolver))
    return result


def parse_dmarc(resolver: Resolver, record: str, location: str) -> dict[str, Any]:
    """checkdmarc: tags validated, report URIs and their authorisation checked."""
    result: dict[str, Any] = dmarc_module().parse_dmarc_record(
        record, location, **_library(resolver)
    )
    return result


def evaluate_spf(resolver: Resolver, ip: str, sender: str, helo: str) -> tuple[str, str]:
    """pyspf (RFC 7208 §4): the SPF result for mail from ``sender`` sent by ``ip``.

    ``(result, explanation)``, result one of pass, fail, softfail, neutral,
    none, permerror, temperror.
    """
    import spf

    with spf_lookup(resolver):
        result, explanation = spf.check2(i=ip, s=sender, h=helo)
    return str(result), str(explanation)
