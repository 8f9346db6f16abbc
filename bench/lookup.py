"""A workload for bench/sweep_load.py: primary-key reads whose cost per op does not grow with
the tables' size, so that a sweep at --scale and one without differ only by what loading costs.

    python -m runner --workload bench/lookup.py --scale 1000000

Two tables (accounts, and one entry per account pointing at it) filled by the generic filler;
each op reads one account and its entry by key, among the first 1,000 keys: rows that exist at
--scale 1000 and more, and none without --scale, which costs an index probe all the same.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from workloads import workload

KEYS = 1_000


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    balance: Mapped[int]


class Entry(Base):
    __tablename__ = "entry"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey(Account.id))
    amount: Mapped[int]


bench = workload("lookup", Base, "primary-key reads of an account and its entry (bench/sweep_load.py)")


@bench.read()
async def account(ctx):  # type: ignore[no-untyped-def]
    key = ctx.keys.pick(KEYS)
    async with ctx.sessions() as session:
        await session.get(Account, key)
        await session.scalar(select(Entry).where(Entry.id == key))


@bench.read(name="account")
def account_sync(ctx):  # type: ignore[no-untyped-def]
    key = ctx.keys.pick(KEYS)
    with ctx.sessions() as session:
        session.get(Account, key)
        session.scalar(select(Entry).where(Entry.id == key))
