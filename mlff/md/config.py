"""The configuration of an MD run: YAML -> a validated, frozen :class:`MDConfig`.

Unknown keys, missing files and impossible values are errors that name the key. Relative paths
in the YAML file are relative to that file's directory; relative paths given as command-line
overrides (``key=value``, dotted for nested keys: ``structure.water_box=8``) are relative to the
current directory.
"""

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from mlff import config_yaml
from mlff.md.structures import known_molecule

ENGINES = ("openmm", "ase")
ENSEMBLES = ("nve", "nvt", "npt")
BACKENDS = ("python", "torch")
PLATFORMS = ("Reference", "CPU", "CUDA", "OpenCL")
ML_ATOMS = ("all", "solute")
SOLUTE_CHARGES = ("resp", "zero")
STRUCTURES = ("file", "molecule", "water_box", "solvated")
#: Energy minimisation (``minimize_iterations``) stops at this force, eV/Angstrom (about
#: OpenMM's default of 10 kJ/mol/nm): OpenMM's L-BFGS on the root-mean-square force component,
#: ASE's FIRE on the largest force.
MINIMIZE_TOLERANCE_EV_PER_A = 0.01
#: Keys whose default is None but whose value is a number.
_INTEGERS = ("structure.water_box",)
_FLOATS = ("structure.padding_nm", "structure.box_nm")
TRAJECTORY_EXTENSIONS = (".dcd", ".xyz", ".extxyz")


@dataclass(frozen=True)
class StructureConfig:
    """Exactly one of: a file ASE can read, a molecule name (``ase.build.molecule``), a water box,
    a molecule solvated in TIP3P water.

    ``file`` keeps its cell and pbc; ``molecule`` is gas phase (no cell); ``water_box`` is N
    water molecules at 1 g/cm^3 in a periodic cube, oriented at random from ``seed``;
    ``solvated`` names a molecule put in a cube of TIP3P water (``mlff.md.solvation``) whose edge
    is its bounding sphere's diameter plus ``padding_nm`` (nm), or ``box_nm``.
    """

    file: Optional[str] = None
    molecule: Optional[str] = None
    water_box: Optional[int] = None
    solvated: Optional[str] = None
    padding_nm: Optional[float] = None
    box_nm: Optional[float] = None


@dataclass(frozen=True)
class OutputsConfig:
    """Output files (None: not written). The trajectory format follows the extension."""

    trajectory: Optional[str] = "trajectory.xyz"
    csv: Optional[str] = "energies.csv"
    plot: Optional[str] = "energies.png"
    last_frame: str = "last_good_frame.xyz"


@dataclass(frozen=True)
class MDConfig:
    """One MD run. Units: K, bar, fs, 1/ps, eV per atom, nm.

    ``ml_atoms``: ``"all"`` (the potential on every atom; the default for all but solvated
    structures) or ``"solute"`` (openmm only: the potential on the solute of a ``solvated``
    structure, TIP3P water, mechanical embedding with PME up to ``mm_cutoff_nm``).
    ``solute_charges``: with ``ml_atoms: solute``, the solute's classical charges, which the
    water sees: ``"resp"`` (fitted to its Hartree-Fock/6-31G* electrostatic potential, AMBER's
    recipe; :mod:`mlff.md.solute_charges`) or ``"zero"`` (Lennard-Jones only).
    ``minimize_iterations``: energy minimisation before the run (0: none).
    """

    potential: str
    structure: StructureConfig
    engine: str = "openmm"
    ensemble: str = "nvt"
    temperature_K: float = 300.0
    pressure_bar: float = 1.0
    timestep_fs: float = 0.5
    steps: int = 1000
    report_interval: int = 100
    friction_per_ps: float = 1.0
    barostat_interval: int = 25
    seed: int = 0
    backend: str = "python"
    platform: str = "CPU"
    device: str = "cpu"
    skin: float = 1.0
    max_energy_change_per_atom_eV: float = 1.0
    ml_atoms: Optional[str] = None
    mm_cutoff_nm: float = 0.9
    solute_charges: str = "resp"
    minimize_iterations: int = 0
    progress: bool = True
    outputs: OutputsConfig = field(default_factory=OutputsConfig)


_SECTIONS = {"structure": StructureConfig, "outputs": OutputsConfig}
_PATHS = {("potential",), ("structure", "file")} | {("outputs", f.name) for f in dataclasses.fields(OutputsConfig)}


def load_config(path: str, overrides: Sequence[str] = ()) -> MDConfig:
    """Read, override and validate an MD configuration.

    Parameters
    ----------
    path : str
        YAML file.
    overrides : sequence of str
        ``key=value`` items; values are parsed as YAML (``steps=10``, ``outputs.plot=null``).

    Raises
    ------
    FileNotFoundError
        The YAML file, the potential or the structure file does not exist.
    ValueError
        Unknown keys, wrong types, impossible values or a malformed override.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no MD configuration file {path}")
    with open(path) as handle:
        raw = config_yaml.load(handle) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the top level must be a mapping of keys to values")
    base = os.path.dirname(os.path.abspath(path))
    raw = _resolve_paths(raw, base)
    for item in overrides:
        key, value = _parse_override(item)
        target = raw
        for part in key[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"override {item!r}: {'.'.join(key[:-1])} is not a section")
        if key in _PATHS and isinstance(value, str):
            value = os.path.abspath(value)
        target[key[-1]] = value
    return _build(raw, path)


def _parse_override(item: str):
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key=value (e.g. steps=100)")
    key, text = item.split("=", 1)
    if not key:
        raise ValueError(f"override {item!r} has no key")
    return tuple(key.strip().split(".")), config_yaml.load(text)


def _resolve_paths(raw: Dict[str, Any], base: str) -> Dict[str, Any]:
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key in _PATHS:
        section = raw if len(key) == 1 else raw.get(key[0])
        if isinstance(section, dict) and isinstance(section.get(key[-1]), str):
            section[key[-1]] = os.path.normpath(os.path.join(base, os.path.expanduser(section[key[-1]])))
    return raw


def _typed(cls, values: Any, where: str):
    """Instantiate dataclass ``cls`` from a mapping, checking keys and scalar types."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        prefix = f"{where}." if where != "config" else ""
        if name in _SECTIONS:
            kwargs[name] = _typed(_SECTIONS[name], value, f"{prefix}{name}")
            continue
        default = fields[name].default
        kwargs[name] = _check_type(f"{prefix}{name}", value, default)
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in kwargs]
    if missing:
        raise ValueError(f"{where}: missing required key(s) {missing}")
    return cls(**kwargs)


def _check_type(name: str, value: Any, default: Any) -> Any:
    if value is None:
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif isinstance(default, int) or name in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    elif isinstance(default, float) or name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        value = float(value)
    elif not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _build(raw: Dict[str, Any], path: str) -> MDConfig:
    config = _typed(MDConfig, raw, "config")

    def fail(message: str):
        raise ValueError(f"{path}: {message}")

    def choice(name: str, value: str, allowed):
        if value not in allowed:
            fail(f"{name} must be one of {list(allowed)}, got {value!r}")

    choice("engine", config.engine, ENGINES)
    choice("ensemble", config.ensemble, ENSEMBLES)
    choice("backend", config.backend, BACKENDS)
    choice("platform", config.platform, PLATFORMS)
    for name in ("timestep_fs", "temperature_K", "pressure_bar", "max_energy_change_per_atom_eV", "mm_cutoff_nm"):
        if getattr(config, name) is None or not getattr(config, name) > 0:
            fail(f"{name} must be positive, got {getattr(config, name)!r}")
    for name in ("steps", "report_interval", "barostat_interval"):
        if getattr(config, name) is None or getattr(config, name) < 1:
            fail(f"{name} must be a positive integer, got {getattr(config, name)!r}")
    if config.ensemble == "nvt" and not (config.friction_per_ps or 0) > 0:
        fail(f"friction_per_ps must be positive for NVT, got {config.friction_per_ps!r}")
    if config.skin is None or config.skin < 0:
        fail(f"skin must be >= 0 (Angstrom), got {config.skin!r}")
    if config.seed is None:
        fail("seed must be an integer")
    if config.minimize_iterations is None or config.minimize_iterations < 0:
        fail(f"minimize_iterations must be an integer >= 0, got {config.minimize_iterations!r}")
    if config.potential is None:
        fail("potential must name a deployed potential file")
    if not os.path.isfile(config.potential):
        raise FileNotFoundError(
            f"{path}: potential file {config.potential} does not exist (deploy one with `mlff deploy`, "
            "or override it: potential=PATH)"
        )

    structure = config.structure
    given = [n for n in STRUCTURES if getattr(structure, n) is not None]
    if len(given) != 1:
        fail(f"structure needs exactly one of {', '.join(STRUCTURES)}; got {given or 'none'}")
    if structure.file is not None and not os.path.isfile(structure.file):
        raise FileNotFoundError(f"{path}: structure file {structure.file} does not exist")
    if structure.water_box is not None and structure.water_box < 1:
        fail(f"structure.water_box must be a positive number of molecules, got {structure.water_box}")
    for key in ("molecule", "solvated"):
        name = getattr(structure, key)
        if name is not None and not known_molecule(name):
            fail(f"structure.{key} {name!r} is not a molecule ase.build.molecule knows (e.g. ethanol, CH3CH2OH, H2O)")
    _check_solvated(config, fail)

    trajectory = config.outputs.trajectory
    if trajectory is not None and os.path.splitext(trajectory)[1].lower() not in TRAJECTORY_EXTENSIONS:
        fail(f"outputs.trajectory must end in one of {list(TRAJECTORY_EXTENSIONS)}, got {trajectory}")
    if config.outputs.last_frame is None:
        fail("outputs.last_frame must name a file")
    return config


def _check_solvated(config: MDConfig, fail) -> None:
    """The keys of a solvated structure and of ML on its solute only, consistent."""
    structure = config.structure
    sizes = [n for n in ("padding_nm", "box_nm") if getattr(structure, n) is not None]
    if structure.solvated is None:
        if sizes:
            fail(f"structure.{sizes[0]} sizes the water box of structure.solvated; drop it or solvate a molecule")
    else:
        if len(sizes) != 1:
            fail(f"structure.solvated needs exactly one of padding_nm, box_nm (nm); got {sizes or 'none'}")
        size = getattr(structure, sizes[0])
        if not size > 0:
            fail(f"structure.{sizes[0]} must be positive (nm), got {size!r}")
        if config.ml_atoms is None:
            fail("structure.solvated needs ml_atoms: solute (the potential on the molecule, TIP3P water) "
                 "or ml_atoms: all (the potential on every atom, water included)")
    if config.ml_atoms is not None and config.ml_atoms not in ML_ATOMS:
        fail(f"ml_atoms must be one of {list(ML_ATOMS)}, got {config.ml_atoms!r}")
    if config.solute_charges not in SOLUTE_CHARGES:
        fail(f"solute_charges must be one of {list(SOLUTE_CHARGES)}, got {config.solute_charges!r}")
    if config.ml_atoms == "solute":
        if structure.solvated is None:
            fail("ml_atoms: solute needs structure.solvated (a molecule in TIP3P water, e.g. "
                 "{solvated: ethanol, padding_nm: 1.2}); use ml_atoms: all otherwise")
        if config.engine != "openmm":
            fail("ml_atoms: solute needs engine: openmm (the ase engine has no force field for the water)")
        if structure.box_nm is not None and structure.box_nm < 2 * config.mm_cutoff_nm:
            fail(f"structure.box_nm ({structure.box_nm} nm) must be at least twice mm_cutoff_nm "
                 f"({config.mm_cutoff_nm} nm) for PME")
