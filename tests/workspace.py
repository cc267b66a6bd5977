"""A small, self-contained campaign workspace for tests (template, campaign, contacts)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner, Result

from mailer.core.settings import Settings, load_settings

# A fixed moment for stamps the tests do not look at.
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

TEMPLATE = """<mjml>
<mj-head><mj-title>{{ subject }}</mj-title><mj-preview>{{ preheader }}</mj-preview>
<mj-style>.hl { color: #b00 } @media (max-width:480px) { .hl { font-size: 20px } }</mj-style>
</mj-head>
<mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline hl">{{ headline }}</mj-text>
<mj-text css-class="mailer-offer">Hi {{ contact.first_name | default('friend', true) }}, {{ offer }}
{% if contact.city is defined and contact.city == "上海" %}See you in Shanghai & soon{% endif %}</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
</mj-column></mj-section>
<mj-raw>{% for p in data.products %}</mj-raw>
<mj-section><mj-column><mj-text><a href="{{ p.url }}">{{ p.name }}</a></mj-text></mj-column></mj-section>
<mj-raw>{% endfor %}</mj-raw>
<mj-section><mj-column><mj-text>
<a href="https://tea.test/about?from=mail">About us</a> · <a href="mailto:hello@tea.test">Write to us</a>
· {{ sender.name }}, {{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</mj-text></mj-column></mj-section>
</mj-body></mjml>
"""

CAMPAIGN = """id = "spring"
template = "promo"
subjects = ["{{ contact.first_name | default('朋友', true) }}，新春快乐", "Spring tea is here"]
preheader = "Fresh leaves from the first harvest, 20% off this week"

[content]
headline = "Spring tea, {{ contact.first_name | default('friend', true) }}"
offer = "20% off <all> green teas"
cta_text = "Shop the harvest"
cta_url = "https://tea.test/spring?ref=mail"

[audience]
csv = "contacts.csv"

[utm]
source = "newsletter"
medium = "email"
campaign = "spring"

[data]
products = [{ name = "Longjing", url = "https://tea.test/longjing" }]
"""

CONTACTS = """email,first_name,last_name,city
李雷 <lilei@tea.test>,李雷,,上海
ann@tea.test,Ann,Lee,London
bob@bücher.test,,,Berlin
"""

SETTINGS = """[sender]
name = "Tea House 茶馆"
email = "news@teahouse.cn"
reply_to = "hello@tea.test"

[footer]
postal_address = "Tea House Ltd, 8 Garden Lane, 200000 Shanghai"

[unsubscribe]
url = "https://tea.test/unsubscribe?t={{ token }}"
mailto = "unsubscribe@tea.test"
"""


def make_workspace(root: Path, *, campaign: str = CAMPAIGN, contacts: str = CONTACTS) -> Path:
    """Write mailer.toml, templates/promo.mjml, campaigns/spring.toml and contacts.csv."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "mailer.toml").write_text(SETTINGS, encoding="utf-8")
    (root / "templates" / "promo.mjml").write_text(TEMPLATE, encoding="utf-8")
    (root / "campaigns" / "contacts.csv").write_text(contacts, encoding="utf-8")
    path = root / "campaigns" / "spring.toml"
    path.write_text(campaign, encoding="utf-8")
    return path


REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "campaigns").glob("*.toml"))


def example_settings(tmp_path: Path) -> Settings:
    """The repository's demo workspace settings over a fresh database holding the sample
    contacts in the list ``customers`` (as the README's tour imports them), so example
    campaigns with a database audience work and the repository's own mailer.db is never read.
    """
    from mailer.audience.importer import import_contacts
    from mailer.audience.store import connect

    settings = load_settings(REPO, env={"MAILER_DB": str(tmp_path / "examples.db")})
    conn = connect(settings.db_path)
    import_contacts(conn, REPO / "campaigns" / "contacts.csv", list_name="customers", now=NOW)
    conn.close()
    return settings


def invoke(root: Path, *args: str) -> Result:
    """Run ``mailer ARGS`` through Typer's CliRunner with ``root`` as the working directory."""
    from mailer.cli import app

    old = Path.cwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)
