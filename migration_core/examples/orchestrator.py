"""Declarative schema of a task orchestrator: the default migration target a newcomer gets.

Portable to SQLite, PostgreSQL and MariaDB/MySQL: every indexed or unique string has a length,
text/JSON columns carry no server default, booleans default to the string '0'/'1' (valid on all
three), and a naming convention gives every constraint and index a stable name under 64 chars.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NOW = text("CURRENT_TIMESTAMP")
TASK_STATUSES = ("pending", "in_progress", "blocked", "completed", "failed", "cancelled")
_STATUS_LIST = ", ".join(f"'{s}'" for s in TASK_STATUSES)

def _utcnow() -> datetime:
    """Naive UTC, matching what CURRENT_TIMESTAMP stores in these naive DateTime columns."""
    return datetime.now(UTC).replace(tzinfo=None)


# BIGINT is no rowid alias in SQLite, so it would lose autoincrement there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    root_path: Mapped[str] = mapped_column(String(512), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="1")
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=_utcnow)
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime)

    tasks: Mapped[list[TaskBreakdown]] = relationship(back_populates="workspace")


class TaskBreakdown(Base):
    __tablename__ = "task_breakdowns"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_LIST})", name="status_valid"),
        Index("ix_task_breakdowns_workspace_status", "workspace_id", "status"),
    )

    parent_task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(Text)
    complexity: Mapped[str] = mapped_column(
        Enum("simple", "moderate", "complex", "very_complex", name="task_complexity", native_enum=False, length=20),
        server_default="moderate",
    )
    context: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    is_archived: Mapped[bool] = mapped_column(Boolean, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=_utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)

    workspace: Mapped[Workspace | None] = relationship(back_populates="tasks")
    subtasks: Mapped[list[Subtask]] = relationship(
        back_populates="parent", cascade="all, delete-orphan", passive_deletes=True
    )


class Specialist(Base):
    __tablename__ = "specialists"
    __table_args__ = (CheckConstraint("max_concurrent_tasks > 0", name="max_concurrent_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    specialist_type: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    is_enabled: Mapped[bool] = mapped_column(Boolean, server_default="1")
    max_concurrent_tasks: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)


class Subtask(Base):
    __tablename__ = "subtasks"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_LIST})", name="status_valid"),
        CheckConstraint("priority BETWEEN 0 AND 10", name="priority_range"),
        Index("ix_subtasks_parent_status", "parent_task_id", "status"),
        Index(
            "ix_subtasks_open_by_sequence",
            "parent_task_id",
            "sequence_number",
            sqlite_where=text("status <> 'completed'"),
            postgresql_where=text("status <> 'completed'"),
        ),
    )

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_task_id: Mapped[str] = mapped_column(ForeignKey("task_breakdowns.parent_task_id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    specialist_type: Mapped[str] = mapped_column(String(50), index=True)
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    priority: Mapped[int] = mapped_column(Integer, server_default="5")
    sequence_number: Mapped[int] = mapped_column(Integer, server_default="0")
    dependencies: Mapped[list[str] | None] = mapped_column(JSON)
    artifacts: Mapped[list[str] | None] = mapped_column(JSON)
    estimated_effort: Mapped[str | None] = mapped_column(String(50))
    results: Mapped[str | None] = mapped_column(Text)
    quality_gate_level: Mapped[str] = mapped_column(String(20), server_default="standard")
    prerequisite_satisfaction_required: Mapped[bool] = mapped_column(Boolean, server_default="0")
    auto_maintenance_enabled: Mapped[bool] = mapped_column(Boolean, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=_utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)

    parent: Mapped[TaskBreakdown] = relationship(back_populates="subtasks")


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint("tokens_used >= 0", name="tokens_non_negative"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ended_after_start"),
        Index("ix_sessions_workspace_active", "workspace_id", "is_active"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    client_name: Mapped[str] = mapped_column(String(100))
    client_version: Mapped[str | None] = mapped_column(String(50))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="1")
    tokens_used: Mapped[int] = mapped_column(Integer, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 4), server_default="0")
    started_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class FileOperation(Base):
    __tablename__ = "file_operations"
    __table_args__ = (
        CheckConstraint("file_size IS NULL OR file_size >= 0", name="file_size_non_negative"),
        Index("ix_file_operations_subtask_time", "subtask_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subtask_id: Mapped[str] = mapped_column(ForeignKey("subtasks.task_id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    operation_type: Mapped[str] = mapped_column(
        Enum("create", "update", "delete", "read", "move", name="file_operation_type", native_enum=False, length=20)
    )
    file_path: Mapped[str] = mapped_column(String(512), index=True)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(Integer)
    verification_status: Mapped[str] = mapped_column(String(20), server_default="pending")
    occurred_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)


class ArchitecturalDecision(Base):
    __tablename__ = "architectural_decisions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "decision_number"),
        CheckConstraint("status IN ('proposed', 'accepted', 'superseded', 'rejected')", name="status_valid"),
        CheckConstraint("impact_level IN ('low', 'medium', 'high', 'critical')", name="impact_level_valid"),
        CheckConstraint("confidence IS NULL OR (confidence >= 0 AND confidence <= 1)", name="confidence_range"),
        Index("ix_architectural_decisions_category_status", "category", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    decision_number: Mapped[int] = mapped_column(Integer)
    subtask_id: Mapped[str | None] = mapped_column(ForeignKey("subtasks.task_id", ondelete="SET NULL"))
    # Named by hand: the convention's name would pass the 63-character identifier limit.
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("architectural_decisions.id", ondelete="SET NULL", name="fk_architectural_decisions_superseded_by")
    )
    title: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), server_default="proposed")
    impact_level: Mapped[str] = mapped_column(String(10), server_default="medium")
    context: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    consequences: Mapped[str | None] = mapped_column(Text)
    alternatives: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=_utcnow)


class TaskArchive(Base):
    __tablename__ = "task_archives"
    __table_args__ = (CheckConstraint("size_bytes >= 0", name="size_non_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    original_task_id: Mapped[str] = mapped_column(String(64), unique=True)
    parent_task_id: Mapped[str | None] = mapped_column(String(64))
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    archive_reason: Mapped[str] = mapped_column(String(50), server_default="completed")
    archived_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    archived_by: Mapped[str | None] = mapped_column(String(100))
    is_restorable: Mapped[bool] = mapped_column(Boolean, server_default="1")
    size_bytes: Mapped[int] = mapped_column(Integer, server_default="0")
    archived_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, index=True)


class WorkspaceTask(Base):
    __tablename__ = "workspace_tasks"
    __table_args__ = (
        UniqueConstraint("workspace_id", "task_id"),
        CheckConstraint("association_type IN ('primary', 'reference', 'dependency')", name="association_type_valid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(ForeignKey("task_breakdowns.parent_task_id", ondelete="CASCADE"), index=True)
    association_type: Mapped[str] = mapped_column(String(20), server_default="primary")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)


class WorkspaceArtifact(Base):
    __tablename__ = "workspace_artifacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "path"),
        CheckConstraint("size_bytes IS NULL OR size_bytes >= 0", name="size_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    subtask_id: Mapped[str | None] = mapped_column(ForeignKey("subtasks.task_id", ondelete="SET NULL"), index=True)
    artifact_type: Mapped[str] = mapped_column(
        Enum("code", "documentation", "analysis", "design", "test", "config", "general",
             name="artifact_type", native_enum=False, length=20),
        server_default="general",
    )
    path: Mapped[str] = mapped_column(String(512))
    title: Mapped[str | None] = mapped_column(String(255))
    mime_type: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    artifact_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=_utcnow)


class TaskEvent(Base):
    __tablename__ = "task_events"
    __table_args__ = (
        Index("ix_task_events_task_time", "task_id", "created_at"),
        Index(
            "ix_task_events_unprocessed",
            "created_at",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign key: the event log outlives archived and deleted tasks.
    task_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(50), index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)


class ReviewComment(Base):
    __tablename__ = "review_comments"
    __table_args__ = (
        CheckConstraint("line_number IS NULL OR line_number > 0", name="line_number_positive"),
        CheckConstraint("resolved_at IS NULL OR resolved_at >= created_at", name="resolved_after_created"),
        Index("ix_review_comments_subtask_resolved", "subtask_id", "resolved"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subtask_id: Mapped[str] = mapped_column(ForeignKey("subtasks.task_id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(
        Enum("info", "minor", "major", "blocker", name="review_severity", native_enum=False,
             create_constraint=True, length=10),
        server_default="info",
    )
    file_path: Mapped[str | None] = mapped_column(String(512))
    line_number: Mapped[int | None] = mapped_column(Integer)
    resolved: Mapped[bool] = mapped_column(Boolean, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class MaintenanceOperation(Base):
    __tablename__ = "maintenance_operations"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'completed', 'failed')", name="status_valid"),
        CheckConstraint("duration_seconds IS NULL OR duration_seconds >= 0", name="duration_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_type: Mapped[str] = mapped_column(String(50), index=True)
    target_task_id: Mapped[str | None] = mapped_column(ForeignKey("task_breakdowns.parent_task_id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
