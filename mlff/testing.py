"""Physics checks every potential must pass, shared by the test suites of all model families.

Each ``assert_*`` function takes a :class:`mlff.Potential` (eager or scripted) and one or more
``ase.Atoms``, evaluates the potential in its own dtype, and raises ``AssertionError`` with the
measured error when a check fails. Tolerances depend on the dtype (:data:`TOLERANCES`).
Finite-difference checks need a float64 potential.

Conventions checked: Angstrom, eV, forces ``-dE/dr`` (n_atoms, 3), stress as in ASE,
``(1/V) dE/d(strain)`` (3, 3) eV/Angstrom^3, for any rigid motion ``r -> r R^T + t``: energy
unchanged, forces ``F R^T``, stress ``R sigma R^T``.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence

import ase
import numpy as np
import torch

from mlff.graph.atomic_graph import AtomicGraph, collate, from_atoms


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol + rtol * max|expected|``, element-wise maximum."""

    rtol: float
    atol: float


#: Agreement expected between two evaluations that are equal in exact arithmetic.
TOLERANCES: Dict[torch.dtype, Tolerance] = {
    torch.float32: Tolerance(rtol=1e-4, atol=1e-5),
    torch.float64: Tolerance(rtol=1e-10, atol=1e-11),
}

#: Step of central finite differences of positions (Angstrom) and of strain (dimensionless):
#: truncation error ~ step^2 (1e-10 relative), rounding error ~ 1e-16 |E| / step, both small.
FINITE_DIFFERENCE_STEP = 1e-5

#: Largest relative error of analytic against finite-difference derivatives (float64).
FINITE_DIFFERENCE_RTOL = 1e-6

#: Largest energy jump (eV) allowed as an atom crosses the cutoff.
CUTOFF_JUMP_TOLERANCE = 1e-6

#: Distance (Angstrom) either side of the cutoff at which the crossing atom is placed.
CUTOFF_CROSSING_OFFSET = 1e-7


def potential_dtype(potential: torch.nn.Module) -> torch.dtype:
    """The dtype a potential computes in (that of its ``scale`` buffer)."""
    return potential.scale.dtype


def graph_of(potential: torch.nn.Module, atoms: ase.Atoms) -> AtomicGraph:
    """Graph of ``atoms`` with edges at the potential's cutoff, in its dtype."""
    return from_atoms(atoms, cutoff=potential.cutoff, dtype=potential_dtype(potential))


def predict(
    potential: torch.nn.Module, atoms: ase.Atoms, compute_stress: bool = False
) -> Dict[str, np.ndarray]:
    """Energy (scalar, eV), node_energy (n,), forces (n, 3) and, if asked, stress and virial (3, 3)."""
    outputs = potential(graph_of(potential, atoms), compute_forces=True, compute_stress=compute_stress)
    result = {name: value.detach().cpu().numpy() for name, value in outputs.items()}
    result["energy"] = result["energy"][0]
    for name in ("stress", "virial"):
        if name in result:
            result[name] = result[name][0]
    return result


def _energy(potential: torch.nn.Module, atoms: ase.Atoms) -> float:
    graph = graph_of(potential, atoms)
    return float(potential(graph, compute_forces=False, compute_stress=False)["energy"][0].detach())


def assert_close(actual, expected, tolerance: Tolerance, what: str) -> None:
    """Raise AssertionError unless ``actual`` and ``expected`` agree within ``tolerance``."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != expected {expected.shape}")
    if not np.all(np.isfinite(actual)):
        raise AssertionError(f"{what}: non-finite values {actual}")
    error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    bound = tolerance.atol + tolerance.rtol * (float(np.max(np.abs(expected))) if expected.size else 0.0)
    if not error <= bound:
        raise AssertionError(f"{what}: max abs error {error:.3e} > {bound:.3e}")


def _tolerance(potential: torch.nn.Module, tolerance: Optional[Tolerance]) -> Tolerance:
    return TOLERANCES[potential_dtype(potential)] if tolerance is None else tolerance


def random_rotation(rng: np.random.Generator, proper: bool = True) -> np.ndarray:
    """A random orthogonal 3x3 matrix, with determinant +1 (``proper``) or -1 (a reflection)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def transformed(atoms: ase.Atoms, rotation: np.ndarray, translation: np.ndarray) -> ase.Atoms:
    """Copy of ``atoms`` moved rigidly: ``r -> r R^T + t`` and ``cell -> cell R^T``."""
    moved = atoms.copy()
    moved.set_cell(np.asarray(atoms.get_cell()) @ rotation.T, scale_atoms=False)
    moved.set_positions(atoms.get_positions() @ rotation.T + translation)
    return moved


def assert_rigid_motion_equivariant(
    potential: torch.nn.Module,
    atoms: ase.Atoms,
    rotation: np.ndarray,
    translation: np.ndarray,
    tolerance: Optional[Tolerance] = None,
    reference: Optional[Dict[str, np.ndarray]] = None,
) -> None:
    """Energy invariant, forces ``F R^T`` and stress ``R sigma R^T`` under ``r -> r R^T + t``.

    ``reference`` may hold the outputs of :func:`predict` for ``atoms`` (with stress if periodic).
    """
    tolerance = _tolerance(potential, tolerance)
    periodic = bool(atoms.pbc.any())
    if reference is None:
        reference = predict(potential, atoms, compute_stress=periodic)
    moved = predict(potential, transformed(atoms, rotation, translation), compute_stress=periodic)
    assert_close(moved["energy"], reference["energy"], tolerance, "energy after rigid motion")
    assert_close(moved["forces"], reference["forces"] @ rotation.T, tolerance, "forces after rigid motion")
    if periodic:
        expected = rotation @ reference["stress"] @ rotation.T
        assert_close(moved["stress"], expected, tolerance, "stress after rigid motion")


def assert_e3_equivariant(potential, atoms, seed: int = 0, tolerance: Optional[Tolerance] = None) -> None:
    """Rigid-motion checks for a random rotation and a random reflection, each with a random
    translation, from one reference evaluation (see :func:`assert_rigid_motion_equivariant`)."""
    rng = np.random.default_rng(seed)
    reference = predict(potential, atoms, compute_stress=bool(atoms.pbc.any()))
    for proper in (True, False):
        rotation = random_rotation(rng, proper=proper)
        translation = rng.normal(scale=3.0, size=3)
        assert_rigid_motion_equivariant(potential, atoms, rotation, translation, tolerance, reference)


def assert_rotation_equivariant(potential, atoms, seed: int = 0, tolerance: Optional[Tolerance] = None) -> None:
    """:func:`assert_rigid_motion_equivariant` for a random proper rotation about the origin."""
    rotation = random_rotation(np.random.default_rng(seed), proper=True)
    assert_rigid_motion_equivariant(potential, atoms, rotation, np.zeros(3), tolerance)


def assert_reflection_equivariant(potential, atoms, seed: int = 0, tolerance: Optional[Tolerance] = None) -> None:
    """:func:`assert_rigid_motion_equivariant` for a random improper rotation (E(3) models only)."""
    rotation = random_rotation(np.random.default_rng(seed), proper=False)
    assert_rigid_motion_equivariant(potential, atoms, rotation, np.zeros(3), tolerance)


def assert_translation_invariant(potential, atoms, seed: int = 0, tolerance: Optional[Tolerance] = None) -> None:
    """:func:`assert_rigid_motion_equivariant` for a random translation of a few Angstrom."""
    translation = np.random.default_rng(seed).normal(scale=3.0, size=3)
    assert_rigid_motion_equivariant(potential, atoms, np.eye(3), translation, tolerance)


def assert_permutation_equivariant(potential, atoms, seed: int = 0, tolerance: Optional[Tolerance] = None) -> None:
    """Energy invariant and per-atom outputs permuted when the atoms are reordered."""
    tolerance = _tolerance(potential, tolerance)
    order = np.random.default_rng(seed).permutation(len(atoms))
    reference = predict(potential, atoms)
    permuted = predict(potential, atoms[order])
    assert_close(permuted["energy"], reference["energy"], tolerance, "energy after permutation")
    assert_close(permuted["forces"], reference["forces"][order], tolerance, "forces after permutation")
    assert_close(permuted["node_energy"], reference["node_energy"][order], tolerance, "node energies after permutation")


def _require_float64(potential: torch.nn.Module, check: str) -> None:
    if potential_dtype(potential) != torch.float64:
        raise ValueError(f"{check} needs a float64 potential (call potential.double())")


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(actual - expected))) / scale


def assert_forces_match_finite_difference(
    potential: torch.nn.Module,
    atoms: ase.Atoms,
    step: float = FINITE_DIFFERENCE_STEP,
    rtol: float = FINITE_DIFFERENCE_RTOL,
    max_atoms: Optional[int] = None,
) -> None:
    """Forces equal minus the central-difference gradient of the energy (float64).

    The error is ``max|F - F_fd| / max|F_fd|``; ``max_atoms`` limits the check to the first atoms.
    """
    _require_float64(potential, "assert_forces_match_finite_difference")
    forces = predict(potential, atoms)["forces"]
    n_checked = len(atoms) if max_atoms is None else min(max_atoms, len(atoms))
    numerical = np.zeros((n_checked, 3))
    for atom in range(n_checked):
        for axis in range(3):
            energies = []
            for sign in (1.0, -1.0):
                displaced = atoms.copy()
                positions = displaced.get_positions()
                positions[atom, axis] += sign * step
                displaced.set_positions(positions)
                energies.append(_energy(potential, displaced))
            numerical[atom, axis] = -(energies[0] - energies[1]) / (2.0 * step)
    error = _relative_error(forces[:n_checked], numerical)
    if not error < rtol:
        raise AssertionError(f"forces differ from finite differences: relative error {error:.3e} >= {rtol:.1e}")


def strained(atoms: ase.Atoms, strain: np.ndarray) -> ase.Atoms:
    """Copy of ``atoms`` with positions and cell deformed by ``(I + strain)`` (rows are vectors)."""
    deformation = np.eye(3) + strain
    result = atoms.copy()
    result.set_cell(np.asarray(atoms.get_cell()) @ deformation, scale_atoms=False)
    result.set_positions(atoms.get_positions() @ deformation)
    return result


def assert_stress_matches_strain_derivative(
    potential: torch.nn.Module,
    atoms: ase.Atoms,
    step: float = FINITE_DIFFERENCE_STEP,
    rtol: float = FINITE_DIFFERENCE_RTOL,
) -> None:
    """Stress equals ``(1/V) dE/d(strain)`` by central differences of symmetric strains (float64)."""
    _require_float64(potential, "assert_stress_matches_strain_derivative")
    stress = predict(potential, atoms, compute_stress=True)["stress"]
    numerical = np.zeros((3, 3))
    for a in range(3):
        for b in range(a, 3):
            energies = []
            for sign in (1.0, -1.0):
                strain = np.zeros((3, 3))
                strain[a, b] += 0.5 * sign * step
                strain[b, a] += 0.5 * sign * step
                energies.append(_energy(potential, strained(atoms, strain)))
            numerical[a, b] = numerical[b, a] = (energies[0] - energies[1]) / (2.0 * step) / atoms.get_volume()
    error = _relative_error(stress, numerical)
    if not error < rtol:
        raise AssertionError(f"stress differs from the strain derivative: relative error {error:.3e} >= {rtol:.1e}")
    assert_close(stress, stress.T, TOLERANCES[torch.float64], "stress symmetry")


def assert_smooth_at_cutoff(
    potential: torch.nn.Module,
    atoms: ase.Atoms,
    atomic_number: int,
    offset: float = CUTOFF_CROSSING_OFFSET,
    tolerance: float = CUTOFF_JUMP_TOLERANCE,
) -> None:
    """Energy continuous as an added atom crosses the cutoff of the outermost atom of a molecule.

    The atom is placed on the line from the centroid through the outermost atom, at
    ``cutoff -+ offset`` from it (all other atoms are farther), and the two energies compared.
    """
    positions = atoms.get_positions()
    centroid = positions.mean(axis=0)
    outermost = int(np.argmax(np.linalg.norm(positions - centroid, axis=1)))
    direction = positions[outermost] - centroid
    norm = np.linalg.norm(direction)
    direction = np.array([1.0, 0.0, 0.0]) if norm == 0.0 else direction / norm
    energies = []
    for distance in (potential.cutoff - offset, potential.cutoff + offset):
        probe = ase.Atoms([atomic_number], positions=[positions[outermost] + distance * direction])
        energies.append(_energy(potential, atoms + probe))
    jump = abs(energies[0] - energies[1])
    if not jump < tolerance:
        raise AssertionError(f"energy jumps by {jump:.3e} eV as an atom crosses the cutoff (tolerance {tolerance:.1e})")


def assert_batch_matches_single(
    potential: torch.nn.Module, systems: Sequence[ase.Atoms], tolerance: Optional[Tolerance] = None
) -> None:
    """One batched evaluation equals evaluations one system at a time.

    Compares energies, per-atom energies, forces, virials and stresses; systems may mix open and
    periodic boundary conditions.
    """
    tolerance = _tolerance(potential, tolerance)
    batched = potential(collate([graph_of(potential, atoms) for atoms in systems]), compute_stress=True)
    singles = [predict(potential, atoms, compute_stress=True) for atoms in systems]
    for name in ("energy", "node_energy", "forces", "virial", "stress"):
        expected = [single[name] for single in singles]
        expected = np.stack(expected) if name in ("energy", "virial", "stress") else np.concatenate(expected)
        assert_close(batched[name].detach().numpy(), expected, tolerance, f"batched {name}")


def assert_scripted_matches_eager(
    potential: torch.nn.Module,
    systems: Sequence[ase.Atoms],
    tolerance: Optional[Tolerance] = None,
    scripted: Optional[torch.jit.ScriptModule] = None,
) -> torch.jit.ScriptModule:
    """``torch.jit.script(potential)`` gives the eager outputs on a batch of ``systems``.

    Energies must be bitwise equal. Derivatives (forces, virial, stress) must agree to
    ``tolerance`` (default: :data:`TOLERANCES` of the dtype): after its profiling run,
    TorchScript differentiates some subgraphs with its own gradient formulas, which changes the
    order of floating-point operations (differences of a few ulps). Pass ``scripted`` to reuse a
    scripted potential (scripting takes seconds). Returns the scripted potential.
    """
    tolerance = _tolerance(potential, tolerance)
    if scripted is None:
        scripted = torch.jit.script(potential)
    graph = collate([graph_of(potential, atoms) for atoms in systems])
    for call in range(2):  # the first call profiles; the second runs TorchScript's optimised graph
        eager = potential(graph, compute_stress=True)
        script = scripted(graph, compute_stress=True)
        if sorted(eager) != sorted(script):
            raise AssertionError(f"scripted outputs {sorted(script)} != eager outputs {sorted(eager)}")
        for name in eager:
            if name in ("energy", "node_energy"):
                if not torch.equal(eager[name], script[name]):
                    error = float((eager[name] - script[name]).abs().max())
                    raise AssertionError(f"call {call}: scripted {name} differs from eager by {error:.3e}")
            else:
                assert_close(
                    script[name].detach().numpy(), eager[name].detach().numpy(), tolerance, f"call {call}: scripted {name}"
                )
    return scripted


def assert_small_cell_matches_supercell(
    potential: torch.nn.Module,
    atoms: ase.Atoms,
    repeat: Sequence[int] = (2, 2, 2),
    tolerance: Optional[Tolerance] = None,
) -> None:
    """A periodic cell (possibly much smaller than the cutoff) and its supercell agree per atom.

    Energy per atom, forces (tiled) and stress must be equal.
    """
    tolerance = _tolerance(potential, tolerance)
    small = predict(potential, atoms, compute_stress=True)
    large_atoms = atoms.repeat(tuple(repeat))
    large = predict(potential, large_atoms, compute_stress=True)
    copies = int(np.prod(repeat))
    assert_close(large["energy"] / copies, small["energy"], tolerance, "supercell energy per cell")
    assert_close(large["forces"], np.tile(small["forces"], (copies, 1)), tolerance, "supercell forces")
    assert_close(large["stress"], small["stress"], tolerance, "supercell stress")


def assert_edges_beyond_cutoff_ignored(
    potential: torch.nn.Module, atoms: ase.Atoms, skin: float = 1.0, tolerance: Optional[Tolerance] = None
) -> None:
    """Edges listed beyond the cutoff (a Verlet list with a skin) change nothing.

    Compares a graph built at ``cutoff + skin`` (Angstrom) with one built at the cutoff.
    """
    tolerance = _tolerance(potential, tolerance)
    dtype = potential_dtype(potential)
    periodic = bool(atoms.pbc.all())
    exact = potential(from_atoms(atoms, potential.cutoff, dtype), compute_stress=periodic)
    padded = potential(from_atoms(atoms, potential.cutoff + skin, dtype), compute_stress=periodic)
    for name in exact:
        assert_close(padded[name].detach().numpy(), exact[name].detach().numpy(), tolerance, f"{name} with a skin")


def assert_isolated_atom_energy(potential: torch.nn.Module, atomic_number: int, expected: float) -> None:
    """An atom alone (no neighbour within the cutoff) has energy exactly ``expected`` (its E0).

    Checked four ways, all bitwise: a lone atom without cell, a lone atom in a periodic cell
    larger than twice the cutoff, the per-atom energy of an atom far from a pair of atoms in the
    same system, and an atom whose only edges (from a list with a skin) lie beyond the cutoff.
    """
    dtype = potential_dtype(potential)
    target = torch.tensor(expected, dtype=dtype)
    box = 2.0 * potential.cutoff + 1.0
    lone = ase.Atoms([atomic_number], positions=[[0.0, 0.0, 0.0]])
    boxed = ase.Atoms([atomic_number], positions=[[0.5, 0.5, 0.5]], cell=np.eye(3) * box, pbc=True)
    far = ase.Atoms(
        [atomic_number, atomic_number, atomic_number],
        positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0 + 2.0 * potential.cutoff]],
    )
    # edges listed beyond the cutoff (as in a Verlet list with a skin) must change nothing
    skinned = ase.Atoms([atomic_number, atomic_number], positions=[[0.0, 0.0, 0.0], [0.0, 0.0, potential.cutoff + 0.5]])
    skinned_graph = from_atoms(skinned, potential.cutoff + 1.0, dtype)
    checks: List = [
        ("a lone atom", potential(graph_of(potential, lone))["energy"][0]),
        ("a lone atom in a periodic box", potential(graph_of(potential, boxed))["energy"][0]),
        ("an atom far from the others", potential(graph_of(potential, far))["node_energy"][2]),
        ("an atom whose only edges lie beyond the cutoff", potential(skinned_graph)["node_energy"][0]),
    ]
    for label, value in checks:
        if not torch.equal(value.detach(), target):
            raise AssertionError(f"energy of {label} is {float(value):.17g}, expected exactly {expected:.17g}")
    forces = potential(graph_of(potential, lone))["forces"]
    if not torch.equal(forces, torch.zeros_like(forces)):
        raise AssertionError(f"a lone atom has nonzero force {forces.tolist()}")
