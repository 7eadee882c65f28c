"""Demo data beyond the catalog: the steps the domains register for ``seed_database``.

The catalog's ``seed_database`` makes the categories and products; each domain above the
catalog adds its own demo rows (stock, orders) through its own services, registered here
from its ``AppConfig.ready()``, so the catalog never imports them. Steps run in
``position`` order after the products, each told which demo products this run covers.
A step must add nothing the second time it runs with the same arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from audit.actors import Actor

# How far back the demo's history reaches: orders are spread over these days, and the
# metric history is collected for them.
HISTORY_DAYS = 30


@dataclass(frozen=True)
class DemoRun:
    """What one seeding step is asked to do."""

    seed: int
    size: int  # the step's ``--<size_option>`` (0 for a step without one)
    product_ids: list[int]  # the demo catalog's products this run covers, in every status
    actor: Actor
    now: datetime


@dataclass(frozen=True)
class SeedingStep:
    """One domain's part of the demo data.

    ``run`` adds the rows and returns a sentence saying what it added. With
    ``size_option`` (e.g. ``"orders"``), ``seed_database`` takes ``--orders N``
    (``default_size`` when not given) and passes N as ``DemoRun.size``.
    """

    name: str
    position: int
    run: Callable[[DemoRun], str]
    size_option: str = ""
    default_size: int = 0
    size_help: str = ""


_steps: dict[str, SeedingStep] = {}


def register_seeding_step(step: SeedingStep) -> None:
    _steps[step.name] = step


def seeding_steps() -> list[SeedingStep]:
    return sorted(_steps.values(), key=lambda step: step.position)
