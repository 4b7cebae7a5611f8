"""The errors Regula reports to users in one line, without a traceback, and the exit status each one ends with.

`regula` exits with an `ExitStatus` (README, "Exit statuses"): CI scripts branch on it. A user's error is a
`RegulaError` of one kind below (usage, refused, not found, timeout, environment); each area subclasses the kind it
raises, so its tests can catch the area's error and the CLI still knows the status. Anything else that escapes a
command is a bug: the CLI prints its traceback and exits UNEXPECTED. Light to import: `regula --help` loads it."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """What `regula`'s exit status means. The README's table is this one (tests/test_errors.py checks)."""

    SUCCESS = 0  # done: the run registered a model, the command did what it was asked
    FAILED = 1  # the run or the execution ended without succeeding; a check found problems (render --check, doctor)
    USAGE = 2  # the command line, a parameter, a setting or the input data is not something Regula can use
    REFUSED = 3  # a guard said no: a policy-breaking approval, a Rejected or tampered model, a retry of a live run
    NOT_FOUND = 4  # what the command names does not exist: a pipeline, an execution, a model package, a file
    TIMEOUT = 5  # gave up waiting (`--wait`): the execution is still going
    ENVIRONMENT = 6  # this machine or AWS: a full disk, an unreadable file, no network, no or refused credentials
    UNEXPECTED = 70  # a bug in Regula: the traceback is printed (sysexits' EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)


class RegulaError(Exception):
    """A user's error, said in one line. Plain RegulaError is a usage error; the subclasses below say otherwise."""


class UsageError(RegulaError):
    """A mistake in what the user asked for: an option, a parameter, a setting, the input data."""


class UsageValueError(UsageError, ValueError):
    """A usage error raised where callers (the settings, the parameter checks) have always caught ValueError."""


class Refused(RegulaError):
    """A guard refused: the action is possible, and the rules say no (the message says what overrides it)."""


class NotFound(RegulaError):
    """What the user named does not exist."""


class WaitTimeout(RegulaError):
    """Gave up waiting; what was waited for goes on."""


class EnvironmentProblem(RegulaError):
    """Not the user's input: this machine (disk, packages) or the account refuses."""


# The one map from an error's kind to its exit status: the first of an error's classes (in method resolution order)
# found here decides. OSError is here for a full disk or an unreadable file; botocore's errors are found by module
# in `exit_status` (importing botocore would slow `regula --help`).
EXIT_STATUS = {
    UsageError: ExitStatus.USAGE,
    Refused: ExitStatus.REFUSED,
    NotFound: ExitStatus.NOT_FOUND,
    WaitTimeout: ExitStatus.TIMEOUT,
    EnvironmentProblem: ExitStatus.ENVIRONMENT,
    RegulaError: ExitStatus.USAGE,
    OSError: ExitStatus.ENVIRONMENT,
    KeyboardInterrupt: ExitStatus.INTERRUPTED,
}


def is_aws_error(error: BaseException) -> bool:
    """botocore's and urllib3's errors: no network, no or refused credentials, access denied, throttled."""
    return type(error).__module__.startswith(("botocore", "urllib3"))


def exit_status(error: BaseException) -> ExitStatus:
    """The exit status `regula` ends with when `error` escapes a command."""
    for cls in type(error).__mro__:
        if cls in EXIT_STATUS:
            return EXIT_STATUS[cls]
    if is_aws_error(error):
        return ExitStatus.ENVIRONMENT
    return ExitStatus.UNEXPECTED
