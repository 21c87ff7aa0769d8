"""Unit conversion constants, the only place where they are written.

Inside mlff everything is Angstrom, eV, eV/Angstrom and eV/Angstrom^3; conversions happen
only at engine boundaries (OpenMM's nm and kJ/mol), through these names.
"""

#: 1 eV in kJ/mol (CODATA 2018: e * N_A / 1000).
EV_TO_KJ_PER_MOL = 96.48533212331002
#: 1 nm in Angstrom.
NM_TO_ANGSTROM = 10.0
#: 1 Angstrom in nm.
ANGSTROM_TO_NM = 1.0 / NM_TO_ANGSTROM
#: 1 Hartree in eV (CODATA 2018 recommended value; ``ase.units.create_units("2018")`` agrees to 1e-11).
HARTREE_TO_EV = 27.211386245988
#: 1 Bohr radius in Angstrom (CODATA 2018).
BOHR_TO_ANGSTROM = 0.529177210903
#: 1 Angstrom in Bohr.
ANGSTROM_TO_BOHR = 1.0 / BOHR_TO_ANGSTROM
