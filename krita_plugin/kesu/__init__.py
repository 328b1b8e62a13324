"""Kesu for Krita: Tools > Scripts > Detect Text, Inpaint Selection, Clean Page, Kesu Settings...

Registers the Extension when Krita loads the package; importing it elsewhere (the unit tests import the pure
modules) registers nothing.
"""

try:
    from krita import Krita
except ImportError:  # not inside Krita
    Krita = None

if Krita is not None:
    from .extension import KesuExtension

    Krita.instance().addExtension(KesuExtension(Krita.instance()))
