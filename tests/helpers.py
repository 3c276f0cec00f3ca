"""Helpers shared by test modules (no tests here), one home each.

* rating files in MovieLens shapes (``small_rows``, ``write_ml100k``, ``planted_ml100k``,
  ``ml_csv_bytes``, ``movies_csv_bytes``, ``ml_latest_zip``) and a planted-mixture CSV
  (``planted_csv``);
* the CLI in this process (``run_cli``) and strict JSON (``strict_json``).

The dashboard's AppTest helpers are in ``tests/dashboard_helpers.py`` (they import
Streamlit), the browser harness in ``tests/e2e_support.py``; fixtures (the test's run
store, worker clean-up) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

TITLES = {1: "Toy Story (1995)", 2: "Amélie (2001)", 3: "Heat, The (1995)", 4: "Se7en (1995)", 5: "Fargo (1996)"}


# --------------------------------------------------------------------------- rating files
def small_rows(n_users=12, n_items=9, per_user=(3, 8), seed=0, half_stars=False):
    """Unique (user, item, rating, timestamp) rows with ids 1..; user 1 has only 2 ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        k = 2 if u == 1 else int(rng.integers(per_user[0], per_user[1] + 1))
        items = rng.choice(np.arange(1, n_items + 1), size=min(k, n_items), replace=False)
        for i in items:
            r = float(rng.integers(1, 11) / 2) if half_stars else float(rng.integers(1, 6))
            rows.append((u, int(i), r, int(rng.integers(8_000_000_00, 9_000_000_00))))
    return rows


def write_ml100k(folder: Path, rows=None, folds=("u1",)) -> list:
    """An ml-100k-shaped folder: u.data, u.item (latin-1), and fold files u1.base/u1.test
    (``folds=()``: none). ``rows``: (user, item, rating, timestamp) tuples, default
    :func:`small_rows`. Returns the rows."""
    rows = rows or small_rows()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in rows))
    items = sorted({i for _, i, _, _ in rows})
    (folder / "u.item").write_bytes(
        "".join(f"{i}|{TITLES.get(i, f'Movie {i}')}|01-Jan-1995||http://x|0|0\n" for i in items).encode("latin-1")
    )
    for fold in folds:
        test = rows[::5]
        base = [r for k, r in enumerate(rows) if k % 5]
        (folder / f"{fold}.base").write_text("".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in base))
        (folder / f"{fold}.test").write_text("".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in test))
    return rows


def planted_ml100k(data_dir: Path, n_users=40, n_items=30, seed=0) -> Path:
    """A data folder holding ``ml-100k/`` (:func:`write_ml100k`, no folds) whose ratings come
    from a planted mixture (2 groups, rank 3, density 0.3): data that MF and MMF can learn.
    Returns ``data_dir``, to pass as ``--data_dir``."""
    from mmf_core.data.synthetic import planted_mixture_ratings

    r = planted_mixture_ratings(n_users, n_items, 2, 3, 0.3, seed=seed)
    rows = [(int(u) + 1, int(i) + 1, float(x), 881250940 + k % 10) for k, (u, i, x) in enumerate(zip(r.users, r.items, r.ratings))]
    write_ml100k(Path(data_dir) / "ml-100k", rows, folds=())
    return Path(data_dir)


def planted_csv(path: Path, n_users: int, n_items: int, density: float, seed: int = 0) -> Path:
    """A ``user,item,rating`` CSV of planted-mixture ratings at ``path``; returns the path."""
    import pandas as pd

    from mmf_core.data.synthetic import planted_mixture_ratings

    r = planted_mixture_ratings(n_users=n_users, n_items=n_items, density=density, seed=seed)
    pd.DataFrame({"user": r.user_ids[r.users], "item": r.item_ids[r.items], "rating": r.ratings}).to_csv(path, index=False)
    return path


def ml_csv_bytes(rows) -> bytes:
    return ("userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r:.1f},{t}\n" for u, i, r, t in rows)).encode()


def movies_csv_bytes(items) -> bytes:
    lines = ["movieId,title,genres"]
    for i in items:
        title = TITLES.get(i, f"Movie {i}")
        lines.append(f'{i},"{title}",Drama' if "," in title else f"{i},{title},Drama")
    return ("\n".join(lines) + "\n").encode()


def ml_latest_zip(rows, inner="ml-latest-small") -> bytes:
    """The bytes of an official-looking ml-latest-small.zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{inner}/README.txt", "fixture")
        zf.writestr(f"{inner}/ratings.csv", ml_csv_bytes(rows))
        zf.writestr(f"{inner}/movies.csv", movies_csv_bytes(sorted({i for _, i, _, _ in rows})))
    return buf.getvalue()


# --------------------------------------------------------------------------- CLI and JSON
def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``python -m mmf_core ARGV``, run in this process."""
    from mmf_core.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(text: str):
    """Parse JSON as the standard has it: NaN and Infinity are errors (Python's json
    writes and reads them unless told not to)."""
    def refuse(name):
        raise ValueError(f"JSON holds {name}, which is not JSON: {text[:300]}")

    return json.loads(text, parse_constant=refuse)
