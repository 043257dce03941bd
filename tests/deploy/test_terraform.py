"""deploy/terraform: formatted, valid, every module wired into the root, checkov clean, and the choices the
issue asks for (worker egress, per-environment switches, remote state) present in the code."""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.deploy.tooling import TERRAFORM_DIR, run, terraform, terraform_config, terraform_copy, terraform_env, tool

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def wiring_problems(config: dict[str, Any]) -> list[str]:
    """Modules the root does not reach (itself or through a module it calls, as the WAF rule set is reached),
    calls to folders that are not modules, required variables not passed."""
    problems = []
    reached: set[str] = set()
    waiting = ["."]
    while waiting:
        caller = waiting.pop()
        for name, call in sorted(config[caller]["modules"].items()):
            target = f"modules/{Path(call['source']).name}"
            where = "" if caller == "." else f" in {caller}"
            if target not in config:
                problems.append(f"module.{name}{where} calls {call['source']}, which is not a module folder")
                continue
            required = {v for v, spec in config[target]["variables"].items() if spec["required"]}
            if missing := sorted(required - set(call["arguments"])):
                problems.append(f"module.{name}{where} does not pass required variable(s) {', '.join(missing)}")
            if unknown := sorted(set(call["arguments"]) - set(config[target]["variables"])):
                problems.append(f"module.{name}{where} passes unknown argument(s) {', '.join(unknown)}")
            if target not in reached:
                reached.add(target)
                waiting.append(target)
    for folder in sorted(config):
        if folder.startswith("modules/") and folder not in reached:
            problems.append(f"module {folder.removeprefix('modules/')} is not used by the root")
    return problems


def test_every_module_is_used_by_the_root_with_its_required_variables() -> None:
    config = terraform_config()
    assert len([f for f in config if f.startswith("modules/")]) >= 15
    assert wiring_problems(config) == []


def test_an_unwired_module_and_a_missing_variable_are_reported(tmp_path: Path) -> None:
    tree = terraform_copy(tmp_path)
    (tree / "modules" / "orphan").mkdir()
    (tree / "modules" / "orphan" / "main.tf").write_text('variable "name" {\n  type = string\n}\n')
    main = tree / "main.tf"
    network_key = "  kms_key_arn      = module.kms.key_arn\n"  # the first call with this alignment: network
    main.write_text(main.read_text().replace(network_key, "", 1))
    assert wiring_problems(terraform_config(tree)) == [
        "module.network does not pass required variable(s) kms_key_arn",
        "module orphan is not used by the root",
    ]


def test_each_environment_sets_every_required_root_variable_and_no_unknown_one() -> None:
    variables = terraform_config()["."]["variables"]
    required = {name for name, spec in variables.items() if spec["required"]}
    for env in ("dev", "prod"):
        text = (TERRAFORM_DIR / "envs" / f"{env}.tfvars").read_text()
        assigned = set(re.findall(r"^(\w+)\s*=", text, re.M))
        assert required - assigned == set(), f"envs/{env}.tfvars misses {sorted(required - assigned)}"
        assert assigned - set(variables) == set(), f"envs/{env}.tfvars sets unknown {sorted(assigned - set(variables))}"


def test_terraform_fmt_check(tmp_path: Path) -> None:
    binary = terraform()
    run([binary, "fmt", "-check", "-recursive", "-diff", TERRAFORM_DIR], env=terraform_env(tmp_path))


def test_root_and_local_sim_validate_with_the_local_provider_mirror(tmp_path: Path) -> None:
    """`terraform validate` of the root covers every module as the root calls it (all of them, see above)."""
    binary = terraform()
    env = terraform_env(tmp_path)
    tree = terraform_copy(tmp_path)
    for folder in (tree, tree / "local-sim"):
        run([binary, "init", "-backend=false", f"-plugin-dir={_plugin_dir()}", "-no-color"], cwd=folder, env=env)
        out = run([binary, "validate", "-json", "-no-color"], cwd=folder, env=env)
        result = json.loads(out)
        assert result["valid"], result["diagnostics"]
        assert result["error_count"] == 0


def test_each_module_validates_on_its_own(tmp_path: Path) -> None:
    """A module validated alone catches what the root's values hide (e.g. a default that does not fit its type).

    About 3 s each (the provider is linked from the mirror, not copied); four at a time."""
    binary = terraform()
    env = terraform_env(tmp_path)
    modules = sorted(p for p in (terraform_copy(tmp_path) / "modules").iterdir() if p.is_dir())

    def validate(folder: Path) -> tuple[str, dict[str, Any]]:
        # A module that takes an aliased provider (cdn: aws.us_east_1) gets it from its caller; alone, it is
        # the root, so the copy declares it.
        for alias in re.findall(r"configuration_aliases\s*=\s*\[aws\.(\w+)\]", (folder / "versions.tf").read_text()):
            (folder / f"validate_{alias}.tf").write_text(f'provider "aws" {{\n  alias  = "{alias}"\n}}\n')
        run([binary, "init", "-backend=false", f"-plugin-dir={_plugin_dir()}", "-no-color"], cwd=folder, env=env)
        return folder.name, json.loads(run([binary, "validate", "-json", "-no-color"], cwd=folder, env=env))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(validate, modules))
    assert len(results) >= 15
    assert {name: r["diagnostics"] for name, r in results.items() if not r["valid"]} == {}


def _plugin_dir() -> Path:
    from tests.deploy.tooling import PLUGIN_DIR

    return PLUGIN_DIR


def test_checkov_finds_no_failed_check(tmp_path: Path) -> None:
    checkov = tool("checkov/bin/checkov")
    tree = terraform_copy(tmp_path)
    shutil.rmtree(tree / "local-sim")  # a test fixture for the simulator, not infrastructure
    out = run(
        [checkov, "-d", tree, "--framework", "terraform", "--quiet", "--compact", "--skip-download", "-o", "json"],
        env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/bin:/bin"},
        timeout=180,
    )
    reports = json.loads(out)
    for report in reports if isinstance(reports, list) else [reports]:
        failed = report["results"]["failed_checks"]
        assert not failed, [(f["check_id"], f["resource"], f["file_path"]) for f in failed]
        assert report["summary"]["passed"] > 300


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = []
    for tf in TERRAFORM_DIR.rglob("*.tf"):
        for number, line in enumerate(tf.read_text().splitlines(), 1):
            if match := SKIP_COMMENT.search(line):
                where = f"{tf.relative_to(TERRAFORM_DIR)}:{number}"
                skips.append((where, match["id"], (match["reason"] or "").strip()))
    assert skips
    assert [s for s in skips if len(s[2]) < 20] == []


def test_the_workers_private_subnets_have_a_route_out_in_every_environment() -> None:
    network = (TERRAFORM_DIR / "modules" / "network" / "main.tf").read_text()
    # One route per private route table to a NAT gateway whenever NAT is on, and NAT is on in both envs.
    route = re.search(r'resource "aws_route" "private_egress" \{(?P<body>.*?)\n\}', network, re.S)
    assert route
    assert 'destination_cidr_block = "0.0.0.0/0"' in route["body"]
    assert "nat_gateway_id" in route["body"] and "aws_route_table.private[count.index]" in route["body"]
    modes = {env: _tfvar(env, "nat_gateway_mode") for env in ("dev", "prod")}
    assert modes == {"dev": '"single"', "prod": '"per_az"'}
    ecs = (TERRAFORM_DIR / "main.tf").read_text()
    assert "private_subnet_ids        = module.network.private_subnet_ids" in ecs


def test_optional_modules_have_a_switch_per_environment() -> None:
    root = (TERRAFORM_DIR / "main.tf").read_text()
    # Whitespace-free: terraform fmt aligns the `=` of a block to its longest argument name.
    assert re.search(r"count\s+= var\.enable_lambda_api \? 1 : 0", root)
    assert re.search(r"count\s+= var\.enable_cdn \? 1 : 0", root)
    assert re.search(r"read_replica\s+= var\.enable_read_replica", root)
    for env in ("dev", "prod"):
        for switch in ("enable_lambda_api", "enable_cdn", "enable_read_replica"):
            assert _tfvar(env, switch) in {"true", "false"}, f"{env} does not set {switch}"
    assert _tfvar("prod", "db_multi_az") == "true" and int(_tfvar("prod", "cache_nodes")) >= 2


def test_each_environment_has_its_remote_state_with_locking() -> None:
    assert re.search(r'backend "s3" \{\}', (TERRAFORM_DIR / "versions.tf").read_text())
    for env in ("dev", "prod"):
        backend = (TERRAFORM_DIR / "envs" / f"{env}.s3.tfbackend").read_text()
        assert f'key            = "salescast/{env}/terraform.tfstate"' in backend
        assert "dynamodb_table" in backend and "encrypt        = true" in backend


def _tfvar(env: str, name: str) -> str:
    text = (TERRAFORM_DIR / "envs" / f"{env}.tfvars").read_text()
    match = re.search(rf"^{name}\s*=\s*(.+?)\s*$", text, re.M)
    assert match, f"envs/{env}.tfvars does not set {name}"
    return match[1]


def test_the_waf_rules_live_in_one_module_that_the_alb_the_api_stage_and_the_cdn_use() -> None:
    acls = sorted(
        str(tf.relative_to(TERRAFORM_DIR))
        for tf in TERRAFORM_DIR.rglob("*.tf")
        if 'resource "aws_wafv2_web_acl" ' in tf.read_text() or "managed_rule_group_statement" in tf.read_text()
    )
    assert acls == ["modules/waf/main.tf"]
    config = terraform_config()
    protected = {"modules/alb": "aws_lb.this.arn", "modules/lambda_api": "aws_api_gateway_stage.live.arn"}
    for folder in ("modules/alb", "modules/lambda_api", "modules/cdn"):
        calls = [call for call in config[folder]["modules"].values() if call["source"] == "../waf"]
        assert len(calls) == 1, f"{folder} does not use modules/waf once"
        text = (TERRAFORM_DIR / folder / "main.tf").read_text()
        if folder in protected:  # regional: associated by the module; CloudFront: by the distribution
            assert re.search(rf"resource_arns\s+= \[{re.escape(protected[folder])}\]", text), folder
        else:
            assert (
                "web_acl_id          = module.waf.web_acl_arn" in text and 'scope               = "CLOUDFRONT"' in text
            )
