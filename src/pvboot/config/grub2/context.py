"""What GRUB 2 commands may use of the session that runs them: the one interface between the two.

In GRUB a command reaches the rest of the loader through kernel services (grub_env_get/set, grub_file_open,
grub_loader_set, grub_normal_add_menu_entry, grub_printf); pvboot gives its commands the same services
as `CommandContext`, which `session.Grub2Session` implements. Commands import this module, never the
session, so a command can be read, tested and added on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pvboot.errors import GuestDataError, LimitError, NotFoundError

if TYPE_CHECKING:
    from pvboot.config.bls import BlscfgState
    from pvboot.config.grub2.auth import AuthConfig
    from pvboot.config.guestview import GuestView
    from pvboot.config.source import ConfigFiles
    from pvboot.limits import Limits
    from pvboot.menu import BootSpec, Entry, FileRef


class CommandContext(Protocol):
    """The services a command gets: variables, the guest's files, the loader slot, the menu, the log."""

    view: GuestView  # the guest's volumes and files
    volume: str  # the volume grub.cfg was read from
    limits: Limits
    # The loader slot of the entry (or console command line) that runs: None while the config itself
    # runs, where loaders record nothing (commands/boot.c grub_loader_set/unset).
    recorder: BootSpec | None
    auth: AuthConfig  # superusers' secrets, for the console to check
    bls_state: BlscfgState | None  # blscfg's state across calls, None until the first
    search_cache: dict[str, dict[str, str]]  # commands/search.c's cache: kind -> key -> device

    def get(self, name: str) -> str | None:
        """grub_env_get."""
        ...

    def set(self, name: str, value: str) -> None:
        """grub_env_set."""
        ...

    def write(self, text: str) -> None:
        """Output for the console's screen (grub_printf); the decision trace when there is none."""
        ...

    def log(self, message: str) -> None:
        """A line of the decision trace, prefixed with the config line that runs."""
        ...

    def resolve(self, path: str) -> FileRef:
        """`(dev)/path`, or a path on `$root`."""
        ...

    def open_ref(self, path: str) -> FileRef:
        """A file as grub_file_open names it (the path must start with `/`)."""
        ...

    def read_text(self, path: str) -> str:
        """A text file as grub_file_open names it, capped at the config size limit."""
        ...

    def config_files(self, volume: str) -> ConfigFiles:
        """The files of one volume, for readers of other config formats (blscfg)."""
        ...

    def add_entry(self, entry: Entry) -> None:
        """grub_normal_add_menu_entry: the entry joins the menu being built."""
        ...

    def configfile(self, path: str) -> None:
        """Run `path` in a new context with a new menu (commands/configfile.c)."""
        ...


def fail(ctx: CommandContext, message: str) -> int:
    """A command failed (grub_error): logged, kept for the console, status 1; the script goes on."""
    ctx.log(f"error: {message}")
    if ctx.recorder is not None:
        ctx.recorder.errors.append(message)
    return 1


def file_failure(ctx: CommandContext, exc: GuestDataError, path: str) -> int:
    """A guest file a command opened could not be read: GRUB's "file `PATH' not found" for a missing
    one, the reader's message otherwise. A limit is never a command failure: it ends the run."""
    if isinstance(exc, LimitError):
        raise exc
    return fail(ctx, f"file `{path}' not found" if isinstance(exc, NotFoundError) else str(exc))
