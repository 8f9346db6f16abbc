"""The shop's benchmark: product pages, a user's recent orders (loaded well, and N+1-prone), and
checkouts. Its tables are filled by the generic filler (`--scale`, 1,000 rows each by default).

    python -m runner --workload examples.shop.bench --scale 100000 --keys zipf --procs 2
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from examples.shop.models import Base, Order, OrderLine, Product
from workloads import Context, workload

RECENT = 20  # orders on the "recent orders" page

bench = workload("shop", Base, description="product pages, recent orders, checkouts", default_scale=1000)


def _recent() -> Select[Order]:
    return select(Order).order_by(Order.id.desc()).limit(RECENT)


@bench.read(weight=5)
async def product_page(ctx: Context) -> None:
    async with ctx.sessions() as session:
        await session.get(Product, ctx.keys.pick(ctx.scale))


@bench.read(weight=5, name="product_page")
def product_page_sync(ctx: Context) -> None:
    with ctx.sessions() as session:
        session.get(Product, ctx.keys.pick(ctx.scale))


@bench.read(weight=2)
async def recent_orders(ctx: Context) -> None:
    """Two statements: the orders, then all their lines at once (selectinload)."""
    async with ctx.sessions() as session:
        orders = (await session.scalars(_recent().options(selectinload(Order.lines)))).all()
        sum(line.quantity for order in orders for line in order.lines)


@bench.read(weight=2, name="recent_orders")
def recent_orders_sync(ctx: Context) -> None:
    with ctx.sessions() as session:
        orders = session.scalars(_recent().options(selectinload(Order.lines))).all()
        sum(line.quantity for order in orders for line in order.lines)


@bench.read(weight=1)
async def recent_orders_lazy(ctx: Context) -> None:
    """The N+1 version: one SELECT for the orders, then one per order for its lines."""
    async with ctx.sessions() as session:
        orders = (await session.scalars(_recent())).all()
        for order in orders:
            sum(line.quantity for line in await order.awaitable_attrs.lines)


@bench.read(weight=1, name="recent_orders_lazy")
def recent_orders_lazy_sync(ctx: Context) -> None:
    with ctx.sessions() as session:
        for order in session.scalars(_recent()).all():
            sum(line.quantity for line in order.lines)


def _order(ctx: Context) -> Order:
    order = Order(user_id=ctx.keys.pick(ctx.scale), status="placed")
    for _ in range(2):
        order.lines.append(OrderLine(product_id=ctx.keys.pick(ctx.scale), quantity=ctx.rng.randint(1, 3), price=Decimal("9.99")))
    return order


@bench.write(weight=2, rows={"orders": 1, "order_lines": 2})
async def checkout(ctx: Context) -> None:
    async with ctx.sessions() as session:
        session.add(_order(ctx))
        await session.commit()


@bench.write(weight=2, name="checkout", rows={"orders": 1, "order_lines": 2})
def checkout_sync(ctx: Context) -> None:
    with ctx.sessions() as session:
        session.add(_order(ctx))
        session.commit()
