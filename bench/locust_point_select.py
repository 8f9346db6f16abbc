"""The Locust side of bench/gevent_parity.py: the ORM point-select op as a Locust user runs it
(gevent, psycopg2 made cooperative by psycogreen, SQLAlchemy's session), no wait between tasks.

    locust -f bench/locust_point_select.py --headless -u 40 -r 40 -t 10s --reset-stats --csv out

The table is the runner's point-select workload's (`runner.item`, 10,000 rows): run that once
against the same server first. The DSN comes from DATABASE_URL.
"""

from __future__ import annotations

import os
import random
import time

from locust import User, constant, events, task
from psycogreen.gevent import patch_psycopg
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

patch_psycopg()  # Locust has gevent-patched the process; psycopg2 waits through its hub
USERS = int(os.environ.get("LOCUST_USERS", "40"))
ENGINE = create_engine(
    os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1), pool_size=USERS, max_overflow=0, pool_pre_ping=False
)
ITEMS = 10_000


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    __table_args__ = {"schema": "runner"}
    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[str] = mapped_column(String)


class PointSelect(User):
    wait_time = constant(0)

    @task
    def select(self) -> None:
        key = random.randint(1, ITEMS)
        started = time.perf_counter()
        error = None
        try:
            with Session(ENGINE) as session:
                session.get(Item, key)
        except Exception as exc:  # counted by Locust as a failure
            error = exc
        events.request.fire(request_type="sql", name="select", response_time=(time.perf_counter() - started) * 1000, response_length=0, exception=error, context={})
