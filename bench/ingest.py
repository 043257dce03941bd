"""Ingestion throughput and peak memory: synthetic sales files into SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py                 # 1 M and 10 M rows
    .venv/bin/python bench/ingest.py --rows 1000000  # one size

Each measurement runs in a fresh process so that its peak RSS is its own. Baselines measured in the same
run: reading and validating the file without a database, and a bare COPY of the file into an unindexed
PostgreSQL table (the ceiling for any loader on this machine).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DB = "salescast_bench"


def make_file(rows: int, folder: Path) -> Path:
    from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales

    path = folder / f"sales_{rows}.csv"
    if path.exists():
        return path
    days, stores = 1000, 10
    products = max(1, round(rows / (days * stores)))
    # Launches mid-history trim some rows: the table reports the rows the file really has.
    frame = generate_sales(SyntheticConfig(stores=stores, products=products, days=days, seed=1))
    write_sales(frame, path)
    return path


def child(kind: str, path: str, url: str) -> None:
    """One measurement, run in its own process; prints a JSON line."""
    from salescast.config import Settings
    from salescast.data.database import make_engine, migrate
    from salescast.data.ingest import ingest_file
    from salescast.data.presets import resolve_spec
    from salescast.data.sources import iter_raw_chunks
    from salescast.data.validation import validate_chunk

    settings = Settings()
    spec = resolve_spec(None)
    started = time.perf_counter()
    rows = 0
    if kind == "read+validate":
        for raw in iter_raw_chunks(Path(path), spec, settings.ingest_chunk_rows):
            rows += validate_chunk(raw, spec, settings.negative_sales).rows_read
    elif kind == "pg COPY ceiling":
        with psycopg.connect(url.replace("+psycopg", "")) as conn, conn.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE raw (date text, store text, store_name text, product text, product_name text,"
                " category text, subcategory text, units float8, unit_price float8, revenue float8,"
                " on_promotion boolean)"
            )
            with Path(path).open("rb") as handle, cursor.copy("COPY raw FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
                while block := handle.read(1 << 20):
                    copy.write(block)
            rows = cursor.execute("SELECT COUNT(*) FROM raw").fetchone()[0]  # type: ignore[index]
    else:
        engine = make_engine(url)
        migrate(engine)
        report = ingest_file(engine, Path(path), spec, settings)
        rows = report.rows_read
        assert report.rows_rejected == 0, report.problems[:5]
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, path: Path, url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), url], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def fresh_postgres() -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{BENCH_DB}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="salescast ingest benchmark (rows/s, peak RSS of the measuring process)")
    for name in ("rows", "step", "seconds", "rows/s", "peak RSS MiB", "vs baseline"):
        table.add_column(name, justify="left" if name == "step" else "right")
    with tempfile.TemporaryDirectory(prefix="salescast-bench-") as tmp:
        folder = Path(tmp)
        for rows in args.rows:
            path = make_file(rows, folder)
            mib = path.stat().st_size / 2**20
            print(f"{rows:,} rows requested: {path.name}, {mib:,.0f} MiB", file=sys.stderr)
            results: list[tuple[str, dict[str, float], str]] = []
            baseline = measure("read+validate", path, "")
            results.append(("read+validate (no DB)", baseline, "1.00x"))
            sqlite_url = f"sqlite:///{folder / f'bench_{rows}.db'}"
            for label, kind, url in [
                ("SQLite ingest", "ingest", sqlite_url),
                ("SQLite re-ingest (no-op)", "ingest", sqlite_url),
            ]:
                results.append((label, measure(kind, path, url), ""))
            ceiling = measure("pg COPY ceiling", path, fresh_postgres())
            results.append(("PostgreSQL bare COPY (ceiling)", ceiling, ""))
            pg_url = fresh_postgres()
            for label in ("PostgreSQL ingest", "PostgreSQL re-ingest (no-op)"):
                results.append((label, measure("ingest", path, pg_url), ""))
            for label, result, _ in results:
                rate = result["rows"] / result["seconds"]
                ratio = f"{result['seconds'] / baseline['seconds']:.2f}x time"
                if label.startswith("PostgreSQL") and "ceiling" not in label:
                    ratio = f"{ceiling['seconds'] / result['seconds']:.0%} of COPY speed"
                table.add_row(
                    f"{int(result['rows']):,}",
                    label,
                    f"{result['seconds']:.1f}",
                    f"{rate:,.0f}",
                    f"{result['peak_mib']:,.0f}",
                    ratio,
                )
            (folder / f"bench_{rows}.db").unlink(missing_ok=True)
            path.unlink()
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    Console(width=130).print(table)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
