/* Meet-in-the-middle counting of binary threshold neurons (see _mitm.c). Pure C, no Python. */
#ifndef ROON_MITM_H
#define ROON_MITM_H

#include <stddef.h>
#include <stdint.h>

/* Largest fan-in a plan may have: the per-position counts of the materialized half are
 * uint32 and count subsets of the other half, so that half has at most 31 inputs; with
 * 2^23 sums in the materialized half (the 512 MiB default) that is 23 + 31 = 54. */
#define MITM_MAX_N 54

typedef struct {
    int n;        /* fan-in */
    int nb;       /* inputs of the materialized, sorted half B (positions 0..nb-1) */
    int a;        /* inputs of the sorted part of A (positions nb..nb+a-1) */
    int h;        /* inputs of A enumerated one combination at a time (the rest) */
    size_t bytes; /* peak memory of one row's buffers */
} mitm_plan;

/* The fastest plan (by the cost model in _mitm.c) whose buffers fit mem_limit bytes;
 * returns 0 if none does (or n is out of range). */
int mitm_choose(int n, size_t mem_limit, mitm_plan *plan);

/* Counts of one int64 row (Σ|w| + |b| <= 2^61; see roon/kernels/exact.py) over {0,1}^n:
 *   fire: inputs with s = w·x + b > tol;  chow[i]: those with x_i = 1;
 *   high: min s over them (INT64_MAX if none); low: max s over the others (INT64_MIN
 *   if none); uncertain: inputs with |s| <= tol (only counted when tol > 0).
 * buf must hold plan->bytes bytes. */
void mitm_row(const mitm_plan *plan, void *buf, const int64_t *w, int64_t b, int64_t tol,
              int64_t *fire, int64_t *chow, int64_t *high, int64_t *low, int64_t *uncertain);

/* Inputs x with lo <= w·x + b <= hi: returns how many there are and writes the first cap
 * of them as bit masks (bit i: x_i = 1) into out. Same plan and buffer as mitm_row. */
int64_t mitm_window(const mitm_plan *plan, void *buf, const int64_t *w, int64_t b, int64_t lo,
                    int64_t hi, uint64_t *out, int64_t cap);

#endif
