"""services: the use cases the CLI calls. Imports every stage below it; nothing imports it but cli.

send (dry run, checks, confirmation, live and test sends), run-due, render to
the outbox, check, status, contacts and segments, preview. Each returns data
and raises ``MailerError``; none prints or names a flag.
"""
