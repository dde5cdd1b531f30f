"""OpenAPI descriptions of the Judge0 request bodies.

The submission routes parse their JSON themselves (Judge0's defaults, lenient types and exact
messages do not fit a pydantic model), so these models only document the contract in /docs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SubmissionBody(BaseModel):
    """A Judge0 submission. Text fields are Base64 when `base64_encoded=true`."""

    source_code: str = Field(description="program text (required)")
    language_id: int = Field(description="a Judge0 1.13.1 id from GET /languages")
    stdin: str | None = None
    expected_output: str | None = None
    compiler_options: str | None = Field(default=None, max_length=512)
    command_line_arguments: str | None = Field(default=None, max_length=512)
    cpu_time_limit: float | None = Field(default=None, description="seconds, default 5, max 15")
    cpu_extra_time: float | None = Field(default=None, description="seconds, default 1, max 5")
    wall_time_limit: float | None = Field(default=None, description="seconds, 1..20, default 10")
    memory_limit: int | None = Field(default=None, description="KB, 2048..512000")
    stack_limit: int | None = Field(default=None, description="KB, max 128000")
    max_processes_and_or_threads: int | None = Field(default=None, description="1..120")
    max_file_size: int | None = Field(default=None, description="KB, max 4096")
    number_of_runs: int | None = Field(default=None, description="1..20")
    redirect_stderr_to_stdout: bool | None = None
    enable_per_process_and_thread_time_limit: bool | None = Field(
        default=None, description="refused when true"
    )
    enable_per_process_and_thread_memory_limit: bool | None = Field(
        default=None, description="refused when true"
    )
    enable_network: bool | None = Field(default=None, description="refused when true")
    callback_url: str | None = Field(default=None, description="refused (SSRF vector)")
    additional_files: str | None = Field(default=None, description="refused")
    problem_id: int | None = Field(
        default=None, description="kubejudge: judge against this problem's tests"
    )


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


SUBMISSION_BODY = _body(SubmissionBody.model_json_schema())
BATCH_BODY = _body(
    {
        "type": "object",
        "required": ["submissions"],
        "properties": {
            "submissions": {"type": "array", "items": SubmissionBody.model_json_schema()}
        },
    }
)
