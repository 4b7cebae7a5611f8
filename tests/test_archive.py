"""steps/archive.py: a model.tar.gz is unpacked with tarfile's data filter, or, on a Python without it (3.11.2,
Debian 12's), with the same refusals under the same names."""

from __future__ import annotations

import io
import tarfile

import pytest

from steps import archive


def packed(tmp_path, members: list[tarfile.TarInfo]) -> object:
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind=tarfile.REGTYPE, link: str = "", size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size if kind == tarfile.REGTYPE else 0
    info.mode = 0o4777  # setuid and world-writable: neither survives
    return info


@pytest.fixture(params=["data filter", "this module's checks"])
def how(request, monkeypatch):
    if request.param == "this module's checks":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no data filter")
    return request.param


def test_a_plain_artifact_unpacks_with_its_folders_files_and_inner_links(tmp_path, how):
    path = packed(
        tmp_path,
        [member("code", tarfile.DIRTYPE), member("code/inference.py"), member("model.pt", size=3),
         member("code/alias.py", tarfile.SYMTYPE, link="inference.py")],
    )  # fmt: skip
    archive.extract(path, tmp_path / "out")
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"xxx"
    assert (tmp_path / "out" / "code" / "alias.py").read_bytes() == b"x"
    assert not (tmp_path / "out" / "model.pt").stat().st_mode & 0o4002  # no setuid, not world-writable


@pytest.mark.parametrize(
    "hostile, error",
    [
        (member("../escaped.py"), "OutsideDestinationError"),
        (member("/tmp/absolute.py"), "AbsolutePathError"),
        (member("code/link", tarfile.SYMTYPE, link="/etc/passwd"), "AbsoluteLinkError"),
        (member("code/link", tarfile.SYMTYPE, link="../../../x"), "LinkOutsideDestinationError"),
        (member("code/hard", tarfile.LNKTYPE, link="../outside"), "LinkOutsideDestinationError"),
        (member("code/fifo", tarfile.FIFOTYPE), "SpecialFileError"),
        (member("code/dev", tarfile.CHRTYPE), "SpecialFileError"),
    ],
    ids=["outside", "absolute", "absolute-link", "link-outside", "hard-link-outside", "fifo", "device"],
)
def test_a_hostile_member_is_refused_by_the_filters_name_and_nothing_escapes(hostile, error, tmp_path, how):
    path = packed(tmp_path, [member("model.pt"), hostile])
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    if error == "AbsolutePathError" and how == "data filter":  # the filter strips the "/": inside, not refused
        archive.extract(path, out)
        assert (out / "tmp" / "absolute.py").exists()
        return
    with pytest.raises(tarfile.TarError) as raised:
        archive.extract(path, out)
    assert type(raised.value).__name__ == error
    assert not (tmp_path / "deep" / "escaped.py").exists() and not (tmp_path / "outside").exists()
    if how == "this module's checks":  # every member is checked before any is written
        assert not (out / "model.pt").exists()
