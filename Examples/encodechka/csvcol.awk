# csvcol.awk: one column of a CSV file (RFC 4180, as Python's csv module and pandas read it:
# quoted fields may hold commas, newlines and doubled quotes), picked by its header name.
#   awk -v col=NAME [-v nul=1] -f csvcol.awk FILE.csv
# Prints the column's value for every data row, in order: each followed by a newline, or with
# nul=1 by a NUL byte (for `ru-embed -0`, so texts may hold newlines). Byte-oriented: run it
# with LC_ALL=C. Exits 2 when the column is missing or a record does not close its quotes.

# Splits one complete record into f[1..n]; returns n.
function fields(s, f,    n, pos, len, p, v) {
    n = 0; pos = 1; len = length(s)
    while (1) {
        n++
        if (substr(s, pos, 1) == "\"") {
            # Quoted: up to the closing quote, "" standing for one quote.
            v = ""; pos++
            while (1) {
                p = index(substr(s, pos), "\"")
                if (p == 0) { v = v substr(s, pos); pos = len + 1; break }
                v = v substr(s, pos, p - 1); pos += p
                if (substr(s, pos, 1) == "\"") { v = v "\""; pos++ } else break
            }
            # Anything between the closing quote and the comma is kept, as the csv module does.
            p = index(substr(s, pos), ",")
            if (p == 0) { f[n] = v substr(s, pos); return n }
            f[n] = v substr(s, pos, p - 1); pos += p
        } else {
            p = index(substr(s, pos), ",")
            if (p == 0) { f[n] = substr(s, pos); return n }
            f[n] = substr(s, pos, p - 1); pos += p
        }
    }
}

BEGIN { want = 0; rec = ""; open = 0 }

{
    line = $0
    # A record ends where its quotes balance: fields quote their quotes by doubling them.
    q = gsub(/"/, "\"", line)
    rec = open ? rec "\n" line : line
    if ((q % 2) == 1) open = !open
    if (open) next
    if (rec ~ /\r$/) rec = substr(rec, 1, length(rec) - 1)
    n = fields(rec, f)
    rec = ""
    if (want == 0) {
        for (i = 1; i <= n; i++) if (f[i] == col) { want = i; break }
        if (want == 0) { printf "csvcol.awk: %s: no column \"%s\"\n", FILENAME, col > "/dev/stderr"; bad = 1; exit 2 }
        next
    }
    if (nul) printf "%s%c", f[want], 0
    else print f[want]
}

END {
    if (bad) exit 2
    if (open) { printf "csvcol.awk: %s: a quoted field is not closed\n", FILENAME > "/dev/stderr"; exit 2 }
}
