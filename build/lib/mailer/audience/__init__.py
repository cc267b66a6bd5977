"""audience: who a campaign goes to. Imports core only.

The workspace database (``store``: connection, migrations), contact import
(``parse``, ``importer``), suppressions, segments (parse, SQL, sandbox), RFM,
the frequency cap, lists/export/forget (``admin``) and CSV audiences.
"""
