#!/usr/bin/env python3
"""Which programs do the shell scripts run, and does `make deps` provide them?

    python3 tests/cli/deps_scan.py [--list] ROOT

Scans tests/**/*.sh and mk/*.sh for the words in command position (after
;, &&, |, $(...), if/while/do/then, the command of wrappers such as timeout,
`ip netns exec NS`, nsenter, env, `sh -c '...'`, and of the scripts' own
wrapper functions that run "$@"). Heredoc bodies (configuration, python) and
comments are skipped; words that are variables, project paths, shell
builtins or functions the script (or a file it sources) defines are not
programs.

Each program is looked up in /usr/sbin:/usr/bin:/sbin:/bin (not /usr/local,
not a personal PATH), its file mapped to the Debian package that owns it
(dpkg's file lists, alternatives resolved), and that package must be one
mk/deps.sh installs (its *_PKGS lists), one of their dependencies (recursive
Depends/Pre-Depends of the installed packages), or in ESSENTIAL below. A
program that is not installed at all is reported too: make deps did not
install it.

Prints a "FAIL" line per program not provided (with the scripts and lines
that call it), else one "PASS" line; exits 1 if any failed. --list also
prints the table of programs and packages.
"""
import os
import re
import sys

# Packages of the base system that every Debian 12 has (Essential: yes or
# Priority: required, all in a `debootstrap --variant=minbase` root), so
# mk/deps.sh need not name them. Each is checked against dpkg's status here.
ESSENTIAL = {
    "bash", "bsdutils", "coreutils", "dash", "debianutils", "diffutils", "dpkg", "apt",
    "findutils", "grep", "gzip", "hostname", "login", "mawk", "ncurses-bin", "perl-base",
    "sed", "sysvinit-utils", "tar", "util-linux", "libc-bin",
}

BUILTINS = set("""
. : [ [[ alias bg break builtin cd command continue declare echo eval exec exit export
false fc fg getopts hash jobs kill let local printf pwd read readonly return set shift
source test times trap true type typeset ulimit umask unalias unset wait
""".split())
KEYWORDS = set("if then else elif fi do done while until for case esac in { } ! function select".split())
SEARCH_PATH = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]


# ---------------------------------------------------------------- lexing

class Word:
    def __init__(self, text, line, quoted, subs, whole_quote=None):
        self.text = text            # value with quotes removed (expansions left as written)
        self.line = line
        self.quoted = quoted        # any quoting in the word
        self.subs = subs            # [(script text, line)] from $(...) and `...`
        self.whole_quote = whole_quote  # the content when the word is one quoted string

    def __repr__(self):
        return "W(%r)" % self.text


class Op:
    def __init__(self, op, line):
        self.op = op
        self.line = line

    def __repr__(self):
        return "O(%r)" % self.op


HEREDOC_RE = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


def strip_heredocs(text):
    """Blank heredoc bodies (keeping line numbers)."""
    out, pending = [], []
    for ln in text.split("\n"):
        if pending:
            strip_tabs, delim = pending[0]
            if (ln.lstrip("\t") if strip_tabs else ln) == delim:
                pending.pop(0)
            out.append("")
            continue
        out.append(ln)
        code = ln.split(" #", 1)[0] if not ln.lstrip().startswith("#") else ""
        for m in HEREDOC_RE.finditer(code):
            pending.append((m.group(1) == "-", m.group(3)))
    return "\n".join(out)


def read_balanced(s, i, open_c, close_c):
    """s[i] is just after the opening char; return index after the matching close."""
    depth = 1
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and open_c != "{":
            j = s.find("'", i + 1)
            i = len(s) if j < 0 else j + 1
            continue
        if c == '"':
            i = read_dquote(s, i + 1, [])[0]
            continue
        if c == "#" and open_c == "(" and (i == 0 or s[i - 1] in " \t\n;"):
            j = s.find("\n", i)
            i = len(s) if j < 0 else j
            continue
        if c == open_c and (open_c != "{" or s[i - 1] == "$"):
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def expansion(s, i, subs, line):
    """At $((...)), $(...), `...` or ${...}: (index after it, its text), with a
    command substitution's script and line appended to subs; else None."""
    if s.startswith("$(", i):
        j = read_balanced(s, i + 2, "(", ")")    # $(( counts its second ( itself
        if not s.startswith("$((", i):
            subs.append((s[i + 2:j - 1], line))
    elif s[i] == "`":
        j = s.find("`", i + 1)
        j = len(s) if j < 0 else j + 1
        subs.append((s[i + 1:j - 1], line))
    elif s.startswith("${", i):
        j = read_balanced(s, i + 2, "{", "}")
    else:
        return None
    return j, s[i:j]


def read_dquote(s, i, subs, line=0):
    """s[i] is just after a double quote; return (index after closing quote, value)."""
    val = []
    start = i
    while i < len(s) and s[i] != '"':
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            val.append(s[i + 1])
            i += 2
            continue
        e = expansion(s, i, subs, line + s.count("\n", start, i))
        if e:
            i = e[0]
            val.append(e[1])
            continue
        val.append(c)
        i += 1
    return i + 1, "".join(val)


def lex(s, line0=1):
    toks = []
    i, n = 0, len(s)
    line = line0
    while i < n:
        c = s[i]
        if c in " \t":
            i += 1
            continue
        if c == "\\" and i + 1 < n and s[i + 1] == "\n":
            i += 2
            line += 1
            continue
        if c == "\n":
            toks.append(Op("\n", line))
            line += 1
            i += 1
            continue
        if c == "#":
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        for op in (";;", "&&", "||", "|&", ";", "&", "|", "(", ")"):
            if s.startswith(op, i):
                toks.append(Op(op, line))
                i += len(op)
                break
        else:
            m = re.match(r"[0-9]*(>>|>&|<&|<>|>\||<<<|<<-|<<|>|<)", s[i:])
            if m:
                toks.append(Op("redir", line))
                i += m.end()
                continue
            # a word
            start_line = line
            val, subs, quoted = [], [], False
            whole = None
            word_start = i
            while i < n and s[i] not in " \t\n;&|()<>":
                c = s[i]
                if c == "\\" and i + 1 < n:
                    if s[i + 1] == "\n":
                        line += 1
                    else:
                        val.append(s[i + 1])
                    i += 2
                    quoted = True
                    continue
                if c == "'":
                    j = s.find("'", i + 1)
                    j = n if j < 0 else j
                    part = s[i + 1:j]
                    if i == word_start and (j + 1 >= n or s[j + 1] in " \t\n;&|()<>"):
                        whole = part
                    val.append(part)
                    line += part.count("\n")
                    i = j + 1
                    quoted = True
                    continue
                if c == '"':
                    j, part = read_dquote(s, i + 1, subs, line)
                    if i == word_start and (j >= n or s[j] in " \t\n;&|()<>"):
                        whole = part
                    val.append(part)
                    line += s.count("\n", i, j)
                    i = j
                    quoted = True
                    continue
                e = expansion(s, i, subs, line)
                if e:
                    line += s.count("\n", i, e[0])
                    i = e[0]
                    val.append(e[1])
                    continue
                val.append(c)
                i += 1
            toks.append(Word("".join(val), start_line, quoted, subs, whole))
    return toks


# ---------------------------------------------------------------- parsing

WRAPPER_OPTS_WITH_ARG = {
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nsenter": {"-t", "--target", "-S", "--setuid", "-G", "--setgid", "-w", "--wd", "-r", "--root"},
    "env": {"-u", "--unset", "-C", "--chdir", "-S"},
    "xargs": {"-n", "-I", "-P", "-d", "-L", "-s", "-a", "-E"},
    "nice": {"-n"},
    "ionice": {"-c", "-n", "-p"},
    "stdbuf": {"-i", "-o", "-e"},
    "runuser": {"-u", "-g", "-G", "--user", "--group"},
    "setpriv": {"--reuid", "--regid", "--groups", "--inh-caps", "--bounding-set"},
    "unshare": {"--propagation", "-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"},
    "setsid": set(),
    "nohup": set(),
    "time": {"-f", "-o"},
    "chrt": set(),
    "taskset": set(),
    "flock": {"-w", "-E"},
    "sudo": {"-u", "-g"},
    "exec": {"-a"},
    "watch": {"-n"},
    "strace": {"-o", "-e", "-p", "-s"},
}
# wrappers that take positional arguments before the command
WRAPPER_POSITIONAL = {"timeout": 1, "taskset": 1, "chrt": 1, "flock": 1}
# wrappers whose command runs somewhere else (not this machine's programs)
RUNS_ELSEWHERE = {"chroot"}


class Script:
    def __init__(self, path, text):
        self.path = path
        self.text = text
        self.funcs = {}          # name -> "func", or for a wrapper of "$@": the number of arguments before it
        self.calls = []          # (name, line)
        self.sources = []        # sourced paths as written
        self.for_lists = {}      # for-loop variable -> its literal words


def shell_c_string(words):
    """For sh -c / bash -c: the script string, if a literal."""
    for k, w in enumerate(words):
        if w.text == "-c" and k + 1 < len(words):
            return words[k + 1]
    return None


def parse(script, text, line0=1, top=False):
    toks = lex(strip_heredocs(text), line0)
    i = 0
    n = len(toks)
    # state
    expect_cmd = True
    case_pattern = False
    brace_stack = []        # per '{': function name or None
    pending_func = None
    shifts = {}             # function -> count of shift at top level of its body

    def cur_func():
        for f in reversed(brace_stack):
            if f is not None:
                return f
        return None

    while i < n:
        t = toks[i]
        # recurse into command substitutions wherever they are
        if isinstance(t, Word):
            for sub, ln in t.subs:
                parse(script, sub, ln)
        if isinstance(t, Op):
            if t.op in ("\n", ";", "&", "&&", "||", "|", "|&", "("):
                expect_cmd = True
            elif t.op == ";;":
                expect_cmd = True
                case_pattern = True
            elif t.op == ")":
                if case_pattern:
                    case_pattern = False
                expect_cmd = True
            elif t.op == "redir":
                # the target word is not a command
                if i + 1 < n and isinstance(toks[i + 1], Word):
                    for sub, ln in toks[i + 1].subs:
                        parse(script, sub, ln)
                    i += 1
            i += 1
            continue
        w = t
        if case_pattern:
            if w.text == "esac":
                case_pattern = False
                expect_cmd = False
            i += 1
            continue
        if not expect_cmd:
            i += 1
            continue
        # function definition: NAME ( )
        if (i + 2 < n and isinstance(toks[i + 1], Op) and toks[i + 1].op == "("
                and isinstance(toks[i + 2], Op) and toks[i + 2].op == ")" and not w.quoted):
            name = w.text
            script.funcs.setdefault(name, "func")
            pending_func = name
            i += 3
            expect_cmd = True
            continue
        if w.text in KEYWORDS and not w.quoted:
            if w.text == "{":
                brace_stack.append(pending_func)
                pending_func = None
            elif w.text == "}":
                if brace_stack:
                    brace_stack.pop()
            elif w.text == "case":
                # case WORD in
                i += 1
                while i < n and not (isinstance(toks[i], Word) and toks[i].text == "in"):
                    if isinstance(toks[i], Word):
                        for sub, ln in toks[i].subs:
                            parse(script, sub, ln)
                    i += 1
                case_pattern = True
            elif w.text in ("for", "select"):
                # for NAME [in WORDS] ; do (the literal words are kept for
                # `command -v "$NAME"` in the loop)
                i += 1
                var = toks[i].text if i < n and isinstance(toks[i], Word) else None
                items = []
                while i < n and not (isinstance(toks[i], Word) and toks[i].text == "do"):
                    if isinstance(toks[i], Word):
                        for sub, ln in toks[i].subs:
                            parse(script, sub, ln)
                        if toks[i].text != "in" and toks[i].text != var:
                            items.append(toks[i])
                    i += 1
                if var and items and all("$" not in x.text for x in items):
                    script.for_lists[var] = items
                continue
            i += 1
            continue
        # a simple command: collect its words up to the next operator
        words = []
        j = i
        while j < n:
            tj = toks[j]
            if isinstance(tj, Op):
                if tj.op == "redir":
                    j += 2
                    continue
                break
            words.append(tj)
            j += 1
        # nested substitutions in the arguments (the first word's done above)
        for w2 in words[1:]:
            for sub, ln in w2.subs:
                parse(script, sub, ln)
        handle_command(script, words, cur_func(), shifts)
        i = j
        expect_cmd = False
    if not top:
        return
    for f, v in script.funcs.items():
        if v == "wrapper":
            script.funcs[f] = shifts.get(f, 0)


def handle_command(script, words, func, shifts):
    # skip assignments
    k = 0
    while k < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[k].text) and not words[k].text.startswith("="):
        k += 1
    words = words[k:]
    while words:
        w = words[0]
        name = w.text
        if name in ('$@', '$*') and func is not None:
            script.funcs[func] = "wrapper"
            return
        if name == "shift" and func is not None:
            cnt = int(words[1].text) if len(words) > 1 and words[1].text.isdigit() else 1
            shifts[func] = shifts.get(func, 0) + cnt
            return
        if name in ("sh", "bash", "dash") and not w.quoted:
            script.calls.append((name, w.line))
            sc = shell_c_string(words[1:])
            if sc is not None and sc.whole_quote is not None:
                parse(script, sc.whole_quote, sc.line)
            return
        if name == "trap" and len(words) > 1 and words[1].whole_quote is not None:
            parse(script, words[1].whole_quote, words[1].line)
            return
        if name == "command" and len(words) > 1:
            rest = [x for x in words[1:] if not x.text.startswith("-")]
            if rest and rest[0].text.startswith("$") and rest[0].text[1:] in script.for_lists:
                for x in script.for_lists[rest[0].text[1:]]:
                    script.calls.append((x.text, x.line))
            elif rest:
                script.calls.append((rest[0].text, rest[0].line))
            return
        if name == "ip" and len(words) > 3 and words[1].text == "netns" and words[2].text == "exec":
            script.calls.append(("ip", w.line))
            words = words[4:]
            continue
        if name in WRAPPER_OPTS_WITH_ARG and not w.quoted:
            if name not in BUILTINS:
                script.calls.append((name, w.line))
            with_arg = WRAPPER_OPTS_WITH_ARG[name]
            rest = words[1:]
            while rest:
                t = rest[0].text
                if name == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t):
                    rest = rest[1:]
                elif t == "--":
                    rest = rest[1:]
                    break
                elif t.startswith("-") and len(t) > 1:
                    rest = rest[2:] if t in with_arg else rest[1:]
                else:
                    break
            rest = rest[WRAPPER_POSITIONAL.get(name, 0):]
            words = rest
            continue
        if name in RUNS_ELSEWHERE:
            script.calls.append((name, w.line))
            return
        # a user function used as a wrapper: its first k args precede the command
        f = find_func(script, name)
        if isinstance(f, int):
            words = words[1 + f:]
            continue
        script.calls.append((name, w.line))
        return


def find_func(script, name):
    if name in script.funcs:
        return script.funcs[name]
    for s in script.sourced:
        if name in s.funcs:
            return s.funcs[name]
    return None


# ---------------------------------------------------------------- packages

def read_deps_lists(root):
    text = open(os.path.join(root, "mk/deps.sh")).read()
    pkgs = set()
    for m in re.finditer(r'^([A-Z_]+_PKGS)="([^"]*)"', text, re.M):
        pkgs.update(m.group(2).split())
    return pkgs


def read_dpkg_status():
    installed, provides, deps, info = set(), {}, {}, {}
    try:
        text = open("/var/lib/dpkg/status", encoding="utf-8", errors="replace").read()
    except OSError:
        return installed, provides, deps, info
    for para in text.split("\n\n"):
        fields, last = {}, None
        for ln in para.split("\n"):
            if ln.startswith((" ", "\t")) and last:
                fields[last] += " " + ln.strip()
            elif ":" in ln:
                last, v = ln.split(":", 1)
                fields[last] = v.strip()
        p = fields.get("Package")
        if not p or "install ok installed" not in fields.get("Status", ""):
            continue
        installed.add(p)
        info[p] = (fields.get("Essential", "no"), fields.get("Priority", ""))
        for v in fields.get("Provides", "").split(","):
            v = v.strip().split(" ")[0].split(":")[0]
            if v:
                provides.setdefault(v, set()).add(p)
        groups = []
        for fld in ("Pre-Depends", "Depends"):
            for g in fields.get(fld, "").split(","):
                alts = [a.strip().split(" ")[0].split(":")[0] for a in g.split("|") if a.strip()]
                if alts:
                    groups.append(alts)
        deps[p] = groups
    return installed, provides, deps, info


def closure(start, installed, provides, deps):
    seen = set()
    todo = [p for p in start if p in installed]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alts in deps.get(p, []):
            for a in alts:
                for q in ({a} if a in installed else set()) | provides.get(a, set()):
                    if q not in seen:
                        todo.append(q)
    return seen


def file_owners():
    """path -> package for files in bin directories, from dpkg's lists."""
    owners = {}
    d = "/var/lib/dpkg/info"
    try:
        names = os.listdir(d)
    except OSError:
        return owners
    for fn in names:
        if not fn.endswith(".list"):
            continue
        pkg = fn[:-5].split(":")[0]
        try:
            with open(os.path.join(d, fn), encoding="utf-8", errors="replace") as f:
                for ln in f:
                    ln = ln.rstrip("\n")
                    if "bin/" in ln or "/lib/" in ln:
                        owners[ln] = pkg
        except OSError:
            pass
    return owners


def usrmerge_variants(p):
    out = [p]
    for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
        if p.startswith(a):
            out.append(b + p[len(a):])
        elif p.startswith(b):
            out.append(a + p[len(b):])
    return out


def locate(name):
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    for d in SEARCH_PATH:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def owner_of(path, owners):
    cands = []
    for p in (path, os.path.realpath(path)):
        cands += usrmerge_variants(p)
    # alternatives: follow each link step (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk)
    p, hops = path, 0
    while os.path.islink(p) and hops < 8:
        p = os.path.join(os.path.dirname(p), os.readlink(p))
        cands += usrmerge_variants(os.path.normpath(p))
        hops += 1
    for c in reversed(cands):       # the final target first
        if c in owners:
            return owners[c]
    return None


# ---------------------------------------------------------------- main

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    list_only = "--list" in sys.argv
    root = args[0] if args else "."
    files = []
    for top in ("tests", "mk"):
        for dp, dn, fn in os.walk(os.path.join(root, top)):
            dn.sort()
            for f in sorted(fn):
                if f.endswith(".sh") and (top == "tests" or dp == os.path.join(root, "mk")):
                    files.append(os.path.join(dp, f))
    scripts = {}
    for f in files:
        rel = os.path.relpath(f, root)
        scripts[rel] = Script(rel, open(f, encoding="utf-8", errors="replace").read())
    # sourced files: ". "$ROOT/tests/lab/lib.sh"" and the like
    for s in scripts.values():
        s.sourced = []
        for m in re.finditer(r'^\s*(?:\.|source)\s+"?[^"\s]*?((?:tests|mk)/[A-Za-z0-9_./-]+\.sh)', s.text, re.M):
            s.sources.append(m.group(1))
    # two passes: the first finds the functions (and which wrap "$@")
    for s in scripts.values():
        parse(s, s.text, top=True)

    def all_sources(s, seen):
        for p in s.sources:
            if p in scripts and p not in seen:
                seen.add(p)
                all_sources(scripts[p], seen)
        return seen

    for s in scripts.values():
        s.sourced = [scripts[p] for p in sorted(all_sources(s, set()))]
    funcs_pass1 = {k: dict(s.funcs) for k, s in scripts.items()}
    for k, s in scripts.items():
        s.calls = []
        s.funcs = funcs_pass1[k]
        parse(s, s.text, top=True)

    used = {}
    for s in scripts.values():
        for name, line in s.calls:
            if not name or name in BUILTINS or name in KEYWORDS:
                continue
            if find_func(s, name) is not None:
                continue
            if name.startswith(("$", "~", "-", "=", "%")) or "$" in name:
                continue
            if "/" in name and not name.startswith(("/usr/", "/bin/", "/sbin/")):
                continue          # project files and scratch paths
            if not re.match(r"^[A-Za-z0-9_./+-]+$", name):
                continue
            used.setdefault(name, []).append("%s:%d" % (s.path, line))

    wanted = read_deps_lists(root)
    installed, provides, deps, info = read_dpkg_status()
    owners = file_owners()
    provided = closure(wanted, installed, provides, deps)
    base = closure(ESSENTIAL, installed, provides, deps)
    failed = 0
    for p in sorted(ESSENTIAL):
        ess, prio = info.get(p, ("", ""))
        if p in info and ess != "yes" and prio != "required":
            print("FAIL deps: allowlisted base package %s: not Essential or Priority required here (%s, %s)" % (p, ess, prio))
            failed += 1
    rows = []
    for name in sorted(used):
        where = used[name]
        shown = ", ".join(where[:3]) + (" and %d more" % (len(where) - 3) if len(where) > 3 else "")
        path = locate(name)
        if path is None:
            print("FAIL deps: %s (%s): not installed, so make deps does not install it (add its package to mk/deps.sh)"
                  % (name, shown))
            failed += 1
            continue
        pkg = owner_of(path, owners)
        if pkg is None:
            print("FAIL deps: %s (%s): %s belongs to no Debian package" % (name, shown, path))
            failed += 1
        elif pkg in wanted:
            rows.append((name, pkg, "mk/deps.sh"))
        elif pkg in ESSENTIAL or pkg in base:
            rows.append((name, pkg, "base system"))
        elif pkg in provided:
            rows.append((name, pkg, "a dependency of mk/deps.sh's packages"))
        else:
            print("FAIL deps: %s (%s): from package %s, which mk/deps.sh does not install" % (name, shown, pkg))
            failed += 1
    if list_only:
        for r in rows:
            print("    %-24s %-26s %s" % r)
    if not failed:
        print("PASS deps: all %d programs that %d scripts run come from make deps (%d) or the base system (%d)"
              % (len(used), len(scripts), sum(1 for r in rows if r[2] != "base system"),
                 sum(1 for r in rows if r[2] == "base system")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
