# ruff: noqa: F811 - the fixtures imported from cli_support are parameters of the tests
"""``warpcall call``: real servers on 127.0.0.1 found through a private embedded registry (or --url), the
command run in-process through ``main(argv)`` and, end to end, as ``python -m warpcall``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from cli_support import (  # noqa: F401 - fixtures
    HERE,
    PROCESS_TIMEOUT,
    boot,
    closed_port,
    ghost,
    registry_dir,
    run_cli,
    run_process,
    server,
    silent,
    token,
)

from warpcall.cli import _common as codes


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("channel", ["dispatch-json", "dispatch-msgpack"])
def test_a_dataclass_argument_and_result_as_json(server, capsys, channel):
    result = run_cli(capsys, "call", "shapes:geometry:mirror", '{"x": 1, "y": 2}', "--channel", channel)
    assert (result.status, result.err) == (0, "")
    assert result.json() == {"x": 2, "y": 1}


@pytest.mark.parametrize("channel", ["dispatch-json", "dispatch-msgpack"])
def test_keyword_arguments_are_placed_by_the_servers_description(server, capsys, channel):
    assert run_cli(capsys, "call", "shapes:geometry:add", "3", "b=4", "--channel", channel).json() == 7
    assert run_cli(capsys, "call", "shapes:geometry:add", "a=3").json() == 4  # b's default, as declared
    # a later keyword, with the one before it left at its default (2.0, from the description)
    points = '[{"x": 1, "y": 2}]'
    result = run_cli(capsys, "call", "shapes:geometry:scale", points, 'label="big"', "--channel", channel)
    assert result.json() == {"big": [{"x": 2, "y": 4}]}


def test_the_rest_channel_calls_the_route_the_server_describes(server, capsys):
    result = run_cli(capsys, "call", "shapes:greeter:hello", '"ada lovelace"', "polite=true", "--channel", "rest")
    assert (result.status, result.json()) == (0, "Good day, ada lovelace")  # a path parameter with a space
    result = run_cli(capsys, "call", "shapes:greeter:shift", '{"x": 1, "y": 2}', "by=10", "--channel", "rest")
    assert result.json() == {"x": 11, "y": 12}  # the body and a query parameter
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--channel", "rest")
    assert result.status == codes.UNKNOWN
    assert "has no REST route" in one_line(result.err)


def test_the_default_channel_is_one_the_component_offers(server, capsys):
    # vault offers dispatch-json only; asking for msgpack names what it offers
    result = run_cli(capsys, "call", "vault:vault:ping", "--channel", "dispatch-msgpack")
    assert result.status == codes.NOT_FOUND
    assert "does not offer the dispatch-msgpack channel" in one_line(result.err)
    assert "it offers dispatch-json" in result.err
    assert run_cli(capsys, "call", "vault:vault:ping").json() == "pong"


def test_url_calls_a_server_without_any_registry(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path / "empty"))
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "2", "--url", server.url + "/")
    assert (result.status, result.json()) == (0, 3)


def test_a_remote_exception_is_its_type_and_message_on_one_line(server, capsys):
    result = run_cli(capsys, "call", "shapes:geometry:fail", '"the disk\\nis full"')
    assert result.status == codes.FAILED
    assert result.out == ""
    assert one_line(result.err) == "warpcall call: shapes:geometry:fail raised ValueError: the disk is full"


def test_an_unknown_method_is_the_servers_404(server, capsys):
    result = run_cli(capsys, "call", "shapes:geometry:nothing_here", "1")
    assert result.status == codes.UNKNOWN
    line = one_line(result.err)
    assert "UnknownMethodException" in line and "'shapes:geometry:nothing_here'" in line and "HTTP 404" in line


def test_an_unknown_component_has_no_instance(server, capsys):
    result = run_cli(capsys, "call", "nowhere:geometry:add", "1")
    assert result.status == codes.NOT_FOUND
    assert "no live instance of component 'nowhere'" in one_line(result.err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["shapes:geometry:add", "hello"], "argument 1 is not JSON"),
        (["shapes:geometry:add", "1", "{bad"], "argument 2 is not JSON"),
        (["shapes:geometry:add", "b={bad"], "argument 'b' is not JSON"),
        (["shapes:geometry:add", "b=1", "2"], "comes after a NAME=JSON argument"),
        (["shapes:geometry:add", "b=1", "b=2"], "given twice"),
        (["shapes:geometry", "1"], "is not component:service:method"),
        (["shapes::add", "1"], "is not component:service:method"),
        (["shapes:geometry:add", "1e400"], "argument 1 is not JSON"),
        (["shapes:geometry:add", "NaN"], "argument 1 is not JSON"),
        (["shapes:geometry:add", "1", "--url", "http://127.0.0.1:1", "--timeout", "-1"], "positive number"),
        (["shapes:geometry:add", "1", "--url", "127.0.0.1:8000"], "is not an http:// or https:// URL"),
        (["shapes:geometry:add", "1", "--url", "http://127.0.0.1:1", "--token", "a\nb"], "--token"),
        (["shapes:geometry:add", "2" * 30, "--url", "http://127.0.0.1:1", "--channel", "dispatch-msgpack"],
         "cannot travel as msgpack"),
    ],
)
def test_a_bad_command_line_is_refused_before_any_call(registry_dir, capsys, argv, expected):
    result = run_cli(capsys, "call", *argv)  # no server at all: nothing is looked up
    assert result.status == codes.USAGE
    # the error is the last line (argparse's own errors come after the usage, as argparse writes them)
    assert expected in result.err.splitlines()[-1] and result.err.splitlines()[-1].startswith("warpcall call")


def test_a_string_argument_without_quotes_gets_a_hint(registry_dir, capsys):
    result = run_cli(capsys, "call", "shapes:greeter:hello", "ada")
    assert result.status == codes.USAGE
    assert "a string needs JSON quotes" in result.err


def test_keywords_the_method_does_not_have(server, capsys):
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "c=2")
    assert result.status == codes.USAGE
    assert "has no parameter 'c'" in one_line(result.err) and "add(a: int, b: int = 1) -> int" in result.err
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "a=2")
    assert result.status == codes.USAGE and "by position and by name" in result.err
    result = run_cli(capsys, "call", "shapes:geometry:scale", 'label="x"')
    assert result.status == codes.USAGE and "parameter 'points' is missing" in result.err


def test_a_wrong_argument_type_is_the_servers_422(server, capsys):
    result = run_cli(capsys, "call", "shapes:geometry:add", '"three"')
    assert result.status == codes.ARGUMENTS
    line = one_line(result.err)
    assert "InvalidArgumentsException" in line and "HTTP 422" in line and "add" in line
    result = run_cli(capsys, "call", "shapes:geometry:add")  # a required argument missing
    assert result.status == codes.ARGUMENTS and "HTTP 422" in result.err
    result = run_cli(capsys, "call", "shapes:greeter:hello", "1", "--channel", "rest")  # FastAPI's own 422
    assert result.status in (codes.OK, codes.ARGUMENTS)  # 1 is a valid path segment: FastAPI takes "1"
    result = run_cli(capsys, "call", "shapes:greeter:shift", '{"x": "a"}', "--channel", "rest")
    assert result.status == codes.ARGUMENTS and "HTTP 422" in one_line(result.err)


def test_a_dead_instance_alone_is_unreachable(registry_dir, ghost, capsys):
    url = ghost("shapes")
    result = run_cli(capsys, "call", "shapes:geometry:add", "1")
    assert result.status == codes.UNREACHABLE
    assert one_line(result.err) == f"warpcall call: cannot reach {url}/invoke: connection refused"


def test_a_dead_instance_before_a_live_one_is_passed_over(registry_dir, ghost, boot, capsys):
    ghost("shapes")  # registered first: tried first, refused, nothing sent
    boot()
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "2")
    assert (result.status, result.json()) == (0, 3)


def test_a_connection_cut_after_the_request_is_not_sent_again(registry_dir, ghost, boot, capsys):
    """An instance that read the call and hung up may have run it: the next instance is not asked."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()
    taken: list[bytes] = []

    def slam() -> None:  # read the request, then close without a reply
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                taken.append(connection.recv(65536))

    thread = threading.Thread(target=slam, daemon=True)
    thread.start()
    try:
        url = ghost("shapes", url=f"http://127.0.0.1:{listener.getsockname()[1]}")
        boot()
        result = run_cli(capsys, "call", "shapes:geometry:add", "1")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert result.status == codes.UNREACHABLE
    assert one_line(result.err).startswith(f"warpcall call: cannot reach {url}/invoke")
    assert len(taken) == 1 and taken[0].startswith(b"POST /invoke")


def test_a_slow_method_times_out(server, capsys):
    result = run_cli(capsys, "call", "shapes:geometry:slow", "1.0", "--timeout", "0.3")
    assert result.status == codes.TIMEOUT
    assert "did not answer within 0.3 s" in one_line(result.err)


def test_a_server_that_never_answers_times_out(registry_dir, silent, capsys):
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--url", silent.url, "--timeout", "0.3")
    assert result.status == codes.TIMEOUT


def test_tokens_refused_and_accepted(boot, capsys):
    boot(CLIAPP_JWT="1")
    result = run_cli(capsys, "call", "vault:vault:secret")
    assert result.status == codes.REFUSED
    assert "MissingTokenException" in one_line(result.err) and "HTTP 401" in result.err
    result = run_cli(capsys, "call", "vault:vault:secret", "--token", token("user"))
    assert result.status == codes.REFUSED and "HTTP 403" in one_line(result.err)
    result = run_cli(capsys, "call", "vault:vault:secret", "--token", token("admin", expires_in=-60))
    assert result.status == codes.REFUSED and "TokenExpiredException" in result.err
    result = run_cli(capsys, "call", "vault:vault:secret", "--token", token("admin"))
    assert (result.status, result.json()) == (0, "the gold is in the basement")
    assert run_cli(capsys, "call", "vault:vault:ping").json() == "pong"  # @public
    # keywords need the description, which shows a method only to a token that may call it
    result = run_cli(capsys, "call", "shapes:geometry:add", "a=1")
    assert result.status == codes.REFUSED


def test_an_unexposed_method_is_unknown(boot, capsys):
    boot(CLIAPP_EXPOSE="shapes:geometry, vault")
    assert run_cli(capsys, "call", "shapes:geometry:add", "1").json() == 2
    for channel in ("dispatch-json", "rest"):
        result = run_cli(capsys, "call", "shapes:greeter:hello", '"x"', "--channel", channel)
        assert result.status == codes.UNKNOWN, result


def test_namespaces(boot, ghost, capsys, monkeypatch):
    boot()  # namespace cliapp: the top-level package of the booted module
    # without --namespace every namespace is searched, and one holds shapes
    assert run_cli(capsys, "call", "shapes:geometry:add", "1").json() == 2
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--namespace", "other")
    assert result.status == codes.NOT_FOUND
    assert "namespace 'other'" in one_line(result.err) and "registered in namespace(s) cliapp" in result.err
    ghost("shapes", namespace="other")
    result = run_cli(capsys, "call", "shapes:geometry:add", "1")
    assert result.status == codes.NOT_FOUND and "several namespaces (cliapp, other)" in one_line(result.err)
    assert run_cli(capsys, "call", "shapes:geometry:add", "1", "--namespace", "cliapp").json() == 2
    monkeypatch.setenv("WARPCALL_REGISTRY_NAMESPACE", "cliapp")
    assert run_cli(capsys, "call", "shapes:geometry:add", "1").json() == 2
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--registry", "consul://127.0.0.1:1", "--namespace", "x")
    assert result.status == codes.USAGE and "--namespace applies to the embedded registry only" in result.err


def test_a_registry_that_does_not_answer(registry_dir, capsys, silent):
    port = closed_port()
    for scheme in ("consul", "etcd"):
        result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--registry", f"{scheme}://127.0.0.1:{port}")
        assert result.status == codes.UNREACHABLE and "connection refused" in one_line(result.err)
    silent_port = silent.url.rsplit(":", 1)[1]
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--registry", f"etcd://127.0.0.1:{silent_port}",
                     "--timeout", "0.3")
    assert result.status == codes.TIMEOUT and "did not answer within 0.3 s" in one_line(result.err)


def test_the_embedded_ttl_setting_decides_which_rows_are_live(registry_dir, capsys, monkeypatch):
    import sqlite3
    import time

    from cli_support import _Named

    from warpcall import ChannelAddress
    from warpcall.registry.embedded import EmbeddedComponentRegistry

    class Stalled:  # the registry renews nothing while its server does not answer: the row stays as written
        def alive(self) -> bool:
            return False

    registry = EmbeddedComponentRegistry(namespace="cliapp", ttl=60.0)
    registry.set_liveness(Stalled())
    try:
        url = f"http://127.0.0.1:{closed_port()}"
        registry.register(_Named("shapes"), [ChannelAddress("dispatch-json", url)])
        with sqlite3.connect(registry.path) as db:  # its last heartbeat 10 s ago: live for a 60 s TTL only
            db.execute("UPDATE instances SET heartbeat = ?", (time.time() - 10,))
        result = run_cli(capsys, "call", "shapes:geometry:add", "1")
        assert result.status == codes.NOT_FOUND  # the default 5 s
        monkeypatch.setenv("registry.embedded.ttl", "60")  # as a server reads it from its environment
        result = run_cli(capsys, "call", "shapes:geometry:add", "1")
        assert result.status == codes.UNREACHABLE and url in result.err
        monkeypatch.setenv("registry.embedded.ttl", "soon")
        result = run_cli(capsys, "call", "shapes:geometry:add", "1")
        assert result.status == codes.USAGE and "not a positive number" in one_line(result.err)
    finally:
        registry.close()


@pytest.mark.parametrize("spec", ["zookeeper://h:1", "consul://", "etcd://h:port"])
def test_a_registry_that_cannot_be_read_is_a_usage_error(registry_dir, capsys, spec):
    result = run_cli(capsys, "call", "shapes:geometry:add", "1", "--registry", spec)
    assert result.status == codes.USAGE and "--registry" in one_line(result.err)


def test_end_to_end_as_a_process(server, capsys):
    result = run_process("call", "shapes:geometry:mirror", '{"x": 3, "y": 4}')
    assert (result.status, result.err) == (0, "")
    assert json.loads(result.out) == {"x": 4, "y": 3}
    result = run_process("call", "shapes:geometry:fail", '"boom"', "--channel", "dispatch-msgpack")
    assert (result.status, result.out) == (codes.FAILED, "")
    assert one_line(result.err) == "warpcall call: shapes:geometry:fail raised ValueError: boom"
    result = run_process("call", "shapes:geometry:add", "nope")
    assert result.status == codes.USAGE


def test_end_to_end_an_instance_killed_with_sigkill(registry_dir, capsys):
    """A server process killed with SIGKILL leaves its row for the TTL: the call is refused, not hung."""
    child = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, threading; from warpcall import FastAPIServer; import cliapp; "
            "env = FastAPIServer.boot(cliapp.Module, host='127.0.0.1', port=0); "
            "print(env.get(FastAPIServer).url, flush=True); threading.Event().wait(60)"
        )],
        stdout=subprocess.PIPE, text=True, cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)},
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()  # bounded: the child waits at most 60 s, and is killed below
        assert url.startswith("http://127.0.0.1:")
        assert run_process("call", "shapes:geometry:add", "1").out.strip() == "2"
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(PROCESS_TIMEOUT)
        result = run_process("call", "shapes:geometry:add", "1")
        assert result.status == codes.UNREACHABLE
        assert one_line(result.err) == f"warpcall call: cannot reach {url}/invoke: connection refused"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(PROCESS_TIMEOUT)
        if child.stdout is not None:
            child.stdout.close()
