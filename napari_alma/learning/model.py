"""Cell-classifier model folders: a small CNN, its safetensors weights and a JSON card.

A model is a folder with two files:

- ``model.safetensors``: the weights only. Loading reads tensors and never unpickles code.
- ``card.json``: format, version, parent version, scheme and classes in output order,
  input size in micrometres and pixels, normalisation, architecture, training record and
  validation metrics.

torch is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CARD_FORMAT = "napari-alma-model"
CARD_FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "card.json"
ARCHITECTURE_NAME = "alma-cnn"
DEFAULT_WIDTHS = (24, 48, 96, 128)
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
CARD_FIELDS = {
    "format": str, "format_version": int, "version": str, "scheme": str, "classes": list,
    "input_um": (int, float), "input_px": int, "normalization": dict, "architecture": dict,
}


class ModelError(ValueError):
    """A model folder is missing a file, contains a pickle, or has an invalid card."""


def build_network(num_classes: int, widths=DEFAULT_WIDTHS, dropout: float = 0.3):
    """Build the CNN: conv-bn-relu blocks, global average pooling, dropout and a linear head.

    Parameters
    ----------
    num_classes : int
        Number of outputs (classes) of the head.
    widths : sequence of int
        Channels of each stage. Each stage has two 3x3 conv-bn-relu layers; every stage but
        the last ends with 2x2 max pooling. The default has about 0.4 M parameters.
    dropout : float
        Dropout probability before the head.

    Returns
    -------
    torch.nn.Sequential
        With the children ``features``, ``pool``, ``dropout`` and ``head`` (the last
        ``torch.nn.Linear``); input (N, 3, px, px) float, output (N, num_classes) logits.
    """
    from collections import OrderedDict

    from torch import nn

    layers = []
    in_channels = 3
    for stage, width in enumerate(widths):
        for _ in range(2):
            layers += [
                nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        if stage < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(*layers),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            dropout=nn.Dropout(dropout),
            head=nn.Linear(in_channels, num_classes),
        )
    )


def architecture_params(widths=DEFAULT_WIDTHS, dropout: float = 0.3) -> dict:
    """Return the card's ``architecture`` entry for :func:`build_network`."""
    return {"name": ARCHITECTURE_NAME, "widths": list(widths), "dropout": dropout}


def network_from_card(card: dict):
    """Build an untrained network with the architecture and class count of ``card``."""
    params = card["architecture"]
    return build_network(
        len(card["classes"]),
        widths=tuple(params.get("widths", DEFAULT_WIDTHS)),
        dropout=float(params.get("dropout", 0.3)),
    )


class CellClassifier:
    """A loaded cell classifier: a torch network plus its card.

    Attributes
    ----------
    card : dict
        The parsed ``card.json``.
    network : torch.nn.Module
        The network, in evaluation mode.
    folder : Path or None
        The folder it was loaded from.
    """

    def __init__(self, network, card: dict, folder: Path | None = None):
        self.network = network.eval()
        self.card = card
        self.folder = folder

    @property
    def classes(self) -> list[str]:
        """Class codes in output order."""
        return list(self.card["classes"])

    @property
    def input_um(self) -> float:
        """Side of the input crop in micrometres."""
        return float(self.card["input_um"])

    @property
    def input_px(self) -> int:
        """Side of the input crop in pixels."""
        return int(self.card["input_px"])

    @property
    def version(self) -> str:
        """Model version, e.g. ``pbc-2026.12.04-1``."""
        return str(self.card["version"])

    def predict(self, crops, device: str = "cpu", batch_size: int = 64,
                tta: bool = False) -> np.ndarray:
        """Classify cell crops.

        Parameters
        ----------
        crops : (N, h, w, 3) uint8 array
            Square RGB crops covering ``input_um`` micrometres; resized to ``input_px``
            when ``h`` differs.
        device : str
            A torch device name ("cpu", "cuda", "mps") or "auto". On cuda the forward pass
            runs in float16 autocast (mixed precision).
        batch_size : int
            Crops per forward pass.
        tta : bool
            Average the probabilities over the 8 flips and 90-degree rotations of each
            crop (test-time augmentation); 8 times slower.

        Returns
        -------
        (N, K) float32 ndarray
            Class probabilities; column k is ``classes[k]``.
        """
        probabilities, _ = self._run(crops, device, batch_size, tta=tta, mc_passes=0)
        return probabilities

    def predict_with_bald(self, crops, passes: int = 10, device: str = "cpu",
                          batch_size: int = 64, seed: int | None = 0):
        """Classify cell crops and score each with BALD from Monte-Carlo dropout.

        The probabilities are those of :meth:`predict` (dropout off). BALD comes from
        ``passes`` further passes with the dropout layers sampling while batch
        normalisation keeps its running statistics (evaluation mode).

        Parameters
        ----------
        crops : (N, h, w, 3) uint8 array
            As for :meth:`predict`.
        passes : int
            Monte-Carlo dropout passes T (at least 2).
        device, batch_size
            As for :meth:`predict`.
        seed : int or None
            Seed of the dropout masks, so that a run repeats; None draws fresh masks.

        Returns
        -------
        probabilities : (N, K) float32 ndarray
            Class probabilities with dropout off.
        bald : (N,) float64 ndarray
            Mutual information between the prediction and the weights, in nats; 0 for
            every cell when the network has no active dropout (probability 0).
        """
        if passes < 2:
            raise ValueError(f"BALD needs at least 2 Monte-Carlo passes; got {passes}.")
        return self._run(crops, device, batch_size, tta=False, mc_passes=passes, seed=seed)

    def embed(self, crops, device: str = "cpu", batch_size: int = 64) -> np.ndarray:
        """Return the pooled features that feed the head, (N, D) float32, D the last width.

        These are the inputs of the dropout and linear head, so a linear classifier fitted
        on them gets the same inputs as the model's own head.
        """
        import torch

        crops = resize_crops(np.asarray(crops), self.input_px)
        device = select_device(device)
        network = self.network.to(device).eval()
        autocast = device_options(device)["autocast"]
        outputs = []
        with torch.inference_mode(), torch.autocast("cuda", enabled=autocast):
            for start in range(0, len(crops), batch_size):
                batch = to_tensor(crops[start : start + batch_size], self.card["normalization"])
                features = network.pool(network.features(to_device(batch, device)))
                outputs.append(features.float().cpu().numpy())
        width = int(self.network.head.in_features)
        return np.concatenate(outputs) if outputs else np.zeros((0, width), np.float32)

    def _run(self, crops, device: str, batch_size: int, tta: bool, mc_passes: int,
             seed: int | None = None):
        import torch

        from napari_alma.core.uncertainty import bald

        crops = resize_crops(np.asarray(crops), self.input_px)
        device = select_device(device)
        options = device_options(device)
        network = self.network.to(device).eval()
        generator = _dropout_generator(seed, device) if mc_passes else None
        outputs, scores = [], []
        with torch.inference_mode(), torch.autocast("cuda", enabled=options["autocast"]):
            for start in range(0, len(crops), batch_size):
                batch = to_tensor(crops[start : start + batch_size], self.card["normalization"])
                batch = to_device(batch, device)
                outputs.append(_forward(network, batch, tta).cpu().numpy())
                if mc_passes:
                    samples = mc_dropout_samples(network, batch, mc_passes, generator)
                    scores.append(bald(samples.cpu().numpy()))
        n_classes = len(self.classes)
        probabilities = (np.concatenate(outputs).astype(np.float32) if outputs
                         else np.zeros((0, n_classes), dtype=np.float32))
        if not mc_passes:
            return probabilities, None
        return probabilities, (np.concatenate(scores) if scores else np.zeros(0))


def device_options(device: str) -> dict:
    """Return how inference and training use ``device``.

    ``autocast``: float16 mixed precision (cuda only). ``pin_memory`` and ``non_blocking``:
    host batches go to page-locked memory and are copied asynchronously (cuda only,
    since pinning helps nothing on cpu and mps).
    """
    cuda = str(device).startswith("cuda")
    return {"autocast": cuda, "pin_memory": cuda, "non_blocking": cuda}


def to_device(batch, device: str):
    """Move a host tensor to ``device``, pinned and asynchronous on cuda."""
    options = device_options(device)
    if options["pin_memory"]:
        batch = batch.pin_memory()
    return batch.to(device, non_blocking=options["non_blocking"])


def _dropout_generator(seed: int | None, device: str):
    import torch

    if seed is None:
        return None
    # Dropout masks are drawn on the device of the features, so the generator lives there.
    return torch.Generator(device=device).manual_seed(int(seed))


def mc_dropout_samples(network, batch, passes: int, generator=None):
    """Return ``passes`` softmax outputs of ``network`` with its dropout sampling.

    The network is the :func:`build_network` layout, where dropout sits only between the
    pooled features and the linear head. So the convolutional features, with batch
    normalisation in evaluation mode, are computed once, and each pass draws a dropout
    mask (inverted scaling, as ``torch.nn.Dropout`` in training mode) and applies the head.

    Parameters
    ----------
    network : torch.nn.Module
        A :func:`build_network` network.
    batch : (N, 3, px, px) float tensor
        Normalised crops on the network's device.
    passes : int
        Number of passes T.
    generator : torch.Generator, optional
        Source of the dropout masks, on the batch's device.

    Returns
    -------
    (T, N, K) float32 tensor
        Class probabilities of each pass.
    """
    import torch

    rate = float(network.dropout.p)
    features = network.pool(network.features(batch)).float()
    samples = []
    for _ in range(passes):
        if rate > 0:
            keep = torch.rand(features.shape, generator=generator, device=features.device)
            dropped = features * (keep >= rate) / (1.0 - rate)
        else:
            dropped = features
        logits = network.head(dropped.to(network.head.weight.dtype)).float()
        samples.append(torch.softmax(logits, dim=1))
    return torch.stack(samples)


def _forward(network, batch, tta: bool):
    """Return softmax probabilities, averaged over the 8 dihedral transforms when ``tta``."""
    import torch

    if not tta:
        return torch.softmax(network(batch).float(), dim=1)
    total = 0
    for flipped in (batch, batch.flip(3)):
        for turns in range(4):
            rotated = torch.rot90(flipped, turns, dims=(2, 3))
            total = total + torch.softmax(network(rotated).float(), dim=1)
    return total / 8


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, h, w, 3) uint8 crops to (N, size, size, 3), anti-aliased when shrinking."""
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"Expected crops of shape (N, h, w, 3); got {crops.shape}.")
    if crops.shape[1:3] == (size, size):
        return crops
    from skimage.transform import resize

    resized = [
        resize(crop, (size, size), order=1, anti_aliasing=crop.shape[0] > size,
               preserve_range=True)
        for crop in crops
    ]
    return np.clip(np.rint(np.stack(resized)), 0, 255).astype(np.uint8).reshape(-1, size, size, 3)


def to_tensor(crops: np.ndarray, normalization: dict):
    """Convert (N, px, px, 3) uint8 crops to a normalised (N, 3, px, px) float32 tensor."""
    import torch

    mean = torch.tensor(normalization["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(normalization["std"], dtype=torch.float32).view(1, 3, 1, 1)
    batch = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255
    return (batch - mean) / std


def load_model(folder, scheme=None) -> CellClassifier:
    """Load a model folder without unpickling anything.

    Parameters
    ----------
    folder : str or Path
        A folder with ``model.safetensors`` and ``card.json``.
    scheme : napari_alma.core.scheme.ClassScheme, optional
        When given, every class of the model must be in it.

    Returns
    -------
    CellClassifier

    Raises
    ------
    ModelError
        When the folder or a file is missing, the weights are not safetensors (a pickled
        ``.pt`` checkpoint is never loaded), or the card is invalid.
    napari_alma.core.scheme.SchemeError
        When the model was trained for another scheme than ``scheme``, or predicts a class
        that ``scheme`` lacks.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    weights_path = _check_folder(folder)
    card = read_card(folder)
    if scheme is not None:
        check_model_scheme(card, scheme, folder)
    network = network_from_card(card)
    try:
        state = load_file(str(weights_path))
        network.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ModelError(
            f"{weights_path} is not a valid safetensors file for the architecture in "
            f"{folder / CARD_NAME}: {err}"
        ) from err
    return CellClassifier(network, card, folder)


def check_model_scheme(card: dict, scheme, folder) -> None:
    """Raise unless the model's classes mean the same cells in the project's scheme.

    A model trained for another bundled scheme is accepted when each of its class codes
    exists in the project's scheme with the same lineage. The shipped schemes share their
    codes, so a blood-trained model's LYT is a lymphocyte in marrow too. A model for a
    scheme that cannot be loaded here is rejected, since its codes cannot be checked.

    Raises
    ------
    napari_alma.core.scheme.SchemeError
        Naming the model folder, both schemes and the classes that do not map.
    """
    from napari_alma.core.scheme import SchemeError, load_scheme

    scheme.check_model_classes(card["classes"], source=f"Model {folder}")
    if card["scheme"] == scheme.name:
        return
    try:
        trained_for = load_scheme(card["scheme"])
    except (SchemeError, OSError, ValueError) as err:
        raise SchemeError(
            f"Model {folder} was trained for class scheme {card['scheme']!r}, which cannot be "
            f"loaded here ({err}), but this project uses {scheme.name!r}. Choose a model "
            f"trained for {scheme.name!r}, or retrain one on this project's labels."
        ) from err
    mismatched = []
    for code in card["classes"]:
        if code not in trained_for:
            mismatched.append(f"{code} (not in {trained_for.name!r})")
        elif trained_for[code].lineage != scheme[code].lineage:
            mismatched.append(
                f"{code} ({trained_for[code].lineage} there, {scheme[code].lineage} here)"
            )
    if mismatched:
        raise SchemeError(
            f"Model {folder} was trained for class scheme {card['scheme']!r}, and its classes "
            f"{', '.join(mismatched)} would mean other cells in this project's scheme "
            f"{scheme.name!r}. Choose a model trained for {scheme.name!r}, or retrain one on "
            "this project's labels."
        )


def _check_folder(folder: Path) -> Path:
    if folder.is_file():
        hint = " Pickled checkpoints are never loaded." if folder.suffix in PICKLE_SUFFIXES else ""
        raise ModelError(
            f"{folder} is a file; a model is a folder with {WEIGHTS_NAME} and {CARD_NAME}.{hint}"
        )
    if not folder.is_dir():
        raise ModelError(f"Model folder not found: {folder}")
    weights_path = folder / WEIGHTS_NAME
    if not weights_path.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        found = f" It contains {', '.join(pickles)}, which" if pickles else " A pickle"
        raise ModelError(
            f"{folder} has no {WEIGHTS_NAME}.{found} could run code when loaded, so "
            "napari-alma never loads pickles; convert the weights to safetensors."
        )
    _check_safetensors_header(weights_path)
    return weights_path


def _check_safetensors_header(path: Path) -> None:
    """Raise ModelError unless ``path`` starts like a safetensors file (length + JSON)."""
    with path.open("rb") as handle:
        head = handle.read(9)
    header_length = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    if header_length <= 0 or header_length > 100_000_000 or head[8:9] != b"{":
        raise ModelError(
            f"{path} is not a safetensors file (it may be a pickled checkpoint, which is "
            "never loaded); save the weights with safetensors."
        )


def read_card(folder) -> dict:
    """Read and validate ``card.json`` of a model folder; errors name the folder and field."""
    path = Path(folder) / CARD_NAME
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelError(f"{path} is missing; a model folder needs its card.") from err
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"Cannot read {path}: {err}") from err
    if not isinstance(card, dict):
        raise ModelError(f"{path}: expected a JSON object.")
    for field, kind in CARD_FIELDS.items():
        if field not in card:
            raise ModelError(f"{path}: field '{field}' is missing.")
        if not isinstance(card[field], kind) or isinstance(card[field], bool):
            raise ModelError(f"{path}: field '{field}' has invalid value {card[field]!r}.")
    _check_card_values(card, path)
    return card


def _check_card_values(card: dict, path: Path) -> None:
    if card["format"] != CARD_FORMAT:
        raise ModelError(f"{path}: field 'format' is {card['format']!r}; expected {CARD_FORMAT!r}.")
    if card["format_version"] > CARD_FORMAT_VERSION:
        raise ModelError(
            f"{path}: format_version {card['format_version']} is newer than this napari-alma "
            f"reads ({CARD_FORMAT_VERSION}); update napari-alma."
        )
    classes = card["classes"]
    if not classes or not all(isinstance(code, str) for code in classes):
        raise ModelError(f"{path}: field 'classes' must be a non-empty list of class codes.")
    if len(set(classes)) != len(classes):
        raise ModelError(f"{path}: field 'classes' lists a class twice: {classes}.")
    if card["architecture"].get("name") != ARCHITECTURE_NAME:
        raise ModelError(
            f"{path}: field 'architecture.name' is {card['architecture'].get('name')!r}; "
            f"this napari-alma builds only {ARCHITECTURE_NAME!r}."
        )
    for key in ("mean", "std"):
        values = card["normalization"].get(key)
        if not isinstance(values, list) or len(values) != 3:
            raise ModelError(f"{path}: field 'normalization.{key}' must be a list of 3 numbers.")
    if card["input_um"] <= 0 or card["input_px"] <= 0:
        raise ModelError(f"{path}: fields 'input_um' and 'input_px' must be positive.")


def save_model(network, card: dict, folder, extra_files: dict | None = None) -> Path:
    """Write ``network``'s weights as safetensors and ``card`` as JSON into a model folder.

    The folder is written under a temporary sibling name and renamed into place; an
    existing folder of the same name is replaced. ``extra_files`` maps file names to
    bytes written beside them (for example a confusion-matrix plot).

    Returns
    -------
    Path
        The model folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        state = {key: value.detach().cpu().contiguous() for key, value in
                 network.state_dict().items()}
        save_file(state, str(temp_dir / WEIGHTS_NAME))
        (temp_dir / CARD_NAME).write_text(json.dumps(card, indent=2), encoding="utf-8")
        for name, content in (extra_files or {}).items():
            (temp_dir / Path(name).name).write_bytes(content)
        if folder.exists():
            shutil.rmtree(folder)
        temp_dir.rename(folder)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    logger.info("Saved model %s to %s", card.get("version"), folder)
    return folder


def default_model_path() -> Path:
    """Return the folder of the model shipped with the package (trained on PBC cells)."""
    return Path(str(resources.files("napari_alma.learning") / "default_model"))


def select_device(name: str = "auto") -> str:
    """Return a torch device name: "auto" picks cuda, then mps, else cpu.

    Raises
    ------
    ValueError
        When ``name`` is unknown, or names a device that this machine lacks.
    """
    import torch

    name = (name or "auto").lower()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if has_mps else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {name!r} requested but this torch build sees no CUDA GPU; "
                "use --device cpu or auto."
            )
        return name
    if name == "mps":
        if not has_mps:
            raise ValueError("Device 'mps' requested but Apple MPS is not available; use cpu.")
        return name
    raise ValueError(f"Unknown device {name!r}; expected auto, cpu, cuda or mps.")
