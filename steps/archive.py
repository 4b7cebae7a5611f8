"""Unpacking a model.tar.gz that may be hostile: tarfile's "data" filter where this Python has it, the same rules
where it does not.

The filter came with Python 3.12 and was backported to 3.11.4. Debian 12's system Python is 3.11.2, and that is the
PEP 668 case the README's commands are for: a venv made from it has no filter, so `extractall(filter="data")` fails
with a TypeError. On such a Python every member is checked first, by the filter's rules and under its exception
names (so a refusal reads the same on every Python):

- no absolute name (the filter strips the leading "/" instead), and no name that resolves outside the
  destination;
- no link whose target is absolute or resolves outside it;
- no device or FIFO.

Then the members are extracted without their owners and modes (the filter drops those too).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path


class UnsafeMember(getattr(tarfile, "FilterError", tarfile.TarError)):
    """The base of this module's refusals: a TarError, and the filter's FilterError where tarfile has one."""


# The data filter's exception names; these take a message (tarfile's own take the member and a path).
class AbsolutePathError(UnsafeMember): ...


class OutsideDestinationError(UnsafeMember): ...


class AbsoluteLinkError(UnsafeMember): ...


class LinkOutsideDestinationError(UnsafeMember): ...


class SpecialFileError(UnsafeMember): ...


def extract(archive: Path, into: Path) -> None:
    """Unpack `archive` into `into`; raises a tarfile.TarError (or EOFError, zlib.error) for a hostile or corrupt
    one."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        members = tar.getmembers()
        for member in members:
            check(member, into)
        for member in members:
            tar.extract(member, into, set_attrs=False)


def check(member: tarfile.TarInfo, into: Path) -> None:
    """The data filter's refusals for one member."""
    root = os.path.realpath(into)
    name = member.name
    if name.startswith(("/", os.sep)) or os.path.isabs(name):
        raise AbsolutePathError(f"member {name!r} has an absolute path")
    target = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, target]) != root:
        raise OutsideDestinationError(f"{name!r} would be extracted to {target!r}, which is outside the destination")
    if member.isdev() or member.isfifo():
        raise SpecialFileError(f"{name!r} is a special file")
    if member.issym() or member.islnk():
        link = member.linkname
        if os.path.isabs(link):
            raise AbsoluteLinkError(f"{name!r} is a link to an absolute path")
        base = os.path.dirname(target) if member.issym() else root
        resolved = os.path.realpath(os.path.join(base, link))
        if os.path.commonpath([root, resolved]) != root:
            raise LinkOutsideDestinationError(f"{name!r} would link to {resolved!r}, which is outside the destination")
