"""What an AWS call's failure means for the user, in one line: the network (and, where AWS_ENDPOINT_URL is set, that
endpoint) or the credentials, which need different fixes; and whether the endpoint in use is AWS at all.

Light to import: botocore's exceptions are recognized by their class names, so `regula --help` loads no boto."""

from __future__ import annotations

import os
from urllib.parse import urlparse

NETWORK_ERRORS = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ProxyConnectionError",
    "SSLError",
}
MISSING_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"}
REFUSED_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "AuthFailure",
}
AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def endpoint_variable() -> tuple[str, str] | None:
    """(variable, URL) of the AWS_ENDPOINT_URL* variable in effect, if any."""
    for name in sorted(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") and os.environ[name]:
            return name, os.environ[name]
    return None


def is_aws(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host.endswith(AWS_HOSTS)


def kind(error: BaseException) -> str:
    """ "network", "missing credentials", "refused credentials" or "other"."""
    names = {type(error).__name__} | {c.__name__ for c in type(error).__mro__}
    if names & NETWORK_ERRORS:
        return "network"
    if names & MISSING_CREDENTIALS:
        return "missing credentials"
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "") if hasattr(error, "response") else ""
    if code in REFUSED_CREDENTIALS:
        return "refused credentials"
    return "other"


def explain(error: BaseException) -> str:
    """The failure in one line, naming what to fix."""
    what = kind(error)
    if what == "network":
        variable = endpoint_variable()
        if variable:
            return (
                f"cannot reach {variable[1]}, the endpoint {variable[0]} names: is that server running? "
                f"(unset {variable[0]} to use AWS itself) [{error}]"
            )
        return f"cannot reach AWS: no network, or a proxy or firewall in the way (not a credentials problem) [{error}]"
    if what == "missing credentials":
        return (
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (`aws configure`); for a "
            "local registry, start `moto_server -p 5000` and export AWS_ENDPOINT_URL=http://127.0.0.1:5000 with any "
            "keys (README)"
        )
    if what == "refused credentials":
        return f"AWS refused these credentials (wrong, expired or for another partition): {error}"
    return f"AWS: {error}"


def not_aws_note(url: str | None) -> str | None:
    """The note for commands that create or run executions against an endpoint that is not AWS (moto, LocalStack):
    they are recorded there, and nothing runs."""
    if not url or is_aws(url):
        return None
    return (
        f"note: the endpoint {url} is not AWS: SageMaker executions do not run there (moto records an execution and "
        "marks it Succeeded at once, running no step); `regula run --local` runs the pipeline on this machine"
    )
