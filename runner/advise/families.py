"""The candidates `runner advise` chooses between: families (a mode and a driver) at a number of
processes and a concurrency per process, each a RunSpec built from the user's options."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from runner.concurrency import MODES
from runner.errors import UsageError
from runner.spec import RunSpec


@dataclass(frozen=True)
class Family:
    name: str  # as --candidates names it
    mode: str
    driver: str

    @property
    def width_option(self) -> str:
        """The option that sets its ops in flight per process (the mode's width)."""
        width = MODES[self.mode].width
        assert width is not None, f"{self.mode} has no width"
        return width


FAMILIES = {
    family.name: family
    for family in (
        Family("sync", "sync", "psycopg2"),
        Family("sync-psycopg", "sync", "psycopg"),
        Family("window", "window", "asyncpg"),
        Family("window-psycopg", "window", "psycopg"),
        Family("chunked", "chunked", "asyncpg"),
        Family("gevent", "gevent", "psycopg2"),  # greenlets: the third way Python services run
    )
}
DEFAULT_FAMILIES = ("sync", "window")  # the seed's question: sync or async
LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # ops in flight per process, screened in this order


@dataclass(frozen=True)
class Candidate:
    family: Family
    procs: int
    width: int  # ops in flight per process: --threads or --chunk

    @property
    def connections(self) -> int:
        """Connections it holds: a pool as wide as its ops in flight, per process."""
        return self.procs * self.width

    @property
    def label(self) -> str:
        return f"{self.family.name} procs={self.procs} {self.family.width_option}={self.width}"

    def spec(self, base: RunSpec, step_s: float, warmup_s: float, slos: tuple[str, ...] = ()) -> RunSpec:
        """The user's options, as this candidate, for one step of `step_s` measured seconds."""
        return base.replace(
            mode=self.family.mode,
            driver=self.family.driver,
            procs=self.procs,
            **{self.family.width_option: self.width},
            pool_size=None,
            max_overflow=0,
            duration_s=step_s,
            warmup_s=warmup_s,
            warmup_ops=0,
            ops=None,
            repeat=1,
            output=None,
            jsonl=False,
            quiet=True,
            checks=slos,  # a percentile only the SLOs name (p95) is computed for the step
        )


def parse_families(text: str) -> tuple[Family, ...]:
    """--candidates sync,window -> the families, in order; one line naming the unknown one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        what = f"no family {', '.join(map(repr, unknown))}" if unknown else "no family named"
        raise UsageError(f"--candidates {text!r}: {what}; name them from {', '.join(FAMILIES)}, comma-separated")
    families = tuple(FAMILIES[name] for name in dict.fromkeys(names))
    if any(MODES[f.mode].patched for f in families) and importlib.util.find_spec("gevent") is None:
        raise UsageError(f"--candidates {text!r}: the gevent family needs gevent and psycogreen: pip install 'runner[gevent]'")
    return families


def ladder(procs: int, max_connections: int, max_width: int) -> list[int]:
    """Ops in flight per process to screen: doubling from 1, within the connection budget."""
    return [width for width in LADDER if width <= max_width and procs * width <= max_connections]
