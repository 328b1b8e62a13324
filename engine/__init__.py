"""Kesu engine: detect the lettering on comic pages and erase it.

Importing this package is cheap (no torch); the heavy modules load on use.
"""

__version__ = "0.1.0"
