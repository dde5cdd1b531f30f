"""What each load-test submission runs: a tiny program per language family that prints `ok`,
optionally after sleeping (Python only) so each submission holds a worker for a while."""

from __future__ import annotations

from kubejudge.languages import LANGUAGES

EXPECTED_OUTPUT = "ok\n"

_SOURCES: dict[str, str] = {
    "c": '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n',
    "cpp": '#include <iostream>\nint main() { std::cout << "ok\\n"; }\n',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("ok") }\n',
    "java": (
        "public class Main {\n"
        '    public static void main(String[] a) { System.out.println("ok"); }\n'
        "}\n"
    ),
    "javascript": 'console.log("ok");\n',
    "rust": 'fn main() { println!("ok"); }\n',
}


def source_for(*, language_id: int, work_s: float) -> str:
    """The program for `language_id`; `work_s` > 0 needs Python (a sleep, not CPU burn, so the
    load test measures queueing and scaling rather than this machine's cores)."""
    language = LANGUAGES.get(language_id)
    if language is None:
        raise ValueError(f"expected a known Judge0 language id, got {language_id}")
    if language.family == "python":
        sleep = f"import time\ntime.sleep({work_s!r})\n" if work_s > 0 else ""
        return f'{sleep}print("ok")\n'
    if work_s > 0:
        raise ValueError(f"--work-s needs a Python language id, got {language.name}")
    return _SOURCES[language.family]
