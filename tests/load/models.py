"""Models of an ordinary app for the filler's tests: every column type family, checks, a tree,
a unique foreign key, server defaults and a computed column."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any, TypedDict

from sqlalchemy import ARRAY, JSON, CheckConstraint, Computed, Enum, ForeignKey, Interval, LargeBinary, Numeric, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Visit(TypedDict):
    at: dt.datetime
    pages: int


class Status(enum.Enum):
    draft = "d"
    published = "p"


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    balance: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2), CheckConstraint("balance >= 0"))
    code: Mapped[str] = mapped_column(String(8), CheckConstraint("char_length(code) = 8"))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey(Tenant.id))
    email: Mapped[str] = mapped_column(String(120), unique=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    born: Mapped[dt.date]
    wakes: Mapped[dt.time]
    seen: Mapped[dt.datetime]
    token: Mapped[uuid.UUID]
    avatar: Mapped[bytes] = mapped_column(LargeBinary)
    shift: Mapped[dt.timedelta] = mapped_column(Interval)
    created: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Profile(Base):
    __tablename__ = "profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(User.id), unique=True)
    bio: Mapped[str | None] = mapped_column(String(200))


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey(User.id))
    title: Mapped[str] = mapped_column(String(80))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    scores: Mapped[dict[str, int]] = mapped_column(JSONB)  # documents shaped by the annotation
    visits: Mapped[list[Visit] | None] = mapped_column(JSON)
    status: Mapped[Status] = mapped_column(Enum(Status, name="post_status"))
    kind: Mapped[str] = mapped_column(Enum("a", "b", name="post_kind", native_enum=False))
    price: Mapped[decimal.Decimal] = mapped_column(Numeric(5, 2))
    title_len: Mapped[int] = mapped_column(Computed("char_length(title)"))


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey(Post.id))
    body: Mapped[str] = mapped_column(String(200))
