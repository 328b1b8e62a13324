"""The ``kesu`` command line (also ``python -m engine``).

``kesu --version`` and ``--help`` answer without importing torch; the models load once per process.
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine import __version__
from engine.errors import EngineError, InputError
from engine.protocol import OPTION_LIMITS, option_problem

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
# files Kesu itself writes beside pages; a folder scan does not take them as pages
OWN_SUFFIXES = (".mask.png", ".prob.png")
# formats that may hold several frames (a multi-page TIFF of scans, an animated GIF, APNG or WebP)
MULTI_FRAME_SUFFIXES = {".tif", ".tiff", ".gif", ".png", ".webp"}
FRAMES_HELP = ("A file with several frames (a multi-page TIFF, an animated GIF, PNG or WebP) is one page per "
               "frame: DIR/<stem>-001.png, <stem>-002.png and so on.")
# --text: the kinds of text a user picks (engine.pipeline.TEXT_CHOICES; named here so --help needs no torch)
TEXT_CHOICE_NAMES = ("dialogue", "sfx", "all")


@dataclass(frozen=True)
class Job:
    source: Path
    relative: Path  # the output path below DIR, without suffix (e.g. "chapter1/003")
    frame: int = 0  # which frame of the source (counted from 0)


def expand_inputs(inputs: list[str], recursive: bool) -> tuple[list[Job], list[str]]:
    """Files, folders and globs -> jobs in a stable order, plus one error line per input that matched nothing."""
    jobs: list[Job] = []
    errors: list[str] = []
    for raw in inputs:
        path = Path(raw)
        if not raw.strip():  # Path("") is the current folder: an empty shell variable, most likely
            errors.append(f"{raw!r}: an empty input name; give a file, folder or glob")
        elif path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if _is_page(p))
            if not found:
                hint = "" if recursive else " (pass -r to look in subfolders)"
                errors.append(f"{raw}: no images in this folder{hint}")
            jobs += [Job(p, p.relative_to(path).with_suffix("")) for p in found]
        elif path.exists():
            jobs.append(Job(path, Path(path.stem)))
        elif glob.has_magic(raw):
            found = sorted(Path(p) for p in glob.glob(raw, recursive=recursive) if _is_page(Path(p)))
            if not found:
                errors.append(f"{raw}: no images match")
            jobs += [Job(p, Path(p.stem)) for p in found]
        else:
            errors.append(f"{raw}: no such file or folder")
    return jobs, errors


def split_frames(jobs: list[Job]) -> list[Job]:
    """One job per frame of each multi-frame file, named ``<stem>-001``, ``<stem>-002``, ..."""
    from engine.imageio import frame_count

    out: list[Job] = []
    for job in jobs:
        count = frame_count(job.source) if job.source.suffix.lower() in MULTI_FRAME_SUFFIXES else 1
        if count == 1:
            out.append(job)
            continue
        digits = max(3, len(str(count)))
        out += [Job(job.source, job.relative.with_name(f"{job.relative.name}-{i + 1:0{digits}d}"), i)
                for i in range(count)]
    return out


def _is_page(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not name.endswith(OWN_SUFFIXES)


def output_path(out_dir: Path, job: Job, suffix: str) -> Path:
    """``out_dir/<relative><suffix>``, refusing any path that would leave ``out_dir``."""
    root = out_dir.resolve()
    target = (root / (str(job.relative) + suffix)).resolve()
    if not target.is_relative_to(root):
        raise EngineError(f"{job.source}: its output {target} would be outside {root}; not written")
    return target


def outputs_with(out_dir: Path, *suffixes: str | None) -> Callable[[Job], list[Path]]:
    """A job's output paths: one per suffix given (None: an output not asked for), in that order."""
    return lambda job: [output_path(out_dir, job, suffix) for suffix in suffixes if suffix]


class Reporter:
    """A progress bar on a terminal (unless quiet), one line per problem on stderr."""

    def __init__(self, total: int, quiet: bool, what: str):
        self.quiet = quiet
        self.bar = None
        if not quiet and sys.stderr.isatty() and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="page", desc=what, file=sys.stderr)

    def line(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.line(message)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


Task = tuple[Job, list[Path]]  # a page to do and the output paths it writes
# Runs the tasks, in any order, yielding each task's job once with None (done) or the error that failed it.
Executor = Callable[[list[Task], Reporter], Iterator[tuple[Job, EngineError | None]]]


def run_in_turn(work: Callable[[Job, list[Path]], None]) -> Executor:
    """The executor of one process: ``work(job, paths)`` on each task in turn."""

    def execute(tasks: list[Task], reporter: Reporter) -> Iterator[tuple[Job, EngineError | None]]:
        for job, paths in tasks:
            try:
                work(job, paths)
            except EngineError as e:
                yield job, e if str(job.source) in str(e) else EngineError(f"{job.source}: {e}")
            except OSError as e:  # anything the output helpers did not name: still only this page fails
                yield job, EngineError(f"{job.source}: {e.strerror or e} ({e.filename or 'no file name'})")
            else:
                yield job, None

    return execute


def run_pages(args, outputs: Callable[[Job], list[Path]], execute: Executor, what: str) -> int:
    """Shared driver of clean/detect/inpaint: expand inputs, skip done work, report failures, exit status.

    ``execute`` does the pages that are not skipped (``run_in_turn(work)`` here, or spread over a cluster).
    A page that fails (unreadable input, an output that cannot be written, outputs only partly there) is
    reported on its own line; the rest are still done, and the exit status is 1.
    """
    from engine.imageio import remove_stale_temps

    jobs, errors = expand_inputs(args.inputs, args.recursive)
    jobs = split_frames(jobs)
    inputs = {job.source.resolve(): job.source for job in jobs}
    reporter = Reporter(len(jobs), args.quiet, what)
    failed = len(errors)
    for message in errors:
        reporter.line(f"kesu: {message}")
    claimed: dict[Path, Path] = {}
    swept: set[Path] = set()
    tasks: list[Task] = []
    done = skipped = 0
    try:
        for job in jobs:
            try:
                paths = outputs(job)
                clash = next((claimed[p] for p in paths if p in claimed), None)
                if clash is not None:
                    raise EngineError(f"{job.source}: same output name as {clash}; rename one of them")
                claimed.update({p: job.source for p in paths})
                _check_outputs(job, paths, inputs)
                existing = [p for p in paths if p.exists()]
                if existing and not args.overwrite and len(existing) < len(paths):
                    missing = [p.name for p in paths if p not in existing]
                    raise EngineError(
                        f"{job.source}: {', '.join(p.name for p in existing)} already there but not "
                        f"{', '.join(missing)}; pass --overwrite to redo the page (replacing what is there), or "
                        "move the existing file away")
            except EngineError as e:
                failed += 1
                reporter.line(f"kesu: {e}")
                reporter.advance()
                continue
            if existing and not args.overwrite:
                skipped += 1
                reporter.advance()
            else:
                for folder in {p.parent for p in paths} - swept:
                    swept.add(folder)
                    remove_stale_temps(folder)  # left by a run that was killed mid-write
                tasks.append((job, paths))
        if tasks:
            for _job, error in execute(tasks, reporter):
                if error is None:
                    done += 1
                else:
                    failed += 1
                    reporter.line(f"kesu: {error}")
                reporter.advance()
    finally:
        reporter.close()
    summary = f"{what}: {done} done"
    if skipped:
        summary += f", {skipped} skipped (outputs exist; --overwrite to redo)"
    if failed:
        summary += f", {failed} failed"
    reporter.info(summary)
    return 1 if failed else 0


def _check_outputs(job: Job, paths: list[Path], inputs: dict[Path, Path]) -> None:
    """Refuse outputs that would replace an input page (with or without --overwrite) or that a folder blocks."""
    for path in paths:
        if path in inputs:
            raise EngineError(f"{job.source}: its output {path} would replace the input {inputs[path]}; write to "
                              "another folder with -o")
        if path.is_dir():
            raise EngineError(f"{job.source}: its output {path} is a folder; move that folder away or write "
                              "to another folder with -o")


def _engine(args, roles):
    from engine.pipeline import Engine

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    return Engine.load(Path(args.weights_dir) if args.weights_dir else None, roles=roles)


def _options(args):
    from engine.pipeline import TEXT_CHOICES, CleanOptions

    values = {}
    for name in ("threshold", "grow_px", "detect_short_side"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if getattr(args, "float32", False):
        values["allow_bfloat16"] = False
    if getattr(args, "no_repeat_fill", False):
        values["use_repeat_fill"] = False
    if getattr(args, "no_detail", False):
        values["add_detail"] = False
    text = getattr(args, "text", None)
    if text is not None:
        values["text_kinds"] = TEXT_CHOICES[text]
    return CleanOptions(**values)


def _mask_image(mask):
    from PIL import Image

    return Image.fromarray(mask.astype("uint8") * 255, "L")


def clean_outputs(args, job: Job) -> list[Path]:
    """The files ``clean`` writes for a page, in the order ``clean_page`` returns them."""
    out_dir = Path(args.output)
    paths = []
    if args.psd:
        paths.append(_psd_path(args, out_dir, job))
    if _writes_png(args):
        paths.append(output_path(out_dir, job, ".png"))
    if args.save_mask:
        paths.append(output_path(out_dir, job, ".mask.png"))
    return paths


def _writes_png(args) -> bool:
    return args.png or not args.psd


def _psd_path(args, out_dir: Path, job: Job) -> Path:
    """``<stem>.psd``, or ``<stem>.psb`` (said unless --quiet) for a page over the PSD format's 30000 px a side."""
    from engine.imageio import peek_image
    from engine.psd import PSD_MAX_SIDE, file_suffix

    header = peek_image(job.source)
    path = output_path(out_dir, job, ".psd" if header is None else file_suffix(header[0], header[1]))
    if path.suffix == ".psb" and not args.quiet:
        print(f"kesu: {job.source}: {header[0]}x{header[1]} is over the PSD format's {PSD_MAX_SIDE} px a side, so "
              f"{path.name} is a PSB (Photoshop's large document format)", file=sys.stderr)
    return path


def clean_page(engine, args, data: bytes, name: str, frame: int = 0) -> list[bytes]:
    """Clean one page given as its file's bytes: the bytes of each file of ``clean_outputs``, in order.

    The same on one machine and on a cluster's workers, which get the page and ``args`` through Ray.
    """
    from engine.imageio import decode_image, png_bytes, to_pil

    rgb, alpha = decode_image(data, name, frame)
    result = engine.clean(rgb, _options(args))
    files = []
    if args.psd:
        files.append(_psd_bytes(data, name, rgb, alpha, result))
    if _writes_png(args):
        files.append(png_bytes(to_pil(result.image, alpha)))
    if args.save_mask:
        files.append(png_bytes(_mask_image(result.text_mask)))
    return files


def _psd_bytes(data: bytes, name: str, rgb, alpha, result) -> bytes:
    """The layered Photoshop file of a cleaned page (engine/psd.py); a grey page's is a greyscale document."""
    import io

    import numpy as np

    from engine.imageio import GREY_MODES, peek_image
    from engine.protocol import SFX_MASK_LAYER
    from engine.psd import TEXT_MASK_LAYER, layered_document

    header = peek_image(data)
    grey = header is not None and header[2] in GREY_MODES
    # one hidden mask layer per kind erased, named as in the plug-ins: lettering ("Text Mask"), sound effects
    layers = {TEXT_MASK_LAYER: result.kind_masks.get("lettering", result.text_mask)}
    if "sfx" in result.kind_masks:
        layers = {TEXT_MASK_LAYER: result.kind_masks.get("lettering", np.zeros_like(result.text_mask)),
                  SFX_MASK_LAYER: result.kind_masks["sfx"]}
    document = layered_document(rgb, alpha, result.image, result.grown_mask, layers,
                                page_name=Path(name).name, grey=grey)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def cmd_clean(args) -> int:
    from engine.imageio import read_image_bytes, save_files_atomic

    if args.psd:
        from engine.psd import require_psd_tools

        require_psd_tools()  # before the models load or a cluster starts: say at once what to install
    def outputs(job):
        return clean_outputs(args, job)

    if args.ray:
        from engine.cluster import run_on_ray

        return run_pages(args, outputs, run_on_ray(args, clean_page), "clean")
    engine = _engine(args, ("textseg", "inpaint"))

    def work(job, paths):
        files = clean_page(engine, args, read_image_bytes(job.source), str(job.source), job.frame)
        save_files_atomic(list(zip(files, paths, strict=True)))

    return run_pages(args, outputs, run_in_turn(work), "clean")


def kind_mask_suffixes(text: str) -> dict[str, str]:
    """``--save-kinds``: the output suffix of each kind's own mask, except the kind ``<stem>.mask.png`` already
    is (with the default --text dialogue: only the sound effects' mask)."""
    from engine.pipeline import TEXT_CHOICES

    shown = TEXT_CHOICES[text]
    return {kinds[0]: f".{choice}.mask.png" for choice, kinds in TEXT_CHOICES.items()
            if len(kinds) == 1 and kinds != shown}


def cmd_detect(args) -> int:
    import numpy as np
    from PIL import Image

    from engine.imageio import load_image, save_pngs_atomic
    from engine.pipeline import TEXT_KINDS, kind_tight_masks, union

    engine, options = _engine(args, ("textseg",)), _options(args)
    extra_kinds = kind_mask_suffixes(args.text) if args.save_kinds else {}
    outputs = outputs_with(Path(args.output), ".mask.png", *extra_kinds.values(), ".prob.png" if args.prob else None)

    def work(job, paths):
        rgb, _ = load_image(job.source, job.frame)
        prob = engine.detect_kinds(rgb, options)
        wanted = set(options.text_kinds) | set(extra_kinds)
        masks = kind_tight_masks(prob, rgb, options, tuple(k for k in TEXT_KINDS if k in wanted))
        images = [_mask_image(union([masks[k] for k in options.text_kinds], rgb.shape[:2]))]
        images += [_mask_image(masks[kind]) for kind in extra_kinds]
        if args.prob:
            chosen = [prob[k] for k in options.text_kinds if k in prob]
            level = np.maximum.reduce(chosen) if chosen else np.zeros(rgb.shape[:2], np.float32)
            images.append(Image.fromarray(np.rint(level * 255).astype(np.uint8), "L"))
        save_pngs_atomic(list(zip(images, paths, strict=True)))

    return run_pages(args, outputs, run_in_turn(work), "detect")


def cmd_inpaint(args) -> int:
    from engine.errors import InputError
    from engine.imageio import load_image, load_mask, save_pngs_atomic, to_pil
    from engine.pipeline import masks

    engine, options = _engine(args, ("inpaint",)), _options(args)

    def work(job, paths):
        rgb, alpha = load_image(job.source, job.frame)
        folder = Path(args.mask_dir) if args.mask_dir else job.source.parent
        mask_path = folder / f"{job.relative.name}.mask.png"  # <stem>-001.mask.png for a file's frames
        if not mask_path.exists():
            raise InputError(f"{job.source}: no mask {mask_path} (make one with `kesu detect` or pass --mask-dir)")
        hole = masks.grow(load_mask(mask_path, (rgb.shape[1], rgb.shape[0])), args.grow_px or 0)
        save_pngs_atomic([(to_pil(engine.inpaint(rgb, hole, options), alpha), paths[0])])

    return run_pages(args, outputs_with(Path(args.output), ".png"), run_in_turn(work), "inpaint")


def cmd_serve(args, rest: list[str]) -> int:
    from engine.server import serve_main

    return serve_main(rest)


def _workshop(module: str, command: str):
    """A module of the development tree, or a clear error when this install has none (an installed wheel)."""
    import importlib

    try:
        return importlib.import_module(f"engine.workshop.{module}")
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("engine.workshop"):
            raise
        raise InputError(
            f"`kesu {command}` is part of the development tree, which this installation does not include: "
            "run it from a checkout of Kesu set up with `bash install/dev.sh setup` (or `pip install -e '.[dev]'`)"
        ) from None


def cmd_bench_server(args, rest: list[str]) -> int:
    bench_main = _workshop("server_bench", "bench-server").bench_main

    return bench_main(rest)


def cmd_bench(args) -> int:
    if args.pages:
        from engine.bench_pages import run_pages_bench

        jobs, errors = expand_inputs(args.pages, recursive=False)
        for error in errors:
            print(f"kesu: {error}", file=sys.stderr)
        if errors or not jobs:
            return 1
        engine, options = _engine(args, ("textseg", "inpaint")), _options(args)
        return run_pages_bench([job.source for job in jobs], engine, options, args.threads)
    from engine.bench import run_bench

    return run_bench(args)


def cmd_train(args) -> int:
    return _workshop("train.cli", "train").train_main(args)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _thresholds(text: str) -> list[float]:
    try:
        levels = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        levels = []
    if not levels:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, like 0.3,0.5, got {text!r}")
    for level in levels:
        problem = option_problem("threshold", level)
        if problem:
            raise argparse.ArgumentTypeError(problem)
    return levels


def cmd_eval(args) -> int:
    return _workshop("eval.cli", "eval").eval_main(args)


TEXT_HELP = ("which text to {verb}: dialogue = lettering (speech, captions, narration, asides; typeset or "
             "hand-lettered, also over art with a white outline); sfx = sound effects (drawn, stylised text that is "
             "part of the artwork); all = both{all}. Default: dialogue. The kinds are told apart by what surrounds "
             "the text: calm paper around lettering, busy art around sound effects")

FLOAT32_HELP = ("run the networks in float32 even where the processor computes bfloat16 natively (slower; the "
                "default uses bfloat16 there)")


def _add_page_arguments(p: argparse.ArgumentParser, grow_default: int | None) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("-r", "--recursive", action="store_true", help="look in subfolders of folder inputs")
    p.add_argument("--overwrite", action="store_true", help="redo pages whose outputs already exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--weights-dir", metavar="DIR", help="use weights from this folder instead of the shipped ones")
    p.add_argument("--threshold", type=float, help="text probability at which a pixel is text "
                   f"(default {OPTION_LIMITS['threshold'].default})")
    p.add_argument("--detect-short-side", type=int, dest="detect_short_side",
                   help="detect with the page's shorter side scaled to at most this many px "
                        f"(default {OPTION_LIMITS['detect_short_side'].default})")
    p.add_argument("--float32", action="store_true", help=FLOAT32_HELP)
    p.add_argument("--no-repeat-fill", action="store_true", dest="no_repeat_fill",
                   help="let the network fill text over regular patterns too, instead of continuing the pattern "
                        "(screentone, hatching, grids) from a period away")
    p.add_argument("--no-detail", action="store_true", dest="no_detail",
                   help="leave the inside of big holes (erased sound effects) as the network fills it, smooth, "
                        "instead of adding the fine detail (hatching, hair, tone) of the art around it")
    p.add_argument("--threads", type=_positive, metavar="N",
                   help="torch threads (default: all cores; with --ray: the threads of each worker, default 1)")
    help_grow = "grow the mask by this many px before erasing"
    if grow_default is None:
        default = OPTION_LIMITS["grow_px"].default
        p.add_argument("--grow", type=int, dest="grow_px", help=help_grow + f" (default {default})")
    else:
        p.add_argument("--grow", type=int, dest="grow_px", default=grow_default,
                       help=help_grow + f" (default {grow_default}: the mask is used as given)")


PAGES_EPILOG = (FRAMES_HELP + " Pages whose outputs all exist are skipped (--overwrite redoes them); a page "
                "whose outputs are only partly there, or that cannot be read or written, is reported and the rest "
                "are still done (exit status 1). An input file is never replaced.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kesu", description="Erase the lettering from manga and comic pages.",
        epilog="Run `kesu COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"kesu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("clean", help="detect and erase the text: DIR/<stem>.png (or a layered .psd)",
                       epilog=PAGES_EPILOG)
    _add_page_arguments(p, None)
    p.add_argument("--text", choices=TEXT_CHOICE_NAMES, default="dialogue", help=TEXT_HELP.format(verb="erase", all=""))
    p.add_argument("--save-mask", action="store_true", help="also write DIR/<stem>.mask.png (the text mask)")
    p.add_argument("--psd", action="store_true",
                   help="write DIR/<stem>.psd instead of the PNG: a layered Photoshop file with the page, a hidden "
                        '"Text Mask" and "Cleaned" (only the changed pixels); a page over 30000 px a side is '
                        "written as <stem>.psb. Needs the psd-tools package (the kesu[psd] extra)")
    p.add_argument("--png", action="store_true", help="with --psd: write the cleaned PNG as well")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="spread the pages over a Ray cluster: auto (the one `ray start` made), ray://HOST:10001, "
                        "HOST:PORT, or local (start one on this machine); needs kesu[cluster] (docs/cluster.md)")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("detect", help="the text mask only: DIR/<stem>.mask.png (255 = text)", epilog=PAGES_EPILOG)
    _add_page_arguments(p, None)
    p.add_argument("--text", choices=TEXT_CHOICE_NAMES, default="dialogue",
                   help=TEXT_HELP.format(verb="find", all=" in one mask"))
    p.add_argument("--save-kinds", action="store_true", dest="save_kinds",
                   help="also write each other kind's own mask beside it: DIR/<stem>.sfx.mask.png (and, with "
                        "--text sfx or all, DIR/<stem>.dialogue.mask.png)")
    p.add_argument("--prob", action="store_true", help="also write the probability map DIR/<stem>.prob.png")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("inpaint", help="fill the mask <stem>.mask.png beside each page: DIR/<stem>.png",
                       epilog=PAGES_EPILOG + " Their masks are <stem>-001.mask.png, ... (what detect writes).")
    _add_page_arguments(p, 0)
    p.add_argument("--mask-dir", metavar="DIR", help="read <stem>.mask.png from here instead of beside the page")
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("serve", help="run the engine server for the Krita and GIMP plug-ins (see serve --help)",
                       add_help=False)
    p.set_defaults(func=cmd_serve, passthrough=True)
    p = sub.add_parser("bench-server", help="time the plug-in protocol round trip", add_help=False)
    p.set_defaults(func=cmd_bench_server, passthrough=True)

    p = sub.add_parser("bench", help="per-stage time and peak memory on a generated page")
    p.add_argument("--size", default="1654x2339", help="page size WxH (default 1654x2339); repeatable as a,b",
                   )
    p.add_argument("--weights-dir", metavar="DIR")
    p.add_argument("--random-weights", action="store_true",
                   help="time the shipped architectures with random weights (before any are trained)")
    p.add_argument("--no-pconv", action="store_true", help="skip the PartialConv2d comparison")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--float32", action="store_true", help=FLOAT32_HELP)
    p.add_argument("--pages", nargs="+", metavar="IN",
                   help="time each stage of clean on these pages (files, folders or globs) instead of a generated "
                        "one, with the share of each page every fill took")
    p.add_argument("--no-repeat-fill", action="store_true", help="with --pages: leave the repeat fill out")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train a model (textseg or inpaint), resumable")
    p.add_argument("role", choices=["textseg", "inpaint"])
    p.add_argument("--run", default="main", help="run name (state kept in .train-state/ROLE/RUN)")
    p.add_argument("--minutes", type=float, help="stop (saving its state) after this long")
    p.add_argument("--steps", type=int, help="total steps of the schedule")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="change a number or flag of the run's config (e.g. hole_l2_weight=40); repeatable")
    p.add_argument("--init-from", metavar="FILE", help="a new run starts from these weights (.safetensors)")
    p.add_argument("--residual", action="store_true",
                   help="inpaint, new run: the network corrects a base fill instead of painting from nothing (the "
                        "smooth fill, or with --set base_fill=frequency the frequency-selective reconstruction)")
    p.add_argument("--release", metavar="NAME", help="copy the run's weights as NAME into --release-dir")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="with --release: the best-validated weights (default) or the last saved state")
    p.add_argument("--release-dir", metavar="DIR",
                   help="with --release (required): the weights folder to write into: a candidate folder to try with "
                        "kesu eval --weights-dir DIR, or engine/weights to ship them in the source tree")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a model (or the flat-fill settings: fill) and print one table")
    p.add_argument("role", choices=["textseg", "inpaint", "fill"])
    p.add_argument("--weights-dir", metavar="DIR")
    p.add_argument("--realpages", metavar="DIR", help="folder of the real evaluation pages")
    p.add_argument("--overlays", metavar="DIR", help="write overlay / side-by-side PNGs here")
    p.add_argument("--limit", type=int, help="at most this many pages per set")
    p.add_argument("--record", action="store_true", help="store the table in the evaluated weights' manifest")
    p.add_argument("--thresholds", type=_thresholds, metavar="T,T,...",
                   help="textseg: score the mask at each of these text-probability levels (default: the engine's)")
    p.add_argument("--float32", action="store_true", help=FLOAT32_HELP)
    p.add_argument("--kinds-only", action="store_true",
                   help="textseg: only the per-kind rows (real manga with every text boxed by kind)")
    p.add_argument("--big-holes", action="store_true", dest="big_holes",
                   help="inpaint: score sound-effect-sized holes (bold outlined glyphs 60-120 px) over art instead")
    p.add_argument("--methods", type=lambda v: [m.strip() for m in v.split(",") if m.strip()], metavar="M,M,...",
                   help="inpaint: score only these methods (names as in the table, e.g. 'kesu pipeline,opencv fsr')")
    p.add_argument("--best-per-hole", action="store_true", dest="best_per_hole",
                   help="inpaint: add a row 'best per hole', the scores of whichever method did best on each hole "
                        "(it needs the truth: a bound on choosing between the methods, not a method)")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("serve", "bench-server"):
        args = parser.parse_args(argv[:1])
        rest = argv[1:]
    else:
        args, rest = parser.parse_args(argv), []
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        if getattr(args, "passthrough", False):
            return args.func(args, rest)
        return args.func(args)
    except EngineError as e:
        print(f"kesu: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kesu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
