#!/usr/bin/env python3
"""Import cycles between the files of a Rust crate: every `crate::a::b` path (in `use` lines and
in code) is an edge from the file to the file that defines module `a::b` (or `a`); cycles are the
strongly connected components with more than one file."""
import os, re, sys

def module_files(src):
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if not n.endswith('.rs'):
                continue
            path = os.path.join(root, n)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ('mod', 'lib', 'main'):
                rel = rel[:-1]
            files[tuple(rel)] = path
    return files

def edges(files):
    out = {p: set() for p in files.values()}
    pat = re.compile(r'\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)')
    group = re.compile(r'\bcrate::((?:[a-z_][a-z0-9_]*::)*)\{([^}]*)\}', re.S)
    for mod, path in files.items():
        text = open(path).read()
        text = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
        targets = [m.group(1).split('::') for m in pat.finditer(text)]
        for m in group.finditer(text):
            prefix = [p for p in m.group(1).split('::') if p]
            for item in m.group(2).split(','):
                item = item.strip().split('::')[0].strip()
                if re.match(r'^[a-z_][a-z0-9_]*$', item):
                    targets.append(prefix + [item])
        for t in targets:
            for k in range(len(t), 0, -1):
                key = tuple(t[:k])
                if key in files:
                    if files[key] != path:
                        out[path].add(files[key])
                    break
    return out

def sccs(graph):
    index, low, stack, on, res, i = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            res.append(comp)
    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in res if len(c) > 1]

src = sys.argv[1] if len(sys.argv) > 1 else 'crates/accolade-server/src'
cycles = sccs(edges(module_files(src)))
print(f"{len(cycles)} import cycle(s) in {src}")
for c in cycles:
    print(f"  {len(c)} files: " + ", ".join(sorted(os.path.relpath(p, src) for p in c)))
sys.exit(0)
