"""checks: is this campaign fit to send? Imports campaign and the stages below it.

Subject scoring, content and compliance rules, repetition, the fold measured
in headless Chromium, and the ``gate`` that runs them all (``run_checks``).
"""
