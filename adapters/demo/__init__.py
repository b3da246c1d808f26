"""The demo's agency registers: synthetic but realistic Mongolian data, modelled on ХУР/XYP.

* :mod:`adapters.demo.regnum` — the civil registration number: strict format, birth date and sex hints,
  generation (pure);
* :mod:`adapters.demo.geography`, :mod:`adapters.demo.names` — aimags, soums and districts; common names;
* :mod:`adapters.demo.data` — the whole world from a seed, deterministically (pure);
* :mod:`adapters.demo.registries` — each agency's database (SQLAlchemy tables) and the idempotent loader;
* :mod:`adapters.demo.component` — the ``xroad-mn demo`` component that builds them.

Example::

    >>> from adapters.demo.data import generate
    >>> from adapters.demo.regnum import decode_regnum
    >>> world = generate(seed=11, citizens=100)
    >>> person = world.citizens[0]
    >>> decode_regnum(person.regnum).birth_date == person.birth_date
    True
"""
