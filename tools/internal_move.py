#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tools/internal_move.py: moves poll's shared internals under poll/internal/.

Run from a checkout root (python3, stdlib only; git and, if installed,
clang-format are used):

    python3 tools/internal_move.py            # do the move (idempotent)
    python3 tools/internal_move.py --check    # exit 1 if anything is left

What it does (each step is a no-op when already done, so it can be re-run
on a newer tree, e.g. after a merge brought a new poll/<name>.h):

 1. `git mv poll/<name>.{h,cc} poll/internal/` for every name in MOVE.
 2. Rewrites the paths ("poll/<name>.h" -> "poll/internal/<name>.h") in
    every tracked text file but CHANGELOG.md (history), and the moved
    headers' include guards (POLL_<NAME>_H_ -> POLL_INTERNAL_<NAME>_H_).
 3. Bazel: the cc_library targets of poll/BUILD.bazel that hold moved files
    go to poll/internal/BUILD.bazel under the same name; a target holding
    both moved and staying files is split (the larger side keeps the name,
    the other side becomes a new target named after its first header, with
    the deps its files include). Every label is fixed (//poll:core ->
    //poll/internal:core, ":core" in poll/BUILD.bazel, ":errors" in a moved
    target -> "//poll:errors").
 4. Globs that list poll/*.cc (CMakeLists.txt, tools/fuzz, tools/reliability)
    also take poll/internal/*.cc.
 5. C++ namespace: what the moved headers declare goes from `gopoll` to
    `gopoll::internal` (except KEEP_PUBLIC: types public headers expose,
    which stay in `gopoll` at the top of their header; and perturb.h's
    `gopoll::perturb_internal`, already internal). Every use elsewhere is
    qualified by a small C++ lexer (comments, strings, #include lines and
    gtest suite names are left alone): inside `namespace gopoll...` an
    unqualified `PollDesc` becomes `internal::PollDesc`, everywhere
    `gopoll::PollDesc` becomes `gopoll::internal::PollDesc`, and a forward
    declaration `class Poller;` in namespace gopoll becomes
    `namespace internal { class Poller; }`. A friend class of a moved type
    that lives outside (a test peer) is forward-declared in `gopoll` and
    befriended as `::gopoll::X`.
 6. Docs: API_STABILITY.md's "Planned" note, a CHANGELOG.md entry.
 7. clang-format -i on every C++ file it changed (--no-format to skip).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

# The internal headers (and their .cc files) of poll/ to move.
MOVE = [
    "poll_desc", "poller", "waiter", "leader_followers", "detached_thread",
    "recycled", "sanitizers", "fd_mutex", "timer_queue", "monotonic_clock",
    "perturb", "unread_bytes",
]
# Names the moved headers declare that public headers expose to
# applications (LoopOptions::backend): they stay in namespace gopoll.
KEEP_PUBLIC = {"LoopBackend"}
# Moved headers whose namespace is already internal and left as it is.
KEEP_NAMESPACE = {"perturb"}
# Not rewritten: history.
NO_PATH_REWRITE = {"CHANGELOG.md", "tools/internal_move.py"}
SRC = "poll"
DST = "poll/internal"
CXX_EXT = (".h", ".cc", ".inc")

changed = set()
dry = False


def log(msg):
    print("internal_move: " + msg)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    if os.path.exists(path) and read(path) == text:
        return
    changed.add(path)
    if dry:
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def git(*args):
    return subprocess.run(["git", *args], check=True, capture_output=True,
                          text=True).stdout


def tracked_text_files():
    out = []
    for p in git("ls-files", "-z").split("\0"):
        if not p or not os.path.isfile(p) or os.path.islink(p):
            continue
        try:
            with open(p, "rb") as f:
                data = f.read()
            if b"\0" in data:
                continue
            data.decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(p)
    return out


# --- 1. git mv ---------------------------------------------------------------
def move_files():
    moved = []
    for name in MOVE:
        for ext in (".h", ".cc"):
            src = f"{SRC}/{name}{ext}"
            dst = f"{DST}/{name}{ext}"
            if os.path.exists(src):
                if os.path.exists(dst):
                    sys.exit(f"internal_move: both {src} and {dst} exist")
                changed.add(dst)
                if not dry:
                    git("mv", src, dst)
                log(f"git mv {src} {dst}")
            if os.path.exists(dst) or (dry and os.path.exists(src)):
                moved.append(f"{name}{ext}")
    return moved


# --- 2. paths ------------------------------------------------------------------
def rewrite_paths(files, present):
    stems = "|".join(sorted({f.rsplit(".", 1)[0] for f in present}, key=len,
                            reverse=True))
    if not stems:
        return
    path_re = re.compile(r"(?<![\w.-])poll/(" + stems + r")\.(h|cc)\b")
    for p in files:
        if p in NO_PATH_REWRITE or not os.path.exists(p):
            continue
        text = read(p)
        new = path_re.sub(r"poll/internal/\1.\2", text)
        if p.startswith(DST + "/") and p.endswith(".h"):
            stem = os.path.basename(p)[:-2]
            guard = "POLL_" + stem.upper() + "_H_"
            new = re.sub(r"\b" + guard + r"\b",
                         "POLL_INTERNAL_" + stem.upper() + "_H_", new)
        if new != text:
            write(p, new)


# --- 3. Bazel ------------------------------------------------------------------
class Chunk:
    """One top-level call of a BUILD file with the comments above it."""

    def __init__(self, text):
        self.text = text
        m = re.search(r'^\s*name = "([^"]+)"', text, re.M)
        self.name = m.group(1) if m else None
        m = re.search(r"^(\w+)\(", text, re.M)
        self.kind = m.group(1) if m else None

    def strlist(self, attr):
        m = re.search(r"^    " + attr + r" = \[(.*?)\]", self.text, re.M | re.S)
        return re.findall(r'"([^"]+)"', m.group(1)) if m else []

    def files(self):
        return self.strlist("srcs") + self.strlist("hdrs")


def split_build(text):
    """Returns (head, [Chunk]): the text before the first attached comment
    or call, and the chunks (each ends with the blank lines after it)."""
    lines = text.splitlines(keepends=True)
    chunks, i, start, head_end = [], 0, None, None
    while i < len(lines):
        if re.match(r"^\w+\(", lines[i]):
            s = i
            while s > 0 and lines[s - 1].startswith("#"):
                s -= 1
            if start is None:
                head_end = s
            depth, j = 0, i
            while True:
                code = lines[j].split("#", 1)[0]
                depth += code.count("(") - code.count(")")
                if depth <= 0:
                    break
                j += 1
            j += 1
            while j < len(lines) and lines[j].strip() == "":
                j += 1
            chunks.append((s, j))
            start = s
            i = j
        else:
            i += 1
    if head_end is None:
        return text, []
    out = []
    prev_end = head_end
    for s, e in chunks:
        # Comment lines between chunks that are not attached stay with the
        # previous chunk.
        if s > prev_end and out:
            out[-1].text += "".join(lines[prev_end:s])
        out.append(Chunk("".join(lines[s:e])))
        prev_end = e
    return "".join(lines[:head_end]), out


def join_build(head, chunks):
    text = head
    for c in chunks:
        t = c.text
        if not t.endswith("\n\n"):
            t = t.rstrip("\n") + "\n\n"
        text += t
    return text.rstrip("\n") + "\n"


def set_list(chunk, attr, values, after=None):
    body = ("[" + ", ".join(f'"{v}"' for v in values) + "]") if len(values) <= 1 else (
        "[\n" + "".join(f'        "{v}",\n' for v in values) + "    ]")
    pat = re.compile(r"^    " + attr + r" = \[.*?\],\n", re.M | re.S)
    if pat.search(chunk.text):
        if values:
            chunk.text = pat.sub(lambda m: f"    {attr} = {body},\n", chunk.text,
                                 count=1)
        else:
            chunk.text = pat.sub("", chunk.text, count=1)
    elif values:
        anchor = re.search(r'^    name = "[^"]+",\n', chunk.text, re.M)
        if after:
            a2 = re.search(r"^    " + after + r" = \[.*?\],\n", chunk.text,
                           re.M | re.S)
            anchor = a2 or anchor
        chunk.text = (chunk.text[:anchor.end()] + f"    {attr} = {body},\n" +
                      chunk.text[anchor.end():])


def includes_of(paths):
    inc = set()
    for p in paths:
        if os.path.exists(p):
            inc |= set(re.findall(r'^#include "([^"]+)"', read(p), re.M))
    return inc


def pruned_deps(chunk, pkg_of_files, files, hdr_owner):
    """The deps of `chunk` that `files` (paths) include."""
    m = re.search(r"^    deps = (\[.*?\])( \+ select\(.*?\n    \}\))?,\n",
                  chunk.text, re.M | re.S)
    if not m:
        return []
    inc = includes_of(files)
    keep = []
    for d in re.findall(r'"([^"]+)"', m.group(1)):
        if d.startswith(":") or d.startswith("//poll"):
            label = d if not d.startswith(":") else pkg_of_files + d
            owned = {h for h, lab in hdr_owner.items() if lab == label}
            if owned & inc:
                keep.append(d)
        elif "absl" in d:
            pkg = d.split("//", 1)[1].split(":", 1)[0]
            if any(i.startswith(pkg + "/") for i in inc):
                keep.append(d)
        else:
            keep.append(d)
    return keep


def relabel_moved_chunk(chunk, moved_names):
    def fix(m):
        n = m.group(1)
        return f'":{n}"' if n in moved_names else f'"//{SRC}:{n}"'
    chunk.text = re.sub(r'":([\w.+-]+)"', fix, chunk.text)
    chunk.text = re.sub(r'"//' + re.escape(DST) + r':([\w.+-]+)"',
                        lambda m: f'":{m.group(1)}"', chunk.text)


def move_bazel(present):
    src_build = f"{SRC}/BUILD.bazel"
    dst_build = f"{DST}/BUILD.bazel"
    head, chunks = split_build(read(src_build))
    dhead, dchunks = split_build(read(dst_build))
    moved_files = set(present)
    stay, go = [], []
    renamed = set()  # target names new in //poll/internal
    hdr_owner = {}  # path -> label
    for pkg, cs in ((SRC, chunks), (DST, dchunks)):
        for c in cs:
            for f in c.strlist("hdrs"):
                hdr_owner[f"{pkg}/{f}"] = f"//{pkg}:{c.name}"
    for c in chunks:
        files = c.files()
        mv = [f for f in files if f in moved_files]
        st = [f for f in files if f not in moved_files]
        if c.kind not in ("cc_library", "cc_test", "cc_binary") or not mv:
            stay.append(c)
            continue
        to_internal = not st or len(mv) > len(st)
        if st and mv:
            # Split the smaller side into a target of its own, named after
            # its first header, in its package.
            side = st if to_internal else mv
            split_to = SRC if to_internal else DST
            hdrs = [f for f in c.strlist("hdrs") if f in side]
            srcs = [f for f in c.strlist("srcs") if f in side]
            new_name = (hdrs or srcs)[0].rsplit(".", 1)[0]
            for f in hdrs:
                hdr_owner[f"{split_to}/{f}"] = f"//{split_to}:{new_name}"
            deps = pruned_deps(c, f"//{SRC}",
                               [f"{split_to}/{f}" for f in hdrs + srcs],
                               hdr_owner)
            what = "public" if split_to == SRC else "internal"
            orig = f"//{DST if to_internal else SRC}:{c.name}"
            lines = [f"# {', '.join(hdrs or srcs)} ({what}), split from "
                     f"{orig}.\n", "cc_library(\n",
                     f'    name = "{new_name}",\n']
            if srcs:
                lines.append("    srcs = [" + ", ".join(f'"{x}"' for x in srcs) + "],\n")
            if hdrs:
                lines.append("    hdrs = [" + ", ".join(f'"{x}"' for x in hdrs) + "],\n")
            lines.append("    copts = POLL_COPTS,\n")
            if deps:
                lines.append("    deps = [\n" + "".join(f'        "{d}",\n' for d in deps) + "    ],\n")
            lines.append(")\n\n")
            nc = Chunk("".join(lines))
            if split_to == DST:
                go.append(nc)
                renamed.add(new_name)
            else:
                stay.append(nc)
            set_list(c, "srcs", [f for f in c.strlist("srcs") if f not in side])
            set_list(c, "hdrs", [f for f in c.strlist("hdrs") if f not in side],
                     after="srcs")
            dep_label = f"//{split_to}:{new_name}"
            m = re.search(r"^    deps = \[\n", c.text, re.M)
            if m:
                c.text = c.text[:m.end()] + f'        "{dep_label}",\n' + c.text[m.end():]
            else:
                set_list(c, "deps", [dep_label], after="copts")
            log(f"split {', '.join(side)} of //{SRC}:{c.name} into {dep_label}")
        if to_internal:
            go.append(c)
            renamed.add(c.name)
            log(f"//{SRC}:{c.name} -> //{DST}:{c.name}")
        else:
            stay.append(c)
    if not go:
        return set()
    local = renamed | {d.name for d in dchunks}
    for c in go:
        relabel_moved_chunk(c, local)
    # poll/BUILD.bazel: local labels of moved targets.
    for c in stay:
        new = re.sub(r'":(' + "|".join(map(re.escape, renamed)) + r')"',
                     lambda m: f'"//{DST}:{m.group(1)}"', c.text)
        if new != c.text:
            c.text = new
            sort_deps(c)
    for c in go:
        sort_deps(c)
    dtext = join_build(dhead, dchunks + go)
    if "POLL_COPTS" in dtext and 'load("//:copts.bzl"' not in dtext:
        # After the file's first comment lines (SPDX and description).
        m = re.match(r"(?:#[^\n]*\n)*", dtext)
        dtext = (dtext[:m.end()] + 'load("//:copts.bzl", "POLL_COPTS")\n\n' +
                 dtext[m.end():])
    write(src_build, join_build(head, stay))
    write(dst_build, dtext)
    return renamed


def sort_deps(chunk):
    """Buildifier's order for a plain deps list: ":x", then "//x", then
    "@x", each sorted."""
    m = re.search(r"^    deps = \[\n((?:        \"[^\"]+\",\n)+)    \]", chunk.text,
                  re.M)
    if not m:
        return
    deps = re.findall(r'"([^"]+)"', m.group(1))
    key = lambda d: ({":": 0, "/": 1, "@": 2}.get(d[0], 3), d)
    body = "".join(f'        "{d}",\n' for d in sorted(deps, key=key))
    chunk.text = chunk.text[:m.start(1)] + body + chunk.text[m.end(1):]


def relabel_everywhere(files, names):
    if not names:
        return
    pat = re.compile(r"//" + re.escape(SRC) + r":(" +
                     "|".join(map(re.escape, sorted(names))) + r")\b(?![.\w/-])")
    for p in files:
        if p in NO_PATH_REWRITE or not os.path.exists(p):
            continue
        text = read(p)
        new = pat.sub(lambda m: f"//{DST}:{m.group(1)}", text)
        if new != text:
            write(p, new)


def internal_labels_from_build():
    """Targets already in poll/internal (for a re-run: labels written by
    hand or by a merge since the last run)."""
    _, dchunks = split_build(read(f"{DST}/BUILD.bazel"))
    _, chunks = split_build(read(f"{SRC}/BUILD.bazel"))
    stay = {c.name for c in chunks}
    return {c.name for c in dchunks if c.name and c.name not in stay}


def carry_long_lines(path):
    """Comment and Markdown prose lines this script made longer than 80
    columns: the words past column 80 move to the start of the next line
    of the same paragraph (C++ files are left to clang-format)."""
    if path.endswith(CXX_EXT) or not os.path.exists(path):
        return
    md = path.endswith(".md")
    special = re.compile(r"\s*(\||#|```|[-*] |\d+\. |$)")
    lines = read(path).split("\n")

    def lead(line):  # the prefix a continuation line repeats
        if md:
            m = re.match(r"\s*(?:[-*] |\d+\. )?", line)
            return " " * len(m.group(0))
        m = re.match(r"\s*# (?=\S)", line)
        return m.group(0) if m else None

    def continues(line, pre):  # a prose line of the same paragraph
        if md:
            return not special.match(line)
        return lead(line) == pre

    fence = False
    carried = False
    i = -1
    while i + 1 < len(lines):
        i += 1
        line = lines[i]
        if md and line.startswith("```"):
            fence = not fence
        was_carried, carried = carried, False
        if fence or len(line) <= 80 or \
                ("poll/internal" not in line and not was_carried):
            continue
        pre = lead(line)
        if pre is None or (md and special.match(line) and
                           not re.match(r"\s*([-*] |\d+\. )", line)):
            continue
        cut = line.rfind(" ", len(pre) + 1, 81)
        if cut < 0:
            continue
        lines[i], tail = line[:cut], line[cut + 1:]
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if nxt is not None and continues(nxt, pre):
            lines[i + 1] = pre + tail + " " + nxt[len(lead(nxt) or ""):].lstrip()
        else:
            lines.insert(i + 1, pre + tail)
        carried = True
    write(path, "\n".join(lines))


# --- 4. globs ------------------------------------------------------------------
GLOB_EDITS = [
    ("CMakeLists.txt",
     'file(GLOB _gopoll_core_srcs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/poll/*.cc")',
     'file(GLOB _gopoll_core_srcs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/poll/*.cc"\n'
     '     "${PROJECT_SOURCE_DIR}/poll/internal/*.cc")'),
    ("CMakeLists.txt",
     "# Sources are taken by directory (poll/*.cc, poll/<backend>/*.cc, ...), so a\n"
     "# file added to one of those directories needs no change here.",
     "# Sources are taken by directory (poll/*.cc, poll/internal/*.cc,\n"
     "# poll/<backend>/*.cc, ...), so a file added to one of those directories\n"
     "# needs no change here."),
]
GLOB_PATTERNS = [
    # shell globs and their comments (tools/fuzz, tools/reliability)
    (re.compile(r"poll/\*\.cc (?!poll/internal/\*\.cc)"), "poll/*.cc poll/internal/*.cc "),
    (re.compile(r"poll/\*\.cc, (?!poll/internal)"), "poll/*.cc, poll/internal, "),
]


def fix_globs(files):
    for path, old, new in GLOB_EDITS:
        if os.path.exists(path):
            text = read(path)
            if old in text and new not in text:
                write(path, text.replace(old, new))
    for p in files:
        if p in NO_PATH_REWRITE or p == "CMakeLists.txt" or not os.path.exists(p):
            continue
        if not (p.endswith(".sh") or p.endswith(".md")):
            continue
        text = read(p)
        new = text
        for pat, rep in GLOB_PATTERNS:
            new = pat.sub(rep, new)
        if new != text:
            write(p, new)


# --- 5. C++ namespace ----------------------------------------------------------
TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<raw>R"(?P<delim>[^()\\\s]{0,16})\(.*?\)(?P=delim)")
  | (?P<str>(?:u8|u|U|L)?"(?:\\.|[^"\\\n])*")
  | (?P<chr>(?:u8|u|U|L)?'(?:\\.|[^'\\\n])+')
  | (?P<num>\.?[0-9](?:[eEpP][+-]|['\w.])*)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<punct>::|->|.)
    """, re.S | re.X)
PP_RE = re.compile(r"(?m)^[ \t]*#(?:[^\n\\]|\\.)*(?:\\\n(?:[^\n\\]|\\.)*)*")
GTEST_MACROS = {"TEST", "TEST_F", "TEST_P", "TYPED_TEST", "TYPED_TEST_P",
                "TYPED_TEST_SUITE", "TYPED_TEST_SUITE_P",
                "INSTANTIATE_TEST_SUITE_P", "INSTANTIATE_TYPED_TEST_SUITE_P",
                "REGISTER_TYPED_TEST_SUITE_P"}


def lex(text):
    """Tokens (kind, start, end, value) of code; preprocessor lines are one
    'pp' token each."""
    toks = []
    pos = 0
    pp_spans = [(m.start(), m.end()) for m in PP_RE.finditer(text)]
    pi = 0
    n = len(text)
    while pos < n:
        while pi < len(pp_spans) and pp_spans[pi][1] <= pos:
            pi += 1
        if pi < len(pp_spans) and pp_spans[pi][0] == pos:
            s, e = pp_spans[pi]
            toks.append(("pp", s, e, text[s:e]))
            pos = e
            continue
        m = TOKEN_RE.match(text, pos)
        kind = m.lastgroup if m.lastgroup != "delim" else "raw"
        if kind not in ("ws", "comment"):
            toks.append((kind, m.start(), m.end(), m.group(0)))
        pos = m.end()
    return toks


def scopes(toks):
    """For each token index, the namespace path (tuple) and whether the
    innermost brace scope is a namespace."""
    stack = []  # (is_ns, name)
    info = []
    pending_ns = None
    i = 0
    for i, t in enumerate(toks):
        ns = tuple(n for is_ns, n in stack if is_ns and n)
        at_ns = not stack or stack[-1][0]
        info.append((ns, at_ns))
        v = t[3]
        if t[0] == "id" and v == "namespace":
            pending_ns = []
        elif pending_ns is not None and t[0] == "id":
            pending_ns.extend(v.split("::"))
        elif pending_ns is not None and v == "::":
            pass
        elif v == "{":
            if pending_ns is not None:
                stack.append((True, "::".join(pending_ns)))
            else:
                stack.append((False, ""))
            pending_ns = None
        elif v == "}":
            if stack:
                stack.pop()
            pending_ns = None
        elif pending_ns is not None:
            pending_ns = None  # namespace alias or using namespace
    return info


def ns_name(ns):
    return "::".join(ns)


def declared_names(text):
    """(defined, forward-declared) names at namespace scope in
    gopoll::internal (or, before the move, gopoll) of a header."""
    toks = lex(text)
    info = scopes(toks)
    has_internal = any(ns_name(ns) == "gopoll::internal" for ns, _ in info)
    want = "gopoll::internal" if has_internal else "gopoll"
    defs, fwds = set(), set()
    stmt = []  # tokens of the current statement before any '(' or '='
    skip = False  # after '(' or '=': until the statement ends
    paren = 0
    angle = 0
    for i, t in enumerate(toks):
        ns, at_ns = info[i]
        v = t[3]
        if t[0] == "pp":
            continue
        if not at_ns or ns_name(ns) != want:
            if v in ("{", "}", ";"):
                stmt, skip, paren = [], False, 0
            continue
        if v == "(":
            paren += 1
        elif v == ")":
            paren -= 1
        if skip or (paren and v != "("):
            if v in (";", "{", "}") and paren == 0:
                stmt, skip = [], False
            continue
        if stmt and stmt[-1] == "template" and v == "<":
            angle = 1
            continue
        if angle:
            angle += {"<": 1, ">": -1}.get(v, 0)
            continue
        if v in (";", "{", "(", "=", "}"):
            words = stmt
            if not words or v == "}":
                pass
            elif {"friend", "namespace", "typedef"} & set(words):
                pass
            elif {"class", "struct", "union", "enum"} & set(words):
                k = next(k for k, w in enumerate(words)
                         if w in ("class", "struct", "union", "enum"))
                rest = [x for x in words[k + 1:] if x not in ("class", "struct")]
                if rest and re.match(r"[A-Za-z_]\w*$", rest[0]):
                    (fwds if v == ";" and len(rest) == 1 else defs).add(rest[0])
            elif words[0] == "using":
                if v == "=" and len(words) == 2:
                    defs.add(words[1])
            elif v in ("(", "=", ";") and len(words) >= 2 and \
                    re.match(r"[A-Za-z_]\w*$", words[-1]) and \
                    words[-2] != "::" and words[-1] != "operator":
                defs.add(words[-1])
            stmt = []
            skip = v in ("(", "=")
            continue
        stmt.append(v)
    return defs, fwds


def keep_public_blocks(text):
    """(start, end) of the KEEP_PUBLIC declarations (with their comments)."""
    spans = []
    for name in KEEP_PUBLIC:
        m = re.search(r"((?:^//[^\n]*\n)*)^(?:enum class|enum|struct|class) " +
                      name + r"\b[^;{]*\{.*?^\};\n", text, re.M | re.S)
        if m:
            spans.append((m.start(), m.end()))
    return sorted(spans)


def move_namespace(path, symbols_all):
    """gopoll -> gopoll::internal in a moved file."""
    text = read(path)
    stem = os.path.basename(path).rsplit(".", 1)[0]
    if stem in KEEP_NAMESPACE:
        return
    lines = text.split("\n")
    # The last `namespace gopoll {` block that is not a preamble: every
    # `namespace gopoll {` ... `}  // namespace gopoll` pair is renamed,
    # except a preamble written by this script (marked by the blank line
    # and the internal namespace right after it).
    out = []
    for k, line in enumerate(lines):
        if line == "namespace gopoll {":
            # A preamble is followed (after its closing) by the internal
            # namespace; find its closing line.
            j = k + 1
            while j < len(lines) and lines[j] != "}  // namespace gopoll":
                j += 1
            follow = next((x for x in lines[j + 1:] if x.strip()), "")
            if follow == "namespace gopoll::internal {":
                out.append(line)
                continue
            out.append("namespace gopoll::internal {")
            # rename its closing
            if j < len(lines):
                lines[j] = "}  // namespace gopoll::internal"
            continue
        out.append(line)
    text = "\n".join(out)
    if "namespace gopoll::internal {" not in text:
        write(path, text)
        return
    pre = []
    # Friend classes that are not moved types: declared in gopoll.
    def friend(m):
        if m.group(2) in symbols_all:
            return m.group(0)
        decl = f"{m.group(1)} {m.group(2)};"
        if decl not in pre:
            pre.append(decl)
        return f"friend {m.group(1)} ::gopoll::{m.group(2)};"
    body_start = text.index("namespace gopoll::internal {")
    body = re.sub(r"\bfriend (class|struct) (\w+);", friend, text[body_start:])
    text = text[:body_start] + body
    # KEEP_PUBLIC blocks found inside the internal namespace move out.
    body_start = text.index("namespace gopoll::internal {")
    for s, e in reversed(keep_public_blocks(text)):
        if s > body_start:
            pre.insert(0, text[s:e].rstrip("\n"))
            rest = text[e:]
            text = text[:s] + (rest[1:] if rest.startswith("\n") else rest)
    if pre:
        body_start = text.index("namespace gopoll::internal {")
        block = ("namespace gopoll {\n\n" + "\n\n".join(pre) +
                 "\n\n}  // namespace gopoll\n\n")
        text = text[:body_start] + block + text[body_start:]
    write(path, text)


def qualify(path, symbols):
    """Qualifies the uses of moved names in a file that is not moved."""
    text = read(path)
    toks = lex(text)
    info = scopes(toks)
    edits = []  # (start, end, replacement)
    for i, t in enumerate(toks):
        if t[0] != "id" or t[3] not in symbols:
            continue
        ns, at_ns = info[i]
        name = ns_name(ns)
        prev = toks[i - 1][3] if i else ""
        prev2 = toks[i - 2][3] if i > 1 else ""
        nxt = toks[i + 1][3] if i + 1 < len(toks) else ""
        if prev in (".", "->", "~"):
            continue
        if prev == "(" and prev2 in GTEST_MACROS:
            continue
        if prev == "::":
            if prev2 == "gopoll":  # gopoll::X, ::gopoll::X
                edits.append((t[1], t[1], "internal::"))
            continue
        in_gopoll = name == "gopoll" or name.startswith("gopoll::")
        if not in_gopoll or name == "gopoll::internal" or \
                name.startswith("gopoll::internal::"):
            continue
        if prev in ("class", "struct") and nxt == ";" and prev2 != "friend" \
                and at_ns:
            # forward declaration: into namespace internal
            s = toks[i - 1][1]
            e = toks[i + 1][2]
            edits.append((s, e, f"namespace internal {{\n{prev} {t[3]};\n}}  "
                          "// namespace internal"))
            continue
        if prev in ("class", "struct", "enum") and nxt in ("{", ":", "final"):
            log(f"warning: {path}: defines {t[3]} in {name}; left alone")
            continue
        edits.append((t[1], t[1], "internal::"))
    if not edits:
        return
    for s, e, r in sorted(edits, reverse=True):
        text = text[:s] + r + text[e:]
    write(path, text)


def move_namespaces(files, present):
    headers = [f"{DST}/{f}" for f in present if f.endswith(".h")]
    symbols, fwds = set(), set()
    for h in headers:
        if os.path.basename(h)[:-2] in KEEP_NAMESPACE:
            continue
        d, f = declared_names(read(h))
        symbols |= d
        fwds |= f
    symbols -= KEEP_PUBLIC
    for f in sorted(fwds - symbols - KEEP_PUBLIC):
        log(f"warning: a moved header forward-declares {f}, which it does "
            "not define: check its namespace")
    log("names moved to gopoll::internal: " + " ".join(sorted(symbols)))
    moved_paths = {f"{DST}/{f}" for f in present}
    for p in sorted(moved_paths):
        move_namespace(p, symbols)
    for p in files:
        if not p.endswith(CXX_EXT) or not os.path.exists(p):
            continue
        if p in moved_paths:
            # only gopoll::X spellings
            qualify_qualified_only(p, symbols)
            continue
        qualify(p, symbols)


def qualify_qualified_only(path, symbols):
    text = read(path)
    new = re.sub(r"\bgopoll::(" + "|".join(sorted(symbols)) + r")\b",
                 r"gopoll::internal::\1", text) if symbols else text
    if new != text:
        write(path, new)


# --- 6. docs -------------------------------------------------------------------
API_OLD = re.compile(
    r"Planned \(not done yet\): move the remaining internal headers.*?\n\n",
    re.S)
API_NEW = (
    "Those shared internals live in `poll/internal/` (Bazel targets\n"
    "`//poll/internal:*`, visible inside this repository only) and in\n"
    "namespace `gopoll::internal`; `LoopBackend`, which `LoopOptions` names,\n"
    "stays in `gopoll`. Public headers include some of them for `FD`'s\n"
    "members, and fail with a clear `#error` below C++20.\n\n")
CHANGELOG_LINE = (
    "- Internal headers moved: `PollDesc`, `Poller`, waiters, `TimerQueue`,\n"
    "  `FdMutex` and the other shared internals are in `poll/internal/`\n"
    "  (Bazel `//poll/internal:*`, namespace `gopoll::internal`; done by\n"
    "  `tools/internal_move.py`). Not public API: no change for applications\n"
    "  that use only the public headers.\n")


def fix_docs():
    p = "API_STABILITY.md"
    if os.path.exists(p):
        text = read(p)
        new = API_OLD.sub(API_NEW, text)
        if new != text:
            write(p, new)
    p = "CHANGELOG.md"
    if os.path.exists(p):
        text = read(p)
        if "tools/internal_move.py" not in text:
            m = re.search(r"^## Unreleased\n.*?(?=^## |\Z)", text, re.M | re.S)
            if m:
                sec = m.group(0).rstrip("\n") + "\n" + CHANGELOG_LINE + "\n"
                write(p, text[:m.start()] + sec + text[m.end():])


# --- main ----------------------------------------------------------------------
def main():
    global dry
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if the move is not complete")
    ap.add_argument("--no-namespace", action="store_true",
                    help="move files and targets only, keep namespace gopoll")
    ap.add_argument("--no-format", action="store_true",
                    help="do not run clang-format on the changed C++ files")
    args = ap.parse_args()
    if not (os.path.isdir(SRC) and os.path.exists("WORKSPACE")):
        sys.exit("internal_move: run from the root of a poll checkout")
    os.makedirs(DST, exist_ok=True)
    dry = args.check
    present = move_files()
    if dry:
        if changed:
            log("not done: " + ", ".join(sorted(changed)))
            return 1
    files = tracked_text_files()
    rewrite_paths(files, present)
    names = move_bazel(present)
    names |= internal_labels_from_build()
    relabel_everywhere(files, names)
    fix_globs(files)
    if not args.no_namespace:
        move_namespaces(files, present)
    fix_docs()
    for p in sorted(changed):
        carry_long_lines(p)
    cxx = sorted(p for p in changed if p.endswith(CXX_EXT) and os.path.exists(p))
    if cxx and not args.no_format and not dry and shutil.which("clang-format"):
        subprocess.run(["clang-format", "-i", *cxx], check=True)
    if dry:
        if changed:
            log("not done: " + ", ".join(sorted(changed)))
            return 1
        log("nothing to do")
        return 0
    log(f"{len(changed)} files changed" if changed else "nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
