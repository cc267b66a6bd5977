"""delivery: getting messages out, once per recipient. Imports compose, audience, core.

The SMTP reply ``policy`` (pure), the ``throttle``, the ``journal`` (the
truth about what went out) and run log, ``plan`` (who a run sends to), the
send loop (``engine``) and its set-up (``send``), and the transports (SMTP,
outbox, null). It works against ``source.CampaignSource``, which the prepared
campaign fits.
"""
