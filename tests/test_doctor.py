"""The S3 bucket naming rules `regula upsert` and `regula doctor` share."""

from __future__ import annotations

import pytest
from helpers import regula

from pipelines.s3 import bucket_name_problems

ROLE_ARN = "arn:aws:iam::123456789012:role/RegulaSageMakerExecution"


def test_upsert_says_an_invalid_bucket_name_is_invalid(aws):
    result = regula("upsert", "--bucket", "b", "--role-arn", ROLE_ARN)
    assert result.returncode == 2
    assert result.stderr.strip() == "regula: error: bucket name 'b' is invalid: it has 1 character (3 to 63)"


@pytest.mark.parametrize("name", ["regula-artifacts", "my.bucket.1", "abc", "a" * 63, "1-2-3"])
def test_valid_bucket_names(name):
    assert bucket_name_problems(name) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "it has 2 characters (3 to 63)"),
        ("a" * 64, "it has 64 characters (3 to 63)"),
        ("My-Bucket", "it holds 'B' 'M': only lowercase letters, digits, dots and hyphens are allowed"),
        ("my_bucket", "it holds '_': only lowercase letters, digits, dots and hyphens are allowed"),
        ("-bucket", "it must begin and end with a letter or a digit"),
        ("bucket.", "it must begin and end with a letter or a digit"),
        ("my..bucket", "it has two dots in a row"),
        ("192.168.5.4", "it is formatted as an IP address"),
        ("xn--bucket", "it starts with 'xn--', reserved by AWS"),
        ("sthree-bucket", "it starts with 'sthree-', reserved by AWS"),
        ("bucket-s3alias", "it ends with '-s3alias', reserved by AWS"),
        ("bucket--ol-s3", "it ends with '--ol-s3', reserved by AWS"),
    ],
)
def test_invalid_bucket_names(name, problem):
    assert bucket_name_problems(name) == [problem]
