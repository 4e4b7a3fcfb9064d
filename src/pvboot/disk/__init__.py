"""The guest disk as read-only trees.

Only this package imports third-party parsers (dissect, pycdlib), lazily and per detected format, each
behind pvboot's own narrow interface (`fsapi.FileSystem`, `fsapi.Node`), so one can be replaced without
touching the rest of pvboot.
"""
