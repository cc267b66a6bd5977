"""schedule: when a scheduled campaign is due. Imports audience (the store) and core.

The ``model`` (Schedule, Wave), ``parse`` (the ``[schedule]`` table),
``plan`` (waves at a given ``now``: pure), the holiday calendar, wave
``leases`` and the record of wave ``runs``. Sending a due wave is a use case:
``mailer.services.run_due``.
"""
