"""preview: the live preview in the browser. Imports checks, campaign and the stages below.

A ``session`` watches the campaign's files and answers the page through the
same build path as a send; ``server`` is the loopback HTTP side; ``view``
shapes what the page shows.
"""
