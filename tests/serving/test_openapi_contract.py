"""The API against its own OpenAPI document: schemathesis generates requests for every operation (valid
ones and invalid ones) and checks that no answer is a server error and that every answer matches the
documented status codes, content types, headers and schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.serving.conftest import live_server
from tests.serving.served_store import HORIZON, StoreTemplate


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_its_contract(
    store_template: StoreTemplate, tmp_path: Path, mode: GenerationMode
) -> None:
    # A throwaway home and a copy of the store: fuzzed alias moves touch nothing else. The deployment's
    # settings say what its models forecast (the template trains for 14 periods), so the document states
    # the what-if horizon its models serve.
    with live_server(store_template, tmp_path, pipeline_horizon=HORIZON) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
        # The admin key reaches every operation; requests without a key are covered in test_api.
        headers = server.headers("admin")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        page = httpx.get(f"{server.url}/api/v1/products", headers=headers, params={"page_size": 5}).json()
        products = [item["product_id"] for item in page["items"]]
        assert len(operations) == 18  # 16 API routes, health and ready

        for operation in operations:
            inputs = len(operation.path_parameters) + len(operation.query) + len(operation.body)
            if mode == GenerationMode.NEGATIVE and inputs == 0:
                continue  # nothing to send wrong (headers are the auth tests' business)
            cases = operation.as_strategy(generation_mode=mode)
            if mode == GenerationMode.POSITIVE and "product_id" in operation.path_parameters:
                # Generated ids name no product (a 404); real ones reach the horizon the document states.
                cases = st.tuples(cases, st.sampled_from(products)).map(with_product)
            # Every default check, "valid data accepted" included: no 5xx, every answer as documented, no
            # request the document allows refused.
            check_operation(cases, headers, [])


def with_product(pair: tuple[Any, str]) -> Any:
    case, product = pair
    case.path_parameters = {**(case.path_parameters or {}), "product_id": product}
    return case


def check_operation(cases: Any, headers: dict[str, str], excluded: list[Any]) -> None:
    # Derandomized: the same examples on every run, so that CI judges the code, not the draw. A random draw
    # once sent a negative-mode request whose invalid parts its serializer had dropped (schemathesis then
    # reported the valid request's 200 as "schema-violating request accepted").
    @given(case=cases)
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def keeps_contract(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    keeps_contract()
