"""The one table of fonts the synthetic generator letters with, by script and category, and cached loading.

Fonts come from Debian packages (listed in ``install/dev-apt-packages.txt``). A font whose file is missing is
skipped, so the generator is deterministic given the installed packages; a script with no font at all raises
:class:`~engine.errors.InputError` naming the packages to install.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from PIL import ImageFont

from engine.errors import InputError

FONT_ROOT = "/usr/share/fonts"


@dataclass(frozen=True)
class FontSpec:
    """One font face. ``scripts``: subset of {"ja", "ko", "zh", "en"}; ``category``: mincho, gothic, rounded,
    hand, brush, pop, comic or caps; ``index``: face index inside a .ttc collection."""

    path: str
    package: str
    scripts: tuple[str, ...]
    category: str
    index: int = 0


def _t(rel: str, package: str, scripts: str, category: str, index: int = 0) -> FontSpec:
    return FontSpec(os.path.join(FONT_ROOT, rel), package, tuple(scripts.split(",")), category, index)


# Every font the generator may use, in one place. CJK fonts also carry Latin letters but are only listed for
# the scripts they are typically used to letter. Left out: fonts-hanazono, fonts-dejima-mincho and
# fonts-umeplus* (no vertical `vert` forms).
FONT_TABLE: tuple[FontSpec, ...] = (
    # Japanese mincho (dialogue in many manga)
    _t("opentype/ipafont-mincho/ipam.ttf", "fonts-ipafont-mincho", "ja", "mincho"),
    _t("opentype/ipafont-mincho/ipamp.ttf", "fonts-ipafont-mincho", "ja", "mincho"),
    _t("opentype/ipaexfont-mincho/ipaexm.ttf", "fonts-ipaexfont-mincho", "ja", "mincho"),
    _t("truetype/takao-mincho/TakaoMincho.ttf", "fonts-takao-mincho", "ja", "mincho"),
    _t("truetype/sawarabi-mincho/sawarabi-mincho-medium.ttf", "fonts-sawarabi-mincho", "ja", "mincho"),
    _t("truetype/bizud-mincho/BIZUDMincho-Regular.ttf", "fonts-morisawa-bizud-mincho", "ja", "mincho"),
    _t("opentype/noto/NotoSerifCJK-Regular.ttc", "fonts-noto-cjk", "ja,ko,zh", "mincho"),
    _t("opentype/noto/NotoSerifCJK-Bold.ttc", "fonts-noto-cjk", "ja,ko,zh", "mincho"),
    # Japanese gothic (emphasis, narration, modern manga)
    _t("opentype/ipafont-gothic/ipag.ttf", "fonts-ipafont-gothic", "ja", "gothic"),
    _t("opentype/ipaexfont-gothic/ipaexg.ttf", "fonts-ipaexfont-gothic", "ja", "gothic"),
    _t("truetype/vlgothic/VL-Gothic-Regular.ttf", "fonts-vlgothic", "ja", "gothic"),
    _t("opentype/mplus/Mplus1-Regular.otf", "fonts-mplus", "ja", "gothic"),
    _t("opentype/mplus/Mplus1-Medium.otf", "fonts-mplus", "ja", "gothic"),
    _t("opentype/mplus/Mplus1-Bold.otf", "fonts-mplus", "ja,en", "gothic"),
    _t("opentype/mplus/Mplus2-Light.otf", "fonts-mplus", "ja", "gothic"),
    _t("opentype/mplus/Mplus2-ExtraBold.otf", "fonts-mplus", "ja", "gothic"),
    _t("truetype/horai-umefont/ume-tgo4.ttf", "fonts-horai-umefont", "ja", "gothic"),
    _t("truetype/bizud-gothic/BIZUDGothic-Regular.ttf", "fonts-morisawa-bizud-gothic", "ja", "gothic"),
    _t("truetype/bizud-gothic/BIZUDGothic-Bold.ttf", "fonts-morisawa-bizud-gothic", "ja", "gothic"),
    _t("truetype/motoya-l-cedar/MTLc3m.ttf", "fonts-motoya-l-cedar", "ja", "gothic"),
    _t("opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk", "ja,ko,zh", "gothic"),
    _t("opentype/noto/NotoSansCJK-Bold.ttc", "fonts-noto-cjk", "ja,ko,zh", "gothic"),
    # rounded, handwriting, brush, pop (asides, sound effects, titles)
    _t("truetype/motoya-l-maruberi/MTLmr3m.ttf", "fonts-motoya-l-maruberi", "ja", "rounded"),
    _t("truetype/seto/setofont.ttf", "fonts-seto", "ja", "hand"),
    _t("truetype/kiloji/kiloji.ttf", "fonts-kiloji", "ja", "hand"),
    _t("truetype/kiloji/kiloji_b.ttf", "fonts-kiloji", "ja", "hand"),
    _t("truetype/klee/KleeOne-Regular.ttf", "fonts-klee", "ja", "hand"),
    _t("truetype/klee/KleeOne-SemiBold.ttf", "fonts-klee", "ja", "hand"),
    _t("truetype/yusei-magic/YuseiMagic-Regular.ttf", "fonts-yusei-magic", "ja", "hand"),
    _t("truetype/kouzan-mouhitsu/kouzan-mouhitsu.ttf", "fonts-kouzan-mouhitsu", "ja", "brush"),
    _t("truetype/kouzan-mouhitsu/kouzan-mouhitsu-gyosho.ttf", "fonts-kouzan-mouhitsu", "ja", "brush"),
    _t("truetype/aoyagi-soseki/aoyagi-soseki.ttf", "fonts-aoyagi-soseki", "ja", "brush"),
    _t("truetype/reggae/ReggaeOne-Regular.ttf", "fonts-reggae", "ja", "pop"),
    _t("opentype/mplus/Mplus1-Black.otf", "fonts-mplus", "ja,en", "pop"),
    # Korean
    _t("truetype/nanum/NanumGothic.ttf", "fonts-nanum", "ko", "gothic"),
    _t("truetype/nanum/NanumGothicBold.ttf", "fonts-nanum", "ko", "gothic"),
    _t("truetype/nanum/NanumGothicExtraBold.ttf", "fonts-nanum-extra", "ko", "pop"),
    _t("truetype/nanum/NanumMyeongjo.ttf", "fonts-nanum", "ko", "mincho"),
    _t("truetype/nanum/NanumMyeongjoBold.ttf", "fonts-nanum", "ko", "mincho"),
    _t("truetype/nanum/NanumBarunGothic.ttf", "fonts-nanum", "ko", "gothic"),
    _t("truetype/nanum/NanumSquareRoundB.ttf", "fonts-nanum", "ko", "rounded"),
    _t("truetype/nanum/NanumSquareEB.ttf", "fonts-nanum-extra", "ko", "pop"),
    _t("truetype/nanum/NanumPen.ttf", "fonts-nanum-extra", "ko", "hand"),
    _t("truetype/nanum/NanumBarunpenR.ttf", "fonts-nanum-extra", "ko", "hand"),
    _t("truetype/nanum/NanumBrush.ttf", "fonts-nanum-extra", "ko", "brush"),
    _t("truetype/unfonts-core/UnBatang.ttf", "fonts-unfonts-core", "ko", "mincho"),
    _t("truetype/unfonts-core/UnDotum.ttf", "fonts-unfonts-core", "ko", "gothic"),
    _t("truetype/unfonts-core/UnGraphicBold.ttf", "fonts-unfonts-core", "ko", "pop"),
    _t("truetype/unfonts-core/UnPilgi.ttf", "fonts-unfonts-core", "ko", "hand"),
    # Chinese
    _t("truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf", "fonts-lxgw-wenkai", "zh", "hand"),
    _t("truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf", "fonts-lxgw-wenkai", "zh", "hand"),
    _t("truetype/arphic-bkai00mp/bkai00mp.ttf", "fonts-arphic-bkai00mp", "zh", "brush"),
    _t("opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk", "zh", "gothic", 2),
    _t("opentype/noto/NotoSansCJK-Bold.ttc", "fonts-noto-cjk", "zh", "gothic", 2),
    _t("opentype/noto/NotoSerifCJK-Regular.ttc", "fonts-noto-cjk", "zh", "mincho", 2),
    # English comic lettering
    _t("opentype/comic-neue/ComicNeue-Regular.otf", "fonts-comic-neue", "en", "comic"),
    _t("opentype/comic-neue/ComicNeue-Bold.otf", "fonts-comic-neue", "en", "comic"),
    _t("opentype/comic-neue/ComicNeue-Italic.otf", "fonts-comic-neue", "en", "comic"),
    _t("opentype/comic-neue/ComicNeue-BoldItalic.otf", "fonts-comic-neue", "en", "comic"),
    _t("opentype/comic-neue/ComicNeue-Light.otf", "fonts-comic-neue", "en", "comic"),
    _t("truetype/tomsontalks/TomsonTalks.ttf", "fonts-tomsontalks", "en", "comic"),
    _t("truetype/humor-sans/Humor-Sans.ttf", "fonts-humor-sans", "en", "comic"),
    _t("truetype/fifthhorseman/dkg.ttf", "fonts-dkg-handwriting", "en", "hand"),
    _t("truetype/fifthhorseman/dkgBd.ttf", "fonts-dkg-handwriting", "en", "hand"),
    _t("truetype/fifthhorseman/dkgIt.ttf", "fonts-dkg-handwriting", "en", "hand"),
    _t("opentype/bebas-neue/BebasNeue-Bold.otf", "fonts-bebas-neue", "en", "caps"),
    _t("opentype/bebas-neue/BebasNeue-Regular.otf", "fonts-bebas-neue", "en", "caps"),
    _t("opentype/kaushanscript/KaushanScript-Regular.otf", "fonts-kaushanscript", "en", "brush"),
)

@functools.cache
def available(script: str, categories: tuple[str, ...] | None = None) -> tuple[FontSpec, ...]:
    """The installed fonts for ``script`` (optionally only these categories), in table order."""
    out = tuple(
        f
        for f in FONT_TABLE
        if script in f.scripts and os.path.exists(f.path) and (categories is None or f.category in categories)
    )
    if not out and categories is None:
        packages = sorted({f.package for f in FONT_TABLE if script in f.scripts})
        raise InputError(
            f"no {script} font installed for the synthetic generator; install one of: "
            f"{', '.join(packages)} (bash install/dev.sh installs them all)"
        )
    return out


@functools.lru_cache(maxsize=512)
def load(spec: FontSpec, size: int) -> ImageFont.FreeTypeFont:
    """The font at ``size`` px (cached: loading a CJK face is slow)."""
    return ImageFont.truetype(
        spec.path, max(4, int(size)), index=spec.index, layout_engine=ImageFont.Layout.RAQM
    )


@functools.cache
def supports_vertical(spec: FontSpec) -> bool:
    """Whether the font has vertical forms: a long-vowel mark laid out top-to-bottom becomes a tall bar."""
    font = load(spec, 40)
    x0, y0, x1, y1 = font.getbbox("ー", direction="ttb")
    return (x1 - x0) < 0.6 * (y1 - y0)


class _Coverage:
    """Which characters a font really draws (missing glyphs render as the .notdef box or nothing)."""

    def __init__(self, spec: FontSpec):
        self.font = load(spec, 32)
        missing = self.font.getmask("\U0010fffd")
        self.notdef = (missing.size, bytes(missing))
        self.known: dict[str, bool] = {}

    def has(self, ch: str) -> bool:
        ok = self.known.get(ch)
        if ok is None:
            if ch.isspace():
                ok = True
            else:
                m = self.font.getmask(ch)
                ok = (
                    m.size[0] * m.size[1] > 0
                    and (m.size, bytes(m)) != self.notdef
                    and m.getbbox() is not None
                )
            self.known[ch] = ok
        return ok


@functools.cache
def _coverage(spec: FontSpec) -> _Coverage:
    return _Coverage(spec)


def covers(spec: FontSpec, text: str) -> bool:
    """True if every character of ``text`` has a real glyph in the font."""
    cov = _coverage(spec)
    return all(cov.has(c) for c in text)
