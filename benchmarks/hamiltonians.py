"""Qubit Hamiltonians shared by the shot benchmarks, built at run time.

* :func:`lih`, :func:`h2o`: molecular electronic Hamiltonians in an active space (STO-3G,
  restricted Hartree-Fock orbitals from PySCF, Jordan-Wigner mapping from OpenFermion;
  both only in the ``bench`` extra, imported inside the functions).
* :func:`heisenberg`: the uniform-coefficient Heisenberg chain ``sum XX + YY + ZZ`` on
  neighbouring qubits (open boundary).

Not a benchmark module itself (no ``_bench`` suffix).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.quantum_info import SparsePauliOp

__all__ = ["lih", "h2o", "heisenberg", "molecular_hamiltonian"]

#: coefficients below this are dropped (numerical zeros of the integrals)
_CUTOFF = 1e-8


def heisenberg(n: int) -> SparsePauliOp:
    """``sum_i X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}`` on an open chain of ``n`` qubits."""
    terms = [(pauli * 2, [i, i + 1], 1.0) for i in range(n - 1) for pauli in ("X", "Y", "Z")]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n)


def lih(bond_length: float = 1.6) -> SparsePauliOp:
    """LiH, STO-3G, 2 electrons in 3 spatial orbitals (the Li 1s core frozen): 6 qubits."""
    atom = f"Li 0 0 0; H 0 0 {bond_length}"
    return molecular_hamiltonian(atom, active_electrons=2, active_orbitals=3)


def h2o(bond_length: float = 0.9584, angle: float = 104.45) -> SparsePauliOp:
    """H2O, STO-3G, 4 electrons in 4 spatial orbitals (the 3 lowest doubly occupied
    orbitals frozen): 8 qubits."""
    half = np.deg2rad(angle) / 2
    x, z = bond_length * np.sin(half), bond_length * np.cos(half)
    atom = f"O 0 0 0; H {x:.10f} 0 {z:.10f}; H {-x:.10f} 0 {z:.10f}"
    return molecular_hamiltonian(atom, active_electrons=4, active_orbitals=4)


def molecular_hamiltonian(
    atom: str, *, active_electrons: int, active_orbitals: int, basis: str = "sto-3g"
) -> SparsePauliOp:
    """The Jordan-Wigner qubit Hamiltonian of ``atom`` (PySCF geometry string, Å) in the
    active space of ``active_electrons`` in ``active_orbitals`` RHF orbitals around the
    Fermi level (the orbitals below frozen into the constant)."""
    from openfermion import InteractionOperator, get_fermion_operator, jordan_wigner
    from openfermion.chem.molecular_data import spinorb_from_spatial
    from pyscf import ao2mo, gto, mcscf, scf

    molecule = gto.M(atom=atom, basis=basis, verbose=0)
    mean_field = scf.RHF(molecule).run()
    casci = mcscf.CASCI(mean_field, active_orbitals, active_electrons)
    one_body, core_energy = casci.get_h1eff()
    eri = ao2mo.restore(1, casci.get_h2eff(), active_orbitals)  # chemists' (pq|rs)
    # OpenFermion's convention: two_body[p, q, r, s] = (ps|qr)
    two_body = np.asarray(eri.transpose(0, 2, 3, 1), order="C")
    one_spin, two_spin = spinorb_from_spatial(one_body, two_body)
    operator = InteractionOperator(float(core_energy), one_spin, 0.5 * two_spin)
    return _to_sparse_pauli_op(jordan_wigner(get_fermion_operator(operator)), 2 * active_orbitals)


def _to_sparse_pauli_op(qubit_operator: Any, num_qubits: int) -> SparsePauliOp:
    """An OpenFermion ``QubitOperator`` as a ``SparsePauliOp`` (qubit ``i`` of OpenFermion is
    qubit ``i`` of Qiskit), numerical zeros dropped, real coefficients."""
    terms = []
    for term, coefficient in qubit_operator.terms.items():
        if abs(coefficient) < _CUTOFF:
            continue
        paulis = "".join(pauli for _, pauli in term)
        terms.append((paulis, [index for index, _ in term], float(np.real(coefficient))))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_qubits).simplify(_CUTOFF)
