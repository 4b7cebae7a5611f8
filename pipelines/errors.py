"""The errors Regula reports to users in one line, without a traceback."""


class RegulaError(Exception):
    pass
