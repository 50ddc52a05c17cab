"""What the package knows about circuits: preparing a circuit for differentiation and
walking its gates (:mod:`.prepare`), the chain rule from gate arguments to parameters
(:mod:`.chain_rule`), the table of differentiable gates (:mod:`.gates`) and the checks of
options the methods share (:mod:`.options`)."""
