"""Seeded synthetic manga/comic pages: training data for text detection and inpainting, and test fixtures.

Same seed -> same bytes (given the installed font/data packages, listed in install/dev-apt-packages.txt).
Training-time only: the product never imports this package.
"""

from engine.workshop.synth.boxtext import draw_text_in_box
from engine.workshop.synth.inpaint import InpaintSample, make_inpaint_sample
from engine.workshop.synth.page import SynthPage, make_page

__all__ = ["make_page", "SynthPage", "make_inpaint_sample", "InpaintSample", "draw_text_in_box"]
