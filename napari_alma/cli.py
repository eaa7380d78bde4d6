"""The ``napari-alma`` command line: predict, label, count, export and train from scripts.

Every command that reports something accepts ``--json`` and then prints one JSON document
on standard output. Errors are printed as one line on standard error with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from napari_alma import __version__
from napari_alma.store.project import default_reader

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("al", "geojson", "coco", "csv", "parquet", "differential")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except (ValueError, OSError, RuntimeError) as err:
        print(f"napari-alma {args.command}: {_error_text(err)}", file=sys.stderr)
        return 2


def _error_text(err: Exception) -> str:
    """Return an error as one sentence; operating-system errors name their file plainly."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.filename}: {err.strerror}. Check the path and its permissions."
    return str(err)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="napari-alma",
        description="Review AI-classified bone-marrow smears. For research use only; "
        "not a certified medical device.",
    )
    parser.add_argument("--version", action="version", version=f"napari-alma {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_open, _add_demo, _add_info, _add_convert, _add_predict, _add_label,
                _add_audit, _add_finalise, _add_reopen, _add_case, _add_count, _add_report,
                _add_export, _add_import, _add_train, _add_agreement, _add_adjudicate):
        add(commands)
    return parser


def _print(args, payload: dict, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str, ensure_ascii=False) if args.json else text)


def _model_folder(value: str | None):
    """Return the model folder named on the command line; "default" is the shipped model."""
    if value != "default":
        return value
    from napari_alma.learning.model import default_model_path

    return default_model_path()


def _add_json(parser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON document on standard output")


def _open_project(folder: str, create: bool = False):
    """Open a project; unless ``create``, a folder without a project store is an error."""
    from napari_alma.store.project import DATABASE_NAME, Project

    if not create and not (Path(folder) / DATABASE_NAME).is_file():
        raise FileNotFoundError(
            f"No napari-alma project in {folder}: it has no {DATABASE_NAME}. Create one with "
            f"`napari-alma predict SLIDE --project {folder}`, or check the folder name."
        )
    return Project(folder)


def _slide_id(project, reference: str) -> str:
    """Return the id of a slide named by id or path; a renamed or copied file is found too."""
    from napari_alma.store.project import StoreError

    try:
        return project.slide(reference)["slide_id"]
    except StoreError:
        if not Path(reference).is_file():
            raise
    from napari_alma.slides.reader import fingerprint

    found = project.slide_by_fingerprint(fingerprint(reference))
    if found is None:
        raise StoreError(
            f"{reference} is not a slide of project {project.folder}. Run `napari-alma predict "
            f"{reference} --project {project.folder}` first."
        )
    return found["slide_id"]


def _records(frame) -> list[dict]:
    """Return a DataFrame's rows as JSON-safe dicts (missing values become null)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False))


# -- open and demo -----------------------------------------------------------------------
def _add_open(commands) -> None:
    parser = commands.add_parser("open", help="open a slide in napari with the review docks")
    parser.add_argument("slide", help="image file or OME-Zarr folder")
    parser.add_argument("--project", default=None,
                        help="project folder (default: <slide name>.alma beside the slide)")
    parser.add_argument("--reader", default=None, help="your name, recorded with each change")
    parser.add_argument("--no-predict", action="store_true",
                        help="do not detect and classify cells when the slide has none yet")
    parser.add_argument("--mpp", type=float, default=None,
                        help="pixel size in µm/px, for a slide whose file does not state it")
    parser.add_argument("--blind", action="store_true",
                        help="start a blind second read: the model's classes and the other "
                        "readers' labels are hidden (needs --reader other than the first reader)")
    parser.set_defaults(handler=_run_open)


def _slice_off_gui_thread() -> None:
    """Turn on napari's asynchronous slicing for this run, unless the user set it.

    napari reads the visible tiles of a pyramid on the GUI thread by default, so a slow
    disk would stall panning. The environment variable applies to this process only and
    leaves the user's saved napari preferences alone.
    """
    os.environ.setdefault("NAPARI_EXPERIMENTAL_ASYNC_", "1")


def _run_open(args) -> int:
    _slice_off_gui_thread()
    import napari

    from napari_alma.widgets.launch import open_in_viewer

    project = args.project or str(Path(args.slide).with_suffix(".alma"))
    if args.mpp is not None:
        _store_user_mpp(_open_project(project, create=True), args.slide, args.mpp)
    viewer = napari.Viewer()
    open_in_viewer(viewer, args.slide, project, reader=args.reader, predict=not args.no_predict,
                   blind=args.blind)
    napari.run()
    return 0


def _add_demo(commands) -> None:
    parser = commands.add_parser(
        "demo", help="open the bundled sample smear, predicted, in napari")
    parser.add_argument("--headless", metavar="OUT_DIR", default=None,
                        help="no window: write a screenshot PNG and the counts (JSON) here")
    _add_json(parser)
    parser.set_defaults(handler=_run_demo)


def _run_demo(args) -> int:
    from napari_alma.demo import run_demo

    if not args.headless:
        _slice_off_gui_thread()

    result = run_demo(args.headless)
    if args.headless:
        _print(args, result, _demo_text(result))
    return 0


def _demo_text(result: dict) -> str:
    counts = result["counts"]
    lines = [f"Screenshot: {result['screenshot']}", f"Counts: {result['counts_file']}",
             f"Cells counted: {counts['total_counted']} (target {counts['target']})"]
    lines += [f"  {code}: {n}" for code, n in counts["counts"].items() if n]
    return "\n".join(lines)


# -- info and predict --------------------------------------------------------------------
def _add_info(commands) -> None:
    parser = commands.add_parser(
        "info", help="format, levels, shapes, dtype, pixel size and metadata of a slide")
    parser.add_argument("slide", help="image file or OME-Zarr folder")
    parser.add_argument("--show-private", action="store_true",
                        help="also show the fields that can identify a patient: file name, "
                        "label and macro images, barcode, dates, free-text descriptions")
    _add_json(parser)
    parser.set_defaults(handler=_run_info)


def _run_info(args) -> int:
    from napari_alma.slides.reader import open_slide

    with open_slide(args.slide) as slide:
        info = _slide_info(slide, args.show_private)
    _print(args, info, _info_text(info))
    return 0


#: Scanner makers of the vendor TIFF flavours that tifffile recognises.
_VENDORS = {"svs": "Aperio (Leica)", "ndpi": "Hamamatsu", "philips-tiff": "Philips",
            "scn": "Leica", "bif": "Ventana (Roche)"}


def _slide_info(slide, show_private: bool) -> dict:
    metadata = slide.metadata
    info = {
        "format": slide.format,
        "vendor": _VENDORS.get(slide.format) or metadata.get("Make"),
        "mpp": slide.mpp,
        "shape": list(slide.shape),
        "dtype": str(slide.levels[0].dtype),
        "rgb": slide.rgb,
        "levels": [_level_info(slide, index) for index in range(len(slide.levels))],
        "metadata": metadata,
        "private_fields_hidden": 0 if show_private else len(slide.private_metadata),
    }
    if show_private:
        info["path"] = str(slide.path)
        info["private_metadata"] = slide.private_metadata
    return info


def _level_info(slide, index: int) -> dict:
    """Return a level's shape, downsample and placement on the level-0 pixel grid."""
    scale, translate = slide.level_scale_translate(index)
    return {"shape": list(slide.levels[index].shape), "downsample": slide.downsamples[index],
            "scale": scale.tolist(), "translate": translate.tolist()}


def _info_text(info: dict) -> str:
    mpp = f"{info['mpp']:.4g} µm/px" if info["mpp"] else "pixel size unknown"
    lines = [f"{info['format']} ({info['vendor'] or 'vendor unknown'}), {info['dtype']}, "
             f"{'RGB' if info['rgb'] else 'grey'}, {mpp}"]
    if "path" in info:
        lines.insert(0, info["path"])
    lines += [f"  level {index}: {' x '.join(map(str, level['shape']))}, "
              f"downsample {level['downsample']:.4g}"
              for index, level in enumerate(info["levels"])]
    lines += ["metadata:"] + [f"  {key}: {_one_line(value)}"
                              for key, value in info["metadata"].items()]
    if "private_metadata" in info:
        lines += ["private metadata:"] + [f"  {key}: {_one_line(value)}"
                                          for key, value in info["private_metadata"].items()]
    elif info["private_fields_hidden"]:
        lines.append(f"{info['private_fields_hidden']} private field(s) hidden; "
                     "pass --show-private to see them.")
    return "\n".join(lines)


def _one_line(value) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= 200 else text[:197] + "..."


def _add_convert(commands) -> None:
    parser = commands.add_parser(
        "convert", help="write a slide as an OME-Zarr pyramid (NGFF 0.5, Zarr v3)")
    parser.add_argument("slide", help="image file or OME-Zarr folder")
    parser.add_argument("out", metavar="OUT.ome.zarr", help="the OME-Zarr folder to create")
    parser.add_argument("--include-private", action="store_true",
                        help="copy the metadata fields that can identify a patient and the "
                        "source file name (left out by default)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    parser.add_argument("--mpp", type=float, default=None,
                        help="pixel size in µm/px to write, for a slide whose file does not "
                        "state it (it replaces the file's value)")
    _add_json(parser)
    parser.set_defaults(handler=_run_convert)


def _run_convert(args) -> int:
    from napari_alma.slides.convert import convert_to_ome_zarr

    try:
        with _progress_bar(f"convert {Path(args.slide).name}") as progress:
            result = convert_to_ome_zarr(args.slide, args.out, args.include_private,
                                         args.overwrite, progress, mpp=args.mpp)
    except KeyboardInterrupt:
        print(f"napari-alma convert: interrupted; {args.out} was not written.",
              file=sys.stderr)
        return 130
    levels = ", ".join(" x ".join(map(str, shape)) for shape in result["levels"])
    _print(args, result, f"Wrote {result['target']} (NGFF {result['ngff_version']}): "
           f"{len(result['levels'])} levels, {levels}")
    return 0


def _add_predict(commands) -> None:
    parser = commands.add_parser("predict", help="detect and classify the cells of slides")
    parser.add_argument("slides", nargs="+", metavar="SLIDE")
    parser.add_argument("--project", required=True, help="project folder (created if missing)")
    parser.add_argument("--model", default=None,
                        help="model folder, or 'default' for the shipped model "
                        "(default: the project's active model)")
    parser.add_argument("--region", nargs=4, type=int, metavar=("R0", "C0", "R1", "C1"),
                        help="level-0 pixel bounds to process")
    parser.add_argument("--mpp", type=float, default=None,
                        help="pixel size in µm/px for slides whose file does not state it")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--case", default=None,
                        help="assign the slides to this case (a pseudonymous sample id)")
    parser.add_argument("--scheme", default=None,
                        help="class scheme the project uses from now on: 'bone_marrow', "
                        "'peripheral_blood' or a YAML file (copied into the project)")
    parser.add_argument("--bald", type=int, default=0, metavar="T",
                        help="also score each cell with BALD from T Monte-Carlo dropout "
                        "passes, for the review queue (default 0: off; e.g. 10)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="dask.distributed scheduler address: the workers detect and "
                        "classify the slides, and this process stores them (slide and "
                        "model paths must be readable by the workers)")
    _add_json(parser)
    parser.set_defaults(handler=_run_predict)


def _run_predict(args) -> int:
    project = _open_project(args.project, create=True)
    _check_region(args.region)
    if args.bald == 1 or args.bald < 0:
        raise ValueError(f"--bald {args.bald}: give 0 (off) or at least 2 passes, e.g. 10.")
    if args.scheme:
        project.use_scheme(args.scheme)
    region = tuple(args.region) if args.region else None
    if args.mpp is not None:
        for slide in args.slides:
            _store_user_mpp(project, slide, args.mpp)
    if args.scheduler:
        results = _predict_on_cluster(args, project, region)
    else:
        results = [_predict_one(args, project, slide, region) for slide in args.slides]
    if args.case:
        for result in results:
            project.set_case(result["slide_id"], args.case)
            result["case_id"] = args.case.strip()
    text = "\n".join(
        f"{r['slide_id']}: {len(r['new'])} new cells, {len(r['matched'])} re-classified "
        f"(model {r['model_version']}, µm/px {r['mpp']:.4f}"
        f"{' estimated' if r['mpp_estimated'] else ''})" for r in results)
    _print(args, {"slides": results}, text)
    return 0


def _predict_one(args, project, slide: str, region) -> dict:
    from napari_alma.learning.predict import predict_slide

    with _progress_bar(f"predict {Path(slide).name}") as progress:
        return predict_slide(project, slide, _model_folder(args.model), progress=progress,
                             region=region, device=args.device, bald_passes=args.bald)


def _predict_on_cluster(args, project, region) -> list[dict]:
    from napari_alma.learning.cluster import predict_on_cluster

    with _progress_bar(f"predict {len(args.slides)} slides on {args.scheduler}") as progress:
        return predict_on_cluster(project, args.slides, args.scheduler,
                                  _model_folder(args.model), region=region,
                                  device=args.device, bald_passes=args.bald, progress=progress)


def _check_new_output(path: Path, overwrite: bool) -> None:
    """Raise unless ``path`` is free, or may be replaced; nothing is deleted here."""
    if path.exists() and (path.is_file() or any(path.iterdir())) and not overwrite:
        raise FileExistsError(
            f"{path} already exists; choose another --out, or pass --overwrite to replace it."
        )


def _check_region(region) -> None:
    if region and not (0 <= region[0] < region[2] and 0 <= region[1] < region[3]):
        raise ValueError(
            f"Invalid --region {' '.join(map(str, region))}: expected R0 C0 R1 C1 with "
            "0 <= R0 < R1 and 0 <= C0 < C1, in level-0 pixels."
        )


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text}")
    return value


def _store_user_mpp(project, slide_path: str, mpp: float) -> None:
    from napari_alma.slides.reader import fingerprint, open_slide

    slide = open_slide(slide_path)
    slide_id = project.register_slide(Path(slide_path).resolve(), fingerprint(slide_path),
                                      slide.shape, mpp, "user")
    project.set_mpp(slide_id, mpp, "user")


class _progress_bar:
    """A tqdm bar on standard error, driven by ``progress(fraction, message)`` calls."""

    def __init__(self, label: str):
        from tqdm import tqdm

        self._bar = tqdm(total=1000, desc=label, file=sys.stderr, leave=False)

    def __enter__(self):
        return self

    def __call__(self, fraction: float, message: str = "") -> None:
        self._bar.n = int(fraction * 1000)
        self._bar.set_postfix_str(message, refresh=True)

    def __exit__(self, *exc_info) -> None:
        self._bar.close()


# -- label and audit ---------------------------------------------------------------------
def _add_label(commands) -> None:
    parser = commands.add_parser("label", help="record one correction")
    parser.add_argument("project")
    parser.add_argument("--slide", required=True, help="slide id or path")
    parser.add_argument("--cell", required=True, type=int, nargs="+", help="cell id(s)")
    parser.add_argument("--class", dest="code", required=True, help="class code, e.g. BLA")
    parser.add_argument("--reader", default=None, help="reader name (default: system user)")
    _add_json(parser)
    parser.set_defaults(handler=_run_label)


def _run_label(args) -> int:
    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    reader = args.reader or default_reader()
    changed = project.label_cells(slide_id, args.cell, args.code.upper(), reader=reader)
    primary = project.slide(slide_id)["primary_reader"]
    text = f"{slide_id}: {changed} cell(s) set to {args.code.upper()} by reader {reader}"
    if primary != reader:
        # NOTE: each reader's labels are kept apart; the count follows the primary reader.
        text += (f". The slide's primary reader is {primary}: `count` shows {primary}'s "
                 f"labels unless you pass --reader {reader}.")
    _print(args, {"slide_id": slide_id, "cells": args.cell, "class": args.code.upper(),
                  "reader": reader, "primary_reader": primary, "changed": changed}, text)
    return 0


def _add_audit(commands) -> None:
    parser = commands.add_parser("audit", help="the event log of a slide or a cell")
    parser.add_argument("project")
    parser.add_argument("--slide", required=True)
    parser.add_argument("--cell", type=int, default=None)
    _add_json(parser)
    parser.set_defaults(handler=_run_audit)


def _run_audit(args) -> int:
    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    events = project.events(slide_id, args.cell)
    payload = {"slide_id": slide_id, "cell_id": args.cell, "events": _records(events)}
    text = events.fillna("").to_string(index=False) if len(events) else f"{slide_id}: no events"
    if args.cell is None:
        slide_events = project.slide_events(slide_id)
        payload["slide_events"] = _records(slide_events)
        if len(slide_events):
            text += "\n\nSlide events:\n" + slide_events.to_string(index=False)
    _print(args, payload, text)
    return 0


# -- sign-off: finalise and reopen ------------------------------------------------------------
def _add_finalise(commands) -> None:
    from napari_alma.core.counting import DEFAULT_TARGET
    from napari_alma.core.review_queue import DEFAULT_CONFIDENCE_THRESHOLD

    parser = commands.add_parser(
        "finalise", help="sign off a slide's count; its labels become read-only",
        description="Sign off a slide. Rejected (exit status 1, with the reasons) while "
        "unreviewed cells have a model confidence under --threshold or the counted total is "
        "under --target.",
    )
    parser.add_argument("project")
    parser.add_argument("--slide", required=True, help="slide id or path")
    parser.add_argument("--reader", default=None, help="reader signing off (default: system "
                        "user); the check uses this reader's labels")
    parser.add_argument("--target", type=_positive_int, default=DEFAULT_TARGET,
                        help=f"counted cells required (default {DEFAULT_TARGET}; ICSH: 500 "
                        "when a percentage is decisive, else 300)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_CONFIDENCE_THRESHOLD,
                        help="model confidence (0-1) under which an unreviewed cell blocks "
                        f"the sign-off (default {DEFAULT_CONFIDENCE_THRESHOLD})")
    parser.add_argument("--lang", default=None, choices=("en", "es"),
                        help="language of the reasons (default: ALMA_LANG or the system)")
    _add_json(parser)
    parser.set_defaults(handler=_run_finalise)


def _run_finalise(args) -> int:
    from napari_alma.store import signoff

    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    reader = args.reader or default_reader()
    try:
        event_id = signoff.finalise(project, slide_id, reader, target=args.target,
                                    threshold=args.threshold, lang=args.lang)
    except signoff.FinaliseRefusedError as refused:
        reasons = [{"reason": reason.key.removeprefix("review_refused_"),
                    "text": reason.text(args.lang), **reason.values}
                   for reason in refused.reasons]
        if args.json:
            _print(args, {"slide_id": slide_id, "finalised": False, "reasons": reasons}, "")
        else:
            print(str(refused), file=sys.stderr)
        return 1
    total = project.count(slide_id, reader=reader, target=args.target).total_counted
    _print(args, {"slide_id": slide_id, "finalised": True, "reader": reader,
                  "event_id": event_id, "total_counted": total},
           f"{slide_id}: finalised by {reader} with {total} counted cells; its labels are "
           "read-only until `napari-alma reopen`.")
    return 0


def _add_reopen(commands) -> None:
    parser = commands.add_parser("reopen", help="make a finalised slide's labels editable")
    parser.add_argument("project")
    parser.add_argument("--slide", required=True, help="slide id or path")
    parser.add_argument("--reason", required=True, help="why the slide is reopened (logged)")
    parser.add_argument("--reader", default=None, help="reader name (default: system user)")
    _add_json(parser)
    parser.set_defaults(handler=_run_reopen)


def _run_reopen(args) -> int:
    from napari_alma.store import signoff

    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    reader = args.reader or default_reader()
    event_id = signoff.reopen(project, slide_id, args.reason, reader)
    _print(args, {"slide_id": slide_id, "reopened": True, "reader": reader,
                  "reason": args.reason.strip(), "event_id": event_id},
           f"{slide_id}: reopened by {reader}; labels can be changed again.")
    return 0


# -- count and report ----------------------------------------------------------------------
def _add_count_settings(parser) -> None:
    """Add the options that set how a differential is counted (``count`` and ``report``)."""
    parser.add_argument("--target", type=_positive_int, default=None,
                        help="cells the count should reach: ICSH asks for 500 when a "
                        "percentage is decisive, else 300 (default: the scheme's, 500 for "
                        "bone marrow and 200 for blood)")
    parser.add_argument("--blast-equivalents", default="",
                        help="comma-separated: promonocytes,abnormal-promyelocytes")
    parser.add_argument("--me-convention", default="icsh", choices=("icsh", "no-monocytes"),
                        help="M:E ratio with monocytes on the myeloid side (icsh, default) "
                        "or without them")
    parser.add_argument("--reader", default=None,
                        help="count this reader's labels (default: each slide's primary "
                        "reader's)")
    parser.add_argument("--scheme", default=None,
                        help="count under this class scheme (a bundled name or a YAML file) "
                        "instead of the project's; the project keeps its own")
    parser.add_argument("--lang", default=None, choices=("en", "es"),
                        help="language of the output (default: ALMA_LANG or the system)")


def _count_settings(args) -> dict:
    equivalents = [item.strip() for item in args.blast_equivalents.split(",") if item.strip()]
    return {"target": args.target, "blast_equivalents": equivalents,
            "me_convention": args.me_convention}


def _project_for_count(args):
    """Open the project; ``--scheme`` replaces its scheme for this command only."""
    project = _open_project(args.project)
    if args.scheme:
        from napari_alma.core.scheme import load_scheme

        project.scheme = load_scheme(args.scheme)
    return project


def _add_count(commands) -> None:
    parser = commands.add_parser("count", help="the differential count of a slide or a case")
    parser.add_argument("project")
    subject = parser.add_mutually_exclusive_group()
    subject.add_argument("--slide", default=None, help="slide id or path")
    subject.add_argument("--case", default=None,
                         help="case id: the summed count of the case's slides, and each slide's")
    parser.add_argument("--list", action="store_true", help="list the project's slides")
    _add_count_settings(parser)
    _add_json(parser)
    parser.set_defaults(handler=_run_count)


def _run_count(args) -> int:
    from napari_alma.report.text import case_text, differential_text

    project = _project_for_count(args)
    if args.list or not (args.slide or args.case):
        slides = project.slides()[["slide_id", "case_id", "path", "mpp", "primary_reader"]]
        _print(args, {"slides": _records(slides)}, slides.fillna("").to_string(index=False))
        return 0
    if args.case:
        case = project.count_case(args.case, reader=args.reader, **_count_settings(args))
        _print(args, case.to_dict(), case_text(case, project.scheme, lang=args.lang))
        return 0
    slide_id = _slide_id(project, args.slide)
    differential = project.count(slide_id, reader=args.reader, **_count_settings(args))
    _print(args, differential.to_dict(),
           differential_text(differential, project.scheme, lang=args.lang))
    return 0


def _add_report(commands) -> None:
    parser = commands.add_parser(
        "report", help="write the count report of a slide or a case as HTML (and PDF)")
    parser.add_argument("project")
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("--slide", default=None, help="slide id or path")
    subject.add_argument("--case", default=None, help="case id")
    parser.add_argument("--out", required=True, help="HTML file to write, e.g. report.html")
    parser.add_argument("--pdf", action="store_true",
                        help="also write a PDF beside the HTML file (same name, .pdf)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    _add_count_settings(parser)
    _add_json(parser)
    parser.set_defaults(handler=_run_report)


def _run_report(args) -> int:
    from napari_alma.report.content import case_report, slide_report
    from napari_alma.report.html import write_html

    html_path = Path(args.out)
    pdf_path = html_path.with_suffix(".pdf") if args.pdf else None
    if pdf_path == html_path:
        raise ValueError(f"--out {html_path} ends in .pdf; name the HTML file, e.g. "
                         f"{html_path.with_suffix('.html')}, and the PDF is written beside it.")
    for path in (html_path, pdf_path):
        if path is not None:
            _check_new_output(path, args.overwrite)
    project = _project_for_count(args)
    if args.case:
        content = case_report(project, args.case, reader=args.reader, **_count_settings(args))
    else:
        content = slide_report(project, _slide_id(project, args.slide), reader=args.reader,
                               **_count_settings(args))
    written = [write_html(content, html_path, lang=args.lang)]
    if pdf_path is not None:
        from napari_alma.report.pdf import write_pdf

        written.append(write_pdf(content, pdf_path, lang=args.lang))
    differential = content.differential
    payload = {"html": str(written[0]), "pdf": str(pdf_path) if pdf_path else None,
               "case_id": content.case_id, "slides": [e.slide_id for e in content.slides],
               "total_counted": differential.total_counted,
               "blast_percent": differential.blast_percent,
               "signed_slides": content.signed_slides}
    _print(args, payload, "\n".join(f"Wrote {path}" for path in written))
    return 0


# -- cases ---------------------------------------------------------------------------------
def _add_case(commands) -> None:
    parser = commands.add_parser(
        "case", help="assign slides (smears) to a case, or list the project's cases")
    parser.add_argument("project")
    parser.add_argument("--slide", nargs="+", default=None, help="slide id(s) or path(s)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--set", dest="case_id", default=None, metavar="CASE",
                        help="assign the slides to this case: a pseudonymous sample id, "
                        "never a patient name or record number")
    action.add_argument("--clear", action="store_true", help="take the slides out of their case")
    parser.add_argument("--reader", default=None,
                        help="your name, logged with the change in the slide's event log "
                        "(default: system user)")
    _add_json(parser)
    parser.set_defaults(handler=_run_case)


def _run_case(args) -> int:
    project = _open_project(args.project)
    if args.case_id is not None or args.clear:
        if not args.slide:
            raise ValueError("--set and --clear need --slide: name the slides to assign.")
        if args.case_id is not None and not args.case_id.strip():
            raise ValueError("--set needs a case id that is not blank; use --clear to take "
                             "slides out of their case.")
        slide_ids = [_slide_id(project, slide) for slide in args.slide]
        for slide_id in slide_ids:
            project.set_case(slide_id, None if args.clear else args.case_id, reader=args.reader)
    cases = project.cases()
    _print(args, {"cases": _records(cases)},
           cases.to_string(index=False) if len(cases) else "No cases: assign slides with "
           f"`napari-alma case {args.project} --slide SLIDE --set CASE`.")
    return 0


# -- export --------------------------------------------------------------------------------
def _add_export(commands) -> None:
    parser = commands.add_parser("export", help="export cells or counts")
    parser.add_argument("project")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="al: active-learning crops and labels; geojson: QuPath detections, "
                        "one file per slide; coco: one COCO detection file; csv, parquet: one "
                        "row per cell; differential: one row per slide and class")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--slide", action="append", default=None,
                        help="export only this slide (id or path); repeat for more")
    parser.add_argument("--reader", default=None, help="export this reader's labels")
    parser.add_argument("--identify", action="store_true",
                        help="also write each slide's file name and path, which may identify "
                        "the patient (default: the pseudonymous slide id only)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--pseudo-labels", type=float, default=None, metavar="P",
                        help="al: also export unreviewed cells whose predicted class has "
                        "probability >= P (0-1) as pseudo-labels of low weight, training "
                        "slides only")
    parser.add_argument("--seed", type=int, default=0, help="al: seed of the slide split")
    _add_json(parser)
    parser.set_defaults(handler=_run_export)


def _run_export(args) -> int:
    from napari_alma.store.exports import export_project

    project = _open_project(args.project)
    if args.format == "al":
        from napari_alma.learning.export import export_active_learning

        if args.slide or args.identify:
            raise ValueError("--slide and --identify do not apply to --format al, which "
                             "exports every slide, named by its pseudonymous id only.")
        written = export_active_learning(project, args.out, reader=args.reader,
                                         overwrite=args.overwrite, seed=args.seed,
                                         pseudo_min_confidence=args.pseudo_labels)
        _warn_split(written)
        _print(args, {"format": args.format, "out": str(written)}, f"Wrote {written}")
        return 0
    slides = [_slide_id(project, slide) for slide in args.slide] if args.slide else None
    summary = export_project(project, args.format, args.out, reader=args.reader,
                             slides=slides, identify=args.identify, overwrite=args.overwrite)
    text = (f"Wrote {len(summary['files'])} file(s) to {summary['out']}: "
            f"{summary['slides']} slide(s), {summary['cells']} cell(s)")
    if summary["left_out"]:
        text += f"; {summary['left_out']} cell(s) without a class left out of COCO"
    _print(args, summary, text)
    return 0


def _add_import(commands) -> None:
    parser = commands.add_parser(
        "import", help="import cells and labels from GeoJSON, COCO, CSV or Parquet")
    parser.add_argument("project")
    parser.add_argument("--slide", required=True, help="slide id or path")
    parser.add_argument("file", help="annotation file")
    parser.add_argument("--format", default=None, choices=("geojson", "coco", "csv", "parquet"),
                        help="file format (default: from the extension)")
    parser.add_argument("--reader", default=None,
                        help="reader recorded with the imported labels (default: system user)")
    parser.add_argument("--ignore-slide-id", action="store_true",
                        help="import even when the file names another slide")
    _add_json(parser)
    parser.set_defaults(handler=_run_import)


def _run_import(args) -> int:
    from napari_alma.store.imports import import_annotations

    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    summary = import_annotations(project, slide_id, args.file, file_format=args.format,
                                 reader=args.reader, ignore_slide_id=args.ignore_slide_id)
    text = (f"{slide_id}: {summary['cells_in_file']} cell(s) in {args.file}; "
            f"{summary['added']} added, {summary['labelled']} labelled, "
            f"{summary['unchanged']} unchanged (reader {summary['reader']})")
    if summary["skipped_other_slides"]:
        text += f"; {summary['skipped_other_slides']} row(s) of other slides skipped"
    _print(args, {**summary, "file": args.file}, text)
    return 0


def _warn_split(export_dir: Path) -> None:
    """Print the classes that the export's train/val split could not put on both sides."""
    manifest = json.loads((Path(export_dir) / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["split"]["classes_not_on_both_sides"]:
        print(f"warning: class {entry['class']} is not on both sides of the split "
              f"(train {entry['train']}, val {entry['val']}, {entry['slides']} slide(s)): "
              f"{entry['reason']}; label it on more slides.", file=sys.stderr)


# -- train ---------------------------------------------------------------------------------
def _add_train(commands) -> None:
    parser = commands.add_parser("train", help="train a model on an active-learning export")
    parser.add_argument("data", help="active-learning export folder")
    parser.add_argument("--from", dest="from_model", default=None,
                        help="model folder to fine-tune, or 'default' for the shipped model "
                        "(without it, training starts from scratch)")
    parser.add_argument("--out", required=True, help="new model folder")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="maximum epochs (default: 50 from scratch, 20 when fine-tuning; "
                        "training stops earlier when validation balanced accuracy stops "
                        "improving)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--version", default=None,
                        help="version name of the new model (default: data folder, date, hash)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing model folder at --out")
    parser.add_argument("--project", default=None,
                        help="keep the model as a version of this project, and compare it "
                        "with the project's active model on the validation cells")
    parser.add_argument("--activate", default="if-better",
                        choices=("if-better", "always", "never"),
                        help="with --project: make the new model the active one when its "
                        "validation balanced accuracy beats the active model's (default), "
                        "always, or never")
    _add_json(parser)
    parser.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from napari_alma.learning.train import train_model

    command = "napari-alma " + shlex.join(args.argv)
    _check_new_output(Path(args.out), args.overwrite)
    project = _open_project(args.project) if args.project else None
    baseline = _active_model_folder(project) if project else None
    with _progress_bar("train") as progress:
        card = train_model(args.data, args.out, from_model=_model_folder(args.from_model),
                           device=args.device, epochs=args.epochs, seed=args.seed,
                           progress=progress, command=command, version=args.version,
                           baseline_model=baseline)
    metrics = card.get("metrics", {})
    text = (f"Wrote model {card['version']} to {args.out}; validation balanced accuracy "
            f"{metrics.get('balanced_accuracy', float('nan')):.3f}")
    if metrics.get("per_class_f1"):
        text += "\nper-class F1: " + ", ".join(
            f"{code} {'-' if f1 is None else f'{f1:.2f}'}"
            for code, f1 in metrics["per_class_f1"].items())
        text += f"\nconfusion matrix: {Path(args.out) / 'confusion.png'}"
    if project is not None:
        from napari_alma.learning.versions import register_model

        card["registration"] = register_model(project, Path(args.out), args.activate)
        text += f"\n{card['registration']['reason']}"
    _print(args, card, text)
    return 0


def _active_model_folder(project) -> Path:
    from napari_alma.learning.predict import active_model_path

    return active_model_path(project)


# -- second reads: agreement and adjudication -------------------------------------------
def _add_agreement(commands) -> None:
    parser = commands.add_parser(
        "agreement", help="agreement between two readers of a slide: kappa, confusion, "
        "blast %% and disagreements")
    parser.add_argument("project")
    parser.add_argument("--slide", required=True, help="slide id or path")
    parser.add_argument("--readers", nargs=2, metavar=("A", "B"), default=None,
                        help="the two readers to compare (default: the primary reader and "
                        "the second reader)")
    parser.add_argument("--lang", default=None, choices=("en", "es"),
                        help="language of the text output (default: ALMA_LANG or the system)")
    _add_json(parser)
    parser.set_defaults(handler=_run_agreement)


def _run_agreement(args) -> int:
    from napari_alma.report.agreement_text import agreement_text
    from napari_alma.store.second_read import compare_readers, disagreement_table

    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    agreement = compare_readers(project, slide_id, tuple(args.readers) if args.readers else None)
    disagreements = disagreement_table(project, slide_id, agreement)
    payload = {"slide_id": slide_id, **agreement.to_dict(),
               "disagreements": _records(disagreements),
               "unadjudicated": int((disagreements["adjudicated"] == "").sum())}
    _print(args, payload, agreement_text(agreement, project.scheme, disagreements, args.lang))
    return 0


def _add_adjudicate(commands) -> None:
    parser = commands.add_parser(
        "adjudicate", help="record the agreed class of cells two readers classed differently")
    parser.add_argument("project")
    parser.add_argument("--slide", required=True, help="slide id or path")
    parser.add_argument("--cell", required=True, type=int, nargs="+", help="cell id(s)")
    parser.add_argument("--class", dest="code", required=True, help="agreed class code, e.g. BLA")
    parser.add_argument("--reader", default=None,
                        help="the adjudicator's name (default: system user)")
    _add_json(parser)
    parser.set_defaults(handler=_run_adjudicate)


def _run_adjudicate(args) -> int:
    from napari_alma.store.second_read import adjudicate

    project = _open_project(args.project)
    slide_id = _slide_id(project, args.slide)
    reader = args.reader or default_reader()
    code = args.code.upper()
    changed = adjudicate(project, slide_id, args.cell, code, reader=reader)
    remaining = project.count(slide_id).unadjudicated
    _print(args, {"slide_id": slide_id, "cells": args.cell, "class": code, "reader": reader,
                  "adjudicated": changed, "unadjudicated": remaining},
           f"{slide_id}: {changed} cell(s) adjudicated as {code} by {reader}; "
           f"{remaining} disagreement(s) still unadjudicated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
