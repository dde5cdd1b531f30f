"""What the system-information routes return: `/about`, `/config_info`, `/version`."""

from __future__ import annotations

from typing import Any

from kubejudge_api import judge0_request
from kubejudge_api.settings import ApiSettings

# The official SDK picks its language-id table from /about.version; 1.13.1 is the table our
# ids follow. Our own name and version ride along in extra keys.
JUDGE0_VERSION = "1.13.1"
KUBEJUDGE_VERSION = "0.1.0"
SOURCE = "https://github.com/kubejudge/kubejudge"


def about() -> dict[str, str]:
    return {
        "version": JUDGE0_VERSION,
        "homepage": SOURCE,
        "source_code": SOURCE,
        "maintainer": "kubejudge contributors",
        "name": "kubejudge",
        "kubejudge_version": KUBEJUDGE_VERSION,
    }


def config_info(settings: ApiSettings) -> dict[str, Any]:
    """All 39 keys of Judge0 1.13.1 (the SDK's strict model needs every one), stating what we
    actually allow: no callbacks, no network, no additional files, no per-process limits."""
    decimals = judge0_request.DECIMAL_LIMITS
    integers = judge0_request.INTEGER_LIMITS

    def limits(name: str, max_name: str, table: dict[str, Any]) -> dict[str, Any]:
        default, _, high, *_ = table[name]
        cast = float if table is decimals else int
        return {name: cast(default), max_name: cast(high)}

    return {
        "maintenance_mode": False,
        "enable_wait_result": settings.enable_wait_result,
        "enable_compiler_options": True,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": True,
        "enable_submission_delete": False,
        "enable_callbacks": False,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": False,
        "max_queue_size": settings.max_queue_size,
        **limits("cpu_time_limit", "max_cpu_time_limit", decimals),
        **limits("cpu_extra_time", "max_cpu_extra_time", decimals),
        **limits("wall_time_limit", "max_wall_time_limit", decimals),
        **limits("memory_limit", "max_memory_limit", integers),
        **limits("stack_limit", "max_stack_limit", integers),
        **limits("max_processes_and_or_threads", "max_max_processes_and_or_threads", integers),
        "enable_per_process_and_thread_time_limit": False,
        "allow_enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "allow_enable_per_process_and_thread_memory_limit": False,
        **limits("max_file_size", "max_max_file_size", integers),
        **limits("number_of_runs", "max_number_of_runs", integers),
        "redirect_stderr_to_stdout": False,
        "max_extract_size": 0,
        "enable_batched_submissions": True,
        "max_submission_batch_size": settings.max_submission_batch_size,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": False,
        "allow_enable_network": False,
        "enable_network": False,
    }
