"""Tables. Text a program reads or writes is stored as bytes: Judge0 clients may send any bytes
in base64, and a program's output need not be UTF-8."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kubejudge.statuses import Status


class Base(DeclarativeBase):
    pass


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="submissions_owner_idempotency_key"),
        Index("submissions_owner_created_at", "owner", "created_at"),
        Index(
            "submissions_unfinished", "status_id", "created_at", postgresql_where="status_id < 3"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token: Mapped[str] = mapped_column(String(36), unique=True)
    owner: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"))

    # What Judge0 takes (request attributes 1-20).
    source_code: Mapped[bytes | None] = mapped_column(LargeBinary)
    language_id: Mapped[int] = mapped_column(Integer)
    compiler_options: Mapped[str | None] = mapped_column(String(512))
    command_line_arguments: Mapped[str | None] = mapped_column(String(512))
    stdin: Mapped[bytes | None] = mapped_column(LargeBinary)
    expected_output: Mapped[bytes | None] = mapped_column(LargeBinary)
    cpu_time_limit: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    cpu_extra_time: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    wall_time_limit: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    memory_limit: Mapped[int] = mapped_column(Integer)
    stack_limit: Mapped[int] = mapped_column(Integer)
    max_processes_and_or_threads: Mapped[int] = mapped_column(Integer)
    enable_per_process_and_thread_time_limit: Mapped[bool] = mapped_column(Boolean)
    enable_per_process_and_thread_memory_limit: Mapped[bool] = mapped_column(Boolean)
    max_file_size: Mapped[int] = mapped_column(Integer)
    redirect_stderr_to_stdout: Mapped[bool] = mapped_column(Boolean)
    enable_network: Mapped[bool] = mapped_column(Boolean)
    number_of_runs: Mapped[int] = mapped_column(Integer)
    additional_files: Mapped[bytes | None] = mapped_column(LargeBinary)
    callback_url: Mapped[str | None] = mapped_column(Text)

    # What the worker writes (response attributes 21-33, plus ours).
    status_id: Mapped[int] = mapped_column(Integer, default=int(Status.IN_QUEUE))
    stdout: Mapped[bytes | None] = mapped_column(LargeBinary)
    stderr: Mapped[bytes | None] = mapped_column(LargeBinary)
    compile_output: Mapped[bytes | None] = mapped_column(LargeBinary)
    message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    exit_signal: Mapped[int | None] = mapped_column(Integer)
    time: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    wall_time: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    memory: Mapped[int | None] = mapped_column(Integer)
    memory_limit_exceeded: Mapped[bool] = mapped_column(Boolean, default=False)
    # Per-test outcomes of a problem submission: [{"test", "status", "time", "memory", ...}].
    test_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)

    # Fencing: bumped each time a worker starts the submission; a verdict is written only by
    # the attempt that is still current, so a re-run never overwrites a newer result.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    problem: Mapped[Problem | None] = relationship(lazy="raise")


class Problem(Base):
    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    statement: Mapped[str] = mapped_column(Text, default="")
    cpu_time_limit: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    memory_limit: Mapped[int] = mapped_column(Integer)
    # Bumped on every write; the cache stores it so a stale fill can be recognised.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    tests: Mapped[list[TestCase]] = relationship(
        order_by="TestCase.position", cascade="all, delete-orphan", lazy="raise"
    )


class TestCase(Base):
    __tablename__ = "test_cases"
    __table_args__ = (UniqueConstraint("problem_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    input: Mapped[bytes] = mapped_column(LargeBinary)
    expected_output: Mapped[bytes] = mapped_column(LargeBinary)
    # Hidden tests are judged but their data never leaves the server.
    hidden: Mapped[bool] = mapped_column(Boolean, default=True)
