"""Benchmark: personalised messages built per second (render + MIME bytes), one core.

Compares, in the same run, on the promotion campaign:
  fast       PreparedCampaign.build: compiled-once Jinja + direct byte builder (what send uses)
  reference  the same rendering + the stdlib EmailMessage build and serialisation
  naive      per recipient: Jinja -> MJML -> CSS inlining, then the fast byte builder
Prints the median of several runs and ratios against the reference.

    python tests/benchmarks/bench_build.py [--n 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import email.policy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.compose.compile import environment, inline_css, mjml_to_html
from mailer.compose.message import (
    Headers,
    build_bytes,
    build_reference,
    date_header,
    list_unsubscribe,
)
from mailer.compose.protect import protect, restore
from mailer.compose.render import render_for
from mailer.core.recipient import Recipient
from mailer.core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Ann", "李雷", "Zoë", "Bob", "韩梅梅", "Carlos"]


def recipients(n: int) -> list[Recipient]:
    """Synthetic contacts with names in several scripts."""
    people = []
    for i in range(n):
        first = NAMES[i % len(NAMES)]
        fields = {
            "email": f"user{i}@shop.test",
            "first_name": first,
            "last_name": "Tester",
            "city": "Shanghai",
            "tier": "gold" if i % 3 else "member",
            "locale": "en",
        }
        people.append(Recipient(fields["email"], f"{first} Tester", fields, f"row {i}"))
    return people


def headers(
    prepared: PreparedCampaign, person: Recipient, subject: str, unsub: str | None
) -> Headers:
    value, one_click = list_unsubscribe(unsub, prepared.settings.unsubscribe_mailto)
    return Headers(
        prepared.campaign.sender,
        person.name,
        person.email,
        subject,
        f"<{abs(hash(person.email))}@shop.test>",
        date_header(time.time()),
        value,
        one_click,
    )


def fast(prepared: PreparedCampaign, people: list[Recipient]) -> None:
    for person in people:
        prepared.build(person)


def reference(prepared: PreparedCampaign, people: list[Recipient]) -> None:
    for person in people:
        r = render_for(prepared.compiled, person)
        msg = build_reference(
            headers(prepared, person, r.subject, r.unsubscribe_url), r.text, r.html
        )
        msg.as_bytes(policy=email.policy.SMTP)


def naive(prepared: PreparedCampaign, people: list[Recipient]) -> None:
    source = prepared.campaign.template.read_text(encoding="utf-8")
    env = environment(True)
    for person in people:
        r = render_for(prepared.compiled, person)  # subject/preheader/content + text part
        context = {
            **prepared.compiled.base_context,
            "contact": person.fields,
            "subject": r.subject,
            "preheader": r.preheader,
            "headline": "h",
            "offer": "o",
            "cta": {"text": "t", "url": "https://shop.test"},
            "unsubscribe_url": "u",
            "token": "t",
        }
        mjml_source = env.from_string(source).render(context)
        protected, spans = protect(mjml_source)
        html = restore(inline_css(mjml_to_html(protected, "bench")), spans)
        build_bytes(headers(prepared, person, r.subject, r.unsubscribe_url), r.text, html)


def measure(
    fn: Callable[[PreparedCampaign, list[Recipient]], None],
    prepared: PreparedCampaign,
    people: list[Recipient],
    runs: int,
) -> float:
    """Median messages per second over ``runs`` runs."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(prepared, people)
        rates.append(len(people) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--campaign", default=str(ROOT / "campaigns" / "promotion.toml"))
    args = parser.parse_args()
    prepared = prepare_campaign(args.campaign, load_settings(ROOT))
    people = recipients(args.n)
    fast(prepared, people[:50])  # warm-up
    results = {
        "fast": measure(fast, prepared, people, args.runs),
        "reference": measure(reference, prepared, people, args.runs),
        "naive": measure(naive, prepared, people[: max(50, args.n // 10)], args.runs),
    }
    size = len(prepared.build(people[0]).envelope.data)
    print(
        f"campaign {prepared.campaign.id}: {size / 1024:.1f} KB per message, "
        f"{args.n} recipients, median of {args.runs} runs, one core"
    )
    for name, rate in results.items():
        print(f"  {name:<10} {rate:8.0f} msg/s   {rate / results['reference']:5.2f}x reference")


if __name__ == "__main__":
    main()
