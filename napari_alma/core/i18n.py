"""User-facing text in English and Spanish.

The language is, in order: the ``lang`` argument, the ``ALMA_LANG`` environment variable,
napari's ``application.language`` setting (read by the widgets and passed in), then the
system locale. Anything else than Spanish falls back to English.
"""

from __future__ import annotations

import locale
import os

LANGUAGES = ("en", "es")

MESSAGES: dict[str, dict[str, str]] = {
    # Dock titles and widget labels
    "dock_review": {"en": "Review cells", "es": "Revisar células"},
    "dock_count": {"en": "Differential count", "es": "Recuento diferencial"},
    "reader": {"en": "Reader", "es": "Lector"},
    "apply_class": {"en": "Apply class to selected cells", "es": "Asignar clase a las células seleccionadas"},
    "add_cell": {"en": "Add cell at cursor", "es": "Añadir célula en el cursor"},
    "delete_cells": {"en": "Delete selected cells", "es": "Eliminar células seleccionadas"},
    "mark_reviewed": {"en": "Mark selected as reviewed", "es": "Marcar seleccionadas como revisadas"},
    "model": {"en": "Model", "es": "Modelo"},
    "switch_model": {"en": "Use this model", "es": "Usar este modelo"},
    "predict": {"en": "Detect and classify cells", "es": "Detectar y clasificar células"},
    "cells_layer": {"en": "cells", "es": "células"},
    "no_selection": {"en": "Select one or more cells first.", "es": "Seleccione antes una o más células."},
    "class": {"en": "Class", "es": "Clase"},
    "count": {"en": "Count", "es": "Recuento"},
    "percent": {"en": "%", "es": "%"},
    "ci95": {"en": "95% CI", "es": "IC 95%"},
    "percent_ci95": {"en": "% (95% CI)", "es": "% (IC 95%)"},
    "excluded_title": {"en": "Not counted (outside the NDC)", "es": "No contadas (fuera del RDN)"},
    "total_counted": {
        "en": "Counted: {total} of {target} cells",
        "es": "Contadas: {total} de {target} células",
    },
    "blast_percent": {
        "en": "Blasts: {percent:.1f}% (95% CI {low:.1f}-{high:.1f}%)",
        "es": "Blastos: {percent:.1f}% (IC 95% {low:.1f}-{high:.1f}%)",
    },
    "blast_percent_none": {"en": "Blasts: no cells counted", "es": "Blastos: ninguna célula contada"},
    "me_ratio": {"en": "M:E ratio: {ratio:.2f}:1", "es": "Relación M:E: {ratio:.2f}:1"},
    "me_ratio_none": {"en": "M:E ratio: no erythroblasts counted", "es": "Relación M:E: ningún eritroblasto contado"},
    "unreviewed": {"en": "Not reviewed yet: {n} cells", "es": "Sin revisar: {n} células"},
    # Count warnings
    "warn_no_cells": {"en": "No cells counted yet.", "es": "Aún no hay células contadas."},
    "warn_below_target": {
        "en": "Fewer cells than the target: count more cells before signing.",
        "es": "Menos células que el objetivo: cuente más células antes de firmar.",
    },
    "warn_unreviewed": {
        "en": "Some cells still carry the model's class and have not been reviewed.",
        "es": "Algunas células aún tienen la clase del modelo y no se han revisado.",
    },
    "warn_blast_ci_crosses_threshold": {
        "en": "The blast % interval crosses {thresholds}%: count more cells or ask for a second read.",
        "es": "El intervalo del % de blastos cruza {thresholds}%: cuente más células o pida una segunda lectura.",
    },
    # Blast bands (hints, never a diagnosis)
    "who_lt5": {"en": "WHO 2022: blasts < 5%", "es": "OMS 2022: blastos < 5%"},
    "who_5_9": {"en": "WHO 2022: 5-9% (MDS-IB1 range)", "es": "OMS 2022: 5-9% (rango de SMD-IB1)"},
    "who_10_19": {"en": "WHO 2022: 10-19% (MDS-IB2 range)", "es": "OMS 2022: 10-19% (rango de SMD-IB2)"},
    "who_ge20": {"en": "WHO 2022: >= 20% (AML range)", "es": "OMS 2022: >= 20% (rango de LMA)"},
    "icc_lt5": {"en": "ICC 2022: blasts < 5%", "es": "ICC 2022: blastos < 5%"},
    "icc_5_9": {"en": "ICC 2022: 5-9% (MDS with excess blasts range)", "es": "ICC 2022: 5-9% (rango de SMD con exceso de blastos)"},
    "icc_10_19": {"en": "ICC 2022: 10-19% (MDS/AML range)", "es": "ICC 2022: 10-19% (rango de SMD/LMA)"},
    "icc_ge20": {"en": "ICC 2022: >= 20% (AML range)", "es": "ICC 2022: >= 20% (rango de LMA)"},
    "hint_disclaimer": {
        "en": "A hint, not a diagnosis: genetics and clinical data decide the category.",
        "es": "Orientativo, no es un diagnóstico: la genética y los datos clínicos deciden la categoría.",
    },
    # Notifications
    "saved": {"en": "Saved: {n} cells set to {name}", "es": "Guardado: {n} células como {name}"},
    "added": {"en": "Cell added", "es": "Célula añadida"},
    "deleted": {"en": "{n} cells deleted", "es": "{n} células eliminadas"},
    "reviewed": {"en": "{n} cells marked as reviewed", "es": "{n} células marcadas como revisadas"},
    "no_cells_found": {
        "en": "No nucleated cells were found in this image.",
        "es": "No se encontraron células nucleadas en esta imagen.",
    },
    "mpp_estimated": {
        "en": "The image states no pixel size, so {mpp:.3f} µm/px was estimated from its red cells. If you know the real value, reopen with --mpp VALUE.",
        "es": "La imagen no indica el tamaño de píxel, así que se estimó {mpp:.3f} µm/px a partir de los hematíes. Si conoce el valor real, vuelva a abrirla con --mpp VALOR.",
    },
    # Review session and docks
    "dock_model": {"en": "Model", "es": "Modelo"},
    "no_session": {
        "en": "No slide under review: open one with `napari-alma open SLIDE`.",
        "es": "No hay ninguna imagen en revisión: abra una con `napari-alma open SLIDE`.",
    },
    "add_outside": {
        "en": "Position (row {row:.0f}, column {col:.0f}) is outside the image: place the cursor on the image and try again.",
        "es": "La posición (fila {row:.0f}, columna {col:.0f}) está fuera de la imagen: ponga el cursor sobre la imagen y repita.",
    },
    "store_failed": {
        "en": "The change was not saved, so the cells are shown as stored: {error}",
        "es": "El cambio no se guardó, así que las células se muestran como estaban guardadas: {error}",
    },
    "review_keys_help": {
        "en": "Keys: a class letter sets the class of the selected cells; Shift+N adds a cell at the cursor; Enter marks the selected cells as reviewed; Delete removes them. Digits 2, 3 and 4 switch the cells layer to add, select and pan/zoom mode.",
        "es": "Teclas: la letra de una clase asigna esa clase a las células seleccionadas; Mayús+N añade una célula en el cursor; Intro marca las seleccionadas como revisadas; Supr las elimina. Los dígitos 2, 3 y 4 ponen la capa de células en modo añadir, seleccionar y desplazar/zoom.",
    },
    "target": {"en": "Target cells", "es": "Células objetivo"},
    "active_model": {"en": "Active model: {version}", "es": "Modelo activo: {version}"},
    "model_shipped": {"en": "{version} (shipped)", "es": "{version} (incluido)"},
    "model_project": {"en": "{version} (this project)", "es": "{version} (este proyecto)"},
    "cancel": {"en": "Cancel", "es": "Cancelar"},
    "predict_running": {"en": "Detecting and classifying cells...", "es": "Detectando y clasificando células..."},
    "predict_cancelling": {"en": "Cancelling after the current tile...", "es": "Cancelando tras la tesela actual..."},
    "predict_done": {
        "en": "Prediction stored: {new} new cells, {matched} cells classified again.",
        "es": "Predicción guardada: {new} células nuevas, {matched} células reclasificadas.",
    },
    "predict_cancelled": {
        "en": "Prediction cancelled; the tiles finished before stay stored.",
        "es": "Predicción cancelada; las teselas terminadas antes siguen guardadas.",
    },
    "predict_failed": {"en": "Prediction failed: {error}", "es": "La predicción falló: {error}"},
    "mpp_missing": {
        "en": "The image states no pixel size and none could be estimated, so no cells were detected. Reopen it with `napari-alma open SLIDE --mpp VALUE` (µm per pixel), or add cells by hand.",
        "es": "La imagen no indica el tamaño de píxel y no se pudo estimar, así que no se detectaron células. Vuelva a abrirla con `napari-alma open PREPARACION --mpp VALOR` (µm por píxel) o añada las células a mano.",
    },
    "research_use": {
        "en": "For research use only. Not a certified medical device.",
        "es": "Solo para uso en investigación. No es un producto sanitario certificado.",
    },
}


def get_language(lang: str | None = None) -> str:
    """Return "en" or "es": ``lang`` if given, else ``ALMA_LANG``, else the system locale."""
    for candidate in (lang, os.environ.get("ALMA_LANG"), _system_language()):
        if candidate:
            code = candidate.lower()[:2]
            return code if code in LANGUAGES else "en"
    return "en"


def tr(key: str, lang: str | None = None, **values: object) -> str:
    """Return message ``key`` in the user's language, formatted with ``values``."""
    try:
        texts = MESSAGES[key]
    except KeyError as err:
        raise KeyError(f"No user-facing text named {key!r} in napari_alma.core.i18n") from err
    return texts[get_language(lang)].format(**values)


def _system_language() -> str | None:
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value and value not in ("C", "POSIX", "C.UTF-8"):
            return value
    language, _ = locale.getlocale()
    return language
