"""A small molecule in TIP3P water, and the ML/MM System that runs it (mechanical embedding).

``structure: {solvated: ethanol, padding_nm: 1.2}`` builds the box: the molecule (one residue,
``MOL``) is solvated by OpenMM's ``Modeller.addSolvent`` with amber14's TIP3P in a cube. The box
travels as an ``ase.Atoms`` (Angstrom, periodic): the solute first, flagged by the per-atom
array ``"solute"``, then the waters as O, H, H triplets, so that :func:`solvated_topology`
rebuilds the residues from it.

``ml_atoms: solute`` then runs the solute with the learned potential and the water with TIP3P
(:func:`mixed_system`): openmm-ml's ``MLPotential("mlff").createMixedSystem`` takes a classical
System of all atoms, removes the solute's internal classical terms and adds the ML Force. Its
classical System needs a description of the solute, which only enters the solute-water
interaction (mechanical embedding). No solute force field (GAFF via openmmforcefields) is
installed, so the solute gets AMBER's recipe for one, minus the bonded terms the ML potential
replaces:

* Lennard-Jones parameters by element, the GAFF values of a typical atom type
  (:data:`SOLUTE_LENNARD_JONES`: hc, c3, n3, oh, f, s, cl), and GAFF's ho, hn, hs for hydrogens
  bonded to O, N, S (:data:`POLAR_HYDROGEN_LENNARD_JONES`),
* RESP charges fitted to the gas-phase molecule's Hartree-Fock/6-31G* electrostatic potential
  (:mod:`mlff.md.solute_charges`, PySCF), fixed during the run: solute-water electrostatics and
  hydrogen bonds are classical, as in an AMBER/GAFF solute. ``solute_charges="zero"`` leaves
  Lennard-Jones only.

Units: OpenMM's nm, kJ/mol and dalton here; positions leave as Angstrom (``mlff.units``).
"""

import io
from typing import List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import quoteattr

import torch  # noqa: F401,I001  (torch before openmm: see ../shared/docs/environment.md)

import ase
import numpy as np
import openmm
import openmm.app as app
import openmm.unit as u
from ase.neighborlist import NeighborList, natural_cutoffs

from mlff.units import NM_TO_ANGSTROM

#: OpenMM's force field file for the water (TIP3P of amber14, with ions).
WATER_FORCE_FIELD = "amber14/tip3p.xml"
#: Residue name of the solute.
SOLUTE_RESIDUE = "MOL"
#: Per-atom boolean array of a solvated ``ase.Atoms`` marking the solute.
SOLUTE_ARRAY = "solute"
#: Force group of the ML Force in a mixed System (the classical Forces stay in group 0).
ML_FORCE_GROUP = 1

#: Lennard-Jones (sigma nm, epsilon kJ/mol) of solute atoms by element: GAFF's hc, c3, n3, oh,
#: f, s, cl (Rmin/2 and epsilon of gaff.dat as sigma = Rmin 2^(-1/6), kcal -> kJ).
SOLUTE_LENNARD_JONES = {
    "H": (0.26495, 0.06569),
    "C": (0.33997, 0.45773),
    "N": (0.32500, 0.71128),
    "O": (0.30665, 0.88031),
    "F": (0.31181, 0.25522),
    "S": (0.35636, 1.04600),
    "Cl": (0.34709, 1.10876),
}
#: Hydrogens bonded to these elements are polar: GAFF's ho (on O: no Lennard-Jones at all, so
#: that the charges alone make the hydrogen bond), hn and hs (on N, S: a small sphere). The
#: (sigma, epsilon) replace the element's hc values; sigma of ho only fills the field.
POLAR_HYDROGEN_LENNARD_JONES = {
    "O": (0.1, 0.0),
    "N": (0.10691, 0.06569),
    "S": (0.10691, 0.06569),
}

#: amber14's 1-4 scaling factors; every NonbondedForce block of one ForceField must share them.
_COULOMB14, _LJ14 = "0.8333333333333334", "0.5"


def solute_topology(solute: ase.Atoms) -> app.Topology:
    """A one-residue (``MOL``) Topology of ``solute``, bonded where atoms lie within covalent radii.

    The bonds keep the solute one molecule for OpenMM (box wrapping, barostat), and let the
    force field match a residue template.
    """
    topology = app.Topology()
    residue = topology.addResidue(SOLUTE_RESIDUE, topology.addChain())
    added = []
    for index, symbol in enumerate(solute.get_chemical_symbols()):
        added.append(topology.addAtom(f"{symbol}{index}", app.Element.getBySymbol(symbol), residue))
    if len(solute) > 1:
        neighbors = NeighborList(natural_cutoffs(solute), self_interaction=False, bothways=False)
        neighbors.update(solute)
        for i in range(len(solute)):
            for j in sorted(neighbors.get_neighbors(i)[0]):
                topology.addBond(added[i], added[int(j)])
    return topology


def force_field(topology: app.Topology, solute_charges: Optional[Sequence[float]] = None) -> app.ForceField:
    """amber14 TIP3P plus a template for the Topology's ``MOL`` residue: LJ by element and
    ``solute_charges`` (e, one per solute atom in order; None: zero).

    Raises
    ------
    ValueError
        The solute has an element without Lennard-Jones parameters here, or the charges do not
        match its atoms.
    """
    residue = next(r for r in topology.residues() if r.name == SOLUTE_RESIDUE)
    members = list(residue.atoms())
    missing = sorted({a.element.symbol for a in members if a.element.symbol not in SOLUTE_LENNARD_JONES})
    if missing:
        raise ValueError(
            f"the solute contains {missing}, for which mlff.md has no Lennard-Jones parameters "
            f"(it has {sorted(SOLUTE_LENNARD_JONES)}); choose a solute made of those elements"
        )
    charges = np.zeros(len(members)) if solute_charges is None else np.asarray(solute_charges, dtype=float)
    if charges.shape != (len(members),) or not np.isfinite(charges).all():
        raise ValueError(f"solute_charges: need {len(members)} finite charges (one per solute atom), got shape {charges.shape}")
    types, nonbonded, atoms = [], [], []
    for atom, charge in zip(members, charges):  # one atom type per solute atom: each has its own charge
        symbol = atom.element.symbol
        mass = atom.element.mass.value_in_unit(u.dalton)
        name = quoteattr(f"mlff-solute-{atom.name}")
        types.append(f"<Type name={name} class={name} element={quoteattr(symbol)} mass='{mass!r}'/>")
        sigma, epsilon = solute_lennard_jones(atom, residue)
        nonbonded.append(f"<Atom type={name} charge='{float(charge)!r}' sigma='{sigma!r}' epsilon='{epsilon!r}'/>")
        atoms.append(f"<Atom name={quoteattr(atom.name)} type={name}/>")
    bonds = [f"<Bond atomName1={quoteattr(b.atom1.name)} atomName2={quoteattr(b.atom2.name)}/>" for b in residue.bonds()]
    xml = (
        f"<ForceField><AtomTypes>{''.join(types)}</AtomTypes>"
        f"<Residues><Residue name='{SOLUTE_RESIDUE}'>{''.join(atoms + bonds)}</Residue></Residues>"
        f"<NonbondedForce coulomb14scale='{_COULOMB14}' lj14scale='{_LJ14}'>{''.join(nonbonded)}</NonbondedForce>"
        "</ForceField>"
    )
    return app.ForceField(WATER_FORCE_FIELD, io.StringIO(xml))


def solute_lennard_jones(atom: app.topology.Atom, residue: app.topology.Residue) -> Tuple[float, float]:
    """(sigma nm, epsilon kJ/mol) of a solute atom: by element, polar hydrogens by their partner."""
    if atom.element.symbol == "H":
        partners = [b.atom2 if b.atom1 is atom else b.atom1 for b in residue.bonds() if atom in (b.atom1, b.atom2)]
        for partner in partners:
            if partner.element.symbol in POLAR_HYDROGEN_LENNARD_JONES:
                return POLAR_HYDROGEN_LENNARD_JONES[partner.element.symbol]
    return SOLUTE_LENNARD_JONES[atom.element.symbol]


def solvate(solute: ase.Atoms, padding_nm: Optional[float] = None, box_nm: Optional[float] = None) -> ase.Atoms:
    """``solute`` in a cubic box of TIP3P water (OpenMM ``Modeller.addSolvent``).

    Parameters
    ----------
    solute : ase.Atoms
        Gas-phase molecule, Angstrom.
    padding_nm : float, optional
        As Modeller's ``padding``: the cube's edge is the diameter of the solute's bounding
        sphere plus ``padding_nm`` (at least twice ``padding_nm``).
    box_nm : float, optional
        The cube's edge instead. Exactly one of ``padding_nm`` and ``box_nm``.

    Returns
    -------
    ase.Atoms : periodic, Angstrom; the solute first (``atoms.arrays["solute"]`` True), then
    the waters as O, H, H; the solute is centred in the box.
    """
    if (padding_nm is None) == (box_nm is None):
        raise ValueError("solvate: give exactly one of padding_nm and box_nm")
    for name, value in (("padding_nm", padding_nm), ("box_nm", box_nm)):
        if value is not None and not value > 0:
            raise ValueError(f"solvate: {name} must be positive, got {value}")
    topology = solute_topology(solute)
    modeller = app.Modeller(topology, solute.get_positions() / NM_TO_ANGSTROM * u.nanometer)
    if padding_nm is not None:
        size = {"padding": padding_nm * u.nanometer}
    else:
        size = {"boxSize": openmm.Vec3(box_nm, box_nm, box_nm) * u.nanometer}
    modeller.addSolvent(force_field(topology), model="tip3p", boxShape="cube", neutralize=False, **size)
    positions = np.asarray(modeller.getPositions().value_in_unit(u.nanometer)) * NM_TO_ANGSTROM
    cell = np.asarray(modeller.topology.getPeriodicBoxVectors().value_in_unit(u.nanometer)) * NM_TO_ANGSTROM
    numbers = [atom.element.atomic_number for atom in modeller.topology.atoms()]
    atoms = ase.Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    atoms.arrays[SOLUTE_ARRAY] = np.arange(len(atoms)) < len(solute)
    return atoms


def solvated_topology(atoms: ase.Atoms) -> Tuple[app.Topology, List[int]]:
    """The Topology (solute residue ``MOL``, then ``HOH`` residues) of a :func:`solvate` box.

    Returns
    -------
    topology : openmm.app.Topology, with the periodic box
    solute : list of int, the solute's atom indices

    Raises
    ------
    ValueError
        ``atoms`` does not have the layout :func:`solvate` gives (solute first, then O, H, H).
    """
    if SOLUTE_ARRAY not in atoms.arrays or not atoms.pbc.all():
        raise ValueError("ml_atoms: solute needs a periodic box built by structure.solvated (per-atom 'solute' flags)")
    flags = np.asarray(atoms.arrays[SOLUTE_ARRAY], dtype=bool)
    n_solute = int(flags.sum())
    if n_solute == 0 or not flags[:n_solute].all():
        raise ValueError("the solvated structure must list its solute atoms first (as structure.solvated builds it)")
    symbols = atoms.get_chemical_symbols()
    waters = symbols[n_solute:]
    if len(waters) % 3 or waters != ["O", "H", "H"] * (len(waters) // 3):
        raise ValueError("the solvated structure's solvent must be water molecules listed as O, H, H")
    topology = solute_topology(atoms[:n_solute])
    chain = topology.addChain()
    oxygen, hydrogen = app.Element.getBySymbol("O"), app.Element.getBySymbol("H")
    for _ in range(len(waters) // 3):
        residue = topology.addResidue("HOH", chain)
        o = topology.addAtom("O", oxygen, residue)
        topology.addBond(o, topology.addAtom("H1", hydrogen, residue))
        topology.addBond(o, topology.addAtom("H2", hydrogen, residue))
    topology.setPeriodicBoxVectors(np.asarray(atoms.get_cell()) / NM_TO_ANGSTROM * u.nanometer)
    return topology, list(range(n_solute))


def mm_system(topology: app.Topology, cutoff_nm: float, solute_charges: Optional[Sequence[float]] = None) -> openmm.System:
    """The classical System of a solvated Topology: rigid TIP3P, PME, the solute's LJ and charges.

    Parameters
    ----------
    topology : openmm.app.Topology
        From :func:`solvated_topology`.
    cutoff_nm : float
        Real-space cutoff of PME and of Lennard-Jones, nm; at most half the box edge.
    solute_charges : sequence of float, optional
        e, one per solute atom (None: zero).
    """
    edge = min(np.linalg.norm(v) for v in topology.getPeriodicBoxVectors().value_in_unit(u.nanometer))
    if 2 * cutoff_nm > edge:
        raise ValueError(
            f"the water box ({edge:.3f} nm) must be at least twice mm_cutoff_nm ({cutoff_nm} nm) for PME: "
            "enlarge structure.padding_nm or structure.box_nm, or lower mm_cutoff_nm"
        )
    return force_field(topology, solute_charges).createSystem(
        topology, nonbondedMethod=app.PME, nonbondedCutoff=cutoff_nm * u.nanometer, constraints=None, rigidWater=True
    )


def mixed_system(
    atoms: ase.Atoms,
    potential_path: str,
    cutoff_nm: float,
    ml_atoms: Optional[Sequence[int]] = None,
    solute_charges: Union[str, Sequence[float]] = "resp",
    **options,
) -> Tuple[app.Topology, openmm.System]:
    """The solute by the ML potential, TIP3P water, their interaction classical (mechanical embedding).

    Parameters
    ----------
    atoms : ase.Atoms
        A :func:`solvate` box.
    potential_path : str
        Deployed potential file.
    cutoff_nm : float
        Classical cutoff, nm (see :func:`mm_system`).
    ml_atoms : sequence of int, optional
        The ML atoms, in any order (default: the solute).
    solute_charges : "resp", "zero" or sequence of float
        The solute's classical charges (e): RESP from its geometry in ``atoms``
        (:func:`mlff.md.solute_charges.resp_charges`, a few seconds of Hartree-Fock), zero, or
        given (one per solute atom).
    **options
        ``backend``, ``device``, ``dtype``, ``skin`` of ``MLPotential("mlff")``.

    Returns
    -------
    topology, system : the ML Force in force group :data:`ML_FORCE_GROUP`, the rest in 0.
    """
    from openmmml import MLPotential

    topology, solute = solvated_topology(atoms)
    ml_atoms = solute if ml_atoms is None else [int(i) for i in ml_atoms]
    charges = solute_charge_values(atoms[solute], solute_charges)
    potential = MLPotential("mlff", modelPath=potential_path)
    system = potential.createMixedSystem(
        topology, mm_system(topology, cutoff_nm, charges), ml_atoms, forceGroup=ML_FORCE_GROUP, interpolate=False, **options
    )
    _keep_molecules_whole(system, topology, ml_atoms)
    return topology, system


def solute_charge_values(solute: ase.Atoms, solute_charges: Union[str, Sequence[float]]) -> Optional[np.ndarray]:
    """The charges (e, (n_solute,)) that ``solute_charges`` ("resp", "zero" or values) names; None for zero."""
    if isinstance(solute_charges, str):
        if solute_charges == "zero":
            return None
        if solute_charges == "resp":
            from mlff.md.solute_charges import resp_charges

            return resp_charges(solute)[0]
        raise ValueError(f"solute_charges must be 'resp', 'zero' or one charge per solute atom, got {solute_charges!r}")
    return np.asarray(solute_charges, dtype=float)


def _keep_molecules_whole(system: openmm.System, topology: app.Topology, ml_atoms: Sequence[int]) -> None:
    """Bond the ML atoms again, with zero energy.

    OpenMM finds molecules from bonded terms and constraints; createMixedSystem removed the
    ML atoms' bonds, so each would be a molecule of its own: wrapped into the box one by one
    and moved apart by a barostat. A zero-energy CustomBondForce over the Topology's bonds
    among them keeps their molecules whole.
    """
    selected = set(ml_atoms)
    force = openmm.CustomBondForce("0")
    force.setName("ML molecules (zero energy; keeps them whole)")
    for bond in topology.bonds():
        if bond.atom1.index in selected and bond.atom2.index in selected:
            force.addBond(bond.atom1.index, bond.atom2.index, [])
    if force.getNumBonds():
        system.addForce(force)
