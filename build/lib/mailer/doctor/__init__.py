"""Will the big mailbox providers accept this sender? DNS and message checks before sending.

Gmail and Yahoo (2024) and Outlook.com (2025) reject or spam-folder bulk mail
that misses their sender rules: SPF, DKIM, DMARC alignment, reverse DNS, TLS,
one-click unsubscribe. ``mailer doctor`` looks each up (``resolver``) and says
pass / warn / fail with the reason and the fix (``model``). Lookups go through
one resolver with a deadline, so an unreachable DNS server gives a warning,
never a hang.
"""
