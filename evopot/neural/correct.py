"""``evopot correct RUN``: train the residual network of a run's front member and save
the hybrid beside the run, with its errors next to the formula's on every split.

The data and splits are the run's own (its resolved config and seed); settings come
from the config's ``correction:`` section, overridden by command-line flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evopot.config.schema import CorrectionConfig, SearchConfig, load_config
from evopot.config.yamlfile import validate
from evopot.data.dataset import Frames
from evopot.errors import EvopotError
from evopot.model.potential import Potential
from evopot.neural.descriptors import SymmetryFunctions
from evopot.neural.formula_inputs import FormulaInputs
from evopot.neural.hybrid import Hybrid, formula_only, predict, save_hybrid
from evopot.neural.residual import ResidualData, TrainingSettings, residual_data, train_correction
from evopot.search.rundir import RunDirectory, member_potential


@dataclass(frozen=True)
class CorrectionResult:
    """Where the hybrid went, its errors per split (formula and hybrid: force MAE eV/Å,
    energy MAE meV/atom), the correction's share and the training time (s)."""

    path: Path
    member: int
    errors: dict
    share: dict
    seconds: float
    hybrid: Hybrid

    def table(self) -> str:
        lines = [
            f"{'split':<11} {'formula F-MAE':>14} {'hybrid F-MAE':>13} {'formula E-MAE':>14} "
            f"{'hybrid E-MAE':>13}   (eV/Å, meV/atom)"
        ]
        for split, e in self.errors.items():
            lines.append(
                f"{split:<11} {e['formula']['force_mae']:14.4f} {e['hybrid']['force_mae']:13.4f} "
                f"{e['formula']['energy_mae']:14.2f} {e['hybrid']['energy_mae']:13.2f}"
            )
        return "\n".join(lines)


def settings_for(run: RunDirectory, overrides: dict | None = None) -> tuple[SearchConfig, CorrectionConfig]:
    """The run's config and its correction settings with ``overrides`` (field → value,
    None values ignored) applied and validated."""
    config = load_config(run.config)
    base = (config.correction or CorrectionConfig()).model_dump()
    base.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return config, validate(CorrectionConfig, base, run.config)


def symmetry_functions(potential: Potential, settings: CorrectionConfig) -> SymmetryFunctions:
    """The symmetry functions of a correction of ``potential``: to ``correction.cutoff``,
    by default the formula's reach and at least 5 Å."""
    cutoff = settings.cutoff or max(5.0, potential.reach)
    if settings.angular_cutoff is not None and settings.angular_cutoff > cutoff:
        raise EvopotError(f"correction.angular_cutoff ({settings.angular_cutoff} Å) exceeds the cutoff ({cutoff} Å)")
    return SymmetryFunctions.default(
        potential.species,
        cutoff,
        settings.angular_cutoff,
        settings.radial_functions,
        settings.angular_shells,
        settings.moment_channels,
    )


def descriptor_for(potential: Potential, settings: CorrectionConfig) -> SymmetryFunctions | FormulaInputs:
    """What the correction's network reads: the symmetry functions, followed by the
    formula's per-atom term energies unless ``correction.formula_inputs`` is off."""
    symmetry = symmetry_functions(potential, settings)
    if not settings.formula_inputs or not potential.terms:
        return symmetry
    return FormulaInputs(symmetry, formula_only(potential))


def errors(prediction, frames: Frames) -> dict:
    """Force MAE (eV/Å) and energy-per-atom MAE (meV/atom) of a prediction on ``frames``."""
    counts = np.array([len(a) for a in frames.atoms])
    return {
        "force_mae": float(np.mean(np.abs(prediction.forces - np.concatenate(frames.forces)))),
        "energy_mae": float(np.mean(np.abs(prediction.energies - frames.energies) / counts) * 1000),
    }


def frame_weights(config_types: list[str], weights: dict[str, float] | None) -> np.ndarray | None:
    """The weight in the loss of frames of these ``config_types``: each one's in
    ``weights`` (``correction.config_type_weights``), 1 for the rest; None when
    there are no ``weights``."""
    if not weights:
        return None
    return np.array([weights.get(t, 1.0) for t in config_types], dtype=float)


def check_frame_weights(weights: dict[str, float], train: Frames, validation: Frames) -> None:
    """``correction.config_type_weights`` must name config types the training frames
    have and leave some training and some validation frames a weight."""
    if not weights:
        return
    present = sorted(set(train.config_types))
    unknown = sorted(set(weights) - set(present))
    if unknown:
        raise EvopotError(
            f"correction.config_type_weights names {unknown}, which no training frame has; the training frames' "
            f"config types are {present} (a frame's config_type is its extxyz info entry)"
        )
    for name, frames in (("training", train), ("validation", validation)):
        if not frame_weights(frames.config_types, weights).any():
            raise EvopotError(
                f"correction.config_type_weights gives every {name} frame weight 0 ({weights}); leave some of "
                f"{sorted(set(frames.config_types))} a positive weight"
            )


def residual_for(
    potential: Potential | None,
    frames: Frames,
    descriptor: SymmetryFunctions | FormulaInputs,
    device="cpu",
    weights: dict[str, float] | None = None,
) -> ResidualData:
    """The network's inputs on ``frames`` with DFT minus ``potential`` (or the DFT labels
    themselves when ``potential`` is None) as targets, each frame weighted by its
    config type's entry in ``weights``."""
    from evopot.model.evaluate import evaluate, potential_geometry

    energies, forces = frames.energies.copy(), np.concatenate(frames.forces)
    if potential is not None:
        formula = evaluate(potential, potential_geometry(potential, frames))
        energies, forces = energies - formula.energies, forces - formula.forces
    return residual_data(
        frames, descriptor, energies, forces, device, frame_weights=frame_weights(frames.config_types, weights)
    )


def training_settings(settings: CorrectionConfig, seed: int) -> TrainingSettings:
    """How :func:`evopot.neural.residual.train_correction` learns, from a ``correction:`` section."""
    return TrainingSettings(
        settings.ensemble,
        tuple(settings.hidden),
        settings.activation,
        settings.epochs,
        settings.batch_frames,
        settings.learning_rate,
        settings.patience,
        settings.force_weight,
        settings.energy_weight,
        seed,
        settings.weight_decay,
        settings.loss,
        settings.schedule,
        settings.ema,
        settings.interaction.model_dump() if settings.model == "interaction" else None,
    )


def train_hybrid(
    potential: Potential | None,
    splits: dict[str, Frames],
    settings: CorrectionConfig,
    descriptor: SymmetryFunctions | FormulaInputs,
    seed: int,
    progress: bool = True,
):
    """Train a correction on DFT minus ``potential`` (or on the DFT labels themselves when
    ``potential`` is None: the network alone) for the ``train`` split, stopping on
    ``validation``. Returns (correction, training log)."""
    from evopot.devices import resolve_device

    device = resolve_device(settings.device)
    check_frame_weights(settings.config_type_weights, splits["train"], splits["validation"])
    train, validation = (
        residual_for(potential, splits[s], descriptor, device, settings.config_type_weights)
        for s in ("train", "validation")
    )
    return train_correction(descriptor, train, validation, training_settings(settings, seed), progress)


def energy_share(prediction, potential: Potential, frames: Frames) -> dict:
    """How big the correction is next to the formula on ``frames``: RMS per-atom energy
    (eV/atom; the formula's without its reference energies) and RMS force component
    (eV/Å) of each, and their ratios."""
    counts = np.array([len(a) for a in frames.atoms])
    reference = np.array(
        [sum(potential.reference_energies.get(s, 0.0) for s in a.get_chemical_symbols()) for a in frames.atoms]
    )
    formula_energy = np.sqrt(np.mean(((prediction.formula.energies - reference) / counts) ** 2))
    correction_energy = np.sqrt(np.mean((prediction.correction_energies / counts) ** 2))
    formula_force = np.sqrt(np.mean(prediction.formula.forces**2))
    correction_force = np.sqrt(np.mean((prediction.forces - prediction.formula.forces) ** 2))
    return {
        "formula_energy_rms": float(formula_energy),
        "correction_energy_rms": float(correction_energy),
        "energy_share": float(correction_energy / max(formula_energy, 1e-12)),
        "formula_force_rms": float(formula_force),
        "correction_force_rms": float(correction_force),
        "force_share": float(correction_force / max(formula_force, 1e-12)),
    }


def hybrid_path(run_path: str | Path, member: int | None = None, output: str | Path | None = None) -> tuple[int, Path]:
    """(member number, JSON path) of the hybrid ``evopot correct`` writes for ``member``
    (default: the config's correction.member, else the recommended member)."""
    run = RunDirectory(Path(run_path))
    if not run.config.is_file():
        raise EvopotError(f"{run.path}: no config.yaml; is this a run directory written by evopot search?")
    if member is None:
        member = settings_for(run)[1].member
    number, _ = member_potential(run.path, member)
    path = Path(output) if output is not None else run.path / "corrections" / f"member_{number:03d}" / "hybrid.json"
    return number, (path if path.suffix == ".json" else path / "hybrid.json")


def correct_run(
    run_path: str | Path,
    member: int | None = None,
    overrides: dict | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> CorrectionResult:
    """Train and save the hybrid of ``member`` (default: the config's, else the
    recommended one) of the run at ``run_path``; ``output`` defaults to
    RUN/corrections/member_K/hybrid.json."""
    run = RunDirectory(Path(run_path))
    number, path = hybrid_path(run.path, member, output)
    config, settings = settings_for(run, overrides)
    _, potential = member_potential(run.path, number)
    if path.exists() and not overwrite:
        raise EvopotError(f"{path} exists; pass --overwrite to train it again, or --output for another place")
    return correct_potential(potential, config, settings, path, {"run": str(run.path), "member": number}, progress)


def correct_potential(
    potential: Potential,
    config: SearchConfig,
    settings: CorrectionConfig,
    path: Path,
    about: dict | None = None,
    progress: bool = True,
) -> CorrectionResult:
    """Train the correction of ``potential`` on the data and splits of ``config`` with
    ``settings`` and save the hybrid at ``path``; ``about`` (the run and member it came
    from) is kept in the correction's info."""
    from evopot.data.dataset import dataset_from_config

    dataset = dataset_from_config(config, str(path))
    descriptor = descriptor_for(potential, settings)
    correction, log = train_hybrid(potential, dataset.splits(), settings, descriptor, config.seed, progress)
    hybrid = Hybrid(potential, correction.to("cpu"))
    table, share, threshold = {}, {}, None
    for split, frames in dataset.splits().items():
        prediction = predict(hybrid, frames)
        table[split] = {"formula": errors(prediction.formula, frames), "hybrid": errors(prediction, frames)}
        if split == "train":
            share = energy_share(prediction, potential, frames)
        if split == "validation" and len(correction.networks) > 1:
            threshold = float(np.percentile(frame_uncertainty(prediction, frames), 95))
    correction.info = {
        **(about or {}),
        "errors": table,
        "share": share,
        "training": {"seconds": log.seconds, "networks": log.networks},
        "uncertainty_threshold": threshold,
    }
    save_hybrid(potential, correction, path)
    return CorrectionResult(path, (about or {}).get("member", 0), table, share, log.seconds, hybrid)


def flag_uncertain(
    model: Hybrid, frames: Frames, threshold: float | None = None
) -> tuple[float, list[tuple[int, str, float]]]:
    """Frames whose largest per-atom force uncertainty (eV/Å) exceeds ``threshold``
    (default: the 95th percentile on the validation split, recorded at training):
    (threshold, [(frame index, config_type, uncertainty), …])."""
    if len(model.correction.networks) < 2:
        raise EvopotError("the uncertainty needs an ensemble of at least 2 networks; train with --ensemble 2 or more")
    if threshold is None:
        threshold = model.correction.info.get("uncertainty_threshold")
        if threshold is None:
            raise EvopotError("no uncertainty threshold recorded with this correction; give --threshold in eV/Å")
    per_frame = frame_uncertainty(predict(model, frames), frames)
    flagged = [(k, frames.config_types[k], float(u)) for k, u in enumerate(per_frame) if u > threshold]
    return float(threshold), flagged


def frame_uncertainty(prediction, frames: Frames) -> np.ndarray:
    """The largest per-atom force uncertainty (eV/Å) of each frame, (n_frames,)."""
    return np.maximum.reduceat(prediction.uncertainty, np.cumsum([0] + [len(a) for a in frames.atoms[:-1]]))
