"""Dataset: DFT frames read with ``ase.io``, validated, split and summarised.

A frame is an :class:`ase.Atoms` with a total energy (eV) and per-atom forces (eV/Å)
attached the way ASE stores them (extxyz ``energy=`` / ``forces`` columns, or a
calculator's results). Splits are lists of frames; they are reproducible from the seed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

from evopot.config.schema import SearchConfig
from evopot.errors import EvopotError, brief


@dataclass(frozen=True)
class Frames:
    """Frames with their DFT labels.

    ``energies`` has shape ``(n_frames,)`` in eV; ``forces[k]`` has shape
    ``(len(atoms[k]), 3)`` in eV/Å; ``config_types[k]`` is the frame's ``config_type``
    (``"unknown"`` when the file has none).
    """

    atoms: list[Atoms]
    energies: np.ndarray
    forces: list[np.ndarray]
    config_types: list[str]
    source: str = ""
    #: ``(n_frames, 6)`` DFT stresses in ASE's convention (eV/Å³, Voigt xx yy zz yz xz xy,
    #: positive when tensile), a row of NaN for a frame without one; None: no frame has one
    stresses: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.atoms)

    @property
    def n_atoms(self) -> int:
        return sum(len(a) for a in self.atoms)

    @property
    def species(self) -> list[str]:
        return sorted({s for a in self.atoms for s in a.get_chemical_symbols()})

    def subset(self, indices) -> Frames:
        indices = [int(k) for k in indices]
        return Frames(
            atoms=[self.atoms[k] for k in indices],
            energies=self.energies[indices],
            forces=[self.forces[k] for k in indices],
            config_types=[self.config_types[k] for k in indices],
            source=self.source,
            stresses=None if self.stresses is None else self.stresses[indices],
        )

    @property
    def stressed(self) -> np.ndarray:
        """(n_frames,) bool: which frames have a DFT stress."""
        if self.stresses is None:
            return np.zeros(len(self), dtype=bool)
        return np.all(np.isfinite(self.stresses), axis=1)

    @classmethod
    def joined(cls, parts: list[Frames], source: str = "") -> Frames:
        """The frames of ``parts`` in order, as one :class:`Frames`."""
        stresses = None
        if any(p.stresses is not None for p in parts):
            stresses = np.concatenate(
                [p.stresses if p.stresses is not None else np.full((len(p), 6), np.nan) for p in parts]
            )
        return cls(
            [a for p in parts for a in p.atoms],
            np.concatenate([p.energies for p in parts]),
            [f for p in parts for f in p.forces],
            [t for p in parts for t in p.config_types],
            source,
            stresses,
        )

    def summary(self) -> dict:
        """Counts and label statistics: frames, atoms, species, config types,
        energy per atom (eV) and force component spread (eV/Å)."""
        if len(self) == 0:
            return {"frames": 0, "atoms": 0}
        per_atom = self.energies / np.array([len(a) for a in self.atoms])
        all_forces = np.concatenate(self.forces)
        return {
            "frames": len(self),
            "atoms": self.n_atoms,
            "species": self.species,
            "config_types": dict(sorted(Counter(self.config_types).items())),
            "energy_per_atom_mean": float(per_atom.mean()),
            "energy_per_atom_std": float(per_atom.std()),
            "force_component_rms": float(np.sqrt(np.mean(all_forces**2))),
            "force_component_mae": float(np.mean(np.abs(all_forces))),
        }


def unlabelled(atoms_list) -> Frames:
    """Frames of structures without DFT labels (zero energies and forces): for
    evaluating a potential on them."""
    atoms_list = list(atoms_list)
    return Frames(
        atoms_list,
        np.zeros(len(atoms_list)),
        [np.zeros((len(a), 3)) for a in atoms_list],
        ["unlabelled"] * len(atoms_list),
    )


def read_frames(path: str | Path, index: str = ":", where: str | None = None) -> Frames:
    """Read every frame of ``path`` with ``ase.io`` and check its labels.

    Raises :class:`EvopotError` naming ``where`` (the config file and field, when the
    path came from one), the file and the frame for a missing file, a folder, an
    unreadable file, or a frame without finite positions, energy or forces.
    """
    path = Path(path)
    prefix = f"{where}: {path}" if where else str(path)
    if path.is_dir():
        raise EvopotError(f"{prefix}: is a directory; give a data file")
    if not path.is_file():
        raise EvopotError(
            f"{prefix}: data file not found; check the path (relative paths are read from the config file's folder)"
        )
    if path.suffix.lower() in (".xyz", ".extxyz"):
        _check_xyz_columns(path, prefix)
    try:
        images = ase.io.read(path, index=index)
    except Exception as exc:  # ase raises many kinds for a bad file
        detail = brief(f"{type(exc).__name__}: {exc}", 300)
        raise EvopotError(
            f"{prefix}: ASE could not read this file ({detail}); give an extxyz or another format ase.io reads"
        ) from None
    if isinstance(images, Atoms):
        images = [images]
    return labelled(images, prefix, "the file")


def _check_xyz_columns(path: Path, prefix: str) -> None:
    """Every atom line of an (ext)xyz file has as many columns as its frame's
    ``Properties`` declare (ASE ignores extra ones: a shifted column would go unseen)."""
    import re

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise EvopotError(f"{prefix}: not UTF-8 text (byte {exc.start}); is it the right file?") from None
    sizes = {"S": 1, "R": 1, "I": 1, "L": 1}
    k, frame = 0, 0
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        try:
            count = int(lines[k].split()[0])
        except ValueError:
            return  # not an xyz layout ASE would read either: its own error says so
        if count < 0 or k + 1 >= len(lines):
            return
        found = re.search(r"Properties=(\S+)", lines[k + 1])
        expected = 4
        if found:
            fields = found.group(1).split(":")
            try:
                expected = sum(int(n) for n in fields[2::3]) if all(t in sizes for t in fields[1::3]) else None
            except ValueError:
                expected = None
        for n, line in enumerate(lines[k + 2 : k + 2 + count]):
            if expected is not None and len(line.split()) != expected:
                raise EvopotError(
                    f"{prefix}: frame {frame}, atom {n} (line {k + 3 + n}) has {len(line.split())} columns but the "
                    f"frame's Properties declare {expected}; fix or remove that line"
                )
        k += 2 + count
        frame += 1


def labelled(images, source: str = "frames", what: str = "the list") -> Frames:
    """:class:`Frames` of ASE ``Atoms`` that carry their DFT labels (a calculator's
    results, or extxyz ``energy``/``forces``); ``source`` names them in errors."""
    images = list(images)
    path = source
    if not images:
        raise EvopotError(f"{source}: {what} holds no frames")
    if not all(isinstance(a, Atoms) for a in images):
        raise EvopotError(f"{source}: expected ase.Atoms frames, got {type(images[0]).__name__}")
    energies, forces, config_types, stresses = [], [], [], []
    for k, atoms in enumerate(images):
        energy, frame_forces = _labels(atoms)
        if energy is None:
            raise EvopotError(
                f"{path}: frame {k} has no energy; every frame needs a total energy (extxyz: energy=... in "
                f"the comment line)"
            )
        if frame_forces is None:
            raise EvopotError(
                f"{path}: frame {k} has no forces; every frame needs per-atom forces (extxyz: a 'forces' column)"
            )
        try:
            energy = float(energy)
            frame_forces = np.asarray(frame_forces, dtype=float)
        except (TypeError, ValueError):
            raise EvopotError(f"{path}: frame {k}: its energy or forces are not numbers ({energy!r})") from None
        if frame_forces.shape != (len(atoms), 3) or not np.all(np.isfinite(frame_forces)):
            raise EvopotError(
                f"{path}: frame {k} has forces of shape {frame_forces.shape} or values that are not finite; "
                f"expected ({len(atoms)}, 3) finite numbers"
            )
        if not np.isfinite(energy):
            raise EvopotError(f"{path}: frame {k} has an energy that is not finite ({energy})")
        _check_structure(atoms, f"{path}: frame {k}")
        energies.append(energy)
        forces.append(frame_forces)
        config_types.append(str(atoms.info.get("config_type", "unknown")))
        stresses.append(frame_stress(atoms, f"{path}: frame {k}"))
    known = [x for x in stresses if x is not None]
    table = np.array([np.full(6, np.nan) if x is None else x for x in stresses]) if known else None
    return Frames(images, np.array(energies), forces, config_types, source=str(path), stresses=table)


def frame_stress(atoms: Atoms, where: str = "frame") -> np.ndarray | None:
    """The DFT stress of a frame in ASE's convention (eV/Å³, Voigt order xx yy zz yz xz
    xy, positive when tensile), shape (6,), or None when it has none: a calculator's
    ``stress``, as ASE writes and reads it (extxyz ``stress=``). Other codes' stresses
    (VASP's kBar, compressive positive) must be converted first: see
    ``examples/data/add_stress.py`` for mlearn's."""
    raw = None
    if atoms.calc is not None:
        raw = getattr(atoms.calc, "results", {}).get("stress")
    if raw is None:
        raw = atoms.info.get("stress")
    if raw is None:
        return None
    try:
        values = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise EvopotError(f"{where}: its stress is not numbers ({brief(repr(raw), 80)})") from None
    if values.shape == (3, 3):
        values = full_3x3_to_voigt_6_stress(values)
    elif values.shape != (6,):
        raise EvopotError(f"{where}: its stress has shape {values.shape}; expected 6 (Voigt) or 3x3 numbers (eV/Å³)")
    if not np.all(np.isfinite(values)):
        raise EvopotError(f"{where}: its stress is not finite ({values.tolist()}); fix or remove it")
    return values


#: nuclei closer than this (Å) are a broken structure, not physics (H₂: 0.74 Å)
MIN_DISTANCE = 0.3


def _check_structure(atoms: Atoms, where: str) -> None:
    """Finite positions and cell, no atom on top of another."""
    import vesin

    if len(atoms) == 0:
        raise EvopotError(f"{where} has no atoms")
    points, cell = np.asarray(atoms.positions, dtype=float), np.asarray(atoms.cell.array, dtype=float)
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(cell))):
        raise EvopotError(f"{where}: positions or cell are not finite (NaN or infinity)")
    pbc = [bool(p) for p in atoms.pbc]
    if any(pbc) and abs(np.linalg.det(cell)) < 1e-9:
        raise EvopotError(f"{where} is periodic but its cell has zero volume; give the cell or set pbc=False")
    i, j, d = vesin.NeighborList(cutoff=MIN_DISTANCE, full_list=False).compute(
        points, cell if any(pbc) else np.zeros((3, 3)), pbc, quantities="ijd"
    )
    if len(i):
        raise EvopotError(
            f"{where}: atoms {int(i[0])} and {int(j[0])} are {float(d[0]):.3g} Å apart, closer than {MIN_DISTANCE} Å "
            f"(two atoms on one site?); fix or remove the frame"
        )


def frames_of(source, where: str) -> Frames:
    """Frames from a data file path, a :class:`Frames`, or a list of labelled ASE
    ``Atoms`` (the Python API's in-memory data); ``where`` names it in errors."""
    if isinstance(source, Frames):
        return source
    if isinstance(source, (str, Path)):
        return read_frames(source, where=where)
    if isinstance(source, Atoms):
        source = [source]
    return labelled(source, where)


def write_frames(frames: Frames, path: str | Path) -> Path:
    """Write ``frames`` with their labels and config types to the extxyz file ``path``
    (whole or not at all: through a temporary file renamed into place)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = []
    for atoms, energy, forces, kind in zip(frames.atoms, frames.energies, frames.forces, frames.config_types):
        copy = atoms.copy()
        copy.info["config_type"] = kind
        copy.calc = SinglePointCalculator(copy, energy=float(energy), forces=forces)
        images.append(copy)
    partial = path.with_name(path.name + ".partial")
    ase.io.write(partial, images, format="extxyz")
    partial.replace(path)
    return path


def _labels(atoms: Atoms):
    energy = atoms.info.get("energy")
    frame_forces = atoms.arrays.get("forces")
    if atoms.calc is not None:
        results = getattr(atoms.calc, "results", {})
        energy = results.get("energy", energy)
        frame_forces = results.get("forces", frame_forces)
    return energy, frame_forces


@dataclass(frozen=True)
class Dataset:
    """Train, validation and (optional) test frames, each a :class:`Frames`."""

    train: Frames
    validation: Frames
    test: Frames | None = None
    species: list[str] = field(default_factory=list)

    def splits(self) -> dict[str, Frames]:
        out = {"train": self.train, "validation": self.validation}
        if self.test is not None:
            out["test"] = self.test
        return out

    def summary(self) -> dict:
        return {name: frames.summary() for name, frames in self.splits().items()}


def split_by_fraction(frames: Frames, fractions: dict[str, float], seed: int) -> dict[str, Frames]:
    """Shuffle with ``seed`` and cut off the named fractions; the rest is ``"train"``.

    ``fractions`` maps split name to a fraction of all frames, for example
    ``{"validation": 0.1, "test": 0.1}``. A split asked for with a positive fraction
    gets at least one frame.
    """
    order = np.random.default_rng(seed).permutation(len(frames))
    out, start = {}, 0
    for name, fraction in fractions.items():
        count = int(round(fraction * len(frames)))
        if fraction > 0:
            count = max(count, 1)
        out[name] = frames.subset(sorted(order[start : start + count]))
        start += count
    out["train"] = frames.subset(sorted(order[start:]))
    return out


def split_by_config_type(frames: Frames, held_out: dict[str, list[str]]) -> dict[str, Frames]:
    """Frames whose ``config_type`` is listed under a split name go to that split;
    every other frame is ``"train"``."""
    assignment = {}
    for name, types in held_out.items():
        for config_type in types:
            assignment[config_type] = name
    out = {name: [] for name in held_out}
    out["train"] = []
    for k, config_type in enumerate(frames.config_types):
        out[assignment.get(config_type, "train")].append(k)
    return {name: frames.subset(idx) for name, idx in out.items()}


def load_dataset(
    train,
    validation=None,
    test=None,
    by: str = "fraction",
    validation_part: float | list[str] = 0.1,
    test_part: float | list[str] | None = None,
    seed: int = 0,
    species: list[str] | None = None,
    where: str = "config",
) -> Dataset:
    """Read the data files (or take frames in memory: see :func:`frames_of`) and make
    the splits.

    Validation (and test, when no ``test`` file is given) frames are held out of the
    ``train`` file by fraction (shuffled with ``seed``) or by ``config_type`` (``by``).
    ``where`` names the config file for error messages. Every split must be non-empty,
    and every species in the data must be in ``species`` when that is given.
    """
    train_frames = frames_of(train, f"{where}: data.train")
    parts = {}
    if validation is None:
        parts["validation"] = validation_part
    if test is None and test_part:
        parts["test"] = test_part
    if by == "fraction":
        splits = split_by_fraction(train_frames, parts, seed)
    else:
        splits = split_by_config_type(train_frames, parts)
    if validation is not None:
        splits["validation"] = frames_of(validation, f"{where}: data.validation")
    if test is not None:
        splits["test"] = frames_of(test, f"{where}: data.test")
    for name in ("train", "validation", "test"):
        if name in splits and len(splits[name]) == 0:
            present = sorted(set(train_frames.config_types))
            hint = (
                f"the config types present are {present}"
                if by == "config_type"
                else "raise the fraction or give a file"
            )
            raise EvopotError(f"{where}: data.split gives an empty {name} split ({hint})")
    all_species = sorted({s for frames in splits.values() for s in frames.species})
    if species is not None:
        unknown = sorted(set(all_species) - set(species))
        if unknown:
            raise EvopotError(
                f"{where}: field 'species' lists {species} but the data contains {unknown}; add them or "
                f"remove those frames"
            )
        all_species = list(species)
    return Dataset(splits["train"], splits["validation"], splits.get("test"), all_species)


def dataset_from_config(config: SearchConfig, where: str = "config", frames: dict | None = None) -> Dataset:
    """The :class:`Dataset` a search config's ``data:`` section names, split by its
    seed; ``frames`` (``train``, ``validation``, ``test``: lists of ASE ``Atoms``) stand
    in for the files."""
    d, frames = config.data, frames or {}
    train = frames.get("train", d.train)
    if train is None:
        raise EvopotError(f"{where}: data.train: no training data; give a data file (or train= frames in Python)")
    validation, test = frames.get("validation", d.validation), frames.get("test", d.test)
    return load_dataset(
        train, validation, test, d.split.by, d.split.validation, d.split.test, config.seed, config.species, where
    )
