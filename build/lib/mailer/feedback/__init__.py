"""feedback: what comes back after a send — unsubscribes, bounces, complaints — and what it does.

``classify`` reads one returned message (with ``mailparts``, ``dsn``,
``textbounce``, ``complaints``, ``wording``, ``codes``) and gives each recipient
a reason from ``reasons``, whose class decides the policy; ``reports`` ties a
message (or a ``mailto`` unsubscribe request) to our journal; ``events`` applies
one event (suppress, count a soft bounce, record a sender-side refusal,
resubscribe); ``rates`` keeps the per-campaign rates and the pause rule the
engine is given; ``history`` reads it all back for people. ``webhooks`` (with
``webhook_base``, ``webhooks_ses``, ``tokens_seen``) reads the relays' event
posts; ``server`` and ``guard`` are ``mailer serve``; ``mailbox`` and
``inbound`` are ``mailer bounces fetch`` and ``serve``.
"""
