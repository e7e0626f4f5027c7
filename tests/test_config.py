"""Farm config: the sample loads, precedence holds, every bad input is one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgen_tui.config import DEFAULT_MODELS, load_config, parse_farm_config
from imgen_tui.locations import bundled_dir
from imgen_tui.yamlfile import ConfigError

GOOD_NODE = """\
nodes:
  - id: gpu-a
    vram_gb: 8
    tier: quality
    host: 127.0.0.1
    port: 8188
    capabilities: [sd15, sdxl]
    max_resolution: 1024
"""


def write(tmp_path: Path, text: str, name: str = "farm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sample_config_is_the_seed_farm() -> None:
    path = bundled_dir("config") / "gpus.yaml"
    farm = parse_farm_config(path.read_text(), path)
    assert [node.id for node in farm.nodes] == [
        "gpu-premium",
        "gpu-quality",
        "gpu-standard",
        "gpu-draft",
    ]
    draft = farm.node("gpu-draft")
    assert draft.capabilities == ("sd15",) and draft.max_resolution == 512 and draft.vram_gb == 4
    assert farm.models == DEFAULT_MODELS


def test_models_and_https_headers_are_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFY_TOKEN", "s3cret")
    text = (
        GOOD_NODE
        + """\
    scheme: https
    headers: {Authorization: "Bearer ${COMFY_TOKEN}"}
models:
  sdxl: juggernautXL_v9.safetensors
"""
    )
    farm = parse_farm_config(text, tmp_path / "farm.yaml")
    node = farm.nodes[0]
    assert node.base_url == "https://127.0.0.1:8188"
    assert node.headers == {"Authorization": "Bearer s3cret"}
    assert farm.models["sdxl"] == "juggernautXL_v9.safetensors"
    assert farm.models["sd15"] == DEFAULT_MODELS["sd15"]


BAD_CASES = {
    "unknown tier": (
        GOOD_NODE.replace("tier: quality", "tier: ultra"),
        "farm.yaml, line 4: nodes[0].tier must be one of draft, standard, quality or premium (got 'ultra').",
    ),
    "port out of range": (
        GOOD_NODE.replace("port: 8188", "port: 70000"),
        "farm.yaml, line 6: nodes[0].port must be a TCP port between 1 and 65535 (got 70000).",
    ),
    "resolution not a multiple of 8": (
        GOOD_NODE.replace("max_resolution: 1024", "max_resolution: 1020"),
        "farm.yaml, line 8: nodes[0].max_resolution must be a multiple of 8 and at least 64 (got 1020).",
    ),
    "duplicate id": (
        GOOD_NODE + GOOD_NODE.split("\n", 1)[1].replace("port: 8188", "port: 8189"),
        "farm.yaml, line 9: nodes[1].id 'gpu-a' is used by an earlier node; every node needs its own id.",
    ),
    "missing key": (
        GOOD_NODE.replace("    host: 127.0.0.1\n", ""),
        "farm.yaml, line 2: nodes[0].host is missing.",
    ),
    "unknown key": (
        GOOD_NODE.replace("vram_gb: 8", "vram: 8"),
        "farm.yaml, line 3: nodes[0].vram is not a known key; remove it or check its spelling.",
    ),
    "unknown capability": (
        GOOD_NODE.replace("[sd15, sdxl]", "[sd15, sdx1]"),
        "farm.yaml, line 7: nodes[0].capabilities has unknown capability 'sdx1'",
    ),
    "text where a number goes": (
        GOOD_NODE.replace("port: 8188", "port: eighty"),
        "farm.yaml, line 6: nodes[0].port must be a whole number (got 'eighty').",
    ),
    # issue 12, item 20: values that used to be accepted and failed later (or never)
    "header from an unset variable": (
        GOOD_NODE + '    headers: {Authorization: "Bearer ${IMGEN_TEST_NEVER_SET}"}\n',
        "farm.yaml, line 9: nodes[0].headers Authorization uses ${IMGEN_TEST_NEVER_SET}, "
        "which is not set in the environment; export IMGEN_TEST_NEVER_SET",
    ),
    "a boolean port": (
        GOOD_NODE.replace("port: 8188", "port: true"),
        "farm.yaml, line 6: nodes[0].port must be a number, not true.",
    ),
    "a path in the host": (
        GOOD_NODE.replace("host: 127.0.0.1", 'host: "127.0.0.1/evil?x="'),
        "farm.yaml, line 5: nodes[0].host must be a host name or an IP address, without "
        "scheme, port or path (got '127.0.0.1/evil?x=').",
    ),
    "a header name with a line break": (
        GOOD_NODE + '    headers: {"X-A\\r\\nX-B": "1"}\n',
        "farm.yaml, line 9: nodes[0].headers has a header name 'X-A\\r\\nX-B' that is not a "
        "valid HTTP header name",
    ),
    "a negative speed": (
        GOOD_NODE + "    seconds_per_step: {sd15: -1}\n",
        "farm.yaml, line 9: nodes[0].seconds_per_step.sd15 must be zero or a positive number "
        "of seconds (got -1).",
    ),
    "an infinite load time": (
        GOOD_NODE + "    load_seconds: .inf\n",
        "farm.yaml, line 9: nodes[0].load_seconds must be zero or a positive number of "
        "seconds (got inf).",
    ),
    "no nodes": ("nodes: []\n", "farm.yaml, line 1: nodes must not be empty."),
    "not yaml": ("nodes: [\n  - id: x\n", "farm.yaml, line 2: is not valid YAML"),
    "empty file": ("", "farm.yaml: is empty; it needs a 'nodes:' list"),
    "a list at the top": ("- 1\n- 2\n", "farm.yaml, line 1: must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_config_is_one_sentence_naming_file_line_and_key(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CASES[case]
    with pytest.raises(ConfigError) as caught:
        parse_farm_config(text, tmp_path / "farm.yaml")
    message = str(caught.value)
    assert message.startswith(str(tmp_path))
    assert expected in message
    assert "\n" not in message and "Traceback" not in message


def test_a_farm_without_models_gets_the_default_models(tmp_path: Path) -> None:
    """Issue 12, item 17: no `models:` section used to leave the farm with no models at all."""
    farm = parse_farm_config(GOOD_NODE, tmp_path / "farm.yaml")
    assert farm.models == DEFAULT_MODELS


def test_host_names_and_addresses_that_are_fine(tmp_path: Path) -> None:
    for host in ("gpu-premium.lan", "::1", "10.0.0.7", "my_box", "comfy.example.com."):
        text = GOOD_NODE.replace("host: 127.0.0.1", f'host: "{host}"')
        assert parse_farm_config(text, tmp_path / "farm.yaml").nodes[0].host == host


def test_explicit_path_beats_environment_beats_user_beats_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("IMGEN_TUI_CONFIG", raising=False)
    assert load_config().path == bundled_dir("config") / "gpus.yaml"

    user = tmp_path / "xdg" / "imgen-tui" / "gpus.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(GOOD_NODE.replace("gpu-a", "from-user"))
    assert load_config().farm.nodes[0].id == "from-user"

    env = write(tmp_path, GOOD_NODE.replace("gpu-a", "from-env"), "env.yaml")
    monkeypatch.setenv("IMGEN_TUI_CONFIG", str(env))
    assert load_config().farm.nodes[0].id == "from-env"

    flag = write(tmp_path, GOOD_NODE.replace("gpu-a", "from-flag"), "flag.yaml")
    assert load_config(flag).farm.nodes[0].id == "from-flag"


def test_a_named_config_that_does_not_exist_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMGEN_TUI_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"no such config file \(named by --config\)"):
        load_config(tmp_path / "nope.yaml")
    monkeypatch.setenv("IMGEN_TUI_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(
        ConfigError, match=r"gone.yaml: no such config file \(named by IMGEN_TUI_CONFIG\)"
    ):
        load_config()


def test_a_binary_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "farm.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(path)
