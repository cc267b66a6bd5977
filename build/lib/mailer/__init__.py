"""mailer: an email-marketing campaign builder for the command line."""

__version__ = "0.1.0"
