"""Layered Photoshop output of a cleaned page (``kesu clean --psd``), written with psd-tools (the ``kesu[psd]``
extra).

Layers, bottom up: the original page (named after its file, alpha kept), one hidden mask layer per text kind
(``"Text Mask"``: the plug-ins' mask colour where there is text, transparent elsewhere), and ``"Cleaned"``: the
cleaned colour where the engine was allowed to change the page, transparent elsewhere, exactly the layer the Krita
and GIMP plug-ins add (``engine.server.result_pixels``). The file's merged image is the cleaned page itself
(a page with alpha: composited over white, as Photoshop stores it, with the alpha as its transparency), so viewers
that read only the merged image show the cleaned page.

The document is built from psd-tools' low-level records (``psd_tools.psd``) so that every plane goes from uint8
straight to its compressed form, one plane at a time, and the merged image is the engine's page rather than a
re-rendering of the layers. Pages larger than 30000 px a side become PSB (Photoshop's large document format).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import InputError
from engine.protocol import CLEANED_LAYER, MASK_GREY, MASK_RGB, TEXT_MASK_LAYER  # noqa: F401  (the plug-ins')

if TYPE_CHECKING:
    from psd_tools.psd import PSD

PSD_REQUIREMENT = "psd-tools>=1.26,<2"
PSD_MAX_SIDE = 30_000   # the PSD format's limit; beyond it the file is a PSB
PSB_MAX_SIDE = 300_000  # the PSB format's limit
MAX_NAME_CHARS = 255  # a layer name's limit in the format
ROWS_PER_BAND = 1024  # rows converted at a time where a conversion needs wider integers (bounds memory)


class MissingPsdSupport(InputError):
    """--psd was asked for without the psd-tools package."""


def require_psd_tools() -> None:
    """Raise MissingPsdSupport, naming the install command for this environment, if psd-tools is missing."""
    try:
        import psd_tools  # noqa: F401
    except ImportError:
        raise MissingPsdSupport(
            f"--psd needs the psd-tools package (Kesu's optional extra kesu[psd]); install it into Kesu's "
            f"environment with: {sys.executable} -m pip install '{PSD_REQUIREMENT}'"
        ) from None


def file_suffix(width: int, height: int) -> str:
    """".psd", or ".psb" for a page over the PSD format's 30000 px a side."""
    return ".psb" if max(width, height) > PSD_MAX_SIDE else ".psd"


def layered_document(
    original: np.ndarray,
    alpha: np.ndarray | None,
    cleaned: np.ndarray,
    changed: np.ndarray,
    text_masks: Mapping[str, np.ndarray],
    page_name: str,
    grey: bool = False,
) -> PSD:
    """The layered document of one cleaned page, ready for ``PSD.write``.

    Args:
        original: uint8 (H, W, 3) RGB, the page as read (a grey page has three equal channels).
        alpha: uint8 (H, W) or None, the page's alpha; kept on the original layer and in the merged image.
        cleaned: uint8 (H, W, 3) RGB, the engine's cleaned page (equal to ``original`` outside ``changed``).
        changed: bool (H, W), the pixels the engine was allowed to change (its grown mask).
        text_masks: layer name -> bool (H, W) mask, one hidden layer each, bottom up in the mapping's order
            (``{"Text Mask": result.text_mask}``).
        page_name: the original layer's name (the page's file name).
        grey: write a greyscale document (the grey of ``original`` is its first channel; the cleaned colour
            becomes grey with the ITU-R BT.601 weights the plug-ins use).
    """
    from psd_tools.compression import encode_rle
    from psd_tools.constants import ChannelID, ColorMode, Compression, Tag
    from psd_tools.psd import PSD, ChannelImageData, LayerInfo
    from psd_tools.psd.header import FileHeader
    from psd_tools.psd.image_data import ImageData
    from psd_tools.psd.image_resources import ImageResources
    from psd_tools.psd.layer_and_mask import (
        ChannelData,
        ChannelDataList,
        ChannelInfo,
        GlobalLayerMaskInfo,
        LayerAndMaskInformation,
        LayerRecord,
        LayerRecords,
    )
    from psd_tools.psd.tagged_blocks import TaggedBlocks

    height, width = original.shape[:2]
    _check_arrays(original, alpha, cleaned, changed, text_masks)
    if max(width, height) > PSB_MAX_SIDE:
        raise InputError(
            f"{page_name}: {width}x{height} is over {PSB_MAX_SIDE} px a side, more than even Photoshop's large "
            "document format (PSB) holds; split the page and clean the parts"
        )
    version = 2 if max(width, height) > PSD_MAX_SIDE else 1

    encoded: dict[object, bytes] = {}  # planes that occur more than once are compressed once

    def rle(plane: np.ndarray | int, key: object = None) -> bytes:
        """RLE data of a plane (an array, or a constant value), from the cache when ``key`` was seen."""
        if isinstance(plane, int):
            key = ("constant", plane)
        if key is not None and key in encoded:
            return encoded[key]
        if isinstance(plane, int):
            plane = np.full((height, width), plane, np.uint8)
        data = encode_rle(plane.tobytes(), width, height, 8, version)
        if key is not None:
            encoded[key] = data
        return data

    records, channel_data = LayerRecords(), ChannelImageData()

    def add_layer(name: str, transparency: bytes, colours: list[bytes], visible: bool = True) -> None:
        record = LayerRecord(top=0, left=0, bottom=height, right=width, name=_pascal_name(name))
        record.tagged_blocks = TaggedBlocks()
        record.tagged_blocks.set_data(Tag.UNICODE_LAYER_NAME, name[:MAX_NAME_CHARS])
        record.flags.visible = visible
        channels = ChannelDataList()
        ids = [ChannelID.TRANSPARENCY_MASK, *(ChannelID(i) for i in range(len(colours)))]
        for channel_id, data in zip(ids, [transparency, *colours], strict=True):
            record.channel_info.append(ChannelInfo(id=channel_id, length=2 + len(data)))
            channels.append(ChannelData(compression=Compression.RLE, data=data))
        records.append(record)
        channel_data.append(channels)

    original_planes = [original[:, :, 0]] if grey else [original[:, :, c] for c in range(3)]
    add_layer(page_name, rle(255) if alpha is None else rle(alpha, "alpha"),
              [rle(p) for p in original_planes])

    for name, mask in text_masks.items():
        inside = mask.view(np.uint8)

        def mask_plane(value: int, name=name, inside=inside) -> bytes:
            # the mask colour inside, zeros elsewhere, like the plug-ins' layer
            return rle(0) if value == 0 else rle(inside * np.uint8(value), ("mask", name, value))

        add_layer(name, mask_plane(255), [mask_plane(c) for c in ((MASK_GREY,) if grey else MASK_RGB)],
                  visible=False)

    cleaned_planes = [luma(cleaned)] if grey else [cleaned[:, :, c] for c in range(3)]
    keep = changed if alpha is None else changed & (alpha > 0)
    keep_alpha = np.where(keep, np.uint8(255) if alpha is None else alpha, np.uint8(0))
    add_layer(CLEANED_LAYER, rle(keep_alpha), [rle(np.where(keep, p, np.uint8(0))) for p in cleaned_planes])
    del keep, keep_alpha

    if alpha is None:
        merged = [rle(p) for p in cleaned_planes]
    else:  # Photoshop's convention: a transparent document's merged colour is stored composited over white
        merged = [rle(over_white(p, alpha)) for p in cleaned_planes] + [rle(alpha, "alpha")]
    header = FileHeader(version=version, channels=len(merged), height=height, width=width, depth=8,
                        color_mode=ColorMode.GRAYSCALE if grey else ColorMode.RGB)
    image_data = ImageData(compression=Compression.RLE, data=_merged_rle(merged, height, version))
    layer_info = LayerInfo(
        # negative: the merged image's first alpha channel is its transparency (not an extra alpha channel)
        layer_count=-len(records) if alpha is not None else len(records),
        layer_records=records,
        channel_image_data=channel_data,
    )
    return PSD(
        header=header,
        image_resources=ImageResources.new(),
        layer_and_mask_information=LayerAndMaskInformation(
            layer_info=layer_info, global_layer_mask_info=GlobalLayerMaskInfo(), tagged_blocks=TaggedBlocks()
        ),
        image_data=image_data,
    )


def _check_arrays(original, alpha, cleaned, changed, text_masks) -> None:
    shape = original.shape[:2]
    if original.dtype != np.uint8 or original.ndim != 3 or original.shape[2] != 3:
        raise InputError(f"the page must be uint8 (H, W, 3), got {original.dtype} {original.shape}")
    if cleaned.dtype != np.uint8 or cleaned.shape != original.shape:
        raise InputError(f"the cleaned page must be uint8 {original.shape}, got {cleaned.dtype} {cleaned.shape}")
    if alpha is not None and (alpha.dtype != np.uint8 or alpha.shape != shape):
        raise InputError(f"the alpha must be uint8 {shape}, got {alpha.dtype} {alpha.shape}")
    for name, mask in [("changed pixels", changed), *text_masks.items()]:
        if mask.dtype != bool or mask.shape != shape:
            raise InputError(f"the {name} mask must be bool {shape}, got {mask.dtype} {mask.shape}")


def _pascal_name(name: str) -> str:
    """The name in the record's own MacRoman field ("?" where it cannot be: the Unicode block holds it)."""
    name = name[:MAX_NAME_CHARS]
    try:
        name.encode("macroman")
    except UnicodeEncodeError:
        return "?"
    return name


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W) ITU-R BT.601 grey of uint8 (H, W, 3) RGB, rounded like ``engine.server.result_pixels``."""
    out = np.empty(rgb.shape[:2], np.uint8)
    for top in range(0, rgb.shape[0], ROWS_PER_BAND):
        band = rgb[top:top + ROWS_PER_BAND].astype(np.uint32)
        out[top:top + ROWS_PER_BAND] = (band[:, :, 0] * 299 + band[:, :, 1] * 587 + band[:, :, 2] * 114 + 500) // 1000
    return out


def over_white(plane: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 (H, W) colour composited over white by uint8 (H, W) alpha, rounded (white where alpha is 0)."""
    out = np.empty(plane.shape, np.uint8)
    for top in range(0, plane.shape[0], ROWS_PER_BAND):
        rows = slice(top, top + ROWS_PER_BAND)
        a = alpha[rows].astype(np.uint32)
        out[rows] = (plane[rows] * a + 255 * (255 - a) + 127) // 255
    return out


def _merged_rle(planes: list[bytes], height: int, version: int) -> bytes:
    """The merged image's RLE data from each plane's RLE data (its rows' byte counts, then its rows): every
    plane's counts first, then every plane's rows."""
    count_bytes = height * (2 if version == 1 else 4)
    return b"".join([p[:count_bytes] for p in planes] + [p[count_bytes:] for p in planes])
