"""The languages we run: one table, on Judge0 1.13.1's ids.

Every id Judge0 1.13.1 has for a language we run is served (clients hard-code different ones);
ids of one language share a toolchain, and each name states the version actually installed in
the worker image. Commands are argv lists: nothing here is ever joined into a shell string.
`{options}` in a compile argv is replaced by the user's compiler options, split into words.
"""

from __future__ import annotations

import re
import shlex
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


# compiler_options go onto the compiler's command line, where many options run programs or
# read files of the caller's choosing (gcc's -wrapper, -fplugin, -B, -specs, -Wl,..., @file;
# javac's -J, -processorpath; rustc's -C linker, -Z; go's -toolexec, -ldflags). So only these
# are accepted, per family: each word must match `single`, or be a flag of `paired` followed
# by a word matching its value pattern. Everything else is refused at the api (Judge0's 422)
# and again by the worker.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_GCC = re.compile(
    r"-O[0-3sgz]?|-Ofast|-std=(c|gnu|c\+\+|gnu\+\+)(89|90|99|11|14|17|1z|18|20|2a|23|2b|2x|26)"
    r"|-W(no-)?[a-z][a-z0-9+-]*(=[a-z0-9-]+)?|-w|-pedantic(-errors)?|-g[0-3]?|-c"
    rf"|-D{_NAME}(=[A-Za-z0-9_.+-]*)?|-U{_NAME}|-lm|-pthread|-march=native|-static"
)


@dataclass(frozen=True, slots=True)
class CompilerOptions:
    single: re.Pattern[str]
    paired: dict[str, re.Pattern[str]]


COMPILER_OPTIONS: dict[str, CompilerOptions] = {
    "c": CompilerOptions(_GCC, {}),
    "cpp": CompilerOptions(_GCC, {}),
    "go": CompilerOptions(re.compile(r"-trimpath|-tags=[A-Za-z0-9_.,]+"), {}),
    "java": CompilerOptions(
        re.compile(r"-g(:none)?|-nowarn|-deprecation|-Werror|-parameters|-Xlint(:-?[a-z]+)?"),
        {
            "-source": re.compile(r"[0-9]{1,2}"),
            "-target": re.compile(r"[0-9]{1,2}"),
            "--release": re.compile(r"[0-9]{1,2}"),
            "-encoding": re.compile(r"UTF-8|utf8|ISO-8859-1|US-ASCII"),
        },
    ),
    "rust": CompilerOptions(
        re.compile(
            r"-g|--edition=20(15|18|21|24)|-[ADFW](warnings|[a-z_]+)"
            r"|-Copt-level=[0-3sz]|-Cdebuginfo=[0-2]|-Ctarget-cpu=native"
        ),
        {
            "--edition": re.compile(r"20(15|18|21|24)"),
            "-C": re.compile(r"opt-level=[0-3sz]|debuginfo=[0-2]|target-cpu=native"),
            "--cfg": re.compile(_NAME),
            "-A": re.compile(r"[a-z_]+"),
            "-W": re.compile(r"[a-z_]+"),
            "-D": re.compile(r"[a-z_]+"),
        },
    ),
}


def compiler_options(language: Language, text: str | None) -> list[str]:
    """The words of `text` for `language`'s compile command; ValueError if one is not allowed
    (or `text` does not split)."""
    words = shlex.split(text or "")
    if not words:
        return words
    allowed = COMPILER_OPTIONS.get(language.family)
    if allowed is None or not language.is_compiled:
        raise ValueError("setting compiler options is only allowed for compiled languages")
    position = 0
    while position < len(words):
        word, following = words[position], words[position + 1 : position + 2]
        value = allowed.paired.get(word)
        if value is not None and following and value.fullmatch(following[0]):
            position += 2
        elif allowed.single.fullmatch(word):
            position += 1
        else:
            raise ValueError(f"compiler option not allowed: {word[:64]}")
    return words
