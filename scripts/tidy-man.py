#!/usr/bin/env python3
"""Turns the plain-text help of swift-argument-parser's man pages into mdoc paragraphs.

generate-manual copies each command's `discussion` as running text, which man would fill
into one paragraph. Here a blank line becomes `.Pp` and a run of lines indented by two
spaces (the examples) becomes a literal display, so `man ru-knn` reads like `--help`.
"""
import sys

out = []
literal = False
for line in sys.stdin.read().split("\n"):
    is_macro = line.startswith(".")
    if not is_macro and line.startswith("  "):
        if not literal:
            out.append(".Bd -literal -offset indent")
            literal = True
        out.append(line[2:])
        continue
    if literal:
        out.append(".Ed")
        literal = False
    if not is_macro and line.strip() == "" and out and not out[-1].startswith(".Sh"):
        out.append(".Pp")
        continue
    out.append(line)
if literal:
    out.append(".Ed")
text = "\n".join(out)
# A paragraph break directly before a list or after a section heading is noise.
text = text.replace(".Pp\n.Bl", ".Bl").replace(".Pp\n.It", ".It").replace(".Pp\n.Pp", ".Pp")
# Point at the rest of the toolchain, the way man pages of a suite do.
name = sys.argv[1] if len(sys.argv) > 1 else ""
others = [t for t in ("ru-embed", "ru-knn", "ru-sim", "ru-tok", "ru-vec") if t != name]
see_also = ".Sh SEE ALSO\n" + " ,\n".join(".Xr %s 1" % t for t in others) + " ,\n.Xr ru-vectors 5\n"
text = text.rstrip("\n") + "\n" + see_also
sys.stdout.write(text)
