"""run_server.py's bound on a frozen RPC worker (--rpc-timeout).

A worker that dies resets its connection: llama-server aborts and the supervisor restarts it. A worker that freezes,
or whose host vanishes, sends no reset: llama-server waits in recv() for ever, using no CPU, and so do the requests
behind it (or a restart that is loading the model). An idle server uses no CPU either, so the clock runs only while
llama-server has work: requests in flight, or a (re)start under way. After --rpc-timeout seconds of that without
CPU use, llama-server is killed with a line naming the worker that does not answer; the supervisor restarts it, and
gives up (exit, naming the worker) when the restarts keep failing.
"""

from __future__ import annotations

from collections.abc import Callable

from ..runtime import rpc
from .metrics import RequestStats
from .supervisor import Supervisor


class RpcWatch:
    def __init__(self, plan: rpc.RpcPlan, stall_s: float, sup: Supervisor, stats: RequestStats,
                 say: Callable[[str], None]) -> None:
        self.plan, self.stall_s, self.sup, self.stats, self.say = plan, stall_s, sup, stats, say
        self._guard: rpc.StallGuard | None = None
        self._pid: int | None = None

    def poll(self) -> None:
        """Called about twice a second by the server's main loop."""
        pid = self.sup.child_pid
        busy = self.stats.active > 0 or self.sup.state in ("starting", "restarting")
        if self.stall_s <= 0 or pid is None or not busy:
            self._guard = None  # idle time is not a stall: the clock starts again with the next request
            return
        if self._guard is None or pid != self._pid:
            self._guard, self._pid = rpc.StallGuard(self.plan.endpoints, self.stall_s, "llama-server"), pid
        guard = self._guard
        stalled = guard.check(pid)
        if stalled is None:
            return
        waiting = self.stats.active
        self._guard = None

        def note() -> str:
            # probed once llama-server is gone: a worker serves one client at a time, and would not answer while
            # llama-server still held its connection
            when = f"with {waiting} request(s) waiting" if waiting else "while it started"
            return f"error: {stalled}, {when}: {guard.explain('') or 'every worker answers now'}"

        self.sup.kill(note)  # the supervisor restarts it, and gives up after a few failed restarts
