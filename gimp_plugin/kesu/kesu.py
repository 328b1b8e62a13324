#!/usr/bin/env python3
"""Kesu for GIMP 3: Filters > Text Removal > Detect Text, Inpaint Selection, Clean Page.

Also callable from scripts through the PDB: ``kesu-detect-text``, ``kesu-inpaint-selection``,
``kesu-clean-page`` (arguments ``grow-px`` and ``threshold``; Detect Text and Clean Page also ``text-kinds``:
"dialogue", "sfx" or "all"). Results are new layers ("Text Mask", "SFX Mask", "Cleaned") inside one undo group;
the active layer is never changed. The work is done by the Kesu engine server (its
own Python environment, started on first use) through ``kesu_protocol``; the logic that needs no GIMP is in
``kesu_core``. On any error the image is left as it was, GIMP shows what to do, and the details go to the
log file in the Kesu log folder.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in the user's plug-ins folder

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import kesu_core as core  # noqa: E402  (this folder is the plug-in's sys.path[0])
import kesu_protocol as proto  # noqa: E402
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

RGBA = "R'G'B'A u8"   # non-linear 8-bit: what the engine expects; GEGL converts any precision and grey
RGB = "R'G'B' u8"
SELECTION = "Y u8"

log = logging.getLogger("kesu.gimp")


# ------------------------------------------------------------------------------------------------- logging


def log_file() -> Path:
    """The plug-in's log: in plugin.json's ``log_dir`` (the installer's Kesu log folder), else the config dir."""
    folder = None
    try:
        folder = proto.load_plugin_config().get("log_dir")
    except proto.ProtocolError:
        pass
    return (Path(folder) if folder else proto.config_dir()) / core.LOG_FILE


def setup_logging() -> Path:
    path = log_file()
    if not any(isinstance(h, logging.FileHandler) for h in log.handlers):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=1 << 20, backupCount=1, encoding="utf-8")
        except OSError:
            handler = logging.StreamHandler(sys.stderr)  # GIMP's console; better than nothing
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    return path


# ------------------------------------------------------------------------------------------------- pixels


def read_rgba(drawable: Gimp.Drawable, r: core.Rect, fmt: str = RGBA) -> bytes:
    """RGBA (or ``fmt``) bytes of ``r`` (drawable coordinates); outside the drawable: transparent zeros."""
    rect = Gegl.Rectangle.new(r.x, r.y, r.w, r.h)
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def read_selection(image: Gimp.Image, r: core.Rect) -> bytes:
    """The selection over ``r`` (image coordinates) as a 0/255 mask."""
    sel = image.get_selection()
    rect = Gegl.Rectangle.new(r.x, r.y, r.w, r.h)
    return proto.coverage_to_mask(bytes(sel.get_buffer().get(rect, 1.0, SELECTION, Gegl.AbyssPolicy.NONE)))


def selection_bounds(image: Gimp.Image) -> core.Rect | None:
    """The selection's bounding box (image coordinates), or None when nothing is selected."""
    if Gimp.Selection.is_empty(image):
        return None
    res = Gimp.Selection.bounds(image)
    # PyGObject returns (ok, non_empty, x1, y1, x2, y2) or, depending on the binding, without ``ok``
    vals = list(res)
    if len(vals) == 6:
        vals = vals[1:]
    non_empty, x1, y1, x2, y2 = vals
    if not non_empty:
        return None
    return core.bounds_rect(x1, y1, x2, y2)


def new_layer(image: Gimp.Image, name: str, r: core.Rect, opacity: float = 100.0) -> Gimp.Layer:
    """An empty layer of the image's own kind (RGB or grey, with alpha), ``r``'s size."""
    kind = Gimp.ImageType.GRAYA_IMAGE if image.get_base_type() == Gimp.ImageBaseType.GRAY \
        else Gimp.ImageType.RGBA_IMAGE
    layer = Gimp.Layer.new(image, name, r.w, r.h, kind, opacity, Gimp.LayerMode.NORMAL)
    if layer is None:
        raise RuntimeError(f"GIMP could not create the layer {name!r} ({r.w}x{r.h})")
    return layer


def fill_layer(layer: Gimp.Layer, r: core.Rect, data: bytes) -> None:
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, r.w, r.h), RGBA, data)
    buf.flush()
    layer.set_offsets(r.x, r.y)
    layer.update(0, 0, r.w, r.h)


# --------------------------------------------------------------------------------------------- the layers


def drawable_kind(drawable: Gimp.Drawable) -> str:
    if isinstance(drawable, Gimp.LayerMask):
        return "mask"
    if isinstance(drawable, Gimp.Layer):
        return "group" if drawable.is_group() else "layer"
    return "channel"


def siblings(image: Gimp.Image, layer: Gimp.Layer) -> list[Gimp.Layer]:
    parent = layer.get_parent()
    return list(parent.get_children() if parent is not None else image.get_layers())


def base_type_name(image: Gimp.Image) -> str:
    t = image.get_base_type()
    return {Gimp.ImageBaseType.RGB: "RGB", Gimp.ImageBaseType.GRAY: "GRAY",
            Gimp.ImageBaseType.INDEXED: "INDEXED"}.get(t, str(t))


def resolve_source(image: Gimp.Image, drawables: list) -> tuple[Gimp.Layer, list[Gimp.Layer], int]:
    """The page layer to work on, its siblings (top first) and its index among them."""
    if not drawables:
        drawables = list(image.get_selected_layers())
    if len(drawables) != 1:
        raise core.KesuError("select exactly one layer (the page) and try again"
                             if drawables else "no layer is selected: select the page layer and try again")
    core.check_image_mode(base_type_name(image), drawable_kind(drawables[0]))
    layers = siblings(image, drawables[0])
    names = [lay.get_name() for lay in layers]
    active = next(i for i, lay in enumerate(layers) if lay.get_id() == drawables[0].get_id())
    idx = core.source_index(names, active)
    source = layers[idx]
    core.check_image_mode(base_type_name(image), drawable_kind(source))
    return source, layers, idx


def layer_rect(layer: Gimp.Layer) -> core.Rect:
    _, x, y = layer.get_offsets()
    return core.Rect(x, y, layer.get_width(), layer.get_height())


# ---------------------------------------------------------------------------------------------- running


class Job:
    """One run of one procedure: read, ask the engine, then add the layers in one undo group."""

    def __init__(self, spec: core.ProcSpec, image: Gimp.Image, drawables: list, settings: core.Settings,
                 interactive: bool):
        self.spec, self.image, self.drawables, self.settings = spec, image, drawables, settings
        self.interactive = interactive

    def progress(self, fraction: float, message: str) -> bool:
        Gimp.progress_set_text(f"Kesu: {message}" if message else f"Kesu: {self.spec.label}")
        Gimp.progress_update(max(0.0, min(1.0, fraction)))
        return True

    def connect(self):
        return proto.Client.connect_or_start()

    def run(self) -> str:
        """Do the work; returns a one-line summary. Raises KesuError (or anything else on a bug)."""
        t0 = time.monotonic()
        Gimp.progress_init(f"Kesu: {self.spec.label}")
        source, layers, idx = resolve_source(self.image, self.drawables)
        rect = layer_rect(source)
        op, mask, work = self.spec.op, None, rect
        names = [lay.get_name() for lay in layers]
        if op == "inpaint":
            sel = selection_bounds(self.image)
            belong = sorted(proto.mask_layers_for(names, idx).values())
            fill = proto.masks_to_fill(names, [lay.get_visible() for lay in layers], idx)
            plan = core.plan_inpaint(sel is not None, [names[i] for i in belong], [names[i] for i in fill])
            op = plan.op
            if plan.source == "selection":
                work = core.inpaint_rect(rect, sel)
                mask = read_selection(self.image, work)
                if proto.mask_count(mask) == 0:
                    raise core.KesuError("the selection does not cover any of the active layer's pixels: "
                                         "select the text to erase on this layer and try again")
            else:  # the visible mask layers together
                for i in fill:
                    m = proto.layer_to_mask(read_rgba(layers[i], rect.relative_to(layer_rect(layers[i]))), "RGBA")
                    mask = m if mask is None else proto.mask_or(mask, m)
                if proto.mask_count(mask) == 0:
                    raise core.KesuError(core.empty_masks_message([names[i] for i in fill]))
                log.info("%s: filling %s", self.spec.name, [names[i] for i in fill])
        # a layer without alpha travels as RGB: a quarter less to convert and send
        channels = "RGBA" if source.has_alpha() else "RGB"
        pixels = read_rgba(source, work.relative_to(rect), RGBA if channels == "RGBA" else RGB)
        t_read = time.monotonic() - t0
        if op == "clean" and self.spec.op == "clean" and selection_bounds(self.image) is not None:
            result = self.clean_in_selection(pixels, work, channels)
        else:
            # a mask given (Inpaint Selection) needs no kind masks: the engine only grows and fills it
            result = core.run_engine(self.connect, op, pixels, work.w, work.h, self.settings, mask=mask,
                                     progress=self.progress, channels=channels, kind_masks=mask is None)
        t1 = time.monotonic()
        self.add_layers(source, layers, idx, work, result)
        Gimp.progress_update(1.0)
        if self.interactive:
            Gimp.displays_flush()
        text = proto.mask_count(result.mask) if result.mask is not None else -1
        sfx = proto.mask_count(result.kind_masks["sfx"]) if "sfx" in result.kind_masks else -1
        t_layers, total = time.monotonic() - t1, time.monotonic() - t0
        return (f"{self.spec.name} on {source.get_name()!r} {work.w}x{work.h} ({op}): read {t_read:.2f}s, "
                f"engine {result.seconds:.2f}s (compute {result.engine_s:.2f}s), layers {t_layers:.2f}s, "
                f"total {total:.2f}s; text pixels {text}, sound-effect pixels {sfx}")

    def clean_in_selection(self, pixels: bytes, work: core.Rect, channels: str) -> core.EngineResult:
        """Clean Page with a selection: detect on the whole layer (context), keep the text inside the selection,
        erase that, and change nothing outside the selection."""
        def half(lo: float):
            return lambda f, m: self.progress(lo + 0.5 * f, m)

        inside = read_selection(self.image, work)
        found = core.run_engine(self.connect, "detect", pixels, work.w, work.h, self.settings,
                                progress=half(0.0), channels=channels, kind_masks=True)
        text = proto.mask_and(found.mask, inside)
        if proto.mask_count(text) == 0:
            raise core.KesuError("Kesu found no text to erase inside the selection: select a larger area, or "
                                 "select nothing to clean the whole page")
        res = core.run_engine(self.connect, "clean", pixels, work.w, work.h, self.settings, mask=text,
                              progress=half(0.5), channels=channels)
        kinds = {kind: proto.mask_and(m, inside) for kind, m in found.kind_masks.items()}
        return core.EngineResult(text, proto.clip_to_mask(res.pixels, "RGBA", inside), found.seconds + res.seconds,
                                 found.engine_s + res.engine_s, kinds)

    def add_layers(self, source: Gimp.Layer, layers: list, idx: int, work: core.Rect,
                   result: core.EngineResult) -> None:
        image, parent = self.image, source.get_parent()
        made: list[Gimp.Layer] = []
        image.undo_group_start()
        try:
            # inserting at the source's index puts a new layer directly above it, and the next one directly above
            # that: "Text Mask", then "SFX Mask" (hidden unless its sound effects are erased), then "Cleaned"
            pos = idx
            if self.spec.op in ("detect", "clean"):
                for kind, mask in result.mask_layers().items():
                    mask_layer = new_layer(image, proto.MASK_LAYERS[kind], work, core.MASK_LAYER_OPACITY)
                    image.insert_layer(mask_layer, parent, pos)
                    made.append(mask_layer)
                    fill_layer(mask_layer, work, proto.mask_to_layer(mask, "RGBA"))
                    mask_layer.set_visible(proto.mask_layer_visible(kind, self.settings.text))
            if self.spec.op in ("inpaint", "clean"):
                if self.spec.op == "inpaint":
                    # above the page's own mask layers (and other Kesu layers right above it), so it shows
                    pos = proto.cleaned_position([lay.get_name() for lay in layers], idx)
                cleaned = new_layer(image, proto.CLEANED_LAYER, work)
                image.insert_layer(cleaned, parent, pos)
                made.append(cleaned)
                fill_layer(cleaned, work, result.pixels)
        except BaseException:
            for lay in reversed(made):  # leave the image as it was
                try:
                    image.remove_layer(lay)
                except Exception:  # noqa: BLE001  (keep undoing the rest)
                    log.error("could not remove %s after a failure", lay.get_name())
            raise
        finally:
            image.undo_group_end()


def settings_from(config: Gimp.ProcedureConfig, spec: core.ProcSpec) -> core.Settings:
    text = str(config.get_property("text-kinds")) if spec.name in core.TEXT_KINDS_PROCEDURES else "dialogue"
    return core.Settings(grow_px=int(config.get_property("grow-px")),
                         threshold=float(config.get_property("threshold")), text=text)


def show_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, spec: core.ProcSpec) -> bool:
    """The settings dialog (interactive runs); False when the user cancels."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init("kesu")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, f"Kesu: {spec.label}")
    # shown in percent: GIMP's default spin increments (1, 10) do not fit a 0.05-0.95 range
    dialog.get_spin_scale("threshold", 100.0)
    dialog.fill(None)
    try:
        return bool(dialog.run())
    finally:
        dialog.destroy()


def error_values(procedure: Gimp.Procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


# ----------------------------------------------------------------------------------------------- plug-in


class Kesu(Gimp.PlugIn):
    def do_query_procedures(self):
        return [p.name for p in core.PROCEDURES]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        spec = core.PROCEDURE_BY_NAME[name]
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, spec)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label(spec.label)
        proc.add_menu_path(core.MENU_PATH)
        proc.set_documentation(spec.blurb, spec.help, name)
        proc.set_attribution("Kesu contributors", "Kesu contributors", "2026")
        flags = GObject.ParamFlags.READWRITE
        proc.add_int_argument("grow-px", "_Grow (px)", "Pixels added around the text before erasing it",
                              int(core.GROW_PX.lo), int(core.GROW_PX.hi), int(core.GROW_PX.default), flags)
        proc.add_double_argument("threshold", "_Threshold",
                                 "Text probability at which a pixel counts as text (lower finds more)",
                                 core.THRESHOLD.lo, core.THRESHOLD.hi, core.THRESHOLD.default, flags)
        if name in core.TEXT_KINDS_PROCEDURES:
            choice = Gimp.Choice.new()
            for i, (nick, label) in enumerate(core.TEXT_KINDS_LABELS.items()):
                choice.add(nick, i, label, "")
            proc.add_choice_argument(
                "text-kinds", "Te_xt to erase",
                "dialogue (lettering: speech, captions, narration), sfx (sound effects drawn into the art) or "
                "all. Include sound effects with \"all\"; otherwise they are kept and their \"SFX Mask\" layer "
                "is added hidden", choice, proto.DEFAULT_TEXT, flags)
        return proc

    def run(self, procedure, run_mode, image, drawables, config, spec):
        logfile = setup_logging()
        interactive = run_mode == Gimp.RunMode.INTERACTIVE
        try:
            if interactive and not show_dialog(procedure, config, spec):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
            settings = settings_from(config, spec)
            log.info("%s: %s (grow %d px, threshold %.2f, text %s)", spec.name, run_mode.value_nick,
                     settings.grow_px, settings.threshold, settings.text)
            summary = Job(spec, image, list(drawables or []), settings, interactive).run()
            log.info("%s", summary)
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
        except core.KesuError as e:
            log.warning("%s failed: %s\n%s", spec.name, e, traceback.format_exc())
            message = core.failure_message(spec.label, str(e), str(logfile))
        except Exception as e:  # a bug: say so, keep the details
            log.error("%s crashed:\n%s", spec.name, traceback.format_exc())
            message = core.failure_message(
                spec.label, f"an unexpected error ({type(e).__name__}: {e}); please report it with the log",
                str(logfile))
        finally:
            try:
                Gimp.progress_end()
            except Exception:  # noqa: BLE001
                pass
        return error_values(procedure, message)


if __name__ == "__main__":
    Gimp.main(Kesu.__gtype__, sys.argv)
