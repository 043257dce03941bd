"""The Airflow DAGs in deploy/airflow call the worker's own functions, on the worker's schedules.

Airflow is not installed here, on purpose: apache-airflow pins much of what salescast also pins (SQLAlchemy,
pydantic, pandas, ...), so it cannot live in the same environment. These tests load the DAG file against a
minimal fake `airflow` package (DAG as a context manager, PythonOperator recording its callable, `>>`
recording dependencies) and check what the file declares. Whether a real Airflow accepts it (a DagBag
import with no errors) belongs in a separate environment that has Airflow and salescast, not in this suite.
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from salescast.worker import cron_trigger, ingest_drop, retrain

DAG_FILE = Path(__file__).resolve().parents[2] / "deploy" / "airflow" / "salescast_dag.py"

# What PythonOperator passes to a callable whose parameters carry these names (Airflow 2.10 and 3.x task
# context): a worker function must never have one, or Airflow would fill it with the wrong thing.
AIRFLOW_CONTEXT_KEYS = frozenset(
    {
        "conf", "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds", "ds_nodash",
        "exception", "execution_date", "expanded_ti_count", "inlet_events", "inlets", "logical_date", "macros",
        "map_index_template", "next_ds", "next_ds_nodash", "next_execution_date", "outlet_events", "outlets",
        "params", "prev_data_interval_end_success", "prev_data_interval_start_success", "prev_ds",
        "prev_ds_nodash", "prev_end_date_success", "prev_execution_date", "prev_execution_date_success",
        "prev_start_date_success", "run_id", "task", "task_instance", "task_instance_key_str", "task_reschedule_count",
        "templates_dict", "test_mode", "ti", "tomorrow_ds", "tomorrow_ds_nodash", "triggering_asset_events",
        "triggering_dataset_events", "ts", "ts_nodash", "ts_nodash_with_tz", "var", "yesterday_ds",
        "yesterday_ds_nodash",
    }
)  # fmt: skip


class FakeDAG:
    """Records its arguments and the operators created inside its `with` block."""

    stack: ClassVar[list[FakeDAG]] = []

    def __init__(self, dag_id: str, **kwargs: Any) -> None:
        self.dag_id = dag_id
        self.kwargs = kwargs
        self.tasks: dict[str, FakePythonOperator] = {}

    def __enter__(self) -> FakeDAG:
        FakeDAG.stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        FakeDAG.stack.pop()


class FakePythonOperator:
    def __init__(self, *, task_id: str, python_callable: Callable[..., Any], **kwargs: Any) -> None:
        assert FakeDAG.stack, f"task {task_id!r} was created outside a DAG"
        assert callable(python_callable), "Airflow refuses a python_callable that is not callable"
        self.dag = FakeDAG.stack[-1]
        assert task_id not in self.dag.tasks, f"duplicate task id {task_id!r}"
        self.dag.tasks[task_id] = self
        self.task_id = task_id
        self.python_callable = python_callable
        self.kwargs = kwargs
        self.downstream: set[str] = set()

    def __rshift__(self, other: FakePythonOperator) -> FakePythonOperator:
        self.downstream.add(other.task_id)
        return other


def _install_fake_airflow(monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """The modules the DAG file imports, as Airflow 3 or Airflow 2 lays them out."""
    modules: dict[str, dict[str, object]]
    if layout == "airflow3":
        modules = {
            "airflow": {},
            "airflow.sdk": {"DAG": FakeDAG},
            "airflow.providers": {},
            "airflow.providers.standard": {},
            "airflow.providers.standard.operators": {},
            "airflow.providers.standard.operators.python": {"PythonOperator": FakePythonOperator},
        }
    else:
        modules = {
            "airflow": {"DAG": FakeDAG},
            "airflow.operators": {},
            "airflow.operators.python": {"PythonOperator": FakePythonOperator},
        }
    for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
        monkeypatch.delitem(sys.modules, name)
    for name, attributes in modules.items():
        module = ModuleType(name)
        for attribute, value in attributes.items():
            setattr(module, attribute, value)
        monkeypatch.setitem(sys.modules, name, module)


def load_dags(monkeypatch: pytest.MonkeyPatch, layout: str = "airflow3") -> dict[str, FakeDAG]:
    _install_fake_airflow(monkeypatch, layout)
    spec = importlib.util.spec_from_file_location("salescast_dag_under_test", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {dag.dag_id: dag for dag in vars(module).values() if isinstance(dag, FakeDAG)}


@pytest.fixture(autouse=True)
def _default_schedules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("SALESCAST_INGEST_CRON", raising=False)
    monkeypatch.delenv("SALESCAST_RETRAIN_CRON", raising=False)


@pytest.mark.parametrize("layout", ["airflow3", "airflow2"])
def test_the_dags_call_the_worker_functions_in_order(monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    dags = load_dags(monkeypatch, layout)

    assert set(dags) == {"salescast_ingest", "salescast_training"}
    ingest, training = dags["salescast_ingest"], dags["salescast_training"]
    assert list(ingest.tasks) == ["ingest_drop"]
    assert ingest.tasks["ingest_drop"].python_callable is ingest_drop
    assert list(training.tasks) == ["ingest_drop", "retrain"]
    assert training.tasks["ingest_drop"].python_callable is ingest_drop
    assert training.tasks["retrain"].python_callable is retrain
    assert training.tasks["ingest_drop"].downstream == {"retrain"}
    assert training.tasks["retrain"].downstream == set()


def test_the_schedules_are_the_worker_schedules_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_dags(monkeypatch)
    monkeypatch.setenv("SALESCAST_INGEST_CRON", "30 1 * * *")
    monkeypatch.setenv("SALESCAST_RETRAIN_CRON", "0 4 * * 0")
    configured = load_dags(monkeypatch)

    assert defaults["salescast_ingest"].kwargs["schedule"] == "0 2 * * *"
    assert defaults["salescast_training"].kwargs["schedule"] == "0 3 * * 1"
    assert configured["salescast_ingest"].kwargs["schedule"] == "30 1 * * *"
    assert configured["salescast_training"].kwargs["schedule"] == "0 4 * * 0"
    for dag in (*defaults.values(), *configured.values()):
        cron_trigger(dag.kwargs["schedule"])  # the worker reads the same expression the same way
        assert dag.kwargs["catchup"] is False and dag.kwargs["max_active_runs"] == 1
        assert dag.kwargs["start_date"].tzinfo is not None


def test_tasks_get_no_arguments_and_push_no_xcom(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [task for dag in load_dags(monkeypatch).values() for task in dag.tasks.values()]

    for task in tasks:
        # Settings are read when the task runs: as op_kwargs they would be rendered, secrets and all, in the UI.
        assert "op_args" not in task.kwargs and "op_kwargs" not in task.kwargs
        assert task.kwargs["do_xcom_push"] is False
        parameters = inspect.signature(task.python_callable).parameters.values()
        assert all(p.default is not inspect.Parameter.empty for p in parameters), "Airflow calls it with none"
        assert not {p.name for p in parameters} & AIRFLOW_CONTEXT_KEYS


def test_parsing_the_dag_does_not_load_the_training_stack() -> None:
    # The scheduler parses DAG files every few seconds; pandas, boto3 and the models load when a task runs.
    probe = "import sys, salescast.worker; print(sorted({'pandas', 'boto3', 'lightgbm', 'pyarrow'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)

    assert loaded.stdout.strip() == "[]"
