"""compose: from a campaign to one recipient's finished message. Imports core only.

Compile once per campaign (``compile``: Jinja spans protected, MJML, CSS
inlined, UTM tags), render per recipient (``render``), check and build the
MIME bytes (``outgoing``, ``message``), sign them (``dkim``).
"""
