"""Every read model tekil keeps. A new one is added here and nowhere else."""

from __future__ import annotations

from projections.activities import Activities
from projections.customers import Customers
from projections.engine import Projection
from projections.leads import Leads
from projections.opportunities import Opportunities


def all_projections() -> list[Projection]:
    return [Leads(), Customers(), Opportunities(), Activities()]
