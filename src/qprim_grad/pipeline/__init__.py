"""The generic gradient primitive and the phases of its run.

``run`` = coerce pubs -> build tasks -> plan -> lay out inner pubs -> pack into jobs -> submit
-> combine. :mod:`.types` holds the values that travel through it (and that gradient methods
read and return); :mod:`.primitive` the generic primitive the faces are composed into.
"""
