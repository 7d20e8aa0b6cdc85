"""Everything a tekil process holds open: the store, the read side, the keys, the runner."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from api.keys import KeyStore
from domain import context
from domain.app import Business, open_business
from domain.settings import Settings
from projections.db import make_engine
from projections.registry import all_projections
from projections.runner import Runner
from projections.store import ReadStore
from replay.chain import ChainStore

# Threads that run the API's commands. A process's commands take turns (domain/core.py), so
# one would do but for a command pausing before it retries, which it does outside its turn.
COMMAND_THREADS = 4


def _command_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(COMMAND_THREADS, thread_name_prefix="tekil-command")


@dataclass
class Services:
    settings: Settings
    business: Business
    reads: ReadStore
    keys: KeyStore
    runner: Runner
    chain: ChainStore
    commands: ThreadPoolExecutor = field(default_factory=_command_threads)

    @classmethod
    def open(
        cls, settings: Settings | None = None, *, initialise: bool = False, defaults: bool = True
    ) -> Services:
        settings = settings or Settings.from_env()
        business = open_business(settings, create_tables=initialise)
        reads = ReadStore(settings.reads_url, all_projections())
        keys_engine = (
            reads.writer
            if settings.reads_url == settings.database_url
            else make_engine(settings.database_url, writer=True)
        )
        services = cls(
            settings=settings,
            business=business,
            reads=reads,
            keys=KeyStore(keys_engine, reads.reader if keys_engine is reads.writer else None),
            runner=Runner(business, reads, store_url=settings.database_url),
            chain=ChainStore(keys_engine),
        )
        if initialise:
            services.initialise(defaults=defaults)
        else:
            # A read model added since the database was initialised gets its tables now (the
            # runner builds it from position 0); the store's own tables are never made here.
            services.ensure_read_tables()
        return services

    def ensure_read_tables(self) -> None:
        try:
            self.reads.create_tables()
            self.keys.create_table()
            self.chain.create_table()
        except Exception:
            logging.getLogger(__name__).debug("read tables not ensured", exc_info=True)

    def initialise(self, *, defaults: bool = True) -> None:
        """Create the read-model and key tables (the store's own were created on opening),
        and record what exists from the start (the MAIN warehouse)."""
        self.reads.create_tables()
        self.keys.create_table()
        self.chain.create_table()
        if defaults:
            with context.acting(context.CommandContext(actor="system:init")):
                self.business.ensure_defaults()

    def close(self) -> None:
        self.commands.shutdown()
        self.runner.stop()
        self.business.close()
        if self.keys.engine is not self.reads.writer:
            self.keys.engine.dispose()
        self.reads.dispose()
