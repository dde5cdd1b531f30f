"""The languages we run: one table, on Judge0 1.13.1's ids.

Every id Judge0 1.13.1 has for a language we run is served (clients hard-code different ones);
ids of one language share a toolchain, and each name states the version actually installed in
the worker image. Commands are argv lists: nothing here is ever joined into a shell string.
`{options}` in a compile argv is replaced by the user's compiler options, split into words.
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIONS = "{options}"


@dataclass(frozen=True, slots=True)
class Language:
    id: int
    name: str
    family: str  # routing key for worker pools and the sandbox's toolchain binds
    source_file: str
    run_cmd: tuple[str, ...]
    compile_cmd: tuple[str, ...] | None = None

    @property
    def is_compiled(self) -> bool:
        return self.compile_cmd is not None

    def public(self) -> dict[str, int | str]:
        return {"id": self.id, "name": self.name}

    def detail(self) -> dict[str, int | str | bool | None]:
        """`GET /languages/{id}`: Judge0 shows the commands as text, so we render the argv."""
        compile_text = None
        if self.compile_cmd is not None:
            compile_text = " ".join("%s" if part == OPTIONS else part for part in self.compile_cmd)
        return {
            "id": self.id,
            "name": self.name,
            "is_archived": False,
            "source_file": self.source_file,
            "compile_cmd": compile_text,
            "run_cmd": " ".join(self.run_cmd),
        }


def _c(language_id: int) -> Language:
    return Language(
        id=language_id,
        name="C (GCC 12.2.0)",
        family="c",
        source_file="main.c",
        compile_cmd=("/usr/bin/gcc", OPTIONS, "-O2", "-o", "a.out", "main.c", "-lm"),
        run_cmd=("./a.out",),
    )


def _cpp(language_id: int) -> Language:
    return Language(
        id=language_id,
        name="C++ (GCC 12.2.0)",
        family="cpp",
        source_file="main.cpp",
        compile_cmd=("/usr/bin/g++", OPTIONS, "-O2", "-o", "a.out", "main.cpp"),
        run_cmd=("./a.out",),
    )


LANGUAGES: dict[int, Language] = {
    language.id: language
    for language in (
        _c(48),
        _c(49),
        _c(50),
        _cpp(52),
        _cpp(53),
        _cpp(54),
        Language(
            id=60,
            name="Go (1.26.8)",
            family="go",
            source_file="main.go",
            compile_cmd=("/usr/local/go/bin/go", "build", OPTIONS, "-o", "main", "main.go"),
            run_cmd=("./main",),
        ),
        Language(
            id=62,
            name="Java (OpenJDK 17.0.15)",
            family="java",
            source_file="Main.java",
            compile_cmd=("/usr/bin/javac", OPTIONS, "Main.java"),
            run_cmd=("/usr/bin/java", "-cp", ".", "Main"),
        ),
        Language(
            id=63,
            name="JavaScript (Node.js 20.20.2)",
            family="javascript",
            source_file="script.js",
            run_cmd=("/usr/bin/node", "script.js"),
        ),
        Language(
            id=71,
            name="Python (3.11.2)",
            family="python",
            source_file="script.py",
            run_cmd=("/usr/bin/python3", "script.py"),
        ),
        Language(
            id=73,
            name="Rust (1.95.0)",
            family="rust",
            source_file="main.rs",
            compile_cmd=("/opt/rust/bin/rustc", OPTIONS, "-O", "-o", "main", "main.rs"),
            run_cmd=("./main",),
        ),
    )
}

FAMILIES: frozenset[str] = frozenset(language.family for language in LANGUAGES.values())
