"""`regula doctor`'s checks: is this account ready for Regula? The offline checks (check.py) and those that ask the
account (account.py); pipelines/cli/doctor.py prints them."""
