#!/usr/bin/env python3
"""Usage: tools/function_lengths.py DIR_OR_FILE...  (LIMIT=120 by default)

Counts the lines of every function body in C++ files: a '{' opened at namespace/class scope
(not a namespace, class, struct, union, enum or extern block, nor an initializer '= {') starts a
function body; its length is the lines from that '{' to its matching '}' inclusive, minus 2."""
import re, sys, os

def strip(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i); j = n if j < 0 else j
            out.append(' ' * (j - i)); i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2); j = n if j < 0 else j + 2
            out.append(''.join(ch if ch == '\n' else ' ' for ch in text[i:j])); i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if m:
                end = ')' + m.group(1) + '"'
                j = text.find(end, i); j = n if j < 0 else j + len(end)
                out.append(''.join(ch if ch == '\n' else ' ' for ch in text[i:j])); i = j
            else:
                out.append(c); i += 1
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            out.append(c + ' ' * (min(j, n) - i - 1) + c); i = j + 1
        else:
            out.append(c); i += 1
    return ''.join(out)

def functions(path):
    text = strip(open(path, encoding='utf-8', errors='replace').read())
    stack = []  # (kind, start_line, name)
    line = 1; last = 0; res = []
    for i, c in enumerate(text):
        if c == '\n': line += 1
        elif c == '{':
            head = text[last:i]
            in_fn = any(k == 'fn' for k, _, _ in stack)
            h = head.strip()
            if in_fn: kind = 'inner'
            elif re.search(r'\b(namespace|class|struct|union|enum)\b[^;()]*$', h) or re.search(r'extern\s*$', h) or h.endswith('"C"'):
                kind = 'scope'
            elif re.search(r'=\s*$', h) or re.search(r'\w\s*$', h) and not re.search(r'\)\s*(const|override|final|noexcept|mutable|\s)*$', h) and not re.search(r'->\s*[\w:<>, ]+$', h) and not re.search(r'\btry$', h):
                kind = 'init'
            else:
                kind = 'fn'
            name = re.sub(r'\s+', ' ', h.split(';')[-1].split('}')[-1])[-80:]
            stack.append((kind, line, name))
            last = i + 1
        elif c == '}':
            if stack:
                kind, start, name = stack.pop()
                if kind == 'fn': res.append((line - start - 1, start, name.strip()))
            last = i + 1
        elif c == ';':
            last = i + 1
    return res

limit = int(os.environ.get('LIMIT', '120'))
rows = []
for root in sys.argv[1:]:
    files = [root] if os.path.isfile(root) else [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    for f in files:
        if f.endswith(('.cpp', '.h', '.cu', '.cuh', '.hpp', '.cc')):
            for n, start, name in functions(f): rows.append((n, f, start, name))
rows.sort(reverse=True)
for n, f, start, name in rows:
    if n > limit: print(f"{n:5d} {f}:{start} {name}")
print(f"{len(rows)} functions; longest {rows[0][0] if rows else 0} lines; over {limit}: {sum(1 for r in rows if r[0] > limit)}")
sys.exit(1 if any(r[0] > limit for r in rows) else 0)
