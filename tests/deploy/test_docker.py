"""deploy/docker/Dockerfile: hadolint clean, the three targets, pinned bases, non-root, health checks, the lock."""

from __future__ import annotations

import ast
import re

from tests.deploy.tooling import DOCKERFILE, ROOT, run, tool

FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.I | re.M)
ARG = re.compile(r"^ARG\s+(?P<name>\w+)(?:=(?P<value>\S+))?", re.M)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def stages(text: str) -> dict[str, str]:
    """Stage name -> its FROM image, in file order."""
    return {m["stage"]: m["image"] for m in FROM.finditer(text) if m["stage"]}


def stage_body(text: str, stage: str) -> str:
    """The instructions of one stage (from its FROM to the next FROM)."""
    start = re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(stage)}\s*$", text, re.I | re.M)
    assert start, f"no stage {stage}"
    following = FROM.search(text, start.end())
    return text[start.end() : following.start() if following else len(text)]


def test_hadolint_finds_nothing() -> None:
    out = run([tool("py/bin/hadolint"), "--no-color", DOCKERFILE])
    assert out.strip() == ""


def test_targets_api_worker_and_lambda_exist() -> None:
    assert {"api", "worker", "lambda"} <= set(stages(DOCKERFILE.read_text()))


def test_every_external_base_image_is_pinned_by_digest() -> None:
    text = DOCKERFILE.read_text()
    args = {m["name"]: m["value"] for m in ARG.finditer(text)}
    names = set(stages(text))
    external = [image for image in (m["image"] for m in FROM.finditer(text)) if image not in names]
    assert external, "no base image found"
    for image in external:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1]) or "", image)
        assert "@" in resolved, f"{image} is not pinned by digest"
        assert DIGEST.match(resolved.split("@", 1)[1]), f"{image}: {resolved} has no sha256 digest"


def test_api_and_worker_run_as_a_non_root_user_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    runtime = stage_body(text, "runtime")
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    for target in ("api", "worker"):
        body = stage_body(text, target)
        assert stages(text)[target] == "runtime", f"{target} does not build on the non-root runtime stage"
        assert not re.search(r"^USER\s+(root|0)\b", body, re.M)
        assert re.search(r"^HEALTHCHECK\s+--", body, re.M), f"{target} has no HEALTHCHECK"


def test_the_lock_file_pins_what_the_images_install() -> None:
    text = DOCKERFILE.read_text()
    for build_stage in ("build", "lambda-build"):
        body = stage_body(text, build_stage)
        assert "COPY requirements.lock" in body
        assert re.search(r"install\b.*-c requirements\.lock", body), f"{build_stage} does not install from the lock"


def test_lambda_target_runs_the_handler_that_exists() -> None:
    body = stage_body(DOCKERFILE.read_text(), "lambda")
    command = re.search(r'^CMD\s+\["(?P<target>[\w.]+)"\]', body, re.M)
    assert command, "the lambda stage names no handler"
    module, _, function = command["target"].rpartition(".")
    source = ROOT / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{module} does not exist"
    functions = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert function in functions, f"{module} has no function {function}"
