"""Programming-language detection from a file's name, extension and shebang line.

    from r1data.sources.languages import detect_language
    detect_language("tools/build", b"#!/usr/bin/env python3\\n...")   # "Python"
    detect_language("src/main.rs")                                       # "Rust"

Names follow GitHub linguist (as The Stack does). Order of evidence, as in linguist: an exact
file name (``Makefile``, ``Dockerfile``), the interpreter of a ``#!`` line (``env -S`` and version
suffixes understood), then the extension (longest first: ``.d.ts`` before ``.ts``). ``.h`` is C, and
``.m`` is Objective-C when the text looks like it, else MATLAB.
"""

from __future__ import annotations

import re

# language -> (extensions, exact file names, interpreters)
LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Python": ((".py", ".pyw", ".pyi", ".pyx", ".pxd", ".pxi", ".gyp", ".gypi"), ("SConstruct", "SConscript", "BUILD.bazel", "WORKSPACE"), ("python", "pypy", "python2", "python3", "pypy3")),
    "C": ((".c", ".h"), (), ()),
    "C++": ((".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp", ".tpp", ".inl", ".cu", ".cuh"), (), ()),
    "C#": ((".cs", ".csx"), (), ()),
    "Java": ((".java",), (), ()),
    "Kotlin": ((".kt", ".kts"), (), ()),
    "Scala": ((".scala", ".sc"), (), ("scala",)),
    "Groovy": ((".groovy", ".gradle", ".gvy"), ("Jenkinsfile",), ("groovy",)),
    "JavaScript": ((".js", ".mjs", ".cjs", ".jsx"), ("Jakefile",), ("node", "nodejs", "bun", "deno")),
    "TypeScript": ((".ts", ".tsx", ".mts", ".cts", ".d.ts"), (), ("ts-node",)),
    "Go": ((".go",), (), ()),
    "Rust": ((".rs",), (), ()),
    "Ruby": ((".rb", ".rake", ".gemspec", ".ru"), ("Rakefile", "Gemfile", "Guardfile", "Podfile", "Vagrantfile", "Brewfile"), ("ruby", "jruby")),
    "PHP": ((".php", ".phtml", ".php3", ".php4", ".php5", ".phps"), (), ("php",)),
    "Perl": ((".pl", ".pm", ".pod", ".psgi"), (), ("perl",)),
    "Shell": ((".sh", ".bash", ".zsh", ".ksh", ".bats"), (".bashrc", ".bash_profile", ".zshrc", ".profile", "PKGBUILD"), ("sh", "bash", "zsh", "ksh", "dash", "ash", "mksh")),
    "fish": ((".fish",), (), ("fish",)),
    "PowerShell": ((".ps1", ".psm1", ".psd1"), (), ("pwsh", "powershell")),
    "Batchfile": ((".bat", ".cmd"), (), ()),
    "Lua": ((".lua",), (), ("lua", "luajit")),
    "R": ((".r", ".rmd"), (".Rprofile",), ("Rscript",)),
    "Julia": ((".jl",), (), ("julia",)),
    "Swift": ((".swift",), (), ("swift",)),
    "Objective-C": ((".mm",), (), ()),  # and .m files that look like it
    "MATLAB": ((), (), ("octave",)),  # .m files that do not look like Objective-C
    "Haskell": ((".hs", ".lhs"), (), ("runhaskell", "runghc", "stack")),
    "OCaml": ((".ml", ".mli"), (), ("ocaml",)),
    "F#": ((".fs", ".fsi", ".fsx"), (), ()),
    "Elixir": ((".ex", ".exs"), (), ("elixir",)),
    "Erlang": ((".erl", ".hrl"), ("rebar.config",), ("escript",)),
    "Clojure": ((".clj", ".cljs", ".cljc", ".edn"), (), ()),
    "Common Lisp": ((".lisp", ".lsp", ".cl"), (), ("sbcl", "clisp")),
    "Scheme": ((".scm", ".ss", ".rkt"), (), ("guile", "racket")),
    "Emacs Lisp": ((".el",), (".emacs",), ()),
    "Dart": ((".dart",), (), ("dart",)),
    "Zig": ((".zig",), (), ()),
    "Nim": ((".nim", ".nims"), (), ()),
    "Fortran": ((".f", ".f90", ".f95", ".f03", ".f08", ".for", ".f77"), (), ()),
    "Assembly": ((".asm", ".s", ".nasm"), (), ()),
    "Visual Basic .NET": ((".vb",), (), ()),
    "SQL": ((".sql",), (), ()),
    "Tcl": ((".tcl", ".tk"), (), ("tclsh", "wish")),
    "Awk": ((".awk",), (), ("awk", "gawk", "mawk", "nawk")),
    "Vim Script": ((".vim",), (".vimrc", "_vimrc"), ()),
    "Makefile": ((".mk", ".mak"), ("Makefile", "makefile", "GNUmakefile", "Makefile.am", "Makefile.in", "Makefile.pre.in"), ("make",)),
    "CMake": ((".cmake",), ("CMakeLists.txt",), ()),
    "Dockerfile": ((".dockerfile",), ("Dockerfile", "Containerfile"), ()),
    "Protocol Buffer": ((".proto",), (), ()),
    "HTML": ((".html", ".htm", ".xhtml"), (), ()),
    "CSS": ((".css",), (), ()),
    "SCSS": ((".scss", ".sass"), (), ()),
    "Less": ((".less",), (), ()),
    "Vue": ((".vue",), (), ()),
    "Svelte": ((".svelte",), (), ()),
    "TeX": ((".tex", ".sty", ".cls", ".bib"), (), ()),
    "Markdown": ((".md", ".markdown", ".mdx"), (), ()),
    "reStructuredText": ((".rst",), (), ()),
    "JSON": ((".json", ".jsonl", ".geojson", ".ipynb", ".webmanifest"), (".babelrc", ".eslintrc", "composer.lock"), ()),
    "YAML": ((".yml", ".yaml"), (".clang-format", ".clang-tidy"), ()),
    "TOML": ((".toml",), ("Cargo.lock", "Pipfile"), ()),
    "XML": ((".xml", ".xsd", ".xsl", ".xslt", ".plist", ".csproj", ".vcxproj", ".props", ".wsdl", ".rss", ".atom"), (), ()),
    "SVG": ((".svg",), (), ()),
    "INI": ((".ini", ".cfg", ".editorconfig", ".properties"), (".gitconfig", "setup.cfg", "tox.ini"), ()),
    "CSV": ((".csv", ".tsv"), (), ()),
    "Text": ((".txt", ".text"), ("README", "CHANGES", "AUTHORS", "NEWS", "TODO", "INSTALL", "THANKS", "HISTORY"), ()),
    "Git Config": ((), (".gitignore", ".gitattributes", ".gitmodules", ".dockerignore"), ()),
    "Diff": ((".diff", ".patch"), (), ()),
}

#: languages that hold data or configuration rather than code (code_quality applies data rules)
DATA_LANGUAGES = frozenset({"JSON", "YAML", "TOML", "XML", "SVG", "INI", "CSV"})
#: prose and markup formats
PROSE_LANGUAGES = frozenset({"Markdown", "reStructuredText", "Text", "TeX"})

_BY_NAME: dict[str, str] = {}
_BY_EXT: dict[str, str] = {}
_BY_INTERPRETER: dict[str, str] = {}
for _lang, (_exts, _names, _interps) in LANGUAGES.items():
    for _e in _exts:
        _BY_EXT[_e.lower()] = _lang
    for _n in _names:
        _BY_NAME[_n] = _lang
    for _i in _interps:
        _BY_INTERPRETER[_i] = _lang
_EXTS_LONGEST_FIRST = sorted(_BY_EXT, key=len, reverse=True)

_SHEBANG = re.compile(rb"^#![ \t]*(\S+)(?:[ \t]+(.*))?")
_OBJC_HINT = re.compile(r"^\s*(?:#import|@interface|@implementation|@protocol|@end)\b", re.M)


def interpreter_of(first_line: bytes) -> str | None:
    """The interpreter named by a ``#!`` line, without path or version (``/usr/bin/python3.11`` -> ``python``)."""
    m = _SHEBANG.match(first_line)
    if not m:
        return None
    prog = m.group(1).rsplit(b"/", 1)[-1].decode("ascii", "ignore")
    if prog == "env":
        args = (m.group(2) or b"").decode("ascii", "ignore").split()
        args = [a for a in args if not a.startswith("-") and "=" not in a]  # env -S, env VAR=1
        if not args:
            return None
        prog = args[0].rsplit("/", 1)[-1]
    return re.sub(r"(?<=[A-Za-z])[\d.]+$", "", prog) or None  # python3.11 -> python, lua5.4 -> lua


def language_from_shebang(first_line: bytes) -> str | None:
    prog = interpreter_of(first_line)
    if prog is None:
        return None
    return _BY_INTERPRETER.get(prog)


def extension_of(name: str) -> str:
    """The longest known extension of ``name`` (``.d.ts``), else its last suffix, lower-cased."""
    low = name.lower()
    for ext in _EXTS_LONGEST_FIRST:
        if low.endswith(ext) and len(low) > len(ext):
            return ext
    dot = low.rfind(".")
    return low[dot:] if dot > 0 else ""


def detect_language(path: str, head: bytes = b"") -> str | None:
    """Language of the file at ``path`` (relative or absolute) whose first bytes are ``head``;
    None when neither name, extension nor shebang says."""
    name = path.rsplit("/", 1)[-1]
    if name in _BY_NAME:
        return _BY_NAME[name]
    if head.startswith(b"#!"):  # as linguist: an interpreter line outranks the extension
        lang = language_from_shebang(head.split(b"\n", 1)[0])
        if lang:
            return lang
    ext = extension_of(name)
    if ext == ".m":
        text = head[:4096].decode("utf-8", "ignore")
        return "Objective-C" if _OBJC_HINT.search(text) else "MATLAB"
    if ext in _BY_EXT:
        return _BY_EXT[ext]
    if name.startswith("Dockerfile.") or name.endswith(".Dockerfile"):
        return "Dockerfile"
    return None
