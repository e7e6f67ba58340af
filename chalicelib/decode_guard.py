"""Run one piece of work in a forked child under CPU, memory and wall-clock limits: the decode's last line of defence.

Structural checks refuse the hostile files we know about before anything is decoded; this stops the ones we do not
know about. C decoders cannot be interrupted from Python (a signal handler runs only between bytecodes), so the work
runs in a child the kernel can stop: past `RLIMIT_CPU` it gets SIGXCPU (SIGKILL a second later), past `RLIMIT_DATA`
its allocations fail (MemoryError), and the parent kills it if its resident memory grows past the same budget (heap
reused from the worker escapes RLIMIT_DATA) or if it is still running at a wall-clock deadline. `os.fork` and a
pipe, not multiprocessing: Lambda has no /dev/shm, which multiprocessing's pools and queues need.

The child's result crosses the pipe as bytes the caller encodes and decodes itself, not as a pickle: the child
parses hostile input, and what it writes back must stay data, never something the parent would execute.
The memory limits need Linux (/proc, and RLIMIT_DATA counting mmap'd memory: Linux 4.7; Lambda runs 5.10 or later).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import resource
import select
import signal
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

# The worker Lambda has 1536 MB and a 60 s timeout; one upload is decoded at a time (SQS batch size 1).
# CPU: the costliest legitimate uploads we measured (100 MP WebP, PNG, HEIC and progressive JPEG; a 12 MP HEIC of
# noise, HEVC at its most expensive per byte) took at most 3.6 s of CPU, so 10 s is almost 3x headroom; 10 s of CPU
# is about 11.5 s of wall time on Lambda's 0.87 vCPU at 1536 MB.
# Memory: the worker holds 120-150 MB at the fork (runtime, boto3, Pillow, libheif, the 25 MB upload), and pages
# the child shares with it are counted once, so 1 GiB of new memory for the decode leaves over 300 MB of the 1536.
# Wall: only a child that is stuck rather than computing reaches it; it still leaves half of the Lambda's 60 s for
# reading the upload and writing the previews.
CPU_SECONDS = 10
MEMORY_BYTES = 1 << 30
WALL_SECONDS = 30.0

# How the child reports what happened, besides the signals that end it: 0 means the pipe carries the result.
_EXIT_OUT_OF_MEMORY = 3
_EXIT_FAILED = 4  # the work raised; the pipe carries the traceback
_READ_CHUNK = 1 << 16
_WATCH_SECONDS = 0.01  # how often the parent looks at the child's resident memory
_HEADER_BYTES = 8  # the child's resident memory at its start
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_MAX_TRACEBACK_BYTES = 16 * 1024
_MAX_FD = os.sysconf("SC_OPEN_MAX")


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD_BYTES = 128 * 1024


def _glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc (as on Lambda): malloc's tuning below is glibc's. None elsewhere."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _glibc()


@dataclass(frozen=True)
class Budget:
    cpu_seconds: int = CPU_SECONDS  # whole seconds: RLIMIT_CPU has no finer unit
    memory_bytes: int = MEMORY_BYTES  # what the work may add to the child's resident memory and data segment
    wall_seconds: float = WALL_SECONDS


@dataclass(frozen=True)
class Usage:
    """What one guarded run cost, as the kernel counted it (`wait4`), however the child ended."""

    cpu_seconds: float  # user + system, every thread of the child
    peak_rss_bytes: int  # the child's peak resident memory
    start_rss_bytes: int  # the child's resident memory before the work began (the worker's pages it maps)
    worker_rss_bytes: int  # the worker's own resident memory when it forked
    wall_seconds: float  # from the fork until the child was reaped

    @property
    def added_bytes(self) -> int:
        """The memory the work added on top of the worker's: the figure the memory budget is about."""
        return max(0, self.peak_rss_bytes - self.start_rss_bytes)


class GuardError(Exception):
    """The child returned no result; `usage` says what it had cost by the time it ended."""

    def __init__(self, message: str, usage: Usage) -> None:
        super().__init__(message)
        self.usage = usage


class CpuLimitExceeded(GuardError):
    """The child used up its CPU budget, or was still running at the wall-clock deadline."""


class MemoryLimitExceeded(GuardError):
    """The child's allocations failed at its memory budget, or the kernel killed it for memory."""


class ChildCrashed(GuardError):
    """A signal the guard did not cause ended the child (SIGSEGV, SIGABRT…): native code failed."""


class ChildFailed(GuardError):
    """The work raised an exception (a bug, not a limit); the message carries the child's traceback."""


def run(work: Callable[[], bytes], budget: Budget | None = None) -> tuple[bytes, Usage]:
    """Run `work` in a forked child under `budget`; return the bytes it returned and what it cost, or raise a
    GuardError. Whatever happens in the child (a crash, a limit, an exception) leaves this process as it was."""
    budget = budget or Budget()
    _keep_large_buffers_out_of_the_heap()
    worker_rss = _resident_bytes()
    started = time.perf_counter()
    read_end, write_end = os.pipe()
    # Objects the worker already has are frozen, so a garbage collection in the child does not walk (and so copy)
    # every page of the worker's heap: with a 150 MB worker, a full collection in the child cost 50 ms without
    # this and 11 ms with it.
    gc.freeze()
    try:
        with warnings.catch_warnings():
            # Python warns when a process with threads forks (the dev server and the tests run the worker in a
            # thread). The child runs only `work` and leaves through os._exit; the modules a decode needs are
            # imported before the fork, and the deadline below bounds the child even if it ever blocked.
            warnings.filterwarnings("ignore", r".*fork\(\) may lead to deadlocks", DeprecationWarning)
            pid = os.fork()
    except BaseException:
        gc.unfreeze()
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # pragma: no cover - the child leaves through os._exit, where coverage cannot follow
        _run_child(work, budget, write_end)
    gc.unfreeze()
    os.close(write_end)
    return _await(pid, read_end, budget, worker_rss, started)


def _run_child(work: Callable[[], bytes], budget: Budget, write_end: int) -> NoReturn:
    """The child's whole life: limits, work, result, exit. It never returns into the caller's stack."""
    code = _EXIT_FAILED
    try:
        # Only the standard streams and our end of the pipe stay open: a pipe another thread's guard made must
        # not be held open by this child, or that guard would wait for this child's exit to see its own EOF.
        os.closerange(3, write_end)
        os.closerange(write_end + 1, _MAX_FD)
        _count_every_new_page()
        _limit(budget)  # after the heap was trimmed: the data segment may have shrunk with it
        # First on the pipe, so the parent has it even if the work is killed: the child's resident memory when the
        # work starts, from which the work's growth is measured.
        _write_all(write_end, _resident_bytes().to_bytes(_HEADER_BYTES, "big"))
        try:
            payload = work()
        except MemoryError:
            code = _EXIT_OUT_OF_MEMORY
        except BaseException:
            _write_all(write_end, traceback.format_exc().encode()[-_MAX_TRACEBACK_BYTES:])
        else:
            _write_all(write_end, payload)
            code = 0
    except MemoryError:
        code = _EXIT_OUT_OF_MEMORY
    finally:
        os._exit(code)


def _limit(budget: Budget) -> None:
    # CPU times start at zero in a forked child, so the limit is the work's own. SIGXCPU's default action ends the
    # process (Python leaves that signal alone); the hard limit a second later is SIGKILL should anything catch it.
    resource.setrlimit(resource.RLIMIT_CPU, (budget.cpu_seconds, budget.cpu_seconds + 1))
    # A killed decoder must not leave a core file the size of its memory behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    inherited = _data_segment_bytes()
    if inherited is not None:
        # RLIMIT_DATA counts writable private memory (the heap and anonymous mmaps, where image buffers live), not
        # address space merely reserved (malloc's per-thread arenas, guard pages), which RLIMIT_AS would count.
        limit = inherited + budget.memory_bytes
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


@functools.cache
def _keep_large_buffers_out_of_the_heap() -> None:
    """In the worker, once: large buffers (an upload, its previews) are unmapped when freed, not kept as free heap.

    malloc hands a child free chunks of the heap it inherited before it grows the heap, and memory reused that way
    is invisible to RLIMIT_DATA (the parent's watch on the resident size still sees it, 10 ms late). glibc keeps
    freed buffers of up to 32 MB in the heap once it has seen one that big (its mmap threshold rises); fixing the
    threshold at 128 KiB keeps the free heap a child can reuse small.
    """
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _count_every_new_page() -> None:
    """Make the memory the work uses show in the limit and in the measured peak.

    The child inherits the worker's heap, free parts included, with their pages resident and shared, so pages the
    work reused there would never show in its peak resident size. The free heap is handed back to the kernel (in
    this child only; reusing it then takes new pages, which count), and the kernel's peak resident size is reset to
    what is left. Memory the work reuses from that free heap still escapes RLIMIT_DATA, which sees only growth:
    `_keep_large_buffers_out_of_the_heap` keeps it small, and the parent watches the resident size for the rest.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # 5: reset the peak resident size (Linux 4.0)


def _await(pid: int, read_end: int, budget: Budget, worker_rss: int, started: float) -> tuple[bytes, Usage]:
    reaped = False
    try:
        output, stopped = _watch(pid, read_end, started + budget.wall_seconds, budget.memory_bytes)
        if stopped is not None:
            _kill(pid)
        _, status, rusage = os.wait4(pid, 0)
        reaped = True
    finally:
        os.close(read_end)
        if not reaped:  # this process was interrupted: never leave the child running, nor a zombie behind
            _kill(pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    header, payload = output[:_HEADER_BYTES], output[_HEADER_BYTES:]
    usage = Usage(
        cpu_seconds=rusage.ru_utime + rusage.ru_stime,
        peak_rss_bytes=rusage.ru_maxrss * 1024,  # KiB on Linux
        start_rss_bytes=int.from_bytes(header, "big") if len(header) == _HEADER_BYTES else worker_rss,
        worker_rss_bytes=worker_rss,
        wall_seconds=time.perf_counter() - started,
    )
    if stopped == "deadline":
        raise CpuLimitExceeded(f"still running after {budget.wall_seconds:g} s of wall time", usage)
    if stopped == "memory":
        raise MemoryLimitExceeded(f"resident memory grew past {budget.memory_bytes >> 20} MiB", usage)
    return _outcome(status, payload, usage, budget)


def _watch(pid: int, read_end: int, deadline: float, memory_bytes: int) -> tuple[bytes, str | None]:
    """Everything the child writes until it exits (the pipe's end of file), or until it must be stopped: at the
    deadline, or when its resident memory has grown by more than `memory_bytes` since its work began.

    RLIMIT_DATA stops what the child maps, but not heap the worker had freed, which the child inherits and malloc
    reuses first; the child's resident size counts those pages too, so it is watched here as well, every 10 ms.
    """
    chunks: list[bytes] = []
    received = 0
    start_rss: int | None = None
    while (remaining := deadline - time.perf_counter()) > 0:
        ready, _, _ = select.select([read_end], [], [], min(remaining, _WATCH_SECONDS))
        if ready:
            chunk = os.read(read_end, _READ_CHUNK)
            if not chunk:
                return b"".join(chunks), None
            chunks.append(chunk)
            received += len(chunk)
            if start_rss is None and received >= _HEADER_BYTES:
                start_rss = int.from_bytes(b"".join(chunks)[:_HEADER_BYTES], "big")
        if start_rss is not None and _resident_bytes(pid) - start_rss > memory_bytes:
            return b"".join(chunks), "memory"
    return b"".join(chunks), "deadline"


def _outcome(status: int, payload: bytes, usage: Usage, budget: Budget) -> tuple[bytes, Usage]:
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == 0:
            return payload, usage
        if code == _EXIT_OUT_OF_MEMORY:
            raise MemoryLimitExceeded(f"allocation failed within {budget.memory_bytes >> 20} MiB", usage)
        raise ChildFailed(payload.decode(errors="replace") or f"the child exited with status {code}", usage)
    killed_by = os.WTERMSIG(status)
    if killed_by == signal.SIGXCPU or (killed_by == signal.SIGKILL and usage.cpu_seconds >= budget.cpu_seconds):
        raise CpuLimitExceeded(f"used {usage.cpu_seconds:.1f} s of CPU (limit {budget.cpu_seconds} s)", usage)
    if killed_by == signal.SIGKILL:
        # Neither our deadline nor the CPU limit: what is left is the kernel's OOM killer.
        raise MemoryLimitExceeded("killed by the kernel for memory", usage)
    raise ChildCrashed(f"ended by {signal.Signals(killed_by).name}", usage)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _resident_bytes(pid: int | None = None) -> int:
    """A process's resident memory (this one's by default); 0 where /proc cannot say (it has exited; not Linux)."""
    try:
        with open(f"/proc/{pid or 'self'}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def _data_segment_bytes() -> int | None:
    """The process's data segment as RLIMIT_DATA counts it (VmData), or None where /proc cannot say."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
