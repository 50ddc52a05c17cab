"""qprim_grad: gradients as Qiskit V2 primitives, and SPSA on primitives."""

__version__ = "0.1.0"
