# Executed INSIDE gimp-console-3.x by python-fu-eval (Gimp, Gegl, Gio, GLib are globals there):
#     gimp-console-3.x -i --no-data --no-fonts --batch-interpreter=python-fu-eval \
#         -b "exec(open('.../gimp_batch.py').read())" --quit
# It follows the JSON plan named by $KESU_GIMP_PLAN (a list of steps, see STEPS below) and writes what happened
# to plan["report"] as JSON, for the pytest side (test_gimp_host.py) to check. A step that raises records the
# error and ends the plan; the batch then exits 64 (GIMP's exit code for an exception in batch code).
# Not a pytest module (the name does not start with test_).
import json
import os
import time
import traceback

from gi.repository import Gio

_pdb = Gimp.get_pdb()  # noqa: F821
_plan = json.load(open(os.environ["KESU_GIMP_PLAN"], encoding="utf-8"))
_images = {}
_report = {"steps": [], "ok": False}


def _layer_info(image):
    return [{"name": lay.get_name(), "offsets": list(lay.get_offsets()[1:]), "size": [lay.get_width(),
             lay.get_height()], "visible": lay.get_visible()} for lay in image.get_layers()]


def _drawable(image, which):
    layers = image.get_layers()
    if isinstance(which, int):
        return layers[which]
    return next(lay for lay in layers if lay.get_name() == which)


def _load(step):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(step["path"]))  # noqa: F821
    image.clean_all()
    _images[step["as"]] = image
    return {"layers": _layer_info(image)}


def _transform(step):
    image = _images[step["image"]]
    what = step["what"]
    if what == "canvas_offset":  # a bigger canvas with the layer moved to (dx, dy)
        dx, dy = step["offset"]
        image.resize(image.get_width() + 2 * dx, image.get_height() + 2 * dy, dx, dy)
    elif what == "add_alpha":
        image.get_layers()[0].add_alpha()
    elif what == "grey":
        image.convert_grayscale()
    elif what == "indexed":
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE,  # noqa: F821
                              16, False, False, "")
    elif what == "u16":
        image.convert_precision(Gimp.Precision.U16_NON_LINEAR)  # noqa: F821
    elif what == "select":
        x, y, w, h = step["rect"]
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)  # noqa: F821
    elif what == "erase":  # the user's correction: erase a rectangle of a layer (e.g. the Text Mask)
        x, y, w, h = step["rect"]
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)  # noqa: F821
        _drawable(image, step["layer"]).edit_clear()
        Gimp.Selection.none(image)  # noqa: F821
        image.set_selected_layers([_drawable(image, step["layer"])])
    elif what == "select_none":
        Gimp.Selection.none(image)  # noqa: F821
    elif what == "visible":  # the user shows or hides a layer (its eye in the Layers dialog)
        _drawable(image, step["layer"]).set_visible(step["visible"])
    else:
        raise ValueError(f"unknown transform {what}")
    image.clean_all()  # the preparation is not what the test checks; the procedure's changes are
    return {"layers": _layer_info(image)}


def _call(step):
    image = _images[step["image"]]
    proc = _pdb.lookup_procedure(step["proc"])
    if proc is None:
        raise RuntimeError(f"procedure {step['proc']} is not registered")
    cfg = proc.create_config()
    mode = {"noninteractive": Gimp.RunMode.NONINTERACTIVE,  # noqa: F821
            "last-vals": Gimp.RunMode.WITH_LAST_VALS,  # noqa: F821
            "interactive": Gimp.RunMode.INTERACTIVE}[step.get("mode", "noninteractive")]  # noqa: F821
    cfg.set_property("run-mode", mode)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [_drawable(image, step.get("drawable", 0))])
    for k, v in step.get("args", {}).items():
        cfg.set_property(k, v)
    t0 = time.monotonic()
    res = proc.run(cfg)
    seconds = time.monotonic() - t0
    status = res.index(0)
    error = ""
    if status != Gimp.PDBStatusType.SUCCESS:  # noqa: F821
        error = _pdb.get_last_error() or ""
    return {"status": status.value_nick, "error": error, "seconds": seconds, "dirty": image.is_dirty(),
            "layers": _layer_info(image)}


def _display(step):
    Gimp.Display.new(_images[step["image"]])  # noqa: F821  (GUI GIMP only: the image gets a window)
    return {}


def _save(step):
    image = _images[step["image"]]
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(step["path"]), None)  # noqa: F821
    return {}


def _query(step):
    out = {}
    for name in step["procs"]:
        proc = _pdb.lookup_procedure(name)
        if proc is None:
            out[name] = None
            continue
        args = {}
        for spec in proc.get_arguments():
            args[spec.get_name()] = {"type": type(spec).__name__, "min": getattr(spec, "minimum", None),
                                     "max": getattr(spec, "maximum", None),
                                     "default": spec.get_default_value() if spec.get_name() in (
                                         "grow-px", "threshold", "text-kinds") else None}
        out[name] = {"menu_paths": list(proc.get_menu_paths()), "label": proc.get_menu_label(),
                     "image_types": proc.get_image_types(), "args": args,
                     "blurb": proc.get_blurb()}
    return {"procs": out}


STEPS = {"load": _load, "display": _display, "transform": _transform, "call": _call, "save": _save, "query": _query}

try:
    for _step in _plan["steps"]:
        _entry = {"step": _step}
        _report["steps"].append(_entry)
        _entry.update(STEPS[_step["do"]](_step))
    _report["ok"] = True
finally:
    if not _report["ok"]:
        _report["traceback"] = traceback.format_exc()
    with open(_plan["report"], "w", encoding="utf-8") as _f:
        json.dump(_report, _f, indent=1, default=str)
    for _img in _images.values():
        _img.delete()
