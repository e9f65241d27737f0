"""The search config: one YAML file names the data, the search space, the engine and
the fitness, validated by pydantic. Relative paths are read from the config file's
folder. Every mistake becomes one :class:`EvopotError` line naming the file and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from evopot.config.yamlfile import read_mapping, validate
from evopot.errors import EvopotError


class _Strict(BaseModel):
    # no unknown fields, and no NaN or infinity in any number a user writes
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: bounds of the sizes a config may ask for: far beyond any real run, short of what
#: would exhaust memory or never end
MAX_RADIUS = 30.0  # Å
MAX_POPULATION = 100_000
MAX_GENERATIONS = 1_000_000
MAX_FRAMES = 10_000_000
MAX_SEED = 2**32 - 1


class SplitConfig(_Strict):
    """How validation (and test, when no test file is given) frames are held out.

    ``by: fraction`` takes ``validation``/``test`` as fractions of the training file's
    frames (shuffled with the seed); ``by: config_type`` takes them as lists of
    ``config_type`` names."""

    by: Literal["fraction", "config_type"] = Field(
        "fraction", description="hold frames out by fraction or by config_type"
    )
    validation: float | list[str] = Field(
        0.1, description="fraction of the frames, or list of config_type names, held out for validation"
    )
    test: float | list[str] | None = Field(
        None, description="the same for a test split (when no data.test file is given); reported, never fitted"
    )

    @model_validator(mode="after")
    def _consistent(self):
        for name in ("validation", "test"):
            value = getattr(self, name)
            if value is None:
                continue
            if self.by == "fraction":
                if not isinstance(value, (int, float)):
                    raise ValueError(f"{name}: with by: fraction give a number between 0 and 1, got {value!r}")
                if not 0 <= value < 1:
                    raise ValueError(f"{name}: fraction must be in [0, 1), got {value}")
            elif not isinstance(value, list):
                raise ValueError(f"{name}: with by: config_type give a list of config_type names, got {value!r}")
        if self.by == "fraction" and self.validation + (self.test or 0) >= 1:
            raise ValueError("validation + test fractions leave no training frames; keep their sum below 1")
        return self


class DataConfig(_Strict):
    train: Path | None = Field(None, description="the training data file (any format ase.io reads, with labels)")
    validation: Path | None = Field(None, description="a validation data file (else held out of data.train by split)")
    test: Path | None = Field(None, description="a test data file: reported, never fitted")
    split: SplitConfig = SplitConfig()


class CutoffConfig(_Strict):
    radius: float = Field(gt=0, le=MAX_RADIUS, description=f"cutoff radius in Å (at most {MAX_RADIUS:g})")
    onset: float | None = Field(
        None, ge=0, description="where the switch starts, Å (default radius − 1 Å, or 0 if the radius is ≤ 1 Å)"
    )
    function: str = Field("quintic", description="the switching function's profile (evopot.model.cutoff.PROFILES)")

    @model_validator(mode="after")
    def _onset(self):
        if self.onset is None:
            self.onset = max(self.radius - 1.0, 0.0)
        if self.onset >= self.radius:
            raise ValueError(f"onset ({self.onset} Å) must be below radius ({self.radius} Å)")
        return self


def _multiple_of_four(value: int) -> int:
    if value % 4:
        raise ValueError(
            f"must be a multiple of 4 (NSGA-II tournament pairs), got {value}; try {value + 4 - value % 4}"
        )
    return value


#: A GP population size: NSGA-II's tournament takes individuals in fours.
Population = Annotated[int, Field(ge=4, le=MAX_POPULATION), AfterValidator(_multiple_of_four)]


class GuidedConfig(_Strict):
    """The neural-guided start (``engine.name: guided``): the separable network and the
    distillation of its functions into the first individuals of the search."""

    hidden: list[int] = Field([32, 32], min_length=1, description="hidden layer widths of each slot's MLP")
    epochs: int = Field(1000, ge=1, description="Adam epochs (full batch) of the separable network")
    polish: int = Field(
        1000,
        ge=0,
        description="most L-BFGS iterations after Adam, in chunks of 100 that stop once one gains < 2 % "
        "(on the SW data 500 stopped two seeds of eight mid-way, in a poor basin)",
    )
    distill_population: Population = Field(
        100, description="population of each slot's symbolic regression (a multiple of 4)"
    )
    distill_generations: int = Field(15, ge=1, description="generations of each slot's symbolic regression")
    keep: int = Field(3, ge=1, description="best trees kept per slot (and as many of the simplest nearly as good)")
    distill_with: Literal["deap", "pysr"] = Field("deap", description="deap (built in) or pysr (optional; needs Julia)")
    seeds: int = Field(20, ge=1, description="most seeded individuals")


class MigrationConfig(_Strict):
    every: int = Field(5, ge=1, le=MAX_GENERATIONS, description="generations between two migrations")
    count: int = Field(
        2, ge=1, le=MAX_POPULATION, description="best formulas each island sends to the next island of the ring"
    )


MAX_ISLANDS = 1024


class EngineConfig(_Strict):
    name: str = Field("gp", description="a registered search engine: gp, guided (evopot.search.engines.registry)")
    population: Population = Field(
        100, description="individuals kept each generation (a multiple of 4), on each island"
    )
    generations: int = Field(
        20, ge=0, le=MAX_GENERATIONS, description="generations after the first population (0: the first one only)"
    )
    crossover: float = Field(0.6, ge=0, le=1, description="probability that a pair of offspring is crossed over")
    mutation: float = Field(0.3, ge=0, le=1, description="probability that an offspring is mutated")
    target_error: float = Field(0.0, ge=0, description="stop early once the best fitness is at or below this")
    patience: int = Field(
        3, ge=0, description="generations to go on after reaching target_error, so simpler formulas can surface"
    )
    restart: int = Field(
        0,
        ge=0,
        description="start the population afresh from random trees when the best loss has gained less than 1 % "
        "in this many generations (the front keeps what was found); 0: never",
    )
    time_limit: float | None = Field(
        None,
        gt=0,
        description="stop after the generation that passes this many seconds of search (the guided engine's "
        "network training included); the result then depends on the machine's speed, generations does not",
    )
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=MAX_POPULATION)] = Field(
        "auto",
        description="processes fitting candidates on this machine: auto (every core, or $EVOPOT_WORKERS), or a "
        "number; 1 runs in this process without Dask. The front does not depend on it",
    )
    scheduler: str | None = Field(
        None,
        pattern=r"^(tcp|tls|ucx|ws|wss)://\S+$",
        description="address of an existing Dask scheduler (tcp://HOST:PORT) whose workers fit the candidates, "
        "instead of workers on this machine",
    )
    scheduler_file: Path | None = Field(
        None, description="a Dask scheduler file (dask scheduler --scheduler-file, dask-jobqueue) instead of scheduler"
    )
    islands: int = Field(
        1,
        ge=1,
        le=MAX_ISLANDS,
        description="populations evolving side by side (population individuals each), their offspring fitted in "
        "one batch; for many workers. 1: one population",
    )
    migration: MigrationConfig = Field(
        MigrationConfig(), description="how often, and how many, formulas move between islands (a ring)"
    )
    guided: GuidedConfig = GuidedConfig()

    @model_validator(mode="after")
    def _one_cluster(self):
        if self.scheduler is not None and self.scheduler_file is not None:
            raise ValueError("give scheduler or scheduler_file, not both")
        if self.islands > 1 and self.migration.count >= self.population:
            raise ValueError(
                f"migration.count ({self.migration.count}) must be smaller than population ({self.population})"
            )
        return self


class FitnessConfig(_Strict):
    forces: float = Field(1.0, ge=0, description="weight of the mean squared force error (eV/Å)²")
    energies: float = Field(
        10.0,
        ge=0,
        description="weight of the mean squared energy-per-atom error (eV)² (10: on the bundled Si, 3.7× lower energy "
        "errors than 0.1 at the same force error; see docs/search-spaces.md)",
    )
    stresses: float = Field(
        0.0,
        ge=0,
        description="weight of the mean squared stress error (GPa)² over the training frames that have a DFT stress "
        "(ASE's `stress`, eV/Å³, tensile positive); 0: stresses not fitted. On the bundled Si, 0.1 brings a₀ within "
        "0.2 % and halves the stress error for ~7 % in forces (docs/search-spaces.md)",
    )
    frames: int | None = Field(
        None,
        ge=1,
        le=MAX_FRAMES,
        description="training frames used to score candidates during the search (default all)",
    )
    max_evaluations: int = Field(40, ge=1, description="budget of the nonlinear constant refinement per candidate")

    @model_validator(mode="after")
    def _some_weight(self):
        if self.forces == 0 and self.energies == 0:
            raise ValueError("forces and energies weights are both 0; give at least one a positive weight")
        return self


PropertyName = Literal["a0", "B", "C11", "C12", "C44", "C44_unrelaxed"]


class PropertiesConfig(_Strict):
    """Crystal properties the search steers its front towards (evopot.model.properties)."""

    weight: float = Field(
        1.0,
        ge=0,
        le=1e6,
        description="a front candidate's loss is multiplied by 1 + weight × mean((relative error / tolerance)²) "
        "over the reference properties (0: properties reported, not used)",
    )
    from_data: bool = Field(
        True,
        description="read a0, B, C11, C12 and the clamped-ion C44 from the training data's Elastic frames (the "
        "values given here take precedence); a crystal that is not Born-stable (relaxed C44 > 0, …) always counts "
        "as the worst",
    )
    a0: float | None = Field(None, gt=0, le=100, description="lattice constant (Å) of the cubic crystal")
    B: float | None = Field(None, gt=0, le=1e4, description="bulk modulus (GPa)")
    C11: float | None = Field(None, gt=0, le=1e4, description="elastic constant C11 (GPa)")
    C12: float | None = Field(None, ge=-1e4, le=1e4, description="elastic constant C12 (GPa)")
    C44: float | None = Field(None, gt=0, le=1e4, description="relaxed C44 (GPa): shear with the atoms relaxed")
    C44_unrelaxed: float | None = Field(
        None, gt=0, le=1e4, description="clamped-ion C44 (GPa): shear with the atoms not relaxed"
    )
    tolerance: dict[PropertyName, Annotated[float, Field(gt=0, le=10)]] = Field(
        {}, description="relative error that counts as one unit of penalty (default a0 0.01, the others 0.15)"
    )

    def given(self) -> dict[str, float]:
        """The reference values given in the config, by property name."""
        names = {"a0": "a0", "B": "B", "C11": "C11", "C12": "C12", "C44": "C44", "C44_unrelaxed": "C44 unrelaxed"}
        return {name: getattr(self, field) for field, name in names.items() if getattr(self, field) is not None}

    def tolerances(self) -> dict[str, float]:
        return {k.replace("_", " "): v for k, v in self.tolerance.items()}


class InteractionConfig(_Strict):
    """The interaction network's shape (``correction.model: interaction``)."""

    width: int = Field(32, ge=1, le=1024, description="features per atom and per message")
    rounds: int = Field(2, ge=1, le=10, description="rounds of messages (each reaches one cutoff further)")
    radial: int = Field(8, ge=1, le=128, description="Gaussians of the bond length each relation reads")
    channels: int = Field(
        8, ge=0, le=1024, description="message channels whose vector and tensor moments give the angular invariants"
    )

    @model_validator(mode="after")
    def _channels(self):
        if self.channels > self.width:
            raise ValueError(f"channels ({self.channels}) must not exceed width ({self.width})")
        return self


class CorrectionConfig(_Strict):
    """The residual network of ``evopot correct`` (command-line flags override these)."""

    member: int | None = Field(None, ge=0, description="front member to correct (default: the recommended one)")
    model: Literal["bpnn", "interaction"] = Field(
        "bpnn",
        description="bpnn: one MLP per species on the atom's descriptor (Behler–Parrinello); interaction: message "
        "passing on the neighbour graph from the same descriptor (evopot.neural.interaction)",
    )
    interaction: InteractionConfig = Field(InteractionConfig(), description="the interaction network's shape")
    ensemble: int = Field(4, ge=1, description="networks trained from different seeds; their spread is the uncertainty")
    hidden: list[int] = Field([32, 32], min_length=1, description="widths of the hidden layers of each species' MLP")
    activation: Literal["tanh", "silu", "softplus"] = Field(
        "silu", description="hidden-layer activation (silu measured best on Si; tanh is Behler's)"
    )
    cutoff: float | None = Field(
        None, gt=0, description="symmetry-function cutoff in Å (default: the formula's cutoff, at least 5 Å)"
    )
    angular_cutoff: float | None = Field(
        None, gt=0, description="cutoff of the angular functions in Å (default: the cutoff)"
    )
    radial_functions: int = Field(16, ge=2, description="radial Gaussians per neighbour species")
    angular_shells: int = Field(
        6, ge=0, description="neighbour shells with their own angular functions (0: Behler's G⁴ only)"
    )
    moment_channels: int = Field(
        4,
        ge=0,
        description="radial channels per species of the moment-tensor invariants (three- and four-body; 0: none)",
    )
    formula_inputs: bool = Field(
        True,
        description="give the network each formula term's energy per atom as one more input, so it need not learn the "
        "formula's shape",
    )
    epochs: int = Field(
        600, ge=1, description="epochs per network (the plateau schedule's early stopping may end sooner)"
    )
    batch_frames: int = Field(8, ge=1, description="frames per mini-batch")
    learning_rate: float = Field(2e-3, gt=0, description="Adam's initial step")
    schedule: Literal["plateau", "cosine"] = Field(
        "cosine",
        description="plateau: halve the step when the validation loss stalls and stop after `patience` epochs "
        "without a gain; cosine: decay the step to zero over all `epochs` (no early stop)",
    )
    patience: int = Field(
        100, ge=1, description="epochs without validation improvement before stopping (plateau schedule)"
    )
    loss: Literal["mae", "mse"] = Field(
        "mae", description="mean absolute (the reported errors; a few large errors weigh less) or mean squared errors"
    )
    force_weight: float = Field(1.0, ge=0, description="weight of the force term of the loss (eV/Å, squared for mse)")
    energy_weight: float = Field(
        0.1, ge=0, description="weight of the energy-per-atom term of the loss (eV, squared for mse)"
    )
    config_type_weights: dict[str, float] = Field(
        {},
        description="loss weight of the frames of each config_type named (the rest weigh 1), "
        "e.g. {Surface: 4}: in an absolute force error relaxed frames, whose forces are near zero, count for little",
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW's decoupled weight decay")
    ema: float = Field(
        0.995,
        ge=0,
        lt=1,
        description="decay of an exponential moving average of the weights, updated every step, that is validated and "
        "kept (0: the weights themselves)",
    )
    device: str = Field("auto", description="cpu, cuda, … (auto: CUDA when present)")

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value):
        if any(w < 1 for w in value):
            raise ValueError(f"layer widths must be ≥ 1, got {value}")
        return value

    @field_validator("config_type_weights")
    @classmethod
    def _frame_weights(cls, value):
        negative = {k: w for k, w in value.items() if not w >= 0}
        if negative:
            raise ValueError(f"weights must be ≥ 0 (0 leaves a config type out of the loss), got {negative}")
        return value

    @model_validator(mode="after")
    def _cutoffs(self):
        if self.angular_cutoff is not None and self.cutoff is not None and self.angular_cutoff > self.cutoff:
            raise ValueError(f"angular_cutoff ({self.angular_cutoff} Å) must not exceed cutoff ({self.cutoff} Å)")
        if self.force_weight == 0 and self.energy_weight == 0:
            raise ValueError("force_weight and energy_weight are both 0; give at least one a positive weight")
        return self


class SearchConfig(_Strict):
    """A whole experiment: ``evopot search`` reproduces it from this and the seed."""

    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seeds the split, the search and every random choice: same seed, same front"
    )
    output: Path = Field(Path("runs/evopot"), description="the run directory to write")
    species: list[str] | None = Field(
        None, description="element symbols the potential describes, in this order (default: those in the data)"
    )
    data: DataConfig = DataConfig()
    cutoff: CutoffConfig
    search_space: str = Field("pair", description="a shipped search space's name (search_spaces/NAME.yaml) or a path")
    engine: EngineConfig = EngineConfig()
    fitness: FitnessConfig = FitnessConfig()
    reference_energies: dict[str, Annotated[float, Field(ge=-1e6, le=1e6)]] | None = Field(
        None,
        description="energy (eV) of each species' isolated atom from the same DFT settings as the data: the fit "
        "then sees cohesive energies, and the potential's reference energies are these (default: fitted freely, "
        "and they may absorb the cohesion)",
    )
    properties: PropertiesConfig | None = Field(
        None,
        description="crystal properties the front is steered towards (default: those of the training data's "
        "Elastic frames, for one-element data that have them; properties: {weight: 0} turns this off)",
    )
    correction: CorrectionConfig | None = None

    @field_validator("reference_energies")
    @classmethod
    def _reference_elements(cls, value):
        from ase.data import chemical_symbols

        unknown = [s for s in value or {} if s not in chemical_symbols[1:]]
        if unknown:
            raise ValueError(f"{unknown} are not element symbols")
        return value

    @field_validator("species")
    @classmethod
    def _elements(cls, value):
        from ase.data import chemical_symbols

        if value is not None:
            unknown = [s for s in value if s not in chemical_symbols[1:]]
            if unknown:
                raise ValueError(f"{unknown} are not element symbols")
            if not value:
                raise ValueError("give at least one species, or leave the field out to take them from the data")
        return value

    def resolved(self, folder: Path) -> SearchConfig:
        """A copy with relative paths made absolute against ``folder``."""

        def absolute(p):
            return absolute_path(p, folder)

        data = self.data.model_copy(
            update={
                "train": absolute(self.data.train),
                "validation": absolute(self.data.validation),
                "test": absolute(self.data.test),
            }
        )
        engine = self.engine.model_copy(update={"scheduler_file": absolute(self.engine.scheduler_file)})
        return self.model_copy(update={"data": data, "output": absolute(self.output), "engine": engine})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def absolute_path(path: Path | None, folder: Path) -> Path | None:
    """``path`` read from ``folder`` (a config file's) when it is relative."""
    return None if path is None else (path if path.is_absolute() else (folder / path).resolve())


def load_config(path: str | Path, overrides: dict | None = None) -> SearchConfig:
    """Read, validate and resolve a search config. ``overrides`` maps dotted field
    names (``"engine.generations"``) to values given on the command line."""
    path = Path(path)
    data = read_mapping(
        path, "config file not found", "a config must be a mapping of fields (data, cutoff, search_space, engine, …)"
    )
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise EvopotError(f"{path}: field '{key}' must be a mapping to take --{dotted.replace('.', '-')}")
        node[leaf] = value
    return validate(SearchConfig, data, path).resolved(path.resolve().parent)
