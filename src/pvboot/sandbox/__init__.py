"""The process boundary: every stage that reads guest bytes runs in a forked, confined child.

The parent never opens the image. It talks to the child over a socketpair with small JSON messages and
validates what comes back before anything reaches libxl or a terminal.
"""

from pvboot.sandbox.channel import Channel
from pvboot.sandbox.child import Child

__all__ = ["Channel", "Child"]
