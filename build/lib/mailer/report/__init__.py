"""Campaign reports: what happened to a send, as figures (``data``) and as a page (``page``)."""
