"""The warm server (docs/warm.md): a process that has imported envplane (and what it imports)
once, and forks one child per command. The child takes the caller's argv, environment, working
directory, umask and standard file descriptors and runs the ordinary CLI, so its output, exit
code and every check are those of a cold run. A fork and not a thread: each command keeps its
own process (pid, locks, signals, exit), and nothing one command leaves behind reaches the next.

Before it forks, the server opens no database, starts no thread and reads no envplane setting:
everything a command depends on is read by the child, from the caller's environment. Only the
server's process imports this module (`envplane warm start` starts it): the CLI does not.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import locale
import os
import pkgutil
import select
import signal
import socket
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from envplane.cli import warmclient as wire

REQUEST_TIMEOUT = 5.0  # a client that connects and says nothing does not hold the server
# The API server; the cloud SDKs (imported lazily, for a cloud environment, and kubernetes
# reads KUBECONFIG at import); Alembic's scripts, which run only inside Alembic.
SKIPPED = ("envplane.api", "envplane.targets.cloud", "envplane.state.migrations")
ALSO = ("psycopg", "redis", "rich.console", "rich.table", "click")


def preload() -> None:
    """Import every envplane module a command may need, so no child pays for it."""
    import envplane

    def walk(path: list[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(path, prefix):
            if info.name.startswith(SKIPPED) or info.name.endswith(".__main__"):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: S112 - an optional extra missing: a child fails alike
                continue
            if info.ispkg:
                walk(list(module.__path__), info.name + ".")

    walk(list(envplane.__path__), "envplane.")
    for name in ALSO:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()


class Server:
    def __init__(self, path: Path, idle: float) -> None:
        # Python's own start-up handlers (SIGINT raises KeyboardInterrupt, the others do what
        # the system does): what a child restores, as a cold CLI has them. Set whatever this
        # server was started with: a child takes the caller's ignored signals instead.
        self.defaults: dict[int, Any] = {s: signal.SIG_DFL for s in wire.FORWARDED}
        self.defaults[signal.SIGINT] = signal.default_int_handler
        self.defaults[signal.SIGCHLD] = signal.getsignal(signal.SIGCHLD)
        self.fingerprint = wire.fingerprint()  # before the imports: an edit during them shows
        self.interpreter = wire.interpreter_settings(os.environ)
        self.path, self.idle = path, idle
        self.started = datetime.now(UTC)
        self.served = 0
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.last = time.monotonic()

    def listen(self) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.listener.bind(os.fsencode(self.path))  # EADDRINUSE: another one is up
        finally:
            os.umask(old)
        bound = os.stat(self.path)
        self.bound = (bound.st_dev, bound.st_ino)  # removed on exit only if still ours
        self.listener.listen(64)
        self.last = time.monotonic()  # --idle counts from here, not from before the imports
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a byte on the wakeup pipe: reap
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._stop)

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def loop(self) -> None:
        try:
            while not self.stopping:
                timeout = None
                if not self.children:
                    timeout = max(0.0, self.last + self.idle - time.monotonic())
                watched: list[socket.socket | int] = [self.listener, self.wake_r]
                ready, _, _ = select.select(watched, [], [], timeout)
                if self.wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 512)
                    self.reap()
                if self.listener in ready:
                    self.accept()
                elif not ready and not self.children:
                    break  # idle: nothing asked of it for --idle, nothing running
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            found = os.stat(self.path)
            if (found.st_dev, found.st_ino) == self.bound:
                os.unlink(self.path)
        self.listener.close()

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            # The child said its exit code itself; this is for one killed (or exec'd) first.
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError), conn:
                wire.send(conn, {"exit": 128 - code if code < 0 else code})
            self.last = time.monotonic()

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(REQUEST_TIMEOUT)
        fds: list[int] = []
        try:
            if wire.peer_uid(conn) != os.getuid():
                conn.close()
                return
            got = wire.receive(conn, max_fds=3)
            if got is None:
                conn.close()
                return
            message, fds = got
            if self.answer(conn, message, fds):
                return  # a child has it
        except (OSError, wire.ProtocolError):
            pass
        wire._close(fds)
        conn.close()

    def answer(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> bool:
        """Reply to one request; True when a child was forked to run it."""
        if message.get("stop"):
            self.stopping = True
            self.close()  # new commands go cold from now on
            wire.send(conn, {"stopping": True, "pid": os.getpid()})
            return False
        if message.get("status"):
            wire.send(conn, self.status())
            return False
        self.last = time.monotonic()
        if message.get("fingerprint") != self.fingerprint:
            # envplane or Python changed under it: this command runs cold, and so will the
            # next ones until a fresh server is started
            wire.send(conn, {"stale": True})
            self.stopping = True
            return False
        env = message.get("env")
        if (
            len(fds) != 3
            or not isinstance(message.get("argv"), list)
            or not isinstance(message.get("cwd"), str)
            or not isinstance(message.get("umask"), int)
            or not isinstance(env, dict)
            or wire.interpreter_settings(env) != self.interpreter
        ):
            wire.send(conn, {"cold": True})
            return False
        pid = os.fork()
        if pid == 0:
            self.child(conn, message, fds)
        self.children[pid] = conn
        self.served += 1
        wire._close(fds)
        return True

    def status(self) -> dict[str, Any]:
        return {
            "running": True,
            "pid": os.getpid(),
            "started": self.started.isoformat(timespec="seconds"),
            "served": self.served,
            "running_commands": len(self.children),
            "idle_timeout": self.idle,
            "socket": str(self.path),
        }

    def child(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            ignored = message.get("ignored")
            ignored = set(ignored) if isinstance(ignored, list) else set()
            for signum, handler in self.defaults.items():
                signal.signal(signum, signal.SIG_IGN if signum in ignored else handler)
            self.listener.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            for other in self.children.values():
                other.close()
            conn.settimeout(None)
            code = run_child(conn, message, fds)
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)


def run_child(conn: socket.socket, message: dict[str, Any], fds: list[int]) -> int:
    """Become the caller's CLI process, run the command, and return its exit code (sent to
    the caller already)."""
    try:
        os.chdir(message["cwd"])
    except OSError:
        wire.send(conn, {"cold": True})  # nothing ran: the caller runs it itself
        return 0
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in message["env"].items()})
    time.tzset()  # local times are the caller's TZ
    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    os.umask(message["umask"])
    sys.argv = [str(a) for a in message["argv"]]
    _standard_streams(os.environ)
    reported = threading.Event()

    def report(status: int) -> None:
        if not reported.is_set():
            reported.set()
            with contextlib.suppress(OSError):
                wire.send(conn, {"exit": status})

    wire.send(conn, {"pid": os.getpid()})
    threading.Thread(target=_watch, args=(conn, reported), daemon=True).start()
    from envplane.cli import main as cli_main

    cli_main.BEFORE_EXIT.append(report)  # the code goes out before os._exit, streams flushed
    try:
        cli_main.main()
        status = 0
    except SystemExit as done:
        status = _exit_status(done.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        _flush()
        reported.set()  # the server reports the signal's code
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)  # as Python ends on an uncaught interrupt
        status = 130
    except BaseException:
        traceback.print_exc()
        status = 1
    _flush()
    report(status)
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _watch(conn: socket.socket, reported: threading.Event) -> None:
    """The caller never writes after its request: anything readable is its end going away (it
    was killed). A cold command would have died with it; this one is hung up on."""
    poller = select.poll()
    poller.register(conn, select.POLLIN | select.POLLHUP | select.POLLERR)
    with contextlib.suppress(OSError):
        poller.poll()
    if not reported.is_set():
        os.kill(os.getpid(), signal.SIGHUP)


def _standard_streams(env: os._Environ[str]) -> None:
    """sys.stdin/stdout/stderr over fds 0-2, as Python's start-up makes them: UTF-8 unless
    PYTHONIOENCODING says otherwise, stdout line-buffered on a terminal, stderr always."""
    encoding, _, errors = (env.get("PYTHONIOENCODING") or "").partition(":")
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    made = []
    for fd, (mode, name) in enumerate((("r", "<stdin>"), ("w", "<stdout>"), ("w", "<stderr>"))):
        raw = io.FileIO(fd, mode, closefd=False)
        raw.name = name
        buffer: io.BufferedIOBase
        buffer = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        made.append(
            io.TextIOWrapper(
                buffer,
                encoding=encoding or "utf-8",
                errors="backslashreplace" if fd == 2 else (errors or "strict"),
                newline="\n",
                line_buffering=fd == 2 or (fd == 1 and raw.isatty()),
                write_through=unbuffered and fd > 0,
            )
        )
    # sys.__stdout__ too: shutil.get_terminal_size() asks it for the terminal's width
    for name, stream in zip(("stdin", "stdout", "stderr"), made, strict=True):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def serve_main() -> None:
    """`python -c ...serve_main()` IDLE_SECONDS: the process `warm start` starts."""
    server = Server(Path(wire.socket_path()), float(sys.argv[1]))
    preload()
    try:
        server.listen()
    except OSError as exc:
        print(f"cannot listen on {server.path}: {exc.strerror}", file=sys.stderr)
        sys.exit(3)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)  # ready: from now on the server has no terminal to write to
    os.close(devnull)
    server.loop()
