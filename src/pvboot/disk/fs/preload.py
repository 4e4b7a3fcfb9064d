"""Importing this module imports every filesystem parser (it exists for that effect alone).

The adapters import their parsers on first use. A reader that will not be able to read the Python
installation once confined first imports every pvboot module (`pvboot.sandbox.confine.preimport`), and
so this one, which loads now what the adapters would import later.
"""

from __future__ import annotations

from pvboot.disk.fs import import_parsers

import_parsers()
