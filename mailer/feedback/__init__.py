"""feedback: what comes back after a send — unsubscribes, bounces, complaints — and what it does.

``events`` applies one event (suppress, count a soft bounce, resubscribe) and
keeps the per-campaign rates; ``webhooks`` reads the relays' event posts and
checks their signatures; ``server`` is the small web endpoint (``mailer serve``)
for one-click unsubscribes, the unsubscribe page and the webhooks; ``dsn``
reads bounce and complaint emails (``mailer bounces fetch``).
"""
