"""`regula doctor`: is this account ready for Regula? The offline checks (command.py) and those that ask the account
(account.py)."""
