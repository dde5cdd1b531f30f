"""One program per language that misbehaves as told on stdin: `ok` prints 42, `wa` prints 41,
`loop` spins, `nzec` exits 3, `flood` prints forever, `segv`/`fpe`/`abrt`/`other` die of
SIGSEGV/SIGFPE/SIGABRT/another signal (SIGUSR1, or SIGTERM where the runtime claims SIGUSR1)
where the language can do that (see SIGNALS)."""

from __future__ import annotations

FLOOD_LINE = "x" * 63

PROGRAMS: dict[str, str] = {
    "c": r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char c[16] = {0};
    if (scanf("%15s", c) != 1) return 9;
    if (!strcmp(c, "ok")) puts("42");
    else if (!strcmp(c, "wa")) puts("41");
    else if (!strcmp(c, "loop")) for (volatile long i = 0;; i++) {}
    else if (!strcmp(c, "nzec")) return 3;
    else if (!strcmp(c, "segv")) *(volatile int *)0 = 1;
    else if (!strcmp(c, "fpe")) raise(SIGFPE);
    else if (!strcmp(c, "abrt")) abort();
    else if (!strcmp(c, "other")) raise(SIGUSR1);
    else if (!strcmp(c, "flood")) for (;;) puts("FLOOD");
    return 0;
}
""".replace("FLOOD", FLOOD_LINE),
    "cpp": r"""
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <string>
int main() {
    std::string c;
    std::cin >> c;
    if (c == "ok") std::cout << 42 << "\n";
    else if (c == "wa") std::cout << 41 << "\n";
    else if (c == "loop") for (volatile long i = 0;; i++) {}
    else if (c == "nzec") return 3;
    else if (c == "segv") *(volatile int *)nullptr = 1;
    else if (c == "fpe") std::raise(SIGFPE);
    else if (c == "abrt") throw std::runtime_error("uncaught");
    else if (c == "other") std::raise(SIGUSR1);
    else if (c == "flood") for (;;) std::cout << "FLOOD\n";
    return 0;
}
""".replace("FLOOD", FLOOD_LINE),
    "python": """
import os, signal, sys
c = input().strip()
if c == "ok": print(42)
elif c == "wa": print(41)
elif c == "loop":
    while True: pass
elif c == "nzec": sys.exit(3)
elif c == "segv": os.kill(os.getpid(), signal.SIGSEGV)
elif c == "fpe": os.kill(os.getpid(), signal.SIGFPE)
elif c == "abrt": os.abort()
elif c == "other": os.kill(os.getpid(), signal.SIGUSR1)
elif c == "flood":
    while True: sys.stdout.write("FLOOD\\n")
""".replace("FLOOD", FLOOD_LINE),
    "javascript": """
const fs = require("fs");
const c = fs.readFileSync(0, "utf8").trim();
if (c === "ok") console.log(42);
else if (c === "wa") console.log(41);
else if (c === "loop") { for (;;) {} }
else if (c === "nzec") process.exit(3);
else if (c === "abrt") process.abort();
else if (c === "other") process.kill(process.pid, "SIGTERM");
else if (c === "flood") { for (;;) fs.writeSync(1, "FLOOD\\n"); }
""".replace("FLOOD", FLOOD_LINE),
    "java": """
import java.util.Scanner;
public class Main {
    public static void main(String[] args) {
        String c = new Scanner(System.in).next();
        switch (c) {
            case "ok": System.out.println(42); break;
            case "wa": System.out.println(41); break;
            case "loop": for (long i = 0;; i++) { if (i < 0) break; } break;
            case "nzec": System.exit(3); break;
            case "flood": for (;;) System.out.println("FLOOD");
            default: break;
        }
    }
}
""".replace("FLOOD", FLOOD_LINE),
    "go": """
package main

import (
\t"bufio"
\t"fmt"
\t"os"
\t"syscall"
)

func main() {
\tvar c string
\tfmt.Scan(&c)
\tswitch c {
\tcase "ok":
\t\tfmt.Println(42)
\tcase "wa":
\t\tfmt.Println(41)
\tcase "loop":
\t\tfor i := 0; ; i++ {
\t\t}
\tcase "nzec":
\t\tos.Exit(3)
\tcase "other":
\t\tsyscall.Kill(os.Getpid(), syscall.SIGTERM)
\t\tselect {}
\tcase "flood":
\t\tw := bufio.NewWriter(os.Stdout)
\t\tfor {
\t\t\tw.WriteString("FLOOD\\n")
\t\t}
\t}
}
""".replace("FLOOD", FLOOD_LINE),
    "rust": """
use std::io::{self, Read, Write};
fn main() {
    let mut c = String::new();
    io::stdin().read_to_string(&mut c).unwrap();
    match c.trim() {
        "ok" => println!("42"),
        "wa" => println!("41"),
        "loop" => { let mut i: u64 = 0; loop { i = std::hint::black_box(i + 1); } }
        "nzec" => std::process::exit(3),
        "segv" => unsafe { std::ptr::null_mut::<i32>().write_volatile(1) },
        "abrt" => std::process::abort(),
        "flood" => {
            let out = io::stdout();
            let mut w = out.lock();
            loop { w.write_all(b"FLOOD\\n").unwrap(); }
        }
        _ => {}
    }
}
""".replace("FLOOD", FLOOD_LINE),
}

# Which signal verdicts each language can produce on purpose.
SIGNALS: dict[str, tuple[str, ...]] = {
    "c": ("segv", "fpe", "abrt", "other"),
    "cpp": ("segv", "fpe", "abrt", "other"),
    "python": ("segv", "fpe", "abrt", "other"),
    "javascript": ("abrt", "other"),
    "java": (),
    "go": ("other",),
    "rust": ("segv", "abrt"),
}

# A program that does not compile, per compiled language.
BROKEN: dict[str, str] = {
    "c": "int main(void) { return missing; }\n",
    "cpp": "int main() { return missing; }\n",
    "java": "public class Main { public static void main(String[] a) { missing(); } }\n",
    "go": "package main\nfunc main() { missing() }\n",
    "rust": "fn main() { missing(); }\n",
}
