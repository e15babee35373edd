# spearman.awk: Spearman's rank correlation of two columns, as scipy.stats.spearmanr gives it:
# the Pearson correlation of the ranks, tied values sharing their mean rank.
#   paste gold.txt scores.txt | awk -f spearman.awk
# Input lines are x<TAB>y (numbers); prints the coefficient with 10 decimals.

# Sorts idx[1..n] so that val[idx[1]] <= ... <= val[idx[n]] (heapsort: no recursion, n log n).
function sortidx(val, idx, n,    i, end, t) {
    for (i = int(n / 2); i >= 1; i--) sift(val, idx, i, n)
    for (end = n; end > 1; end--) {
        t = idx[1]; idx[1] = idx[end]; idx[end] = t
        sift(val, idx, 1, end - 1)
    }
}
function sift(val, idx, root, end,    child, t) {
    while (2 * root <= end) {
        child = 2 * root
        if (child < end && val[idx[child + 1]] > val[idx[child]]) child++
        if (val[idx[root]] >= val[idx[child]]) return
        t = idx[root]; idx[root] = idx[child]; idx[child] = t
        root = child
    }
}
# rank[i] = the 1-based rank of val[i], ties averaged.
function ranks(val, rank, n,    idx, i, j, k, r) {
    for (i = 1; i <= n; i++) idx[i] = i
    sortidx(val, idx, n)
    i = 1
    while (i <= n) {
        j = i
        while (j < n && val[idx[j + 1]] == val[idx[i]]) j++
        r = (i + j) / 2
        for (k = i; k <= j; k++) rank[idx[k]] = r
        i = j + 1
    }
}

BEGIN { FS = "\t" }
NF >= 2 { n++; x[n] = $1 + 0; y[n] = $2 + 0 }
END {
    if (n < 2) { print "spearman.awk: fewer than two pairs" > "/dev/stderr"; exit 2 }
    ranks(x, rx, n); ranks(y, ry, n)
    for (i = 1; i <= n; i++) { mx += rx[i]; my += ry[i] }
    mx /= n; my /= n
    for (i = 1; i <= n; i++) {
        dx = rx[i] - mx; dy = ry[i] - my
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy
    }
    if (sxx == 0 || syy == 0) { print "nan"; exit 0 }
    printf "%.10f\n", sxy / sqrt(sxx * syy)
}
