"""The two kinds of plan a gradient method returns: a ``Plan`` (evaluations and their
combination, with an ``ArgumentMap`` for rewritten circuits) and a ``DirectPlan`` (one
callable computing the derivatives, optionally the centre and further fields, without the
wrapped primitive); and the metric's part of a pub's work (``MetricWork``)."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator
from scipy import sparse

from qprim_grad import GradientEstimator, GradientJobError, QGTEstimator
from qprim_grad.methods import ArgumentMap, Direct, DirectPlan, Evaluation, Plan
from qprim_grad.methods.shift import ParamShift
from qprim_grad.pipeline.types import PubTask, PubWork


def _circuit() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.ry(a, 0)
    qc.rx(b, 1)
    qc.cx(0, 1)
    return qc


class _Counted:
    """A direct method whose derivatives are fixed numbers; it counts its computations."""

    name = "counted"
    options: dict = {}

    def __init__(self, exact_center: bool = False, fields: bool = False) -> None:
        self.exact_center = exact_center
        self.fields = fields
        self.calls = 0

    def plan(self, task: PubTask) -> DirectPlan:
        def compute() -> Direct:
            self.calls += 1
            grads = np.arange(task.num_parameters, dtype=float) + np.zeros(task.shape + (1,))
            center = None
            if self.exact_center:
                values = np.broadcast_to(task.values, task.shape + task.values.shape[-1:])
                evs = np.array(
                    [expectation(task.circuit, "ZZ", values[i]) for i in np.ndindex(task.shape)]
                ).reshape(task.shape)
                center = _pub_result(evs)
            extra = {"curvature_guess": np.ones(task.shape)} if self.fields else {}
            return Direct(grads, center=center, fields=extra)

        return DirectPlan(compute, exact_center=self.exact_center, metadata={"kind": "direct"})


def _pub_result(evs: np.ndarray):
    from qiskit.primitives.containers import DataBin, PubResult

    data = DataBin(evs=evs, stds=np.zeros_like(evs), shape=evs.shape)
    return PubResult(data, metadata={"target_precision": 0.0})


def test_a_direct_plan_is_computed_once_when_the_result_is_asked_for():
    method = _Counted(fields=True)
    qc = _circuit()
    job = GradientEstimator(StatevectorEstimator(), method).run(
        [(qc, "ZZ", [[0.1, 0.2], [0.3, 0.4]])]
    )
    assert method.calls == 0  # run returns at once
    data = job.result()[0].data
    assert method.calls == 1  # grads and fields from one computation
    assert np.array_equal(data.grads, [[0.0, 1.0], [0.0, 1.0]])
    assert np.array_equal(data.grad_stds, np.zeros((2, 2)))
    assert np.array_equal(data.curvature_guess, np.ones(2))
    assert job.result()[0].metadata["kind"] == "direct"
    assert method.calls == 1


def test_a_direct_centre_replaces_the_inner_one_only_at_precision_zero():
    qc = _circuit()
    x = np.array([0.3, -0.7])
    pub = (qc, "ZZ", x)
    estimator = GradientEstimator(StatevectorEstimator(seed=5), _Counted(exact_center=True))
    exact = estimator.run([pub]).result()
    assert exact.metadata["inner_rows"] == 0  # nothing sent: the plan gave the centre
    assert float(exact[0].data.evs) == pytest.approx(expectation(qc, "ZZ", x), abs=1e-12)
    noisy = estimator.run([pub], precision=0.05).result()
    assert noisy.metadata["inner_rows"] == 1  # the inner estimator evaluates the centre
    assert noisy[0].metadata["target_precision"] == 0.05
    assert float(noisy[0].data.evs) != pytest.approx(expectation(qc, "ZZ", x), abs=1e-9)
    # without exact_center the centre is always the inner estimator's
    other = GradientEstimator(StatevectorEstimator(), _Counted()).run([pub]).result()
    assert other.metadata["inner_rows"] == 1


def test_a_failing_direct_computation_names_the_pub():
    class Failing:
        name = "failing"
        options: dict = {}

        def plan(self, task: PubTask) -> DirectPlan:
            def compute() -> Direct:
                raise RuntimeError("no statevector for this circuit")

            return DirectPlan(compute)

    job = GradientEstimator(StatevectorEstimator(), Failing()).run([(_circuit(), "ZZ", [0.1, 0.2])])
    with pytest.raises(GradientJobError, match="pub 0.*no statevector"):
        job.result()


class _Broken:
    """A direct method that breaks its own promises."""

    name = "broken"
    options: dict = {}

    def __init__(self, grads_shape: tuple[int, ...], exact_center: bool) -> None:
        self.grads_shape = grads_shape
        self.exact_center = exact_center

    def plan(self, task: PubTask) -> DirectPlan:
        return DirectPlan(
            lambda: Direct(np.zeros(self.grads_shape)), exact_center=self.exact_center
        )


def test_a_direct_plan_with_grads_of_the_wrong_shape_is_named():
    method = _Broken(grads_shape=(3,), exact_center=False)
    job = GradientEstimator(StatevectorEstimator(), method).run([(_circuit(), "ZZ", [0.1, 0.2])])
    with pytest.raises(GradientJobError, match=r"pub 0.*grads of shape \(3,\); expected \(2,\)"):
        job.result()


def test_a_direct_plan_promising_a_centre_it_does_not_give_is_named():
    method = _Broken(grads_shape=(2,), exact_center=True)
    job = GradientEstimator(StatevectorEstimator(), method).run([(_circuit(), "ZZ", [0.1, 0.2])])
    with pytest.raises(GradientJobError, match="pub 0.*exact_center=True.*center=None"):
        job.result()


def test_a_plan_and_a_direct_plan_give_the_same_result_row_shape():
    qc = _circuit()
    values = np.random.default_rng(1).uniform(-1, 1, (3, 1, 2))
    pub = (qc, ["ZZ", "XI"], values)
    combined = GradientEstimator(StatevectorEstimator(), "param_shift").run([pub]).result()[0]
    direct = GradientEstimator(StatevectorEstimator(), "reverse").run([pub]).result()[0]
    assert combined.data.grads.shape == direct.data.grads.shape == (3, 2, 2)
    assert np.allclose(combined.data.grads, direct.data.grads, atol=1e-10)
    assert np.allclose(combined.data.evs, direct.data.evs, atol=1e-10)


def _task(qc: QuantumCircuit, values: np.ndarray) -> PubTask:
    return PubTask(
        index=0,
        kind="estimator",
        circuit=qc,
        values=values,
        observables=None,
        shape=values.shape[:-1],
        parameters=tuple(qc.parameters),
        inner=StatevectorEstimator(),
    )


def test_param_shift_maps_shared_and_affine_arguments_with_a_constant_jacobian():
    a = Parameter("a")
    qc = QuantumCircuit(1)
    qc.ry(2 * a, 0)
    qc.rz(a + 1, 0)
    plan = ParamShift().plan(_task(qc, np.array([[0.4]])))
    assert isinstance(plan, Plan)
    arguments = plan.arguments
    assert isinstance(arguments, ArgumentMap)
    assert len(arguments.parameters) == 2  # one slot per gate argument
    assert sparse.issparse(arguments.jacobian)
    assert np.array_equal(arguments.jacobian.toarray(), [[2.0], [1.0]])
    assert arguments.curvature is None


def test_param_shift_maps_non_affine_arguments_with_jacobian_and_curvature():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.ry(a * b, 0)
    values = np.array([[0.5, -2.0], [1.5, 3.0]])
    arguments = ParamShift().plan(_task(qc, values)).arguments
    assert arguments is not None and arguments.curvature is not None
    # d(ab)/da = b, d(ab)/db = a at each row; d2(ab)/da db = 1
    assert np.allclose(arguments.jacobian, [[[-2.0, 0.5]], [[3.0, 1.5]]])
    assert np.allclose(arguments.curvature(), [[[[0.0, 1.0], [1.0, 0.0]]]] * 2)


def test_a_circuit_of_the_users_parameters_needs_no_argument_map():
    plan = ParamShift().plan(_task(_circuit(), np.array([[0.1, 0.2]])))
    assert plan.arguments is None


def test_a_direct_plan_evaluates_nothing_but_the_centre():
    center = Evaluation(_circuit(), np.zeros((1, 2)))
    plan = DirectPlan(lambda: Direct(np.zeros(2)), center=center)
    assert plan.evaluations == () and plan.center_weights is None
    assert plan.center is center and plan.exact_center is False


def test_a_work_without_a_metric_has_no_metric_slots_and_says_so():
    qc = _circuit()
    work = PubWork(_task(qc, np.array([[0.1, 0.2]])), None, Plan())
    assert work.metric_work is None and work.metric_slots == ()
    with pytest.raises(ValueError, match="pub 0 has no metric"):
        _ = work.metric
    with pytest.raises(ValueError, match="pub 0 has no metric"):
        _ = work.metric_plan


@pytest.mark.parametrize(
    "make, sent, noisy_sent",
    [
        # reverse computes the centre from its forward pass on StatevectorEstimator
        (lambda sv: GradientEstimator(sv, "reverse"), 0, 1),
        # ... but not next to a metric of a gradient estimator: the centre is sent
        (lambda sv: GradientEstimator(sv, "reverse", metric="reverse"), 1, 1),
        # the reverse metric gives the QGT estimator's centre
        (lambda sv: QGTEstimator(sv, "reverse"), 0, 1),
        # block_diag computes its layers' values itself: only the centre is sent
        (lambda sv: QGTEstimator(sv, "block_diag"), 1, 4),
        # forward-over-reverse around a reverse gradient estimator sends nothing
        (lambda sv: GradientEstimator(GradientEstimator(sv, "reverse"), "reverse"), 0, 1),
    ],
)
def test_values_computed_without_the_inner_primitive_are_not_sent_at_precision_zero(
    make, sent, noisy_sent
):
    qc = _circuit()
    x = np.array([0.3, -0.7])
    wrapper = make(StatevectorEstimator(seed=3))
    exact = wrapper.run([(qc, "ZZ", x)]).result()
    assert exact.metadata["inner_rows"] == sent
    assert float(exact[0].data.evs) == pytest.approx(expectation(qc, "ZZ", x), abs=1e-12)
    noisy = wrapper.run([(qc, "ZZ", x)], precision=0.01).result()
    # at a non-zero precision the centre and every evaluation go to the inner estimator
    assert noisy.metadata["inner_rows"] == noisy_sent
