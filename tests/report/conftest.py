"""The browser fixture of the preview tests, shared here."""

from tests.preview.test_browser import browser  # noqa: F401
