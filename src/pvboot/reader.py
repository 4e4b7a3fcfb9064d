"""The reader's side of the boundary: everything that reads guest bytes, served request by request.

Runs in the confined reader process. The parent (boot.py) sends the requests of sandbox/protocol.py;
this module opens the disk (only after the sandbox has confined the process), finds configs and copies
files, and answers with that module's typed replies.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from typing import Any

from pvboot.config.discover import EXTLINUX, GRUB2, GRUB_LEGACY, FoundConfig, find_configs
from pvboot.config.formats import ConfigKind
from pvboot.config.guestview import GuestView
from pvboot.config.load import load_menu, open_menu
from pvboot.config.menusource import MenuSource
from pvboot.config.xenserver import FALLBACK_KERNEL, fallback_kernel, find_xenkernel
from pvboot.disk.volumes import GuestDisk, Volume
from pvboot.errors import GuestDataError, NotFoundError, PvbootError
from pvboot.extract import GuestFile, copy_files
from pvboot.kernel import check_boot_files, write_devicetree
from pvboot.limits import Limits
from pvboot.menu import BootSpec, Choice, FileRef
from pvboot.sandbox.channel import Channel, ChannelClosed
from pvboot.sandbox.child import describe_failure
from pvboot.sandbox.protocol import (
    BootEntryRequest,
    BootReply,
    CommandReply,
    CommandRequest,
    DefaultChoice,
    ErrorReply,
    ExtractRequest,
    InspectReply,
    InspectRequest,
    IsconfigReply,
    IsconfigRequest,
    JsonObject,
    MenuReply,
    MenuRequest,
    Reply,
    Request,
    XenkernelReply,
    XenkernelRequest,
    decode_request,
)

log = logging.getLogger(__name__)
trace = logging.getLogger("pvboot.trace")

_DEVICE_PREFIX = re.compile(r"^\(([^()/]*)\)(.*)$")


@dataclass(frozen=True)
class OutputFds:
    """The pre-created output files the child writes into (None with --not-really)."""

    kernel: int | None
    ramdisk: int | None
    devicetree: int | None = None  # only with --output-format=json


class GuestSession:
    """One guest disk, opened on first use, and the requests it answers."""

    def __init__(
        self,
        image: str,
        limits: Limits,
        fds: OutputFds,
        offset: int | None = None,
        kernel_check: bool = True,
        defer_decoding: bool = False,
        disk_format: str | None = None,
        xenserver_rules: bool = True,
    ) -> None:
        self.xenserver_rules = xenserver_rules  # /xenkernel, /kernel-xenserver (config/xenserver.py)
        self.disk_format = disk_format  # --format: "raw", "qcow2", or None (probe)
        self.kernel_check = kernel_check
        self.defer_decoding = defer_decoding  # a compressed kernel is judged by the parent's copy
        self.image = image
        self.limits = limits
        self.fds = fds
        self.offset = offset
        self._disk: GuestDisk | None = None
        self._menu: tuple[FoundConfig, MenuSource] | None = None
        self._load_error: GuestDataError | None = None
        self._console_boot: BootSpec | None = None

    @property
    def disk(self) -> GuestDisk:
        if self._disk is None:
            self._disk = GuestDisk(self.image, self.limits, self.offset, self.disk_format)
        return self._disk

    def handle(self, request: JsonObject) -> JsonObject:
        """One request in its wire form, answered in the wire form (errors are raised)."""
        return self.answer(decode_request(request)).to_json()

    def answer(self, request: Request) -> Reply:
        """The typed reply to `request`."""
        if isinstance(request, InspectRequest):
            return self.inspect(request.facts)
        if isinstance(request, ExtractRequest):
            return self.extract(request)
        if isinstance(request, MenuRequest):
            return self.menu()
        if isinstance(request, BootEntryRequest):
            return self.boot(request)
        if isinstance(request, CommandRequest):
            return self.command(request)
        if isinstance(request, IsconfigRequest):
            return self.isconfig()
        assert isinstance(request, XenkernelRequest)
        return self.xenkernel()

    def inspect(self, facts: bool = False) -> InspectReply:
        """The disk layout and the boot configs found on it (with sizes and SHA-256 for --report)."""
        volumes = [_describe(v) for v in self.disk.volumes]
        found = find_configs(self.disk)
        configs = [c.to_json() for c in found]
        if facts:
            from pvboot.report import config_facts  # (--report only: keeps the boot path lean)

            for doc, cfg in zip(configs, found, strict=True):
                tree = self.disk.volume(cfg.volume).tree()
                doc.update(config_facts(tree, cfg.path, self.limits.max_config_size))
        return InspectReply(volumes, configs)

    def xenkernel(self) -> XenkernelReply:
        """XenServer's `/xenkernel`, which boots in place of any menu (config/xenserver.py)."""
        found = find_xenkernel(self.disk) if self.xenserver_rules else None
        return XenkernelReply(found)

    def _loaded(self) -> tuple[FoundConfig, MenuSource]:
        """The menu, read once per session; a failure is kept too (the same disk fails the same way,
        and a config that spent its whole step budget must not spend it again for the next request)."""
        if self._load_error is not None:
            raise self._load_error
        if self._menu is None:
            view = GuestView(self.disk, kernel_fallback=FALLBACK_KERNEL if self.xenserver_rules else None)
            try:
                self._menu = load_menu(view, find_configs(self.disk), self.limits, trace.info)
            except GuestDataError as exc:
                self._load_error = exc
                raise
        return self._menu

    def isconfig(self) -> IsconfigReply:
        """`--isconfig`: the image path is a boot config on the host; what would it boot?"""
        from pvboot.disk.hostfs import host_config_disk

        directory, name = os.path.split(os.path.abspath(self.image))
        disk = host_config_disk(directory, self.limits)
        found = FoundConfig(_config_kind(name, self.image), "hd0", "/" + name)
        source = open_menu(GuestView(disk, assume_files=True), found, self.limits, trace.info)
        choice = source.choose(None)
        spec = source.run(choice.path)
        return IsconfigReply(
            kind=found.kind.value,
            title=" > ".join(choice.titles),
            kernel=spec.kernel.path if spec.kernel else None,
            initrds=[ref.path for ref in spec.initrds],
            args=spec.args,
            bootable=spec.pv_bootable,
            why="" if spec.pv_bootable else spec.why_not_bootable(),
        )

    def menu(self) -> MenuReply:
        """The menu as the guest's boot loader shows it, with the default it would take."""
        found, source = self._loaded()
        menu = source.menu()
        choice = source.choose(None)
        reply = MenuReply(
            config=found.to_json(),
            source=menu.source,
            kind=menu.kind,
            timeout=menu.timeout,
            timeout_style=menu.timeout_style,
            entries=[e.to_json() for e in menu.entries],
            superusers=menu.superusers,
            passwords=menu.passwords,
            default=DefaultChoice(choice.path, choice.titles, choice.reasons),
        )
        if menu.kind == "grub-legacy":  # legacy `password`/`lock` in the console's terms
            from pvboot.config.legacyauth import legacy_auth

            reply = replace(reply, **legacy_auth(menu))
        return reply

    def command(self, request: CommandRequest) -> CommandReply:
        """One line of the console's GRUB command line; `boot` there arms `boot` with console=True."""
        _, source = self._loaded()
        result = source.command(request.line)
        self._console_boot = result.boot
        return CommandReply(result.output, result.status, result.boot is not None)

    def boot(self, request: BootEntryRequest) -> BootReply:
        """Choose (the console's pick, --entry, or the default with GRUB's fallbacks), check, extract.

        `path` with `source` boots an edited entry; `console` boots what the command line loaded."""
        found, source = self._loaded()
        if request.console:
            if self._console_boot is None:
                raise GuestDataError("the command line has not booted anything")
            choice, spec = (
                Choice([], ["command line"], ["booted from the console's command line"]),
                self._console_boot,
            )
        elif request.path is not None:
            path = list(request.path)
            choice = Choice(path, [], ["chosen on the console"])
            if request.source is not None:
                choice.reasons.append("edited on the console")
                spec = source.run_edited(path, request.source)
            else:
                spec = source.run(path)
        elif request.entry is not None:
            choice = source.choose(request.entry)
            if request.reason:  # the parent's reason for this entry (pvboot/titlerules.py)
                choice.reasons.append(request.reason)
            spec = source.run(choice.path)
        else:  # the default, with the boot loader's fallbacks (config/grub2/session.py boot_default)
            choice, spec = source.boot_default()
        trace.info("chose %s: %s", " > ".join(repr(t) for t in choice.titles), "; ".join(choice.reasons))
        title = " > ".join(choice.titles) or ">".join(map(str, choice.path))
        if not spec.pv_bootable:
            raise GuestDataError(f"menu entry '{title}' cannot boot as a PV guest: {spec.why_not_bootable()}")
        assert spec.kernel is not None
        kernel = self._ref_file(spec.kernel, found.volume)
        if self.xenserver_rules:  # (GRUB 2's `linux` already fell back: loader.loader_file in config/grub2/)
            replacement = fallback_kernel(kernel)
            if replacement is not None:
                choice.reasons.append(
                    f"its kernel {kernel.display} does not exist: {replacement.display} boots instead "
                    "(XenServer's convention)"
                )
                trace.info("%s", choice.reasons[-1])
                kernel = replacement
        initrds = [self._ref_file(ref, found.volume) for ref in spec.initrds]
        devicetree = self._ref_file(spec.devicetree, found.volume) if spec.devicetree else None
        reply = self._copy(kernel, initrds, devicetree, title)
        return replace(reply, args=spec.args, title=title, path=choice.path, reasons=choice.reasons)

    def _ref_file(self, ref: FileRef, home: str) -> GuestFile:
        volume = ref.volume or home
        tree = GuestView(self.disk).tree_of(FileRef(volume, ref.path))
        return GuestFile(tree, ref.path, ref.span, ref.span_name)

    def _locate(self, path: str, volume: str | None) -> GuestFile:
        """`path` (optionally `(device)/path`) on `volume`, else on the first volume holding it."""
        match = _DEVICE_PREFIX.match(path)
        if match:
            volume, path = match.group(1), match.group(2) or "/"
        if not path.startswith("/"):
            raise NotFoundError(f"{path}: not an absolute path")
        if volume:
            return GuestFile(self.disk.volume(volume).tree(), path)
        candidates = self.disk.filesystems()
        if not candidates:
            raise NotFoundError(f"{self.image}: no readable filesystem on the disk")
        for vol in candidates:
            if vol.tree().is_file(path):
                return GuestFile(vol.tree(), path)
        raise NotFoundError(f"{path}: no such file on any volume of the guest disk")

    def extract(self, request: ExtractRequest) -> BootReply:
        """Copy the kernel and the initrds (concatenated) into the output files."""
        kernel = self._locate(request.kernel, request.volume)
        home = kernel.tree.where
        initrds = [self._locate(p, request.volume or home) for p in request.initrds]
        return self._copy(kernel, initrds, None, None)

    def _copy(
        self, kernel: GuestFile, initrds: list[GuestFile], devicetree: GuestFile | None, entry: str | None
    ) -> BootReply:
        # the kernel stage: refuse a kernel Xen cannot start, warn about initrds, validate the DTB
        checked = check_boot_files(
            kernel,
            initrds,
            devicetree,
            self.limits,
            entry=entry,
            check=self.kernel_check,
            defer_decoding=self.defer_decoding and self.fds.kernel is not None,
        )
        fields = checked.reply_fields()
        reply = BootReply(
            kernel_source=kernel.display,
            ramdisk_sources=[i.display for i in initrds],
            kernel_deferred=bool(fields["kernel_deferred"]),
            kernel_info=fields["kernel_info"],
            warnings=fields["warnings"],
            devicetree_source=fields["devicetree_source"],
            devicetree_info=fields["devicetree_info"],
        )
        if checked.devicetree_data is not None and self.fds.devicetree is not None:
            size = write_devicetree(self.fds.devicetree, checked.devicetree_data)
            reply = replace(reply, devicetree_size=size)
        if self.fds.kernel is None:  # --not-really: check only
            for item in [kernel, *initrds]:
                item.tree.open_file(item.path)
            return reply
        cap = self.limits.max_file_size
        reply = replace(reply, kernel_size=copy_files([kernel], self.fds.kernel, cap, "kernel"))
        if initrds:
            assert self.fds.ramdisk is not None
            reply = replace(reply, ramdisk_size=copy_files(initrds, self.fds.ramdisk, cap, "ramdisk"))
        return reply


def _config_kind(name: str, path: str) -> ConfigKind:
    """What kind of boot config a host file is, by its name, else by what its lines look like."""
    lower = name.lower()
    if lower in ("menu.lst", "grub.conf"):
        return GRUB_LEGACY
    if lower in ("extlinux.conf", "syslinux.cfg", "isolinux.cfg", "pxelinux.cfg"):
        return EXTLINUX
    with open(path, "rb") as fh:
        head = fh.read(1 << 20).decode("utf-8", "replace")
    if re.search(r"^\s*(menuentry|submenu|blscfg)\b", head, re.M):
        return GRUB2
    if re.search(r"^\s*title\s", head, re.M | re.I):
        return GRUB_LEGACY
    if re.search(r"^\s*label\s", head, re.M | re.I):
        return EXTLINUX
    return GRUB2


def _describe(volume: Volume) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": volume.name,
        "offset": volume.offset,
        "size": volume.size,
        "fstype": volume.fstype,
    }
    if volume.fstype is not None:
        try:
            info["uuid"] = volume.tree().fs.uuid
            info["label"] = volume.tree().fs.label
        except GuestDataError as exc:
            info["error"] = str(exc)
    return info


def serve(session: GuestSession, channel: Channel) -> None:
    """Answer requests until the parent closes the channel."""
    while True:
        try:
            request = channel.recv()
        except ChannelClosed:
            return
        try:
            reply = session.handle(request)
        except PvbootError as exc:
            reply = ErrorReply(str(exc)).to_json()
        except Exception as exc:
            log.debug("failure", exc_info=True)
            reply = ErrorReply(describe_failure(exc, session.limits.child_address_space)).to_json()
        channel.send(reply)
