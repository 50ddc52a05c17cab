"""A simulated hardware failure for the checkpoint/resume tests."""


class Boom(RuntimeError):
    """The backend went away."""


def failing_at(primitive, mocker, call_number):
    """Make the ``call_number``-th ``run`` of ``primitive`` raise :class:`Boom`."""
    original = primitive.run
    count = {"n": 0}

    def run(*args, **kwargs):
        count["n"] += 1
        if count["n"] == call_number:
            raise Boom("backend went away")
        return original(*args, **kwargs)

    return mocker.patch.object(primitive, "run", side_effect=run)
