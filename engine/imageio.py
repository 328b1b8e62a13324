"""Reading and writing images: every mode Pillow opens becomes uint8 RGB (H, W, 3) plus alpha (H, W) or None.

This is the only engine module (besides the CLI) that touches files; the pipeline works on arrays.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import InputError, OutputError

# A page larger than this is refused (a decompression bomb, or a scan far beyond any print resolution).
MAX_PIXELS = 150_000_000
# A side longer than this is refused: no page or strip is that long (a webtoon chapter is a few 10,000 px),
# and a line of pixels a million long holds no lettering to erase.
MAX_SIDE = 1 << 20
SUPPORTED_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "La", "CMYK", "YCbCr", "LAB",
                   "HSV", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def frame_count(path: str | os.PathLike) -> int:
    """How many frames (pages of a TIFF, frames of a GIF, APNG or WebP) an image file has; 1 when it cannot
    tell (load_image then says what is wrong with the file)."""
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None  # only the frame count is read here
            with Image.open(path) as img:
                return max(1, int(getattr(img, "n_frames", 1)))
    except Exception:  # any damage is load_image's to report, with the page
        return 1
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def load_image(path: str | os.PathLike, frame: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image file (its ``frame``-th frame, counted from 0, for a multi-frame file). Returns
    (rgb uint8 (H, W, 3), alpha uint8 (H, W) or None). Raises InputError."""
    return decode_image(read_image_bytes(path), str(path), frame)


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, undecoded. Raises InputError when the file is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image (pass -r to process folders)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from e


def decode_image(data: bytes, name: str, frame: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image file's bytes (its ``frame``-th frame); ``name`` (the file's path) is what error messages
    call it.

    Returns (rgb uint8 (H, W, 3), alpha uint8 (H, W) or None). Raises InputError.
    """
    if not data:
        raise InputError(f"{name}: the file is empty (0 bytes); re-export or re-download it")
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            with Image.open(io.BytesIO(data)) as img:
                if frame:
                    try:
                        img.seek(frame)
                    except EOFError as e:
                        raise InputError(f"{name}: has no frame {frame + 1}") from e
                _check_size(img.size, name)
                img.load()
                return normalise(img, name)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(
            f"{name}: the image is too large ({e}); Kesu accepts up to {MAX_PIXELS:,} pixels: split or "
            "downscale it first"
        ) from e
    except UnidentifiedImageError as e:
        raise InputError(f"{name}: not an image Kesu can read (PNG, JPEG, WebP, TIFF, BMP, ...)") from e
    except OSError as e:
        # Pillow raises OSError("image file is truncated ...") and friends for damaged files
        raise InputError(f"{name}: the image data is damaged or truncated ({e}); re-export or re-download it") from e
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def peek_image(source: str | os.PathLike | bytes) -> tuple[int, int, str] | None:
    """(width, height, Pillow mode) from an image file's header (a path, or the file's bytes) without decoding
    it; None if it cannot be read (``load_image``/``decode_image`` then say why)."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            return img.size[0], img.size[1], img.mode
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _check_size(size: tuple[int, int], name: str) -> None:
    check_page_size(size[0], size[1], name)


def check_page_size(width: int, height: int, name: str = "the image",
                    fix: str = "split or downscale it first") -> None:
    """Refuse a page size the engine makes no sense of: empty, over MAX_PIXELS, or a side over MAX_SIDE."""
    if width <= 0 or height <= 0:
        raise InputError(f"{name}: the image has zero size ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{name}: the image is too large ({width}x{height} = {width * height:,} pixels; at most "
            f"{MAX_PIXELS:,}): {fix}"
        )
    if max(width, height) > MAX_SIDE:
        raise InputError(
            f"{name}: the image is {width}x{height}, a side longer than the {MAX_SIDE:,} px Kesu takes "
            f"(no page or strip is that long): {fix}"
        )


def normalise(img: Image.Image, name: str = "image") -> tuple[np.ndarray, np.ndarray | None]:
    """Convert a Pillow image of any supported mode to (rgb uint8 (H, W, 3), alpha uint8 (H, W) or None)."""
    _check_size(img.size, name)
    mode = img.mode
    if mode not in SUPPORTED_MODES:
        raise InputError(f"{name}: unsupported image mode {mode!r}; convert it to RGB or greyscale first")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = _high_depth_to_uint8(np.asarray(img), mode)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "RGBa", "RGBX", "La", "LA"):
        img = img.convert("RGBA")
    elif mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    if img.mode == "RGBA":
        arr = np.asarray(img)
        return np.ascontiguousarray(arr[:, :, :3]), np.ascontiguousarray(arr[:, :, 3])
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), None


def _high_depth_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    if mode == "F":
        # float images: assume [0, 1] when they fit, else [0, 255]
        arr = arr.astype(np.float64)
        scale = 255.0 if arr.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    arr = arr.astype(np.int64)
    if mode == "I" and arr.max(initial=0) <= 255 and arr.min(initial=0) >= 0:
        return arr.astype(np.uint8)
    # 16-bit samples: keep the high byte (rounded)
    return np.clip((arr + 128) // 257, 0, 255).astype(np.uint8)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """uint8 (H, W, 3) [+ alpha (H, W)] -> an RGB or RGBA Pillow image."""
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def png_bytes(img: Image.Image) -> bytes:
    """The PNG file of a Pillow image, as bytes."""
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


# the temporary files save_files_atomic makes (tempfile.mkstemp: 8 characters of [a-z0-9_])
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.png\.tmp")
STALE_TEMP_S = 600  # a temporary file this old is left over from a run that was killed


def save_png_atomic(img: Image.Image, path: str | os.PathLike) -> None:
    """Write a PNG through a uniquely named temporary file in the same folder, then rename it into place."""
    save_files_atomic([(png_bytes(img), Path(path))])


def save_pngs_atomic(items: list[tuple[Image.Image, Path]]) -> None:
    """Write one page's PNGs all or none (see save_files_atomic)."""
    save_files_atomic([(png_bytes(img), Path(path)) for img, path in items])


def save_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Write a file through a uniquely named temporary file in the same folder, then rename it into place: the
    file at ``path`` is either the old one or the whole new one, never half written."""
    save_files_atomic([(data, Path(path))])


def save_files_atomic(items: list[tuple[bytes, Path]]) -> None:
    """Write several files (one page's outputs) all or none: each goes through a temporary file in its folder,
    and only when every one is written are they renamed into place. Raises OutputError naming the file and
    why (no permission, a full disk, a folder in the way); then none of them is left half-written, and one
    already renamed into place is removed again."""
    temps: list[tuple[str, Path]] = []
    placed: list[Path] = []
    current = items[0][1] if items else Path()
    try:
        for data, path in items:
            current = path
            if path.is_dir():
                raise IsADirectoryError(21, "a folder of that name is in the way", str(path))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # the mode any new file gets, not the temporary file's 0600
        for tmp, path in temps:
            current = path
            os.replace(tmp, path)
            placed.append(path)
    except BaseException as e:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {current}: {_why(e)}") from e
        raise


def _why(error: OSError) -> str:
    reason = error.strerror or str(error)
    if isinstance(error, PermissionError):
        return f"{reason}; check the output folder's permissions or pick another one with -o"
    if error.errno == 28:  # ENOSPC
        return f"{reason}; free some space or pick another output folder with -o"
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        return f"{reason} (a file is in the way of a folder: {error.filename}); pick another output folder"
    if isinstance(error, IsADirectoryError):
        return f"{reason} ({error.filename}); move that folder away or pick another output folder"
    return reason


def remove_stale_temps(folder: Path, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Delete the temporary PNGs of save_files_atomic older than ``older_than_s`` in ``folder`` (left by a run
    that was killed mid-write); a run writing now keeps its own. Returns what was removed."""
    removed = []
    cutoff = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


def load_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Read a mask image: nonzero (any channel, ignoring alpha-0 pixels) = True. ``size`` is (width, height)."""
    rgb, alpha = load_image(path)
    if (rgb.shape[1], rgb.shape[0]) != tuple(size):
        raise InputError(
            f"{path}: the mask is {rgb.shape[1]}x{rgb.shape[0]} but the image is {size[0]}x{size[1]}; "
            "masks must have the image's size"
        )
    mask = rgb.max(axis=2) > 0
    if alpha is not None:
        mask &= alpha > 0
    return mask
