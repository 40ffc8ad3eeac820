"""``warpcall profile`` against real servers in child processes on 127.0.0.1: the table, the JSON, the picture."""

from __future__ import annotations

import json
import socket
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from warpcall.cli import main

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


def svg_ids(path: Path) -> list[str]:
    return [element.get("id", "") for element in ElementTree.parse(path).iter() if element.get("id")]


def table_rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("method "))
    rows = []
    for line in lines[start + 2 :]:
        if not line or line.startswith(("(", "wrote ")):
            break
        rows.append(line.split())
    return rows


def test_demo_every_channel_table_json_and_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    svg, report = tmp_path / "report.svg", tmp_path / "report.json"
    status = main(["profile", "--demo", "-n", "40", "--warmup", "5", "--out", str(svg), "--json", str(report)])
    out = capsys.readouterr().out
    assert status == 0, out

    rows = table_rows(out)
    for channel in CHANNELS:
        phases = {row[2]: row for row in rows if row[:2] == ["demo:greeter:hello", channel]}
        assert phases["total"][3] == "40", phases
        # the client's phases (recorded by the channel), and the server's from its Server-Timing header
        assert {"client.marshal", "client.first_byte", "client.unmarshal"} <= set(phases), sorted(phases)
        assert "server.impl" in phases, sorted(phases)
    assert f"wrote {svg}" in out and f"wrote {report}" in out

    document = json.loads(report.read_text())
    assert [(c["method"], c["channel"], c["count"], c["errors"]) for c in document["calls"]] == [
        ("demo:greeter:hello", channel, 40, 0) for channel in CHANNELS
    ]
    for call in document["calls"]:
        total = call["total"]
        assert 0 < total["min"] <= total["p50"] <= total["p90"] <= total["p99"] <= total["max"]

    ids = svg_ids(svg)
    assert sorted(i for i in ids if i.startswith("curve-")) == sorted(f"curve-{c}" for c in CHANNELS)
    for channel in CHANNELS:
        bar = [i for i in ids if i.startswith(f"phase-{channel}-")]
        assert f"phase-{channel}-marshal" in bar and f"phase-{channel}-server.impl" in bar, bar


def test_chosen_channels_dataclass_argument_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "report.png"
    argv = [
        "profile", "--serve", "warpcall.demo.server:DemoServerModule",
        "--service", "warpcall.demo.example:GreeterService", "--method", "echo",
        "--args", '[{"id": 7, "customer": "ada", "items": ["tea"]}]',
        "--channel", "dispatch-msgpack", "--channel", "rest", "-n", "20", "--warmup", "2", "--out", str(png),
    ]
    status = main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    rows = table_rows(out)
    assert {(row[1], row[3]) for row in rows if row[2] == "total"} == {("dispatch-msgpack", "20"), ("rest", "20")}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_async_method(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["profile", "--demo", "--method", "hello_async", "--args", '["x"]', "--channel", "dispatch-json",
            "--channel", "rest", "-n", "15", "--warmup", "1"]
    status = main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    rows = table_rows(out)
    for channel in ("dispatch-json", "rest"):
        phases = {row[2]: row for row in rows if row[:2] == ["demo:greeter:hello_async", channel]}
        assert phases["total"][3] == "15" and "client.marshal" in phases and "server.impl" in phases, phases
    assert "no phases recorded" not in out


def test_without_matplotlib_the_table_prints_and_out_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    svg = tmp_path / "report.svg"
    argv = ["profile", "--demo", "--channel", "dispatch-json", "-n", "10", "--warmup", "1"]
    assert main([*argv, "--out", str(svg)]) == 3
    captured = capsys.readouterr()
    assert any(row[:3] == ["demo:greeter:hello", "dispatch-json", "total"] for row in table_rows(captured.out))
    assert "pip install 'warpcall[plot]'" in captured.err and not svg.exists()
    assert main(argv) == 0  # no --out: nothing needs matplotlib


def test_failed_calls_are_counted_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["profile", "--url", f"http://127.0.0.1:{port}", "--service", "warpcall.demo.example:GreeterService",
            "--method", "hello", "--args", '["x"]', "--channel", "dispatch-json", "-n", "3", "--warmup", "0"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "dispatch-json: 3 of 3 calls failed" in out
    assert "ServiceCommunicationException" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--demo", "--args", "[1,"], "--args is not JSON"),
        (["--demo", "--args", '"x"'], "is a JSON list"),
        (["--demo", "--method", "echo", "--args", '[{"id": "not a number"}]'], "order is not a"),
        (["--demo", "--method", "hello", "--args", '["a", "b"]'], "does not fit"),
        (["--demo", "--method", "nothing"], "has no method 'nothing'"),
        (["--demo", "-n", "0"], "-n is between 1"),
        (["--url", "http://127.0.0.1:1", "--method", "hello"], "--service and --method are needed"),
        (["--url", "http://127.0.0.1:1", "--service", "nope", "--method", "m"], "pkg.module:ServiceClass"),
        (["--url", "http://127.0.0.1:1", "--service", "warpcall.demo.example:Nope", "--method", "m"], "cannot import"),
        (["--serve", "no_such_module_here:Module", "--service", "warpcall.demo.example:GreeterService",
          "--method", "hello", "--args", '["x"]'], "did not serve: exited with code 2:\nwarpcall child server: cannot import no_such_module_here"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", *argv]) == 2
    assert message in capsys.readouterr().err
