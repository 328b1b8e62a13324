"""Artwork to put under the text: images from Debian packages (clip art, colouring-book line art, painted
portraits, wallpapers) and procedural line art, hatching, speed lines, buildings, clouds.

Every painter takes a canvas float32 (h, w, C) in [0, 1] (1 = white) and an ``np.random.Generator`` and paints
in place. Image files come from a bounded, fixed subset (sorted paths, every k-th, capped file sizes), decoded
once and cached downscaled (~480 files, ~210 MB as uint8), so results depend only on the installed
packages.
"""

from __future__ import annotations

import functools
import os
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.workshop.synth import tones

ART_SOURCES = {
    # name: (root, extensions, max file bytes, how many files at most per top-level folder)
    "clipart": ("/usr/share/openclipart/png", (".png",), 400_000, 20),
    "lineart": ("/usr/share/tuxpaint", (".png",), 600_000, 30),
    "painted": ("/usr/share/games/wesnoth/1.16/data/core/images/portraits", (".png",), 1_500_000, 6),
    # photographs (tuxpaint-data's templates) and painted landscapes (wesnoth story art): JPEG, so they
    # decode fast at reduced size (draft mode)
    "photo": ("/usr/share/tuxpaint/templates", (".jpg", ".jpeg"), 2_000_000, 40),
    "scenery": ("/usr/share/games/wesnoth/1.16/data/core/images/story", (".jpg", ".jpeg"), 2_000_000, 40),
}
# Only these openclipart categories: the others (computer, signs_and_symbols, logos, office, education,
# geography, buttons, electronics) are full of screens, signs, maps and labels with lettering in them.
_CLIPART_DIRS = (
    "animals",
    "buildings",
    "containers",
    "decorations",
    "food",
    "people",
    "plants",
    "recreation",
    "science",
    "shapes",
    "special",
    "tools",
    "transportation",
    "unsorted",
)
# Words in file paths suggesting lettering inside the picture: unlabelled text in the background would teach
# the detector that text is background. Matched against whole words of the path.
_TEXTY = frozenset(
    "text sign signs label labels banner logo font letter letters word words alphabet alphabets button "
    "buttons card cards calendar poster book books newspaper map maps flag flags number numbers digit digits "
    "clock chart ui symbols symbol icon icons brushes title menu keyboard note notes money license speech "
    "bubble dreydl sticker tag board screen".split()
)
MAX_SIDE = 448


@functools.cache
def art_files(kind: str) -> tuple[str, ...]:
    """The fixed subset of image files used for ``kind`` (empty if the package is not installed)."""
    root, exts, max_bytes, limit = ART_SOURCES[kind]
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in files:
            p = os.path.join(dirpath, f)
            rel = p[len(root) :].lower()
            words = set(re.split(r"[^a-z]+", rel))
            if not f.lower().endswith(exts) or words & _TEXTY:
                continue
            if kind == "clipart" and rel.strip("/").split("/")[0] not in _CLIPART_DIRS:
                continue
            try:
                if os.path.getsize(p) > max_bytes:
                    continue
            except OSError:
                continue
            found.append(p)
    # evenly spaced picks within each top-level folder (category), at most ``limit`` per folder, so one big
    # category (e.g. openclipart's geometric shapes) does not crowd out the drawings
    groups: dict[str, list[str]] = {}
    for p in sorted(found):
        groups.setdefault(p[len(root) :].strip("/").split("/")[0], []).append(p)
    out = []
    for _, paths in sorted(groups.items()):
        step = max(1, len(paths) // limit)
        out.extend(paths[::step][:limit])
    return tuple(out)


@functools.cache
def load_art(path: str) -> np.ndarray | None:
    """uint8 (h, w, 4) RGBA, longest side <= MAX_SIDE, or None if unreadable or empty."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))
            im = im.convert("RGBA")
            im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
            a = np.asarray(im)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if a[..., 3].max() < 25 or min(a.shape[:2]) < 24:
        return None
    return a


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def mangaize(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turn a grey picture into manga ink: black lines, white paper and mid greys as a dot screen."""
    mode = rng.random()
    period = float(rng.choice([3.5, 4.0, 5.0, 6.0]))
    if mode < 0.4:  # amplitude-modulated halftone of the whole picture (printed photo look)
        return tones.dot_tone(*grey.shape, 1.0 - grey, period, 45.0, rng)
    if mode < 0.75:  # posterise: ink, one or two tone levels, paper
        lo, hi = float(rng.uniform(0.15, 0.35)), float(rng.uniform(0.7, 0.9))
        out = np.where(grey < lo, 0.0, 1.0).astype(np.float32)
        mid = (grey >= lo) & (grey < hi)
        tone = tones.dot_tone(*grey.shape, float(rng.uniform(0.15, 0.45)), period, 45.0, rng)
        return np.where(mid, tone, out)
    return grey  # plain grey (scanned wash / painted look)


def place_image(
    canvas: np.ndarray, rng: np.random.Generator, kind: str | None = None, colour: bool = False
) -> bool:
    """Paste one picture (scaled, maybe cropped, maybe mangaized) somewhere on the canvas. False if none."""
    if kind is None:
        kind = str(
            rng.choice(["clipart", "clipart", "clipart", "lineart", "painted", "painted", "photo", "scenery"])
        )
    files = art_files(kind)
    if not files:
        return False
    art = load_art(files[int(rng.integers(len(files)))])
    if art is None:
        return False
    H, W = canvas.shape[:2]
    ah, aw = art.shape[:2]
    fill = kind in ("photo", "scenery") or (kind == "painted" and rng.random() < 0.4)
    if fill:  # cover the whole canvas (a background picture)
        scale = max(H / ah, W / aw) * float(rng.uniform(1.0, 1.3))
    else:
        scale = float(rng.uniform(0.35, 1.1)) * min(H / ah, W / aw)
    scale = min(scale, 1.6)  # never blow small pictures up a lot: blurry art would be an easy tell
    th, tw = max(8, int(ah * scale)), max(8, int(aw * scale))
    img = np.asarray(Image.fromarray(art).resize((tw, th), Image.Resampling.BILINEAR), np.float32) / 255
    rgb, alpha = img[..., :3], img[..., 3]
    if kind == "photo" and colour and rng.random() < 0.5:
        pass  # some colour photos stay in colour on colour pages
    elif kind in ("photo", "scenery") or not colour:
        g = _grey(rgb)
        if kind in ("photo", "scenery", "painted") or rng.random() < 0.5:
            g = mangaize(g, rng)
        rgb = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < 0.15:  # silhouettes / dark art
        rgb = rgb * np.float32(rng.uniform(0.05, 0.4))
    x = int(rng.integers(-tw // 3, max(1, W - tw * 2 // 3)))
    y = int(rng.integers(-th // 3, max(1, H - th * 2 // 3)))
    if fill:
        x, y = -int(rng.integers(0, max(1, tw - W + 1))), -int(rng.integers(0, max(1, th - H + 1)))
    col = rgb if canvas.shape[2] == 3 else _grey(rgb)[..., None]
    tones.paint(canvas, alpha, col, x, y)
    return True


def _draw(h: int, w: int):
    im = Image.new("L", (w, h), 0)
    return im, ImageDraw.Draw(im)


def _cov(im: Image.Image, soften: bool = False) -> np.ndarray:
    """Coverage float32 (h, w) of an L drawing. ``soften``: a slight blur standing in for anti-aliasing, so
    procedural ink has soft edges like scanned ink and text (hard pixel edges would be an easy tell)."""
    if soften:
        im = im.filter(ImageFilter.GaussianBlur(0.5))
    return np.asarray(im, np.float32) * np.float32(1 / 255)


def _bezier(p0, p1, p2, p3, n: int = 16):
    t = np.linspace(0, 1, n)[:, None]
    pts = ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t * t * p2 + t**3 * p3
    return [tuple(p) for p in pts]


def line_art(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Procedural line art: curves of varying width, closed shapes (some toned), hair-like strokes."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    tone_im, td = _draw(H, W)
    n = int(rng.integers(3, 14))
    for _ in range(n):
        pts = rng.uniform([-0.1 * W, -0.1 * H], [1.1 * W, 1.1 * H], size=(4, 2))
        width = int(rng.choice([1, 1, 2, 2, 3, 4, 6]))
        kind = rng.random()
        if kind < 0.5:
            d.line(_bezier(*pts), fill=255, width=width, joint="curve")
        elif kind < 0.75:  # closed blob (a shape: hair, cloth, shadow); sometimes toned
            c = pts[0]
            r = rng.uniform(0.05, 0.3) * min(H, W)
            ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 10))))
            rad = r * rng.uniform(0.5, 1.3, ang.size)
            poly = [
                (float(c[0] + q * np.cos(a)), float(c[1] + q * np.sin(a)))
                for a, q in zip(ang, rad, strict=True)
            ]
            if rng.random() < 0.5:
                td.polygon(poly, fill=255)
            d.line(poly + [poly[0]], fill=255, width=width, joint="curve")
        else:  # bundle of hair-like tapered strokes
            base = pts[0]
            direction = rng.uniform(-1, 1, 2)
            for _ in range(int(rng.integers(4, 15))):
                off = rng.normal(0, 8, 2)
                q = [
                    base + off,
                    base + off + direction * 40 + rng.normal(0, 10, 2),
                    base + off + direction * 80 + rng.normal(0, 15, 2),
                    base + direction * 120 + rng.normal(0, 20, 2),
                ]
                d.line(_bezier(*q, n=10), fill=255, width=max(1, width - 1))
    tcov = _cov(tone_im)
    if tcov.any():
        tone = tones.random_tone(H, W, rng)
        canvas *= (1 - tcov[..., None]) + (tone * tcov)[..., None]
    tones.paint(canvas, _cov(im, soften=True), ink)


def hatching(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Groups of short parallel pen strokes (cross-hatching), as used for shading."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        size = rng.uniform(0.15, 0.6) * min(H, W)
        angle = rng.uniform(0, np.pi)
        gap = rng.uniform(2.5, 7)
        length = rng.uniform(0.3, 1.0) * size
        for layer in range(int(rng.integers(1, 3))):
            a = angle + layer * rng.uniform(0.4, 1.4)
            dx, dy = np.cos(a), np.sin(a)
            nx, ny = -dy, dx
            for k in np.arange(-size / 2, size / 2, gap):
                ll = length * rng.uniform(0.6, 1.0)
                px, py = cx + nx * k + rng.normal(0, 1.5), cy + ny * k + rng.normal(0, 1.5)
                d.line(
                    [(px - dx * ll / 2, py - dy * ll / 2), (px + dx * ll / 2, py + dy * ll / 2)],
                    fill=255,
                    width=1,
                )
    tones.paint(canvas, _cov(im, soften=True), ink)


def speed_lines(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Radial focus lines (集中線) or parallel speed lines: thin tapered wedges."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    if rng.random() < 0.55:
        cx, cy = rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.8) * H
        R = float(np.hypot(W, H))
        inner = rng.uniform(0.15, 0.45) * min(H, W)
        for a in rng.uniform(0, 2 * np.pi, int(rng.integers(60, 220))):
            r0 = inner * rng.uniform(0.8, 1.6)
            half = rng.uniform(0.002, 0.012)
            d.polygon(
                [
                    (cx + np.cos(a) * r0, cy + np.sin(a) * r0),
                    (cx + np.cos(a - half) * R, cy + np.sin(a - half) * R),
                    (cx + np.cos(a + half) * R, cy + np.sin(a + half) * R),
                ],
                fill=255,
            )
    else:
        a = rng.uniform(0, np.pi) if rng.random() < 0.4 else rng.choice([0.0, np.pi / 2])
        dx, dy = np.cos(a), np.sin(a)
        nx, ny = -dy, dx
        L = float(np.hypot(W, H))
        for _ in range(int(rng.integers(30, 140))):
            k = rng.uniform(-L / 2, L / 2)
            s = rng.uniform(-L / 2, L / 2)
            ll = rng.uniform(0.2, 0.9) * L
            wdt = rng.uniform(0.5, 3)
            px, py = W / 2 + nx * k + dx * s, H / 2 + ny * k + dy * s
            d.polygon(
                [
                    (px, py),
                    (px + dx * ll + nx * wdt, py + dy * ll + ny * wdt),
                    (px + dx * ll - nx * wdt, py + dy * ll - ny * wdt),
                ],
                fill=255,
            )
    tones.paint(canvas, _cov(im, soften=True), ink)


def buildings(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Ruled architecture: boxes with windows, in a simple one-point perspective."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    horizon = rng.uniform(0.2, 0.7) * H
    vx = rng.uniform(0, W)
    for _ in range(int(rng.integers(2, 7))):
        x0 = rng.uniform(-0.1, 0.9) * W
        bw = rng.uniform(0.1, 0.4) * W
        top = rng.uniform(0, horizon)
        bottom = rng.uniform(horizon, H * 1.1)
        lw = int(rng.choice([1, 1, 2]))
        d.rectangle([x0, top, x0 + bw, bottom], outline=255, width=lw)
        rows, cols = int(rng.integers(2, 8)), int(rng.integers(1, 5))
        for r in range(rows):
            for c in range(cols):
                wx = x0 + bw * (c + 0.2) / cols
                wy = top + (bottom - top) * (r + 0.2) / rows
                d.rectangle(
                    [wx, wy, wx + bw * 0.6 / cols, wy + (bottom - top) * 0.5 / rows], outline=255, width=1
                )
        d.line([(x0, top), (vx, horizon)], fill=255, width=1)
    d.line([(0, horizon), (W, horizon)], fill=255, width=1)
    tones.paint(canvas, _cov(im, soften=True), ink)


def clouds(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Outlined puffy clouds / bushes: unions of circles, outline only."""
    H, W = canvas.shape[:2]
    fill_im, fd = _draw(H, W)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        for _ in range(int(rng.integers(4, 10))):
            r = rng.uniform(0.03, 0.1) * min(H, W)
            x, y = cx + rng.normal(0, r * 1.5), cy + rng.normal(0, r * 0.6)
            fd.ellipse([x - r, y - r, x + r, y + r], fill=255)
    edge = fill_im.filter(ImageFilter.FIND_EDGES)
    tones.paint(canvas, _cov(fill_im), 1.0)
    tones.paint(canvas, np.minimum(_cov(edge, soften=True) * 2, 1), ink)


def scribble_dark(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Large dark masses (night sky, hair, shadow) with a rough edge: dark art with no text in it."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    for _ in range(int(rng.integers(1, 3))):
        c = rng.uniform([0, 0], [W, H])
        r = rng.uniform(0.15, 0.5) * min(H, W)
        ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(8, 20))))
        rad = r * rng.uniform(0.4, 1.2, ang.size)
        d.polygon(
            [
                (float(c[0] + q * np.cos(a)), float(c[1] + q * np.sin(a)))
                for a, q in zip(ang, rad, strict=True)
            ],
            fill=255,
        )
    tones.paint(canvas, _cov(im.filter(ImageFilter.BoxBlur(1))), ink)


def black_hair(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Manga black hair: a dark mass of pointed locks with thin white highlight strokes and strand gaps.

    Dense black with white slivers is what a detector most easily mistakes for bold lettering."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    light, ld = _draw(H, W)
    c = rng.uniform([0.1 * W, 0.1 * H], [0.9 * W, 0.9 * H])
    r = float(rng.uniform(0.12, 0.4) * min(H, W))
    d.ellipse([c[0] - r, c[1] - r * 0.9, c[0] + r, c[1] + r * 0.9], fill=255)
    for _ in range(int(rng.integers(10, 28))):  # locks: tapered curved spikes leaving the head
        a = float(rng.uniform(-0.2, 1.2) * np.pi)  # mostly downward / sideways
        root = c + r * 0.7 * np.array([np.cos(a), np.sin(a)])
        length = r * rng.uniform(0.7, 2.2)
        bend = rng.normal(0, 0.35)
        tip = root + length * np.array([np.cos(a + bend), np.sin(a + bend)])
        half = r * rng.uniform(0.08, 0.25)
        normal = np.array([-np.sin(a), np.cos(a)])
        d.polygon([tuple(root + normal * half), tuple((root + tip) / 2 + normal * half * 0.6 + rng.normal(0, 3, 2)),
                   tuple(tip), tuple((root + tip) / 2 - normal * half * 0.6 + rng.normal(0, 3, 2)),
                   tuple(root - normal * half)], fill=255)
    for _ in range(int(rng.integers(4, 16))):  # highlights and strand gaps: thin light curves inside
        p0 = c + rng.normal(0, r * 0.5, 2)
        direction = rng.normal(0, 1, 2)
        direction /= np.linalg.norm(direction) + 1e-6
        q = [p0, p0 + direction * r * 0.3 + rng.normal(0, 4, 2), p0 + direction * r * 0.6 + rng.normal(0, 6, 2),
             p0 + direction * r * rng.uniform(0.6, 1.0)]
        ld.line(_bezier(*q, n=10), fill=255, width=int(rng.choice([1, 1, 2, 3])))
    dark = _cov(im, soften=True)
    tones.paint(canvas, dark, ink)
    tones.paint(canvas, _cov(light, soften=True) * dark, np.ones_like(np.asarray(ink, np.float32)))


def anime_eyes(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """A pair of large manga eyes: thick upper lid, dark iris with white catch-lights, lashes, brows."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    light, ld = _draw(H, W)
    size = float(rng.uniform(0.04, 0.14) * min(H, W))
    c = rng.uniform([0.15 * W, 0.15 * H], [0.85 * W, 0.85 * H])
    gap = size * rng.uniform(2.0, 3.5)
    for side in (-1, 1):
        e = c + np.array([side * gap / 2, rng.normal(0, size * 0.1)])
        ew, eh = size * rng.uniform(0.7, 1.0), size * rng.uniform(0.9, 1.4)
        d.ellipse([e[0] - ew * 0.6, e[1] - eh * 0.5, e[0] + ew * 0.6, e[1] + eh * 0.6], fill=255)  # iris
        lid = [(e[0] - ew * 1.1, e[1] - eh * 0.3), (e[0] - ew * 0.3, e[1] - eh * 0.75),
               (e[0] + ew * 0.5, e[1] - eh * 0.7), (e[0] + ew * 1.2, e[1] - eh * 0.2)]
        d.line(lid, fill=255, width=max(2, int(size * rng.uniform(0.1, 0.25))), joint="curve")
        for k in range(int(rng.integers(0, 4))):  # lashes
            x0, y0 = lid[-1][0] - k * ew * 0.15, lid[-1][1] - k * eh * 0.1
            d.line([(x0, y0), (x0 + side * ew * 0.3, y0 - eh * 0.25)], fill=255, width=max(1, int(size * 0.06)))
        d.line([(e[0] - ew * 0.8, e[1] + eh * 0.75), (e[0] + ew * 0.6, e[1] + eh * 0.7)], fill=255, width=1)
        brow_y = e[1] - eh * rng.uniform(1.0, 1.5)
        d.line([(e[0] - ew, brow_y), (e[0] + ew, brow_y - side * rng.normal(0, eh * 0.2))], fill=255,
               width=max(1, int(size * 0.08)))
        hx, hy = e[0] + ew * rng.uniform(-0.3, 0.2), e[1] - eh * rng.uniform(0.0, 0.3)
        hr = size * rng.uniform(0.1, 0.25)
        ld.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=255)  # catch-lights
        ld.ellipse([hx + hr, hy + eh * 0.4, hx + hr * 1.6, hy + eh * 0.4 + hr * 0.6], fill=255)
    dark = _cov(im, soften=True)
    tones.paint(canvas, dark, ink)
    tones.paint(canvas, _cov(light, soften=True) * dark, np.ones_like(np.asarray(ink, np.float32)))


def marks(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Small non-text marks that look a bit like lettering: sparkles, surprise dashes, sweat drops, bubbles,
    crosses and dots (hard negatives for the detector)."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    for _ in range(int(rng.integers(1, 6))):
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        s = float(rng.uniform(4, 28))
        kind = int(rng.integers(5))
        if kind == 0:  # four-point sparkle
            t = s * 0.18
            d.polygon(
                [
                    (cx, cy - s),
                    (cx + t, cy - t),
                    (cx + s, cy),
                    (cx + t, cy + t),
                    (cx, cy + s),
                    (cx - t, cy + t),
                    (cx - s, cy),
                    (cx - t, cy - t),
                ],
                fill=255,
            )
        elif kind == 1:  # surprise / emanata dashes radiating from a point
            base = rng.uniform(0, 2 * np.pi)
            for a in base + np.linspace(-0.6, 0.6, int(rng.integers(3, 6))):
                d.line(
                    [
                        (cx + np.cos(a) * s, cy + np.sin(a) * s),
                        (cx + np.cos(a) * s * 2, cy + np.sin(a) * s * 2),
                    ],
                    fill=255,
                    width=int(rng.integers(1, 4)),
                )
        elif kind == 2:  # sweat drop (outline)
            d.ellipse([cx - s * 0.4, cy, cx + s * 0.4, cy + s * 0.8], outline=255, width=max(1, int(s / 10)))
            d.line(
                [(cx - s * 0.38, cy + s * 0.3), (cx, cy - s * 0.5), (cx + s * 0.38, cy + s * 0.3)],
                fill=255,
                width=max(1, int(s / 10)),
            )
        elif kind == 3:  # bubbles / dots
            for _ in range(int(rng.integers(2, 8))):
                r = float(rng.uniform(1.5, s / 3 + 2))
                x, y = cx + rng.normal(0, s), cy + rng.normal(0, s)
                d.ellipse([x - r, y - r, x + r, y + r], outline=255, width=1)
        else:  # cross-shaped anger mark / plus
            w = max(1, int(s / 6))
            d.line([(cx - s / 2, cy), (cx + s / 2, cy)], fill=255, width=w)
            d.line([(cx, cy - s / 2), (cx, cy + s / 2)], fill=255, width=w)
    tones.paint(canvas, _cov(im, soften=True), ink)


def rain(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """A field of short parallel dashes: rain, drizzle, motion ticks (hard negatives: on real strips the detector
    took rain under a cloud for lettering, the dashes being the size and spacing of strokes)."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    y0, x0 = rng.uniform(0, 0.6) * H, rng.uniform(0, 0.6) * W
    h, w = rng.uniform(0.25, 1.0) * (H - y0), rng.uniform(0.25, 1.0) * (W - x0)
    angle = np.pi / 2 + rng.uniform(-0.45, 0.45) * (rng.random() < 0.6)
    dx, dy = np.cos(angle), np.sin(angle)
    length, width = rng.uniform(5, 35), int(rng.integers(1, 5))
    for _ in range(int(h * w / rng.uniform(150, 900))):
        cx, cy = x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)
        ll = length * rng.uniform(0.6, 1.4) / 2
        d.line([(cx - dx * ll, cy - dy * ll), (cx + dx * ll, cy + dy * ll)], fill=255, width=width)
    tones.paint(canvas, _cov(im, soften=True), ink)
