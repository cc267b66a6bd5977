"""campaign: the prepared campaign everything starts from. Imports compose, audience, core.

``prepare_campaign`` loads a campaign file, compiles it once and knows its
audience; checks, preview, schedule runs and sends all take a
``PreparedCampaign``.
"""
