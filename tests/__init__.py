"""Tests mirror the package: tests/<stage>/ holds the tests of mailer/<stage>/."""
