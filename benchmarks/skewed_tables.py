"""Regression tables whose target is positive and right-skewed: the cases steps/target_scale.py's log1p is for.

Real ones that ship inside statsmodels (read from the package's own files, no download; statsmodels is not a
dependency of Regula: `pip install statsmodels` where the benchmark runs, as for benchmarks/forecasting.py), and
synthetic ones with a lognormal target, a small one (900 rows, the size of the issue's house-price table) and a
larger one. Each loader returns (frame, target) as real_tables' loaders do; OPTIONS holds preprocess.py options a
table needs (a count target with few distinct values would otherwise be read as classes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


def statsmodels_table(name: str, target: str, drop: tuple[str, ...] = ()) -> Callable[[], tuple[pd.DataFrame, str]]:
    def load() -> tuple[pd.DataFrame, str]:
        import importlib

        frame = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data
        return frame.drop(columns=list(drop)), target

    return load


def lognormal(n: int, seed: int) -> Callable[[], tuple[pd.DataFrame, str]]:
    """A price-like target: exp of a nonlinear function of numbers and a category, times lognormal noise."""

    def load() -> tuple[pd.DataFrame, str]:
        rng = np.random.default_rng(seed)
        x = rng.normal(0, 1, (n, 5))
        area = rng.lognormal(4.5, 0.4, n)
        grades = np.array(list("ABCD"))
        grade = rng.choice(4, n, p=[0.2, 0.4, 0.3, 0.1])
        log_price = (
            11.0
            + 0.8 * np.log(area / 90)
            + 0.3 * x[:, 0]
            + 0.2 * np.sin(2 * x[:, 1])
            + 0.15 * x[:, 2] * x[:, 3]
            + np.array([-0.3, 0.0, 0.3, 0.7])[grade]
            + rng.normal(0, 0.25, n)
        )
        frame = pd.DataFrame({f"x{i}": x[:, i].round(4) for i in range(5)})
        frame["area"], frame["grade"], frame["price"] = area.round(1), grades[grade], np.exp(log_price).round(0)
        return frame, "price"

    return load


TABLES: dict[str, Callable[[], tuple[pd.DataFrame, str]]] = {
    "fair_affairs": statsmodels_table("fair", "affairs"),  # 6,366 rows, time in affairs: mostly 0, a long tail
    "randhie_visits": statsmodels_table("randhie", "mdvis"),  # 20,190 rows, doctor visits: a count
    "grunfeld_invest": statsmodels_table("grunfeld", "invest"),  # 220 rows, firms' investment
    "engel_food": statsmodels_table("engel", "foodexp"),  # 235 rows, households' food spending against income
    "lognormal_900": lognormal(900, 41),
    "lognormal_5000": lognormal(5000, 43),
}
OPTIONS: dict[str, tuple[str, ...]] = {"randhie_visits": ("--problem-type", "regression")}
