"""pulumi-command, played over real SSH: the rehearsal's engine.

``RehearsalMocks`` runs the vps stack's program under Pulumi's mocks, and every
``command:remote:Command`` and ``command:remote:CopyToRemote`` the program registers is
*executed* the way pulumi-command v1 executes it (provider/pkg/provider/remote in
pulumi/pulumi-command): one SSH session per command, dialled through
``connection.proxy`` with both host keys pinned (``ssh.FixedHostKey``); ``environment``
as ``env`` requests that must be accepted (the hosts accept none); ``stdin`` written to
the session and closed (EOF); the command string sent as the exec request, so the login
shell runs it; a non-zero exit fails the step. CopyToRemote writes the asset over SFTP.

Across runs the engine keeps each resource's last inputs and decides as Pulumi does for
these types: unchanged inputs run nothing; a change to ``triggers`` (the provider marks
it ``replaceOnChanges``) replaces: the new ``create``, then, at the end of the
deployment, the old resource's ``delete`` (create-before-delete), and a protected
resource cannot be replaced; any other change is an update, which runs ``update`` (or
``create`` when there is none). The program orders the calls by its dependencies.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import paramiko

from ops.runtime import _SECRET_SIG, _SECRET_VALUE, PlanMocks

Route = Mapping[tuple[str, int], tuple[str, int]]
"""Where an address the config names is reached from here (a stand-in for the network)."""


class StepFailedError(RuntimeError):
    """A command exited non-zero (pulumi-command fails the resource)."""


def _pinned(address: str, port: int, host_key: str) -> paramiko.SSHClient:
    key_type, blob = host_key.split()[:2]
    client = paramiko.SSHClient()
    entry = address if port == 22 else f"[{address}]:{port}"
    known = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
    client.get_host_keys().add(entry, key_type, known)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _key(private_key: str) -> paramiko.PKey:
    from io import StringIO

    return paramiko.Ed25519Key.from_private_key(StringIO(private_key))


def dial(
    connection: Mapping[str, Any], routes: Route, timeout: float = 15
) -> list[paramiko.SSHClient]:
    """SSH clients for ``connection`` as pulumi-command dials it: through the proxy when
    one is set, each hop's host key pinned (like ``ssh.FixedHostKey``, under whatever
    name the hop is reached by). Returns [proxy, target] or [target]; close in reverse."""
    clients: list[paramiko.SSHClient] = []
    target_at = (str(connection["host"]), int(connection.get("port") or 22))
    sock = None
    proxy = connection.get("proxy")
    try:
        if proxy:
            proxy_at = (str(proxy["host"]), int(proxy.get("port") or 22))
            local = routes.get(proxy_at, proxy_at)
            jump = _pinned(*local, str(proxy["hostKey"]))
            clients.append(jump)
            jump.connect(
                local[0],
                port=local[1],
                username=str(proxy.get("user") or "root"),
                pkey=_key(str(proxy["privateKey"])),
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
            )
            transport = jump.get_transport()
            assert transport is not None
            # The jump host dials the target; the routes stand in for the network.
            local = routes.get(target_at, target_at)
            sock = transport.open_channel("direct-tcpip", local, ("127.0.0.1", 0))
        else:
            local = routes.get(target_at, target_at)
        target = _pinned(*local, str(connection["hostKey"]))
        clients.append(target)
        target.connect(
            local[0],
            port=local[1],
            username=str(connection.get("user") or "root"),
            pkey=_key(str(connection["privateKey"])),
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            sock=sock,
        )
    except BaseException:
        for client in reversed(clients):
            client.close()
        raise
    return clients


def run(
    connection: Mapping[str, Any],
    command: str,
    *,
    stdin: str | None,
    environment: Mapping[str, str] | None,
    routes: Route,
    timeout: float = 120,
) -> tuple[str, str]:
    """One command, one session; (stdout, stderr) without the last newline."""
    clients = dial(connection, routes)
    try:
        transport = clients[-1].get_transport()
        assert transport is not None
        channel = transport.open_session()
        channel.settimeout(timeout)
        if environment:
            # pulumi-command sends `env` requests with want_reply and fails the step when
            # the server refuses them; sshd accepts only AcceptEnv names, and the fleet's
            # hardened sshd has none. A step must carry its settings in its script.
            raise StepFailedError(
                f"could not set environment variable(s) {sorted(environment)}: the hosts' "
                "sshd accepts none (no AcceptEnv)"
            )
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin.encode())
        channel.shutdown_write()
        stdout = channel.makefile("rb").read().decode()
        stderr = channel.makefile_stderr("rb").read().decode()
        status = channel.recv_exit_status()
        if status != 0:
            raise StepFailedError(f"exit {status}: running {command[:80]!r}:\n{stdout}{stderr}")
        return stdout.removesuffix("\n"), stderr.removesuffix("\n")
    finally:
        for client in reversed(clients):
            client.close()


def copy(connection: Mapping[str, Any], text: str, remote_path: str, routes: Route) -> None:
    """CopyToRemote of a string asset: SFTP, parents created."""
    clients = dial(connection, routes)
    try:
        sftp = clients[-1].open_sftp()
        parts = remote_path.strip("/").split("/")[:-1]
        current = ""
        for part in parts:
            current += "/" + part
            try:
                sftp.stat(current)
            except FileNotFoundError:
                sftp.mkdir(current)
        with sftp.open(remote_path, "w") as handle:
            handle.write(text.encode())
        sftp.close()
    finally:
        for client in reversed(clients):
            client.close()


@dataclass
class Operation:
    name: str
    op: str
    """create, update, replace, delete or same."""


@dataclass
class RehearsalMocks(PlanMocks):
    """PlanMocks that carry out the remote commands; one instance spans several runs."""

    routes: Route = field(default_factory=dict)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    pending_deletes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    protected: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        PlanMocks.__init__(self, default_region="us-east-1")

    def new_resource(self, args: Any) -> tuple[str, dict]:
        if args.typ not in ("command:remote:Command", "command:remote:CopyToRemote"):
            return super().new_resource(args)
        inputs = _revealed(dict(args.inputs))
        previous = self.state.get(args.name)
        if previous is not None and _comparable(previous["inputs"]) == _comparable(inputs):
            self._record(args.name, "same")
            return f"{args.name}-id", previous["outputs"]
        if previous is None:
            op = "create"
        elif previous["inputs"].get("triggers") != inputs.get("triggers"):
            op = "replace"
            if args.name in self.protected:
                raise StepFailedError(
                    f"{args.name}: unable to replace a protected resource (its triggers changed)"
                )
        else:
            op = "update"
        outputs = dict(args.inputs)
        if args.typ == "command:remote:CopyToRemote":
            source = inputs["source"]
            copy(inputs["connection"], _asset_text(source), str(inputs["remotePath"]), self.routes)
        else:
            command = (
                inputs.get("create")
                if op != "update"
                else inputs.get("update") or inputs.get("create")
            )
            stdout = stderr = ""
            if command:
                stdout, stderr = run(
                    inputs["connection"],
                    str(command),
                    stdin=inputs.get("stdin"),
                    environment=inputs.get("environment"),
                    routes=self.routes,
                )
            outputs |= {"stdout": stdout, "stderr": stderr}
        if op == "replace" and previous is not None:
            self.pending_deletes.append((args.name, previous))
        self._record(args.name, op)
        self.state[args.name] = {"inputs": inputs, "outputs": outputs}
        return f"{args.name}-id", outputs

    def finish(self) -> None:
        """The end of a deployment: the replaced resources' deletes, in order."""
        for name, previous in self.pending_deletes:
            command = previous["inputs"].get("delete")
            if command:
                run(
                    previous["inputs"]["connection"],
                    str(command),
                    stdin=None,
                    environment=previous["inputs"].get("environment"),
                    routes=self.routes,
                )
            self._record(name, "delete")
        self.pending_deletes.clear()

    def _record(self, name: str, op: str) -> None:
        with self.lock:
            self.operations.append(Operation(name, op))


def _revealed(value: Any) -> Any:
    """Inputs as the provider receives them: secrets unwrapped, assets kept."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            return _revealed(value["value"])
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    return value


def _asset_text(source: Any) -> str:
    text = getattr(source, "text", None)
    if text is None:
        raise TypeError(f"the rehearsal copies string assets only, not {source!r}")
    return str(text)


def _comparable(inputs: Mapping[str, Any]) -> Any:
    def normal(value: Any) -> Any:
        if hasattr(value, "text"):
            return ("asset", value.text)
        if isinstance(value, Mapping):
            return {k: normal(v) for k, v in sorted(value.items())}
        if isinstance(value, list | tuple):
            return [normal(v) for v in value]
        return value

    return normal(inputs)
