"""core: the vocabulary every stage shares. Imports no other mailer stage.

``Recipient``, the ``Campaign`` model (a validated campaign file), workspace
``Settings``, addresses, the ``MailerError`` tree, journal keys, and time:
one ``utc_now`` for the edges, one timestamp format (``stamp``) for the
database, and the ``Clock`` that loops are given.
"""
