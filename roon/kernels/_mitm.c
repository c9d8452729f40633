/* Compiled face of the meet-in-the-middle op (NumPy face: roon/kernels/mitm.py, chow_mitm).
 *
 * Fire count, Chow parameters, the closest sums on either side of the threshold and the
 * count of uncertain inputs of a binary neuron, in O(n·2^(n/2)) time instead of O(2^n),
 * with memory bounded by a plan (Horowitz & Sahni, "Computing partitions with applications
 * to the knapsack problem", J. ACM 1974).
 *
 * The inputs (row positions) split three ways: B = positions [0, nb), A_lo = [nb, nb+a),
 * A_hi = [nb+a, n). B and A_lo are materialized as ascending subset sums with their subset
 * masks, built by merging S with S + w_i input by input (no sort). A_hi is enumerated one
 * combination (offset d) at a time, so memory is 16·2^nb + 24·2^a bytes however large
 * n - nb - a is: that is the streamed part of the second half.
 *
 * For one combination, the input (a in A_lo, β in B) is excited iff
 * S_B[β] > tol - d - S_A[a] =: t(a); t falls as S_A rises, so walking A_lo downwards and
 * B upwards (a merge) gives every rank pos(a) = #{β : S_B[β] <= t(a)}: the A subset has
 * NB - pos(a) excited completions, and B position p completes every A subset whose rank
 * is <= p. Per-position counts become Chow parameters through the masks: a count array
 * indexed by mask is folded in half once per bit (O(2^k) for all k bits at once).
 *
 * The walk is latency-bound (each step's load depends on the last compare), so each
 * combination's walk is cut into SEGMENTS pieces at binary-searched split points and the
 * pieces are stepped together: independent dependency chains the CPU overlaps.
 *
 * Exactness: every value is an int64 sum of at most n + 1 row terms, so |value| <= 2^61
 * (roon/kernels/exact.py); thresholds add |tol| <= 2^5; the sentinels are ±2^62.
 *
 * One variant only: portable C with no instruction-set dispatch (the loops are merges and
 * walks, not wide compares), so the tests that force each variant of _cpu.c's exhaustive
 * loop have nothing to force here; tests/test_mitm_kernel.py forces every plan shape.
 */
#include "_mitm.h"

#include <stdlib.h>
#include <string.h>

#define BIG ((int64_t)1 << 62) /* beyond every sum, and sum ± BIG cannot overflow */
#define SEGMENTS 8             /* independent walk pieces stepped together */
#define MIN_SEGMENT 64         /* a walk is cut into pieces of at least this many subsets */

/* Cost model of a plan, in ns per element on a 2-core AVX-512 Xeon (measured on ACAS Xu
 * rows, n = 50): building a sorted half by merging, one walk step, the per-subset pass
 * after a walk, folding counts into Chow parameters, and a fixed cost per combination. */
#define NS_BUILD 2.7
#define NS_STEP 1.0
#define NS_PASS 1.5
#define NS_FOLD 1.0
#define NS_COMBO 2000.0

static size_t aligned(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Bytes of a row's buffers (the layout of mitm_row): B's sums, masks; A_lo's sums, masks;
 * B's per-position counts, A_lo's per-subset counts and ranks. A build's scratch (half its
 * sums and masks) reuses the arrays after its own, which are not yet in use. */
static size_t plan_bytes(int nb, int a) {
    size_t NB = (size_t)1 << nb, NA = (size_t)1 << a;
    size_t b_arrays = aligned(8 * (NB + 2)) + aligned(4 * (NB + 2));
    size_t a_arrays = aligned(8 * (NA + 2)) + aligned(4 * (NA + 2));
    size_t counts = aligned(4 * (NB + 1)) + aligned(8 * NA) + aligned(4 * NA);
    size_t b_scratch = aligned(8 * (NB / 2 + 2)) + aligned(4 * (NB / 2 + 2));
    size_t after_b = a_arrays + counts;
    return b_arrays + (after_b > b_scratch ? after_b : b_scratch);
}

static double plan_cost(int nb, int a, int h) {
    double NB = (double)((int64_t)1 << nb), NA = (double)((int64_t)1 << a);
    double H = (double)((int64_t)1 << h);
    return NS_BUILD * 2 * (NB + NA) + H * (NS_STEP * (NA + NB) + NS_PASS * NA + NS_COMBO) +
           NS_FOLD * (NB + NA);
}

int mitm_choose(int n, size_t mem_limit, mitm_plan *plan) {
    int found = 0;
    double best = 0;
    if (n < 0 || n > MITM_MAX_N) return 0;
    for (int nb = 0; nb <= n && nb <= 31; nb++) {
        int na = n - nb;
        if (na > 31) continue; /* per-position counts of B are uint32 */
        for (int a = 0; a <= na; a++) {
            size_t bytes = plan_bytes(nb, a);
            if (bytes > mem_limit) break; /* grows with a */
            double cost = plan_cost(nb, a, na - a);
            if (!found || cost < best) {
                found = 1;
                best = cost;
                plan->n = n;
                plan->nb = nb;
                plan->a = a;
                plan->h = na - a;
                plan->bytes = bytes;
            }
        }
    }
    return found;
}

static char *carve(char **at, size_t bytes) {
    char *p = *at;
    *at += aligned(bytes);
    return p;
}

/* One input of the sorted build, in place: merge s[0..half) with s[0..half) + wi into
 * s[0..2·half) backwards (the write index x + y + 1 never passes an unread element).
 * s[-1] = -BIG and m[-1] are read as sentinels when a run is used up; ties put the run
 * without wi first (stable), though no result depends on the order of equal sums. */
static void merge_in_place(int64_t *s, uint32_t *m, int64_t half, int64_t wi, uint32_t bit) {
    int64_t x = half - 1, y = half - 1;
    for (int64_t o = 2 * half - 1; o >= 0; o--) {
        int64_t xv = s[x], yv = s[y] + wi; /* -BIG + wi stays below every sum */
        uint32_t xm = m[x], ym = m[y] | bit;
        int64_t take_y = yv >= xv;
        s[o] = take_y ? yv : xv;
        m[o] = take_y ? ym : xm;
        y -= take_y;
        x -= 1 - take_y;
    }
}

/* The same merge from src (with the sentinel src[half] = BIG) into dst, cut into SEGMENTS
 * equal pieces of output whose starts are found by binary search on the merge path; the
 * pieces' dependency chains are stepped together. */
static void merge_split(const int64_t *src, const uint32_t *msrc, int64_t half, int64_t wi,
                        uint32_t bit, int64_t *dst, uint32_t *mdst) {
    int64_t x[SEGMENTS], y[SEGMENTS], o[SEGMENTS], len = 2 * half / SEGMENTS;
    for (int k = 0; k < SEGMENTS; k++) {
        int64_t out = k * len, lo = out > half ? out - half : 0, hi = out < half ? out : half;
        while (lo < hi) { /* x: elements of the first run among the first `out` outputs */
            int64_t mid = lo + (hi - lo) / 2;
            if (src[mid] <= src[out - mid - 1] + wi) lo = mid + 1;
            else hi = mid;
        }
        x[k] = lo;
        y[k] = out - lo;
        o[k] = out;
    }
    for (int64_t step = 0; step < len; step++) {
#pragma GCC unroll 16
        for (int k = 0; k < SEGMENTS; k++) {
            int64_t xv = src[x[k]], yv = src[y[k]] + wi; /* BIG + wi stays above every sum */
            uint32_t xm = msrc[x[k]], ym = msrc[y[k]] | bit;
            int64_t take_x = xv <= yv;
            dst[o[k]] = take_x ? xv : yv;
            mdst[o[k]] = take_x ? xm : ym;
            x[k] += take_x;
            y[k] += 1 - take_x;
            o[k]++;
        }
    }
}

/* Merges of at least this many outputs are split (and run out of place). */
#define SPLIT_OUTPUTS ((int64_t)SEGMENTS * 1024)

/* Ascending subset sums of w[0..k) into s[0..2^k), masks (bit i: w[i]) into m, by merging
 * S with S + w_i input by input. s and the scratch arrays t (values) and tm (masks) must
 * have room for index -1 and for 2^k (s) or 2^(k-1) (t) entries plus one sentinel. Small
 * merges run in place; the large ones alternate between s and t, starting in whichever
 * makes the last one land in s. */
static void build_sorted(const int64_t *w, int k, int64_t *s, uint32_t *m, int64_t *t,
                         uint32_t *tm) {
    int split = 0; /* first input whose merge is split */
    while (split < k && ((int64_t)2 << split) < SPLIT_OUTPUTS) split++;
    int64_t *cur = (k - split) % 2 ? t : s, *other = cur == s ? t : s;
    uint32_t *mcur = cur == s ? m : tm, *mother = cur == s ? tm : m;
    cur[-1] = -BIG;
    mcur[-1] = 0;
    cur[0] = 0;
    mcur[0] = 0;
    for (int i = 0; i < split; i++)
        merge_in_place(cur, mcur, (int64_t)1 << i, w[i], (uint32_t)1 << i);
    for (int i = split; i < k; i++) {
        int64_t half = (int64_t)1 << i;
        cur[half] = BIG;
        merge_split(cur, mcur, half, w[i], (uint32_t)1 << i, other, mother);
        int64_t *sw = cur;
        cur = other;
        other = sw;
        uint32_t *msw = mcur;
        mcur = mother;
        mother = msw;
    }
}

/* Two small builds at once (no merge large enough to split): the two in-place merges of
 * each input are independent dependency chains, stepped together. */
static void build_two_small(const int64_t *w1, int k1, int64_t *s1, uint32_t *m1,
                            const int64_t *w2, int k2, int64_t *s2, uint32_t *m2) {
    s1[-1] = s2[-1] = -BIG;
    m1[-1] = m2[-1] = 0;
    s1[0] = s2[0] = 0;
    m1[0] = m2[0] = 0;
    int both = k1 < k2 ? k1 : k2;
    for (int i = 0; i < both; i++) {
        int64_t half = (int64_t)1 << i, w1i = w1[i], w2i = w2[i];
        uint32_t bit = (uint32_t)1 << i;
        int64_t x1 = half - 1, y1 = half - 1, x2 = half - 1, y2 = half - 1;
        for (int64_t o = 2 * half - 1; o >= 0; o--) {
            int64_t xv1 = s1[x1], yv1 = s1[y1] + w1i, xv2 = s2[x2], yv2 = s2[y2] + w2i;
            uint32_t xm1 = m1[x1], ym1 = m1[y1] | bit, xm2 = m2[x2], ym2 = m2[y2] | bit;
            int64_t t1 = yv1 >= xv1, t2 = yv2 >= xv2;
            s1[o] = t1 ? yv1 : xv1;
            m1[o] = t1 ? ym1 : xm1;
            s2[o] = t2 ? yv2 : xv2;
            m2[o] = t2 ? ym2 : xm2;
            y1 -= t1;
            x1 -= 1 - t1;
            y2 -= t2;
            x2 -= 1 - t2;
        }
    }
    for (int i = both; i < k1; i++) merge_in_place(s1, m1, (int64_t)1 << i, w1[i], (uint32_t)1 << i);
    for (int i = both; i < k2; i++) merge_in_place(s2, m2, (int64_t)1 << i, w2[i], (uint32_t)1 << i);
}

/* #{p < NB : S[p] <= t} (S ascending). */
static int64_t rank_le(const int64_t *S, int64_t NB, int64_t t) {
    int64_t lo = 0, hi = NB;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (S[mid] <= t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* One walk step: emit the rank of A subset q (when S[j] > t(q)) or pass B position j.
 * pos[q] is written on every step; the last write, at the emit, is the rank. */
#define WALK_STEP(q, j)                           \
    do {                                          \
        int64_t take_ = S[j] <= t0 - L[q];        \
        pos[q] = (uint32_t)(j);                   \
        j += take_;                               \
        q -= 1 - take_;                           \
    } while (0)

/* pos[q] = #{p : S[p] <= t0 - L[q]} for q in [0, NA); L ascending, S ascending with the
 * sentinel S[NB] = BIG. The walk runs q downwards (thresholds ascending); a piece from
 * q_first down to q_last takes exactly (q_first - q_last + 1) + (j_last - j_first) steps,
 * with j_first and j_last the ranks of its first and last element, and never writes
 * outside its own range, so SEGMENTS pieces can be stepped together. */
static void walk_ranks(const int64_t *S, int64_t NB, const int64_t *L, int64_t NA, int64_t t0,
                       uint32_t *pos) {
    int pieces = 1;
    while (pieces < SEGMENTS && NA >= 2 * pieces * MIN_SEGMENT) pieces *= 2;
    int64_t q[SEGMENTS], j[SEGMENTS], left[SEGMENTS], common = 0;
    for (int k = 0; k < pieces; k++) {
        int64_t first = NA - 1 - (NA * k) / pieces, last = NA - (NA * (k + 1)) / pieces;
        q[k] = first;
        j[k] = rank_le(S, NB, t0 - L[first]);
        left[k] = (first - last + 1) + (rank_le(S, NB, t0 - L[last]) - j[k]);
        common = k == 0 || left[k] < common ? left[k] : common;
    }
    /* the pieces stepped together for as long as all of them run; constant counts let
     * the compiler keep every piece's (q, j) in registers */
#define WALK_TOGETHER(P)                                                     \
    for (int64_t s = 0; s < common; s++) {                                    \
        _Pragma("GCC unroll 8") for (int k = 0; k < (P); k++) WALK_STEP(q[k], j[k]); \
    }
    if (pieces == 8) WALK_TOGETHER(8)
    else if (pieces == 4) WALK_TOGETHER(4)
    else if (pieces == 2) WALK_TOGETHER(2)
    else common = 0;
#undef WALK_TOGETHER
    for (int k = 0; k < pieces; k++) {
        int64_t qk = q[k], jk = j[k];
        for (int64_t s = common; s < left[k]; s++) WALK_STEP(qk, jk);
    }
}

/* Σ over masks with bit i set of arr[mask], for every bit i < k, into out[i]; arr (2^k
 * entries) is consumed: halving it once per bit costs 2^k adds for all k bits together. */
static void fold_bits(int64_t *arr, int k, int64_t *out) {
    for (int i = k - 1; i >= 0; i--) {
        int64_t half = (int64_t)1 << i, sum = 0;
        for (int64_t m = 0; m < half; m++) {
            sum += arr[half + m];
            arr[m] += arr[half + m];
        }
        out[i] = sum;
    }
}

/* Excited inputs (s > thr) of the row over every combination, no Chow parameters: the
 * uncertain count needs it at a second threshold. */
static int64_t count_above(const mitm_plan *p, const int64_t *S, const int64_t *L, uint32_t *pos,
                           const int64_t *w_hi, int64_t b, int64_t thr) {
    int64_t NB = (int64_t)1 << p->nb, NA = (int64_t)1 << p->a, total = 0;
    for (int64_t o = 0; o < ((int64_t)1 << p->h); o++) {
        int64_t d = b;
        for (int k = 0; k < p->h; k++)
            if ((o >> k) & 1) d += w_hi[k];
        walk_ranks(S, NB, L, NA, thr - d, pos);
        for (int64_t q = 0; q < NA; q++) total += NB - pos[q];
    }
    return total;
}

void mitm_row(const mitm_plan *p, void *buf, const int64_t *w, int64_t b, int64_t tol,
              int64_t *fire, int64_t *chow, int64_t *high, int64_t *low, int64_t *uncertain) {
    int nb = p->nb, a = p->a, h = p->h;
    int64_t NB = (int64_t)1 << nb, NA = (int64_t)1 << a;
    const int64_t *w_lo = w + nb, *w_hi = w + nb + a;
    char *at = buf;
    int64_t *S = (int64_t *)carve(&at, 8 * (size_t)(NB + 2)) + 1; /* S[-1], S[NB]: sentinels */
    uint32_t *MB = (uint32_t *)carve(&at, 4 * (size_t)(NB + 2)) + 1;
    char *rest = at; /* scratch while B is built */
    int64_t *L = (int64_t *)carve(&at, 8 * (size_t)(NA + 2)) + 1;
    uint32_t *MA = (uint32_t *)carve(&at, 4 * (size_t)(NA + 2)) + 1;
    char *tail = at; /* scratch while A_lo is built */
    uint32_t *diff = (uint32_t *)carve(&at, 4 * (size_t)(NB + 1));
    uint64_t *cnt_a = (uint64_t *)carve(&at, 8 * (size_t)NA);
    uint32_t *pos = (uint32_t *)carve(&at, 4 * (size_t)NA);

    if (2 * NB < SPLIT_OUTPUTS && 2 * NA < SPLIT_OUTPUTS) {
        build_two_small(w, nb, S, MB, w_lo, a, L, MA);
    } else {
        char *scratch = rest;
        int64_t *tb = (int64_t *)carve(&scratch, 8 * (size_t)(NB / 2 + 2)) + 1;
        build_sorted(w, nb, S, MB, tb, (uint32_t *)carve(&scratch, 4 * (size_t)(NB / 2 + 2)) + 1);
        scratch = tail;
        int64_t *ta = (int64_t *)carve(&scratch, 8 * (size_t)(NA / 2 + 2)) + 1;
        build_sorted(w_lo, a, L, MA, ta, (uint32_t *)carve(&scratch, 4 * (size_t)(NA / 2 + 2)) + 1);
    }
    S[NB] = BIG;
    memset(diff, 0, 4 * (size_t)(NB + 1));
    memset(cnt_a, 0, 8 * (size_t)NA);
    for (int i = 0; i < p->n; i++) chow[i] = 0;

    int64_t total = 0, best_high = INT64_MAX, best_low = INT64_MIN;
    for (int64_t o = 0; o < ((int64_t)1 << h); o++) {
        int64_t d = b;
        for (int k = 0; k < h; k++)
            if ((o >> k) & 1) d += w_hi[k];
        walk_ranks(S, NB, L, NA, tol - d, pos);
        int64_t combo = 0, hi = INT64_MAX, lo = INT64_MIN;
        for (int64_t q = 0; q < NA; q++) {
            int64_t r = pos[q], v = L[q] + d;
            int64_t up = r < NB ? v + S[r] : INT64_MAX;       /* closest excited sum */
            int64_t down = r > 0 ? v + S[r - 1] : INT64_MIN;  /* closest other sum */
            combo += NB - r;
            cnt_a[q] += (uint64_t)(NB - r);
            hi = up < hi ? up : hi;
            lo = down > lo ? down : lo;
        }
        for (int64_t q = 0; q < NA; q++) diff[pos[q]]++;
        total += combo;
        for (int k = 0; k < h; k++)
            if ((o >> k) & 1) chow[nb + a + k] += combo;
        best_high = hi < best_high ? hi : best_high;
        best_low = lo > best_low ? lo : best_low;
    }
    *fire = total;
    *high = best_high;
    *low = best_low;
    /* |s| <= tol  <=>  s > -tol - 1 but not s > tol (integers) */
    *uncertain = tol > 0 ? count_above(p, S, L, pos, w_hi, b, -tol - 1) - total : 0;

    /* A_lo: per-subset counts by mask (in L's storage, no longer needed), folded */
    int64_t *by_mask = L;
    for (int64_t q = 0; q < NA; q++) by_mask[MA[q]] = (int64_t)cnt_a[q];
    fold_bits(by_mask, a, chow + nb);
    /* B: position p completes the A subsets of rank <= p; by mask in S's storage */
    int64_t running = 0;
    for (int64_t q = 0; q < NB; q++) {
        running += diff[q];
        S[MB[q]] = running; /* S is no longer read: the scatter may overwrite it */
    }
    fold_bits(S, nb, chow);
}

int64_t mitm_window(const mitm_plan *p, void *buf, const int64_t *w, int64_t b, int64_t lo,
                    int64_t hi, uint64_t *out, int64_t cap) {
    int nb = p->nb, a = p->a, h = p->h;
    int64_t NB = (int64_t)1 << nb, NA = (int64_t)1 << a, found = 0;
    const int64_t *w_lo = w + nb, *w_hi = w + nb + a;
    char *at = buf;
    int64_t *S = (int64_t *)carve(&at, 8 * (size_t)(NB + 2)) + 1;
    uint32_t *MB = (uint32_t *)carve(&at, 4 * (size_t)(NB + 2)) + 1;
    char *rest = at;
    int64_t *L = (int64_t *)carve(&at, 8 * (size_t)(NA + 2)) + 1;
    uint32_t *MA = (uint32_t *)carve(&at, 4 * (size_t)(NA + 2)) + 1;
    char *tail = at;
    (void)carve(&at, 4 * (size_t)(NB + 1));
    uint32_t *below = (uint32_t *)carve(&at, 8 * (size_t)NA); /* ranks of lo - 1 */
    uint32_t *upto = (uint32_t *)carve(&at, 4 * (size_t)NA);  /* ranks of hi */
    if (2 * NB < SPLIT_OUTPUTS && 2 * NA < SPLIT_OUTPUTS) {
        build_two_small(w, nb, S, MB, w_lo, a, L, MA);
    } else {
        char *scratch = rest;
        int64_t *tb = (int64_t *)carve(&scratch, 8 * (size_t)(NB / 2 + 2)) + 1;
        build_sorted(w, nb, S, MB, tb, (uint32_t *)carve(&scratch, 4 * (size_t)(NB / 2 + 2)) + 1);
        scratch = tail;
        int64_t *ta = (int64_t *)carve(&scratch, 8 * (size_t)(NA / 2 + 2)) + 1;
        build_sorted(w_lo, a, L, MA, ta, (uint32_t *)carve(&scratch, 4 * (size_t)(NA / 2 + 2)) + 1);
    }
    S[NB] = BIG;
    for (int64_t o = 0; o < ((int64_t)1 << h); o++) {
        int64_t d = b;
        for (int k = 0; k < h; k++)
            if ((o >> k) & 1) d += w_hi[k];
        walk_ranks(S, NB, L, NA, hi - d, upto);  /* #{S <= hi - d - L[q]} */
        walk_ranks(S, NB, L, NA, lo - 1 - d, below);
        uint64_t high_bits = (uint64_t)o << (nb + a);
        for (int64_t q = 0; q < NA; q++) {
            for (int64_t r = below[q]; r < (int64_t)upto[q]; r++, found++)
                if (found < cap) out[found] = high_bits | ((uint64_t)MA[q] << nb) | MB[r];
        }
    }
    return found;
}
