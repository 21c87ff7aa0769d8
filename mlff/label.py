"""Labelling: reference energies, forces and stresses for training, from any ASE calculator.

``mlff train`` reads labelled configurations: an energy (eV) in ``atoms.info``, forces
(eV/Angstrom, shape ``(n_atoms, 3)``) in ``atoms.arrays`` and, for 3D-periodic cells, a stress
(eV/Angstrom^3, ASE's Voigt order ``xx yy zz yz xz xy``) in ``atoms.info``, under the names a
training config gives as ``data.energy_key`` / ``forces_key`` / ``stress_key`` (by default
``energy``, ``forces``, ``stress``). :func:`iter_labels` and :func:`label` compute them with any
ASE calculator; :func:`label_file` reads a structure file, labels it and writes extended XYZ
one structure at a time (a crash keeps what was done). :class:`PySCFCalculator` is a molecular
reference method (Hartree-Fock or Kohn-Sham DFT with analytic gradients) that needs only
``pip install pyscf``.

PySCF works in Hartree and Bohr; :class:`PySCFCalculator` converts at its boundary through
:data:`mlff.units.HARTREE_TO_EV` and :data:`mlff.units.BOHR_TO_ANGSTROM`.
"""

import os
import warnings
from typing import Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator, SCFError, all_changes

from mlff.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV

#: Hartree/Bohr -> eV/Angstrom.
_HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM = HARTREE_TO_EV / BOHR_TO_ANGSTROM


# --- labelling with any ASE calculator ---------------------------------------------------------


def iter_labels(
    structures: Iterable[Atoms],
    calculator: Calculator,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    stress: Optional[bool] = None,
    skip_failed: bool = False,
) -> Iterator[Atoms]:
    """Labelled copies of ``structures``, one at a time.

    Each copy keeps the input's ``info`` (``config_type`` and the like) and arrays, has no
    calculator attached, and carries ``info[energy_key]`` (eV), ``arrays[forces_key]``
    (``(n_atoms, 3)`` eV/Angstrom) and, where computed, ``info[stress_key]`` (``(6,)``
    eV/Angstrom^3, Voigt). Labels already there under those names are replaced.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Not modified.
    calculator : ase Calculator
        Any; it must implement ``energy`` and ``forces`` (and ``stress`` where asked for).
    stress : bool, optional
        None (default): a stress for structures periodic in all three directions when the
        calculator implements one. True: require it for those (error otherwise). False: never.
    skip_failed : bool
        Leave out structures whose calculation fails (ASE ``CalculationFailed``, e.g. an SCF that
        does not converge, or non-finite results), with one warning at the end; otherwise the
        first failure stops labelling.

    Raises
    ------
    ValueError
        For a calculator that cannot give the labels asked for.
    ase.calculators.calculator.CalculationFailed
        For a failed calculation (unless ``skip_failed``), naming the structure.
    """
    implemented = set(getattr(calculator, "implemented_properties", ()))
    missing = {"energy", "forces"} - implemented
    if missing:
        raise ValueError(f"{type(calculator).__name__} does not implement {sorted(missing)}; labels need energy and forces")
    if stress and "stress" not in implemented:
        raise ValueError(f"stress=True, but {type(calculator).__name__} does not implement stress")
    failures: List[str] = []
    count = 0
    for index, structure in enumerate(structures):
        count += 1
        periodic = bool(np.all(structure.pbc))
        want_stress = periodic and stress is not False and "stress" in implemented
        try:
            yield _labelled(structure, calculator, energy_key, forces_key, stress_key if want_stress else None)
        except ValueError as error:  # bad input for this calculator: say which structure
            raise ValueError(f"structure {index} ({structure.get_chemical_formula()}): {error}") from error
        except CalculationFailed as error:
            reason = f"structure {index} ({structure.get_chemical_formula()}): {error}"
            if not skip_failed:
                hint = "use skip_failed=True (mlff label --skip-failed) to leave such structures out"
                raise CalculationFailed(f"{reason}; {hint}") from error
            failures.append(reason)
    if failures:
        warnings.warn(f"labelling left out {len(failures)} of {count} structure(s) whose calculation failed; first: {failures[0]}")


def label(structures: Iterable[Atoms], calculator: Calculator, **options) -> List[Atoms]:
    """:func:`iter_labels` as a list (same parameters)."""
    return list(iter_labels(structures, calculator, **options))


def label_file(
    source: str,
    output: str,
    calculator: Calculator,
    index: Union[str, int] = ":",
    format: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    **options,
) -> int:
    """Label the structures of ``source`` and write them to ``output`` as extended XYZ.

    Parameters
    ----------
    source : str
        Any file ``ase.io.read`` understands (``format`` when it cannot guess).
    output : str
        Written (overwritten) as extended XYZ, one structure as soon as it is labelled.
    index : str or int
        Which structures of ``source`` (ASE syntax: ``":"`` all, ``"::10"``, ``"-1"``).
    progress : callable, optional
        Called as ``progress(done, total)`` after each structure is written.
    **options
        Passed to :func:`iter_labels` (keys, ``stress``, ``skip_failed``).

    Returns
    -------
    int
        Number of structures written.
    """
    import ase.io

    if not os.path.isfile(source):
        raise FileNotFoundError(f"structure file {source} does not exist")
    structures = ase.io.read(source, index, format=format)
    if isinstance(structures, Atoms):
        structures = [structures]
    if len(structures) == 0:
        raise ValueError(f"{source}: no structures to label")
    written = 0
    with open(output, "w") as handle:
        for atoms in iter_labels(structures, calculator, **options):
            ase.io.write(handle, atoms, format="extxyz")
            handle.flush()
            written += 1
            if progress is not None:
                progress(written, len(structures))
    return written


def _labelled(structure: Atoms, calculator: Calculator, energy_key: str, forces_key: str, stress_key: Optional[str]) -> Atoms:
    atoms = structure.copy()  # copies info and arrays, drops the calculator
    atoms.calc = calculator
    energy = float(atoms.get_potential_energy())
    forces = np.array(atoms.get_forces(), dtype=float)  # [n_atoms, 3] eV/Angstrom
    values = [energy, forces]
    if stress_key is not None:
        voigt = np.array(atoms.get_stress(voigt=True), dtype=float)  # [6] eV/Angstrom^3
        values.append(voigt)
    atoms.calc = None
    if not all(np.all(np.isfinite(value)) for value in values):
        raise CalculationFailed("the calculator returned NaN or inf")
    for key in (energy_key, forces_key, stress_key):
        atoms.info.pop(key, None)
        if key in atoms.arrays and key not in ("numbers", "positions"):
            del atoms.arrays[key]
    atoms.info[energy_key] = energy
    atoms.arrays[forces_key] = forces
    if stress_key is not None:
        atoms.info[stress_key] = values[2]
    return atoms


# --- PySCF as an ASE calculator -----------------------------------------------------------------


def _import_pyscf():
    try:
        import pyscf  # noqa: F401
        from pyscf import dft, gto, scf
    except ImportError as error:
        raise ImportError("PySCFCalculator needs PySCF, which is not installed: pip install pyscf") from error
    return gto, scf, dft


class PySCFCalculator(Calculator):
    """Molecular Hartree-Fock or Kohn-Sham DFT from PySCF, as an ASE calculator.

    Energy (eV) and forces (eV/Angstrom, ``(n_atoms, 3)``) from the SCF energy and PySCF's
    analytic nuclear gradient. Restricted (RHF/RKS) for ``spin=0``, unrestricted (UHF/UKS)
    otherwise. Molecules only: periodic structures are refused.

    Parameters
    ----------
    method : str
        ``"hf"`` for Hartree-Fock, or an exchange-correlation functional PySCF knows
        (``"pbe"``, ``"b3lyp"``, ``"pbe0"``, ``"wb97x"`` ...) for Kohn-Sham DFT.
    basis : str or mapping
        A basis PySCF knows (``"def2-svp"``, ``"6-31g*"``, ``"cc-pvdz"`` ...) or a mapping
        element -> basis.
    charge : int
        Total charge (elementary charges).
    spin : int
        ``2S = n_alpha - n_beta``, the number of unpaired electrons (PySCF's convention; not
        the multiplicity 2S+1).
    density_fit : bool
        Density fitting of the Coulomb (and exchange) integrals: faster for larger molecules,
        with errors of about 1e-5 Hartree.
    grid_level : int
        PySCF's DFT integration grid level (0-9; 3 is its default).
    grid_response : bool
        Include the moving-grid term in DFT gradients, so forces are the exact negative
        derivative of the energy (cheap; recommended for training labels).
    conv_tol : float
        SCF energy convergence (Hartree).
    max_cycle : int
        SCF iterations before giving up with ``ase.calculators.calculator.SCFError``.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(
        self,
        method: str = "pbe",
        basis: Union[str, Mapping[str, str]] = "def2-svp",
        charge: int = 0,
        spin: int = 0,
        density_fit: bool = False,
        grid_level: int = 3,
        grid_response: bool = True,
        conv_tol: float = 1e-10,
        max_cycle: int = 100,
        **kwargs,
    ):
        gto, scf, dft = _import_pyscf()
        method = str(method).lower()
        if method != "hf":
            try:
                dft.libxc.parse_xc(method)
            except KeyError as error:
                raise ValueError(
                    f"method {method!r} is neither 'hf' nor an exchange-correlation functional PySCF knows "
                    "(e.g. 'pbe', 'b3lyp', 'pbe0')"
                ) from error
        if int(spin) != spin or spin < 0:
            raise ValueError(f"spin must be a non-negative integer 2S = n_alpha - n_beta, got {spin!r}")
        if int(charge) != charge:
            raise ValueError(f"charge must be an integer, got {charge!r}")
        if not 0 <= int(grid_level) <= 9:
            raise ValueError(f"grid_level must be in 0..9, got {grid_level!r}")
        super().__init__(**kwargs)
        self.parameters.update(
            method=method,
            basis=basis,
            charge=int(charge),
            spin=int(spin),
            density_fit=bool(density_fit),
            grid_level=int(grid_level),
            grid_response=bool(grid_response),
            conv_tol=float(conv_tol),
            max_cycle=int(max_cycle),
        )
        self._scf = None  # the last converged SCF, reused for forces of the same structure

    def reset(self) -> None:
        super().reset()
        self._scf = None

    @property
    def level_of_theory(self) -> str:
        """E.g. ``"b3lyp/def2-svp"`` (for provenance notes)."""
        basis = self.parameters["basis"]
        return f"{self.parameters['method']}/{basis if isinstance(basis, str) else 'custom basis'}"

    def calculate(self, atoms: Optional[Atoms] = None, properties: Sequence[str] = ("energy",), system_changes=all_changes):
        """Fill ``self.results``: ``energy``, ``free_energy`` (eV) and, if asked, ``forces`` (eV/Angstrom)."""
        super().calculate(atoms, properties, system_changes)
        if system_changes or self._scf is None:
            self._scf = self._run_scf(self.atoms)
        energy = float(self._scf.e_tot) * HARTREE_TO_EV
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if "forces" in properties:
            gradient_method = self._scf.nuc_grad_method()
            if self.parameters["method"] != "hf":
                gradient_method.grid_response = self.parameters["grid_response"]
            gradient = np.asarray(gradient_method.kernel(), dtype=float)  # [n_atoms, 3] Hartree/Bohr
            self.results["forces"] = -gradient * _HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM

    def _run_scf(self, atoms: Atoms):
        if atoms.pbc.any():
            raise ValueError(
                f"PySCFCalculator handles molecules only, but this structure is periodic (pbc={atoms.pbc.tolist()}); "
                "periodic DFT is not supported: label a cluster (atoms.pbc = False) or use a periodic code's ASE calculator"
            )
        gto, scf, dft = _import_pyscf()
        p = self.parameters
        formula = atoms.get_chemical_formula()
        n_electrons = int(atoms.get_atomic_numbers().sum()) - p["charge"]
        if n_electrons < 1 or n_electrons % 2 != p["spin"] % 2 or p["spin"] > n_electrons:
            raise ValueError(
                f"{formula} with charge {p['charge']} has {n_electrons} electrons, which spin={p['spin']} cannot describe "
                f"(spin = 2S = n_alpha - n_beta must be {'odd' if n_electrons % 2 else 'even'} and at most {n_electrons})"
            )
        positions = atoms.get_positions() / BOHR_TO_ANGSTROM  # [n_atoms, 3] Bohr
        try:
            molecule = gto.M(
                atom=[(symbol, tuple(xyz)) for symbol, xyz in zip(atoms.get_chemical_symbols(), positions)],
                unit="Bohr",
                basis=p["basis"],
                charge=p["charge"],
                spin=p["spin"],
                verbose=0,
            )
        except RuntimeError as error:  # pyscf's BasisNotFoundError is a RuntimeError
            raise ValueError(f"PySCF cannot build {formula} in basis {p['basis']!r}: {error}") from error
        restricted = p["spin"] == 0
        if p["method"] == "hf":
            mean_field = scf.RHF(molecule) if restricted else scf.UHF(molecule)
        else:
            mean_field = dft.RKS(molecule) if restricted else dft.UKS(molecule)
            mean_field.xc = p["method"]
            mean_field.grids.level = p["grid_level"]
        if p["density_fit"]:
            mean_field = mean_field.density_fit()
        mean_field.conv_tol = p["conv_tol"]
        mean_field.max_cycle = p["max_cycle"]
        mean_field.verbose = 0
        mean_field.kernel()
        if not mean_field.converged:
            raise SCFError(
                f"PySCF {self.level_of_theory} SCF did not converge in {p['max_cycle']} cycles for {formula}; "
                "raise max_cycle, or check the geometry (atoms too close?), charge and spin"
            )
        return mean_field
