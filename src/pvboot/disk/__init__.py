"""The guest disk as read-only trees: container -> volumes -> filesystems, each layer declared once.

`container.py` opens the image (raw, qcow2 chains). `volumes.py` lists its volumes with GRUB's names,
seeking the volume systems of its `VOLUME_SYSTEMS` (`gpt.py`, `mbr.py`, `lvm.py`; the interface is
`layer.py`) on a worklist, so that a volume found inside a volume is scanned again. `fs/` detects and
reads filesystems through the adapters its `FILESYSTEMS` lists (the interface is `fsapi.py`).

Only this package imports third-party parsers (dissect, pycdlib), lazily and per detected format, each
behind pvboot's own narrow interface (`fsapi.FileSystem`, `fsapi.Node`), so one can be replaced without
touching the rest of pvboot.
"""
