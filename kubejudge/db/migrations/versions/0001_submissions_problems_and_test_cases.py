"""submissions, problems and test cases

Revision ID: 0001
Revises:
Create Date: 2026-11-26 04:07:28.247327
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("cpu_time_limit", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("memory_limit", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("problem_id", sa.Integer(), nullable=True),
        sa.Column("source_code", sa.LargeBinary(), nullable=True),
        sa.Column("language_id", sa.Integer(), nullable=False),
        sa.Column("compiler_options", sa.String(length=512), nullable=True),
        sa.Column("command_line_arguments", sa.String(length=512), nullable=True),
        sa.Column("stdin", sa.LargeBinary(), nullable=True),
        sa.Column("expected_output", sa.LargeBinary(), nullable=True),
        sa.Column("cpu_time_limit", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("cpu_extra_time", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("wall_time_limit", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("memory_limit", sa.Integer(), nullable=False),
        sa.Column("stack_limit", sa.Integer(), nullable=False),
        sa.Column("max_processes_and_or_threads", sa.Integer(), nullable=False),
        sa.Column("enable_per_process_and_thread_time_limit", sa.Boolean(), nullable=False),
        sa.Column("enable_per_process_and_thread_memory_limit", sa.Boolean(), nullable=False),
        sa.Column("max_file_size", sa.Integer(), nullable=False),
        sa.Column("redirect_stderr_to_stdout", sa.Boolean(), nullable=False),
        sa.Column("enable_network", sa.Boolean(), nullable=False),
        sa.Column("number_of_runs", sa.Integer(), nullable=False),
        sa.Column("additional_files", sa.LargeBinary(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("status_id", sa.Integer(), nullable=False),
        sa.Column("stdout", sa.LargeBinary(), nullable=True),
        sa.Column("stderr", sa.LargeBinary(), nullable=True),
        sa.Column("compile_output", sa.LargeBinary(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("exit_signal", sa.Integer(), nullable=True),
        sa.Column("time", sa.Numeric(precision=10, scale=3), nullable=True),
        sa.Column("wall_time", sa.Numeric(precision=10, scale=3), nullable=True),
        sa.Column("memory", sa.Integer(), nullable=True),
        sa.Column("memory_limit_exceeded", sa.Boolean(), nullable=False),
        sa.Column("test_results", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "idempotency_key", name="submissions_owner_idempotency_key"),
        sa.UniqueConstraint("token"),
    )
    op.create_index(
        "submissions_owner_created_at", "submissions", ["owner", "created_at"], unique=False
    )
    op.create_index(
        "submissions_unfinished",
        "submissions",
        ["status_id", "created_at"],
        unique=False,
        postgresql_where="status_id < 3",
    )
    op.create_table(
        "test_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("input", sa.LargeBinary(), nullable=False),
        sa.Column("expected_output", sa.LargeBinary(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("problem_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("test_cases")
    op.drop_index(
        "submissions_unfinished", table_name="submissions", postgresql_where="status_id < 3"
    )
    op.drop_index("submissions_owner_created_at", table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("problems")
